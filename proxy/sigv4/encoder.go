package sigv4

import (
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
	tail := append(e.buf[:0], "0\r\n"...)
	if e.alg != "" {
		var v string
		if e.value != nil {
			v = e.value()
		} else {
			v = checksum.Encode(e.h.Sum(nil))
		}
		tail = append(tail, e.alg.HeaderName()...)
		tail = append(tail, ':')
		tail = append(tail, v...)
		tail = append(tail, "\r\n"...)
	}
	tail = append(tail, "\r\n"...)
	e.segs = [3][]byte{tail, nil, nil}
	return nil
}

// release returns the chunk buffer once nothing staged refers to it.
func (e *trailerEncoder) release() {
	if e.buf != nil {
		putBuf(e.buf)
		e.buf = nil
	}
}
