package proxy

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/proxy/checksum"
	"github.com/s3seal/s3seal/proxy/sigv4"
)

// doChunked sends data aws-chunked with an unsigned checksum trailer, as
// SDKs do over TLS; trailer overrides the computed value when not "".
func (e *testEnv) doChunked(t testing.TB, method, path string, data []byte, alg checksum.Algorithm, trailer string, kv ...string) *http.Response {
	t.Helper()
	var value func() string
	if trailer != "" {
		value = func() string { return trailer }
	}
	n := int64(len(data))
	body := sigv4.NewUnsignedTrailerEncoderLen(bytes.NewReader(data), n, alg, value, 16<<10)
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = sigv4.EncodedLength(n, 16<<10, alg)
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("X-Amz-Decoded-Content-Length", strconv.FormatInt(n, 10))
	req.Header.Set("X-Amz-Trailer", alg.HeaderName())
	return e.send(t, req, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", kv...)
}

func crc32cB64(b []byte) string {
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	h.Write(b)
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// TestChecksums: client checksums in headers and trailers are verified
// over the plaintext, kept and answered; the store gets a checksum it can
// verify (the memory store verifies every one it receives).
func TestChecksums(t *testing.T) {
	t.Parallel()
	env := envelopeEnv(t)
	data := pattern(100_000, 11)
	good := crc32cB64(data)
	bad := crc32cB64([]byte("other"))
	for _, bucket := range []string{"benv", "bplain"} {
		t.Run(bucket, func(t *testing.T) {
			path := "/" + bucket + "/"
			// A checksum header.
			resp := env.do(t, "PUT", path+"hdr", data, "X-Amz-Checksum-Crc32c", good)
			expect(t, resp, 200)
			if resp.Header.Get("X-Amz-Checksum-Crc32c") != good {
				t.Errorf("PUT answer checksum %q", resp.Header.Get("X-Amz-Checksum-Crc32c"))
			}
			up := storeReq(t, env.store, "PUT", path+"hdr")
			if bucket == "benv" {
				// The client's checksum is over the plaintext: the store
				// gets s3seal's own over the ciphertext, in a trailer.
				if up.Header.Get("X-Amz-Checksum-Crc32c") != "" || up.Header.Get("X-Amz-Trailer") != "x-amz-checksum-crc32c" {
					t.Errorf("store request headers %v", up.Header)
				}
			} else if up.Header.Get("X-Amz-Checksum-Crc32c") != good {
				t.Errorf("the client's checksum did not reach the store: %v", up.Header)
			}
			// A checksum trailer.
			resp = env.doChunked(t, "PUT", path+"trl", data, checksum.CRC32C, "")
			expect(t, resp, 200)
			if got := mustBody(t, env.do(t, "GET", path+"trl", nil)); !bytes.Equal(got, data) {
				t.Fatalf("GET after a chunked PUT: %d bytes", len(got))
			}
			if up := storeReq(t, env.store, "PUT", path+"trl"); up.Header.Get("X-Amz-Trailer") != "x-amz-checksum-crc32c" {
				t.Errorf("no checksum trailer went to the store: %v", up.Header)
			}
			// Both are answered with checksum mode (under envelope a
			// trailer's checksum is read from the object's trailer).
			for _, k := range []string{"hdr", "trl"} {
				for _, m := range []string{"HEAD", "GET"} {
					r := env.do(t, m, path+k, nil, "X-Amz-Checksum-Mode", "ENABLED")
					expect(t, r, 200)
					if r.Header.Get("X-Amz-Checksum-Crc32c") != good {
						t.Errorf("%s %s with checksum mode: %q", m, k, r.Header.Get("X-Amz-Checksum-Crc32c"))
					}
				}
			}
			// Wrong checksums are refused and nothing is stored.
			_, code, _ := expect(t, env.do(t, "PUT", path+"bad-hdr", data, "X-Amz-Checksum-Crc32c", bad), 400)
			if code != "BadDigest" && code != "XAmzContentChecksumMismatch" {
				t.Errorf("wrong checksum header: %s", code)
			}
			_, code, _ = expect(t, env.doChunked(t, "PUT", path+"bad-trl", data, checksum.CRC32C, bad), 400)
			if code != "BadDigest" && code != "XAmzContentChecksumMismatch" {
				t.Errorf("wrong checksum trailer: %s", code)
			}
			_, code, _ = expect(t, env.do(t, "PUT", path+"bad-md5", data, "Content-Md5", "AAAAAAAAAAAAAAAAAAAAAA=="), 400)
			if code != "BadDigest" {
				t.Errorf("wrong Content-MD5: %s", code)
			}
			for _, k := range []string{"bad-hdr", "bad-trl", "bad-md5"} {
				if env.store.object(bucket, k) != nil {
					t.Errorf("%s: the store holds an object from a body that failed its checksum", k)
				}
			}
		})
	}
	// Multipart parts carry their checksums too.
	body, _, _ := expect(t, env.do(t, "POST", "/benv/mpc?uploads", nil, "X-Amz-Checksum-Algorithm", "CRC32C"), 200)
	id := between(string(body), "<UploadId>", "</UploadId>")
	part := pattern(70_000, 12)
	resp := env.doChunked(t, "PUT", "/benv/mpc?partNumber=1&uploadId="+id, part, checksum.CRC32C, "")
	expect(t, resp, 200)
	if resp.Header.Get("X-Amz-Checksum-Crc32c") != crc32cB64(part) {
		t.Errorf("UploadPart answer checksum %q", resp.Header.Get("X-Amz-Checksum-Crc32c"))
	}
	expect(t, env.doChunked(t, "PUT", "/benv/mpc?partNumber=2&uploadId="+id, part, checksum.CRC32C, bad), 400)
	expect(t, env.do(t, "POST", "/benv/mpc?uploadId="+id, completeBody(resp.Header.Get("ETag"))), 200)
	if got := mustBody(t, env.do(t, "GET", "/benv/mpc", nil)); !bytes.Equal(got, part) {
		t.Errorf("multipart object with checksums: %d bytes", len(got))
	}
}

// TestMemStoreVerifies checks the memory store itself: a body whose
// checksum or framing is wrong is refused, so the tests above prove
// something.
func TestMemStoreVerifies(t *testing.T) {
	t.Parallel()
	st := newMemStore(memStoreOptions{AccessKey: upstreamAK})
	st.createBucket("b")
	// CRC-64/NVME check value.
	h := newChecksumHash("crc64nvme")
	h.Write([]byte("123456789"))
	if got := base64.StdEncoding.EncodeToString(h.Sum(nil)); got != base64.StdEncoding.EncodeToString([]byte{0xae, 0x8b, 0x14, 0x86, 0x0a, 0x79, 0x98, 0x88}) {
		t.Errorf("crc64nvme(123456789) = %s", got)
	}
	send := func(body string, hdr map[string]string) int {
		r, _ := http.NewRequest("PUT", "http://store/b/k", strings.NewReader(body))
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+upstreamAK+"/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00")
		r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		st.ServeHTTP(w, r)
		return w.Code
	}
	chunked := map[string]string{"Content-Encoding": "aws-chunked", "X-Amz-Content-Sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
		"X-Amz-Decoded-Content-Length": "5", "X-Amz-Trailer": "x-amz-checksum-crc32c"}
	ok := crc32cB64([]byte("hello"))
	for _, c := range []struct {
		name, body string
		hdr        map[string]string
		want       int
	}{
		{"plain", "hello", nil, 200},
		{"checksum", "hello", map[string]string{"X-Amz-Checksum-Crc32c": ok}, 200},
		{"wrong checksum", "hellO", map[string]string{"X-Amz-Checksum-Crc32c": ok}, 400},
		{"two checksums", "hello", map[string]string{"X-Amz-Checksum-Crc32c": ok, "X-Amz-Checksum-Crc32": crc32IEEE("hello")}, 400},
		{"chunked", "5\r\nhello\r\n0\r\nx-amz-checksum-crc32c:" + ok + "\r\n\r\n", chunked, 200},
		{"chunked wrong trailer", "5\r\nhellO\r\n0\r\nx-amz-checksum-crc32c:" + ok + "\r\n\r\n", chunked, 400},
		{"chunked short", "4\r\nhell\r\n0\r\nx-amz-checksum-crc32c:" + ok + "\r\n\r\n", chunked, 400},
		{"chunked no trailer", "5\r\nhello\r\n0\r\n\r\n", chunked, 400},
		{"chunked bad framing", "5\r\nhello0\r\n\r\n", chunked, 400},
		{"payload hash", "hello", map[string]string{"X-Amz-Content-Sha256": strings.Repeat("0", 64)}, 400},
		{"other access key", "hello", map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=OTHER/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"}, 403},
		{"other region", "hello", map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=" + upstreamAK + "/20260101/eu-west-1/s3/aws4_request, SignedHeaders=host, Signature=00"}, 400},
	} {
		if got := send(c.body, c.hdr); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

func crc32IEEE(s string) string {
	h := crc32.NewIEEE()
	h.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// TestMemStoreBounds: the store's limits answer as a store does.
func TestMemStoreBounds(t *testing.T) {
	t.Parallel()
	env := newEnv(t, envOptions{Buckets: []string{"bkt"}, Store: memStoreOptions{MaxObjectSize: 1000, MaxBytes: 1500, MaxRequests: 3}})
	_, code, _ := expect(t, env.do(t, "PUT", "/bkt/big", make([]byte, 1001)), 400)
	if code != "EntityTooLarge" {
		t.Errorf("object over the size limit: %s", code)
	}
	expect(t, env.do(t, "PUT", "/bkt/a", make([]byte, 1000)), 200)
	_, code, _ = expect(t, env.do(t, "PUT", "/bkt/b", make([]byte, 600)), 507)
	if code != "XMinioStorageFull" {
		t.Errorf("store full: %s", code)
	}
	expect(t, env.do(t, "DELETE", "/bkt/a", nil), 204)
	expect(t, env.do(t, "PUT", "/bkt/b", make([]byte, 600)), 200)
	if n, recorded := env.store.requestCount(), len(env.store.requests()); n != 5 || recorded != 3 {
		t.Errorf("%d requests, %d recorded; want 5 and 3", n, recorded)
	}
	// S3's minimum part size holds by default.
	body, _, _ := expect(t, env.do(t, "POST", "/bkt/mp?uploads", nil), 200)
	id := between(string(body), "<UploadId>", "</UploadId>")
	var etags []string
	for i := 1; i <= 2; i++ {
		r := env.do(t, "PUT", fmt.Sprintf("/bkt/mp?partNumber=%d&uploadId=%s", i, id), []byte("small part"))
		expect(t, r, 200)
		etags = append(etags, r.Header.Get("ETag"))
	}
	_, code, _ = expect(t, env.do(t, "POST", "/bkt/mp?uploadId="+id, completeBody(etags...)), 400)
	if code != "EntityTooSmall" {
		t.Errorf("small parts: %s", code)
	}
	// One small part is a valid object, with the S3 multipart ETag.
	expect(t, env.do(t, "POST", "/bkt/mp?uploadId="+id, completeBody(etags[0])), 200)
	sum := md5.Sum([]byte("small part"))
	whole := md5.Sum(sum[:])
	if got, want := env.store.object("bkt", "mp").etag, `"`+hex.EncodeToString(whole[:])+`-1"`; got != want {
		t.Errorf("multipart ETag %s, want %s", got, want)
	}
}

// TestRequestLimits: requests beyond the caps get 503 SlowDown before
// anything reaches the store.
func TestRequestLimits(t *testing.T) {
	t.Parallel()
	env := newEnv(t, envOptions{Buckets: []string{"bkt"}, Handler: func(o *Options) { o.MaxRequestsPerClient = 1 }})
	env.store.put("bkt", "k", &memObject{data: []byte("k")})
	release, entered := make(chan struct{}), make(chan struct{})
	env.store.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/bkt/slow" {
			return false
		}
		close(entered)
		<-release
		w.WriteHeader(http.StatusOK)
		return true
	})
	done := make(chan int)
	go func() {
		resp := env.do(t, "GET", "/bkt/slow", nil)
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-entered
	n := env.store.requestCount()
	_, code, _ := expect(t, env.do(t, "GET", "/bkt/k", nil), 503)
	if code != "SlowDown" || env.store.requestCount() != n {
		t.Errorf("over the per-client cap: %s, store requests %d -> %d", code, n, env.store.requestCount())
	}
	close(release)
	if s := <-done; s != 200 {
		t.Errorf("the slow request: %d", s)
	}
	expect(t, env.do(t, "GET", "/bkt/k", nil), 200)
}

// TestNewChecksumAlgorithms: SHA512, MD5 and the XXHASH checksums are
// verified on the way in; envelope mode, whose format keeps only the five
// older algorithms, refuses them before reading the body.
func TestNewChecksumAlgorithms(t *testing.T) {
	t.Parallel()
	env := envelopeEnv(t)
	data := pattern(20_000, 3)
	for _, alg := range []checksum.Algorithm{checksum.SHA512, checksum.MD5, checksum.XXHASH64, checksum.XXHASH3, checksum.XXHASH128} {
		wrong := checksum.SumBytes(alg, []byte("other"))
		env.store.reset()
		resp := env.do(t, "PUT", "/bplain/"+string(alg), data, alg.HeaderName(), wrong)
		// The store gets the client's checksum too and may answer first.
		if _, code, msg := expect(t, resp, 400); code != "BadDigest" {
			t.Errorf("%s mismatch: %s %q", alg, code, msg)
		}
		if o := env.store.object("bplain", string(alg)); o != nil {
			t.Errorf("%s: an object failing its checksum was stored", alg)
		}
		for _, trailer := range []bool{false, true} {
			var resp *http.Response
			if trailer {
				resp = env.doChunked(t, "PUT", "/benv/"+string(alg), data, alg, "")
			} else {
				resp = env.do(t, "PUT", "/benv/"+string(alg), data, alg.HeaderName(), checksum.SumBytes(alg, data))
			}
			if _, code, msg := expect(t, resp, 400); code != "InvalidRequest" || !strings.Contains(msg, alg.HeaderName()+" cannot be kept") {
				t.Errorf("%s envelope (trailer %v): %s %q", alg, trailer, code, msg)
			}
			if o := env.store.object("benv", string(alg)); o != nil {
				t.Errorf("%s: envelope stored an object", alg)
			}
		}
	}
}
