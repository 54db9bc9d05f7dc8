package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/integration/testbed"
)

// TestACMEReplicasEndToEnd runs two s3seal processes with ACME certificates
// from Pebble and certificate storage shared through MinIO: exactly one
// order is placed, both serve the same certificate, and an S3 client that
// trusts Pebble's root completes a PUT and a GET through each.
func TestACMEReplicasEndToEnd(t *testing.T) {
	testbed.Require(t)
	peb := testbed.StartPebble(t)
	const domain = "s3.replicas.example.test"
	certBucket := newBucket(t, shared.minio)
	dataBucket := newBucket(t, shared.minio)
	env := func(httpListen string) map[string]string {
		e := map[string]string{
			"S3SEAL_TLS":                "acme",
			"S3SEAL_ACME_DOMAINS":       domain,
			"S3SEAL_ACME_EMAIL":         "ops@example.test",
			"S3SEAL_ACME_CA":            peb.Directory,
			"S3SEAL_ACME_CA_ROOT":       peb.CAFile,
			"S3SEAL_ACME_CHALLENGES":    "http-01",
			"S3SEAL_ACME_ALT_HTTP_PORT": strconv.Itoa(peb.HTTPPort),
			"S3SEAL_CERT_STORAGE":       "s3:" + certBucket + "/certmagic/",
		}
		if httpListen != "" {
			e["S3SEAL_HTTP_LISTEN"] = httpListen
		}
		return e
	}
	// Replica A answers Pebble's HTTP-01 validation; replica B does not
	// listen there: if B wins the lock, A answers B's challenge from the
	// shared storage.
	a := startACMEProxy(t, env("127.0.0.1:"+strconv.Itoa(peb.HTTPPort)))
	b := startACMEProxy(t, env(""))
	roots := x509Pool(t, peb.IssuerRoots(t))
	leafA := servedLeaf(t, a, domain, roots)
	leafB := servedLeaf(t, b, domain, roots)
	if leafA.SerialNumber.Cmp(leafB.SerialNumber) != 0 {
		t.Errorf("replicas serve different certificates: %v and %v", leafA.SerialNumber, leafB.SerialNumber)
	}
	orders := strings.Count(a.Log(), "certificate obtained successfully") + strings.Count(b.Log(), "certificate obtained successfully")
	if orders != 1 {
		t.Errorf("%d certificates obtained by the two replicas, want 1", orders)
	}
	for i, p := range []*proxy{a, b} {
		c := acmeClient(t, p, domain, roots)
		key := "acme/" + strconv.Itoa(i)
		body := randBytes(70_000)
		_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(dataBucket), Key: aws.String(key), Body: bytes.NewReader(body)})
		must(t, err, "PutObject over the ACME certificate")
		if got := getBytes(t, c, dataBucket, key); !bytes.Equal(got, body) {
			t.Error("GET over the ACME certificate returned other bytes")
		}
	}
	// The storage prefix holds private keys: clients are refused it.
	_, err := acmeClient(t, a, domain, roots).GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(certBucket), Key: aws.String("certmagic/anything")})
	if errorCode(err) != "AccessDenied" {
		t.Errorf("reading the certificate storage through s3seal: %v, want AccessDenied", err)
	}
}

// startACMEProxy starts s3seal with ACME settings and waits until it has a
// certificate (readiness).
func startACMEProxy(t *testing.T, env map[string]string) *proxy {
	t.Helper()
	p := &proxy{AccessKey: "client-" + randHex(4), SecretKey: "secret-" + randHex(16), Upstream: shared.minio, DataDir: t.TempDir(), listenPort: testbed.FreePort(t)}
	admin := testbed.FreePort(t)
	all := map[string]string{
		"S3SEAL_LISTEN":                   "127.0.0.1:" + strconv.Itoa(p.listenPort),
		"S3SEAL_ADMIN_LISTEN":             "127.0.0.1:" + strconv.Itoa(admin),
		"S3SEAL_DATA_DIR":                 p.DataDir,
		"S3SEAL_CLIENT_ACCESS_KEY_ID":     p.AccessKey,
		"S3SEAL_CLIENT_SECRET_ACCESS_KEY": p.SecretKey,
		"AWS_ENDPOINT_URL_S3":             shared.minio.Endpoint,
		"AWS_REGION":                      shared.minio.Region,
		"AWS_ACCESS_KEY_ID":               shared.minio.AccessKey,
		"AWS_SECRET_ACCESS_KEY":           shared.minio.SecretKey,
		"AWS_CA_BUNDLE":                   shared.minio.CAFile,
		"HOME":                            p.DataDir,
	}
	for k, v := range env {
		all[k] = v
	}
	var kv []string
	for k, v := range all {
		kv = append(kv, k+"="+v)
	}
	p.Admin = "http://127.0.0.1:" + strconv.Itoa(admin)
	p.Endpoint = "https://127.0.0.1:" + strconv.Itoa(p.listenPort)
	p.Process = testbed.StartProcess(t, shared.bin, kv, "serve")
	waitReady(t, p.Admin+"/readyz", 90*time.Second)
	return p
}

// acmeClient is an SDK client that reaches s3seal under the ACME name and
// trusts roots.
func acmeClient(t *testing.T, p *proxy, domain string, roots *x509.CertPool) *s3.Client {
	t.Helper()
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.Proxy = nil
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		d := &net.Dialer{}
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, "127.0.0.1:"+strconv.Itoa(p.listenPort))
		}
	})
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("https://" + domain + ":" + strconv.Itoa(p.listenPort)),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(p.AccessKey, p.SecretKey, ""),
		HTTPClient:   hc,
	})
}

// servedLeaf returns the certificate s3seal serves for domain, verified
// against roots.
func servedLeaf(t *testing.T, p *proxy, domain string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(p.listenPort), &tls.Config{ServerName: domain, RootCAs: roots, MinVersion: tls.VersionTLS12})
	must(t, err, "TLS handshake with s3seal under the ACME name")
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}
