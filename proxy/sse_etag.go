package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/s3seal/s3seal/proxy/policy"
	"github.com/s3seal/s3seal/proxy/s3"
	"github.com/s3seal/s3seal/proxy/s3err"
)

// ETags under sse-kms and sse-c.
//
// Stores give single-request SSE-KMS and SSE-C objects an ETag of 32 hex
// digits that is not the MD5 of the data (AWS documents it; MinIO does the
// same), which tools such as s3cmd and rclone take for an MD5 and then fail
// transfers. Under sse-kms and sse-c rules s3seal therefore shows those
// ETags with the "-0" suffix envelope mode uses (see etag.go), in object
// responses, copy and attribute results and listings, and maps conditional
// headers back. Multipart ETags ("-N") pass unchanged; so do part ETags,
// which clients only send back in CompleteMultipartUpload. Under sse-s3
// the store's ETags are the MD5 of the data and pass unchanged. The
// mapping follows the rule, not the object, so every response about a key
// shows the same ETag.

// sseMaxListing bounds the listings s3seal rewrites (a page of 1,000 keys is
// a few hundred KiB).
const sseMaxListing = 32 << 20

func errListingTooLarge() *s3err.Error {
	return s3err.InternalError.WithMessage("The store sent a listing larger than s3seal rewrites; ask for fewer keys (max-keys).")
}

func errListingUnreadable() *s3err.Error {
	return s3err.InternalError.WithMessage("The store sent a listing s3seal could not read.")
}

// sseMapsETags reports whether ETags under rule are shown with the suffix.
func sseMapsETags(rule *policy.Rule) bool {
	return rule.Mode == policy.SSEKMS || rule.Mode == policy.SSEC
}

// sseETagsIn reports whether some rule for bucket maps ETags, so that
// listings of bucket need rewriting.
func sseETagsIn(e *policy.Engine, bucket string) bool {
	if e == nil {
		return false
	}
	for _, r := range e.Rules() {
		if sseMapsETags(&r) && r.MatchesBucket(bucket) {
			return true
		}
	}
	return false
}

// sseClientETag returns the ETag clients see for a store ETag of an object
// under rule.
func sseClientETag(rule *policy.Rule, etag string) string {
	if !sseMapsETags(rule) {
		return etag
	}
	return clientETag(etag)
}

// sseResultETags rewrites the ETags of an answer about an object under rule:
// the ETag header, and the ETag of CopyObject and GetObjectAttributes result
// documents. It leaves the body readable for relaying.
func sseResultETags(rule *policy.Rule, op s3.Op, resp *http.Response) {
	if !sseMapsETags(rule) || resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotModified {
		return
	}
	if v := resp.Header.Get("ETag"); v != "" {
		resp.Header.Set("ETag", clientETag(v))
	}
	var entries []string
	switch op {
	case s3.OpCopyObject:
		entries = []string{"CopyObjectResult"}
	case s3.OpGetObjectAttributes:
		entries = []string{"GetObjectAttributesResponse"}
	default:
		return
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, sseMaxSmallBody))
	out, err := s3.RewriteXML(body, entries, func(e *s3.Entry) error {
		if v, ok := e.Fields["ETag"]; ok {
			e.Fields["ETag"] = clientETag(v)
		}
		return nil
	})
	if err != nil || len(body) == sseMaxSmallBody {
		out = body // not a document s3seal can rewrite: relay it as it is
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(out), resp.Body), resp.Body}
	if len(out) != len(body) && resp.Header.Get("Content-Length") != "" {
		resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	}
}

// sseList relays a listing of a bucket some sse-kms or sse-c rule governs,
// with the ETags of the keys those rules govern shown as clients see them.
func (h *Handler) sseList(w *responseWriter, rt *Runtime, q *request) {
	if rt.Policy == nil || !sseETagsIn(rt.Policy, q.target.Bucket) {
		h.forward(w, q, q.auth)
		return
	}
	h.forwardWith(w, q, q.auth, hooks{
		response: func(w *responseWriter, q *request, resp *http.Response) bool {
			if resp.StatusCode != http.StatusOK {
				return false
			}
			doc, err := io.ReadAll(io.LimitReader(resp.Body, sseMaxListing+1))
			if err != nil {
				h.fail(w, q, err)
				return true
			}
			if len(doc) > sseMaxListing {
				h.fail(w, q, errListingTooLarge())
				return true
			}
			urlEncoded := q.query.Get("encoding-type") == "url"
			out, err := s3.RewriteXML(doc, []string{"Contents", "Version"}, func(e *s3.Entry) error {
				etag, ok := e.Fields["ETag"]
				if !ok {
					return nil
				}
				key := e.Fields["Key"]
				if urlEncoded {
					if k, err := url.QueryUnescape(key); err == nil {
						key = k
					}
				}
				e.Fields["ETag"] = sseClientETag(rt.Policy.Match(q.target.Bucket, key), etag)
				return nil
			})
			if err != nil {
				h.fail(w, q, errListingUnreadable().WithCause(err))
				return true
			}
			resp.Body = struct {
				io.Reader
				io.Closer
			}{bytes.NewReader(out), resp.Body}
			resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
			return false
		},
	})
}
