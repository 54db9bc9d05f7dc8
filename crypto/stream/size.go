package stream

import (
	"errors"
	"fmt"
)

// Format constants of version 1. They are part of the envelope format and
// never change within format version 1.
const (
	// ChunkSize is the plaintext size of every data chunk but the last, in
	// both format versions.
	ChunkSize = 64 << 10
	// TagSize is the size of an AES-GCM authentication tag.
	TagSize = 16
	// EncryptedChunkSize is the ciphertext size of a full version 1 data
	// chunk.
	EncryptedChunkSize = ChunkSize + TagSize
	// TrailerPlaintextSize is the size of the trailer record (both
	// versions).
	TrailerPlaintextSize = 64
	// TrailerSize is the ciphertext size of the version 1 trailer chunk (T
	// in FORMAT.md).
	TrailerSize = TrailerPlaintextSize + TagSize
	// KeySize is the size of a segment's content key.
	KeySize = 32
	// NonceSize is the size of a chunk nonce.
	NonceSize = 12
	// MaxSegmentSize is the largest plaintext a version 1 segment may hold
	// (256 TiB).
	MaxSegmentSize = 1 << 48
	// MaxParts is the largest number of parts (segments 1..MaxParts) of a
	// multipart object.
	MaxParts = 10000
)

// Format constants of version 2 (FORMAT.md, section 7).
const (
	// SaltSize is the size of a version 2 segment salt, the fresh
	// randomness of one encryption of a segment.
	SaltSize = 16
	// ChunkOverheadV2 is what a version 2 chunk adds to its plaintext:
	// the segment salt, the chunk's nonce and the GCM tag.
	ChunkOverheadV2 = SaltSize + NonceSize + TagSize
	// EncryptedChunkSizeV2 is the stored size of a full version 2 data
	// chunk.
	EncryptedChunkSizeV2 = ChunkSize + ChunkOverheadV2
	// TrailerSizeV2 is the stored size of the version 2 trailer chunk.
	TrailerSizeV2 = TrailerPlaintextSize + ChunkOverheadV2
	// MaxSegmentSizeV2 is the largest plaintext a version 2 segment may
	// hold (64 TiB): at most 2^30 + 1 chunks under one key, so that the
	// random 96-bit nonces of its chunks collide with probability below
	// 2^-37 (NIST SP 800-38D, section 8.3, allows 2^32 such messages per
	// key).
	MaxSegmentSizeV2 = 1 << 46
)

// format holds the size constants of one content format version.
type format struct {
	version    uint8
	overhead   int64 // stored bytes a data chunk adds to its plaintext
	encChunk   int64 // stored size of a full data chunk
	trailer    int64 // stored size of the trailer chunk
	maxSegment int64
}

var (
	formatV1 = &format{version: 1, overhead: TagSize, encChunk: EncryptedChunkSize, trailer: TrailerSize, maxSegment: MaxSegmentSize}
	formatV2 = &format{version: 2, overhead: ChunkOverheadV2, encChunk: EncryptedChunkSizeV2, trailer: TrailerSizeV2, maxSegment: MaxSegmentSizeV2}
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

func (f *format) ciphertextSize(n int64) (int64, error) {
	if n < 0 || n > f.maxSegment {
		return 0, errSize("plaintext size %d out of range [0, %d]", n, f.maxSegment)
	}
	return n + f.overhead*chunks(n) + f.trailer, nil
}

func (f *format) plaintextSize(c int64) (int64, error) {
	if c < f.trailer {
		return 0, fmt.Errorf("%w: %d bytes is shorter than a trailer", ErrInvalidSize, c)
	}
	n, err := f.streamPlaintextSize(c - f.trailer)
	if err != nil {
		return 0, err
	}
	if n > f.maxSegment {
		return 0, fmt.Errorf("%w: %d bytes is above the maximum segment size", ErrInvalidSize, c)
	}
	return n, nil
}

// streamPlaintextSize returns the plaintext size of d bytes of data chunks
// (full chunks, the last one possibly short and never empty).
func (f *format) streamPlaintextSize(d int64) (int64, error) {
	if d < 0 {
		return 0, fmt.Errorf("%w: negative size", ErrInvalidSize)
	}
	full, rest := d/f.encChunk, d%f.encChunk
	if rest == 0 {
		return full * ChunkSize, nil
	}
	if rest <= f.overhead {
		return 0, fmt.Errorf("%w: %d trailing bytes cannot hold a chunk", ErrInvalidSize, rest)
	}
	return full*ChunkSize + rest - f.overhead, nil
}

func (f *format) multipartPlaintextSize(c int64, parts int) (int64, error) {
	if parts < 1 || parts > MaxParts {
		return 0, errSize("part count %d out of range [1, %d]", parts, MaxParts)
	}
	if c < int64(parts)*f.trailer {
		return 0, fmt.Errorf("%w: %d bytes is shorter than %d trailers", ErrInvalidSize, c, parts)
	}
	return f.streamPlaintextSize(c - int64(parts)*f.trailer)
}

// CiphertextSize returns the exact ciphertext size of a version 1 segment
// holding n plaintext bytes: n + 16·⌈n/65536⌉ + TrailerSize. It fails if n
// is negative or above MaxSegmentSize.
func CiphertextSize(n int64) (int64, error) { return formatV1.ciphertextSize(n) }

// PlaintextSize is the inverse of CiphertextSize: it returns the plaintext
// size of a version 1 segment of c ciphertext bytes, or an error wrapping
// ErrInvalidSize if no plaintext encrypts to exactly c bytes.
func PlaintextSize(c int64) (int64, error) { return formatV1.plaintextSize(c) }

// MultipartPlaintextSize returns the plaintext size of a version 1
// multipart object of c ciphertext bytes in parts parts, provided every
// part but the last holds a multiple of ChunkSize plaintext bytes (as the
// common part sizes of 5, 8, 16 or 64 MiB do). Then c − parts·TrailerSize
// is a regular chunk stream. For other part sizes the result is wrong or an
// error, and the caller must use the part sizes ([MultipartLayout]).
func MultipartPlaintextSize(c int64, parts int) (int64, error) {
	return formatV1.multipartPlaintextSize(c, parts)
}

// CiphertextSizeV2 returns the exact stored size of a version 2 segment
// holding n plaintext bytes: n + 44·⌈n/65536⌉ + TrailerSizeV2 (108). It
// fails if n is negative or above MaxSegmentSizeV2.
func CiphertextSizeV2(n int64) (int64, error) { return formatV2.ciphertextSize(n) }

// PlaintextSizeV2 is the inverse of CiphertextSizeV2, or an error wrapping
// ErrInvalidSize if no plaintext encrypts to exactly c bytes.
func PlaintextSizeV2(c int64) (int64, error) { return formatV2.plaintextSize(c) }

// MultipartPlaintextSizeV2 returns the plaintext size of a version 2
// multipart object of c stored bytes in parts parts whose layout is
// regular: every part but the last holds the same multiple of ChunkSize
// plaintext bytes. A listing, which shows only the stored size and the part
// count (the N of an ETag ending in -N), can size such objects by
// arithmetic. For other layouts the result is wrong or an error: their
// size is not a function of (c, parts) at all (FORMAT.md, section 9), and
// the caller needs the layout ([UniformLayoutV2]).
func MultipartPlaintextSizeV2(c int64, parts int) (int64, error) {
	return formatV2.multipartPlaintextSize(c, parts)
}
