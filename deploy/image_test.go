package deploy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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

	"github.com/s3seal/s3seal/crypto/keys/local"
	"github.com/s3seal/s3seal/integration/testbed"
)

// The container image test builds s3seal's image with podman from the
// release form of the container file (deploy/docker/Dockerfile.release,
// whose final stage TestDockerfilesInStep holds equal to the multi-stage
// Dockerfile's) and runs it the way the Kubernetes manifests do: read-only
// root filesystem, user 65532, no capabilities, no new privileges, the data
// directory on a volume. Through it, against MinIO over TLS, in envelope
// mode with a mounted key ring: PUT and GET, the ciphertext in the store,
// the image's HEALTHCHECK, a SIGHUP reload and a SIGTERM shutdown.
//
// It is skipped, with the reason, only when podman cannot run a container
// on this machine (integration/run.sh lists skipped tests in its summary).

// podman runs containers as the test bed does: runc (crun fails on these
// machines' rlimits and cgroups), cgroupfs, and a containers.conf without
// default ulimits.
type podman struct {
	bin  string
	conf string
}

func (p *podman) cmd(ctx context.Context, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, p.bin, append([]string{"--runtime", "runc", "--cgroup-manager", "cgroupfs"}, args...)...)
	c.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf)
	return c
}

// run runs podman and returns its trimmed standard output; stderr goes into
// the error.
func (p *podman) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	c := p.cmd(ctx, args...)
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		return strings.TrimSpace(out.String()), fmt.Errorf("podman %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// logs returns a container's output, standard output and error together.
func (p *podman) logs(t *testing.T, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, _ := p.cmd(ctx, "logs", name).CombinedOutput()
	return string(out)
}

func (p *podman) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := p.run(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// newPodman returns podman when it can run a container here, and skips
// the test with the reason otherwise.
func newPodman(t *testing.T) *podman {
	t.Helper()
	bin, err := exec.LookPath("podman")
	if err != nil {
		t.Skipf("container image: podman is not installed (%v); integration/testbed/install.sh installs it on Debian", err)
	}
	dir := t.TempDir()
	p := &podman{bin: bin, conf: filepath.Join(dir, "containers.conf")}
	if err := os.WriteFile(p.conf, []byte("[containers]\ndefault_ulimits = []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The smallest container there is: the probe binary of this test on
	// an empty base, run once.
	probe := filepath.Join(dir, "ctx")
	os.MkdirAll(probe, 0o755)
	bin2 := build(t, "probe", "deploy/testdata/probe", []string{"CGO_ENABLED=0"}, "-trimpath")
	copyFile(t, bin2, filepath.Join(probe, "probe"), 0o755)
	os.WriteFile(filepath.Join(probe, "Containerfile"), []byte("FROM scratch\nCOPY probe /probe\nENTRYPOINT [\"/probe\"]\n"), 0o644)
	tag := "localhost/s3seal-probe:" + randomHex(4)
	if _, err := p.run(t, "build", "--quiet", "-t", tag, "-f", filepath.Join(probe, "Containerfile"), probe); err != nil {
		t.Skipf("container image: podman cannot build an image on this machine: %v", err)
	}
	defer p.run(t, "rmi", "-f", tag)
	out, err := p.run(t, "run", "--rm", "--network", "host", "--ulimit", "host", tag)
	if err != nil || out != "probe ok" {
		t.Skipf("container image: podman cannot run a container on this machine: %v (output %q)", err, out)
	}
	return p
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

func freeLoopback(t *testing.T) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(testbed.FreePort(t)))
}

// imageVersion is the version the test stamps into the image's binary.
const imageVersion = "v0.0.0-image-test"

func TestContainerImage(t *testing.T) {
	testbed.Require(t)
	pm := newPodman(t)
	id := randomHex(4)

	// The build context of the release container file.
	ctxDir := t.TempDir()
	bin := build(t, "s3seal-release", ".", []string{"CGO_ENABLED=0"}, "-trimpath", "-ldflags=-s -w -X main.buildVersion="+imageVersion)
	copyFile(t, bin, filepath.Join(ctxDir, "s3seal"), 0o755)
	copyFile(t, "/etc/ssl/certs/ca-certificates.crt", filepath.Join(ctxDir, "ca-certificates.crt"), 0o644)
	if err := os.Mkdir(filepath.Join(ctxDir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	image := "localhost/s3seal:" + id
	start := time.Now()
	// Docker's image format keeps HEALTHCHECK (OCI's has no field for it).
	pm.must(t, "build", "--quiet", "--format", "docker", "-t", image, "-f", "docker/Dockerfile.release", ctxDir)
	t.Cleanup(func() { pm.run(t, "rmi", "-f", image) })
	t.Logf("image built in %v", time.Since(start).Round(time.Millisecond))
	size, _ := strconv.ParseInt(pm.must(t, "image", "inspect", "--format", "{{.Size}}", image), 10, 64)
	t.Logf("image size: %d bytes (%.1f MiB); binary %d bytes", size, float64(size)/(1<<20), fileSize(t, bin))
	if size <= 0 || size > 64<<20 {
		t.Errorf("image size %d: want a small scratch image", size)
	}
	var inspected []struct {
		Config struct {
			User       string
			Env        []string
			Entrypoint []string
			Cmd        []string
			Volumes    map[string]struct{}
		}
		Healthcheck *struct{ Test []string }
	}
	if err := json.Unmarshal([]byte(pm.must(t, "image", "inspect", image)), &inspected); err != nil || len(inspected) != 1 {
		t.Fatalf("image inspect: %v", err)
	}
	if c, hc := inspected[0].Config, inspected[0].Healthcheck; c.User != "65532:65532" || hc == nil || strings.Join(hc.Test, " ") != "CMD /s3seal healthcheck" ||
		strings.Join(c.Entrypoint, " ") != "/s3seal" || strings.Join(c.Cmd, " ") != "serve" {
		t.Fatalf("image configuration: %+v, health check %+v", c, hc)
	}
	if out := pm.must(t, "run", "--rm", "--network", "host", "--ulimit", "host", "--read-only", image, "version"); out != "s3seal "+imageVersion {
		t.Errorf("s3seal version in the image: %q, want s3seal %s", out, imageVersion)
	}

	// The store, and s3seal's configuration: a file and a key ring,
	// mounted read-only and readable by user 65532 only.
	minio := testbed.StartMinIO(t, testbed.MinIOOptions{TLS: true})
	minio.CreateBucket(t, "sealed")
	confDir := t.TempDir()
	os.Chmod(confDir, 0o755)
	ring := filepath.Join(confDir, "keyring")
	if _, err := local.Create(ring, rand.Reader, time.Now()); err != nil {
		t.Fatal(err)
	}
	copyFile(t, minio.CAFile, filepath.Join(confDir, "store-ca.pem"), 0o644)
	secretA, secretB := randomHex(16), randomHex(16)
	confFile := filepath.Join(confDir, "s3seal.yaml")
	writeConf := func(withB bool) {
		doc := fmt.Sprintf(`mode: envelope
keys: local:/etc/s3seal/keyring
clients:
  - {name: app, access_key_id: app, secret_access_key: %q}
`, secretA)
		if withB {
			doc += fmt.Sprintf("  - {name: other, access_key_id: other, secret_access_key: %q}\n", secretB)
		}
		doc += fmt.Sprintf(`upstream:
  endpoint: %s
  region: us-east-1
  access_key_id: %s
  secret_access_key: %q
  ca_bundle: /etc/s3seal/store-ca.pem
limits:
  shutdown_timeout: 10s
`, minio.Endpoint, minio.AccessKey, minio.SecretKey)
		// Rewritten in place: a bind mount follows the inode.
		f, err := os.OpenFile(confFile, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o400)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(doc)
		f.Close()
	}
	writeConf(false)
	for _, f := range []string{ring, confFile} {
		if err := os.Chown(f, 65532, 65532); err != nil {
			t.Fatal(err)
		}
		os.Chmod(f, 0o400)
	}

	volume := "s3seal-data-" + id
	pm.must(t, "volume", "create", volume)
	t.Cleanup(func() { pm.run(t, "volume", "rm", "-f", volume) })
	listen, admin := freeLoopback(t), freeLoopback(t)
	name := "s3seal-" + id
	start = time.Now()
	pm.must(t, "run", "-d", "--name", name,
		"--network", "host", "--ulimit", "host",
		"--read-only", "--user", "65532:65532", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
		"-v", volume+":/var/lib/s3seal",
		"-v", confDir+":/etc/s3seal:ro",
		// On the host's network, the listeners stay on loopback.
		"-e", "S3SEAL_LISTEN="+listen, "-e", "S3SEAL_ADMIN_LISTEN="+admin,
		image, "serve", "--config", "/etc/s3seal/s3seal.yaml")
	t.Cleanup(func() {
		if t.Failed() {
			logs := pm.logs(t, name)
			t.Logf("container log:\n%s", redact(logs, secretA, secretB, minio.SecretKey))
		}
		pm.run(t, "rm", "-f", "-t", "0", name)
	})
	ready := waitReady(t, "http://"+admin+"/readyz", 30*time.Second)
	t.Logf("container start to ready: %v (podman run included)", ready.Sub(start).Round(time.Millisecond))

	// The self-signed certificate went to the data volume.
	mount := pm.must(t, "volume", "inspect", "--format", "{{.Mountpoint}}", volume)
	caFile := filepath.Join(mount, "tls", "self-signed.crt")
	if _, err := os.Stat(caFile); err != nil {
		t.Fatalf("no certificate in the data volume: %v", err)
	}

	client := func(ak, sk string) *s3.Client {
		return s3.New(s3.Options{
			Region: "us-east-1", BaseEndpoint: aws.String("https://" + listen), UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider(ak, sk, ""),
			HTTPClient:  testbed.SDKHTTPClient(t, caFile),
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	app := client("app", secretA)
	plain := bytes.Repeat([]byte("sealed in a container. "), 20000) // 460 KB: several chunks
	start = time.Now()
	if _, err := app.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("sealed"), Key: aws.String("dir/object.txt"), Body: bytes.NewReader(plain)}); err != nil {
		t.Fatalf("PUT through the container: %v", err)
	}
	putTook := time.Since(start)
	start = time.Now()
	got := getObject(ctx, t, app, "sealed", "dir/object.txt")
	getTook := time.Since(start)
	if !bytes.Equal(got, plain) {
		t.Fatalf("GET through the container returned %d other bytes", len(got))
	}
	t.Logf("in-container PUT %d bytes in %v, GET in %v: identical", len(plain), putTook.Round(time.Millisecond), getTook.Round(time.Millisecond))
	stored := getObject(ctx, t, minio.Client(t), "sealed", "dir/object.txt")
	if bytes.Contains(stored, plain[:64]) || len(stored) <= len(plain) {
		t.Fatalf("the store holds %d bytes with plaintext in them", len(stored))
	}

	// The image's HEALTHCHECK command, run by podman in the container.
	if out, err := pm.run(t, "healthcheck", "run", name); err != nil {
		t.Fatalf("HEALTHCHECK: %v %s", err, out)
	}
	if out := pm.must(t, "exec", name, "/s3seal", "healthcheck", "--ready"); !strings.Contains(out, "200 OK") {
		t.Fatalf("healthcheck --ready: %q", out)
	}

	// SIGHUP: a second client from the edited file, without a restart.
	if _, err := client("other", secretB).ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("sealed")}); err == nil {
		t.Fatal("client other accepted before it was configured")
	}
	writeConf(true)
	pm.must(t, "kill", "--signal", "HUP", name)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := client("other", secretB).ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("sealed")})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("client other still refused 10 s after SIGHUP: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := getObject(ctx, t, client("other", secretB), "sealed", "dir/object.txt"); !bytes.Equal(got, plain) {
		t.Fatal("GET after reload differs")
	}
	if state := pm.must(t, "inspect", "--format", "{{.State.Status}} {{.RestartCount}}", name); state != "running 0" {
		t.Fatalf("after SIGHUP the container is %q", state)
	}

	// SIGTERM: a graceful stop with exit status 0.
	start = time.Now()
	pm.must(t, "stop", "-t", "30", name)
	stopTook := time.Since(start)
	code := pm.must(t, "inspect", "--format", "{{.State.ExitCode}}", name)
	logs := pm.logs(t, name)
	t.Logf("SIGTERM: stopped in %v, exit status %s", stopTook.Round(time.Millisecond), code)
	if code != "0" || stopTook > 20*time.Second {
		t.Fatalf("stop: exit status %s after %v", code, stopTook)
	}
	for _, want := range []string{`"msg":"s3seal started"`, `"version":"` + imageVersion + `"`, `"msg":"configuration reloaded"`, `"msg":"shutting down"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("container log lacks %s", want)
		}
	}
	for _, s := range []string{secretA, secretB, minio.SecretKey} {
		if strings.Contains(logs, s) {
			t.Error("a secret is in the container log")
		}
	}

	// The store-side metadata, read with the same configuration outside the
	// container (as an operator recovering data would).
	t.Run("inspect from the store", func(t *testing.T) {
		hostDir := t.TempDir()
		hostConf := filepath.Join(hostDir, "s3seal.yaml")
		// The operator's own copy of the key ring: s3seal refuses a key
		// ring another user owns (the container's belongs to 65532).
		hostRing := filepath.Join(hostDir, "keyring")
		rb, err := os.ReadFile(ring)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(hostRing, rb, 0o600); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(confFile)
		b = bytes.ReplaceAll(b, []byte("/etc/s3seal/keyring"), []byte(hostRing))
		b = bytes.ReplaceAll(b, []byte("/etc/s3seal/"), []byte(confDir+"/"))
		os.WriteFile(hostConf, b, 0o600)
		cmd := exec.Command(bin, "inspect", "--config", hostConf, "--bucket", "sealed", "--key", "dir/object.txt")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "plaintext size:  "+strconv.Itoa(len(plain))+" bytes") || !strings.Contains(string(out), "key provider:    local") {
			t.Fatalf("inspect: %v\n%s", err, out)
		}
		cmd = exec.Command(bin, "decrypt", "--config", hostConf, "--bucket", "sealed", "--key", "dir/object.txt", "-")
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		if err := cmd.Run(); err != nil || !bytes.Equal(o.Bytes(), plain) {
			t.Fatalf("decrypt from the store: %v %s", err, e.String())
		}
	})
}

func fileSize(t *testing.T, p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func getObject(ctx context.Context, t *testing.T, c *s3.Client, bucket, key string) []byte {
	t.Helper()
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GET %s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitReady polls url until it answers 200 and returns when it did.
func waitReady(t *testing.T, url string, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	for time.Now().Before(deadline) {
		if resp, err := hc.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now()
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("%s not ready within %v", url, within)
	return time.Time{}
}

func redact(s string, secrets ...string) string {
	for _, x := range secrets {
		if x != "" {
			s = strings.ReplaceAll(s, x, "[REDACTED]")
		}
	}
	return s
}
