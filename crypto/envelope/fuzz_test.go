package envelope

import (
	"bytes"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/crypto/keys"
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
		_ = h.KeyObject()
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
		if h.KeyObject() && (h.Version() != VersionV2 || len(h.WrappedKey()) != WrappedKeyRefSize) {
			t.Fatal("key object reference outside version 2")
		}
		if h.Version() == Version && h.Provider() > ProviderAWSKMS {
			t.Fatal("version 1 header with a later provider")
		}
		// Opening a fuzzed header with a fixed key never panics.
		var dk [32]byte
		if _, err := h.Unseal(&dk, "b", "k"); err == nil {
			t.Fatal("fuzzed header unsealed under a zero key")
		}
	})
}

// FuzzParsePartSetRecord checks the part-set record parser: no panics,
// one encoding per record, a layout for every record accepted, and no
// record opening under a key it was not made with.
func FuzzParsePartSetRecord(f *testing.F) {
	f.Add("")
	f.Add("Ag")
	dk := keys.DataKey{WrappedKey: keys.WrappedKey{KeyID: "fuzz", Ciphertext: []byte{1}}}
	ok, h, err := SealV2(&dk, keys.KindLocal, Params{Bucket: "b", Key: "k", Multipart: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, value string) {
		r, err := ParsePartSetRecord(value)
		if err != nil {
			if r != nil {
				t.Fatal("record returned with an error")
			}
			return
		}
		if r.String() != value {
			t.Fatalf("ParsePartSetRecord(%q).String() = %q", value, r.String())
		}
		ps := r.Unverified()
		l, err := ps.Layout()
		if err != nil || l.PlaintextSize() != ps.PlaintextSize() || l.Segments() != ps.Parts {
			t.Fatalf("accepted record without a layout: %v", err)
		}
		if _, err := ok.OpenPartSet(h, "b", "k", r); err == nil {
			t.Fatal("fuzzed record opened")
		}
	})
}

// FuzzParsePartSetTag: the tag value parses to one record and ETag that
// write back to exactly the value, and an error returns nothing.
func FuzzParsePartSetTag(f *testing.F) {
	f.Add("")
	f.Add(".")
	b := make([]byte, PartSetRecordSize)
	b[0], b[2], b[10], b[18] = VersionV2, 2, 10, 5 // 2 parts of 10 and 5 bytes
	rec, err := ParsePartSetRecordBinary(b)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rec.String())
	f.Add(PartSetTagValue(rec, strings.Repeat("0a", 16)+"-2"))
	f.Fuzz(func(t *testing.T, value string) {
		r, etag, err := ParsePartSetTag(value)
		if err != nil {
			if r != nil || etag != "" {
				t.Fatal("record or ETag returned with an error")
			}
			return
		}
		if got := PartSetTagValue(r, etag); got != value {
			t.Fatalf("ParsePartSetTag(%q) writes back as %q", value, got)
		}
	})
}
