package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/integration/testbed"
)

// TestVirtualHostedAddressing uses bucket.<base domain> host names, the
// default addressing of most SDKs.
func TestVirtualHostedAddressing(t *testing.T) {
	testbed.Require(t)
	dir := t.TempDir()
	certPEM, keyPEM := shared.ca.IssueCert(t, "s3.test", "*.s3.test", "127.0.0.1")
	must(t, os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o600), "cert")
	must(t, os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600), "key")
	p := startProxy(t, shared.minio, proxyOptions{Env: map[string]string{
		"S3SEAL_BASE_DOMAINS": "s3.test",
		"S3SEAL_TLS_CERT":     filepath.Join(dir, "cert.pem"),
		"S3SEAL_TLS_KEY":      filepath.Join(dir, "key.pem"),
	}})
	port := strconv.Itoa(p.listenPort)
	pool := x509Pool(t, shared.ca.CertPEM)
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.Proxy = nil
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		d := &net.Dialer{}
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, prt, _ := net.SplitHostPort(addr)
			if host == "s3.test" || strings.HasSuffix(host, ".s3.test") {
				addr = net.JoinHostPort("127.0.0.1", prt)
			}
			return d.DialContext(ctx, network, addr)
		}
	})
	c := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("https://s3.test:" + port),
		UsePathStyle: false,
		Credentials:  credentials.NewStaticCredentialsProvider(p.AccessKey, p.SecretKey, ""),
		HTTPClient:   hc,
	})
	bucket := newBucket(t, shared.minio)
	body := randBytes(100_000)
	_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("v/host key"), Body: bytes.NewReader(body)})
	must(t, err, "PutObject virtual-hosted")
	if got := getBytes(t, c, bucket, "v/host key"); !bytes.Equal(got, body) {
		t.Error("virtual-hosted GET returned other bytes")
	}
	if got := getBytes(t, shared.minio.Client(t), bucket, "v/host key"); !bytes.Equal(got, body) {
		t.Error("the object is not where a path-style client finds it")
	}
	out, err := c.ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	must(t, err, "ListObjectsV2 virtual-hosted")
	if len(out.Contents) != 1 {
		t.Errorf("listed %d objects", len(out.Contents))
	}
}

// TestSidecarLoopbackTrust: an application that signs with its own AWS
// credentials is accepted from loopback when sidecar trust is on, and
// refused otherwise.
func TestSidecarLoopbackTrust(t *testing.T) {
	testbed.Require(t)
	bucket := newBucket(t, shared.minio)
	app := func(p *proxy) *s3.Client {
		return p.Client(t, func(o *s3.Options) {
			o.Credentials = credentials.NewStaticCredentialsProvider("AKIAAPPOWNKEY", "the-apps-own-secret", "")
		})
	}
	off := startProxy(t, shared.minio, proxyOptions{})
	_, err := app(off).PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("side"), Body: strings.NewReader("x")})
	if errorCode(err) != "InvalidAccessKeyId" {
		t.Fatalf("without sidecar trust: %v, want InvalidAccessKeyId", err)
	}
	on := startProxy(t, shared.minio, proxyOptions{TLS: "off", Env: map[string]string{
		"S3SEAL_SIDECAR_TRUST_LOOPBACK": "true", "S3SEAL_CLIENT_ACCESS_KEY_ID": "", "S3SEAL_CLIENT_SECRET_ACCESS_KEY": "",
	}})
	_, err = app(on).PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("side"), Body: strings.NewReader("sidecar")})
	must(t, err, "PutObject as a sidecar app")
	if got := getBytes(t, app(on), bucket, "side"); string(got) != "sidecar" {
		t.Errorf("GET as a sidecar app: %q", got)
	}
	if !strings.Contains(on.Log(), "sidecar trust is on") {
		t.Error("sidecar trust is not announced in the log")
	}
}
