package local

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/crypto/keys"
)

func entry(name string, seed byte) string {
	return name + ":" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{seed}, 32))
}

func TestParse(t *testing.T) {
	text := "# comment\n\n" + entry("old-1", 1) + "\n  " + entry("mid.2", 2) + ", " + entry("new_3", 3) + "\r\n"
	k, err := Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(k.Names(), " "); got != "new_3 mid.2 old-1" {
		t.Fatalf("Names() = %s", got)
	}
	if k.Active() != "new_3" {
		t.Fatalf("Active() = %s", k.Active())
	}
	secret := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	for name, bad := range map[string]string{
		"empty":          "# nothing\n",
		"no colon":       "abc",
		"bad name":       "-x:" + secret,
		"long name":      strings.Repeat("a", 65) + ":" + secret,
		"slash in name":  "a/b:" + secret,
		"short key":      "a:" + base64.StdEncoding.EncodeToString(make([]byte, 31)),
		"unpadded":       "a:" + strings.TrimRight(secret, "="),
		"not base64":     "a:" + strings.Repeat("!", 44),
		"duplicate name": entry("a", 1) + "\n" + entry("a", 2),
	} {
		_, err := Parse([]byte(bad))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "Bwc") {
			t.Errorf("%s: error shows key material: %v", name, err)
		}
	}
}

func TestLoadRefusesLooseModes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ring")
	if err := os.WriteFile(path, []byte(entry("k", 1)), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("group-readable key ring: %v", err)
	}
	os.Chmod(path, 0o604)
	if _, err := Load(path); err == nil {
		t.Fatal("world-readable key ring accepted")
	}
	os.Chmod(path, 0o600)
	if _, err := Load(path); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o400)
	if _, err := Load(path); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil {
		t.Fatal("directory accepted")
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestCreateAppend(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ring")
	now := time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)
	name, err := Create(path, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(name, "s3seal-20261127-") || ValidateName(name) != nil {
		t.Fatalf("name %q", name)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o", fi.Mode().Perm())
	}
	before, _ := os.ReadFile(path)
	if _, err := Create(path, nil, now); !errors.Is(err, ErrExists) {
		t.Fatalf("overwrite: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("Create modified an existing file")
	}
	name2, err := Append(path, nil, now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	k, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := k.Names(); len(got) != 2 || got[0] != name2 || got[1] != name {
		t.Fatalf("names %v", got)
	}
	// Objects wrapped before the rotation still open.
	p1 := NewProvider(mustParse(t, before), Config{})
	dk, _ := p1.GenerateDataKey(context.Background())
	p2 := NewProvider(k, Config{})
	if got, err := p2.Decrypt(context.Background(), dk.Ciphertext, dk.KeyID); err != nil || got != dk.Plaintext {
		t.Fatalf("old key after rotation: %v", err)
	}
	dk2, _ := p2.GenerateDataKey(context.Background())
	if dk2.KeyID != name2 {
		t.Fatalf("new data keys wrapped under %q", dk2.KeyID)
	}
}

func mustParse(t *testing.T, b []byte) *Keyring {
	k, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestLoadEnv(t *testing.T) {
	env := map[string]string{EnvVar: entry("a", 1) + "," + entry("b", 2)}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	k, err := LoadEnv(EnvVar, lookup)
	if err != nil || k.Active() != "b" {
		t.Fatalf("%v", err)
	}
	if _, err := LoadEnv("NOPE", lookup); err == nil || !strings.Contains(err.Error(), "NOPE") {
		t.Fatalf("unset variable: %v", err)
	}
}

func TestProvider(t *testing.T) {
	ctx := context.Background()
	ring := mustParse(t, []byte(entry("a", 1)+"\n"+entry("b", 2)))
	p := NewProvider(ring, Config{})
	dk, err := p.GenerateDataKey(ctx)
	if err != nil || dk.KeyID != "b" || len(dk.Ciphertext) != WrappedSize {
		t.Fatalf("%+v %v", dk.WrappedKey, err)
	}
	got, err := p.Decrypt(ctx, dk.Ciphertext, dk.KeyID)
	if err != nil || got != dk.Plaintext {
		t.Fatal("round trip failed")
	}
	var unknown *keys.UnknownKeyError
	if _, err := p.Decrypt(ctx, dk.Ciphertext, "c"); !errors.As(err, &unknown) {
		t.Fatalf("unknown key: %v", err)
	}
	var unwrap *keys.UnwrapError
	// The same wrapped key under the other name of the ring (name in AAD).
	if _, err := p.Decrypt(ctx, dk.Ciphertext, "a"); !errors.As(err, &unwrap) {
		t.Fatalf("wrong name: %v", err)
	}
	// Another key ring with a key of the same name.
	other := NewProvider(mustParse(t, []byte(entry("b", 9))), Config{})
	if _, err := other.Decrypt(ctx, dk.Ciphertext, "b"); !errors.As(err, &unwrap) {
		t.Fatalf("wrong key ring: %v", err)
	}
	for i := range dk.Ciphertext {
		bad := append([]byte(nil), dk.Ciphertext...)
		bad[i] ^= 0x20
		if _, err := p.Decrypt(ctx, bad, "b"); !errors.As(err, &unwrap) {
			t.Fatalf("flip %d: %v", i, err)
		}
	}
	if _, err := p.Decrypt(ctx, dk.Ciphertext[:WrappedSize-1], "b"); !errors.As(err, &unwrap) {
		t.Fatal("short wrapped key accepted")
	}
	// Rewrap under the active key after rotation.
	old := NewProvider(mustParse(t, []byte(entry("a", 1))), Config{})
	odk, _ := old.GenerateDataKey(ctx)
	w, err := p.Rewrap(ctx, odk.Ciphertext, odk.KeyID)
	if err != nil || w.KeyID != "b" {
		t.Fatalf("rewrap: %+v %v", w, err)
	}
	if got, err := p.Decrypt(ctx, w.Ciphertext, w.KeyID); err != nil || got != odk.Plaintext {
		t.Fatal("rewrapped key differs")
	}
	if _, err := p.Rewrap(ctx, odk.Ciphertext, "zzz"); !errors.As(err, &unknown) {
		t.Fatal("rewrap from an unknown key accepted")
	}
}

func TestDeriveSSECKey(t *testing.T) {
	ring := mustParse(t, []byte(entry("a", 1)+"\n"+entry("b", 2)))
	seen := map[[32]byte]string{}
	for _, c := range [][3]string{
		{"a", "bucket", "key"}, {"b", "bucket", "key"}, {"a", "bucket2", "key"}, {"a", "bucket", "key2"},
		{"a", "ab", "c"}, {"a", "a", "bc"}, // length prefixes keep these apart
	} {
		k, err := ring.DeriveSSECKey(c[0], c[1], c[2])
		if err != nil {
			t.Fatal(err)
		}
		if prev, dup := seen[k]; dup {
			t.Fatalf("%v and %s share an SSE-C key", c, prev)
		}
		seen[k] = strings.Join(c[:], "/")
		again, _ := ring.DeriveSSECKey(c[0], c[1], c[2])
		if again != k {
			t.Fatal("not deterministic")
		}
	}
	if _, err := ring.DeriveSSECKey("zzz", "b", "k"); err == nil {
		t.Fatal("unknown master accepted")
	}
}

func TestLoadRefusesSymlinksAndForeignOwners(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "ring")
	if err := os.WriteFile(real, []byte(entry("k", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(link); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("symlinked key ring: %v", err)
	}
	before, _ := os.ReadFile(real)
	if _, err := Append(link, nil, time.Now()); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("append through a symlink: %v", err)
	}
	if after, _ := os.ReadFile(real); !bytes.Equal(before, after) {
		t.Fatal("append through a symlink wrote to its target")
	}
	if os.Geteuid() != 0 {
		t.Log("not root: the foreign-owner case needs chown and is checked by the root CI run")
		return
	}
	if err := os.Chown(real, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(real); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Fatalf("key ring of another user: %v", err)
	}
	if _, err := Append(real, nil, time.Now()); err == nil {
		t.Fatal("append to another user's key ring accepted")
	}
	if after, _ := os.ReadFile(real); !bytes.Equal(before, after) {
		t.Fatal("append to another user's key ring wrote")
	}
}

func TestAppendRefusesLooseModeWithoutWriting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ring")
	if err := os.WriteFile(path, []byte(entry("k", 1)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Append(path, nil, time.Now()); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("append to a world-readable key ring: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != entry("k", 1)+"\n" {
		t.Fatal("append wrote to a key ring it refused")
	}
	// A ring that does not parse is refused before anything is written.
	os.WriteFile(path, []byte("not a key ring"), 0o600)
	if _, err := Append(path, nil, time.Now()); err == nil {
		t.Fatal("append to a broken key ring accepted")
	}
	if b, _ := os.ReadFile(path); string(b) != "not a key ring" {
		t.Fatal("append wrote to a broken key ring")
	}
}
