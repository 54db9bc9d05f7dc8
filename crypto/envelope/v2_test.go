package envelope

import (
	"bytes"
	"crypto/fips140"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/keystest"
	"github.com/s3seal/s3seal/crypto/stream"
)

func newObjectV2(t *testing.T, kp keys.Provider, p Params) (*ObjectKey, Header) {
	t.Helper()
	ok, h, err := NewV2(ctx, kp, p)
	if err != nil {
		t.Fatal(err)
	}
	if h.Version() != VersionV2 || ok.Version() != VersionV2 {
		t.Fatal("NewV2 did not write version 2")
	}
	return ok, h
}

// segmentV2 encrypts one segment and returns its stored bytes and salt.
func segmentV2(t *testing.T, ok *ObjectKey, n uint32, plain []byte) ([]byte, [stream.SaltSize]byte) {
	t.Helper()
	return segmentV2With(t, ok, n, plain, nil)
}

func segmentV2With(t *testing.T, ok *ObjectKey, n uint32, plain []byte, opts *stream.EncryptOptions) ([]byte, [stream.SaltSize]byte) {
	t.Helper()
	r, err := ok.EncryptSegment(n, bytes.NewReader(plain), opts)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return ct, r.Salt()
}

func readObject(ok *ObjectKey, h Header, ps *PartSet, stored []byte) ([]byte, error) {
	r, err := ok.NewReader(h, ps, bytes.NewReader(stored))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	_, err = io.Copy(&out, r)
	return out.Bytes(), err
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i%251) ^ seed
	}
	return b
}

func TestRoundTripV2(t *testing.T) {
	kp := &keystest.Provider{}
	plain := pattern(3*stream.ChunkSize+17, 1)
	ok, h := newObjectV2(t, kp, Params{Bucket: "b", Key: "dir/obj", Size: int64(len(plain))})
	ct, _ := segmentV2(t, ok, 0, plain)
	if h.CiphertextSize() != int64(len(ct)) || h.PlaintextSize() != int64(len(plain)) {
		t.Fatal("header sizes")
	}
	parsed, err := Parse(h.String())
	if err != nil || parsed.String() != h.String() {
		t.Fatalf("parse/marshal: %v", err)
	}
	if len(h.sealedKey()) != SealedKeySizeV2 || parsed.KeyObject() {
		t.Fatal("sealed key")
	}
	ok2, err := Open(ctx, kp, parsed, "b", "dir/obj")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readObject(ok2, parsed, nil, ct); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("decrypt: %v", err)
	}
	l, err := ObjectLayout(parsed, int64(len(ct)), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]int64{{0, 1}, {5, stream.ChunkSize}, {int64(len(plain)) - 3, 3}} {
		rg, _ := l.Range(r[0], r[1])
		rr, err := ok2.NewRangeReader(l, rg, bytes.NewReader(ct[rg.CipherOffset:rg.CipherOffset+rg.CipherLength]))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(rr); err != nil || !bytes.Equal(got, plain[r[0]:r[0]+r[1]]) {
			t.Fatalf("range %v: %v", r, err)
		}
	}
	// A stored size other than the header's is refused up front.
	if _, err := ObjectLayout(parsed, int64(len(ct))+1, nil); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("extended object: %v", err)
	}
	// Truncated or extended content fails at the end.
	for _, bad := range [][]byte{ct[:len(ct)-1], append(append([]byte(nil), ct...), 0)} {
		if _, err := readObject(ok2, parsed, nil, bad); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("altered length: %v", err)
		}
	}
	// Version 1 writers refuse to run with a version 2 key and back.
	if _, err := ok.EncryptSegment(0, bytes.NewReader(nil), nil); err != nil {
		t.Fatal(err)
	}
	ok1, _ := newObject(t, kp, Params{Bucket: "b", Key: "k"})
	if _, err := ok1.EncryptSegment(0, bytes.NewReader(nil), nil); err == nil {
		t.Fatal("version 2 segment under a version 1 key")
	}
}

// segment labels differ between versions: the same object key derives
// unrelated keys.
func TestLabelsV2(t *testing.T) {
	raw := bytes.Repeat([]byte{7}, 32)
	k1, _ := newObjectKey(1, raw)
	k2, _ := newObjectKey(2, raw)
	var salt [stream.SaltSize]byte
	if bytes.Equal(k1.commitment(), k2.commitment()) || bytes.Equal(k1.SegmentKey(1), k2.SegmentKeyV2(1, &salt)) ||
		bytes.Equal(k1.UploadTag("u"), k2.UploadTag("u")) {
		t.Fatal("version 1 and 2 keys coincide")
	}
	salt2 := salt
	salt2[15] = 1
	if bytes.Equal(k2.SegmentKeyV2(1, &salt), k2.SegmentKeyV2(1, &salt2)) || bytes.Equal(k2.SegmentKeyV2(1, &salt), k2.SegmentKeyV2(2, &salt)) {
		t.Fatal("segment keys do not depend on salt and number")
	}
}

// upload is a version 2 multipart upload under test: the object key and
// header from CreateMultipartUpload and every upload of every part.
type upload struct {
	t      *testing.T
	ok     *ObjectKey
	h      Header
	bucket string
	key    string
}

type part struct {
	plain  []byte
	stored []byte
	salt   [stream.SaltSize]byte
}

func newUpload(t *testing.T, kp keys.Provider, bucket, key string) *upload {
	ok, h := newObjectV2(t, kp, Params{Bucket: bucket, Key: key, Multipart: true})
	return &upload{t: t, ok: ok, h: h, bucket: bucket, key: key}
}

func (u *upload) part(n uint32, plain []byte) part {
	ct, salt := segmentV2(u.t, u.ok, n, plain)
	return part{plain: plain, stored: ct, salt: salt}
}

// complete builds the stored object from parts and seals their part set.
func (u *upload) complete(parts []part) ([]byte, PartSetRecord) {
	var obj []byte
	var salts [][stream.SaltSize]byte
	for _, p := range parts {
		obj = append(obj, p.stored...)
		salts = append(salts, p.salt)
	}
	ps := PartSet{Parts: len(parts), PartSize: int64(len(parts[0].plain)), LastSize: int64(len(parts[len(parts)-1].plain)), Salts: SaltsDigest(salts)}
	rec, err := u.ok.SealPartSet(u.h, u.bucket, u.key, ps)
	if err != nil {
		u.t.Fatal(err)
	}
	return obj, rec
}

// open opens the object key and the record as a reader would, and checks
// the stored size of obj against the record's layout.
func (u *upload) open(kp keys.Provider, obj []byte, record string) (*ObjectKey, *PartSet, *stream.Layout, error) {
	ok, err := Open(ctx, kp, u.h, u.bucket, u.key)
	if err != nil {
		return nil, nil, nil, err
	}
	rec, err := ParsePartSetRecord(record)
	if err != nil {
		return nil, nil, nil, err
	}
	ps, err := ok.OpenPartSet(u.h, u.bucket, u.key, rec)
	if err != nil {
		return nil, nil, nil, err
	}
	l, err := ObjectLayout(u.h, int64(len(obj)), &ps)
	return ok, &ps, l, err
}

// read reads the whole object as a reader would.
func (u *upload) read(kp keys.Provider, obj []byte, record string) ([]byte, error) {
	ok, ps, _, err := u.open(kp, obj, record)
	if err != nil {
		return nil, err
	}
	return readObject(ok, u.h, ps, obj)
}

// readRange reads plaintext [a, a+n) as a ranged GET would: the layout
// from the record, one fetch of the planned bytes.
func (u *upload) readRange(kp keys.Provider, obj []byte, record string, a, n int64) ([]byte, error) {
	ok, _, l, err := u.open(kp, obj, record)
	if err != nil {
		return nil, err
	}
	rg, err := l.Range(a, n)
	if err != nil {
		return nil, err
	}
	rr, err := ok.NewRangeReader(l, rg, bytes.NewReader(obj[rg.CipherOffset:rg.CipherOffset+rg.CipherLength]))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(rr)
}

// barmanPart is a part size that, like Barman's 21,474,836 bytes, is not a
// multiple of 64 KiB (scaled down to keep the test small).
const barmanPart = 3*stream.ChunkSize + 1234

func TestMultipartV2Irregular(t *testing.T) {
	kp := &keystest.Provider{}
	u := newUpload(t, kp, "backups", "base/data.tar")
	var parts []part
	var plain []byte
	for n := uint32(1); n <= 4; n++ {
		size := barmanPart
		if n == 4 {
			size = 777
		}
		p := u.part(n, pattern(size, byte(n)))
		parts = append(parts, p)
		plain = append(plain, p.plain...)
	}
	obj, rec := u.complete(parts)
	got, err := u.read(kp, obj, rec.String())
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("read: %v", err)
	}
	ps := rec.Unverified()
	if ps.PlaintextSize() != int64(len(plain)) || ps.Parts != 4 {
		t.Fatalf("part set %+v", ps)
	}
	// A listing without the layout would get this object's size wrong:
	// (stored size, N) does not determine it.
	if n, err := stream.MultipartPlaintextSizeV2(int64(len(obj)), 4); err == nil && n == int64(len(plain)) {
		t.Fatal("an irregular layout sized right by arithmetic")
	}
	// Every range within and across parts, in one fetch each.
	for _, r := range [][2]int64{{0, 10}, {barmanPart - 5, 10}, {barmanPart + stream.ChunkSize - 1, 2}, {int64(len(plain)) - 1, 1}, {0, int64(len(plain))}} {
		got, err := u.readRange(kp, obj, rec.String(), r[0], r[1])
		if err != nil || !bytes.Equal(got, plain[r[0]:r[0]+r[1]]) {
			t.Fatalf("range %v: %v", r, err)
		}
	}
}

// The set of parts is authenticated: nothing added, dropped, reordered,
// taken from another upload, or replaced by an earlier upload of the same
// part — except that a ranged read cannot tell an earlier upload of a
// part of the same size, which FORMAT.md states and this test pins.
func TestPartSetAdversarial(t *testing.T) {
	kp := &keystest.Provider{}
	u := newUpload(t, kp, "b", "obj")
	p1 := u.part(1, pattern(2*stream.ChunkSize+9, 1))
	p2a := u.part(2, pattern(2*stream.ChunkSize+9, 2)) // first upload of part 2
	p2 := u.part(2, pattern(2*stream.ChunkSize+9, 3))  // the one completed
	p3 := u.part(3, pattern(100, 4))
	p4 := u.part(4, pattern(100, 5)) // uploaded, left out of Complete
	obj, rec := u.complete([]part{p1, p2, p3})
	plain := append(append(append([]byte(nil), p1.plain...), p2.plain...), p3.plain...)
	if got, err := u.read(kp, obj, rec.String()); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("genuine object: %v", err)
	}
	join := func(ps ...part) []byte {
		var b []byte
		for _, p := range ps {
			b = append(b, p.stored...)
		}
		return b
	}
	other := newUpload(t, kp, "b", "obj") // another upload to the same name
	o2 := other.part(2, p2.plain)
	_, otherRec := other.complete([]part{other.part(1, p1.plain), o2, other.part(3, p3.plain)})
	for name, stored := range map[string][]byte{
		"last part dropped":                   join(p1, p2),
		"extended by an uncompleted part":     join(p1, p2, p3, p4),
		"part 3 replaced by part 4":           join(p1, p2, p4),
		"parts reordered":                     join(p2, p1, p3),
		"part 2 from another upload":          join(p1, o2, p3),
		"earlier upload of part 2":            join(p1, p2a, p3),
		"part 1 twice":                        join(p1, p1, p3),
		"chunk of the earlier upload spliced": append(append(append(join(p1), p2.stored[:stream.EncryptedChunkSizeV2]...), p2a.stored[stream.EncryptedChunkSizeV2:]...), p3.stored...),
	} {
		if got, err := u.read(kp, stored, rec.String()); !errors.Is(err, ErrAuthentication) {
			t.Errorf("%s: read %d bytes, err %v", name, len(got), err)
		}
	}
	// The record of another upload to the same name, the record moved to
	// another name, and any altered record fail.
	if _, err := u.read(kp, obj, otherRec.String()); !errors.Is(err, ErrAuthentication) {
		t.Errorf("another upload's record: %v", err)
	}
	moved := &upload{t: t, ok: u.ok, h: u.h, bucket: "b", key: "obj2"}
	if _, err := moved.read(kp, obj, rec.String()); !errors.Is(err, ErrAuthentication) {
		t.Errorf("record under another name: %v", err)
	}
	raw := []byte(rec)
	for i := range raw {
		for _, bit := range []byte{1, 0x80} {
			b := append([]byte(nil), raw...)
			b[i] ^= bit
			r, err := ParsePartSetRecordBinary(b)
			if err != nil {
				continue
			}
			if _, err := u.ok.OpenPartSet(u.h, "b", "obj", r); !errors.Is(err, ErrAuthentication) {
				t.Fatalf("record byte %d bit %#x: %v", i, bit, err)
			}
		}
	}
	// The known limit: a ranged read inside part 2 cannot tell the earlier
	// upload of part 2 (same size) from the completed one, since only the
	// digest of all salts is recorded. A whole read does (above).
	stale := join(p1, p2a, p3)
	got, err := u.readRange(kp, stale, rec.String(), int64(len(p1.plain))+5, 10)
	if err != nil || !bytes.Equal(got, p2a.plain[5:15]) {
		t.Fatalf("ranged read of an earlier upload of a part: %v (FORMAT.md says it authenticates)", err)
	}
	// But a ranged read checks the part count and layout: the stored size
	// of an extended or truncated object does not match.
	for _, stored := range [][]byte{join(p1, p2, p3, p4), join(p1, p2)} {
		if _, err := u.readRange(kp, stored, rec.String(), 0, 10); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("ranged read of an object of %d bytes: %v", len(stored), err)
		}
	}
}

func TestPartSetRecordParsing(t *testing.T) {
	kp := &keystest.Provider{}
	u := newUpload(t, kp, "b", "k")
	_, rec := u.complete([]part{u.part(1, pattern(10, 1))})
	s := rec.String()
	if len(s) != 111 {
		t.Fatalf("record of %d characters", len(s))
	}
	back, err := ParsePartSetRecord(s)
	if err != nil || back.String() != s {
		t.Fatalf("parse/marshal: %v", err)
	}
	mut := func(f func(b []byte)) []byte {
		b := append([]byte(nil), rec...)
		f(b)
		return b
	}
	for name, b := range map[string][]byte{
		"version 1":        mut(func(b []byte) { b[0] = 1 }),
		"no parts":         mut(func(b []byte) { b[1], b[2] = 0, 0 }),
		"10001 parts":      mut(func(b []byte) { b[1], b[2] = 0x27, 0x11 }),
		"one part, P != L": mut(func(b []byte) { b[10] ^= 1 }),
		"huge size":        mut(func(b []byte) { b[3] = 0x80 }),
		"short":            rec[:len(rec)-1],
		"long":             append(append([]byte(nil), rec...), 0),
	} {
		if _, err := ParsePartSetRecordBinary(b); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	for _, v := range []string{"", s + "A", s[:len(s)-1], strings.Replace(s, s[:1], "+", 1), s[:len(s)-1] + string(flipLastBits(s[len(s)-1]))} {
		if r, err := ParsePartSetRecord(v); err == nil && r.String() != v {
			t.Errorf("non-canonical %q accepted", v)
		}
	}
	// Part sets belong to version 2 multipart objects only.
	single, hs := newObjectV2(t, kp, Params{Bucket: "b", Key: "k", Size: 1})
	if _, err := single.SealPartSet(hs, "b", "k", rec.Unverified()); err == nil {
		t.Fatal("part set for a single PUT")
	}
	if _, err := single.OpenPartSet(hs, "b", "k", rec); !errors.Is(err, ErrAuthentication) {
		t.Fatal("part set opened for a single PUT")
	}
	if _, err := u.ok.SealPartSet(u.h, "b", "k", PartSet{Parts: 2, PartSize: 1, LastSize: -1}); err == nil {
		t.Fatal("invalid part set sealed")
	}
	if !IsReservedTag("s3seal-parts") || IsReservedTag("s3seal") {
		t.Fatal("IsReservedTag")
	}
}

func TestProvidersV2(t *testing.T) {
	for _, name := range []string{"local", "aws-kms", "kmip", "pkcs11", "age"} {
		kp := &keystest.Provider{Kind: name}
		ok, h := newObjectV2(t, kp, Params{Bucket: "b", Key: "k", Size: 3})
		if h.Provider().String() != name {
			t.Fatalf("provider %s written as %s", name, h.Provider())
		}
		back, err := Parse(h.String())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if ok2, err := Open(ctx, kp, back, "b", "k"); err != nil || !bytes.Equal(ok2.commitment(), ok.commitment()) {
			t.Fatalf("%s: open: %v", name, err)
		}
		p, _ := ProviderFromName(name)
		if p == ProviderAge {
			// Version 1 names the providers up to pkcs11, not age.
			if _, _, err := New(ctx, kp, Params{Bucket: "b", Key: "k"}); err == nil {
				t.Fatalf("version 1 header with provider %s", name)
			}
			b := append([]byte(nil), back...)
			b[0] = 1
			if _, err := ParseBinary(b[:len(b)-12]); err == nil {
				t.Fatalf("version 1 parser accepted provider %d", p)
			}
		}
	}
	if _, err := ProviderFromName("vault"); err == nil {
		t.Fatal("unknown provider name accepted")
	}
	if s := Provider(6).String(); s != "unknown(6)" {
		t.Fatal(s)
	}
}

// Wrapped keys too large for the metadata (post-quantum age recipients')
// live in key objects that the header references by SHA-256.
func TestKeyObject(t *testing.T) {
	kp := &keystest.Provider{Kind: "age", WrappedSize: 1200}
	if _, _, err := NewV2(ctx, kp, Params{Bucket: "b", Key: "k", Size: 1}); err == nil {
		t.Fatal("a 1200-byte wrapped key without a key object")
	}
	stored := map[string][]byte{}
	store := func(ref [WrappedKeyRefSize]byte, w []byte) error {
		stored[KeyObjectName(ref)] = append([]byte(nil), w...)
		return nil
	}
	plain := pattern(1000, 9)
	ok, h, err := NewV2(ctx, kp, Params{Bucket: "b", Key: "k", Size: int64(len(plain)), StoreWrappedKey: store})
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := segmentV2(t, ok, 0, plain)
	if !h.KeyObject() || len(h.WrappedKey()) != WrappedKeyRefSize || len(stored) != 1 {
		t.Fatalf("header does not reference a key object: %v, %d", h.KeyObject(), len(stored))
	}
	name := KeyObjectName([WrappedKeyRefSize]byte(h.WrappedKey()))
	if !strings.HasPrefix(name, ".s3seal/keys/") || len(name) != len(".s3seal/keys/")+64 {
		t.Fatal(name)
	}
	ko := stored[name]
	if ref := sha256.Sum256(ko); !bytes.Equal(ref[:], h.WrappedKey()) || len(ko) != 1200 {
		t.Fatal("key object content")
	}
	if h.FieldSize() > 400 {
		t.Fatalf("header with a key object takes %d bytes of metadata", h.FieldSize())
	}
	var need *KeyObjectNeededError
	if _, err := Open(ctx, kp, h, "b", "k"); !errors.As(err, &need) || KeyObjectName(need.Ref) != name {
		t.Fatalf("Open without the key object: %v", err)
	}
	ok2, err := OpenWithKeyObject(ctx, kp, h, "b", "k", ko)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readObject(ok2, h, nil, ct); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("read: %v", err)
	}
	bad := append([]byte(nil), ko...)
	bad[100] ^= 1
	if _, err := OpenWithKeyObject(ctx, kp, h, "b", "k", bad); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("altered key object: %v", err)
	}
	// Copy keeps the reference; the copy opens under its new name.
	h2, err := CopyWithKeyObject(ctx, kp, h, "b", "k", "b2", "k2", nil, ko)
	if err != nil || !h2.KeyObject() || !bytes.Equal(h2.WrappedKey(), h.WrappedKey()) {
		t.Fatalf("copy: %v", err)
	}
	if _, err := OpenWithKeyObject(ctx, kp, h2, "b2", "k2", ko); err != nil {
		t.Fatal(err)
	}
	// Rotation within the provider writes a new key object; rotation out
	// of it (a provider with small wrapped keys) brings the key back into
	// the header. Neither touches the content.
	kp.Active = "age-2026"
	kp.Allowed = []string{"test-key"}
	h3, err := RotateWithKeyObject(ctx, kp, h, "b", "k", nil, ko, store)
	if err != nil || !h3.KeyObject() || bytes.Equal(h3.WrappedKey(), h.WrappedKey()) || len(stored) != 2 {
		t.Fatalf("rotation to a new age key: %v", err)
	}
	ko3 := stored[KeyObjectName([WrappedKeyRefSize]byte(h3.WrappedKey()))]
	small := &keystest.Provider{Kind: "age", Active: "small", Allowed: []string{"age-2026"}}
	h4, err := RotateWithKeyObject(ctx, small, h3, "b", "k", nil, ko3, nil)
	if err != nil || h4.KeyObject() || len(h4.WrappedKey()) != 60 {
		t.Fatalf("rotation out of key objects: %v", err)
	}
	ok4, err := Open(ctx, small, h4, "b", "k")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readObject(ok4, h4, nil, ct); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("content after two rotations: %v", err)
	}
	// A reference of the wrong length, or the flag in version 1, is refused.
	b := append([]byte(nil), h...)
	b[2] = flagKeyObject
	b[0] = Version
	if _, err := ParseBinary(b[:len(b)-12]); err == nil {
		t.Fatal("version 1 header with a key object")
	}
}

// Rotation changes how the data key is wrapped, never the object key or
// the name, so a multipart object's part-set record stays valid: within a
// provider, into a key object and out of it again.
func TestPartSetSurvivesRotation(t *testing.T) {
	stored := map[string][]byte{}
	store := func(ref [WrappedKeyRefSize]byte, w []byte) error {
		stored[KeyObjectName(ref)] = append([]byte(nil), w...)
		return nil
	}
	small := &keystest.Provider{Kind: "age", Active: "small", Allowed: []string{"big"}}
	u := newUpload(t, small, "b", "mp")
	p1, p2 := u.part(1, pattern(stream.ChunkSize+3, 1)), u.part(2, pattern(10, 2))
	obj, rec := u.complete([]part{p1, p2})
	plain := append(append([]byte(nil), p1.plain...), p2.plain...)
	big := &keystest.Provider{Kind: "age", Active: "big", Allowed: []string{"small"}, WrappedSize: 1200}
	h2, err := RotateWithKeyObject(ctx, big, u.h, "b", "mp", nil, nil, store)
	if err != nil || !h2.KeyObject() {
		t.Fatalf("rotation into a key object: %v", err)
	}
	ko := stored[KeyObjectName([WrappedKeyRefSize]byte(h2.WrappedKey()))]
	h3, err := RotateWithKeyObject(ctx, small, h2, "b", "mp", nil, ko, nil)
	if err != nil || h3.KeyObject() {
		t.Fatalf("rotation out of a key object: %v", err)
	}
	for name, c := range map[string]struct {
		h  Header
		ko []byte
	}{"into a key object": {h2, ko}, "out again": {h3, nil}} {
		ok, err := OpenWithKeyObject(ctx, big, c.h, "b", "mp", c.ko)
		if c.ko == nil {
			ok, err = Open(ctx, small, c.h, "b", "mp")
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ps, err := ok.OpenPartSet(c.h, "b", "mp", rec)
		if err != nil {
			t.Fatalf("%s: the record no longer verifies: %v", name, err)
		}
		if got, err := readObject(ok, c.h, &ps, obj); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%s: read: %v", name, err)
		}
	}
}

// Objects written in version 1 (the committed vectors) are read, copied
// and rotated by this code, and stay version 1.
func TestVersion1ObjectsStayReadable(t *testing.T) {
	for _, v := range loadVectors(t, vectorsFile) {
		t.Run(v.Name, func(t *testing.T) {
			kp := v.provider(t)
			h, err := Parse(v.Metadata)
			if err != nil || h.Version() != 1 {
				t.Fatalf("version 1 metadata: %v", err)
			}
			stored := v.stored(t)
			want := bytes.Join(v.plaintexts(t), nil)
			ok, err := Open(ctx, kp, h, v.Bucket, v.Key)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := readObject(ok, h, nil, stored); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("read: %v", err)
			}
			if fips140.Enforced() {
				// The version 1 seal's fixed nonce cannot be used to
				// encrypt in FIPS 140-only mode: such builds copy and
				// rotate version 1 objects by re-encrypting them.
				if _, err := Copy(ctx, kp, h, v.Bucket, v.Key, "elsewhere", "x", nil); err == nil || !strings.Contains(err.Error(), "FIPS 140-only") {
					t.Fatalf("version 1 reseal in FIPS 140-only mode: %v", err)
				}
				if _, err := Rotate(ctx, kp, h, v.Bucket, v.Key, nil); err == nil || !strings.Contains(err.Error(), "re-encrypting") {
					t.Fatalf("version 1 rotation in FIPS 140-only mode: %v", err)
				}
				return
			}
			h2, err := Copy(ctx, kp, h, v.Bucket, v.Key, "elsewhere", "moved/"+v.Key, nil)
			if err != nil || h2.Version() != 1 {
				t.Fatalf("reseal: %v", err)
			}
			ok2, err := Open(ctx, kp, h2, "elsewhere", "moved/"+v.Key)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := readObject(ok2, h2, nil, stored); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("read after reseal: %v", err)
			}
			h3, err := Rotate(ctx, kp, h, v.Bucket, v.Key, nil)
			if err != nil || h3.Version() != 1 {
				t.Fatalf("rotate: %v", err)
			}
			if !h.Multipart() {
				l, err := ObjectLayout(h, int64(len(stored)), nil)
				if err != nil || l.Version() != 1 {
					t.Fatalf("layout: %v", err)
				}
				rg, _ := l.Range(0, max(l.PlaintextSize(), 1))
				if l.PlaintextSize() > 0 {
					rr, err := ok.NewRangeReader(l, rg, bytes.NewReader(stored))
					if err != nil {
						t.Fatal(err)
					}
					if got, err := io.ReadAll(rr); err != nil || !bytes.Equal(got, want) {
						t.Fatalf("range: %v", err)
					}
				}
			}
		})
	}
}

// The documented limit of version 1: trailing parts of a multipart object
// can be removed at the store and the rest still authenticates.
func TestVersion1TruncationStillPossible(t *testing.T) {
	kp := &keystest.Provider{}
	ok, h := newObject(t, kp, Params{Bucket: "b", Key: "k", Multipart: true})
	p1, p2 := pattern(100, 1), pattern(50, 2)
	part1 := encryptWith(t, ok, 1, p1)
	obj := append(append([]byte(nil), part1...), encryptWith(t, ok, 2, p2)...)
	if got, err := readObject(ok, h, nil, obj); err != nil || len(got) != 150 {
		t.Fatalf("whole: %v", err)
	}
	if got, err := readObject(ok, h, nil, part1); err != nil || !bytes.Equal(got, p1) {
		t.Fatalf("version 1 truncated to part 1: %v (FORMAT.md says it authenticates)", err)
	}
}

func TestObjectReaderErrors(t *testing.T) {
	kp := &keystest.Provider{}
	u := newUpload(t, kp, "b", "k")
	if _, err := u.ok.NewReader(u.h, nil, bytes.NewReader(nil)); err == nil {
		t.Fatal("version 2 multipart read without a part set")
	}
	if _, err := ObjectLayout(u.h, 100, nil); err == nil {
		t.Fatal("version 2 multipart layout without a part set")
	}
	ok1, h1 := newObject(t, kp, Params{Bucket: "b", Key: "k", Multipart: true})
	if _, err := ObjectLayout(h1, 100, nil); err == nil {
		t.Fatal("version 1 multipart layout from nothing")
	}
	if _, err := ok1.NewReader(u.h, nil, bytes.NewReader(nil)); err == nil {
		t.Fatal("version 2 header with a version 1 key")
	}
	l, _ := stream.SingleLayoutV2(200)
	if _, err := ok1.NewRangeReader(l, stream.Range{}, nil); err == nil {
		t.Fatal("version 2 layout with a version 1 key")
	}
}

// The second half of the attack of the security review: part n filled
// once by UploadPart and once by UploadPartCopy (the copy re-encrypts the
// source's plaintext as part n of this upload). In version 1 both used
// K(n) with nonces from 0; in version 2 each draws its salt, so the two
// ciphertexts share no key, and their XOR says nothing about the
// plaintexts.
func TestPartCopyAfterUploadPart(t *testing.T) {
	kp := &keystest.Provider{}
	u := newUpload(t, kp, "b", "k")
	uploaded := pattern(3*stream.ChunkSize, 1)
	source := pattern(4*stream.ChunkSize, 2) // the copy source's plaintext
	copied := source[100 : 100+len(uploaded)]
	ca, sa := segmentV2(t, u.ok, 3, uploaded)
	cb, sb := segmentV2(t, u.ok, 3, copied)
	if sa == sb || bytes.Equal(u.ok.SegmentKeyV2(3, &sa), u.ok.SegmentKeyV2(3, &sb)) {
		t.Fatal("UploadPart and UploadPartCopy of one part share a key")
	}
	const ec, off = stream.EncryptedChunkSizeV2, stream.SaltSize + stream.NonceSize
	for c := 0; c < 3; c++ {
		da, db := ca[c*ec+off:c*ec+off+stream.ChunkSize], cb[c*ec+off:c*ec+off+stream.ChunkSize]
		same := 0
		for i := range da {
			if da[i]^db[i] == uploaded[c*stream.ChunkSize+i]^copied[c*stream.ChunkSize+i] {
				same++
			}
		}
		if same > stream.ChunkSize/64 {
			t.Fatalf("chunk %d: %d bytes of the ciphertexts' XOR equal the plaintexts' XOR", c, same)
		}
	}
	// Whichever of the two the client completes is the one the record
	// binds; the other does not read as part 3.
	p1, p2 := u.part(1, pattern(len(uploaded), 3)), u.part(2, pattern(len(uploaded), 4))
	obj, rec := u.complete([]part{p1, p2, {plain: copied, stored: cb, salt: sb}})
	want := append(append(append([]byte(nil), p1.plain...), p2.plain...), copied...)
	if got, err := u.read(kp, obj, rec.String()); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("completed copy: %v", err)
	}
	swapped := append(append(append([]byte(nil), p1.stored...), p2.stored...), ca...)
	if _, err := u.read(kp, swapped, rec.String()); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("the UploadPart read as the completed UploadPartCopy: %v", err)
	}
}

// TestPartSetTag: the tag value is the record, optionally followed by the
// plaintext multipart ETag; anything else after the record is refused.
func TestPartSetTag(t *testing.T) {
	kp := &keystest.Provider{}
	u := newUpload(t, kp, "b", "k")
	_, rec := u.complete([]part{u.part(1, pattern(10, 1)), u.part(2, pattern(10, 2))})
	etag := strings.Repeat("0a", 16) + "-2"
	for _, c := range []struct {
		value, etag string
		ok          bool
	}{
		{rec.String(), "", true},
		{PartSetTagValue(rec, ""), "", true},
		{PartSetTagValue(rec, etag), etag, true},
		{rec.String() + ".", "", false},
		{rec.String() + "." + strings.Repeat("0a", 16) + "-3", strings.Repeat("0a", 16) + "-3", true}, // rewritten in other parts
		{rec.String() + "." + strings.Repeat("0a", 16) + "-0", "", false},
		{rec.String() + "." + strings.Repeat("0a", 16) + "-10001", "", false},
		{rec.String() + "." + strings.Repeat("0a", 16) + "-+2", "", false},
		{rec.String() + "." + strings.Repeat("0a", 16) + "-02", "", false}, // not canonical
		{rec.String() + "." + strings.Repeat("0A", 16) + "-2", "", false},  // upper case
		{rec.String() + "." + strings.Repeat("0a", 15) + "-2", "", false},  // short
		{rec.String() + "." + strings.Repeat("0g", 16) + "-2", "", false},  // not hex
		{rec.String() + "." + strings.Repeat("0a", 16), "", false},         // no count
		{rec.String() + "." + etag + "." + etag, "", false},
		{rec.String() + " " + etag, "", false},
		{"." + etag, "", false},
	} {
		r, e, err := ParsePartSetTag(c.value)
		if (err == nil) != c.ok || e != c.etag {
			t.Errorf("%q: etag %q, err %v", c.value, e, err)
		}
		if err == nil && r.String() != rec.String() {
			t.Errorf("%q: another record", c.value)
		}
		if err != nil && r != nil {
			t.Errorf("%q: a record with an error", c.value)
		}
	}
}
