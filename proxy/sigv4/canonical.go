package sigv4

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

const upperHex = "0123456789ABCDEF"

// unreserved reports whether c is left as is by SigV4 URI encoding.
func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// appendEncoded appends s percent-encoded with the S3 rules: every byte
// but A–Z a–z 0–9 - . _ ~ becomes %XX (upper-case hex, UTF-8 bytes as
// they are); '/' is kept when keepSlash is set (paths) and encoded
// otherwise (query names and values).
func appendEncoded(dst []byte, s string, keepSlash bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || (keepSlash && c == '/') {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
	}
	return dst
}

// canonicalURI appends the canonical URI of a decoded request path: the
// path re-encoded with the S3 rules, never normalised ("a//b", "./x" and
// "../" survive), "/" when empty.
func canonicalURI(dst []byte, path string) []byte {
	if path == "" {
		return append(dst, '/')
	}
	return appendEncoded(dst, path, true)
}

// canonicalQuery appends the canonical query string: every parameter
// (except X-Amz-Signature when presigned) URI-encoded, sorted by encoded
// name and then by encoded value, joined with '&'; a parameter without a
// value becomes "name=".
func canonicalQuery(dst []byte, params []queryParam, presigned bool) []byte {
	if len(params) == 0 {
		return dst
	}
	enc := make([]queryParam, 0, len(params))
	var b []byte
	for _, p := range params {
		if presigned && p.name == "X-Amz-Signature" {
			continue
		}
		b = appendEncoded(b[:0], p.name, false)
		n := len(b)
		b = appendEncoded(b, p.value, false)
		s := string(b)
		enc = append(enc, queryParam{s[:n], s[n:]})
	}
	slices.SortFunc(enc, func(x, y queryParam) int {
		if c := strings.Compare(x.name, y.name); c != 0 {
			return c
		}
		return strings.Compare(x.value, y.value)
	})
	for i, e := range enc {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, e.name...)
		dst = append(dst, '=')
		dst = append(dst, e.value...)
	}
	return dst
}

// headerValues returns the values a signed header had on the wire. Go's
// server moves some headers out of r.Header: Host into r.Host,
// Transfer-Encoding into r.TransferEncoding, and Content-Length is dropped
// when the body is chunked; they are rebuilt from the request fields.
func headerValues(r *http.Request, name string) []string {
	switch name {
	case "host":
		if r.Host != "" {
			return []string{r.Host}
		}
		if r.URL != nil {
			return []string{r.URL.Host}
		}
		return nil
	case "content-length":
		if v, ok := r.Header["Content-Length"]; ok {
			return v
		}
		if r.ContentLength >= 0 && len(r.TransferEncoding) == 0 {
			return []string{strconv.FormatInt(r.ContentLength, 10)}
		}
		return nil
	case "transfer-encoding":
		if v, ok := r.Header["Transfer-Encoding"]; ok {
			return v
		}
		return r.TransferEncoding
	case "expect":
		if v, ok := r.Header["Expect"]; ok {
			return v
		}
		// Some servers consume "Expect: 100-continue"; it is the only
		// expectation a body-carrying client sends.
		return []string{"100-continue"}
	}
	// Go's server stores header names in canonical form; build that form
	// on the stack (the map lookup with string(bytes) does not allocate).
	var arr [128]byte
	if len(name) > len(arr) {
		return r.Header[http.CanonicalHeaderKey(name)]
	}
	key := arr[:len(name)]
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		key[i] = c
		upper = c == '-'
	}
	if v, ok := r.Header[string(key)]; ok {
		return v
	}
	return r.Header[name]
}

// Header value rules. SigV4 asks to trim values and collapse runs of
// spaces; signers disagree on what a space is. botocore, the JavaScript SDK
// and MinIO collapse every whitespace character, the Go SDK only ' '. The
// verifier uses the first rule and, when a signed value holds other
// whitespace, also tries the second.
const (
	collapseAllSpace = iota
	collapseSpacesOnly
)

// canonicalHeaders appends "name:value\n" for each signed header, in the
// order signed, with values trimmed, inner whitespace collapsed to one
// space (per rule) and repeated headers joined with ','.
func canonicalHeaders(dst []byte, r *http.Request, signed []string, rule int) []byte {
	for _, name := range signed {
		dst = append(dst, name...)
		dst = append(dst, ':')
		for i, v := range headerValues(r, name) {
			if i > 0 {
				dst = append(dst, ',')
			}
			if rule == collapseSpacesOnly {
				dst = appendSpacesCollapsed(dst, v)
			} else {
				dst = appendTrimmed(dst, v)
			}
		}
		dst = append(dst, '\n')
	}
	return dst
}

// hasOtherSpace reports whether a signed header value contains whitespace
// other than ' ', where the two header value rules differ.
func hasOtherSpace(r *http.Request, signed []string) bool {
	for _, name := range signed {
		for _, v := range headerValues(r, name) {
			if strings.ContainsAny(v, "\t\n\r\v\f") {
				return true
			}
		}
	}
	return false
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// appendTrimmed appends v without leading and trailing whitespace and with
// every inner run of whitespace replaced by one space.
func appendTrimmed(dst []byte, v string) []byte {
	space := false
	start := len(dst)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if isSpace(c) {
			space = true
			continue
		}
		if space && len(dst) > start {
			dst = append(dst, ' ')
		}
		space = false
		dst = append(dst, c)
	}
	return dst
}

// appendSpacesCollapsed appends v trimmed of whitespace at both ends with
// inner runs of ' ' (only) replaced by one space.
func appendSpacesCollapsed(dst []byte, v string) []byte {
	v = strings.TrimSpace(v)
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' && i > 0 && v[i-1] == ' ' {
			continue
		}
		dst = append(dst, v[i])
	}
	return dst
}

// unsignedAmzHeaders returns the lower-case names of x-amz-* headers present
// in r but not signed. x-amz-content-sha256 may go unsigned, as S3 allows:
// its value is the payload line of the canonical request either way.
func unsignedAmzHeaders(r *http.Request, signed []string) []string {
	var out []string
next:
	for k := range r.Header {
		if len(k) < 6 || !strings.EqualFold(k[:6], "x-amz-") || strings.EqualFold(k, "x-amz-content-sha256") {
			continue
		}
		for _, s := range signed {
			if strings.EqualFold(k, s) {
				continue next
			}
		}
		out = append(out, strings.ToLower(k))
	}
	slices.Sort(out)
	return out
}
