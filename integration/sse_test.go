package integration

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/crypto/keys/local"
	"github.com/s3seal/s3seal/integration/testbed"
)

// minioKMSKey is the KMS key the test bed gives MinIO.
const minioKMSKey = "s3seal-test-key"

// sseKeyring writes a key ring file with one new key and returns its path
// and the key's name.
func sseKeyring(t testing.TB) (path, name string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "keyring")
	name, err := local.Create(path, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return path, name
}

// sseConfig writes an s3seal configuration file and returns the
// environment that makes s3seal read it.
func sseConfig(t testing.TB, yaml string, env map[string]string) map[string]string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s3seal.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{"S3SEAL_CONFIG": path}
	for k, v := range env {
		out[k] = v
	}
	return out
}

// sseRulesYAML is one rule per server-side encryption mode, each for
// buckets named after the mode.
func sseRulesYAML(ring string) string {
	return fmt.Sprintf(`
keys: local:%s
policies:
  - name: s3-rule
    bucket: "sse-s3-*"
    mode: sse-s3
  - name: kms-rule
    bucket: "sse-kms-*"
    mode: sse-kms
    kms_key_id: %s
    kms_context: {app: s3seal-test}
  - name: c-rule
    bucket: "sse-c-*"
    mode: sse-c
`, ring, minioKMSKey)
}

// derivedSSEC returns the SSE-C headers' values (key, key MD5) s3seal uses
// for bucket/key under the named master key of the key ring file.
func derivedSSEC(t testing.TB, ringPath, master, bucket, key string) (b64Key, b64MD5 string) {
	t.Helper()
	ring, err := local.Load(ringPath)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ring.DeriveSSECKey(master, bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(k[:])
	return base64.StdEncoding.EncodeToString(k[:]), base64.StdEncoding.EncodeToString(sum[:])
}

// httpStatus returns the HTTP status of an SDK error, or 0.
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// checkStored checks directly on the store that bucket/key is encrypted as
// mode demands.
func checkStored(t *testing.T, up *testbed.S3Server, ring, mode, bucket, key string, want []byte, master string) {
	t.Helper()
	direct := up.Client(t)
	in := &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	switch mode {
	case "sse-s3", "sse-kms":
		h, err := direct.HeadObject(ctx(t), in)
		must(t, err, "direct HeadObject ", key)
		wantAlg := types.ServerSideEncryptionAes256
		if mode == "sse-kms" {
			wantAlg = types.ServerSideEncryptionAwsKms
			if !strings.HasSuffix(aws.ToString(h.SSEKMSKeyId), minioKMSKey) {
				t.Errorf("%s: stored with KMS key %q, want %s", key, aws.ToString(h.SSEKMSKeyId), minioKMSKey)
			}
		}
		if h.ServerSideEncryption != wantAlg {
			t.Errorf("%s: stored with x-amz-server-side-encryption %q, want %q", key, h.ServerSideEncryption, wantAlg)
		}
	case "sse-c":
		// Without the key the store refuses to show the object (400, not
		// 404: it exists).
		_, err := direct.HeadObject(ctx(t), in)
		if s := httpStatus(err); s != 400 {
			t.Errorf("%s: direct HEAD without the key answered %d (%v), want 400", key, s, err)
		}
		_, err = direct.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if s := httpStatus(err); s != 400 {
			t.Errorf("%s: direct GET without the key answered %d, want 400", key, s)
		}
		k, sum := derivedSSEC(t, ring, master, bucket, key)
		got := getBytes(t, direct, bucket, key, func(in *s3.GetObjectInput) {
			in.SSECustomerAlgorithm, in.SSECustomerKey, in.SSECustomerKeyMD5 = aws.String("AES256"), aws.String(k), aws.String(sum)
		})
		if !bytes.Equal(got, want) {
			t.Errorf("%s: direct GET with the derived key: %d bytes, want %d", key, len(got), len(want))
		}
	}
}

// TestSSEModes stores objects through s3seal under sse-s3, sse-kms and
// sse-c with aws-sdk-go-v2 and the AWS CLI, and checks on MinIO that they
// are stored encrypted as the policy demands.
func TestSSEModes(t *testing.T) {
	testbed.Require(t)
	up := shared.minio
	ring, master := sseKeyring(t)
	p := startProxy(t, up, proxyOptions{Env: sseConfig(t, sseRulesYAML(ring), nil)})
	c := p.Client(t)
	for _, mode := range []string{"sse-s3", "sse-kms", "sse-c"} {
		t.Run(mode, func(t *testing.T) {
			bucket := mode + "-" + randHex(5)
			up.CreateBucket(t, bucket)
			objects := map[string][]byte{}
			for _, n := range []int{0, 1, 65537, 1<<20 + 3} {
				key := fmt.Sprintf("sdk/%d bytes", n)
				body := randBytes(n)
				objects[key] = body
				_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body),
					Metadata: map[string]string{"origin": "s3seal-test"}})
				must(t, err, "PutObject ", key)
			}
			t.Run("sdk-get-head", func(t *testing.T) {
				etags := map[string]string{}
				for key, want := range objects {
					if got := getBytes(t, c, bucket, key); !bytes.Equal(got, want) {
						t.Errorf("%s: %d bytes back, want %d", key, len(got), len(want))
					}
					h, err := c.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
					must(t, err, "HeadObject ", key)
					if aws.ToInt64(h.ContentLength) != int64(len(want)) || h.Metadata["origin"] != "s3seal-test" {
						t.Errorf("%s: HEAD length %d metadata %v", key, aws.ToInt64(h.ContentLength), h.Metadata)
					}
					if h.SSECustomerKeyMD5 != nil {
						t.Errorf("%s: the SSE-C key digest reached the client", key)
					}
					switch mode {
					case "sse-c":
						if aws.ToString(h.SSECustomerAlgorithm) != "AES256" {
							t.Errorf("%s: HEAD does not say SSE-C", key)
						}
					case "sse-kms":
						if h.ServerSideEncryption != types.ServerSideEncryptionAwsKms {
							t.Errorf("%s: HEAD says %q", key, h.ServerSideEncryption)
						}
					}
					checkStored(t, up, ring, mode, bucket, key, want, master)
					// ETags: the MD5 under sse-s3; never MD5-like under
					// sse-kms and sse-c, where the store's is not the MD5.
					etag := aws.ToString(h.ETag)
					sum := md5.Sum(want)
					if mode == "sse-s3" && etag != fmt.Sprintf(`"%x"`, sum) {
						t.Errorf("%s: ETag %s is not the MD5", key, etag)
					}
					if mode != "sse-s3" && (isMD5Like(etag) || !strings.HasSuffix(etag, `-0"`)) {
						t.Errorf("%s: ETag %s looks like an MD5", key, etag)
					}
					etags[key] = etag
				}
				list, err := c.ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("sdk/")})
				must(t, err, "ListObjectsV2")
				for _, o := range list.Contents {
					if aws.ToString(o.ETag) != etags[aws.ToString(o.Key)] {
						t.Errorf("%s: listed ETag %s, HEAD says %s", aws.ToString(o.Key), aws.ToString(o.ETag), etags[aws.ToString(o.Key)])
					}
				}
				if len(list.Contents) != len(objects) {
					t.Errorf("listed %d objects, want %d", len(list.Contents), len(objects))
				}
				// Conditional GET with the ETag the client saw.
				_, err = c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("sdk/1 bytes"), IfMatch: aws.String(etags["sdk/1 bytes"])})
				must(t, err, "GetObject If-Match")
				big := objects["sdk/1048579 bytes"]
				got := getBytes(t, c, bucket, "sdk/1048579 bytes", func(in *s3.GetObjectInput) { in.Range = aws.String("bytes=65530-65545") })
				if !bytes.Equal(got, big[65530:65546]) {
					t.Error("ranged GET returned other bytes")
				}
				attrs, err := c.GetObjectAttributes(ctx(t), &s3.GetObjectAttributesInput{Bucket: aws.String(bucket), Key: aws.String("sdk/65537 bytes"),
					ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesObjectSize}})
				must(t, err, "GetObjectAttributes")
				if aws.ToInt64(attrs.ObjectSize) != 65537 {
					t.Errorf("GetObjectAttributes size %d", aws.ToInt64(attrs.ObjectSize))
				}
			})
			t.Run("sdk-copy", func(t *testing.T) {
				src := "sdk/65537 bytes"
				_, err := c.CopyObject(ctx(t), &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("copies/one"), CopySource: aws.String(bucket + "/" + urlPathEscape(src))})
				must(t, err, "CopyObject")
				if got := getBytes(t, c, bucket, "copies/one"); !bytes.Equal(got, objects[src]) {
					t.Error("copy has other bytes")
				}
				checkStored(t, up, ring, mode, bucket, "copies/one", objects[src], master)
			})
			t.Run("sdk-multipart", func(t *testing.T) {
				body := randBytes(11<<20 + 77)
				tm := transfermanager.New(c, func(o *transfermanager.Options) { o.PartSizeBytes = 5 << 20; o.Concurrency = 3 })
				_, err := tm.UploadObject(ctx(t), &transfermanager.UploadObjectInput{Bucket: aws.String(bucket), Key: aws.String("mpu/tm"), Body: bytes.NewReader(body)})
				must(t, err, "transfer manager upload")
				var buf writerAt
				_, err = tm.DownloadObject(ctx(t), &transfermanager.DownloadObjectInput{Bucket: aws.String(bucket), Key: aws.String("mpu/tm"), WriterAt: &buf})
				must(t, err, "transfer manager download")
				if !bytes.Equal(buf.b, body) {
					t.Fatalf("downloaded %d bytes, differ from the %d uploaded", len(buf.b), len(body))
				}
				checkStored(t, up, ring, mode, bucket, "mpu/tm", body, master)

				// Low level, with a part copied from another object.
				key := "mpu/low level"
				cr, err := c.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				must(t, err, "CreateMultipartUpload")
				part1 := randBytes(5 << 20)
				p1, err := c.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: cr.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(part1)})
				must(t, err, "UploadPart")
				lp, err := c.ListParts(ctx(t), &s3.ListPartsInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: cr.UploadId})
				must(t, err, "ListParts")
				if len(lp.Parts) != 1 || aws.ToInt64(lp.Parts[0].Size) != int64(len(part1)) {
					t.Errorf("ListParts: %+v", lp.Parts)
				}
				p2, err := c.UploadPartCopy(ctx(t), &s3.UploadPartCopyInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: cr.UploadId, PartNumber: aws.Int32(2),
					CopySource: aws.String(bucket + "/" + urlPathEscape("sdk/65537 bytes"))})
				must(t, err, "UploadPartCopy")
				_, err = c.CompleteMultipartUpload(ctx(t), &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: cr.UploadId,
					MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{
						{PartNumber: aws.Int32(1), ETag: p1.ETag}, {PartNumber: aws.Int32(2), ETag: p2.CopyPartResult.ETag}}}})
				must(t, err, "CompleteMultipartUpload")
				want := append(append([]byte{}, part1...), objects["sdk/65537 bytes"]...)
				if got := getBytes(t, c, bucket, key); !bytes.Equal(got, want) {
					t.Error("multipart object with a copied part has other bytes")
				}
				checkStored(t, up, ring, mode, bucket, key, want, master)
			})
			t.Run("aws-cli", func(t *testing.T) {
				dir := t.TempDir()
				files := map[string][]byte{"small.txt": []byte("through the CLI\n"), "big.bin": randBytes(9<<20 + 5)}
				for name, b := range files {
					must(t, os.WriteFile(filepath.Join(dir, name), b, 0o600), "write")
					p.runCLI(t, "s3", "cp", filepath.Join(dir, name), "s3://"+bucket+"/cli/"+name)
				}
				p.runCLI(t, "s3", "cp", "s3://"+bucket+"/cli/big.bin", "s3://"+bucket+"/cli/big-copy.bin")
				files["big-copy.bin"] = files["big.bin"]
				back := t.TempDir()
				p.runCLI(t, "s3", "cp", "--recursive", "s3://"+bucket+"/cli/", back)
				for name, want := range files {
					got, err := os.ReadFile(filepath.Join(back, name))
					must(t, err, "read back ", name)
					if !bytes.Equal(got, want) {
						t.Errorf("%s: %d bytes back, want %d", name, len(got), len(want))
					}
					checkStored(t, up, ring, mode, bucket, "cli/"+name, want, master)
				}
				var head struct {
					ContentLength        int64
					ServerSideEncryption string
					SSECustomerAlgorithm string
					SSECustomerKeyMD5    string
				}
				out := p.runCLI(t, "s3api", "head-object", "--bucket", bucket, "--key", "cli/small.txt")
				must(t, json.Unmarshal([]byte(out), &head), "head-object output")
				if head.ContentLength != int64(len(files["small.txt"])) || head.SSECustomerKeyMD5 != "" {
					t.Errorf("head-object: %+v", head)
				}
				if (mode == "sse-c") != (head.SSECustomerAlgorithm == "AES256") {
					t.Errorf("head-object: %+v", head)
				}
			})
			if mode == "sse-c" {
				// s3seal's log never carries SSE-C keys or their digests.
				k, sum := derivedSSEC(t, ring, master, bucket, "cli/small.txt")
				if log := p.Log(); strings.Contains(log, k) || strings.Contains(log, sum) {
					t.Error("s3seal's log contains an SSE-C key or its digest")
				}
			}
		})
	}
}

// TestSSECopyAcrossModes copies objects between locations under different
// modes: each copy is stored as its destination's rule demands.
func TestSSECopyAcrossModes(t *testing.T) {
	testbed.Require(t)
	up := shared.minio
	ring, master := sseKeyring(t)
	p := startProxy(t, up, proxyOptions{Env: sseConfig(t, sseRulesYAML(ring)+`
  - name: plain-rule
    bucket: "plain-*"
    mode: passthrough
`, nil)})
	c := p.Client(t)
	buckets := map[string]string{}
	for _, mode := range []string{"sse-s3", "sse-kms", "sse-c", "plain"} {
		buckets[mode] = mode + "-" + randHex(5)
		up.CreateBucket(t, buckets[mode])
	}
	body := randBytes(200_000)
	for mode, b := range buckets {
		_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("src obj"), Body: bytes.NewReader(body)})
		must(t, err, "PutObject ", mode)
	}
	for _, from := range []string{"sse-c", "sse-kms", "sse-s3", "plain"} {
		for _, to := range []string{"sse-s3", "sse-kms", "sse-c"} {
			if from == to {
				continue
			}
			t.Run(from+"-to-"+to, func(t *testing.T) {
				key := "from-" + from
				_, err := c.CopyObject(ctx(t), &s3.CopyObjectInput{Bucket: aws.String(buckets[to]), Key: aws.String(key),
					CopySource: aws.String(buckets[from] + "/" + urlPathEscape("src obj"))})
				must(t, err, "CopyObject")
				if got := getBytes(t, c, buckets[to], key); !bytes.Equal(got, body) {
					t.Error("copy has other bytes")
				}
				checkStored(t, up, ring, to, buckets[to], key, body, master)
			})
		}
	}
}

// TestSSECRotation writes objects under sse-c, restarts s3seal with a new
// active key appended to its key ring, and checks that the old objects
// still read while new ones use the new key.
func TestSSECRotation(t *testing.T) {
	testbed.Require(t)
	up := shared.minio
	ring, oldKey := sseKeyring(t)
	env := sseConfig(t, sseRulesYAML(ring), nil)
	bucket := "sse-c-" + randHex(5)
	up.CreateBucket(t, bucket)

	p := startProxy(t, up, proxyOptions{Env: env})
	c := p.Client(t)
	small, big := randBytes(70_000), randBytes(6<<20+9)
	_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("before/small"), Body: bytes.NewReader(small)})
	must(t, err, "PutObject before")
	tm := transfermanager.New(c, func(o *transfermanager.Options) { o.PartSizeBytes = 5 << 20 })
	_, err = tm.UploadObject(ctx(t), &transfermanager.UploadObjectInput{Bucket: aws.String(bucket), Key: aws.String("before/big"), Body: bytes.NewReader(big)})
	must(t, err, "multipart before")
	// An upload begun before the rotation and finished after it.
	cr, err := c.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("across")})
	must(t, err, "CreateMultipartUpload")
	p.Stop(t)

	newKey, err := local.Append(ring, nil, time.Now())
	must(t, err, "append a key")
	p = startProxy(t, up, proxyOptions{Env: env})
	c = p.Client(t)
	for key, want := range map[string][]byte{"before/small": small, "before/big": big} {
		if got := getBytes(t, c, bucket, key); !bytes.Equal(got, want) {
			t.Errorf("%s: read after rotation: %d bytes, want %d", key, len(got), len(want))
		}
		checkStored(t, up, ring, "sse-c", bucket, key, want, oldKey)
	}
	_, err = c.CopyObject(ctx(t), &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("after/copy"), CopySource: aws.String(bucket + "/before/small")})
	must(t, err, "CopyObject of an object under the old key")
	after := randBytes(1000)
	_, err = c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("after/new"), Body: bytes.NewReader(after)})
	must(t, err, "PutObject after")
	for key, want := range map[string][]byte{"after/new": after, "after/copy": small} {
		checkStored(t, up, ring, "sse-c", bucket, key, want, newKey)
		k, sum := derivedSSEC(t, ring, oldKey, bucket, key)
		_, err = up.Client(t).GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
			SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(k), SSECustomerKeyMD5: aws.String(sum)})
		if err == nil || httpStatus(err) != 403 {
			t.Errorf("%s: direct GET with the old key's derived key: %v, want 403", key, err)
		}
	}
	// The upload begun under the old key: its first part meets the new
	// key, which the SDK's retry of s3seal's 503 gets past.
	part := randBytes(1 << 20)
	pr, err := c.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String("across"), UploadId: cr.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(part)})
	must(t, err, "UploadPart across the rotation")
	retried := false
	for _, line := range strings.Split(p.Log(), "\n") {
		if strings.Contains(line, `"op":"UploadPart"`) && strings.Contains(line, `"status":503`) {
			retried = true
		}
	}
	if !retried {
		t.Error("the part was not first tried with the new key and answered 503 (the key ring order changed?)")
	}
	_, err = c.CompleteMultipartUpload(ctx(t), &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("across"), UploadId: cr.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: pr.ETag, ChecksumCRC32: pr.ChecksumCRC32}}}})
	must(t, err, "CompleteMultipartUpload across the rotation")
	if got := getBytes(t, c, bucket, "across"); !bytes.Equal(got, part) {
		t.Error("the upload across the rotation has other bytes")
	}
	checkStored(t, up, ring, "sse-c", bucket, "across", part, oldKey)
}

// TestSSEVersitygw runs the modes against versitygw, which accepts
// encryption headers but encrypts nothing: s3seal must refuse each write
// with a clear error and leave no plaintext behind.
func TestSSEVersitygw(t *testing.T) {
	testbed.Require(t)
	up := shared.vgw
	ring, _ := sseKeyring(t)
	p := startProxy(t, up, proxyOptions{Env: sseConfig(t, sseRulesYAML(ring)+`
  - name: c-over-http
    bucket: "http-c-*"
    mode: sse-c
    allow_http: true
`, nil)})
	c := p.Client(t)
	cases := []struct {
		mode, bucketPrefix string
		status             int
		code, msg          string
	}{
		{"sse-s3", "sse-s3-", 501, "NotImplemented", "did not confirm"},
		{"sse-kms", "sse-kms-", 501, "NotImplemented", "did not confirm"},
		{"sse-c", "sse-c-", 400, "InvalidRequest", "plain HTTP"},
		{"sse-c allow_http", "http-c-", 501, "NotImplemented", "did not confirm"},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			bucket := tc.bucketPrefix + randHex(5)
			up.CreateBucket(t, bucket)
			check := func(what string, err error) {
				t.Helper()
				if err == nil {
					t.Fatalf("%s succeeded on a store that does not encrypt", what)
				}
				if httpStatus(err) != tc.status || errorCode(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
					t.Errorf("%s: %v, want %d %s mentioning %q", what, err, tc.status, tc.code, tc.msg)
				}
			}
			_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("a"), Body: bytes.NewReader([]byte("secret"))})
			check("PutObject", err)
			if objectExists(t, up, bucket, "a") {
				t.Error("plaintext object left on the store")
			}
			// Writes after the first refusal never reach the store.
			_, err = c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("b"), Body: bytes.NewReader([]byte("secret"))})
			if err == nil || (tc.status == 501 && !strings.Contains(err.Error(), "recently accepted")) {
				t.Errorf("second PutObject: %v", err)
			}
			if objectExists(t, up, bucket, "b") {
				t.Error("plaintext object left on the store")
			}
			// Reads and listings still work.
			_, err = c.ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
			must(t, err, "ListObjectsV2")
		})
	}
	t.Run("multipart", func(t *testing.T) {
		bucket := "sse-s3-" + randHex(5)
		up.CreateBucket(t, bucket)
		cr, err := c.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("mp")})
		must(t, err, "CreateMultipartUpload")
		pr, err := c.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String("mp"), UploadId: cr.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(randBytes(1000))})
		must(t, err, "UploadPart")
		_, err = c.CompleteMultipartUpload(ctx(t), &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("mp"), UploadId: cr.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: pr.ETag}}}})
		if err == nil || errorCode(err) != "NotImplemented" {
			t.Errorf("CompleteMultipartUpload on a store that does not encrypt: %v", err)
		}
		if objectExists(t, up, bucket, "mp") {
			t.Error("plaintext multipart object left on the store")
		}
	})
}
