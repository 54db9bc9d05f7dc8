package proxy

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/crypto/s3ec"
	"github.com/s3seal/s3seal/crypto/stream"
	"github.com/s3seal/s3seal/proxy/policy"
	"github.com/s3seal/s3seal/proxy/s3"
	"github.com/s3seal/s3seal/proxy/s3err"
	"github.com/s3seal/s3seal/proxy/upstream"
)

// envelopeIn reports whether any rule for bucket is an envelope rule.
func envelopeIn(e *policy.Engine, bucket string) bool {
	if e == nil {
		return false
	}
	if e.Default().Mode == policy.Envelope {
		return true
	}
	for _, r := range e.Rules() {
		if r.Mode == policy.Envelope && (&r).MatchesBucket(bucket) {
			return true
		}
	}
	return false
}

// envList relays a listing with plaintext sizes and client ETags for the
// keys envelope rules govern. Sizes are arithmetic (FORMAT.md, section
// 9.4), in the format version the bucket's markers give each object by its
// LastModified; an object they cannot size (one modified around the
// switch to version 2, a version 2 multipart object in a bucket that holds
// irregular layouts, a plaintext object from before a migration, ...)
// costs one lookup, cached by its ETag.
func (h *Handler) envList(w *responseWriter, rt *Runtime, q *request) {
	ureq := h.baseRequest(q)
	resp, ok := h.send(w, q, ureq, nil)
	if !ok {
		return
	}
	defer resp.Body.Close()
	doc, ok := h.readOK(w, q, resp, maxListing)
	if !ok {
		return
	}
	ctx := q.r.Context()
	// The markers are read after the listing, so that a switch to version
	// 2 before any object listed was written is seen.
	var markers *markerState
	out, err := s3.RewriteXML(doc, listingEntries, func(e *s3.Entry) error {
		if e.Drop = hidden(q, e); e.Drop || (e.Name != "Contents" && e.Name != "Version") {
			return nil
		}
		key, _ := listingKey(q, e)
		rule := rt.Policy.Match(q.req.Bucket, key)
		if rule.Mode != policy.Envelope {
			if etag, ok := e.Fields["ETag"]; ok {
				e.Fields["ETag"] = sseClientETag(rule, etag)
			}
			return nil
		}
		etag, hasETag := e.Fields["ETag"]
		sizeText, hasSize := e.Fields["Size"]
		if !hasSize {
			return nil
		}
		c, err := strconv.ParseInt(sizeText, 10, 64)
		if err != nil {
			return nil
		}
		if markers == nil {
			m, err := h.markersFor(ctx, q.req.Bucket)
			if err != nil {
				return err
			}
			markers = &m
		}
		// Where objects of other formats may be read, arithmetic cannot
		// tell them apart: each is looked at once.
		foreign := rule.AllowPlaintextReads || rule.AllowS3ECReads
		obj := listedObject{key: key, version: e.Fields["VersionId"], etag: etag, size: c, modified: e.Fields["LastModified"]}
		size, err := h.listedSize(ctx, q, obj, *markers, foreign)
		if err != nil {
			return err
		}
		e.Fields["Size"] = strconv.FormatInt(size, 10)
		if hasETag {
			e.Fields["ETag"] = clientETag(etag)
		}
		return nil
	})
	if err != nil {
		if se, ok := s3err.As(err); ok {
			h.fail(w, q, se)
			return
		}
		h.fail(w, q, s3err.InternalError.WithMessage("The store sent a listing s3seal could not read.").WithCause(err))
		return
	}
	copyEnvelopeHeaders(w.Header(), resp.Header)
	writeDocument(w, out)
}

// listedObject is what a listing shows of an object.
type listedObject struct {
	key, version, etag string
	size               int64 // stored
	modified           string
}

// listedSize is the plaintext size of a listed object. With foreign set,
// objects may be of other formats (plaintext, the Amazon S3 Encryption
// Client's), so the size always comes from the object.
func (h *Handler) listedSize(ctx context.Context, q *request, o listedObject, m markerState, foreign bool) (int64, error) {
	if !foreign {
		n, multipart := partsFromETag(o.etag)
		var p int64
		var err error
		switch v := m.listedVersion(o.modified, h.env.wait); {
		case v == envelope.Version && multipart:
			p, err = stream.MultipartPlaintextSize(o.size, n)
		case v == envelope.Version:
			p, err = stream.PlaintextSize(o.size)
		case v == envelope.VersionV2 && multipart && !m.irregular:
			p, err = stream.MultipartPlaintextSizeV2(o.size, n)
		case v == envelope.VersionV2 && !multipart:
			p, err = stream.PlaintextSizeV2(o.size)
		default:
			err = errLookUp
		}
		if err == nil {
			return p, nil
		}
	}
	// Not a size arithmetic gives: ask the object itself, once.
	ck := q.req.Bucket + "\x00" + o.key + "\x00" + o.version + "\x00" + o.etag
	if p, ok := h.sizes.Get(ck); ok {
		return p, nil
	}
	p, err := h.lookUpSize(ctx, q.req.Bucket, o)
	if err != nil {
		return 0, err
	}
	h.sizes.Add(ck, p)
	return p, nil
}

var errLookUp = errors.New("look the size up")

// lookUpSize reads the plaintext size of a listed object from the object:
// its header (a single PUT), the part count and first part's size (a
// version 2 multipart object: HEAD ?partNumber=1, unauthenticated as any
// listing size), or the Amazon S3 Encryption Client's metadata. An object
// gone since the listing keeps the size the store listed.
func (h *Handler) lookUpSize(ctx context.Context, bucket string, o listedObject) (int64, error) {
	query := url.Values{}
	if o.version != "" && o.version != "null" {
		query.Set("versionId", o.version)
	}
	n, multipart := partsFromETag(o.etag)
	if multipart {
		query.Set("partNumber", "1")
	}
	resp, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodHead, Bucket: bucket, Key: o.key, Query: query, Header: http.Header{}})
	if err != nil {
		return 0, err
	}
	drainClose(resp.Body)
	if resp.StatusCode/100 != 2 {
		return o.size, nil
	}
	if x, err := s3ec.Parse(s3ecMeta(resp.Header)); err == nil {
		if p, err := x.PlaintextSize(o.size); err == nil {
			return p, nil
		}
		return o.size, nil
	}
	v := resp.Header.Get(metaHeader)
	if v == "" {
		return o.size, nil
	}
	eh, err := envelope.Parse(v)
	switch {
	case err != nil:
		return o.size, nil
	case !eh.Multipart():
		return eh.PlaintextSize(), nil
	case eh.Version() == envelope.Version:
		if p, err := stream.MultipartPlaintextSize(o.size, max(n, 1)); err == nil {
			return p, nil
		}
	default:
		parts, err := strconv.Atoi(resp.Header.Get("X-Amz-Mp-Parts-Count"))
		if err != nil || parts < 1 {
			parts = max(n, 1)
		}
		if l, err := stream.UniformMultipartLayoutV2(o.size, parts, resp.ContentLength); err == nil {
			return l.PlaintextSize(), nil
		}
	}
	return o.size, nil
}
