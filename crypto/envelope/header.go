package envelope

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"

	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/stream"
)

// Format constants.
const (
	// Version is the format version of the version 1 writers (New, Seal),
	// which the proxy uses until it moves to NewV2.
	Version = 1
	// VersionV2 is the format version NewV2 and SealV2 write. Parse reads
	// both.
	VersionV2 = 2
	// MetadataKey is the user-metadata key (without the x-amz-meta- prefix)
	// that holds the header.
	MetadataKey = "s3seal"
	// HeaderName is the HTTP header that carries it.
	HeaderName = "X-Amz-Meta-S3seal"

	ObjectKeySize  = 32
	CommitmentSize = 32
	SaltSize       = 32
	// SealedKeySize is the size of a version 1 sealed object key (GCM under
	// a fixed nonce).
	SealedKeySize = ObjectKeySize + 16
	// SealedKeySizeV2 is the size of a version 2 sealed object key: the
	// seal's random nonce, the encrypted key and the tag.
	SealedKeySizeV2 = 12 + ObjectKeySize + 16
	// WrappedKeyRefSize is the size of the reference a version 2 header
	// holds in place of a wrapped data key too large for the metadata: the
	// SHA-256 of the key object (FORMAT.md, section 6.5).
	WrappedKeyRefSize = 32
)

// Algorithm identifies the content and key-derivation algorithms.
type Algorithm uint8

// AES256GCM is AES-256-GCM over 64 KiB chunks with a trailer chunk (package
// stream), HKDF-SHA256 key derivation, and AES-256-GCM sealing.
const AES256GCM Algorithm = 1

func (a Algorithm) String() string {
	if a == AES256GCM {
		return "AES-256-GCM-HKDF-SHA256 (64 KiB chunks)"
	}
	return fmt.Sprintf("unknown(%d)", uint8(a))
}

// Provider identifies the key provider that wrapped the data key.
type Provider uint8

// Key providers. Version 1 headers name only local and aws-kms; version 2
// headers any of them.
const (
	ProviderLocal  Provider = 1
	ProviderAWSKMS Provider = 2
	ProviderKMIP   Provider = 3
	ProviderPKCS11 Provider = 4
	// ProviderAge wraps data keys to age recipients, post-quantum hybrid
	// ones (ML-KEM-768 + X25519) included, whose wrapped keys are too
	// large for the metadata and live in key objects.
	ProviderAge Provider = 5
)

// providerNames are the providers' names as in key specs and
// keys.Provider.Name, indexed by identifier.
var providerNames = [...]string{
	ProviderLocal:  keys.KindLocal,
	ProviderAWSKMS: keys.KindAWSKMS,
	ProviderKMIP:   keys.KindKMIP,
	ProviderPKCS11: keys.KindPKCS11,
	ProviderAge:    "age",
}

// String returns the provider's name as in key specs ("local", "aws-kms",
// "kmip", "pkcs11", "age").
func (p Provider) String() string {
	if p.known() {
		return providerNames[p]
	}
	return fmt.Sprintf("unknown(%d)", uint8(p))
}

func (p Provider) known() bool { return p >= ProviderLocal && int(p) < len(providerNames) }

// ProviderFromName maps a keys.Provider's Name to its identifier.
func ProviderFromName(name string) (Provider, error) {
	for p := ProviderLocal; p.known(); p++ {
		if providerNames[p] == name {
			return p, nil
		}
	}
	return 0, fmt.Errorf("envelope: key provider %q has no format identifier", name)
}

// Header flags.
const (
	flagMultipart = 0x01
	// flagKeyObject (version 2): the wrapped data key lives in a key
	// object, and the header holds its SHA-256.
	flagKeyObject = 0x02
)

// Header is the binary s3seal metadata of one object, format version 1
// or 2:
//
//	size  field
//	1     version (0x01 or 0x02)
//	1     algorithm (0x01)
//	1     flags: bit 0 multipart; version 2 also bit 1, wrapped key in a
//	      key object; other bits zero
//	1     key provider (0x01 local, 0x02 aws-kms; version 2 also 0x03
//	      kmip, 0x04 pkcs11, 0x05 age)
//	1     key id length L (1..128)
//	L     key id (printable ASCII)
//	2     wrapped data key length W (big-endian, 1..384; 32 with bit 1)
//	W     wrapped data key, or the SHA-256 of the key object holding it
//	8     plaintext size (big-endian; single PUT only, 0 for multipart)
//	1     checksum algorithm declared up front (0 none, see stream.ChecksumAlgorithm)
//	C     checksum value (C = 0, 4, 4, 8, 20 or 32 by algorithm)
//	32    key commitment
//	32    seal salt
//	48    version 1: sealed object key (32 + 16-byte tag)
//	60    version 2: sealed object key (12-byte nonce, 32, 16-byte tag)
//
// Everything before the seal salt is the additional data of the seal. A
// Header is valid only as returned by Parse, ParseBinary or the sealing
// functions; its accessors may panic on other byte slices.
type Header []byte

// offsets locates the variable-position fields.
type offsets struct {
	wrapped, size, sumAlg, sum, commit, salt, sealed, end int
}

func (h Header) offsets() offsets {
	var o offsets
	l := int(h[4])
	o.wrapped = 5 + l + 2
	w := int(binary.BigEndian.Uint16(h[5+l:]))
	o.size = o.wrapped + w
	o.sumAlg = o.size + 8
	o.sum = o.sumAlg + 1
	o.commit = o.sum + stream.ChecksumAlgorithm(h[o.sumAlg]).Size()
	o.salt = o.commit + CommitmentSize
	o.sealed = o.salt + SaltSize
	o.end = o.sealed + sealedSize(h[0])
	return o
}

func sealedSize(version byte) int {
	if version == VersionV2 {
		return SealedKeySizeV2
	}
	return SealedKeySize
}

// ParseError reports metadata that is not a valid header.
type ParseError struct {
	Reason string
}

func (e *ParseError) Error() string { return "envelope: invalid s3seal metadata: " + e.Reason }

func parseErr(format string, args ...any) error {
	return &ParseError{Reason: fmt.Sprintf(format, args...)}
}

var b64 = base64.RawURLEncoding.Strict()

// Parse parses the value of the x-amz-meta-s3seal header.
func Parse(value string) (Header, error) {
	if len(value) > MaxFieldSize {
		return nil, parseErr("%d characters, more than any header", len(value))
	}
	b, err := decodeB64(value)
	if err != nil {
		return nil, err
	}
	return ParseBinary(b)
}

// decodeB64 decodes canonical unpadded base64url.
func decodeB64(value string) ([]byte, error) {
	// The decoder skips \r and \n even in strict mode; refuse every byte
	// outside the alphabet so that one value has one encoding.
	for i := 0; i < len(value); i++ {
		if c := value[i]; !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, parseErr("not unpadded base64url")
		}
	}
	b, err := b64.DecodeString(value)
	if err != nil {
		return nil, parseErr("not unpadded base64url")
	}
	return b, nil
}

// ParseBinary parses a binary header of format version 1 or 2. The result
// aliases b.
func ParseBinary(b []byte) (Header, error) {
	if len(b) == 0 {
		return nil, parseErr("empty")
	}
	v := b[0]
	if v != Version && v != VersionV2 {
		return nil, parseErr("format version %d is not supported (this s3seal reads versions 1 and 2; use a newer s3seal)", b[0])
	}
	if len(b) < 5 {
		return nil, parseErr("too short")
	}
	if Algorithm(b[1]) != AES256GCM {
		return nil, parseErr("unknown algorithm %d", b[1])
	}
	flags, providers := byte(flagMultipart), ProviderPKCS11
	if v == VersionV2 {
		flags, providers = flagMultipart|flagKeyObject, ProviderAge
	}
	if b[2]&^flags != 0 {
		return nil, parseErr("unknown flags %#02x", b[2])
	}
	if p := Provider(b[3]); p < ProviderLocal || p > providers {
		return nil, parseErr("unknown key provider %d", b[3])
	}
	l := int(b[4])
	if l == 0 || l > keys.MaxKeyIDSize {
		return nil, parseErr("key id length %d", l)
	}
	if len(b) < 5+l+2 {
		return nil, parseErr("too short")
	}
	for _, c := range b[5 : 5+l] {
		if c < 0x21 || c > 0x7e {
			return nil, parseErr("key id is not printable ASCII")
		}
	}
	w := int(binary.BigEndian.Uint16(b[5+l:]))
	if b[2]&flagKeyObject != 0 {
		if w != WrappedKeyRefSize {
			return nil, parseErr("key object reference of %d bytes", w)
		}
	} else if w == 0 || w > keys.MaxWrappedSize {
		return nil, parseErr("wrapped key length %d", w)
	}
	if len(b) < 5+l+2+w+8+1 {
		return nil, parseErr("too short")
	}
	h := Header(b)
	o := offsets{wrapped: 5 + l + 2, size: 5 + l + 2 + w}
	o.sumAlg = o.size + 8
	size := binary.BigEndian.Uint64(b[o.size:])
	if h.Multipart() && size != 0 {
		return nil, parseErr("multipart object with a plaintext size")
	}
	maxSize := uint64(stream.MaxSegmentSize)
	if v == VersionV2 {
		maxSize = stream.MaxSegmentSizeV2
	}
	if size > maxSize {
		return nil, parseErr("plaintext size %d too large", size)
	}
	if stream.ChecksumAlgorithm(b[o.sumAlg]).Size() < 0 {
		return nil, parseErr("unknown checksum algorithm %d", b[o.sumAlg])
	}
	if n := len(b); n != h.offsets().end {
		return nil, parseErr("%d bytes, want %d", n, h.offsets().end)
	}
	return h, nil
}

// Marshal returns the header's textual form, the value of
// x-amz-meta-s3seal. Parse(h.Marshal()) gives back h.
func (h Header) Marshal() string { return b64.EncodeToString(h) }

// String returns Marshal().
func (h Header) String() string { return h.Marshal() }

// Version returns the format version.
func (h Header) Version() uint8 { return h[0] }

// Algorithm returns the algorithm.
func (h Header) Algorithm() Algorithm { return Algorithm(h[1]) }

// Multipart reports whether the object was written by a multipart upload
// (segments 1..N) rather than a single PUT (segment 0).
func (h Header) Multipart() bool { return h[2]&flagMultipart != 0 }

// Provider returns the key provider that wrapped the data key.
func (h Header) Provider() Provider { return Provider(h[3]) }

// KeyID returns the id of the master key that wrapped the data key.
func (h Header) KeyID() string { return string(h[5 : 5+int(h[4])]) }

// WrappedKey returns the wrapped data key (aliasing h), or, when
// KeyObject reports true, the SHA-256 of the key object that holds it.
func (h Header) WrappedKey() []byte {
	o := h.offsets()
	return h[o.wrapped:o.size:o.size]
}

// KeyObject reports whether the wrapped data key is stored in a key object
// rather than in the header (version 2, for wrapped keys above
// keys.MaxWrappedSize such as post-quantum age recipients'); WrappedKey
// then returns the key object's SHA-256, and KeyObjectName its name.
func (h Header) KeyObject() bool { return h[2]&flagKeyObject != 0 }

// PlaintextSize returns the plaintext size of a single-PUT object (0 for a
// multipart object, whose size follows from its ciphertext and parts).
func (h Header) PlaintextSize() int64 {
	return int64(binary.BigEndian.Uint64(h[h.offsets().size:]))
}

// Checksum returns the checksum the client declared up front, if any.
func (h Header) Checksum() stream.Checksum {
	o := h.offsets()
	c := stream.Checksum{Algorithm: stream.ChecksumAlgorithm(h[o.sumAlg])}
	if o.commit > o.sum {
		c.Value = append([]byte(nil), h[o.sum:o.commit]...)
	}
	return c
}

// Commitment returns the key commitment.
func (h Header) Commitment() []byte {
	o := h.offsets()
	return h[o.commit:o.salt:o.salt]
}

func (h Header) aad() []byte       { return h[:h.offsets().salt] }
func (h Header) salt() []byte      { o := h.offsets(); return h[o.salt:o.sealed] }
func (h Header) sealedKey() []byte { o := h.offsets(); return h[o.sealed:o.end] }
func (h Header) ciphertextSize() int64 {
	size := stream.CiphertextSize
	if h.Version() == VersionV2 {
		size = stream.CiphertextSizeV2
	}
	n, _ := size(h.PlaintextSize())
	return n
}

// CiphertextSize returns the stored size of a single-PUT object, which
// follows from its plaintext size and version, or -1 for a multipart
// object.
func (h Header) CiphertextSize() int64 {
	if h.Multipart() {
		return -1
	}
	return h.ciphertextSize()
}

// MaxSize is the largest binary header: version 2 with a 128-byte key id,
// a 384-byte wrapped key and a SHA-256 checksum (a version 1 header holds
// 12 bytes less).
const MaxSize = 5 + keys.MaxKeyIDSize + 2 + keys.MaxWrappedSize + 8 + 1 + stream.MaxChecksumSize + CommitmentSize + SaltSize + SealedKeySizeV2

// MaxFieldSize is the most user-metadata bytes s3seal adds to an object, as
// S3 counts them: the header name x-amz-meta-s3seal plus the longest value.
const MaxFieldSize = len(userMetaPrefix) + len(MetadataKey) + (MaxSize*8+5)/6
