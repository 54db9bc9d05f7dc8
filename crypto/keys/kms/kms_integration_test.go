package kms_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/keyspec"
	"github.com/s3seal/s3seal/crypto/keys/kms"
	"github.com/s3seal/s3seal/integration/testbed"
)

// TestLocalKMS runs the provider against a real AWS-KMS-compatible server
// (local-kms): generate, decrypt, a wrong encryption context refused,
// ReEncrypt to a second key, and the error for an unreachable KMS.
func TestLocalKMS(t *testing.T) {
	testbed.Require(t)
	srv := testbed.StartLocalKMS(t)
	client := srv.Client(t)
	_, arn1 := srv.CreateKey(t)
	_, arn2 := srv.CreateKey(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	p1, err := kms.New(client, kms.Config{KeyIDs: []string{arn1}})
	if err != nil {
		t.Fatal(err)
	}
	dk, err := p1.GenerateDataKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if dk.KeyID != arn1 {
		t.Fatalf("stored key id %q, want %q", dk.KeyID, arn1)
	}
	t.Logf("wrapped data key: %d bytes (metadata budget allows %d)", len(dk.Ciphertext), keys.MaxWrappedSize)
	got, err := p1.Decrypt(ctx, dk.Ciphertext, dk.KeyID)
	if err != nil || got != dk.Plaintext {
		t.Fatalf("decrypt: %v", err)
	}

	// A data key generated under another encryption context (another
	// application's, or one naming an object) is refused.
	foreign, err := client.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{
		KeyId:             aws.String(arn1),
		KeySpec:           types.DataKeySpecAes256,
		EncryptionContext: map[string]string{"s3seal": "v1", "object": "bucket/key"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var unwrap *keys.UnwrapError
	if _, err := p1.Decrypt(ctx, foreign.CiphertextBlob, aws.ToString(foreign.KeyId)); !errors.As(err, &unwrap) {
		t.Fatalf("wrong context: %v", err)
	}

	// Rotation: key 2 active, key 1 still readable; ReEncrypt moves the
	// data key to key 2 without it leaving KMS.
	p2, err := kms.New(client, kms.Config{KeyIDs: []string{arn2, arn1}})
	if err != nil {
		t.Fatal(err)
	}
	w, err := p2.Rewrap(ctx, dk.Ciphertext, dk.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	if w.KeyID != arn2 {
		t.Fatalf("rewrapped under %q, want %q", w.KeyID, arn2)
	}
	if got, err := p2.Decrypt(ctx, w.Ciphertext, w.KeyID); err != nil || got != dk.Plaintext {
		t.Fatalf("decrypt after ReEncrypt: %v", err)
	}
	// Key 1 alone may not read what key 2 wraps.
	var unknown *keys.UnknownKeyError
	if _, err := p1.Decrypt(ctx, w.Ciphertext, w.KeyID); !errors.As(err, &unknown) {
		t.Fatalf("allow-list: %v", err)
	}
	// A blob of key 2 labelled as key 1 is refused by KMS.
	if _, err := p2.Decrypt(ctx, w.Ciphertext, arn1); !errors.As(err, &unwrap) {
		t.Fatalf("mislabelled blob: %v", err)
	}

	// Through keyspec.Open and the AWS default configuration, as s3seal
	// runs it (AWS_ENDPOINT_URL_KMS points the SDK at local-kms).
	t.Setenv("AWS_ENDPOINT_URL_KMS", srv.Endpoint)
	t.Setenv("AWS_REGION", srv.Region)
	t.Setenv("AWS_ACCESS_KEY_ID", "S3SEALTESTKMSACCESS")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local-kms-accepts-any-secret")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_PROFILE", "")
	p3, err := keyspec.OpenString(ctx, "aws-kms:"+arn2+","+arn1, keyspec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p3.Decrypt(ctx, dk.Ciphertext, dk.KeyID); err != nil || got != dk.Plaintext {
		t.Fatalf("keyspec provider: %v", err)
	}

	// KMS unreachable: a typed, transient error.
	srv.Stop(t)
	short, cancel2 := context.WithTimeout(ctx, 20*time.Second)
	defer cancel2()
	var unavailable *keys.UnavailableError
	if _, err := p1.GenerateDataKey(short); !errors.As(err, &unavailable) {
		t.Fatalf("unreachable KMS: %v", err)
	}
}
