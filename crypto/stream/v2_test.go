package stream

import (
	"bytes"
	"crypto/fips140"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"
)

// testSaltedKeys derives deterministic version 2 content keys for test
// object id.
func testSaltedKeys(id string) SaltedKeyFunc {
	return func(n uint32, salt *[SaltSize]byte) []byte {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], n)
		h := sha256.Sum256(append(append([]byte("stream v2 test key "+id), b[:]...), salt[:]...))
		return h[:]
	}
}

// encryptV2 encrypts plain as segment n and returns the stored bytes and
// the salt drawn.
func encryptV2(t testing.TB, keys SaltedKeyFunc, n uint32, plain []byte, opts *EncryptOptions) ([]byte, [SaltSize]byte) {
	t.Helper()
	r, err := NewEncryptReaderV2(keys, n, bytes.NewReader(plain), opts)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), r.Salt()
}

// encryptPartsV2 encrypts each part as segment 1..N.
func encryptPartsV2(t testing.TB, id string, parts [][]byte) (obj []byte, sizes []int64, salts [][SaltSize]byte) {
	t.Helper()
	for i, p := range parts {
		ct, salt := encryptV2(t, testSaltedKeys(id), uint32(i+1), p, nil)
		obj = append(obj, ct...)
		sizes = append(sizes, int64(len(ct)))
		salts = append(salts, salt)
	}
	return obj, sizes, salts
}

func decryptV2(keys SaltedKeyFunc, l *Layout, ct []byte) ([]byte, []SegmentInfo, error) {
	var dr *DecryptReaderV2
	if l == nil {
		dr = NewMultipartScanReaderV2(keys, bytes.NewReader(ct))
	} else {
		var err error
		if dr, err = NewDecryptReaderV2(keys, l, bytes.NewReader(ct)); err != nil {
			return nil, nil, err
		}
	}
	var out bytes.Buffer
	_, err := io.Copy(&out, dr)
	return out.Bytes(), dr.Segments(), err
}

func TestCiphertextSizeV2Table(t *testing.T) {
	const T = TrailerSizeV2
	for _, tc := range []struct{ plain, cipher int64 }{
		{0, T},
		{1, 1 + 44 + T},
		{ChunkSize - 1, ChunkSize - 1 + 44 + T},
		{ChunkSize, ChunkSize + 44 + T},
		{ChunkSize + 1, ChunkSize + 1 + 88 + T},
		{2*ChunkSize + 500, 2*ChunkSize + 500 + 132 + T},
		{MaxSegmentSizeV2, MaxSegmentSizeV2 + 44*(MaxSegmentSizeV2/ChunkSize) + T},
	} {
		got, err := CiphertextSizeV2(tc.plain)
		if err != nil || got != tc.cipher {
			t.Errorf("CiphertextSizeV2(%d) = %d, %v; want %d", tc.plain, got, err, tc.cipher)
		}
		back, err := PlaintextSizeV2(tc.cipher)
		if err != nil || back != tc.plain {
			t.Errorf("PlaintextSizeV2(%d) = %d, %v; want %d", tc.cipher, back, err, tc.plain)
		}
	}
	for _, bad := range []int64{-1, MaxSegmentSizeV2 + 1} {
		if _, err := CiphertextSizeV2(bad); err == nil {
			t.Errorf("CiphertextSizeV2(%d) succeeded", bad)
		}
	}
	// Near every chunk boundary each stored size is the image of exactly
	// one plaintext size, or refused.
	seen := map[int64]int64{}
	for k := int64(0); k < 4; k++ {
		for d := int64(-50); d <= 50; d++ {
			p := k*ChunkSize + d
			if p < 0 {
				continue
			}
			c, _ := CiphertextSizeV2(p)
			if q, ok := seen[c]; ok && q != p {
				t.Fatalf("plaintext sizes %d and %d both store as %d", p, q, c)
			}
			seen[c] = p
		}
	}
	for c := int64(T - 2); c < 3*EncryptedChunkSizeV2+T+50; c++ {
		p, err := PlaintextSizeV2(c)
		if want, ok := seen[c]; ok {
			if err != nil || p != want {
				t.Fatalf("PlaintextSizeV2(%d) = %d, %v; want %d", c, p, err, want)
			}
		} else if err == nil {
			if back, _ := CiphertextSizeV2(p); back != c {
				t.Fatalf("PlaintextSizeV2(%d) = %d, which stores as %d", c, p, back)
			}
		} else if !errors.Is(err, ErrInvalidSize) {
			t.Fatalf("PlaintextSizeV2(%d): %v", c, err)
		}
	}
}

func TestRoundTripV2(t *testing.T) {
	keys := testSaltedKeys("rt")
	for _, size := range testSizes {
		plain := testPlaintext(size, 1)
		ct, salt := encryptV2(t, keys, 0, plain, nil)
		if c, _ := CiphertextSizeV2(int64(size)); int64(len(ct)) != c {
			t.Fatalf("size %d: %d stored bytes, CiphertextSizeV2 says %d", size, len(ct), c)
		}
		l, err := SingleLayoutV2(int64(len(ct)))
		if err != nil || l.PlaintextSize() != int64(size) || l.Version() != 2 {
			t.Fatalf("size %d: layout %v", size, err)
		}
		for _, step := range testSteps {
			if size > 1<<20 && step < 4096 {
				continue
			}
			// EncryptReaderV2 with reads of step bytes gives a valid
			// object of the right size (another salt: other bytes).
			er, err := NewEncryptReaderV2(keys, 0, bytes.NewReader(plain), nil)
			if err != nil {
				t.Fatal(err)
			}
			again, err := readAllStep(er, step)
			if err != nil || len(again) != len(ct) {
				t.Fatalf("size %d step %d: %v, %d bytes", size, step, err, len(again))
			}
			if er.Salt() == salt {
				t.Fatal("two encryptions drew the same salt")
			}
			var src io.Reader = bytes.NewReader(again)
			if step == 7 {
				src = oneByteAtATime{src}
			}
			dr, err := NewDecryptReaderV2(keys, l, src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := readAllStep(dr, step)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("size %d step %d: decrypt: %v, equal %v", size, step, err, bytes.Equal(got, plain))
			}
			segs := dr.Segments()
			if len(segs) != 1 || segs[0].Number != 0 || segs[0].Salt != er.Salt() || segs[0].Trailer.Length != int64(size) {
				t.Fatalf("segments %+v", segs)
			}
		}
		dr, _ := NewDecryptReaderV2(keys, l, iotest.HalfReader(bytes.NewReader(ct)))
		if err := iotest.TestReader(dr, plain); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if size > 0 && size <= 4*ChunkSize {
			checkRanges(t, func(rg Range, src io.Reader) (*RangeReader, error) { return NewRangeReaderV2(keys, l, rg, src) }, l, ct, plain)
		}
	}
}

func TestChecksumTrailerV2(t *testing.T) {
	keys := testSaltedKeys("sum")
	sum := Checksum{Algorithm: ChecksumSHA256, Value: bytes.Repeat([]byte{9}, 32)}
	var gotLen int64 = -1
	opts := &EncryptOptions{Checksum: func(n int64) (Checksum, error) { gotLen = n; return sum, nil }}
	plain := testPlaintext(ChunkSize+3, 2)
	ct, _ := encryptV2(t, keys, 0, plain, opts)
	if gotLen != int64(len(plain)) {
		t.Fatalf("checksum callback saw length %d", gotLen)
	}
	l, _ := SingleLayoutV2(int64(len(ct)))
	_, segs, err := decryptV2(keys, l, ct)
	if err != nil || segs[0].Trailer.Checksum.Algorithm != ChecksumSHA256 || !bytes.Equal(segs[0].Trailer.Checksum.Value, sum.Value) {
		t.Fatalf("checksum: %v %+v", err, segs)
	}
	// A failing callback leaves the segment without a trailer.
	bad := &EncryptOptions{Checksum: func(int64) (Checksum, error) { return Checksum{}, errors.New("late checksum wrong") }}
	er, _ := NewEncryptReaderV2(keys, 0, bytes.NewReader(plain), bad)
	if _, err := io.ReadAll(er); err == nil || err.Error() != "late checksum wrong" {
		t.Fatalf("callback error: %v", err)
	}
}

var partLayoutsV2 = append(partLayouts,
	// Barman's part size, which is not a multiple of 64 KiB, scaled down.
	[]int{3*ChunkSize + 1234, 3*ChunkSize + 1234, 3*ChunkSize + 1234, 77},
	[]int{ChunkSize - 44, ChunkSize - 44, 5},
)

func TestMultipartV2(t *testing.T) {
	for _, sizes := range partLayoutsV2 {
		t.Run(fmt.Sprint(sizes), func(t *testing.T) {
			parts, plain := makeParts(sizes)
			obj, csizes, salts := encryptPartsV2(t, "mp", parts)
			keys := testSaltedKeys("mp")
			l, err := MultipartLayoutV2(csizes)
			if err != nil {
				t.Fatal(err)
			}
			if l.PlaintextSize() != int64(len(plain)) || l.CiphertextSize() != int64(len(obj)) {
				t.Fatal("layout sizes")
			}
			for _, layout := range []*Layout{l, nil} {
				got, segs, err := decryptV2(keys, layout, obj)
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("layout %v: %v, equal %v", layout != nil, err, bytes.Equal(got, plain))
				}
				if len(segs) != len(sizes) {
					t.Fatalf("%d segments for %d parts", len(segs), len(sizes))
				}
				for i, s := range segs {
					if s.Number != uint32(i+1) || s.Salt != salts[i] || s.Trailer.Length != int64(sizes[i]) {
						t.Fatalf("segment %d: %+v", i, s)
					}
				}
			}
			for _, step := range []int{1, 100, ChunkSize + 1} {
				dr := NewMultipartScanReaderV2(keys, oneByteAtATime{bytes.NewReader(obj)})
				if step != 1 {
					dr, _ = NewDecryptReaderV2(keys, l, iotest.HalfReader(bytes.NewReader(obj)))
				}
				got, err := readAllStep(dr, step)
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("step %d: %v", step, err)
				}
			}
			if l.PlaintextSize() > 0 {
				checkRanges(t, func(rg Range, src io.Reader) (*RangeReader, error) { return NewRangeReaderV2(keys, l, rg, src) }, l, obj, plain)
			}
			// Each part alone, as GET ?partNumber= returns it, reads
			// under its own layout and no other part's.
			for i := 0; i < l.Segments(); i++ {
				seg := l.Segment(i)
				part := obj[seg.CipherOffset : seg.CipherOffset+seg.CipherSize]
				sl := l.SegmentLayout(i)
				if !sl.Multipart() || sl.Segments() != 1 || sl.Segment(0).Number != seg.Number {
					t.Fatalf("segment layout %d: %+v", i, sl.Segment(0))
				}
				got, segs, err := decryptV2(keys, sl, part)
				if err != nil || !bytes.Equal(got, parts[i]) || len(segs) != 1 || segs[0].Salt != salts[i] {
					t.Fatalf("part %d alone: %v", i+1, err)
				}
				if l.Segments() > 1 {
					other := l.SegmentLayout((i + 1) % l.Segments())
					if other.Segment(0).CipherSize == seg.CipherSize {
						if _, _, err := decryptV2(keys, other, part); !errors.Is(err, ErrAuthentication) {
							t.Fatalf("part %d read as another part: %v", i+1, err)
						}
					}
				}
			}
		})
	}
}

// Uniform layouts, as the part-set record states them, and their sizes by
// arithmetic when the part size holds whole chunks.
func TestUniformLayoutV2(t *testing.T) {
	for _, tc := range []struct {
		parts          int
		size, last     int64
		regular, valid bool
	}{
		{1, 0, 0, true, true},
		{1, 5, 5, true, true},
		{1, 5, 6, false, false},
		{3, 2 * ChunkSize, 7, true, true},
		{3, 2 * ChunkSize, 2 * ChunkSize, true, true},
		{3, 2 * ChunkSize, 3 * ChunkSize, true, true}, // a longer last part
		{4, 3*ChunkSize + 1234, 77, false, true},
		{2, ChunkSize + 1, 5, false, true},
		{0, 1, 1, false, false},
		{MaxParts + 1, 1, 1, false, false},
		{2, -1, 1, false, false},
	} {
		l, err := UniformLayoutV2(tc.parts, tc.size, tc.last)
		if (err == nil) != tc.valid {
			t.Fatalf("%+v: %v", tc, err)
		}
		if err != nil {
			continue
		}
		want := int64(tc.parts-1)*tc.size + tc.last
		if l.PlaintextSize() != want || l.Segments() != tc.parts || !l.Multipart() {
			t.Fatalf("%+v: layout %d bytes", tc, l.PlaintextSize())
		}
		n, err := MultipartPlaintextSizeV2(l.CiphertextSize(), tc.parts)
		if tc.regular && (err != nil || n != want) {
			t.Fatalf("%+v: regular layout sized %d, %v", tc, n, err)
		}
		if !tc.regular && err == nil && n == want {
			t.Fatalf("%+v: irregular layout sized right by arithmetic", tc)
		}
		u, err := UniformMultipartLayoutV2(l.CiphertextSize(), tc.parts, l.Segment(0).CipherSize)
		if tc.last <= tc.size && (err != nil || u.PlaintextSize() != want) {
			t.Fatalf("%+v: from stored sizes: %v", tc, err)
		}
	}
}

// The attack of the security review, at the crypto level: two encryptions
// of the same part number under the same object key, with different bytes
// (an UploadPart repeated with a changed buffer, or UploadPart and
// UploadPartCopy of one part number), in version 1 give ciphertexts whose
// XOR is the XOR of the plaintexts; in version 2 they share neither key nor
// nonce, and no such relation holds.
func TestKeystreamReuse(t *testing.T) {
	pa := testPlaintext(3*ChunkSize, 1)
	pb := testPlaintext(3*ChunkSize, 2)
	xor := func(a, b []byte) []byte {
		out := make([]byte, min(len(a), len(b)))
		for i := range out {
			out[i] = a[i] ^ b[i]
		}
		return out
	}
	if !fips140.Enforced() {
		// Version 1: K_n and nonces from 0 for both attempts.
		ca, cb := encrypt(t, testKey("reuse", 7), pa, nil), encrypt(t, testKey("reuse", 7), pb, nil)
		if !bytes.Equal(xor(ca[:ChunkSize], cb[:ChunkSize]), xor(pa[:ChunkSize], pb[:ChunkSize])) {
			t.Fatal("version 1 control: the keystream reuse does not show")
		}
	}
	keys := testSaltedKeys("reuse")
	ca, sa := encryptV2(t, keys, 7, pa, nil)
	cb, sb := encryptV2(t, keys, 7, pb, nil)
	if sa == sb {
		t.Fatal("the two attempts drew one salt")
	}
	want := xor(pa, pb)
	for c := 0; c < 3; c++ {
		off := c * EncryptedChunkSizeV2
		na, nb := ca[off+SaltSize:off+SaltSize+NonceSize], cb[off+SaltSize:off+SaltSize+NonceSize]
		if bytes.Equal(na, nb) {
			t.Fatalf("chunk %d: nonces repeat", c)
		}
		da := ca[off+SaltSize+NonceSize : off+SaltSize+NonceSize+ChunkSize]
		db := cb[off+SaltSize+NonceSize : off+SaltSize+NonceSize+ChunkSize]
		got := xor(da, db)
		same := 0
		for i := range got {
			if got[i] == want[c*ChunkSize+i] {
				same++
			}
		}
		// Independent keystreams agree with the plaintext XOR on about
		// 1/256 of the bytes.
		if same > ChunkSize/64 {
			t.Fatalf("chunk %d: %d of %d bytes of the ciphertext XOR equal the plaintext XOR", c, same, ChunkSize)
		}
	}
	// Both attempts decrypt, each with its own salt; neither's chunks
	// open in the other.
	l, _ := SingleLayoutV2(int64(len(ca)))
	mixed := append(append([]byte(nil), ca[:EncryptedChunkSizeV2]...), cb[EncryptedChunkSizeV2:]...)
	l7 := relabel(l, 7)
	if got, _, err := decryptV2(keys, l7, ca); err != nil || !bytes.Equal(got, pa) {
		t.Fatalf("attempt A: %v", err)
	}
	if got, _, err := decryptV2(keys, l7, mixed); !errors.Is(err, ErrAuthentication) || len(got) > ChunkSize {
		t.Fatalf("chunks of two attempts mixed: %d bytes, %v", len(got), err)
	}
}

// relabel returns a one-segment layout like l whose segment is number n
// (part n of a one-part object).
func relabel(l *Layout, n uint32) *Layout {
	if n == 0 {
		return l
	}
	c := *l
	c.first = n
	return &c
}

func TestSegmentNumbersV2(t *testing.T) {
	keys := testSaltedKeys("num")
	plain := testPlaintext(1000, 3)
	single, _ := encryptV2(t, keys, 0, plain, nil)
	part1, _ := encryptV2(t, keys, 1, plain, nil)
	ls, _ := SingleLayoutV2(int64(len(single)))
	lm, _ := MultipartLayoutV2([]int64{int64(len(part1))})
	if _, _, err := decryptV2(keys, lm, single); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("segment 0 read as part 1: %v", err)
	}
	if _, _, err := decryptV2(keys, ls, part1); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("part 1 read as segment 0: %v", err)
	}
	if _, _, err := decryptV2(testSaltedKeys("other"), ls, single); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("wrong key: %v", err)
	}
	// Version 1 readers refuse version 2 and back.
	if _, err := decryptSingle(testKey("num", 0), single); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("version 2 read as version 1: %v", err)
	}
	if _, err := NewDecryptReaderV2(keys, nil, bytes.NewReader(single)); err == nil {
		t.Fatal("no layout accepted")
	}
	l1, _ := SingleLayout(int64(len(single)))
	if _, err := NewDecryptReaderV2(keys, l1, bytes.NewReader(single)); err == nil {
		t.Fatal("a version 1 layout accepted")
	}
	if _, err := NewRangeReaderV2(keys, l1, Range{}, nil); err == nil {
		t.Fatal("NewRangeReaderV2 took a version 1 layout")
	}
	if _, err := NewRangeReader(SingleKey(testKey("num", 0)), ls, Range{}, nil); err == nil {
		t.Fatal("NewRangeReader took a version 2 layout")
	}
}

func TestBadKeysV2(t *testing.T) {
	short := func(uint32, *[SaltSize]byte) []byte { return make([]byte, 16) }
	if _, err := NewEncryptReaderV2(short, 0, bytes.NewReader(nil), nil); err == nil {
		t.Fatal("16-byte key accepted")
	}
	// A source of randomness that fails.
	opts := &EncryptOptions{Rand: iotest.ErrReader(errors.New("no entropy"))}
	if _, err := NewEncryptReaderV2(testSaltedKeys("k"), 0, bytes.NewReader(nil), opts); err == nil {
		t.Fatal("failing randomness accepted")
	}
}
