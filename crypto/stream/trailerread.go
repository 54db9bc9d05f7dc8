package stream

import (
	"errors"
	"fmt"
)

// TrailerSpan returns where the trailer chunk of the i-th segment (0-based
// index) of l lies in the object's ciphertext: its offset and stored size.
// A reader that wants only what a segment's trailer keeps (its length and
// the checksum the client sent for it) fetches these bytes alone.
func (l *Layout) TrailerSpan(i int) (offset, size int64) {
	return l.cipherOff[i+1] - l.f.trailer, l.f.trailer
}

// OpenTrailerV2 authenticates the stored trailer chunk ct of the i-th
// segment of the version 2 layout l (the bytes TrailerSpan names) under
// the key of the salt the chunk carries, and returns its record. The
// record's length must be the segment's plaintext size in l. It
// authenticates the trailer as one of an encryption of that segment of the
// object keys belongs to; like a ranged read, it cannot tell which upload
// of a part it is (FORMAT.md, section 8.2).
func OpenTrailerV2(keys SaltedKeyFunc, l *Layout, i int, ct []byte) (Trailer, error) {
	if l.f != formatV2 {
		return Trailer{}, errors.New("stream: OpenTrailerV2 needs a version 2 layout")
	}
	if i < 0 || i >= l.Segments() {
		return Trailer{}, fmt.Errorf("stream: segment index %d out of range", i)
	}
	if len(ct) != TrailerSizeV2 {
		return Trailer{}, ErrAuthentication
	}
	s := l.Segment(i)
	c, err := keyedChunkV2(keys, s.Number, ct)
	if err != nil {
		return Trailer{}, err
	}
	t, err := c.openTrailer(ct, uint64(chunks(s.PlainSize)))
	if err != nil {
		return Trailer{}, err
	}
	if t.Length != s.PlainSize {
		return Trailer{}, fmt.Errorf("%w: the trailer of segment %d states %d bytes, the layout %d", ErrAuthentication, s.Number, t.Length, s.PlainSize)
	}
	return t, nil
}
