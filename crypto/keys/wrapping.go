package keys

import (
	"context"
	"fmt"
	"io"
)

// GenerateAndWrap draws a data key from random and wraps it with wrap: the
// GenerateDataKey of providers whose server only wraps (KMIP, PKCS#11).
// The plaintext is zeroed if wrapping fails.
func GenerateAndWrap(ctx context.Context, random io.Reader, wrap func(context.Context, *[DataKeySize]byte) (WrappedKey, error)) (DataKey, error) {
	var dk DataKey
	if _, err := io.ReadFull(random, dk.Plaintext[:]); err != nil {
		return DataKey{}, fmt.Errorf("keys: reading randomness: %w", err)
	}
	w, err := wrap(ctx, &dk.Plaintext)
	if err != nil {
		dk.Zero()
		return DataKey{}, err
	}
	dk.WrappedKey = w
	return dk, nil
}

// UnwrapAndWrap is Rewrap for providers without a re-encrypt operation:
// unwrap with the stored key, wrap under the active one, zero the
// plaintext.
func UnwrapAndWrap(ctx context.Context, p interface {
	Provider
	Wrapper
}, wrapped []byte, keyID string) (WrappedKey, error) {
	key, err := p.Decrypt(ctx, wrapped, keyID)
	if err != nil {
		return WrappedKey{}, err
	}
	defer clear(key[:])
	return p.Wrap(ctx, &key)
}
