package proxy

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/crypto/s3ec"
	"github.com/s3seal/s3seal/crypto/stream"
	"github.com/s3seal/s3seal/proxy/policy"
	"github.com/s3seal/s3seal/proxy/s3"
	"github.com/s3seal/s3seal/proxy/s3err"
	"github.com/s3seal/s3seal/proxy/upstream"
)

// Multipart uploads in envelope mode.
//
// CreateMultipartUpload seals a new object key for the object and creates
// the upload in the store with that header as its metadata. The upload id
// s3seal hands out carries what every later part needs: the store's upload
// id, the header, and a tag binding the two (ObjectKey.UploadTag). Any
// replica, after a restart too, can therefore encrypt any part without
// shared state; parts go up in parallel, in any order, and may be retried.
// ListMultipartUploads shows the store's upload ids (the store keeps no
// header for them): they serve AbortMultipartUpload and ListParts, while
// UploadPart and CompleteMultipartUpload need the id CreateMultipartUpload
// returned.

// uploadIDPrefix marks upload ids minted by s3seal.
const uploadIDPrefix = "S3S1"

// uploadB64 is strict: an id whose last character carries stray bits is
// refused, so every upload has exactly one id.
var uploadB64 = base64.RawURLEncoding.Strict()

// encodeUploadID builds the upload id s3seal hands out.
func encodeUploadID(storeID string, hdr envelope.Header, tag []byte) string {
	b := make([]byte, 0, 4+len(storeID)+len(hdr)+len(tag))
	b = binary.BigEndian.AppendUint16(b, uint16(len(storeID)))
	b = append(b, storeID...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(hdr)))
	b = append(b, hdr...)
	b = append(b, tag...)
	return uploadIDPrefix + uploadB64.EncodeToString(b)
}

// uploadRef is a decoded s3seal upload id.
type uploadRef struct {
	storeID string
	hdr     envelope.Header
	tag     []byte
}

var errUploadID = s3err.New("NoSuchUpload", http.StatusNotFound,
	"The specified upload does not exist, or was not created through s3seal.")

// decodeUploadID parses an upload id. Ids not minted by s3seal (the store's
// own, as ListMultipartUploads shows them) return a ref with only storeID.
func decodeUploadID(id string) (*uploadRef, error) {
	raw, ok := strings.CutPrefix(id, uploadIDPrefix)
	if !ok {
		return &uploadRef{storeID: id}, nil
	}
	b, err := uploadB64.DecodeString(raw)
	if err != nil || len(b) < 2 {
		return nil, errUploadID
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n+2 {
		return nil, errUploadID
	}
	ref := &uploadRef{storeID: string(b[2 : 2+n])}
	b = b[2+n:]
	m := int(binary.BigEndian.Uint16(b))
	if len(b) != 2+m+32 {
		return nil, errUploadID
	}
	hdr, err := envelope.ParseBinary(b[2 : 2+m])
	if err != nil || !hdr.Multipart() {
		return nil, errUploadID
	}
	ref.hdr, ref.tag = hdr, b[2+m:]
	return ref, nil
}

// openUpload decodes the request's upload id and unseals the upload's
// object key, checking the id's tag.
func (h *Handler) openUpload(rt *Runtime, q *request) (*uploadRef, *envelope.ObjectKey, error) {
	ref, err := decodeUploadID(q.query.Get("uploadId"))
	if err != nil {
		return nil, nil, err
	}
	if ref.hdr == nil {
		// The store's id (from ListMultipartUploads): look up the id
		// s3seal handed out for it.
		id, err := h.loadUploadState(q.r.Context(), q, ref.storeID)
		if err != nil {
			return nil, nil, err
		}
		if id == "" {
			return nil, nil, errUploadID
		}
		full, err := decodeUploadID(id)
		if err != nil || full.hdr == nil || full.storeID != ref.storeID {
			return nil, nil, errUploadID
		}
		ref = full
	}
	ok, err := envelope.Open(q.r.Context(), rt.Keys, ref.hdr, q.req.Bucket, q.req.Key)
	h.auditKey(q, "unseal", "", ref.hdr, err)
	if err != nil {
		if envelopeAuthFailure(err) {
			return nil, nil, errUploadID
		}
		return nil, nil, keyError(err)
	}
	if !hmac.Equal(ok.UploadTag(ref.storeID), ref.tag) {
		ok.Zero()
		return nil, nil, errUploadID
	}
	return ref, ok, nil
}

func envelopeAuthFailure(err error) bool {
	return errors.Is(err, envelope.ErrAuthentication)
}

// envAbort aborts the store's upload that an s3seal upload id names.
func (h *Handler) envAbort(w *responseWriter, _ *Runtime, q *request) {
	ref, err := decodeUploadID(q.query.Get("uploadId"))
	if err != nil {
		h.fail(w, q, err)
		return
	}
	h.forwardWith(w, q, q.auth, hooks{
		request: func(u *upstream.Request) error {
			u.Query.Set("uploadId", ref.storeID)
			return nil
		},
		response: func(w *responseWriter, q *request, resp *http.Response) bool {
			if resp.StatusCode < 300 || resp.StatusCode == http.StatusNotFound {
				h.dropUploadState(q.r.Context(), q, ref.storeID)
			}
			return false
		},
	})
}

// envCreateUpload creates the upload with a sealed header.
func (h *Handler) envCreateUpload(w *responseWriter, rt *Runtime, q *request) {
	user, err := userMetadata(q.r.Header)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	ok, hdr, err := h.sealNew(rt, q, envelope.Params{Multipart: true}, user)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	defer ok.Zero()
	ureq := h.baseRequest(q)
	dropPlaintextChecksums(ureq.Header)
	ureq.Header.Del("X-Amz-Checksum-Type")
	ureq.Header.Set(metaHeader, hdr.String())
	resp, sent := h.send(w, q, ureq, nil)
	if !sent {
		return
	}
	defer resp.Body.Close()
	doc, read := h.readOK(w, q, resp, 1<<20)
	if !read {
		return
	}
	var storeID, id string
	out, err := s3.RewriteXML(doc, []string{"InitiateMultipartUploadResult"}, func(e *s3.Entry) error {
		storeID = e.Fields["UploadId"]
		if storeID == "" {
			return errors.New("no UploadId")
		}
		id = encodeUploadID(storeID, hdr, ok.UploadTag(storeID))
		e.Fields["UploadId"] = id
		return nil
	})
	if err != nil {
		h.fail(w, q, s3err.InternalError.WithMessage("The store's CreateMultipartUpload answer could not be read.").WithCause(err))
		return
	}
	h.saveUploadState(q.r.Context(), q, storeID, id)
	copyEnvelopeHeaders(w.Header(), resp.Header)
	if v := q.r.Header.Get("X-Amz-Checksum-Algorithm"); v != "" {
		w.Header().Set("X-Amz-Checksum-Algorithm", v)
	}
	writeDocument(w, out)
}

// maxPartCipher is S3's largest part.
const maxPartCipher = 5 << 30

// partNumber parses a part number 1..10000.
func partNumber(v string) (uint32, error) {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n < 1 || n > 10000 {
		return 0, s3err.InvalidArgument.WithMessage("Part number must be an integer between 1 and 10000, inclusive.")
	}
	return uint32(n), nil
}

// envUploadPart encrypts a part as segment n of the upload.
func (h *Handler) envUploadPart(w *responseWriter, rt *Runtime, q *request) {
	n, err := partNumber(q.query.Get("partNumber"))
	if err != nil {
		h.fail(w, q, err)
		return
	}
	ref, ok, err := h.openUpload(rt, q)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	defer ok.Zero()
	auth := q.auth
	size := auth.ContentLength
	if size < 0 {
		h.fail(w, q, s3err.MissingContentLength)
		return
	}
	cipher, err := stream.CiphertextSize(size)
	if err != nil || cipher > maxPartCipher {
		h.fail(w, q, s3err.EntityTooLarge.WithMessage("A part of %d bytes exceeds the 5 GiB part limit once encrypted.", size))
		return
	}
	upfront, late, err := clientChecksums(q)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	src, enc, err := h.encryptClientBody(w, q, ok.SegmentKey(n), late)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	ureq := h.baseRequest(q)
	ureq.Query.Set("uploadId", ref.storeID)
	dropPlaintextChecksums(ureq.Header)
	ureq.Body, ureq.ContentLength = enc, cipher
	h.sendUpload(w, q, ureq, src, upfront)
}

// completeRequest is the body of CompleteMultipartUpload.
type completeRequest struct {
	XMLName xml.Name       `xml:"CompleteMultipartUpload"`
	Parts   []completePart `xml:"Part"`
}

type completePart struct {
	PartNumber        int    `xml:"PartNumber"`
	ETag              string `xml:"ETag"`
	ChecksumCRC32     string `xml:"ChecksumCRC32,omitempty"`
	ChecksumCRC32C    string `xml:"ChecksumCRC32C,omitempty"`
	ChecksumCRC64NVME string `xml:"ChecksumCRC64NVME,omitempty"`
	ChecksumSHA1      string `xml:"ChecksumSHA1,omitempty"`
	ChecksumSHA256    string `xml:"ChecksumSHA256,omitempty"`
}

// storePart is what the store lists about a part.
type storePart struct {
	Number int
	ETag   string
	Size   int64
}

// listStoreParts lists every part of a store upload.
func (h *Handler) listStoreParts(ctx context.Context, bucket, key, storeID string) ([]storePart, error) {
	var parts []storePart
	marker := ""
	for page := 0; page < 20; page++ {
		query := url.Values{"uploadId": {storeID}, "max-parts": {"1000"}}
		if marker != "" {
			query.Set("part-number-marker", marker)
		}
		resp, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodGet, Bucket: bucket, Key: key, Query: query, Header: http.Header{}})
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			e := upstreamError(resp)
			resp.Body.Close()
			return nil, e
		}
		var res struct {
			IsTruncated          bool   `xml:"IsTruncated"`
			NextPartNumberMarker string `xml:"NextPartNumberMarker"`
			Parts                []struct {
				PartNumber int    `xml:"PartNumber"`
				ETag       string `xml:"ETag"`
				Size       int64  `xml:"Size"`
			} `xml:"Part"`
		}
		err = xml.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&res)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("proxy: reading the store's part list: %w", err)
		}
		for _, p := range res.Parts {
			parts = append(parts, storePart{Number: p.PartNumber, ETag: p.ETag, Size: p.Size})
		}
		if !res.IsTruncated || res.NextPartNumberMarker == "" || res.NextPartNumberMarker == marker {
			return parts, nil
		}
		marker = res.NextPartNumberMarker
	}
	return nil, errors.New("proxy: the store's part list does not end")
}

// envComplete completes an upload after checking that its parts are
// numbered 1..N (FORMAT.md: readers number segments in order) and that the
// store holds exactly those parts with the ETags the client names.
func (h *Handler) envComplete(w *responseWriter, rt *Runtime, q *request) {
	ctx := q.r.Context()
	ref, ok, err := h.openUpload(rt, q)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	defer ok.Zero()
	// The handler read and checked the document (readDocument).
	parts := q.req.Complete
	req := completeRequest{Parts: make([]completePart, len(parts))}
	for i, p := range parts {
		req.Parts[i] = completePart{PartNumber: p.PartNumber, ETag: p.ETag}
	}
	for i, p := range req.Parts {
		if p.PartNumber != i+1 {
			h.fail(w, q, s3err.New("InvalidPartOrder", http.StatusBadRequest,
				fmt.Sprintf("s3seal needs the parts of an encrypted upload numbered 1, 2, 3, ... without gaps, in order; part %d is listed at position %d.", p.PartNumber, i+1)))
			return
		}
	}
	stored, err := h.listStoreParts(ctx, q.req.Bucket, q.req.Key, ref.storeID)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	byNumber := map[int]storePart{}
	for _, p := range stored {
		byNumber[p.Number] = p
	}
	sizes := make([]int64, len(req.Parts))
	out := completeRequest{}
	for i, p := range req.Parts {
		sp, found := byNumber[p.PartNumber]
		if !found || strings.Trim(sp.ETag, `"`) != strings.Trim(storeETag(p.ETag), `"`) {
			h.fail(w, q, s3err.New("InvalidPart", http.StatusBadRequest,
				fmt.Sprintf("One or more of the specified parts could not be found; part %d is missing or its ETag does not match.", p.PartNumber)))
			return
		}
		sizes[i] = sp.Size
		out.Parts = append(out.Parts, completePart{PartNumber: p.PartNumber, ETag: sp.ETag})
	}
	regular := regularParts(sizes)
	xb, _ := xml.Marshal(out)
	ureq := h.baseRequest(q)
	ureq.Query.Set("uploadId", ref.storeID)
	dropPlaintextChecksums(ureq.Header)
	ureq.Header.Del("X-Amz-Checksum-Type")
	ureq.Header.Del("X-Amz-Mp-Object-Size")
	mapConditionalHeaders(ureq.Header)
	ureq.Body, ureq.ContentLength = strings.NewReader(string(xb)), int64(len(xb))
	resp, sent := h.send(w, q, ureq, nil)
	if !sent {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		// The upload is gone from the store (an error inside a 200 is
		// retried by the client with the same upload, which the store
		// then no longer knows either).
		defer h.dropUploadState(context.WithoutCancel(ctx), q, ref.storeID)
	}
	if regular || resp.StatusCode != http.StatusOK {
		h.relayComplete(w, q, resp)
		return
	}
	h.relayout(w, rt, q, resp, ok, sizes)
}

// regularParts reports whether a multipart object's stored part sizes keep
// its plaintext size and ranges arithmetic: all parts but the last the same
// size, holding whole 64 KiB chunks.
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

// relayComplete relays a Complete answer with the client's ETag. S3 may
// answer 200 with an error document after keeping the connection alive.
func (h *Handler) relayComplete(w *responseWriter, q *request, resp *http.Response) {
	doc, ok := h.readOK(w, q, resp, 1<<20)
	if !ok {
		return
	}
	if code, _, _ := parseErrorBody([]byte(strings.TrimSpace(string(doc)))); code != "" {
		resp.Body = io.NopCloser(strings.NewReader(string(doc)))
		resp.StatusCode = http.StatusInternalServerError
		h.relay(w, q, resp)
		return
	}
	out, err := s3.RewriteXML(doc, []string{"CompleteMultipartUploadResult"}, func(e *s3.Entry) error {
		if v, ok := e.Fields["ETag"]; ok {
			e.Fields["ETag"] = clientETag(v)
		}
		if _, ok := e.Fields["Location"]; ok {
			e.Fields["Location"] = clientLocation(q)
		}
		return nil
	})
	if err != nil {
		h.fail(w, q, s3err.InternalError.WithCause(err))
		return
	}
	copyEnvelopeHeaders(w.Header(), resp.Header)
	writeDocument(w, out)
}

// envListParts lists parts with plaintext sizes and client ETags.
func (h *Handler) envListParts(w *responseWriter, q *request) {
	clientID := q.query.Get("uploadId")
	ref, err := decodeUploadID(clientID)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	ureq := h.baseRequest(q)
	ureq.Query.Set("uploadId", ref.storeID)
	resp, sent := h.send(w, q, ureq, nil)
	if !sent {
		return
	}
	defer resp.Body.Close()
	doc, ok := h.readOK(w, q, resp, 32<<20)
	if !ok {
		return
	}
	out, err := s3.RewriteXML(doc, []string{"ListPartsResult", "Part"}, func(e *s3.Entry) error {
		if e.Name == "ListPartsResult" {
			if _, ok := e.Fields["UploadId"]; ok {
				e.Fields["UploadId"] = clientID
			}
			return nil
		}
		if v, ok := e.Fields["Size"]; ok {
			if c, err := strconv.ParseInt(v, 10, 64); err == nil {
				if p, err := stream.PlaintextSize(c); err == nil {
					e.Fields["Size"] = strconv.FormatInt(p, 10)
				}
			}
		}
		if v, ok := e.Fields["ETag"]; ok {
			e.Fields["ETag"] = clientETag(v)
		}
		if _, ok := e.Fields["Location"]; ok {
			e.Fields["Location"] = clientLocation(q)
		}
		return nil
	})
	if err != nil {
		h.fail(w, q, s3err.InternalError.WithCause(err))
		return
	}
	copyEnvelopeHeaders(w.Header(), resp.Header)
	writeDocument(w, out)
}

// envUploadPartCopy fills part n from a byte range of another object: the
// source plaintext is read (decrypted when it is an envelope object) and
// encrypted under this upload's key, streamed through s3seal. A
// server-side copy cannot serve here: the upload has its own object key.
func (h *Handler) envUploadPartCopy(w *responseWriter, rt *Runtime, q *request) {
	n, err := partNumber(q.query.Get("partNumber"))
	if err != nil {
		h.fail(w, q, err)
		return
	}
	ref, ok, err := h.openUpload(rt, q)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	defer ok.Zero()
	src, sh, err := h.headCopySource(q)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	rd, length, err := h.openPlaintext(q, rt, src, sh, q.r.Header.Get("X-Amz-Copy-Source-Range"))
	if err != nil {
		h.fail(w, q, err)
		return
	}
	defer rd.Close()
	cipher, err := stream.CiphertextSize(length)
	if err != nil || cipher > maxPartCipher {
		h.fail(w, q, s3err.EntityTooLarge)
		return
	}
	enc, err := stream.NewEncryptReader(ok.SegmentKey(n), rd, nil)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	ureq := h.baseRequest(q)
	ureq.Method = http.MethodPut
	ureq.Query.Set("uploadId", ref.storeID)
	for k := range ureq.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-amz-copy-source") {
			delete(ureq.Header, k)
		}
	}
	dropPlaintextChecksums(ureq.Header)
	ureq.Body, ureq.ContentLength = enc, cipher
	resp, sent := h.send(w, q, ureq, nil)
	if !sent {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		h.relay(w, q, resp)
		return
	}
	h.writeResult(w, "CopyPartResult", clientETag(resp.Header.Get("Etag")), "")
}

// openPlaintext opens a plaintext byte range ("bytes=a-b", or "" for all)
// of a source object whose HEAD is sh, decrypting it when it is an envelope
// object, pinned to that exact object version.
func (h *Handler) openPlaintext(q *request, rt *Runtime, src copySource, sh *http.Response, rangeSpec string) (io.ReadCloser, int64, error) {
	ctx := q.r.Context()
	etag := sh.Header.Get("Etag")
	query := url.Values{}
	if src.VersionID != "" {
		query.Set("versionId", src.VersionID)
	}
	sq := &request{id: q.id, r: q.r, req: &s3.Request{Op: q.req.Op, Info: q.req.Info, Bucket: src.Bucket, Key: src.Key, Query: query}, query: query, identity: q.identity}
	var s *sealed
	var x *s3ec.Object
	size := sh.ContentLength
	if sh.Header.Get(metaHeader) == "" && s3ec.Is(s3ecMeta(sh.Header)) {
		var err error
		if x, size, err = h.s3ecSource(sq, rt, src, sh); err != nil {
			return nil, 0, err
		}
	} else if sr := q.dec.SourceRule; sh.Header.Get(metaHeader) == "" && sr != nil && sr.Mode == policy.Envelope && sr.AllowPlaintextReads && !sr.PlaintextAllowed(lastModified(sh.Header)) {
		return nil, 0, errPlaintextTooNew(sr)
	} else if sh.Header.Get(metaHeader) != "" {
		var err error
		s, err = h.openSealed(ctx, rt, sq, sh.Header, sh.ContentLength)
		if err != nil {
			return nil, 0, err
		}
		if size, err = h.plainSizeOf(ctx, src.Bucket, src.Key, src.VersionID, s); err != nil {
			s.key.Zero()
			return nil, 0, err
		}
	}
	a, b := int64(0), size-1
	if rangeSpec != "" {
		rg := parseRange(rangeSpec)
		if rg == nil || rg.suffix > 0 || rg.end < 0 {
			return nil, 0, s3err.InvalidArgument.WithMessage("The x-amz-copy-source-range value must be of the form bytes=first-last.")
		}
		var ok bool
		if a, b, ok = rg.resolve(size); !ok || rg.end >= size {
			return nil, 0, s3err.InvalidRange.WithMessage("The specified copy source range is not within the source object (size %d).", size)
		}
	}
	length := b - a + 1
	if size == 0 {
		length = 0
	}
	hdr := http.Header{"If-Match": {etag}}
	if x != nil {
		return h.openS3EC(sq, rt, sh, x, a, length)
	}
	if s == nil {
		if length > 0 {
			hdr.Set("Range", fmt.Sprintf("bytes=%d-%d", a, b))
		}
		resp, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodGet, Bucket: src.Bucket, Key: src.Key, Query: query, Header: hdr})
		if err != nil {
			return nil, 0, err
		}
		if resp.StatusCode/100 != 2 {
			defer resp.Body.Close()
			return nil, 0, upstreamError(resp)
		}
		return readCloser{io.LimitReader(resp.Body, length), resp.Body}, length, nil
	}
	defer s.key.Zero()
	l, err := h.layoutOf(ctx, src.Bucket, src.Key, src.VersionID, s)
	if err != nil {
		return nil, 0, err
	}
	if length == 0 {
		return io.NopCloser(strings.NewReader("")), 0, nil
	}
	plan, err := l.Range(a, length)
	if err != nil {
		return nil, 0, errObjectAuth.WithCause(err)
	}
	hdr.Set("Range", fmt.Sprintf("bytes=%d-%d", plan.CipherOffset, plan.CipherOffset+plan.CipherLength-1))
	resp, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodGet, Bucket: src.Bucket, Key: src.Key, Query: query, Header: hdr})
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, 0, upstreamError(resp)
	}
	keyCopy := make(map[uint32][]byte, plan.LastSegment-plan.FirstSegment+1)
	for i := plan.FirstSegment; i <= plan.LastSegment; i++ {
		num := l.Segment(i).Number
		keyCopy[num] = s.key.SegmentKey(num)
	}
	rr, err := stream.NewRangeReader(func(n uint32) []byte { return keyCopy[n] }, l, plan, io.LimitReader(resp.Body, plan.CipherLength))
	if err != nil {
		resp.Body.Close()
		return nil, 0, err
	}
	return readCloser{authLogged{rr, h, sq}, resp.Body}, length, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// authLogged logs an authentication failure of a source read.
type authLogged struct {
	r io.Reader
	h *Handler
	q *request
}

func (a authLogged) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if err != nil && err != io.EOF {
		a.h.logAuthFailure(a.q, err)
	}
	return n, err
}

// copyMultipartSealed copies a multipart envelope object server-side, part
// by part (UploadPartCopy of each stored part's byte range), into an upload
// carrying the resealed header: the object key is unchanged, so the parts
// stay valid, and the part structure (and so the layout) is preserved.
func (h *Handler) copyMultipartSealed(w *responseWriter, q *request, src copySource, sh *http.Response, nh envelope.Header, user map[string]string, replace bool) {
	ctx := q.r.Context()
	etag := sh.Header.Get("Etag")
	s := &sealed{hdr: nh, etag: etag, cipherSize: sh.ContentLength}
	l, err := h.layoutOf(ctx, src.Bucket, src.Key, src.VersionID, s)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	create := http.Header{metaHeader: {nh.String()}}
	for k, v := range user {
		create.Set("X-Amz-Meta-"+k, v)
	}
	from := q.r.Header
	if !replace {
		from = sh.Header
	}
	for _, name := range copiedHeaders {
		if v := from.Get(name); v != "" {
			create.Set(name, v)
		}
	}
	for k, v := range q.r.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-amz-") && !strings.HasPrefix(lk, "x-amz-copy-source") && !strings.HasPrefix(lk, "x-amz-meta-") &&
			!strings.HasPrefix(lk, "x-amz-checksum") && lk != "x-amz-metadata-directive" && lk != "x-amz-content-sha256" && lk != "x-amz-date" &&
			lk != "x-amz-security-token" && lk != "x-amz-tagging-directive" && lk != "x-amz-sdk-checksum-algorithm" {
			create[k] = v
		}
	}
	up, err := h.createStoreUpload(ctx, q.req.Bucket, q.req.Key, create)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	// The destination's conditions (the client's, and If-None-Match: *
	// for a client that may only create objects) apply when the copy
	// completes.
	dest := upstreamHeader(q)
	mapConditionalHeaders(dest)
	up.conditions = http.Header{}
	for _, name := range []string{"If-Match", "If-None-Match"} {
		if v := dest.Get(name); v != "" {
			up.conditions.Set(name, v)
		}
	}
	for i := 0; i < l.Segments(); i++ {
		seg := l.Segment(i)
		if err := up.copyPart(seg.Number, src, etag, seg.CipherOffset, seg.CipherSize); err != nil {
			up.abort()
			h.fail(w, q, err)
			return
		}
	}
	newETag, version, err := up.complete()
	if err != nil {
		h.fail(w, q, err)
		return
	}
	if version != "" {
		w.Header().Set("X-Amz-Version-Id", version)
	}
	h.writeResult(w, "CopyObjectResult", clientETag(newETag), "")
}

// relayout rewrites a just-completed multipart object whose parts are not
// of one size holding whole 64 KiB chunks (say 5,000,001-byte parts): such
// a layout would make plaintext sizes in listings wrong, since a listing
// shows only the stored size and the part count. s3seal reads the object
// back, decrypting it with its real layout, and writes it again as a new
// upload of regular parts (new object key), so that every stored multipart
// object has arithmetic sizes. The client's Complete waits; as S3 does for
// long completions, s3seal sends the 200 status early and keeps the
// connection alive with whitespace, and reports a late failure as an error
// document. The irregular version is deleted if the bucket keeps versions.
func (h *Handler) relayout(w *responseWriter, rt *Runtime, q *request, resp *http.Response, ok *envelope.ObjectKey, sizes []int64) {
	ctx := q.r.Context()
	doc, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		h.fail(w, q, err)
		return
	}
	var done struct {
		ETag string `xml:"ETag"`
	}
	if code, _, _ := parseErrorBody([]byte(strings.TrimSpace(string(doc)))); code != "" || xml.Unmarshal(doc, &done) != nil || done.ETag == "" {
		resp.Body = io.NopCloser(strings.NewReader(string(doc)))
		h.relayComplete(w, q, resp)
		return
	}
	oldVersion := resp.Header.Get("X-Amz-Version-Id")
	ka := startKeepAlive(w, 10*time.Second)
	newETag, newVersion, err := h.rewriteRegular(ctx, rt, q, ok, sizes, done.ETag)
	if err != nil {
		h.log.Error("re-laying out an irregular multipart object failed; the object stays readable with its part layout",
			zap.String("request_id", q.id), zap.String("bucket", q.req.Bucket), zap.String("key", q.req.Key), zap.Error(err))
		if !ka.stop() {
			h.fail(w, q, err)
			return
		}
		e := toS3Error(err)
		_, _ = w.Write(s3err.Marshal(e, errorResource(q.r), q.id))
		return
	}
	if oldVersion != "" && oldVersion != "null" {
		if dr, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodDelete, Bucket: q.req.Bucket, Key: q.req.Key,
			Query: url.Values{"versionId": {oldVersion}}, Header: http.Header{}}); err == nil {
			drainClose(dr.Body)
		}
	}
	res := struct {
		XMLName  xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CompleteMultipartUploadResult"`
		Location string   `xml:"Location"`
		Bucket   string   `xml:"Bucket"`
		Key      string   `xml:"Key"`
		ETag     string   `xml:"ETag"`
	}{Location: clientLocation(q), Bucket: q.req.Bucket, Key: q.req.Key, ETag: clientETag(newETag)}
	b, _ := xml.Marshal(res)
	if ka.stop() {
		_, _ = w.Write(b)
		return
	}
	if newVersion != "" {
		w.Header().Set("X-Amz-Version-Id", newVersion)
	}
	b = append([]byte(xml.Header), b...)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// regularPartSize is the part size s3seal writes re-laid-out objects with.
func regularPartSize(total int64) int64 {
	p := int64(8 << 20)
	for (total+p-1)/p > 9000 {
		p *= 2
	}
	return p
}

// rewriteRegular streams the completed object at q's key (layout from
// sizes, key ok, store ETag etag) into a new regular multipart upload of the
// same key and returns the new ETag and version.
func (h *Handler) rewriteRegular(ctx context.Context, rt *Runtime, q *request, ok *envelope.ObjectKey, sizes []int64, etag string) (string, string, error) {
	l, err := stream.MultipartLayout(sizes)
	if err != nil {
		return "", "", err
	}
	get, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodGet, Bucket: q.req.Bucket, Key: q.req.Key, Query: url.Values{}, Header: http.Header{"If-Match": {etag}}})
	if err != nil {
		return "", "", err
	}
	defer get.Body.Close()
	if get.StatusCode != http.StatusOK {
		return "", "", upstreamError(get)
	}
	dec, err := stream.NewMultipartDecryptReader(ok.SegmentKey, get.Body)
	if err != nil {
		return "", "", err
	}
	nk, nh, err := envelope.New(ctx, rt.Keys, envelope.Params{Bucket: q.req.Bucket, Key: q.req.Key, Multipart: true})
	h.auditKey(q, "seal", rt.Keys.Name(), nh, err)
	if err != nil {
		return "", "", err
	}
	defer nk.Zero()
	create := http.Header{metaHeader: {nh.String()}}
	for k, v := range get.Header {
		lk := strings.ToLower(k)
		switch {
		case lk == strings.ToLower(metaHeader):
		case strings.HasPrefix(lk, "x-amz-meta-"), lk == "content-type", lk == "content-encoding", lk == "content-disposition",
			lk == "content-language", lk == "cache-control", lk == "expires", lk == "x-amz-storage-class",
			lk == "x-amz-website-redirect-location":
			create[k] = v
		}
	}
	if n := get.Header.Get("X-Amz-Tagging-Count"); n != "" && n != "0" {
		if tags, err := h.objectTagging(ctx, q.req.Bucket, q.req.Key); err == nil && tags != "" {
			create.Set("X-Amz-Tagging", tags)
		}
	}
	up, err := h.createStoreUpload(ctx, q.req.Bucket, q.req.Key, create)
	if err != nil {
		return "", "", err
	}
	total := l.PlaintextSize()
	ps := regularPartSize(total)
	for n, off := uint32(1), int64(0); off < total || n == 1; n++ {
		size := min(ps, total-off)
		cipher, _ := stream.CiphertextSize(size)
		enc, err := stream.NewEncryptReader(nk.SegmentKey(n), io.LimitReader(dec, size), nil)
		if err == nil {
			err = up.put(n, enc, cipher)
		}
		if err != nil {
			up.abort()
			return "", "", err
		}
		off += size
	}
	if err := expectEOF(dec, make([]byte, 1)); err != nil {
		up.abort()
		return "", "", err
	}
	return up.complete()
}

// storeUpload is a multipart upload s3seal runs in the store itself (to
// copy or re-lay out objects).
type storeUpload struct {
	h           *Handler
	ctx         context.Context
	bucket, key string
	id          string
	parts       []completePart
	// conditions are sent with CompleteMultipartUpload (If-Match,
	// If-None-Match); nil for none.
	conditions http.Header
}

// createStoreUpload creates a multipart upload in the store with the given
// headers.
func (h *Handler) createStoreUpload(ctx context.Context, bucket, key string, hdr http.Header) (*storeUpload, error) {
	resp, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodPost, Bucket: bucket, Key: key, Query: url.Values{"uploads": {""}}, Header: hdr})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, upstreamError(resp)
	}
	var init struct {
		UploadID string `xml:"UploadId"`
	}
	if err := xml.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&init); err != nil || init.UploadID == "" {
		return nil, s3err.InternalError.WithMessage("The store's CreateMultipartUpload answer could not be read.")
	}
	return &storeUpload{h: h, ctx: ctx, bucket: bucket, key: key, id: init.UploadID}, nil
}

func (u *storeUpload) do(method string, query url.Values, hdr http.Header, body io.Reader, n int64) (*http.Response, error) {
	query.Set("uploadId", u.id)
	return u.h.up.Do(u.ctx, &upstream.Request{Method: method, Bucket: u.bucket, Key: u.key, Query: query, Header: hdr, Body: body, ContentLength: n})
}

// put uploads part n.
func (u *storeUpload) put(n uint32, body io.Reader, size int64) error {
	resp, err := u.do(http.MethodPut, url.Values{"partNumber": {strconv.Itoa(int(n))}}, http.Header{}, body, size)
	if err != nil {
		return err
	}
	defer drainClose(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return upstreamError(resp)
	}
	u.parts = append(u.parts, completePart{PartNumber: int(n), ETag: resp.Header.Get("Etag")})
	return nil
}

// copyPart fills part n server-side with size bytes at off of src, pinned
// to the source's ETag.
func (u *storeUpload) copyPart(n uint32, src copySource, etag string, off, size int64) error {
	hdr := http.Header{
		"X-Amz-Copy-Source":          {src.CopySourceHeader()},
		"X-Amz-Copy-Source-If-Match": {etag},
		"X-Amz-Copy-Source-Range":    {fmt.Sprintf("bytes=%d-%d", off, off+size-1)},
	}
	resp, err := u.do(http.MethodPut, url.Values{"partNumber": {strconv.Itoa(int(n))}}, hdr, nil, 0)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var res copyResult
	if resp.StatusCode == http.StatusOK {
		err = xml.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&res)
	}
	if resp.StatusCode != http.StatusOK || err != nil || res.ETag == "" {
		return upstreamError(resp)
	}
	u.parts = append(u.parts, completePart{PartNumber: int(n), ETag: res.ETag})
	return nil
}

// complete completes the upload (aborting it on failure) and returns the
// object's ETag and version.
func (u *storeUpload) complete() (string, string, error) {
	sort.Slice(u.parts, func(i, j int) bool { return u.parts[i].PartNumber < u.parts[j].PartNumber })
	xb, _ := xml.Marshal(completeRequest{Parts: u.parts})
	hdr := http.Header{}
	for k, v := range u.conditions {
		hdr[k] = v
	}
	resp, err := u.do(http.MethodPost, url.Values{}, hdr, strings.NewReader(string(xb)), int64(len(xb)))
	if err != nil {
		u.abort()
		return "", "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var done struct {
		ETag string `xml:"ETag"`
	}
	if resp.StatusCode != http.StatusOK || xml.Unmarshal(body, &done) != nil || done.ETag == "" {
		u.abort()
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
		if resp.StatusCode == http.StatusOK {
			resp.StatusCode = http.StatusInternalServerError
		}
		return "", "", upstreamError(resp)
	}
	return done.ETag, resp.Header.Get("X-Amz-Version-Id"), nil
}

// abort abandons the upload, even when the request's context has ended.
func (u *storeUpload) abort() {
	resp, err := u.h.up.Do(context.WithoutCancel(u.ctx), &upstream.Request{Method: http.MethodDelete, Bucket: u.bucket, Key: u.key,
		Query: url.Values{"uploadId": {u.id}}, Header: http.Header{}})
	if err == nil {
		drainClose(resp.Body)
	}
}

// objectTagging returns an object's tags as a URL query string.
func (h *Handler) objectTagging(ctx context.Context, bucket, key string) (string, error) {
	resp, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodGet, Bucket: bucket, Key: key, Query: url.Values{"tagging": {""}}, Header: http.Header{}})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", upstreamError(resp)
	}
	var res struct {
		Tags []struct {
			Key   string `xml:"Key"`
			Value string `xml:"Value"`
		} `xml:"TagSet>Tag"`
	}
	if err := xml.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&res); err != nil {
		return "", err
	}
	v := url.Values{}
	for _, t := range res.Tags {
		v.Add(t.Key, t.Value)
	}
	return v.Encode(), nil
}

// keepAlive sends a 200 status and whitespace while a long operation runs,
// as S3 does during CompleteMultipartUpload.
type keepAlive struct {
	mu      sync.Mutex // protects started, stopped
	started bool
	stopped bool
	done    chan struct{}
	w       *responseWriter
}

func startKeepAlive(w *responseWriter, after time.Duration) *keepAlive {
	k := &keepAlive{done: make(chan struct{}), w: w}
	go func() {
		t := time.NewTimer(after)
		defer t.Stop()
		for {
			select {
			case <-k.done:
				return
			case <-t.C:
			}
			k.mu.Lock()
			if k.stopped {
				k.mu.Unlock()
				return
			}
			if !k.started {
				k.started = true
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write([]byte(xml.Header))
			} else {
				_, _ = w.Write([]byte(" "))
			}
			_ = http.NewResponseController(w.ResponseWriter).Flush()
			k.mu.Unlock()
			t.Reset(after)
		}
	}()
	return k
}

// stop ends the keep-alive and reports whether the status already went
// out (the rest of the answer is then the body).
func (k *keepAlive) stop() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stopped = true
	close(k.done)
	return k.started
}
