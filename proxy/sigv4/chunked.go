package sigv4

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/s3seal/s3seal/proxy/checksum"
	"github.com/s3seal/s3seal/proxy/s3err"
)

// Framing constants of aws-chunked bodies.
const (
	chunkSigPrefix   = ";chunk-signature="
	trailerSigPrefix = "x-amz-trailer-signature:"
	chunkAlgorithm   = "AWS4-HMAC-SHA256-PAYLOAD"
	trailerAlgorithm = "AWS4-HMAC-SHA256-TRAILER"
	// maxHexDigits bounds a chunk-size field; 15 hex digits keep every
	// size below 2^60, far from overflow.
	maxHexDigits = 15
	// maxBlankLines bounds the empty lines tolerated before a trailer
	// signature and after the final chunk.
	maxBlankLines = 2
	sigLen        = 2 * sha256.Size
)

// chainSeed is what a signed aws-chunked body's chunk signatures chain
// from: the signing key, the request's date and scope, and the request
// signature (the seed).
type chainSeed struct {
	key       signingKey
	date      string
	scope     string
	signature [sigLen]byte
}

type chunkedOptions struct {
	signed   bool       // chunk headers carry chunk-signature
	trailer  bool       // a trailer section follows the final chunk
	seed     *chainSeed // nil: signatures are parsed but not checked
	maxChunk int64      // largest signed chunk (buffered whole)
	declared int64      // x-amz-decoded-content-length, or -1
	over     bool       // the current chunk goes past declared
	trailers []string   // declared trailer names, lower case
	minChunk int64      // smallest data chunk but the last (S3: 8192); 0: any
}

// Decoder states.
const (
	stHeader = iota // next is a chunk header line
	stData          // inside a chunk's data
	stDone          // the final chunk (and trailer) was read and verified
)

// chunkedReader removes aws-chunked framing.
//
// Signed framing (<hex>;chunk-signature=<sig>\r\n<data>\r\n) is decoded one
// chunk at a time: the chunk is read whole into a pooled buffer, its
// signature checked against the chain, and only then are its bytes served.
// Unsigned framing (<hex>\r\n<data>\r\n) streams straight through. Either
// way io.EOF is returned only after the final zero-length chunk (signed
// and verified in signed framing) and the trailer section have been read
// and the body has ended; any fault before that is an *s3err.Error.
//
// chunkedReader does not withhold bytes itself: Verify wraps it in a
// checksum.Reader, which keeps the final byte back until this reader has
// returned io.EOF and the trailer checksum has matched.
type chunkedReader struct {
	chunkedOptions
	src io.ReadCloser
	br  *bufio.Reader

	state   int
	left    int64 // unsigned: data bytes left in the current chunk
	decoded int64 // data bytes decoded so far
	// short: the last data chunk was below minChunkSize, so it must have
	// been the last one.
	short bool
	buf   []byte
	off   int
	err   error

	// Signature chain (signed framing with a seed).
	mac  hash.Hash
	sha  hash.Hash
	sts  []byte
	prev [sigLen]byte
	got  [sigLen]byte
	sum  [sha256.Size]byte
	calc [sigLen]byte

	values []string // trailer values, parallel to trailers
	found  []bool

	mu       sync.Mutex // protects reading, closed and released
	reading  bool
	closed   bool
	released bool
}

func newChunkedReader(src io.ReadCloser, o chunkedOptions) *chunkedReader {
	d := &chunkedReader{chunkedOptions: o, src: src, br: getLineReader(src)}
	d.values = make([]string, len(o.trailers))
	d.found = make([]bool, len(o.trailers))
	if o.signed {
		d.sha = sha256.New()
		if o.seed != nil {
			d.mac = hmac.New(sha256.New, o.seed.key[:])
			d.prev = o.seed.signature
			d.sts = make([]byte, 0, len(chunkAlgorithm)+len(o.seed.date)+len(o.seed.scope)+4*sigLen+8)
		}
	}
	return d
}

// trailerDigest returns the function a checksum.Check calls at the end of
// the body to get the raw digest of trailer i.
func (d *chunkedReader) trailerDigest(i int, a checksum.Algorithm) func() ([]byte, error) {
	return func() ([]byte, error) {
		if d.state != stDone || !d.found[i] {
			return nil, errMalformedTrailer("sigv4: x-amz-trailer declares %s but the body carries no such trailer", d.trailers[i])
		}
		b, err := checksum.ParseValue(a, d.values[i])
		if err != nil {
			return nil, s3err.InvalidRequest.WithMessage("Value for %s trailing header is invalid.", d.trailers[i])
		}
		return b, nil
	}
}

// trailerValue returns the value of trailer i once the body has ended.
func (d *chunkedReader) trailerValue(i int) string {
	if i < 0 || i >= len(d.values) {
		return ""
	}
	return d.values[i]
}

var errBodyClosed = errors.New("sigv4: request body closed")

// Read implements io.Reader.
func (d *chunkedReader) Read(p []byte) (int, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return 0, s3err.IncompleteBody.WithCause(errBodyClosed)
	}
	d.reading = true
	d.mu.Unlock()

	n, err := d.read(p)

	d.mu.Lock()
	d.reading = false
	if err != nil || d.closed {
		d.releaseLocked()
	}
	d.mu.Unlock()
	return n, err
}

// Close releases the pooled buffers (at once, or when a concurrent Read
// returns) and closes the request body.
func (d *chunkedReader) Close() error {
	d.mu.Lock()
	d.closed = true
	if !d.reading {
		d.releaseLocked()
	}
	d.mu.Unlock()
	return d.src.Close()
}

func (d *chunkedReader) releaseLocked() {
	if d.released {
		return
	}
	d.released = true
	if d.buf != nil {
		putBuf(d.buf)
		d.buf, d.off = nil, 0
	}
	if d.br != nil {
		putLineReader(d.br)
		d.br = nil
	}
}

func (d *chunkedReader) read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var err error
	if d.signed {
		n, err = d.readSigned(p)
	} else {
		n, err = d.readUnsigned(p)
	}
	if err != nil {
		d.err = err
	}
	return n, err
}

func (d *chunkedReader) readSigned(p []byte) (int, error) {
	for {
		if d.off < len(d.buf) {
			n := copy(p, d.buf[d.off:])
			d.off += n
			return n, nil
		}
		if d.state == stDone {
			return 0, io.EOF
		}
		if err := d.nextSignedChunk(); err != nil {
			return 0, err
		}
	}
}

func (d *chunkedReader) readUnsigned(p []byte) (int, error) {
	for {
		switch d.state {
		case stDone:
			return 0, io.EOF
		case stData:
			if d.over {
				// Read past the chunk without delivering it.
				if _, err := io.CopyN(io.Discard, d.br, d.left); err != nil {
					return 0, d.readErr(err)
				}
				if err := d.crlf(); err != nil {
					return 0, err
				}
				return 0, d.overrun()
			}
			if d.left == 0 {
				if err := d.crlf(); err != nil {
					return 0, err
				}
				d.state = stHeader
				continue
			}
			if int64(len(p)) > d.left {
				p = p[:d.left]
			}
			n, err := d.br.Read(p)
			d.left -= int64(n)
			d.decoded += int64(n)
			if n > 0 {
				return n, nil
			}
			if err != nil {
				return 0, d.readErr(err)
			}
		case stHeader:
			line, err := d.headerLine()
			if err != nil {
				return 0, err
			}
			size, ok := parseHexSize(trimSpace(line))
			if !ok {
				return 0, errFraming("invalid chunk header.")
			}
			if err := d.admit(size); err != nil {
				return 0, err
			}
			if size == 0 {
				if err := d.finish(); err != nil {
					return 0, err
				}
				return 0, io.EOF
			}
			d.left, d.state = size, stData
		}
	}
}

// admit checks a chunk size against the declared decoded length and S3's
// minimum size of all data chunks but the last.
func (d *chunkedReader) admit(size int64) error {
	if d.declared >= 0 && size > d.declared-d.decoded {
		if size-(d.declared-d.decoded) > maxOverrun {
			return d.overrun()
		}
		// As S3: a chunk that breaks off is reported as such before its
		// length is, so the chunk is read (never delivered) first.
		d.over = true
	}
	if size > 0 {
		if d.short {
			return errChunkSize()
		}
		d.short = size < d.minChunk
	}
	return nil
}

// maxOverrun is how far past x-amz-decoded-content-length a chunk may
// claim to go and still be read to tell a body that breaks off from one
// that is only too long.
const maxOverrun = 64 << 10

// overrun is the error for a chunk that goes past the declared length.
func (d *chunkedReader) overrun() error {
	return errLength(fmt.Errorf("the aws-chunked body is longer than x-amz-decoded-content-length (%d bytes)", d.declared))
}

// nextSignedChunk reads, verifies and buffers the next signed chunk; after
// the final chunk it reads the trailer section and the end of the body.
func (d *chunkedReader) nextSignedChunk() error {
	line, err := d.headerLine()
	if err != nil {
		return err
	}
	line = trimSpace(line)
	i := bytes.IndexByte(line, ';')
	if i < 0 || !bytes.HasPrefix(line[i:], []byte(chunkSigPrefix)) || len(line)-i-len(chunkSigPrefix) != sigLen {
		return errFraming("invalid chunk header.")
	}
	size, ok := parseHexSize(line[:i])
	if !ok {
		return errFraming("invalid chunk size.")
	}
	copy(d.got[:], line[i+len(chunkSigPrefix):])
	if size > d.maxChunk {
		return errFraming("a chunk of %d bytes exceeds the limit of %d bytes.", size, d.maxChunk)
	}
	if err := d.admit(size); err != nil {
		return err
	}
	n := int(size)
	if cap(d.buf) < n {
		if d.buf != nil {
			putBuf(d.buf)
		}
		d.buf = getBuf(n)
	}
	d.buf, d.off = d.buf[:n], 0
	if n > 0 {
		if _, err := io.ReadFull(d.br, d.buf); err != nil {
			d.buf = d.buf[:0]
			return d.readErr(err)
		}
	}
	if d.seed != nil {
		d.sha.Reset()
		d.sha.Write(d.buf)
		if !d.verifyLink(chunkAlgorithm, true) {
			d.buf = d.buf[:0]
			return errChunkSignature()
		}
	}
	d.prev = d.got
	if n > 0 {
		if err := d.crlf(); err != nil {
			d.buf = d.buf[:0]
			return err
		}
		if d.over {
			d.buf = d.buf[:0]
			return d.overrun()
		}
		d.decoded += size
		return nil
	}
	return d.finish()
}

// verifyLink computes the next signature of the chain over the hash in
// d.sha and compares it with d.got.
func (d *chunkedReader) verifyLink(alg string, chunk bool) bool {
	s := d.seed
	d.sts = append(d.sts[:0], alg...)
	d.sts = append(d.sts, '\n')
	d.sts = append(d.sts, s.date...)
	d.sts = append(d.sts, '\n')
	d.sts = append(d.sts, s.scope...)
	d.sts = append(d.sts, '\n')
	d.sts = append(d.sts, d.prev[:]...)
	d.sts = append(d.sts, '\n')
	if chunk {
		d.sts = append(d.sts, emptySHA256...)
		d.sts = append(d.sts, '\n')
	}
	d.sts = hex.AppendEncode(d.sts, d.sha.Sum(d.sum[:0]))
	d.mac.Reset()
	d.mac.Write(d.sts)
	hex.Encode(d.calc[:], d.mac.Sum(d.sum[:0]))
	return subtle.ConstantTimeCompare(d.calc[:], d.got[:]) == 1
}

// finish reads what follows the final chunk: the trailer section when one
// is expected, then the end of the body.
func (d *chunkedReader) finish() error {
	if d.trailer {
		if err := d.readTrailer(); err != nil {
			return err
		}
	}
	if err := d.end(); err != nil {
		return err
	}
	d.state = stDone
	return nil
}

// readTrailer reads trailer lines up to the empty line that ends them.
// Each line is "name:value" ended by CRLF (or LF: some clients end the
// lines with LF and then add a CRLF). In signed framing the lines are
// followed by "x-amz-trailer-signature:<sig>", which signs the lines in
// canonical form "name:value\n".
func (d *chunkedReader) readTrailer() error {
	gotSig := false
	// A malformed trailer line is reported once the section has ended: a
	// body cut short is IncompleteBody first, as S3 answers it.
	var bad error
	blank := 0
	lines := 0
	if d.signed {
		d.sha.Reset()
	}
	for {
		line, err := d.line()
		if err != nil {
			return err
		}
		if len(line) == 0 {
			if d.signed && !gotSig {
				if blank++; blank > maxBlankLines {
					return errFraming("missing trailer signature.")
				}
				continue
			}
			break
		}
		if d.signed && bytes.HasPrefix(line, []byte(trailerSigPrefix)) {
			sig := trimSpace(line[len(trailerSigPrefix):])
			if gotSig || len(sig) != sigLen {
				return errFraming("invalid trailer signature line.")
			}
			copy(d.got[:], sig)
			gotSig = true
			continue
		}
		if gotSig {
			return errFraming("trailer after the trailer signature.")
		}
		if lines++; lines > maxTrailers {
			return errMalformedTrailer("sigv4: too many trailers")
		}
		if bad != nil {
			continue
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			bad = errMalformedTrailer("sigv4: invalid trailer line")
			continue
		}
		idx := d.trailerIndex(trimSpace(name))
		if idx < 0 {
			bad = errMalformedTrailer("sigv4: trailer %q is not declared in x-amz-trailer", clip(string(name)))
			continue
		}
		if d.found[idx] {
			bad = errMalformedTrailer("sigv4: trailer %q appears twice", d.trailers[idx])
			continue
		}
		d.found[idx] = true
		d.values[idx] = string(trimSpace(value))
		if d.signed {
			d.sha.Write(line)
			d.sha.Write([]byte{'\n'})
		}
	}
	if bad != nil {
		return bad
	}
	for i, found := range d.found {
		if !found {
			// A declared trailer is missing: the body does not match
			// its headers, whatever its signature says.
			return errMalformedTrailer("sigv4: x-amz-trailer declares %s but the body carries no such trailer", d.trailers[i])
		}
	}
	if d.signed {
		if !gotSig {
			return errFraming("missing trailer signature.")
		}
		if d.seed != nil && !d.verifyLink(trailerAlgorithm, false) {
			return errTrailerSignature()
		}
	}
	return nil
}

func (d *chunkedReader) trailerIndex(name []byte) int {
	for i, t := range d.trailers {
		if len(t) == len(name) && bytes.EqualFold([]byte(t), name) {
			return i
		}
	}
	return -1
}

// end checks that nothing but line ends follows the framing.
func (d *chunkedReader) end() error {
	for i := 0; ; i++ {
		c, err := d.br.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return d.readErr(err)
		}
		if (c != '\r' && c != '\n') || i >= 2*maxBlankLines {
			return errFraming("data after the final chunk.")
		}
	}
}

// line returns the next line without its line end. Lines are at most 4 KiB.
func (d *chunkedReader) line() ([]byte, error) {
	b, _, err := d.rawLine()
	return b, err
}

// headerLine reads a chunk header line, which must end in CRLF (S3 takes
// a bare LF only at the end of trailer lines).
func (d *chunkedReader) headerLine() ([]byte, error) {
	b, crlf, err := d.rawLine()
	if err == nil && !crlf {
		return nil, errFraming("chunk header line not ended by CRLF.")
	}
	return b, err
}

func (d *chunkedReader) rawLine() ([]byte, bool, error) {
	b, err := d.br.ReadSlice('\n')
	if err != nil {
		if err == bufio.ErrBufferFull {
			return nil, false, errFraming("line too long.")
		}
		return nil, false, d.readErr(err)
	}
	b = b[:len(b)-1]
	crlf := len(b) > 0 && b[len(b)-1] == '\r'
	if crlf {
		b = b[:len(b)-1]
	}
	return b, crlf, nil
}

// crlf consumes the CRLF that ends a chunk's data.
func (d *chunkedReader) crlf() error {
	for _, want := range [2]byte{'\r', '\n'} {
		c, err := d.br.ReadByte()
		if err != nil {
			return d.readErr(err)
		}
		if c != want {
			return errFraming("chunk data is not followed by CRLF.")
		}
	}
	return nil
}

func (d *chunkedReader) readErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errTruncated()
	}
	return checksum.ReadError(err)
}

// parseHexSize parses a chunk size of 1 to maxHexDigits hex digits.
func parseHexSize(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > maxHexDigits {
		return 0, false
	}
	var n int64
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | int64(c)
	}
	return n, true
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
