package integration

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/integration/testbed"
)

// sigV2Get sends GET /bucket/ signed with Signature Version 2 (an
// independent, minimal signer: no sub-resources, no x-amz-* headers).
func sigV2Get(t *testing.T, p *proxy, bucket string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.Endpoint+"/"+bucket+"/", nil)
	must(t, err, "request")
	date := time.Now().UTC().Format(http.TimeFormat)
	req.Header.Set("Date", date)
	mac := hmac.New(sha1.New, []byte(p.SecretKey))
	io.WriteString(mac, "GET\n\n\n"+date+"\n/"+bucket+"/")
	req.Header.Set("Authorization", "AWS "+p.AccessKey+":"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509Pool(t, mustRead(t, p.CAFile)), MinVersion: tls.VersionTLS12}}, Timeout: time.Minute}
	resp, err := hc.Do(req)
	must(t, err, "GET")
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestSigV2Disabled checks that auth.sigv2 = false (S3SEAL_SIGV2) makes
// s3seal refuse Signature Version 2 requests, which it verifies by default
// (see also the awscli-v1 and s3cmd-v2 rows of TestClientMatrix).
func TestSigV2Disabled(t *testing.T) {
	testbed.Require(t)
	bucket := newBucket(t, shared.minio)
	on := startProxy(t, shared.minio, proxyOptions{})
	if status, body := sigV2Get(t, on, bucket); status != http.StatusOK || !strings.Contains(body, "<ListBucketResult") {
		t.Fatalf("SigV2 with the default settings: %d %s", status, body)
	}
	off := startProxy(t, shared.minio, proxyOptions{Env: map[string]string{"S3SEAL_SIGV2": "false"}})
	status, body := sigV2Get(t, off, bucket)
	if status != http.StatusBadRequest || !strings.Contains(body, "<Code>InvalidRequest</Code>") || !strings.Contains(body, "AWS4-HMAC-SHA256") {
		t.Fatalf("SigV2 with S3SEAL_SIGV2=false: %d %s, want 400 InvalidRequest naming AWS4-HMAC-SHA256", status, body)
	}
	// s3cmd configured for SigV2 reads that answer as S3's and retries
	// with SigV4, so users of the setting are not locked out.
	u, _ := url.Parse(off.Endpoint)
	home := t.TempDir()
	cfg := filepath.Join(home, "s3cfg")
	must(t, os.WriteFile(cfg, []byte(strings.Join([]string{
		"[default]", "access_key = " + off.AccessKey, "secret_key = " + off.SecretKey,
		"host_base = " + u.Host, "host_bucket = " + u.Host, "use_https = True",
		"ca_certs_file = " + off.CAFile, "check_ssl_certificate = True", "bucket_location = us-east-1",
		"signature_v2 = True", "",
	}, "\n")), 0o600), "s3cfg")
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	if r := runTool(t, env, "", time.Minute, "s3cmd", "-c", cfg, "ls", "s3://"+bucket+"/"); r.code != 0 {
		t.Fatalf("s3cmd (SigV2, falling back to SigV4) against S3SEAL_SIGV2=false: %s", r)
	}
}
