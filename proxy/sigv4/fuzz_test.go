package sigv4

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/proxy/checksum"
	"github.com/s3seal/s3seal/proxy/s3err"
)

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		"AWS4-HMAC-SHA256 Credential=AKID/20250304/eu-central-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=" + strings.Repeat("ab", 32),
		"AWS4-HMAC-SHA256 Credential=AK/ID/20250304/r/s3/aws4_request,SignedHeaders=host,Signature=00",
		"AWS4-HMAC-SHA256\tCredential = a/b/c/d/e , SignedHeaders = host , Signature = x ,",
		"AWS4-HMAC-SHA256 Credential=,SignedHeaders=;;,Signature=",
		"AWS4-HMAC-SHA256 Credential=a/20251399/r/s3/aws4_request, SignedHeaders=Host;HOST, Signature=s",
		"AWS4-HMAC-SHA256Credential=x",
		"AWS AKID:sig",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := parseAuthorization(s)
		if err != nil {
			if _, ok := s3err.As(err); !ok {
				t.Fatalf("error %T is not an s3err.Error", err)
			}
			return
		}
		if a.credential == "" || a.signedHeaders == "" || a.signature == "" {
			t.Fatalf("accepted with an empty component: %+v", a)
		}
		if c, msg := parseCredential(a.credential); msg == "" {
			if c.accessKeyID == "" || c.service != "s3" || c.terminator != "aws4_request" || len(c.date) != 8 || c.region == "" {
				t.Fatalf("credential accepted: %+v", c)
			}
			if c.accessKeyID+"/"+c.scope != a.credential {
				t.Fatalf("scope %q does not rebuild %q", c.scope, a.credential)
			}
		}
		if names, msg := parseSignedHeaders(a.signedHeaders); msg == "" {
			seen := map[string]bool{}
			for _, n := range names {
				if n == "" || n != strings.ToLower(n) || seen[n] {
					t.Fatalf("signed headers accepted: %q", names)
				}
				seen[n] = true
			}
		}
	})
}

// fuzzSeed is the chain seed the chunked-decoder fuzz target verifies
// against.
func fuzzSeed() *chainSeed {
	s := &chainSeed{
		key:   deriveKey(testSecret, "20250304", testRegion, "s3"),
		date:  "20250304T050607Z",
		scope: "20250304/" + testRegion + "/s3/aws4_request",
	}
	copy(s.signature[:], strings.Repeat("5e", 32))
	return s
}

// fuzzBody frames data for the fuzz target's seed corpus.
func fuzzBody(data []byte, mode uint8, sizes []int) []byte {
	spec := chunkSpec{sizes: sizes}
	switch mode % 4 {
	case 0, 3:
		spec.signed = true
	case 1:
		spec.signed, spec.trailer = true, checksum.CRC32
	case 2:
		spec.trailer = checksum.CRC32
	}
	seed := fuzzSeed()
	s := &chunkSigner{key: seed.key[:], date: seed.date, scope: seed.scope, prev: string(seed.signature[:])}
	return bytes.Join(chunkFrames(data, spec, s), nil)
}

func fuzzOptions(mode uint8, declared int64, maxChunk uint32) chunkedOptions {
	o := chunkedOptions{maxChunk: int64(maxChunk%(1<<20)) + 1, declared: declared}
	if o.declared < -1 {
		o.declared = -1
	}
	switch mode % 4 {
	case 0:
		o.signed, o.seed = true, fuzzSeed()
	case 1:
		o.signed, o.trailer, o.seed = true, true, fuzzSeed()
		o.trailers = []string{"x-amz-checksum-crc32"}
	case 2:
		o.trailer = true
		o.trailers = []string{"x-amz-checksum-crc32"}
	case 3:
		o.signed = true // signatures parsed, not checked
	}
	return o
}

func FuzzChunkedDecoder(f *testing.F) {
	data := testBody(300)
	for mode := uint8(0); mode < 4; mode++ {
		f.Add(fuzzBody(data, mode, []int{100, 100, 100}), mode, int64(300), uint32(1000))
		f.Add(fuzzBody(nil, mode, nil), mode, int64(0), uint32(10))
	}
	f.Add([]byte("fffffffffffffff;chunk-signature="+strings.Repeat("0", 64)+"\r\n"), uint8(0), int64(-1), uint32(100))
	f.Add([]byte("0\r\nx-amz-checksum-crc32:AAAAAA==\n\r\n\r\n"), uint8(2), int64(0), uint32(100))
	f.Fuzz(func(t *testing.T, body []byte, mode uint8, declared int64, maxChunk uint32) {
		o := fuzzOptions(mode, declared, maxChunk)
		d := newChunkedReader(io.NopCloser(bytes.NewReader(body)), o)
		var checks []checksum.Check
		if len(o.trailers) > 0 {
			checks = append(checks, checksum.Check{Algorithm: checksum.CRC32, WantFunc: d.trailerDigest(0, checksum.CRC32)})
		}
		v := checksum.NewVerifier(d, o.declared, checks...)
		out, err := readBody(v, 1+len(body)%7000)
		if len(out) > len(body) {
			t.Fatalf("decoded %d bytes from %d", len(out), len(body))
		}
		if o.declared >= 0 && int64(len(out)) > o.declared {
			t.Fatalf("decoded %d bytes, %d declared", len(out), o.declared)
		}
		if err != nil {
			if _, ok := s3err.As(err); !ok {
				t.Fatalf("error %v is not an s3err.Error", err)
			}
			if o.declared >= 0 && int64(len(out)) >= o.declared && o.declared > 0 {
				t.Fatalf("failed body released all %d declared bytes", len(out))
			}
		}
		if d.buf != nil || d.br != nil {
			t.Fatal("buffers not released at the end of the body")
		}
		d.Close()
	})
}

func FuzzPresigned(f *testing.F) {
	r := newClientRequest(f, http.MethodGet, "k", "", nil)
	p := presignSDK(f, r, time.Hour, testTime)
	f.Add(p.URL.RawQuery)
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2Fb&X-Amz-Date=x&X-Amz-Expires=1&X-Amz-SignedHeaders=host&X-Amz-Signature=00")
	f.Add("AWSAccessKeyId=a&Signature=b&Expires=1")
	f.Add("a=%zz&X-Amz-Signature")
	v := newTestVerifier()
	f.Fuzz(func(t *testing.T, q string) {
		s, _ := http.NewRequest(http.MethodGet, "http://"+testHost+"/bucket/k", nil)
		s.URL.RawQuery = q
		res, err := v.Verify(s)
		if err != nil {
			if _, ok := s3err.As(err); !ok {
				t.Fatalf("error %v is not an s3err.Error", err)
			}
			return
		}
		if !res.Presigned || res.AccessKeyID != testAKID {
			t.Fatalf("accepted %+v", res)
		}
	})
}

// TestFuzzCorpusCurrent checks that the committed seed corpora are the
// ones the seeds below produce; with S3SEAL_WRITE_FUZZ_CORPUS=1 it rewrites
// them instead (after changing the seeds).
func TestFuzzCorpusCurrent(t *testing.T) {
	rewrite := os.Getenv("S3SEAL_WRITE_FUZZ_CORPUS") != ""
	write := func(name string, i int, vals ...any) {
		var b strings.Builder
		b.WriteString("go test fuzz v1\n")
		for _, v := range vals {
			switch v := v.(type) {
			case string:
				b.WriteString("string(" + strconv.Quote(v) + ")\n")
			case []byte:
				b.WriteString("[]byte(" + strconv.Quote(string(v)) + ")\n")
			case uint8:
				fmt.Fprintf(&b, "byte(%q)\n", v)
			case int64:
				fmt.Fprintf(&b, "int64(%d)\n", v)
			case uint32:
				fmt.Fprintf(&b, "uint32(%d)\n", v)
			}
		}
		dir := filepath.Join("testdata", "fuzz", name)
		path := filepath.Join(dir, fmt.Sprintf("seed-%02d", i))
		if !rewrite {
			got, err := os.ReadFile(path)
			if err != nil || string(got) != b.String() {
				t.Errorf("%s is missing or stale (%v); run with S3SEAL_WRITE_FUZZ_CORPUS=1", path, err)
			}
			return
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	auth := []string{
		"AWS4-HMAC-SHA256 Credential=AKID/20250304/eu-central-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=" + strings.Repeat("ab", 32),
		"AWS4-HMAC-SHA256 Credential=AK/ID/20250304/r/s3/aws4_request,SignedHeaders=host;range;x-amz-date,Signature=00",
		"AWS4-HMAC-SHA256  Credential = a/20250304/c/s3/aws4_request , SignedHeaders = host , Signature = x ,",
		"AWS4-HMAC-SHA256 Credential=a/2025/c/s3/aws4_request, SignedHeaders=host;Host, Signature=x",
	}
	for i, s := range auth {
		write("FuzzParseAuthorization", i, s)
	}
	data := testBody(300)
	i := 0
	for mode := uint8(0); mode < 4; mode++ {
		write("FuzzChunkedDecoder", i, fuzzBody(data, mode, []int{100, 100, 100}), mode, int64(300), uint32(1000))
		write("FuzzChunkedDecoder", i+1, fuzzBody(data[:10], mode, []int{3, 7}), mode, int64(10), uint32(5))
		i += 2
	}
	write("FuzzChunkedDecoder", i, []byte("0\r\nx-amz-checksum-crc32:AAAAAA==\n\r\n\r\n"), uint8(2), int64(0), uint32(100))
	r := newClientRequest(t, http.MethodGet, "k", "", nil)
	p := presignSDK(t, r, time.Hour, testTime)
	write("FuzzPresigned", 0, p.URL.RawQuery)
	write("FuzzPresigned", 1, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2F20250304%2Fr%2Fs3%2Faws4_request&X-Amz-Date=20250304T050607Z&X-Amz-Expires=604801&X-Amz-SignedHeaders=host&X-Amz-Signature=00")
	write("FuzzPresigned", 2, "AWSAccessKeyId=a&Signature=b&Expires=1")
}

// The fuzz seeds must be valid bodies, so that mutations start deep in the
// decoder.
func TestFuzzSeedsDecode(t *testing.T) {
	data := testBody(300)
	for mode := uint8(0); mode < 4; mode++ {
		o := fuzzOptions(mode, 300, 1000)
		d := newChunkedReader(io.NopCloser(bytes.NewReader(fuzzBody(data, mode, []int{100, 100, 100}))), o)
		got, err := readBody(d, 64)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("mode %d: %v", mode, err)
		}
	}
}
