package uploadkey

import (
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func noEnv(string) (string, bool) { return "", false }

// newKey returns the text of a new upload key file.
func newKey() []byte {
	var k [Size]byte
	rand.Read(k[:])
	return []byte(base64.StdEncoding.EncodeToString(k[:]) + "\n")
}

func TestGenerateOnceAndReuse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	a, err := Load("", dir, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Generated || a.Source != filepath.Join(dir, DefaultFile) {
		t.Fatalf("%+v", a)
	}
	fi, err := os.Stat(a.Source)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	b, err := Load("", dir, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if b.Generated || *b.Keys[0] != *a.Keys[0] || a.ID() != b.ID() {
		t.Fatal("the generated key was not reused")
	}
	if err := os.Chmod(a.Source, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load("", dir, noEnv); err == nil {
		t.Fatal("a group-readable key file was accepted")
	}
}

func TestFileAndEnv(t *testing.T) {
	k1, k2 := newKey(), newKey()
	path := filepath.Join(t.TempDir(), "uk")
	if err := os.WriteFile(path, []byte("# current\n"+string(k1)+"\n# old\n"+string(k2)), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path, "", noEnv)
	if err != nil || len(f.Keys) != 2 {
		t.Fatalf("%v %v", f, err)
	}
	env := func(n string) (string, bool) {
		return strings.TrimSpace(string(k1)) + "," + strings.TrimSpace(string(k2)), n == "UK"
	}
	e, err := Load("env:UK", "", env)
	if err != nil || len(e.Keys) != 2 || *e.Keys[0] != *f.Keys[0] || *e.Keys[1] != *f.Keys[1] {
		t.Fatalf("%v %v", e, err)
	}
	if _, err := Load("env:NOPE", "", env); err == nil {
		t.Fatal("an unset variable was accepted")
	}
	for _, bad := range []string{"", "# only a comment\n", "c2hvcnQ=\n", "not base64!\n"} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path, "", noEnv)
		if err == nil {
			t.Fatalf("%q accepted", bad)
		}
		if strings.Contains(err.Error(), "not base64") {
			t.Fatalf("the error shows the file's text: %v", err)
		}
	}
}
