package stream

import (
	"fmt"
	"sort"
)

// Layout says where the segments of an object lie in its ciphertext: one
// segment (number 0) for a single PUT, segments 1..N for a multipart object
// whose parts are the consecutive segments, in format version 1 or 2. It is
// immutable and safe for concurrent use.
type Layout struct {
	f         *format
	first     uint32
	cipherOff []int64 // len = segments+1, cumulative ciphertext offsets
	plainOff  []int64 // len = segments+1, cumulative plaintext offsets
}

// Segment describes one segment of a Layout.
type Segment struct {
	Number       uint32 // 0 for a single PUT, else the part number
	CipherOffset int64  // where the segment starts in the object's ciphertext
	CipherSize   int64
	PlainOffset  int64 // where its plaintext starts in the object's plaintext
	PlainSize    int64
}

// SingleLayout is the layout of a version 1 single-PUT object of
// cipherSize bytes.
func SingleLayout(cipherSize int64) (*Layout, error) {
	return newLayout(formatV1, 0, []int64{cipherSize})
}

// SingleLayoutV2 is the layout of a version 2 single-PUT object of
// cipherSize stored bytes.
func SingleLayoutV2(cipherSize int64) (*Layout, error) {
	return newLayout(formatV2, 0, []int64{cipherSize})
}

// UniformLayoutV2 is the layout of a version 2 multipart object of parts
// parts whose first parts−1 parts hold partSize plaintext bytes each and
// whose last part holds lastSize, as a part-set record states it (package
// envelope). With one part, partSize must equal lastSize.
func UniformLayoutV2(parts int, partSize, lastSize int64) (*Layout, error) {
	if parts < 1 || parts > MaxParts {
		return nil, errSize("part count %d out of range [1, %d]", parts, MaxParts)
	}
	if parts == 1 && partSize != lastSize {
		return nil, errSize("a one-part object's part size %d differs from its last part's %d", partSize, lastSize)
	}
	p, err := formatV2.ciphertextSize(partSize)
	if err != nil {
		return nil, err
	}
	last, err := formatV2.ciphertextSize(lastSize)
	if err != nil {
		return nil, err
	}
	sizes := make([]int64, parts)
	for i := range sizes {
		sizes[i] = p
	}
	sizes[parts-1] = last
	return newLayout(formatV2, 1, sizes)
}

// MultipartLayout is the layout of a multipart object whose parts, numbered
// 1..N in order, have the given ciphertext sizes (as ListParts or
// GetObjectAttributes report them).
func MultipartLayout(partCipherSizes []int64) (*Layout, error) {
	if len(partCipherSizes) < 1 || len(partCipherSizes) > MaxParts {
		return nil, errSize("part count %d out of range [1, %d]", len(partCipherSizes), MaxParts)
	}
	return newLayout(formatV1, 1, partCipherSizes)
}

// MultipartLayoutV2 is MultipartLayout for version 2: the layout of a
// multipart object whose parts, numbered 1..N in order, have the given
// stored sizes. Version 2 objects s3seal writes have uniform layouts (see
// UniformLayoutV2); this serves tools and tests.
func MultipartLayoutV2(partCipherSizes []int64) (*Layout, error) {
	if len(partCipherSizes) < 1 || len(partCipherSizes) > MaxParts {
		return nil, errSize("part count %d out of range [1, %d]", len(partCipherSizes), MaxParts)
	}
	return newLayout(formatV2, 1, partCipherSizes)
}

// UniformMultipartLayout is the layout of a version 1 multipart object of
// totalCipher bytes in parts parts, all but the last of partCipherSize
// bytes (what every SDK's upload manager produces). The last part's size
// is what remains.
func UniformMultipartLayout(totalCipher int64, parts int, partCipherSize int64) (*Layout, error) {
	return formatV1.uniformLayout(totalCipher, parts, partCipherSize)
}

// UniformMultipartLayoutV2 is UniformMultipartLayout for version 2: the
// layout of a multipart object of totalCipher stored bytes in parts parts,
// all but the last of partCipherSize stored bytes, as a listing can learn
// it from the store alone (HEAD ?partNumber=1 gives the first part's size
// and the part count). It is not authenticated; readers take the layout
// from the part-set record.
func UniformMultipartLayoutV2(totalCipher int64, parts int, partCipherSize int64) (*Layout, error) {
	return formatV2.uniformLayout(totalCipher, parts, partCipherSize)
}

func (f *format) uniformLayout(totalCipher int64, parts int, partCipherSize int64) (*Layout, error) {
	if parts < 1 || parts > MaxParts {
		return nil, errSize("part count %d out of range [1, %d]", parts, MaxParts)
	}
	if partCipherSize < f.trailer {
		return nil, fmt.Errorf("%w: part size %d", ErrInvalidSize, partCipherSize)
	}
	last := totalCipher - int64(parts-1)*partCipherSize
	if last < f.trailer {
		return nil, fmt.Errorf("%w: %d bytes cannot hold %d parts of %d bytes", ErrInvalidSize, totalCipher, parts, partCipherSize)
	}
	sizes := make([]int64, parts)
	for i := range sizes {
		sizes[i] = partCipherSize
	}
	sizes[parts-1] = last
	return newLayout(f, 1, sizes)
}

func newLayout(f *format, first uint32, sizes []int64) (*Layout, error) {
	l := &Layout{
		f:         f,
		first:     first,
		cipherOff: make([]int64, len(sizes)+1),
		plainOff:  make([]int64, len(sizes)+1),
	}
	for i, c := range sizes {
		p, err := f.plaintextSize(c)
		if err != nil {
			return nil, fmt.Errorf("%w (segment %d)", err, int(first)+i)
		}
		l.cipherOff[i+1] = l.cipherOff[i] + c
		l.plainOff[i+1] = l.plainOff[i] + p
	}
	return l, nil
}

// Multipart reports whether the layout is that of a multipart object.
func (l *Layout) Multipart() bool { return l.first != 0 }

// Version returns the content format version, 1 or 2.
func (l *Layout) Version() uint8 { return l.f.version }

// Segments returns the number of segments.
func (l *Layout) Segments() int { return len(l.cipherOff) - 1 }

// Segment returns the i-th segment (0-based index, not the segment number).
func (l *Layout) Segment(i int) Segment {
	return Segment{
		Number:       l.first + uint32(i),
		CipherOffset: l.cipherOff[i],
		CipherSize:   l.cipherOff[i+1] - l.cipherOff[i],
		PlainOffset:  l.plainOff[i],
		PlainSize:    l.plainOff[i+1] - l.plainOff[i],
	}
}

// SegmentLayout returns the layout of the i-th segment alone (0-based
// index), keeping its number: what a reader of one part of a multipart
// object (GET ?partNumber=) needs to authenticate exactly that part.
func (l *Layout) SegmentLayout(i int) *Layout {
	s := l.Segment(i)
	return &Layout{f: l.f, first: s.Number, cipherOff: []int64{0, s.CipherSize}, plainOff: []int64{0, s.PlainSize}}
}

// PlaintextSize returns the object's plaintext size.
func (l *Layout) PlaintextSize() int64 { return l.plainOff[len(l.plainOff)-1] }

// CiphertextSize returns the object's ciphertext size.
func (l *Layout) CiphertextSize() int64 { return l.cipherOff[len(l.cipherOff)-1] }

// segmentOf returns the index of the segment holding plaintext byte off
// (0 <= off < PlaintextSize); empty segments hold no byte.
func (l *Layout) segmentOf(off int64) int {
	// First i with plainOff[i+1] > off.
	return sort.Search(l.Segments(), func(i int) bool { return l.plainOff[i+1] > off })
}

// Range is the plan for reading a plaintext byte range of an object: which
// ciphertext bytes to fetch and how to turn them into the plaintext asked
// for. Layout.Range computes it; RangeReader executes it.
type Range struct {
	// Offset and Length are the plaintext range asked for.
	Offset, Length int64
	// CipherOffset and CipherLength are the ciphertext bytes to fetch (an
	// HTTP Range of bytes=CipherOffset-(CipherOffset+CipherLength-1)).
	CipherOffset, CipherLength int64
	// FirstSegment and LastSegment are indexes of the first and last
	// segments the range touches.
	FirstSegment, LastSegment int
	// FirstChunk is the index, within the first segment, of the chunk at
	// CipherOffset; LastChunk the index, within the last segment, of the
	// last data chunk fetched.
	FirstChunk, LastChunk int64
	// Skip is the number of plaintext bytes of the first chunk before
	// Offset, which are decrypted and authenticated but not returned.
	Skip int64
	// Trailer reports whether the fetched bytes end with the last
	// segment's trailer. It does when the range reaches that segment's last
	// data chunk, so that the segment's length is authenticated too.
	Trailer bool
}

// Range returns the plan for the plaintext bytes [off, off+length).
// length must be at least 1 and the range must lie within the object.
func (l *Layout) Range(off, length int64) (Range, error) {
	size := l.PlaintextSize()
	if off < 0 || length < 1 || off > size || length > size-off {
		return Range{}, errSize("range [%d, +%d) outside a %d-byte object", off, length, size)
	}
	i, j := l.segmentOf(off), l.segmentOf(off+length-1)
	rel := off - l.plainOff[i]
	r := Range{
		Offset:       off,
		Length:       length,
		FirstSegment: i,
		LastSegment:  j,
		FirstChunk:   rel / ChunkSize,
		Skip:         rel % ChunkSize,
		LastChunk:    (off + length - 1 - l.plainOff[j]) / ChunkSize,
	}
	r.CipherOffset = l.cipherOff[i] + r.FirstChunk*l.f.encChunk
	end := l.cipherOff[j] + (r.LastChunk+1)*l.f.encChunk
	if r.LastChunk == chunks(l.plainOff[j+1]-l.plainOff[j])-1 {
		end = l.cipherOff[j+1]
		r.Trailer = true
	}
	r.CipherLength = end - r.CipherOffset
	return r, nil
}

// WholeRange returns the plan for reading the whole object, or ok=false for
// an empty object (which has no byte range, but still a trailer; read it
// with DecryptReader or ReaderAt).
func (l *Layout) WholeRange() (r Range, ok bool) {
	if l.PlaintextSize() == 0 {
		return Range{}, false
	}
	r, err := l.Range(0, l.PlaintextSize())
	if err != nil {
		panic("stream: internal error: " + err.Error())
	}
	return r, true
}
