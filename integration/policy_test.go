package integration

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/integration/testbed"
)

// TestPolicyTable runs s3seal with overlapping rules and checks which one
// applies, what deny rules and weaker client headers get, and the stored
// encryption.
func TestPolicyTable(t *testing.T) {
	testbed.Require(t)
	up := shared.minio
	ring, master := sseKeyring(t)
	p := startProxy(t, up, proxyOptions{Env: sseConfig(t, `
keys: local:`+ring+`
policies:
  - name: vault
    bucket: "pol-*"
    prefix: secret/
    mode: deny
  - name: reports-kms
    bucket: "pol-*"
    prefix: reports/
    mode: sse-kms
    kms_key_id: `+minioKMSKey+`
  - name: keys-c
    bucket: "pol-*"
    prefix: customer/
    mode: sse-c
  - name: pol-s3
    bucket: "pol-*"
    mode: sse-s3
`, map[string]string{"S3SEAL_MODE": "sse-kms"})})
	c := p.Client(t)
	bucket := "pol-" + randHex(5)
	up.CreateBucket(t, bucket)
	other := newBucket(t, up) // no rule: the S3SEAL_MODE default (sse-kms)
	put := func(bucket, key string, opt func(*s3.PutObjectInput)) error {
		in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader([]byte("policy data"))}
		if opt != nil {
			opt(in)
		}
		_, err := c.PutObject(ctx(t), in)
		return err
	}
	// Overlapping rules: the first match applies.
	for key, mode := range map[string]string{"reports/q1.csv": "sse-kms", "customer/c.json": "sse-c", "misc/x": "sse-s3", "reportsX": "sse-s3"} {
		must(t, put(bucket, key, nil), "PutObject ", key)
		checkStored(t, up, ring, mode, bucket, key, []byte("policy data"), master)
	}
	must(t, put(other, "k", nil), "PutObject default")
	checkStored(t, up, ring, "sse-kms", other, "k", []byte("policy data"), master)

	// The deny rule.
	err := put(bucket, "secret/plans", nil)
	if errorCode(err) != "AccessDenied" || !strings.Contains(err.Error(), `"vault"`) {
		t.Errorf("deny rule: %v", err)
	}
	_, err = c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("secret/plans")})
	if errorCode(err) != "AccessDenied" {
		t.Errorf("deny rule on GET: %v", err)
	}
	if objectExists(t, up, bucket, "secret/plans") {
		t.Error("a denied write reached the store")
	}
	// A client header weaker than the rule is refused; a stronger one kept.
	err = put(bucket, "reports/weak", func(in *s3.PutObjectInput) { in.ServerSideEncryption = types.ServerSideEncryptionAes256 })
	if errorCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "reports-kms") || !strings.Contains(err.Error(), "weaker") {
		t.Errorf("weaker client header: %v", err)
	}
	if objectExists(t, up, bucket, "reports/weak") {
		t.Error("a refused write reached the store")
	}
	err = put(bucket, "misc/strong", func(in *s3.PutObjectInput) { in.ServerSideEncryption = types.ServerSideEncryptionAwsKms })
	must(t, err, "stronger client header")
	checkStored(t, up, ring, "sse-kms", bucket, "misc/strong", []byte("policy data"), master)
	// SSE-C keys from the application are refused.
	err = put(bucket, "customer/own-key", func(in *s3.PutObjectInput) {
		in.SSECustomerAlgorithm = aws.String("AES256")
		in.SSECustomerKey = aws.String("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
		in.SSECustomerKeyMD5 = aws.String("xNpMBdj4RiwE7OZ5y1ljWw==")
	})
	if errorCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "keys-c") {
		t.Errorf("client SSE-C key: %v", err)
	}
	// Reads and listings pass through under an encrypting rule.
	out, err := c.ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	must(t, err, "ListObjectsV2")
	if len(out.Contents) != 5 {
		t.Errorf("listed %d objects, want 5", len(out.Contents))
	}
}

// TestPolicyInvalidRuleFailsStart checks that s3seal refuses to start with
// an invalid rule and names the rule and the field.
func TestPolicyInvalidRuleFailsStart(t *testing.T) {
	testbed.Require(t)
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"misplaced option", `
policies:
  - name: fine
    bucket: a
    mode: sse-s3
  - name: broken
    bucket: b
    mode: sse-s3
    kms_key_id: alias/x
`, []string{`policies[1].kms_key_id: rule "broken"`}},
		{"unknown mode", `
policies:
  - name: typo
    mode: sse-kmz
`, []string{`policies[0].mode: rule "typo": unknown mode "sse-kmz"`}},
		{"sse-c key not in the key ring", `
keys: local:RING
policies:
  - name: archive
    bucket: a
    mode: sse-c
    sse_c_key: not-in-ring
`, []string{"archive", "sse_c_key", "not in the key ring"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ring, _ := sseKeyring(t)
			env := sseConfig(t, strings.ReplaceAll(tc.yaml, "RING", ring), nil)
			cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(cctx, shared.bin, "serve")
			cmd.Env = []string{
				"S3SEAL_CONFIG=" + env["S3SEAL_CONFIG"],
				"S3SEAL_LISTEN=127.0.0.1:" + itoaPort(testbed.FreePort(t)),
				"S3SEAL_ADMIN_LISTEN=127.0.0.1:" + itoaPort(testbed.FreePort(t)),
				"S3SEAL_CLIENT_ACCESS_KEY_ID=policy-test",
				"S3SEAL_CLIENT_SECRET_ACCESS_KEY=policy-test-secret",
				"S3SEAL_TLS=off",
				"S3SEAL_DATA_DIR=" + t.TempDir(),
				"AWS_ENDPOINT_URL_S3=" + shared.minio.Endpoint,
				"AWS_ACCESS_KEY_ID=unused",
				"AWS_SECRET_ACCESS_KEY=unused-secret",
				"HOME=" + t.TempDir(),
			}
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errorsAsExit(err, &ee) || ee.ExitCode() == 0 {
				t.Fatalf("s3seal did not exit with an error: %v\n%s", err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output does not name the rule and field (%q):\n%s", w, out)
				}
			}
		})
	}
}

func itoaPort(p int) string { return strconv.Itoa(p) }

func errorsAsExit(err error, target **exec.ExitError) bool { return errors.As(err, target) }
