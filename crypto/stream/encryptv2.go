package stream

import (
	"io"
)

// EncryptReaderV2 reads plaintext from a source and returns the stored form
// of one version 2 segment: with n plaintext bytes it yields exactly
// CiphertextSizeV2(n) bytes.
//
// Every EncryptReaderV2 draws a fresh salt and derives its content key from
// it, so two encryptions of the same segment number under the same object
// key (a part uploaded twice, a part filled by UploadPartCopy after an
// UploadPart) never share a key, and within one encryption every chunk has
// its own random nonce. There is no way to give it a salt.
//
// Full chunks are returned as soon as they are read. Errors are sticky; a
// source error is returned as is. It does not close its source and is not
// safe for concurrent use.
type EncryptReaderV2 struct {
	pump   // Read, WriteTo; err is io.EOF once the trailer has been produced
	src    io.Reader
	c      *chunkV2
	opts   *EncryptOptions
	plain  *bufferV2 // plaintext of the chunk being sealed
	buf    *bufferV2 // sealed chunks not yet returned
	chunk  uint64
	length int64
}

// NewEncryptReaderV2 returns a reader of the stored form of segment number
// segment, whose plaintext src yields, under the key keys derives from
// segment and a salt drawn now (from opts.Rand if set, else crypto/rand).
// opts may be nil.
func NewEncryptReaderV2(keys SaltedKeyFunc, segment uint32, src io.Reader, opts *EncryptOptions) (*EncryptReaderV2, error) {
	var random io.Reader
	if opts != nil {
		random = opts.Rand
	}
	salt, err := newSalt(random)
	if err != nil {
		return nil, err
	}
	key := keys(segment, &salt)
	c, err := newChunkV2(key, &salt, random)
	clear(key)
	if err != nil {
		return nil, err
	}
	r := &EncryptReaderV2{src: src, c: c, opts: opts, plain: getBufV2(), buf: getBufV2()}
	r.next = func(dst []byte) []byte {
		if dst == nil {
			dst = r.buf[:0]
		}
		return r.produce(dst)
	}
	// Seal straight into the caller's buffer when a chunk and the trailer
	// fit.
	r.direct = func(room int) bool { return room >= bufSizeV2 }
	r.free = func() {
		putBufV2(r.buf)
		putBufV2(r.plain)
		r.buf, r.plain = nil, nil
	}
	return r, nil
}

// Salt returns the salt of this encryption. A proxy hands it back with the
// part's ETag so that CompleteMultipartUpload can bind the completed
// attempt of every part (package envelope, PartSet).
func (r *EncryptReaderV2) Salt() [SaltSize]byte { return r.c.salt }

// produce reads the next chunk of plaintext and appends its sealed form to
// dst (which has room for a chunk and a trailer), and the trailer at the
// end of the plaintext. It sets r.err at the end or on failure.
func (r *EncryptReaderV2) produce(dst []byte) []byte {
	pt := r.plain[:ChunkSize]
	m, err := io.ReadFull(r.src, pt)
	switch {
	case err == nil:
		if r.length += ChunkSize; r.length > MaxSegmentSizeV2 {
			r.err = errTooLarge
			return dst
		}
		return r.seal(dst, pt, kindData)
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		if r.length += int64(m); r.length > MaxSegmentSizeV2 {
			r.err = errTooLarge
			return dst
		}
		sum, cerr := r.opts.checksum(r.length)
		if cerr != nil {
			r.err = cerr
			return dst
		}
		if m > 0 {
			if dst = r.seal(dst, pt[:m], kindData); r.err != nil {
				return dst
			}
		}
		var rec [TrailerPlaintextSize]byte
		t := Trailer{Length: r.length, Checksum: sum}
		t.marshal(rec[:], formatV2.version)
		if dst = r.seal(dst, rec[:], kindTrailer); r.err == nil {
			r.err = io.EOF
		}
		return dst
	default:
		r.err = err
		return dst
	}
}

func (r *EncryptReaderV2) seal(dst, pt []byte, kind byte) []byte {
	out, err := r.c.seal(dst, pt, r.chunk, kind)
	if err != nil {
		r.err = err
		return dst
	}
	r.chunk++
	return out
}
