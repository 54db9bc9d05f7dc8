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
	aead cipher.AEAD // random-nonce GCM
	// det and nonces are set when the nonces come from a caller's source
	// (known-answer tests): explicit-nonce GCM, not available in FIPS
	// 140-only mode.
	det    cipher.AEAD
	nonces io.Reader
	aad    [aadV2Size]byte
}

// newChunkV2 returns the cipher of an encryption of a segment under key
// with salt. nonces is nil in production (module randomness).
func newChunkV2(key []byte, salt *[SaltSize]byte, nonces io.Reader) (*chunkV2, error) {
	if len(key) != KeySize {
		return nil, errSize("content key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	c := &chunkV2{salt: *salt, nonces: nonces}
	if c.aead, err = cipher.NewGCMWithRandomNonce(block); err != nil {
		return nil, err
	}
	if nonces != nil {
		if c.det, err = cipher.NewGCM(block); err != nil {
			return nil, fmt.Errorf("stream: chosen nonces are not available here: %w", err)
		}
	}
	return c, nil
}

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
	if c.nonces == nil {
		return c.aead.Seal(dst, nil, plaintext, aad), nil
	}
	var nonce [NonceSize]byte
	if _, err := io.ReadFull(c.nonces, nonce[:]); err != nil {
		return nil, fmt.Errorf("stream: reading nonces: %w", err)
	}
	dst = append(dst, nonce[:]...)
	return c.det.Seal(dst, nonce[:], plaintext, aad), nil
}

// open authenticates the stored chunk ct (salt, nonce, ciphertext, tag) as
// chunk index of the given kind and appends its plaintext to dst, which
// must not overlap ct. A chunk of another encryption (another salt) fails.
func (c *chunkV2) open(dst, ct []byte, index uint64, kind byte) ([]byte, error) {
	if len(ct) < ChunkOverheadV2 || subtle.ConstantTimeCompare(ct[:SaltSize], c.salt[:]) != 1 {
		return nil, ErrAuthentication
	}
	out, err := c.aead.Open(dst, nil, ct[SaltSize:], c.setAAD(index, kind))
	if err != nil {
		return nil, ErrAuthentication
	}
	return out, nil
}

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
