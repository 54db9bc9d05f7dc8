package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/integration/testbed"
)

// hsmProvider is a key provider on a real server or token, for the
// scenarios of this file.
type hsmProvider struct {
	kind    string            // "kmip" or "pkcs11"
	bin     string            // the s3seal binary that can use it
	env     map[string]string // what s3seal processes need in their environment
	section string            // the provider's YAML section
	keys    []string          // master keys: unique ids or labels
	// wraps and unwraps count the operations at the server or token.
	wraps, unwraps func() int
	down, up       func()
}

func (h *hsmProvider) spec(ids ...string) string { return h.kind + ":" + strings.Join(ids, ",") }

// writeYAML writes the configuration file at path: keys, the provider's
// section and extra.
func (h *hsmProvider) writeYAML(t testing.TB, path, keys, extra string) {
	t.Helper()
	must(t, os.WriteFile(path, []byte("keys: "+keys+"\n"+h.section+extra), 0o600), "write config")
}

func (h *hsmProvider) proxyEnv(cfg, audit string) map[string]string {
	env := map[string]string{"S3SEAL_MODE": "envelope", "S3SEAL_CONFIG": cfg, "S3SEAL_LOG_LEVEL": "info", "S3SEAL_AUDIT": audit}
	for k, v := range h.env {
		env[k] = v
	}
	return env
}

func (h *hsmProvider) envList() []string {
	var out []string
	for k, v := range h.env {
		out = append(out, k+"="+v)
	}
	return out
}

var hsmBuild struct {
	once sync.Once
	bin  string
	err  error
}

// hsmBinary builds the HSM build of s3seal (cgo, -tags pkcs11) once.
func hsmBinary(t testing.TB) string {
	t.Helper()
	hsmBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "s3seal-hsm-")
		if err != nil {
			hsmBuild.err = err
			return
		}
		out := filepath.Join(dir, "s3seal-hsm")
		cmd := exec.Command("go", "build", "-tags", "pkcs11", "-o", out, ".")
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if b, err := cmd.CombinedOutput(); err != nil {
			hsmBuild.err = fmt.Errorf("go build -tags pkcs11: %v\n%s", err, b)
			return
		}
		hsmBuild.bin = out
	})
	if hsmBuild.err != nil {
		t.Fatal(hsmBuild.err)
	}
	return hsmBuild.bin
}

// putMany PUTs n small objects prefix/NNNN with 8 workers and returns
// their contents.
func putMany(t testing.TB, c *s3.Client, bucket, prefix string, n int) map[string][]byte {
	t.Helper()
	bodies := make(map[string][]byte, n)
	for i := 0; i < n; i++ {
		bodies[fmt.Sprintf("%s/%04d", prefix, i)] = randBytes(64)
	}
	forEach(t, bodies, func(k string, b []byte) error {
		_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader(b)})
		return err
	})
	return bodies
}

// getMany GETs every object of bodies with 8 workers and checks it.
func getMany(t testing.TB, c *s3.Client, bucket string, bodies map[string][]byte) {
	t.Helper()
	forEach(t, bodies, func(k string, b []byte) error {
		if got := getBytes(t, c, bucket, k); !bytes.Equal(got, b) {
			return fmt.Errorf("%s: other bytes", k)
		}
		return nil
	})
}

func forEach(t testing.TB, m map[string][]byte, f func(string, []byte) error) {
	t.Helper()
	work := make(chan string)
	errs := make(chan error, len(m))
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				if err := f(k, m[k]); err != nil {
					errs <- err
				}
			}
		}()
	}
	for k := range m {
		work <- k
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// hup reloads p's configuration and waits for the log to say so.
func hup(t testing.TB, p *proxy) {
	t.Helper()
	n := len(logLines(t, p, "configuration reloaded"))
	must(t, syscall.Kill(p.PID(), syscall.SIGHUP), "SIGHUP")
	deadline := time.Now().Add(20 * time.Second)
	for len(logLines(t, p, "configuration reloaded")) == n {
		if l := logLines(t, p, "reload refused"); len(l) > 0 {
			t.Fatalf("reload refused: %s", l[len(l)-1])
		}
		if time.Now().After(deadline) {
			t.Fatal("no reload within 20 s of SIGHUP")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// serveFails runs s3seal serve with env, expects it to refuse to start,
// and returns its output.
func serveFails(t testing.TB, bin string, env map[string]string) string {
	t.Helper()
	up := shared.minio
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(c, bin, "serve")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"S3SEAL_LISTEN=127.0.0.1:" + strconv.Itoa(testbed.FreePort(t)), "S3SEAL_ADMIN_LISTEN=127.0.0.1:" + strconv.Itoa(testbed.FreePort(t)),
		"S3SEAL_TLS=off", "S3SEAL_DATA_DIR=" + t.TempDir(),
		"S3SEAL_CLIENT_ACCESS_KEY_ID=client-" + randHex(4), "S3SEAL_CLIENT_SECRET_ACCESS_KEY=secret-" + randHex(16),
		"AWS_ENDPOINT_URL_S3=" + up.Endpoint, "AWS_REGION=" + up.Region, "AWS_ACCESS_KEY_ID=" + up.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + up.SecretKey, "AWS_CA_BUNDLE=" + up.CAFile}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if c.Err() != nil {
		t.Fatalf("s3seal serve did not stop within 60 s:\n%s", out)
	}
	if err == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("s3seal serve: %v, want exit status 1\n%s", err, out)
	}
	t.Logf("refused to start after %v", time.Since(start).Round(time.Millisecond))
	return string(out)
}

// runHSMScenario runs the envelope scenarios against h: round trips
// through a real s3seal process (single PUT and multipart), 1,000 PUTs
// with one wrap and 1,000 GETs from a fresh process with one unwrap
// (counted by h), the audit log, rotation by SIGHUP (which purges the
// cache), s3seal rewrap to the new key, s3seal decrypt offline, and the
// provider going away and coming back.
func runHSMScenario(t *testing.T, h *hsmProvider) {
	up := shared.minio
	bucket := newBucket(t, up)
	dir := t.TempDir()
	cfg, audit := filepath.Join(dir, "s3seal.yaml"), filepath.Join(dir, "audit.log")
	k1, k2 := h.keys[0], h.keys[1]
	h.writeYAML(t, cfg, h.spec(k1), "")
	env := h.proxyEnv(cfg, audit)

	p := startProxy(t, up, proxyOptions{Env: env, Bin: h.bin})
	c := p.Client(t)
	w0 := h.wraps()
	start := time.Now()
	bodies := putMany(t, c, bucket, "n", 1000)
	putTime := time.Since(start)
	if got := h.wraps() - w0; got != 1 {
		t.Fatalf("1,000 PUTs made %d wrap calls at the %s server, want 1", got, h.kind)
	}
	if n := scrape(t, p, fmt.Sprintf(`s3seal_key_provider_calls_total{call="generate",outcome="ok",provider=%q}`, h.kind)); n != 1 {
		t.Fatalf("metrics: %v generate calls, want 1", n)
	}
	t.Logf("%s: 1,000 PUTs in %v, 1 wrap call counted at the server", h.kind, putTime.Round(time.Millisecond))

	single := randBytes(300_000)
	_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("single"), Body: bytes.NewReader(single)})
	must(t, err, "single PUT")
	mpu := randBytes(6 << 20)
	putMultipart(t, c, bucket, "mpu", mpu, 5<<20)
	bodies["single"], bodies["mpu"] = single, mpu
	if got := getBytes(t, c, bucket, "mpu"); !bytes.Equal(got, mpu) {
		t.Fatal("multipart object reads back other bytes")
	}
	if hd := storedHeader(t, readStored(t, up, bucket, "single", "")); hd.Provider().String() != h.kind || hd.KeyID() != k1 {
		t.Fatalf("stored header: provider %s key %q", hd.Provider(), hd.KeyID())
	}
	p.Stop(t)
	b, err := os.ReadFile(audit)
	must(t, err, "read audit log")
	if n := strings.Count(string(b), fmt.Sprintf(`"provider":%q,"key_id":%q`, h.kind, k1)); n < 1002 {
		t.Fatalf("audit log: %d records name %s key %s, want one per object written", n, h.kind, k1)
	}

	// A fresh process: 1,000 GETs, one unwrap.
	p2 := startProxy(t, up, proxyOptions{Env: env, Bin: h.bin})
	c = p2.Client(t)
	u0 := h.unwraps()
	start = time.Now()
	few := map[string][]byte{}
	for k, v := range bodies {
		if strings.HasPrefix(k, "n/") {
			few[k] = v
		}
	}
	getMany(t, c, bucket, few)
	if got := h.unwraps() - u0; got != 1 {
		t.Fatalf("1,000 GETs from a fresh process made %d unwrap calls at the %s server, want 1", got, h.kind)
	}
	t.Logf("%s: 1,000 GETs in %v, 1 unwrap call counted at the server", h.kind, time.Since(start).Round(time.Millisecond))

	// Rotation by SIGHUP: k2 wraps new data keys, k1 still unwraps; the
	// reload purged the cache, so the next read unwraps again.
	h.writeYAML(t, cfg, h.spec(k2, k1), "")
	hup(t, p2)
	u0 = h.unwraps()
	if got := getBytes(t, c, bucket, "single"); !bytes.Equal(got, single) {
		t.Fatal("old object after rotation")
	}
	if got := h.unwraps() - u0; got != 1 {
		t.Fatalf("first read after a reload made %d unwrap calls, want 1 (the cache is purged on reload)", got)
	}
	_, err = c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("rotated"), Body: bytes.NewReader([]byte("new"))})
	must(t, err, "PUT after rotation")
	if hd := storedHeader(t, readStored(t, up, bucket, "rotated", "")); hd.KeyID() != k2 {
		t.Fatalf("new object under %q, want %q", hd.KeyID(), k2)
	}
	bodies["rotated"] = []byte("new")

	// s3seal rewrap moves everything to k2 (metadata only).
	w0, u0 = h.wraps(), h.unwraps()
	renv := append(rewrapEnv(t, up, "", "S3SEAL_CONFIG="+cfg), h.envList()...)
	run := runRewrapBin(t, h.bin, renv, 0, "--bucket", bucket)
	if run.code != 0 || run.num("rewrapped") != 1002 || run.num("current") != 1 {
		t.Fatalf("rewrap: %v", run)
	}
	t.Logf("%s: rewrap of 1,002 objects sharing one data key: %d wrap and %d unwrap calls at the server", h.kind, h.wraps()-w0, h.unwraps()-u0)
	if h.wraps()-w0 > 2 || h.unwraps()-u0 > 2 {
		t.Fatalf("rewrap made %d wraps and %d unwraps for one data key", h.wraps()-w0, h.unwraps()-u0)
	}
	mpuStored := readStored(t, up, bucket, "mpu", "")
	if hd := storedHeader(t, mpuStored); hd.KeyID() != k2 {
		t.Fatalf("after rewrap mpu is under %q", hd.KeyID())
	}
	// Only k2 now: everything reads.
	h.writeYAML(t, cfg, h.spec(k2), "")
	hup(t, p2)
	sample := map[string][]byte{"single": single, "mpu": mpu, "rotated": []byte("new"), "n/0000": bodies["n/0000"], "n/0999": bodies["n/0999"]}
	getMany(t, c, bucket, sample)

	// s3seal decrypt, offline, with the settings from the file.
	raw := readStored(t, up, bucket, "single", "")
	in, meta, out := filepath.Join(dir, "single.bin"), filepath.Join(dir, "single.json"), filepath.Join(dir, "single.out")
	must(t, os.WriteFile(in, raw.body, 0o600), "write ciphertext")
	mj, _ := json.Marshal(raw.meta)
	must(t, os.WriteFile(meta, mj, 0o600), "write metadata")
	dec := exec.Command(h.bin, "decrypt", "--config", cfg, "--keys", h.spec(k2), "--metadata", meta, "--bucket", bucket, "--key", "single", in, out)
	dec.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, h.envList()...)
	if b, err := dec.CombinedOutput(); err != nil {
		t.Fatalf("s3seal decrypt: %v\n%s", err, b)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, single) {
		t.Fatal("s3seal decrypt wrote other bytes")
	}
	p2.Stop(t)
	hsmOutage(t, h, bucket)
}

// hsmOutage takes the provider away under a running s3seal (data-key reuse
// budget 5, retry_after 2 s) and brings it back.
func hsmOutage(t *testing.T, h *hsmProvider, bucket string) {
	up := shared.minio
	const budget, retryAfter = 5, 2 * time.Second
	cfg := filepath.Join(t.TempDir(), "s3seal.yaml")
	h.writeYAML(t, cfg, h.spec(h.keys[1]), fmt.Sprintf("keys_cache: {reuse_objects: %d, retry_after: %s}\n", budget, retryAfter))
	p := startProxy(t, up, proxyOptions{Env: h.proxyEnv(cfg, ""), Bin: h.bin})
	c := p.Client(t, noRetry)
	put := func(key string) (time.Duration, error) {
		start := time.Now()
		_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader([]byte(key))})
		return time.Since(start), err
	}
	_, err := put("o/0")
	must(t, err, "PUT with the provider up")
	getBytes(t, c, bucket, "o/0")

	h.down()
	if got := getBytes(t, c, bucket, "o/0"); string(got) != "o/0" {
		t.Fatal("cached read while the provider is down")
	}
	for i := 1; i < budget; i++ {
		if _, err := put(fmt.Sprintf("o/%d", i)); err != nil {
			t.Fatalf("PUT %d within the reuse budget, provider down: %v", i+1, err)
		}
	}
	first, err1 := put("o/over-1")
	second, err2 := put("o/over-2")
	for _, e := range []error{err1, err2} {
		if e == nil || apiCode(e) != "ServiceUnavailable" || !strings.Contains(e.Error(), "503") || !strings.Contains(e.Error(), "key provider is unavailable") {
			t.Fatalf("PUT beyond the budget, provider down: %v; want 503 ServiceUnavailable", e)
		}
	}
	if second > 500*time.Millisecond {
		t.Fatalf("PUT within retry_after of a failed renewal took %v", second)
	}
	if objectExists(t, up, bucket, "o/over-1") {
		t.Fatal("a refused PUT was stored")
	}
	upAt := time.Now()
	h.up()
	rec := retryUntil(t, "PUT after the provider came back", time.Minute, func() error { _, err := put("o/after"); return err })
	t.Logf("%s outage: cached reads ok, %d writes within the budget ok, first refusal after %v, next after %v (503 ServiceUnavailable); "+
		"provider back: first write %v after the restart began (%v after it was ready)",
		h.kind, budget-1, first.Round(time.Millisecond), second.Round(time.Millisecond), time.Since(upAt).Round(time.Millisecond), rec.Round(time.Millisecond))
}

// TestKeysKMIP runs the envelope scenarios against a real KMIP server
// (PyKMIP), and checks that a certificate the server does not trust stops
// s3seal at start-up with a clear message.
func TestKeysKMIP(t *testing.T) {
	testbed.Require(t)
	srv := testbed.StartPyKMIP(t)
	ids := srv.CreateKeys(t, 2)
	section := fmt.Sprintf("kmip:\n  endpoint: %s\n  client_cert: %s\n  client_key: %s\n  ca: %s\n  server_name: 127.0.0.1\n  timeout: 2s\n  retries: 1\n  backoff: 100ms\n",
		srv.Addr, srv.ClientCert, srv.ClientKey, srv.CAFile)
	h := &hsmProvider{
		kind: "kmip", bin: shared.bin, section: section, keys: ids,
		wraps:   func() int { return srv.Count(t, "Encrypt") },
		unwraps: func() int { return srv.Count(t, "Decrypt") },
		down:    func() { srv.Stop(t) },
		up:      func() { srv.Restart(t) },
	}
	t.Run("envelope", func(t *testing.T) { runHSMScenario(t, h) })

	other := testbed.NewCA(t, "stranger CA")
	sc, sk := srv.IssueClient(t, other, "s3seal")
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	(&hsmProvider{section: strings.NewReplacer(srv.ClientCert, sc, srv.ClientKey, sk).Replace(section)}).writeYAML(t, bad, "kmip:"+ids[0], "")
	out := serveFails(t, shared.bin, map[string]string{"S3SEAL_CONFIG": bad, "S3SEAL_MODE": "envelope"})
	if !strings.Contains(out, "cannot start") || !strings.Contains(out, "refused the TLS connection") || !strings.Contains(out, "kmip.client_cert") {
		t.Fatalf("wrong client certificate: the start-up error does not say so:\n%s", out)
	}
}

// TestKeysPKCS11 runs the envelope scenarios against a real token
// (SoftHSM2, through the counting p11spy module) with the HSM build, moves
// objects from a key ring to the token with s3seal rewrap, and checks that
// a wrong PIN stops s3seal at start-up with a clear message.
func TestKeysPKCS11(t *testing.T) {
	testbed.Require(t)
	bin := hsmBinary(t)
	hsm := testbed.NewSoftHSM(t)
	hsm.CreateKey(t, "s3seal-1")
	hsm.CreateKey(t, "s3seal-2")
	spy := hsm.NewSpy(t)
	env := map[string]string{}
	for _, kv := range append(hsm.Env(), spy.Env()...) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	section := fmt.Sprintf("pkcs11:\n  module: %s\n  token_label: %s\n  pin_file: %s\n  sessions: 4\n", spy.Module, hsm.TokenLabel, hsm.PinFile)
	h := &hsmProvider{
		kind: "pkcs11", bin: bin, env: env, section: section, keys: []string{"s3seal-1", "s3seal-2"},
		wraps:   func() int { return spy.Counts(t)["C_Encrypt"] },
		unwraps: func() int { return spy.Counts(t)["C_Decrypt"] },
		down:    func() { spy.SetDown(t, true) },
		up:      func() { spy.SetDown(t, false) },
	}
	t.Run("envelope", func(t *testing.T) { runHSMScenario(t, h) })
	t.Run("token reset", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "s3seal.yaml")
		h.writeYAML(t, cfg, h.spec("s3seal-1"), "keys_cache: {reuse_objects: -1}\n")
		p := startProxy(t, shared.minio, proxyOptions{Env: h.proxyEnv(cfg, ""), Bin: bin})
		c := p.Client(t, noRetry)
		bucket := newBucket(t, shared.minio)
		logins := spy.Counts(t)["C_Login"]
		spy.Reset(t)
		_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), Body: bytes.NewReader([]byte("x"))})
		must(t, err, "PUT after a token reset")
		if n := spy.Counts(t)["C_Login"]; n != logins+1 {
			b, _ := os.ReadFile(filepath.Join(spy.Dir, "calls"))
			t.Fatalf("logins %d → %d across a token reset, want one more\n%s", logins, n, b)
		}
	})
	t.Run("key ring to HSM", func(t *testing.T) { moveRingToHSM(t, h) })

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	(&hsmProvider{section: strings.Replace(section, "pin_file: "+hsm.PinFile, "pin_env: S3SEAL_TEST_PIN", 1)}).writeYAML(t, bad, "pkcs11:s3seal-1", "")
	benv := map[string]string{"S3SEAL_CONFIG": bad, "S3SEAL_MODE": "envelope", "S3SEAL_TEST_PIN": "00000000"}
	for k, v := range env {
		benv[k] = v
	}
	out := serveFails(t, bin, benv)
	if !strings.Contains(out, "cannot start") || !strings.Contains(out, "refused the PIN") || strings.Contains(out, "00000000") {
		t.Fatalf("wrong PIN: the start-up error does not say so (or shows the PIN):\n%s", out)
	}
	// The default, static build says what to use instead.
	good := filepath.Join(t.TempDir(), "good.yaml")
	h.writeYAML(t, good, "pkcs11:s3seal-1", "")
	out = serveFails(t, shared.bin, map[string]string{"S3SEAL_CONFIG": good, "S3SEAL_MODE": "envelope"})
	if !strings.Contains(out, "without PKCS#11 support") {
		t.Fatalf("static build with pkcs11 keys:\n%s", out)
	}
}

// moveRingToHSM writes objects under a key ring, serves them and new ones
// with the token active and the ring in read_keys, moves them to the token
// with s3seal rewrap, and reads everything without the ring.
func moveRingToHSM(t *testing.T, h *hsmProvider) {
	up := shared.minio
	bucket := newBucket(t, up)
	dir := t.TempDir()
	ring := filepath.Join(dir, "keyring")
	if b, err := exec.Command(h.bin, "keygen", "-o", ring).CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, b)
	}
	p := startProxy(t, up, proxyOptions{Env: map[string]string{"S3SEAL_MODE": "envelope", "S3SEAL_KEYS": "local:" + ring}, Bin: h.bin})
	c := p.Client(t)
	bodies := putMany(t, c, bucket, "ring", 20)
	mpu := randBytes(6 << 20)
	putMultipart(t, c, bucket, "ring-mpu", mpu, 5<<20)
	bodies["ring-mpu"] = mpu
	p.Stop(t)

	cfg := filepath.Join(dir, "s3seal.yaml")
	h.writeYAML(t, cfg, h.spec(h.keys[0]), "read_keys: [\"local:"+ring+"\"]\n")
	p = startProxy(t, up, proxyOptions{Env: h.proxyEnv(cfg, ""), Bin: h.bin})
	c = p.Client(t)
	getMany(t, c, bucket, bodies)
	_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("hsm"), Body: bytes.NewReader([]byte("hsm"))})
	must(t, err, "PUT with the token active")
	bodies["hsm"] = []byte("hsm")
	p.Stop(t)

	w0 := h.wraps()
	run := runRewrapBin(t, h.bin, append(rewrapEnv(t, up, "", "S3SEAL_CONFIG="+cfg), h.envList()...), 0, "--bucket", bucket)
	if run.code != 0 || run.num("rewrapped") != 21 || run.num("current") != 1 {
		t.Fatalf("rewrap key ring → HSM: %v", run)
	}
	t.Logf("key ring → %s: 21 objects sharing one data key moved with %d wrap calls at the token", h.kind, h.wraps()-w0)
	for _, k := range []string{"ring/0000", "ring-mpu"} {
		if hd := storedHeader(t, readStored(t, up, bucket, k, "")); hd.Provider() != envelope.ProviderPKCS11 || hd.KeyID() != h.keys[0] {
			t.Fatalf("%s after the move: %s %q", k, hd.Provider(), hd.KeyID())
		}
	}
	h.writeYAML(t, cfg, h.spec(h.keys[0]), "")
	p = startProxy(t, up, proxyOptions{Env: h.proxyEnv(cfg, ""), Bin: h.bin})
	getMany(t, p.Client(t), bucket, bodies)
}
