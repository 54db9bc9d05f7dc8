package local

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"io"

	"github.com/s3seal/s3seal/crypto/keys"
)

// Config configures a Provider. The zero value gives the defaults.
type Config struct {
	// Rand is the source of data keys and wrapping nonces. nil means
	// crypto/rand.Reader for data keys and, for nonces, the random source
	// inside Go's cryptographic module (cipher.NewGCMWithRandomNonce, the
	// only AES-GCM encryption FIPS 140-only mode allows). Tests inject a
	// fixed reader for test vectors; wrapping then needs cipher.NewGCM.
	Rand io.Reader
}

// Provider is a keys.Provider over a Keyring. Its allow-list is the key
// ring: any key in it can unwrap, only the active one wraps.
type Provider struct {
	ring   *Keyring
	rand   io.Reader
	nonces io.Reader // nil: the module draws wrapping nonces
}

var _ keys.Provider = (*Provider)(nil)

// NewProvider returns a Provider over ring.
func NewProvider(ring *Keyring, cfg Config) *Provider {
	if cfg.Rand == nil {
		return &Provider{ring: ring, rand: rand.Reader}
	}
	return &Provider{ring: ring, rand: cfg.Rand, nonces: cfg.Rand}
}

// Keyring returns the provider's key ring.
func (p *Provider) Keyring() *Keyring { return p.ring }

// Name returns "local".
func (p *Provider) Name() string { return keys.KindLocal }

const (
	wrapVersion = 0x01
	// WrappedSize is the size of a wrapped data key.
	WrappedSize = 1 + 12 + keys.DataKeySize + 16
)

func wrapAAD(name string) []byte { return append([]byte{wrapVersion}, name...) }

// GenerateDataKey returns a random data key wrapped under the active key.
func (p *Provider) GenerateDataKey(context.Context) (keys.DataKey, error) {
	return keys.NewDataKey(p.rand, p.wrap)
}

func (p *Provider) wrap(key *[keys.DataKeySize]byte) (keys.WrappedKey, error) {
	mk := p.ring.keys[len(p.ring.keys)-1]
	out := make([]byte, 1, WrappedSize)
	out[0] = wrapVersion
	if p.nonces == nil {
		out = mk.kek.Seal(out, nil, key[:], wrapAAD(mk.name))
		return keys.WrappedKey{KeyID: mk.name, Ciphertext: out}, nil
	}
	out = out[:13]
	if _, err := io.ReadFull(p.nonces, out[1:13]); err != nil {
		return keys.WrappedKey{}, fmt.Errorf("local: reading randomness: %w", err)
	}
	a, err := cipher.NewGCM(mk.kekBlock)
	if err != nil {
		return keys.WrappedKey{}, fmt.Errorf("local: chosen nonces are not available here: %w", err)
	}
	out = a.Seal(out, out[1:13], key[:], wrapAAD(mk.name))
	return keys.WrappedKey{KeyID: mk.name, Ciphertext: out}, nil
}

// Decrypt unwraps a data key wrapped under the key named keyID. A name not
// in the key ring is a *keys.UnknownKeyError; a wrapped key that does not
// authenticate (another key ring's key of the same name, altered bytes) is
// a *keys.UnwrapError.
func (p *Provider) Decrypt(_ context.Context, wrapped []byte, keyID string) ([keys.DataKeySize]byte, error) {
	var out [keys.DataKeySize]byte
	mk := p.ring.lookup(keyID)
	if mk == nil {
		return out, &keys.UnknownKeyError{Provider: keys.KindLocal, KeyID: keyID}
	}
	if len(wrapped) != WrappedSize || wrapped[0] != wrapVersion {
		return out, &keys.UnwrapError{Provider: keys.KindLocal, KeyID: keyID}
	}
	pt, err := mk.kek.Open(out[:0], nil, wrapped[1:], wrapAAD(mk.name))
	if err != nil || len(pt) != keys.DataKeySize {
		clear(out[:])
		return out, &keys.UnwrapError{Provider: keys.KindLocal, KeyID: keyID}
	}
	return out, nil
}

// Wrap wraps a data key made elsewhere under the active key.
func (p *Provider) Wrap(_ context.Context, key *[keys.DataKeySize]byte) (keys.WrappedKey, error) {
	return p.wrap(key)
}

// Rewrap unwraps and wraps again under the active key.
func (p *Provider) Rewrap(ctx context.Context, wrapped []byte, keyID string) (keys.WrappedKey, error) {
	key, err := p.Decrypt(ctx, wrapped, keyID)
	if err != nil {
		return keys.WrappedKey{}, err
	}
	defer clear(key[:])
	return p.wrap(&key)
}
