package stream

import (
	"bytes"
	"io"
)

// DecryptReaderV2 decrypts a whole version 2 object, single-PUT or
// multipart, from its stored bytes.
//
// Every chunk of a segment begins with the segment's salt, from which the
// reader derives the segment's key at its first chunk; a chunk with another
// salt fails. With a layout (the single-PUT layout from the header's size,
// or the layout of a multipart object's part-set record), the reader knows
// every chunk's length and checks every segment's length and the number of
// segments. Without one (NewMultipartScanReaderV2) it finds where a
// segment's data ends by looking for the salt that begins its trailer, so
// the parts' sizes need not be known; the caller then checks the segments
// it found (Segments) against what it knows.
//
// Plaintext is released chunk by chunk, each only after its tag verified; a
// segment's last data chunk is released only after the trailer behind it
// verified too. Read returns io.EOF only after the final trailer
// authenticated, the source ended right after it and, with a layout, every
// segment was found. DecryptReaderV2 does not close its source and is not
// safe for concurrent use.
type DecryptReaderV2 struct {
	pump   // Read, WriteTo; err is io.EOF at the authenticated end
	window // the stored bytes read ahead
	keys   SaltedKeyFunc
	l      *Layout // nil: boundaries found by salts
	first  uint32
	inBuf  *bufferV2
	outBuf *bufferV2

	seg      int      // index of the current segment
	c        *chunkV2 // nil until the current segment's first chunk
	chunk    uint64
	segPlain int64
	segs     []SegmentInfo
	// boundary: a segment ended where the buffer did, and whether the
	// source ends there is not known yet (the plaintext being returned
	// may be in the buffer, so the next step finds out).
	boundary bool
}

// NewDecryptReaderV2 returns a reader of the plaintext of the version 2
// object with layout l whose stored bytes src yields.
func NewDecryptReaderV2(keys SaltedKeyFunc, l *Layout, src io.Reader) (*DecryptReaderV2, error) {
	if l == nil || l.f != formatV2 {
		return nil, errSize("NewDecryptReaderV2 needs a version 2 layout")
	}
	return newDecryptReaderV2(&DecryptReaderV2{keys: keys, l: l, first: l.first, window: window{src: src}}), nil
}

// NewMultipartScanReaderV2 returns a reader of the plaintext of a whole
// version 2 multipart object whose part sizes are not known, for recovery
// when its part-set record is lost: the part boundaries are found by the
// salts, and nothing checks that the object holds the parts the upload
// completed. Check Segments after io.EOF against what is known.
func NewMultipartScanReaderV2(keys SaltedKeyFunc, src io.Reader) *DecryptReaderV2 {
	return newDecryptReaderV2(&DecryptReaderV2{keys: keys, first: 1, window: window{src: src}})
}

func newDecryptReaderV2(r *DecryptReaderV2) *DecryptReaderV2 {
	r.inBuf = getBufV2()
	r.in = r.inBuf[:]
	r.next = r.step
	r.direct = func(room int) bool { return room >= ChunkSize }
	r.free = func() {
		putBufV2(r.inBuf)
		if r.outBuf != nil {
			putBufV2(r.outBuf)
		}
		r.in, r.inBuf, r.outBuf = nil, nil, nil
	}
	return r
}

// Segments returns the segments authenticated so far, in order. After
// Read returned io.EOF it holds every segment of the object.
func (r *DecryptReaderV2) Segments() []SegmentInfo { return r.segs }

// step authenticates the next data chunk (with the trailer behind it when
// it is the segment's last) and returns its plaintext, decrypted into dst
// (room for a chunk) or, if dst is nil, the reader's own buffer. It sets
// r.err at the end or on failure.
func (r *DecryptReaderV2) step(dst []byte) []byte {
	if err := r.fill(); err != nil {
		r.err = err
		return nil
	}
	if r.boundary {
		if r.boundary = false; r.afterSegment() {
			return nil
		}
	}
	own := dst == nil
	if own {
		if r.outBuf == nil {
			r.outBuf = getBufV2()
		}
		dst = r.outBuf[:0]
	}
	avail := r.in[r.start:r.end]
	if r.c == nil {
		// A segment starts here: its salt keys every chunk of it.
		if len(avail) < TrailerSizeV2 {
			r.err = ErrAuthentication
			return nil
		}
		c, err := keyedChunkV2(r.keys, r.first+uint32(r.seg), avail)
		if err != nil {
			r.err = err
			return nil
		}
		r.c = c
	}
	if r.l != nil {
		if own && r.c.inPlace() {
			// The layout leaves no trial opens that a failure in
			// place would spoil: decrypt into the buffer.
			dst = avail[inPlaceOffset:inPlaceOffset]
		}
		return r.stepLayout(dst, avail)
	}
	// A full data chunk, if the next chunk of this segment follows it. An
	// authentic object has nothing else there (the salt would have to
	// occur by chance where the chunk ends), so the chunk is decrypted in
	// place when the cipher allows, and a failure is final.
	const ec = EncryptedChunkSizeV2
	if len(avail) >= ec+SaltSize && bytes.Equal(avail[ec:ec+SaltSize], r.c.salt[:]) {
		inPlace := own && r.c.inPlace()
		if inPlace {
			dst = avail[inPlaceOffset:inPlaceOffset]
		}
		pt, err := r.c.open(dst, avail[:ec], r.chunk, kindData)
		if err == nil {
			return r.data(pt, ec)
		}
		if inPlace {
			r.err = err
			return nil
		}
	}
	// Else this is the trailer (what follows it is another segment, with
	// another salt, or nothing), tried first since that costs one small
	// open; or the segment's last data chunk, short, ends where the
	// trailer's salt begins. Ciphertext that happens to hold the salt only
	// makes a candidate that fails.
	if len(avail) == TrailerSizeV2 || len(avail) >= TrailerSizeV2+SaltSize && !bytes.Equal(avail[TrailerSizeV2:TrailerSizeV2+SaltSize], r.c.salt[:]) {
		if pt, ok := r.last(dst, avail, 0); ok {
			return pt
		}
	}
	for lo := ChunkOverheadV2 + 1; lo < ec && lo+TrailerSizeV2 <= len(avail); {
		hi := min(ec-1, len(avail)-TrailerSizeV2) // last possible trailer start
		j := bytes.Index(avail[lo:hi+SaltSize], r.c.salt[:])
		if j < 0 {
			break
		}
		if pt, ok := r.last(dst, avail, lo+j); ok {
			return pt
		}
		lo += j + 1
	}
	if pt, ok := r.last(dst, avail, 0); ok {
		return pt
	}
	r.err = ErrAuthentication
	return nil
}

// stepLayout is step when the layout gives every chunk's length.
func (r *DecryptReaderV2) stepLayout(dst, avail []byte) []byte {
	size := r.l.Segment(r.seg).PlainSize
	k := uint64(chunks(size))
	if r.chunk >= k {
		if pt, ok := r.last(dst, avail, 0); ok {
			return pt
		}
		r.err = ErrAuthentication
		return nil
	}
	n := min(ChunkSize, size-int64(r.chunk)*ChunkSize) + ChunkOverheadV2
	if r.chunk == k-1 {
		if int(n)+TrailerSizeV2 <= len(avail) {
			if pt, ok := r.last(dst, avail, int(n)); ok {
				return pt
			}
		}
		r.err = ErrAuthentication
		return nil
	}
	if len(avail) < int(n) {
		r.err = ErrAuthentication
		return nil
	}
	pt, err := r.c.open(dst, avail[:n], r.chunk, kindData)
	if err != nil {
		r.err = err
		return nil
	}
	return r.data(pt, int(n))
}

// data consumes a data chunk of n stored bytes whose plaintext is pt.
func (r *DecryptReaderV2) data(pt []byte, n int) []byte {
	r.chunk++
	r.segPlain += int64(len(pt))
	r.start += n
	return pt
}

// last tries the segment's last data chunk as avail[:l] (none if l is 0)
// and the trailer right behind it. It releases the chunk only if both
// authenticate and the trailer's length agrees; it reports false, with
// nothing consumed, if they do not.
func (r *DecryptReaderV2) last(dst, avail []byte, l int) ([]byte, bool) {
	if l+TrailerSizeV2 > len(avail) {
		return nil, false
	}
	index := r.chunk
	if l > 0 {
		index++
	}
	t, err := r.c.openTrailer(avail[l:l+TrailerSizeV2], index)
	if err != nil {
		return nil, false
	}
	var pt []byte
	if l > 0 {
		if pt, err = r.c.open(dst, avail[:l], r.chunk, kindData); err != nil {
			return nil, false
		}
	}
	if t.Length != r.segPlain+int64(len(pt)) || (r.l != nil && t.Length != r.l.Segment(r.seg).PlainSize) {
		clear(pt)
		return nil, false
	}
	r.start += l + TrailerSizeV2
	r.endSegment(t)
	return pt, true
}

// endSegment records a verified trailer and moves to the next segment, or
// to the end of the object.
func (r *DecryptReaderV2) endSegment(t Trailer) {
	r.segs = append(r.segs, SegmentInfo{Number: r.first + uint32(r.seg), Salt: r.c.salt, Trailer: t})
	r.seg++
	r.c, r.chunk, r.segPlain = nil, 0, 0
	if r.start == r.end && !r.srcEOF {
		r.boundary = true
		return
	}
	r.afterSegment()
}

// afterSegment decides, once the bytes after a segment are known, whether
// the object ends there; it reports whether the reader is done.
func (r *DecryptReaderV2) afterSegment() bool {
	more := r.start < r.end
	switch {
	case !more && (r.l == nil || r.seg == r.l.Segments()):
		r.err = io.EOF
	case !more, r.first == 0, r.seg >= MaxParts, r.l != nil && r.seg == r.l.Segments():
		// Segments missing, or bytes after the final trailer.
		r.err = ErrAuthentication
	default:
		return false
	}
	return true
}
