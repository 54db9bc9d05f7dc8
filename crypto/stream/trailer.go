package stream

import (
	"encoding/binary"
	"fmt"
)

// ChecksumAlgorithm identifies the algorithm of a checksum a client declared
// for its data. The values are part of the format.
type ChecksumAlgorithm uint8

// Checksum algorithms S3 clients send (x-amz-checksum-*).
const (
	ChecksumNone      ChecksumAlgorithm = 0
	ChecksumCRC32     ChecksumAlgorithm = 1
	ChecksumCRC32C    ChecksumAlgorithm = 2
	ChecksumCRC64NVME ChecksumAlgorithm = 3
	ChecksumSHA1      ChecksumAlgorithm = 4
	ChecksumSHA256    ChecksumAlgorithm = 5
)

// MaxChecksumSize is the largest checksum value (SHA-256).
const MaxChecksumSize = 32

// Size returns the length of a checksum value of algorithm a, or -1 if a is
// not a known algorithm.
func (a ChecksumAlgorithm) Size() int {
	switch a {
	case ChecksumNone:
		return 0
	case ChecksumCRC32, ChecksumCRC32C:
		return 4
	case ChecksumCRC64NVME:
		return 8
	case ChecksumSHA1:
		return 20
	case ChecksumSHA256:
		return 32
	}
	return -1
}

// String returns the S3 name of the algorithm (CRC32, CRC32C, CRC64NVME, SHA1,
// SHA256), "none", or "unknown(N)".
func (a ChecksumAlgorithm) String() string {
	switch a {
	case ChecksumNone:
		return "none"
	case ChecksumCRC32:
		return "CRC32"
	case ChecksumCRC32C:
		return "CRC32C"
	case ChecksumCRC64NVME:
		return "CRC64NVME"
	case ChecksumSHA1:
		return "SHA1"
	case ChecksumSHA256:
		return "SHA256"
	}
	return fmt.Sprintf("unknown(%d)", uint8(a))
}

// ParseChecksumAlgorithm maps an S3 algorithm name (case-insensitive) to its
// identifier.
func ParseChecksumAlgorithm(name string) (ChecksumAlgorithm, error) {
	for a := ChecksumCRC32; a <= ChecksumSHA256; a++ {
		if equalFold(name, a.String()) {
			return a, nil
		}
	}
	return 0, fmt.Errorf("stream: unknown checksum algorithm %q", name)
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if 'a' <= y && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// Checksum is a checksum value a client declared for its plaintext. The zero
// value means no checksum.
type Checksum struct {
	Algorithm ChecksumAlgorithm
	// Value is the raw (not base64) checksum, exactly Algorithm.Size() bytes.
	Value []byte
}

// Validate reports whether the value has the length its algorithm requires.
func (c Checksum) Validate() error {
	n := c.Algorithm.Size()
	if n < 0 {
		return fmt.Errorf("stream: unknown checksum algorithm %d", uint8(c.Algorithm))
	}
	if len(c.Value) != n {
		return fmt.Errorf("stream: %s checksum must be %d bytes, got %d", c.Algorithm, n, len(c.Value))
	}
	return nil
}

// Trailer is the authenticated record that ends every segment.
//
// Layout of its 64-byte plaintext:
//
//	offset size field
//	0      1    record version: the format version, 0x01 or 0x02
//	1      8    segment plaintext length, big-endian
//	9      1    checksum algorithm (ChecksumAlgorithm), 0 if none
//	10     32   checksum value, zero-padded on the right
//	42     22   reserved, zero
type Trailer struct {
	// Length is the segment's plaintext length.
	Length int64
	// Checksum is the checksum the client declared for the segment, if any.
	Checksum Checksum
}

const trailerVersion = 1

// marshal writes the trailer record of format version v into
// b[:TrailerPlaintextSize].
func (t *Trailer) marshal(b []byte, v uint8) {
	b = b[:TrailerPlaintextSize]
	clear(b)
	b[0] = v
	binary.BigEndian.PutUint64(b[1:9], uint64(t.Length))
	b[9] = byte(t.Checksum.Algorithm)
	copy(b[10:10+MaxChecksumSize], t.Checksum.Value)
}

// parseTrailer parses an authenticated trailer record strictly: unknown
// versions, algorithms, non-zero padding or reserved bytes are refused. Since
// the record is authenticated, a failure means a writer bug or a future
// version, never tampering; it is still reported as ErrAuthentication so that
// readers fail closed with one error.
func parseTrailer(b []byte, f *format) (Trailer, error) {
	if len(b) != TrailerPlaintextSize || b[0] != f.version {
		return Trailer{}, ErrAuthentication
	}
	n := binary.BigEndian.Uint64(b[1:9])
	if n > uint64(f.maxSegment) {
		return Trailer{}, ErrAuthentication
	}
	alg := ChecksumAlgorithm(b[9])
	size := alg.Size()
	if size < 0 {
		return Trailer{}, ErrAuthentication
	}
	for _, c := range b[10+size:] {
		if c != 0 {
			return Trailer{}, ErrAuthentication
		}
	}
	t := Trailer{Length: int64(n), Checksum: Checksum{Algorithm: alg}}
	if size > 0 {
		t.Checksum.Value = append([]byte(nil), b[10:10+size]...)
	}
	return t, nil
}
