package proxy

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/crypto/stream"
	"github.com/s3seal/s3seal/proxy/s3"
	"github.com/s3seal/s3seal/proxy/s3err"
	"github.com/s3seal/s3seal/proxy/upstream"
)

// CompleteMultipartUpload in envelope mode (FORMAT.md, section 8.4).
//
// s3seal checks the part list (numbered 1..N, each part's ETag the
// store's), completes the store's upload and, for a version 2 upload,
// writes the part-set record as the tag s3seal-parts of the version the
// store created. The salts the record binds come from the part ETags
// s3seal handed out, or are read from the object for parts named by ETags
// without one. Parts whose sizes are not all-but-the-last equal (and
// version 1 uploads whose parts do not hold whole chunks of one size) are
// rewritten as a new upload of equal parts under a new object key. A
// version 1 upload started before the switch to version 2 completes as
// version 1.
//
// The answer may take long (a large store completion, the marker wait, a
// rewrite): as S3 does, s3seal then sends the 200 status early and keeps
// the connection alive with whitespace, and a late failure is an error
// document in the body.

// completedPart is a part of the client's list, checked against the
// store's.
type completedPart struct {
	number int
	etag   string // the store's
	salt   *[stream.SaltSize]byte
	md5    []byte // the plaintext MD5 the part ETag carries, or nil
	cipher int64  // stored size
}

// plaintextETag is the multipart ETag of parts when every one carries its
// plaintext MD5 (the client sent Content-MD5 with each): the ETag S3 would
// give the plaintext upload, which tools that verify uploads compute. ""
// otherwise.
func plaintextETag(parts []completedPart) string {
	sums := make([][]byte, len(parts))
	for i, p := range parts {
		if p.md5 == nil {
			return ""
		}
		sums[i] = p.md5
	}
	if len(sums) == 0 {
		return ""
	}
	return multipartMD5ETag(sums)
}

// checkCompleteParts checks the client's part list: numbered 1..N in
// order, each part held by the store under the ETag the client names.
func (h *Handler) checkCompleteParts(ctx context.Context, q *request, ref *uploadRef) ([]completedPart, error) {
	// The handler read and checked the document (readDocument).
	parts := q.req.Complete
	for i, p := range parts {
		if p.PartNumber != i+1 {
			return nil, s3err.New("InvalidPartOrder", http.StatusBadRequest,
				fmt.Sprintf("s3seal needs the parts of an encrypted upload numbered 1, 2, 3, ... without gaps, in order; part %d is listed at position %d.", p.PartNumber, i+1))
		}
	}
	stored, err := h.listStoreParts(ctx, q.req.Bucket, q.req.Key, ref.storeID)
	if err != nil {
		return nil, err
	}
	byNumber := map[int]storePart{}
	for _, p := range stored {
		byNumber[p.Number] = p
	}
	out := make([]completedPart, len(parts))
	for i, p := range parts {
		etag, salt, sum := splitPartETagMD5(p.ETag)
		sp, found := byNumber[p.PartNumber]
		if !found || strings.Trim(sp.ETag, `"`) != strings.Trim(etag, `"`) {
			return nil, s3err.New("InvalidPart", http.StatusBadRequest,
				fmt.Sprintf("One or more of the specified parts could not be found; part %d is missing or its ETag does not match.", p.PartNumber))
		}
		out[i] = completedPart{number: p.PartNumber, etag: sp.ETag, salt: salt, md5: sum, cipher: sp.Size}
	}
	return out, nil
}

// partSetOf returns the part set (without salts) of a version 2 upload's
// parts, and whether they are all-but-the-last equal, which the record can
// describe.
func partSetOf(parts []completedPart) (envelope.PartSet, bool, error) {
	plain := make([]int64, len(parts))
	for i, p := range parts {
		n, err := stream.PlaintextSizeV2(p.cipher)
		if err != nil {
			return envelope.PartSet{}, false, s3err.New("InvalidPart", http.StatusBadRequest,
				fmt.Sprintf("Part %d holds %d bytes, not a part s3seal encrypted.", p.number, p.cipher))
		}
		plain[i] = n
	}
	ps := envelope.PartSet{Parts: len(parts), PartSize: plain[0], LastSize: plain[len(plain)-1]}
	for _, n := range plain[:len(plain)-1] {
		if n != ps.PartSize {
			return ps, false, nil
		}
	}
	return ps, true, nil
}

// irregular reports whether a part set's sizes are not arithmetic for
// listings: more than one part, of a size that is not whole chunks.
func irregular(ps envelope.PartSet) bool {
	return ps.Parts > 1 && ps.PartSize%stream.ChunkSize != 0
}

// regularParts reports whether a version 1 multipart object's stored part
// sizes keep its plaintext size and ranges arithmetic: all parts but the
// last the same size, holding whole 64 KiB chunks.
func regularParts(cipher []int64) bool {
	if len(cipher) < 2 {
		return true
	}
	first := cipher[0]
	p, err := stream.PlaintextSize(first)
	if err != nil || p%stream.ChunkSize != 0 {
		return false
	}
	for _, c := range cipher[1 : len(cipher)-1] {
		if c != first {
			return false
		}
	}
	return cipher[len(cipher)-1] <= first
}

// envComplete completes an envelope upload.
func (h *Handler) envComplete(w *responseWriter, rt *Runtime, q *request) {
	ctx := q.r.Context()
	ref, ok, err := h.openUpload(rt, q)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	defer ok.Zero()
	parts, err := h.checkCompleteParts(ctx, q, ref)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	cipher := make([]int64, len(parts))
	for i, p := range parts {
		cipher[i] = p.cipher
	}
	v2 := ref.hdr.Version() == envelope.VersionV2
	var ps envelope.PartSet
	var inPlace bool // completed as uploaded, not rewritten
	if v2 {
		if ps, inPlace, err = partSetOf(parts); err != nil {
			h.fail(w, q, err)
			return
		}
	} else {
		inPlace = regularParts(cipher)
	}
	ans := &lateAnswer{h: h, w: w, q: q, ka: startKeepAlive(w, 10*time.Second), etag: plaintextETag(parts)}
	var recheck bool
	switch {
	case v2 && inPlace && irregular(ps):
		err = h.ensureMarker(ctx, q.req.Bucket, markerIrregular, true)
	case !v2 && inPlace:
		recheck, err = h.beforeVersion1Write(ctx, q.req.Bucket)
	}
	if err != nil {
		ans.fail(err)
		return
	}
	resp, err := h.completeStore(ctx, q, ref, parts)
	if err != nil {
		ans.fail(err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		ans.relay(resp)
		return
	}
	// The upload is gone from the store (an error inside a 200 is
	// retried by the client with the same upload, which the store then no
	// longer knows either).
	defer h.dropUploadState(context.WithoutCancel(ctx), q, ref.storeID)
	doc, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		ans.fail(s3err.UpstreamUnavailable.WithCause(err))
		return
	}
	var done struct {
		ETag string `xml:"ETag"`
	}
	if code, _, _ := parseErrorBody([]byte(strings.TrimSpace(string(doc)))); code != "" || xml.Unmarshal(doc, &done) != nil || done.ETag == "" {
		ans.relayDoc(doc, resp.Header)
		return
	}
	version := resp.Header.Get("X-Amz-Version-Id")
	switch {
	case !inPlace:
		h.relayout(ans, rt, q, ok, ref.hdr, parts, done.ETag, version)
	case v2:
		given := make([]*[stream.SaltSize]byte, len(parts))
		for i, p := range parts {
			given[i] = p.salt
		}
		salts, err := h.partSalts(ctx, q.req.Bucket, q.req.Key, version, done.ETag, given, cipher)
		if err == nil {
			ps.Salts = envelope.SaltsDigest(salts)
			var rec envelope.PartSetRecord
			if rec, err = ok.SealPartSet(ref.hdr, q.req.Bucket, q.req.Key, ps); err == nil {
				err = h.writeRecord(ctx, q.req.Bucket, q.req.Key, version, rec, ans.etag, nil, false)
			}
		}
		if err != nil {
			h.log.Error("an upload completed but its part-set record could not be written; the object is refused until it is uploaded again",
				zap.String("request_id", q.id), zap.String("bucket", q.req.Bucket), zap.String("key", q.req.Key), zap.String("error", describe(err)))
			ans.fail(s3err.InternalError.WithMessage("The store completed the upload, but s3seal could not write the object's part-set record (tag %s), without which it does not serve the object; upload it again.", envelope.PartSetTag).WithCause(err))
			return
		}
		ans.relayDoc(doc, resp.Header)
	default:
		if recheck {
			h.afterVersion1Write(ctx, q, q.req.Bucket)
		}
		ans.relayDoc(doc, resp.Header)
	}
}

// completeStore sends CompleteMultipartUpload for parts to the store.
func (h *Handler) completeStore(ctx context.Context, q *request, ref *uploadRef, parts []completedPart) (*http.Response, error) {
	out := completeRequest{}
	for _, p := range parts {
		out.Parts = append(out.Parts, completePart{PartNumber: p.number, ETag: p.etag})
	}
	xb, _ := xml.Marshal(out)
	ureq := h.baseRequest(q)
	ureq.Query.Set("uploadId", ref.storeID)
	dropPlaintextChecksums(ureq.Header)
	ureq.Header.Del("X-Amz-Checksum-Type")
	ureq.Header.Del("X-Amz-Mp-Object-Size")
	mapConditionalHeaders(ureq.Header)
	ureq.Body, ureq.ContentLength = strings.NewReader(string(xb)), int64(len(xb))
	resp, err := h.up.Do(ctx, ureq)
	if resp != nil {
		q.upstreamStatus = resp.StatusCode
	}
	if err != nil && contextErr(ctx) {
		return nil, errClientGone
	}
	return resp, err
}

// lateAnswer answers a request that may have started its 200 answer early
// (keepAlive): what comes later is the body, an error an error document.
type lateAnswer struct {
	h       *Handler
	w       *responseWriter
	q       *request
	ka      *keepAlive
	stopped bool
	started bool
	// etag, if set, is the ETag to answer with instead of the store's
	// (plaintextETag).
	etag string
}

// clientETag is the ETag the answer shows for the store's ETag store.
func (a *lateAnswer) clientETag(store string) string {
	if a.etag != "" {
		return a.etag
	}
	return clientETag(store)
}

func (a *lateAnswer) stop() bool {
	if !a.stopped {
		a.stopped, a.started = true, a.ka.stop()
	}
	return a.started
}

// fail answers err.
func (a *lateAnswer) fail(err error) {
	if !a.stop() {
		a.h.fail(a.w, a.q, err)
		return
	}
	e := toS3Error(err)
	a.q.err = e
	_, _ = a.w.Write(s3err.Marshal(e, errorResource(a.q.r), a.q.id))
}

// relay answers a store's error.
func (a *lateAnswer) relay(resp *http.Response) {
	if !a.stop() {
		a.h.relay(a.w, a.q, resp)
		return
	}
	a.fail(upstreamError(resp))
}

// relayDoc answers with a store's CompleteMultipartUpload document (or an
// error document sent with 200), its ETag the client's.
func (a *lateAnswer) relayDoc(doc []byte, hdr http.Header) {
	if code, _, _ := parseErrorBody([]byte(strings.TrimSpace(string(doc)))); code != "" {
		a.relay(&http.Response{StatusCode: http.StatusInternalServerError, Header: hdr, Body: io.NopCloser(strings.NewReader(string(doc)))})
		return
	}
	out, err := s3.RewriteXML(doc, []string{"CompleteMultipartUploadResult"}, func(e *s3.Entry) error {
		if v, ok := e.Fields["ETag"]; ok {
			e.Fields["ETag"] = a.clientETag(v)
		}
		if _, ok := e.Fields["Location"]; ok {
			e.Fields["Location"] = clientLocation(a.q)
		}
		return nil
	})
	if err != nil {
		a.fail(s3err.InternalError.WithCause(err))
		return
	}
	a.done(out, hdr)
}

// done answers 200 with doc (an XML document) and, if the status has not
// gone out yet, the store's headers hdr.
func (a *lateAnswer) done(doc []byte, hdr http.Header) {
	if a.stop() {
		// The XML declaration went out with the status.
		body := strings.TrimSpace(string(doc))
		if strings.HasPrefix(body, "<?xml") {
			if i := strings.Index(body, "?>"); i >= 0 {
				body = body[i+2:]
			}
		}
		_, _ = a.w.Write([]byte(body))
		return
	}
	copyEnvelopeHeaders(a.w.Header(), hdr)
	a.w.Header().Set("Content-Type", "application/xml")
	writeDocument(a.w, doc)
}

// relayout rewrites a just-completed multipart object whose layout s3seal
// does not keep: a version 2 object whose parts are not all-but-the-last
// equal (the part-set record cannot describe it), or a version 1 object
// whose parts do not hold whole 64 KiB chunks of one size (its listing
// size would be wrong). s3seal reads the object back, decrypting it with
// its real layout, and writes it again as a new version 2 upload of equal
// parts under a new object key. The old version is deleted if the bucket
// keeps versions.
func (h *Handler) relayout(ans *lateAnswer, rt *Runtime, q *request, ok *envelope.ObjectKey, hdr envelope.Header, parts []completedPart, etag, version string) {
	ctx := q.r.Context()
	newETag, newVersion, err := h.rewriteObject(ctx, rt, q, ok, hdr, parts, etag, version, ans.etag)
	if err != nil {
		h.log.Error("re-laying out a multipart object failed",
			zap.String("request_id", q.id), zap.String("bucket", q.req.Bucket), zap.String("key", q.req.Key), zap.Error(err))
		ans.fail(err)
		return
	}
	if version != "" && version != "null" {
		if dr, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodDelete, Bucket: q.req.Bucket, Key: q.req.Key,
			Query: url.Values{"versionId": {version}}, Header: http.Header{}}); err == nil {
			drainClose(dr.Body)
		}
	}
	res := struct {
		XMLName  xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CompleteMultipartUploadResult"`
		Location string   `xml:"Location"`
		Bucket   string   `xml:"Bucket"`
		Key      string   `xml:"Key"`
		ETag     string   `xml:"ETag"`
	}{Location: clientLocation(q), Bucket: q.req.Bucket, Key: q.req.Key, ETag: ans.clientETag(newETag)}
	b, _ := xml.Marshal(res)
	hh := http.Header{}
	if newVersion != "" {
		hh.Set("X-Amz-Version-Id", newVersion)
	}
	ans.done(append([]byte(xml.Header), b...), hh)
}

// regularPartSize is the part size s3seal writes re-laid-out objects with.
func regularPartSize(total int64) int64 {
	p := int64(8 << 20)
	for (total+p-1)/p > 9000 {
		p *= 2
	}
	return p
}

// rewriteObject streams the completed object at q's key (header hdr, key
// ok, parts as completed, store ETag etag, version) into a new version 2
// upload of equal parts at the same key and returns its ETag and version.
// plainETag is the client's upload's plaintext multipart ETag ("" if not
// known), which the new object's record keeps.
func (h *Handler) rewriteObject(ctx context.Context, rt *Runtime, q *request, ok *envelope.ObjectKey, hdr envelope.Header, parts []completedPart, etag, version, plainETag string) (string, string, error) {
	sizes := make([]int64, len(parts))
	for i, p := range parts {
		sizes[i] = p.cipher
	}
	query := url.Values{}
	if version != "" {
		query.Set("versionId", version)
	}
	get, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodGet, Bucket: q.req.Bucket, Key: q.req.Key, Query: query, Header: http.Header{"If-Match": {etag}}})
	if err != nil {
		return "", "", err
	}
	defer get.Body.Close()
	if get.StatusCode != http.StatusOK {
		return "", "", upstreamError(get)
	}
	var dec io.Reader
	var total int64
	var check func() error
	if hdr.Version() == envelope.VersionV2 {
		l, err := stream.MultipartLayoutV2(sizes)
		if err != nil {
			return "", "", errObjectAuth.WithCause(err)
		}
		dr, err := stream.NewDecryptReaderV2(ok.SegmentKeyV2, l, get.Body)
		if err != nil {
			return "", "", err
		}
		dec, total = dr, l.PlaintextSize()
		// The parts read are the encryptions the client completed.
		check = func() error {
			for i, s := range dr.Segments() {
				if p := parts[i].salt; p != nil && *p != s.Salt {
					return fmt.Errorf("%w: part %d is not the upload the client completed", envelope.ErrAuthentication, i+1)
				}
			}
			return nil
		}
	} else {
		l, err := stream.MultipartLayout(sizes)
		if err != nil {
			return "", "", errObjectAuth.WithCause(err)
		}
		if dec, err = stream.NewMultipartDecryptReader(ok.SegmentKey, get.Body); err != nil {
			return "", "", err
		}
		total, check = l.PlaintextSize(), func() error { return nil }
	}
	user := map[string]string{}
	create := http.Header{}
	for k, v := range get.Header {
		lk := strings.ToLower(k)
		switch {
		case lk == strings.ToLower(metaHeader):
		case strings.HasPrefix(lk, "x-amz-meta-"):
			create[k] = v
			user[strings.ToLower(k[len("x-amz-meta-"):])] = strings.Join(v, ",")
		case lk == "content-type", lk == "content-encoding", lk == "content-disposition",
			lk == "content-language", lk == "cache-control", lk == "expires", lk == "x-amz-storage-class",
			lk == "x-amz-website-redirect-location":
			create[k] = v
		}
	}
	var tags []tag
	if n := get.Header.Get("X-Amz-Tagging-Count"); n != "" && n != "0" {
		if tags, err = h.getTags(ctx, q.req.Bucket, q.req.Key, version); err != nil {
			return "", "", err
		}
	}
	nk, nh, err := h.sealNewAt(ctx, rt, q, q.req.Bucket, q.req.Key, envelope.Params{Multipart: true}, user)
	if err != nil {
		return "", "", err
	}
	defer nk.Zero()
	create.Set(metaHeader, nh.String())
	up, err := h.createStoreUpload(ctx, q.req.Bucket, q.req.Key, create)
	if err != nil {
		return "", "", err
	}
	ps := envelope.PartSet{PartSize: regularPartSize(total)}
	var salts [][stream.SaltSize]byte
	for n, off := uint32(1), int64(0); off < total || n == 1; n++ {
		size := min(ps.PartSize, total-off)
		cipher, _ := stream.CiphertextSizeV2(size)
		enc, err := nk.EncryptSegment(n, io.LimitReader(dec, size), nil)
		if err == nil {
			err = up.put(n, enc, cipher)
		}
		if err != nil {
			up.abort()
			return "", "", err
		}
		salts = append(salts, enc.Salt())
		ps.Parts, ps.LastSize = int(n), size
		off += size
	}
	if ps.Parts == 1 {
		ps.PartSize = ps.LastSize
	}
	if err := expectEOF(dec, make([]byte, 1)); err != nil {
		up.abort()
		return "", "", err
	}
	if err := check(); err != nil {
		up.abort()
		return "", "", err
	}
	ps.Salts = envelope.SaltsDigest(salts)
	rec, err := nk.SealPartSet(nh, q.req.Bucket, q.req.Key, ps)
	if err != nil {
		up.abort()
		return "", "", err
	}
	newETag, newVersion, err := up.complete()
	if err != nil {
		return "", "", err
	}
	if err := h.writeRecord(ctx, q.req.Bucket, q.req.Key, newVersion, rec, plainETag, tags, true); err != nil {
		return "", "", err
	}
	return newETag, newVersion, nil
}
