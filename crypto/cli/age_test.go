package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/crypto/keys/keyspec"
)

func TestKeygenAge(t *testing.T) {
	dir := t.TempDir()
	tool := Tool{Now: func() time.Time { return time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC) }}
	id := filepath.Join(dir, "reader.key")
	r := run(tool.Keygen, nil, "--age", "-o", id)
	recipient := strings.TrimSpace(r.stdout)
	if r.code != 0 || !strings.HasPrefix(recipient, "age1pq1") || strings.Contains(recipient, "\n") || r.stderr != "" {
		t.Fatalf("%d %.20q %q", r.code, r.stdout, r.stderr)
	}
	content, _ := os.ReadFile(id)
	if fi, _ := os.Stat(id); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o", fi.Mode().Perm())
	}
	if !strings.HasPrefix(string(content), "# created: 2026-01-02T00:00:00Z\n# public key: "+recipient+"\nAGE-SECRET-KEY-PQ-1") {
		t.Fatalf("identity file %.60q", content)
	}
	secret := strings.Split(strings.TrimSpace(string(content)), "\n")[2]
	if strings.Contains(r.stdout+r.stderr, secret[20:]) {
		t.Fatal("keygen printed the secret key")
	}
	if r := run(tool.Keygen, nil, "--age", "-o", id); r.code != 1 || !strings.Contains(r.stderr, "exists") {
		t.Fatalf("overwrite: %+v", r)
	}
	if after, _ := os.ReadFile(id); string(after) != string(content) {
		t.Fatal("identity file changed")
	}

	// What keygen prints is a recipients file line: a write-only provider
	// wraps to it and the identity file unwraps.
	rcpts := writeFile(t, dir, "recipients.txt", []byte("# readers\n"+r.stdout))
	ctx := context.Background()
	w, err := keyspec.OpenString(ctx, "age:"+rcpts, keyspec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dk, err := w.GenerateDataKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := keyspec.OpenString(ctx, "age:identity="+id, keyspec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if k, err := rd.Decrypt(ctx, dk.Ciphertext, dk.KeyID); err != nil || k != dk.Plaintext {
		t.Fatalf("unwrap: %v", err)
	}

	x := filepath.Join(dir, "x.key")
	r = run(tool.Keygen, nil, "--age", "--classical", "-o", x)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "age1") || strings.HasPrefix(r.stdout, "age1pq1") || !strings.Contains(r.stderr, "warning") || !strings.Contains(r.stderr, "allow_classical") {
		t.Fatalf("classical: %+v", r)
	}
	for _, args := range [][]string{{"--age"}, {"--age", "--append", x}, {"--classical", "-o", filepath.Join(dir, "ring")}, {"--age", "-o", x, "more"}} {
		if r := run(tool.Keygen, nil, args...); r.code != 2 || r.stderr == "" {
			t.Fatalf("usage %v: %+v", args, r)
		}
	}
}

func TestDecryptIdentity(t *testing.T) {
	dir := t.TempDir()
	o := makeObject(t, dir, [][]byte{[]byte("hello")}, false)
	meta := writeFile(t, dir, "m.json", []byte(o.metaJSON))
	in := writeFile(t, dir, "o.ct", o.ct)
	id := filepath.Join(dir, "id.key")
	if r := run(Keygen, nil, "--age", "-o", id); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	args := []string{"--metadata", meta, "--bucket", "bkt", "--key", "a/b.txt"}
	// The identity builds an age provider; this version 1 object's data
	// key was wrapped by a key ring, which the message names.
	r := run(Decrypt, nil, append(args, "--identity", id, in, filepath.Join(dir, "out"))...)
	if r.code != 1 || !strings.Contains(r.stderr, "key provider local, but age is configured") {
		t.Fatalf("--identity: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Fatal("output written")
	}
	r = run(Decrypt, nil, append(args, "--keys", "age:identity="+id, in, "-")...)
	if r.code != 1 || !strings.Contains(r.stderr, "age is configured") {
		t.Fatalf("--keys age:identity=: %+v", r)
	}
	os.Chmod(id, 0o644)
	if r := run(Decrypt, nil, append(args, "--identity", id, in, "-")...); r.code != 1 || !strings.Contains(r.stderr, "chmod 600") {
		t.Fatalf("loose identity file: %+v", r)
	}
	bad := writeFile(t, dir, "bad.key", []byte("# not a key\nage1pq1xyz\n"))
	if r := run(Decrypt, nil, append(args, "--identity", bad, in, "-")...); r.code != 1 || !strings.Contains(r.stderr, "line 2 is a recipient") {
		t.Fatalf("recipient as identity: %+v", r)
	}
	for _, extra := range [][]string{{"--identity", id, "--keys", o.ringSpec}, {"--identity", ""}} {
		if r := run(Decrypt, nil, append(append(args, extra...), in, "-")...); r.code != 2 {
			t.Fatalf("usage %v: %+v", extra, r)
		}
	}
	// The key ring still decrypts, as before.
	if r := run(Decrypt, nil, append(args, "--keys", o.ringSpec, in, "-")...); r.code != 0 || r.stdout != "hello" {
		t.Fatalf("key ring: %+v", r)
	}
}
