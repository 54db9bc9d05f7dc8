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

	"github.com/s3seal/s3seal/crypto/keys/local"
	"github.com/s3seal/s3seal/proxy/authz"
	"github.com/s3seal/s3seal/proxy/policy"
	"github.com/s3seal/s3seal/proxy/sigv4"
	"github.com/s3seal/s3seal/proxy/upstream"
)

// fakeSSEStore is an in-memory S3 store that implements server-side
// encryption the way MinIO answers it (PROTOCOL.md §2 and probes of MinIO):
// SSE-C objects need their key on GET, HEAD, GetObjectAttributes and as
// copy sources (400 without, 403 with a wrong one, 400 with a key for an
// object that is not SSE-C); parts need the upload's key (400 without, 403
// wrong); CopyObject, CreateMultipartUpload and CompleteMultipartUpload
// answers carry no encryption headers.
type fakeSSEStore struct {
	mu      sync.Mutex
	objects map[string]*fakeSSEObject // "bucket/key"
	uploads map[string]*fakeSSEUpload
	reqs    []fakeSSERequest
	n       int

	// ignoreSSE accepts encryption headers and ignores them, as
	// versitygw does: nothing is encrypted, nothing is echoed.
	ignoreSSE bool
	// blockSSEC refuses SSE-C writes with 403 and reports SSE-C in
	// BlockedEncryptionTypes, as AWS does for new buckets since April
	// 2026.
	blockSSEC bool
	// failDelete makes DeleteObject fail.
	failDelete bool
}

type fakeSSEObject struct {
	data   []byte
	etag   string // quoted; set by setETag
	alg    string // x-amz-server-side-encryption
	kmsKey string
	ctx    string
	keyMD5 string // SSE-C key digest; "" for none
}

type fakeSSEUpload struct {
	bucket, key string
	enc         fakeSSEObject
	parts       map[int][]byte
}

// fakeSSERequest is what the store received.
type fakeSSERequest struct {
	Method, Path string
	Query        url.Values
	Header       http.Header
}

func newFakeSSEStore() *fakeSSEStore {
	return &fakeSSEStore{objects: map[string]*fakeSSEObject{}, uploads: map[string]*fakeSSEUpload{}}
}

func (f *fakeSSEStore) requests() []fakeSSERequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeSSERequest(nil), f.reqs...)
}

func (f *fakeSSEStore) reset() {
	f.mu.Lock()
	f.reqs = nil
	f.mu.Unlock()
}

func (f *fakeSSEStore) object(bucket, key string) *fakeSSEObject {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.objects[bucket+"/"+key]
}

func (f *fakeSSEStore) put(bucket, key string, o *fakeSSEObject) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if o.etag == "" {
		o.setETag()
	}
	f.objects[bucket+"/"+key] = o
}

// setETag gives the object the ETag a store gives it: the MD5 of the data
// for plain and SSE-S3 objects, 32 other hex digits for SSE-KMS and SSE-C.
func (o *fakeSSEObject) setETag() {
	data := o.data
	if o.keyMD5 != "" || o.kmsKey != "" {
		data = append([]byte("not the md5 of "), data...)
	}
	sum := md5.Sum(data)
	o.etag = `"` + hex.EncodeToString(sum[:]) + `"`
}

func fakeErr(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg)
	}
}

// sseC reads the SSE-C headers with prefix; ok is false when they are
// malformed. md5 is "" without headers.
func fakeSSEC(h http.Header, prefix string) (keyMD5 string, ok bool) {
	alg := h.Get(ssecName(prefix, hdrSSECAlgorithm))
	key := h.Get(ssecName(prefix, hdrSSECKey))
	sum := h.Get(ssecName(prefix, hdrSSECKeyMD5))
	if alg == "" && key == "" && sum == "" {
		return "", true
	}
	raw, err := base64.StdEncoding.DecodeString(key)
	if alg != "AES256" || err != nil || len(raw) != 32 {
		return "", false
	}
	got := md5.Sum(raw)
	if base64.StdEncoding.EncodeToString(got[:]) != sum {
		return "", false
	}
	return sum, true
}

// open checks the SSE-C key a read or copy source gives for o.
func fakeOpen(w http.ResponseWriter, r *http.Request, o *fakeSSEObject, keyMD5 string) bool {
	switch {
	case o.keyMD5 == "" && keyMD5 != "":
		fakeErr(w, r, 400, "InvalidRequest", "The encryption parameters are not applicable to this object.")
	case o.keyMD5 != "" && keyMD5 == "":
		fakeErr(w, r, 400, "InvalidRequest", "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.")
	case o.keyMD5 != keyMD5:
		fakeErr(w, r, 403, "AccessDenied", "Access Denied.")
	default:
		return true
	}
	return false
}

func (f *fakeSSEStore) echo(h http.Header, o *fakeSSEObject) {
	if f.ignoreSSE {
		return
	}
	if o.keyMD5 != "" {
		h.Set(hdrSSECAlgorithm, "AES256")
		h.Set(hdrSSECKeyMD5, o.keyMD5)
	}
	if o.alg != "" {
		h.Set(hdrSSE, o.alg)
	}
	if o.kmsKey != "" {
		h.Set(hdrSSEKMSKeyID, "arn:aws:kms:"+o.kmsKey)
	}
}

// encryption reads the encryption a write asks for.
func (f *fakeSSEStore) encryption(w http.ResponseWriter, r *http.Request) (fakeSSEObject, bool) {
	var o fakeSSEObject
	keyMD5, ok := fakeSSEC(r.Header, "")
	if !ok {
		fakeErr(w, r, 400, "InvalidArgument", "bad SSE-C headers")
		return o, false
	}
	o.alg = r.Header.Get(hdrSSE)
	o.kmsKey = r.Header.Get(hdrSSEKMSKeyID)
	o.ctx = r.Header.Get(hdrSSEContext)
	if o.kmsKey != "" && o.alg != "aws:kms" && o.alg != "aws:kms:dsse" {
		fakeErr(w, r, 400, "InvalidArgument", "kms key without aws:kms")
		return o, false
	}
	if o.alg == "aws:kms" && o.kmsKey == "" {
		o.kmsKey = "default-key"
	}
	if keyMD5 != "" && o.alg != "" {
		fakeErr(w, r, 400, "InvalidArgument", "SSE-C and SSE together")
		return o, false
	}
	if keyMD5 != "" && f.blockSSEC {
		fakeErr(w, r, 403, "AccessDenied", "Access Denied.")
		return o, false
	}
	o.keyMD5 = keyMD5
	if f.ignoreSSE {
		o = fakeSSEObject{}
	}
	return o, true
}

func (f *fakeSSEStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.reqs = append(f.reqs, fakeSSERequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone()})
	f.mu.Unlock()
	q := r.URL.Query()
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	_, hasUploads := q["uploads"]
	_, hasEncryption := q["encryption"]
	_, hasAttributes := q["attributes"]
	uploadID := q.Get("uploadId")
	switch {
	case key == "" && hasEncryption && r.Method == http.MethodGet:
		if !f.blockSSEC {
			fakeErr(w, r, 404, "ServerSideEncryptionConfigurationNotFoundError", "The server side encryption configuration was not found")
			return
		}
		io.WriteString(w, `<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault><BlockedEncryptionTypes><EncryptionType>SSE-C</EncryptionType></BlockedEncryptionTypes></Rule></ServerSideEncryptionConfiguration>`)
	case key == "" && r.Method == http.MethodGet:
		f.mu.Lock()
		var b strings.Builder
		b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>` + bucket + `</Name>`)
		for _, k := range sortedKeys(f.objects) {
			if kb, kk, _ := strings.Cut(k, "/"); kb == bucket {
				o := f.objects[k]
				fmt.Fprintf(&b, "<Contents><Key>%s</Key><ETag>%s</ETag><Size>%d</Size></Contents>", xmlEscape(kk), xmlEscape(o.etag), len(o.data))
			}
		}
		b.WriteString(`</ListBucketResult>`)
		f.mu.Unlock()
		io.WriteString(w, b.String())
	case r.Method == http.MethodPost && hasUploads:
		enc, ok := f.encryption(w, r)
		if !ok {
			return
		}
		f.mu.Lock()
		f.n++
		id := fmt.Sprintf("upload-%d", f.n)
		f.uploads[id] = &fakeSSEUpload{bucket: bucket, key: key, enc: enc, parts: map[int][]byte{}}
		f.mu.Unlock()
		fmt.Fprintf(w, `<InitiateMultipartUploadResult><Bucket>%s</Bucket><Key>%s</Key><UploadId>%s</UploadId></InitiateMultipartUploadResult>`, bucket, key, id)
	case uploadID != "" && r.Method == http.MethodGet:
		f.mu.Lock()
		up := f.uploads[uploadID]
		f.mu.Unlock()
		if up == nil {
			fakeErr(w, r, 404, "NoSuchUpload", "no such upload")
			return
		}
		fmt.Fprintf(w, `<ListPartsResult><UploadId>%s</UploadId><PartCount>%d</PartCount></ListPartsResult>`, uploadID, len(up.parts))
	case uploadID != "" && r.Method == http.MethodPut:
		f.mu.Lock()
		up := f.uploads[uploadID]
		f.mu.Unlock()
		if up == nil {
			fakeErr(w, r, 404, "NoSuchUpload", "no such upload")
			return
		}
		keyMD5, ok := fakeSSEC(r.Header, "")
		switch {
		case !ok:
			fakeErr(w, r, 400, "InvalidArgument", "bad SSE-C headers")
			return
		case up.enc.keyMD5 != "" && keyMD5 == "":
			fakeErr(w, r, 400, "InvalidRequest", "The multipart upload initiate requested encryption. Subsequent part requests must include the appropriate encryption parameters.")
			return
		case up.enc.keyMD5 != keyMD5:
			fakeErr(w, r, 403, "AccessDenied", "Access Denied.")
			return
		}
		var data []byte
		if src := r.Header.Get("X-Amz-Copy-Source"); src != "" {
			o := f.copySource(w, r, src)
			if o == nil {
				return
			}
			data = o.data
		} else {
			data, _ = io.ReadAll(r.Body)
		}
		n := 0
		fmt.Sscan(q.Get("partNumber"), &n)
		f.mu.Lock()
		up.parts[n] = data
		f.mu.Unlock()
		sum := md5.Sum(data)
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
		f.echo(w.Header(), &up.enc)
	case uploadID != "" && r.Method == http.MethodPost:
		io.Copy(io.Discard, r.Body)
		f.mu.Lock()
		up := f.uploads[uploadID]
		delete(f.uploads, uploadID)
		f.mu.Unlock()
		if up == nil {
			fakeErr(w, r, 404, "NoSuchUpload", "no such upload")
			return
		}
		var all []byte
		for i := 1; i <= len(up.parts); i++ {
			all = append(all, up.parts[i]...)
		}
		o := up.enc
		o.data = all
		f.put(bucket, key, &o)
		fmt.Fprintf(w, `<CompleteMultipartUploadResult><Bucket>%s</Bucket><Key>%s</Key><ETag>"x-%d"</ETag></CompleteMultipartUploadResult>`, bucket, key, len(up.parts))
	case r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "":
		src := f.copySource(w, r, r.Header.Get("X-Amz-Copy-Source"))
		if src == nil {
			return
		}
		enc, ok := f.encryption(w, r)
		if !ok {
			return
		}
		enc.data = src.data
		f.put(bucket, key, &enc)
		fmt.Fprintf(w, `<CopyObjectResult><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>%s</ETag></CopyObjectResult>`, xmlEscape(enc.etag))
	case r.Method == http.MethodPut:
		enc, ok := f.encryption(w, r)
		if !ok {
			return
		}
		enc.data, _ = io.ReadAll(r.Body)
		f.put(bucket, key, &enc)
		f.echo(w.Header(), &enc)
		w.Header().Set("ETag", enc.etag)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		o := f.object(bucket, key)
		if o == nil {
			fakeErr(w, r, 404, "NoSuchKey", "The specified key does not exist.")
			return
		}
		keyMD5, ok := fakeSSEC(r.Header, "")
		if !ok {
			fakeErr(w, r, 400, "InvalidArgument", "bad SSE-C headers")
			return
		}
		if r.Header.Get(hdrSSE) != "" {
			fakeErr(w, r, 400, "InvalidArgument", "x-amz-server-side-encryption header is not supported for this operation.")
			return
		}
		if !f.ignoreSSE && !fakeOpen(w, r, o, keyMD5) {
			return
		}
		if inm := r.Header.Get("If-None-Match"); inm != "" && inm == o.etag {
			w.Header().Set("ETag", o.etag)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if im := r.Header.Get("If-Match"); im != "" && im != o.etag {
			fakeErr(w, r, 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
			return
		}
		f.echo(w.Header(), o)
		if hasAttributes {
			fmt.Fprintf(w, `<GetObjectAttributesResponse><ETag>%s</ETag><ObjectSize>%d</ObjectSize></GetObjectAttributesResponse>`, strings.Trim(o.etag, `"`), len(o.data))
			return
		}
		w.Header().Set("ETag", o.etag)
		w.Header().Set("Content-Length", fmt.Sprint(len(o.data)))
		if r.Method == http.MethodGet {
			w.Write(o.data)
		}
	case r.Method == http.MethodDelete:
		if f.failDelete {
			fakeErr(w, r, 500, "InternalError", "cannot delete")
			return
		}
		f.mu.Lock()
		delete(f.objects, bucket+"/"+key)
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		fakeErr(w, r, 501, "NotImplemented", "not in the fake")
	}
}

// copySource finds and opens a copy source, or answers the error.
func (f *fakeSSEStore) copySource(w http.ResponseWriter, r *http.Request, v string) *fakeSSEObject {
	path, err := url.PathUnescape(strings.TrimPrefix(v, "/"))
	if err != nil {
		fakeErr(w, r, 400, "InvalidArgument", "bad copy source")
		return nil
	}
	path, _, _ = strings.Cut(path, "?")
	b, k, _ := strings.Cut(path, "/")
	o := f.object(b, k)
	if o == nil {
		fakeErr(w, r, 404, "NoSuchKey", "The specified key does not exist.")
		return nil
	}
	keyMD5, ok := fakeSSEC(r.Header, copySourcePrefix)
	if !ok {
		fakeErr(w, r, 400, "InvalidArgument", "bad copy source SSE-C headers")
		return nil
	}
	if !f.ignoreSSE && !fakeOpen(w, r, o, keyMD5) {
		return nil
	}
	return o
}

// sseEnv is s3seal in front of a fakeSSEStore.
type sseEnv struct {
	store *fakeSSEStore
	h     *Handler
	srv   *httptest.Server
	rt    *Runtime
	logs  *observer.ObservedLogs
}

const (
	sseTestAK = "AKSSECLIENT"
	sseTestSK = "sse-client-secret"
)

// newSSEEnv starts the store and s3seal with the given rules, default
// mode and key ring.
func newSSEEnv(t *testing.T, rules []policy.Rule, def policy.Mode, ring *local.Keyring, tweak func(*SSEOptions)) *sseEnv {
	t.Helper()
	store := newFakeSSEStore()
	usrv := httptest.NewServer(store)
	t.Cleanup(usrv.Close)
	ep, _ := url.Parse(usrv.URL)
	uc, err := upstream.New(upstream.Options{
		Endpoint:    ep,
		Region:      "us-east-1",
		PathStyle:   true,
		Credentials: credentials.NewStaticCredentialsProvider("UPSTREAMAK", "upstream-secret", ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := policy.New(rules, policy.Rule{Mode: def})
	if err != nil {
		t.Fatal(err)
	}
	ids := NewIdentities([]Identity{{Client: authz.Client{Name: "app", Buckets: []string{"b*", "src", "dst"}, Admin: true}, AccessKeyID: sseTestAK, Secret: sseTestSK}})
	// The fake store speaks plain HTTP on loopback; the check for plain
	// HTTP upstreams has its own test.
	so := SSEOptions{Keyring: ring}
	if tweak != nil {
		tweak(&so)
	}
	rt := &Runtime{
		Identities: ids,
		Verifier:   &sigv4.Verifier{Lookup: ids.Lookup},
		Decoder:    &sigv4.Verifier{SkipSignatures: true},
		Policy:     engine,
		SSE:        NewSSE(so),
	}
	if err := rt.SSE.CheckRules(engine); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	h, err := NewHandler(Options{Runtime: rt, Upstream: uc, Logger: zap.New(core), InstanceID: "fedcba9876543210"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &sseEnv{store: store, h: h, srv: srv, rt: rt, logs: logs}
}

// do sends a signed request to s3seal; hdr may be nil. kv pairs are added
// as headers.
func (e *sseEnv) do(t *testing.T, method, path string, body []byte, kv ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	sum := sha256.Sum256(body)
	ph := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", ph)
	s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := s.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: sseTestAK, SecretAccessKey: sseTestSK}, req, ph, "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// expect reads the response and fails the test unless its status is want;
// it returns the body and the S3 error code and message, if any.
func expect(t *testing.T, resp *http.Response, want int) (body []byte, code, msg string) {
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

func sortedKeys(m map[string]*fakeSSEObject) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
