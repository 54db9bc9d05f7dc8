package stream

import "io"

// pump gives a reader that produces its output one unit at a time (a
// chunk, or a chunk and the trailer behind it) the io.Reader and
// io.WriterTo methods, with sticky errors, and releases the reader's
// buffers once it is done. Every reader of this package embeds one and
// sets next, direct and free.
type pump struct {
	out []byte // produced and not yet returned
	err error  // sticky; io.EOF at the end
	// next produces the next unit: appended to dst, which has room for
	// it, or, if dst is nil, into the reader's own buffer. It sets err at
	// the end or on failure.
	next func(dst []byte) []byte
	// direct reports whether the next unit fits in room bytes of the
	// caller's buffer, so that Read produces straight into it and saves a
	// copy.
	direct func(room int) bool
	// free returns the reader's buffers to their pools. It is called
	// once, after err is set and out is drained.
	free func()
}

// Read implements io.Reader.
func (p *pump) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		if len(p.out) > 0 {
			c := copy(b[n:], p.out)
			p.out = p.out[c:]
			n += c
			continue
		}
		if p.err != nil {
			break
		}
		if p.direct(len(b) - n) {
			n += len(p.next(b[n:n]))
			continue
		}
		p.out = p.next(nil)
	}
	p.release()
	if n > 0 {
		return n, nil
	}
	return 0, p.err
}

// WriteTo implements io.WriterTo, so that io.Copy saves a copy.
func (p *pump) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(p.out) > 0 {
			m, err := w.Write(p.out)
			total += int64(m)
			p.out = p.out[m:]
			if err != nil {
				p.fail(err)
				return total, err
			}
			continue
		}
		if p.err != nil {
			p.release()
			if p.err == io.EOF {
				return total, nil
			}
			return total, p.err
		}
		p.out = p.next(nil)
	}
}

// fail records err (unless an error other than io.EOF came first) and
// drops what was not returned.
func (p *pump) fail(err error) {
	if p.err == nil || p.err == io.EOF {
		p.err = err
	}
	p.out = nil
	p.release()
}

func (p *pump) release() {
	if p.err != nil && len(p.out) == 0 && p.free != nil {
		p.free()
		p.free = nil
	}
}

// window is a decrypting reader's look-ahead over its source: the unread
// bytes are in[start:end].
type window struct {
	src        io.Reader
	in         []byte // a pooled buffer, all of it
	start, end int
	srcEOF     bool
}

// fill compacts the unread bytes to the front and reads from the source
// until the buffer is full or the source ended.
func (w *window) fill() error {
	if w.start > 0 {
		w.end = copy(w.in, w.in[w.start:w.end])
		w.start = 0
	}
	for w.end < len(w.in) && !w.srcEOF {
		m, err := w.src.Read(w.in[w.end:])
		w.end += m
		if err == io.EOF {
			w.srcEOF = true
		} else if err != nil {
			return err
		}
	}
	return nil
}
