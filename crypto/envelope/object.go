package envelope

import (
	"errors"
	"fmt"
	"io"

	"github.com/s3seal/s3seal/crypto/stream"
)

// ObjectLayout returns the layout of an object with header h whose stored
// size is storedSize: from the header's plaintext size for a single PUT,
// from the verified part set ps for a version 2 multipart object. A stored
// size that differs from the layout's (an object truncated or extended at
// the store) fails with ErrAuthentication. A version 1 multipart object's
// layout needs its part sizes (stream.UniformMultipartLayout and
// stream.MultipartLayout); ps is ignored for other objects and may be nil.
func ObjectLayout(h Header, storedSize int64, ps *PartSet) (*stream.Layout, error) {
	var l *stream.Layout
	var err error
	switch {
	case !h.Multipart() && h.Version() == VersionV2:
		l, err = stream.SingleLayoutV2(h.CiphertextSize())
	case !h.Multipart():
		l, err = stream.SingleLayout(h.CiphertextSize())
	case h.Version() == VersionV2 && ps != nil:
		l, err = ps.Layout()
	case h.Version() == VersionV2:
		return nil, errors.New("envelope: a version 2 multipart object's layout needs its part set")
	default:
		return nil, errors.New("envelope: a version 1 multipart object's layout needs its part sizes")
	}
	if err != nil {
		return nil, err
	}
	if l.CiphertextSize() != storedSize {
		return nil, fmt.Errorf("%w: stored size %d, the header or part set gives %d", ErrAuthentication, storedSize, l.CiphertextSize())
	}
	return l, nil
}

// NewRangeReader returns the reader of the plaintext range rg of an object
// with layout l (from ObjectLayout, or the proxy's version 1 layouts), fed
// with the stored bytes rg asks for.
func (k *ObjectKey) NewRangeReader(l *stream.Layout, rg stream.Range, src io.Reader) (*stream.RangeReader, error) {
	if l.Version() != k.version {
		return nil, fmt.Errorf("envelope: a version %d layout for a version %d object", l.Version(), k.version)
	}
	if k.version == VersionV2 {
		return stream.NewRangeReaderV2(k.SegmentKeyV2, l, rg, src)
	}
	return stream.NewRangeReader(k.SegmentKey, l, rg, src)
}

// ObjectReader decrypts a whole object, of either format version. It
// returns io.EOF only after everything the object's metadata fixes has
// been checked: a single PUT's size; a version 2 multipart object's parts
// against its part set (their number, sizes, and which upload of each part
// was completed). A version 1 multipart object's part count is not
// authenticated (FORMAT.md, section 12). It is not safe for concurrent use
// and does not close its source.
type ObjectReader struct {
	r1    *stream.DecryptReader
	r2    *stream.DecryptReaderV2
	check func() error
	err   error
}

// NewReader returns a reader of the whole plaintext of the object with
// header h whose stored bytes src yields. ps is the verified part set
// (OpenPartSet) of a version 2 multipart object, required there and
// ignored otherwise.
func (k *ObjectKey) NewReader(h Header, ps *PartSet, src io.Reader) (*ObjectReader, error) {
	if h.Version() != k.version {
		return nil, fmt.Errorf("envelope: a version %d header for a version %d key", h.Version(), k.version)
	}
	r := &ObjectReader{}
	var err error
	switch {
	case k.version == VersionV2 && h.Multipart():
		if ps == nil {
			return nil, errors.New("envelope: reading a version 2 multipart object needs its part set")
		}
		var l *stream.Layout
		if l, err = ps.Layout(); err == nil {
			r.r2, err = stream.NewDecryptReaderV2(k.SegmentKeyV2, l, src)
		}
		r.check = func() error { return ps.Check(r.r2.Segments()) }
	case k.version == VersionV2:
		var l *stream.Layout
		if l, err = stream.SingleLayoutV2(h.CiphertextSize()); err == nil {
			r.r2, err = stream.NewDecryptReaderV2(k.SegmentKeyV2, l, src)
		}
		r.check = func() error { return nil }
	case h.Multipart():
		r.r1, err = stream.NewMultipartDecryptReader(k.SegmentKey, src)
		r.check = func() error { return nil }
	default:
		r.r1, err = stream.NewDecryptReader(k.SegmentKey(0), src)
		r.check = func() error {
			if tr := r.r1.Trailers(); len(tr) != 1 || tr[0].Length != h.PlaintextSize() {
				return ErrAuthentication
			}
			return nil
		}
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (r *ObjectReader) inner() io.Reader {
	if r.r2 != nil {
		return r.r2
	}
	return r.r1
}

// Read implements io.Reader.
func (r *ObjectReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.inner().Read(p)
	if err == io.EOF {
		err = r.finish()
	} else if err != nil {
		r.err = err
	}
	return n, err
}

// WriteTo implements io.WriterTo.
func (r *ObjectReader) WriteTo(w io.Writer) (int64, error) {
	if r.err != nil {
		if r.err == io.EOF {
			return 0, nil
		}
		return 0, r.err
	}
	n, err := r.inner().(io.WriterTo).WriteTo(w)
	if err == nil {
		if err = r.finish(); err == io.EOF {
			err = nil
		}
	} else {
		r.err = err
	}
	return n, err
}

func (r *ObjectReader) finish() error {
	if err := r.check(); err != nil {
		r.err = err
	} else {
		r.err = io.EOF
	}
	return r.err
}

// Trailers returns the authenticated trailers of the segments read so far,
// in order (for the checksum a client sent at the end of a body).
func (r *ObjectReader) Trailers() []stream.Trailer {
	if r.r1 != nil {
		return r.r1.Trailers()
	}
	var out []stream.Trailer
	for _, s := range r.r2.Segments() {
		out = append(out, s.Trailer)
	}
	return out
}
