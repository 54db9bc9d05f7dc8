package pkcs11

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

// TestVectors: a token holding the vector's master key, with the
// vector's IV, gives exactly the committed wrapped form of FORMAT.md §3.4,
// and the committed form unwraps to the data key.
func TestVectors(t *testing.T) {
	b, err := os.ReadFile("../testdata/wrap-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		MasterKey string `json:"master_key"`
		DataKey   string `json:"data_key"`
		PKCS11    struct {
			KeyID   string `json:"key_id"`
			IV      string `json:"iv"`
			Wrapped string `json:"wrapped"`
		} `json:"pkcs11"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	un := func(s string) []byte { b, _ := hex.DecodeString(s); return b }
	tok := newFakeToken()
	tok.keys[v.PKCS11.KeyID] = un(v.MasterKey)
	p, err := New(tok, Config{Labels: []string{v.PKCS11.KeyID}, PIN: []byte("1234"), Rand: bytes.NewReader(un(v.PKCS11.IV))})
	if err != nil {
		t.Fatal(err)
	}
	var key [32]byte
	copy(key[:], un(v.DataKey))
	w, err := p.Wrap(ctx, &key)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.Ciphertext, un(v.PKCS11.Wrapped)) {
		t.Fatalf("wrapped %x\nwant    %x", w.Ciphertext, un(v.PKCS11.Wrapped))
	}
	got, err := p.Decrypt(ctx, un(v.PKCS11.Wrapped), v.PKCS11.KeyID)
	if err != nil || got != key {
		t.Fatalf("unwrap of the vector: %v", err)
	}
}
