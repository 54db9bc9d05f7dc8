package proxy

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/crypto/stream"
	"github.com/s3seal/s3seal/proxy/s3"
	"github.com/s3seal/s3seal/proxy/s3err"
	"github.com/s3seal/s3seal/proxy/upstream"
)

// copySource is a copy source, parsed once by s3.ParseRequest.
type copySource = s3.Object

// copiedHeaders are the object properties CopyObject carries over under the
// COPY metadata directive.
var copiedHeaders = []string{"Content-Type", "Content-Encoding", "Content-Disposition", "Content-Language", "Cache-Control", "Expires"}

// headCopySource returns the request's copy source, parsed and checked
// against the client's buckets by ServeHTTP, and its headers (headSource).
func (h *Handler) headCopySource(rt *Runtime, q *request) (copySource, *http.Response, error) {
	if q.req.CopySource == nil {
		return copySource{}, nil, s3err.InvalidArgument.WithMessage("Copy Source must mention the source bucket and key: sourcebucket/sourcekey.")
	}
	sh, err := h.headSource(rt, q, *q.req.CopySource)
	return *q.req.CopySource, sh, err
}

// headSource fetches the source's headers, applying the client's
// copy-source conditions to it (mapped to the store's ETags, plaintext
// multipart ETags too).
func (h *Handler) headSource(rt *Runtime, q *request, src copySource) (*http.Response, error) {
	hdr := http.Header{}
	for from, to := range map[string]string{
		"X-Amz-Copy-Source-If-Match":            "If-Match",
		"X-Amz-Copy-Source-If-None-Match":       "If-None-Match",
		"X-Amz-Copy-Source-If-Modified-Since":   "If-Modified-Since",
		"X-Amz-Copy-Source-If-Unmodified-Since": "If-Unmodified-Since",
	} {
		if v := q.r.Header.Get(from); v != "" {
			hdr.Set(to, storeETagList(v))
		}
	}
	query := url.Values{}
	if src.VersionID != "" {
		query.Set("versionId", src.VersionID)
	}
	if _, _, err := h.resolvePlainETags(q.r.Context(), rt, q, src.Bucket, src.Key, src.VersionID, hdr); err != nil {
		return nil, err
	}
	resp, err := h.up.Do(q.r.Context(), &upstream.Request{Method: http.MethodHead, Bucket: src.Bucket, Key: src.Key, Query: query, Header: hdr})
	if err != nil {
		return nil, err
	}
	drainClose(resp.Body)
	switch {
	case resp.StatusCode == http.StatusNotModified, resp.StatusCode == http.StatusPreconditionFailed:
		return nil, s3err.PreconditionFailed
	case resp.StatusCode == http.StatusNotFound:
		return nil, h.missingSource(q, src)
	case resp.StatusCode/100 != 2:
		return nil, upstreamError(resp)
	}
	return resp, nil
}

// missingSource names what a copy source that the store answered 404 to
// (a HEAD, without a body) lacks, as S3 does: NoSuchBucket or NoSuchKey
// (NoSuchVersion for a version id).
func (h *Handler) missingSource(q *request, src copySource) error {
	resp, err := h.up.Do(q.r.Context(), &upstream.Request{Method: http.MethodHead, Bucket: src.Bucket, Header: http.Header{}})
	if err == nil {
		drainClose(resp.Body)
		if resp.StatusCode == http.StatusNotFound {
			return s3err.New("NoSuchBucket", http.StatusNotFound, "The specified bucket does not exist.").WithField("BucketName", src.Bucket)
		}
	}
	if src.VersionID != "" {
		return s3err.New("NoSuchVersion", http.StatusNotFound, "The specified version does not exist.").WithField("Key", src.Key).WithField("VersionId", src.VersionID)
	}
	return s3err.New("NoSuchKey", http.StatusNotFound, "The specified key does not exist.").WithField("Key", src.Key)
}

// envCopy serves CopyObject into an envelope key. An envelope source is
// copied server-side with its object key resealed for the new name (no data
// passes through s3seal), pinned to the exact source that was unsealed. A
// plaintext source is read, encrypted and written through s3seal.
func (h *Handler) envCopy(w *responseWriter, rt *Runtime, q *request) {
	ctx := q.r.Context()
	src, sh, err := h.headCopySource(rt, q)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	replace := strings.EqualFold(q.r.Header.Get("X-Amz-Metadata-Directive"), "REPLACE")
	if _, err := checkTaggingHeader(q.r.Header, maxTags); err != nil {
		h.fail(w, q, err)
		return
	}
	var user map[string]string
	if replace {
		if user, err = userMetadata(q.r.Header); err != nil {
			h.fail(w, q, err)
			return
		}
	} else {
		// As S3: the request's own metadata headers are held to the
		// limit although the directive COPY leaves them unused.
		if given, err := userMetadata(q.r.Header); err != nil {
			h.fail(w, q, err)
			return
		} else if err := checkMetaSize(given, nil); err != nil {
			h.fail(w, q, err)
			return
		}
		user = map[string]string{}
		for k, v := range sh.Header {
			if name, ok := cutFoldPrefix(k, "X-Amz-Meta-"); ok && !envelope.IsReservedMetadata(strings.ToLower(name)) && !isS3ECHeader(strings.ToLower(k)) {
				user[strings.ToLower(name)] = strings.Join(v, ",")
			}
		}
	}
	v := sh.Header.Get(metaHeader)
	if v == "" {
		h.copyReencrypt(w, rt, q, src, sh, user, replace)
		return
	}
	if writeOnly(rt) {
		h.fail(w, q, errWriteOnly)
		return
	}
	sq := &request{id: q.id, r: q.r, req: &s3.Request{Op: q.req.Op, Bucket: src.Bucket, Key: src.Key}}
	eh, err := envelope.Parse(v)
	if err != nil {
		h.logAuthFailure(sq, err)
		h.fail(w, q, errObjectAuth.WithCause(err))
		return
	}
	var ko []byte
	if eh.KeyObject() {
		if ko, err = h.keyObject(ctx, src.Bucket, [envelope.WrappedKeyRefSize]byte(eh.WrappedKey())); err != nil {
			h.fail(w, q, keyError(err))
			return
		}
	}
	nh, err := envelope.CopyWithKeyObject(ctx, rt.Keys, eh, src.Bucket, src.Key, q.req.Bucket, q.req.Key, nil, ko)
	h.auditKey(q, "reseal", "", eh, err)
	if err != nil {
		h.fail(w, q, keyError(err))
		return
	}
	if err := checkMetaSize(user, nh); err != nil {
		h.fail(w, q, err)
		return
	}
	if err := h.copyKeyObject(ctx, src.Bucket, q.req.Bucket, nh); err != nil {
		h.fail(w, q, err)
		return
	}
	// A version 1 object stays version 1 (its ciphertext is copied as
	// stored): listings must know, where the bucket holds version 2.
	var recheck bool
	if nh.Version() == envelope.Version {
		if recheck, err = h.beforeVersion1Write(ctx, q.req.Bucket); err != nil {
			h.fail(w, q, err)
			return
		}
		if recheck {
			defer h.afterVersion1Write(context.WithoutCancel(ctx), q, q.req.Bucket)
		}
	}
	if eh.Multipart() {
		h.copyMultipartSealed(w, rt, q, src, sh, eh, nh, user, replace)
		return
	}
	ureq := h.baseRequest(q)
	dropPlaintextChecksums(ureq.Header)
	mapConditionalHeaders(ureq.Header)
	for k := range ureq.Header {
		if _, ok := cutFoldPrefix(k, "X-Amz-Meta-"); ok || strings.HasPrefix(strings.ToLower(k), "x-amz-copy-source-if") {
			delete(ureq.Header, k)
		}
	}
	ureq.Header.Set("X-Amz-Copy-Source", src.CopySourceHeader())
	// Pin the copy to the source that was unsealed, so a concurrent
	// overwrite cannot get this metadata.
	ureq.Header.Set("X-Amz-Copy-Source-If-Match", sh.Header.Get("Etag"))
	ureq.Header.Set("X-Amz-Metadata-Directive", "REPLACE")
	for k, v := range user {
		ureq.Header.Set("X-Amz-Meta-"+k, v)
	}
	ureq.Header.Set(metaHeader, nh.String())
	if !replace {
		for _, name := range copiedHeaders {
			ureq.Header.Del(name)
			if v := sh.Header.Get(name); v != "" {
				ureq.Header.Set(name, v)
			}
		}
	}
	resp, ok := h.send(w, q, ureq, nil)
	if !ok {
		return
	}
	defer resp.Body.Close()
	h.relayCopyResult(w, q, resp)
}

// checkMetaSize applies S3's 2 KB user-metadata limit to the client's
// metadata plus s3seal's.
func checkMetaSize(user map[string]string, hdr envelope.Header) error {
	if err := envelope.CheckMetadataSize(user, hdr); err != nil {
		var tl *envelope.MetadataTooLargeError
		if errors.As(err, &tl) {
			// S3's message; what is left for the client beside s3seal's
			// field in MaxSizeAllowed, the full explanation in the log.
			return s3err.New("MetadataTooLarge", http.StatusBadRequest, "Your metadata headers exceed the maximum allowed metadata size").
				WithField("Size", strconv.Itoa(tl.UserBytes)).WithField("MaxSizeAllowed", strconv.Itoa(tl.Limit-tl.S3sealBytes)).WithCause(tl)
		}
		return err
	}
	return nil
}

// copyResult is the body of CopyObject and UploadPartCopy answers.
type copyResult struct {
	XMLName      xml.Name
	ETag         string `xml:"ETag"`
	LastModified string `xml:"LastModified"`
}

// relayCopyResult relays a store copy answer with the client's ETag and
// without checksums of the ciphertext.
func (h *Handler) relayCopyResult(w *responseWriter, q *request, resp *http.Response) {
	body, ok := h.readOK(w, q, resp, 1<<20)
	if !ok {
		return
	}
	var res copyResult
	if err := xml.Unmarshal(body, &res); err != nil || res.ETag == "" {
		// S3 reports late copy failures as an error document in a 200.
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
		resp.StatusCode = http.StatusInternalServerError
		h.relay(w, q, resp)
		return
	}
	copyEnvelopeHeaders(w.Header(), resp.Header)
	h.writeResult(w, res.XMLName.Local, clientETag(res.ETag), res.LastModified)
}

// copyReencrypt copies a plaintext source (or one the Amazon S3 Encryption
// Client wrote, decrypted) into an envelope key by reading it through
// s3seal and encrypting it, pinned to the source's ETag.
func (h *Handler) copyReencrypt(w *responseWriter, rt *Runtime, q *request, src copySource, sh *http.Response, user map[string]string, replace bool) {
	if sh.ContentLength > maxEnvelopePut {
		h.fail(w, q, s3err.NotImplemented.WithMessage("Copying a plaintext object larger than %d bytes into an envelope key is not supported; download and upload it instead.", maxEnvelopePut))
		return
	}
	body, n, err := h.openPlaintext(q, rt, src, sh, "")
	if err != nil {
		h.fail(w, q, err)
		return
	}
	defer body.Close()
	ok, hdr, err := h.sealNew(rt, q, envelope.Params{Size: n}, user)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	defer ok.Zero()
	enc, err := ok.EncryptSegment(0, io.LimitReader(body, n), nil)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	size, _ := stream.CiphertextSizeV2(n)
	ureq := h.baseRequest(q)
	for k := range ureq.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-amz-copy-source") || strings.HasPrefix(lk, "x-amz-meta-") || lk == "x-amz-metadata-directive" {
			delete(ureq.Header, k)
		}
	}
	dropPlaintextChecksums(ureq.Header)
	mapConditionalHeaders(ureq.Header)
	for k, v := range user {
		ureq.Header.Set("X-Amz-Meta-"+k, v)
	}
	ureq.Header.Set(metaHeader, hdr.String())
	if !replace {
		for _, name := range copiedHeaders {
			ureq.Header.Del(name)
			if v := sh.Header.Get(name); v != "" {
				ureq.Header.Set(name, v)
			}
		}
	}
	ureq.Body, ureq.ContentLength, ureq.Trailer = enc, size, h.defaultChecksum
	resp, sent := h.send(w, q, ureq, nil)
	if !sent {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		h.relay(w, q, resp)
		return
	}
	if v := resp.Header.Get("X-Amz-Version-Id"); v != "" {
		w.Header().Set("X-Amz-Version-Id", v)
	}
	h.writeResult(w, "CopyObjectResult", clientETag(resp.Header.Get("Etag")), "")
}
