package keyspec

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/age"
	"github.com/s3seal/s3seal/crypto/keys/local"
)

func TestOpenLocal(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ring")
	name, err := local.Create(path, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p, err := OpenString(ctx, "local:"+path, Options{})
	if err != nil || p.Name() != keys.KindLocal {
		t.Fatalf("file: %v", err)
	}
	dk, err := p.GenerateDataKey(ctx)
	if err != nil || dk.KeyID != name {
		t.Fatalf("generate: %v", err)
	}
	text, _ := os.ReadFile(path)
	env := map[string]string{"MY_RING": string(text)}
	pe, err := OpenString(ctx, "local:env:MY_RING", Options{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatalf("env: %v", err)
	}
	if k, err := pe.Decrypt(ctx, dk.Ciphertext, dk.KeyID); err != nil || k != dk.Plaintext {
		t.Fatal("env key ring differs from file")
	}
	os.Chmod(path, 0o644)
	if _, err := OpenString(ctx, "local:"+path, Options{}); err == nil || !strings.Contains(err.Error(), "chmod") {
		t.Fatalf("loose mode: %v", err)
	}
	if _, err := OpenString(ctx, "local:env:UNSET_FOR_SURE", Options{LookupEnv: func(string) (string, bool) { return "", false }}); err == nil {
		t.Fatal("unset variable accepted")
	}
	for _, bad := range []string{"vault:x", "local:", ""} {
		if _, err := OpenString(ctx, bad, Options{}); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

func TestOpenKMSNeedsRegion(t *testing.T) {
	for _, v := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"} {
		t.Setenv(v, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	ctx := context.Background()
	if _, err := OpenString(ctx, "aws-kms:alias/x", Options{}); err == nil || !strings.Contains(err.Error(), "region") {
		t.Fatalf("alias without a region: %v", err)
	}
	// An ARN supplies the region; building the client makes no call.
	p, err := OpenString(ctx, "aws-kms:arn:aws:kms:eu-west-1:111122223333:key/abc", Options{})
	if err != nil || p.Name() != keys.KindAWSKMS {
		t.Fatalf("ARN: %v", err)
	}
}

func TestOpenSet(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ring := filepath.Join(dir, "ring")
	if _, err := local.Create(ring, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	env := func(k string) (string, bool) {
		return map[string]string{"R": "a:" + strings.Repeat("A", 43) + "="}[k], k == "R"
	}
	// One spec: the provider itself, wrapped.
	wrapped := 0
	p, closeAll, err := OpenSet(ctx, "local:"+ring, nil, Options{}, func(p keys.Provider) keys.Provider { wrapped++; return p })
	if err != nil || wrapped != 1 || p.Name() != keys.KindLocal {
		t.Fatalf("one spec: %v (%d wrapped)", err, wrapped)
	}
	closeAll()
	if _, ok := p.(*keys.Set); ok {
		t.Fatal("a set of one")
	}
	// A bad read-only spec fails with its position, after closing what
	// was opened.
	if _, _, err := OpenSet(ctx, "local:"+ring, []string{"local:env:NOPE"}, Options{LookupEnv: env}, nil); err == nil || !strings.Contains(err.Error(), "read_keys[0]") {
		t.Fatalf("bad read-only spec: %v", err)
	}
	// Two kinds make a Set; two of one kind are refused.
	if _, _, err := OpenSet(ctx, "local:"+ring, []string{"local:env:R"}, Options{LookupEnv: env}, nil); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("two key rings: %v", err)
	}
	if _, _, err := OpenSet(ctx, "pkcs11:x", nil, Options{}, nil); err == nil {
		t.Fatal("pkcs11 without settings opened")
	}
	if _, _, err := OpenSet(ctx, "kmip:1", nil, Options{}, nil); err == nil || !strings.Contains(err.Error(), "kmip.endpoint") {
		t.Fatalf("kmip without settings: %v", err)
	}
}

func TestOpenAge(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	id, x := filepath.Join(dir, "id.txt"), filepath.Join(dir, "x.txt")
	rcpt, err := age.CreateIdentity(id, false, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	xr, err := age.CreateIdentity(x, true, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	recipients, classical := filepath.Join(dir, "recipients.txt"), filepath.Join(dir, "classical.txt")
	os.WriteFile(recipients, []byte("# backups\n"+rcpt+"\n"), 0o644)
	os.WriteFile(classical, []byte(xr+"\n"), 0o644)

	w, err := OpenString(ctx, "age:"+recipients+",name=backups", Options{})
	if err != nil || w.Name() != keys.KindAge || !keys.CapabilitiesOf(w).WriteOnly {
		t.Fatalf("write-only: %v", err)
	}
	dk, err := w.GenerateDataKey(ctx)
	if err != nil || !strings.HasPrefix(dk.KeyID, "backups-") {
		t.Fatalf("generate: %v", err)
	}
	r, err := OpenString(ctx, "age:identity="+id, Options{})
	if err != nil || keys.CapabilitiesOf(r).WriteOnly {
		t.Fatalf("identity only: %v", err)
	}
	if k, err := r.Decrypt(ctx, dk.Ciphertext, dk.KeyID); err != nil || k != dk.Plaintext {
		t.Fatalf("decrypt: %v", err)
	}
	var warned []string
	warn := func(m string) { warned = append(warned, m) }
	if _, err := OpenString(ctx, "age:"+classical, Options{Warn: warn}); err == nil || !strings.Contains(err.Error(), "allow_classical") {
		t.Fatalf("X25519 without allow_classical: %v", err)
	}
	if _, err := OpenString(ctx, "age:"+classical+",allow_classical=true", Options{Warn: warn}); err != nil || len(warned) != 1 || !strings.Contains(warned[0], "X25519") {
		t.Fatalf("X25519 with allow_classical: %v, warnings %q", err, warned)
	}
	os.Chmod(id, 0o644)
	if _, err := OpenString(ctx, "age:"+recipients+",identity="+id, Options{}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("loose identity file: %v", err)
	}
	if _, err := OpenString(ctx, "age:"+filepath.Join(dir, "missing"), Options{}); err == nil {
		t.Fatal("missing recipients file accepted")
	}
	if _, err := OpenString(ctx, "age:"+recipients+",name=a/b", Options{}); err == nil {
		t.Fatal("bad name accepted")
	}
}
