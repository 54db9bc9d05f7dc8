package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/zap"

	"github.com/s3seal/s3seal/config"
	"github.com/s3seal/s3seal/crypto/keys/local"
	"github.com/s3seal/s3seal/deploy/demostore"
	"github.com/s3seal/s3seal/deploy/tlsconf"
)

// demo runs "s3seal demo": an embedded S3 store in a folder with s3seal in
// front of it, a self-check, and instructions for any S3 client.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("demo", flag.ContinueOnError)
	flags.SetOutput(stderr)
	dir := flags.String("dir", "s3seal-demo", "folder for the demo's store, key ring and certificate")
	listen := flags.String("listen", "127.0.0.1:8443", "address s3seal listens on")
	check := flags.Bool("check", false, "run the self-check and exit instead of serving")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if err := runDemo(ctx, *dir, *listen, *check, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "s3seal demo: %v\n", err)
		return 1
	}
	return 0
}

func runDemo(ctx context.Context, dir, listen string, checkOnly bool, stdout, stderr io.Writer) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	store, err := demostore.Start(filepath.Join(dir, "store"))
	if err != nil {
		return err
	}
	defer store.Close()
	const bucket = "demo"
	if err := store.CreateBucket(bucket); err != nil {
		return fmt.Errorf("creating bucket: %w", err)
	}
	accessKey, secretKey := "demo", randomSecret()
	ring := filepath.Join(dir, "keyring")
	if _, err := os.Stat(ring); errors.Is(err, fs.ErrNotExist) {
		if _, err := local.Create(ring, rand.Reader, time.Now()); err != nil {
			return fmt.Errorf("creating the demo key ring: %w", err)
		}
	}
	admin, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	cfg := &config.Config{
		Listen:      listen,
		AdminListen: admin,
		DataDir:     filepath.Join(dir, "data"),
		Mode:        "envelope",
		Keys:        "local:" + ring,
		Clients:     []config.Client{{Name: "demo", AccessKeyID: accessKey, SecretAccessKey: config.Secret(secretKey)}},
		Upstream: config.Upstream{
			Endpoint:        store.Endpoint,
			Region:          "us-east-1",
			AccessKeyID:     "store",
			SecretAccessKey: "store-secret",
			// The embedded store does not take aws-chunked trailers.
			Checksum: "none",
		},
		Log: config.Log{Level: "warn", Format: "console"},
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	a, err := newApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		return err
	}
	defer a.Close(5 * time.Second)
	endpoint := "https://" + a.server.Addr().String()
	caFile, _ := tlsconf.SelfSignedPaths(cfg.DataDir)
	if err := demoCheck(ctx, endpoint, caFile, accessKey, secretKey, bucket, store); err != nil {
		return fmt.Errorf("self-check failed: %w", err)
	}
	fmt.Fprintf(stdout, `s3seal demo is running.

  endpoint           %s
  access key id      %s
  secret access key  %s
  region             us-east-1
  bucket             %s
  TLS certificate    %s   (self-signed; trust it with AWS_CA_BUNDLE)
  stored files       %s

Self-check passed: an object written through s3seal was read back intact,
and the store's file for it holds only ciphertext.

Try it with the AWS CLI:

  export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_DEFAULT_REGION=us-east-1
  export AWS_CA_BUNDLE=%s
  echo hello > hello.txt
  aws --endpoint-url %s s3 cp hello.txt s3://%s/
  aws --endpoint-url %s s3 ls s3://%s/
  aws --endpoint-url %s s3 cp s3://%s/hello.txt -

The store keeps ciphertext; look at what it holds:

  head -c 200 %s | od -c | head

Objects are encrypted with the key ring %s (back it up:
nothing stored can be read without it).

Press Ctrl-C to stop.
`, endpoint, accessKey, secretKey, bucket, caFile, filepath.Join(store.Dir, "buckets", bucket),
		accessKey, secretKey, caFile, endpoint, bucket, endpoint, bucket, endpoint, bucket,
		filepath.Join(store.Dir, "buckets", bucket, "hello.txt"), ring)
	if checkOnly {
		return nil
	}
	select {
	case <-ctx.Done():
	case err := <-a.server.Errors():
		return err
	}
	log.Info("demo stopped", zap.String("dir", dir))
	return nil
}

// demoCheck writes and reads an object through s3seal with an ordinary
// SDK client, and checks what the store holds.
func demoCheck(ctx context.Context, endpoint, caFile, ak, sk, bucket string, store *demostore.Store) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.Proxy = nil
		tr.TLSClientConfig = tlsTrusting(pem)
	})
	c := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(ak, sk, ""),
		HTTPClient:   hc,
	})
	want := []byte("s3seal demo self-check " + randomSecret())
	key := "self-check.txt"
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(want)}); err != nil {
		return err
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return err
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return errors.New("read back other bytes than were written")
	}
	stored, err := os.ReadFile(store.ObjectPath(bucket, key))
	if err != nil {
		return fmt.Errorf("the store holds no file for the object: %w", err)
	}
	if bytes.Contains(stored, want[:20]) {
		return errors.New("the store holds the plaintext")
	}
	return nil
}

func randomSecret() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// tlsTrusting returns a client TLS configuration trusting the PEM
// certificates given.
func tlsTrusting(pem []byte) *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}
