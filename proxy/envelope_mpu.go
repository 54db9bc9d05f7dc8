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

// Upload ids minted by s3seal: "S3S2" for a version 2 upload, "S3S1" for
// one started by an earlier release (version 1), which runs to its end.
// "S3SU" is a version 2 upload of a write-only gateway, whose id carries
// the object key sealed under the upload key (envelope_writeonly.go).
const (
	uploadIDPrefix   = "S3S2"
	uploadIDPrefixV1 = "S3S1"
	uploadIDPrefixUK = "S3SU"
)

// uploadB64 is strict: an id whose last character carries stray bits is
// refused, so every upload has exactly one id.
var uploadB64 = base64.RawURLEncoding.Strict()

// encodeUploadID builds the upload id s3seal hands out.
func encodeUploadID(storeID string, hdr envelope.Header, tag []byte) string {
	prefix := uploadIDPrefix
	if hdr.Version() == envelope.Version {
		prefix = uploadIDPrefixV1
	}
	return prefix + encodeUploadIDBody(storeID, hdr, tag)
}

// encodeUploadIDBody is the base64url part of an upload id; tail is the
// tag, or the object key sealed under the upload key.
func encodeUploadIDBody(storeID string, hdr envelope.Header, tail []byte) string {
	b := make([]byte, 0, 4+len(storeID)+len(hdr)+len(tail))
	b = binary.BigEndian.AppendUint16(b, uint16(len(storeID)))
	b = append(b, storeID...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(hdr)))
	b = append(b, hdr...)
	b = append(b, tail...)
	return uploadB64.EncodeToString(b)
}

// uploadRef is a decoded s3seal upload id.
type uploadRef struct {
	storeID string
	hdr     envelope.Header
	tag     []byte
	// sealedOK is set instead of tag in an "S3SU" id: the object key
	// sealed under the upload key.
	sealedOK []byte
}

var errUploadID = s3err.New("NoSuchUpload", http.StatusNotFound,
	"The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")

// decodeUploadID parses an upload id. Ids not minted by s3seal (the store's
// own, as ListMultipartUploads shows them) return a ref with only storeID.
func decodeUploadID(id string) (*uploadRef, error) {
	var version uint8 = envelope.VersionV2
	tail := 32
	raw, ok := strings.CutPrefix(id, uploadIDPrefix)
	if !ok {
		if raw, ok = strings.CutPrefix(id, uploadIDPrefixUK); ok {
			tail = envelope.UploadSealedSize
		} else if raw, ok = strings.CutPrefix(id, uploadIDPrefixV1); ok {
			version = envelope.Version
		} else {
			return &uploadRef{storeID: id}, nil
		}
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
	if len(b) != 2+m+tail {
		return nil, errUploadID
	}
	hdr, err := envelope.ParseBinary(b[2 : 2+m])
	if err != nil || !hdr.Multipart() || hdr.Version() != version {
		return nil, errUploadID
	}
	ref.hdr = hdr
	if tail == envelope.UploadSealedSize {
		ref.sealedOK = b[2+m:]
	} else {
		ref.tag = b[2+m:]
	}
	return ref, nil
}

// resolveUpload decodes the request's upload id; a store's id (from
// ListMultipartUploads) is looked up in the state s3seal keeps. The ref
// has no header when the id is unknown and lookup is false.
func (h *Handler) resolveUpload(q *request, lookup bool) (*uploadRef, error) {
	ref, err := decodeUploadID(q.query.Get("uploadId"))
	if err != nil || ref.hdr != nil || !lookup {
		return ref, err
	}
	id, err := h.loadUploadState(q.r.Context(), q, ref.storeID)
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, errUploadID
	}
	full, err := decodeUploadID(id)
	if err != nil || full.hdr == nil || full.storeID != ref.storeID {
		return nil, errUploadID
	}
	return full, nil
}

// openUpload decodes the request's upload id and unseals the upload's
// object key, checking the id's tag.
func (h *Handler) openUpload(rt *Runtime, q *request) (*uploadRef, *envelope.ObjectKey, error) {
	ref, err := h.resolveUpload(q, true)
	if err != nil {
		return nil, nil, err
	}
	if ref.sealedOK != nil {
		ok, err := h.openUploadKeyID(rt, q, ref)
		return ref, ok, err
	}
	ok, err := h.openKey(q.r.Context(), rt, ref.hdr, q.req.Bucket, q.req.Key)
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
	// The part-set record takes one of the object's tags.
	if _, err := checkTaggingHeader(q.r.Header, maxTags-1); err != nil {
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
		if writeOnly(rt) {
			var err error
			if id, err = h.uploadKeyID(rt, q, ok, hdr, storeID); err != nil {
				return err
			}
		} else {
			id = encodeUploadID(storeID, hdr, ok.UploadTag(storeID))
		}
		e.Fields["UploadId"] = id
		return nil
	})
	if err != nil {
		h.fail(w, q, s3err.InternalError.WithMessage("The store's CreateMultipartUpload answer could not be read.").WithCause(err))
		return
	}
	if !writeOnly(rt) {
		// A write-only gateway's id holds the object key under the upload
		// key: it is never stored (FORMAT.md, section 8.4).
		h.saveUploadState(q.r.Context(), q, storeID, id)
	}
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
	cipher, err := segmentCipherSize(ok.Version(), size)
	if err != nil || cipher > maxPartCipher {
		h.fail(w, q, s3err.EntityTooLarge.WithMessage("A part of %d bytes exceeds the 5 GiB part limit once encrypted.", size))
		return
	}
	upfront, late, err := clientChecksums(q)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	src, enc, err := h.encryptClientBody(w, q, ok, n, late)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	ureq := h.baseRequest(q)
	ureq.Query.Set("uploadId", ref.storeID)
	dropPlaintextChecksums(ureq.Header)
	ureq.Body, ureq.ContentLength = enc, cipher
	h.sendUpload(w, q, ureq, src, upfront, partETagOf(enc, q.r.Header.Get("Content-Md5")))
}

// partETagOf returns how the ETag of a part encrypted by enc is shown: with
// its salt in version 2, and the plaintext MD5 the client sent (contentMD5,
// verified; "" for none) in front (FORMAT.md, section 8.4); as any ETag in
// version 1.
func partETagOf(enc segmentEncrypter, contentMD5 string) func(string) string {
	if e, ok := enc.(*stream.EncryptReaderV2); ok {
		return func(store string) string { return partETagWithMD5(contentMD5, store, e.Salt()) }
	}
	return clientETag
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

// envListParts lists parts with plaintext sizes and client ETags.
func (h *Handler) envListParts(w *responseWriter, q *request) {
	clientID := q.query.Get("uploadId")
	ref, err := h.resolveUpload(q, true)
	if err != nil && !errorIs(err, "NoSuchUpload") {
		h.fail(w, q, err)
		return
	}
	if err != nil {
		// No state for a store's id: the store answers for its upload,
		// and the parts are taken to be version 2.
		ref = &uploadRef{storeID: clientID}
	}
	plaintextSize := stream.PlaintextSizeV2
	if ref.hdr != nil && ref.hdr.Version() == envelope.Version {
		plaintextSize = stream.PlaintextSize
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
				if p, err := plaintextSize(c); err == nil {
					e.Fields["Size"] = strconv.FormatInt(p, 10)
				}
			}
		}
		if v, ok := e.Fields["ETag"]; ok {
			e.Fields["ETag"] = clientETag(v)
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
	src, sh, err := h.headCopySource(rt, q)
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
	cipher, err := segmentCipherSize(ok.Version(), length)
	if err != nil || cipher > maxPartCipher {
		h.fail(w, q, s3err.EntityTooLarge)
		return
	}
	// A new encryption of part n: in version 2 under a salt of its own,
	// whatever UploadPart sent for this part number before.
	enc, _, err := encryptSegment(ok, n, rd, nil)
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
	h.writeResult(w, "CopyPartResult", partETagOf(enc, "")(resp.Header.Get("Etag")), "")
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
		if writeOnly(rt) {
			return nil, 0, errWriteOnly
		}
		var err error
		s, err = h.openSealed(ctx, rt, sq, sh.Header, sh.ContentLength)
		if err != nil {
			return nil, 0, err
		}
		if size, err = h.plainSizeOf(ctx, sq, src.Bucket, src.Key, src.VersionID, s); err != nil {
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
	// The key stays until the reader is closed.
	keep := false
	defer func() {
		if !keep {
			s.key.Zero()
		}
	}()
	l, ps, err := h.objectLayout(ctx, sq, src.Bucket, src.Key, src.VersionID, s)
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
	whole := a == 0 && length == size
	if !whole {
		hdr.Set("Range", fmt.Sprintf("bytes=%d-%d", plan.CipherOffset, plan.CipherOffset+plan.CipherLength-1))
	}
	resp, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodGet, Bucket: src.Bucket, Key: src.Key, Query: query, Header: hdr})
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, 0, upstreamError(resp)
	}
	var rd io.Reader
	if whole {
		// A whole read checks everything the metadata and the record
		// fix, including which upload of each part was completed.
		rd, err = s.key.NewReader(s.hdr, ps, io.LimitReader(resp.Body, l.CiphertextSize()))
	} else {
		rd, err = s.key.NewRangeReader(l, plan, io.LimitReader(resp.Body, plan.CipherLength))
	}
	if err != nil {
		resp.Body.Close()
		return nil, 0, err
	}
	keep = true
	key := s.key
	return readCloser{authLogged{rd, h, sq}, closerFunc(func() error {
		key.Zero()
		return resp.Body.Close()
	})}, length, nil
}

// closerFunc is an io.Closer.
type closerFunc func() error

func (f closerFunc) Close() error { return f() }

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
// carrying the resealed header nh: the object key is unchanged, so the
// parts stay valid, and the part structure (and so the layout) is
// preserved. A version 2 copy gets the source's part set, verified and
// sealed again for its new name, as its record; its tags are the source's
// (tagging directive COPY) or the request's (REPLACE).
func (h *Handler) copyMultipartSealed(w *responseWriter, rt *Runtime, q *request, src copySource, sh *http.Response, eh, nh envelope.Header, user map[string]string, replace bool) {
	ctx := q.r.Context()
	etag := sh.Header.Get("Etag")
	query := url.Values{}
	if src.VersionID != "" {
		query.Set("versionId", src.VersionID)
	}
	sq := &request{id: q.id, r: q.r, req: &s3.Request{Op: q.req.Op, Info: q.req.Info, Bucket: src.Bucket, Key: src.Key, Query: query}, query: query, identity: q.identity}
	s := &sealed{hdr: eh, etag: etag, version: sh.Header.Get("X-Amz-Version-Id"), cipherSize: sh.ContentLength}
	if s.version == "" {
		s.version = src.VersionID
	}
	v2 := eh.Version() == envelope.VersionV2
	var tags []tag
	if v2 {
		ok, err := h.openKey(ctx, rt, eh, src.Bucket, src.Key)
		h.auditKey(sq, "unseal", "", eh, err)
		if err != nil {
			h.fail(w, q, keyError(err))
			return
		}
		defer ok.Zero()
		s.key = ok
		if strings.EqualFold(q.r.Header.Get("X-Amz-Tagging-Directive"), "REPLACE") {
			tv, err := checkTaggingHeader(q.r.Header, maxTags-1)
			if err != nil {
				h.fail(w, q, err)
				return
			}
			tags = tagsFromQuery(tv)
		} else if tags, err = h.getTags(ctx, src.Bucket, src.Key, s.version); err != nil {
			h.fail(w, q, err)
			return
		}
	}
	l, ps, err := h.objectLayout(ctx, sq, src.Bucket, src.Key, src.VersionID, s)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	var rec envelope.PartSetRecord
	if v2 {
		if rec, err = s.key.SealPartSet(nh, q.req.Bucket, q.req.Key, *ps); err != nil {
			h.fail(w, q, err)
			return
		}
		if _, err := withRecord(tags, rec, ""); err != nil {
			h.fail(w, q, err)
			return
		}
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
			lk != "x-amz-security-token" && lk != "x-amz-tagging-directive" && lk != "x-amz-sdk-checksum-algorithm" &&
			!(v2 && lk == "x-amz-tagging") {
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
	if v2 {
		if err := h.writeRecord(ctx, q.req.Bucket, q.req.Key, version, rec, "", tags, true); err != nil {
			h.log.Error("a multipart copy completed but its part-set record could not be written; the copy is refused until it is made again",
				zap.String("request_id", q.id), zap.String("bucket", q.req.Bucket), zap.String("key", q.req.Key), zap.String("error", describe(err)))
			h.fail(w, q, s3err.InternalError.WithMessage("The store completed the copy, but s3seal could not write its part-set record (tag %s), without which it does not serve the object; copy it again.", envelope.PartSetTag).WithCause(err))
			return
		}
	}
	if version != "" {
		w.Header().Set("X-Amz-Version-Id", version)
	}
	h.writeResult(w, "CopyObjectResult", clientETag(newETag), "")
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
