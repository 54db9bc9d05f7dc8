package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/local"
	"github.com/s3seal/s3seal/integration/testbed"
	s3proxy "github.com/s3seal/s3seal/proxy"
	"github.com/s3seal/s3seal/proxy/authz"
	"github.com/s3seal/s3seal/proxy/policy"
	"github.com/s3seal/s3seal/proxy/sigv4"
	"github.com/s3seal/s3seal/proxy/upstream"
)

// TestReliabilityGoroutineLeaks runs s3seal's handler and servers in this
// process, in front of the shared MinIO, through a workload that also
// aborts requests in every way (a client gone mid-GET and mid-PUT, a
// stalled body, a refused request), shuts everything down, and then
// requires that no goroutine s3seal started is left. The data-key cache's
// LRU runs one expiry goroutine for the life of the process by design; it
// is the only one ignored.
func TestReliabilityGoroutineLeaks(t *testing.T) {
	testbed.Require(t)
	up := shared.minio
	bucket := newBucket(t, up)
	// Goroutines from here on are the test's or s3seal's (the direct
	// client that made the bucket keeps its idle connection).
	before := goleak.IgnoreCurrent()

	ringFile := newKeyring(t)
	ring, err := local.Load(ringFile)
	must(t, err, "load key ring")
	ak, sk := "leak-"+randHex(4), "secret-"+randHex(16)
	ids := s3proxy.NewIdentities([]s3proxy.Identity{{Client: authz.Client{Name: "app"}, AccessKeyID: ak, Secret: sk}})
	engine, err := policy.New(nil, policy.Rule{Name: "default", Mode: policy.Envelope})
	must(t, err, "policy")
	metrics := s3proxy.NewMetrics("test")
	rt := &s3proxy.Runtime{
		Identities: ids,
		Verifier:   &sigv4.Verifier{Lookup: ids.Lookup},
		Decoder:    &sigv4.Verifier{SkipSignatures: true},
		Policy:     engine,
		Keys:       keys.NewCache(metrics.InstrumentProvider(local.NewProvider(ring, local.Config{})), keys.CacheConfig{}),
		Keyring:    ring,
		SSE:        s3proxy.NewSSE(s3proxy.SSEOptions{Keyring: ring}),
	}
	ep, _ := url.Parse(up.Endpoint)
	uo := upstream.Options{
		Endpoint: ep, Region: up.Region, PathStyle: true,
		Credentials:     credentials.NewStaticCredentialsProvider(up.AccessKey, up.SecretKey, ""),
		RootCAs:         x509Pool(t, mustRead(t, up.CAFile)),
		IdleConnTimeout: 2 * time.Second,
	}
	tr := upstream.NewTransport(uo)
	uo.Transport = tr
	uc, err := upstream.New(uo)
	must(t, err, "upstream")
	h, err := s3proxy.NewHandler(s3proxy.Options{Runtime: rt, Upstream: uc, BodyReadTimeout: time.Second, Metrics: metrics, Logger: zap.NewNop()})
	must(t, err, "handler")
	srv, err := s3proxy.NewServer(s3proxy.ServerOptions{
		Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", Handler: h,
		Admin:             map[string]http.Handler{"GET /metrics": metrics.Handler()},
		Probe:             uc.Probe,
		ReadHeaderTimeout: time.Second, IdleTimeout: 2 * time.Second, MaxHeaderBytes: 64 << 10,
	})
	must(t, err, "server")
	must(t, srv.Start(), "start")
	endpoint := "http://" + srv.Addr().String()

	ctr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8}
	c := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(ak, sk, ""),
		HTTPClient:  &http.Client{Transport: ctr}, RetryMaxAttempts: 1,
	})
	// A workload of every kind.
	want := map[string][]byte{}
	for i, n := range []int{0, 1, 65536, 200_000, 3 << 20} {
		k := fmt.Sprintf("o%d", i)
		want[k] = randBytes(n)
		_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader(want[k])})
		must(t, err, "PutObject")
	}
	for k, b := range want {
		if got := getBytes(t, c, bucket, k); !bytes.Equal(got, b) {
			t.Errorf("%s: other bytes", k)
		}
	}
	getBytes(t, c, bucket, "o4", func(in *s3.GetObjectInput) { in.Range = aws.String("bytes=70000-1500000") })
	_, err = c.CopyObject(ctx(t), &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("copy"), CopySource: aws.String(bucket + "/o3")})
	must(t, err, "CopyObject")
	mpu, err := c.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("mpu")})
	must(t, err, "CreateMultipartUpload")
	var parts []types.CompletedPart
	for n := int32(1); n <= 2; n++ {
		out, err := c.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String("mpu"), UploadId: mpu.UploadId, PartNumber: aws.Int32(n), Body: bytes.NewReader(randBytes(5 << 20))})
		must(t, err, "UploadPart")
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.ETag})
	}
	_, err = c.CompleteMultipartUpload(ctx(t), &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("mpu"), UploadId: mpu.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	must(t, err, "CompleteMultipartUpload")
	_, err = c.ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	must(t, err, "ListObjectsV2")
	_, err = c.DeleteObject(ctx(t), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("copy")})
	must(t, err, "DeleteObject")
	_, err = s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(ak, "wrong-secret", ""),
		HTTPClient:  &http.Client{Transport: ctr}, RetryMaxAttempts: 1,
	}).GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("o1")})
	if apiCode(err) != "SignatureDoesNotMatch" {
		t.Errorf("wrong secret: %v", err)
	}

	// A client that goes away in the middle of a GET.
	gctx, cancel := context.WithCancel(context.Background())
	out, err := c.GetObject(gctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("mpu")})
	must(t, err, "GetObject")
	_, _ = io.ReadFull(out.Body, make([]byte, 100_000))
	cancel()
	out.Body.Close()
	// And in the middle of a PUT.
	pctx, pcancel := context.WithCancel(context.Background())
	_, err = c.PutObject(pctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("gone"), ContentLength: aws.Int64(8 << 20),
		Body: &triggerReader{r: bytes.NewReader(randBytes(8 << 20)), at: 2 << 20, fire: pcancel, failErr: errors.New("gone")}})
	if err == nil {
		t.Error("a PUT whose client went away succeeded")
	}
	// A signed body that stalls past the body read timeout.
	req, _ := http.NewRequest(http.MethodPut, endpoint+"/"+bucket+"/stalled", nil)
	req.ContentLength = 1000
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	must(t, v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk}, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now()), "sign")
	conn, err := net.Dial("tcp", srv.Addr().String())
	must(t, err, "dial")
	_, _ = conn.Write(serialize(req, "1000", nil, []byte("abc")))
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, _ := io.ReadAll(conn)
	conn.Close()
	if !strings.Contains(string(answer), "RequestTimeout") {
		t.Errorf("stalled body answered %q", firstLine(string(answer)))
	}

	// Shut down: the server, then idle connections on both sides.
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	must(t, srv.Shutdown(sctx), "shutdown")
	scancel()
	ctr.CloseIdleConnections()
	tr.CloseIdleConnections()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()

	// Connections close asynchronously: look again for up to 15 s.
	deadline := time.Now().Add(15 * time.Second)
	for {
		err = goleak.Find(before, goleak.IgnoreAnyFunction("github.com/hashicorp/golang-lru/v2/expirable.NewLRU[...].func1"))
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("goroutines left after shutdown:\n%v", err)
	}
	n := strings.Count(fmt.Sprint(err), "Goroutine ")
	relRecord(t, "leaks", map[string]any{"check": "in-process handler and servers, full workload with aborted requests, after shutdown", "leaked_goroutines": n})
}
