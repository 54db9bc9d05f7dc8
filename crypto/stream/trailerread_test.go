package stream

import (
	"bytes"
	"errors"
	"testing"
)

// TestOpenTrailerV2 reads the trailers of a multipart object alone, as a
// HEAD with checksum mode does, and refuses every trailer that is not the
// one of that segment.
func TestOpenTrailerV2(t *testing.T) {
	keys := testSaltedKeys("trailers")
	sizes := []int{2*ChunkSize + 17, 2*ChunkSize + 17, ChunkSize, 0}
	var obj []byte
	var cipher []int64
	for i, n := range sizes {
		sum := Checksum{Algorithm: ChecksumCRC32C, Value: []byte{byte(i), 2, 3, 4}}
		ct, _ := encryptV2(t, keys, uint32(i+1), testPlaintext(n, byte(i)), &EncryptOptions{Checksum: func(int64) (Checksum, error) { return sum, nil }})
		obj = append(obj, ct...)
		cipher = append(cipher, int64(len(ct)))
	}
	l, err := MultipartLayoutV2(cipher)
	if err != nil {
		t.Fatal(err)
	}
	span := func(i int) []byte {
		off, n := l.TrailerSpan(i)
		return append([]byte(nil), obj[off:off+n]...)
	}
	for i, n := range sizes {
		tr, err := OpenTrailerV2(keys, l, i, span(i))
		if err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		if tr.Length != int64(n) || tr.Checksum.Algorithm != ChecksumCRC32C || !bytes.Equal(tr.Checksum.Value, []byte{byte(i), 2, 3, 4}) {
			t.Fatalf("segment %d: %+v", i, tr)
		}
	}
	refuse := func(name string, keys SaltedKeyFunc, l *Layout, i int, ct []byte) {
		t.Helper()
		if _, err := OpenTrailerV2(keys, l, i, ct); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for b := 0; b < TrailerSizeV2; b += 7 {
		ct := span(1)
		ct[b] ^= 0x40
		refuse("flipped byte", keys, l, 1, ct)
	}
	refuse("truncated", keys, l, 1, span(1)[1:])
	refuse("extended", keys, l, 1, append(span(1), 0))
	refuse("another segment's trailer", keys, l, 1, span(0))
	refuse("wrong key", testSaltedKeys("other"), l, 1, span(1))
	refuse("segment index out of range", keys, l, len(sizes), span(1))
	refuse("negative index", keys, l, -1, span(1))
	// A layout that states another size for the segment: the trailer's
	// index or its length does not match.
	other, _ := MultipartLayoutV2([]int64{cipher[0] + EncryptedChunkSizeV2, cipher[1], cipher[2], cipher[3]})
	refuse("layout with another size", keys, other, 0, span(0))
	// The last bytes of the ciphertext that precede a trailer are not one.
	off, _ := l.TrailerSpan(0)
	refuse("data chunk bytes", keys, l, 0, obj[off-TrailerSizeV2:off])
	// Version 1 layouts are refused.
	l1, _ := SingleLayout(80)
	if _, err := OpenTrailerV2(keys, l1, 0, make([]byte, TrailerSizeV2)); err == nil || errors.Is(err, ErrAuthentication) {
		t.Errorf("version 1 layout: %v", err)
	}
}

// TestTrailerSpanSingle: a single PUT's trailer is its last bytes.
func TestTrailerSpanSingle(t *testing.T) {
	keys := testSaltedKeys("single")
	for _, n := range []int{0, 1, ChunkSize, ChunkSize + 1} {
		sum := Checksum{Algorithm: ChecksumSHA1, Value: bytes.Repeat([]byte{byte(n)}, 20)}
		ct, _ := encryptV2(t, keys, 0, testPlaintext(n, 5), &EncryptOptions{Checksum: func(int64) (Checksum, error) { return sum, nil }})
		l, _ := SingleLayoutV2(int64(len(ct)))
		off, size := l.TrailerSpan(0)
		if off+size != int64(len(ct)) || size != TrailerSizeV2 {
			t.Fatalf("%d bytes: span %d+%d of %d", n, off, size, len(ct))
		}
		tr, err := OpenTrailerV2(keys, l, 0, ct[off:])
		if err != nil || tr.Length != int64(n) || !bytes.Equal(tr.Checksum.Value, sum.Value) {
			t.Fatalf("%d bytes: %+v %v", n, tr, err)
		}
	}
}
