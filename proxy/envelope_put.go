package proxy

import (
	"context"
	"io"
	"net/http"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/crypto/stream"
	"github.com/s3seal/s3seal/proxy/s3err"
	"github.com/s3seal/s3seal/proxy/upstream"
)

// maxEnvelopePut is the largest plaintext a single PUT can carry once
// encrypted (S3's 5 GiB single-PUT limit on the ciphertext).
var maxEnvelopePut = func() int64 {
	lo, hi := int64(0), int64(maxSinglePut)
	for lo < hi { // largest n with CiphertextSizeV2(n) <= 5 GiB
		mid := (lo + hi + 1) / 2
		if c, err := stream.CiphertextSizeV2(mid); err == nil && c <= maxSinglePut {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}()

// envPut encrypts a PutObject body while it streams upstream.
func (h *Handler) envPut(w *responseWriter, rt *Runtime, q *request) {
	auth := q.auth
	n := auth.ContentLength
	switch {
	case n < 0:
		h.fail(w, q, s3err.MissingContentLength)
		return
	case n > maxEnvelopePut:
		h.fail(w, q, s3err.EntityTooLarge.WithMessage("Your proposed upload exceeds the maximum allowed size for one PUT once encrypted (%d bytes); use a multipart upload.", maxEnvelopePut).
			WithField("ProposedSize", itoa(n)).WithField("MaxSizeAllowed", itoa(maxEnvelopePut)))
		return
	}
	user, err := userMetadata(q.r.Header)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	if _, err := checkTaggingHeader(q.r.Header, maxTags); err != nil {
		h.fail(w, q, err)
		return
	}
	upfront, lateChecksum, err := clientChecksums(q)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	ok, hdr, err := h.sealNew(rt, q, envelope.Params{Size: n, Checksum: upfront}, user)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	defer ok.Zero()
	src, enc, err := h.encryptClientBody(w, q, ok, 0, lateChecksum)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	size, _ := stream.CiphertextSizeV2(n)
	ureq := h.baseRequest(q)
	dropPlaintextChecksums(ureq.Header)
	mapConditionalHeaders(ureq.Header)
	ureq.Header.Set(metaHeader, hdr.String())
	ureq.Body, ureq.ContentLength = enc, size
	ureq.Trailer = h.defaultChecksum
	h.sendUpload(w, q, ureq, src, upfront, nil)
}

// segmentEncrypter is the encrypted form of one segment, of either format
// version.
type segmentEncrypter interface {
	io.Reader
	io.WriterTo
}

// encryptSegment encrypts the plaintext src yields as segment n under ok:
// in version 2 under a fresh salt (salt returns it), in version 1 (only an
// upload started before version 2) under the segment's fixed key.
func encryptSegment(ok *envelope.ObjectKey, n uint32, src io.Reader, opts *stream.EncryptOptions) (segmentEncrypter, func() [stream.SaltSize]byte, error) {
	if ok.Version() == envelope.VersionV2 {
		enc, err := ok.EncryptSegment(n, src, opts)
		if err != nil {
			return nil, nil, err
		}
		return enc, enc.Salt, nil
	}
	enc, err := stream.NewEncryptReader(ok.SegmentKey(n), src, opts)
	return enc, nil, err
}

// segmentCipherSize is the stored size of a segment of n plaintext bytes in
// ok's format version.
func segmentCipherSize(version uint8, n int64) (int64, error) {
	if version == envelope.VersionV2 {
		return stream.CiphertextSizeV2(n)
	}
	return stream.CiphertextSize(n)
}

// encryptClientBody wraps the client's verified body (stall timeout, byte
// accounting) and encrypts it as segment n under ok; late supplies the
// checksum kept in the segment trailer.
func (h *Handler) encryptClientBody(w *responseWriter, q *request, ok *envelope.ObjectKey, n uint32, late func(int64) (stream.Checksum, error)) (*trackingReader, segmentEncrypter, error) {
	var body io.Reader = http.NoBody
	if q.auth.Body != nil {
		body = q.auth.Body
	}
	src := h.clientBody(w, body)
	enc, _, err := encryptSegment(ok, n, src, &stream.EncryptOptions{Checksum: late})
	if err != nil {
		return nil, nil, err
	}
	return src, enc, nil
}

// sendUpload sends an encrypted PutObject or UploadPart and answers as S3
// does, echoing the checksum the client sent up front. etag, if not nil,
// makes the ETag the client sees from the store's.
func (h *Handler) sendUpload(w *responseWriter, q *request, ureq *upstream.Request, src *trackingReader, upfront stream.Checksum, etag func(string) string) {
	resp, sent := h.send(w, q, ureq, src)
	if !sent {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		h.relay(w, q, resp)
		return
	}
	copyEnvelopeHeaders(w.Header(), resp.Header)
	if etag != nil {
		w.Header().Set("Etag", etag(resp.Header.Get("Etag")))
	}
	echoClientChecksum(w.Header(), q, upfront)
	w.WriteHeader(http.StatusOK)
}

// sealNew creates the object key of a new envelope object at q's target,
// records the key use, and checks that the client's metadata fits beside
// the header. The caller zeroes the key.
func (h *Handler) sealNew(rt *Runtime, q *request, p envelope.Params, user map[string]string) (*envelope.ObjectKey, envelope.Header, error) {
	return h.sealNewAt(q.r.Context(), rt, q, q.req.Bucket, q.req.Key, p, user)
}

// sealNewAt is sealNew for bucket/key: a version 2 object, after the
// bucket's format-2 marker, with its data key's key object stored first
// where the wrapped key needs one.
func (h *Handler) sealNewAt(ctx context.Context, rt *Runtime, q *request, bucket, key string, p envelope.Params, user map[string]string) (*envelope.ObjectKey, envelope.Header, error) {
	if err := h.ensureFormat2(ctx, bucket); err != nil {
		if e, ok := s3err.As(err); ok && (e.Code == "NoSuchBucket" || e.Code == "AccessDenied") {
			// The store's answer about the bucket is the client's.
			return nil, nil, e
		}
		return nil, nil, s3err.InternalError.WithMessage("s3seal could not write its format marker %s in bucket %s; nothing was written.", markerFormat2, bucket).WithCause(err)
	}
	p.Bucket, p.Key = bucket, key
	p.StoreWrappedKey = func(ref [envelope.WrappedKeyRefSize]byte, wrapped []byte) error {
		return h.storeKeyObject(ctx, bucket, ref, wrapped)
	}
	ok, hdr, err := envelope.NewV2(ctx, rt.Keys, p)
	h.auditKey(q, "seal", rt.Keys.Name(), hdr, err)
	if err != nil {
		if _, isS3 := s3err.As(err); isS3 {
			return nil, nil, err
		}
		return nil, nil, keyError(err)
	}
	if err := checkMetaSize(user, hdr); err != nil {
		ok.Zero()
		return nil, nil, err
	}
	return ok, hdr, nil
}

// baseRequest is the upstream request for q before any body: same method,
// target, query, and the client's headers less authentication and framing.
func (h *Handler) baseRequest(q *request) *upstream.Request {
	return &upstream.Request{
		Method: q.r.Method,
		Bucket: q.req.Bucket,
		Key:    q.req.Key,
		Query:  upstreamQuery(q.query),
		Header: upstreamHeader(q),
	}
}

// clientBody wraps a verified client body with the stall timeout and byte
// accounting.
func (h *Handler) clientBody(w *responseWriter, body io.Reader) *trackingReader {
	var src io.Reader = body
	if h.bodyTO > 0 {
		src = &stallReader{r: src, rc: http.NewResponseController(w.ResponseWriter), timeout: h.bodyTO, now: h.now}
	}
	return &trackingReader{r: src}
}
