// Package checksum computes and verifies the body checksums S3 clients send:
// CRC32, CRC32C, CRC64NVME, SHA1, SHA256, SHA512, MD5, XXHASH64, XXHASH3
// and XXHASH128 (the x-amz-checksum-* family), Content-MD5 and the hex
// SHA-256 of x-amz-content-sha256.
//
// # Names and values
//
// Algorithms are named as S3 spells them ("CRC32", "CRC64NVME"); their
// headers are x-amz-checksum-crc32 and so on, and values are the standard
// base64 of the big-endian digest. [FromHeader] finds the one checksum header
// of a request and validates its value; [HeaderChecks] turns a request's
// checksum headers into [Check]s.
//
// # Verifying a stream
//
// [NewVerifier] wraps a body so that it is hashed as it is read and checked
// at its end. The [Reader] never hands out the last byte of the stream until
// every check has passed and the length is right; on a mismatch it returns an
// [*s3err.Error] in place of that byte. A transport that sends a request
// with a fixed Content-Length (or chunked framing) therefore never completes
// an upstream body whose checksum failed, and the upstream store discards
// the incomplete upload: nothing unverified is stored.
//
// Errors returned by this package are [*s3err.Error] values whose messages
// may be sent to clients.
package checksum

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/minio/crc64nvme"
	"github.com/s3seal/s3seal/proxy/s3err"
	"github.com/zeebo/xxh3"
)

// Algorithm is a body checksum algorithm, named as S3 names it. The zero
// value means "no checksum".
type Algorithm string

// The algorithms S3 accepts in x-amz-checksum-* headers and trailers, plus
// ContentMD5 for Content-MD5.
const (
	CRC32     Algorithm = "CRC32"
	CRC32C    Algorithm = "CRC32C"
	CRC64NVME Algorithm = "CRC64NVME"
	SHA1      Algorithm = "SHA1"
	SHA256    Algorithm = "SHA256"
	SHA512    Algorithm = "SHA512"
	// MD5 is the x-amz-checksum-md5 checksum.
	MD5       Algorithm = "MD5"
	XXHASH64  Algorithm = "XXHASH64"
	XXHASH3   Algorithm = "XXHASH3"
	XXHASH128 Algorithm = "XXHASH128"
	// ContentMD5 is the Content-MD5 digest: MD5 carried in its own header,
	// with its own errors. ParseAlgorithm does not accept it.
	ContentMD5 Algorithm = "CONTENT-MD5"
)

// Algorithms lists the x-amz-checksum-* algorithms in a fixed order.
func Algorithms() []Algorithm {
	return []Algorithm{CRC32, CRC32C, CRC64NVME, SHA1, SHA256, SHA512, MD5, XXHASH64, XXHASH3, XXHASH128}
}

// headerPrefix is the lower-case prefix of the checksum headers.
const headerPrefix = "x-amz-checksum-"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ParseAlgorithm parses an S3 checksum algorithm name, case-insensitively
// ("crc32c", "CRC32C"). The error is InvalidArgument.
func ParseAlgorithm(s string) (Algorithm, error) {
	for _, a := range Algorithms() {
		if strings.EqualFold(s, string(a)) {
			return a, nil
		}
	}
	return "", s3err.InvalidArgument.WithMessage("Checksum algorithm %q is not supported; use CRC32, CRC32C, CRC64NVME, SHA1, SHA256, SHA512, MD5, XXHASH64, XXHASH3 or XXHASH128.", clip(s))
}

// AlgorithmForHeader returns the algorithm whose header is name
// (case-insensitive, e.g. "x-amz-checksum-crc32"), or false.
func AlgorithmForHeader(name string) (Algorithm, bool) {
	if len(name) <= len(headerPrefix) || !strings.EqualFold(name[:len(headerPrefix)], headerPrefix) {
		return "", false
	}
	a, err := ParseAlgorithm(name[len(headerPrefix):])
	return a, err == nil
}

// Valid reports whether a is one of the defined algorithms (ContentMD5
// included).
func (a Algorithm) Valid() bool {
	return a.Size() > 0
}

// String returns the S3 name.
func (a Algorithm) String() string { return string(a) }

// New returns a new hash for a. It panics if a is not a defined algorithm,
// which is a programming error: parse names with ParseAlgorithm first.
func (a Algorithm) New() hash.Hash {
	switch a {
	case CRC32:
		return crc32.NewIEEE()
	case CRC32C:
		return crc32.New(castagnoli)
	case CRC64NVME:
		return crc64nvme.New()
	case SHA1:
		return sha1.New()
	case SHA256:
		return sha256.New()
	case SHA512:
		return sha512.New()
	case MD5, ContentMD5:
		return md5.New()
	case XXHASH64:
		return xxhash.New()
	case XXHASH3:
		return xxh3.New()
	case XXHASH128:
		return xxh3.New128()
	}
	panic("checksum: internal error: unknown algorithm " + string(a))
}

// Size returns the digest length in bytes, or 0 for an unknown algorithm.
func (a Algorithm) Size() int {
	switch a {
	case CRC32, CRC32C:
		return crc32.Size
	case CRC64NVME:
		return 8
	case SHA1:
		return sha1.Size
	case SHA256:
		return sha256.Size
	case SHA512:
		return sha512.Size
	case MD5, ContentMD5, XXHASH128:
		return 16
	case XXHASH64, XXHASH3:
		return 8
	}
	return 0
}

// EncodedLen returns the length of a base64 value of a.
func (a Algorithm) EncodedLen() int {
	return base64.StdEncoding.EncodedLen(a.Size())
}

// HeaderName returns the lower-case header that carries a value of a:
// "x-amz-checksum-crc32" and so on, "content-md5" for ContentMD5, "" for
// an unknown algorithm.
func (a Algorithm) HeaderName() string {
	switch a {
	case ContentMD5:
		return "content-md5"
	case "":
		return ""
	}
	if a.Size() > 0 {
		return headerPrefix + strings.ToLower(string(a))
	}
	return ""
}

// Encode returns the base64 form of a raw digest.
func Encode(digest []byte) string {
	return base64.StdEncoding.EncodeToString(digest)
}

// ParseValue decodes a base64 checksum value of a and checks its length.
// A bad value is InvalidRequest ("Value for x-amz-checksum-crc32 header is
// invalid."), or InvalidDigest for Content-MD5, as S3 answers.
func ParseValue(a Algorithm, value string) ([]byte, error) {
	if !a.Valid() {
		return nil, s3err.InvalidArgument.WithMessage("Checksum algorithm %q is not supported.", clip(string(a)))
	}
	d, err := base64.StdEncoding.Strict().DecodeString(value)
	if err != nil || len(d) != a.Size() {
		if a == ContentMD5 {
			return nil, s3err.InvalidDigest.WithMessage("The Content-MD5 you specified is not valid.").WithField("Content-MD5", clip(value))
		}
		return nil, s3err.InvalidRequest.WithMessage("Value for %s header is invalid.", a.HeaderName())
	}
	return d, nil
}

// ParseObjectValue validates the checksum CompleteMultipartUpload names
// for the whole object: a full-object value (as ParseValue), or a
// composite one, the checksum of the parts' checksums followed by "-" and
// the part count (1..10000).
func ParseObjectValue(a Algorithm, value string) error {
	if v, n, ok := strings.Cut(value, "-"); ok {
		if k, err := strconv.Atoi(n); err == nil && k >= 1 && k <= 10000 && n == strconv.Itoa(k) {
			value = v
		}
	}
	_, err := ParseValue(a, value)
	return err
}

// FromHeader finds the single x-amz-checksum-<algorithm> header of h and
// validates its value. It reports ok=false when there is none. More than
// one checksum header (or one header repeated) is InvalidRequest; a value
// that is not base64 of the right length is InvalidRequest. Headers of the
// same prefix that carry no value (x-amz-checksum-mode,
// x-amz-checksum-algorithm, x-amz-checksum-type) are ignored.
func FromHeader(h http.Header) (alg Algorithm, value string, ok bool, err error) {
	return fromHeader(h, ParseValue)
}

// FromCompleteHeader is FromHeader for CompleteMultipartUpload, whose
// checksum header names the object's checksum (see ParseObjectValue).
func FromCompleteHeader(h http.Header) (alg Algorithm, value string, ok bool, err error) {
	return fromHeader(h, func(a Algorithm, v string) ([]byte, error) { return nil, ParseObjectValue(a, v) })
}

func fromHeader(h http.Header, parse func(Algorithm, string) ([]byte, error)) (alg Algorithm, value string, ok bool, err error) {
	for _, a := range Algorithms() {
		vs := h.Values(a.HeaderName())
		if len(vs) == 0 {
			continue
		}
		if ok || len(vs) > 1 {
			return "", "", false, s3err.InvalidRequest.WithMessage("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		alg, value, ok = a, vs[0], true
	}
	if !ok {
		return "", "", false, nil
	}
	if _, err := parse(alg, value); err != nil {
		return "", "", false, err
	}
	return alg, value, true, nil
}

// HeaderChecks returns the checks a request's headers ask for: its
// x-amz-checksum-* header (see FromHeader) and its Content-MD5. Mismatches
// are BadDigest. It returns no checks and no error when there are neither.
// Only call it for operations whose body the headers describe (PutObject,
// UploadPart); CompleteMultipartUpload's checksum header describes the
// object, not the XML body.
func HeaderChecks(h http.Header) ([]Check, error) {
	var checks []Check
	alg, value, ok, err := FromHeader(h)
	if err != nil {
		return nil, err
	}
	if ok {
		c, err := Expect(alg, value)
		if err != nil {
			return nil, err
		}
		checks = append(checks, c)
	}
	if vs := h.Values("Content-Md5"); len(vs) > 0 {
		if len(vs) > 1 {
			return nil, s3err.InvalidDigest.WithMessage("The Content-MD5 you specified is not valid.")
		}
		c, err := Expect(ContentMD5, vs[0])
		if err != nil {
			return nil, err
		}
		checks = append(checks, c)
	}
	return checks, nil
}

// Sum reads r to its end and returns the base64 digest of what it read and
// the number of bytes. Read errors are returned as they are.
func Sum(a Algorithm, r io.Reader) (value string, n int64, err error) {
	h := a.New()
	n, err = io.Copy(h, r)
	if err != nil {
		return "", n, err
	}
	return Encode(h.Sum(nil)), n, nil
}

// SumBytes returns the base64 digest of b.
func SumBytes(a Algorithm, b []byte) string {
	h := a.New()
	h.Write(b)
	return Encode(h.Sum(nil))
}

// HexSHA256 returns the lower-case hex SHA-256 of b, the form
// x-amz-content-sha256 uses.
func HexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// clip shortens client input quoted in error messages.
func clip(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
