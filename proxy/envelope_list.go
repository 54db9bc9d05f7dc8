package proxy

import (
	"context"
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
// keys envelope rules govern. Sizes are arithmetic (FORMAT.md); an object
// whose stored size the format cannot produce (a plaintext object from
// before a migration, say) costs one HEAD, cached by its ETag.
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
		// Where objects of other formats may be read, arithmetic cannot
		// tell them apart: each is looked at once.
		foreign := rule.AllowPlaintextReads || rule.AllowS3ECReads
		size, err := h.listedSize(ctx, q, key, e.Fields["VersionId"], etag, c, foreign)
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

// listedSize is the plaintext size of a listed object of c stored bytes.
// With foreign set, objects may be of other formats (plaintext, the Amazon
// S3 Encryption Client's), so the size always comes from the object.
func (h *Handler) listedSize(ctx context.Context, q *request, key, versionID, etag string, c int64, foreign bool) (int64, error) {
	switch n, ok := partsFromETag(etag); {
	case foreign:
	case ok:
		if p, err := stream.MultipartPlaintextSize(c, n); err == nil {
			return p, nil
		}
	default:
		if p, err := stream.PlaintextSize(c); err == nil {
			return p, nil
		}
	}
	// Not a size the format produces: ask the object itself, once.
	ck := q.req.Bucket + "\x00" + key + "\x00" + versionID + "\x00" + etag
	if p, ok := h.sizes.Get(ck); ok {
		return p, nil
	}
	query := url.Values{}
	if versionID != "" && versionID != "null" {
		query.Set("versionId", versionID)
	}
	resp, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodHead, Bucket: q.req.Bucket, Key: key, Query: query, Header: http.Header{}})
	if err != nil {
		return 0, err
	}
	drainClose(resp.Body)
	if resp.StatusCode != http.StatusOK {
		// Gone since the listing: report what the store listed.
		return c, nil
	}
	p := c
	if o, err := s3ec.Parse(s3ecMeta(resp.Header)); err == nil {
		if n, err := o.PlaintextSize(c); err == nil {
			p = n
		}
	} else if v := resp.Header.Get(metaHeader); v != "" {
		if eh, err := envelope.Parse(v); err == nil {
			if eh.Multipart() {
				n, _ := partsFromETag(etag)
				if mp, err := stream.MultipartPlaintextSize(c, max(n, 1)); err == nil {
					p = mp
				}
			} else {
				p = eh.PlaintextSize()
			}
		}
	}
	h.sizes.Add(ck, p)
	return p, nil
}
