package stream

import (
	"io"
)

// RangeReader decrypts the ciphertext bytes a Range asked for, as they
// stream in, and returns exactly the plaintext bytes [Offset, Offset+Length).
//
// Every chunk is authenticated at its position (its counter and its
// segment's key) before any of its bytes are returned; when the range
// includes a segment's trailer, the segment's last chunk is returned only
// after the trailer verified and agreed with the layout. If the source ends
// early, the result is ErrAuthentication. RangeReader reads no more than
// CipherLength bytes from its source and does not close it. It is not safe
// for concurrent use.
type RangeReader struct {
	keys KeyFunc
	l    *Layout
	rg   Range
	src  io.Reader

	buf  *buffer
	out  []byte
	left int64 // plaintext bytes still to return

	seg      int // current segment index
	c        *segCipher
	chunk    int64 // next chunk index within seg
	lastData int64 // index of the last data chunk to read in seg (-1: none)
	trailer  bool  // whether seg's trailer is to be read
	skip     int64
	err      error
}

// NewRangeReader returns a reader that decrypts src, the ciphertext bytes
// [rg.CipherOffset, rg.CipherOffset+rg.CipherLength) of an object with
// layout l, into its plaintext bytes [rg.Offset, rg.Offset+rg.Length). rg
// must come from l.Range.
func NewRangeReader(keys KeyFunc, l *Layout, rg Range, src io.Reader) (*RangeReader, error) {
	check, err := l.Range(rg.Offset, rg.Length)
	if err != nil {
		return nil, err
	}
	if check != rg {
		return nil, errSize("range does not match the layout")
	}
	r := &RangeReader{keys: keys, l: l, rg: rg, src: src, left: rg.Length, skip: rg.Skip, buf: getBuf()}
	if err := r.enter(rg.FirstSegment, rg.FirstChunk); err != nil {
		putBuf(r.buf)
		return nil, err
	}
	return r, nil
}

// enter starts reading segment i at chunk c.
func (r *RangeReader) enter(i int, c int64) error {
	s := r.l.Segment(i)
	sc, err := newSegCipher(r.keys(s.Number))
	if err != nil {
		return err
	}
	r.seg, r.c, r.chunk = i, sc, c
	r.lastData = chunks(s.PlainSize) - 1
	r.trailer = true
	if i == r.rg.LastSegment {
		r.lastData = r.rg.LastChunk
		r.trailer = r.rg.Trailer
	}
	return nil
}

// Read implements io.Reader.
func (r *RangeReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(r.out) > 0 {
			c := copy(p[n:], r.out)
			r.out = r.out[c:]
			n += c
			continue
		}
		if r.err != nil {
			break
		}
		if r.skip == 0 && int64(len(p)-n) >= ChunkSize && r.left >= ChunkSize {
			// Decrypt straight into p, saving a copy.
			n += len(r.step(p[n:n]))
			continue
		}
		r.out = r.step(nil)
	}
	if r.err != nil && len(r.out) == 0 && r.buf != nil {
		putBuf(r.buf)
		r.buf = nil
	}
	if n > 0 {
		return n, nil
	}
	return 0, r.err
}

// WriteTo implements io.WriterTo, so io.Copy decrypts without an extra copy.
func (r *RangeReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	defer func() {
		if r.err != nil && len(r.out) == 0 && r.buf != nil {
			putBuf(r.buf)
			r.buf = nil
		}
	}()
	for {
		if len(r.out) > 0 {
			m, err := w.Write(r.out)
			total += int64(m)
			r.out = r.out[m:]
			if err != nil {
				if r.err == nil || r.err == io.EOF {
					r.err = err
				}
				r.out = nil
				return total, err
			}
			continue
		}
		if r.err == io.EOF {
			return total, nil
		}
		if r.err != nil {
			return total, r.err
		}
		r.out = r.step(nil)
	}
}

// step reads and authenticates the next unit (a data chunk, possibly with
// the trailer behind it, or a lone trailer) and returns the plaintext to
// deliver. The chunk is decrypted into dst, which must have room for a
// chunk, or in place if dst is nil.
func (r *RangeReader) step(dst []byte) []byte {
	s := r.l.Segment(r.seg)
	var dataLen int
	if r.chunk <= r.lastData {
		dataLen = int(min(ChunkSize, s.PlainSize-r.chunk*ChunkSize)) + TagSize
	}
	withTrailer := r.trailer && r.chunk >= r.lastData
	total := dataLen
	if withTrailer {
		total += TrailerSize
	}
	if _, err := io.ReadFull(r.src, r.buf[:total]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = ErrAuthentication
		}
		r.err = err
		return nil
	}
	if withTrailer {
		counter := r.chunk
		if dataLen > 0 {
			counter++
		}
		t, err := r.c.openTrailer(r.buf[dataLen:total], uint64(counter))
		if err != nil || t.Length != s.PlainSize {
			r.err = ErrAuthentication
			return nil
		}
	}
	var pt []byte
	if dataLen > 0 {
		if dst == nil {
			dst = r.buf[:0] // in place: the ciphertext is not needed afterwards
		}
		var err error
		if pt, err = r.c.open(dst, r.buf[:dataLen], uint64(r.chunk), flagData); err != nil {
			r.err = err
			return nil
		}
		r.chunk++
	}
	if r.skip > 0 {
		pt = pt[r.skip:]
		r.skip = 0
	}
	if int64(len(pt)) > r.left {
		pt = pt[:r.left]
	}
	r.left -= int64(len(pt))
	switch {
	case r.chunk <= r.lastData:
	case r.seg < r.rg.LastSegment:
		if err := r.enter(r.seg+1, 0); err != nil {
			r.err = err
		}
	default:
		r.err = io.EOF
	}
	if r.err == io.EOF && r.left != 0 {
		panic("stream: internal error: range plan and layout disagree")
	}
	return pt
}
