// Package keystest provides an in-memory keys.Provider for tests: it wraps
// data keys under per-name test master keys, counts calls, and can be told
// to fail. It is not for production use: its master keys are derived from
// their names.
package keystest

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/s3seal/s3seal/crypto/keys"
)

// Provider is a fake key provider. Configure it before use; its counters
// and Fail are safe to use concurrently.
type Provider struct {
	// Kind is the Name it reports: keys.KindLocal if empty.
	Kind string
	// Active is the key id that wraps new keys: "test-key" if empty.
	Active string
	// Allowed are further key ids that may unwrap.
	Allowed []string
	// Rand is the source of data keys and nonces: crypto/rand if nil
	// (then nonces come from cipher.NewGCMWithRandomNonce, so the fake
	// works in FIPS 140-only mode).
	Rand io.Reader
	// WrappedSize, if above the natural 60 bytes, pads every wrapped key
	// to that size with authenticated filler, as a post-quantum recipient's
	// wrapping (about 1.2 KB) would be.
	WrappedSize int

	mu   sync.Mutex
	fail error

	Generates, Decrypts, Rewraps, Wraps atomic.Int64
}

var (
	_ keys.Provider = (*Provider)(nil)
	_ keys.Wrapper  = (*Provider)(nil)
)

// SetFail makes every following call fail with err (nil to stop failing).
func (p *Provider) SetFail(err error) {
	p.mu.Lock()
	p.fail = err
	p.mu.Unlock()
}

func (p *Provider) failure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fail
}

// Calls returns the total number of provider calls.
func (p *Provider) Calls() int64 {
	return p.Generates.Load() + p.Decrypts.Load() + p.Rewraps.Load() + p.Wraps.Load()
}

// Wrap implements keys.Wrapper.
func (p *Provider) Wrap(ctx context.Context, key *[keys.DataKeySize]byte) (keys.WrappedKey, error) {
	p.Wraps.Add(1)
	if err := p.failure(); err != nil {
		return keys.WrappedKey{}, err
	}
	if err := ctx.Err(); err != nil {
		return keys.WrappedKey{}, err
	}
	return p.wrap(key[:])
}

// Name implements keys.Provider.
func (p *Provider) Name() string {
	if p.Kind == "" {
		return keys.KindLocal
	}
	return p.Kind
}

func (p *Provider) active() string {
	if p.Active == "" {
		return "test-key"
	}
	return p.Active
}

func (p *Provider) random() io.Reader {
	if p.Rand == nil {
		return rand.Reader
	}
	return p.Rand
}

func blockFor(id string) cipher.Block {
	k := sha256.Sum256([]byte("keystest master key " + id))
	b, _ := aes.NewCipher(k[:])
	return b
}

// padding returns the filler of a wrapped key of the configured size.
func (p *Provider) padding() []byte {
	n := p.WrappedSize - 60
	if n <= 0 {
		return nil
	}
	pad := make([]byte, n)
	for i := range pad {
		pad[i] = byte(i)
	}
	return pad
}

func (p *Provider) allowed(id string) bool {
	if id == p.active() {
		return true
	}
	for _, a := range p.Allowed {
		if a == id {
			return true
		}
	}
	return false
}

func (p *Provider) wrap(key []byte) (keys.WrappedKey, error) {
	pad := p.padding()
	ad := append([]byte(p.active()), pad...)
	var out []byte
	if p.Rand == nil {
		a, err := cipher.NewGCMWithRandomNonce(blockFor(p.active()))
		if err != nil {
			return keys.WrappedKey{}, err
		}
		out = a.Seal(nil, nil, key, ad)
	} else {
		nonce := make([]byte, 12)
		if _, err := io.ReadFull(p.Rand, nonce); err != nil {
			return keys.WrappedKey{}, err
		}
		a, err := cipher.NewGCM(blockFor(p.active()))
		if err != nil {
			return keys.WrappedKey{}, err
		}
		out = a.Seal(nonce, nonce, key, ad)
	}
	return keys.WrappedKey{KeyID: p.active(), Ciphertext: append(out, pad...)}, nil
}

// GenerateDataKey implements keys.Provider.
func (p *Provider) GenerateDataKey(ctx context.Context) (keys.DataKey, error) {
	p.Generates.Add(1)
	if err := p.failure(); err != nil {
		return keys.DataKey{}, err
	}
	if err := ctx.Err(); err != nil {
		return keys.DataKey{}, err
	}
	var dk keys.DataKey
	if _, err := io.ReadFull(p.random(), dk.Plaintext[:]); err != nil {
		return keys.DataKey{}, err
	}
	w, err := p.wrap(dk.Plaintext[:])
	dk.WrappedKey = w
	return dk, err
}

// Decrypt implements keys.Provider.
func (p *Provider) Decrypt(ctx context.Context, wrapped []byte, keyID string) ([keys.DataKeySize]byte, error) {
	p.Decrypts.Add(1)
	var out [keys.DataKeySize]byte
	if err := p.failure(); err != nil {
		return out, err
	}
	if err := ctx.Err(); err != nil {
		return out, err
	}
	if !p.allowed(keyID) {
		return out, &keys.UnknownKeyError{Provider: p.Name(), KeyID: keyID}
	}
	if len(wrapped) < 60 {
		return out, &keys.UnwrapError{Provider: p.Name(), KeyID: keyID}
	}
	a, err := cipher.NewGCMWithRandomNonce(blockFor(keyID))
	if err != nil {
		return out, err
	}
	pt, err := a.Open(nil, nil, wrapped[:60], append([]byte(keyID), wrapped[60:]...))
	if err != nil || len(pt) != keys.DataKeySize {
		return out, &keys.UnwrapError{Provider: p.Name(), KeyID: keyID, Err: errors.New("tag mismatch")}
	}
	copy(out[:], pt)
	return out, nil
}

// Rewrap implements keys.Provider.
func (p *Provider) Rewrap(ctx context.Context, wrapped []byte, keyID string) (keys.WrappedKey, error) {
	p.Rewraps.Add(1)
	p.Decrypts.Add(-1) // the inner Decrypt is part of this call
	k, err := p.Decrypt(ctx, wrapped, keyID)
	if err != nil {
		return keys.WrappedKey{}, err
	}
	return p.wrap(k[:])
}

// Wrapping is a provider that can also wrap keys made elsewhere (every
// provider s3seal has but AWS KMS clients without Encrypt).
type Wrapping interface {
	keys.Provider
	keys.Wrapper
}

// CheckRoundTrips checks a provider against the contract of keys.Provider:
// a generated key unwraps to itself; rotated, a provider whose active key
// is another and whose allow-list still holds the first, rewraps it under
// its active key, and both unwrap it; Wrap of a key made elsewhere
// unwraps; and a flip of any byte of a wrapped key is an
// *keys.UnwrapError. It returns the generated key.
func CheckRoundTrips(t testing.TB, p, rotated Wrapping) keys.DataKey {
	t.Helper()
	ctx := context.Background()
	dk, err := p.GenerateDataKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.Decrypt(ctx, dk.Ciphertext, dk.KeyID); err != nil || got != dk.Plaintext {
		t.Fatalf("round trip: %v", err)
	}
	w, err := rotated.Rewrap(ctx, dk.Ciphertext, dk.KeyID)
	if err != nil || w.KeyID == dk.KeyID {
		t.Fatalf("rewrap: key %q, %v", w.KeyID, err)
	}
	if got, err := rotated.Decrypt(ctx, w.Ciphertext, w.KeyID); err != nil || got != dk.Plaintext {
		t.Fatalf("rewrapped key: %v", err)
	}
	var k [keys.DataKeySize]byte
	k[0], k[31] = 7, 9
	w2, err := p.Wrap(ctx, &k)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.Decrypt(ctx, w2.Ciphertext, w2.KeyID); err != nil || got != k {
		t.Fatalf("Wrap round trip: %v", err)
	}
	var unwrap *keys.UnwrapError
	for i := range dk.Ciphertext {
		bad := append([]byte(nil), dk.Ciphertext...)
		bad[i] ^= 0x01
		if _, err := p.Decrypt(ctx, bad, dk.KeyID); !errors.As(err, &unwrap) {
			t.Fatalf("wrapped key with byte %d flipped: %v", i, err)
		}
	}
	return dk
}

// CheckConcurrent has workers goroutines generate and unwrap n keys each
// through p at once, and fails on any error or wrong key.
func CheckConcurrent(t testing.TB, p keys.Provider, workers, n int) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < n; j++ {
				dk, err := p.GenerateDataKey(ctx)
				if err == nil {
					var got [keys.DataKeySize]byte
					if got, err = p.Decrypt(ctx, dk.Ciphertext, dk.KeyID); err == nil && got != dk.Plaintext {
						err = errors.New("keystest: unwrapped another key")
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

// BenchmarkWrapUnwrap measures Wrap and Decrypt of p from GOMAXPROCS
// goroutines.
func BenchmarkWrapUnwrap(b *testing.B, p Wrapping) {
	ctx := context.Background()
	dk, err := p.GenerateDataKey(ctx)
	if err != nil {
		b.Fatal(err)
	}
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
