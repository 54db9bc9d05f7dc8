package sigv4

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// authCase is a request that must be refused by Verify.
type authCase struct {
	name  string
	build func(t *testing.T) *http.Request // a server-side request
	setup func(v *Verifier)
	code  string
	field string // an XML field the error must carry
}

func signedGet(t *testing.T, mutate func(r *http.Request)) *http.Request {
	r := newClientRequest(t, http.MethodGet, "k", "", nil)
	r.Header.Set("X-Amz-Meta-Color", "blue")
	signSDK(t, r, emptySHA256, testTime)
	s := toServer(t, r)
	if mutate != nil {
		mutate(s)
	}
	return s
}

func presignedGet(t *testing.T, expires time.Duration, mutate func(q url.Values)) *http.Request {
	r := newClientRequest(t, http.MethodGet, "k", "", nil)
	p := toServer(t, presignSDK(t, r, expires, testTime))
	if mutate != nil {
		q := p.URL.Query()
		mutate(q)
		p.URL.RawQuery = q.Encode()
	}
	return p
}

// setAuth rewrites one component of the Authorization header.
func setAuth(r *http.Request, from, to string) {
	r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), from, to, 1))
}

func TestVerifyRefusals(t *testing.T) {
	scope := testTime.Format(dateFormat) + "/" + testRegion + "/s3/aws4_request"
	cases := []authCase{
		{name: "wrong secret", build: func(t *testing.T) *http.Request { return signedGet(t, nil) },
			setup: func(v *Verifier) { v.Lookup = StaticLookup(Credentials{testAKID, "wrong"}) }, code: "SignatureDoesNotMatch"},
		{name: "unknown key", build: func(t *testing.T) *http.Request {
			return signedGet(t, func(r *http.Request) { setAuth(r, testAKID+"/", "NOSUCHKEY/") })
		}, code: "InvalidAccessKeyId"},
		{name: "no lookup", build: func(t *testing.T) *http.Request { return signedGet(t, nil) },
			setup: func(v *Verifier) { v.Lookup = nil }, code: "InvalidAccessKeyId"},
		{name: "tampered signed header", build: func(t *testing.T) *http.Request {
			return signedGet(t, func(r *http.Request) { r.Header.Set("X-Amz-Meta-Color", "red") })
		}, code: "SignatureDoesNotMatch"},
		{name: "tampered path", build: func(t *testing.T) *http.Request {
			return signedGet(t, func(r *http.Request) { r.URL.Path = "/bucket/other" })
		}, code: "SignatureDoesNotMatch"},
		{name: "added query parameter", build: func(t *testing.T) *http.Request {
			return signedGet(t, func(r *http.Request) { r.URL.RawQuery = "acl" })
		}, code: "SignatureDoesNotMatch"},
		{name: "tampered method", build: func(t *testing.T) *http.Request {
			return signedGet(t, func(r *http.Request) { r.Method = http.MethodDelete })
		}, code: "SignatureDoesNotMatch"},
		{name: "tampered host", build: func(t *testing.T) *http.Request {
			return signedGet(t, func(r *http.Request) { r.Host = "evil.test" })
		}, code: "SignatureDoesNotMatch"},
		{name: "truncated signature", build: func(t *testing.T) *http.Request {
			return signedGet(t, func(r *http.Request) {
				r.Header.Set("Authorization", r.Header.Get("Authorization")[:len(r.Header.Get("Authorization"))-2])
			})
		}, code: "SignatureDoesNotMatch"},
		{name: "unsigned x-amz header", build: func(t *testing.T) *http.Request {
			return signedGet(t, func(r *http.Request) { r.Header.Set("X-Amz-Server-Side-Encryption", "AES256") })
		}, code: "AccessDenied", field: "x-amz-server-side-encryption"},
		{name: "unsigned x-amz-meta header", build: func(t *testing.T) *http.Request {
			return signedGet(t, func(r *http.Request) { r.Header.Set("x-amz-meta-extra", "1") })
		}, code: "AccessDenied", field: "x-amz-meta-extra"},
		{name: "host not signed", build: func(t *testing.T) *http.Request {
			return signedGet(t, func(r *http.Request) { setAuth(r, "SignedHeaders=host;", "SignedHeaders=") })
		}, code: "AccessDenied", field: "host"},
		{name: "skew ahead", build: func(t *testing.T) *http.Request { return signedGet(t, nil) },
			setup: func(v *Verifier) { v.Now = func() time.Time { return testTime.Add(-16 * time.Minute) } }, code: "RequestTimeTooSkewed", field: "MaxAllowedSkewMilliseconds"},
		{name: "skew behind", build: func(t *testing.T) *http.Request { return signedGet(t, nil) },
			setup: func(v *Verifier) { v.Now = func() time.Time { return testTime.Add(16 * time.Minute) } }, code: "RequestTimeTooSkewed"},
		{name: "custom skew", build: func(t *testing.T) *http.Request { return signedGet(t, nil) },
			setup: func(v *Verifier) {
				v.MaxSkew = time.Minute
				v.Now = func() time.Time { return testTime.Add(2 * time.Minute) }
			}, code: "RequestTimeTooSkewed"},
		{name: "missing date", build: func(t *testing.T) *http.Request {
			return signedGet(t, func(r *http.Request) { r.Header.Del("X-Amz-Date") })
		}, code: "AccessDenied"},
		{name: "malformed date", build: func(t *testing.T) *http.Request {
			return signedGet(t, func(r *http.Request) { r.Header.Set("X-Amz-Date", "2025-03-04T05:06:07Z") })
		}, code: "AccessDenied"},
		{name: "scope date differs", build: func(t *testing.T) *http.Request {
			return signedGet(t, func(r *http.Request) { setAuth(r, "/20250304/", "/20250305/") })
		}, code: "AuthorizationHeaderMalformed"},
		{name: "scope service", build: func(t *testing.T) *http.Request {
			return signedGet(t, func(r *http.Request) { setAuth(r, "/s3/", "/iam/") })
		}, code: "AuthorizationHeaderMalformed"},
		{name: "scope terminator", build: func(t *testing.T) *http.Request {
			return signedGet(t, func(r *http.Request) { setAuth(r, "/aws4_request", "/aws4_reqest") })
		}, code: "AuthorizationHeaderMalformed"},
		{name: "scope too short", build: func(t *testing.T) *http.Request {
			return signedGet(t, func(r *http.Request) { setAuth(r, "/"+testRegion+"/s3", "") })
		}, code: "AuthorizationHeaderMalformed"},
		{name: "wrong region", build: func(t *testing.T) *http.Request { return signedGet(t, nil) },
			setup: func(v *Verifier) { v.Region = "us-east-1" }, code: "AuthorizationHeaderMalformed", field: "us-east-1"},
		{name: "missing signature", build: func(t *testing.T) *http.Request {
			return signedGet(t, func(r *http.Request) { setAuth(r, ", Signature=", ", Sig=") })
		}, code: "AuthorizationHeaderMalformed"},
		{name: "duplicate component", build: func(t *testing.T) *http.Request {
			return signedGet(t, func(r *http.Request) { r.Header.Set("Authorization", r.Header.Get("Authorization")+", Signature=00") })
		}, code: "AuthorizationHeaderMalformed"},
		{name: "two authorization headers", build: func(t *testing.T) *http.Request {
			return signedGet(t, func(r *http.Request) { r.Header.Add("Authorization", r.Header.Get("Authorization")) })
		}, code: "AuthorizationHeaderMalformed"},
		{name: "missing x-amz-content-sha256", build: func(t *testing.T) *http.Request {
			return signedGet(t, func(r *http.Request) { r.Header.Del("X-Amz-Content-Sha256") })
		}, code: "InvalidRequest"},
		{name: "invalid x-amz-content-sha256", build: func(t *testing.T) *http.Request {
			return signedGet(t, func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-EVENTS") })
		}, code: "InvalidArgument"},
		{name: "header and presigned", build: func(t *testing.T) *http.Request {
			return signedGet(t, func(r *http.Request) { r.URL.RawQuery = "X-Amz-Signature=00" })
		}, code: "InvalidArgument"},
		{name: "bad query escape", build: func(t *testing.T) *http.Request {
			return signedGet(t, func(r *http.Request) { r.URL.RawQuery = "a=%zz" })
		}, code: "InvalidArgument"},
		{name: "sigv2 header", build: func(t *testing.T) *http.Request {
			return signedGet(t, func(r *http.Request) { r.Header.Set("Authorization", "AWS "+testAKID+":c2lnbmF0dXJl") })
		}, code: "SignatureDoesNotMatch"},
		{name: "sigv2 query expired", build: func(t *testing.T) *http.Request {
			r, _ := http.NewRequest(http.MethodGet, "http://h/b/k?AWSAccessKeyId=x&Expires=9&Signature=y", nil)
			return r
		}, code: "AccessDenied"},
		{name: "anonymous", build: func(t *testing.T) *http.Request {
			r, _ := http.NewRequest(http.MethodGet, "http://h/b/k", nil)
			return r
		}, code: "AccessDenied"},

		{name: "presigned expired", build: func(t *testing.T) *http.Request { return presignedGet(t, time.Minute, nil) },
			setup: func(v *Verifier) { v.Now = func() time.Time { return testTime.Add(61 * time.Second) } }, code: "AccessDenied", field: "X-Amz-Expires"},
		{name: "presigned not yet valid", build: func(t *testing.T) *http.Request { return presignedGet(t, time.Hour, nil) },
			setup: func(v *Verifier) { v.Now = func() time.Time { return testTime.Add(-time.Hour) } }, code: "AccessDenied"},
		{name: "presigned wrong secret", build: func(t *testing.T) *http.Request { return presignedGet(t, time.Hour, nil) },
			setup: func(v *Verifier) { v.Lookup = StaticLookup(Credentials{testAKID, "wrong"}) }, code: "SignatureDoesNotMatch"},
		{name: "presigned unknown key", build: func(t *testing.T) *http.Request {
			return presignedGet(t, time.Hour, func(q url.Values) { q.Set("X-Amz-Credential", "NOSUCHKEY/"+scope) })
		}, code: "InvalidAccessKeyId"},
		{name: "presigned extended expiry", build: func(t *testing.T) *http.Request {
			return presignedGet(t, time.Hour, func(q url.Values) { q.Set("X-Amz-Expires", "7200") })
		}, code: "SignatureDoesNotMatch"},
		{name: "presigned expiry too long", build: func(t *testing.T) *http.Request {
			return presignedGet(t, time.Hour, func(q url.Values) { q.Set("X-Amz-Expires", "604801") })
		}, code: "AuthorizationQueryParametersError"},
		{name: "presigned expiry overflow", build: func(t *testing.T) *http.Request {
			return presignedGet(t, time.Hour, func(q url.Values) { q.Set("X-Amz-Expires", "99999999999999999999") })
		}, code: "AuthorizationQueryParametersError"},
		{name: "presigned expiry that overflows a duration", build: func(t *testing.T) *http.Request {
			return presignedGet(t, time.Hour, func(q url.Values) { q.Set("X-Amz-Expires", "1000000000000000000") })
		}, code: "AuthorizationQueryParametersError"},
		{name: "presigned expiry zero", build: func(t *testing.T) *http.Request {
			return presignedGet(t, time.Hour, func(q url.Values) { q.Set("X-Amz-Expires", "0") })
		}, code: "AuthorizationQueryParametersError"},
		{name: "presigned expiry negative", build: func(t *testing.T) *http.Request {
			return presignedGet(t, time.Hour, func(q url.Values) { q.Set("X-Amz-Expires", "-5") })
		}, code: "AuthorizationQueryParametersError"},
		{name: "presigned expiry not a number", build: func(t *testing.T) *http.Request {
			return presignedGet(t, time.Hour, func(q url.Values) { q.Set("X-Amz-Expires", "1h") })
		}, code: "AuthorizationQueryParametersError"},
		{name: "presigned missing parameter", build: func(t *testing.T) *http.Request {
			return presignedGet(t, time.Hour, func(q url.Values) { q.Del("X-Amz-Date") })
		}, code: "AuthorizationQueryParametersError"},
		{name: "presigned repeated parameter", build: func(t *testing.T) *http.Request {
			return presignedGet(t, time.Hour, func(q url.Values) { q.Add("X-Amz-Signature", "00") })
		}, code: "AuthorizationQueryParametersError"},
		{name: "presigned algorithm", build: func(t *testing.T) *http.Request {
			return presignedGet(t, time.Hour, func(q url.Values) { q.Set("X-Amz-Algorithm", "AWS4-HMAC-SHA1") })
		}, code: "AuthorizationQueryParametersError"},
		{name: "presigned credential", build: func(t *testing.T) *http.Request {
			return presignedGet(t, time.Hour, func(q url.Values) { q.Set("X-Amz-Credential", testAKID+"/20250304/"+testRegion+"/s3") })
		}, code: "AuthorizationQueryParametersError"},
		{name: "presigned date", build: func(t *testing.T) *http.Request {
			return presignedGet(t, time.Hour, func(q url.Values) { q.Set("X-Amz-Date", "yesterday") })
		}, code: "AuthorizationQueryParametersError"},
		{name: "presigned scope date differs", build: func(t *testing.T) *http.Request {
			return presignedGet(t, time.Hour, func(q url.Values) { q.Set("X-Amz-Date", "20250305T050607Z") })
		}, code: "AuthorizationQueryParametersError"},
		{name: "presigned wrong region", build: func(t *testing.T) *http.Request { return presignedGet(t, time.Hour, nil) },
			setup: func(v *Verifier) { v.Region = "us-east-1" }, code: "AuthorizationQueryParametersError"},
		{name: "presigned host not signed", build: func(t *testing.T) *http.Request {
			return presignedGet(t, time.Hour, func(q url.Values) { q.Set("X-Amz-SignedHeaders", "x-amz-date") })
		}, code: "AccessDenied"},
		{name: "presigned unsigned x-amz header", build: func(t *testing.T) *http.Request {
			r := presignedGet(t, time.Hour, nil)
			r.Header.Set("X-Amz-Acl", "public-read")
			return r
		}, code: "AccessDenied", field: "x-amz-acl"},
		{name: "presigned streaming payload", build: func(t *testing.T) *http.Request {
			return presignedGet(t, time.Hour, func(q url.Values) { q.Set("X-Amz-Content-Sha256", streamingPayload) })
		}, code: "InvalidRequest"},
		{name: "presigned tampered query", build: func(t *testing.T) *http.Request {
			return presignedGet(t, time.Hour, func(q url.Values) { q.Set("versionId", "2") })
		}, code: "SignatureDoesNotMatch"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := newTestVerifier()
			if c.setup != nil {
				c.setup(v)
			}
			r := c.build(t)
			sig := r.Header.Get("Authorization")
			if i := strings.Index(sig, "Signature="); i >= 0 {
				sig = sig[i+len("Signature="):]
			} else {
				sig = r.URL.Query().Get("X-Amz-Signature")
			}
			res, err := v.Verify(r)
			if res != nil {
				t.Fatalf("accepted: %+v", res)
			}
			e := expectCode(t, err, c.code)
			expectNoSecrets(t, err, sig)
			if c.field != "" {
				found := false
				for _, f := range e.Extra {
					if strings.Contains(f.Name+"="+f.Value, c.field) {
						found = true
					}
				}
				if !found {
					t.Fatalf("error lacks field %q: %+v", c.field, e.Extra)
				}
			}
		})
	}
}

// Spacing variants of the Authorization header that real clients send.
func TestAuthorizationSpacing(t *testing.T) {
	v := newTestVerifier()
	r := newClientRequest(t, http.MethodGet, "k", "", nil)
	signSDK(t, r, emptySHA256, testTime)
	orig := r.Header.Get("Authorization")
	variants := []string{
		orig,
		strings.ReplaceAll(orig, ", ", ","),
		strings.ReplaceAll(orig, ", ", " , "),
		strings.Replace(orig, "AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA256   ", 1),
		strings.Replace(strings.ReplaceAll(orig, "=", " = "), "AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA256\t", 1),
		"  " + orig + ",",
	}
	for _, a := range variants {
		s := toServer(t, r)
		s.Header.Set("Authorization", a)
		if _, err := v.Verify(s); err != nil {
			t.Errorf("%q: %v", a, err)
		}
	}
}

// Go's server and intermediaries move or drop some signed headers; the
// verifier rebuilds them as they were sent.
func TestSignedTransportHeaders(t *testing.T) {
	v := newTestVerifier()
	body := testBody(10)
	build := func() *http.Request {
		r := newClientRequest(t, http.MethodPut, "k", "", body)
		signSDK(t, r, hexSHA256(body), testTime)
		if !strings.Contains(r.Header.Get("Authorization"), "content-length") {
			t.Fatal("the SDK did not sign content-length")
		}
		return r
	}
	s := toServer(t, build())
	s.Header.Del("Content-Length")
	if _, err := v.Verify(s); err != nil {
		t.Fatalf("content-length from the request field: %v", err)
	}
	s = toServer(t, build())
	s.Header.Set("Content-Length", "11")
	_, err := v.Verify(s)
	expectCode(t, err, "SignatureDoesNotMatch")
}

// specSign signs a request from its canonical parts with an implementation
// of the specification written for the test: method, canonical URI and
// query as given, headers as "name:value" lines already canonical.
func specSign(r *http.Request, canonURI, canonQuery string, headers []string, payload string) {
	var names []string
	for _, h := range headers {
		names = append(names, h[:strings.IndexByte(h, ':')])
	}
	amzDate := testTime.Format(iso8601Format)
	creq := r.Method + "\n" + canonURI + "\n" + canonQuery + "\n" + strings.Join(headers, "\n") + "\n\n" + strings.Join(names, ";") + "\n" + payload
	scope := testTime.Format(dateFormat) + "/" + testRegion + "/s3/aws4_request"
	sts := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hexSHA256([]byte(creq))
	sig := specHMAC(specKey(testSecret, testTime.Format(dateFormat), testRegion), sts)
	r.Header.Set("X-Amz-Date", amzDate)
	r.Header.Set("X-Amz-Content-Sha256", payload)
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+testAKID+"/"+scope+", SignedHeaders="+strings.Join(names, ";")+", Signature="+sig)
}

// Requests signed the way other clients do: botocore collapses every kind
// of whitespace, older botocore signed Expect, some clients sign
// Transfer-Encoding, and the Date header may stand in for X-Amz-Date.
func TestOtherSigners(t *testing.T) {
	v := newTestVerifier()
	body := testBody(1000)
	r, _ := http.NewRequest(http.MethodPut, "http://"+testHost+"/bucket/a%20b/c", nil)
	r.Header.Set("X-Amz-Meta-Tabs", "x\t\ty  z")
	r.Header.Set("Expect", "100-continue")
	specSign(r, "/bucket/a%20b/c", "", []string{
		"content-length:1000", "expect:100-continue", "host:" + testHost,
		"x-amz-content-sha256:" + hexSHA256(body), "x-amz-date:" + testTime.Format(iso8601Format), "x-amz-meta-tabs:x y z",
	}, hexSHA256(body))
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	s := toServer(t, r)
	s.Header.Del("Expect") // as servers that consume the expectation do
	res, err := v.Verify(s)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readBody(res.Body, 100); err != nil || !bytes.Equal(got, body) {
		t.Fatal(err)
	}

	// Transfer-Encoding signed, body chunked on the wire.
	r, _ = http.NewRequest(http.MethodPut, "http://"+testHost+"/bucket/k", nil)
	specSign(r, "/bucket/k", "", []string{
		"host:" + testHost, "transfer-encoding:chunked",
		"x-amz-content-sha256:" + hexSHA256(body), "x-amz-date:" + testTime.Format(iso8601Format),
	}, hexSHA256(body))
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), -1
	s = toServer(t, r)
	if len(s.TransferEncoding) == 0 || s.Header.Get("Transfer-Encoding") != "" {
		t.Fatalf("transfer encoding %v", s.TransferEncoding)
	}
	res, err = v.Verify(s)
	if err != nil {
		t.Fatal(err)
	}
	if res.ContentLength != -1 {
		t.Fatalf("length %d", res.ContentLength)
	}
	if got, err := readBody(res.Body, 100); err != nil || !bytes.Equal(got, body) {
		t.Fatal(err)
	}

	// The Date header instead of X-Amz-Date.
	r, _ = http.NewRequest(http.MethodGet, "http://"+testHost+"/bucket/k", nil)
	specSign(r, "/bucket/k", "", []string{"date:" + testTime.Format(http.TimeFormat), "host:" + testHost}, unsignedPayload)
	r.Header.Del("X-Amz-Date")
	r.Header.Set("Date", testTime.Format(http.TimeFormat))
	if _, err := v.Verify(toServer(t, r)); err != nil {
		t.Fatal(err)
	}
}
