package proxy

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/local"
	"github.com/s3seal/s3seal/proxy/authz"
	"github.com/s3seal/s3seal/proxy/checksum"
	"github.com/s3seal/s3seal/proxy/policy"
	"github.com/s3seal/s3seal/proxy/sigv4"
	"github.com/s3seal/s3seal/proxy/upstream"
)

// The package tests run s3seal's whole handler in front of a memStore,
// both on loopback httptest servers: newEnv builds the pair from
// envOptions, do sends hand-made signed requests, and sdk returns an
// aws-sdk-go-v2 client of s3seal.

const (
	testAK     = "AKCLIENT"
	testSK     = "client-secret-key"
	upstreamAK = "UPSTREAMKEYID"
	upstreamSK = "upstream-secret-value"
)

// envOptions configures newEnv; zero values mean defaults.
type envOptions struct {
	// Rules and Default are the policy; Default "" means passthrough.
	Rules   []policy.Rule
	Default policy.Mode
	// Ring is the local key ring: the envelope key provider (behind a
	// data-key cache) and the SSE-C master keys. Nil means none.
	Ring *local.Keyring
	// Clients are the identities s3seal accepts. Nil means one client
	// "app" (testAK, testSK) with the default permissions.
	Clients []Identity
	// Reserved are s3seal's reserved prefixes.
	Reserved []authz.Reserved
	// SSE edits the SSE options (the key ring is already set).
	SSE func(*SSEOptions)
	// Store are the memory store's settings, and Buckets the buckets it
	// starts with.
	Store   memStoreOptions
	Buckets []string
	// Runtime and Handler edit the runtime and handler options last.
	Runtime func(*Runtime)
	Handler func(*Options)
}

// testEnv is s3seal in front of a memory store.
type testEnv struct {
	h     *Handler
	srv   *httptest.Server
	store *memStore
	rt    *Runtime
	logs  *observer.ObservedLogs
	// ak and sk sign do's requests (the first client's).
	ak, sk string
	// client sends do's requests over its own transport: httptest
	// servers of parallel tests close the default transport's idle
	// connections when they stop, which breaks a request reusing one.
	client *http.Client
}

// newEnv starts the memory store and s3seal in front of it.
func newEnv(t testing.TB, o envOptions) *testEnv {
	t.Helper()
	if o.Store.AccessKey == "" {
		o.Store.AccessKey = upstreamAK
	}
	store := newMemStore(o.Store)
	store.createBucket(o.Buckets...)
	usrv := httptest.NewServer(store)
	t.Cleanup(usrv.Close)
	ep, _ := url.Parse(usrv.URL)
	uc, err := upstream.New(upstream.Options{
		Endpoint:    ep,
		Region:      "us-east-1",
		PathStyle:   true,
		Credentials: credentials.NewStaticCredentialsProvider(upstreamAK, upstreamSK, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.Default == "" {
		o.Default = policy.Passthrough
	}
	engine, err := policy.New(o.Rules, policy.Rule{Name: "default", Mode: o.Default})
	if err != nil {
		t.Fatal(err)
	}
	clients := o.Clients
	if clients == nil {
		clients = []Identity{{Client: authz.Client{Name: "app"}, AccessKeyID: testAK, Secret: testSK}}
	}
	ids := NewIdentities(clients)
	// The store speaks plain HTTP on loopback; the check for plain HTTP
	// upstreams has its own test.
	so := SSEOptions{Keyring: o.Ring}
	if o.SSE != nil {
		o.SSE(&so)
	}
	rt := &Runtime{
		Identities: ids,
		Verifier:   &sigv4.Verifier{Lookup: ids.Lookup, Region: "us-east-1"},
		Decoder:    &sigv4.Verifier{SkipSignatures: true},
		Policy:     engine,
		SSE:        NewSSE(so),
		Reserved:   append(o.Reserved, uploadStateReservations(o.Rules, o.Default)...),
	}
	if o.Ring != nil {
		rt.Keyring = o.Ring
		rt.Keys = keys.NewCache(local.NewProvider(o.Ring, local.Config{}), keys.CacheConfig{})
	}
	if err := rt.SSE.CheckRules(engine); err != nil {
		t.Fatal(err)
	}
	if o.Runtime != nil {
		o.Runtime(rt)
	}
	core, logs := observer.New(zap.DebugLevel)
	// Markers whose writers wait (FORMAT.md, section 9.4) wait briefly
	// here; the memory store's clock has a resolution of one second, which
	// the listing's window around the switch to version 2 covers.
	ho := Options{Runtime: rt, Upstream: uc, Logger: zap.New(core), InstanceID: "0123456789abcdef", DefaultChecksum: checksum.CRC32C,
		MarkerWait: 20 * time.Millisecond}
	if o.Handler != nil {
		o.Handler(&ho)
	}
	h, err := NewHandler(ho)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &testEnv{h: h, srv: srv, store: store, rt: rt, logs: logs, ak: clients[0].AccessKeyID, sk: clients[0].Secret,
		client: &http.Client{Transport: tr}}
}

// uploadStateReservations reserves the upload state prefix in the buckets
// envelope rules govern, as s3seal's configuration does.
func uploadStateReservations(rules []policy.Rule, def policy.Mode) []authz.Reserved {
	var out []authz.Reserved
	for _, r := range append(rules, policy.Rule{Mode: def}) {
		if r.Mode != policy.Envelope {
			continue
		}
		res := UploadStateReserved
		if r.Bucket != "" {
			res.Bucket = r.Bucket
		}
		out = append(out, res)
	}
	return out
}

// as returns a view of the environment whose requests are signed with
// another client's credentials.
func (e *testEnv) as(ak, sk string) *testEnv {
	c := *e
	c.ak, c.sk = ak, sk
	return &c
}

// do sends a signed request to s3seal (the payload hash signed) and closes
// its body when the test ends. kv pairs are added as headers.
func (e *testEnv) do(t testing.TB, method, path string, body []byte, kv ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	return e.send(t, req, hex.EncodeToString(sum[:]), kv...)
}

// send adds the kv headers to req, signs it with payload hash ph and sends
// it; the response body is closed when the test ends.
func (e *testEnv) send(t testing.TB, req *http.Request, ph string, kv ...string) *http.Response {
	t.Helper()
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	req.Header.Set("X-Amz-Content-Sha256", ph)
	s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := s.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: e.ak, SecretAccessKey: e.sk}, req, ph, "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// sdk returns an aws-sdk-go-v2 S3 client of s3seal with the environment's
// credentials, path-style addressing and no retries.
func (e *testEnv) sdk(t testing.TB, opts ...func(*s3.Options)) *s3.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return s3.New(s3.Options{
		Region:                     "us-east-1",
		BaseEndpoint:               aws.String(e.srv.URL),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(e.ak, e.sk, ""),
		HTTPClient:                 &http.Client{Transport: tr, Timeout: time.Minute},
		RetryMaxAttempts:           1,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}, opts...)
}

type xmlErr struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
	Key     string `xml:"Key"`
}

// readErr reads an S3 error answer.
func readErr(t testing.TB, resp *http.Response) (xmlErr, string) {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e xmlErr
	_ = xml.Unmarshal(b, &e)
	return e, string(b)
}

// expect reads the response and fails the test unless its status is want;
// it returns the body and the S3 error code and message, if any.
func expect(t testing.TB, resp *http.Response, want int) (body []byte, code, msg string) {
	t.Helper()
	body, _ = io.ReadAll(resp.Body)
	var e struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	if xml.Unmarshal(body, &e) == nil {
		code, msg = e.Code, e.Message
	}
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d (%s: %s), want %d", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, code, msg, want)
	}
	return body, code, msg
}

// testRing builds a key ring of n keys with fixed material, oldest first.
func testRing(t testing.TB, names ...string) *local.Keyring {
	t.Helper()
	var b strings.Builder
	for i, n := range names {
		key := bytes.Repeat([]byte{byte(0x40 + i)}, 32)
		fmt.Fprintf(&b, "%s:%s\n", n, base64.StdEncoding.EncodeToString(key))
	}
	ring, err := local.Parse([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

// derivedMD5 is the SSE-C key digest s3seal sends for bucket/key under
// master.
func derivedMD5(t testing.TB, ring *local.Keyring, master, bucket, key string) string {
	t.Helper()
	k, err := ring.DeriveSSECKey(master, bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(k[:])
	return base64.StdEncoding.EncodeToString(sum[:])
}

// storeReq returns the last request the store got with method and path
// whose query has all of params.
func storeReq(t testing.TB, st *memStore, method, path string, params ...string) storeRequest {
	t.Helper()
	reqs := st.requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		r := reqs[i]
		if r.Method != method || r.Path != path {
			continue
		}
		ok := true
		for _, p := range params {
			if _, has := r.Query[p]; !has {
				ok = false
			}
		}
		if ok {
			return r
		}
	}
	t.Fatalf("the store got no %s %s %v; it got %d requests", method, path, params, len(reqs))
	return storeRequest{}
}

// resultETag is the ETag of a result document (CopyObjectResult,
// CompleteMultipartUploadResult, ...), unescaped.
func resultETag(body []byte) string {
	return html.UnescapeString(between(string(body), "<ETag>", "</ETag>"))
}

func between(s, a, b string) string {
	_, rest, _ := strings.Cut(s, a)
	v, _, _ := strings.Cut(rest, b)
	return v
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// listEntry is an object or version of a listing.
type listEntry struct {
	Key       string `xml:"Key"`
	VersionID string `xml:"VersionId"`
	ETag      string `xml:"ETag"`
	Size      int64  `xml:"Size"`
	IsLatest  bool   `xml:"IsLatest"`
}

// listResult is a ListObjects (V1, V2) or ListObjectVersions answer.
type listResult struct {
	Contents              []listEntry `xml:"Contents"`
	Versions              []listEntry `xml:"Version"`
	DeleteMarkers         []listEntry `xml:"DeleteMarker"`
	CommonPrefixes        []string    `xml:"CommonPrefixes>Prefix"`
	IsTruncated           bool        `xml:"IsTruncated"`
	KeyCount              int         `xml:"KeyCount"`
	NextMarker            string      `xml:"NextMarker"`
	NextContinuationToken string      `xml:"NextContinuationToken"`
	NextKeyMarker         string      `xml:"NextKeyMarker"`
	NextVersionIDMarker   string      `xml:"NextVersionIdMarker"`
}

func parseListing(t testing.TB, body []byte) listResult {
	t.Helper()
	var l listResult
	if err := xml.Unmarshal(body, &l); err != nil {
		t.Fatalf("listing: %v\n%s", err, body)
	}
	return l
}

// etagOf returns the ETag a listing shows for key, "" when it lists none.
func (l listResult) etagOf(key string) string {
	for _, e := range append(l.Contents, l.Versions...) {
		if e.Key == key {
			return e.ETag
		}
	}
	return ""
}
