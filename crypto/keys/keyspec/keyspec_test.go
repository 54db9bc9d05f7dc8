package keyspec

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/crypto/keys"
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
