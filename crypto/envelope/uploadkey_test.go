package envelope

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/s3seal/s3seal/crypto/keys"
)

func uploadFixture(t *testing.T) (*ObjectKey, Header) {
	t.Helper()
	dk := &keys.DataKey{WrappedKey: keys.WrappedKey{KeyID: "k1", Ciphertext: []byte{1, 2, 3}}}
	dk.Plaintext[0] = 7
	ok, h, err := SealV2(dk, keys.KindLocal, Params{Bucket: "b", Key: "k", Multipart: true})
	if err != nil {
		t.Fatal(err)
	}
	return ok, h
}

func TestUploadKeySealOpen(t *testing.T) {
	ok, h := uploadFixture(t)
	uk, other := &[UploadKeySize]byte{1}, &[UploadKeySize]byte{2}
	sealed, err := ok.SealForUpload(uk, h, "b", "k", "store-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) != UploadSealedSize || UploadSealedSize != 92 {
		t.Fatalf("sealed size %d (%d)", len(sealed), UploadSealedSize)
	}
	got, err := OpenForUpload([]*[UploadKeySize]byte{uk}, h, "b", "k", "store-id", sealed)
	if err != nil {
		t.Fatal(err)
	}
	if got.key != ok.key {
		t.Fatal("a different object key came out")
	}
	// Rotation: the old key, kept second, still opens.
	if _, err := OpenForUpload([]*[UploadKeySize]byte{other, uk}, h, "b", "k", "store-id", sealed); err != nil {
		t.Fatalf("old upload key: %v", err)
	}
	// A second seal of the same key differs (fresh salt and nonce).
	again, _ := ok.SealForUpload(uk, h, "b", "k", "store-id", nil)
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals are equal")
	}
	_, h2 := uploadFixture(t)
	fails := map[string]func() (*ObjectKey, error){
		"wrong key": func() (*ObjectKey, error) {
			return OpenForUpload([]*[UploadKeySize]byte{other}, h, "b", "k", "store-id", sealed)
		},
		"no key": func() (*ObjectKey, error) { return OpenForUpload(nil, h, "b", "k", "store-id", sealed) },
		"other bucket": func() (*ObjectKey, error) {
			return OpenForUpload([]*[UploadKeySize]byte{uk}, h, "c", "k", "store-id", sealed)
		},
		"other key": func() (*ObjectKey, error) {
			return OpenForUpload([]*[UploadKeySize]byte{uk}, h, "b", "kk", "store-id", sealed)
		},
		"shifted name": func() (*ObjectKey, error) {
			return OpenForUpload([]*[UploadKeySize]byte{uk}, h, "bk", "", "store-id", sealed)
		},
		"other upload": func() (*ObjectKey, error) {
			return OpenForUpload([]*[UploadKeySize]byte{uk}, h, "b", "k", "store-id2", sealed)
		},
		"other header": func() (*ObjectKey, error) {
			return OpenForUpload([]*[UploadKeySize]byte{uk}, h2, "b", "k", "store-id", sealed)
		},
		"truncated": func() (*ObjectKey, error) {
			return OpenForUpload([]*[UploadKeySize]byte{uk}, h, "b", "k", "store-id", sealed[:91])
		},
		"extended": func() (*ObjectKey, error) {
			return OpenForUpload([]*[UploadKeySize]byte{uk}, h, "b", "k", "store-id", append(sealed, 0))
		},
		"single put hdr": func() (*ObjectKey, error) {
			return OpenForUpload([]*[UploadKeySize]byte{uk}, singlePutHeader(t), "b", "k", "store-id", sealed)
		},
	}
	for name, f := range fails {
		if _, err := f(); !errors.Is(err, ErrAuthentication) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x40
		if _, err := OpenForUpload([]*[UploadKeySize]byte{uk}, h, "b", "k", "store-id", bad); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	// The object key must belong to the header it is sealed with.
	if _, err := ok.SealForUpload(uk, h2, "b", "k", "store-id", nil); err == nil {
		t.Fatal("sealed a key under a header it does not open")
	}
}

func singlePutHeader(t *testing.T) Header {
	dk := &keys.DataKey{WrappedKey: keys.WrappedKey{KeyID: "k1", Ciphertext: []byte{1, 2, 3}}}
	_, h, err := SealV2(dk, keys.KindLocal, Params{Bucket: "b", Key: "k", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestUploadKeyVector opens a committed sealing (FORMAT.md, section 8.4):
// upload key 32 bytes 0x11, bucket "bucket", key "dir/object", store id
// "store-upload-1", object key and header as below.
func TestUploadKeyVector(t *testing.T) {
	h, err := ParseBinary(mustHex(t, uploadVectorHeader))
	if err != nil {
		t.Fatal(err)
	}
	uk := &[UploadKeySize]byte{}
	for i := range uk {
		uk[i] = 0x11
	}
	ok, err := OpenForUpload([]*[UploadKeySize]byte{uk}, h, "bucket", "dir/object", "store-upload-1", mustHex(t, uploadVectorSealed))
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(ok.key[:]) != uploadVectorOK {
		t.Fatalf("object key %x", ok.key)
	}
}

func mustHex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Generated once by SealV2 (seal salt and nonce 0x33…, data key 0x22…, key id
// "vector") and SealForUpload (salt 0x44…; the nonce from the module).
const uploadVectorHeader = "0201010106766563746f720003090909000000000000000000041dca45060a0bc6d7375cc5c87836bd7842129286fd3ce9a0a50c9c950191a633333333333333333333333333333333333333333333333333333333333333333333333333333333333333333dc5adfd667e6cf834022c1897e2d180c5d206a97311a2af1bacdb0d2a5ceba31f22b0e068185849cdaffbebf19bac05"
const uploadVectorSealed = "4444444444444444444444444444444444444444444444444444444444444444a3778014769e3f167e3cd455312483be0779b6052c4e24cf6fb79a3fa0c798407e7c23e85ef591d3da524b292b31a60689a34d726b36eef1f453507d"
const uploadVectorOK = "3333333333333333333333333333333333333333333333333333333333333333"

// FuzzOpenForUpload: no input opens without the key, none panics.
func FuzzOpenForUpload(f *testing.F) {
	dk := &keys.DataKey{WrappedKey: keys.WrappedKey{KeyID: "k1", Ciphertext: []byte{1, 2, 3}}}
	ok, h, err := SealV2(dk, keys.KindLocal, Params{Bucket: "b", Key: "k", Multipart: true})
	if err != nil {
		f.Fatal(err)
	}
	uk := &[UploadKeySize]byte{9}
	sealed, err := ok.SealForUpload(uk, h, "b", "k", "s", nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed, "b", "k", "s")
	f.Add(sealed[:50], "b", "k", "s")
	f.Fuzz(func(t *testing.T, in []byte, bucket, key, storeID string) {
		got, err := OpenForUpload([]*[UploadKeySize]byte{uk}, h, bucket, key, storeID, in)
		if err == nil {
			if !bytes.Equal(in, sealed) || bucket != "b" || key != "k" || storeID != "s" {
				t.Fatalf("opened a sealing that was not made: %x %q %q %q", in, bucket, key, storeID)
			}
			got.Zero()
		} else if !errors.Is(err, ErrAuthentication) {
			t.Fatalf("error %v", err)
		}
	})
}
