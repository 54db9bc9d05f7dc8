package proxy

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/crypto/keys/local"
	"github.com/s3seal/s3seal/proxy/authz"
	"github.com/s3seal/s3seal/proxy/policy"
)

// sseOptions are the options of the SSE tests: the rules, a client that
// may use buckets b*, src and dst and configure them, those buckets, and
// parts of any size.
func sseOptions(rules []policy.Rule, def policy.Mode, ring *local.Keyring) envOptions {
	return envOptions{
		Rules: rules, Default: def, Ring: ring,
		Clients: []Identity{{Client: authz.Client{Name: "app", Buckets: []string{"b*", "src", "dst"}, Admin: true}, AccessKeyID: testAK, Secret: testSK}},
		Buckets: []string{"bs3", "bkms", "bssec", "bplain", "benv", "bstrict", "bown", "bmix", "bhttp", "bdx", "src", "dst"},
		Store:   memStoreOptions{MinPartSize: -1},
	}
}

// completeBody is a CompleteMultipartUpload document for ETags of parts
// 1, 2, ...
func completeBody(etags ...string) []byte {
	var b strings.Builder
	b.WriteString("<CompleteMultipartUpload>")
	for i, e := range etags {
		fmt.Fprintf(&b, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i+1, xmlEscape(e))
	}
	b.WriteString("</CompleteMultipartUpload>")
	return []byte(b.String())
}

// sseRules are the rules most tests run under: one bucket per mode.
func sseRules() []policy.Rule {
	yes := true
	return []policy.Rule{
		{Name: "s3-rule", Bucket: "bs3", Mode: policy.SSES3},
		{Name: "kms-rule", Bucket: "bkms", Mode: policy.SSEKMS, KMSKeyID: "k1", KMSContext: map[string]string{"app": "x"}, BucketKey: &yes},
		{Name: "c-rule", Bucket: "bssec", Mode: policy.SSEC},
		{Name: "plain-rule", Bucket: "bplain", Mode: policy.Passthrough},
		{Name: "env-rule", Bucket: "benv", Mode: policy.Envelope},
	}
}

// sseHeaders summarises the encryption headers of a request.
func sseHeaders(h http.Header) string {
	var parts []string
	for _, n := range []string{hdrSSE, hdrSSEKMSKeyID, hdrSSEContext, hdrSSEBucketKey,
		hdrSSECAlgorithm, hdrSSECKeyMD5, "X-Amz-Copy-Source-Server-Side-Encryption-Customer-Algorithm", "X-Amz-Copy-Source-Server-Side-Encryption-Customer-Key-Md5"} {
		if v := h.Get(n); v != "" {
			parts = append(parts, strings.ToLower(n)+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

func TestSSEHeaderInjectionPerOperation(t *testing.T) {
	t.Parallel()
	ring := testRing(t, "old", "new")
	env := newEnv(t, sseOptions(sseRules(), policy.Passthrough, ring))
	kmsCtx := base64.StdEncoding.EncodeToString([]byte(`{"app":"x"}`))
	want := map[string]string{
		"bs3":  "x-amz-server-side-encryption=AES256",
		"bkms": "x-amz-server-side-encryption=aws:kms x-amz-server-side-encryption-aws-kms-key-id=k1 x-amz-server-side-encryption-context=" + kmsCtx + " x-amz-server-side-encryption-bucket-key-enabled=true",
	}
	ssec := func(bucket, key string) string {
		return "x-amz-server-side-encryption-customer-algorithm=AES256 x-amz-server-side-encryption-customer-key-md5=" + derivedMD5(t, ring, "new", bucket, key)
	}
	copySrc := func(bucket, key string) string {
		return "x-amz-copy-source-server-side-encryption-customer-algorithm=AES256 x-amz-copy-source-server-side-encryption-customer-key-md5=" + derivedMD5(t, ring, "new", bucket, key)
	}
	for _, b := range []string{"bs3", "bkms", "bssec"} {
		t.Run(b, func(t *testing.T) {
			write := want[b] // what object-creating requests carry
			if b == "bssec" {
				write = ssec(b, "obj")
			}
			check := func(what string, r storeRequest, wantHdr string) {
				t.Helper()
				if got := sseHeaders(r.Header); got != wantHdr {
					t.Errorf("%s: store got %q, want %q", what, got, wantHdr)
				}
			}
			// PutObject.
			resp := env.do(t, "PUT", "/"+b+"/obj", []byte("hello"))
			expect(t, resp, 200)
			check("PutObject", storeReq(t, env.store, "PUT", "/"+b+"/obj"), write)
			if resp.Header.Get(hdrSSECKeyMD5) != "" {
				t.Error("PutObject answer shows the SSE-C key digest")
			}
			// Reads.
			for _, rd := range []struct{ method, path, param string }{
				{"GET", "/" + b + "/obj", ""}, {"HEAD", "/" + b + "/obj", ""}, {"GET", "/" + b + "/obj?attributes", "attributes"},
			} {
				resp := env.do(t, rd.method, rd.path, nil, "X-Amz-Object-Attributes", "ObjectSize")
				body, _, _ := expect(t, resp, 200)
				if rd.method == "GET" && rd.param == "" && string(body) != "hello" {
					t.Errorf("GET returned %q", body)
				}
				if resp.Header.Get(hdrSSECKeyMD5) != "" {
					t.Errorf("%s answer shows the SSE-C key digest", rd.method)
				}
				wantRead := ""
				if b == "bssec" {
					wantRead = ssec(b, "obj")
				}
				var params []string
				if rd.param != "" {
					params = []string{rd.param}
				}
				check(rd.method+" "+rd.path, storeReq(t, env.store, rd.method, "/"+b+"/obj", params...), wantRead)
			}
			// CopyObject within the bucket: destination gets the rule's
			// encryption, the source its key.
			resp = env.do(t, "PUT", "/"+b+"/copy", nil, "X-Amz-Copy-Source", "/"+b+"/obj")
			expect(t, resp, 200)
			wantCopy := want[b]
			if b == "bssec" {
				wantCopy = ssec(b, "copy") + " " + copySrc(b, "obj")
			}
			check("CopyObject", storeReq(t, env.store, "PUT", "/"+b+"/copy"), wantCopy)
			// Multipart.
			resp = env.do(t, "POST", "/"+b+"/mp?uploads", nil)
			body, _, _ := expect(t, resp, 200)
			id := between(string(body), "<UploadId>", "</UploadId>")
			wantMP := want[b]
			if b == "bssec" {
				wantMP = ssec(b, "mp")
			}
			check("CreateMultipartUpload", storeReq(t, env.store, "POST", "/"+b+"/mp", "uploads"), wantMP)
			resp = env.do(t, "PUT", "/"+b+"/mp?partNumber=1&uploadId="+id, bytes.Repeat([]byte("p"), 100))
			expect(t, resp, 200)
			etag1 := resp.Header.Get("ETag")
			wantPart := "" // never x-amz-server-side-encryption on UploadPart
			if b == "bssec" {
				wantPart = ssec(b, "mp")
			}
			check("UploadPart", storeReq(t, env.store, "PUT", "/"+b+"/mp", "partNumber"), wantPart)
			expect(t, env.do(t, "GET", "/"+b+"/mp?uploadId="+id, nil), 200)
			check("ListParts", storeReq(t, env.store, "GET", "/"+b+"/mp", "uploadId"), wantPart)
			resp = env.do(t, "PUT", "/"+b+"/mp?partNumber=2&uploadId="+id, nil, "X-Amz-Copy-Source", b+"/obj")
			body, _, _ = expect(t, resp, 200)
			etag2 := resultETag(body)
			wantPartCopy := ""
			if b == "bssec" {
				wantPartCopy = ssec(b, "mp") + " " + copySrc(b, "obj")
			}
			r := storeReq(t, env.store, "PUT", "/"+b+"/mp", "partNumber")
			check("UploadPartCopy", r, wantPartCopy)
			resp = env.do(t, "POST", "/"+b+"/mp?uploadId="+id, completeBody(etag1, etag2))
			expect(t, resp, 200)
			check("CompleteMultipartUpload", storeReq(t, env.store, "POST", "/"+b+"/mp", "uploadId"), wantPart)
			if o := env.store.object(b, "mp"); o == nil || string(o.data) != strings.Repeat("p", 100)+"hello" {
				t.Errorf("completed object wrong: %+v", o)
			}
			// Operations that need no encryption headers get none.
			resp = env.do(t, "DELETE", "/"+b+"/copy", nil)
			expect(t, resp, 204)
			check("DeleteObject", storeReq(t, env.store, "DELETE", "/"+b+"/copy"), "")
		})
	}
}

func TestSSEClientHeaders(t *testing.T) {
	t.Parallel()
	ring := testRing(t, "k")
	rules := append(sseRules(),
		policy.Rule{Name: "strict", Bucket: "bstrict", Mode: policy.SSEKMS, ClientSSE: policy.ClientSSERefuse},
		policy.Rule{Name: "own-keys", Bucket: "bown", Mode: policy.SSEC, ClientSSEC: policy.ClientSSECAllow},
	)
	env := newEnv(t, sseOptions(rules, policy.Passthrough, ring))
	clientKey := bytes.Repeat([]byte{7}, 32)
	var ck [32]byte
	copy(ck[:], clientKey)
	ckh := http.Header{}
	setSSEC(ckh, "", &ck)
	clientSSEC := []string{hdrSSECAlgorithm, "AES256", hdrSSECKey, ckh.Get(hdrSSECKey), hdrSSECKeyMD5, ckh.Get(hdrSSECKeyMD5)}

	refused := []struct {
		name, path, rule string
		kv               []string
	}{
		{"weaker than kms", "/bkms/a", "kms-rule", []string{hdrSSE, "AES256"}},
		{"other kms key", "/bkms/a", "kms-rule", []string{hdrSSE, "aws:kms", hdrSSEKMSKeyID, "other"}},
		{"conflicting context", "/bkms/a", "kms-rule", []string{hdrSSE, "aws:kms", hdrSSEContext, base64.StdEncoding.EncodeToString([]byte(`{"app":"y"}`))}},
		{"strict rule, stronger", "/bstrict/a", "strict", []string{hdrSSE, "aws:kms:dsse"}},
		{"sse header under sse-c", "/bssec/a", "c-rule", []string{hdrSSE, "AES256"}},
		{"client ssec under sse-c", "/bssec/a", "c-rule", clientSSEC},
		{"client ssec under sse-s3", "/bs3/a", "s3-rule", clientSSEC},
		{"client ssec on read", "/bssec/a", "c-rule", clientSSEC},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			env.store.reset()
			method := "PUT"
			if strings.Contains(c.name, "read") {
				method = "GET"
			}
			_, code, msg := expect(t, env.do(t, method, c.path, []byte("x"), c.kv...), 403)
			if code != "AccessDenied" || !strings.Contains(msg, c.rule) {
				t.Errorf("got %s %q, want AccessDenied naming %s", code, msg, c.rule)
			}
			if n := len(env.store.requests()); n != 0 {
				t.Errorf("the store got %d requests", n)
			}
		})
	}
	t.Run("invalid headers", func(t *testing.T) {
		_, code, _ := expect(t, env.do(t, "PUT", "/bs3/a", []byte("x"), hdrSSE, "ROT13"), 400)
		if code != "InvalidArgument" {
			t.Errorf("code %s", code)
		}
		_, code, _ = expect(t, env.do(t, "PUT", "/bkms/a", []byte("x"), hdrSSEContext, "not base64!"), 400)
		if code != "InvalidArgument" {
			t.Errorf("code %s", code)
		}
	})
	kept := []struct {
		name, path, want string
		kv               []string
	}{
		{"stronger than sse-s3", "/bs3/a", "x-amz-server-side-encryption=aws:kms x-amz-server-side-encryption-aws-kms-key-id=mine", []string{hdrSSE, "aws:kms", hdrSSEKMSKeyID, "mine"}},
		{"same key as an ARN", "/bkms/a", "x-amz-server-side-encryption=aws:kms x-amz-server-side-encryption-aws-kms-key-id=arn:aws:kms:us-east-1:1:key/k1 x-amz-server-side-encryption-context=" +
			base64.StdEncoding.EncodeToString([]byte(`{"app":"x","more":"1"}`)) + " x-amz-server-side-encryption-bucket-key-enabled=true",
			[]string{hdrSSE, "aws:kms", hdrSSEKMSKeyID, "arn:aws:kms:us-east-1:1:key/k1", hdrSSEContext, base64.StdEncoding.EncodeToString([]byte(`{"more":"1"}`))}},
		{"same as strict rule", "/bstrict/a", "x-amz-server-side-encryption=aws:kms", []string{hdrSSE, "aws:kms"}},
	}
	for _, c := range kept {
		t.Run(c.name, func(t *testing.T) {
			expect(t, env.do(t, "PUT", c.path, []byte("x"), c.kv...), 200)
			if got := sseHeaders(storeReq(t, env.store, "PUT", c.path).Header); got != c.want {
				t.Errorf("store got %q, want %q", got, c.want)
			}
		})
	}
	t.Run("client ssec allowed", func(t *testing.T) {
		resp := env.do(t, "PUT", "/bown/a", []byte("mine"), clientSSEC...)
		expect(t, resp, 200)
		if got := storeReq(t, env.store, "PUT", "/bown/a").Header.Get(hdrSSECKeyMD5); got != ckh.Get(hdrSSECKeyMD5) {
			t.Errorf("store got key digest %q, want the client's", got)
		}
		if resp.Header.Get(hdrSSECKeyMD5) != ckh.Get(hdrSSECKeyMD5) {
			t.Error("the client's own key digest is not returned to it")
		}
		body, _, _ := expect(t, env.do(t, "GET", "/bown/a", nil, clientSSEC...), 200)
		if string(body) != "mine" {
			t.Errorf("GET with the client's key: %q", body)
		}
	})
}

func TestSSECMasterKeyFallbackAndCache(t *testing.T) {
	t.Parallel()
	ring := testRing(t, "k1", "k2") // k2 is active
	env := newEnv(t, sseOptions(sseRules(), policy.Passthrough, ring))
	// An object written before k2 was added.
	env.store.put("bssec", "old", &memObject{data: []byte("before rotation"), keyMD5: derivedMD5(t, ring, "k1", "bssec", "old")})
	for round, wantReqs := range []int{2, 1} {
		env.store.reset()
		body, _, _ := expect(t, env.do(t, "GET", "/bssec/old", nil), 200)
		if string(body) != "before rotation" {
			t.Fatalf("round %d: %q", round, body)
		}
		if n := len(env.store.requests()); n != wantReqs {
			t.Errorf("round %d: the store got %d requests, want %d (active key, then the older one; then the cached one)", round, n, wantReqs)
		}
	}
	env.store.reset()
	expect(t, env.do(t, "HEAD", "/bssec/old", nil), 200)
	if n := len(env.store.requests()); n != 1 {
		t.Errorf("HEAD after a GET: %d requests, want 1 (cached key)", n)
	}
	// New objects use the active key.
	expect(t, env.do(t, "PUT", "/bssec/new", []byte("after")), 200)
	if got := env.store.object("bssec", "new").keyMD5; got != derivedMD5(t, ring, "k2", "bssec", "new") {
		t.Error("a new object is not encrypted with the active key")
	}
	// A plain object under the sse-c rule: the key is not applicable,
	// then no key; the second read goes straight to no key.
	env.store.put("bssec", "plain", &memObject{data: []byte("plain")})
	for round, wantReqs := range []int{2, 1} {
		env.store.reset()
		body, _, _ := expect(t, env.do(t, "GET", "/bssec/plain", nil), 200)
		if string(body) != "plain" || len(env.store.requests()) != wantReqs {
			t.Errorf("plain object round %d: %q after %d requests, want %d", round, body, len(env.store.requests()), wantReqs)
		}
	}
	// An SSE-C object under an sse-kms rule: no key first, then the keys.
	env.store.put("bkms", "c", &memObject{data: []byte("c"), keyMD5: derivedMD5(t, ring, "k1", "bkms", "c")})
	env.store.reset()
	body, _, _ := expect(t, env.do(t, "GET", "/bkms/c", nil), 200)
	if string(body) != "c" || len(env.store.requests()) != 3 {
		t.Errorf("SSE-C object under sse-kms: %q after %d requests, want 3", body, len(env.store.requests()))
	}
	// A key s3seal does not hold.
	env.store.put("bssec", "foreign", &memObject{data: []byte("x"), keyMD5: "bm90IG91ciBrZXk="})
	env.store.reset()
	_, code, msg := expect(t, env.do(t, "GET", "/bssec/foreign", nil), 403)
	if code != "AccessDenied" || !strings.Contains(msg, "None of the 2") {
		t.Errorf("foreign key: %s %q", code, msg)
	}
	if n := len(env.store.requests()); n != 2 {
		t.Errorf("foreign key: %d requests, want 2 (each key once, never without a key)", n)
	}
	// Missing objects are answered at once.
	env.store.reset()
	expect(t, env.do(t, "GET", "/bssec/missing", nil), 404)
	if n := len(env.store.requests()); n != 1 {
		t.Errorf("missing object: %d requests, want 1", n)
	}
}

func TestSSECMultipartAcrossRotation(t *testing.T) {
	t.Parallel()
	ring := testRing(t, "k1", "k2")
	env := newEnv(t, sseOptions(sseRules(), policy.Passthrough, ring))
	// An upload begun under k1, before k2 became active.
	env.store.addUpload("u1", "bssec", "mp", memObject{keyMD5: derivedMD5(t, ring, "k1", "bssec", "mp")})
	_, code, _ := expect(t, env.do(t, "PUT", "/bssec/mp?partNumber=1&uploadId=u1", []byte("part one")), 503)
	if code != "ServiceUnavailable" {
		t.Errorf("code %s", code)
	}
	resp := env.do(t, "PUT", "/bssec/mp?partNumber=1&uploadId=u1", []byte("part one"))
	expect(t, resp, 200)
	expect(t, env.do(t, "POST", "/bssec/mp?uploadId=u1", completeBody(resp.Header.Get("ETag"))), 200)
	body, _, _ := expect(t, env.do(t, "GET", "/bssec/mp", nil), 200)
	if string(body) != "part one" {
		t.Errorf("object %q", body)
	}
	// With one key left to try and it refused too, the store's answer
	// goes to the client.
	env.store.addUpload("u2", "bssec", "mp2", memObject{keyMD5: "Zm9yZWlnbg=="})
	expect(t, env.do(t, "PUT", "/bssec/mp2?partNumber=1&uploadId=u2", []byte("x")), 503)
	expect(t, env.do(t, "PUT", "/bssec/mp2?partNumber=1&uploadId=u2", []byte("x")), 403)
}

func TestSSECopyAcrossModes(t *testing.T) {
	t.Parallel()
	ring := testRing(t, "k")
	rules := []policy.Rule{
		{Name: "src-c", Bucket: "src", Prefix: "c/", Mode: policy.SSEC},
		{Name: "src-env", Bucket: "src", Prefix: "env/", Mode: policy.Envelope},
		{Name: "src-deny", Bucket: "src", Prefix: "deny/", Mode: policy.Deny},
		{Name: "dst-kms", Bucket: "dst", Prefix: "kms/", Mode: policy.SSEKMS, KMSKeyID: "k1"},
		{Name: "dst-c", Bucket: "dst", Prefix: "c/", Mode: policy.SSEC},
		{Name: "dst-s3", Bucket: "dst", Mode: policy.SSES3},
	}
	env := newEnv(t, sseOptions(rules, policy.Passthrough, ring))
	env.store.put("src", "c/obj", &memObject{data: []byte("from sse-c"), keyMD5: derivedMD5(t, ring, "k", "src", "c/obj")})
	env.store.put("src", "kms obj", &memObject{data: []byte("from kms"), alg: "aws:kms", kmsKey: "k1"})
	env.store.put("src", "plain", &memObject{data: []byte("from plain")})

	// sse-c -> sse-kms.
	expect(t, env.do(t, "PUT", "/dst/kms/a", nil, "X-Amz-Copy-Source", "src/c/obj"), 200)
	if o := env.store.object("dst", "kms/a"); o == nil || o.alg != "aws:kms" || o.kmsKey != "k1" || o.keyMD5 != "" || string(o.data) != "from sse-c" {
		t.Errorf("sse-c -> sse-kms: %+v", o)
	}
	// sse-kms -> sse-c (the source key is URL-encoded).
	expect(t, env.do(t, "PUT", "/dst/c/b", nil, "X-Amz-Copy-Source", "/src/kms%20obj"), 200)
	if o := env.store.object("dst", "c/b"); o == nil || o.alg != "" || o.keyMD5 != derivedMD5(t, ring, "k", "dst", "c/b") || string(o.data) != "from kms" {
		t.Errorf("sse-kms -> sse-c: %+v", o)
	}
	if r := storeReq(t, env.store, "PUT", "/dst/c/b"); hasSSEC(r.Header, copySourcePrefix) {
		t.Error("an SSE-C copy source header was sent for a source that is not SSE-C")
	}
	// sse-c -> sse-c (another name, so another key), then plain -> sse-s3.
	expect(t, env.do(t, "PUT", "/dst/c/c", nil, "X-Amz-Copy-Source", "src/c/obj"), 200)
	if o := env.store.object("dst", "c/c"); o == nil || o.keyMD5 != derivedMD5(t, ring, "k", "dst", "c/c") || string(o.data) != "from sse-c" {
		t.Errorf("sse-c -> sse-c: %+v", o)
	}
	expect(t, env.do(t, "PUT", "/dst/s3", nil, "X-Amz-Copy-Source", "src/plain"), 200)
	if o := env.store.object("dst", "s3"); o == nil || o.alg != "AES256" {
		t.Errorf("plain -> sse-s3: %+v", o)
	}
	// Envelope sources and denied sources are refused before the store
	// sees anything; so are buckets the client may not use.
	env.store.reset()
	_, code, msg := expect(t, env.do(t, "PUT", "/dst/kms/e", nil, "X-Amz-Copy-Source", "src/env/x"), 501)
	if code != "NotImplemented" || !strings.Contains(msg, "src-env") || strings.Contains(strings.ToUpper(msg), "TODO") {
		t.Errorf("envelope source: %s %q", code, msg)
	}
	_, code, msg = expect(t, env.do(t, "PUT", "/dst/kms/e", nil, "X-Amz-Copy-Source", "src/deny/x"), 403)
	if code != "AccessDenied" || !strings.Contains(msg, "src-deny") {
		t.Errorf("denied source: %s %q", code, msg)
	}
	expect(t, env.do(t, "PUT", "/dst/kms/e", nil, "X-Amz-Copy-Source", "secret-bucket/x"), 403)
	_, code, _ = expect(t, env.do(t, "PUT", "/dst/kms/e", nil, "X-Amz-Copy-Source", "nokey"), 400)
	if code != "InvalidArgument" {
		t.Errorf("malformed copy source: %s", code)
	}
	if n := len(env.store.requests()); n != 0 {
		t.Errorf("the store got %d requests for refused copies", n)
	}
}

func TestSSEUnconfirmedStore(t *testing.T) {
	t.Parallel()
	ring := testRing(t, "k")
	now := time.Unix(1_800_000_000, 0)
	o := sseOptions(append(sseRules(), policy.Rule{Name: "c-http", Bucket: "bhttp", Mode: policy.SSEC}), policy.Passthrough, ring)
	o.SSE = func(o *SSEOptions) { o.Now = func() time.Time { return now } }
	o.Store.IgnoreSSE = true
	env := newEnv(t, o)
	for _, b := range []string{"bs3", "bkms", "bssec"} {
		t.Run(b, func(t *testing.T) {
			env.store.reset()
			_, code, msg := expect(t, env.do(t, "PUT", "/"+b+"/obj", []byte("secret data")), 501)
			if code != "NotImplemented" || !strings.Contains(msg, "deleted") {
				t.Errorf("got %s %q", code, msg)
			}
			if env.store.object(b, "obj") != nil {
				t.Fatal("the plaintext object is still in the store")
			}
			// The next write is refused without sending data.
			env.store.reset()
			expect(t, env.do(t, "PUT", "/"+b+"/obj2", []byte("more")), 501)
			if n := len(env.store.requests()); n != 0 {
				t.Errorf("the store got %d requests after the bucket was found not to encrypt", n)
			}
			// Reads still pass.
			expect(t, env.do(t, "GET", "/"+b+"/missing", nil), 404)
		})
	}
	if n := env.logs.FilterMessageSnippet("did not confirm server-side encryption").Len(); n != 3 {
		t.Errorf("%d error log lines about unconfirmed encryption, want 3", n)
	}
	for _, e := range env.logs.All() {
		for k, v := range e.ContextMap() {
			if s := fmt.Sprint(v); strings.Contains(s, "secret data") || strings.Contains(strings.ToLower(k), "customer-key") {
				t.Errorf("log field %s leaks request content", k)
			}
		}
	}
	// After the TTL, s3seal tries again.
	now = now.Add(DefaultUnconfirmedTTL + time.Second)
	env.store.reset()
	env.store.configure(func(o *memStoreOptions) { o.FailDelete = true })
	_, code, msg := expect(t, env.do(t, "PUT", "/bs3/obj3", []byte("x")), 500)
	if code != "InternalError" || !strings.Contains(msg, "could not delete") {
		t.Errorf("undeletable: %s %q", code, msg)
	}
}

func TestSSECBlockedBucket(t *testing.T) {
	t.Parallel()
	env := newEnv(t, sseOptions(sseRules(), policy.Passthrough, testRing(t, "k")))
	env.store.configure(func(o *memStoreOptions) { o.BlockSSEC = true })
	_, code, msg := expect(t, env.do(t, "PUT", "/bssec/obj", []byte("x")), 403)
	if code != "AccessDenied" || !strings.Contains(msg, "BlockedEncryptionTypes") || !strings.Contains(msg, "NONE") || !strings.Contains(msg, "put-bucket-encryption --bucket bssec") {
		t.Errorf("got %s %q", code, msg)
	}
	storeReq(t, env.store, "GET", "/bssec/", "encryption")
	// Other refusals are relayed as they are.
	env.store.configure(func(o *memStoreOptions) { o.BlockSSEC = false })
	env.store.put("bssec", "obj", &memObject{data: []byte("x")})
	expect(t, env.do(t, "PUT", "/bssec/c", nil, "X-Amz-Copy-Source", "bssec/missing"), 404)
}

func TestSSECPlainHTTPUpstream(t *testing.T) {
	t.Parallel()
	rules := append(sseRules(), policy.Rule{Name: "c-http", Bucket: "bhttp", Mode: policy.SSEC, AllowHTTP: true})
	o := sseOptions(rules, policy.Passthrough, testRing(t, "k"))
	o.SSE = func(o *SSEOptions) { o.PlainHTTPUpstream = true }
	env := newEnv(t, o)
	for _, m := range []string{"PUT", "GET", "HEAD"} {
		env.store.reset()
		resp := env.do(t, m, "/bssec/obj", []byte("x"))
		if m == "HEAD" {
			expect(t, resp, 400)
		} else if _, code, msg := expect(t, resp, 400); code != "InvalidRequest" || !strings.Contains(msg, "plain HTTP") {
			t.Errorf("%s: %s %q", m, code, msg)
		}
		if n := len(env.store.requests()); n != 0 {
			t.Errorf("%s: the store got %d requests", m, n)
		}
	}
	expect(t, env.do(t, "PUT", "/bhttp/obj", []byte("x")), 200)
	// Under other rules, reads never send keys over plain HTTP.
	env.store.put("bs3", "c", &memObject{data: []byte("c"), keyMD5: "Zm9yZWlnbg=="})
	env.store.reset()
	expect(t, env.do(t, "GET", "/bs3/c", nil), 400)
	for _, r := range env.store.requests() {
		if hasSSEC(r.Header, "") {
			t.Error("an SSE-C key was sent to a plain-HTTP upstream")
		}
	}
}

func TestSSEFailClosed(t *testing.T) {
	t.Parallel()
	env := newEnv(t, sseOptions(sseRules(), policy.Passthrough, testRing(t, "k")))
	cases := []struct {
		name, method, path string
		kv                 []string
		want               int
	}{
		{"post form", "POST", "/bs3/", []string{"Content-Type", "multipart/form-data; boundary=x"}, 501},
		{"select", "POST", "/bkms/obj?select&select-type=2", nil, 501},
		{"unknown sub-resource", "PUT", "/bssec/obj?renameObject", nil, 501},
		{"unknown POST", "POST", "/bssec/obj", nil, 405},
		{"unknown parameter of a read passes", "GET", "/bs3/?frobnicate", nil, 200},
		{"post form under passthrough", "POST", "/bplain/", []string{"Content-Type", "multipart/form-data; boundary=x"}, 501},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env.store.reset()
			_, _, msg := expect(t, env.do(t, c.method, c.path, nil, c.kv...), c.want)
			passes := strings.Contains(c.name, "passes")
			if got := len(env.store.requests()) > 0; got != passes {
				t.Errorf("reached the store: %t, want %t", got, passes)
			}
			if !passes && msg == "" {
				t.Errorf("message does not name the rule: %q", msg)
			}
		})
	}
}

// TestServeDeny runs each deny scope through the whole handler: refused
// requests never reach the store and name the rule; others pass.
func TestServeDeny(t *testing.T) {
	t.Parallel()
	cases := []struct {
		scope       policy.DenyScope
		method, url string
		kv          []string
		denied      bool
	}{
		{policy.DenyAll, "GET", "/bdx/k", nil, true},
		{policy.DenyWrites, "GET", "/bdx/k", nil, false},
		{policy.DenyWrites, "GET", "/bdx/?list-type=2", nil, false},
		{policy.DenyWrites, "PUT", "/bdx/k", nil, true},
		{policy.DenyWrites, "DELETE", "/bdx/k", nil, true},
		{policy.DenyWrites, "PUT", "/bdx/k?tagging", nil, true},
		{policy.DenyWrites, "PUT", "/bdx/?versioning", nil, true},
		{policy.DenyPlaintextWrites, "PUT", "/bdx/k", nil, true},
		{policy.DenyPlaintextWrites, "PUT", "/bdx/k", []string{hdrSSE, "AES256"}, false},
		{policy.DenyPlaintextWrites, "PUT", "/bdx/k2", []string{"X-Amz-Copy-Source", "bdx/k"}, true},
		{policy.DenyPlaintextWrites, "POST", "/bdx/k?uploads", nil, true},
		{policy.DenyPlaintextWrites, "DELETE", "/bdx/k", nil, false},
		{policy.DenyPlaintextWrites, "GET", "/bdx/k", nil, false},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s %s %s %v", c.scope, c.method, c.url, c.kv), func(t *testing.T) {
			t.Parallel()
			rules := []policy.Rule{{Name: "guard", Bucket: "bdx", Mode: policy.Deny, Deny: c.scope}}
			env := newEnv(t, sseOptions(rules, policy.Passthrough, nil))
			env.store.put("bdx", "k", &memObject{data: []byte("v")})
			env.store.reset()
			want := 403
			if !c.denied {
				want = 0
			}
			resp := env.do(t, c.method, c.url, nil, c.kv...)
			body, _ := io.ReadAll(resp.Body)
			reached := len(env.store.requests()) > 0
			if c.denied {
				if resp.StatusCode != want || !strings.Contains(string(body), "guard") || reached {
					t.Errorf("got %d %s (store reached: %t), want 403 naming the rule, store untouched", resp.StatusCode, body, reached)
				}
			} else if resp.StatusCode >= 300 || !reached {
				t.Errorf("got %d %s (store reached: %t), want it passed to the store", resp.StatusCode, body, reached)
			}
		})
	}
}

func TestSSEHeaderHelpers(t *testing.T) {
	t.Parallel()
	var key [32]byte
	for i := range key {
		key[i] = byte(i)
	}
	sum := md5.Sum(key[:])
	h := http.Header{}
	setSSEC(h, copySourcePrefix, &key)
	if h.Get("X-Amz-Copy-Source-Server-Side-Encryption-Customer-Algorithm") != "AES256" ||
		h.Get("x-amz-copy-source-server-side-encryption-customer-key") != base64.StdEncoding.EncodeToString(key[:]) ||
		h.Get("x-amz-copy-source-server-side-encryption-customer-key-MD5") != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Errorf("copy-source SSE-C headers: %v", h)
	}
	if !hasSSEC(h, copySourcePrefix) || hasSSEC(h, "") {
		t.Error("hasSSEC confuses the object and the copy source")
	}
	stripSSECKeyMD5(h)
	if h.Get("X-Amz-Copy-Source-Server-Side-Encryption-Customer-Key-Md5") != "" || h.Get("X-Amz-Copy-Source-Server-Side-Encryption-Customer-Algorithm") == "" {
		t.Error("stripSSECKeyMD5 removed the wrong headers")
	}
	delSSEC(h, copySourcePrefix)
	if len(h) != 0 {
		t.Errorf("delSSEC left %v", h)
	}

	yes := true
	in := policy.SSE{Algorithm: policy.AWSKMS, KMSKeyID: "arn:aws:kms:r:1:key/x", KMSContext: map[string]string{"b": "2", "a": "1"}, BucketKey: &yes}
	h = http.Header{}
	h.Set(hdrSSECAlgorithm, "AES256")
	writeSSE(h, in)
	if h.Get(hdrSSEContext) != base64.StdEncoding.EncodeToString([]byte(`{"a":"1","b":"2"}`)) {
		t.Errorf("context header %q is not the sorted JSON", h.Get(hdrSSEContext))
	}
	out, err := readClientSSE(h)
	if err != nil || out.Algorithm != in.Algorithm || out.KMSKeyID != in.KMSKeyID || len(out.KMSContext) != 2 || out.KMSContext["b"] != "2" || out.BucketKey == nil || !*out.BucketKey {
		t.Errorf("round trip: %+v, %v", out, err)
	}
	if h.Get(hdrSSECAlgorithm) != "AES256" {
		t.Error("writeSSE touched SSE-C headers")
	}
	writeSSE(h, policy.SSE{})
	if h.Get(hdrSSE) != "" || h.Get(hdrSSEContext) != "" || h.Get(hdrSSEBucketKey) != "" || h.Get(hdrSSEKMSKeyID) != "" {
		t.Errorf("writeSSE(zero) left %v", h)
	}
	for _, bad := range []string{"", "e30", "W10=", "bnVsbA==", base64.StdEncoding.EncodeToString([]byte(`{"a":1}`)), base64.StdEncoding.EncodeToString([]byte("{\"a\":\"\xff\"}"))} {
		if _, err := decodeKMSContext(bad); err == nil {
			t.Errorf("decodeKMSContext(%q) accepted", bad)
		}
	}
	if c, err := decodeKMSContext("e30="); err != nil || len(c) != 0 {
		t.Errorf("empty object: %v %v", c, err)
	}
}

func FuzzDecodeKMSContext(f *testing.F) {
	for _, s := range []string{"e30=", "eyJhIjoiYiJ9", "bnVsbA==", "W10=", "!!"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		ctx, err := decodeKMSContext(v)
		if err != nil {
			return
		}
		again, err := decodeKMSContext(encodeKMSContext(ctx))
		if err != nil || len(again) != len(ctx) {
			t.Fatalf("%q: re-encoded context does not decode: %v", v, err)
		}
		for k, v := range ctx {
			if again[k] != v {
				t.Fatalf("key %q changed", k)
			}
		}
	})
}

func TestSSEETags(t *testing.T) {
	t.Parallel()
	rules := append([]policy.Rule{{Name: "mix-kms", Bucket: "bmix", Prefix: "k/", Mode: policy.SSEKMS}}, sseRules()...)
	rules = append(rules, policy.Rule{Name: "mix-s3", Bucket: "bmix", Mode: policy.SSES3})
	env := newEnv(t, sseOptions(rules, policy.Passthrough, testRing(t, "k")))
	storeETag := func(bucket, key string) string { return env.store.object(bucket, key).etag }
	suffixed := func(etag string) string { return strings.TrimSuffix(etag, `"`) + `-0"` }
	for _, c := range []struct {
		bucket, key string
		mapped      bool
	}{
		{"bs3", "a", false}, {"bkms", "a", true}, {"bssec", "a", true}, {"bmix", "k/a", true}, {"bmix", "s/a", false},
	} {
		t.Run(c.bucket+"/"+c.key, func(t *testing.T) {
			resp := env.do(t, "PUT", "/"+c.bucket+"/"+c.key, []byte("etag test"))
			expect(t, resp, 200)
			want := storeETag(c.bucket, c.key)
			if c.mapped {
				want = suffixed(want)
			} else if sum := md5.Sum([]byte("etag test")); want != `"`+fmt.Sprintf("%x", sum)+`"` {
				t.Fatalf("the fake store's ETag %s is not the MD5", want)
			}
			if got := resp.Header.Get("ETag"); got != want {
				t.Errorf("PutObject ETag %s, want %s", got, want)
			}
			for _, m := range []string{"GET", "HEAD"} {
				if got := env.do(t, m, "/"+c.bucket+"/"+c.key, nil).Header.Get("ETag"); got != want {
					t.Errorf("%s ETag %s, want %s", m, got, want)
				}
			}
			// Conditional requests with the ETag the client saw.
			expect(t, env.do(t, "GET", "/"+c.bucket+"/"+c.key, nil, "If-Match", want), 200)
			expect(t, env.do(t, "GET", "/"+c.bucket+"/"+c.key, nil, "If-Match", `"0123456789abcdef0123456789abcdef-0"`), 412)
			resp = env.do(t, "GET", "/"+c.bucket+"/"+c.key, nil, "If-None-Match", want)
			expect(t, resp, 304)
			if got := resp.Header.Get("ETag"); got != want {
				t.Errorf("304 ETag %s, want %s", got, want)
			}
			// Listings show the same ETag.
			body, _, _ := expect(t, env.do(t, "GET", "/"+c.bucket+"/?list-type=2", nil), 200)
			if got := parseListing(t, body).etagOf(c.key); got != want {
				t.Errorf("listing does not show %s for %s:\n%s", want, c.key, body)
			}
			// So do attribute and copy results.
			body, _, _ = expect(t, env.do(t, "GET", "/"+c.bucket+"/"+c.key+"?attributes", nil, "X-Amz-Object-Attributes", "ETag"), 200)
			if got := between(string(body), "<ETag>", "</ETag>"); got != strings.Trim(want, `"`) {
				t.Errorf("GetObjectAttributes ETag %s, want %s", got, strings.Trim(want, `"`))
			}
			body, _, _ = expect(t, env.do(t, "PUT", "/"+c.bucket+"/"+c.key+"-copy", nil, "X-Amz-Copy-Source", c.bucket+"/"+c.key), 200)
			wantCopy := storeETag(c.bucket, c.key+"-copy")
			if c.mapped {
				wantCopy = suffixed(wantCopy)
			}
			if got := between(string(body), "<ETag>", "</ETag>"); got != xmlEscape(wantCopy) {
				t.Errorf("CopyObject ETag %s, want %s", got, wantCopy)
			}
		})
	}
}
