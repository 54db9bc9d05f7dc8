package sigv4

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// v2Vectors are the known answers in testdata/sigv2/vectors.json, computed
// by botocore's HmacV1 signers (testdata/sigv2/gen.py).
type v2Vectors struct {
	AccessKeyID     string     `json:"access_key_id"`
	SecretAccessKey string     `json:"secret_access_key"`
	Now             int64      `json:"now"`
	Body            string     `json:"body"` // the body of every request with Content-MD5
	Header          []v2Vector `json:"header"`
	Presigned       []v2Vector `json:"presigned"`
}

type v2Vector struct {
	Name              string      `json:"name"`
	Method            string      `json:"method"`
	URL               string      `json:"url"`
	Headers           [][2]string `json:"headers"`
	VirtualHostBucket string      `json:"virtual_host_bucket"`
	StringToSign      string      `json:"string_to_sign"`
}

func loadV2Vectors(t testing.TB) v2Vectors {
	t.Helper()
	b, err := os.ReadFile("testdata/sigv2/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v v2Vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Header) < 10 || len(v.Presigned) < 3 {
		t.Fatalf("only %d header and %d presigned vectors", len(v.Header), len(v.Presigned))
	}
	return v
}

// v2Verifier verifies with the vectors' credentials at time now; hosts
// under s3.example.test are virtual-hosted.
func v2Verifier(vs v2Vectors, now time.Time) *Verifier {
	return &Verifier{
		Lookup: StaticLookup(Credentials{vs.AccessKeyID, vs.SecretAccessKey}, Credentials{testAKID, testSecret}),
		Now:    func() time.Time { return now },
		VirtualHostBucket: func(r *http.Request) string {
			host, _, _ := strings.Cut(r.Host, ":")
			b, ok := strings.CutSuffix(host, ".s3.example.test")
			if !ok {
				return ""
			}
			return b
		},
	}
}

// v2Request builds the server's view of a vector's request, as net/http
// parses it off the wire (RequestURI as sent).
func v2Request(t testing.TB, c v2Vector, body []byte, withHeaders bool) *http.Request {
	t.Helper()
	u, err := url.Parse(c.URL)
	if err != nil {
		t.Fatal(err)
	}
	r, err := http.NewRequest(c.Method, c.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if withHeaders {
		for _, h := range c.Headers {
			r.Header.Add(h[0], h[1])
		}
	}
	s := toServer(t, r)
	if s.RequestURI != u.RequestURI() {
		t.Fatalf("request URI %q, want %q as sent", s.RequestURI, u.RequestURI())
	}
	return s
}

func TestSigV2Vectors(t *testing.T) {
	vs := loadV2Vectors(t)
	now := time.Unix(vs.Now, 0)
	check := func(t *testing.T, c v2Vector, r *http.Request, presigned bool) {
		v := v2Verifier(vs, now.Add(90*time.Second))
		var got []string
		v.debugCanonical = func(_, sts string) { got = append(got, sts) }
		res, err := v.Verify(r)
		if err != nil {
			t.Fatalf("Verify: %v (strings to sign %q, want %q)", err, got, c.StringToSign)
		}
		if !slices.Contains(got, c.StringToSign) {
			t.Fatalf("strings to sign %q, want %q", got, c.StringToSign)
		}
		if !res.SigV2 || res.Presigned != presigned || res.AccessKeyID != vs.AccessKeyID || res.Mode != UnsignedPayload {
			t.Fatalf("result %+v", res)
		}
		if _, err := readBody(res.Body, 7); err != nil {
			t.Fatalf("body: %v", err)
		}
	}
	for _, c := range vs.Header {
		t.Run("header/"+c.Name, func(t *testing.T) {
			var body []byte
			for _, h := range c.Headers {
				if strings.EqualFold(h[0], "Content-MD5") && h[1] != "1B2M2Y8AsgTpgAmY7PhCfg==" {
					body = []byte(vs.Body)
				}
			}
			check(t, c, v2Request(t, c, body, true), false)
		})
	}
	for _, c := range vs.Presigned {
		t.Run("presigned/"+c.Name, func(t *testing.T) {
			// botocore moves signed headers into the URL; a client may
			// send them as headers as well.
			check(t, c, v2Request(t, c, nil, false), true)
			check(t, c, v2Request(t, c, nil, true), true)
		})
	}
}

func TestSigV2SubResourcesSorted(t *testing.T) {
	if !slices.IsSorted(v2SubResources) {
		t.Fatal("v2SubResources must be sorted for binary search")
	}
	for _, s := range []string{"acl", "lifecycle", "location", "logging", "notification", "partNumber", "policy",
		"requestPayment", "torrent", "uploadId", "uploads", "versionId", "versioning", "versions", "website",
		"delete", "cors", "tagging", "restore", "response-content-type", "response-expires"} {
		if _, ok := slices.BinarySearch(v2SubResources, s); !ok {
			t.Errorf("sub-resource %q is not signed", s)
		}
	}
}

// v2Case returns the named vector.
func v2Case(t testing.TB, list []v2Vector, name string) v2Vector {
	t.Helper()
	for _, c := range list {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no vector %q", name)
	return v2Vector{}
}

func TestSigV2Negative(t *testing.T) {
	vs := loadV2Vectors(t)
	now := time.Unix(vs.Now, 0)
	put := v2Case(t, vs.Header, "put with md5 type and amz headers")
	get := v2Case(t, vs.Header, "get object")
	sub := v2Case(t, vs.Header, "upload part")
	pre := v2Case(t, vs.Presigned, "presigned get")
	preOverride := v2Case(t, vs.Presigned, "presigned get with overrides")
	vhost := v2Case(t, vs.Header, "virtual-hosted")
	edit := func(c v2Vector, f func(*http.Request)) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			r := v2Request(t, c, nil, true)
			if f != nil {
				f(r)
			}
			return r
		}
	}
	setQuery := func(c v2Vector, raw string) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			r := v2Request(t, c, nil, true)
			r.URL.RawQuery = raw
			r.RequestURI = r.URL.RequestURI()
			return r
		}
	}
	preQuery := func(c v2Vector, f func(url.Values)) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			r := v2Request(t, c, nil, true)
			q := r.URL.Query()
			f(q)
			r.URL.RawQuery = q.Encode()
			r.RequestURI = r.URL.RequestURI()
			return r
		}
	}
	cases := []struct {
		name  string
		build func(t *testing.T) *http.Request
		now   time.Time
		code  string
		msg   string
		edit  func(*Verifier)
	}{
		{name: "wrong secret", build: edit(get, nil), code: "SignatureDoesNotMatch", edit: func(v *Verifier) {
			v.Lookup = StaticLookup(Credentials{vs.AccessKeyID, "not-the-secret"})
		}},
		{name: "unknown key", build: edit(get, func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), vs.AccessKeyID, "NOBODY", 1))
		}), code: "InvalidAccessKeyId"},
		{name: "method", build: edit(get, func(r *http.Request) { r.Method = http.MethodDelete }), code: "SignatureDoesNotMatch"},
		{name: "path", build: edit(get, func(r *http.Request) {
			r.RequestURI, r.URL.Path = "/bucket/key.txu", "/bucket/key.txu"
		}), code: "SignatureDoesNotMatch"},
		{name: "other bucket, same path", build: edit(vhost, func(r *http.Request) { r.Host = "other.s3.example.test:9000" }), code: "SignatureDoesNotMatch"},
		{name: "virtual host as path style", build: edit(vhost, func(r *http.Request) { r.Host = "127.0.0.1:9000" }), code: "SignatureDoesNotMatch"},
		{name: "content-type", build: edit(put, func(r *http.Request) { r.Header.Set("Content-Type", "text/html") }), code: "SignatureDoesNotMatch"},
		{name: "content-md5 removed", build: edit(put, func(r *http.Request) { r.Header.Del("Content-Md5") }), code: "SignatureDoesNotMatch"},
		{name: "amz header value", build: edit(put, func(r *http.Request) { r.Header.Set("X-Amz-Acl", "public-read") }), code: "SignatureDoesNotMatch"},
		{name: "amz header added", build: edit(put, func(r *http.Request) { r.Header.Set("X-Amz-Meta-Extra", "1") }), code: "SignatureDoesNotMatch"},
		{name: "amz header removed", build: edit(put, func(r *http.Request) { r.Header.Del("X-Amz-Storage-Class") }), code: "SignatureDoesNotMatch"},
		{name: "date within skew", build: edit(get, func(r *http.Request) {
			r.Header.Set("Date", now.Add(time.Second).UTC().Format(http.TimeFormat))
		}), code: "SignatureDoesNotMatch"},
		{name: "sub-resource value", build: setQuery(sub, "partNumber=3&uploadId=abc%2Bdef%2F1"), code: "SignatureDoesNotMatch"},
		{name: "sub-resource added", build: setQuery(get, "acl"), code: "SignatureDoesNotMatch"},
		{name: "sub-resource removed", build: setQuery(sub, "uploadId=abc%2Bdef%2F1"), code: "SignatureDoesNotMatch"},
		{name: "signature of a sha1 of nothing", build: edit(get, func(r *http.Request) {
			r.Header.Set("Authorization", "AWS "+vs.AccessKeyID+":2jmj7l5rSw0yVb/vlWAYkK/YBwk=")
		}), code: "SignatureDoesNotMatch"},
		{name: "skewed ahead", build: edit(get, nil), now: now.Add(-16 * time.Minute), code: "RequestTimeTooSkewed"},
		{name: "skewed behind", build: edit(get, nil), now: now.Add(16 * time.Minute), code: "RequestTimeTooSkewed"},
		{name: "missing date", build: edit(get, func(r *http.Request) { r.Header.Del("Date") }), code: "AccessDenied", msg: "Date or x-amz-date"},
		{name: "unparsable date", build: edit(get, func(r *http.Request) { r.Header.Set("Date", "yesterday") }), code: "AccessDenied", msg: "Date or x-amz-date"},
		{name: "two x-amz-date", build: edit(get, func(r *http.Request) {
			r.Header.Add("X-Amz-Date", r.Header.Get("Date"))
			r.Header.Add("X-Amz-Date", r.Header.Get("Date"))
		}), code: "AccessDenied"},
		{name: "no colon", build: edit(get, func(r *http.Request) { r.Header.Set("Authorization", "AWS "+vs.AccessKeyID) }), code: "InvalidArgument"},
		{name: "empty key id", build: edit(get, func(r *http.Request) { r.Header.Set("Authorization", "AWS :abc=") }), code: "InvalidArgument"},
		{name: "empty signature", build: edit(get, func(r *http.Request) { r.Header.Set("Authorization", "AWS "+vs.AccessKeyID+":") }), code: "InvalidArgument"},
		{name: "header and query", build: edit(pre, func(r *http.Request) { r.Header.Set("Authorization", "AWS a:b") }), code: "InvalidArgument"},
		{name: "v2 and v4 query", build: setQuery(pre, "AWSAccessKeyId=a&Signature=b&Expires=1&X-Amz-Algorithm=AWS4-HMAC-SHA256"), code: "InvalidArgument"},
		{name: "presigned expired", build: edit(pre, nil), now: now.Add(901 * time.Second), code: "AccessDenied", msg: "Request has expired"},
		{name: "presigned expires changed", build: preQuery(pre, func(q url.Values) { q.Set("Expires", strconv.FormatInt(vs.Now+3600, 10)) }), code: "SignatureDoesNotMatch"},
		{name: "presigned expires not a number", build: preQuery(pre, func(q url.Values) { q.Set("Expires", "soon") }), code: "AccessDenied", msg: "Invalid date"},
		{name: "presigned expires negative", build: preQuery(pre, func(q url.Values) { q.Set("Expires", "-5") }), code: "AccessDenied", msg: "Invalid date"},
		{name: "presigned missing signature", build: preQuery(pre, func(q url.Values) { q.Del("Signature") }), code: "AccessDenied", msg: "requires the Signature"},
		{name: "presigned missing key", build: preQuery(pre, func(q url.Values) { q.Del("AWSAccessKeyId") }), code: "AccessDenied", msg: "requires the Signature"},
		{name: "presigned missing expires", build: preQuery(pre, func(q url.Values) { q.Del("Expires") }), code: "AccessDenied", msg: "requires the Signature"},
		{name: "presigned repeated signature", build: preQuery(pre, func(q url.Values) { q.Add("Signature", q.Get("Signature")) }), code: "AccessDenied"},
		{name: "presigned override changed", build: preQuery(preOverride, func(q url.Values) { q.Set("response-content-disposition", "inline") }), code: "SignatureDoesNotMatch"},
		{name: "presigned override added", build: preQuery(pre, func(q url.Values) { q.Set("response-content-type", "text/html") }), code: "SignatureDoesNotMatch"},
		{name: "presigned amz header added", build: edit(pre, func(r *http.Request) { r.Header.Set("X-Amz-Acl", "public-read") }), code: "SignatureDoesNotMatch"},
		{name: "disabled", build: edit(get, nil), code: "InvalidRequest", edit: func(v *Verifier) { v.DisableSigV2 = true }},
		{name: "disabled presigned", build: edit(pre, nil), code: "InvalidRequest", edit: func(v *Verifier) { v.DisableSigV2 = true }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			at := c.now
			if at.IsZero() {
				at = now
			}
			v := v2Verifier(vs, at)
			if c.edit != nil {
				c.edit(v)
			}
			_, err := v.Verify(c.build(t))
			e := expectCode(t, err, c.code)
			if c.msg != "" && !strings.Contains(e.Message, c.msg) {
				t.Fatalf("message %q, want it to contain %q", e.Message, c.msg)
			}
			if c.code == "InvalidRequest" && !errors.Is(err, ErrSignatureV2) {
				t.Fatal("refused SigV2 not marked with ErrSignatureV2")
			}
			expectNoSecrets(t, err, vs.SecretAccessKey, "not-the-secret", "GET\n")
		})
	}
}

// TestSigV2UnsignedQuery checks that parameters SigV2 does not sign may
// change, as on S3 (the client's own x-id, list parameters).
func TestSigV2UnsignedQuery(t *testing.T) {
	vs := loadV2Vectors(t)
	c := v2Case(t, vs.Header, "list objects v2 (nothing signed in the query)")
	r := v2Request(t, c, nil, true)
	r.URL.RawQuery = "list-type=2&prefix=other"
	r.RequestURI = r.URL.RequestURI()
	if _, err := v2Verifier(vs, time.Unix(vs.Now, 0)).Verify(r); err != nil {
		t.Fatal(err)
	}
}

// signV2 signs r with an independent, test-side SigV2 implementation of
// the simple case: path-style, no sub-resources.
func signV2(r *http.Request, secret string) {
	var amz []string
	for k := range r.Header {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-amz-") {
			amz = append(amz, lk+":"+strings.Join(r.Header.Values(k), ",")+"\n")
		}
	}
	slices.Sort(amz)
	sts := r.Method + "\n" + r.Header.Get("Content-MD5") + "\n" + r.Header.Get("Content-Type") + "\n" +
		r.Header.Get("Date") + "\n" + strings.Join(amz, "") + r.URL.EscapedPath()
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(sts))
	r.Header.Set("Authorization", "AWS "+testAKID+":"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
}

func TestSigV2ContentMD5(t *testing.T) {
	body := testBody(200_000)
	sum := md5.Sum(body)
	good := base64.StdEncoding.EncodeToString(sum[:])
	bad := body[: len(body)-1 : len(body)-1]
	bad = append(bad, body[len(body)-1]^1)
	build := func(t *testing.T, b []byte, md5 string) *http.Request {
		r, _ := http.NewRequest(http.MethodPut, "https://"+testHost+"/bucket/obj", bytes.NewReader(b))
		r.Header.Set("Date", testTime.Format(http.TimeFormat))
		r.Header.Set("Content-Type", "application/octet-stream")
		if md5 != "" {
			r.Header.Set("Content-MD5", md5)
		}
		signV2(r, testSecret)
		return toServer(t, r)
	}
	t.Run("match", func(t *testing.T) {
		res, err := newTestVerifier().Verify(build(t, body, good))
		if err != nil {
			t.Fatal(err)
		}
		got, err := readBody(res.Body, 4096)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("body %d bytes, err %v", len(got), err)
		}
	})
	t.Run("mismatch withholds the last byte", func(t *testing.T) {
		res, err := newTestVerifier().Verify(build(t, bad, good))
		if err != nil {
			t.Fatal(err)
		}
		got, err := readBody(res.Body, 4096)
		expectCode(t, err, "BadDigest")
		if len(got) >= len(bad) {
			t.Fatalf("released %d of %d bytes before failing", len(got), len(bad))
		}
	})
	t.Run("invalid", func(t *testing.T) {
		_, err := newTestVerifier().Verify(build(t, body, "not-md5"))
		expectCode(t, err, "InvalidDigest")
	})
	t.Run("empty body", func(t *testing.T) {
		empty := md5.Sum(nil)
		res, err := newTestVerifier().Verify(build(t, nil, base64.StdEncoding.EncodeToString(empty[:])))
		if err != nil {
			t.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, res.Body); n != 0 || err != nil {
			t.Fatal(n, err)
		}
		_, err = newTestVerifier().Verify(build(t, nil, good))
		expectCode(t, err, "BadDigest")
	})
	t.Run("no md5", func(t *testing.T) {
		res, err := newTestVerifier().Verify(build(t, body, ""))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := readBody(res.Body, 1<<16); err != nil || !bytes.Equal(got, body) {
			t.Fatal(len(got), err)
		}
	})
	t.Run("x-amz-date", func(t *testing.T) {
		r, _ := http.NewRequest(http.MethodGet, "https://"+testHost+"/bucket/obj", nil)
		r.Header.Set("X-Amz-Date", testTime.Format(http.TimeFormat))
		signV2(r, testSecret) // Date line empty: S3's rule and s3cmd's
		if _, err := newTestVerifier().Verify(toServer(t, r)); err != nil {
			t.Fatal(err)
		}
		r.Header.Set("X-Amz-Date", testTime.Add(-time.Hour).Format(http.TimeFormat))
		signV2(r, testSecret)
		_, err := newTestVerifier().Verify(toServer(t, r))
		expectCode(t, err, "RequestTimeTooSkewed")
	})
}

func TestFoldSpace(t *testing.T) {
	for in, want := range map[string]string{
		"  a b  ":        "a b",
		"a\r\n  b":       "a b",
		"a\n\tb\n c":     "a b c",
		"\t":             "",
		"x,\r\n\r\n   y": "x, y",
	} {
		if got := foldSpace(in); got != want {
			t.Errorf("foldSpace(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzSigV2(f *testing.F) {
	f.Add("AWS AKID:sig", "/bucket/key", "acl&x=1", "v")
	f.Add("AWS a:b:c", "/b/%C3%A9", "partNumber=1&uploadId=%zz", " x \r\n y ")
	f.Add("AWS  AKID :  ", "/", "AWSAccessKeyId=a&Signature=b&Expires=99999999999", "")
	f.Add("AWS "+testAKID+":", "//a/../b", "uploads=&uploads", "\x00")
	f.Fuzz(func(t *testing.T, authz, path, rawQuery, amz string) {
		if _, _, ok := parseV2Authorization(authz); ok && !strings.HasPrefix(strings.TrimLeft(authz, " \t"), v2Prefix) {
			t.Fatalf("accepted %q without the AWS prefix", authz)
		}
		r := &http.Request{Method: http.MethodGet, Header: http.Header{}, Host: testHost,
			URL: &url.URL{Path: path, RawQuery: rawQuery}, RequestURI: path + "?" + rawQuery}
		r.Header.Set("Date", testTime.Format(http.TimeFormat))
		r.Header.Set("X-Amz-Meta-F", amz)
		r.Header.Set("Authorization", authz)
		v := newTestVerifier()
		if res, err := v.Verify(r); err == nil {
			t.Fatalf("fuzzed signature accepted: %+v", res)
		}
		// A request signed with the verifier's own rules verifies, and
		// any other signature does not.
		params, ok := parseQuery(rawQuery)
		if !ok || len(r.Header.Values("X-Amz-Meta-F")) == 0 {
			return
		}
		for _, p := range params {
			if p.name == "AWSAccessKeyId" || p.name == "Signature" || strings.HasPrefix(p.name, "X-Amz-") {
				return
			}
		}
		sts := v2StringToSign(r, params, false, r.Header.Get("Date"), "", v2Paths(r)[0])
		r.Header.Set("Authorization", "AWS "+testAKID+":"+string(v2Sign(testSecret, sts)))
		if _, err := v.Verify(r); err != nil {
			t.Fatalf("self-signed request refused: %v", err)
		}
	})
}
