package sigv4

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/s3seal/s3seal/proxy/checksum"
	"github.com/s3seal/s3seal/proxy/s3err"
)

// Signature Version 2 (the "AWS" Authorization scheme and the
// AWSAccessKeyId/Expires/Signature presigned query) signs, with
// HMAC-SHA1 of the secret:
//
//	VERB \n Content-MD5 \n Content-Type \n Date \n
//	CanonicalizedAmzHeaders CanonicalizedResource
//
// Date is the Date header, "" when x-amz-date is present (its value is
// signed among the x-amz-* headers), and the Expires value for presigned
// URLs. CanonicalizedAmzHeaders are the x-amz-* headers, lower-case,
// sorted, each "name:v1,v2\n" with the values trimmed. CanonicalizedResource
// is "/bucket" for a virtual-hosted request, then the path as sent (still
// percent-encoded), then the signed sub-resources, sorted, with their values
// decoded.

// v2Prefix starts a SigV2 Authorization header. Unlike SigV4, SigV2
// presigned URLs have no longest validity: Expires is any time.
const v2Prefix = "AWS "

// v2SubResources are the query parameters SigV2 signs, sorted: the ones S3
// documents and every one the SDKs sign (botocore's HmacV1 list, which
// includes s3cmd's).
var v2SubResources = []string{
	"accelerate", "acl", "analytics", "cors", "defaultObjectAcl", "delete",
	"inventory", "lifecycle", "location", "logging", "metrics",
	"notification", "object-lock", "partNumber", "policy", "replication",
	"requestPayment", "response-cache-control", "response-content-disposition",
	"response-content-encoding", "response-content-language",
	"response-content-type", "response-expires", "restore", "select",
	"select-type", "storageClass", "tagging", "torrent", "uploadId", "uploads",
	"versionId", "versioning", "versions", "website",
}

// v2Params are the presigned-URL query parameters SigV2 consumes.
var v2Params = [...]string{"AWSAccessKeyId", "Expires", "Signature"}

func errV2Header() *s3err.Error {
	return s3err.InvalidArgument.WithMessage("AWS authorization header is invalid.  Expected AwsAccessKeyId:signature").WithField("ArgumentName", "Authorization")
}

func errV2Query() *s3err.Error {
	return s3err.AccessDenied.WithMessage("Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters")
}

// parseV2Authorization splits "AWS AKID:signature". The access key id is
// everything before the last ':'; both parts must be non-empty. A signature
// of the wrong form simply does not match.
func parseV2Authorization(v string) (accessKeyID, signature string, ok bool) {
	v = strings.TrimLeft(v, " \t")
	if !strings.HasPrefix(v, v2Prefix) {
		return "", "", false
	}
	rest := strings.Trim(v[len(v2Prefix):], " \t")
	i := strings.LastIndexByte(rest, ':')
	if i <= 0 || i == len(rest)-1 {
		return "", "", false
	}
	accessKeyID, signature = rest[:i], rest[i+1:]
	if strings.ContainsAny(accessKeyID, " \t") {
		return "", "", false
	}
	return accessKeyID, signature, true
}

// v2RequestTime returns the request time of a header-signed SigV2 request:
// x-amz-date when present (RFC 1123 or ISO 8601), else Date.
func v2RequestTime(r *http.Request) (string, time.Time, error) {
	missing := func() error {
		return s3err.AccessDenied.WithMessage("AWS authentication requires a valid Date or x-amz-date header")
	}
	raw := ""
	if vs := r.Header.Values("X-Amz-Date"); len(vs) > 0 {
		if len(vs) > 1 {
			return "", time.Time{}, missing()
		}
		raw = vs[0]
	} else if vs := r.Header.Values("Date"); len(vs) == 1 {
		raw = vs[0]
	} else {
		return "", time.Time{}, missing()
	}
	t, err := http.ParseTime(raw)
	if err != nil {
		if t, err = time.Parse(time.RFC1123Z, raw); err != nil {
			if t, err = time.Parse(iso8601Format, raw); err != nil {
				return "", time.Time{}, missing()
			}
		}
	}
	return raw, t.UTC(), nil
}

// verifyV2Header authenticates an "Authorization: AWS AKID:sig" request.
func (v *Verifier) verifyV2Header(r *http.Request, params []queryParam, authz string) (*Result, error) {
	akid, sig, ok := parseV2Authorization(authz)
	if !ok {
		return nil, errV2Header()
	}
	raw, t, err := v2RequestTime(r)
	if err != nil {
		return nil, err
	}
	now := v.now()
	if d := now.Sub(t); d > v.maxSkew() || d < -v.maxSkew() {
		return nil, s3err.RequestTimeTooSkewed.
			WithField("RequestTime", clip(raw)).
			WithField("ServerTime", now.UTC().Format(time.RFC3339)).
			WithField("MaxAllowedSkewMilliseconds", strconv.FormatInt(v.maxSkew().Milliseconds(), 10))
	}
	// S3 signs an empty Date line when x-amz-date is present (s3cmd does
	// so); botocore signs the Date header there even then. x-amz-date is
	// signed among the x-amz-* headers either way.
	dates := []string{raw}
	if len(r.Header.Values("X-Amz-Date")) > 0 {
		dates = []string{""}
		if d := r.Header.Values("Date"); len(d) == 1 {
			dates = append(dates, d[0])
		}
	}
	return v.finishV2(r, params, akid, sig, dates, false)
}

// verifyV2Presigned authenticates an AWSAccessKeyId/Expires/Signature URL.
func (v *Verifier) verifyV2Presigned(r *http.Request, params []queryParam) (*Result, error) {
	var vals [len(v2Params)]string
	for i, name := range v2Params {
		val, n := lookup(params, name)
		if n != 1 || val == "" {
			return nil, errV2Query()
		}
		vals[i] = val
	}
	akid, expiresStr, sig := vals[0], vals[1], vals[2]
	secs, err := strconv.ParseInt(expiresStr, 10, 64)
	if err != nil || secs < 0 || strings.HasPrefix(expiresStr, "+") {
		return nil, s3err.AccessDenied.WithMessage("Invalid date (should be seconds since epoch): %s", clip(expiresStr))
	}
	now := v.now()
	expires := time.Unix(secs, 0)
	if now.After(expires) {
		return nil, s3err.AccessDenied.WithMessage("Request has expired").
			WithField("Expires", expires.UTC().Format(time.RFC3339)).
			WithField("ServerTime", now.UTC().Format(time.RFC3339))
	}
	return v.finishV2(r, params, akid, sig, []string{expiresStr}, true)
}

// finishV2 checks the signature against each candidate Date line and path
// form (every candidate is computed, so the time taken does not tell which
// matched) and builds the Result: the body is
// returned as sent (SigV2 does not sign it) and verified against
// Content-MD5 when the client sent one, which the signature covers.
func (v *Verifier) finishV2(r *http.Request, params []queryParam, akid, sig string, dates []string, presigned bool) (*Result, error) {
	secret, err := v.secret(akid)
	if err != nil {
		return nil, err
	}
	bucket := ""
	if v.VirtualHostBucket != nil {
		bucket = v.VirtualHostBucket(r)
	}
	ok := false
	for _, path := range v2Paths(r) {
		for _, date := range dates {
			sts := v2StringToSign(r, params, presigned, date, bucket, path)
			if v.debugCanonical != nil {
				v.debugCanonical("", string(sts))
			}
			if subtle.ConstantTimeCompare(v2Sign(secret, sts), []byte(sig)) == 1 {
				ok = true
			}
		}
	}
	if !ok {
		return nil, errSignature()
	}
	res := &Result{AccessKeyID: akid, Presigned: presigned, SigV2: true, Mode: UnsignedPayload}
	if err := v.body(r, res, unsignedPayload, nil); err != nil {
		return nil, err
	}
	md5 := r.Header.Values("Content-Md5")
	if len(md5) > 1 {
		return nil, s3err.InvalidDigest.WithMessage("The Content-MD5 you specified is not valid.")
	}
	if len(md5) == 1 {
		c, err := checksum.Expect(checksum.ContentMD5, md5[0])
		if err != nil {
			return nil, err
		}
		if err := res.CheckBody(c); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// v2Sign returns base64(HMAC-SHA1(secret, sts)).
func v2Sign(secret string, sts []byte) []byte {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write(sts)
	var sum [sha1.Size]byte
	out := make([]byte, base64.StdEncoding.EncodedLen(sha1.Size))
	base64.StdEncoding.Encode(out, m.Sum(sum[:0]))
	return out
}

// v2Paths returns the request path as the client sent it (still
// percent-encoded) and, when it differs, the path re-encoded with S3's
// rules: clients sign the path they put on the wire, but some encode
// characters such as '!' or '@' on the wire and not in what they sign, or
// the reverse.
func v2Paths(r *http.Request) []string {
	raw := r.RequestURI
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	if raw == "" || raw[0] != '/' {
		// A request built in-process, or an absolute-form URI.
		raw = r.URL.EscapedPath()
	}
	if raw == "" {
		raw = "/"
	}
	enc := string(canonicalURI(nil, r.URL.Path))
	if enc == raw {
		return []string{raw}
	}
	return []string{raw, enc}
}

// v2StringToSign builds the SigV2 string to sign. date is the Date line
// (the Date header, "" under x-amz-date, or Expires for presigned URLs);
// bucket is the virtual-hosted bucket or ""; path is the escaped path.
func v2StringToSign(r *http.Request, params []queryParam, presigned bool, date, bucket, path string) []byte {
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	b := make([]byte, 0, 256)
	b = append(b, method...)
	b = append(b, '\n')
	b = append(b, v2Standard(r, params, presigned, "Content-Md5")...)
	b = append(b, '\n')
	b = append(b, v2Standard(r, params, presigned, "Content-Type")...)
	b = append(b, '\n')
	b = append(b, date...)
	b = append(b, '\n')
	b = appendV2AmzHeaders(b, r, params, presigned)
	if bucket != "" {
		b = append(b, '/')
		b = append(b, bucket...)
	}
	b = append(b, path...)
	return appendV2SubResources(b, r.URL.RawQuery)
}

// v2Standard returns a standard header's signed value: the header, or for
// presigned URLs the lower-case query parameter of the same name (botocore
// moves Content-MD5 and Content-Type into the URL).
func v2Standard(r *http.Request, params []queryParam, presigned bool, name string) string {
	if vs := r.Header.Values(name); len(vs) > 0 {
		return strings.TrimSpace(vs[0])
	}
	if presigned {
		if v, n := lookup(params, strings.ToLower(name)); n > 0 {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// appendV2AmzHeaders appends the canonicalised x-amz-* headers, each
// "name:value\n"; repeated headers join their values with ','. For
// presigned URLs, x-amz-* query parameters count as headers (botocore puts
// the x-amz-* headers of a presigned request in its URL).
func appendV2AmzHeaders(dst []byte, r *http.Request, params []queryParam, presigned bool) []byte {
	type hdr struct{ name, value string }
	var hs []hdr
	add := func(name, value string) {
		value = foldSpace(value)
		for i := range hs {
			if hs[i].name == name {
				hs[i].value += "," + value
				return
			}
		}
		hs = append(hs, hdr{name, value})
	}
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, "x-amz-") {
			continue
		}
		for _, v := range vs {
			add(lk, v)
		}
	}
	if presigned {
		for _, p := range params {
			lk := strings.ToLower(p.name)
			if strings.HasPrefix(lk, "x-amz-") && len(r.Header.Values(lk)) == 0 {
				add(lk, p.value)
			}
		}
	}
	slices.SortFunc(hs, func(a, b hdr) int { return strings.Compare(a.name, b.name) })
	for _, h := range hs {
		dst = append(dst, h.name...)
		dst = append(dst, ':')
		dst = append(dst, h.value...)
		dst = append(dst, '\n')
	}
	return dst
}

// foldSpace trims a header value and unfolds folded lines (a line break
// and the whitespace after it become one space).
func foldSpace(v string) string {
	v = strings.Trim(v, " \t")
	if !strings.ContainsAny(v, "\r\n") {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '\r' && c != '\n' {
			b.WriteByte(c)
			continue
		}
		for i+1 < len(v) && strings.IndexByte(" \t\r\n", v[i+1]) >= 0 {
			i++
		}
		b.WriteByte(' ')
	}
	return b.String()
}

// appendV2SubResources appends "?name[=value]&…" for the signed
// sub-resources in the raw query, sorted by name (a stable sort keeps
// repeated names in request order), values %-decoded ('+' stays '+').
// A parameter sent without '=' ("?uploads") is signed without one.
func appendV2SubResources(dst []byte, rawQuery string) []byte {
	type sub struct {
		name, value string
		eq          bool
	}
	var subs []sub
	for part := range strings.SplitSeq(rawQuery, "&") {
		name, value, eq := strings.Cut(part, "=")
		if _, ok := slices.BinarySearch(v2SubResources, name); !ok {
			continue
		}
		if u, err := url.PathUnescape(value); err == nil {
			value = u
		}
		subs = append(subs, sub{name, value, eq})
	}
	if len(subs) == 0 {
		return dst
	}
	slices.SortStableFunc(subs, func(a, b sub) int { return strings.Compare(a.name, b.name) })
	dst = append(dst, '?')
	for i, p := range subs {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, p.name...)
		if p.eq {
			dst = append(dst, '=')
			dst = append(dst, p.value...)
		}
	}
	return dst
}
