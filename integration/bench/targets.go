package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/integration/testbed"
)

// Target kinds.
const (
	kindDirect = "direct"
	kindS3seal = "s3seal"
	kindNginx  = "nginx"
	kindCaddy  = "caddy"
)

// targetSpec names a target and how to run it.
type targetSpec struct {
	Name  string // as given to -targets and shown in the results
	Kind  string // kindDirect, kindS3seal, kindNginx or kindCaddy
	Mode  string // s3seal's S3SEAL_MODE
	Group string // the bucket group whose objects it reads (see bucketFor)
	// Baseline runs the -baseline binary instead of the one under test.
	Baseline bool
	// WriteOnly is a write-only gateway (age recipients, no identity): it
	// runs only the workloads that write (writeWorkload).
	WriteOnly bool
}

// allTargets is every target, in the order the results show them. Targets
// that store objects the same way (plaintext in MinIO) share a bucket group,
// so that they read the very same objects; each encrypting mode of s3seal
// reads objects written through itself.
var allTargets = []targetSpec{
	{Name: "direct", Kind: kindDirect, Group: "plain"},
	{Name: "passthrough", Kind: kindS3seal, Mode: "passthrough", Group: "plain"},
	{Name: "sse-s3", Kind: kindS3seal, Mode: "sse-s3", Group: "sse-s3"},
	{Name: "sse-c", Kind: kindS3seal, Mode: "sse-c", Group: "sse-c"},
	{Name: "envelope", Kind: kindS3seal, Mode: "envelope", Group: "envelope"},
	// envelope with age post-quantum recipients and no identity: data keys
	// wrapped to public keys, reads refused.
	{Name: "envelope-age", Kind: kindS3seal, Mode: "envelope", Group: "envelope-age", WriteOnly: true},
	// The baseline targets run the binary given with -baseline, to compare
	// two versions of s3seal at the same moment on the same machine.
	{Name: "baseline-passthrough", Kind: kindS3seal, Mode: "passthrough", Group: "plain", Baseline: true},
	{Name: "baseline-envelope", Kind: kindS3seal, Mode: "envelope", Group: "baseline-envelope", Baseline: true},
	{Name: "nginx", Kind: kindNginx, Group: "plain"},
	{Name: "caddy", Kind: kindCaddy, Group: "plain"},
}

// bucketFor returns the bucket of a group.
func bucketFor(group string) string { return "bench-" + group }

func targetByName(name string) (targetSpec, bool) {
	for _, t := range allTargets {
		if t.Name == name {
			return t, true
		}
	}
	return targetSpec{}, false
}

// target is a started (or unavailable) target.
type target struct {
	targetSpec
	Endpoint    string // https://127.0.0.1:PORT
	Unavailable string // why it could not be measured; "" when it can

	accessKey, secretKey string
	roots                *x509.CertPool
	proc                 *testbed.Process // nil for direct
	admin                string           // s3seal's admin URL
}

// Available reports whether the target can be measured.
func (t *target) Available() bool { return t.Unavailable == "" }

// PID returns the proxy's process ID, 0 for direct or when it is not running.
func (t *target) PID() int {
	if t.proc == nil || !t.proc.Running() {
		return 0
	}
	return t.proc.PID()
}

// Bucket returns the target's bucket.
func (t *target) Bucket() string { return bucketFor(t.Group) }

// client returns a new aws-sdk-go-v2 client of the target with its own
// connections and the settings an application gets from
// config.LoadDefaultConfig, except that retries are off, so that every
// failure is counted and no latency hides a retry. s3.New alone leaves the
// checksum settings unset, which sends no checksum at all; the defaults
// that LoadDefaultConfig resolves are set here: a CRC32 on every upload
// (over HTTPS an aws-chunked body with a trailer) and validation of the
// checksums that GETs return.
func (t *target) client(optFns ...func(*s3.Options)) *s3.Client {
	// The SDK's default transport settings, with this target's roots and
	// no proxy. HTTP/1.1 only, as S3 speaks it: a TLS configuration of our
	// own keeps Go from offering HTTP/2.
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: t.roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
	}
	hc := &http.Client{Transport: tr}
	return s3.New(s3.Options{
		Region:       testbed.Region,
		BaseEndpoint: aws.String(t.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(t.accessKey, t.secretKey, ""),
		HTTPClient:   hc,
		Retryer:      aws.NopRetryer{},

		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,
	}, optFns...)
}

// bed is what every target is started from.
type bed struct {
	minio      *testbed.S3Server
	minioRoots *x509.CertPool
	dir        string // work directory, removed at the end
	certFile   string // the proxies' certificate (127.0.0.1, localhost)
	keyFile    string
	roots      *x509.CertPool

	s3seal     string // s3seal binary; "" if it could not be built
	s3sealErr  error  // why there is no binary
	baseline   string // the -baseline binary; "" when none was given
	keyring    string // local key ring file for sse-c and envelope
	keyErr     error  // why there is no key ring
	recipients string // age recipients file for write-only targets
	pprof      bool   // S3SEAL_PPROF for s3seal targets
}

// startTarget starts spec's server and waits until it answers. It never
// fails the run: a target that cannot start comes back with Unavailable
// saying why. Processes it started are stopped by cleanup (which the caller
// must run), also when the target is unavailable.
func (b *bed) startTarget(ctx context.Context, spec targetSpec) (t *target, cleanup func()) {
	t = &target{targetSpec: spec, roots: b.roots}
	sub := testbed.NewMainTB(spec.Name)
	cleanup = func() { sub.Close() }
	var err error
	ok := sub.Do(func(tb testing.TB) {
		switch spec.Kind {
		case kindDirect:
			t.Endpoint, t.roots = b.minio.Endpoint, b.minioRoots
			t.accessKey, t.secretKey = b.minio.AccessKey, b.minio.SecretKey
		case kindS3seal:
			err = b.startS3seal(ctx, tb, t)
		case kindNginx:
			err = b.startNginx(ctx, tb, t)
		case kindCaddy:
			err = b.startCaddy(ctx, tb, t)
		default:
			err = fmt.Errorf("unknown kind %q", spec.Kind)
		}
	})
	switch {
	case !ok:
		t.Unavailable = lastLines(sub.Logs(), 3)
	case err != nil:
		t.Unavailable = err.Error()
	}
	if t.Unavailable != "" {
		t.Unavailable = oneLine(t.Unavailable)
		cleanup()
	}
	return t, cleanup
}

// startS3seal runs "s3seal serve" in spec's mode in front of MinIO.
func (b *bed) startS3seal(ctx context.Context, tb testing.TB, t *target) error {
	bin := b.s3seal
	if t.Baseline {
		if bin = b.baseline; bin == "" {
			return errors.New("no baseline binary (-baseline)")
		}
	}
	if bin == "" {
		return fmt.Errorf("no s3seal binary: %v", b.s3sealErr)
	}
	dir := filepath.Join(b.dir, t.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	port, admin := testbed.FreePort(tb), testbed.FreePort(tb)
	t.accessKey, t.secretKey = "bench-"+randHex(6), randHex(20)
	t.Endpoint = "https://127.0.0.1:" + strconv.Itoa(port)
	t.admin = "http://127.0.0.1:" + strconv.Itoa(admin)
	env := []string{
		"S3SEAL_LISTEN=127.0.0.1:" + strconv.Itoa(port),
		"S3SEAL_ADMIN_LISTEN=127.0.0.1:" + strconv.Itoa(admin),
		"S3SEAL_DATA_DIR=" + dir,
		"S3SEAL_TLS=files",
		"S3SEAL_TLS_CERT=" + b.certFile,
		"S3SEAL_TLS_KEY=" + b.keyFile,
		"S3SEAL_CLIENT_ACCESS_KEY_ID=" + t.accessKey,
		"S3SEAL_CLIENT_SECRET_ACCESS_KEY=" + t.secretKey,
		"S3SEAL_MODE=" + t.Mode,
		"S3SEAL_LOG_LEVEL=warn",
		"AWS_ENDPOINT_URL_S3=" + b.minio.Endpoint,
		"AWS_REGION=" + b.minio.Region,
		"AWS_ACCESS_KEY_ID=" + b.minio.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + b.minio.SecretKey,
		"AWS_CA_BUNDLE=" + b.minio.CAFile,
		"HOME=" + dir,
	}
	if b.pprof {
		env = append(env, "S3SEAL_PPROF=true")
	}
	switch {
	case t.WriteOnly:
		if b.recipients == "" {
			return fmt.Errorf("no age recipients: %v", b.keyErr)
		}
		env = append(env, "S3SEAL_KEYS=age:"+b.recipients)
	case t.Mode == "sse-c" || t.Mode == "envelope":
		if b.keyring == "" {
			return fmt.Errorf("no key ring for mode %s: %v", t.Mode, b.keyErr)
		}
		env = append(env, "S3SEAL_KEYS=local:"+b.keyring)
	}
	t.proc = testbed.StartProcess(tb, bin, env, "serve")
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	if err := waitUntil(ctx, 20*time.Second, t.proc, func() error {
		return getOK(hc, t.admin+"/readyz")
	}); err != nil {
		return fmt.Errorf("s3seal %s did not start: %w%s", t.Mode, err, processReason(t.proc))
	}
	return nil
}

// startNginx runs nginx from the distribution as a TLS reverse proxy to
// MinIO (see nginxConfig).
func (b *bed) startNginx(ctx context.Context, tb testing.TB, t *target) error {
	bin, err := findBinary("nginx")
	if err != nil {
		return err
	}
	dir := filepath.Join(b.dir, "nginx")
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return err
	}
	// Workers drop root for "nobody" and must reach the temporary paths.
	if err := os.Chmod(b.dir, 0o755); err != nil {
		return err
	}
	port := testbed.FreePort(tb)
	conf := nginxConfig(nginxParams{
		Prefix:      dir,
		Listen:      "127.0.0.1:" + strconv.Itoa(port),
		CertFile:    b.certFile,
		KeyFile:     b.keyFile,
		Upstream:    "127.0.0.1:" + strconv.Itoa(b.minio.Port()),
		UpstreamCA:  b.minio.CAFile,
		UpstreamSNI: "localhost",
	})
	file := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		return err
	}
	t.accessKey, t.secretKey = b.minio.AccessKey, b.minio.SecretKey
	t.Endpoint = "https://127.0.0.1:" + strconv.Itoa(port)
	t.proc = testbed.StartProcess(tb, bin, nil, "-e", "stderr", "-p", dir, "-c", file)
	return b.waitTLS(ctx, t)
}

// startCaddy runs Caddy as a TLS reverse proxy to MinIO (see caddyConfig).
func (b *bed) startCaddy(ctx context.Context, tb testing.TB, t *target) error {
	bin, err := findBinary("caddy")
	if err != nil {
		return err
	}
	dir := filepath.Join(b.dir, "caddy")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	port := testbed.FreePort(tb)
	conf, err := caddyConfig(caddyParams{
		Storage:     filepath.Join(dir, "data"),
		Listen:      "127.0.0.1:" + strconv.Itoa(port),
		CertFile:    b.certFile,
		KeyFile:     b.keyFile,
		Upstream:    "127.0.0.1:" + strconv.Itoa(b.minio.Port()),
		UpstreamCA:  b.minio.CAFile,
		UpstreamSNI: "localhost",
	})
	if err != nil {
		return err
	}
	file := filepath.Join(dir, "caddy.json")
	if err := os.WriteFile(file, conf, 0o600); err != nil {
		return err
	}
	t.accessKey, t.secretKey = b.minio.AccessKey, b.minio.SecretKey
	t.Endpoint = "https://127.0.0.1:" + strconv.Itoa(port)
	env := []string{"HOME=" + dir, "XDG_DATA_HOME=" + filepath.Join(dir, "data"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "config")}
	t.proc = testbed.StartProcess(tb, bin, env, "run", "--config", file)
	return b.waitTLS(ctx, t)
}

// waitTLS waits until the proxy answers HTTPS with any status.
func (b *bed) waitTLS(ctx context.Context, t *target) error {
	hc := &http.Client{
		Transport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: b.roots, MinVersion: tls.VersionTLS12}},
		Timeout:   2 * time.Second,
	}
	defer hc.CloseIdleConnections()
	err := waitUntil(ctx, 15*time.Second, t.proc, func() error {
		resp, err := hc.Get(t.Endpoint + "/minio/health/live")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s did not start: %w%s", t.Name, err, processReason(t.proc))
	}
	return nil
}

// waitUntil calls probe every 50 ms until it succeeds, timeout passes, ctx
// ends or proc exits.
func waitUntil(ctx context.Context, timeout time.Duration, proc *testbed.Process, probe func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if last = probe(); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no answer within %v (last: %v)", timeout, last)
		case <-proc.Exited():
			return errors.New("the process exited")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func getOK(hc *http.Client, url string) error {
	resp, err := hc.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", url, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil
}

// processReason returns ": <what the process said last>" for an error, or
// "" if it said nothing useful. zap JSON lines give their msg and error.
func processReason(p *testbed.Process) string {
	if p == nil {
		return ""
	}
	time.Sleep(100 * time.Millisecond) // let a dying process finish writing
	lines := strings.Split(strings.TrimSpace(p.Log()), "\n")
	var out []string
	for i := len(lines) - 1; i >= 0 && len(out) < 2; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "=== ") {
			continue
		}
		var rec struct {
			Msg   string `json:"msg"`
			Error string `json:"error"`
		}
		if json.Unmarshal([]byte(l), &rec) == nil && rec.Msg != "" {
			l = rec.Msg
			if rec.Error != "" {
				l += ": " + rec.Error
			}
		}
		out = append([]string{l}, out...)
	}
	if len(out) == 0 {
		return ""
	}
	return ": " + strings.Join(out, " / ")
}

// findBinary looks name up in the test bed's bin directory, then $PATH.
func findBinary(name string) (string, error) {
	p := filepath.Join(testbed.BinDir(), name)
	if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s is not installed: run ./integration/testbed/install.sh bench", name)
}

// lastLines returns the last n non-empty lines of s, joined by " / ".
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	var out []string
	for i := len(lines) - 1; i >= 0 && len(out) < n; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			out = append([]string{l}, out...)
		}
	}
	return strings.Join(out, " / ")
}

// oneLine collapses whitespace runs (newlines included) into one space and
// cuts s to 400 bytes, for a table cell.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}
