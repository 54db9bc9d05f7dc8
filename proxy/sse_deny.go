package proxy

import (
	"net/http"

	"github.com/s3seal/s3seal/proxy/policy"
	"github.com/s3seal/s3seal/proxy/s3"
	"github.com/s3seal/s3seal/proxy/s3err"
)

// serveDeny handles requests under a deny rule: it refuses what the rule's
// scope covers with AccessDenied and a message naming the rule, and passes
// the rest through.
func (h *Handler) serveDeny(w *responseWriter, rt *Runtime, q *request) {
	if denyRefuses(q.rule, q.class.Op, q.r.Method, q.r.Header) {
		h.fail(w, q, s3err.AccessDenied.WithMessage("%s", q.rule.DenyMessage()))
		return
	}
	h.forward(w, q, q.auth)
}

// denies reports whether a deny rule refuses a request.
func denyRefuses(rule *policy.Rule, op s3.Op, method string, hdr http.Header) bool {
	switch rule.DenyScope() {
	case policy.DenyWrites:
		return changesState(op, method)
	case policy.DenyPlaintextWrites:
		switch op {
		case s3.OpPostObject:
			// The form's fields are in the body, which s3seal does not
			// parse: it cannot tell whether encryption was asked for.
			return true
		case s3.OpPutObject, s3.OpCopyObject, s3.OpCreateMultipartUpload:
			return hdr.Get(hdrSSE) == "" && hdr.Get(hdrSSECAlgorithm) == ""
		case s3.OpUnknown:
			return changesState(op, method)
		}
		return false
	}
	return true
}

// changesState reports whether an operation may change stored objects, uploads
// or bucket configuration. Unknown operations are writes unless they are
// GET or HEAD requests.
func changesState(op s3.Op, method string) bool {
	switch op {
	case s3.OpPreflight, s3.OpListBuckets, s3.OpHeadBucket, s3.OpListObjects,
		s3.OpListObjectsV2, s3.OpListObjectVersions, s3.OpListMultipartUploads,
		s3.OpGetBucketLocation, s3.OpGetBucketConfig, s3.OpGetObject,
		s3.OpHeadObject, s3.OpGetObjectConfig, s3.OpGetObjectAttributes,
		s3.OpListParts, s3.OpSelectObjectContent:
		return false
	case s3.OpUnknown:
		return method != http.MethodGet && method != http.MethodHead
	}
	return true
}
