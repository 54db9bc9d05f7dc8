package sigv4

import (
	"errors"
	"hash"
	"io"
	"strconv"

	"github.com/s3seal/s3seal/proxy/checksum"
)

// DefaultEncoderChunkSize is the chunk size NewUnsignedTrailerEncoder uses
// for a chunkSize ≤ 0.
const DefaultEncoderChunkSize = 64 << 10

// NewUnsignedTrailerEncoder returns r framed as a STREAMING-UNSIGNED-
// PAYLOAD-TRAILER body: chunks of chunkSize bytes ("<hex>\r\n<data>\r\n";
// the last one may be shorter), the final "0\r\n", the trailer line
// "x-amz-checksum-<alg>:<base64>\r\n" and a closing "\r\n".
//
// value returns the trailer value once r has reached EOF; nil means the
// encoder computes alg over the stream itself. An empty alg writes no
// trailer line. Errors from r are returned as they are. The encoder reads r
// a chunk at a time into a pooled buffer; it is not safe for concurrent
// use. The request carrying it needs the headers Content-Encoding:
// aws-chunked, x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER,
// x-amz-decoded-content-length, x-amz-trailer: alg.HeaderName(), and a
// Content-Length of EncodedLength.
func NewUnsignedTrailerEncoder(r io.Reader, alg checksum.Algorithm, value func() string, chunkSize int) io.Reader {
	if chunkSize <= 0 {
		chunkSize = DefaultEncoderChunkSize
	}
	e := &trailerEncoder{src: r, alg: alg, value: value, chunk: chunkSize}
	if alg != "" && value == nil {
		e.h = alg.New()
	}
	return e
}

// EncodedLength returns the exact length of NewUnsignedTrailerEncoder's
// output for decodedLen bytes of input, or -1 for a negative decodedLen.
func EncodedLength(decodedLen int64, chunkSize int, alg checksum.Algorithm) int64 {
	if decodedLen < 0 {
		return -1
	}
	if chunkSize <= 0 {
		chunkSize = DefaultEncoderChunkSize
	}
	cs := int64(chunkSize)
	full, rem := decodedLen/cs, decodedLen%cs
	n := full * chunkFrameLen(cs)
	if rem > 0 {
		n += chunkFrameLen(rem)
	}
	n += int64(len("0\r\n"))
	if alg != "" {
		n += int64(len(alg.HeaderName()) + 1 + alg.EncodedLen() + 2)
	}
	return n + 2
}

// chunkFrameLen is the framed length of one chunk of n data bytes.
func chunkFrameLen(n int64) int64 {
	return int64(len(strconv.FormatInt(n, 16))) + 2 + n + 2
}

type trailerEncoder struct {
	src   io.Reader
	alg   checksum.Algorithm
	value func() string
	h     hash.Hash
	chunk int

	buf    []byte // pooled chunk buffer
	hdr    [24]byte
	eol    [2]byte
	segs   [3][]byte // pending output: header, data, line end
	srcEOF bool      // src has ended
	done   bool      // the final chunk and trailer are staged
	err    error
}

func (e *trailerEncoder) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(e.segs[0])+len(e.segs[1])+len(e.segs[2]) == 0 {
			if e.err != nil {
				break
			}
			if e.done {
				e.release()
				e.err = io.EOF
				break
			}
			if err := e.fill(); err != nil {
				e.release()
				e.err = err
				break
			}
			continue
		}
		for i := range e.segs {
			if len(e.segs[i]) > 0 {
				c := copy(p[n:], e.segs[i])
				e.segs[i] = e.segs[i][c:]
				n += c
				break
			}
		}
	}
	if n > 0 {
		return n, nil
	}
	return 0, e.err
}

// fill stages the next chunk, or the final chunk and trailer.
func (e *trailerEncoder) fill() error {
	if e.buf == nil {
		e.buf = getBuf(e.chunk)
	}
	if !e.srcEOF {
		n, err := io.ReadFull(e.src, e.buf[:e.chunk])
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			e.srcEOF = true
		default:
			return err
		}
		if n > 0 {
			if e.h != nil {
				e.h.Write(e.buf[:n])
			}
			h := strconv.AppendInt(e.hdr[:0], int64(n), 16)
			e.eol = [2]byte{'\r', '\n'}
			e.segs = [3][]byte{append(h, '\r', '\n'), e.buf[:n], e.eol[:]}
			return nil
		}
	}
	// Nothing left: the final chunk and the trailer.
	e.done = true
	e.segs = [3][]byte{appendFinalChunk(e.buf[:0], e.alg, e.value, e.h), nil, nil}
	return nil
}

// appendFinalChunk appends the zero-length final chunk, the trailer line
// when alg is set (its value from value, or else the digest h computed over
// the data) and the closing CRLF.
func appendFinalChunk(dst []byte, alg checksum.Algorithm, value func() string, h hash.Hash) []byte {
	dst = append(dst, "0\r\n"...)
	if alg != "" {
		var v string
		if value != nil {
			v = value()
		} else {
			v = checksum.Encode(h.Sum(nil))
		}
		dst = append(dst, alg.HeaderName()...)
		dst = append(dst, ':')
		dst = append(dst, v...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// release returns the chunk buffer once nothing staged refers to it.
func (e *trailerEncoder) release() {
	if e.buf != nil {
		putBuf(e.buf)
		e.buf = nil
	}
}

// NewUnsignedTrailerEncoderLen is NewUnsignedTrailerEncoder for a source
// of exactly n bytes. Knowing each chunk's length before reading it, it
// writes chunk headers ahead of the data and reads the data straight into
// the caller's buffer: no chunk buffer and no copy. After n bytes it reads
// r once more, to see its end (and any check the source makes there) and to
// refuse a source longer than n; a shorter one is io.ErrUnexpectedEOF. The
// output is byte for byte NewUnsignedTrailerEncoder's.
func NewUnsignedTrailerEncoderLen(r io.Reader, n int64, alg checksum.Algorithm, value func() string, chunkSize int) io.Reader {
	if chunkSize <= 0 {
		chunkSize = DefaultEncoderChunkSize
	}
	e := &streamEncoder{src: r, remaining: n, chunk: int64(chunkSize), alg: alg, value: value}
	if alg != "" && value == nil {
		e.h = alg.New()
	}
	return e
}

// errSourceTooLong is returned when the source of a length-known encoder
// holds more than its declared length.
var errSourceTooLong = errors.New("sigv4: encoder source longer than its declared length")

type streamEncoder struct {
	src       io.Reader
	remaining int64 // data bytes not yet read
	inChunk   int64 // data bytes left in the current chunk
	chunk     int64
	alg       checksum.Algorithm
	value     func() string
	h         hash.Hash

	staged  [160]byte // framing being written: header, CRLF, trailer
	pending []byte    // unwritten part of staged
	done    bool      // final chunk and trailer staged
	err     error
}

func (e *streamEncoder) stage(parts ...[]byte) {
	b := e.staged[:0]
	for _, p := range parts {
		b = append(b, p...)
	}
	e.pending = b
}

func (e *streamEncoder) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(e.pending) > 0 {
			c := copy(p[n:], e.pending)
			e.pending = e.pending[c:]
			n += c
			continue
		}
		if e.err != nil {
			break
		}
		if e.inChunk > 0 {
			want := min(int64(len(p)-n), e.inChunk)
			k, err := e.src.Read(p[n : n+int(want)])
			if e.h != nil {
				e.h.Write(p[n : n+k])
			}
			n += k
			e.inChunk -= int64(k)
			e.remaining -= int64(k)
			if e.inChunk == 0 {
				e.stage([]byte("\r\n"))
			}
			switch {
			case err == io.EOF && e.inChunk > 0:
				e.err = io.ErrUnexpectedEOF
			case err != nil && err != io.EOF:
				e.err = err
			case k == 0 && err == nil:
				return n, nil // let the caller come back
			}
			continue
		}
		if e.remaining > 0 {
			e.inChunk = min(e.chunk, e.remaining)
			var hdr [20]byte
			e.stage(strconv.AppendInt(hdr[:0], e.inChunk, 16), []byte("\r\n"))
			continue
		}
		if !e.done {
			// See the source's end before taking the trailer value.
			var one [1]byte
			k, err := io.ReadAtLeast(e.src, one[:], 1)
			switch {
			case k > 0:
				e.err = errSourceTooLong
				continue
			case err != io.EOF:
				e.err = err
				continue
			}
			e.done = true
			e.pending = appendFinalChunk(e.staged[:0], e.alg, e.value, e.h)
			continue
		}
		e.err = io.EOF
	}
	if n > 0 {
		return n, nil
	}
	return 0, e.err
}
