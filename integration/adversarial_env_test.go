package integration

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/integration/testbed"
)

// The adversarial suite (adversarial_*_test.go) attacks s3seal the way a
// client holding valid credentials would: store admin APIs, keys the store
// normalises differently, copy sources and bulk deletes, bucket
// configuration, signatures scoped elsewhere, and resource exhaustion. Every
// case asserts what the store holds afterwards, read directly as the
// store's owner, and a control shows the legitimate request still works.
//
// Requests are built and signed by hand (advClient) where an SDK would
// normalise the attack away: the raw path goes on the wire as written, and
// the signature covers the path the client means (decoded once and
// re-encoded with S3's rules), which is what s3seal verifies.

// The layout of the data bucket every adversarial s3seal serves.
const (
	advPublic   = "public/ok"                                           // passthrough, planted directly
	advDenied   = "denied/x"                                            // under a deny-all rule
	advReadonly = "readonly/x"                                          // under a deny-writes rule
	advSSE      = "sse/x"                                               // sse-s3, written through s3seal
	advReserved = "certs/"                                              // the certificate-storage prefix
	advCertKey  = "certs/certificates/acme/s3seal.test/s3seal.test.key" // a "private key" in it
	advBase     = "s3.adv.test"                                         // base domain for virtual-hosted requests
)

// advEnv is one s3seal in front of one store, set up for attacks: a data
// bucket with passthrough, deny, deny-writes, envelope and sse-s3 prefixes
// and the reserved certificate-storage prefix, a bucket no limited client
// may use, and clients with different permissions.
type advEnv struct {
	up     *testbed.S3Server
	p      *proxy
	bucket string // the data bucket
	other  string // a bucket only the unrestricted client may use
	// planted are the objects put directly as the store's owner, by key
	// in bucket; replant restores them before each case.
	planted map[string][]byte
	// sse is the plaintext of sse/x, written through s3seal (MinIO only;
	// nil on stores that do not encrypt).
	sse     []byte
	clients map[string]*advClient
	owner   *advClient // signs as the store's owner, straight to the store
	// legacy is set when s3seal refused the permission settings this suite
	// specifies and runs without them.
	legacy bool
	// readTimeout bounds direct reads and writes of the store; 0 is a
	// minute.
	readTimeout time.Duration
}

// advClientSpec is one identity of the adversarial configuration.
type advClientSpec struct {
	name, buckets, permissions string // buckets and permissions as YAML flow values
	admin                      bool
}

// advClientSpecs are the adversarial identities besides "env" (the
// S3SEAL_CLIENT_* identity: every bucket, default permissions, no admin).
func advClientSpecs(bucket string) []advClientSpec {
	return []advClientSpec{
		{name: "limited", buckets: "[" + bucket + "]"},
		{name: "reader", buckets: "[" + bucket + "]", permissions: "[{bucket: " + bucket + ", actions: [read, list]}]"},
		{name: "creator", buckets: "[" + bucket + "]", permissions: "[{bucket: " + bucket + ", actions: [read, list, create]}]"},
		{name: "exporter", buckets: "[" + bucket + "]", permissions: "[{bucket: " + bucket + ", prefix: public/, actions: [read, list]}]"},
		{name: "admin", admin: true},
	}
}

// advStores returns the stores the adversarial suite attacks: the shared
// MinIO, and a versitygw of this test's own with its IAM admin API on the S3
// port and access logs of what reached it.
func advStores(t *testing.T) []*testbed.S3Server {
	return []*testbed.S3Server{shared.minio, testbed.StartVersitygw(t, testbed.VersitygwOptions{IAM: true, AccessLog: true})}
}

// advOptions vary the adversarial configuration.
type advOptions struct {
	// extraYAML is appended to the configuration file (limits and the
	// like).
	extraYAML string
	// env adds environment variables.
	env map[string]string
	// plain leaves out the envelope and sse-s3 rules, so that listings of
	// the data bucket take s3seal's passthrough path.
	plain bool
}

// newAdvEnv plants the data and starts s3seal. Settings this suite
// specifies that today's s3seal does not know are reported as a failure
// and left out.
func newAdvEnv(t *testing.T, up *testbed.S3Server, o advOptions) *advEnv {
	t.Helper()
	e := &advEnv{up: up, bucket: newBucket(t, up), other: newBucket(t, up), clients: map[string]*advClient{}}
	e.planted = map[string][]byte{
		advPublic:   []byte("public object " + randHex(8)),
		advDenied:   []byte("DENIED-SECRET " + randHex(8)),
		advReadonly: []byte("READONLY-ORIGINAL " + randHex(8)),
		advCertKey:  []byte("-----BEGIN EC PRIVATE KEY-----\nADV" + randHex(24) + "\n-----END EC PRIVATE KEY-----\n"),
	}
	e.owner = ownerClient(t, up)
	e.replant(t)
	_, err := up.Client(t).PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(e.other), Key: aws.String("secret"), Body: bytes.NewReader(e.planted[advDenied])})
	must(t, err, "plant the other bucket")

	ring := newKeyring(t)
	specs := advClientSpecs(e.bucket)
	keys := map[string][2]string{}
	for _, s := range specs {
		keys[s.name] = [2]string{"adv-" + s.name + "-" + randHex(4), "secret-" + randHex(16)}
	}
	config := func(legacy bool) string {
		var b strings.Builder
		fmt.Fprintf(&b, "keys: local:%s\nbase_domains: [%s]\n", ring, advBase)
		fmt.Fprintf(&b, `policies:
  - {name: no-go, bucket: %[1]s, prefix: denied/, mode: deny}
  - {name: frozen, bucket: %[1]s, prefix: readonly/, mode: deny, deny: writes}
`, e.bucket)
		if !o.plain {
			fmt.Fprintf(&b, `  - {name: sealed, bucket: %[1]s, prefix: secret/, mode: envelope}
  - {name: store-encrypted, bucket: %[1]s, prefix: sse/, mode: sse-s3}
`, e.bucket)
		}
		fmt.Fprintf(&b, "tls:\n  storage: {type: s3, bucket: %s, prefix: %s}\nclients:\n", e.bucket, advReserved)
		for _, s := range specs {
			fmt.Fprintf(&b, "  - name: %s\n    access_key_id: %s\n    secret_access_key: %s\n", s.name, keys[s.name][0], keys[s.name][1])
			if s.buckets != "" {
				fmt.Fprintf(&b, "    buckets: %s\n", s.buckets)
			}
			if !legacy && s.permissions != "" {
				fmt.Fprintf(&b, "    permissions: %s\n", s.permissions)
			}
			if !legacy && s.admin {
				b.WriteString("    admin: true\n")
			}
		}
		if !legacy {
			b.WriteString(o.extraYAML)
		}
		return b.String()
	}
	e.p, e.legacy = startSpecified(t, up, config, o.env)
	e.clients["env"] = newAdvClient(t, e.p, e.p.AccessKey, e.p.SecretKey)
	for _, s := range specs {
		e.clients[s.name] = newAdvClient(t, e.p, keys[s.name][0], keys[s.name][1])
	}
	// The sse-s3 object goes through s3seal, as an application would write
	// it. versitygw encrypts nothing, and s3seal refuses writes there.
	if up.Name == "minio" && !o.plain {
		e.sse = []byte("SSE-PLAINTEXT " + randHex(8))
		r := e.do(t, "env", advReq{method: "PUT", path: e.path(advSSE), body: e.sse})
		if r.status != 200 {
			t.Fatalf("PUT %s through s3seal: %s", advSSE, r)
		}
	}
	return e
}

// startSpecified starts s3seal with config(false). When s3seal refuses a
// setting this suite specifies as unknown, the test fails and s3seal is
// started with config(true), which leaves those settings out, so that the
// attacks still run and show what today's s3seal lets through.
func startSpecified(t *testing.T, up *testbed.S3Server, config func(legacy bool) string, env map[string]string) (*proxy, bool) {
	t.Helper()
	withConfig := func(yaml string) proxyOptions {
		e := map[string]string{"S3SEAL_CONFIG": writeConfig(t, yaml), "S3SEAL_LOG_LEVEL": "info"}
		for k, v := range env {
			e[k] = v
		}
		return proxyOptions{Env: e}
	}
	p, err := launchProxy(t, up, withConfig(config(false)))
	if err == nil {
		return p, false
	}
	msg := err.Error()
	if !strings.Contains(msg, "not found in type config.") {
		t.Fatal(err)
	}
	line := msg[strings.Index(msg, "not found in type config."):]
	if i := strings.LastIndex(msg[:len(msg)-len(line)], "field "); i >= 0 {
		line = msg[i:]
	}
	line, _, _ = strings.Cut(line, "\n")
	t.Errorf("s3seal refuses a setting this suite specifies (%s); running without the new settings to show what gets through", line)
	return startProxy(t, up, withConfig(config(true))), true
}

// path returns the path-style path of key in the data bucket.
func (e *advEnv) path(key string) string { return "/" + e.bucket + "/" + urlPathEscape(key) }

// replant restores every planted object, so that one case's successful
// attack does not decide the next case's outcome.
func (e *advEnv) replant(t testing.TB) {
	t.Helper()
	c := e.up.Client(t)
	cx, cancel := context.WithTimeout(context.Background(), e.timeout())
	defer cancel()
	for k, v := range e.planted {
		_, err := c.PutObject(cx, &s3.PutObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(k), Body: bytes.NewReader(v)})
		must(t, err, "plant ", k)
	}
}

// do sends req as the named client.
func (e *advEnv) do(t testing.TB, client string, req advReq) advResp {
	t.Helper()
	c := e.clients[client]
	if c == nil {
		t.Fatalf("no client %q", client)
	}
	before := e.storeLogSize(t)
	r := c.do(t, req)
	r.reached = before >= 0 && e.storeLogSize(t) > before
	return r
}

// storeLogSize is the size of the store's access logs, -1 for a store
// without them. versitygw writes a request's line before it answers.
func (e *advEnv) storeLogSize(t testing.TB) int64 {
	t.Helper()
	if e.up.AccessLog == "" {
		return -1
	}
	var n int64
	for _, f := range []string{e.up.AccessLog, e.up.AdminAccessLog} {
		st, err := os.Stat(f)
		if err == nil {
			n += st.Size()
		} else if !os.IsNotExist(err) {
			t.Fatalf("store access log: %v", err)
		}
	}
	return n
}

// refuse asserts that s3seal itself refused r (see refused) and, on a
// store with an access log, that nothing reached the store.
func (e *advEnv) refuse(t testing.TB, r advResp, code string, statuses ...int) {
	t.Helper()
	refused(t, r, code, statuses...)
	if r.reached {
		t.Errorf("the request reached the store (its access log grew)")
	}
}

// stored reads key directly from the store as its owner; ok is false when
// the object does not exist.
func (e *advEnv) stored(t testing.TB, bucket, key string) (data []byte, ok bool) {
	t.Helper()
	timeout := e.timeout()
	cx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := e.up.Client(t).GetObject(cx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		if c := apiCode(err); c == "NoSuchKey" || c == "NotFound" || strings.Contains(err.Error(), "404") {
			return nil, false
		}
		if cx.Err() != nil {
			t.Fatalf("store: %s/%s does not answer within %v", bucket, key, timeout)
		}
		t.Fatalf("GET %s/%s directly: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	must(t, err, "read ", key, " directly")
	return b, true
}

// timeout bounds direct requests to the store.
func (e *advEnv) timeout() time.Duration {
	if e.readTimeout > 0 {
		return e.readTimeout
	}
	return time.Minute
}

// intact asserts that every planted object still holds its bytes, and
// plants them again if not, so that the next case starts from the same
// state.
func (e *advEnv) intact(t testing.TB) {
	t.Helper()
	defer func() {
		if t.Failed() {
			e.replant(t)
		}
	}()
	keys := make([]string, 0, len(e.planted))
	for k := range e.planted {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		got, ok := e.stored(t, e.bucket, k)
		switch {
		case !ok:
			t.Errorf("store: %s was deleted", k)
		case !bytes.Equal(got, e.planted[k]):
			t.Errorf("store: %s was overwritten (%d bytes: %.40q)", k, len(got), got)
		}
	}
}

// absent asserts that key does not exist in bucket.
func (e *advEnv) absent(t testing.TB, bucket, key string) {
	t.Helper()
	if got, ok := e.stored(t, bucket, key); ok {
		t.Errorf("store holds %s/%s (%d bytes: %.40q)", bucket, key, len(got), got)
	}
}

// noLeak asserts that an answer carries none of the planted secrets.
func (e *advEnv) noLeak(t testing.TB, r advResp) {
	t.Helper()
	for _, k := range []string{advDenied, advCertKey} {
		if bytes.Contains(r.body, e.planted[k]) {
			t.Errorf("the answer carries the content of %s", k)
		}
	}
}

// reservedNames are what a listing that reaches into the reserved prefix
// shows, plain and URL-encoded.
var reservedNames = []string{"certs/certificates", "certs%2Fcertificates", "certs/locks", "certs%2Flocks"}

// noReservedNames asserts that an answer to a request that did not name a
// reserved key names none.
func noReservedNames(t testing.TB, r advResp) {
	t.Helper()
	for _, s := range reservedNames {
		if bytes.Contains(r.body, []byte(s)) {
			t.Errorf("the answer names a key under the reserved prefix (%s)", s)
		}
	}
}

// advClient signs raw requests as one identity: an s3seal client, or the
// store's owner talking to the store directly (ownerClient).
type advClient struct {
	rc *rawClient
}

func newAdvClient(t testing.TB, p *proxy, accessKey, secretKey string) *advClient {
	cp := *p
	cp.AccessKey, cp.SecretKey = accessKey, secretKey
	return &advClient{rc: newRawClient(t, &cp)}
}

// ownerClient signs with the store's root credentials and talks to the
// store directly.
func ownerClient(t testing.TB, up *testbed.S3Server) *advClient {
	return newAdvClient(t, &proxy{Endpoint: up.Endpoint, CAFile: up.CAFile, Upstream: up}, up.AccessKey, up.SecretKey)
}

// advReq is one raw request.
type advReq struct {
	method string
	// path is sent exactly as written (percent-escapes and all); the
	// signature covers it decoded once and re-encoded with S3's rules.
	path  string
	query string // raw query, without '?'
	// host replaces the Host header (virtual-hosted requests); the
	// connection still goes to the endpoint.
	host   string
	header map[string]string
	body   []byte
	// region is the credential scope's region; "" is us-east-1.
	region string
	// presign sends a presigned URL (X-Amz-Expires from expires, default
	// 900) instead of an Authorization header.
	presign bool
	expires string
	// timeout bounds the whole exchange; 0 is a minute.
	timeout time.Duration
}

// advResp is the answer to an advReq.
type advResp struct {
	status        int // 0 when the exchange failed
	code, message string
	body          []byte
	header        http.Header
	err           error
	// reached reports that the store's access log grew during the
	// request (advEnv.do on versitygw): s3seal sent something upstream.
	reached bool
	// head marks the answer to a HEAD request, which carries no error
	// body: only its status can be checked.
	head bool
}

func (r advResp) String() string {
	if r.status == 0 {
		return "error: " + r.err.Error()
	}
	msg := r.message
	if r.code == "" {
		msg = string(r.body)
	}
	return fmt.Sprintf("%d %s %q", r.status, r.code, trimRaw(msg))
}

// mentions asserts that r's error message names what it refuses.
func mentions(t testing.TB, r advResp, what string) {
	t.Helper()
	if r.status >= 400 && !r.head && !strings.Contains(strings.ToLower(r.message), strings.ToLower(what)) {
		t.Errorf("the error message %q does not name %q", r.message, what)
	}
}

// do signs and sends req.
func (c *advClient) do(t testing.TB, req advReq) advResp {
	t.Helper()
	hreq := c.build(t, req)
	timeout := req.timeout
	if timeout == 0 {
		timeout = time.Minute
	}
	cx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := c.rc.hc.Do(hreq.WithContext(cx))
	if err != nil {
		return advResp{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	out := advResp{status: resp.StatusCode, body: b, header: resp.Header, err: err, head: req.method == http.MethodHead}
	var e s3Error
	if xml.Unmarshal(b, &e) == nil {
		out.code, out.message = e.Code, e.Message
	}
	return out
}

// build returns the signed request for req.
func (c *advClient) build(t testing.TB, req advReq) *http.Request {
	t.Helper()
	base, err := url.Parse(c.rc.p.Endpoint)
	must(t, err, "endpoint")
	decoded, err := url.PathUnescape(req.path)
	if err != nil {
		decoded = req.path
	}
	region := req.region
	if region == "" {
		region = testbed.Region
	}
	// What is signed: the path the client means, in S3's canonical form.
	sreq, err := http.NewRequest(req.method, base.String(), bytes.NewReader(req.body))
	must(t, err, "request")
	sreq.URL.Path, sreq.URL.RawPath, sreq.URL.RawQuery = decoded, urlPathEscape(decoded), req.query
	if req.host != "" {
		sreq.Host = req.host
	}
	// Plain answers: s3seal's listing rewrite does not read compressed
	// store answers, which Go's default Accept-Encoding: gzip would ask for.
	sreq.Header.Set("Accept-Encoding", "identity")
	for k, v := range req.header {
		sreq.Header.Set(k, v)
	}
	creds := aws.Credentials{AccessKeyID: c.rc.p.AccessKey, SecretAccessKey: c.rc.p.SecretKey}
	query := req.query
	if req.presign {
		exp := req.expires
		if exp == "" {
			exp = "900"
		}
		if sreq.URL.RawQuery != "" {
			sreq.URL.RawQuery += "&"
		}
		sreq.URL.RawQuery += "X-Amz-Expires=" + exp
		signed, hdr, err := c.rc.signer.PresignHTTP(context.Background(), creds, sreq, "UNSIGNED-PAYLOAD", "s3", region, time.Now())
		must(t, err, "presign")
		u, err := url.Parse(signed)
		must(t, err, "presigned URL")
		query = u.RawQuery
		sreq.Header = hdr.Clone()
		sreq.Header.Del("Host")
	} else {
		payload := sha256Hex(req.body)
		if v, ok := req.header["X-Amz-Content-Sha256"]; ok {
			payload = v
		}
		sreq.Header.Set("X-Amz-Content-Sha256", payload)
		must(t, c.rc.signer.SignHTTP(context.Background(), creds, sreq, payload, "s3", region, time.Now()), "sign")
	}
	// What is sent: the raw path as written.
	sent := &url.URL{Scheme: base.Scheme, Host: base.Host, Path: decoded, RawPath: req.path, RawQuery: query}
	if sent.EscapedPath() != req.path {
		sent = &url.URL{Scheme: base.Scheme, Host: base.Host, Opaque: req.path, RawQuery: query}
	}
	out := &http.Request{
		Method: req.method, URL: sent, Host: sreq.Host, Header: sreq.Header,
		Body: io.NopCloser(bytes.NewReader(req.body)), ContentLength: int64(len(req.body)),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
	}
	if len(req.body) == 0 {
		out.Body = http.NoBody
	}
	return out
}

// deleteBody is a DeleteObjects document for keys (a key "k@v" names
// version v of k).
func deleteBody(quiet bool, keys ...string) []byte {
	var b bytes.Buffer
	b.WriteString("<Delete>")
	if quiet {
		b.WriteString("<Quiet>true</Quiet>")
	}
	for _, k := range keys {
		key, version, _ := strings.Cut(k, "@")
		b.WriteString("<Object><Key>")
		_ = xml.EscapeText(&b, []byte(key))
		b.WriteString("</Key>")
		if version != "" {
			b.WriteString("<VersionId>" + version + "</VersionId>")
		}
		b.WriteString("</Object>")
	}
	b.WriteString("</Delete>")
	return b.Bytes()
}

// contentMD5 is the Content-MD5 header value of b.
func contentMD5(b []byte) string {
	s := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(s[:])
}

// deleteResult is a DeleteObjects answer.
type deleteResult struct {
	Deleted []struct {
		Key string `xml:"Key"`
	} `xml:"Deleted"`
	Errors []struct {
		Key  string `xml:"Key"`
		Code string `xml:"Code"`
	} `xml:"Error"`
}

// statusIn reports whether status is one of want, or any 4xx when want is
// empty.
func statusIn(status int, want []int) bool {
	if len(want) == 0 {
		return status >= 400 && status < 500
	}
	for _, w := range want {
		if status == w {
			return true
		}
	}
	return false
}

// refused asserts that r is a refusal with one of the statuses (any 4xx when
// none is given) and, if code is not empty, that S3 code.
func refused(t testing.TB, r advResp, code string, statuses ...int) {
	t.Helper()
	if r.status == 0 {
		t.Errorf("want a refusal, got %v", r.err)
		return
	}
	if !statusIn(r.status, statuses) || (code != "" && !r.head && r.code != code) {
		want := fmt.Sprint(statuses)
		if len(statuses) == 0 {
			want = "4xx"
		}
		t.Errorf("answered %s; want %s %s", r, want, code)
	}
}
