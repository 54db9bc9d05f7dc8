package sigv4

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/proxy/checksum"
	"github.com/s3seal/s3seal/proxy/s3err"
)

// Object keys S3 clients send that a canonical URI must carry unchanged.
var trickyKeys = []string{
	"plain.txt",
	"with space.txt",
	"plus+sign",
	"100%",
	"%2F-literal",
	"hash#tag",
	"question?mark",
	"semi;colon,comma",
	"équipe/ключ/鍵.txt",
	"emoji-😀",
	"a//double",
	"./dot-segment",
	"dir/./x",
	"../up",
	"dir/",
	"~tilde_-.",
	"colon:at@equals=dollar$amp&",
	"star*quote'paren()bang!",
	"back\\slash",
	"tab\tnew\nline",
	"\xff\xfe invalid utf-8",
}

func TestHeaderAuthKeys(t *testing.T) {
	v := newTestVerifier()
	for _, key := range trickyKeys {
		r := newClientRequest(t, http.MethodGet, key, "", nil)
		signSDK(t, r, emptySHA256, testTime)
		res, err := v.Verify(toServer(t, r))
		if err != nil {
			t.Fatalf("key %q: %v", key, err)
		}
		if res.AccessKeyID != testAKID || res.Region != testRegion || res.Presigned || res.Mode != SignedPayload {
			t.Fatalf("key %q: result %+v", key, res)
		}
		if res.Body != http.NoBody || res.ContentLength != 0 {
			t.Fatalf("key %q: body %v length %d", key, res.Body, res.ContentLength)
		}
	}
}

// Clients escape some characters differently on the wire (':' raw or
// "%3A", "~" or "%7E"); the verifier re-encodes the decoded path, so any
// valid escaping of the signed key verifies.
func TestHeaderAuthWireEscaping(t *testing.T) {
	v := newTestVerifier()
	r := newClientRequest(t, http.MethodGet, "a:b~c@d", "", nil)
	signSDK(t, r, emptySHA256, testTime)
	for _, raw := range []string{"/bucket/a:b~c@d", "/bucket/a%3Ab%7Ec%40d", "/bucket/%61%3a%62~c@d"} {
		s := toServer(t, r)
		s.URL.RawPath = raw
		s.URL.Path, _ = url.PathUnescape(raw)
		if _, err := v.Verify(s); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
	}
	// A different key is a different signature.
	s := toServer(t, r)
	s.URL.Path = "/bucket/a:b~c@e"
	_, err := v.Verify(s)
	expectCode(t, err, "SignatureDoesNotMatch")
}

func TestHeaderAuthQueryAndHeaders(t *testing.T) {
	v := newTestVerifier()
	q := url.Values{}
	q.Add("prefix", "a b/c+d&e=f")
	q.Add("list-type", "2")
	q.Add("z", "2")
	q.Add("z", "10")
	q.Add("z", "")
	q.Add("a-b", "1")
	q.Add("a", "1")
	q.Add("unicode", "ключ~*")
	raw := q.Encode() + "&acl&empty="
	r := newClientRequest(t, http.MethodGet, "", raw, nil)
	r.Header.Set("X-Amz-Meta-Spaces", "  several   inner\t spaces  ")
	r.Header.Add("X-Amz-Meta-Multi", "one")
	r.Header.Add("X-Amz-Meta-Multi", "two")
	r.Header.Set("X-Amz-Meta-Empty", "")
	r.Header.Set("Content-Type", "text/plain; charset=utf-8")
	r.Header.Set("Range", "bytes=0-9")
	signSDK(t, r, emptySHA256, testTime)
	var canonical []string
	v.debugCanonical = func(c, _ string) { canonical = append(canonical, c) }
	res, err := v.Verify(toServer(t, r))
	if err != nil {
		t.Fatal(err)
	}
	// The Go SDK collapses spaces but not tabs; the verifier tries the
	// all-whitespace rule first and the SDK's second.
	if len(canonical) != 2 {
		t.Fatalf("%d canonical requests computed", len(canonical))
	}
	for _, want := range []string{"a=1&a-b=1&acl=&empty=&list-type=2", "z=&z=10&z=2", "x-amz-meta-multi:one,two\n", "x-amz-meta-spaces:several inner spaces\n"} {
		if !strings.Contains(canonical[0], want) {
			t.Errorf("canonical request lacks %q", want)
		}
	}
	if !strings.Contains(canonical[1], "x-amz-meta-spaces:several inner\t spaces\n") {
		t.Error("second rule not applied")
	}
	if !slices.Contains(res.SignedHeaders, "x-amz-meta-multi") || !slices.Contains(res.SignedHeaders, "host") {
		t.Errorf("signed headers %v", res.SignedHeaders)
	}
}

func TestSignedPayloadBody(t *testing.T) {
	v := newTestVerifier()
	body := testBody(100000)
	r := newClientRequest(t, http.MethodPut, "obj", "", body)
	r.Header.Set("Content-Type", "application/octet-stream")
	signSDK(t, r, hexSHA256(body), testTime)
	res, err := v.Verify(toServer(t, r))
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != SignedPayload || res.ContentLength != int64(len(body)) {
		t.Fatalf("mode %v length %d", res.Mode, res.ContentLength)
	}
	got, err := readBody(res.Body, 4096)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("body: %d bytes, %v", len(got), err)
	}
	// The same request with one flipped byte: the final byte is withheld
	// and the read ends in XAmzContentSHA256Mismatch.
	for _, pos := range []int{0, 50000, len(body) - 1} {
		bad := bytes.Clone(body)
		bad[pos] ^= 0x40
		for _, step := range []int{1, 1000, 65536, 200000} {
			s := toServer(t, withBody(t, r, bad))
			res, err := v.Verify(s)
			if err != nil {
				t.Fatal(err)
			}
			c := &countingReader{r: res.Body}
			_, err = readBody(c, step)
			expectCode(t, err, "XAmzContentSHA256Mismatch")
			if c.n >= int64(len(body)) {
				t.Fatalf("flip at %d step %d: released %d of %d bytes", pos, step, c.n, len(body))
			}
		}
	}
	// An empty body with the empty hash is fine; a non-empty hash is not.
	r = newClientRequest(t, http.MethodPut, "empty", "", nil)
	signSDK(t, r, emptySHA256, testTime)
	if res, err := v.Verify(toServer(t, r)); err != nil || res.Body != http.NoBody {
		t.Fatalf("empty: %v", err)
	}
	r = newClientRequest(t, http.MethodPut, "empty", "", nil)
	signSDK(t, r, hexSHA256([]byte("x")), testTime)
	_, err = v.Verify(toServer(t, r))
	expectCode(t, err, "XAmzContentSHA256Mismatch")
	// Both hashes are in the answer, as S3 sends them.
	e, _ := s3err.As(err)
	fields := map[string]string{}
	for _, f := range e.Extra {
		fields[f.Name] = f.Value
	}
	if fields["ClientComputedContentSHA256"] != hexSHA256([]byte("x")) || fields["S3ComputedContentSHA256"] != emptySHA256 {
		t.Errorf("fields %v", fields)
	}
}

func TestUnsignedPayloadAndHeaderChecksum(t *testing.T) {
	v := newTestVerifier()
	body := testBody(5000)
	r := newClientRequest(t, http.MethodPut, "obj", "", body)
	r.Header.Set("X-Amz-Checksum-Crc32", checksum.SumBytes(checksum.CRC32, body))
	r.Header.Set("Content-Encoding", "gzip")
	signSDK(t, r, unsignedPayload, testTime)
	res, err := v.Verify(toServer(t, r))
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != UnsignedPayload || res.ChecksumAlgorithm != checksum.CRC32 || res.ChecksumTrailer || res.ContentEncoding != "gzip" {
		t.Fatalf("result %+v", res)
	}
	if val, ok := res.ChecksumValue(); !ok || val != checksum.SumBytes(checksum.CRC32, body) {
		t.Fatalf("checksum value %q %v", val, ok)
	}
	checks, err := checksum.HeaderChecks(r.Header)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.CheckBody(checks...); err != nil {
		t.Fatal(err)
	}
	if got, err := readBody(res.Body, 999); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("body: %v", err)
	}
	// With a wrong checksum header the added check fails at the end.
	r2 := newClientRequest(t, http.MethodPut, "obj", "", body)
	r2.Header.Set("X-Amz-Checksum-Crc32", checksum.SumBytes(checksum.CRC32, []byte("other")))
	signSDK(t, r2, unsignedPayload, testTime)
	res, err = v.Verify(toServer(t, r2))
	if err != nil {
		t.Fatal(err)
	}
	checks, _ = checksum.HeaderChecks(r2.Header)
	if err := res.CheckBody(checks...); err != nil {
		t.Fatal(err)
	}
	c := &countingReader{r: res.Body}
	_, err = readBody(c, 4096)
	expectCode(t, err, "BadDigest")
	if c.n >= int64(len(body)) {
		t.Fatalf("released %d bytes", c.n)
	}
}

func TestPresigned(t *testing.T) {
	v := newTestVerifier()
	for _, key := range trickyKeys {
		r := newClientRequest(t, http.MethodGet, key, "versionId=3&response-content-type=text%2Fplain", nil)
		r.Header.Set("X-Amz-Server-Side-Encryption-Customer-Algorithm", "AES256")
		p := presignSDK(t, r, time.Hour, testTime)
		res, err := v.Verify(toServer(t, p))
		if err != nil {
			t.Fatalf("key %q: %v", key, err)
		}
		if !res.Presigned || res.Mode != UnsignedPayload || res.AccessKeyID != testAKID {
			t.Fatalf("key %q: %+v", key, res)
		}
		if !slices.Contains(res.SignedHeaders, "x-amz-server-side-encryption-customer-algorithm") {
			t.Fatalf("signed headers %v", res.SignedHeaders)
		}
	}
	// A presigned PUT carries its body as is.
	body := testBody(3000)
	r := newClientRequest(t, http.MethodPut, "up", "", body)
	p := presignSDK(t, r, time.Hour, testTime)
	res, err := v.Verify(toServer(t, p))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readBody(res.Body, 100); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("presigned body: %v", err)
	}
	// The edges of validity.
	for _, c := range []struct {
		now  time.Time
		code string
	}{
		{testTime.Add(time.Hour), ""},
		{testTime.Add(time.Hour + time.Second), "AccessDenied"},
		{testTime.Add(-14 * time.Minute), ""},
		{testTime.Add(-16 * time.Minute), "AccessDenied"},
	} {
		v := newTestVerifier()
		v.Now = func() time.Time { return c.now }
		r := newClientRequest(t, http.MethodGet, "k", "", nil)
		_, err := v.Verify(toServer(t, presignSDK(t, r, time.Hour, testTime)))
		if c.code == "" && err != nil {
			t.Fatalf("at %v: %v", c.now, err)
		}
		if c.code != "" {
			e := expectCode(t, err, c.code)
			if c.now.After(testTime) && !strings.Contains(e.Message, "expired") {
				t.Fatalf("message %q", e.Message)
			}
		}
	}
}

// The AWS documentation example of a signed streaming upload: the
// verifier must compute the published seed signature from the request and
// accept the published chunk signatures.
func TestAWSStreamingExample(t *testing.T) {
	const (
		seed   = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
		chunk1 = "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
		chunk2 = "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
		final  = "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
	)
	body := func(corrupt bool) []byte {
		var b bytes.Buffer
		a := bytes.Repeat([]byte{'a'}, 65536)
		b.WriteString("10000;chunk-signature=" + chunk1 + "\r\n")
		b.Write(a)
		b.WriteString("\r\n400;chunk-signature=" + chunk2 + "\r\n")
		second := bytes.Clone(a[:1024])
		if corrupt {
			second[1023] = 'b'
		}
		b.Write(second)
		b.WriteString("\r\n0;chunk-signature=" + final + "\r\n\r\n")
		return b.Bytes()
	}
	request := func(b []byte) *http.Request {
		r, err := http.NewRequest(http.MethodPut, "https://s3.amazonaws.com/examplebucket/chunkObject.txt", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("X-Amz-Date", "20130524T000000Z")
		r.Header.Set("X-Amz-Storage-Class", "REDUCED_REDUNDANCY")
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature="+seed)
		r.Header.Set("X-Amz-Content-Sha256", streamingPayload)
		r.Header.Set("Content-Encoding", "aws-chunked")
		r.Header.Set("X-Amz-Decoded-Content-Length", "66560")
		return toServer(t, r)
	}
	if n := len(body(false)); n != 66824 {
		t.Fatalf("example body is %d bytes, the documentation says 66824", n)
	}
	v := &Verifier{
		Lookup: StaticLookup(Credentials{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}),
		Now:    func() time.Time { return time.Date(2013, 5, 24, 0, 5, 0, 0, time.UTC) },
	}
	res, err := v.Verify(request(body(false)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != StreamingSigned || res.ContentLength != 66560 || res.ContentEncoding != "" {
		t.Fatalf("result %+v", res)
	}
	for _, step := range []int{1, 1000, 65536, 100000} {
		res, _ := v.Verify(request(body(false)))
		got, err := readBody(res.Body, step)
		if err != nil || !bytes.Equal(got, bytes.Repeat([]byte{'a'}, 66560)) {
			t.Fatalf("step %d: %d bytes, %v", step, len(got), err)
		}
	}
	res, err = v.Verify(request(body(true)))
	if err != nil {
		t.Fatal(err)
	}
	c := &countingReader{r: res.Body}
	_, err = readBody(c, 4096)
	expectCode(t, err, "SignatureDoesNotMatch")
	if c.n > 65536 {
		t.Fatalf("released %d bytes of a chunk that failed", c.n)
	}
}

// The trailer canonical form ("name:value\n" per line) checked against the
// trailing-header vector of the AWS Common Runtime's signer tests, which
// continues the documentation example above.
func TestCRTTrailerVector(t *testing.T) {
	key := deriveKey("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1", "s3")
	seed := &chainSeed{key: key, date: "20130524T000000Z", scope: "20130524/us-east-1/s3/aws4_request"}
	copy(seed.signature[:], "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497")
	for _, sig := range []string{"df5735bd9f3295cd9386572292562fefc93ba94e80a0a1ddcbd652c4e0a75e6c", "df5735bd9f3295cd9386572292562fefc93ba94e80a0a1ddcbd652c4e0a75e6d"} {
		b := "0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n" +
			"first:1st\r\nsecond:2nd\r\nthird:3rd\r\nx-amz-trailer-signature:" + sig + "\r\n\r\n"
		d := newChunkedReader(io.NopCloser(strings.NewReader(b)), chunkedOptions{
			signed: true, trailer: true, seed: seed, maxChunk: 1 << 20, declared: 0,
			trailers: []string{"first", "second", "third"},
		})
		got, err := readBody(d, 10)
		if sig[63] == 'c' {
			if err != nil || len(got) != 0 || d.trailerValue(1) != "2nd" {
				t.Fatalf("published vector: %v", err)
			}
		} else {
			expectCode(t, err, "SignatureDoesNotMatch")
		}
	}
}

func TestSkipSignatures(t *testing.T) {
	v := &Verifier{SkipSignatures: true}
	// Anonymous, signed with an unknown key, and SigV2 requests pass.
	body := testBody(2000)
	anon, _ := http.NewRequest(http.MethodPut, "http://x/b/k", bytes.NewReader(body))
	signedUnknown := newClientRequest(t, http.MethodPut, "k", "", body)
	signSDK(t, signedUnknown, hexSHA256(body), testTime.Add(-48*time.Hour))
	v2, _ := http.NewRequest(http.MethodPut, "http://x/b/k", bytes.NewReader(body))
	v2.Header.Set("Authorization", "AWS AKID:c2lnbmF0dXJl")
	for i, r := range []*http.Request{anon, signedUnknown, v2} {
		res, err := v.Verify(toServer(t, r))
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if got, err := readBody(res.Body, 333); err != nil || !bytes.Equal(got, body) {
			t.Fatalf("%d: body %v", i, err)
		}
		if i == 1 && res.AccessKeyID != testAKID {
			t.Fatalf("access key %q", res.AccessKeyID)
		}
	}
	// Payload hashes and trailer checksums are still verified.
	bad := newClientRequest(t, http.MethodPut, "k", "", body)
	signSDK(t, bad, hexSHA256([]byte("other")), testTime)
	res, err := v.Verify(toServer(t, bad))
	if err != nil {
		t.Fatal(err)
	}
	_, err = readBody(res.Body, 4096)
	expectCode(t, err, "XAmzContentSHA256Mismatch")

	r, _ := streamingRequest(t, body, chunkSpec{sizes: []int{len(body)}, signed: true, trailer: checksum.CRC32C, trailerValue: checksum.SumBytes(checksum.CRC32C, []byte("x"))})
	res, err = v.Verify(toServer(t, r))
	if err != nil {
		t.Fatal(err)
	}
	_, err = readBody(res.Body, 4096)
	expectCode(t, err, "BadDigest")
}

func TestSentinels(t *testing.T) {
	v := newTestVerifier()
	v.DisableSigV2 = true
	r, _ := http.NewRequest(http.MethodGet, "http://x/b/k", nil)
	r.Header.Set("Authorization", "AWS AKID:c2lnbmF0dXJl")
	_, err := v.Verify(r)
	if expectCode(t, err, "InvalidRequest"); !errors.Is(err, ErrSignatureV2) {
		t.Fatal("SigV2 header not marked")
	}
	r, _ = http.NewRequest(http.MethodGet, "http://x/b/k?AWSAccessKeyId=AKID&Expires=1&Signature=abc", nil)
	_, err = v.Verify(r)
	if expectCode(t, err, "InvalidRequest"); !errors.Is(err, ErrSignatureV2) {
		t.Fatal("SigV2 query not marked")
	}
	r, _ = http.NewRequest(http.MethodGet, "http://x/b/k", nil)
	_, err = v.Verify(r)
	if expectCode(t, err, "AccessDenied"); !errors.Is(err, ErrAnonymous) {
		t.Fatal("anonymous not marked")
	}
	r.Header.Set("Authorization", "AWS4-ECDSA-P256-SHA256 Credential=x")
	_, err = v.Verify(r)
	if e := expectCode(t, err, "InvalidArgument"); e.Message != "Unsupported Authorization Type" || errors.Is(err, ErrSignatureV2) || errors.Is(err, ErrAnonymous) {
		t.Fatalf("SigV4a: %v", err)
	}
	r.Header.Set("Authorization", "invalid_header")
	_, err = v.Verify(r)
	if e := expectCode(t, err, "InvalidArgument"); !strings.Contains(e.Message, "one and only one ' ' (space)") {
		t.Fatalf("a scheme without a space: %v", err)
	}
}

// TestAuthorizationHeaderErrors pins S3's answers to malformed SigV4
// Authorization headers: which component is reported, in which order.
func TestAuthorizationHeaderErrors(t *testing.T) {
	const sig = "Signature=5fb279ae552098ea7c5c807df54cdb159e74939e19449b29831552639ec34b29"
	for _, c := range []struct{ header, want string }{
		{"AWS4-HMAC-SHA256 Credential=a/20250912/us-east-1/s3/aws4_request," + sig, "requires three components"},
		{"AWS4-HMAC-SHA256 Credential=a/20250912/us-east-1/s3/aws4_request,SignedHeaders-Content-Length," + sig, `the authorization component "SignedHeaders-Content-Length" is malformed.`},
		{"AWS4-HMAC-SHA256 creds=a/20250912/us-east-1/s3/aws4_request,SignedHeaders=host," + sig, "missing Credential."},
		{"AWS4-HMAC-SHA256 Credential=a/20250912/us-east-1/s3/aws4_request,missing=host," + sig, "missing SignedHeaders."},
		{"AWS4-HMAC-SHA256 Credential=a/20250912/us-east-1/s3/aws4_request,SignedHeaders=host,missing=x", "missing Signature."},
		{"AWS4-HMAC-SHA256 Credential=a/32234/us-east-1/s3/extra/things,SignedHeaders=host," + sig, "the Credential is mal-formed"},
		{"AWS4-HMAC-SHA256 Credential=a/32234/us-east-1/s3/aws_request,SignedHeaders=host," + sig, `incorrect terminal "aws_request"`},
		{"AWS4-HMAC-SHA256 Credential=a/32234/us-east-1/ec2/aws4_request,SignedHeaders=host," + sig, `incorrect service "ec2"`},
		{"AWS4-HMAC-SHA256 Credential=a/32234/us-east-1/s3/aws4_request,SignedHeaders=host," + sig, `incorrect date format "32234"`},
	} {
		r, _ := http.NewRequest(http.MethodGet, "http://x/b/k", nil)
		r.Header.Set("Authorization", c.header)
		_, err := newTestVerifier().Verify(r)
		if e := expectCode(t, err, "AuthorizationHeaderMalformed"); !strings.Contains(e.Message, c.want) {
			t.Errorf("%s: %q, want it to contain %q", c.header, e.Message, c.want)
		}
	}
}
