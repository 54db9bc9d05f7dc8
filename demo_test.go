package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader in other
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls buf until it contains want.
func waitFor(t *testing.T, buf *syncBuffer, want string, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if s := buf.String(); strings.Contains(s, want) {
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %q within %v in:\n%s", want, within, buf.String())
	return ""
}

// TestDemoCheck runs "s3seal demo --check": s3seal in envelope mode in front
// of the embedded store, a round trip through it, and a look at the store;
// then it exits, and says so rather than "running".
func TestDemoCheck(t *testing.T) {
	dir := t.TempDir()
	addr, err := freeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := demo(ctx, []string{"--dir", dir, "--listen", addr, "--check"}, &stdout, &stderr); code != 0 {
		t.Fatalf("demo --check exited %d:\n%s\n%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	if !strings.Contains(out, "self-check passed") || !strings.Contains(out, "https://"+addr) || !strings.Contains(out, "demo/self-check.txt") || !strings.Contains(out, "has stopped") {
		t.Fatalf("unexpected output:\n%s", out)
	}
	for _, wrong := range []string{"is running", "Ctrl-C"} {
		if strings.Contains(out, wrong) {
			t.Errorf("--check output says %q although the demo exits:\n%s", wrong, out)
		}
	}
	st, err := os.Stat(filepath.Join(dir, "keyring"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key ring: %v %v", err, st)
	}
	stored, err := os.ReadFile(filepath.Join(dir, "store", "buckets", "demo", "self-check.txt"))
	if err != nil || bytes.Contains(stored, []byte("s3seal demo self-check")) {
		t.Fatalf("stored file: %v (plaintext present: %v)", err, bytes.Contains(stored, []byte("s3seal demo self-check")))
	}
}

var secretLine = regexp.MustCompile(`secret access key  ([0-9a-f]+)`)

// startDemo runs "s3seal demo" until the test ends and returns its output
// once it serves.
func startDemo(t *testing.T, dir, addr string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- demo(ctx, []string{"--dir", dir, "--listen", addr}, &stdout, &stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("demo did not stop")
		}
	})
	return waitFor(t, &stdout, "Press Ctrl-C to stop.", 30*time.Second)
}

// TestDemoServes: the demo's secret stays the same across restarts (it is
// kept in the demo's folder), and the commands it prints to read the
// store-side metadata and decrypt without s3seal work.
func TestDemoServes(t *testing.T) {
	dir := t.TempDir()
	addr, err := freeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	var secret string
	t.Run("first start", func(t *testing.T) {
		out := startDemo(t, dir, addr)
		m := secretLine.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no secret in:\n%s", out)
		}
		secret = m[1]
		for _, want := range []string{
			"stays the same when the demo\nrestarts",
			"s3seal wrote demo/self-check.txt",
			"inspect --config " + filepath.Join(displayPath(dir), "s3seal.yaml") + " --bucket demo --key hello.txt",
			"decrypt --config ",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		st, err := os.Stat(filepath.Join(dir, "s3seal.yaml"))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("s3seal.yaml: %v %v", err, st)
		}
		// The printed commands, on the self-check's object.
		conf := filepath.Join(dir, "s3seal.yaml")
		var o, e bytes.Buffer
		if code := offline("inspect", []string{"--config", conf, "--bucket", "demo", "--key", "self-check.txt"}, nil, &o, &e); code != 0 {
			t.Fatalf("inspect exited %d: %s", code, e.String())
		}
		if !strings.Contains(o.String(), "key provider:    local") || !strings.Contains(o.String(), "single PUT") {
			t.Fatalf("inspect:\n%s", o.String())
		}
		o.Reset()
		e.Reset()
		if code := offline("decrypt", []string{"--config", conf, "--bucket", "demo", "--key", "self-check.txt", "-"}, nil, &o, &e); code != 0 {
			t.Fatalf("decrypt exited %d: %s", code, e.String())
		}
		if !strings.HasPrefix(o.String(), "s3seal demo self-check ") {
			t.Fatalf("decrypted %q", o.String())
		}
	})
	t.Run("restart keeps the secret", func(t *testing.T) {
		out := startDemo(t, dir, addr)
		if m := secretLine.FindStringSubmatch(out); m == nil || m[1] != secret {
			t.Fatalf("secret changed across restarts: %v", m)
		}
	})
}

// TestDemoPortInUse: a port clash names the flag that picks another port.
func TestDemoPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var stdout, stderr bytes.Buffer
	code := demo(context.Background(), []string{"--dir", t.TempDir(), "--listen", ln.Addr().String()}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), ln.Addr().String()+" is already in use") || !strings.Contains(stderr.String(), "another address with --listen") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
}
