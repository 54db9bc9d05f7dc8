package integration

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/s3seal/s3seal/integration/testbed"
)

// TestPassthroughAWSCLI drives the AWS CLI through s3seal: high-level
// cp/ls/sync/rm (multipart above 8 MiB) and s3api calls.
func TestPassthroughAWSCLI(t *testing.T) {
	testbed.Require(t)
	if _, err := exec.LookPath("aws"); err != nil {
		t.Fatal("the AWS CLI is not installed; ./integration/testbed/install.sh installs it")
	}
	for _, up := range upstreams() {
		t.Run(up.Name, func(t *testing.T) {
			p := startProxy(t, up, proxyOptions{})
			bucket := newBucket(t, up)
			dir := t.TempDir()
			files := map[string][]byte{
				"small.txt":       []byte("hello through s3seal\n"),
				"empty":           {},
				"nested/mid.bin":  randBytes(300_000),
				"nested/big.bin":  randBytes(20<<20 + 5),
				"with space.data": randBytes(70_000),
			}
			for name, b := range files {
				path := filepath.Join(dir, name)
				must(t, os.MkdirAll(filepath.Dir(path), 0o755), "mkdir")
				must(t, os.WriteFile(path, b, 0o644), "write")
			}
			p.runCLI(t, "s3", "cp", filepath.Join(dir, "nested/big.bin"), "s3://"+bucket+"/single/big.bin")
			out := p.runCLI(t, "s3", "sync", dir, "s3://"+bucket+"/sync/")
			if n := strings.Count(out, "upload:"); n != len(files) {
				t.Errorf("first sync uploaded %d files, want %d:\n%s", n, len(files), out)
			}
			out = p.runCLI(t, "s3", "sync", dir, "s3://"+bucket+"/sync/")
			if strings.Contains(out, "upload:") {
				t.Errorf("second sync uploaded again:\n%s", out)
			}
			ls := p.runCLI(t, "s3", "ls", "--recursive", "s3://"+bucket+"/sync/")
			for name := range files {
				if !strings.Contains(ls, "sync/"+name) {
					t.Errorf("ls misses %s:\n%s", name, ls)
				}
			}
			back := t.TempDir()
			p.runCLI(t, "s3", "cp", "--recursive", "s3://"+bucket+"/sync/", back)
			for name, want := range files {
				got, err := os.ReadFile(filepath.Join(back, name))
				must(t, err, "read back ", name)
				if !bytes.Equal(got, want) {
					t.Errorf("%s: %d bytes back, want %d", name, len(got), len(want))
				}
			}
			direct := getBytes(t, up.Client(t), bucket, "single/big.bin")
			if !bytes.Equal(direct, files["nested/big.bin"]) {
				t.Error("stored multipart object differs from the file")
			}
			head := p.runCLI(t, "s3api", "head-object", "--bucket", bucket, "--key", "sync/with space.data")
			var h struct{ ContentLength int64 }
			must(t, json.Unmarshal([]byte(head), &h), "head-object output")
			if h.ContentLength != 70_000 {
				t.Errorf("head-object ContentLength %d", h.ContentLength)
			}
			p.runCLI(t, "s3api", "put-object", "--bucket", bucket, "--key", "api/obj", "--body", filepath.Join(dir, "small.txt"))
			p.runCLI(t, "s3api", "get-object", "--bucket", bucket, "--key", "api/obj", filepath.Join(back, "api-obj"))
			if b, _ := os.ReadFile(filepath.Join(back, "api-obj")); !bytes.Equal(b, files["small.txt"]) {
				t.Error("s3api get-object returned other bytes")
			}
			p.runCLI(t, "s3", "rm", "--recursive", "s3://"+bucket+"/sync/")
			left := p.runCLI(t, "s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "sync/", "--query", "length(Contents || `[]`)")
			if strings.TrimSpace(left) != "0" {
				t.Errorf("%s objects left after rm", strings.TrimSpace(left))
			}
		})
	}
}

// TestPassthroughMinioGo drives minio-go through s3seal, over TLS and over
// plain loopback HTTP (where minio-go signs every chunk).
func TestPassthroughMinioGo(t *testing.T) {
	testbed.Require(t)
	for _, up := range upstreams() {
		for _, tlsMode := range []string{"files", "off"} {
			t.Run(up.Name+"/tls-"+tlsMode, func(t *testing.T) {
				p := startProxy(t, up, proxyOptions{TLS: tlsMode})
				mc := p.minioClient(t)
				bucket := newBucket(t, up)
				c := ctx(t)
				small := randBytes(123_457)
				big := randBytes(17<<20 + 1)
				_, err := mc.PutObject(c, bucket, "mg/small", bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{UserMetadata: map[string]string{"kind": "small"}})
				must(t, err, "PutObject small")
				_, err = mc.PutObject(c, bucket, "mg/big", bytes.NewReader(big), int64(len(big)), minio.PutObjectOptions{PartSize: 5 << 20})
				must(t, err, "PutObject big (multipart)")
				// Unknown size streams as multipart too.
				_, err = mc.PutObject(c, bucket, "mg/stream", io.LimitReader(bytes.NewReader(big), 6<<20), -1, minio.PutObjectOptions{PartSize: 5 << 20})
				must(t, err, "PutObject stream")
				for key, want := range map[string][]byte{"mg/small": small, "mg/big": big, "mg/stream": big[:6<<20]} {
					o, err := mc.GetObject(c, bucket, key, minio.GetObjectOptions{})
					must(t, err, "GetObject ", key)
					got, err := io.ReadAll(o)
					must(t, err, "read ", key)
					if !bytes.Equal(got, want) {
						t.Errorf("%s: %d bytes, want %d", key, len(got), len(want))
					}
				}
				opts := minio.GetObjectOptions{}
				must(t, opts.SetRange(5<<20-1, 5<<20+1), "range")
				o, err := mc.GetObject(c, bucket, "mg/big", opts)
				must(t, err, "ranged GetObject")
				got, _ := io.ReadAll(o)
				if !bytes.Equal(got, big[5<<20-1:5<<20+2]) {
					t.Error("ranged read across a part boundary returned other bytes")
				}
				st, err := mc.StatObject(c, bucket, "mg/small", minio.StatObjectOptions{})
				must(t, err, "StatObject")
				if st.Size != int64(len(small)) || st.UserMetadata["Kind"] != "small" {
					t.Errorf("stat = %d %v", st.Size, st.UserMetadata)
				}
				_, err = mc.CopyObject(c, minio.CopyDestOptions{Bucket: bucket, Object: "mg/copy"}, minio.CopySrcOptions{Bucket: bucket, Object: "mg/small"})
				must(t, err, "CopyObject")
				n := 0
				for obj := range mc.ListObjects(c, bucket, minio.ListObjectsOptions{Prefix: "mg/", Recursive: true}) {
					must(t, obj.Err, "ListObjects")
					n++
				}
				if n != 4 {
					t.Errorf("listed %d objects, want 4", n)
				}
				u, err := mc.PresignedGetObject(c, bucket, "mg/small", time.Minute, url.Values{})
				must(t, err, "PresignedGetObject")
				resp, err := p.httpClient(t).Get(u.String())
				must(t, err, "presigned GET")
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !bytes.Equal(b, small) {
					t.Errorf("presigned GET: %d, %d bytes", resp.StatusCode, len(b))
				}
				must(t, mc.RemoveObject(c, bucket, "mg/copy", minio.RemoveObjectOptions{}), "RemoveObject")
				if objectExists(t, up, bucket, "mg/copy") {
					t.Error("removed object still exists")
				}
			})
		}
	}
}

func (p *proxy) minioClient(t testing.TB) *minio.Client {
	t.Helper()
	u, _ := url.Parse(p.Endpoint)
	mc, err := minio.New(u.Host, &minio.Options{
		Creds:        miniocreds.NewStaticV4(p.AccessKey, p.SecretKey, ""),
		Secure:       u.Scheme == "https",
		Transport:    p.httpClient(t).Transport,
		Region:       "us-east-1",
		BucketLookup: minio.BucketLookupPath,
	})
	must(t, err, "minio.New")
	return mc
}

func (p *proxy) httpClient(t testing.TB) *http.Client {
	tr := &http.Transport{Proxy: nil}
	if p.CAFile != "" {
		pem, err := os.ReadFile(p.CAFile)
		must(t, err, "read CA")
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		cfg.RootCAs = x509Pool(t, pem)
		tr.TLSClientConfig = cfg
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Minute}
}
