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
	plain  *bufferV2 // plaintext of the chunk being sealed, in FIPS 140-only mode
	buf    *bufferV2 // sealed chunks not yet returned
	chunk  uint64
	length int64
	rnd    *randBatch // the salt and the nonces, outside FIPS 140-only mode
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
	r := &EncryptReaderV2{src: src, opts: opts}
	// In production the salt and the nonces come from a pooled batch of
	// crypto/rand bytes.
	from := random
	if from == nil {
		r.rnd = randPool.Get().(*randBatch)
		from = r.rnd
	}
	salt, err := newSalt(from)
	if err != nil {
		r.putRand()
		return nil, err
	}
	key := keys(segment, &salt)
	c, err := newChunkV2(key, &salt, random)
	clear(key)
	if err != nil {
		r.putRand()
		return nil, err
	}
	if random == nil && c.inPlace() {
		c.nonces = r.rnd
	}
	r.c, r.buf = c, getBufV2()
	if !c.inPlace() {
		r.plain = getBufV2()
	}
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
		if r.plain != nil {
			putBufV2(r.plain)
		}
		r.buf, r.plain = nil, nil
		r.putRand()
	}
	return r, nil
}

// putRand returns the batch of random bytes to its pool; a chunk sealed
// after that (there is none) would read crypto/rand itself.
func (r *EncryptReaderV2) putRand() {
	if r.rnd == nil {
		return
	}
	if r.c != nil && r.c.nonces == io.Reader(r.rnd) {
		r.c.nonces = nil
	}
	randPool.Put(r.rnd)
	r.rnd = nil
}

// Salt returns the salt of this encryption. A proxy hands it back with the
// part's ETag so that CompleteMultipartUpload can bind the completed
// attempt of every part (package envelope, PartSet).
func (r *EncryptReaderV2) Salt() [SaltSize]byte { return r.c.salt }

// produce reads the next chunk of plaintext and appends its sealed form to
// dst (which has room for a chunk and a trailer), and the trailer at the
// end of the plaintext. It sets r.err at the end or on failure.
func (r *EncryptReaderV2) produce(dst []byte) []byte {
	// Read the plaintext where its ciphertext goes and seal it there,
	// when the cipher can (outside FIPS 140-only mode); else into a
	// buffer of its own.
	var pt []byte
	inPlace := r.c.inPlace()
	if inPlace {
		n := len(dst) + inPlaceOffset
		pt = dst[n : n+ChunkSize] // within dst's capacity: room for a chunk and a trailer
	} else {
		pt = r.plain[:ChunkSize]
	}
	m, err := io.ReadFull(r.src, pt)
	switch {
	case err == nil:
		if r.length += ChunkSize; r.length > MaxSegmentSizeV2 {
			r.err = errTooLarge
			return dst
		}
		return r.seal(dst, pt, inPlace, kindData)
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
			if dst = r.seal(dst, pt[:m], inPlace, kindData); r.err != nil {
				return dst
			}
		}
		var rec [TrailerPlaintextSize]byte
		t := Trailer{Length: r.length, Checksum: sum}
		t.marshal(rec[:], formatV2.version)
		if dst = r.seal(dst, rec[:], false, kindTrailer); r.err == nil {
			r.err = io.EOF
		}
		return dst
	default:
		r.err = err
		return dst
	}
}

// seal appends the sealed chunk of pt to dst; inPlace says pt already sits
// where its ciphertext goes.
func (r *EncryptReaderV2) seal(dst, pt []byte, inPlace bool, kind byte) []byte {
	var out []byte
	var err error
	if inPlace {
		out, err = r.c.sealInPlace(dst, len(pt), r.chunk, kind)
	} else {
		out, err = r.c.seal(dst, pt, r.chunk, kind)
	}
	if err != nil {
		r.err = err
		return dst
	}
	r.chunk++
	return out
}
