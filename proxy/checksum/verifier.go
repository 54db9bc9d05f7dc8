package checksum

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"

	"github.com/s3seal/s3seal/proxy/s3err"
)

// Check is one digest a verifying Reader compares at the end of its stream.
type Check struct {
	// Algorithm is the hash to compute over the stream.
	Algorithm Algorithm
	// Want is the expected raw digest. When it is nil, WantFunc is called
	// once the stream has ended.
	Want []byte
	// WantFunc returns the expected digest at the end of the stream, for
	// values that arrive after the body (aws-chunked trailers). An error
	// from it fails the stream; it is returned as is when it is an
	// *s3err.Error.
	WantFunc func() ([]byte, error)
	// Mismatch is the error returned when the digests differ. Nil means
	// BadDigest.
	Mismatch *s3err.Error
}

// Expect returns a check for a base64 value of a, validated as ParseValue
// does. Mismatches are BadDigest.
func Expect(a Algorithm, value string) (Check, error) {
	d, err := ParseValue(a, value)
	if err != nil {
		return Check{}, err
	}
	return Check{Algorithm: a, Want: d}, nil
}

// ExpectPayloadSHA256 returns the check for an x-amz-content-sha256 value
// (64 hex digits). Mismatches are XAmzContentSHA256Mismatch; a malformed
// value is InvalidArgument.
func ExpectPayloadSHA256(hexValue string) (Check, error) {
	d, err := hex.DecodeString(hexValue)
	if err != nil || len(d) != SHA256.Size() {
		return Check{}, s3err.InvalidArgument.WithMessage("x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-* value or a valid SHA-256 value.")
	}
	return Check{Algorithm: SHA256, Want: d, Mismatch: s3err.XAmzContentSHA256Mismatch}, nil
}

type check struct {
	Check
	h hash.Hash
}

// Reader hashes a stream as it is read and verifies its length and digests
// at its end. It holds back the stream's final byte until the underlying
// reader has returned io.EOF and every check has passed.
//
// Why one byte is enough: s3seal forwards a body upstream with a declared
// length (a Content-Length, or the decoded length of aws-chunked framing).
// The upstream request completes only once the last declared byte has been
// sent; an error before then makes the HTTP transport abort the request
// (closing the connection, never sending a chunked terminator), and the
// store discards the incomplete upload. Withholding one byte until
// verification therefore decides whether the upload can complete, without
// buffering the body.
//
// A Reader is not safe for concurrent Reads. Its errors are sticky and are
// *s3err.Error values.
type Reader struct {
	src     io.Reader
	want    int64 // expected length, or -1
	n       int64 // bytes read from src
	checks  []check
	held    byte
	hasHeld bool
	srcDone bool
	started bool
	one     [1]byte
	scratch [64]byte
	err     error
	ok      bool
}

// NewVerifier returns a Reader over r. expectedLen ≥ 0 is the exact length
// the stream must have: a shorter stream ends in IncompleteBody, a longer
// one in IncompleteBody without releasing any byte beyond expectedLen.
// A negative expectedLen means the length is not checked. With no checks
// the Reader still holds back the last byte until the length is verified
// and r has ended cleanly.
func NewVerifier(r io.Reader, expectedLen int64, checks ...Check) *Reader {
	v := &Reader{src: r, want: expectedLen}
	if expectedLen < 0 {
		v.want = -1
	}
	v.add(checks)
	return v
}

func (r *Reader) add(checks []Check) {
	for _, c := range checks {
		r.checks = append(r.checks, check{Check: c, h: c.Algorithm.New()})
	}
}

// AddChecks adds checks before the first Read. It fails once reading has
// started, because the new hashes would miss bytes.
func (r *Reader) AddChecks(checks ...Check) error {
	if r.started {
		return errors.New("checksum: checks added after reading started")
	}
	r.add(checks)
	return nil
}

// Verified reports whether the stream has ended and passed every check.
func (r *Reader) Verified() bool { return r.ok }

// Len returns the number of bytes read from the underlying reader so far.
func (r *Reader) Len() int64 { return r.n }

// Close closes the underlying reader if it is an io.Closer. It may be
// called concurrently with Read, as HTTP transports do to abort a body.
func (r *Reader) Close() error {
	if c, ok := r.src.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	r.started = true
	for empty := 0; !r.srcDone; {
		// Read behind the held byte so that it can be released in place
		// and the new last byte held instead, without copying.
		buf := p
		if r.hasHeld {
			buf = p[1:]
			if len(buf) == 0 {
				buf = r.one[:]
			}
		}
		n, err := r.src.Read(buf)
		if n < 0 || n > len(buf) {
			return 0, r.fail(s3err.InternalError.WithCause(errors.New("checksum: invalid count from reader")))
		}
		if n > 0 {
			if e := r.consume(buf[:n]); e != nil {
				return 0, r.fail(e)
			}
		}
		if err != nil {
			if err != io.EOF {
				return 0, r.fail(readError(err))
			}
			r.srcDone = true
		}
		if n == 0 {
			if err == nil {
				if empty++; empty >= 100 {
					return 0, r.fail(s3err.IncompleteBody.WithCause(io.ErrNoProgress))
				}
			}
			continue
		}
		switch {
		case !r.hasHeld:
			r.held, r.hasHeld = p[n-1], true
			if n > 1 {
				return n - 1, nil
			}
		case len(p) == 1:
			p[0], r.held = r.held, r.one[0]
			return 1, nil
		default:
			next := p[n]
			p[0], r.held = r.held, next
			return n, nil
		}
	}
	if e := r.finish(); e != nil {
		return 0, r.fail(e)
	}
	r.ok = true
	r.err = io.EOF
	if r.hasHeld {
		p[0], r.hasHeld = r.held, false
		return 1, nil
	}
	return 0, io.EOF
}

func (r *Reader) fail(e error) error {
	r.err = e
	r.hasHeld = false
	return e
}

func (r *Reader) consume(b []byte) error {
	r.n += int64(len(b))
	if r.want >= 0 && r.n > r.want {
		return s3err.IncompleteBody.WithCause(fmt.Errorf("the request body is longer than the %d bytes its headers declare", r.want))
	}
	for i := range r.checks {
		r.checks[i].h.Write(b)
	}
	return nil
}

func (r *Reader) finish() error {
	if r.want >= 0 && r.n < r.want {
		return s3err.IncompleteBody.WithCause(fmt.Errorf("the request body ended after %d of the %d bytes its headers declare", r.n, r.want))
	}
	for i := range r.checks {
		c := &r.checks[i]
		want := c.Want
		if want == nil {
			if c.WantFunc == nil {
				return s3err.InternalError.WithCause(errors.New("checksum: check without an expected value"))
			}
			var err error
			want, err = c.WantFunc()
			if err != nil {
				if e, ok := s3err.As(err); ok {
					return e
				}
				return s3err.InvalidRequest.WithCause(err)
			}
		}
		if got := c.h.Sum(r.scratch[:0]); !bytes.Equal(got, want) {
			if c.Mismatch == s3err.XAmzContentSHA256Mismatch {
				return ContentSHA256Mismatch(hex.EncodeToString(want), hex.EncodeToString(got))
			}
			if c.Mismatch != nil {
				return c.Mismatch
			}
			if c.Algorithm == ContentMD5 {
				return s3err.BadDigest.WithMessage("The Content-MD5 you specified did not match what we received.")
			}
			return s3err.BadDigest.WithMessage("The %s you specified did not match the calculated checksum.", c.Algorithm)
		}
	}
	return nil
}

// readError maps an error from a request body to an S3 error: errors that
// already are *s3err.Error pass through; a truncated body is
// IncompleteBody; an oversized one EntityTooLarge; a stalled one
// RequestTimeout. The cause is kept for logs.
func readError(err error) error {
	if e, ok := s3err.As(err); ok {
		return e
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return s3err.EntityTooLarge.WithCause(err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return s3err.RequestTimeout.WithCause(err)
	}
	return s3err.IncompleteBody.WithCause(err)
}

// ReadError maps an error from reading a request body to the S3 error
// s3seal answers with (see Reader). It is exported for packages that read
// client bodies themselves.
func ReadError(err error) error { return readError(err) }

// ContentSHA256Mismatch is S3's error for a body whose SHA-256 is not the
// x-amz-content-sha256 the client signed, with both values (the hash of
// the body is no secret: the client sent the body).
func ContentSHA256Mismatch(client, computed string) *s3err.Error {
	return s3err.XAmzContentSHA256Mismatch.WithField("ClientComputedContentSHA256", client).WithField("S3ComputedContentSHA256", computed)
}
