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

	Generates, Decrypts, Rewraps atomic.Int64
}

var _ keys.Provider = (*Provider)(nil)

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
func (p *Provider) Calls() int64 { return p.Generates.Load() + p.Decrypts.Load() + p.Rewraps.Load() }

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
