package proxy

import (
	"bytes"
	"io"
	"net/http"
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
	h.forwardWith(w, q, q.auth, hooks{
		response: func(w *responseWriter, q *request, resp *http.Response) bool {
			return h.rewriteListing(w, q, resp, func(e *s3.Entry) error {
				if e.Drop = hidden(q, e); e.Drop {
					return nil
				}
				etag, ok := e.Fields["ETag"]
				if !ok {
					return nil
				}
				if key, ok := listingKey(q, e); ok {
					e.Fields["ETag"] = sseClientETag(rt.Policy.Match(q.req.Bucket, key), etag)
				}
				return nil
			})
		},
	})
}
