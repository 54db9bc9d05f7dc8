package sigv4

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/encoding/httpbinding"

	"github.com/s3seal/s3seal/proxy/checksum"
	"github.com/s3seal/s3seal/proxy/s3err"
)

// Test credentials. The secret deliberately contains '/', '+' and '='.
const (
	testAKID   = "AKIDS3SEALTEST0001"
	testSecret = "s3seal/Test+Secret=Key0123456789abcdefghij"
	testRegion = "eu-central-1"
	testHost   = "s3seal.test:8443"
)

var testTime = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func newTestVerifier() *Verifier {
	return &Verifier{
		Lookup: StaticLookup(Credentials{testAKID, testSecret}, Credentials{"OTHERKEY", "other-secret"}),
		Now:    func() time.Time { return testTime },
	}
}

func sdkCreds() aws.Credentials {
	return aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret}
}

func sdkSigner() *v4.Signer {
	return v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
}

// newClientRequest builds a client request for bucket/key the way S3 SDKs
// do: the key escaped with the SDK's own path escaping in RawPath.
func newClientRequest(t testing.TB, method, key, rawQuery string, body []byte) *http.Request {
	t.Helper()
	path := "/bucket/" + key
	u := "https://" + testHost + "/bucket/" + httpbinding.EscapePath(key, false)
	if rawQuery != "" {
		u += "?" + rawQuery
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if r.URL.Path != path {
		t.Fatalf("path %q parsed as %q", path, r.URL.Path)
	}
	return r
}

// signSDK signs r with the AWS SDK's signer (header auth).
func signSDK(t testing.TB, r *http.Request, payload string, at time.Time) {
	t.Helper()
	r.Header.Set("X-Amz-Content-Sha256", payload)
	if err := sdkSigner().SignHTTP(context.Background(), sdkCreds(), r, payload, "s3", testRegion, at); err != nil {
		t.Fatal(err)
	}
}

// presignSDK presigns r with the AWS SDK's signer and returns the request
// a client would send with the URL and the signed headers.
func presignSDK(t testing.TB, r *http.Request, expires time.Duration, at time.Time) *http.Request {
	t.Helper()
	q := r.URL.Query()
	q.Set("X-Amz-Expires", strconv.Itoa(int(expires/time.Second)))
	r.URL.RawQuery = q.Encode()
	u, hdr, err := sdkSigner().PresignHTTP(context.Background(), sdkCreds(), r, "UNSIGNED-PAYLOAD", "s3", testRegion, at)
	if err != nil {
		t.Fatal(err)
	}
	out, err := http.NewRequest(r.Method, u, r.Body)
	if err != nil {
		t.Fatal(err)
	}
	out.ContentLength = r.ContentLength
	for k, v := range hdr {
		if k != "Host" {
			out.Header[k] = v
		}
	}
	return out
}

// toServer sends r through HTTP/1.1 wire format and parses it back as Go's
// server does, so that Host, Content-Length and chunked framing arrive as
// a server sees them.
func toServer(t testing.TB, r *http.Request) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatal(err)
	}
	s, err := http.ReadRequest(bufio.NewReader(&buf))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// readBody reads b with reads of step bytes and returns the bytes
// released and the terminal error (nil for a clean io.EOF).
func readBody(b io.Reader, step int) ([]byte, error) {
	var out []byte
	p := make([]byte, step)
	for i := 0; i < 1<<26; i++ {
		n, err := b.Read(p)
		if n < 0 || n > len(p) {
			return out, fmt.Errorf("invalid count %d", n)
		}
		out = append(out, p[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
	return out, errors.New("no progress")
}

func expectCode(t testing.TB, err error, code string) *s3err.Error {
	t.Helper()
	e, ok := s3err.As(err)
	if !ok || e.Code != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
	return e
}

// expectNoSecrets fails if an error's text or XML shows a secret, a
// signature or signing material.
func expectNoSecrets(t testing.TB, err error, sigs ...string) {
	t.Helper()
	if err == nil {
		return
	}
	texts := []string{err.Error()}
	if e, ok := s3err.As(err); ok {
		texts = append(texts, string(s3err.Marshal(e, "/", "id")))
	}
	for _, s := range texts {
		for _, bad := range append([]string{testSecret, "other-secret", "AWS4-HMAC-SHA256\n", "AWS4-HMAC-SHA256-PAYLOAD\n"}, sigs...) {
			if bad != "" && strings.Contains(s, bad) {
				t.Fatalf("error exposes signing material")
			}
		}
	}
}

func testBody(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + i>>8)
	}
	return b
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// specKey derives a signing key as the SigV4 specification describes,
// independently of the package's own derivation.
func specKey(secret, date, region string) []byte {
	k := []byte("AWS4" + secret)
	for _, s := range []string{date, region, "s3", "aws4_request"} {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(s))
		k = m.Sum(nil)
	}
	return k
}

func specHMAC(key []byte, s string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

// chunkSpec describes how a test builds an aws-chunked body.
type chunkSpec struct {
	sizes   []int              // data chunk sizes; the final empty chunk is added
	signed  bool               // chunk signatures
	trailer checksum.Algorithm // "" for none
	// trailerValue overrides the computed trailer checksum.
	trailerValue string
	// minioTrailer writes the trailer lines LF-terminated followed by CRLF,
	// as minio-go does.
	minioTrailer bool
}

// chunkSigner computes chunk and trailer signatures from the specification.
type chunkSigner struct {
	key         []byte
	date, scope string
	prev        string
}

func (c *chunkSigner) chunk(data []byte) string {
	sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + c.date + "\n" + c.scope + "\n" + c.prev + "\n" + emptySHA256 + "\n" + hexSHA256(data)
	c.prev = specHMAC(c.key, sts)
	return c.prev
}

func (c *chunkSigner) trailer(canonical string) string {
	sts := "AWS4-HMAC-SHA256-TRAILER\n" + c.date + "\n" + c.scope + "\n" + c.prev + "\n" + hexSHA256([]byte(canonical))
	c.prev = specHMAC(c.key, sts)
	return c.prev
}

// chunkFrames returns the frames of an aws-chunked body: one per data
// chunk, then the final chunk with its trailer section. Signatures come
// from s (nil for unsigned framing).
func chunkFrames(data []byte, spec chunkSpec, s *chunkSigner) [][]byte {
	var frames [][]byte
	off := 0
	for _, n := range spec.sizes {
		d := data[off : off+n]
		off += n
		var f bytes.Buffer
		f.WriteString(strconv.FormatInt(int64(n), 16))
		if spec.signed {
			f.WriteString(";chunk-signature=" + s.chunk(d))
		}
		f.WriteString("\r\n")
		f.Write(d)
		f.WriteString("\r\n")
		frames = append(frames, f.Bytes())
	}
	var f bytes.Buffer
	f.WriteString("0")
	if spec.signed {
		f.WriteString(";chunk-signature=" + s.chunk(nil))
	}
	f.WriteString("\r\n")
	if spec.trailer != "" {
		v := spec.trailerValue
		if v == "" {
			v = checksum.SumBytes(spec.trailer, data)
		}
		line := spec.trailer.HeaderName() + ":" + v
		if spec.minioTrailer {
			f.WriteString(line + "\n\r\n")
		} else {
			f.WriteString(line + "\r\n")
		}
		if spec.signed {
			f.WriteString("x-amz-trailer-signature:" + s.trailer(line+"\n") + "\r\n")
		}
	}
	f.WriteString("\r\n")
	frames = append(frames, f.Bytes())
	return frames
}

// chunkedLength is the framed length chunkFrames produces.
func chunkedLength(data []byte, spec chunkSpec) int64 {
	s := &chunkSigner{key: []byte("k"), prev: strings.Repeat("0", 64)}
	var n int
	for _, f := range chunkFrames(data, spec, s) {
		n += len(f)
	}
	return int64(n)
}

// streamingRequest builds a signed aws-chunked PUT: headers signed with
// the SDK signer (the seed), body framed per spec with chunk signatures
// chained from that seed. It returns the client request and its frames.
func streamingRequest(t testing.TB, data []byte, spec chunkSpec) (*http.Request, [][]byte) {
	t.Helper()
	return streamingRequestLen(t, data, spec, true)
}

// streamingRequestLen is streamingRequest; with withLength false the body is
// sent with chunked transfer encoding and no (signed) Content-Length, as
// botocore does, so that tests can change the body without breaking the
// request signature.
func streamingRequestLen(t testing.TB, data []byte, spec chunkSpec, withLength bool) (*http.Request, [][]byte) {
	t.Helper()
	r := newClientRequest(t, http.MethodPut, "dir/object.bin", "", nil)
	payload := streamingUnsignedTrailer
	switch {
	case spec.signed && spec.trailer != "":
		payload = streamingPayloadTrailer
	case spec.signed:
		payload = streamingPayload
	}
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(data)))
	if spec.trailer != "" {
		r.Header.Set("X-Amz-Trailer", spec.trailer.HeaderName())
	}
	r.ContentLength = -1
	if withLength {
		r.ContentLength = chunkedLength(data, spec)
	}
	signSDK(t, r, payload, testTime)
	seed := authSignature(t, r)
	s := &chunkSigner{
		key:   specKey(testSecret, testTime.Format(dateFormat), testRegion),
		date:  testTime.Format(iso8601Format),
		scope: testTime.Format(dateFormat) + "/" + testRegion + "/s3/aws4_request",
		prev:  seed,
	}
	frames := chunkFrames(data, spec, s)
	r.Body = io.NopCloser(bytes.NewReader(bytes.Join(frames, nil)))
	return r, frames
}

func authSignature(t testing.TB, r *http.Request) string {
	t.Helper()
	a := r.Header.Get("Authorization")
	i := strings.Index(a, "Signature=")
	if i < 0 {
		t.Fatalf("no signature in %q", a)
	}
	return a[i+len("Signature="):]
}

// countingReader counts the bytes released by the body under test.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// withBody returns a copy of r whose body is b.
func withBody(t testing.TB, r *http.Request, b []byte) *http.Request {
	t.Helper()
	c := r.Clone(context.Background())
	c.Body = io.NopCloser(bytes.NewReader(b))
	c.ContentLength = int64(len(b))
	return c
}
