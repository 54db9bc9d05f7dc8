// Package keys defines how s3seal obtains data keys: the Provider interface
// that key providers (a local key ring, AWS KMS, age public keys) implement,
// the errors they return, key specifications ("local:…", "aws-kms:…",
// "age:…"), and Cache, a decorator that keeps unwrapped data keys and reuses
// generated ones.
//
// # Data keys
//
// A data key is a random 256-bit key that a provider generates and wraps
// under one of its master keys. Its wrapped form and the master key's id are
// stored with every object; its plaintext never is. Package envelope uses a
// data key to seal each object's own object key, so one data key can serve
// many objects: the provider's wrapping (KMS encryption context, key ring
// AAD) therefore never names an object.
//
// # Allow-lists
//
// Decrypt checks the stored key id against the master keys the provider was
// configured with before it asks anyone to unwrap, so an object's metadata
// cannot make s3seal use a key it was not configured for.
//
// # Errors
//
// Providers return the typed errors of this package: *UnknownKeyError (key
// id not in the allow-list), *UnwrapError (the wrapped key does not
// authenticate: wrong key ring, wrong context, tampered), *KeyDisabledError,
// *AccessDeniedError, *UnavailableError (network failure, throttling, or
// a failed reuse renewal) and *WriteOnlyError (a provider that holds only
// public keys was asked to unwrap). None contains key material.
//
// # Capabilities
//
// Providers differ in what they can do beyond the interface: a write-only
// provider (age recipients without an identity) never unwraps, and age's
// wrapped keys are larger than object metadata can hold. CapabilitiesOf
// tells; decorators (Cache) pass it on.
//
// Plaintext keys are never logged or put in errors.
package keys

import (
	"context"
	"fmt"
	"io"
)

// DataKeySize is the size of a data key.
const DataKeySize = 32

// Limits on what a provider may return, so that metadata stays within S3's
// limits (package envelope encodes these).
const (
	// MaxKeyIDSize is the longest master key id (a KMS key ARN is about 75
	// to 100 bytes; key ring names at most 64).
	MaxKeyIDSize = 128
	// MaxWrappedSize is the longest wrapped data key that object metadata
	// holds (a KMS ciphertext blob of a 32-byte key is about 184 bytes; a
	// key ring wrap 61). Providers whose wrapped keys may be longer say so
	// in their Capabilities.
	MaxWrappedSize = 384
)

// WrappedKey is a data key in the form that is stored: wrapped under the
// master key KeyID.
type WrappedKey struct {
	// KeyID identifies the master key: a key ring key name, a KMS key
	// ARN, or an age recipient set.
	KeyID string
	// Ciphertext is the wrapped data key.
	Ciphertext []byte
}

// DataKey is a newly generated data key with its wrapped form. The caller
// owns Plaintext and should Zero it when done.
type DataKey struct {
	Plaintext [DataKeySize]byte
	WrappedKey
}

// Zero overwrites the plaintext key.
func (k *DataKey) Zero() { clear(k.Plaintext[:]) }

// NewDataKey returns a data key read from random and wrapped by wrap, for
// providers that wrap locally (a key ring, age). The plaintext is zeroed if
// wrapping fails.
func NewDataKey(random io.Reader, wrap func(*[DataKeySize]byte) (WrappedKey, error)) (DataKey, error) {
	var dk DataKey
	if _, err := io.ReadFull(random, dk.Plaintext[:]); err != nil {
		return DataKey{}, fmt.Errorf("keys: reading randomness: %w", err)
	}
	w, err := wrap(&dk.Plaintext)
	if err != nil {
		dk.Zero()
		return DataKey{}, err
	}
	dk.WrappedKey = w
	return dk, nil
}

// Provider generates, unwraps and rewraps data keys. Implementations are
// safe for concurrent use.
type Provider interface {
	// Name is the provider's kind as stored in object metadata: "local",
	// "aws-kms" or "age".
	Name() string
	// GenerateDataKey returns a new data key wrapped under the active
	// master key.
	GenerateDataKey(ctx context.Context) (DataKey, error)
	// Decrypt unwraps a data key that was wrapped under master key keyID,
	// after checking keyID against the allow-list.
	Decrypt(ctx context.Context, wrapped []byte, keyID string) ([DataKeySize]byte, error)
	// Rewrap returns the same data key wrapped under the active master key
	// (KMS ReEncrypt; unwrap and wrap for a key ring), for key rotation
	// without touching object data. The source keyID must be allowed.
	Rewrap(ctx context.Context, wrapped []byte, keyID string) (WrappedKey, error)
}

// ForeignUnwrapper is implemented by providers that can unwrap data keys
// another program wrapped under one of their allowed master keys, with
// that program's encryption context: the Amazon S3 Encryption Client's
// KMS-wrapped keys (package s3ec). keyID is the master key that wrapped.
type ForeignUnwrapper interface {
	DecryptWithContext(ctx context.Context, wrapped []byte, encryptionContext map[string]string) (key [DataKeySize]byte, keyID string, err error)
}

// Capabilities describe what a provider can do beyond the Provider
// interface. The zero value describes the symmetric providers (local,
// aws-kms): they unwrap, and their wrapped keys fit MaxWrappedSize.
type Capabilities struct {
	// WriteOnly means the provider holds only public keys: GenerateDataKey
	// works, Decrypt and Rewrap always fail with *WriteOnlyError.
	WriteOnly bool
	// MaxWrappedSize is the longest wrapped data key the provider returns
	// or accepts. 0 means MaxWrappedSize.
	MaxWrappedSize int
}

// LargeWrappedKeys reports whether the provider's wrapped keys may be
// longer than MaxWrappedSize, so that they cannot be stored in object
// metadata and need room elsewhere (an in-body object header).
func (c Capabilities) LargeWrappedKeys() bool { return c.MaxWrappedSize > MaxWrappedSize }

// Capable is implemented by providers whose Capabilities are not the zero
// value, and by decorators, which pass on those of the provider they wrap.
type Capable interface {
	Capabilities() Capabilities
}

// CapabilitiesOf returns p's Capabilities, with MaxWrappedSize filled in:
// the zero value's for a provider that does not implement Capable.
func CapabilitiesOf(p Provider) Capabilities {
	var c Capabilities
	if cp, ok := p.(Capable); ok {
		c = cp.Capabilities()
	}
	if c.MaxWrappedSize <= 0 {
		c.MaxWrappedSize = MaxWrappedSize
	}
	return c
}

// ContextProvider is implemented by providers whose wrapping depends on a
// context beyond the key id (a KMS encryption context). Cache includes it
// in its cache keys.
type ContextProvider interface {
	EncryptionContext() map[string]string
}

// Wrapper is implemented by providers that can wrap a data key made
// elsewhere under their active master key: moving objects from one kind of
// provider to another (a key ring to an HSM) rewraps their data keys this
// way. The caller keeps ownership of key.
type Wrapper interface {
	Wrap(ctx context.Context, key *[DataKeySize]byte) (WrappedKey, error)
}

// Router is implemented by providers that front several kinds of
// provider (Set): For returns the one that unwraps data keys stored by
// kind (a Provider's Name).
type Router interface {
	For(kind string) (Provider, bool)
}

// Mover is implemented by providers that front several kinds (Set). Move
// returns a data key that provider kind from wrapped under keyID, whose
// plaintext key the caller has already unwrapped, wrapped under the active
// master key: with Rewrap when from is the active kind (the plaintext then
// stays inside a KMS), with Wrap otherwise.
type Mover interface {
	Move(ctx context.Context, from string, wrapped []byte, keyID string, key *[DataKeySize]byte) (WrappedKey, error)
}
