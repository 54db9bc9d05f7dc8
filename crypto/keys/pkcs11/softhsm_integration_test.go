//go:build pkcs11 && cgo

package pkcs11_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3seal/s3seal/crypto/keys"
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
	c0 := spy.Counts(t)
	dk, err := p.GenerateDataKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.Decrypt(ctx, dk.Ciphertext, dk.KeyID); err != nil || got != dk.Plaintext {
		t.Fatalf("round trip: %v", err)
	}
	c1 := spy.Counts(t)
	if c1["C_Encrypt"]-c0["C_Encrypt"] != 1 || c1["C_Decrypt"]-c0["C_Decrypt"] != 1 {
		t.Fatalf("token counted %v then %v, want one C_Encrypt and one C_Decrypt", c0, c1)
	}
	var unwrap *keys.UnwrapError
	for _, i := range []int{0, 5, 20, len(dk.Ciphertext) - 1} {
		b := append([]byte(nil), dk.Ciphertext...)
		b[i] ^= 1
		if _, err := p.Decrypt(ctx, b, dk.KeyID); !errors.As(err, &unwrap) {
			t.Fatalf("flip at %d: %v", i, err)
		}
	}

	rot, err := pkcs11.Open(set, []string{"s3seal-master-2", "s3seal-master-1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rot.Close()
	w, err := rot.Rewrap(ctx, dk.Ciphertext, dk.KeyID)
	if err != nil || w.KeyID != "s3seal-master-2" {
		t.Fatalf("rewrap: %v", err)
	}
	if got, _ := rot.Decrypt(ctx, w.Ciphertext, w.KeyID); got != dk.Plaintext {
		t.Fatal("rewrapped key differs")
	}
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
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				dk, err := p.GenerateDataKey(ctx)
				if err == nil {
					var got [32]byte
					if got, err = p.Decrypt(ctx, dk.Ciphertext, dk.KeyID); err == nil && got != dk.Plaintext {
						err = errors.New("wrong key")
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
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
	ctx := context.Background()
	dk, _ := p.GenerateDataKey(ctx)
	b.Run("wrap", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := p.Wrap(ctx, &dk.Plaintext); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("unwrap", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := p.Decrypt(ctx, dk.Ciphertext, dk.KeyID); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
