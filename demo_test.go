package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDemoCheck runs "s3seal demo --check": s3seal in envelope mode in front
// of the embedded store, a round trip through it, and a look at the store.
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
	if !strings.Contains(out, "Self-check passed") || !strings.Contains(out, "https://"+addr) {
		t.Fatalf("unexpected output:\n%s", out)
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
