package stream

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/s3seal/s3seal/crypto/internal/gcm"
)

// ErrAuthentication is the one error every reader returns when ciphertext
// does not authenticate: modified, truncated, extended, reordered or
// duplicated chunks, chunks of another segment or object, or a wrong key. It
// deliberately says nothing about which check failed.
var ErrAuthentication = errors.New("stream: message authentication failed")

const (
	flagData    = 0x00
	flagTrailer = 0x01
)

// segCipher is the AES-256-GCM state of one segment. It is not safe for
// concurrent use; ReaderAt builds nonces on the stack instead.
type segCipher struct {
	aead  cipher.AEAD
	block cipher.Block // for trailer candidate filtering; nil in ReaderAt
	nonce [NonceSize]byte
	ctr   [16]byte // scratch for trailerKeystream
}

func newBlock(key []byte) (cipher.Block, error) {
	if len(key) != KeySize {
		return nil, errSize("content key must be %d bytes, got %d", KeySize, len(key))
	}
	return aes.NewCipher(key)
}

// newAEAD returns an AES-256-GCM AEAD that opens chunks with explicit
// (version 1, counter) nonces, in FIPS 140-only mode too (gcm.NewOpener).
func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := newBlock(key)
	if err != nil {
		return nil, err
	}
	return gcm.NewOpener(block)
}

// newSegCipher returns the version 1 cipher of a segment for encrypting;
// it fails in FIPS 140-only mode, where only version 2 is written.
func newSegCipher(key []byte) (*segCipher, error) {
	block, err := newBlock(key)
	if err != nil {
		return nil, err
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("stream: format version 1 cannot be written here: %w", err)
	}
	return &segCipher{aead: a, block: block}, nil
}

// newOpenSegCipher returns the version 1 cipher of a segment for
// decrypting, in every mode.
func newOpenSegCipher(key []byte) (*segCipher, error) {
	block, err := newBlock(key)
	if err != nil {
		return nil, err
	}
	a, err := gcm.NewOpener(block)
	if err != nil {
		return nil, err
	}
	return &segCipher{aead: a, block: block}, nil
}

// trailerKeystream returns the first GCM keystream block of the trailer
// chunk with the given counter: AES(key, nonce || 00 00 00 02), per NIST SP
// 800-38D for a 96-bit nonce.
func (s *segCipher) trailerKeystream(counter uint64) *[16]byte {
	setNonce((*[NonceSize]byte)(s.ctr[:NonceSize]), counter, flagTrailer)
	s.ctr[12], s.ctr[13], s.ctr[14], s.ctr[15] = 0, 0, 0, 2
	s.block.Encrypt(s.ctr[:], s.ctr[:])
	return &s.ctr
}

// trailerCandidate reports whether ct could be the trailer of a segment of
// length plaintext bytes: its first nine plaintext bytes (version and
// length) are predictable, so a keystream XOR rules out all but the real
// trailer (false positives 2^-72) before the costly authenticated open.
// It is a filter only; a candidate must still pass openTrailer.
func trailerCandidate(ks *[16]byte, ct []byte, length int64) bool {
	if ct[0]^ks[0] != trailerVersion {
		return false
	}
	var want [8]byte
	binary.BigEndian.PutUint64(want[:], uint64(length))
	for i, w := range want {
		if ct[1+i]^ks[1+i] != w {
			return false
		}
	}
	return true
}

// setNonce writes the nonce of chunk counter with the given flag into n.
func setNonce(n *[NonceSize]byte, counter uint64, flag byte) {
	n[0], n[1], n[2] = 0, 0, 0
	binary.BigEndian.PutUint64(n[3:11], counter)
	n[11] = flag
}

func (s *segCipher) seal(dst, plaintext []byte, counter uint64, flag byte) []byte {
	setNonce(&s.nonce, counter, flag)
	return s.aead.Seal(dst, s.nonce[:], plaintext, nil)
}

func (s *segCipher) open(dst, ciphertext []byte, counter uint64, flag byte) ([]byte, error) {
	setNonce(&s.nonce, counter, flag)
	out, err := s.aead.Open(dst, s.nonce[:], ciphertext, nil)
	if err != nil {
		return nil, ErrAuthentication
	}
	return out, nil
}

// openTrailer authenticates and parses a trailer chunk.
func (s *segCipher) openTrailer(ct []byte, counter uint64) (Trailer, error) {
	var buf [TrailerPlaintextSize]byte
	if len(ct) != TrailerSize {
		return Trailer{}, ErrAuthentication
	}
	pt, err := s.open(buf[:0], ct, counter, flagTrailer)
	if err != nil {
		return Trailer{}, err
	}
	return parseTrailer(pt, formatV1)
}

// bufSize holds one full encrypted chunk plus one trailer, the look-ahead a
// decrypter needs to tell the last data chunk from the trailer.
const bufSize = EncryptedChunkSize + TrailerSize

type buffer [bufSize]byte

// bufPool recycles chunk buffers between readers. It holds scratch memory
// only; nothing in it is observable, and plaintext left in a recycled buffer
// is always overwritten before it is read again.
var bufPool = sync.Pool{New: func() any { return new(buffer) }}

func getBuf() *buffer  { return bufPool.Get().(*buffer) }
func putBuf(b *buffer) { bufPool.Put(b) }
