package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/integration/testbed"
)

// TestReload changes a client secret and a policy with SIGHUP while another
// client keeps working.
func TestReload(t *testing.T) {
	testbed.Require(t)
	up := shared.minio
	bucket := newBucket(t, up)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "s3seal.yaml")
	write := func(secretA, extraRule string) {
		y := fmt.Sprintf(`clients:
  - name: alice
    access_key_id: ALICE
    secret_access_key: %s
  - name: loop
    access_key_id: LOOPER
    secret_access_key: loop-secret-123
policies:
%s  - name: rest
    bucket: "*"
    mode: passthrough
`, secretA, extraRule)
		must(t, os.WriteFile(cfg, []byte(y), 0o600), "write config")
	}
	write("alice-old-secret", "")
	p := startProxy(t, up, proxyOptions{Env: map[string]string{"S3SEAL_CONFIG": cfg, "S3SEAL_CLIENT_ACCESS_KEY_ID": "", "S3SEAL_CLIENT_SECRET_ACCESS_KEY": ""}})
	client := func(ak, sk string) *s3.Client {
		return p.Client(t, func(o *s3.Options) { o.Credentials = credentials.NewStaticCredentialsProvider(ak, sk, "") })
	}
	loop := client("LOOPER", "loop-secret-123")
	var stop atomic.Bool
	var n, failures atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				key := fmt.Sprintf("loop/%d/%d", w, i%10)
				c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err := loop.PutObject(c, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(key)})
				if err == nil {
					_, err = loop.HeadObject(c, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				}
				cancel()
				n.Add(1)
				if err != nil {
					failures.Add(1)
					t.Errorf("loop request failed: %v", err)
				}
			}
		}(w)
	}
	defer func() { stop.Store(true); wg.Wait() }()
	put := func(c *s3.Client, key string) error {
		_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("x")})
		return err
	}
	must(t, put(client("ALICE", "alice-old-secret"), "a/before"), "alice before reload")
	must(t, put(client("ALICE", "alice-old-secret"), "locked/before"), "locked prefix before reload")

	write("alice-new-secret", "  - name: lock\n    bucket: \""+bucket+"\"\n    prefix: locked/\n    mode: deny\n")
	must(t, syscall.Kill(p.PID(), syscall.SIGHUP), "SIGHUP")
	deadline := time.Now().Add(10 * time.Second)
	for put(client("ALICE", "alice-new-secret"), "a/after") != nil {
		if time.Now().After(deadline) {
			t.Fatal("the new secret is not accepted 10 s after SIGHUP")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := put(client("ALICE", "alice-old-secret"), "a/old"); errorCode(err) != "SignatureDoesNotMatch" {
		t.Errorf("old secret after reload: %v, want SignatureDoesNotMatch", err)
	}
	if err := put(client("ALICE", "alice-new-secret"), "locked/after"); errorCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "lock") {
		t.Errorf("new deny rule after reload: %v", err)
	}
	// An invalid configuration is refused and the current one kept.
	must(t, os.WriteFile(cfg, []byte("clients: [oops\n"), 0o600), "write broken config")
	must(t, syscall.Kill(p.PID(), syscall.SIGHUP), "SIGHUP")
	time.Sleep(500 * time.Millisecond)
	must(t, put(client("ALICE", "alice-new-secret"), "a/still"), "after a refused reload")
	if !strings.Contains(p.Log(), "reload refused") {
		t.Error("the refused reload is not in the log")
	}
	time.Sleep(300 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if n.Load() < 10 || failures.Load() != 0 {
		t.Errorf("client loop: %d requests, %d failures", n.Load(), failures.Load())
	}
}
