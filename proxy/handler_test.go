package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/s3seal/s3seal/proxy/authz"
	"github.com/s3seal/s3seal/proxy/policy"
	"github.com/s3seal/s3seal/proxy/s3"
	"github.com/s3seal/s3seal/proxy/sigv4"
	"github.com/s3seal/s3seal/proxy/upstream"
)

const (
	testAK     = "AKCLIENT"
	testSK     = "client-secret-key"
	upstreamAK = "UPSTREAMKEYID"
	upstreamSK = "upstream-secret-value"
)

// fakeUpstream records the requests it gets and answers with handler.
type fakeUpstream struct {
	mu   sync.Mutex
	reqs []*http.Request
	h    http.HandlerFunc
	srv  *httptest.Server
}

func newFakeUpstream(t *testing.T, h http.HandlerFunc) *fakeUpstream {
	f := &fakeUpstream{h: h}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.reqs = append(f.reqs, r.Clone(context.Background()))
		f.mu.Unlock()
		f.h(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeUpstream) requests() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.reqs...)
}

type testEnv struct {
	h    *Handler
	srv  *httptest.Server
	up   *fakeUpstream
	logs *observer.ObservedLogs
}

func newTestEnv(t *testing.T, h http.HandlerFunc, tweak func(*Runtime)) *testEnv {
	t.Helper()
	up := newFakeUpstream(t, h)
	ep, _ := url.Parse(up.srv.URL)
	uc, err := upstream.New(upstream.Options{
		Endpoint:    ep,
		Region:      "us-east-1",
		PathStyle:   true,
		Credentials: credentials.NewStaticCredentialsProvider(upstreamAK, upstreamSK, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := NewIdentities([]Identity{{Client: authz.Client{Name: "app"}, AccessKeyID: testAK, Secret: testSK}})
	rt := &Runtime{
		Identities: ids,
		Verifier:   &sigv4.Verifier{Lookup: ids.Lookup},
		Decoder:    &sigv4.Verifier{SkipSignatures: true},
	}
	if tweak != nil {
		tweak(rt)
	}
	core, logs := observer.New(zap.DebugLevel)
	hd, err := NewHandler(Options{Runtime: rt, Upstream: uc, Logger: zap.New(core), InstanceID: "0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(hd)
	t.Cleanup(srv.Close)
	return &testEnv{h: hd, srv: srv, up: up, logs: logs}
}

// do sends a signed request to s3seal.
func (e *testEnv) do(t *testing.T, method, path string, body []byte, hdr http.Header) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	for k, v := range hdr {
		req.Header[k] = v
	}
	sum := sha256.Sum256(body)
	ph := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", ph)
	s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := s.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK}, req, ph, "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

type xmlErr struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
	Key     string `xml:"Key"`
}

func readErr(t *testing.T, resp *http.Response) (xmlErr, string) {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e xmlErr
	_ = xml.Unmarshal(b, &e)
	return e, string(b)
}

func TestUpstreamAuthErrorsAreNotRelayed(t *testing.T) {
	env := newTestEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `<?xml version="1.0"?><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message><AWSAccessKeyId>`+upstreamAK+`</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256 secret-ish</StringToSign><CanonicalRequest>GET /bkt/k</CanonicalRequest><SignatureProvided>abc</SignatureProvided><RequestId>1</RequestId></Error>`)
	}, nil)
	resp := env.do(t, "GET", "/bkt/k", nil, nil)
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
	env := newTestEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>k</Key><HostId>internal-host</HostId><RequestId>r</RequestId></Error>`)
	}, nil)
	resp := env.do(t, "GET", "/bkt/k", nil, nil)
	e, raw := readErr(t, resp)
	if resp.StatusCode != 404 || e.Code != "NoSuchKey" || e.Key != "k" {
		t.Fatalf("got %d %+v: %s", resp.StatusCode, e, raw)
	}
	if strings.Contains(raw, "internal-host") {
		t.Errorf("upstream HostId relayed: %s", raw)
	}
}

func TestNonS3UpstreamErrorBecomesS3Error(t *testing.T) {
	env := newTestEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "<html>load balancer says no</html>")
	}, nil)
	resp := env.do(t, "GET", "/bkt/k", nil, nil)
	e, raw := readErr(t, resp)
	if resp.StatusCode != 502 || e.Code != "InternalError" || strings.Contains(raw, "load balancer") {
		t.Fatalf("got %d %+v: %s", resp.StatusCode, e, raw)
	}
}

func TestMidBodyFailureAbortsConnection(t *testing.T) {
	env := newTestEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000")
		w.WriteHeader(200)
		w.Write(bytes.Repeat([]byte("x"), 300000))
		w.(http.Flusher).Flush()
		// Kill the connection mid-body.
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	}, nil)
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
	env := newTestEnv(t, func(w http.ResponseWriter, r *http.Request) { t.Error("request reached upstream") }, nil)
	resp := env.do(t, "GET", "/bkt/k", nil, http.Header{upstream.LoopHeader: {"0123456789abcdef"}})
	e, _ := readErr(t, resp)
	if resp.StatusCode != http.StatusLoopDetected || e.Code != "LoopDetected" {
		t.Fatalf("got %d %s", resp.StatusCode, e.Code)
	}
}

func TestRegionRedirectFollowed(t *testing.T) {
	env := newTestEnv(t, func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Authorization"), "/eu-west-1/s3/") {
			w.Header().Set("X-Amz-Bucket-Region", "eu-west-1")
			w.WriteHeader(http.StatusMovedPermanently)
			io.WriteString(w, `<Error><Code>PermanentRedirect</Code><Message>elsewhere</Message></Error>`)
			return
		}
		io.WriteString(w, "hello")
	}, nil)
	for i := 0; i < 2; i++ {
		resp := env.do(t, "GET", "/far/k", nil, nil)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "hello" {
			t.Fatalf("attempt %d: %d %s", i, resp.StatusCode, b)
		}
	}
	// First request: one redirect then the retry; second: cached region.
	if n := len(env.up.requests()); n != 3 {
		t.Fatalf("upstream saw %d requests, want 3", n)
	}
}

func TestBucketLimitsAndDeny(t *testing.T) {
	env := newTestEnv(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }, func(rt *Runtime) {
		ids := NewIdentities([]Identity{{Client: authz.Client{Name: "app", Buckets: []string{"allowed-*", "exact"}}, AccessKeyID: testAK, Secret: testSK}})
		rt.Identities = ids
		rt.Verifier = &sigv4.Verifier{Lookup: ids.Lookup}
		rt.Policy, _ = policy.New([]policy.Rule{{Name: "no-writes-here", Bucket: "exact", Prefix: "ro/", Mode: policy.Deny}}, policy.Rule{Mode: policy.Passthrough})
	})
	for path, want := range map[string]int{"/allowed-1/k": 200, "/exact/k": 200, "/other/k": 403, "/exact/ro/k": 403} {
		resp := env.do(t, "GET", path, nil, nil)
		e, raw := readErr(t, resp)
		if resp.StatusCode != want {
			t.Errorf("%s: %d %s, want %d", path, resp.StatusCode, raw, want)
		}
		if path == "/exact/ro/k" && !strings.Contains(e.Message, "no-writes-here") {
			t.Errorf("deny message does not name the rule: %q", e.Message)
		}
	}
	if n := len(env.up.requests()); n != 2 {
		t.Fatalf("upstream saw %d requests, want 2", n)
	}
}

func TestSidecarTrust(t *testing.T) {
	env := newTestEnv(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }, func(rt *Runtime) {
		rt.Identities.Sidecar = &Identity{Client: authz.Client{Name: "sidecar"}}
		rt.Identities.TrustLoopback = true
	})
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
	got := env.up.requests()[0].Header.Get("Authorization")
	if !strings.Contains(got, upstreamAK) || strings.Contains(got, "AKIAAPP") {
		t.Fatalf("upstream Authorization %q", got)
	}
}

func TestRequestLogHasNoSecrets(t *testing.T) {
	env := newTestEnv(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }, nil)
	resp := env.do(t, "PUT", "/bkt/some%20key", []byte("data"), http.Header{
		"X-Amz-Server-Side-Encryption-Customer-Key": {"c2VjcmV0LWtleS1tYXRlcmlhbC0xMjM0NTY3ODkwMTI="},
		"X-Amz-Security-Token":                      {"session-token-value"},
	})
	resp.Body.Close()
	entries := env.logs.FilterMessage("request").All()
	if len(entries) != 1 {
		t.Fatalf("%d request log lines, want 1", len(entries))
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
	env := newTestEnv(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<CopyObjectResult><ETag>\"x\"</ETag></CopyObjectResult>")
	}, func(rt *Runtime) {
		ids := NewIdentities([]Identity{{Client: authz.Client{Name: "app", Buckets: []string{"allowed-*"}}, AccessKeyID: testAK, Secret: testSK}})
		rt.Identities = ids
		rt.Verifier = &sigv4.Verifier{Lookup: ids.Lookup}
	})
	for src, want := range map[string]int{"/allowed-2/k": 200, "/secret/k": 403, "secret/k%20x": 403} {
		resp := env.do(t, "PUT", "/allowed-1/dst", nil, http.Header{"X-Amz-Copy-Source": {src}})
		e, raw := readErr(t, resp)
		if resp.StatusCode != want {
			t.Errorf("copy from %s: %d %s %s, want %d", src, resp.StatusCode, e.Code, raw, want)
		}
	}
	if n := len(env.up.requests()); n != 1 {
		t.Fatalf("upstream saw %d requests, want 1", n)
	}
}

func TestCORSPreflightPassesUnauthenticated(t *testing.T) {
	env := newTestEnv(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodOptions || r.Header.Get("Origin") != "https://app.example" {
			t.Errorf("upstream got %s with Origin %q", r.Method, r.Header.Get("Origin"))
		}
		w.Header().Set("Access-Control-Allow-Origin", "https://app.example")
		w.WriteHeader(http.StatusOK)
	}, nil)
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
	if resp.StatusCode != 403 || e.Code != "AccessDenied" || len(env.up.requests()) != 1 {
		t.Fatalf("anonymous GET: %d %s, upstream saw %d requests", resp.StatusCode, e.Code, len(env.up.requests()))
	}
}

// TestMetadataNamesLowerCase: user-metadata headers reach clients with
// lower-case names, as S3 sends them, whatever case the store used.
func TestMetadataNamesLowerCase(t *testing.T) {
	env := newTestEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header()["X-Amz-Meta-Foo"] = []string{"bar"}
		w.Header()["X-Amz-Meta-Camelcase"] = []string{"v"}
		io.WriteString(w, "ok")
	}, nil)
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
