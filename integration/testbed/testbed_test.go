package testbed

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRequire(t *testing.T) {
	for _, tc := range []struct {
		value string
		skip  bool
	}{{"", true}, {"0", true}, {"true", true}, {"1", false}} {
		t.Setenv(EnvIntegration, tc.value)
		tb := NewMainTB("require")
		ok := tb.Do(func(tb testing.TB) { Require(tb) })
		if !ok || tb.Skipped() != tc.skip {
			t.Errorf("%s=%q: ok %v, skipped %v; want skipped %v", EnvIntegration, tc.value, ok, tb.Skipped(), tc.skip)
		}
		if tc.skip && !strings.Contains(tb.Logs(), "./integration/run.sh") {
			t.Errorf("skip message %q does not say what to run", tb.Logs())
		}
		tb.Close()
	}
}

func TestBinDir(t *testing.T) {
	t.Setenv(EnvBin, "")
	t.Setenv(EnvDir, "")
	t.Setenv("XDG_CACHE_HOME", "/x/cache")
	if got, want := BinDir(), "/x/cache/s3seal-testbed/bin"; got != want {
		t.Errorf("default: %q, want %q", got, want)
	}
	t.Setenv(EnvDir, "/x/root")
	if got, want := BinDir(), "/x/root/bin"; got != want {
		t.Errorf("%s: %q, want %q", EnvDir, got, want)
	}
	t.Setenv(EnvBin, "/x/bin")
	if got, want := BinDir(), "/x/bin"; got != want {
		t.Errorf("%s: %q, want %q", EnvBin, got, want)
	}
}

func TestFreePorts(t *testing.T) {
	ports := freePorts(t, 5)
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("ports %v: want 5 distinct positive ports", ports)
		}
		seen[p] = true
		ln, err := net.Listen("tcp", loopback(p))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		ln.Close()
	}
}

func TestCA(t *testing.T) {
	ca := NewCA(t, "")
	other := NewCA(t, "other")
	certPEM, keyPEM := ca.IssueCert(t, "127.0.0.1", "localhost")
	blk, rest := pem.Decode(certPEM)
	if blk == nil {
		t.Fatal("no PEM certificate")
	}
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := pem.Decode(rest); b == nil || !strings.Contains(string(certPEM), string(ca.CertPEM)) {
		t.Error("chain does not carry the CA certificate after the leaf")
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Errorf("certificate and key do not match: %v", err)
	}
	for _, tc := range []struct {
		name string
		pool *x509.CertPool
		ok   bool
	}{
		{"127.0.0.1", ca.Pool(), true},
		{"localhost", ca.Pool(), true},
		{"127.0.0.2", ca.Pool(), false},
		{"example.com", ca.Pool(), false},
		{"localhost", other.Pool(), false},
	} {
		_, err := leaf.Verify(x509.VerifyOptions{DNSName: tc.name, Roots: tc.pool})
		if (err == nil) != tc.ok {
			t.Errorf("verify for %s: err %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

func TestCAServesTLS(t *testing.T) {
	ca := NewCA(t, "")
	dir := t.TempDir()
	caFile := ca.WriteFiles(t, dir, "ca.pem", "sub/cert.pem", "sub/key.pem", "127.0.0.1")
	if st, err := os.Stat(filepath.Join(dir, "sub/key.pem")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v", err, st.Mode())
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes fail on purpose below
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.TLSCertificate(t, "127.0.0.1")}}
	srv.StartTLS()
	defer srv.Close()

	WaitHTTP(t, srv.URL, caFile, 5*time.Second)

	// A client trusting another CA must not get through.
	otherFile := NewCA(t, "other").WriteFiles(t, t.TempDir(), "ca.pem", "c.pem", "k.pem", "127.0.0.1")
	c, err := httpClient(otherFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitHTTP(c, srv.URL, 300*time.Millisecond, nil, anyStatus); err == nil {
		t.Error("a client trusting another CA reached the server")
	}
}

func TestWaitHTTP(t *testing.T) {
	c, err := httpClient("")
	if err != nil {
		t.Fatal(err)
	}
	// Nothing listens: the wait times out, bounded.
	url := "http://" + loopback(FreePort(t)) + "/"
	start := time.Now()
	if err := waitHTTP(c, url, 300*time.Millisecond, nil, anyStatus); err == nil {
		t.Error("waitHTTP succeeded with nothing listening")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("waitHTTP took %v for a 300ms timeout", d)
	}
	// A closed exit channel ends the wait at once.
	exited := make(chan struct{})
	close(exited)
	start = time.Now()
	if err := waitHTTP(c, url, time.Minute, exited, anyStatus); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Errorf("waitHTTP with an exited process: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("waitHTTP took %v after the process exited", d)
	}
	// A status the caller does not accept keeps it waiting.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	if err := waitHTTP(c, srv.URL, 300*time.Millisecond, nil, ok200); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("waitHTTP for 200 against a 503: %v", err)
	}
	if err := waitHTTP(c, srv.URL, time.Second, nil, anyStatus); err != nil {
		t.Errorf("waitHTTP for any status against a 503: %v", err)
	}
}

func TestMainTB(t *testing.T) {
	tb := NewMainTB("main")
	var order []int
	var dir string
	ok := tb.Do(func(tb testing.TB) {
		tb.Cleanup(func() { order = append(order, 1) })
		tb.Cleanup(func() { order = append(order, 2) })
		dir = tb.TempDir()
		tb.Logf("hello %d", 42)
	})
	if !ok || tb.Failed() {
		t.Fatalf("Do: ok %v, failed %v", ok, tb.Failed())
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("TempDir gone before Close: %v", err)
	}
	if tb.Context().Err() != nil {
		t.Fatal("context canceled before Close")
	}
	reached := false
	if tb.Do(func(tb testing.TB) {
		tb.Fatalf("stop here")
		reached = true
	}) {
		t.Error("Do after Fatal reported ok")
	}
	if reached {
		t.Error("Fatal did not end the function")
	}
	if tb.Close() {
		t.Error("Close of a failed MainTB reported ok")
	}
	if len(order) != 2 || order[0] != 2 || order[1] != 1 {
		t.Errorf("cleanups ran in order %v, want [2 1]", order)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("TempDir after Close: %v", err)
	}
	if tb.Context().Err() == nil {
		t.Error("context not canceled by Close")
	}
	if logs := tb.Logs(); !strings.Contains(logs, "main: hello 42") || !strings.Contains(logs, "stop here") {
		t.Errorf("logs %q", logs)
	}

	panicky := NewMainTB("panic")
	if panicky.Do(func(testing.TB) { panic("boom") }) || !strings.Contains(panicky.Logs(), "boom") {
		t.Errorf("a panic in Do was not reported as a failure: %q", panicky.Logs())
	}
	panicky.Close()
}

func TestStartProcessMissingBinary(t *testing.T) {
	t.Setenv(EnvBin, t.TempDir())
	tb := NewMainTB("missing")
	if tb.Do(func(tb testing.TB) { StartProcess(tb, "s3seal-no-such-binary", nil) }) {
		t.Fatal("StartProcess of a missing binary did not fail")
	}
	tb.Close()
	if !strings.Contains(tb.Logs(), "install.sh") {
		t.Errorf("failure %q does not say what to run", tb.Logs())
	}
}

// shell starts sh with script; it prints "started" and then the PID of a
// background child, and on SIGTERM prints "term" and exits.
func shell(t testing.TB, env []string) *Process {
	t.Helper()
	script := `trap 'echo term; exit 0' TERM
echo "started $$"
sleep 300 &
echo "child $!"
echo "secret=$S3SEAL_TEST_SECRET region=${AWS_REGION:-unset} plain=$S3SEAL_TEST_PLAIN"
while :; do sleep 0.05; done`
	return StartProcess(t, "/bin/sh", env, "-c", script)
}

// waitLog waits until the process's log holds n lines starting with prefix.
func waitLog(t *testing.T, p *Process, prefix string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var lines []string
		for _, l := range strings.Split(p.Log(), "\n") {
			if strings.HasPrefix(l, prefix) {
				lines = append(lines, l)
			}
		}
		if len(lines) >= n {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("log has %d %q lines, want %d:\n%s", len(lines), prefix, n, p.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func childPID(t *testing.T, line string) int {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimPrefix(line, "child "))
	if err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	return pid
}

func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && !strings.HasPrefix(strings.TrimSpace(string(b[i+1:])), "Z")
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for running(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestProcessLifecycle(t *testing.T) {
	t.Setenv("AWS_REGION", "eu-west-3")
	const secret = "s3seal-secret-value-1234"
	p := shell(t, []string{"S3SEAL_TEST_SECRET=" + secret, "S3SEAL_TEST_PLAIN=visible"})

	waitLog(t, p, "started", 1)
	child := childPID(t, waitLog(t, p, "child", 1)[0])
	env := waitLog(t, p, "secret=", 1)[0]
	if want := "secret=[REDACTED] region=unset plain=visible"; env != want {
		t.Errorf("environment line %q, want %q", env, want)
	}
	if strings.Contains(p.Log(), secret) {
		t.Error("Log shows the secret")
	}
	raw, _ := os.ReadFile(p.LogPath())
	if !strings.Contains(string(raw), secret) {
		t.Error("raw log lost the output (redaction must apply only when shown)")
	}

	// Stop: SIGTERM reaches the shell, which exits; its background child
	// dies with the process group.
	first := p.PID()
	p.Stop(t)
	if p.Running() {
		t.Fatal("running after Stop")
	}
	waitLog(t, p, "term", 1)
	waitGone(t, child)

	// Restart: a new process, same log.
	p.Restart(t)
	if p.PID() == first || p.PID() == 0 {
		t.Errorf("restart PID %d, first %d", p.PID(), first)
	}
	waitLog(t, p, "started", 2)
	child = childPID(t, waitLog(t, p, "child", 2)[1])

	// Kill: no SIGTERM handler runs.
	p.Kill(t)
	if p.Running() {
		t.Fatal("running after Kill")
	}
	if n := len(waitLog(t, p, "term", 1)); n != 1 {
		t.Errorf("%d term lines after Kill, want 1", n)
	}
	waitGone(t, child)
	p.Stop(t) // stopping an exited process is a no-op
}

func TestProcessCleanupStops(t *testing.T) {
	var pid, child int
	t.Run("inner", func(t *testing.T) {
		p := shell(t, nil)
		waitLog(t, p, "started", 1)
		child = childPID(t, waitLog(t, p, "child", 1)[0])
		pid = p.PID()
	})
	waitGone(t, pid)
	waitGone(t, child)
}

func TestChildEnv(t *testing.T) {
	t.Setenv("AWS_CA_BUNDLE", "/etc/ssl/x.pem")
	t.Setenv("MINIO_ROOT_USER", "someone")
	t.Setenv("S3SEAL_TESTBED_KEEP", "yes")
	env := strings.Join(childEnv([]string{"MINIO_BROWSER=off"}), "\n")
	for _, bad := range []string{"AWS_CA_BUNDLE=", "MINIO_ROOT_USER="} {
		if strings.Contains(env, bad) {
			t.Errorf("child environment keeps %s", bad)
		}
	}
	for _, good := range []string{"S3SEAL_TESTBED_KEEP=yes", "MINIO_BROWSER=off"} {
		if !strings.Contains(env, good) {
			t.Errorf("child environment lacks %s", good)
		}
	}
}

func TestSecretValues(t *testing.T) {
	got := secretValues([]string{
		"MINIO_ROOT_USER=S3SEALABCDEFGHIJ",
		"MINIO_ROOT_PASSWORD=pa55word-long",
		"MINIO_KMS_SECRET_KEY=name:c2VjcmV0LWJ5dGVz",
		"ROOT_ACCESS_KEY_ID=AKIDNOTSECRET",
		"ROOT_SECRET_ACCESS_KEY=verysecretkey",
		"S3SEAL_TOKEN=tok",
	})
	want := "pa55word-long|name:c2VjcmV0LWJ5dGVz|c2VjcmV0LWJ5dGVz|verysecretkey"
	if strings.Join(got, "|") != want {
		t.Errorf("secretValues = %q, want %q", strings.Join(got, "|"), want)
	}
}
