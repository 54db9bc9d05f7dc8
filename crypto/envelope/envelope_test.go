package envelope

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/fips140"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/keystest"
	"github.com/s3seal/s3seal/crypto/stream"
)

var ctx = context.Background()

// v1Fixture runs f, which writes format version 1, outside FIPS 140-only
// enforcement: a FIPS build cannot write version 1, but must read it, and
// the tests need version 1 objects to read.
func v1Fixture(f func()) { fips140.WithoutEnforcement(f) }

func newObject(t *testing.T, kp keys.Provider, p Params) (ok *ObjectKey, h Header) {
	t.Helper()
	var err error
	v1Fixture(func() { ok, h, err = New(ctx, kp, p) })
	if err != nil {
		t.Fatal(err)
	}
	return ok, h
}

func encryptWith(t *testing.T, ok *ObjectKey, seg uint32, plain []byte) (ct []byte) {
	t.Helper()
	v1Fixture(func() {
		r, err := stream.NewEncryptReader(ok.SegmentKey(seg), bytes.NewReader(plain), nil)
		if err != nil {
			t.Fatal(err)
		}
		if ct, err = io.ReadAll(r); err != nil {
			t.Fatal(err)
		}
	})
	return ct
}

func TestRoundTrip(t *testing.T) {
	kp := &keystest.Provider{}
	plain := bytes.Repeat([]byte("s3seal "), 20000)
	ok, h := newObject(t, kp, Params{Bucket: "b", Key: "dir/obj", Size: int64(len(plain))})
	ct := encryptWith(t, ok, 0, plain)
	if h.CiphertextSize() != int64(len(ct)) || h.PlaintextSize() != int64(len(plain)) || h.Multipart() {
		t.Fatal("header sizes")
	}
	parsed, err := Parse(h.String())
	if err != nil {
		t.Fatal(err)
	}
	if parsed.String() != h.String() {
		t.Fatal("parse/marshal not identity")
	}
	ok2, err := Open(ctx, kp, parsed, "b", "dir/obj")
	if err != nil {
		t.Fatal(err)
	}
	dr, _ := stream.NewDecryptReader(ok2.SegmentKey(0), bytes.NewReader(ct))
	got, err := io.ReadAll(dr)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("decrypt: %v", err)
	}
	if h.Provider() != ProviderLocal || h.KeyID() != "test-key" || h.Version() != 1 || h.Algorithm() != AES256GCM {
		t.Fatal("accessors")
	}
}

func TestSegmentKeysDistinct(t *testing.T) {
	kp := &keystest.Provider{}
	ok1, _ := newObject(t, kp, Params{Bucket: "b", Key: "k", Multipart: true})
	ok2, _ := newObject(t, kp, Params{Bucket: "b", Key: "k", Multipart: true})
	seen := map[string]bool{}
	for _, ok := range []*ObjectKey{ok1, ok2} {
		for n := uint32(0); n <= 10000; n += 1 + n*3 {
			k := string(ok.SegmentKey(n))
			if seen[k] {
				t.Fatalf("content key repeated (segment %d)", n)
			}
			seen[k] = true
		}
	}
}

// Every adversarial change to the object or its metadata fails with
// ErrAuthentication (or, for malformed metadata, a *ParseError), never
// yields a key.
func TestAdversarialMetadata(t *testing.T) {
	kp := &keystest.Provider{Allowed: []string{"test-kez", "other"}}
	sum := stream.Checksum{Algorithm: stream.ChecksumCRC32C, Value: []byte{1, 2, 3, 4}}
	_, h := newObject(t, kp, Params{Bucket: "bucket", Key: "key", Size: 12345, Checksum: sum})

	expectAuth := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrAuthentication) {
			t.Fatalf("%s: got %v, want ErrAuthentication", what, err)
		}
	}
	// Moved to another name, including the length-prefix ambiguities.
	for _, name := range [][2]string{{"bucket", "key2"}, {"bucket2", "key"}, {"bucketk", "ey"}, {"bucke", "tkey"}, {"Bucket", "key"}} {
		_, err := Open(ctx, kp, h, name[0], name[1])
		expectAuth("moved to "+name[0]+"/"+name[1], err)
	}
	// Every single-bit change of the binary header.
	raw := []byte(h)
	for i := range raw {
		for _, bit := range []byte{0x01, 0x80} {
			b := append([]byte(nil), raw...)
			b[i] ^= bit
			h2, err := ParseBinary(b)
			if err != nil {
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("byte %d: %T", i, err)
				}
				continue
			}
			_, err = Open(ctx, kp, h2, "bucket", "key")
			if err == nil {
				t.Fatalf("byte %d bit %#x: altered metadata opened", i, bit)
			}
			expectAuth("altered byte", err)
		}
	}
	// Deleted field, truncated, extended.
	for _, v := range []string{"", h.String()[:len(h.String())-1], h.String() + "A", h.String() + "AA"} {
		if _, err := Parse(v); err == nil {
			t.Fatalf("Parse(%q…) accepted", v[:min(len(v), 10)])
		}
	}
	// Another object's metadata on this object's name.
	_, other := newObject(t, kp, Params{Bucket: "bucket", Key: "other", Size: 12345})
	if ok1, err := Open(ctx, kp, other, "bucket", "key"); err == nil {
		t.Fatalf("swapped metadata opened: %v", ok1)
	}
}

func TestWrongKeysAndProviders(t *testing.T) {
	kp := &keystest.Provider{}
	_, h := newObject(t, kp, Params{Bucket: "b", Key: "k", Size: 1})

	// Wrong provider kind.
	kms := &keystest.Provider{Kind: keys.KindAWSKMS}
	_, err := Open(ctx, kms, h, "b", "k")
	var pm *ProviderMismatchError
	if !errors.Is(err, ErrAuthentication) || !errors.As(err, &pm) || kms.Calls() != 0 {
		t.Fatalf("wrong provider: %v (calls %d)", err, kms.Calls())
	}
	// A key id outside the allow-list.
	narrow := &keystest.Provider{Active: "another-key"}
	_, err = Open(ctx, narrow, h, "b", "k")
	var unknown *keys.UnknownKeyError
	if !errors.Is(err, ErrAuthentication) || !errors.As(err, &unknown) {
		t.Fatalf("key outside the allow-list: %v", err)
	}
	// Right key id, wrong key: forge a header naming test-key whose
	// wrapped key was made elsewhere; unwrap fails.
	forged := replaceWrapped(t, h, bytes.Repeat([]byte{7}, len(h.WrappedKey())))
	_, err = Open(ctx, kp, forged, "b", "k")
	var uw *keys.UnwrapError
	if !errors.Is(err, ErrAuthentication) || !errors.As(err, &uw) {
		t.Fatalf("wrong wrapped key: %v", err)
	}
	// Wrong data key given directly.
	var wrong [32]byte
	if _, err := h.Unseal(&wrong, "b", "k"); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("wrong data key: %v", err)
	}
	// A transient provider error is not an authentication failure.
	down := &keystest.Provider{}
	down.SetFail(&keys.UnavailableError{Provider: "local", Operation: "Decrypt", Err: errors.New("down")})
	if _, err := Open(ctx, down, h, "b", "k"); errors.Is(err, ErrAuthentication) {
		t.Fatalf("unavailable reported as authentication failure: %v", err)
	}
}

// replaceWrapped rebuilds h with another wrapped key (the seal no longer
// matches, which is the point).
func replaceWrapped(t *testing.T, h Header, w []byte) Header {
	o := h.offsets()
	b := append([]byte(nil), h[:o.wrapped-2]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(w)))
	b = append(b, w...)
	b = append(b, h[o.size:]...)
	h2, err := ParseBinary(b)
	if err != nil {
		t.Fatal(err)
	}
	return h2
}

// The commitment is checked even when the seal opens: a header whose seal
// covers a wrong commitment is refused.
func TestCommitmentEnforced(t *testing.T) {
	kp := &keystest.Provider{}
	dk, _ := kp.GenerateDataKey(ctx)
	var ok, other *ObjectKey
	var h Header
	var err error
	v1Fixture(func() {
		ok, h, err = Seal(&dk, kp.Name(), Params{Bucket: "b", Key: "k", Size: 5})
		other, _, _ = Seal(&dk, kp.Name(), Params{Bucket: "b", Key: "k", Size: 5})
	})
	if err != nil {
		t.Fatal(err)
	}
	// Rebuild the header with other's commitment and a valid seal of ok's key.
	o := h.offsets()
	b := append([]byte(nil), h[:o.commit]...)
	b = append(b, other.commitment()...)
	b = append(b, h.salt()...)
	block, _ := sealBlock(1, &dk.Plaintext, h.salt(), "b", "k")
	v1Fixture(func() {
		aead, _ := cipher.NewGCM(block)
		b = aead.Seal(b, zeroNonce[:], ok.key[:], b[:o.salt])
	})
	bad, err := ParseBinary(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Unseal(&dk.Plaintext, "b", "k"); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("wrong commitment accepted: %v", err)
	}
	if _, err := h.Unseal(&dk.Plaintext, "b", "k"); err != nil {
		t.Fatal("control: the genuine header must open")
	}
}

func TestCopyAndRotate(t *testing.T) {
	if fips140.Enforced() {
		t.Skip("FIPS 140-only mode cannot reseal version 1 headers (TestVersion1ObjectsStayReadable checks the error); TestKeyObject covers version 2 copies and rotations")
	}
	kp := &keystest.Provider{Allowed: []string{"old-key"}, Active: "old-key"}
	plain := []byte("payload that must not be re-encrypted")
	ok, h := newObject(t, kp, Params{Bucket: "src", Key: "a", Size: int64(len(plain))})
	ct := encryptWith(t, ok, 0, plain)

	h2, err := Copy(ctx, kp, h, "src", "a", "dst", "b", nil)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(h2.salt(), h.salt()) {
		t.Fatal("reseal reused the salt")
	}
	ok2, err := Open(ctx, kp, h2, "dst", "b")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ok2.SegmentKey(0), ok.SegmentKey(0)) {
		t.Fatal("copy changed the object key")
	}
	if _, err := Open(ctx, kp, h2, "src", "a"); !errors.Is(err, ErrAuthentication) {
		t.Fatal("copied header opens under the old name")
	}
	if _, err := Copy(ctx, kp, h, "wrong", "a", "dst", "b", nil); !errors.Is(err, ErrAuthentication) {
		t.Fatal("copy from a wrong source name accepted")
	}

	// Rotation to a new active key.
	rot := &keystest.Provider{Active: "new-key", Allowed: []string{"old-key"}}
	h3, err := Rotate(ctx, rot, h, "src", "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	if h3.KeyID() != "new-key" || bytes.Equal(h3.WrappedKey(), h.WrappedKey()) {
		t.Fatal("not rewrapped")
	}
	newOnly := &keystest.Provider{Active: "new-key"}
	ok3, err := Open(ctx, newOnly, h3, "src", "a")
	if err != nil {
		t.Fatal(err)
	}
	dr, _ := stream.NewDecryptReader(ok3.SegmentKey(0), bytes.NewReader(ct))
	if got, err := io.ReadAll(dr); err != nil || !bytes.Equal(got, plain) {
		t.Fatal("rotated header does not decrypt the unchanged ciphertext")
	}
	if h3.PlaintextSize() != h.PlaintextSize() || h3.Multipart() != h.Multipart() {
		t.Fatal("rotation changed fields")
	}
}

func TestMultipartObject(t *testing.T) {
	kp := &keystest.Provider{}
	ok, h := newObject(t, kp, Params{Bucket: "b", Key: "big", Multipart: true})
	if !h.Multipart() || h.PlaintextSize() != 0 || h.CiphertextSize() != -1 {
		t.Fatal("multipart header")
	}
	parts := [][]byte{bytes.Repeat([]byte{1}, 2*stream.ChunkSize), bytes.Repeat([]byte{2}, 100)}
	var obj, plain []byte
	for i, p := range parts {
		obj = append(obj, encryptWith(t, ok, uint32(i+1), p)...)
		plain = append(plain, p...)
	}
	ok2, err := Open(ctx, kp, h, "b", "big")
	if err != nil {
		t.Fatal(err)
	}
	dr, _ := stream.NewMultipartDecryptReader(ok2.SegmentKey, bytes.NewReader(obj))
	if got, err := io.ReadAll(dr); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("multipart: %v", err)
	}
	// Parts of another upload to the same name do not fit.
	okOther, _ := newObject(t, kp, Params{Bucket: "b", Key: "big", Multipart: true})
	mixed := append(encryptWith(t, ok, 1, parts[0]), encryptWith(t, okOther, 2, parts[1])...)
	dr, _ = stream.NewMultipartDecryptReader(ok2.SegmentKey, bytes.NewReader(mixed))
	if _, err := io.ReadAll(dr); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("part of another upload accepted: %v", err)
	}
	if _, _, err := New(ctx, kp, Params{Bucket: "b", Key: "k", Multipart: true, Size: 5}); err == nil {
		t.Fatal("multipart with a size accepted")
	}
}

func TestParseStrict(t *testing.T) {
	kp := &keystest.Provider{}
	_, h := newObject(t, kp, Params{Bucket: "b", Key: "k", Size: 7, Checksum: stream.Checksum{Algorithm: stream.ChecksumSHA1, Value: make([]byte, 20)}})
	raw := []byte(h)
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), raw...)) }
	cases := map[string][]byte{
		"version 2":       mutate(func(b []byte) []byte { b[0] = 2; return b }),
		"version 0":       mutate(func(b []byte) []byte { b[0] = 0; return b }),
		"algorithm 2":     mutate(func(b []byte) []byte { b[1] = 2; return b }),
		"flag 0x02":       mutate(func(b []byte) []byte { b[2] |= 2; return b }),
		"provider 6":      mutate(func(b []byte) []byte { b[3] = 6; return b }),
		"provider 255":    mutate(func(b []byte) []byte { b[3] = 255; return b }),
		"provider 0":      mutate(func(b []byte) []byte { b[3] = 0; return b }),
		"key id length 0": mutate(func(b []byte) []byte { b[4] = 0; return b }),
		"key id space":    mutate(func(b []byte) []byte { b[5] = ' '; return b }),
		"trailing byte":   mutate(func(b []byte) []byte { return append(b, 0) }),
		"truncated":       mutate(func(b []byte) []byte { return b[:len(b)-1] }),
		"multipart+size":  mutate(func(b []byte) []byte { b[2] |= 1; return b }),
		"checksum 9":      mutate(func(b []byte) []byte { b[h.offsets().sumAlg] = 9; return b }),
		"wrapped len 0": mutate(func(b []byte) []byte {
			o := h.offsets()
			b[o.wrapped-2], b[o.wrapped-1] = 0, 0
			return b
		}),
	}
	for name, b := range cases {
		if _, err := ParseBinary(b); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, err := ParseBinary([]byte{3}); err == nil || !strings.Contains(err.Error(), "version") {
		t.Errorf("short unknown version: %v", err)
	}
	// Non-canonical base64 (padding, standard alphabet, stray bits).
	s := h.String()
	for _, v := range []string{s + "=", strings.NewReplacer("-", "+", "_", "/").Replace(s) + "+", s[:len(s)-1] + string(flipLastBits(s[len(s)-1]))} {
		if v == s {
			continue
		}
		if _, err := Parse(v); err == nil {
			if hh, _ := Parse(v); hh.String() != v {
				t.Errorf("non-canonical %q… accepted", v[len(v)-4:])
			}
		}
	}
	if !IsReservedMetadata("X-Amz-Meta-S3seal") || !IsReservedMetadata("s3seal") || IsReservedMetadata("s3seal-x") {
		t.Error("IsReservedMetadata")
	}
}

func flipLastBits(c byte) byte {
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alpha, c)
	return alpha[i^1]
}

func TestMetadataSize(t *testing.T) {
	kp := &keystest.Provider{}
	_, h := newObject(t, kp, Params{Bucket: "b", Key: "k", Size: 7})
	if h.FieldSize() != len("x-amz-meta-s3seal")+len(h.String()) {
		t.Fatal("FieldSize")
	}
	room := MetadataLimit - h.FieldSize()
	// User metadata of exactly the remaining room fits; one byte more does not.
	fits := map[string]string{"a": strings.Repeat("x", room-len("x-amz-meta-a"))}
	if err := CheckMetadataSize(fits, h); err != nil {
		t.Fatalf("exact fit refused: %v", err)
	}
	over := map[string]string{"a": strings.Repeat("x", room-len("x-amz-meta-a")+1)}
	err := CheckMetadataSize(over, h)
	var tooLarge *MetadataTooLargeError
	if !errors.As(err, &tooLarge) || tooLarge.UserBytes != room+1 || tooLarge.S3sealBytes != h.FieldSize() {
		t.Fatalf("over by one: %v", err)
	}
	if !strings.Contains(err.Error(), "x-amz-meta-") {
		t.Fatalf("message does not say what to fix: %v", err)
	}
	if UserMetadataSize(map[string]string{"x-amz-meta-a": "b"}) != UserMetadataSize(map[string]string{"a": "b"}) {
		t.Fatal("prefix counted twice")
	}
	// The largest possible header is exactly MaxFieldSize.
	big := keys.DataKey{WrappedKey: keys.WrappedKey{KeyID: strings.Repeat("k", keys.MaxKeyIDSize), Ciphertext: make([]byte, keys.MaxWrappedSize)}}
	sum := stream.Checksum{Algorithm: stream.ChecksumSHA256, Value: make([]byte, 32)}
	_, hb, err := SealV2(&big, keys.KindAWSKMS, Params{Bucket: "b", Key: "k", Size: 1, Checksum: sum})
	if err != nil {
		t.Fatal(err)
	}
	if hb.FieldSize() != MaxFieldSize || len(hb) != MaxSize {
		t.Fatalf("largest header: %d bytes, field %d; MaxSize %d, MaxFieldSize %d", len(hb), hb.FieldSize(), MaxSize, MaxFieldSize)
	}
	var h1 Header
	v1Fixture(func() {
		_, h1, err = Seal(&big, keys.KindAWSKMS, Params{Bucket: "b", Key: "k", Size: 1, Checksum: sum})
	})
	if err != nil || len(h1) != MaxSize-(SealedKeySizeV2-SealedKeySize) {
		t.Fatalf("largest version 1 header: %d bytes, %v", len(h1), err)
	}
	tooBig := big
	tooBig.Ciphertext = make([]byte, keys.MaxWrappedSize+1)
	if _, _, err := Seal(&tooBig, keys.KindAWSKMS, Params{Bucket: "b", Key: "k"}); err == nil {
		t.Fatal("oversized wrapped key accepted")
	}
}

// Two objects' ciphertexts swapped at the store (metadata left in place):
// each object's key fails on the other's content.
func TestSwapCiphertexts(t *testing.T) {
	kp := &keystest.Provider{}
	plainA, plainB := bytes.Repeat([]byte("A"), 70000), bytes.Repeat([]byte("B"), 70000)
	okA, hA := newObject(t, kp, Params{Bucket: "b", Key: "a", Size: int64(len(plainA))})
	okB, hB := newObject(t, kp, Params{Bucket: "b", Key: "b", Size: int64(len(plainB))})
	ctA, ctB := encryptWith(t, okA, 0, plainA), encryptWith(t, okB, 0, plainB)
	for _, c := range []struct {
		h   Header
		key string
		ct  []byte
	}{{hA, "a", ctB}, {hB, "b", ctA}} {
		ok, err := Open(ctx, kp, c.h, "b", c.key)
		if err != nil {
			t.Fatal(err)
		}
		dr, _ := stream.NewDecryptReader(ok.SegmentKey(0), bytes.NewReader(c.ct))
		got, err := io.ReadAll(dr)
		if len(got) != 0 || !errors.Is(err, ErrAuthentication) {
			t.Fatalf("swapped ciphertext: %d bytes, %v", len(got), err)
		}
	}
}

func TestUploadTag(t *testing.T) {
	dk := &keys.DataKey{WrappedKey: keys.WrappedKey{KeyID: "k1", Ciphertext: []byte{1, 2, 3}}}
	a, _, err := SealV2(dk, keys.KindLocal, Params{Bucket: "b", Key: "k", Multipart: true})
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := SealV2(dk, keys.KindLocal, Params{Bucket: "b", Key: "k", Multipart: true})
	if err != nil {
		t.Fatal(err)
	}
	t1, t2 := a.UploadTag("upload-1"), a.UploadTag("upload-2")
	if len(t1) != 32 || bytes.Equal(t1, t2) {
		t.Fatal("tags of different uploads are equal")
	}
	if !bytes.Equal(t1, a.UploadTag("upload-1")) {
		t.Fatal("tag not deterministic")
	}
	if bytes.Equal(t1, b.UploadTag("upload-1")) {
		t.Fatal("tags under different object keys are equal")
	}
}

// TestMoveBetweenProviders: a keys.Set reads objects of each kind it holds
// and Rotate moves them to the active kind, the ciphertext untouched.
func TestMoveBetweenProviders(t *testing.T) {
	ring := &keystest.Provider{Kind: keys.KindLocal, Active: "ring-key"}
	hsm := &keystest.Provider{Kind: keys.KindPKCS11, Active: "hsm-key"}
	plain := []byte("moved from a key ring to an HSM")
	ok, h := newObjectV2(t, ring, Params{Bucket: "b", Key: "k", Size: int64(len(plain))})
	ct, _ := segmentV2(t, ok, 0, plain)

	set, err := keys.NewSet(hsm, ring)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, set, h, "b", "k"); err != nil {
		t.Fatalf("set does not read the key ring's object: %v", err)
	}
	moved, err := Rotate(ctx, set, h, "b", "k", nil)
	if err != nil {
		t.Fatal(err)
	}
	if moved.Provider() != ProviderPKCS11 || moved.KeyID() != "hsm-key" || hsm.Wraps.Load() != 1 || hsm.Rewraps.Load() != 0 {
		t.Fatalf("moved to %s %q (wraps %d, rewraps %d)", moved.Provider(), moved.KeyID(), hsm.Wraps.Load(), hsm.Rewraps.Load())
	}
	okm, err := Open(ctx, hsm, moved, "b", "k")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readObject(okm, moved, nil, ct); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("moved header does not decrypt the unchanged ciphertext: %v", err)
	}
	// An object already of the active kind is rewrapped (Rewrap, which
	// keeps a KMS's plaintext inside it), not wrapped.
	if _, err := Rotate(ctx, set, moved, "b", "k", nil); err != nil || hsm.Rewraps.Load() != 1 {
		t.Fatalf("same-kind rotation through the set: %v (rewraps %d)", err, hsm.Rewraps.Load())
	}
	// A kind the set does not hold is refused as before.
	kms := &keystest.Provider{Kind: keys.KindKMIP, Active: "kmip-key"}
	_, hk := newObjectV2(t, kms, Params{Bucket: "b", Key: "k"})
	var mismatch *ProviderMismatchError
	if _, err := Open(ctx, set, hk, "b", "k"); !errors.Is(err, ErrAuthentication) || !errors.As(err, &mismatch) {
		t.Fatalf("kind outside the set: %v", err)
	}
	if _, err := keys.NewSet(hsm, &keystest.Provider{Kind: keys.KindPKCS11}); err == nil {
		t.Fatal("two providers of one kind accepted")
	}
}
