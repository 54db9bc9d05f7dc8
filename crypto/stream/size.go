package stream

import (
	"errors"
	"fmt"
)

// Format constants. They are part of the envelope format and never change
// within format version 1.
const (
	// ChunkSize is the plaintext size of every data chunk but the last.
	ChunkSize = 64 << 10
	// TagSize is the size of an AES-GCM authentication tag.
	TagSize = 16
	// EncryptedChunkSize is the ciphertext size of a full data chunk.
	EncryptedChunkSize = ChunkSize + TagSize
	// TrailerPlaintextSize is the size of the trailer record.
	TrailerPlaintextSize = 64
	// TrailerSize is the ciphertext size of the trailer chunk (T in FORMAT.md).
	TrailerSize = TrailerPlaintextSize + TagSize
	// KeySize is the size of a segment's content key.
	KeySize = 32
	// NonceSize is the size of a chunk nonce.
	NonceSize = 12
	// MaxSegmentSize is the largest plaintext a segment may hold (256 TiB).
	MaxSegmentSize = 1 << 48
	// MaxParts is the largest number of parts (segments 1..MaxParts) of a
	// multipart object.
	MaxParts = 10000
)

// errSize reports an impossible size; it is not an authentication failure
// because sizes come from the caller or the store, not from ciphertext.
func errSize(format string, args ...any) error {
	return fmt.Errorf("stream: "+format, args...)
}

// ErrInvalidSize is wrapped by the size functions when a ciphertext size
// cannot be produced by the format.
var ErrInvalidSize = errors.New("stream: not a valid ciphertext size")

// chunks returns the number of data chunks of a segment of n plaintext bytes.
func chunks(n int64) int64 { return (n + ChunkSize - 1) / ChunkSize }

// CiphertextSize returns the exact ciphertext size of a segment holding n
// plaintext bytes: n + 16·⌈n/65536⌉ + TrailerSize. It fails if n is negative
// or above MaxSegmentSize.
func CiphertextSize(n int64) (int64, error) {
	if n < 0 || n > MaxSegmentSize {
		return 0, errSize("plaintext size %d out of range [0, %d]", n, int64(MaxSegmentSize))
	}
	return n + TagSize*chunks(n) + TrailerSize, nil
}

// PlaintextSize is the inverse of CiphertextSize: it returns the plaintext
// size of a segment of c ciphertext bytes, or an error wrapping ErrInvalidSize
// if no plaintext encrypts to exactly c bytes.
func PlaintextSize(c int64) (int64, error) {
	if c < TrailerSize {
		return 0, fmt.Errorf("%w: %d bytes is shorter than a trailer", ErrInvalidSize, c)
	}
	n, err := streamPlaintextSize(c - TrailerSize)
	if err != nil {
		return 0, err
	}
	if n > MaxSegmentSize {
		return 0, fmt.Errorf("%w: %d bytes is above the maximum segment size", ErrInvalidSize, c)
	}
	return n, nil
}

// streamPlaintextSize returns the plaintext size of d bytes of data chunks
// (full chunks, the last one possibly short and never empty).
func streamPlaintextSize(d int64) (int64, error) {
	if d < 0 {
		return 0, fmt.Errorf("%w: negative size", ErrInvalidSize)
	}
	full, rest := d/EncryptedChunkSize, d%EncryptedChunkSize
	if rest == 0 {
		return full * ChunkSize, nil
	}
	if rest <= TagSize {
		return 0, fmt.Errorf("%w: %d trailing bytes cannot hold a chunk", ErrInvalidSize, rest)
	}
	return full*ChunkSize + rest - TagSize, nil
}

// MultipartPlaintextSize returns the plaintext size of a multipart object of
// c ciphertext bytes in parts parts, provided every part but the last holds a
// multiple of ChunkSize plaintext bytes (as the common part sizes of 5, 8, 16
// or 64 MiB do). Then c − parts·TrailerSize is a regular chunk stream. For
// other part sizes the result is wrong or an error, and the caller must use
// the part sizes ([MultipartLayout]).
func MultipartPlaintextSize(c int64, parts int) (int64, error) {
	if parts < 1 || parts > MaxParts {
		return 0, errSize("part count %d out of range [1, %d]", parts, MaxParts)
	}
	if c < int64(parts)*TrailerSize {
		return 0, fmt.Errorf("%w: %d bytes is shorter than %d trailers", ErrInvalidSize, c, parts)
	}
	return streamPlaintextSize(c - int64(parts)*TrailerSize)
}
