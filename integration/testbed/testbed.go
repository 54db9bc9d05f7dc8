// Package testbed starts the real servers that s3seal's integration tests run
// against — MinIO, versitygw, local-kms, Pebble and PyKMIP — as child
// processes on free 127.0.0.1 ports, and stops them when the test ends; it
// also initialises SoftHSM2 tokens (a library, not a server) in temporary
// directories and builds p11spy, a PKCS#11 module that counts the calls
// reaching such a token.
//
// # Installing
//
// The binaries are not built by the tests. ./integration/testbed/install.sh
// installs pinned versions into a cache directory outside the repository
// (see [BinDir]) and ./integration/run.sh runs it before the suite.
//
// # Enabling
//
// Integration tests run only when S3SEAL_INTEGRATION=1. A test calls
// [Require] first: without the variable the test is skipped; with it, a
// missing binary or a server that does not come up fails the test with the
// command to run, and never skips it.
//
// # Contracts
//
//   - Every server binds 127.0.0.1 only, on a port chosen at start, and keeps
//     its data in a fresh directory under the test's TempDir.
//   - Credentials are random for every start. They are never logged: process
//     output shown on failure has the values of secret-looking environment
//     variables replaced by "[REDACTED]" (see [StartProcess]).
//   - Readiness waits are bounded; a server that exits while starting fails
//     the test at once with the tail of its output.
//   - Start functions register a Cleanup that stops the server (SIGTERM, then
//     SIGKILL after a grace period) and waits for it; child processes also
//     get SIGKILL if the test binary dies (Linux parent-death signal), so no
//     process outlives the test.
//   - SDK clients are built explicitly (static credentials, explicit region,
//     endpoint and CA); nothing reads the machine's AWS_* environment, and
//     the servers do not inherit AWS_*, MINIO_*, VGW_*, KMS_* or PEBBLE_*
//     variables.
//
// # Servers shared by a whole package
//
// Every function takes a testing.TB. To start servers once for a package in
// TestMain, use [RunMain], which hands setup a [MainTB]: a testing.TB whose
// Cleanup functions run after all tests of the package, whose Fatal makes the
// package fail, and whose Skip (as called by [Require] when the suite is not
// enabled) lets the tests run without the servers:
//
//	var minio *testbed.S3Server
//
//	func TestMain(m *testing.M) {
//		os.Exit(testbed.RunMain(m, func(tb testing.TB) {
//			testbed.Require(tb)
//			minio = testbed.StartMinIO(tb, testbed.MinIOOptions{TLS: true, KMS: true})
//		}))
//	}
//
// Each test then calls testbed.Require(t) before using minio.
package testbed

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

const (
	// EnvIntegration enables the integration suite when set to "1".
	EnvIntegration = "S3SEAL_INTEGRATION"
	// EnvBin names the directory holding the installed binaries.
	EnvBin = "S3SEAL_TESTBED_BIN"
	// EnvDir names the cache root whose bin/ holds the binaries.
	EnvDir = "S3SEAL_TESTBED_DIR"

	// Region is the AWS region every server and client here uses.
	Region = "us-east-1"

	skipMessage = "integration test: run ./integration/run.sh (or S3SEAL_INTEGRATION=1 go test ./integration/...)"
	installHint = "run ./integration/testbed/install.sh (or ./integration/run.sh)"
)

// Enabled reports whether the integration suite was asked for
// (S3SEAL_INTEGRATION=1).
func Enabled() bool { return os.Getenv(EnvIntegration) == "1" }

// Require skips the test when the integration suite is not enabled, with the
// message "integration test: run ./integration/run.sh (or
// S3SEAL_INTEGRATION=1 go test ./integration/...)". When it is enabled,
// Require does nothing: failures to start servers later fail the test.
func Require(t testing.TB) {
	t.Helper()
	if !Enabled() {
		t.Skip(skipMessage)
	}
}

// BinDir returns the directory holding the installed test bed binaries:
// $S3SEAL_TESTBED_BIN, else $S3SEAL_TESTBED_DIR/bin, else
// ~/.cache/s3seal-testbed/bin (with $XDG_CACHE_HOME replacing ~/.cache when
// set, as install.sh does).
func BinDir() string {
	if d := os.Getenv(EnvBin); d != "" {
		return d
	}
	if d := os.Getenv(EnvDir); d != "" {
		return filepath.Join(d, "bin")
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = "/root"
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "s3seal-testbed", "bin")
}

// FreePort returns a TCP port on 127.0.0.1 that was free when asked. Another
// process may take it before it is used; the servers started here fail loudly
// in that case rather than serve on another port.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatalf("testbed: free port: %v", err)
	}
	return p
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// freePorts returns n distinct free ports, holding each open until all are
// chosen so that none is returned twice.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testbed: free port: %v", err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// WaitHTTP polls url with GET until it answers with any status, or fails
// the test when timeout passes. caFile, if not empty, is a PEM file of the
// CA to trust for an https URL (otherwise the system roots are used).
func WaitHTTP(t testing.TB, url string, caFile string, timeout time.Duration) {
	t.Helper()
	client, err := httpClient(caFile)
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	if err := waitHTTP(client, url, timeout, nil, anyStatus); err != nil {
		t.Fatalf("testbed: %v", err)
	}
}

func anyStatus(int) bool { return true }

// waitHTTP polls url until ok(status) holds, the timeout passes, or exited
// (if not nil) is closed.
func waitHTTP(client *http.Client, url string, timeout time.Duration, exited <-chan struct{}, ok func(int) bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for {
		status, err := get(ctx, client, url)
		if err == nil && ok(status) {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("status %d", status)
		}
		if ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer within %v (last: %v)", url, timeout, last)
		case <-exited:
			return fmt.Errorf("process exited while waiting for %s (last: %v)", url, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func get(ctx context.Context, client *http.Client, url string) (int, error) {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// HTTPClient returns an HTTP client for loopback servers that trusts only
// the CA in caFile ("" keeps the system roots) and never uses a proxy.
func HTTPClient(t testing.TB, caFile string) *http.Client {
	t.Helper()
	c, err := httpClient(caFile)
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	return c
}

// httpClient returns a client for loopback servers that trusts the CA in
// caFile ("" for the system roots) and never uses a proxy.
func httpClient(caFile string) (*http.Client, error) {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSHandshakeTimeout: 5 * time.Second,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
	if caFile != "" {
		pool, err := loadPool(caFile)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

func loadPool(caFile string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("no certificate in CA file " + caFile)
	}
	return pool, nil
}

// randomString returns n random characters from alphabet.
func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

const (
	upperDigits  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	secretLetter = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
)

// newCredentials returns a random access key (20 characters) and secret key
// (40 characters) shaped like AWS's.
func newCredentials() (accessKey, secretKey string) {
	return "S3SEAL" + randomString(14, upperDigits), randomString(40, secretLetter)
}

// urlPort returns the port of an absolute URL, 0 if it names none.
func urlPort(raw string) int {
	u, err := url.Parse(raw)
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(u.Port())
	return p
}
