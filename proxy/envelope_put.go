package proxy

import (
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
	for lo < hi { // largest n with CiphertextSize(n) <= 5 GiB
		mid := (lo + hi + 1) / 2
		if c, err := stream.CiphertextSize(mid); err == nil && c <= maxSinglePut {
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
	src, enc, err := h.encryptClientBody(w, q, ok.SegmentKey(0), lateChecksum)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	size, _ := stream.CiphertextSize(n)
	ureq := h.baseRequest(q)
	dropPlaintextChecksums(ureq.Header)
	mapConditionalHeaders(ureq.Header)
	ureq.Header.Set(metaHeader, hdr.String())
	ureq.Body, ureq.ContentLength = enc, size
	ureq.Trailer = h.defaultChecksum
	h.sendUpload(w, q, ureq, src, upfront)
}

// encryptClientBody wraps the client's verified body (stall timeout, byte
// accounting) and encrypts it under key; late supplies the checksum kept
// in the segment trailer.
func (h *Handler) encryptClientBody(w *responseWriter, q *request, key []byte, late func(int64) (stream.Checksum, error)) (*trackingReader, *stream.EncryptReader, error) {
	var body io.Reader = http.NoBody
	if q.auth.Body != nil {
		body = q.auth.Body
	}
	src := h.clientBody(w, body)
	enc, err := stream.NewEncryptReader(key, src, &stream.EncryptOptions{Checksum: late})
	if err != nil {
		return nil, nil, err
	}
	return src, enc, nil
}

// sendUpload sends an encrypted PutObject or UploadPart and answers as S3
// does, echoing the checksum the client sent up front.
func (h *Handler) sendUpload(w *responseWriter, q *request, ureq *upstream.Request, src *trackingReader, upfront stream.Checksum) {
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
	echoClientChecksum(w.Header(), q, upfront)
	w.WriteHeader(http.StatusOK)
}

// sealNew creates the object key of a new envelope object at q's target,
// records the key use, and checks that the client's metadata fits beside
// the header. The caller zeroes the key.
func (h *Handler) sealNew(rt *Runtime, q *request, p envelope.Params, user map[string]string) (*envelope.ObjectKey, envelope.Header, error) {
	p.Bucket, p.Key = q.req.Bucket, q.req.Key
	ok, hdr, err := envelope.New(q.r.Context(), rt.Keys, p)
	h.auditKey(q, "seal", rt.Keys.Name(), hdr, err)
	if err != nil {
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
