package stream

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// decryptSingleV2 decrypts ct as a version 2 single PUT of plainLen bytes
// and returns what was released.
func decryptSingleV2(keys SaltedKeyFunc, ct []byte, plainLen int) ([]byte, error) {
	c, _ := CiphertextSizeV2(int64(plainLen))
	l, _ := SingleLayoutV2(c)
	got, _, err := decryptV2(keys, l, ct)
	return got, err
}

// chunkStartV2 returns the plaintext offset of the chunk holding stored
// byte o of a version 2 single segment of plainLen bytes.
func chunkStartV2(o, plainLen int) int {
	return min(o/EncryptedChunkSizeV2*ChunkSize, plainLen)
}

func TestFlipEveryByteV2(t *testing.T) {
	keys := testSaltedKeys("flip")
	for _, size := range []int{0, 1, ChunkSize + 300} {
		plain := testPlaintext(size, 7)
		ct, _ := encryptV2(t, keys, 0, plain, nil)
		for o := range ct {
			bit := byte(1) << (o % 8)
			ct[o] ^= bit
			got, err := decryptSingleV2(keys, ct, size)
			if size > 0 {
				// Without a layout too: a flipped salt or length must not
				// make the parser accept another framing.
				g2, _, err2 := decryptV2(keys, nil, ct)
				expectFail(t, "flip, no layout", nil, errOr(err2, g2), plain, size)
			}
			ct[o] ^= bit
			expectFail(t, "flip", got, err, plain, chunkStartV2(o, size))
		}
	}
}

// errOr turns "decrypted something" into a failure for expectFail when a
// reader without a layout (segment numbers from 1) reads a single PUT.
func errOr(err error, got []byte) error {
	if err == nil {
		return errors.New("accepted")
	}
	return err
}

func TestTruncateAppendReorderV2(t *testing.T) {
	keys := testSaltedKeys("trunc")
	size := 3*ChunkSize + 100
	plain := testPlaintext(size, 9)
	ct, _ := encryptV2(t, keys, 0, plain, nil)
	for c := 0; c <= 4; c++ {
		for _, d := range []int{-TrailerSizeV2 - 1, -TrailerSizeV2, -45, -44, -28, -16, -1, 0, 1, 16, 28, 44, 45, TrailerSizeV2} {
			n := c*EncryptedChunkSizeV2 + d
			if n < 0 || n >= len(ct) {
				continue
			}
			got, err := decryptSingleV2(keys, ct[:n], size)
			expectFail(t, "truncate", got, err, plain, size-1)
		}
	}
	other, _ := encryptV2(t, keys, 0, plain, nil) // the same segment, encrypted again
	chunk := func(b []byte, i int) []byte { return b[i*EncryptedChunkSizeV2 : (i+1)*EncryptedChunkSizeV2] }
	tail := ct[3*EncryptedChunkSizeV2:] // short chunk and trailer
	for name, parts := range map[string][][]byte{
		"swap 0,1":             {chunk(ct, 1), chunk(ct, 0), chunk(ct, 2), tail},
		"duplicate 0":          {chunk(ct, 0), chunk(ct, 0), chunk(ct, 1), chunk(ct, 2), tail},
		"drop middle":          {chunk(ct, 0), chunk(ct, 2), tail},
		"chunk of the other":   {chunk(ct, 0), chunk(other, 1), chunk(ct, 2), tail},
		"tail of the other":    {chunk(ct, 0), chunk(ct, 1), chunk(ct, 2), other[3*EncryptedChunkSizeV2:]},
		"trailer of the other": {chunk(ct, 0), chunk(ct, 1), chunk(ct, 2), ct[3*EncryptedChunkSizeV2 : len(ct)-TrailerSizeV2], other[len(other)-TrailerSizeV2:]},
		"appended byte":        {ct, {0}},
		"appended trailer":     {ct, ct[len(ct)-TrailerSizeV2:]},
		"appended chunk":       {ct, chunk(ct, 0)},
	} {
		got, err := decryptSingleV2(keys, bytes.Join(parts, nil), size)
		// Bytes after the final trailer are found after it: the whole
		// (authentic) plaintext may have come out, the stream still fails.
		expectFail(t, name, got, err, plain, size)
	}
}

// Segments of a version 2 multipart object: swapped, from another object,
// another encryption of the same part, or renumbered, all fail; without a
// layout, so do parts added (their number is wrong) but not parts removed
// from the end, which is what the part-set record is for.
func TestMultipartTamperingV2(t *testing.T) {
	sizes := []int{2*ChunkSize + 9, 2*ChunkSize + 9, 500}
	parts, plain := makeParts(sizes)
	obj, cs, salts := encryptPartsV2(t, "mpt", parts)
	keys := testSaltedKeys("mpt")
	seg := func(b []byte, i int) []byte {
		off := int64(0)
		for _, c := range cs[:i] {
			off += c
		}
		return b[off : off+cs[i]]
	}
	again, _, _ := encryptPartsV2(t, "mpt", parts) // every part uploaded again
	foreign, _, _ := encryptPartsV2(t, "other", parts)
	l, _ := MultipartLayoutV2(cs)
	for name, c := range map[string]struct {
		parts    [][]byte
		scanPass bool // authenticates without a layout
	}{
		"swap 1,2":           {[][]byte{seg(obj, 1), seg(obj, 0), seg(obj, 2)}, false},
		"part 2 re-uploaded": {[][]byte{seg(obj, 0), seg(again, 1), seg(obj, 2)}, true},
		"foreign part 2":     {[][]byte{seg(obj, 0), seg(foreign, 1), seg(obj, 2)}, false},
		"part 1 twice":       {[][]byte{seg(obj, 0), seg(obj, 0), seg(obj, 2)}, false},
		"drop part 3":        {[][]byte{seg(obj, 0), seg(obj, 1)}, true},
		"drop part 2":        {[][]byte{seg(obj, 0), seg(obj, 2)}, false},
		"part 3 twice":       {[][]byte{seg(obj, 0), seg(obj, 1), seg(obj, 2), seg(obj, 2)}, false},
	} {
		stored := bytes.Join(c.parts, nil)
		got, segs, err := decryptV2(keys, l, stored)
		if c.scanPass && name == "part 2 re-uploaded" {
			// Same sizes, same numbers, authentic chunks: only the salts
			// tell, and the part-set record's digest of them (package
			// envelope) catches it.
			if err != nil || segs[1].Salt == salts[1] || segs[0].Salt != salts[0] {
				t.Fatalf("%s: %v", name, err)
			}
			continue
		}
		expectFail(t, name, got, err, plain, len(plain))
		got, _, err = decryptV2(keys, nil, stored)
		if c.scanPass {
			if err != nil {
				t.Fatalf("%s without a layout: %v", name, err)
			}
			continue
		}
		expectFail(t, name+" without a layout", got, err, plain, len(plain))
	}
	// A range inside a segment reads one encryption: a chunk of another
	// encryption of the same part in the fetched bytes fails.
	rg, _ := l.Range(int64(sizes[0])+10, ChunkSize+10)
	fetched := append([]byte(nil), obj[rg.CipherOffset:rg.CipherOffset+rg.CipherLength]...)
	copy(fetched[EncryptedChunkSizeV2:], again[rg.CipherOffset+EncryptedChunkSizeV2:rg.CipherOffset+2*EncryptedChunkSizeV2])
	rr, _ := NewRangeReaderV2(keys, l, rg, bytes.NewReader(fetched))
	if got, err := io.ReadAll(rr); !errors.Is(err, ErrAuthentication) || len(got) > ChunkSize {
		t.Fatalf("range mixing two encryptions: %d bytes, %v", len(got), err)
	}
	for _, o := range []int{0, 15, 16, 27, 28, 100, len(fetched) - 1} {
		bad := append([]byte(nil), obj[rg.CipherOffset:rg.CipherOffset+rg.CipherLength]...)
		bad[o] ^= 1
		rr, _ := NewRangeReaderV2(keys, l, rg, bytes.NewReader(bad))
		if _, err := io.ReadAll(rr); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("range with byte %d flipped: %v", o, err)
		}
	}
}
