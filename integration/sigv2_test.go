package integration

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/integration/testbed"
)

// TestSigV2Disabled checks that auth.sigv2 = false (S3SEAL_SIGV2) makes
// s3seal refuse Signature Version 2 requests, which it verifies by default
// (see the awscli-v1 and s3cmd-v2 rows of TestClientMatrix).
func TestSigV2Disabled(t *testing.T) {
	testbed.Require(t)
	p := startProxy(t, shared.minio, proxyOptions{Env: map[string]string{"S3SEAL_SIGV2": "false"}})
	bucket := newBucket(t, shared.minio)
	u, _ := url.Parse(p.Endpoint)
	home := t.TempDir()
	cfg := filepath.Join(home, "s3cfg")
	must(t, os.WriteFile(cfg, []byte(strings.Join([]string{
		"[default]", "access_key = " + p.AccessKey, "secret_key = " + p.SecretKey,
		"host_base = " + u.Host, "host_bucket = " + u.Host, "use_https = True",
		"ca_certs_file = " + p.CAFile, "check_ssl_certificate = True", "bucket_location = us-east-1",
		"signature_v2 = True", "",
	}, "\n")), 0o600), "s3cfg")
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	r := runTool(t, env, "", time.Minute, "s3cmd", "-c", cfg, "ls", "s3://"+bucket+"/")
	if r.code == 0 || !strings.Contains(r.out, "InvalidRequest") {
		t.Fatalf("s3cmd with SigV2 against S3SEAL_SIGV2=false: %s; want InvalidRequest", r)
	}
	// The same tool signing with SigV4 still works.
	cfg4 := filepath.Join(home, "s3cfg4")
	b, _ := os.ReadFile(cfg)
	must(t, os.WriteFile(cfg4, []byte(strings.Replace(string(b), "signature_v2 = True", "signature_v2 = False", 1)), 0o600), "s3cfg4")
	if r := runTool(t, env, "", time.Minute, "s3cmd", "-c", cfg4, "ls", "s3://"+bucket+"/"); r.code != 0 {
		t.Fatalf("s3cmd with SigV4: %s", r)
	}
}
