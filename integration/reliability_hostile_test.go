package integration

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/integration/testbed"
)

// hostileEnv is what the hostile-input cases run against: an envelope and
// a passthrough s3seal, each limited to one bucket, and a third bucket
// neither client may use, holding a secret object.
type hostileEnv struct {
	env, pass       *proxy
	rcEnv, rcPass   *rawClient
	mineEnv, mine   string // the clients' buckets (envelope, passthrough)
	other           string // the bucket no client may use
	secret          []byte // the content of other/secret
	envObj          []byte // mineEnv/obj, read through s3seal
	uploadID        string // an envelope multipart upload in mineEnv/mpu
	secretsToShield []string
}

// hostileCase is one hostile request. run sends it and returns the status,
// the S3 error code and the raw answer; absent lists bucket/key pairs that
// must not exist afterwards.
type hostileCase struct {
	name   string
	run    func(t *testing.T, e *hostileEnv) (int, string, string)
	status []int  // accepted statuses (0: the connection closed without one)
	code   string // expected S3 error code ("" for none or any)
	absent [][2]string
}

// TestReliabilityHostileInput sends requests no well-behaved client sends
// and checks that each gets the right S3 error, that nothing is stored and
// that nothing leaks.
func TestReliabilityHostileInput(t *testing.T) {
	testbed.Require(t)
	up := shared.minio
	e := &hostileEnv{mineEnv: newBucket(t, up), mine: newBucket(t, up), other: newBucket(t, up)}
	e.env, _ = startEnvelopeProxy(t, up, map[string]string{"S3SEAL_CLIENT_BUCKETS": e.mineEnv, "S3SEAL_LOG_LEVEL": "info"})
	e.pass = startProxy(t, up, proxyOptions{Env: map[string]string{"S3SEAL_CLIENT_BUCKETS": e.mine, "S3SEAL_LOG_LEVEL": "info"}})
	e.rcEnv, e.rcPass = newRawClient(t, e.env), newRawClient(t, e.pass)
	e.secret = []byte("the other bucket's secret " + randHex(8))
	_, err := up.Client(t).PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(e.other), Key: aws.String("secret"), Body: bytes.NewReader(e.secret)})
	must(t, err, "PutObject directly")
	e.envObj = randBytes(200_000)
	ce := e.env.Client(t, noRetry)
	_, err = ce.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(e.mineEnv), Key: aws.String("obj"), Body: bytes.NewReader(e.envObj)})
	must(t, err, "PutObject")
	mpu, err := ce.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(e.mineEnv), Key: aws.String("mpu")})
	must(t, err, "CreateMultipartUpload")
	e.uploadID = aws.ToString(mpu.UploadId)
	e.secretsToShield = []string{e.env.SecretKey, e.pass.SecretKey, up.SecretKey, string(e.secret)}

	for _, c := range hostileCases() {
		t.Run(c.name, func(t *testing.T) {
			status, code, raw := c.run(t, e)
			okStatus := false
			for _, s := range c.status {
				okStatus = okStatus || s == status
			}
			if !okStatus || (c.code != "" && code != c.code) {
				t.Errorf("got %d %q, want %v %q\n%s", status, code, c.status, c.code, trimRaw(raw))
			}
			leaked := ""
			for _, s := range e.secretsToShield {
				if s != "" && strings.Contains(raw, s) {
					leaked = "secret"
					t.Error("the answer contains a secret or the other bucket's data")
				}
			}
			for _, w := range []string{"StringToSign", "CanonicalRequest", "SignatureProvided", "AWSAccessKeyId"} {
				if strings.Contains(raw, w) {
					leaked = w
					t.Errorf("the answer contains %s", w)
				}
			}
			stored := 0
			for _, bk := range c.absent {
				if b := e.bucket(bk[0]); objectExists(t, up, b, bk[1]) {
					stored++
					t.Errorf("%s/%s exists", b, bk[1])
				}
			}
			if code == "" {
				code = "—"
			}
			relRecord(t, "hostile", map[string]any{"case": c.name, "status": status, "code": code, "stored": stored, "leak": leaked != ""})
		})
	}

	// The bucket no client may use holds only what was put there directly.
	out, err := up.Client(t).ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: aws.String(e.other)})
	must(t, err, "list the other bucket")
	if len(out.Contents) != 1 || aws.ToString(out.Contents[0].Key) != "secret" {
		var keys []string
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
		t.Errorf("the other bucket holds %v", keys)
	}
}

func trimRaw(s string) string {
	if len(s) > 600 {
		return s[:600] + "…"
	}
	return s
}

// signed builds a request signed as the client of rc with payload hash
// payload (UNSIGNED-PAYLOAD when empty) and the given body.
func (rc *rawClient) signed(t testing.TB, method, rawURL string, body []byte, hdr map[string]string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, bytes.NewReader(body))
	must(t, err, "request")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	payload := sha256Hex(body)
	if v, ok := hdr["X-Amz-Content-Sha256"]; ok {
		payload = v
	}
	rc.sign(t, req, rc.p.SecretKey, payload, time.Now())
	return req
}

// rawTLS sends text on a new HTTP/1.1 TLS connection to p, optionally
// half-closes it, and returns the first status, the S3 code in the answer
// and everything s3seal sent until it closed the connection (or 2 s).
func rawTLS(t testing.TB, p *proxy, text []byte, halfClose bool) (int, string, string) {
	t.Helper()
	host := strings.TrimPrefix(p.Endpoint, "https://")
	conn, err := tls.Dial("tcp", host, &tls.Config{RootCAs: x509Pool(t, mustRead(t, p.CAFile)), ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}})
	must(t, err, "dial")
	defer conn.Close()
	_, _ = conn.Write(text)
	if halfClose {
		_ = conn.CloseWrite()
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	b, _ := io.ReadAll(conn)
	raw := string(b)
	status := 0
	if resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), nil); err == nil {
		status = resp.StatusCode
	}
	return status, xmlCode(raw), raw
}

// serialize writes req as HTTP/1.1 text with the given Content-Length line
// (or none if cl is ""), extra header lines, and body.
func serialize(req *http.Request, cl string, extra []string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", req.Method, req.URL.RequestURI(), req.Host)
	keys := make([]string, 0, len(req.Header))
	for k := range req.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\r\n", k, req.Header.Get(k))
	}
	if cl != "" {
		fmt.Fprintf(&b, "Content-Length: %s\r\n", cl)
	}
	for _, l := range extra {
		b.WriteString(l + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

func xmlCode(raw string) string {
	_, after, ok := strings.Cut(raw, "<Code>")
	if !ok {
		return ""
	}
	code, _, _ := strings.Cut(after, "</Code>")
	return code
}

// doRaw sends req with rc and returns status, code and body.
func doRaw(t testing.TB, rc *rawClient, req *http.Request) (int, string, string) {
	t.Helper()
	status, e, raw := rc.do(t, req)
	return status, e.Code, raw
}

// getRange reads mineEnv/obj with a Range header and checks the bytes
// against the object, returning the status, code and Content-Range.
func getRange(t *testing.T, e *hostileEnv, spec string, wantFrom, wantTo int) (int, string, string) {
	req := e.rcEnv.signed(t, http.MethodGet, e.rcEnv.url(e.mineEnv, "obj"), nil, map[string]string{"Range": spec})
	resp, err := e.rcEnv.hc.Do(req)
	if err != nil {
		return 0, "", err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("%s: body: %v", spec, err)
	}
	if resp.StatusCode/100 == 2 && !bytes.Equal(b, e.envObj[wantFrom:wantTo]) {
		t.Errorf("%s: %d bytes, want bytes [%d, %d) of the object", spec, len(b), wantFrom, wantTo)
	}
	return resp.StatusCode, xmlCode(string(b)), resp.Header.Get("Content-Range") + " " + string(b[:min(len(b), 300)])
}

// chunkedBody builds an aws-chunked STREAMING-UNSIGNED-PAYLOAD-TRAILER PUT
// with a hand-written (possibly broken) body.
func chunkedBody(t *testing.T, rc *rawClient, bucket, key string, decoded int, body string) *http.Request {
	req := rc.signed(t, http.MethodPut, rc.url(bucket, key), nil, map[string]string{
		"X-Amz-Content-Sha256":         "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
		"Content-Encoding":             "aws-chunked",
		"X-Amz-Decoded-Content-Length": strconv.Itoa(decoded),
		"X-Amz-Trailer":                "x-amz-checksum-crc32",
	})
	req.Body = io.NopCloser(strings.NewReader(body))
	req.ContentLength = int64(len(body))
	return req
}

func hostileCases() []hostileCase {
	status := func(s ...int) []int { return s }
	return []hostileCase{
		// Headers and metadata.
		{name: "header of 100 KiB (limit 64 KiB)", status: status(431), run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			req := e.rcEnv.signed(t, http.MethodGet, e.rcEnv.url(e.mineEnv, "obj"), nil, map[string]string{"X-Padding": strings.Repeat("p", 100<<10)})
			return doRaw(t, e.rcEnv, req)
		}},
		{name: "user metadata over 2 KB (envelope)", status: status(400), code: "MetadataTooLarge", absent: [][2]string{{"$mineEnv", "meta"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return doRaw(t, e.rcEnv, e.rcEnv.signed(t, http.MethodPut, e.rcEnv.url(e.mineEnv, "meta"), []byte("x"), map[string]string{"X-Amz-Meta-Big": strings.Repeat("m", 2100)}))
		}},
		{name: "user metadata over 2 KB (passthrough)", status: status(400), code: "MetadataTooLarge", absent: [][2]string{{"$mine", "meta"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return doRaw(t, e.rcPass, e.rcPass.signed(t, http.MethodPut, e.rcPass.url(e.mine, "meta"), []byte("x"), map[string]string{"X-Amz-Meta-Big": strings.Repeat("m", 2100)}))
		}},
		{name: "forged s3seal metadata", status: status(400), code: "InvalidArgument", absent: [][2]string{{"$mineEnv", "forged"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return doRaw(t, e.rcEnv, e.rcEnv.signed(t, http.MethodPut, e.rcEnv.url(e.mineEnv, "forged"), []byte("x"), map[string]string{"X-Amz-Meta-S3seal": "AAAA"}))
		}},

		// Malformed XML bodies.
		{name: "CompleteMultipartUpload, malformed XML", status: status(400), code: "MalformedXML", absent: [][2]string{{"$mineEnv", "mpu"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return doRaw(t, e.rcEnv, e.rcEnv.signed(t, http.MethodPost, e.rcEnv.url(e.mineEnv, "mpu")+"?uploadId="+url.QueryEscape(e.uploadID), []byte("<CompleteMultipartUpload><Part><PartNumber>1"), nil))
		}},
		{name: "CompleteMultipartUpload, 5 MiB body", status: status(400), code: "MalformedXML", absent: [][2]string{{"$mineEnv", "mpu"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			doc := "<CompleteMultipartUpload>" + strings.Repeat("<Part><PartNumber>1</PartNumber><ETag>x</ETag></Part>", 5<<20/52) + "</CompleteMultipartUpload>"
			return doRaw(t, e.rcEnv, e.rcEnv.signed(t, http.MethodPost, e.rcEnv.url(e.mineEnv, "mpu")+"?uploadId="+url.QueryEscape(e.uploadID), []byte(doc), nil))
		}},
		{name: "CompleteMultipartUpload, parts out of order", status: status(400), code: "InvalidPartOrder", absent: [][2]string{{"$mineEnv", "mpu"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			doc := "<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>a</ETag></Part><Part><PartNumber>1</PartNumber><ETag>b</ETag></Part></CompleteMultipartUpload>"
			return doRaw(t, e.rcEnv, e.rcEnv.signed(t, http.MethodPost, e.rcEnv.url(e.mineEnv, "mpu")+"?uploadId="+url.QueryEscape(e.uploadID), []byte(doc), nil))
		}},
		{name: "CompleteMultipartUpload, forged upload id", status: status(404), code: "NoSuchUpload", absent: [][2]string{{"$mineEnv", "mpu"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			id := []byte(e.uploadID)
			id[len(id)-3] ^= 1
			doc := "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>"
			return doRaw(t, e.rcEnv, e.rcEnv.signed(t, http.MethodPost, e.rcEnv.url(e.mineEnv, "mpu")+"?uploadId="+url.QueryEscape(string(id)), []byte(doc), nil))
		}},
		{name: "DeleteObjects, malformed XML", status: status(400), code: "MalformedXML", run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			doc := []byte("<Delete><Object><Key>obj</Key></Object")
			sum := md5.Sum(doc)
			return doRaw(t, e.rcEnv, e.rcEnv.signed(t, http.MethodPost, e.rcEnv.p.Endpoint+"/"+e.mineEnv+"?delete", doc, map[string]string{"Content-Md5": base64.StdEncoding.EncodeToString(sum[:])}))
		}},

		// Ranges (envelope object of 200,000 bytes).
		{name: "Range bytes=5-3 (ignored)", status: status(200), run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return getRange(t, e, "bytes=5-3", 0, 200_000)
		}},
		{name: "Range bytes=abc (ignored)", status: status(200), run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return getRange(t, e, "bytes=abc", 0, 200_000)
		}},
		{name: "Range of two ranges (whole object)", status: status(200), run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return getRange(t, e, "bytes=0-1,5-6", 0, 200_000)
		}},
		{name: "Range past the end", status: status(416), code: "InvalidRange", run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return getRange(t, e, "bytes=999999999-", 0, 0)
		}},
		{name: "Range bytes=0-9223372036854775807", status: status(206), run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return getRange(t, e, "bytes=0-9223372036854775807", 0, 200_000)
		}},
		{name: "Range bytes=-9223372036854775807", status: status(206), run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return getRange(t, e, "bytes=-9223372036854775807", 0, 200_000)
		}},
		{name: "Range bytes=9223372036854775807-", status: status(416), code: "InvalidRange", run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return getRange(t, e, "bytes=9223372036854775807-", 0, 0)
		}},

		// Content-Length.
		{name: "negative Content-Length", status: status(400), absent: [][2]string{{"$mineEnv", "neg-cl"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			req := e.rcEnv.signed(t, http.MethodPut, e.rcEnv.url(e.mineEnv, "neg-cl"), nil, map[string]string{"X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"})
			return rawTLS(t, e.env, serialize(req, "-1", nil, []byte("abc")), false)
		}},
		{name: "two different Content-Lengths", status: status(400), absent: [][2]string{{"$mineEnv", "two-cl"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			req := e.rcEnv.signed(t, http.MethodPut, e.rcEnv.url(e.mineEnv, "two-cl"), nil, map[string]string{"X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"})
			return rawTLS(t, e.env, serialize(req, "3", []string{"Content-Length: 4"}, []byte("abcd")), false)
		}},
		{name: "Content-Length larger than the body, half-closed", status: status(0, 400), absent: [][2]string{{"$mineEnv", "short-body"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			req := e.rcEnv.signed(t, http.MethodPut, e.rcEnv.url(e.mineEnv, "short-body"), nil, map[string]string{"X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"})
			return rawTLS(t, e.env, serialize(req, "100000", nil, randBytes(1000)), true)
		}},
		{name: "Content-Length smaller than the signed body", status: status(403), code: "SignatureDoesNotMatch", absent: [][2]string{{"$mineEnv", "long-body"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			body := randBytes(2000)
			req := e.rcEnv.signed(t, http.MethodPut, e.rcEnv.url(e.mineEnv, "long-body"), body, nil)
			return rawTLS(t, e.env, serialize(req, "1000", nil, body), false)
		}},

		// aws-chunked framing.
		{name: "aws-chunked, chunk size not hex", status: status(400), absent: [][2]string{{"$mineEnv", "chunk-hex"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return doRaw(t, e.rcEnv, chunkedBody(t, e.rcEnv, e.mineEnv, "chunk-hex", 3, "zz\r\nabc\r\n0\r\n\r\n"))
		}},
		{name: "aws-chunked, chunk size 2^64-1", status: status(400), absent: [][2]string{{"$mineEnv", "chunk-huge"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return doRaw(t, e.rcEnv, chunkedBody(t, e.rcEnv, e.mineEnv, "chunk-huge", 3, "ffffffffffffffff\r\nabc\r\n0\r\n\r\n"))
		}},
		{name: "aws-chunked, more data than declared", status: status(400), absent: [][2]string{{"$mineEnv", "chunk-more"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return doRaw(t, e.rcEnv, chunkedBody(t, e.rcEnv, e.mineEnv, "chunk-more", 3, "6\r\nabcdef\r\n0\r\n\r\n"))
		}},
		{name: "aws-chunked, no CRLF after data", status: status(400), absent: [][2]string{{"$mineEnv", "chunk-crlf"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return doRaw(t, e.rcEnv, chunkedBody(t, e.rcEnv, e.mineEnv, "chunk-crlf", 3, "3\r\nabcXX0\r\n\r\n"))
		}},
		{name: "aws-chunked, no final chunk", status: status(400), absent: [][2]string{{"$mineEnv", "chunk-final"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return doRaw(t, e.rcEnv, chunkedBody(t, e.rcEnv, e.mineEnv, "chunk-final", 3, "3\r\nabc\r\n"))
		}},

		// Paths and key encodings.
		{name: "key ../other/x (dot segments)", status: status(200, 400), absent: [][2]string{{"$other", "x"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return doRaw(t, e.rcPass, e.rcPass.signed(t, http.MethodPut, e.rcPass.p.Endpoint+"/"+e.mine+"/../"+e.other+"/x", []byte("x"), nil))
		}},
		{name: "key ..%2Fother%2Fx (encoded dot segments)", status: status(200, 400, 403), absent: [][2]string{{"$other", "x"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return doRaw(t, e.rcPass, e.rcPass.signed(t, http.MethodPut, e.rcPass.p.Endpoint+"/"+e.mine+"/..%2F"+e.other+"%2Fx", []byte("x"), nil))
		}},
		{name: "bucket %2e%2e (encoded dots)", status: status(400, 403, 404), absent: [][2]string{{"$other", "y"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return doRaw(t, e.rcPass, e.rcPass.signed(t, http.MethodPut, e.rcPass.p.Endpoint+"/%2e%2e/"+e.other+"/y", []byte("y"), nil))
		}},
		{name: "odd keys: stored under their own name or refused", status: status(200), run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			c := e.env.Client(t, noRetry)
			keys := []string{"a//b", "a/./b", "a/../b", "sp ace+plus", "per%cent", "日本語/ключ", "tab\tchar", "q?x=1&y", "#hash", "trailing/", strings.Repeat("k", 1000)}
			stored := map[string]bool{}
			var refused []string
			for _, k := range keys {
				body := []byte("key " + k)
				if _, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(e.mineEnv), Key: aws.String("odd/" + k), Body: bytes.NewReader(body)}); err != nil {
					refused = append(refused, fmt.Sprintf("%.40q: %s", k, errSummary(err)))
					continue
				}
				stored[k] = true
				if got := getBytes(t, c, e.mineEnv, "odd/"+k); !bytes.Equal(got, body) {
					t.Errorf("%q reads back other bytes", k)
				}
			}
			out, err := c.ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: aws.String(e.mineEnv), Prefix: aws.String("odd/")})
			if err != nil {
				return 500, apiCode(err), err.Error()
			}
			for _, o := range out.Contents {
				k := strings.TrimPrefix(aws.ToString(o.Key), "odd/")
				if !stored[k] {
					t.Errorf("listed %q, which no PUT stored under that name", k)
				}
				delete(stored, k)
			}
			for k := range stored {
				t.Errorf("%q is not listed under its name", k)
			}
			t.Logf("refused by the store: %s", strings.Join(refused, "; "))
			return 200, "", ""
		}},
		{name: "key over 1024 bytes", status: status(400), run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return doRaw(t, e.rcEnv, e.rcEnv.signed(t, http.MethodPut, e.rcEnv.url(e.mineEnv, strings.Repeat("k", 1100)), []byte("x"), nil))
		}},

		// Request smuggling on a raw connection.
		{name: "Content-Length and Transfer-Encoding both", status: status(400, 411), absent: [][2]string{{"$mineEnv", "smuggle-1"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			// Transfer-Encoding wins (RFC 9112); what follows the chunked
			// body is a request of its own, unsigned, for the other
			// bucket: it must be refused.
			req := e.rcEnv.signed(t, http.MethodPut, e.rcEnv.url(e.mineEnv, "smuggle-1"), nil, map[string]string{"X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"})
			inner := "GET /" + e.other + "/secret HTTP/1.1\r\nHost: " + req.Host + "\r\n\r\n"
			status, code, raw := rawTLS(t, e.env, serialize(req, "4", []string{"Transfer-Encoding: chunked"}, []byte("0\r\n\r\n"+inner)), false)
			if strings.Count(raw, "HTTP/1.1 ") == 2 && !strings.Contains(raw, "HTTP/1.1 403") {
				t.Errorf("the request after the chunked body was not refused:\n%s", trimRaw(raw))
			}
			return status, code, raw
		}},
		{name: "Transfer-Encoding: chunked, identity", status: status(400, 501), absent: [][2]string{{"$mineEnv", "smuggle-2"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			req := e.rcEnv.signed(t, http.MethodPut, e.rcEnv.url(e.mineEnv, "smuggle-2"), nil, map[string]string{"X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"})
			return rawTLS(t, e.env, serialize(req, "", []string{"Transfer-Encoding: chunked, identity"}, []byte("3\r\nabc\r\n0\r\n\r\n")), false)
		}},
		{name: "Transfer-Encoding with a space before the colon", status: status(400), absent: [][2]string{{"$mineEnv", "smuggle-3"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			req := e.rcEnv.signed(t, http.MethodPut, e.rcEnv.url(e.mineEnv, "smuggle-3"), nil, map[string]string{"X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"})
			return rawTLS(t, e.env, serialize(req, "3", []string{"Transfer-Encoding : chunked"}, []byte("abc")), false)
		}},
		{name: "chunked body smuggling a second request", status: status(400, 411), absent: [][2]string{{"$other", "smuggled"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			// A chunked PUT whose body ends early; what follows is an
			// unsigned request for the other bucket. It must be refused.
			req := e.rcEnv.signed(t, http.MethodPut, e.rcEnv.url(e.mineEnv, "smuggle-4"), nil, map[string]string{"X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"})
			inner := "PUT /" + e.other + "/smuggled HTTP/1.1\r\nHost: " + req.Host + "\r\nContent-Length: 1\r\n\r\nx"
			status, code, raw := rawTLS(t, e.env, serialize(req, "", []string{"Transfer-Encoding: chunked"}, []byte("3\r\nabc\r\n0\r\n\r\n"+inner)), false)
			if n := strings.Count(raw, "HTTP/1.1 "); n == 2 && !strings.Contains(raw, "HTTP/1.1 403") {
				t.Errorf("the smuggled request was not refused:\n%s", trimRaw(raw))
			}
			return status, code, raw
		}},

		// Presigned URL replay.
		{name: "presigned GET replayed after expiry", status: status(403), code: "AccessDenied", run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			req := e.rcEnv.presigned(t, http.MethodGet, e.mineEnv, "obj", nil, time.Now(), 2*time.Second)
			if status, ecode, raw := doRaw(t, e.rcEnv, req); status != 200 {
				t.Fatalf("presigned GET within its validity: %d %s %s", status, ecode, trimRaw(raw))
			}
			time.Sleep(3 * time.Second)
			again, _ := http.NewRequest(http.MethodGet, req.URL.String(), nil)
			return doRaw(t, e.rcEnv, again)
		}},

		// Buckets the client may not use.
		{name: "GET from a bucket not allowed", status: status(403), code: "AccessDenied", run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return doRaw(t, e.rcPass, e.rcPass.signed(t, http.MethodGet, e.rcPass.url(e.other, "secret"), nil, nil))
		}},
		{name: "PUT into a bucket not allowed", status: status(403), code: "AccessDenied", absent: [][2]string{{"$other", "put"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return doRaw(t, e.rcPass, e.rcPass.signed(t, http.MethodPut, e.rcPass.url(e.other, "put"), []byte("x"), nil))
		}},
		{name: "ListObjectsV2 of a bucket not allowed", status: status(403), code: "AccessDenied", run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return doRaw(t, e.rcPass, e.rcPass.signed(t, http.MethodGet, e.rcPass.p.Endpoint+"/"+e.other+"?list-type=2", nil, nil))
		}},
		{name: "DeleteObjects in a bucket not allowed", status: status(403), code: "AccessDenied", run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			doc := []byte("<Delete><Object><Key>secret</Key></Object></Delete>")
			sum := md5.Sum(doc)
			return doRaw(t, e.rcPass, e.rcPass.signed(t, http.MethodPost, e.rcPass.p.Endpoint+"/"+e.other+"?delete", doc, map[string]string{"Content-Md5": base64.StdEncoding.EncodeToString(sum[:])}))
		}},
		{name: "ListBuckets shows only allowed buckets", status: status(200), run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			out, err := e.pass.Client(t, noRetry).ListBuckets(ctx(t), &s3.ListBucketsInput{})
			if err != nil {
				return 500, apiCode(err), err.Error()
			}
			for _, b := range out.Buckets {
				if aws.ToString(b.Name) != e.mine {
					t.Errorf("ListBuckets shows %s", aws.ToString(b.Name))
				}
			}
			return 200, "", ""
		}},
		{name: "CopyObject from a bucket not allowed", status: status(403), code: "AccessDenied", absent: [][2]string{{"$mine", "copy-1"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return doRaw(t, e.rcPass, e.rcPass.signed(t, http.MethodPut, e.rcPass.url(e.mine, "copy-1"), nil, map[string]string{"X-Amz-Copy-Source": e.other + "/secret"}))
		}},
		{name: "CopyObject, source with a bad version escape", status: status(400), code: "InvalidArgument", absent: [][2]string{{"$mine", "copy-2"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return doRaw(t, e.rcPass, e.rcPass.signed(t, http.MethodPut, e.rcPass.url(e.mine, "copy-2"), nil, map[string]string{"X-Amz-Copy-Source": e.other + "/secret?versionId=%zz"}))
		}},
		{name: "CopyObject, source //other/key", status: status(400), code: "InvalidArgument", absent: [][2]string{{"$mine", "copy-3"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return doRaw(t, e.rcPass, e.rcPass.signed(t, http.MethodPut, e.rcPass.url(e.mine, "copy-3"), nil, map[string]string{"X-Amz-Copy-Source": "//" + e.other + "/secret"}))
		}},
		{name: "CopyObject, source with an encoded slash in the bucket", status: status(400, 403), absent: [][2]string{{"$mine", "copy-4"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return doRaw(t, e.rcPass, e.rcPass.signed(t, http.MethodPut, e.rcPass.url(e.mine, "copy-4"), nil, map[string]string{"X-Amz-Copy-Source": e.mine + "%2F..%2F" + e.other + "/secret"}))
		}},
		{name: "CopyObject (envelope) from a bucket not allowed", status: status(403), code: "AccessDenied", absent: [][2]string{{"$mineEnv", "copy-5"}}, run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return doRaw(t, e.rcEnv, e.rcEnv.signed(t, http.MethodPut, e.rcEnv.url(e.mineEnv, "copy-5"), nil, map[string]string{"X-Amz-Copy-Source": e.other + "/secret"}))
		}},
		{name: "UploadPartCopy from a bucket not allowed", status: status(403), code: "AccessDenied", run: func(t *testing.T, e *hostileEnv) (int, string, string) {
			return doRaw(t, e.rcEnv, e.rcEnv.signed(t, http.MethodPut, e.rcEnv.url(e.mineEnv, "mpu")+"?partNumber=1&uploadId="+url.QueryEscape(e.uploadID), nil, map[string]string{"X-Amz-Copy-Source": e.other + "/secret"}))
		}},
	}
}

// bucket resolves the placeholders of absent lists.
func (e *hostileEnv) bucket(name string) string {
	switch name {
	case "$mineEnv":
		return e.mineEnv
	case "$mine":
		return e.mine
	case "$other":
		return e.other
	}
	return name
}
