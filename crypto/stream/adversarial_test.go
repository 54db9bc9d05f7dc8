package stream

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// decryptSingle decrypts ct as segment 0 and returns what was released.
func decryptSingle(key, ct []byte) ([]byte, error) {
	dr, err := NewDecryptReader(key, bytes.NewReader(ct))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	_, err = io.Copy(&out, dr)
	return out.Bytes(), err
}

func decryptMulti(keys KeyFunc, ct []byte) ([]byte, error) {
	dr, err := NewMultipartDecryptReader(keys, bytes.NewReader(ct))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	_, err = io.Copy(&out, dr)
	return out.Bytes(), err
}

// expectFail checks that decryption failed with ErrAuthentication and
// released at most the first limit bytes of plain, unmodified.
func expectFail(t *testing.T, what string, got []byte, err error, plain []byte, limit int) {
	t.Helper()
	if !errors.Is(err, ErrAuthentication) {
		t.Fatalf("%s: error %v, want ErrAuthentication", what, err)
	}
	if len(got) > limit || !bytes.Equal(got, plain[:len(got)]) {
		t.Fatalf("%s: released %d bytes (limit %d), prefix of plaintext: %v", what, len(got), limit, bytes.Equal(got, plain[:min(len(got), len(plain))]))
	}
}

// chunkStart returns the plaintext offset of the chunk holding ciphertext
// byte o of a single segment of plainLen bytes.
func chunkStart(o, plainLen int) int {
	return min(o/EncryptedChunkSize*ChunkSize, plainLen)
}

func TestFlipEveryByte(t *testing.T) {
	key := testKey("flip", 0)
	for _, size := range []int{0, 1, ChunkSize + 300} {
		plain := testPlaintext(size, 7)
		ct := encrypt(t, key, plain, nil)
		for o := range ct {
			bit := byte(1) << (o % 8) // every bit position, spread over the bytes
			ct[o] ^= bit
			got, err := decryptSingle(key, ct)
			ct[o] ^= bit
			expectFail(t, "flip", got, err, plain, chunkStart(o, size))
		}
	}
}

func TestFlipSampledLarge(t *testing.T) {
	key := testKey("flip-large", 0)
	plain := testPlaintext(4<<20+12345, 8)
	ct := encrypt(t, key, plain, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	l, _ := SingleLayout(int64(len(ct)))
	for i := 0; i < 40; i++ {
		o := rng.IntN(len(ct))
		if i < 2 {
			o = len(ct) - 1 - i // always hit the trailer
		}
		ct[o] ^= byte(1 + rng.IntN(255))
		got, err := decryptSingle(key, ct)
		expectFail(t, "flip", got, err, plain, chunkStart(o, len(plain)))

		// The ReaderAt and RangeReader over the chunk refuse it too.
		ra, err := NewReaderAt(SingleKey(key), l, bytes.NewReader(ct))
		if err == nil {
			buf := make([]byte, len(plain))
			n, err := ra.ReadAt(buf, 0)
			expectFail(t, "ReaderAt", buf[:n], err, plain, chunkStart(o, len(plain)))
		} else if !errors.Is(err, ErrAuthentication) {
			t.Fatal(err)
		}
		po := int64(chunkStart(o, len(plain)))
		if po < int64(len(plain)) {
			rg, _ := l.Range(po, 1)
			rr, _ := NewRangeReader(SingleKey(key), l, rg, bytes.NewReader(ct[rg.CipherOffset:rg.CipherOffset+rg.CipherLength]))
			got, err := io.ReadAll(rr)
			if len(got) != 0 || !errors.Is(err, ErrAuthentication) {
				t.Fatalf("RangeReader over a flipped chunk: %d bytes, %v", len(got), err)
			}
		}
		ct[o] = encrypt(t, key, plain, nil)[o]
	}
}

func TestTruncateAndAppend(t *testing.T) {
	key := testKey("trunc", 0)
	size := 3*ChunkSize + 100
	plain := testPlaintext(size, 9)
	ct := encrypt(t, key, plain, nil)
	var cuts []int
	for c := 0; c <= 4; c++ {
		b := c * EncryptedChunkSize
		for _, d := range []int{-TrailerSize - 1, -TrailerSize, -17, -16, -1, 0, 1, 16, 17, TrailerSize} {
			if n := b + d; n >= 0 && n < len(ct) {
				cuts = append(cuts, n)
			}
		}
	}
	cuts = append(cuts, len(ct)-1, len(ct)-TrailerSize, len(ct)-TrailerSize-1)
	for _, n := range cuts {
		got, err := decryptSingle(key, ct[:n])
		expectFail(t, "truncate", got, err, plain, size)
		if len(got) == size {
			t.Fatalf("truncation at %d released the whole plaintext", n)
		}
	}
	for _, extra := range [][]byte{{0}, make([]byte, 16), make([]byte, TrailerSize), ct[len(ct)-TrailerSize:], ct[:EncryptedChunkSize]} {
		got, err := decryptSingle(key, append(append([]byte{}, ct...), extra...))
		expectFail(t, "append", got, err, plain, size)
	}
}

func TestReorderDuplicateChunks(t *testing.T) {
	key := testKey("order", 0)
	size := 3 * ChunkSize
	plain := testPlaintext(size, 10)
	ct := encrypt(t, key, plain, nil)
	chunk := func(i int) []byte { return ct[i*EncryptedChunkSize : (i+1)*EncryptedChunkSize] }
	trailer := ct[3*EncryptedChunkSize:]
	cases := map[string][][]byte{
		"swap 0,1":        {chunk(1), chunk(0), chunk(2), trailer},
		"swap 1,2":        {chunk(0), chunk(2), chunk(1), trailer},
		"duplicate 0":     {chunk(0), chunk(0), chunk(1), chunk(2), trailer},
		"duplicate last":  {chunk(0), chunk(1), chunk(2), chunk(2), trailer},
		"drop middle":     {chunk(0), chunk(2), trailer},
		"drop last":       {chunk(0), chunk(1), trailer},
		"trailer early":   {chunk(0), trailer, chunk(1), chunk(2)},
		"trailer twice":   {chunk(0), chunk(1), chunk(2), trailer, trailer},
		"trailer only":    {trailer},
		"no trailer":      {chunk(0), chunk(1), chunk(2)},
		"chunk as tail":   {chunk(0), chunk(1), chunk(2)[:TrailerSize]},
		"empty":           {},
		"other trailer":   {chunk(0), chunk(1), chunk(2), encrypt(t, key, plain[:2*ChunkSize], nil)[2*EncryptedChunkSize:]},
		"other key chunk": {chunk(0), encrypt(t, testKey("order2", 0), plain, nil)[EncryptedChunkSize : 2*EncryptedChunkSize], chunk(2), trailer},
	}
	for name, parts := range cases {
		got, err := decryptSingle(key, bytes.Join(parts, nil))
		expectFail(t, name, got, err, plain, size)
	}
}

func TestWrongKeyAndSwappedObjects(t *testing.T) {
	a := testPlaintext(2*ChunkSize+1, 11)
	b := testPlaintext(2*ChunkSize+1, 12)
	ka, kb := testKey("A", 0), testKey("B", 0)
	ca, cb := encrypt(t, ka, a, nil), encrypt(t, kb, b, nil)
	got, err := decryptSingle(ka, cb)
	expectFail(t, "B under A's key", got, err, a, 0)
	got, err = decryptSingle(kb, ca)
	expectFail(t, "A under B's key", got, err, b, 0)
	// Same key, different segment number (what a key mix-up in the
	// envelope would cause) fails too.
	got, err = decryptMulti(testKeys("A"), ca)
	expectFail(t, "segment 0 as part 1", got, err, a, 0)
}

func TestMultipartTampering(t *testing.T) {
	sizes := []int{2 * ChunkSize, 2 * ChunkSize, ChunkSize + 7}
	parts, plain := makeParts(sizes)
	obj, cs := encryptParts(t, "mpt", parts)
	keys := testKeys("mpt")
	p := func(i int) []byte {
		off := int64(0)
		for _, c := range cs[:i] {
			off += c
		}
		return obj[off : off+cs[i]]
	}
	p1end := sizes[0]
	cases := map[string]struct {
		parts [][]byte
		limit int
	}{
		"swap 1,2":       {[][]byte{p(1), p(0), p(2)}, 0},
		"swap 2,3":       {[][]byte{p(0), p(2), p(1)}, p1end},
		"duplicate 1":    {[][]byte{p(0), p(0), p(1), p(2)}, p1end},
		"drop 2":         {[][]byte{p(0), p(2)}, p1end},
		"truncated part": {[][]byte{p(0), p(1)[:len(p(1))-1], p(2)}, p1end + 2*ChunkSize},
		"extra bytes":    {[][]byte{p(0), p(1), p(2), {1, 2, 3}}, len(plain)},
		"other upload":   {[][]byte{p(0), encryptParts2(t, "mpt-other", parts)[1], p(2)}, p1end},
	}
	for name, c := range cases {
		got, err := decryptMulti(keys, bytes.Join(c.parts, nil))
		expectFail(t, name, got, err, plain, c.limit)
		if c.limit < len(plain) && len(got) == len(plain) {
			t.Fatalf("%s: whole plaintext released", name)
		}
	}
	// Sampled flips, including part boundaries.
	rng := rand.New(rand.NewPCG(3, 4))
	offsets := []int{int(cs[0]) - 1, int(cs[0]), int(cs[0] + cs[1] - TrailerSize)}
	for i := 0; i < 20; i++ {
		offsets = append(offsets, rng.IntN(len(obj)))
	}
	for _, o := range offsets {
		obj[o] ^= 0x40
		got, err := decryptMulti(keys, obj)
		obj[o] ^= 0x40
		expectFail(t, "flip", got, err, plain, len(plain))
		if len(got) == len(plain) {
			t.Fatalf("flip at %d: whole plaintext released", o)
		}
	}
	// Dropping trailing whole parts is the one change a store-level
	// attacker can make to a multipart object (FORMAT.md, "Limits"): the
	// decrypter sees a shorter, authentic object. Pin that documented
	// behaviour so a change to it is noticed.
	got, err := decryptMulti(keys, bytes.Join([][]byte{p(0), p(1)}, nil))
	if err != nil || !bytes.Equal(got, plain[:sizes[0]+sizes[1]]) {
		t.Fatalf("prefix of parts: %v", err)
	}
}

// encryptParts2 returns the individual part ciphertexts.
func encryptParts2(t *testing.T, id string, parts [][]byte) [][]byte {
	var out [][]byte
	for i, p := range parts {
		out = append(out, encrypt(t, testKey(id, uint32(i+1)), p, nil))
	}
	return out
}

func TestRangeReaderTampering(t *testing.T) {
	parts, plain := makeParts([]int{2 * ChunkSize, ChunkSize + 5})
	obj, cs := encryptParts(t, "rr", parts)
	l, _ := MultipartLayout(cs)
	keys := testKeys("rr")
	rg, _ := l.Range(ChunkSize-1, ChunkSize+10) // spans chunks 0-1 of part 1 and part 2
	fetched := obj[rg.CipherOffset : rg.CipherOffset+rg.CipherLength]
	if !rg.Trailer && rg.LastSegment == 0 {
		t.Fatal("range should end in part 2")
	}
	for _, o := range []int{0, EncryptedChunkSize - 1, EncryptedChunkSize, len(fetched) - 1} {
		bad := append([]byte{}, fetched...)
		bad[o] ^= 1
		rr, _ := NewRangeReader(keys, l, rg, bytes.NewReader(bad))
		got, err := io.ReadAll(rr)
		if !errors.Is(err, ErrAuthentication) || !bytes.Equal(got, plain[rg.Offset:rg.Offset+int64(len(got))]) {
			t.Fatalf("flip %d: %v", o, err)
		}
	}
	// Short source.
	rr, _ := NewRangeReader(keys, l, rg, bytes.NewReader(fetched[:len(fetched)-1]))
	if _, err := io.ReadAll(rr); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("short source: %v", err)
	}
	// Bytes fetched from the wrong offset (a range mix-up) do not decrypt.
	rr, _ = NewRangeReader(keys, l, rg, bytes.NewReader(obj[rg.CipherOffset+EncryptedChunkSize:]))
	if got, err := io.ReadAll(rr); len(got) != 0 || !errors.Is(err, ErrAuthentication) {
		t.Fatalf("shifted source: %d, %v", len(got), err)
	}
	// A Range not made by this layout is refused.
	bogus := rg
	bogus.Skip++
	if _, err := NewRangeReader(keys, l, bogus, bytes.NewReader(fetched)); err == nil {
		t.Fatal("inconsistent range accepted")
	}
	// A lying layout (wrong part sizes) fails when the trailers are read.
	lie, _ := MultipartLayout([]int64{cs[0] + EncryptedChunkSize, cs[1] - EncryptedChunkSize})
	if lie != nil {
		if _, err := NewReaderAt(keys, lie, bytes.NewReader(obj)); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("lying layout: %v", err)
		}
	}
	if _, err := NewReaderAt(keys, l, bytes.NewReader(obj[:len(obj)-1])); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("short ReaderAt source: %v", err)
	}
}
