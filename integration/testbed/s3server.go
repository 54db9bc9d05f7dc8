package testbed

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

const (
	minioReadyTimeout     = 30 * time.Second
	versitygwReadyTimeout = 15 * time.Second
)

// MinIOOptions chooses how [StartMinIO] runs MinIO. The zero value is plain
// HTTP without a KMS.
type MinIOOptions struct {
	// TLS serves HTTPS with a certificate for 127.0.0.1 and localhost from a
	// fresh CA (S3Server.CAFile). MinIO refuses SSE-C over plain HTTP.
	TLS bool
	// KMS sets a random MINIO_KMS_SECRET_KEY so that SSE-S3 and SSE-KMS work;
	// without it MinIO answers them with 501 NotImplemented.
	KMS bool
}

// VersitygwOptions chooses how [StartVersitygw] runs versitygw. The zero
// value is plain HTTP.
type VersitygwOptions struct {
	// TLS serves HTTPS with a certificate for 127.0.0.1 and localhost from a
	// fresh CA (S3Server.CAFile).
	TLS bool
	// IAM runs versitygw's internal IAM service (--iam-dir), so that its
	// admin API on the S3 port (PATCH /create-user, /list-users, ...)
	// manages real accounts: the set-up of a store whose administration
	// shares the S3 endpoint.
	IAM bool
	// AccessLog records every request versitygw serves, S3 and admin, in
	// S3Server.AccessLog and S3Server.AdminAccessLog: what reached the store.
	AccessLog bool
}

// S3Server is a running S3 server of the test bed.
type S3Server struct {
	Name      string // "minio" or "versitygw"
	Endpoint  string // "https://127.0.0.1:PORT" or "http://127.0.0.1:PORT"
	Region    string // always "us-east-1"
	AccessKey string // root access key, random per start
	SecretKey string // root secret key, random per start; never log it
	CAFile    string // PEM of the CA that signed its TLS certificate; "" for plain HTTP
	Dir       string // data directory; kept across Kill and Restart
	// AccessLog and AdminAccessLog are versitygw's request logs (S3 API and
	// admin API) when started with VersitygwOptions.AccessLog; "" otherwise.
	AccessLog, AdminAccessLog string

	proc  *Process
	ready string // URL that answers 200 once the server serves requests
}

// StartMinIO starts MinIO on a free 127.0.0.1 port with a fresh data
// directory and random root credentials, and waits until it is ready (its
// /minio/health/ready answers 200). A Cleanup stops it.
func StartMinIO(t testing.TB, o MinIOOptions) *S3Server {
	t.Helper()
	root := t.TempDir()
	s := &S3Server{Name: "minio", Region: Region, Dir: filepath.Join(root, "data")}
	s.AccessKey, s.SecretKey = newCredentials()
	ports := freePorts(t, 2)
	scheme := "http"
	args := []string{"server", s.Dir,
		"--address", loopback(ports[0]),
		"--console-address", loopback(ports[1]),
		"--certs-dir", filepath.Join(root, "certs"),
	}
	if o.TLS {
		scheme = "https"
		ca := NewCA(t, "s3seal test CA for minio")
		s.CAFile = ca.WriteFiles(t, root, "ca.pem", "certs/public.crt", "certs/private.key", "127.0.0.1", "localhost")
		if err := os.MkdirAll(filepath.Join(root, "certs", "CAs"), 0o700); err != nil {
			t.Fatalf("testbed: %v", err)
		}
		if err := os.WriteFile(filepath.Join(root, "certs", "CAs", "ca.crt"), ca.CertPEM, 0o644); err != nil {
			t.Fatalf("testbed: %v", err)
		}
	}
	s.Endpoint = scheme + "://" + loopback(ports[0])
	s.ready = s.Endpoint + "/minio/health/ready"
	env := []string{
		"MINIO_ROOT_USER=" + s.AccessKey,
		"MINIO_ROOT_PASSWORD=" + s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_REGION=" + Region,
	}
	if o.KMS {
		key := make([]byte, 32)
		rand.Read(key)
		env = append(env, "MINIO_KMS_SECRET_KEY=s3seal-test-key:"+base64.StdEncoding.EncodeToString(key))
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		t.Fatalf("testbed: %v", err)
	}
	s.proc = StartProcess(t, "minio", env, args...)
	s.waitReady(t, minioReadyTimeout, ok200)
	return s
}

// StartVersitygw starts versitygw (posix backend, with versioning) on a free
// 127.0.0.1 port with a fresh data directory and random root credentials,
// and waits until it answers HTTP. At most one VersitygwOptions is used. A
// Cleanup stops it.
//
// versitygw accepts SSE headers but encrypts nothing: never use it to show
// that server-side encryption happened.
func StartVersitygw(t testing.TB, opts ...VersitygwOptions) *S3Server {
	t.Helper()
	var o VersitygwOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	root := t.TempDir()
	s := &S3Server{Name: "versitygw", Region: Region, Dir: filepath.Join(root, "data")}
	s.AccessKey, s.SecretKey = newCredentials()
	port := FreePort(t)
	versions := filepath.Join(root, "versions")
	for _, d := range []string{s.Dir, versions} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatalf("testbed: %v", err)
		}
	}
	args := []string{"--port", loopback(port), "--region", Region, "--quiet"}
	if o.IAM {
		iam := filepath.Join(root, "iam")
		if err := os.MkdirAll(iam, 0o700); err != nil {
			t.Fatalf("testbed: %v", err)
		}
		args = append(args, "--iam-dir", iam)
	}
	if o.AccessLog {
		s.AccessLog = filepath.Join(root, "access.log")
		s.AdminAccessLog = filepath.Join(root, "admin-access.log")
		args = append(args, "--access-log", s.AccessLog, "--admin-access-log", s.AdminAccessLog)
	}
	scheme := "http"
	if o.TLS {
		scheme = "https"
		ca := NewCA(t, "s3seal test CA for versitygw")
		s.CAFile = ca.WriteFiles(t, root, "ca.pem", "cert.pem", "key.pem", "127.0.0.1", "localhost")
		args = append(args, "--cert", filepath.Join(root, "cert.pem"), "--key", filepath.Join(root, "key.pem"))
	}
	args = append(args, "posix", "--versioning-dir", versions, s.Dir)
	s.Endpoint = scheme + "://" + loopback(port)
	s.ready = s.Endpoint + "/"
	env := []string{
		"ROOT_ACCESS_KEY_ID=" + s.AccessKey,
		"ROOT_SECRET_ACCESS_KEY=" + s.SecretKey,
	}
	s.proc = StartProcess(t, "versitygw", env, args...)
	s.waitReady(t, versitygwReadyTimeout, anyStatus)
	return s
}

func ok200(status int) bool { return status == http.StatusOK }

func (s *S3Server) waitReady(t testing.TB, timeout time.Duration, ok func(int) bool) {
	t.Helper()
	start := time.Now()
	client, err := httpClient(s.CAFile)
	if err != nil {
		t.Fatalf("testbed: %s: %v", s.Name, err)
	}
	defer client.CloseIdleConnections()
	if err := waitHTTP(client, s.ready, timeout, s.proc.Exited(), ok); err != nil {
		t.Fatalf("testbed: %s did not start: %v\nlast output:\n%s", s.Name, err, s.proc.tail(tailBytes))
	}
	if s.Name == "minio" {
		// health/ready can answer before the object layer takes requests
		// signed with the root credentials; make one to be sure.
		s.waitListBuckets(t, time.Until(start.Add(timeout)))
	}
	t.Logf("testbed: %s ready at %s in %v", s.Name, s.Endpoint, time.Since(start).Round(time.Millisecond))
}

func (s *S3Server) waitListBuckets(t testing.TB, timeout time.Duration) {
	t.Helper()
	c := s.Client(t)
	deadline := time.Now().Add(max(timeout, time.Second))
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || !s.proc.Running() {
			t.Fatalf("testbed: %s did not serve ListBuckets: %v\nlast output:\n%s", s.Name, err, s.proc.tail(tailBytes))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Port returns the TCP port the server listens on.
func (s *S3Server) Port() int {
	return urlPort(s.Endpoint)
}

// Process returns the server's process, for fault tests that need more than
// Kill and Restart.
func (s *S3Server) Process() *Process { return s.proc }

// Client returns an aws-sdk-go-v2 S3 client that talks straight to the
// server: path-style addressing, the root credentials, region us-east-1 and,
// for HTTPS, trust in CAFile only. It does not read the AWS_* environment.
func (s *S3Server) Client(t testing.TB) *s3.Client {
	t.Helper()
	return s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		HTTPClient:   SDKHTTPClient(t, s.CAFile),
	})
}

// SDKHTTPClient returns an HTTP client for aws-sdk-go-v2 options that trusts
// the CA in caFile ("" keeps the system roots) and uses no proxy. It is a
// BuildableClient because config.LoadDefaultConfig refuses a plain
// *http.Client when AWS_CA_BUNDLE is set; given this one, it adds that
// bundle to the trusted roots.
func SDKHTTPClient(t testing.TB, caFile string) *awshttp.BuildableClient {
	t.Helper()
	var cfg *tls.Config
	if caFile != "" {
		pool, err := loadPool(caFile)
		if err != nil {
			t.Fatalf("testbed: %v", err)
		}
		cfg = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.Proxy = nil
		if cfg != nil {
			tr.TLSClientConfig = cfg
		}
	})
}

// CreateBucket creates the bucket name and fails the test if it cannot.
func (s *S3Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client(t).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("testbed: %s: create bucket %q: %v", s.Name, name, err)
	}
}

// Stop ends the server (SIGTERM, then SIGKILL after 10 s) and waits for it.
// The data directory stays until the test ends.
func (s *S3Server) Stop(t testing.TB) {
	t.Helper()
	s.proc.Stop(t)
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
func (s *S3Server) Kill(t testing.TB) {
	t.Helper()
	s.proc.Kill(t)
}

// Restart stops the server if it runs and starts it again on the same port,
// data directory and credentials, then waits until it is ready.
func (s *S3Server) Restart(t testing.TB) {
	t.Helper()
	s.proc.Restart(t)
	if s.Name == "minio" {
		s.waitReady(t, minioReadyTimeout, ok200)
	} else {
		s.waitReady(t, versitygwReadyTimeout, anyStatus)
	}
}
