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
	pump                 // Read, WriteTo
	keys   KeyFunc       // version 1
	salted SaltedKeyFunc // version 2
	l      *Layout
	rg     Range
	src    io.Reader

	buf    *bufferV2
	outBuf *bufferV2 // version 2 opens out of place
	left   int64     // plaintext bytes still to return

	seg      int // current segment index
	c        segmentOpener
	chunk    int64 // next chunk index within seg
	lastData int64 // index of the last data chunk to read in seg (-1: none)
	trailer  bool  // whether seg's trailer is to be read
	skip     int64
}

// NewRangeReader returns a reader that decrypts src, the ciphertext bytes
// [rg.CipherOffset, rg.CipherOffset+rg.CipherLength) of an object with
// layout l, into its plaintext bytes [rg.Offset, rg.Offset+rg.Length). rg
// must come from l.Range.
// l must be a version 1 layout.
func NewRangeReader(keys KeyFunc, l *Layout, rg Range, src io.Reader) (*RangeReader, error) {
	if l.f != formatV1 {
		return nil, errSize("a version %d layout needs NewRangeReaderV2", l.f.version)
	}
	return newRangeReader(&RangeReader{keys: keys, l: l, rg: rg, src: src})
}

// NewRangeReaderV2 is NewRangeReader for a version 2 layout. Each segment's
// key is derived from the salt of the first chunk fetched in it, and every
// further chunk of that segment must carry the same salt, so the bytes
// returned come from one encryption of each part. Which encryption — the
// attempt the client completed, or an earlier upload of the same part that
// the store kept — a range cannot tell: only a whole read checks the salts
// against the part-set record (FORMAT.md, section 10).
func NewRangeReaderV2(keys SaltedKeyFunc, l *Layout, rg Range, src io.Reader) (*RangeReader, error) {
	if l.f != formatV2 {
		return nil, errSize("a version %d layout needs NewRangeReader", l.f.version)
	}
	return newRangeReader(&RangeReader{salted: keys, l: l, rg: rg, src: src})
}

func newRangeReader(r *RangeReader) (*RangeReader, error) {
	check, err := r.l.Range(r.rg.Offset, r.rg.Length)
	if err != nil {
		return nil, err
	}
	if check != r.rg {
		return nil, errSize("range does not match the layout")
	}
	r.left, r.skip, r.buf = r.rg.Length, r.rg.Skip, getBufV2()
	if err := r.enter(r.rg.FirstSegment, r.rg.FirstChunk); err != nil {
		r.putBufs()
		return nil, err
	}
	r.next = r.step
	// Decrypt straight into the caller's buffer when a whole chunk is
	// wanted.
	r.direct = func(room int) bool { return r.skip == 0 && room >= ChunkSize && r.left >= ChunkSize }
	r.free = r.putBufs
	return r, nil
}

func (r *RangeReader) putBufs() {
	if r.buf != nil {
		putBufV2(r.buf)
	}
	if r.outBuf != nil {
		putBufV2(r.outBuf)
	}
	r.buf, r.outBuf = nil, nil
}

// enter starts reading segment i at chunk c.
func (r *RangeReader) enter(i int, c int64) error {
	s := r.l.Segment(i)
	if r.l.f == formatV2 {
		r.c = &lazyChunkV2{keys: r.salted, n: s.Number}
	} else {
		sc, err := newOpenSegCipher(r.keys(s.Number))
		if err != nil {
			return err
		}
		r.c = sc
	}
	r.seg, r.chunk = i, c
	r.lastData = chunks(s.PlainSize) - 1
	r.trailer = true
	if i == r.rg.LastSegment {
		r.lastData = r.rg.LastChunk
		r.trailer = r.rg.Trailer
	}
	return nil
}

// step reads and authenticates the next unit (a data chunk, possibly with
// the trailer behind it, or a lone trailer) and returns the plaintext to
// deliver. The chunk is decrypted into dst, which must have room for a
// chunk, or in place if dst is nil.
func (r *RangeReader) step(dst []byte) []byte {
	s := r.l.Segment(r.seg)
	var dataLen int
	if r.chunk <= r.lastData {
		dataLen = int(min(ChunkSize, s.PlainSize-r.chunk*ChunkSize) + r.l.f.overhead)
	}
	withTrailer := r.trailer && r.chunk >= r.lastData
	total := dataLen
	if withTrailer {
		total += int(r.l.f.trailer)
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
			// In place where the cipher allows: the ciphertext is not
			// needed afterwards.
			dst = r.buf[:0]
			if lazy, v2 := r.c.(*lazyChunkV2); v2 {
				c, err := lazy.cipher(r.buf[:dataLen])
				switch {
				case err != nil:
					r.err = err
					return nil
				case c.inPlace():
					dst = r.buf[inPlaceOffset:inPlaceOffset]
				default:
					if r.outBuf == nil {
						r.outBuf = getBufV2()
					}
					dst = r.outBuf[:0]
				}
			}
		}
		var err error
		if pt, err = r.c.openData(dst, r.buf[:dataLen], uint64(r.chunk)); err != nil {
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

// segmentOpener authenticates the chunks of one segment at their
// positions.
type segmentOpener interface {
	openData(dst, ct []byte, index uint64) ([]byte, error)
	openTrailer(ct []byte, index uint64) (Trailer, error)
}

func (s *segCipher) openData(dst, ct []byte, index uint64) ([]byte, error) {
	return s.open(dst, ct, index, flagData)
}

// lazyChunkV2 opens the chunks of version 2 segment n, deriving the key
// from the salt of the first chunk it sees; the chunks after it must carry
// the same salt.
type lazyChunkV2 struct {
	keys SaltedKeyFunc
	n    uint32
	c    *chunkV2
}

func (l *lazyChunkV2) cipher(ct []byte) (*chunkV2, error) {
	if l.c == nil {
		c, err := keyedChunkV2(l.keys, l.n, ct)
		if err != nil {
			return nil, err
		}
		l.c = c
	}
	return l.c, nil
}

func (l *lazyChunkV2) openData(dst, ct []byte, index uint64) ([]byte, error) {
	c, err := l.cipher(ct)
	if err != nil {
		return nil, err
	}
	return c.open(dst, ct, index, kindData)
}

func (l *lazyChunkV2) openTrailer(ct []byte, index uint64) (Trailer, error) {
	c, err := l.cipher(ct)
	if err != nil {
		return Trailer{}, err
	}
	return c.openTrailer(ct, index)
}
