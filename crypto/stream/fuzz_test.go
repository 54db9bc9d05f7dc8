package stream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// FuzzDecryptReader checks that the decrypt readers never panic and never
// release a byte that is not the genuine plaintext at its position: after
// any edit of a valid ciphertext, what comes out is a prefix of the
// plaintext and the stream ends in ErrAuthentication; without edits, the
// whole plaintext comes out (for a multipart object, cutting it after a
// whole part is the documented exception). In raw mode the input is decrypted as is, and
// nothing may come out at all.
//
// Edits are 4-byte records: op, position (2 bytes), value.
func FuzzDecryptReader(f *testing.F) {
	f.Add(uint32(0), byte(0), []byte{})
	f.Add(uint32(ChunkSize+1), byte(1), []byte{0, 0, 5, 1})
	f.Add(uint32(100), byte(2), []byte{1, 0, 50, 0, 2, 0, 0, 7})
	f.Fuzz(func(t *testing.T, plainLen uint32, mode byte, edits []byte) {
		n := int(plainLen % (2*ChunkSize + 200))
		plain := testPlaintext(n, 42)
		multi := mode&1 == 1
		raw := mode&2 == 2
		keys := testKeys("fuzz")
		var ct []byte
		var part1 int // ciphertext size of part 1
		if multi {
			var sizes []int64
			ct, sizes = encryptParts(t, "fuzz", [][]byte{plain[:n/2], plain[n/2:]})
			part1 = int(sizes[0])
		} else {
			ct = encrypt(t, keys(0), plain, nil)
		}
		orig := append([]byte(nil), ct...)
		if raw {
			ct = append([]byte(nil), edits...)
		} else {
			ct = applyEdits(ct, edits)
		}
		var dr *DecryptReader
		var err error
		if multi {
			dr, err = NewMultipartDecryptReader(keys, bytes.NewReader(ct))
		} else {
			dr, err = NewDecryptReader(keys(0), bytes.NewReader(ct))
		}
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAllStep(dr, 1000)
		switch {
		case bytes.Equal(ct, orig):
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("valid ciphertext: %v", err)
			}
		case raw:
			if len(got) != 0 || !errors.Is(err, ErrAuthentication) {
				t.Fatalf("raw input released %d bytes, err %v", len(got), err)
			}
		case multi && err == nil && bytes.Equal(ct, orig[:part1]):
			// Dropping trailing whole parts yields a shorter authentic
			// object: the documented limit of multipart objects.
			if !bytes.Equal(got, plain[:n/2]) {
				t.Fatal("part 1 alone decrypted wrongly")
			}
		default:
			if !errors.Is(err, ErrAuthentication) {
				t.Fatalf("edited ciphertext: err %v", err)
			}
			if !bytes.Equal(got, plain[:min(len(got), len(plain))]) || len(got) > len(plain) {
				t.Fatal("released bytes that are not the plaintext")
			}
		}
		// The random-access reader agrees: either it refuses, or it
		// returns the plaintext exactly.
		if !multi {
			if ra, err := NewDecryptReaderAt(keys(0), bytes.NewReader(ct), int64(len(ct))); err == nil {
				buf := make([]byte, ra.Size())
				m, err := ra.ReadAt(buf, 0)
				if err != nil && !errors.Is(err, ErrAuthentication) && err != io.EOF {
					t.Fatal(err)
				}
				if !bytes.Equal(buf[:m], plain[:min(m, len(plain))]) {
					t.Fatal("ReaderAt released bytes that are not the plaintext")
				}
			}
		}
	})
}

func applyEdits(ct, edits []byte) []byte {
	for len(edits) >= 4 {
		op, pos, val := edits[0]%4, int(binary.BigEndian.Uint16(edits[1:3])), edits[3]
		edits = edits[4:]
		if len(ct) == 0 && op != 2 {
			continue
		}
		switch op {
		case 0: // xor a byte
			ct[pos%len(ct)] ^= val | 1
		case 1: // truncate
			ct = ct[:pos%len(ct)]
		case 2: // append
			ct = append(ct, bytes.Repeat([]byte{val}, 1+pos%100)...)
		case 3: // move a block of 80 bytes to the end
			i := pos % len(ct)
			j := min(i+TrailerSize, len(ct))
			block := append([]byte(nil), ct[i:j]...)
			ct = append(append(ct[:i:i], ct[j:]...), block...)
		}
	}
	return ct
}

// FuzzDecryptReaderV2 is FuzzDecryptReader for format version 2, whose
// chunk parser finds a segment's key in its chunks' salts and, without a
// layout, where its data ends by looking for the salt that begins the
// trailer. Modes: bit 0 multipart (two parts), bit 1 raw input, bit 2 no
// layout (parts found by their salts). Whatever the edits, what comes out
// is a prefix of the plaintext and the stream ends in ErrAuthentication;
// the one edit that authenticates without a layout is dropping the last
// whole part, which only the part-set record catches.
func FuzzDecryptReaderV2(f *testing.F) {
	f.Add(uint32(0), byte(0), []byte{})
	f.Add(uint32(ChunkSize+1), byte(1), []byte{0, 0, 5, 1})
	f.Add(uint32(100), byte(5), []byte{1, 0, 50, 0, 2, 0, 0, 7})
	f.Add(uint32(2*ChunkSize+7), byte(4), []byte{3, 1, 0, 0})
	f.Fuzz(func(t *testing.T, plainLen uint32, mode byte, edits []byte) {
		n := int(plainLen % (2*ChunkSize + 200))
		plain := testPlaintext(n, 42)
		multi, raw, scan := mode&1 == 1, mode&2 == 2, mode&4 == 4
		keys := testSaltedKeys("fuzz")
		var ct []byte
		var l *Layout
		var part1 int
		if multi {
			var sizes []int64
			ct, sizes, _ = encryptPartsV2(t, "fuzz", [][]byte{plain[:n/2], plain[n/2:]})
			part1 = int(sizes[0])
			l, _ = MultipartLayoutV2(sizes)
		} else {
			ct, _ = encryptV2(t, keys, 0, plain, nil)
			l, _ = SingleLayoutV2(int64(len(ct)))
		}
		orig := append([]byte(nil), ct...)
		if raw {
			ct = append([]byte(nil), edits...)
		} else {
			ct = applyEdits(ct, edits)
		}
		var dr *DecryptReaderV2
		switch {
		case multi && scan:
			dr = NewMultipartScanReaderV2(keys, bytes.NewReader(ct))
		default:
			var err error
			if dr, err = NewDecryptReaderV2(keys, l, bytes.NewReader(ct)); err != nil {
				t.Fatal(err)
			}
		}
		got, err := readAllStep(dr, 1000)
		switch {
		case bytes.Equal(ct, orig):
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("valid object: %v", err)
			}
		case raw:
			if len(got) != 0 || !errors.Is(err, ErrAuthentication) {
				t.Fatalf("raw input released %d bytes, err %v", len(got), err)
			}
		case multi && scan && err == nil && bytes.Equal(ct, orig[:part1]):
			if !bytes.Equal(got, plain[:n/2]) {
				t.Fatal("part 1 alone decrypted wrongly")
			}
		default:
			if !errors.Is(err, ErrAuthentication) {
				t.Fatalf("edited object: err %v", err)
			}
			if len(got) > len(plain) || !bytes.Equal(got, plain[:len(got)]) {
				t.Fatal("released bytes that are not the plaintext")
			}
		}
	})
}
