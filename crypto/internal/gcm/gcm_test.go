package gcm

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/fips140"
	"testing"
)

// NewOpener opens ciphertexts sealed under chosen nonces, in FIPS 140-only
// mode too (where it goes through cipher.NewGCMWithRandomNonce), and
// refuses altered ones.
func TestOpener(t *testing.T) {
	block, _ := aes.NewCipher(bytes.Repeat([]byte{7}, 32))
	nonce := bytes.Repeat([]byte{1}, 12)
	var ct []byte
	fips140.WithoutEnforcement(func() {
		a, err := cipher.NewGCM(block)
		if err != nil {
			t.Fatal(err)
		}
		ct = a.Seal(nil, nonce, []byte("chunk"), []byte("ad"))
	})
	o, err := NewOpener(block)
	if err != nil {
		t.Fatal(err)
	}
	if _, isPrefix := o.(prefixNonce); isPrefix != fips140.Enforced() {
		t.Fatalf("prefix-nonce opener used: %v, FIPS 140-only mode: %v", isPrefix, fips140.Enforced())
	}
	pt, err := o.Open(nil, nonce, ct, []byte("ad"))
	if err != nil || string(pt) != "chunk" {
		t.Fatalf("open: %q, %v", pt, err)
	}
	ct[0] ^= 1
	if _, err := o.Open(nil, nonce, ct, []byte("ad")); err == nil {
		t.Fatal("altered ciphertext opened")
	}
	if o.NonceSize() != 12 || o.Overhead() != 16 {
		t.Fatal("sizes")
	}
}
