package secretfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "s")
	os.WriteFile(f, []byte("12345"), 0o600)
	if b, err := Read(f, 5, "secret"); err != nil || string(b) != "12345" {
		t.Fatalf("%q %v", b, err)
	}
	if _, err := Read(f, 4, "secret"); err == nil || !strings.Contains(err.Error(), "larger than 4") {
		t.Fatalf("oversized: %v", err)
	}
	if _, err := Read(dir, 5, "secret"); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("directory: %v", err)
	}
	os.Chmod(f, 0o604)
	if _, err := Read(f, 5, "secret"); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable: %v", err)
	}
	os.Chmod(f, 0o400)
	l := filepath.Join(dir, "l")
	os.Symlink(f, l)
	if _, err := Read(l, 5, "secret"); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("symlink: %v", err)
	}
	if os.Geteuid() == 0 {
		os.Chown(f, 65534, 65534)
		if _, err := Read(f, 5, "secret"); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
			t.Fatalf("foreign owner: %v", err)
		}
	}
}
