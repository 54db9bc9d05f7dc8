package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/integration/testbed"
)

// TestTestbed starts every server of the test bed, uses each one with a
// direct client, crashes and restarts MinIO, and checks that no process
// outlives the test.
func TestTestbed(t *testing.T) {
	testbed.Require(t)
	before := childPIDs(t)
	var started []int
	// Registered first, so it runs after every server's Cleanup.
	t.Cleanup(func() {
		for _, pid := range started {
			if alive(pid) {
				t.Errorf("process %d is still running after the test", pid)
			}
		}
		for pid := range childPIDs(t) {
			if !before[pid] {
				t.Errorf("child process %d (%s) outlived the test", pid, comm(pid))
			}
		}
	})

	timed := func(name string, start func()) {
		t0 := time.Now()
		start()
		t.Logf("timing: %s started in %v", name, time.Since(t0).Round(time.Millisecond))
	}
	var (
		minio, vgw *testbed.S3Server
		lkms       *testbed.KMS
		pebble     *testbed.Pebble
	)
	timed("minio (TLS+KMS)", func() { minio = testbed.StartMinIO(t, testbed.MinIOOptions{TLS: true, KMS: true}) })
	timed("versitygw", func() { vgw = testbed.StartVersitygw(t) })
	timed("local-kms", func() { lkms = testbed.StartLocalKMS(t) })
	timed("pebble+challtestsrv", func() { pebble = testbed.StartPebble(t) })
	started = append(started, minio.Process().PID(), vgw.Process().PID(), lkms.Process().PID())

	if !strings.HasPrefix(minio.Endpoint, "https://127.0.0.1:") || minio.CAFile == "" {
		t.Errorf("minio endpoint %q, CA file %q: want HTTPS on 127.0.0.1 with a CA", minio.Endpoint, minio.CAFile)
	}
	if !strings.HasPrefix(vgw.Endpoint, "http://127.0.0.1:") {
		t.Errorf("versitygw endpoint %q: want HTTP on 127.0.0.1", vgw.Endpoint)
	}

	body := make([]byte, 300<<10)
	rand.Read(body)
	for _, s := range []*testbed.S3Server{minio, vgw} {
		t.Run("roundtrip-"+s.Name, func(t *testing.T) {
			s.CreateBucket(t, "testbed")
			put(t, s.Client(t), "testbed", "object", body)
			if got := get(t, s.Client(t), "testbed", "object"); !bytes.Equal(got, body) {
				t.Fatalf("GET returned %d bytes that differ from the %d PUT", len(got), len(body))
			}
		})
	}

	t.Run("minio-sse-s3", func(t *testing.T) {
		c := minio.Client(t)
		ctx := context.Background()
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String("testbed"), Key: aws.String("sse"), Body: bytes.NewReader(body[:1000]),
			ServerSideEncryption: s3types.ServerSideEncryptionAes256,
		}); err != nil {
			t.Fatalf("PUT with SSE-S3: %v", err)
		}
		head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("testbed"), Key: aws.String("sse")})
		if err != nil {
			t.Fatal(err)
		}
		if head.ServerSideEncryption != s3types.ServerSideEncryptionAes256 {
			t.Fatalf("HEAD says server-side encryption %q, want AES256", head.ServerSideEncryption)
		}
	})

	t.Run("local-kms", func(t *testing.T) {
		keyID, arn := lkms.CreateKey(t)
		if keyID == "" || !strings.HasPrefix(arn, "arn:aws:kms:us-east-1:") {
			t.Fatalf("CreateKey returned id %q, arn %q", keyID, arn)
		}
		c := lkms.Client(t)
		ctx := context.Background()
		ec := map[string]string{"bucket": "testbed", "key": "object"}
		dk, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
			KeyId: aws.String(arn), KeySpec: kmstypes.DataKeySpecAes256, EncryptionContext: ec,
		})
		if err != nil {
			t.Fatalf("GenerateDataKey: %v", err)
		}
		if len(dk.Plaintext) != 32 || len(dk.CiphertextBlob) == 0 {
			t.Fatalf("data key of %d bytes, wrapped %d bytes", len(dk.Plaintext), len(dk.CiphertextBlob))
		}
		decrypt := func(c *kms.Client, ec map[string]string) ([]byte, error) {
			out, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ec})
			if err != nil {
				return nil, err
			}
			return out.Plaintext, nil
		}
		if pt, err := decrypt(c, ec); err != nil || !bytes.Equal(pt, dk.Plaintext) {
			t.Fatalf("Decrypt: err %v, plaintext matches: %v", err, bytes.Equal(pt, dk.Plaintext))
		}
		var bad *kmstypes.InvalidCiphertextException
		if _, err := decrypt(c, map[string]string{"bucket": "other"}); !errors.As(err, &bad) {
			t.Fatalf("Decrypt with a wrong encryption context: %v, want InvalidCiphertextException", err)
		}
		// Keys survive a restart on the same database.
		lkms.Restart(t)
		started = append(started, lkms.Process().PID())
		if pt, err := decrypt(lkms.Client(t), ec); err != nil || !bytes.Equal(pt, dk.Plaintext) {
			t.Fatalf("Decrypt after restart: err %v, plaintext matches: %v", err, bytes.Equal(pt, dk.Plaintext))
		}
	})

	t.Run("pebble", func(t *testing.T) {
		resp, err := pebble.HTTPClient(t).Get(pebble.Directory)
		if err != nil {
			t.Fatalf("GET directory trusting CAFile: %v", err)
		}
		defer resp.Body.Close()
		var dir map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&dir); err != nil {
			t.Fatalf("directory is not JSON: %v", err)
		}
		for _, k := range []string{"newNonce", "newAccount", "newOrder"} {
			if u, _ := dir[k].(string); !strings.HasPrefix(u, "https://127.0.0.1:") {
				t.Errorf("directory %s = %q, want an https://127.0.0.1 URL", k, dir[k])
			}
		}
		// The directory's certificate is from CAFile, not a public CA.
		plain := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}}
		if resp, err := plain.Get(pebble.Directory); err == nil {
			resp.Body.Close()
			t.Errorf("GET directory without trusting CAFile succeeded")
		}
		if pebble.HTTPPort == 0 || pebble.TLSPort == 0 || pebble.HTTPPort == pebble.TLSPort {
			t.Errorf("challenge ports %d and %d", pebble.HTTPPort, pebble.TLSPort)
		}
		roots := pebble.IssuerRoots(t)
		blk, _ := pem.Decode(roots)
		if blk == nil {
			t.Fatalf("IssuerRoots returned no PEM")
		}
		root, err := x509.ParseCertificate(blk.Bytes)
		if err != nil || !root.IsCA {
			t.Fatalf("issuing root: err %v, is CA %v", err, err == nil && root.IsCA)
		}
	})

	t.Run("minio-crash-restart", func(t *testing.T) {
		old := minio.Process().PID()
		minio.Kill(t)
		if alive(old) {
			t.Fatalf("minio pid %d alive after Kill", old)
		}
		t0 := time.Now()
		minio.Restart(t)
		t.Logf("timing: minio restarted in %v", time.Since(t0).Round(time.Millisecond))
		started = append(started, minio.Process().PID())
		if minio.Process().PID() == old {
			t.Fatalf("restart kept pid %d", old)
		}
		if got := get(t, minio.Client(t), "testbed", "object"); !bytes.Equal(got, body) {
			t.Fatalf("after crash and restart GET returned %d bytes that differ from the %d PUT", len(got), len(body))
		}
	})
}

func put(t *testing.T, c *s3.Client, bucket, key string, body []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body),
	}); err != nil {
		t.Fatalf("PUT %s/%s: %v", bucket, key, err)
	}
}

func get(t *testing.T, c *s3.Client, bucket, key string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GET %s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("GET %s/%s body: %v", bucket, key, err)
	}
	return b
}

// childPIDs returns the processes whose parent is this test binary.
func childPIDs(t *testing.T) map[int]bool {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("list processes: %v", err)
	}
	me := os.Getpid()
	out := map[int]bool{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, ok := parentPID(pid); ok && ppid == me {
			out[pid] = true
		}
	}
	return out
}

// parentPID reads the parent PID from /proc/PID/stat.
func parentPID(pid int) (int, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, err == nil
}

// alive reports whether pid is a live process of ours (a zombie or another
// process's child reusing the number does not count).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 || f[0] == "Z" {
		return false
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid == os.Getpid()
}

func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}
