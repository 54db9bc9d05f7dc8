package integration

import (
	"bytes"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/crypto/keys/local"
	"github.com/s3seal/s3seal/integration/testbed"
)

// secretScan collects secret values and the texts s3seal produced, and
// reports every secret found in any text.
type secretScan struct {
	secrets map[string]string // value -> what it is
	texts   map[string]string // where -> text
}

func newSecretScan() *secretScan {
	return &secretScan{secrets: map[string]string{}, texts: map[string]string{}}
}

// secret adds a value that must appear nowhere (values under 8 bytes are
// too short to search for without false alarms).
func (s *secretScan) secret(what, v string) {
	if len(v) >= 8 {
		s.secrets[v] = what
	}
}

// secretBytes adds binary key material in the encodings it could be
// printed in.
func (s *secretScan) secretBytes(what string, b []byte) {
	s.secret(what+" (base64)", base64.StdEncoding.EncodeToString(b))
	s.secret(what+" (base64url)", base64.RawURLEncoding.EncodeToString(b))
	s.secret(what+" (hex)", hex.EncodeToString(b))
	s.secret(what+" (HEX)", strings.ToUpper(hex.EncodeToString(b)))
}

func (s *secretScan) text(where, t string) { s.texts[where] += t }

// check fails the test for every secret found and returns how many texts
// and bytes were scanned.
func (s *secretScan) check(t *testing.T) (texts, size int) {
	t.Helper()
	for where, txt := range s.texts {
		size += len(txt)
		for v, what := range s.secrets {
			if strings.Contains(txt, v) {
				t.Errorf("%s appears in %s", what, where)
			}
		}
	}
	return len(s.texts), size
}

// recordingTransport keeps every response body s3seal sent with an error
// status, for the scan.
type recordingTransport struct {
	rt   http.RoundTripper
	scan *secretScan
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.rt.RoundTrip(req)
	if err != nil || resp.StatusCode < 300 {
		return resp, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.scan.text("error bodies", string(b)+"\n")
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

// TestReliabilitySecrets runs a workload with every kind of secret s3seal
// holds configured — client secrets, upstream keys, a local key ring
// (envelope and derived SSE-C keys), a KMS, client-supplied SSE-C keys —
// and requests that fail in every way, then searches s3seal's logs, audit
// log, error bodies, metrics, readiness answer and a goroutine dump
// (SIGQUIT, what a panic prints) for any of them.
func TestReliabilitySecrets(t *testing.T) {
	testbed.Require(t)
	up := shared.minio
	scan := newSecretScan()
	kms := testbed.StartLocalKMS(t)
	kmsKey, _ := kms.CreateKey(t)
	ringPath := newKeyring(t)
	ringText, err := os.ReadFile(ringPath)
	must(t, err, "read key ring")
	ring, err := local.Load(ringPath)
	must(t, err, "load key ring")
	for _, f := range strings.FieldsFunc(string(ringText), func(r rune) bool { return r == '\n' || r == ':' || r == ' ' }) {
		if b, err := base64.StdEncoding.DecodeString(f); err == nil && len(b) == 32 {
			scan.secretBytes("a key ring master key", b)
		}
	}
	buckets := map[string]string{"envelope": newBucket(t, up), "sse-c": newBucket(t, up), "sse-kms": newBucket(t, up), "passthrough": newBucket(t, up)}
	aliceKey, aliceSecret := "ALICE"+randHex(4), "alice-"+randHex(16)
	bobKey, bobSecret := "BOB"+randHex(4), "bob-"+randHex(16)
	cfg := fmt.Sprintf(`clients:
  - {name: alice, access_key_id: %s, secret_access_key: %s}
  - {name: bob, access_key_id: %s, secret_access_key: %s, buckets: [%s]}
policies:
  - {name: env, bucket: %s, mode: envelope}
  - {name: ssec, bucket: %s, mode: sse-c}
  - {name: kms, bucket: %s, mode: sse-kms, kms_key_id: s3seal-test-key}
`, aliceKey, aliceSecret, bobKey, bobSecret, buckets["passthrough"], buckets["envelope"], buckets["sse-c"], buckets["sse-kms"])
	auditFile := filepath.Join(t.TempDir(), "audit.log")
	env := map[string]string{"S3SEAL_CONFIG": writeConfig(t, cfg), "S3SEAL_KEYS": "local:" + ringPath, "S3SEAL_AUDIT": auditFile, "S3SEAL_LOG_LEVEL": "debug"}
	p := startProxy(t, up, proxyOptions{Env: env})
	scan.secret("the client secret", p.SecretKey)
	scan.secret("alice's secret", aliceSecret)
	scan.secret("bob's secret", bobSecret)
	scan.secret("the upstream secret key", up.SecretKey)

	rec := &recordingTransport{rt: testbed.SDKHTTPClient(t, p.CAFile).GetTransport(), scan: scan}
	client := func(ak, sk string) *s3.Client {
		q := *p
		q.AccessKey, q.SecretKey = ak, sk
		return q.Client(t, noRetry, func(o *s3.Options) { o.HTTPClient = &http.Client{Transport: rec} })
	}
	c := client(p.AccessKey, p.SecretKey)
	body := randBytes(300_000)
	for mode, b := range buckets {
		for _, k := range []string{"a", "b/c"} {
			_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String(k), Body: bytes.NewReader(body)})
			must(t, err, mode+" PUT")
			if got := getBytes(t, c, b, k); !bytes.Equal(got, body) {
				t.Errorf("%s: other bytes", mode)
			}
			_, err = c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String(k), Range: aws.String("bytes=1000-70000")})
			must(t, err, mode+" range GET")
			if mode == "sse-c" {
				dk, err := ring.DeriveSSECKey(ring.Active(), b, k)
				must(t, err, "derive")
				scan.secretBytes("a derived SSE-C key", dk[:])
			}
		}
		_, err := c.CopyObject(ctx(t), &s3.CopyObjectInput{Bucket: aws.String(b), Key: aws.String("copy"), CopySource: aws.String(b + "/a")})
		must(t, err, mode+" copy")
		_, err = c.ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: aws.String(b)})
		must(t, err, mode+" list")
	}
	mpu := func(b string) {
		out, err := c.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(b), Key: aws.String("mpu")})
		must(t, err, "CreateMultipartUpload")
		part, err := c.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String(b), Key: aws.String("mpu"), UploadId: out.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(body)})
		must(t, err, "UploadPart")
		_, err = c.CompleteMultipartUpload(ctx(t), &s3.CompleteMultipartUploadInput{Bucket: aws.String(b), Key: aws.String("mpu"), UploadId: out.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: part.ETag}}}})
		must(t, err, "CompleteMultipartUpload")
	}
	mpu(buckets["envelope"])
	mpu(buckets["sse-c"])

	// A client's own SSE-C key through a passthrough bucket.
	custKey := randBytes(32)
	scan.secretBytes("a client's SSE-C key", custKey)
	sum := md5.Sum(custKey)
	ssec := func(in *s3.GetObjectInput) {
		in.SSECustomerAlgorithm = aws.String("AES256")
		in.SSECustomerKey = aws.String(base64.StdEncoding.EncodeToString(custKey))
		in.SSECustomerKeyMD5 = aws.String(base64.StdEncoding.EncodeToString(sum[:]))
	}
	_, err = c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(buckets["passthrough"]), Key: aws.String("ssec-own"), Body: bytes.NewReader(body),
		SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(base64.StdEncoding.EncodeToString(custKey)), SSECustomerKeyMD5: aws.String(base64.StdEncoding.EncodeToString(sum[:]))})
	must(t, err, "PUT with a client's SSE-C key")
	getBytes(t, c, buckets["passthrough"], "ssec-own", ssec)
	// The same object without its key, and with a wrong one: store errors.
	_, _ = c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(buckets["passthrough"]), Key: aws.String("ssec-own")})
	wrongKey := randBytes(32)
	scan.secretBytes("a wrong SSE-C key", wrongKey)
	wsum := md5.Sum(wrongKey)
	_, _ = c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(buckets["passthrough"]), Key: aws.String("ssec-own"), SSECustomerAlgorithm: aws.String("AES256"),
		SSECustomerKey: aws.String(base64.StdEncoding.EncodeToString(wrongKey)), SSECustomerKeyMD5: aws.String(base64.StdEncoding.EncodeToString(wsum[:]))})

	// Other clients, and every way to fail authentication.
	alice := client(aliceKey, aliceSecret)
	getBytes(t, alice, buckets["envelope"], "a")
	bob := client(bobKey, bobSecret)
	_, err = bob.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(buckets["envelope"]), Key: aws.String("a")})
	if apiCode(err) != "AccessDenied" {
		t.Errorf("bob outside his bucket: %v", err)
	}
	_, _ = client(p.AccessKey, "wrong-"+p.SecretKey).GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(buckets["envelope"]), Key: aws.String("a")})
	_, _ = client("UNKNOWNKEY", p.SecretKey).GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(buckets["envelope"]), Key: aws.String("a")})
	rc := newRawClient(t, p)
	rc.hc.Transport = rec
	for _, f := range []func() *http.Request{
		func() *http.Request { // signed, so its signature is a secret to look for
			req := rc.signed(t, http.MethodGet, rc.url(buckets["envelope"], "a"), nil, nil)
			auth := req.Header.Get("Authorization")
			scan.secret("a request signature", auth[strings.LastIndex(auth, "=")+1:])
			return req
		},
		func() *http.Request { // a body that does not match its signed hash
			req := rc.signed(t, http.MethodPut, rc.url(buckets["envelope"], "bad"), []byte("one body"), nil)
			req.Body = io.NopCloser(strings.NewReader("another!"))
			return req
		},
		func() *http.Request { // a presigned URL, then with its signature flipped
			req := rc.presigned(t, http.MethodGet, buckets["envelope"], "a", nil, time.Now(), time.Hour)
			sig := req.URL.Query().Get("X-Amz-Signature")
			scan.secret("a presigned URL's signature", sig)
			u := strings.Replace(req.URL.String(), sig, strings.Repeat("0", len(sig)), 1)
			bad, _ := http.NewRequest(http.MethodGet, u, nil)
			return bad
		},
		func() *http.Request {
			return rc.presigned(t, http.MethodGet, buckets["envelope"], "a", nil, time.Now(), time.Hour)
		},
		func() *http.Request { // an Authorization header that does not parse
			req, _ := http.NewRequest(http.MethodGet, rc.url(buckets["envelope"], "a"), nil)
			req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+p.AccessKey+"/x, Signature="+p.SecretKey)
			return req
		},
	} {
		resp, err := rc.hc.Do(f())
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}

	// The second process: the same workload's writes with keys from a KMS.
	envKMS := map[string]string{"S3SEAL_MODE": "envelope", "S3SEAL_KEYS": "aws-kms:" + kmsKey, "AWS_ENDPOINT_URL_KMS": kms.Endpoint, "S3SEAL_AUDIT": auditFile + ".kms", "S3SEAL_LOG_LEVEL": "debug"}
	pk := startProxy(t, up, proxyOptions{Env: envKMS})
	scan.secret("the KMS process's client secret", pk.SecretKey)
	kb := newBucket(t, up)
	ck := pk.Client(t, noRetry)
	for i := 0; i < 5; i++ {
		_, err := ck.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(kb), Key: aws.String(fmt.Sprint(i)), Body: bytes.NewReader(body)})
		must(t, err, "PUT (KMS)")
		getBytes(t, ck, kb, fmt.Sprint(i))
	}
	// A third, with a wrong upstream secret: the store's signature error
	// carries s3seal's canonical request and must not be relayed.
	wrongUp := *up
	wrongUp.SecretKey = "wrong-upstream-" + randHex(12)
	pw := startProxy(t, &wrongUp, proxyOptions{})
	scan.secret("a wrong upstream secret key", wrongUp.SecretKey)
	scan.secret("the third process's client secret", pw.SecretKey)
	_, err = pw.Client(t, noRetry, func(o *s3.Options) {
		o.HTTPClient = &http.Client{Transport: &recordingTransport{rt: testbed.SDKHTTPClient(t, pw.CAFile).GetTransport(), scan: scan}}
	}).
		GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(kb), Key: aws.String("0")})
	if apiCode(err) != "UpstreamAuthenticationFailed" {
		t.Errorf("wrong upstream secret: %v, want UpstreamAuthenticationFailed", err)
	}

	for _, q := range []*proxy{p, pk, pw} {
		for _, path := range []string{"/metrics", "/readyz", "/healthz"} {
			resp, err := http.Get(q.Admin + path)
			must(t, err, path)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			scan.text(path, string(b))
		}
	}
	// A goroutine dump, as a crash prints it.
	must(t, syscall.Kill(p.PID(), syscall.SIGQUIT), "SIGQUIT")
	select {
	case <-p.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("s3seal did not exit on SIGQUIT")
	}
	for _, q := range []*proxy{pk, pw} {
		q.Stop(t)
	}
	for name, path := range map[string]string{"s3seal's log": p.LogPath(), "the KMS process's log": pk.LogPath(), "the third process's log": pw.LogPath(), "the audit log": auditFile, "the KMS audit log": auditFile + ".kms"} {
		b, err := os.ReadFile(path)
		must(t, err, "read "+name)
		scan.text(name, string(b))
	}
	dump := scan.texts["s3seal's log"]
	if !strings.Contains(dump, "goroutine ") || !strings.Contains(dump, "SIGQUIT") {
		t.Error("no goroutine dump in s3seal's output")
	}
	if !strings.Contains(scan.texts["the audit log"], `"use":"seal"`) || !strings.Contains(scan.texts["the KMS audit log"], `"provider":"aws-kms"`) {
		t.Error("the audit logs do not record the workload's key use")
	}
	if !strings.Contains(scan.texts["error bodies"], "SignatureDoesNotMatch") || !strings.Contains(scan.texts["error bodies"], "UpstreamAuthenticationFailed") {
		t.Error("the error bodies scanned lack the failures the test caused")
	}
	texts, size := scan.check(t)
	relRecord(t, "secrets", map[string]any{"secret_values": len(scan.secrets), "texts_scanned": texts, "bytes_scanned": size, "found": map[bool]string{true: "none", false: "see failures"}[!t.Failed()]})
}

// TestReliabilityTLSHandshake connects to the running binary with old
// protocol versions and weak cipher suites: s3seal must refuse them and
// accept TLS 1.2 with AEAD suites and TLS 1.3, or only TLS 1.3 when so
// configured.
func TestReliabilityTLSHandshake(t *testing.T) {
	testbed.Require(t)
	p12 := startProxy(t, shared.minio, proxyOptions{})
	p13 := startProxy(t, shared.minio, proxyOptions{Env: map[string]string{"S3SEAL_TLS_MIN_VERSION": "1.3"}})
	weak := []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_RC4_128_SHA, tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA, tls.TLS_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_RC4_128_SHA,
	}
	cases := []struct {
		name   string
		p      *proxy
		min    uint16
		max    uint16
		suites []uint16
		ok     bool
	}{
		{"TLS 1.0", p12, tls.VersionTLS10, tls.VersionTLS10, nil, false},
		{"TLS 1.1", p12, tls.VersionTLS11, tls.VersionTLS11, nil, false},
		{"TLS 1.2, CBC, RC4, 3DES and RSA key exchange suites only", p12, tls.VersionTLS12, tls.VersionTLS12, weak, false},
		{"TLS 1.2, ECDHE-ECDSA-AES128-GCM", p12, tls.VersionTLS12, tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, true},
		{"TLS 1.2, ECDHE-ECDSA-CHACHA20-POLY1305", p12, tls.VersionTLS12, tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}, true},
		{"TLS 1.3", p12, tls.VersionTLS13, tls.VersionTLS13, nil, true},
		{"TLS 1.2 against min_version 1.3", p13, tls.VersionTLS12, tls.VersionTLS12, nil, false},
		{"TLS 1.3 against min_version 1.3", p13, tls.VersionTLS13, tls.VersionTLS13, nil, true},
	}
	for _, c := range cases {
		cfg := &tls.Config{RootCAs: x509Pool(t, mustRead(t, c.p.CAFile)), ServerName: "127.0.0.1", MinVersion: c.min, MaxVersion: c.max, CipherSuites: c.suites}
		conn, err := tls.Dial("tcp", strings.TrimPrefix(c.p.Endpoint, "https://"), cfg)
		got := "refused"
		if err == nil {
			st := conn.ConnectionState()
			got = tls.VersionName(st.Version) + " " + tls.CipherSuiteName(st.CipherSuite)
			conn.Close()
		}
		if (err == nil) != c.ok {
			t.Errorf("%s: %s (%v)", c.name, got, err)
		}
		relRecord(t, "tls", map[string]any{"offer": c.name, "result": got})
	}
}
