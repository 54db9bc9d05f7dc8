package stream

import (
	"io"
)

// KeyFunc returns the 32-byte content key of a segment. Package envelope's
// ObjectKey.SegmentKey has this type. For a single-segment object only
// segment 0 is asked for; for a multipart object segments 1, 2, ….
type KeyFunc func(segment uint32) []byte

// SingleKey returns a KeyFunc that serves key for every segment, for callers
// that hold one segment's content key.
func SingleKey(key []byte) KeyFunc { return func(uint32) []byte { return key } }

// DecryptReader decrypts a whole single-segment object, or a whole multipart
// object, from its ciphertext stream.
//
// For a multipart object the part sizes need not be known: at each chunk
// boundary the reader first tries to authenticate a trailer (80 bytes, under
// the current segment's key with the next counter), then a full chunk, and
// only if both fail looks for the trailer that follows a short last chunk.
// A forged boundary would have to authenticate under AES-GCM, so the segments
// found are the ones that were written. Parts must be numbered 1..N without
// gaps (see FORMAT.md, "Multipart").
//
// Plaintext is released chunk by chunk, each only after its tag verified; a
// short last chunk is released only after the trailer behind it verified
// too. Read returns io.EOF only after the final trailer authenticated and the
// source ended right after it; a truncated stream ends in ErrAuthentication.
// DecryptReader does not close its source and is not safe for concurrent
// use.
type DecryptReader struct {
	pump  // Read, WriteTo; err is io.EOF at the authenticated end
	keys  KeyFunc
	multi bool
	src   io.Reader

	in         *buffer
	start, end int // unread ciphertext is in[start:end]
	srcEOF     bool
	outBuf     *buffer

	seg      uint32
	c        *segCipher
	chunk    uint64
	segPlain int64
	trailers []Trailer
}

// NewDecryptReader returns a reader of the plaintext of the single-segment
// (segment 0) ciphertext that src yields, under the 32-byte content key.
func NewDecryptReader(key []byte, src io.Reader) (*DecryptReader, error) {
	c, err := newOpenSegCipher(key)
	if err != nil {
		return nil, err
	}
	return newDecryptReader(&DecryptReader{keys: SingleKey(key), src: src, c: c}), nil
}

// NewMultipartDecryptReader returns a reader of the plaintext of a whole
// multipart object (segments 1..N) whose ciphertext src yields.
func NewMultipartDecryptReader(keys KeyFunc, src io.Reader) (*DecryptReader, error) {
	c, err := newOpenSegCipher(keys(1))
	if err != nil {
		return nil, err
	}
	return newDecryptReader(&DecryptReader{keys: keys, multi: true, src: src, seg: 1, c: c}), nil
}

func newDecryptReader(r *DecryptReader) *DecryptReader {
	r.in = getBuf()
	r.next = r.step
	r.direct = func(room int) bool { return room >= ChunkSize }
	r.free = func() {
		putBuf(r.in)
		if r.outBuf != nil {
			putBuf(r.outBuf)
		}
		r.in, r.outBuf = nil, nil
	}
	return r
}

// Trailers returns the authenticated trailers of the segments read so far,
// in order. After Read returned io.EOF it holds one per segment.
func (r *DecryptReader) Trailers() []Trailer { return r.trailers }

// fill reads from the source until the buffer is full or the source ended.
func (r *DecryptReader) fill() error {
	if r.start > 0 {
		r.end = copy(r.in[:], r.in[r.start:r.end])
		r.start = 0
	}
	for r.end < bufSize && !r.srcEOF {
		m, err := r.src.Read(r.in[r.end:])
		r.end += m
		if err == io.EOF {
			r.srcEOF = true
		} else if err != nil {
			return err
		}
	}
	return nil
}

// step decrypts the next data chunk and returns it, or handles a trailer
// (returning the segment's last chunk if it was held back). The plaintext
// goes to dst, which must have room for a chunk, or if dst is nil to the
// reader's own buffer (in place, for a single segment). It sets r.err at the
// end or on failure.
func (r *DecryptReader) step(dst []byte) []byte {
	if err := r.fill(); err != nil {
		r.err = err
		return nil
	}
	if r.multi {
		// Trial opens must not destroy the ciphertext: never in place.
		if dst == nil {
			if r.outBuf == nil {
				r.outBuf = getBuf()
			}
			dst = r.outBuf[:0]
		}
		return r.stepMulti(dst)
	}
	if dst == nil {
		dst = r.in[r.start:r.start]
	}
	avail := r.in[r.start:r.end]
	if len(avail) == bufSize {
		// A full chunk with at least a trailer's worth of bytes behind it
		// can only be a full data chunk.
		return r.data(dst, avail[:EncryptedChunkSize])
	}
	// The source ended: what is left is [last data chunk] + trailer.
	if len(avail) < TrailerSize {
		r.err = ErrAuthentication
		return nil
	}
	return r.last(dst, len(avail)-TrailerSize)
}

// data opens a full data chunk and consumes it.
func (r *DecryptReader) data(dst, ct []byte) []byte {
	pt, err := r.c.open(dst, ct, r.chunk, flagData)
	if err != nil {
		r.err = err
		return nil
	}
	r.chunk++
	r.segPlain += int64(len(pt))
	r.start += len(ct)
	return pt
}

// last opens the segment's final data chunk of l ciphertext bytes (l may be
// 0) at the start of the buffer and the trailer right behind it, and
// releases the chunk only if both authenticate and agree.
func (r *DecryptReader) last(dst []byte, l int) []byte {
	avail := r.in[r.start:r.end]
	if l != 0 && (l <= TagSize || l > EncryptedChunkSize) {
		r.err = ErrAuthentication
		return nil
	}
	counter := r.chunk
	if l > 0 {
		counter++
	}
	t, err := r.c.openTrailer(avail[l:l+TrailerSize], counter)
	if err != nil {
		r.err = err
		return nil
	}
	var pt []byte
	if l > 0 {
		if pt, err = r.c.open(dst, avail[:l], r.chunk, flagData); err != nil {
			r.err = err
			return nil
		}
	}
	if t.Length != r.segPlain+int64(len(pt)) {
		clear(pt)
		r.err = ErrAuthentication
		return nil
	}
	r.start += l + TrailerSize
	r.endSegment(t)
	return pt
}

// endSegment records a verified trailer and moves to the next segment, or
// to the end of the stream.
func (r *DecryptReader) endSegment(t Trailer) {
	r.trailers = append(r.trailers, t)
	if r.start == r.end && r.srcEOF {
		r.err = io.EOF
		return
	}
	if !r.multi || r.seg >= MaxParts {
		// Bytes after the final trailer.
		r.err = ErrAuthentication
		return
	}
	c, err := newOpenSegCipher(r.keys(r.seg + 1))
	if err != nil {
		r.err = err
		return
	}
	r.seg++
	r.c, r.chunk, r.segPlain = c, 0, 0
}

func (r *DecryptReader) stepMulti(dst []byte) []byte {
	avail := r.in[r.start:r.end]
	if len(avail) == 0 {
		// endSegment saw more bytes, so an empty buffer here means the
		// stream stopped inside a segment.
		r.err = ErrAuthentication
		return nil
	}
	// Trailer candidates are filtered by their predictable first bytes
	// (trailerCandidate) before any authenticated open, so probing costs a
	// few XORs per position.
	// 1. A trailer right here (the previous chunk was a full one, or the
	// segment is empty).
	if len(avail) >= TrailerSize {
		if trailerCandidate(r.c.trailerKeystream(r.chunk), avail, r.segPlain) {
			if _, err := r.c.openTrailer(avail[:TrailerSize], r.chunk); err == nil {
				return r.last(dst, 0)
			}
		}
	}
	// 2. A full data chunk.
	if len(avail) >= EncryptedChunkSize {
		if pt, err := r.c.open(dst, avail[:EncryptedChunkSize], r.chunk, flagData); err == nil {
			r.chunk++
			r.segPlain += int64(len(pt))
			r.start += EncryptedChunkSize
			return pt
		}
	}
	// 3. A short last chunk of l bytes (17..65551) followed by a trailer:
	// at the end of the stream, or where a part's size is not a multiple of
	// 64 KiB.
	ks := *r.c.trailerKeystream(r.chunk + 1)
	for l := TagSize + 1; l < EncryptedChunkSize && l+TrailerSize <= len(avail); l++ {
		if !trailerCandidate(&ks, avail[l:], r.segPlain+int64(l-TagSize)) {
			continue
		}
		if _, err := r.c.openTrailer(avail[l:l+TrailerSize], r.chunk+1); err == nil {
			return r.last(dst, l)
		}
	}
	r.err = ErrAuthentication
	return nil
}
