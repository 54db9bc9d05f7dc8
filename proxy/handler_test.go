package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/s3seal/s3seal/proxy/authz"
	"github.com/s3seal/s3seal/proxy/policy"
	"github.com/s3seal/s3seal/proxy/s3"
	"github.com/s3seal/s3seal/proxy/upstream"
)

// answer returns a store hook that answers every request with f.
func answer(f func(w http.ResponseWriter, r *http.Request)) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool { f(w, r); return true }
}

func TestUpstreamAuthErrorsAreNotRelayed(t *testing.T) {
	t.Parallel()
	env := newEnv(t, envOptions{})
	env.store.setHook(answer(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `<?xml version="1.0"?><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message><AWSAccessKeyId>`+upstreamAK+`</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256 secret-ish</StringToSign><CanonicalRequest>GET /bkt/k</CanonicalRequest><SignatureProvided>abc</SignatureProvided><RequestId>1</RequestId></Error>`)
	}))
	resp := env.do(t, "GET", "/bkt/k", nil)
	e, raw := readErr(t, resp)
	if resp.StatusCode != http.StatusBadGateway || e.Code != "UpstreamAuthenticationFailed" {
		t.Fatalf("got %d %s, want 502 UpstreamAuthenticationFailed: %s", resp.StatusCode, e.Code, raw)
	}
	for _, leak := range []string{upstreamAK, "StringToSign", "CanonicalRequest", "SignatureProvided", upstreamSK} {
		if strings.Contains(raw, leak) {
			t.Errorf("client error body contains %q: %s", leak, raw)
		}
	}
}

func TestUpstreamErrorsKeepSafeFields(t *testing.T) {
	t.Parallel()
	env := newEnv(t, envOptions{Buckets: []string{"bkt"}})
	resp := env.do(t, "GET", "/bkt/k", nil)
	e, raw := readErr(t, resp)
	if resp.StatusCode != 404 || e.Code != "NoSuchKey" || e.Key != "k" {
		t.Fatalf("got %d %+v: %s", resp.StatusCode, e, raw)
	}
	if strings.Contains(raw, "memstore-host-id") {
		t.Errorf("upstream HostId relayed: %s", raw)
	}
}

func TestNonS3UpstreamErrorBecomesS3Error(t *testing.T) {
	t.Parallel()
	env := newEnv(t, envOptions{})
	env.store.setHook(answer(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "<html>load balancer says no</html>")
	}))
	resp := env.do(t, "GET", "/bkt/k", nil)
	e, raw := readErr(t, resp)
	if resp.StatusCode != 502 || e.Code != "InternalError" || strings.Contains(raw, "load balancer") {
		t.Fatalf("got %d %+v: %s", resp.StatusCode, e, raw)
	}
}

func TestMidBodyFailureAbortsConnection(t *testing.T) {
	t.Parallel()
	env := newEnv(t, envOptions{})
	env.store.setHook(answer(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000")
		w.WriteHeader(200)
		w.Write(bytes.Repeat([]byte("x"), 300000))
		w.(http.Flusher).Flush()
		// Kill the connection mid-body.
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	}))
	req, _ := http.NewRequest("GET", env.srv.URL+"/bkt/k", nil)
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	_ = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK}, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("the status should have gone out before the failure: %v", err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("client read %d bytes and a clean end; want an error", len(b))
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) && !strings.Contains(err.Error(), "EOF") && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("unexpected error %v", err)
	}
}

func TestLoopDetected(t *testing.T) {
	t.Parallel()
	env := newEnv(t, envOptions{})
	resp := env.do(t, "GET", "/bkt/k", nil, upstream.LoopHeader, "0123456789abcdef")
	e, _ := readErr(t, resp)
	if resp.StatusCode != http.StatusLoopDetected || e.Code != "LoopDetected" {
		t.Fatalf("got %d %s", resp.StatusCode, e.Code)
	}
	if n := env.store.requestCount(); n != 0 {
		t.Fatalf("%d requests reached the store", n)
	}
}

func TestRegionRedirectFollowed(t *testing.T) {
	t.Parallel()
	// AWS answers a request signed for the wrong region with a redirect
	// naming the bucket's region.
	t.Run("redirect", func(t *testing.T) {
		t.Parallel()
		env := newEnv(t, envOptions{})
		env.store.setHook(answer(func(w http.ResponseWriter, r *http.Request) {
			if !strings.Contains(r.Header.Get("Authorization"), "/eu-west-1/s3/") {
				w.Header().Set("X-Amz-Bucket-Region", "eu-west-1")
				w.WriteHeader(http.StatusMovedPermanently)
				io.WriteString(w, `<Error><Code>PermanentRedirect</Code><Message>elsewhere</Message></Error>`)
				return
			}
			io.WriteString(w, "hello")
		}))
		for i := 0; i < 2; i++ {
			resp := env.do(t, "GET", "/far/k", nil)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "hello" {
				t.Fatalf("attempt %d: %d %s", i, resp.StatusCode, b)
			}
		}
		// First request: one redirect then the retry; second: cached region.
		if n := env.store.requestCount(); n != 3 {
			t.Fatalf("upstream saw %d requests, want 3", n)
		}
	})
	// MinIO answers AuthorizationHeaderMalformed naming its region.
	t.Run("authorization header malformed", func(t *testing.T) {
		t.Parallel()
		env := newEnv(t, envOptions{Store: memStoreOptions{Region: "eu-west-1"}})
		env.store.put("far", "k", &memObject{data: []byte("hello")})
		for i := 0; i < 2; i++ {
			body, _, _ := expect(t, env.do(t, "GET", "/far/k", nil), 200)
			if string(body) != "hello" {
				t.Fatalf("attempt %d: %q", i, body)
			}
		}
		if n := env.store.requestCount(); n != 3 {
			t.Fatalf("upstream saw %d requests, want 3", n)
		}
	})
}

func TestBucketLimitsAndDeny(t *testing.T) {
	t.Parallel()
	env := newEnv(t, envOptions{
		Clients: []Identity{{Client: authz.Client{Name: "app", Buckets: []string{"allowed-*", "exact"}}, AccessKeyID: testAK, Secret: testSK}},
		Rules:   []policy.Rule{{Name: "no-writes-here", Bucket: "exact", Prefix: "ro/", Mode: policy.Deny}},
	})
	for _, o := range []string{"allowed-1/k", "exact/k", "other/k", "exact/ro/k"} {
		b, k, _ := strings.Cut(o, "/")
		env.store.put(b, k, &memObject{data: []byte("ok")})
	}
	for path, want := range map[string]int{"/allowed-1/k": 200, "/exact/k": 200, "/other/k": 403, "/exact/ro/k": 403} {
		resp := env.do(t, "GET", path, nil)
		e, raw := readErr(t, resp)
		if resp.StatusCode != want {
			t.Errorf("%s: %d %s, want %d", path, resp.StatusCode, raw, want)
		}
		if path == "/exact/ro/k" && !strings.Contains(e.Message, "no-writes-here") {
			t.Errorf("deny message does not name the rule: %q", e.Message)
		}
	}
	if n := env.store.requestCount(); n != 2 {
		t.Fatalf("upstream saw %d requests, want 2", n)
	}
}

func TestSidecarTrust(t *testing.T) {
	t.Parallel()
	env := newEnv(t, envOptions{Runtime: func(rt *Runtime) {
		rt.Identities.Sidecar = &Identity{Client: authz.Client{Name: "sidecar"}}
		rt.Identities.TrustLoopback = true
	}})
	env.store.put("bkt", "k", &memObject{data: []byte("ok")})
	// Signed with credentials s3seal does not know (the app's own).
	req, _ := http.NewRequest("GET", env.srv.URL+"/bkt/k", nil)
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	s := v4.NewSigner()
	_ = s.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIAAPP", SecretAccessKey: "app-own"}, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("sidecar request refused: %d", resp.StatusCode)
	}
	// The upstream got s3seal's signature, not the app's.
	got := env.store.requests()[0].Header.Get("Authorization")
	if !strings.Contains(got, upstreamAK) || strings.Contains(got, "AKIAAPP") {
		t.Fatalf("upstream Authorization %q", got)
	}
}

func TestRequestLogHasNoSecrets(t *testing.T) {
	t.Parallel()
	env := newEnv(t, envOptions{Buckets: []string{"bkt"}})
	// A valid SSE-C key ("secret-key-material-123456789012"), so that
	// the store accepts the object and the request is logged as a success.
	resp := env.do(t, "PUT", "/bkt/some%20key", []byte("data"),
		"X-Amz-Server-Side-Encryption-Customer-Algorithm", "AES256",
		"X-Amz-Server-Side-Encryption-Customer-Key", "c2VjcmV0LWtleS1tYXRlcmlhbC0xMjM0NTY3ODkwMTI=",
		"X-Amz-Server-Side-Encryption-Customer-Key-Md5", "ho/GpQxz+nR26e/hvJ1IQQ==")
	resp.Body.Close()
	// A session token (s3seal issues none) is refused, and not logged.
	resp = env.do(t, "GET", "/bkt/some%20key", nil, "X-Amz-Security-Token", "session-token-value")
	if _, code, _ := expect(t, resp, 400); code != "InvalidToken" {
		t.Errorf("session token: %s", code)
	}
	entries := env.logs.FilterMessage("request").All()
	if len(entries) != 2 {
		t.Fatalf("%d request log lines, want 2", len(entries))
	}
	f := entries[0].ContextMap()
	if f["op"] != "PutObject" || f["bucket"] != "bkt" || f["key"] != "some key" || f["client"] != "app" || f["status"] != int64(200) {
		t.Errorf("log fields %v", f)
	}
	all := ""
	for _, e := range env.logs.All() {
		all += e.Message
		for k, v := range e.ContextMap() {
			all += k + "=" + strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(toString(v), "\n", " "), "\t", " "))
		}
	}
	for _, s := range []string{testSK, upstreamSK, "c2VjcmV0", "session-token-value", "Signature="} {
		if strings.Contains(all, s) {
			t.Errorf("logs contain %q", s)
		}
	}
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	return ""
}

func TestCopySourceBucketLimits(t *testing.T) {
	t.Parallel()
	env := newEnv(t, envOptions{
		Clients: []Identity{{Client: authz.Client{Name: "app", Buckets: []string{"allowed-*"}}, AccessKeyID: testAK, Secret: testSK}},
		Buckets: []string{"allowed-1"},
	})
	env.store.put("allowed-2", "k", &memObject{data: []byte("source")})
	env.store.put("secret", "k", &memObject{data: []byte("secret")})
	env.store.put("secret", "k x", &memObject{data: []byte("secret")})
	for src, want := range map[string]int{"/allowed-2/k": 200, "/secret/k": 403, "secret/k%20x": 403} {
		resp := env.do(t, "PUT", "/allowed-1/dst", nil, "X-Amz-Copy-Source", src)
		e, raw := readErr(t, resp)
		if resp.StatusCode != want {
			t.Errorf("copy from %s: %d %s %s, want %d", src, resp.StatusCode, e.Code, raw, want)
		}
	}
	if n := env.store.requestCount(); n != 1 {
		t.Fatalf("upstream saw %d requests, want 1", n)
	}
	if o := env.store.object("allowed-1", "dst"); o == nil || string(o.data) != "source" {
		t.Fatalf("the copy holds %+v", o)
	}
}

func TestCORSPreflightPassesUnauthenticated(t *testing.T) {
	t.Parallel()
	env := newEnv(t, envOptions{})
	env.store.setHook(answer(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodOptions || r.Header.Get("Origin") != "https://app.example" {
			t.Errorf("upstream got %s with Origin %q", r.Method, r.Header.Get("Origin"))
		}
		w.Header().Set("Access-Control-Allow-Origin", "https://app.example")
		w.WriteHeader(http.StatusOK)
	}))
	req, _ := http.NewRequest(http.MethodOptions, env.srv.URL+"/bkt/k", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "PUT")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	// Any other unauthenticated request is refused.
	get, _ := http.NewRequest(http.MethodGet, env.srv.URL+"/bkt/k", nil)
	resp, err = http.DefaultClient.Do(get)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := readErr(t, resp)
	if resp.StatusCode != 403 || e.Code != "AccessDenied" || env.store.requestCount() != 1 {
		t.Fatalf("anonymous GET: %d %s, upstream saw %d requests", resp.StatusCode, e.Code, env.store.requestCount())
	}
}

// TestMetadataNamesLowerCase: user-metadata headers reach clients with
// lower-case names, as S3 sends them, whatever case the store used.
func TestMetadataNamesLowerCase(t *testing.T) {
	t.Parallel()
	env := newEnv(t, envOptions{})
	env.store.setHook(answer(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["X-Amz-Meta-Foo"] = []string{"bar"}
		w.Header()["X-Amz-Meta-Camelcase"] = []string{"v"}
		io.WriteString(w, "ok")
	}))
	req, _ := http.NewRequest("GET", env.srv.URL+"/bkt/k", nil)
	req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := s.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK}, req, emptySHA256, "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	env.h.ServeHTTP(rec, req)
	// The recorder keeps the names as written.
	var names []string
	for k := range rec.Result().Header {
		if strings.Contains(strings.ToLower(k), "meta") {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	if rec.Code != 200 || strings.Join(names, " ") != "x-amz-meta-camelcase x-amz-meta-foo" {
		t.Errorf("status %d, metadata header names %v", rec.Code, names)
	}
}

const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// BenchmarkRequestStages measures what every request pays before its mode
// runs: parsing into the canonical request, the header checks and
// authorization.
func BenchmarkRequestStages(b *testing.B) {
	r := httptest.NewRequest("GET", "http://127.0.0.1:8443/bucket/some/key.bin?versionId=v1&x-id=GetObject", nil)
	r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	r.Header.Set("X-Amz-Date", "20261203T000000Z")
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x")
	r.Header.Set("Amz-Sdk-Invocation-Id", "x")
	r.Header.Set("User-Agent", "aws-sdk-go-v2")
	r.Header.Set("X-Amz-Checksum-Mode", "ENABLED")
	a := &authz.Authorizer{Reserved: []authz.Reserved{{Bucket: "*", Prefix: ".s3seal/", KeysOnly: true}}}
	c := &authz.Client{Name: "app"}
	b.ReportAllocs()
	for b.Loop() {
		req, err := s3.ParseRequest(r, s3.ParseOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if err := s3.CheckHeaders(r.Header); err != nil {
			b.Fatal(err)
		}
		if _, err := a.Authorize(c, req, r.Header); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStreamingBodyOnlyForUploads: aws-chunked bodies are S3's for object
// and part uploads only; a bucket configuration sent that way is refused
// before the store sees it.
func TestStreamingBodyOnlyForUploads(t *testing.T) {
	t.Parallel()
	env := newEnv(t, envOptions{Buckets: []string{"bkt"}})
	env.store.reset()
	for _, sub := range []string{"cors", "tagging", "versioning", "policy"} {
		req, _ := http.NewRequest("PUT", env.srv.URL+"/bkt?"+sub, strings.NewReader("5\r\nabcde\r\n0\r\n\r\n"))
		req.Header.Set("Content-Encoding", "aws-chunked")
		resp := env.send(t, req, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "X-Amz-Decoded-Content-Length", "5")
		if _, code, msg := expect(t, resp, 400); code != "InvalidRequest" || !strings.Contains(msg, "x-amz-content-sha256") {
			t.Errorf("%s: %s %s", sub, code, msg)
		}
	}
	if n := len(env.store.requests()); n != 0 {
		t.Errorf("%d requests reached the store", n)
	}
	// An object upload takes it.
	req, _ := http.NewRequest("PUT", env.srv.URL+"/bkt/k", strings.NewReader("5\r\nabcde\r\n0\r\n\r\n"))
	req.Header.Set("Content-Encoding", "aws-chunked")
	expect(t, env.send(t, req, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "X-Amz-Decoded-Content-Length", "5"), 200)
}

// TestAWSChunkedNeverReachesClients: aws-chunked is upload framing; a store
// that keeps it in the stored Content-Encoding does not pass it on.
func TestAWSChunkedNeverReachesClients(t *testing.T) {
	t.Parallel()
	for _, ce := range []string{"aws-chunked,json", "aws-chunked", "json, aws-chunked"} {
		h := http.Header{"Content-Encoding": {ce}}
		cleanContentEncoding(h)
		want := map[string]string{"aws-chunked,json": "json", "aws-chunked": "", "json, aws-chunked": "json"}[ce]
		if got := h.Get("Content-Encoding"); got != want {
			t.Errorf("%q: %q, want %q", ce, got, want)
		}
		if _, ok := h["Content-Encoding"]; ok != (want != "") {
			t.Errorf("%q: header present %v", ce, ok)
		}
	}
	env := newEnv(t, envOptions{Buckets: []string{"bkt"}})
	env.store.put("bkt", "k", &memObject{data: []byte("x"), content: http.Header{"Content-Encoding": {"aws-chunked,json"}}})
	resp := env.do(t, "GET", "/bkt/k", nil)
	expect(t, resp, 200)
	if got := resp.Header.Get("Content-Encoding"); got != "json" {
		t.Errorf("GET Content-Encoding %q", got)
	}
}
