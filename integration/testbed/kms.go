package testbed

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

const kmsReadyTimeout = 15 * time.Second

// KMS is a running local-kms, an implementation of the AWS KMS API, served
// on 127.0.0.1 by the s3seal-localkms binary that install.sh builds. It
// accepts any credentials.
type KMS struct {
	Endpoint string // "http://127.0.0.1:PORT"
	Region   string // always "us-east-1"
	Dir      string // key database; kept across Stop and Restart

	proc *Process
}

// StartLocalKMS starts local-kms on a free 127.0.0.1 port with a fresh key
// database and waits until it answers. A Cleanup stops it.
func StartLocalKMS(t testing.TB) *KMS {
	t.Helper()
	k := &KMS{Region: Region, Dir: t.TempDir()}
	addr := loopback(FreePort(t))
	k.Endpoint = "http://" + addr
	k.proc = StartProcess(t, "s3seal-localkms", nil, "-addr", addr, "-data", k.Dir, "-region", Region)
	k.waitReady(t)
	return k
}

func (k *KMS) waitReady(t testing.TB) {
	t.Helper()
	start := time.Now()
	client, err := httpClient("")
	if err != nil {
		t.Fatalf("testbed: local-kms: %v", err)
	}
	defer client.CloseIdleConnections()
	// The KMS API answers only POST; a GET gets 405 once it serves.
	if err := waitHTTP(client, k.Endpoint+"/", kmsReadyTimeout, k.proc.Exited(), func(s int) bool { return s == http.StatusMethodNotAllowed }); err != nil {
		t.Fatalf("testbed: local-kms did not start: %v\nlast output:\n%s", err, k.proc.tail(tailBytes))
	}
	t.Logf("testbed: local-kms ready at %s in %v", k.Endpoint, time.Since(start).Round(time.Millisecond))
}

// Process returns local-kms's process, for fault tests.
func (k *KMS) Process() *Process { return k.proc }

// Client returns an aws-sdk-go-v2 KMS client for this server, with static
// dummy credentials; it does not read the AWS_* environment.
func (k *KMS) Client(t testing.TB) *kms.Client {
	t.Helper()
	return kms.New(kms.Options{
		Region:       k.Region,
		BaseEndpoint: aws.String(k.Endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("S3SEALTESTKMSACCESS", "local-kms-accepts-any-secret", ""),
		HTTPClient:   SDKHTTPClient(t, ""),
	})
}

// CreateKey creates a symmetric AES-256 encryption key and returns its ID
// and ARN.
func (k *KMS) CreateKey(t testing.TB) (keyID, arn string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := k.Client(t).CreateKey(ctx, &kms.CreateKeyInput{
		KeySpec:     types.KeySpecSymmetricDefault,
		KeyUsage:    types.KeyUsageTypeEncryptDecrypt,
		Description: aws.String("s3seal test key"),
	})
	if err != nil {
		t.Fatalf("testbed: local-kms: create key: %v", err)
	}
	return aws.ToString(out.KeyMetadata.KeyId), aws.ToString(out.KeyMetadata.Arn)
}

// Stop ends local-kms (SIGTERM, then SIGKILL after 10 s) and waits for it.
// The key database stays.
func (k *KMS) Stop(t testing.TB) {
	t.Helper()
	k.proc.Stop(t)
}

// Kill ends local-kms with SIGKILL, as a crash would, and waits for it.
func (k *KMS) Kill(t testing.TB) {
	t.Helper()
	k.proc.Kill(t)
}

// Restart stops local-kms if it runs and starts it again on the same port
// and key database, then waits until it answers.
func (k *KMS) Restart(t testing.TB) {
	t.Helper()
	k.proc.Restart(t)
	k.waitReady(t)
}
