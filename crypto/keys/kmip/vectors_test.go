package kmip

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/s3seal/s3seal/crypto/keys/kmip/internal/ttlv"
)

// wrapVectors are the committed known answers of FORMAT.md §3.3 and §3.4.
type wrapVectors struct {
	MasterKey string `json:"master_key"`
	DataKey   string `json:"data_key"`
	KMIP      struct {
		KeyID   string `json:"key_id"`
		IV      string `json:"iv"`
		AAD     string `json:"aad"`
		Wrapped string `json:"wrapped"`
	} `json:"kmip"`
}

func unhexT(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVectors: with a server holding the vector's master key and choosing
// its IV, the provider produces exactly the committed wrapped form, sends
// the committed additional data, and unwraps the committed form.
func TestVectors(t *testing.T) {
	b, err := os.ReadFile("../testdata/wrap-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v wrapVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	mk, dk, iv, aadWant, wrapped := unhexT(t, v.MasterKey), unhexT(t, v.DataKey), unhexT(t, v.KMIP.IV), unhexT(t, v.KMIP.AAD), unhexT(t, v.KMIP.Wrapped)
	block, _ := aes.NewCipher(mk)
	gcm, _ := cipher.NewGCMWithNonceSize(block, len(iv))
	server := callerFunc(func(_ context.Context, op uint32, _ string, payload ...ttlv.Item) (ttlv.Item, error) {
		req := ttlv.Struct(tagRequestPayload, payload...)
		ad, _ := bytesOf(req, tagAEADAdditional)
		if !bytes.Equal(ad, aadWant) {
			return ttlv.Item{}, errors.New("additional data differs from the vector's")
		}
		data, _ := bytesOf(req, tagData)
		switch op {
		case opEncrypt:
			out := gcm.Seal(nil, iv, data, ad)
			return ttlv.Struct(tagResponsePayload, ttlv.Bytes(tagData, out[:len(data)]), ttlv.Bytes(tagIVCounterNonce, iv), ttlv.Bytes(tagAEADTag, out[len(data):])), nil
		case opDecrypt:
			tag, _ := bytesOf(req, tagAEADTag)
			riv, _ := bytesOf(req, tagIVCounterNonce)
			pt, err := gcm.Open(nil, riv, append(append([]byte(nil), data...), tag...), ad)
			if err != nil {
				return ttlv.Item{}, &ResultError{Reason: ReasonCryptographicFailure}
			}
			return ttlv.Struct(tagResponsePayload, ttlv.Bytes(tagData, pt)), nil
		}
		return ttlv.Item{}, errors.New("unexpected operation")
	})
	p, err := New(server, Config{KeyIDs: []string{v.KMIP.KeyID}})
	if err != nil {
		t.Fatal(err)
	}
	var key [32]byte
	copy(key[:], dk)
	w, err := p.Wrap(context.Background(), &key)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.Ciphertext, wrapped) || w.KeyID != v.KMIP.KeyID {
		t.Fatalf("wrapped %x\nwant    %x", w.Ciphertext, wrapped)
	}
	got, err := p.Decrypt(context.Background(), wrapped, v.KMIP.KeyID)
	if err != nil || !bytes.Equal(got[:], dk) {
		t.Fatalf("unwrap of the vector: %v", err)
	}
}
