package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/integration/testbed"
)

// scrape returns the samples of s3seal's /metrics whose name and labels
// start with prefix, summed.
func scrape(t testing.TB, p *proxy, prefix string) float64 {
	t.Helper()
	resp, err := http.Get(p.Admin + "/metrics")
	must(t, err, "GET /metrics")
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, prefix) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// TestMetricsAndAudit runs a scripted workload and checks that the
// counters moved and that the audit log has one record per key use and no
// key material.
func TestMetricsAndAudit(t *testing.T) {
	testbed.Require(t)
	up := shared.minio
	auditFile := filepath.Join(t.TempDir(), "audit.log")
	p, ring := startEnvelopeProxy(t, up, map[string]string{"S3SEAL_AUDIT": auditFile})
	c := p.Client(t)
	bucket := newBucket(t, up)
	const n = 20
	for i := 0; i < n; i++ {
		_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(fmt.Sprintf("m/%d", i)), Body: bytes.NewReader(randBytes(1000 + i))})
		must(t, err, "PutObject")
	}
	for i := 0; i < n; i++ {
		getBytes(t, c, bucket, fmt.Sprintf("m/%d", i))
	}
	bad := p.Client(t, func(o *s3.Options) { o.Credentials = aws.AnonymousCredentials{} })
	_, _ = bad.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("m/0")})

	checks := map[string]float64{
		`s3seal_requests_total{mode="envelope",op="PutObject",status="200"}`: n,
		`s3seal_requests_total{mode="envelope",op="GetObject",status="200"}`: n,
		`s3seal_auth_failures_total{reason="AccessDenied"}`:                  1,
	}
	for metric, want := range checks {
		if got := scrape(t, p, metric); got != want {
			t.Errorf("%s = %v, want %v", metric, got, want)
		}
	}
	if got := scrape(t, p, `s3seal_key_provider_calls_total{call="generate",outcome="ok",provider="local"}`); got != 1 {
		t.Errorf("generate calls %v, want 1 (one data key serves all %d writes)", got, n)
	}
	if got := scrape(t, p, "s3seal_datakey_cache_hits_total"); got < n-1 {
		t.Errorf("cache hits %v, want at least %d (every read)", got, n-1)
	}
	if got := scrape(t, p, "s3seal_datakey_reused_total"); got < n-1 {
		t.Errorf("reused data keys %v, want at least %d (every write after the first)", got, n-1)
	}
	if got := scrape(t, p, "s3seal_request_bytes_total"); got < float64(n*1000) {
		t.Errorf("request bytes %v", got)
	}
	if got := scrape(t, p, "s3seal_tls_certificate_expiry_timestamp_seconds"); got < 1e9 {
		t.Errorf("certificate expiry %v", got)
	}

	p.Stop(t) // flush the audit log
	b, err := os.ReadFile(auditFile)
	must(t, err, "read audit log")
	ringBytes, _ := os.ReadFile(ring)
	var seals, unseals int
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec map[string]any
		must(t, json.Unmarshal([]byte(line), &rec), "audit record "+line)
		if rec["client"] != p.AccessKey && rec["client"] != "env" {
			t.Errorf("audit record without the client: %s", line)
		}
		if rec["key_id"] == "" || rec["provider"] != "local" || rec["outcome"] != "ok" {
			t.Errorf("audit record %s", line)
		}
		switch rec["use"] {
		case "seal":
			seals++
		case "unseal":
			unseals++
		}
	}
	if seals != n || unseals != n {
		t.Errorf("audit: %d seal and %d unseal records, want %d each", seals, unseals, n)
	}
	for _, f := range strings.FieldsFunc(string(ringBytes), func(r rune) bool { return r == '\n' || r == ':' }) {
		if len(f) >= 40 && strings.Contains(string(b), f) {
			t.Fatal("the audit log contains key material from the key ring")
		}
	}
}

// TestEnvelopeKMSCalls writes and reads 1,000 objects through s3seal with
// AWS KMS keys (local-kms) and counts the KMS calls.
func TestEnvelopeKMSCalls(t *testing.T) {
	testbed.Require(t)
	if testing.Short() {
		t.Skip("-short: 2,000 requests")
	}
	up := shared.minio
	kms := testbed.StartLocalKMS(t)
	keyID, _ := kms.CreateKey(t)
	env := map[string]string{"S3SEAL_MODE": "envelope", "S3SEAL_KEYS": "aws-kms:" + keyID, "AWS_ENDPOINT_URL_KMS": kms.Endpoint, "S3SEAL_LOG_LEVEL": "warn"}
	p := startProxy(t, up, proxyOptions{Env: env})
	bucket := newBucket(t, up)
	const n, workers = 1000, 16
	run := func(c *s3.Client, put bool) {
		var wg sync.WaitGroup
		jobs := make(chan int)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range jobs {
					key := fmt.Sprintf("kms/%04d", i)
					if put {
						if _, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(key)}); err != nil {
							t.Errorf("PutObject: %v", err)
						}
						continue
					}
					out, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
					if err != nil {
						t.Errorf("GetObject: %v", err)
						continue
					}
					b, _ := io.ReadAll(out.Body)
					out.Body.Close()
					if string(b) != key {
						t.Errorf("%s: read %q", key, b)
					}
				}
			}()
		}
		for i := 0; i < n; i++ {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
	}
	run(p.Client(t), true)
	puts := scrape(t, p, "s3seal_key_provider_calls_total")
	// A fresh process reads them: its cache starts empty.
	p.Stop(t)
	p2 := startProxy(t, up, proxyOptions{Env: env})
	run(p2.Client(t), false)
	gets := scrape(t, p2, "s3seal_key_provider_calls_total")
	t.Logf("KMS calls: %v for %d PUTs, %v for %d GETs", puts, n, gets, n)
	if puts > 2 || gets > 2 || puts < 1 || gets < 1 {
		t.Errorf("KMS calls: %v for %d PUTs and %v for %d GETs, want 1..2 each", puts, n, gets, n)
	}
}
