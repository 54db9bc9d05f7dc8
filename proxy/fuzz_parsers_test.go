package proxy

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/keystest"
	"github.com/s3seal/s3seal/crypto/stream"
	"github.com/s3seal/s3seal/proxy/authz"
)

// Fuzz targets for the parsers of client- and store-supplied text that the
// handler owns: Range and Content-Range headers, x-amz-copy-source, s3seal
// upload ids and upstream error bodies. Each checks a property the handler
// relies on, not only the absence of panics. Seeds are in
// testdata/fuzz/<target>/ as well as below.

// fuzzSizes are plaintext sizes each parsed range is resolved against.
var fuzzSizes = []int64{0, 1, stream.ChunkSize - 1, stream.ChunkSize, stream.ChunkSize + 1, 3*stream.ChunkSize + 17, 1 << 40}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{
		"bytes=0-0", "bytes=0-", "bytes=-1", "bytes=5-3", "bytes=0-1,2-3", "items=0-1",
		"bytes=65535-65536", " bytes= 1-2 ", "bytes=-0", "bytes=+1-2", "bytes=-9223372036854775807",
		"bytes=0-9223372036854775807", "bytes=9223372036854775807-", "bytes=--1", "bytes=1--2",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		r := parseRange(v)
		if r == nil {
			return
		}
		switch {
		case r.suffix > 0:
			if r.start != 0 || r.end != 0 {
				t.Fatalf("%q: suffix range with start/end set: %+v", v, r)
			}
		case r.suffix < 0:
			t.Fatalf("%q: negative suffix %d", v, r.suffix)
		default:
			if r.start < 0 || (r.end != -1 && r.end < r.start) {
				t.Fatalf("%q: invalid bounds %+v", v, r)
			}
		}
		// The speculative ciphertext range is itself a valid single range
		// (it goes upstream as a Range header) ...
		spec := r.speculative()
		if r.none {
			// Satisfiable by nothing: no range goes upstream.
			if spec != "" || r.start != 0 || r.end != 0 || r.suffix != 0 {
				t.Fatalf("%q: %+v, speculative %q", v, r, spec)
			}
			for _, size := range fuzzSizes {
				if _, _, ok := r.resolve(size); ok {
					t.Fatalf("%q resolved on %d bytes", v, size)
				}
			}
			return
		}
		sr := parseRange(spec)
		if sr == nil {
			t.Fatalf("%q: speculative ciphertext range %q does not parse", v, spec)
		}
		for _, size := range fuzzSizes {
			a, b, ok := r.resolve(size)
			if !ok {
				if size > 0 && (r.suffix > 0 || r.start < size) {
					t.Fatalf("%q: satisfiable range refused for size %d", v, size)
				}
				continue
			}
			if a < 0 || b < a || b >= size {
				t.Fatalf("%q on %d bytes resolved to [%d, %d]", v, size, a, b)
			}
			// ... and, for a single-segment object (version 2, what
			// s3seal writes), covers every ciphertext byte the plan
			// needs, so one upstream request suffices.
			cs, err := stream.CiphertextSizeV2(size)
			if err != nil {
				continue
			}
			l, err := stream.SingleLayoutV2(cs)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := l.Range(a, b-a+1)
			if err != nil {
				t.Fatalf("%q on %d bytes: plan: %v", v, size, err)
			}
			x, y, ok := sr.resolve(cs)
			if !ok || plan.CipherOffset < x || plan.CipherOffset+plan.CipherLength-1 > y {
				t.Fatalf("%q on %d bytes: speculative %q gives [%d, %d] (ok %v), plan needs [%d, +%d)",
					v, size, spec, x, y, ok, plan.CipherOffset, plan.CipherLength)
			}
		}
	})
}

func FuzzContentRange(f *testing.F) {
	for _, s := range []string{
		"bytes 0-0/1", "bytes 0-99/100", "bytes 5-3/10", "bytes 0-9/10", "bytes */10", "bytes 1-2/*",
		"bytes +1-2/3", "bytes 0-0/0", "bytes 0-9223372036854775806/9223372036854775807", "bytes -1-2/3",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		x, y, total, ok := contentRange(v)
		if !ok {
			return
		}
		if x < 0 || y < x || total <= y {
			t.Fatalf("%q parsed to %d-%d/%d", v, x, y, total)
		}
		// What s3seal writes parses back to the same values.
		again := fmt.Sprintf("bytes %d-%d/%d", x, y, total)
		x2, y2, t2, ok := contentRange(again)
		if !ok || x2 != x || y2 != y || t2 != total {
			t.Fatalf("%q: %q re-parsed as %d-%d/%d %v", v, again, x2, y2, t2, ok)
		}
	})
}

func FuzzDecodeUploadID(f *testing.F) {
	for _, s := range []string{
		"", "plain-store-id", uploadIDPrefix, uploadIDPrefix + "AAA", uploadIDPrefix + "!!!",
		uploadIDPrefix + uploadB64.EncodeToString([]byte{0, 3, 'a', 'b', 'c', 0, 0}),
		uploadIDPrefix + uploadB64.EncodeToString(append([]byte{0, 1, 'x', 0, 4, 1, 2, 3, 4}, make([]byte, 32)...)),
		uploadIDPrefix + uploadB64.EncodeToString([]byte{0xff, 0xff}),
	} {
		f.Add(s)
	}
	// Real ids, as CreateMultipartUpload hands them out, and as an
	// earlier release handed out version 1 ones.
	for _, create := range []func(context.Context, keys.Provider, envelope.Params) (*envelope.ObjectKey, envelope.Header, error){envelope.NewV2, envelope.New} {
		ok, hdr, err := create(context.Background(), &keystest.Provider{}, envelope.Params{Bucket: "b", Key: "k", Multipart: true})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(encodeUploadID("store-upload-id", hdr, ok.UploadTag("store-upload-id")))
		if hdr.Version() == envelope.VersionV2 {
			// A write-only gateway's id: the object key under an upload key.
			sealed, err := ok.SealForUpload(&[envelope.UploadKeySize]byte{1}, hdr, "b", "k", "store-upload-id", nil)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uploadIDPrefixUK + encodeUploadIDBody("store-upload-id", hdr, sealed))
		}
		ok.Zero()
	}
	f.Fuzz(func(t *testing.T, id string) {
		ref, err := decodeUploadID(id)
		if err != nil {
			if err != errUploadID {
				t.Fatalf("%q: unexpected error %v", id, err)
			}
			return
		}
		if strings.HasPrefix(id, uploadIDPrefixUK) {
			if ref.hdr == nil || !ref.hdr.Multipart() || ref.hdr.Version() != envelope.VersionV2 || ref.tag != nil || len(ref.sealedOK) != envelope.UploadSealedSize {
				t.Fatalf("%q: accepted without a version 2 multipart header and a sealed object key", id)
			}
			if got := uploadIDPrefixUK + encodeUploadIDBody(ref.storeID, ref.hdr, ref.sealedOK); got != id {
				t.Fatalf("%q re-encoded as %q", id, got)
			}
			return
		}
		if !strings.HasPrefix(id, uploadIDPrefix) && !strings.HasPrefix(id, uploadIDPrefixV1) {
			if ref.storeID != id || ref.hdr != nil || ref.tag != nil || ref.sealedOK != nil {
				t.Fatalf("%q: a store id came back as %+v", id, ref)
			}
			return
		}
		if ref.hdr == nil || !ref.hdr.Multipart() || len(ref.tag) != 32 {
			t.Fatalf("%q: accepted without a multipart header and a 32-byte tag", id)
		}
		if strings.HasPrefix(id, uploadIDPrefix) != (ref.hdr.Version() == envelope.VersionV2) {
			t.Fatalf("%q: a version %d header under that prefix", id, ref.hdr.Version())
		}
		// Decoding is exact: encoding what was decoded gives the id back.
		if got := encodeUploadID(ref.storeID, ref.hdr, ref.tag); got != id {
			t.Fatalf("%q re-encoded as %q", id, got)
		}
	})
}

func FuzzParseErrorBody(f *testing.F) {
	for _, s := range []string{
		"",
		`<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>a</Key><RequestId>1</RequestId></Error>`,
		`<Error><Code>SignatureDoesNotMatch</Code><StringToSign>AWS4-HMAC-SHA256</StringToSign><CanonicalRequest>PUT</CanonicalRequest><AWSAccessKeyId>AK</AWSAccessKeyId></Error>`,
		`<ListBucketResult><Code>x</Code></ListBucketResult>`,
		`<Error><Error><Code>inner</Code></Error></Error>`,
		`<Error><Code>A</Code><Code>B</Code></Error>`,
		`<Error><Code>`,
		"<html><body>502 Bad Gateway</body></html>",
		`<Error><BucketName>b</BucketName><HostId>h</HostId></Error>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		code, msg, extra := parseErrorBody(body)
		if (code != "" || msg != "" || len(extra) > 0) && !strings.Contains(string(body), "Error") {
			t.Fatalf("fields from a body that is not an S3 error: %q", body)
		}
		for _, e := range extra {
			if !safeErrorFields[e.Name] {
				t.Fatalf("unsafe field %q relayed", e.Name)
			}
		}
		if !utf8.ValidString(code) || !utf8.ValidString(msg) {
			t.Fatalf("invalid UTF-8 relayed: %q %q", code, msg)
		}
		if len(code) > len(body) || len(msg) > len(body) {
			t.Fatalf("fields longer than the body")
		}
	})
}

// TestSpeculativeHugeRange: ranges with offsets near the int64 limit are
// valid HTTP ranges; the ciphertext range sent upstream for them must be a
// valid range too, not an overflowed one.
func TestSpeculativeHugeRange(t *testing.T) {
	for _, v := range []string{"bytes=0-9223372036854775807", "bytes=9223372036854775807-", "bytes=-9223372036854775807", "bytes=281474976710656-281474976710657"} {
		r := parseRange(v)
		if r == nil {
			t.Fatalf("%q did not parse", v)
		}
		spec := r.speculative()
		if sr := parseRange(spec); sr == nil {
			t.Errorf("%q: speculative range %q is not a valid range", v, spec)
		}
	}
}

// TestCopySourceUnparsableRefused: a copy source s3seal cannot parse is
// refused before anything goes upstream, so that the client's bucket
// limits cannot be skipped by a source the store reads another way.
func TestCopySourceUnparsableRefused(t *testing.T) {
	t.Parallel()
	env := newEnv(t, envOptions{
		Clients: []Identity{{Client: authz.Client{Name: "app", Buckets: []string{"mine"}}, AccessKeyID: testAK, Secret: testSK}},
	})
	env.store.put("mine", "k x", &memObject{data: []byte("v1 data"), version: "v1"})
	env.store.put("other", "k", &memObject{data: []byte("other")})
	for _, src := range []string{"other/k?versionId=%zz", "//other/k", "ot%25her/k", "other/%zz", "mine%3F/k"} {
		resp := env.do(t, http.MethodPut, "/mine/copy", nil, "X-Amz-Copy-Source", src)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("copy source %q: status %d, want 400", src, resp.StatusCode)
		}
	}
	resp := env.do(t, http.MethodPut, "/mine/copy", nil, "X-Amz-Copy-Source", "other%2Fk")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("copy from a bucket the client may not use: %d, want 403", resp.StatusCode)
	}
	if n := env.store.requestCount(); n != 0 {
		t.Errorf("%d requests reached the store", n)
	}
	resp = env.do(t, http.MethodPut, "/mine/copy", nil, "X-Amz-Copy-Source", "/mine/k%20x?versionId=v1")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || env.store.requestCount() != 1 {
		t.Errorf("a valid copy within the client's bucket: %d, %d upstream requests", resp.StatusCode, env.store.requestCount())
	}
	if o := env.store.object("mine", "copy"); o == nil || string(o.data) != "v1 data" {
		t.Errorf("the copy holds %+v", o)
	}
}
