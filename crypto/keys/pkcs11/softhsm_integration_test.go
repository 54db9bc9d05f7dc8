//go:build pkcs11 && cgo

package pkcs11_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/keystest"
	"github.com/s3seal/s3seal/crypto/keys/pkcs11"
	"github.com/s3seal/s3seal/integration/testbed"
)

// TestSoftHSM runs the provider against a real token (SoftHSM2 behind the
// counting p11spy module): wrap and unwrap inside the token, rotation,
// tampering refused by the token's GCM check, a wrong PIN, a token reset
// (log in again) and removal, and the calls counted at the module.
func TestSoftHSM(t *testing.T) {
	testbed.Require(t)
	hsm := testbed.NewSoftHSM(t)
	hsm.CreateKey(t, "s3seal-master-1")
	hsm.CreateKey(t, "s3seal-master-2")
	spy := hsm.NewSpy(t)
	ctx := context.Background()
	set := pkcs11.Settings{Module: spy.Module, TokenLabel: hsm.TokenLabel, PinFile: hsm.PinFile, Sessions: 4}

	// A wrong PIN is refused at once, with a message that does not show it.
	bad := set
	bad.PinFile, bad.PinEnv = "", "S3SEAL_TEST_PIN"
	t.Setenv("S3SEAL_TEST_PIN", "99999999")
	var denied *keys.AccessDeniedError
	if _, err := pkcs11.Open(bad, []string{"s3seal-master-1"}, nil); !errors.As(err, &denied) || !strings.Contains(err.Error(), "PIN") || strings.Contains(err.Error(), "99999999") {
		t.Fatalf("wrong PIN: %v", err)
	}
	if _, err := pkcs11.Open(set, []string{"no-such-key"}, nil); err == nil || !strings.Contains(err.Error(), "no-such-key") {
		t.Fatalf("missing key: %v", err)
	}

	p, err := pkcs11.Open(set, []string{"s3seal-master-1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	rot, err := pkcs11.Open(set, []string{"s3seal-master-2", "s3seal-master-1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rot.Close()
	c0 := spy.Counts(t)
	dk := keystest.CheckRoundTrips(t, p, rot)
	c1 := spy.Counts(t)
	// Generate, decrypt, Wrap, decrypt, and one decrypt per flipped byte
	// but the version byte (refused before the token) from p; rewrap
	// (decrypt and encrypt) and decrypt from rot.
	if e, d := c1["C_Encrypt"]-c0["C_Encrypt"], c1["C_Decrypt"]-c0["C_Decrypt"]; e != 3 || d != 3+len(dk.Ciphertext) {
		t.Fatalf("token counted %d C_Encrypt and %d C_Decrypt", e, d)
	}
	var unwrap *keys.UnwrapError
	if _, err := rot.Decrypt(ctx, dk.Ciphertext, "s3seal-master-2"); !errors.As(err, &unwrap) {
		t.Fatalf("wrong key: %v", err)
	}

	// A token reset closes every session and logs the user out; the
	// provider logs in again and the call succeeds.
	logins := spy.Counts(t)["C_Login"]
	spy.Reset(t)
	if got, err := p.Decrypt(ctx, dk.Ciphertext, dk.KeyID); err != nil || got != dk.Plaintext {
		t.Fatalf("after a token reset: %v", err)
	}
	if n := spy.Counts(t)["C_Login"]; n != logins+1 {
		t.Fatalf("logins %d → %d after a reset, want one more", logins, n)
	}
	// Removed: unavailable, at once; back: works.
	spy.SetDown(t, true)
	var unavail *keys.UnavailableError
	start := time.Now()
	if _, err := p.GenerateDataKey(ctx); !errors.As(err, &unavail) {
		t.Fatalf("token removed: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("removed token took %v to report", d)
	}
	spy.SetDown(t, false)
	if _, err := p.GenerateDataKey(ctx); err != nil {
		t.Fatalf("token back: %v", err)
	}

	// Concurrency through the session pool.
	keystest.CheckConcurrent(t, p, 16, 20)
}

// BenchmarkSoftHSM measures wrap and unwrap through SoftHSM2 (directly,
// without the spy): S3SEAL_INTEGRATION=1 go test -tags pkcs11 -run XXX
// -bench SoftHSM ./crypto/keys/pkcs11/
func BenchmarkSoftHSM(b *testing.B) {
	testbed.Require(b)
	hsm := testbed.NewSoftHSM(b)
	hsm.CreateKey(b, "bench")
	p, err := pkcs11.Open(pkcs11.Settings{Module: hsm.Module, TokenLabel: hsm.TokenLabel, PinFile: hsm.PinFile}, []string{"bench"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	keystest.BenchmarkWrapUnwrap(b, p)
}
