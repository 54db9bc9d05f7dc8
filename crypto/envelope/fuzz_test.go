package envelope

import (
	"bytes"
	"testing"
)

// FuzzParse checks that the metadata parser never panics, that what it
// accepts it gives back unchanged (parse → marshal is the identity, so there
// is one encoding per header), and that the accessors work on every header
// it accepts.
func FuzzParse(f *testing.F) {
	f.Add("")
	f.Add("AQEAAQ")
	f.Fuzz(func(t *testing.T, value string) {
		h, err := Parse(value)
		if err != nil {
			if h != nil {
				t.Fatal("header returned with an error")
			}
			return
		}
		if h.String() != value {
			t.Fatalf("Parse(%q).String() = %q", value, h.String())
		}
		again, err := ParseBinary(append([]byte(nil), h...))
		if err != nil || !bytes.Equal(again, h) {
			t.Fatal("binary round trip")
		}
		_ = h.KeyID()
		_ = h.WrappedKey()
		_ = h.PlaintextSize()
		_ = h.Checksum().Validate()
		_ = h.Commitment()
		_ = h.CiphertextSize()
		if h.FieldSize() > MaxFieldSize {
			t.Fatal("header larger than MaxFieldSize")
		}
		if h.Multipart() && h.PlaintextSize() != 0 {
			t.Fatal("multipart header with a size")
		}
		// Opening a fuzzed header with a fixed key never panics.
		var dk [32]byte
		if _, err := h.Unseal(&dk, "b", "k"); err == nil {
			t.Fatal("fuzzed header unsealed under a zero key")
		}
	})
}
