package stream

import (
	"errors"
	"io"
)

// EncryptOptions are the optional settings of an encrypter. A nil
// *EncryptOptions and the zero value mean: no checksum in the trailer.
type EncryptOptions struct {
	// Checksum, if not nil, is called exactly once, when the plaintext has
	// reached its end (the source returned io.EOF, or Close was called) and
	// before the trailer is written, with the segment's plaintext length. It
	// returns the checksum to record in the trailer (the zero Checksum for
	// none). This is how a checksum that arrives after the body (an
	// aws-chunked trailer) gets into the segment. If it returns an error, the
	// encrypter fails with that error and writes no trailer, so the segment
	// stays unfinished and cannot authenticate.
	Checksum func(length int64) (Checksum, error)
	// Rand, if not nil, supplies the salt of a version 2 segment and then
	// the nonces of its chunks, for known-answer tests. It must be a
	// source of cryptographic randomness: nonces and salts it repeats
	// repeat keys and nonces. nil means what s3seal uses: crypto/rand for
	// the salt and, for the nonces, the random source inside Go's
	// cryptographic module (cipher.NewGCMWithRandomNonce), the only way to
	// encrypt with AES-GCM in FIPS 140-only mode; with Rand set, writing
	// is not possible in that mode. Version 1 ignores it.
	Rand io.Reader
}

func (o *EncryptOptions) checksum(length int64) (Checksum, error) {
	if o == nil || o.Checksum == nil {
		return Checksum{}, nil
	}
	c, err := o.Checksum(length)
	if err != nil {
		return Checksum{}, err
	}
	if err := c.Validate(); err != nil {
		return Checksum{}, err
	}
	return c, nil
}

var errTooLarge = errors.New("stream: segment plaintext exceeds MaxSegmentSize")

// EncryptReader reads plaintext from a source and returns the ciphertext of
// one segment. It is the form a proxy uses as an HTTP request body: with n
// plaintext bytes it yields exactly CiphertextSize(n) bytes.
//
// Full chunks are returned as soon as they are read (no look-ahead). Errors
// are sticky; a source error is returned as is. EncryptReader does not close
// its source and is not safe for concurrent use.
type EncryptReader struct {
	pump   // Read, WriteTo; err is io.EOF once the trailer has been produced
	src    io.Reader
	c      *segCipher
	opts   *EncryptOptions
	buf    *buffer
	chunk  uint64
	length int64
}

// NewEncryptReader returns a reader of the ciphertext of the segment whose
// plaintext src yields, under the 32-byte content key. opts may be nil.
func NewEncryptReader(key []byte, src io.Reader, opts *EncryptOptions) (*EncryptReader, error) {
	c, err := newSegCipher(key)
	if err != nil {
		return nil, err
	}
	r := &EncryptReader{src: src, c: c, opts: opts, buf: getBuf()}
	r.next = func(dst []byte) []byte {
		if dst == nil {
			dst = r.buf[:0]
		}
		return dst[:r.produce(dst[:cap(dst)])]
	}
	// Encrypt straight into the caller's buffer when a chunk and the
	// trailer fit.
	r.direct = func(room int) bool { return room >= EncryptedChunkSize+TrailerSize }
	r.free = func() { putBuf(r.buf); r.buf = nil }
	return r, nil
}

// produce reads the next chunk of plaintext into dst, encrypts it in place
// and, at the end of the plaintext, appends the trailer. dst must hold at
// least EncryptedChunkSize+TrailerSize bytes. It returns the number of
// ciphertext bytes written and sets r.err at the end or on failure.
func (r *EncryptReader) produce(dst []byte) int {
	m, err := io.ReadFull(r.src, dst[:ChunkSize])
	switch {
	case err == nil:
		if r.length += ChunkSize; r.length > MaxSegmentSize {
			r.err = errTooLarge
			return 0
		}
		r.c.seal(dst[:0], dst[:ChunkSize], r.chunk, flagData)
		r.chunk++
		return EncryptedChunkSize
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		if r.length += int64(m); r.length > MaxSegmentSize {
			r.err = errTooLarge
			return 0
		}
		sum, cerr := r.opts.checksum(r.length)
		if cerr != nil {
			r.err = cerr
			return 0
		}
		n := 0
		if m > 0 {
			n = len(r.c.seal(dst[:0], dst[:m], r.chunk, flagData))
			r.chunk++
		}
		n += r.trailer(dst[n:n], sum)
		r.err = io.EOF
		return n
	default:
		r.err = err
		return 0
	}
}

func (r *EncryptReader) trailer(dst []byte, sum Checksum) int {
	var rec [TrailerPlaintextSize]byte
	t := Trailer{Length: r.length, Checksum: sum}
	t.marshal(rec[:], trailerVersion)
	return len(r.c.seal(dst, rec[:], r.chunk, flagTrailer))
}

// EncryptWriter encrypts the plaintext written to it as one segment and
// writes the ciphertext to an underlying writer. Close writes the final data
// chunk and the trailer; it does not close the underlying writer. Errors are
// sticky. It is not safe for concurrent use.
type EncryptWriter struct {
	dst    io.Writer
	c      *segCipher
	opts   *EncryptOptions
	buf    *buffer
	n      int // plaintext bytes staged in buf
	chunk  uint64
	length int64
	err    error
}

var errClosed = errors.New("stream: write after Close")

// NewEncryptWriter returns a writer that encrypts under the 32-byte content
// key into dst. opts may be nil.
func NewEncryptWriter(key []byte, dst io.Writer, opts *EncryptOptions) (*EncryptWriter, error) {
	c, err := newSegCipher(key)
	if err != nil {
		return nil, err
	}
	return &EncryptWriter{dst: dst, c: c, opts: opts, buf: getBuf()}, nil
}

// Write implements io.Writer.
func (w *EncryptWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	written := 0
	for len(p) > 0 {
		if w.n == 0 && len(p) >= ChunkSize {
			// Seal straight from p, no staging copy.
			if err := w.flush(p[:ChunkSize]); err != nil {
				return written, err
			}
			p = p[ChunkSize:]
			written += ChunkSize
			continue
		}
		c := copy(w.buf[w.n:ChunkSize], p)
		w.n += c
		p = p[c:]
		written += c
		if w.n == ChunkSize {
			if err := w.flush(w.buf[:ChunkSize]); err != nil {
				return written, err
			}
			w.n = 0
		}
	}
	return written, nil
}

func (w *EncryptWriter) flush(plain []byte) error {
	if w.length += int64(len(plain)); w.length > MaxSegmentSize {
		return w.setErr(errTooLarge)
	}
	ct := w.c.seal(w.buf[:0], plain, w.chunk, flagData)
	w.chunk++
	if _, err := w.dst.Write(ct); err != nil {
		return w.setErr(err)
	}
	return nil
}

func (w *EncryptWriter) setErr(err error) error {
	w.err = err
	if w.buf != nil {
		putBuf(w.buf)
		w.buf = nil
	}
	return err
}

// Close encrypts the staged plaintext as the last data chunk, appends the
// trailer and writes both. Calling Close again returns the first result.
func (w *EncryptWriter) Close() error {
	if w.err != nil {
		if w.err == errClosed {
			return nil
		}
		return w.err
	}
	if w.length += int64(w.n); w.length > MaxSegmentSize {
		return w.setErr(errTooLarge)
	}
	sum, err := w.opts.checksum(w.length)
	if err != nil {
		return w.setErr(err)
	}
	ct := w.buf[:0]
	if w.n > 0 {
		ct = w.c.seal(ct, w.buf[:w.n], w.chunk, flagData)
		w.chunk++
	}
	var rec [TrailerPlaintextSize]byte
	t := Trailer{Length: w.length, Checksum: sum}
	t.marshal(rec[:], trailerVersion)
	ct = w.c.seal(ct, rec[:], w.chunk, flagTrailer)
	if _, err := w.dst.Write(ct); err != nil {
		return w.setErr(err)
	}
	w.setErr(errClosed)
	return nil
}
