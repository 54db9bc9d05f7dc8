package proxy

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/s3seal/s3seal/proxy/policy"
	"github.com/s3seal/s3seal/proxy/s3err"
)

// Server-side encryption headers (PROTOCOL.md §2).
const (
	hdrSSE          = "X-Amz-Server-Side-Encryption"
	hdrSSEKMSKeyID  = "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"
	hdrSSEContext   = "X-Amz-Server-Side-Encryption-Context"
	hdrSSEBucketKey = "X-Amz-Server-Side-Encryption-Bucket-Key-Enabled"

	hdrSSECAlgorithm = "X-Amz-Server-Side-Encryption-Customer-Algorithm"
	hdrSSECKey       = "X-Amz-Server-Side-Encryption-Customer-Key"
	hdrSSECKeyMD5    = "X-Amz-Server-Side-Encryption-Customer-Key-Md5"

	// copySourcePrefix selects the copy-source variant of an SSE-C header
	// (CopyObject, UploadPartCopy): see ssecName.
	copySourcePrefix = "X-Amz-Copy-Source-"

	sseHdrCopySource = "X-Amz-Copy-Source"
	sseHdrVersionID  = "X-Amz-Version-Id"
)

// ssecHeaderNames are the SSE-C headers of the object itself; ssecName
// gives their copy-source variants.
var ssecHeaderNames = [...]string{hdrSSECAlgorithm, hdrSSECKey, hdrSSECKeyMD5}

// ssecName returns SSE-C header n for the object (prefix "") or for the
// copy source (prefix copySourcePrefix): X-Amz-Server-Side-Encryption-…
// becomes X-Amz-Copy-Source-Server-Side-Encryption-….
func ssecName(prefix, n string) string {
	if prefix == "" {
		return n
	}
	return prefix + strings.TrimPrefix(n, "X-Amz-")
}

// hasSSEC reports whether h carries any SSE-C header with the prefix (""
// for the object itself, copySourcePrefix for a copy source).
func hasSSEC(h http.Header, prefix string) bool {
	for _, n := range ssecHeaderNames {
		if len(h.Values(ssecName(prefix, n))) > 0 {
			return true
		}
	}
	return false
}

// setSSEC sets the three SSE-C headers for key, with the prefix ("" or
// copySourcePrefix): AES256, the base64 key and the base64 MD5 of the raw
// key.
func setSSEC(h http.Header, prefix string, key *[32]byte) {
	sum := md5.Sum(key[:])
	h.Set(ssecName(prefix, hdrSSECAlgorithm), "AES256")
	h.Set(ssecName(prefix, hdrSSECKey), base64.StdEncoding.EncodeToString(key[:]))
	h.Set(ssecName(prefix, hdrSSECKeyMD5), base64.StdEncoding.EncodeToString(sum[:]))
}

// delSSEC removes the SSE-C headers with the prefix.
func delSSEC(h http.Header, prefix string) {
	for _, n := range ssecHeaderNames {
		h.Del(ssecName(prefix, n))
	}
}

// stripSSECKeyMD5 removes the SSE-C key digests a store echoes, so that
// applications never see anything derived from keys s3seal holds. The
// algorithm headers stay: they tell the client the object is SSE-C.
func stripSSECKeyMD5(h http.Header) {
	h.Del(hdrSSECKeyMD5)
	h.Del(ssecName(copySourcePrefix, hdrSSECKeyMD5))
}

// readClientSSE decodes the x-amz-server-side-encryption headers of a
// request (not SSE-C). Malformed values are InvalidArgument errors, as on
// S3.
func readClientSSE(h http.Header) (policy.SSE, error) {
	var s policy.SSE
	s.Algorithm = policy.Algorithm(strings.TrimSpace(h.Get(hdrSSE)))
	s.KMSKeyID = strings.TrimSpace(h.Get(hdrSSEKMSKeyID))
	if v := strings.TrimSpace(h.Get(hdrSSEBucketKey)); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return s, s3err.InvalidArgument.WithMessage("x-amz-server-side-encryption-bucket-key-enabled must be true or false.")
		}
		s.BucketKey = &b
	}
	if v := strings.TrimSpace(h.Get(hdrSSEContext)); v != "" {
		ctx, err := decodeKMSContext(v)
		if err != nil {
			return s, s3err.InvalidArgument.WithMessage("x-amz-server-side-encryption-context must be the base64 of a UTF-8 JSON object of string values.")
		}
		s.KMSContext = ctx
	}
	return s, nil
}

// decodeKMSContext decodes an encryption context header: base64 of a JSON
// object whose values are strings.
func decodeKMSContext(v string) (map[string]string, error) {
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(raw) {
		return nil, errSSEContext
	}
	var ctx map[string]string
	if err := json.Unmarshal(raw, &ctx); err != nil {
		return nil, err
	}
	if ctx == nil {
		return nil, errSSEContext
	}
	return ctx, nil
}

var errSSEContext = errors.New("proxy: encryption context is not a JSON object of strings")

// encodeKMSContext encodes an encryption context for the header (keys
// sorted, so the same context always gives the same header).
func encodeKMSContext(ctx map[string]string) string {
	b, err := json.Marshal(ctx)
	if err != nil {
		// A map of strings always marshals.
		panic("proxy: internal error: " + err.Error())
	}
	return base64.StdEncoding.EncodeToString(b)
}

// writeSSE replaces the x-amz-server-side-encryption headers of h with s.
func writeSSE(h http.Header, s policy.SSE) {
	for _, n := range []string{hdrSSE, hdrSSEKMSKeyID, hdrSSEContext, hdrSSEBucketKey} {
		h.Del(n)
	}
	if s.Algorithm != policy.None {
		h.Set(hdrSSE, string(s.Algorithm))
	}
	if s.KMSKeyID != "" {
		h.Set(hdrSSEKMSKeyID, s.KMSKeyID)
	}
	if len(s.KMSContext) > 0 {
		h.Set(hdrSSEContext, encodeKMSContext(s.KMSContext))
	}
	if s.BucketKey != nil {
		h.Set(hdrSSEBucketKey, strconv.FormatBool(*s.BucketKey))
	}
}
