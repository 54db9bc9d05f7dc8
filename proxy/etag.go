package proxy

import (
	"net/http"
	"strings"
)

// ETags of envelope objects.
//
// The store's ETag of an encrypted object is the MD5 of its ciphertext (or,
// for multipart objects, an MD5 of part MD5s with a "-N" suffix). Tools such
// as s3cmd and rclone take a 32-hex-digit ETag for the MD5 of the bytes they
// sent and fail transfers when it is not, so s3seal never shows one: a
// single-request object's ETag gets the suffix "-0", which no store produces
// (multipart suffixes count parts from 1), making the mapping reversible and
// the result obviously not an MD5. Hyphenated ETags pass unchanged. The same
// client ETag appears in every response and listing, and conditional
// requests are mapped back before they reach the store.

// etagSuffix marks a client ETag derived from a plain (non-multipart) store
// ETag.
const etagSuffix = "-0"

// clientETag maps a store ETag (quoted or not) to the one clients see.
func clientETag(up string) string {
	if up == "" {
		return up
	}
	weak := strings.HasPrefix(up, "W/")
	v := strings.TrimPrefix(up, "W/")
	quoted := len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"'
	inner := strings.Trim(v, `"`)
	if inner == "" || strings.Contains(inner, "-") {
		return up
	}
	inner += etagSuffix
	if quoted {
		inner = `"` + inner + `"`
	}
	if weak {
		inner = "W/" + inner
	}
	return inner
}

// storeETag maps a client ETag back to the store's.
func storeETag(client string) string {
	weak := strings.HasPrefix(client, "W/")
	v := strings.TrimPrefix(client, "W/")
	quoted := len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"'
	inner := strings.Trim(v, `"`)
	base, ok := strings.CutSuffix(inner, etagSuffix)
	if !ok || base == "" || strings.Contains(base, "-") {
		return client
	}
	if quoted {
		base = `"` + base + `"`
	}
	if weak {
		base = "W/" + base
	}
	return base
}

// storeETagList maps an If-Match/If-None-Match style header value (a comma
// separated list of ETags, or "*").
func storeETagList(v string) string {
	if strings.TrimSpace(v) == "*" || !strings.Contains(v, etagSuffix) {
		return v
	}
	parts := strings.Split(v, ",")
	for i, p := range parts {
		parts[i] = storeETag(strings.TrimSpace(p))
	}
	return strings.Join(parts, ", ")
}

// conditionalETagHeaders are request headers whose ETags are mapped back to
// the store's.
var conditionalETagHeaders = []string{
	"If-Match", "If-None-Match",
	"X-Amz-Copy-Source-If-Match", "X-Amz-Copy-Source-If-None-Match",
}

// mapConditionalHeaders rewrites the client's conditional ETags in h (an
// upstream request's headers) to the store's.
func mapConditionalHeaders(h http.Header) {
	for _, name := range conditionalETagHeaders {
		if v := h.Values(name); len(v) > 0 {
			for i := range v {
				v[i] = storeETagList(v[i])
			}
		}
	}
}
