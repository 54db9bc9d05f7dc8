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
	"strings"
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

const demoUsage = `Usage: s3seal demo [--dir DIR] [--listen ADDR] [--check]

Runs s3seal in envelope mode in front of an embedded S3 store that keeps
its files in DIR/store, with a key ring made on first use (DIR/keyring),
checks itself, and prints an endpoint, credentials and commands to try
with any S3 client. The client secret and the configuration (for
"s3seal inspect" and "s3seal decrypt", which read the store directly) are
kept in DIR/s3seal.yaml, so they stay the same across restarts.

Flags:
`

// demo runs "s3seal demo": an embedded S3 store in a folder with s3seal in
// front of it, a self-check, and instructions for any S3 client.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("demo", flag.ContinueOnError)
	flags.SetOutput(stderr)
	dir := flags.String("dir", "s3seal-demo", "`folder` for the demo's store, key ring, configuration and certificate")
	listen := flags.String("listen", "127.0.0.1:8443", "`address` s3seal listens on")
	check := flags.Bool("check", false, "run the self-check and exit instead of serving")
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), demoUsage)
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "s3seal demo: unexpected argument %q\n", flags.Arg(0))
		return 2
	}
	if err := runDemo(ctx, *dir, *listen, *check, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "s3seal demo: %v\n", err)
		return 1
	}
	return 0
}

// demoBucket and demoAccessKey are the demo's bucket and client identity;
// demoSelfCheckKey is the object the self-check writes.
const (
	demoBucket       = "demo"
	demoAccessKey    = "demo"
	demoSelfCheckKey = "self-check.txt"
)

func runDemo(ctx context.Context, dir, listen string, checkOnly bool, stdout, stderr io.Writer) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	confFile := filepath.Join(dir, "s3seal.yaml")
	secretKey, err := demoSecret(confFile)
	if err != nil {
		return err
	}
	store, err := demostore.Start(filepath.Join(dir, "store"))
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.CreateBucket(demoBucket); err != nil {
		return fmt.Errorf("creating bucket: %w", err)
	}
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
		Clients:     []config.Client{{Name: "demo", AccessKeyID: demoAccessKey, SecretAccessKey: config.Secret(secretKey)}},
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
		return fmt.Errorf("--listen: %w", err)
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
		_ = a.Close(time.Second)
		return fmt.Errorf("cannot start: %w", explainListenError(err, []listenerSetting{{field: "--listen", addr: listen}}))
	}
	defer a.Close(5 * time.Second)
	endpoint := "https://" + a.server.Addr().String()
	caFile, _ := tlsconf.SelfSignedPaths(cfg.DataDir)
	if err := demoCheck(ctx, endpoint, caFile, demoAccessKey, secretKey, demoBucket, store); err != nil {
		return fmt.Errorf("self-check failed: %w", err)
	}
	if checkOnly {
		fmt.Fprintf(stdout, `s3seal demo self-check passed: s3seal (%s, envelope mode) wrote %s/%s
to the embedded store in %s, read it back intact, and the store's file for
it holds only ciphertext. The demo has stopped; run it without --check to
get an endpoint and commands to try.
`, endpoint, demoBucket, demoSelfCheckKey, store.Dir)
		return nil
	}
	// Written once the demo serves (and not by --check), so that a start
	// that fails leaves a running demo's file alone.
	if err := writeDemoConfig(confFile, cfg, secretKey); err != nil {
		return err
	}
	self := selfCommand()
	rel := displayPath(dir)
	fmt.Fprintf(stdout, `s3seal demo is running.

  endpoint           %[1]s
  access key id      %[2]s
  secret access key  %[3]s
  region             us-east-1
  bucket             %[4]s
  TLS certificate    %[5]s   (self-signed; trust it with AWS_CA_BUNDLE)
  stored files       %[6]s

The secret is kept in %[7]s/s3seal.yaml: it stays the same when the demo
restarts.

Self-check passed: s3seal wrote %[4]s/%[8]s (you will see it in the
bucket; delete it if you like), read it back intact, and the store's file
for it holds only ciphertext.

Try it with the AWS CLI:

  export AWS_ACCESS_KEY_ID=%[2]s AWS_SECRET_ACCESS_KEY=%[3]s AWS_DEFAULT_REGION=us-east-1
  export AWS_CA_BUNDLE=%[5]s
  echo hello > hello.txt
  aws --endpoint-url %[1]s s3 cp hello.txt s3://%[4]s/
  aws --endpoint-url %[1]s s3 ls s3://%[4]s/
  aws --endpoint-url %[1]s s3 cp s3://%[4]s/hello.txt -

The store keeps ciphertext; look at what it holds:

  head -c 200 %[9]s | od -c | head

s3seal's own metadata field (which key wraps the object, sizes) is stored
beside the object but hidden from S3 clients. Read it from the store, and
decrypt the stored bytes without going through s3seal, while the demo runs:

  %[10]s inspect --config %[7]s/s3seal.yaml --bucket %[4]s --key hello.txt
  %[10]s decrypt --config %[7]s/s3seal.yaml --bucket %[4]s --key hello.txt -

Objects are encrypted with the key ring %[11]s (back it up:
nothing stored can be read without it).

Press Ctrl-C to stop.
`, endpoint, demoAccessKey, secretKey, demoBucket, caFile, filepath.Join(store.Dir, "buckets", demoBucket),
		rel, demoSelfCheckKey, filepath.Join(store.Dir, "buckets", demoBucket, "hello.txt"), self, ring)
	select {
	case <-ctx.Done():
	case err := <-a.server.Errors():
		return err
	}
	log.Info("demo stopped", zap.String("dir", dir))
	return nil
}

// demoSecret returns the demo client's secret: the one in the demo's
// configuration file when there is one, else a new one.
func demoSecret(confFile string) (string, error) {
	b, err := os.ReadFile(confFile)
	if errors.Is(err, fs.ErrNotExist) {
		return randomSecret(), nil
	}
	if err != nil {
		return "", err
	}
	var c config.Config
	if err := config.Parse(b, &c); err != nil {
		return "", fmt.Errorf("%s: %w (remove it to start afresh with a new secret)", confFile, err)
	}
	for _, cl := range c.Clients {
		if cl.AccessKeyID == demoAccessKey && len(cl.SecretAccessKey.Value()) >= 8 {
			return cl.SecretAccessKey.Value(), nil
		}
	}
	return randomSecret(), nil
}

// writeDemoConfig writes the demo's configuration (mode 0600: it holds
// the client secret), so that its secret survives restarts and the
// offline commands reach its store with --config.
func writeDemoConfig(path string, c *config.Config, secret string) error {
	doc := fmt.Sprintf(`# The configuration "s3seal demo" runs with, rewritten at every start (the
# embedded store's port changes). "s3seal inspect" and "s3seal decrypt" with
# --config %[1]s --bucket B --key K read the demo's store with it while the
# demo runs.
listen: %[2]q
data_dir: %[3]q
mode: envelope
keys: %[4]q
clients:
  - name: demo
    access_key_id: %[5]q
    secret_access_key: %[6]q
upstream:
  endpoint: %[7]q
  region: us-east-1
  access_key_id: %[8]q
  secret_access_key: %[9]q
  checksum: none
log:
  level: warn
  format: console
`, filepath.Base(path), c.Listen, c.DataDir, c.Keys, demoAccessKey, secret, c.Upstream.Endpoint,
		c.Upstream.AccessKeyID, c.Upstream.SecretAccessKey.Value())
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(doc), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// selfCommand is how to run this binary again in printed commands: "go
// run ." when it was started that way.
func selfCommand() string {
	if strings.Contains(os.Args[0], "go-build") || strings.HasSuffix(os.Args[0], ".test") {
		return "go run ."
	}
	return os.Args[0]
}

// displayPath shows dir relative to the working directory when it is
// inside it.
func displayPath(dir string) string {
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, dir); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return dir
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
	key := demoSelfCheckKey
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
