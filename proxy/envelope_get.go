package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/crypto/s3ec"
	"github.com/s3seal/s3seal/crypto/stream"
	"github.com/s3seal/s3seal/proxy/s3err"
	"github.com/s3seal/s3seal/proxy/upstream"
)

// smallObject bounds the objects whose whole plaintext s3seal decrypts
// before answering, so that a checksum known only from the object's trailer
// can go into the response headers without a second request (larger
// objects have their trailers read first: envelope_checksum.go).
const smallObject = 1 << 20

// byteRange is a parsed single HTTP byte range.
type byteRange struct {
	start, end int64 // end -1: to the end of the object
	suffix     int64 // > 0: the last suffix bytes (start and end unused)
	none       bool  // "bytes=-0": satisfiable by no object
}

// parseRange parses a Range header. Like S3, it serves only single ranges
// written exactly as RFC 9110 says: anything else (several ranges, other
// units, spaces, signs, syntax errors, a last byte before the first) is
// ignored and the whole object is returned.
func parseRange(v string) *byteRange {
	spec, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes=")
	if !ok {
		return nil
	}
	a, b, ok := strings.Cut(spec, "-")
	if !ok || !digits(b) || (a != "" && !digits(a)) || (a == "" && b == "") {
		return nil
	}
	if a == "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil {
			return nil
		}
		if n == 0 {
			return &byteRange{none: true}
		}
		return &byteRange{suffix: n}
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return nil
	}
	if b == "" {
		return &byteRange{start: start, end: -1}
	}
	end, err := strconv.ParseInt(b, 10, 64)
	if err != nil || end < start {
		return nil
	}
	return &byteRange{start: start, end: end}
}

// digits reports whether s is only ASCII digits (or empty).
func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// resolve turns the range into plaintext offsets [a, b] for an object of
// size bytes, or reports it unsatisfiable.
func (r *byteRange) resolve(size int64) (a, b int64, ok bool) {
	switch {
	case r.none:
		return 0, 0, false
	case r.suffix > 0:
		if size == 0 {
			return 0, 0, false
		}
		return max(0, size-r.suffix), size - 1, true
	case r.start >= size:
		return 0, 0, false
	case r.end < 0 || r.end >= size:
		return r.start, size - 1, true
	}
	return r.start, r.end, true
}

// wholeEmpty reports whether the range asks for the whole of an empty
// object: S3 answers a suffix range on one with the (empty) object, 200.
func (r *byteRange) wholeEmpty(size int64) bool {
	return size == 0 && r.suffix > 0
}

// speculative is the ciphertext range that holds plaintext range r if the
// object is a single version 2 segment, without knowing its size: whole
// chunks, and the trailer when the range reaches the last chunk. (For a
// version 1 object or a multipart one the guess may miss; the reader then
// fetches what the layout asks for.)
func (r *byteRange) speculative() string {
	const ec = stream.EncryptedChunkSizeV2
	const limit = stream.MaxSegmentSizeV2
	// No object holds more than a segment's largest plaintext: clamping
	// there keeps the arithmetic below from overflowing on huge values
	// and leaves the range's meaning for every real object unchanged.
	if r.suffix > limit || r.start > limit || r.end > limit {
		c := *r
		c.suffix, c.start = min(c.suffix, limit), min(c.start, limit)
		if c.end > limit {
			c.end = -1
		}
		r = &c
	}
	switch {
	case r.none:
		return ""
	case r.suffix > 0:
		chunks := (r.suffix+stream.ChunkSize-1)/stream.ChunkSize + 1
		return fmt.Sprintf("bytes=-%d", chunks*ec+stream.TrailerSizeV2)
	case r.end < 0:
		return fmt.Sprintf("bytes=%d-", r.start/stream.ChunkSize*ec)
	}
	return fmt.Sprintf("bytes=%d-%d", r.start/stream.ChunkSize*ec, (r.end/stream.ChunkSize+1)*ec+stream.TrailerSizeV2-1)
}

// contentRange parses "bytes X-Y/T".
func contentRange(v string) (x, y, total int64, ok bool) {
	spec, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, 0, 0, false
	}
	xy, t, ok := strings.Cut(spec, "/")
	if !ok {
		return 0, 0, 0, false
	}
	xs, ys, ok := strings.Cut(xy, "-")
	if !ok {
		return 0, 0, 0, false
	}
	var err1, err2, err3 error
	x, err1 = strconv.ParseInt(xs, 10, 64)
	y, err2 = strconv.ParseInt(ys, 10, 64)
	total, err3 = strconv.ParseInt(t, 10, 64)
	return x, y, total, err1 == nil && err2 == nil && err3 == nil && x <= y && y < total
}

// sealed is an envelope object as a response revealed it.
type sealed struct {
	hdr  envelope.Header
	key  *envelope.ObjectKey
	etag string // the store's ETag
	// plainETag is the plaintext multipart ETag of a version 2 multipart
	// object, once its record was read, if the record keeps one.
	plainETag string
	// version is the version the store answered with (or the one asked
	// for); "" when the store names none.
	version string
	// cipherSize is the whole object's stored size.
	cipherSize int64
}

// openSealed reads s3seal's metadata from a store response and unseals the
// object key. It returns (nil, nil) for an object without metadata.
func (h *Handler) openSealed(ctx context.Context, rt *Runtime, q *request, hdr http.Header, cipherSize int64) (*sealed, error) {
	v := hdr.Get(metaHeader)
	if v == "" {
		return nil, nil
	}
	eh, err := envelope.Parse(v)
	if err != nil {
		h.logAuthFailure(q, err)
		return nil, errObjectAuth.WithCause(err)
	}
	var ok *envelope.ObjectKey
	if !writeOnly(rt) { // a write-only gateway serves sizes and metadata only: s.key stays nil
		ok, err = h.openKey(ctx, rt, eh, q.req.Bucket, q.req.Key)
		h.auditKey(q, "unseal", "", eh, err)
	}
	if err != nil {
		e := keyError(err)
		if e.Code == errObjectAuth.Code {
			h.logAuthFailure(q, err)
		}
		return nil, e
	}
	version := hdr.Get("X-Amz-Version-Id")
	if version == "" {
		version = q.query.Get("versionId")
	}
	s := &sealed{hdr: eh, key: ok, etag: hdr.Get("Etag"), version: version, cipherSize: cipherSize}
	if !eh.Multipart() && cipherSize != eh.CiphertextSize() {
		ok.Zero()
		err := fmt.Errorf("stored size %d, sealed size %d", cipherSize, eh.CiphertextSize())
		h.logAuthFailure(q, err)
		return nil, errObjectAuth.WithCause(err)
	}
	return s, nil
}

// partsFromETag returns N from a multipart ETag "…-N".
func partsFromETag(etag string) (int, bool) {
	i := strings.LastIndexByte(etag, '-')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(strings.Trim(etag[i+1:], `"`))
	return n, err == nil && n > 0
}

// plainSize is the object's plaintext size.
func (h *Handler) plainSize(ctx context.Context, q *request, s *sealed) (int64, error) {
	return h.plainSizeOf(ctx, q, q.req.Bucket, q.req.Key, q.query.Get("versionId"), s)
}

// plainSizeOf is plainSize for any object (q is the request on whose
// behalf it is read, for the log).
func (h *Handler) plainSizeOf(ctx context.Context, q *request, bucket, key, versionID string, s *sealed) (int64, error) {
	if !s.hdr.Multipart() {
		return s.hdr.PlaintextSize(), nil
	}
	if s.hdr.Version() == envelope.Version {
		if n, ok := partsFromETag(s.etag); ok {
			if p, err := stream.MultipartPlaintextSize(s.cipherSize, n); err == nil {
				return p, nil
			}
		}
	}
	l, _, err := h.objectLayout(ctx, q, bucket, key, versionID, s)
	if err != nil {
		return 0, err
	}
	return l.PlaintextSize(), nil
}

// layout returns the segment layout of q's object.
func (h *Handler) layout(ctx context.Context, q *request, s *sealed) (*stream.Layout, *envelope.PartSet, error) {
	return h.objectLayout(ctx, q, q.req.Bucket, q.req.Key, q.query.Get("versionId"), s)
}

// objectLayout returns the segment layout of an object, checked against
// its stored size: for a single PUT from its header; for a version 2
// multipart object from its verified part-set record (returned too, which
// a whole read checks the parts against); for a version 1 multipart object
// from one HEAD ?partNumber=1 (the part size and count), cached by ETag.
func (h *Handler) objectLayout(ctx context.Context, q *request, bucket, key, versionID string, s *sealed) (*stream.Layout, *envelope.PartSet, error) {
	if s.hdr.Version() == envelope.VersionV2 {
		var ps *envelope.PartSet
		if s.hdr.Multipart() {
			set, err := h.partSet(ctx, q, bucket, key, s)
			if err != nil {
				return nil, nil, err
			}
			ps = &set
		}
		l, err := envelope.ObjectLayout(s.hdr, s.cipherSize, ps)
		if err != nil {
			h.logAuthFailure(q, err)
			return nil, nil, errObjectAuth.WithCause(err)
		}
		return l, ps, nil
	}
	if !s.hdr.Multipart() {
		l, err := stream.SingleLayout(s.cipherSize)
		if err != nil {
			return nil, nil, errObjectAuth.WithCause(err)
		}
		return l, nil, nil
	}
	ck := bucket + "\x00" + key + "\x00" + versionID + "\x00" + s.etag
	if l, ok := h.layouts.Get(ck); ok {
		return l, nil, nil
	}
	query := url.Values{"partNumber": {"1"}}
	if versionID != "" {
		query.Set("versionId", versionID)
	}
	hdr := http.Header{}
	if s.etag != "" {
		hdr.Set("If-Match", s.etag)
	}
	resp, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodHead, Bucket: bucket, Key: key, Query: query, Header: hdr})
	if err != nil {
		return nil, nil, err
	}
	drainClose(resp.Body)
	if resp.StatusCode/100 != 2 {
		return nil, nil, upstreamError(resp)
	}
	parts, err := strconv.Atoi(resp.Header.Get("X-Amz-Mp-Parts-Count"))
	if err != nil || parts < 1 {
		parts = 1
	}
	l, err := stream.UniformMultipartLayout(s.cipherSize, parts, resp.ContentLength)
	if err != nil {
		return nil, nil, errObjectAuth.WithCause(err)
	}
	h.layouts.Add(ck, l)
	return l, nil, nil
}

// envGet serves GetObject and HeadObject for envelope objects.
func (h *Handler) envGet(w *responseWriter, rt *Runtime, q *request) {
	ctx := q.r.Context()
	rg := parseRange(q.r.Header.Get("Range"))
	head := q.r.Method == http.MethodHead
	partNumber := q.query.Get("partNumber")
	ureq := h.baseRequest(q)
	ureq.Header.Del("Range")
	ureq.Header.Del("X-Amz-Checksum-Mode")
	mapConditionalHeaders(ureq.Header)
	storeTag, plainTag, err := h.resolvePlainETags(ctx, rt, q, q.req.Bucket, q.req.Key, q.query.Get("versionId"), ureq.Header)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	if partNumber != "" {
		if q.r.Header.Get("Range") != "" {
			h.fail(w, q, s3err.InvalidRequest.WithMessage("Cannot specify both Range header and partNumber query parameter"))
			return
		}
		rg = nil
	}
	if rg != nil && !head {
		if spec := rg.speculative(); spec != "" {
			ureq.Header.Set("Range", spec)
		}
	}
	resp, ok := h.send(w, q, ureq, nil)
	if !ok {
		return
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		copyEnvelopeHeaders(w.Header(), resp.Header)
		if plainTag != "" && strings.Trim(resp.Header.Get("Etag"), `"`) == strings.Trim(storeTag, `"`) {
			w.Header().Set("Etag", `"`+plainTag+`"`)
		}
		w.WriteHeader(http.StatusNotModified)
		return
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		h.envRangeNotSatisfiable(w, rt, q, resp)
		return
	case resp.StatusCode/100 != 2:
		h.relay(w, q, resp)
		return
	}
	// The whole stored size: from Content-Range on partial answers.
	cipherSize := resp.ContentLength
	x, y := int64(0), resp.ContentLength-1
	if resp.StatusCode == http.StatusPartialContent {
		var okCR bool
		x, y, cipherSize, okCR = contentRange(resp.Header.Get("Content-Range"))
		if !okCR {
			h.fail(w, q, s3err.InternalError.WithMessage("The store sent an invalid Content-Range."))
			return
		}
	}
	if head {
		cipherSize = resp.ContentLength
		if cr := resp.Header.Get("Content-Range"); cr != "" {
			_, _, cipherSize, _ = contentRange(cr)
		}
	}
	s, err := h.openSealed(ctx, rt, q, resp.Header, cipherSize)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	if s == nil {
		// An S3 Encryption Client object is decrypted when the rule reads
		// such objects; a rule that only allows plaintext reads passes it
		// on as stored, for an S3 Encryption Client to decrypt.
		if s3ec.Is(s3ecMeta(resp.Header)) && (q.rule.AllowS3ECReads || !q.rule.AllowPlaintextReads) {
			h.s3ecGet(w, rt, q, resp, rg, head, cipherSize, resp.StatusCode == http.StatusOK)
			return
		}
		if q.rule.AllowPlaintextReads {
			if !q.rule.PlaintextAllowed(lastModified(resp.Header)) {
				drainClose(resp.Body)
				h.fail(w, q, errPlaintextTooNew(q.rule))
				return
			}
			if rg != nil && !head {
				// The speculative range was for ciphertext; fetch the
				// plaintext range asked for.
				drainClose(resp.Body)
				h.forward(w, q, q.auth)
				return
			}
			h.relay(w, q, resp)
			return
		}
		h.fail(w, q, errNotSealed(q.rule.Name))
		return
	}
	defer s.key.Zero()
	if s.key == nil && !head {
		h.fail(w, q, errWriteOnly)
		return
	}
	switch {
	case partNumber != "":
		h.envGetPart(w, q, s, resp, partNumber)
	case head:
		h.envHead(w, q, s, resp, rg)
	case rg != nil:
		h.envGetRange(w, q, s, resp, rg, x, y)
	default:
		h.envGetWhole(w, q, s, resp)
	}
}

func checksumMode(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("X-Amz-Checksum-Mode"), "ENABLED")
}

// envHead answers HeadObject (and HEAD with a Range) from the metadata.
func (h *Handler) envHead(w *responseWriter, q *request, s *sealed, resp *http.Response, rg *byteRange) {
	size, err := h.plainSize(q.r.Context(), q, s)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	var sum objectSum
	if checksumMode(q.r) && rg == nil {
		if sum, err = h.objectChecksum(q.r.Context(), q, s); err != nil {
			h.fail(w, q, err)
			return
		}
	}
	copyEnvelopeHeaders(w.Header(), resp.Header)
	objectHeaders(w.Header(), s)
	sum.setHeaders(w.Header())
	status := http.StatusOK
	n := size
	if rg != nil && !rg.wholeEmpty(size) {
		a, b, ok := rg.resolve(size)
		if !ok {
			h.fail(w, q, rangeError(size))
			return
		}
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", a, b, size))
		n, status = b-a+1, http.StatusPartialContent
	}
	w.Header().Set("Content-Length", itoa(n))
	w.WriteHeader(status)
}

func rangeError(size int64) *s3err.Error {
	e := s3err.InvalidRange.WithField("ActualObjectSize", itoa(size))
	e.Header = http.Header{"Content-Range": {fmt.Sprintf("bytes */%d", size)}}
	return e
}

// envRangeNotSatisfiable answers a range the store refused on the
// ciphertext: the plaintext size comes from a HEAD, so the error carries it.
func (h *Handler) envRangeNotSatisfiable(w *responseWriter, rt *Runtime, q *request, resp *http.Response) {
	if q.query.Get("partNumber") != "" {
		// A part number past the object's parts: the store's answer
		// (InvalidPartNumber) is about parts, not ciphertext bytes.
		h.relay(w, q, resp)
		return
	}
	drainClose(resp.Body)
	ctx := q.r.Context()
	query := upstreamQuery(q.query)
	hr, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodHead, Bucket: q.req.Bucket, Key: q.req.Key, Query: query, Header: http.Header{}})
	if err != nil {
		h.fail(w, q, err)
		return
	}
	drainClose(hr.Body)
	if hr.StatusCode/100 != 2 {
		h.fail(w, q, upstreamError(hr))
		return
	}
	s, err := h.openSealed(ctx, rt, q, hr.Header, hr.ContentLength)
	if err == nil && s == nil {
		// Not s3seal's format: the speculative range was measured in the
		// wrong units, and the range asked for may well be satisfiable.
		switch isS3EC := s3ec.Is(s3ecMeta(hr.Header)); {
		case isS3EC && (q.rule.AllowS3ECReads || !q.rule.AllowPlaintextReads):
			h.s3ecGet(w, rt, q, hr, parseRange(q.r.Header.Get("Range")), false, hr.ContentLength, false)
			return
		case q.rule.PlaintextAllowed(lastModified(hr.Header)):
			h.forward(w, q, q.auth)
			return
		case q.rule.AllowPlaintextReads:
			h.fail(w, q, errPlaintextTooNew(q.rule))
			return
		}
	}
	if err != nil || s == nil {
		if err == nil {
			err = errNotSealed(q.rule.Name)
		}
		h.fail(w, q, err)
		return
	}
	defer s.key.Zero()
	size, err := h.plainSize(ctx, q, s)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	h.fail(w, q, rangeError(size))
}

// envGetWhole streams a whole object's plaintext.
func (h *Handler) envGetWhole(w *responseWriter, q *request, s *sealed, resp *http.Response) {
	size, err := h.plainSize(q.r.Context(), q, s)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	var ps *envelope.PartSet
	if s.hdr.Version() == envelope.VersionV2 && s.hdr.Multipart() {
		if _, ps, err = h.layout(q.r.Context(), q, s); err != nil {
			h.fail(w, q, err)
			return
		}
	}
	dec, err := s.key.NewReader(s.hdr, ps, resp.Body)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	want := checksumMode(q.r)
	var sum objectSum
	if want && s.hdr.Checksum().Algorithm != stream.ChecksumNone {
		sum, want = fullObjectSum(s.hdr.Checksum()), false
	}
	small := !s.hdr.Multipart() && s.cipherSize <= smallObject
	if want && !small {
		// The checksum is in the trailers: read them first (ranged
		// GETs of their bytes alone), since headers go before the body.
		if sum, err = h.objectChecksum(q.r.Context(), q, s); err != nil {
			h.fail(w, q, err)
			return
		}
		want = false
	}
	copyEnvelopeHeaders(w.Header(), resp.Header)
	objectHeaders(w.Header(), s)
	w.Header().Set("Content-Length", itoa(size))
	sum.setHeaders(w.Header())
	if want {
		// The checksum is in the trailer of a small single PUT: decrypt
		// it first so the checksum can go into the headers, without
		// another request.
		body, err := io.ReadAll(io.LimitReader(dec, smallObject+1))
		if err != nil || int64(len(body)) != size {
			h.logAuthFailure(q, err)
			h.fail(w, q, errObjectAuth.WithCause(err))
			return
		}
		if tr := dec.Trailers(); len(tr) == 1 {
			fullObjectSum(tr[0].Checksum).setHeaders(w.Header())
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
		q.upstreamN = s.cipherSize
		return
	}
	h.streamPlaintext(w, q, dec, http.StatusOK, size)
}

// envGetRange serves a byte range. resp holds the ciphertext bytes [x, y]
// fetched on the guess that the object is a single segment.
func (h *Handler) envGetRange(w *responseWriter, q *request, s *sealed, resp *http.Response, rg *byteRange, x, y int64) {
	ctx := q.r.Context()
	l, _, err := h.layout(ctx, q, s)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	size := l.PlaintextSize()
	if rg.wholeEmpty(size) && x == 0 {
		// The speculative suffix covered the whole stored object.
		h.envGetWhole(w, q, s, resp)
		return
	}
	a, b, ok := rg.resolve(size)
	if !ok {
		h.fail(w, q, rangeError(size))
		return
	}
	plan, err := l.Range(a, b-a+1)
	if err != nil {
		h.fail(w, q, errObjectAuth.WithCause(err))
		return
	}
	body := io.Reader(resp.Body)
	if plan.CipherOffset < x || plan.CipherOffset+plan.CipherLength-1 > y {
		// The guess did not hold (a multipart object): fetch the planned
		// bytes of exactly this object version.
		drainClose(resp.Body)
		ureq := h.baseRequest(q)
		ureq.Method = http.MethodGet
		ureq.Header = http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", plan.CipherOffset, plan.CipherOffset+plan.CipherLength-1)}}
		if s.etag != "" {
			ureq.Header.Set("If-Match", s.etag)
		}
		r2, ok := h.send(w, q, ureq, nil)
		if !ok {
			return
		}
		defer r2.Body.Close()
		if r2.StatusCode != http.StatusPartialContent {
			h.relay(w, q, r2)
			return
		}
		body = r2.Body
	} else if skip := plan.CipherOffset - x; skip > 0 {
		if _, err := io.CopyN(io.Discard, body, skip); err != nil {
			h.fail(w, q, err)
			return
		}
	}
	rr, err := s.key.NewRangeReader(l, plan, io.LimitReader(body, plan.CipherLength))
	if err != nil {
		h.fail(w, q, err)
		return
	}
	copyEnvelopeHeaders(w.Header(), resp.Header)
	objectHeaders(w.Header(), s)
	w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", a, b, size))
	w.Header().Set("Content-Length", itoa(b-a+1))
	h.streamPlaintext(w, q, rr, http.StatusPartialContent, b-a+1)
	// The speculative fetch may end a chunk and a trailer beyond what was
	// needed: read them, so the store's connection is kept for reuse
	// rather than torn down (a TLS handshake per ranged GET otherwise).
	_, _ = io.CopyN(io.Discard, body, 2*stream.EncryptedChunkSizeV2)
}

// envGetPart serves GET ?partNumber=N.
func (h *Handler) envGetPart(w *responseWriter, q *request, s *sealed, resp *http.Response, partNumber string) {
	ctx := q.r.Context()
	n, err := strconv.ParseUint(partNumber, 10, 32)
	if err != nil || n < 1 || n > 10000 {
		h.fail(w, q, s3err.InvalidArgument.WithMessage("Part number must be an integer between 1 and 10000, inclusive."))
		return
	}
	l, _, err := h.layout(ctx, q, s)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	if int(n) > l.Segments() {
		h.fail(w, q, rangeError(l.PlaintextSize()))
		return
	}
	seg := l.Segment(int(n) - 1)
	status := resp.StatusCode
	copyEnvelopeHeaders(w.Header(), resp.Header)
	objectHeaders(w.Header(), s)
	w.Header().Set("Content-Length", itoa(seg.PlainSize))
	switch {
	case seg.PlainSize == 0:
		// An empty object's one part: S3 sends it whole, without a
		// Content-Range (no byte range describes nothing).
		status = http.StatusOK
	case status == http.StatusPartialContent:
		end := seg.PlainOffset + seg.PlainSize - 1
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", seg.PlainOffset, end, l.PlaintextSize()))
	}
	if q.r.Method == http.MethodHead {
		// HeadObject with a part number: the part's headers, no body.
		w.WriteHeader(status)
		return
	}
	var dec io.Reader
	if s.hdr.Version() == envelope.VersionV2 {
		// Exactly this part, under the key of its own salt.
		dec, err = stream.NewDecryptReaderV2(s.key.SegmentKeyV2, l.SegmentLayout(int(n)-1), resp.Body)
	} else {
		dec, err = stream.NewDecryptReader(s.key.SegmentKey(seg.Number), resp.Body)
	}
	if err != nil {
		h.fail(w, q, err)
		return
	}
	h.streamPlaintext(w, q, dec, status, seg.PlainSize)
}

// streamPlaintext sends decrypted bytes. The first chunk is decrypted before
// the status goes out, so an object that fails authentication at once gets
// an S3 error; a failure later aborts the connection, never a short 200.
func (h *Handler) streamPlaintext(w *responseWriter, q *request, src io.Reader, status int, size int64) {
	bp := h.bufs.Get().(*[]byte)
	defer h.bufs.Put(bp)
	buf := *bp
	n, err := io.ReadFull(src, buf[:min(int64(len(buf)), size)])
	if err == nil && int64(n) == size {
		// The whole object fits: authenticate its end before answering.
		err = expectEOF(src, buf)
	}
	if err != nil {
		h.logAuthFailure(q, err)
		h.fail(w, q, errObjectAuth.WithCause(err))
		return
	}
	w.WriteHeader(status)
	if n > 0 {
		if _, werr := w.Write(buf[:n]); werr != nil {
			q.err = errClientGone
			return
		}
	}
	sent := int64(n)
	if sent == size {
		return
	}
	for sent < size {
		m, rerr := src.Read(buf)
		if m > 0 {
			sent += int64(m)
			if _, werr := w.Write(buf[:m]); werr != nil {
				q.err = errClientGone
				return
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			h.logAuthFailure(q, rerr)
			q.err = rerr
			panic(http.ErrAbortHandler)
		}
	}
	if sent != size {
		err := fmt.Errorf("sent %d of %d plaintext bytes", sent, size)
		h.logAuthFailure(q, err)
		q.err = err
		panic(http.ErrAbortHandler)
	}
	// Read to EOF so the final chunk and trailer authenticate (an object
	// truncated or extended in the store fails here).
	if err := expectEOF(src, buf); err != nil {
		h.logAuthFailure(q, err)
		q.err = err
		panic(http.ErrAbortHandler)
	}
}

// expectEOF reads src and requires its end (and the authentication that
// comes with it) and nothing more.
func expectEOF(src io.Reader, buf []byte) error {
	m, err := src.Read(buf[:1])
	switch {
	case m != 0:
		return errors.New("object longer than its authenticated size")
	case err == io.EOF:
		return nil
	case err == nil:
		m, err = src.Read(buf[:1])
		if m == 0 && err == io.EOF {
			return nil
		}
		if err == nil {
			err = errors.New("object longer than its authenticated size")
		}
	}
	return err
}
