package stream

import (
	"errors"
	"testing"
)

func TestCiphertextSizeTable(t *testing.T) {
	const T = TrailerSize
	for _, tc := range []struct{ plain, cipher int64 }{
		{0, T},
		{1, 1 + 16 + T},
		{ChunkSize - 1, ChunkSize - 1 + 16 + T},
		{ChunkSize, ChunkSize + 16 + T},
		{ChunkSize + 1, ChunkSize + 1 + 32 + T},
		{2*ChunkSize + 500, 2*ChunkSize + 500 + 48 + T},
		{MaxSegmentSize, MaxSegmentSize + 16*(MaxSegmentSize/ChunkSize) + T},
	} {
		got, err := CiphertextSize(tc.plain)
		if err != nil || got != tc.cipher {
			t.Errorf("CiphertextSize(%d) = %d, %v; want %d", tc.plain, got, err, tc.cipher)
		}
		back, err := PlaintextSize(tc.cipher)
		if err != nil || back != tc.plain {
			t.Errorf("PlaintextSize(%d) = %d, %v; want %d", tc.cipher, back, err, tc.plain)
		}
	}
	for _, bad := range []int64{-1, MaxSegmentSize + 1} {
		if _, err := CiphertextSize(bad); err == nil {
			t.Errorf("CiphertextSize(%d) succeeded", bad)
		}
	}
}

// Every ciphertext size near the chunk boundaries is either the image of
// exactly one plaintext size, or refused.
func TestPlaintextSizeInverse(t *testing.T) {
	seen := map[int64]int64{}
	for k := int64(0); k < 4; k++ {
		for d := int64(-40); d <= 40; d++ {
			p := k*ChunkSize + d
			if p < 0 {
				continue
			}
			c, err := CiphertextSize(p)
			if err != nil {
				t.Fatal(err)
			}
			seen[c] = p
		}
	}
	for k := int64(0); k < 4; k++ {
		for d := int64(-200); d <= 200; d++ {
			c := k*EncryptedChunkSize + TrailerSize + d
			p, err := PlaintextSize(c)
			want, ok := seen[c]
			switch {
			case ok && (err != nil || p != want):
				t.Errorf("PlaintextSize(%d) = %d, %v; want %d", c, p, err, want)
			case !ok && err == nil:
				// Not produced by the sweep above: must still round-trip.
				if back, _ := CiphertextSize(p); back != c {
					t.Errorf("PlaintextSize(%d) = %d, but CiphertextSize(%d) = %d", c, p, p, back)
				}
			case err != nil && !errors.Is(err, ErrInvalidSize):
				t.Errorf("PlaintextSize(%d) error %v does not wrap ErrInvalidSize", c, err)
			}
		}
	}
	// Remainders of 1..16 bytes after the trailer cannot hold a chunk.
	for r := int64(1); r <= TagSize; r++ {
		if _, err := PlaintextSize(TrailerSize + EncryptedChunkSize + r); !errors.Is(err, ErrInvalidSize) {
			t.Errorf("remainder %d accepted", r)
		}
	}
	if _, err := PlaintextSize(TrailerSize - 1); err == nil {
		t.Error("size below a trailer accepted")
	}
}

func TestMultipartPlaintextSize(t *testing.T) {
	for _, parts := range [][]int64{
		{0},
		{5 << 20, 5 << 20, 1},
		{8 << 20, 0},
		{ChunkSize, ChunkSize, ChunkSize, ChunkSize - 1},
		{16 << 20, 16 << 20, 16<<20 + 1},
	} {
		var c, p int64
		for _, n := range parts {
			cs, err := CiphertextSize(n)
			if err != nil {
				t.Fatal(err)
			}
			c += cs
			p += n
		}
		got, err := MultipartPlaintextSize(c, len(parts))
		if err != nil || got != p {
			t.Errorf("parts %v: MultipartPlaintextSize = %d, %v; want %d", parts, got, err, p)
		}
	}
	// A non-final part that is not a multiple of the chunk size breaks the
	// arithmetic: the result must differ from the truth (or be refused), so
	// callers are right to need the part sizes then.
	c1, _ := CiphertextSize(10)
	c2, _ := CiphertextSize(ChunkSize)
	if got, err := MultipartPlaintextSize(2*c1+c2, 3); err == nil && got == ChunkSize+20 {
		t.Error("irregular parts gave the right size by accident; the test premise is wrong")
	}
	for _, bad := range []int{0, MaxParts + 1} {
		if _, err := MultipartPlaintextSize(1<<20, bad); err == nil {
			t.Errorf("parts=%d accepted", bad)
		}
	}
	if _, err := MultipartPlaintextSize(3*TrailerSize-1, 3); err == nil {
		t.Error("too small accepted")
	}
}
