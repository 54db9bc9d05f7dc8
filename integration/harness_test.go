package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/integration/testbed"
)

// Servers shared by the package's tests, started once in TestMain.
var (
	shared struct {
		bin   string            // the s3seal binary under test
		minio *testbed.S3Server // MinIO with TLS and a KMS key
		vgw   *testbed.S3Server // versitygw, plain HTTP
		ca    *testbed.CA       // signs s3seal's certificates in files mode
	}
)

func TestMain(m *testing.M) {
	os.Exit(testbed.RunMain(m, func(tb testing.TB) {
		testbed.Require(tb)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			shared.bin = buildS3seal(tb)
		}()
		shared.ca = testbed.NewCA(tb, "s3seal integration")
		shared.minio = testbed.StartMinIO(tb, testbed.MinIOOptions{TLS: true, KMS: true})
		shared.vgw = testbed.StartVersitygw(tb)
		wg.Wait()
		if shared.bin == "" {
			tb.Fatal("s3seal binary was not built")
		}
	}))
}

// buildS3seal compiles the s3seal binary once for the package.
func buildS3seal(tb testing.TB) string {
	dir, err := os.MkdirTemp("", "s3seal-bin-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	out := filepath.Join(dir, "s3seal")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Errorf("go build: %v\n%s", err, b)
		return ""
	}
	return out
}

// upstreams are the S3 servers the core behaviour is checked against.
func upstreams() []*testbed.S3Server { return []*testbed.S3Server{shared.minio, shared.vgw} }

// proxy is a running s3seal process.
type proxy struct {
	*testbed.Process
	Endpoint   string // https://127.0.0.1:PORT or http://
	Admin      string // http://127.0.0.1:PORT
	AccessKey  string
	SecretKey  string
	CAFile     string // "" for plain HTTP
	Upstream   *testbed.S3Server
	DataDir    string
	listenPort int
}

// proxyOptions chooses how startProxy runs s3seal.
type proxyOptions struct {
	// TLS is "files" (certificate from shared.ca, default) or "off".
	TLS string
	// Env adds or overrides environment variables.
	Env map[string]string
}

// startProxy runs s3seal in front of up and waits until it is ready.
func startProxy(t testing.TB, up *testbed.S3Server, o proxyOptions) *proxy {
	t.Helper()
	p := &proxy{
		AccessKey:  "client-" + randHex(4),
		SecretKey:  "secret-" + randHex(16),
		Upstream:   up,
		DataDir:    t.TempDir(),
		listenPort: testbed.FreePort(t),
	}
	admin := testbed.FreePort(t)
	env := map[string]string{
		"S3SEAL_LISTEN":                   "127.0.0.1:" + strconv.Itoa(p.listenPort),
		"S3SEAL_ADMIN_LISTEN":             "127.0.0.1:" + strconv.Itoa(admin),
		"S3SEAL_DATA_DIR":                 p.DataDir,
		"S3SEAL_CLIENT_ACCESS_KEY_ID":     p.AccessKey,
		"S3SEAL_CLIENT_SECRET_ACCESS_KEY": p.SecretKey,
		// The suite's client sets up buckets (versioning, object lock)
		// as well as using them; the default permissions of a client
		// are covered by the adversarial suite.
		"S3SEAL_CLIENT_ADMIN":   "true",
		"AWS_ENDPOINT_URL_S3":   up.Endpoint,
		"AWS_REGION":            up.Region,
		"AWS_ACCESS_KEY_ID":     up.AccessKey,
		"AWS_SECRET_ACCESS_KEY": up.SecretKey,
		"AWS_CA_BUNDLE":         up.CAFile,
		"HOME":                  p.DataDir,
		"S3SEAL_LOG_LEVEL":      "debug",
	}
	switch o.TLS {
	case "", "files":
		dir := t.TempDir()
		p.CAFile = shared.ca.WriteFiles(t, dir, "ca.pem", "cert.pem", "key.pem", "127.0.0.1", "localhost")
		env["S3SEAL_TLS"] = "files"
		env["S3SEAL_TLS_CERT"] = filepath.Join(dir, "cert.pem")
		env["S3SEAL_TLS_KEY"] = filepath.Join(dir, "key.pem")
		p.Endpoint = "https://127.0.0.1:" + strconv.Itoa(p.listenPort)
	case "off":
		env["S3SEAL_TLS"] = "off"
		p.Endpoint = "http://127.0.0.1:" + strconv.Itoa(p.listenPort)
	default:
		t.Fatalf("unknown TLS option %q", o.TLS)
	}
	for k, v := range o.Env {
		env[k] = v
	}
	var kv []string
	for k, v := range env {
		if v != "" {
			kv = append(kv, k+"="+v)
		}
	}
	p.Admin = "http://127.0.0.1:" + strconv.Itoa(admin)
	p.Process = testbed.StartProcess(t, shared.bin, kv, "serve")
	testbed.WaitHTTP(t, p.Admin+"/healthz", "", 20*time.Second)
	waitReady(t, p.Admin+"/readyz", 20*time.Second)
	return p
}

func waitReady(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("s3seal not ready after %v: %d %s", timeout, resp.StatusCode, b)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("s3seal not ready after %v: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Client returns an aws-sdk-go-v2 client of s3seal with the settings
// config.LoadDefaultConfig gives: checksums on every upload that supports
// them (CRC32, which over HTTPS goes in an aws-chunked trailer) and
// checksum validation of responses. s3.New alone would leave both unset.
func (p *proxy) Client(t testing.TB, optFns ...func(*s3.Options)) *s3.Client {
	t.Helper()
	return s3.New(s3.Options{
		Region:                     "us-east-1",
		BaseEndpoint:               aws.String(p.Endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(p.AccessKey, p.SecretKey, ""),
		HTTPClient:                 testbed.SDKHTTPClient(t, p.CAFile),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,
	}, optFns...)
}

// cliEnv is the environment for the AWS CLI, s3cmd and similar tools
// talking to s3seal.
func (p *proxy) cliEnv(t testing.TB) []string {
	home := t.TempDir()
	env := []string{
		"AWS_ACCESS_KEY_ID=" + p.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + p.SecretKey,
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=" + filepath.Join(home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"),
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
	}
	if p.CAFile != "" {
		env = append(env, "AWS_CA_BUNDLE="+p.CAFile)
	}
	return env
}

// runCLI runs the AWS CLI against s3seal and returns its stdout.
func (p *proxy) runCLI(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "aws", append([]string{"--endpoint-url", p.Endpoint}, args...)...)
	cmd.Env = p.cliEnv(t)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("aws %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// randBytes returns n random bytes.
func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// newBucket creates a uniquely named bucket directly on the upstream.
func newBucket(t testing.TB, up *testbed.S3Server) string {
	t.Helper()
	name := "t-" + strings.ToLower(randHex(6))
	up.CreateBucket(t, name)
	return name
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return c
}

// getBytes reads a whole object with client c.
func getBytes(t testing.TB, c *s3.Client, bucket, key string, optFns ...func(*s3.GetObjectInput)) []byte {
	t.Helper()
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	for _, f := range optFns {
		f(in)
	}
	out, err := c.GetObject(ctx(t), in)
	if err != nil {
		t.Fatalf("GetObject %s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("GetObject %s/%s body: %v", bucket, key, err)
	}
	return b
}

// objectExists reports whether the object exists directly on the upstream.
func objectExists(t testing.TB, up *testbed.S3Server, bucket, key string) bool {
	t.Helper()
	_, err := up.Client(t).HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err == nil {
		return true
	}
	if strings.Contains(err.Error(), "NotFound") || strings.Contains(err.Error(), "404") {
		return false
	}
	t.Fatalf("HeadObject %s/%s directly: %v", bucket, key, err)
	return false
}

func must(t testing.TB, err error, what ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprint(what...), err)
	}
}

func x509Pool(t testing.TB, pem []byte) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificates in PEM")
	}
	return pool
}
