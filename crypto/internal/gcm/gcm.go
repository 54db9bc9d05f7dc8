// Package gcm builds the AES-GCM AEADs s3seal's formats need so that they
// work the same in Go's FIPS 140-only mode (GODEBUG=fips140=only), where
// cipher.NewGCM is refused: encrypting under a caller-chosen nonce is not
// an approved construction there, while opening is, and
// cipher.NewGCMWithRandomNonce (a random 96-bit nonce drawn inside the
// cryptographic module) is the approved way to encrypt.
package gcm

import (
	"crypto/cipher"
	"sync"
)

const (
	nonceSize = 12
	tagSize   = 16
)

// NewOpener returns an AEAD that opens AES-GCM ciphertexts under nonces the
// caller supplies (format version 1's counter nonces, a seal's fixed
// nonce). Outside FIPS 140-only mode it is cipher.NewGCM. In that mode it
// opens through cipher.NewGCMWithRandomNonce, whose Open takes the nonce in
// front of the ciphertext, at the cost of one copy of the ciphertext; its
// Seal panics. block must come from crypto/aes.NewCipher.
func NewOpener(block cipher.Block) (cipher.AEAD, error) {
	a, err := cipher.NewGCM(block)
	if err == nil {
		return a, nil
	}
	rn, rnErr := cipher.NewGCMWithRandomNonce(block)
	if rnErr != nil {
		return nil, err
	}
	return prefixNonce{rn}, nil
}

// prefixNonce opens explicit-nonce ciphertexts with a random-nonce AEAD.
type prefixNonce struct{ rn cipher.AEAD }

func (prefixNonce) NonceSize() int { return nonceSize }
func (prefixNonce) Overhead() int  { return tagSize }

func (prefixNonce) Seal(dst, nonce, plaintext, additionalData []byte) []byte {
	panic("gcm: internal error: sealing under a chosen nonce in FIPS 140-only mode")
}

// scratch holds nonce || ciphertext for one Open; it never holds plaintext.
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 80<<10); return &b }}

func (g prefixNonce) Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error) {
	bp := scratch.Get().(*[]byte)
	in := append(append((*bp)[:0], nonce...), ciphertext...)
	out, err := g.rn.Open(dst, nil, in, additionalData)
	*bp = in[:0]
	scratch.Put(bp)
	return out, err
}
