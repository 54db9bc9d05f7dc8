package soak

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Object content is a keystream: AES-256-CTR under a key derived from the
// object's seed, so any byte range can be generated again to check what a
// read returned, without keeping objects in memory.

// contentBlock is the generation granularity (the AES block size).
const contentBlock = aes.BlockSize

// stream returns the keystream of seed starting at byte offset off.
func stream(seed uint64, off int64) cipher.Stream {
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], seed)
	key := sha256.Sum256(append([]byte("s3seal soak content\x00"), s[:]...))
	b, err := aes.NewCipher(key[:])
	if err != nil {
		panic("soak: internal error: " + err.Error())
	}
	var iv [aes.BlockSize]byte
	binary.BigEndian.PutUint64(iv[8:], uint64(off/contentBlock))
	st := cipher.NewCTR(b, iv[:])
	if skip := off % contentBlock; skip > 0 {
		var junk [contentBlock]byte
		st.XORKeyStream(junk[:skip], junk[:skip])
	}
	return st
}

// Content returns bytes [off, off+n) of the object with seed.
func Content(seed uint64, off, n int64) []byte {
	b := make([]byte, n)
	stream(seed, off).XORKeyStream(b, b)
	return b
}

// Body is an object's content as an io.ReadSeeker of size bytes, for
// uploads that may be retried or checksummed by an SDK. It holds no more
// than the generator's state.
type Body struct {
	seed      uint64
	size, off int64
	st        cipher.Stream
}

// NewBody returns the content of the object with seed and size.
func NewBody(seed uint64, size int64) *Body {
	return &Body{seed: seed, size: size, st: stream(seed, 0)}
}

func (b *Body) Read(p []byte) (int, error) {
	if b.off >= b.size {
		return 0, io.EOF
	}
	if int64(len(p)) > b.size-b.off {
		p = p[:b.size-b.off]
	}
	clear(p)
	b.st.XORKeyStream(p, p)
	b.off += int64(len(p))
	return len(p), nil
}

// Seek implements io.Seeker.
func (b *Body) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += b.off
	case io.SeekEnd:
		offset += b.size
	default:
		return 0, errors.New("soak: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("soak: negative position")
	}
	b.off = offset
	b.st = stream(b.seed, offset)
	return offset, nil
}

// Len returns the bytes left to read.
func (b *Body) Len() int { return int(b.size - b.off) }

// MismatchError reports content that differs from what was written.
type MismatchError struct {
	// Offset is the object offset of the first wrong byte, or of the end
	// of what was read when the length is wrong.
	Offset int64
	// Got and Want are the lengths read and expected.
	Got, Want int64
}

func (e *MismatchError) Error() string {
	if e.Got != e.Want {
		return fmt.Sprintf("soak: read %d bytes, want %d", e.Got, e.Want)
	}
	return fmt.Sprintf("soak: content differs at offset %d", e.Offset)
}

// Check reads r to its end and compares it with bytes [off, off+n) of the
// object with seed. It returns a *MismatchError for other content or
// length, or the read error, and the number of bytes read.
func Check(r io.Reader, seed uint64, off, n int64) (int64, error) {
	st := stream(seed, off)
	buf := make([]byte, 64<<10)
	want := make([]byte, 64<<10)
	var got int64
	for {
		m, err := r.Read(buf)
		if m > 0 {
			if got+int64(m) > n {
				return got + int64(m), &MismatchError{Offset: off + n, Got: got + int64(m), Want: n}
			}
			w := want[:m]
			clear(w)
			st.XORKeyStream(w, w)
			if !bytes.Equal(buf[:m], w) {
				i := 0
				for buf[i] == w[i] {
					i++
				}
				return got + int64(m), &MismatchError{Offset: off + got + int64(i), Got: n, Want: n}
			}
			got += int64(m)
		}
		if err == io.EOF {
			if got != n {
				return got, &MismatchError{Offset: off + got, Got: got, Want: n}
			}
			return got, nil
		}
		if err != nil {
			return got, err
		}
	}
}
