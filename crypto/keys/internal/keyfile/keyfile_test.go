package keyfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadAndCreate(t *testing.T) {
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
	if b, err := Read(path, "key ring", true, 7); err != nil || string(b) != "secret\n" {
		t.Fatalf("read: %q %v", b, err)
	}
	if _, err := Read(path, "key ring", true, 6); err == nil || !strings.Contains(err.Error(), "larger than 6 bytes") {
		t.Fatalf("over the limit: %v", err)
	}
	os.Chmod(path, 0o604)
	if _, err := Read(path, "key ring", true, 100); err == nil || !strings.Contains(err.Error(), "key ring "+path+" has mode 0604") {
		t.Fatalf("loose secret: %v", err)
	}
	if _, err := Read(path, "recipients file", false, 100); err != nil {
		t.Fatalf("public file with a loose mode: %v", err)
	}
	if _, err := Read(dir, "key ring", false, 100); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("directory: %v", err)
	}
	if _, err := Read(filepath.Join(dir, "none"), "key ring", false, 100); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
}
