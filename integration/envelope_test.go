package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/integration/testbed"
)

// envelopeSizes cross the 64 KiB chunk boundaries of the format.
var envelopeSizes = []int{0, 1, 65535, 65536, 65537, 2*65536 + 500, 3<<20 + 17}

// newKeyring creates a local key ring with the s3seal binary.
func newKeyring(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keyring")
	out, err := exec.Command(shared.bin, "keygen", "-o", path).CombinedOutput()
	if err != nil {
		t.Fatalf("s3seal keygen: %v\n%s", err, out)
	}
	return path
}

// startEnvelopeProxy runs s3seal in envelope mode with a new key ring.
func startEnvelopeProxy(t testing.TB, up *testbed.S3Server, env map[string]string) (*proxy, string) {
	t.Helper()
	ring := newKeyring(t)
	e := map[string]string{"S3SEAL_MODE": "envelope", "S3SEAL_KEYS": "local:" + ring}
	for k, v := range env {
		e[k] = v
	}
	return startProxy(t, up, proxyOptions{Env: e}), ring
}

// TestEnvelopeObjects stores objects through s3seal in envelope mode and
// checks what clients and the store see.
func TestEnvelopeObjects(t *testing.T) {
	testbed.Require(t)
	for _, up := range upstreams() {
		t.Run(up.Name, func(t *testing.T) {
			p, ring := startEnvelopeProxy(t, up, nil)
			c := p.Client(t)
			direct := up.Client(t)
			bucket := newBucket(t, up)
			objects := map[string][]byte{}
			for _, n := range envelopeSizes {
				key := fmt.Sprintf("size/%d", n)
				body := randBytes(n)
				objects[key] = body
				_, err := c.PutObject(ctx(t), &s3.PutObjectInput{
					Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body),
					ContentType: aws.String("text/x-test"), Metadata: map[string]string{"owner": "tests"},
				})
				must(t, err, "PutObject ", key)
			}
			t.Run("round-trip", func(t *testing.T) {
				for key, want := range objects {
					if got := getBytes(t, c, bucket, key); !bytes.Equal(got, want) {
						t.Errorf("%s: %d bytes back, want %d", key, len(got), len(want))
					}
					h, err := c.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
					must(t, err, "HeadObject")
					if aws.ToInt64(h.ContentLength) != int64(len(want)) || h.Metadata["owner"] != "tests" || len(h.Metadata) != 1 || aws.ToString(h.ContentType) != "text/x-test" {
						t.Errorf("%s: HEAD length %d metadata %v type %s", key, aws.ToInt64(h.ContentLength), h.Metadata, aws.ToString(h.ContentType))
					}
					etag := aws.ToString(h.ETag)
					if isMD5Like(etag) {
						t.Errorf("%s: ETag %s looks like an MD5 but is not the plaintext's", key, etag)
					}
				}
			})
			t.Run("store-holds-ciphertext", func(t *testing.T) {
				for key, want := range objects {
					out, err := direct.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
					must(t, err, "direct GetObject")
					stored, _ := io.ReadAll(out.Body)
					out.Body.Close()
					if len(want) >= 16 && bytes.Contains(stored, want[:16]) {
						t.Errorf("%s: the store holds plaintext", key)
					}
					if out.Metadata["s3seal"] == "" {
						t.Errorf("%s: no s3seal metadata in the store", key)
					}
					if len(stored) <= len(want) {
						t.Errorf("%s: stored %d bytes for %d of plaintext", key, len(stored), len(want))
					}
				}
			})
			t.Run("ranges", func(t *testing.T) {
				key := fmt.Sprintf("size/%d", 3<<20+17)
				want := objects[key]
				var ranges [][2]int
				for _, b := range []int{65536, 2 * 65536, 1 << 20, len(want) - 1} {
					for _, d := range []int{-1, 0, 1} {
						if b+d >= 0 && b+d < len(want) {
							ranges = append(ranges, [2]int{b + d, min(b+d+100, len(want)-1)}, [2]int{max(0, b+d-70000), b + d})
						}
					}
				}
				ranges = append(ranges, [2]int{0, len(want) - 1}, [2]int{0, 0})
				for _, r := range ranges {
					got := getBytes(t, c, bucket, key, func(in *s3.GetObjectInput) { in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", r[0], r[1])) })
					if !bytes.Equal(got, want[r[0]:r[1]+1]) {
						t.Errorf("range %d-%d: %d bytes, wrong content", r[0], r[1], len(got))
					}
				}
				for _, spec := range []string{"bytes=-1", "bytes=-65537", fmt.Sprintf("bytes=%d-", len(want)-70000)} {
					out, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Range: aws.String(spec)})
					must(t, err, spec)
					got, _ := io.ReadAll(out.Body)
					out.Body.Close()
					var a int
					if strings.HasPrefix(spec, "bytes=-") {
						var n int
						fmt.Sscanf(spec, "bytes=-%d", &n)
						a = len(want) - n
					} else {
						fmt.Sscanf(spec, "bytes=%d-", &a)
					}
					if !bytes.Equal(got, want[a:]) || aws.ToString(out.ContentRange) != fmt.Sprintf("bytes %d-%d/%d", a, len(want)-1, len(want)) {
						t.Errorf("%s: %d bytes, Content-Range %s", spec, len(got), aws.ToString(out.ContentRange))
					}
				}
				_, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Range: aws.String(fmt.Sprintf("bytes=%d-", len(want)))})
				if errorCode(err) != "InvalidRange" {
					t.Errorf("range past the end: %v, want InvalidRange", err)
				}
			})
			t.Run("checksum-mode", func(t *testing.T) {
				body := []byte("checksummed through s3seal")
				sum := crc32.ChecksumIEEE(body)
				want := base64.StdEncoding.EncodeToString([]byte{byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)})
				_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("crc"), Body: bytes.NewReader(body), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
				must(t, err, "PutObject")
				out, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("crc"), ChecksumMode: types.ChecksumModeEnabled})
				must(t, err, "GetObject checksum mode")
				got, err := io.ReadAll(out.Body)
				must(t, err, "read (the SDK validates the checksum)")
				if !bytes.Equal(got, body) || aws.ToString(out.ChecksumCRC32) != want {
					t.Errorf("checksum-mode GET: CRC32 %q, want %q", aws.ToString(out.ChecksumCRC32), want)
				}
			})
			t.Run("listing-sizes", func(t *testing.T) {
				out, err := c.ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("size/")})
				must(t, err, "ListObjectsV2")
				if len(out.Contents) != len(objects) {
					t.Fatalf("listed %d, want %d", len(out.Contents), len(objects))
				}
				for _, o := range out.Contents {
					if want := len(objects[aws.ToString(o.Key)]); aws.ToInt64(o.Size) != int64(want) {
						t.Errorf("%s: listed size %d, want %d", aws.ToString(o.Key), aws.ToInt64(o.Size), want)
					}
					if isMD5Like(aws.ToString(o.ETag)) {
						t.Errorf("%s: listed ETag %s looks like an MD5", aws.ToString(o.Key), aws.ToString(o.ETag))
					}
				}
				v1, err := c.ListObjects(ctx(t), &s3.ListObjectsInput{Bucket: aws.String(bucket), Prefix: aws.String("size/65537")})
				must(t, err, "ListObjects")
				if len(v1.Contents) != 1 || aws.ToInt64(v1.Contents[0].Size) != 65537 {
					t.Errorf("ListObjects v1: %+v", v1.Contents)
				}
				vers, err := c.ListObjectVersions(ctx(t), &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String("size/1")})
				must(t, err, "ListObjectVersions")
				for _, v := range vers.Versions {
					if aws.ToInt64(v.Size) != int64(len(objects[aws.ToString(v.Key)])) {
						t.Errorf("version %s: size %d", aws.ToString(v.Key), aws.ToInt64(v.Size))
					}
				}
			})
			t.Run("conditional", func(t *testing.T) {
				key := "size/1"
				h, err := c.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				must(t, err, "HeadObject")
				etag := aws.ToString(h.ETag)
				_, err = c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), IfMatch: aws.String(etag)})
				must(t, err, "GET If-Match with the ETag s3seal gave")
				_, err = c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), IfNoneMatch: aws.String(etag)})
				if !strings.Contains(fmt.Sprint(err), "304") {
					t.Errorf("GET If-None-Match with the same ETag: %v, want 304", err)
				}
				_, err = c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("x"), IfNoneMatch: aws.String("*")})
				if errorCode(err) != "PreconditionFailed" {
					t.Errorf("PUT If-None-Match * over an existing object: %v", err)
				}
				_, err = c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("fresh"), Body: strings.NewReader("x"), IfNoneMatch: aws.String("*")})
				must(t, err, "PUT If-None-Match * for a new key")
				fh, err := c.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("fresh")})
				must(t, err, "HEAD fresh")
				_, err = c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("fresh"), Body: strings.NewReader("y"), IfMatch: aws.String(`"0123456789abcdef0123456789abcdef-0"`)})
				if errorCode(err) != "PreconditionFailed" {
					t.Errorf("PUT If-Match with another ETag: %v, want PreconditionFailed", err)
				}
				_, err = c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("fresh"), Body: strings.NewReader("y"), IfMatch: fh.ETag})
				must(t, err, "PUT If-Match with the ETag s3seal gave")
				if got := getBytes(t, c, bucket, "fresh"); string(got) != "y" {
					t.Errorf("after the conditional PUT: %q", got)
				}
			})
			t.Run("offline-decrypt", func(t *testing.T) {
				key := fmt.Sprintf("size/%d", 2*65536+500)
				out, err := direct.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				must(t, err, "direct GetObject")
				stored, _ := io.ReadAll(out.Body)
				out.Body.Close()
				dir := t.TempDir()
				meta, _ := json.Marshal(out.Metadata)
				must(t, os.WriteFile(filepath.Join(dir, "meta.json"), meta, 0o600), "write")
				must(t, os.WriteFile(filepath.Join(dir, "cipher"), stored, 0o600), "write")
				cmd := exec.CommandContext(context.Background(), shared.bin, "decrypt", "--keys", "local:"+ring, "--metadata", filepath.Join(dir, "meta.json"),
					"--bucket", bucket, "--key", key, filepath.Join(dir, "cipher"), filepath.Join(dir, "plain"))
				if b, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("s3seal decrypt: %v\n%s", err, b)
				}
				got, _ := os.ReadFile(filepath.Join(dir, "plain"))
				if !bytes.Equal(got, objects[key]) {
					t.Error("offline decrypt returned other bytes")
				}
			})
			t.Run("refused-operations", func(t *testing.T) {
				_, err := c.GetObjectAttributes(ctx(t), &s3.GetObjectAttributesInput{Bucket: aws.String(bucket), Key: aws.String("size/1"), ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesObjectSize}})
				if errorCode(err) != "NotImplemented" {
					t.Errorf("GetObjectAttributes: %v, want NotImplemented", err)
				}
				_, err = c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("x"), Body: strings.NewReader("x"), Metadata: map[string]string{"s3seal": "forged"}})
				if errorCode(err) != "InvalidArgument" {
					t.Errorf("client-supplied s3seal metadata: %v, want InvalidArgument", err)
				}
				_, err = c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("x"), Body: strings.NewReader("x"), Metadata: map[string]string{"big": strings.Repeat("m", 1800)}})
				if errorCode(err) != "MetadataTooLarge" {
					t.Errorf("metadata over 2 KB with s3seal's: %v, want MetadataTooLarge", err)
				}
			})
		})
	}
}

// isMD5Like reports a 32-hex-digit ETag.
func isMD5Like(etag string) bool {
	e := strings.Trim(etag, `"`)
	if len(e) != 32 {
		return false
	}
	for _, c := range e {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}
