package stream

import (
	"crypto/cipher"
	"errors"
	"io"
	"sync/atomic"
)

// ReaderAt gives random access to the plaintext of an object stored as
// ciphertext behind an io.ReaderAt (a downloaded file, for instance).
//
// NewReaderAt authenticates every segment's trailer first, so Size is
// authenticated before any plaintext is read. Each ReadAt authenticates the
// chunks it touches before copying from them. ReaderAt is safe for
// concurrent use; it keeps the most recently decrypted partial chunk.
type ReaderAt struct {
	l        *Layout
	src      io.ReaderAt
	aeads    []cipher.AEAD
	trailers []Trailer
	cache    atomic.Pointer[cachedChunk]
}

type cachedChunk struct {
	seg   int
	chunk int64
	plain []byte
}

// NewReaderAt returns a ReaderAt over src, which holds the ciphertext of an
// object with layout l (l.CiphertextSize() bytes). It reads and
// authenticates one trailer per segment.
func NewReaderAt(keys KeyFunc, l *Layout, src io.ReaderAt) (*ReaderAt, error) {
	ra := &ReaderAt{l: l, src: src, aeads: make([]cipher.AEAD, l.Segments()), trailers: make([]Trailer, l.Segments())}
	var ct [TrailerSize]byte
	for i := range ra.aeads {
		s := l.Segment(i)
		a, err := newAEAD(keys(s.Number))
		if err != nil {
			return nil, err
		}
		ra.aeads[i] = a
		if err := readFullAt(src, ct[:], s.CipherOffset+s.CipherSize-TrailerSize); err != nil {
			return nil, err
		}
		sc := segCipher{aead: a}
		t, err := sc.openTrailer(ct[:], uint64(chunks(s.PlainSize)))
		if err != nil || t.Length != s.PlainSize {
			return nil, ErrAuthentication
		}
		ra.trailers[i] = t
	}
	return ra, nil
}

// NewDecryptReaderAt is NewReaderAt for a single-segment object of size
// ciphertext bytes under one content key.
func NewDecryptReaderAt(key []byte, src io.ReaderAt, size int64) (*ReaderAt, error) {
	l, err := SingleLayout(size)
	if err != nil {
		return nil, err
	}
	return NewReaderAt(SingleKey(key), l, src)
}

// readFullAt reads len(p) bytes at off; a short read is an authentication
// failure, since the layout promised the bytes exist.
func readFullAt(src io.ReaderAt, p []byte, off int64) error {
	n, err := src.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return ErrAuthentication
	}
	return err
}

// Size returns the authenticated plaintext size.
func (ra *ReaderAt) Size() int64 { return ra.l.PlaintextSize() }

// Trailers returns the authenticated trailer of each segment.
func (ra *ReaderAt) Trailers() []Trailer { return ra.trailers }

// ReadAt implements io.ReaderAt.
func (ra *ReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("stream: negative offset")
	}
	size := ra.Size()
	if off >= size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	want := int64(len(p))
	if want > size-off {
		want = size - off
	}
	var buf *buffer
	defer func() {
		if buf != nil {
			putBuf(buf)
		}
	}()
	n := int64(0)
	for n < want {
		pos := off + n
		i := ra.l.segmentOf(pos)
		s := ra.l.Segment(i)
		c := (pos - s.PlainOffset) / ChunkSize
		chunkStart := s.PlainOffset + c*ChunkSize
		chunkLen := min(ChunkSize, s.PlainSize-c*ChunkSize)
		inChunk := pos - chunkStart
		take := min(chunkLen-inChunk, want-n)

		if cc := ra.cache.Load(); cc != nil && cc.seg == i && cc.chunk == c {
			copy(p[n:n+take], cc.plain[inChunk:])
			n += take
			continue
		}
		if buf == nil {
			buf = getBuf()
		}
		ct := buf[:chunkLen+TagSize]
		if err := readFullAt(ra.src, ct, s.CipherOffset+c*EncryptedChunkSize); err != nil {
			return int(n), err
		}
		var nonce [NonceSize]byte
		setNonce(&nonce, uint64(c), flagData)
		if inChunk == 0 && take == chunkLen {
			// The whole chunk is wanted: decrypt straight into p.
			if _, err := ra.aeads[i].Open(p[n:n], nonce[:], ct, nil); err != nil {
				return int(n), ErrAuthentication
			}
			n += take
			continue
		}
		plain, err := ra.aeads[i].Open(make([]byte, 0, chunkLen), nonce[:], ct, nil)
		if err != nil {
			return int(n), ErrAuthentication
		}
		ra.cache.Store(&cachedChunk{seg: i, chunk: c, plain: plain})
		copy(p[n:n+take], plain[inChunk:])
		n += take
	}
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}
