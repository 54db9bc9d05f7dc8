package secretfile

import (
	"errors"
	"io/fs"
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

func TestReadPublicAndCreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k")
	if err := Create(path, []byte("secret\n")); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %04o", fi.Mode().Perm())
	}
	if err := Create(path, []byte("other\n")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("overwrote: %v", err)
	}
	if b, err := Read(path, 7, "key ring"); err != nil || string(b) != "secret\n" {
		t.Fatalf("read: %q %v", b, err)
	}
	os.Chmod(path, 0o644)
	if b, err := ReadPublic(path, 7, "recipients file"); err != nil || string(b) != "secret\n" {
		t.Fatalf("public file with a loose mode: %q %v", b, err)
	}
	if _, err := ReadPublic(path, 6, "recipients file"); err == nil || !strings.Contains(err.Error(), "larger than 6 bytes") {
		t.Fatalf("over the limit: %v", err)
	}
	if _, err := ReadPublic(dir, 100, "recipients file"); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("directory: %v", err)
	}
	if _, err := ReadPublic(filepath.Join(dir, "none"), 100, "recipients file"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
}
