package stream

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// SaltedKeyFunc returns the content key of one encryption of a version 2
// segment: segment is the segment number (0 for a single PUT, the part
// number of a multipart upload), salt the fresh random salt that
// encryption drew and stored in every chunk. Package envelope's
// ObjectKey.SegmentKeyV2 has this type. The returned key may be zeroed by
// the caller of the function once a cipher is built from it.
type SaltedKeyFunc func(segment uint32, salt *[SaltSize]byte) []byte

// Chunk kinds, bound into the additional data of every version 2 chunk.
const (
	kindData    = 0x00
	kindTrailer = 0x01
)

// aadV2Size is the size of a version 2 chunk's additional data: the
// chunk's index in its segment (BE64) and its kind.
const aadV2Size = 9

// chunkV2 is the cipher of one encryption of a version 2 segment: its
// salt and the AES-256-GCM state under the key derived with it. Every
// chunk is
//
//	salt (16) || nonce (12) || GCM ciphertext || tag (16)
//
// with additional data BE64(index) || kind. Nonces are 96 random bits per
// chunk, drawn inside Go's cryptographic module by
// cipher.NewGCMWithRandomNonce (FIPS 140-3 IG C.H, scenario 2), so the same
// code writes in FIPS 140-only mode; Open takes the nonce from the chunk.
// It is not safe for concurrent use.
type chunkV2 struct {
	salt [SaltSize]byte
	aead cipher.AEAD // random-nonce GCM, in FIPS 140-only mode only
	// gcm is explicit-nonce GCM, nil in FIPS 140-only mode, where it is
	// refused. It opens chunks (in place, which the random-nonce AEAD
	// cannot without a copy) and seals with the nonces read from nonces:
	// crypto/rand, or a caller's source in known-answer tests.
	gcm    cipher.AEAD
	nonces io.Reader
	aad    [aadV2Size]byte
}

// randBatchSize is how many bytes of crypto/rand a writer outside FIPS 140-only
// mode reads at once for its salts and chunk nonces: a read costs about as
// much as sealing a few kilobytes, so reading per chunk (or even per
// segment) would cost percents.
const randBatchSize = 4096

// randBatch hands out crypto/rand bytes read in batches, each byte once.
// They serve salts and nonces, which are stored in the clear, so bytes
// drawn for one writer and left unused may serve the next one; batches are
// pooled.
type randBatch struct {
	buf       [randBatchSize]byte
	next, end int
}

var randPool = sync.Pool{New: func() any { return new(randBatch) }}

func (b *randBatch) Read(p []byte) (int, error) {
	if b.next == b.end {
		if _, err := io.ReadFull(rand.Reader, b.buf[:]); err != nil {
			return 0, err
		}
		b.next, b.end = 0, len(b.buf)
	}
	c := copy(p, b.buf[b.next:b.end])
	b.next += c
	return c, nil
}

// newChunkV2 returns the cipher of an encryption of a segment under key
// with salt. nonces is nil in production: then the nonces are drawn inside
// the cryptographic module in FIPS 140-only mode, and from crypto/rand in
// batches otherwise; either way they are random.
func newChunkV2(key []byte, salt *[SaltSize]byte, nonces io.Reader) (*chunkV2, error) {
	if len(key) != KeySize {
		return nil, errSize("content key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	c := &chunkV2{salt: *salt, nonces: nonces}
	if c.gcm, err = cipher.NewGCM(block); err == nil {
		return c, nil
	}
	if nonces != nil {
		return nil, fmt.Errorf("stream: chosen nonces are not available here: %w", err)
	}
	// FIPS 140-only mode.
	c.gcm = nil
	if c.aead, err = cipher.NewGCMWithRandomNonce(block); err != nil {
		return nil, err
	}
	return c, nil
}

// inPlace reports whether open may decrypt a chunk into its own ciphertext
// (dst at the chunk's offset ChunkOverheadV2−TagSize).
func (c *chunkV2) inPlace() bool { return c.gcm != nil }

func (c *chunkV2) setAAD(index uint64, kind byte) []byte {
	binary.BigEndian.PutUint64(c.aad[:8], index)
	c.aad[8] = kind
	return c.aad[:]
}

// seal appends the stored form of chunk index of the given kind to dst.
// plaintext must not overlap the bytes appended (sealing in place would
// cost the random-nonce AEAD a copy).
func (c *chunkV2) seal(dst, plaintext []byte, index uint64, kind byte) ([]byte, error) {
	aad := c.setAAD(index, kind)
	dst = append(dst, c.salt[:]...)
	if c.gcm == nil {
		// FIPS 140-only mode: the module draws the nonce.
		return c.aead.Seal(dst, nil, plaintext, aad), nil
	}
	if c.nonces == nil {
		c.nonces = rand.Reader
	}
	var nonce [NonceSize]byte
	if _, err := io.ReadFull(c.nonces, nonce[:]); err != nil {
		return nil, fmt.Errorf("stream: reading nonces: %w", err)
	}
	dst = append(dst, nonce[:]...)
	return c.gcm.Seal(dst, nonce[:], plaintext, aad), nil
}

// sealInPlace is seal for a plaintext of m bytes that the caller put where
// its ciphertext goes: at dst[len(dst)+inPlaceOffset:], with room for the
// tag behind it. It needs explicit-nonce GCM (inPlace).
func (c *chunkV2) sealInPlace(dst []byte, m int, index uint64, kind byte) ([]byte, error) {
	aad := c.setAAD(index, kind)
	n := len(dst)
	dst = append(dst, c.salt[:]...)
	if c.nonces == nil {
		c.nonces = rand.Reader
	}
	nonce := dst[n+SaltSize : n+inPlaceOffset]
	if _, err := io.ReadFull(c.nonces, nonce); err != nil {
		return nil, fmt.Errorf("stream: reading nonces: %w", err)
	}
	pt := dst[n+inPlaceOffset : n+inPlaceOffset+m]
	return c.gcm.Seal(dst[:n+inPlaceOffset], nonce, pt, aad), nil
}

// open authenticates the stored chunk ct (salt, nonce, ciphertext, tag) as
// chunk index of the given kind and appends its plaintext to dst, which
// either does not overlap ct or, if inPlace, is ct[inPlaceOffset:][:0]. A
// chunk of another encryption (another salt) fails.
func (c *chunkV2) open(dst, ct []byte, index uint64, kind byte) ([]byte, error) {
	if len(ct) < ChunkOverheadV2 || subtle.ConstantTimeCompare(ct[:SaltSize], c.salt[:]) != 1 {
		return nil, ErrAuthentication
	}
	var out []byte
	var err error
	if c.gcm != nil {
		out, err = c.gcm.Open(dst, ct[SaltSize:inPlaceOffset], ct[inPlaceOffset:], c.setAAD(index, kind))
	} else {
		out, err = c.aead.Open(dst, nil, ct[SaltSize:], c.setAAD(index, kind))
	}
	if err != nil {
		return nil, ErrAuthentication
	}
	return out, nil
}

// inPlaceOffset is where a version 2 chunk's ciphertext starts, after the
// salt and the nonce.
const inPlaceOffset = SaltSize + NonceSize

// openTrailer authenticates and parses the trailer chunk, which is chunk
// index of its segment.
func (c *chunkV2) openTrailer(ct []byte, index uint64) (Trailer, error) {
	var buf [TrailerPlaintextSize]byte
	if len(ct) != TrailerSizeV2 {
		return Trailer{}, ErrAuthentication
	}
	pt, err := c.open(buf[:0], ct, index, kindTrailer)
	if err != nil {
		return Trailer{}, err
	}
	return parseTrailer(pt, formatV2)
}

// newSalt draws a segment salt from random (crypto/rand if nil).
func newSalt(random io.Reader) ([SaltSize]byte, error) {
	var s [SaltSize]byte
	if random == nil {
		random = rand.Reader
	}
	if _, err := io.ReadFull(random, s[:]); err != nil {
		return s, fmt.Errorf("stream: reading randomness: %w", err)
	}
	return s, nil
}

// keyedChunkV2 builds the cipher for segment n from the salt of a stored
// chunk, deriving the key with keys.
func keyedChunkV2(keys SaltedKeyFunc, n uint32, stored []byte) (*chunkV2, error) {
	if len(stored) < SaltSize {
		return nil, ErrAuthentication
	}
	salt := (*[SaltSize]byte)(stored[:SaltSize])
	key := keys(n, salt)
	c, err := newChunkV2(key, salt, nil)
	clear(key)
	return c, err
}

// SegmentInfo describes a version 2 segment a reader has authenticated.
type SegmentInfo struct {
	// Number is the segment number: 0 for a single PUT, else the part
	// number.
	Number uint32
	// Salt is the salt of the encryption of the segment, which tells one
	// upload of a part from another (package envelope binds the salts of
	// the completed parts in the part-set record).
	Salt [SaltSize]byte
	// Trailer is the segment's authenticated trailer.
	Trailer Trailer
}

// bufSizeV2 holds one full version 2 data chunk plus one trailer, the
// look-ahead a decrypter needs.
const bufSizeV2 = EncryptedChunkSizeV2 + TrailerSizeV2

type bufferV2 [bufSizeV2]byte

// bufV2Pool recycles version 2 chunk buffers; as bufPool, it holds scratch
// memory only.
var bufV2Pool = sync.Pool{New: func() any { return new(bufferV2) }}

func getBufV2() *bufferV2  { return bufV2Pool.Get().(*bufferV2) }
func putBufV2(b *bufferV2) { bufV2Pool.Put(b) }
