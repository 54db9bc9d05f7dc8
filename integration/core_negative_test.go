package integration

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/s3seal/s3seal/integration/testbed"
)

const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// rawClient sends hand-built requests to s3seal, so tests can send what no
// well-behaved SDK sends.
type rawClient struct {
	p      *proxy
	hc     *http.Client
	signer *v4.Signer
}

func newRawClient(t testing.TB, p *proxy) *rawClient {
	return &rawClient{
		p:      p,
		hc:     &http.Client{Transport: testbed.SDKHTTPClient(t, p.CAFile).GetTransport(), Timeout: time.Minute},
		signer: v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }),
	}
}

func (rc *rawClient) url(bucket, key string) string {
	return rc.p.Endpoint + "/" + bucket + "/" + urlPathEscape(key)
}

// sign signs req as the client with the given secret, payload hash and time.
func (rc *rawClient) sign(t testing.TB, req *http.Request, secret, payload string, at time.Time) {
	t.Helper()
	req.Header.Set("X-Amz-Content-Sha256", payload)
	creds := aws.Credentials{AccessKeyID: rc.p.AccessKey, SecretAccessKey: secret}
	if err := rc.signer.SignHTTP(context.Background(), creds, req, payload, "s3", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
}

type s3Error struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// do sends req and returns the status and S3 error code.
func (rc *rawClient) do(t testing.TB, req *http.Request) (int, s3Error, string) {
	t.Helper()
	resp, err := rc.hc.Do(req)
	if err != nil {
		// s3seal may close the connection after refusing a body; that
		// is an acceptable answer only where the test allows it.
		return 0, s3Error{Code: "connection: " + err.Error()}, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e s3Error
	_ = xml.Unmarshal(b, &e)
	return resp.StatusCode, e, string(b)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestNegativeAuth checks that each kind of bad request gets the S3 error
// S3 would give and that nothing reaches the store.
func TestNegativeAuth(t *testing.T) {
	testbed.Require(t)
	up := shared.minio
	p := startProxy(t, up, proxyOptions{})
	rc := newRawClient(t, p)
	bucket := newBucket(t, up)
	body := randBytes(200_000)

	type tc struct {
		name   string
		build  func(t *testing.T, key string) *http.Request
		status int
		code   string
	}
	put := func(key string, b []byte) *http.Request {
		req, _ := http.NewRequest(http.MethodPut, rc.url(bucket, key), bytes.NewReader(b))
		return req
	}
	cases := []tc{
		{"wrong secret", func(t *testing.T, key string) *http.Request {
			req := put(key, body)
			rc.sign(t, req, "not-the-secret", sha256Hex(body), time.Now())
			return req
		}, 403, "SignatureDoesNotMatch"},
		{"unknown key id", func(t *testing.T, key string) *http.Request {
			req := put(key, body)
			creds := aws.Credentials{AccessKeyID: "nobody", SecretAccessKey: p.SecretKey}
			req.Header.Set("X-Amz-Content-Sha256", sha256Hex(body))
			_ = rc.signer.SignHTTP(context.Background(), creds, req, sha256Hex(body), "s3", "us-east-1", time.Now())
			return req
		}, 403, "InvalidAccessKeyId"},
		{"clock skew", func(t *testing.T, key string) *http.Request {
			req := put(key, body)
			rc.sign(t, req, p.SecretKey, sha256Hex(body), time.Now().Add(-20*time.Minute))
			return req
		}, 403, "RequestTimeTooSkewed"},
		{"flipped body byte", func(t *testing.T, key string) *http.Request {
			bad := append([]byte(nil), body...)
			bad[len(bad)/2] ^= 1
			req := put(key, bad)
			rc.sign(t, req, p.SecretKey, sha256Hex(body), time.Now())
			return req
		}, 400, "XAmzContentSHA256Mismatch"},
		{"flipped last body byte", func(t *testing.T, key string) *http.Request {
			bad := append([]byte(nil), body...)
			bad[len(bad)-1] ^= 1
			req := put(key, bad)
			rc.sign(t, req, p.SecretKey, sha256Hex(body), time.Now())
			return req
		}, 400, "XAmzContentSHA256Mismatch"},
		{"expired presigned", func(t *testing.T, key string) *http.Request {
			return rc.presigned(t, http.MethodPut, bucket, key, body, time.Now().Add(-2*time.Hour), time.Hour)
		}, 403, "AccessDenied"},
		{"future presigned", func(t *testing.T, key string) *http.Request {
			return rc.presigned(t, http.MethodPut, bucket, key, body, time.Now().Add(2*time.Hour), time.Hour)
		}, 403, "AccessDenied"},
		{"wrong chunk signature", func(t *testing.T, key string) *http.Request {
			return rc.chunked(t, bucket, key, body, chunkedOptions{corruptChunk: 1})
		}, 403, "SignatureDoesNotMatch"},
		{"reordered chunks", func(t *testing.T, key string) *http.Request {
			return rc.chunked(t, bucket, key, body, chunkedOptions{swapChunks: true})
		}, 403, "SignatureDoesNotMatch"},
		{"truncated chunked body", func(t *testing.T, key string) *http.Request {
			return rc.chunked(t, bucket, key, body, chunkedOptions{truncate: 70_000})
		}, 400, "IncompleteBody"},
		{"missing final chunk", func(t *testing.T, key string) *http.Request {
			return rc.chunked(t, bucket, key, body, chunkedOptions{dropFinal: true})
		}, 400, "IncompleteBody"},
		{"wrong trailer checksum", func(t *testing.T, key string) *http.Request {
			return rc.unsignedTrailer(t, bucket, key, body, true)
		}, 400, "BadDigest"},
		{"sigv2", func(t *testing.T, key string) *http.Request {
			req := put(key, body)
			req.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
			req.Header.Set("Authorization", "AWS "+p.AccessKey+":"+base64.StdEncoding.EncodeToString(randBytes(20)))
			return req
		}, 403, "SignatureDoesNotMatch"},
		{"anonymous", func(t *testing.T, key string) *http.Request {
			return put(key, body)
		}, 403, "AccessDenied"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := "neg/" + strings.ReplaceAll(c.name, " ", "-")
			status, e, raw := rc.do(t, c.build(t, key))
			if status != c.status || e.Code != c.code {
				t.Errorf("got %d %q (%s), want %d %s", status, e.Code, raw, c.status, c.code)
			}
			if strings.Contains(raw, p.SecretKey) || strings.Contains(raw, up.SecretKey) {
				t.Error("error body contains a secret")
			}
			if objectExists(t, up, bucket, key) {
				t.Error("an object was stored upstream")
			}
		})
	}
	// Controls: the same builders with nothing wrong store the object, so
	// the negative cases fail for the reason they claim.
	t.Run("controls", func(t *testing.T) {
		for name, req := range map[string]*http.Request{
			"signed": func() *http.Request {
				r := put("ctl/signed", body)
				rc.sign(t, r, p.SecretKey, sha256Hex(body), time.Now())
				return r
			}(),
			"presigned":       rc.presigned(t, http.MethodPut, bucket, "ctl/presigned", body, time.Now(), time.Hour),
			"chunked":         rc.chunked(t, bucket, "ctl/chunked", body, chunkedOptions{}),
			"unsignedTrailer": rc.unsignedTrailer(t, bucket, "ctl/trailer", body, false),
		} {
			status, e, raw := rc.do(t, req)
			if status != 200 {
				t.Errorf("%s: %d %s %s", name, status, e.Code, raw)
				continue
			}
			key := strings.TrimPrefix(req.URL.Path, "/"+bucket+"/")
			if got := getBytes(t, up.Client(t), bucket, key); !bytes.Equal(got, body) {
				t.Errorf("%s: stored bytes differ", name)
			}
		}
	})
}

// presigned builds a presigned request signed at 'at'.
func (rc *rawClient) presigned(t testing.TB, method, bucket, key string, body []byte, at time.Time, expires time.Duration) *http.Request {
	t.Helper()
	u := rc.url(bucket, key) + "?X-Amz-Expires=" + strconv.Itoa(int(expires.Seconds()))
	req, _ := http.NewRequest(method, u, nil)
	creds := aws.Credentials{AccessKeyID: rc.p.AccessKey, SecretAccessKey: rc.p.SecretKey}
	signed, hdr, err := rc.signer.PresignHTTP(context.Background(), creds, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", at)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := http.NewRequest(method, signed, bytes.NewReader(body))
	for k, v := range hdr {
		if k != "Host" {
			out.Header[k] = v
		}
	}
	return out
}

type chunkedOptions struct {
	corruptChunk int  // 1-based index of a chunk whose signature is flipped
	swapChunks   bool // swap the first two chunks' data and signatures
	truncate     int  // cut the encoded body to this many bytes
	dropFinal    bool // leave out the final zero-length chunk
}

// chunked builds a STREAMING-AWS4-HMAC-SHA256-PAYLOAD request with 64 KiB
// chunks, computing the chunk signatures from the AWS specification. The
// encoded length does not depend on signature values (always 64 hex
// digits), so Content-Length is known before signing.
func (rc *rawClient) chunked(t testing.TB, bucket, key string, data []byte, o chunkedOptions) *http.Request {
	t.Helper()
	const payload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	const chunk = 64 << 10
	at := time.Now().UTC()
	var chunks [][]byte
	for off := 0; off < len(data); off += chunk {
		chunks = append(chunks, data[off:min(off+chunk, len(data))])
	}
	chunks = append(chunks, nil)
	encode := func(sigs []string) []byte {
		var buf bytes.Buffer
		for i, c := range chunks {
			if o.dropFinal && i == len(chunks)-1 {
				break
			}
			fmt.Fprintf(&buf, "%x;chunk-signature=%s\r\n", len(c), sigs[i])
			buf.Write(c)
			buf.WriteString("\r\n")
		}
		b := buf.Bytes()
		if o.truncate > 0 {
			b = b[:o.truncate]
		}
		return b
	}
	placeholder := make([]string, len(chunks))
	for i := range placeholder {
		placeholder[i] = strings.Repeat("0", 64)
	}
	req, _ := http.NewRequest(http.MethodPut, rc.url(bucket, key), nil)
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(data)))
	req.ContentLength = int64(len(encode(placeholder)))
	rc.sign(t, req, rc.p.SecretKey, payload, at)
	auth := req.Header.Get("Authorization")
	prev := auth[strings.LastIndex(auth, "Signature=")+len("Signature="):]
	key4 := signingKey(rc.p.SecretKey, at.Format("20060102"), "us-east-1")
	scope := at.Format("20060102") + "/us-east-1/s3/aws4_request"
	sigs := make([]string, len(chunks))
	for i, c := range chunks {
		sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + at.Format("20060102T150405Z") + "\n" + scope + "\n" + prev + "\n" + emptySHA256 + "\n" + sha256Hex(c)
		sigs[i] = hex.EncodeToString(hmacSHA256(key4, []byte(sts)))
		prev = sigs[i]
	}
	if o.corruptChunk > 0 {
		b := []byte(sigs[o.corruptChunk-1])
		if b[0] == 'a' {
			b[0] = 'b'
		} else {
			b[0] = 'a'
		}
		sigs[o.corruptChunk-1] = string(b)
	}
	if o.swapChunks {
		chunks[0], chunks[1] = chunks[1], chunks[0]
		sigs[0], sigs[1] = sigs[1], sigs[0]
	}
	enc := encode(sigs)
	req.Body = io.NopCloser(bytes.NewReader(enc))
	return req
}

// unsignedTrailer builds a STREAMING-UNSIGNED-PAYLOAD-TRAILER request with a
// CRC32 trailer, the form aws-sdk-go-v2 sends over HTTPS.
func (rc *rawClient) unsignedTrailer(t testing.TB, bucket, key string, data []byte, wrong bool) *http.Request {
	t.Helper()
	const payload = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	sum := crc32.ChecksumIEEE(data)
	if wrong {
		sum ^= 0xdeadbeef
	}
	b := make([]byte, 4)
	b[0], b[1], b[2], b[3] = byte(sum>>24), byte(sum>>16), byte(sum>>8), byte(sum)
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%x\r\n", len(data))
	buf.Write(data)
	buf.WriteString("\r\n0\r\nx-amz-checksum-crc32:" + base64.StdEncoding.EncodeToString(b) + "\r\n\r\n")
	req, _ := http.NewRequest(http.MethodPut, rc.url(bucket, key), bytes.NewReader(buf.Bytes()))
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(data)))
	req.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
	rc.sign(t, req, rc.p.SecretKey, payload, time.Now())
	return req
}

func hmacSHA256(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}

func signingKey(secret, date, region string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), []byte(date))
	k = hmacSHA256(k, []byte(region))
	k = hmacSHA256(k, []byte("s3"))
	return hmacSHA256(k, []byte("aws4_request"))
}
