package sigv4

import (
	"net/url"
	"strings"
	"time"
)

const (
	algorithm     = "AWS4-HMAC-SHA256"
	iso8601Format = "20060102T150405Z"
	dateFormat    = "20060102"
	serviceS3     = "s3"
	terminator    = "aws4_request"
	// maxSignedHeaders bounds the signed-header list a client may send.
	maxSignedHeaders = 256
)

// authorization is a parsed SigV4 Authorization header.
type authorization struct {
	credential    string // the Credential value as sent
	signedHeaders string // the SignedHeaders value as sent
	signature     string
}

// credential is a parsed Credential value: AKID/date/region/service/aws4_request.
type credential struct {
	accessKeyID string
	scope       string // date/region/service/terminator, as sent
	date        string // yyyymmdd
	region      string
	service     string
	terminator  string
}

// parseAuthorization parses "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
// Signature=…". It accepts the spacing variations clients send: any run of
// spaces or tabs after the algorithm, around commas and around '='. The
// caller has checked that v starts with the algorithm name. As S3 does, it
// wants exactly three components, each name=value; a component of another
// name leaves its slot missing.
func parseAuthorization(v string) (authorization, error) {
	var a authorization
	rest := strings.TrimLeft(v, " \t")
	if !strings.HasPrefix(rest, algorithm) {
		return a, errUnsupported(rest)
	}
	rest = rest[len(algorithm):]
	if rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
		return a, errUnsupported(v)
	}
	var parts []string
	for part := range strings.SplitSeq(rest, ",") {
		if part = strings.Trim(part, " \t"); part != "" {
			parts = append(parts, part)
		}
	}
	if len(parts) != 3 {
		return a, malformedHeader("the authorization header requires three components: Credential, SignedHeaders, and Signature.")
	}
	var seen [3]bool
	for _, part := range parts {
		k, val, ok := strings.Cut(part, "=")
		if !ok {
			return a, malformedHeader("the authorization component %q is malformed.", clip(part))
		}
		k, val = strings.Trim(k, " \t"), strings.Trim(val, " \t")
		switch k {
		case "Credential":
			seen[0], a.credential = true, val
		case "SignedHeaders":
			seen[1], a.signedHeaders = true, val
		case "Signature":
			seen[2], a.signature = true, val
		}
	}
	switch {
	case !seen[0] || a.credential == "":
		return a, malformedHeader("missing Credential.")
	case !seen[1] || a.signedHeaders == "":
		return a, malformedHeader("missing SignedHeaders.")
	case !seen[2] || a.signature == "":
		return a, malformedHeader("missing Signature.")
	}
	return a, nil
}

// parseCredential splits a Credential value: exactly
// AKID/date/region/service/aws4_request, as S3 wants (access key ids never
// contain '/'). It checks the scope's shape in S3's order (terminator,
// service, date); region checks are the caller's. The returned message is
// completed by the caller's error type.
func parseCredential(v string) (credential, string) {
	var c credential
	parts := strings.Split(v, "/")
	if len(parts) != 5 {
		return c, "the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\"."
	}
	c.accessKeyID = parts[0]
	c.date, c.region, c.service, c.terminator = parts[1], parts[2], parts[3], parts[4]
	c.scope = v[len(c.accessKeyID)+1:]
	switch {
	case c.accessKeyID == "":
		return c, "the access key id is empty."
	case c.terminator != terminator:
		return c, "incorrect terminal \"" + clip(c.terminator) + "\". This endpoint uses \"aws4_request\"."
	case c.service != serviceS3:
		return c, "incorrect service \"" + clip(c.service) + "\". This endpoint belongs to \"s3\"."
	case !validDate(c.date):
		return c, "incorrect date format \"" + clip(c.date) + "\". This date in the credential must be in the format \"yyyyMMdd\"."
	case c.region == "":
		return c, "the region is empty."
	}
	return c, ""
}

func validDate(s string) bool {
	if len(s) != len(dateFormat) {
		return false
	}
	_, err := time.Parse(dateFormat, s)
	return err == nil
}

// parseSignedHeaders splits a SignedHeaders value into lower-case names,
// refusing empty and repeated names.
func parseSignedHeaders(v string) ([]string, string) {
	names := strings.Split(v, ";")
	if len(names) > maxSignedHeaders {
		return nil, "too many signed headers."
	}
	for i, n := range names {
		n = strings.ToLower(n)
		if n == "" || strings.ContainsAny(n, " \t:") {
			return nil, "the SignedHeaders list is malformed."
		}
		for _, prev := range names[:i] {
			if prev == n {
				return nil, "header \"" + clip(n) + "\" is listed twice in SignedHeaders."
			}
		}
		names[i] = n
	}
	return names, ""
}

// queryParam is one decoded query parameter.
type queryParam struct {
	name, value string
}

// parseQuery decodes a raw query string the way S3 servers do ('+' is a
// space), keeping parameter order and empty values. Unlike url.ParseQuery it
// treats ';' as an ordinary character. It fails on bad %-escapes.
func parseQuery(raw string) ([]queryParam, bool) {
	if raw == "" {
		return nil, true
	}
	params := make([]queryParam, 0, strings.Count(raw, "&")+1)
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			return nil, false
		}
		value, err := url.QueryUnescape(v)
		if err != nil {
			return nil, false
		}
		params = append(params, queryParam{name, value})
	}
	return params, true
}

// lookup returns the values of name among params.
func lookup(params []queryParam, name string) (string, int) {
	var v string
	n := 0
	for _, p := range params {
		if p.name == name {
			if n == 0 {
				v = p.value
			}
			n++
		}
	}
	return v, n
}
