package integration

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"

	"github.com/s3seal/s3seal/integration/testbed"
)

// TestEnvelopeMultipart uploads and reads multipart objects through s3seal
// in envelope mode with real transfer managers.
func TestEnvelopeMultipart(t *testing.T) {
	testbed.Require(t)
	for _, up := range upstreams() {
		t.Run(up.Name, func(t *testing.T) {
			p, _ := startEnvelopeProxy(t, up, nil)
			c := p.Client(t)
			direct := up.Client(t)
			bucket := newBucket(t, up)
			body := randBytes(37<<20 + 12345)

			t.Run("transfer-manager", func(t *testing.T) {
				tm := transfermanager.New(c, func(o *transfermanager.Options) {
					o.PartSizeBytes = 8 << 20
					o.Concurrency = 4
				})
				_, err := tm.UploadObject(ctx(t), &transfermanager.UploadObjectInput{Bucket: aws.String(bucket), Key: aws.String("tm/big"), Body: bytes.NewReader(body)})
				must(t, err, "upload")
				dh, err := direct.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("tm/big")})
				must(t, err, "direct HEAD")
				if !strings.HasSuffix(strings.Trim(aws.ToString(dh.ETag), `"`), "-5") {
					t.Errorf("stored ETag %s: not a 5-part upload", aws.ToString(dh.ETag))
				}
				h, err := c.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("tm/big")})
				must(t, err, "HEAD")
				if aws.ToInt64(h.ContentLength) != int64(len(body)) {
					t.Errorf("HEAD length %d, want %d", aws.ToInt64(h.ContentLength), len(body))
				}
				var buf writerAt
				_, err = tm.DownloadObject(ctx(t), &transfermanager.DownloadObjectInput{Bucket: aws.String(bucket), Key: aws.String("tm/big"), WriterAt: &buf})
				must(t, err, "download")
				if !bytes.Equal(buf.b, body) {
					t.Fatalf("downloaded %d bytes, differ", len(buf.b))
				}
				for _, b := range []int{8 << 20, 16 << 20, 32 << 20} {
					for _, d := range []int{-1, 0, 1} {
						a := b + d - 50
						got := getBytes(t, c, bucket, "tm/big", func(in *s3.GetObjectInput) { in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", a, b+d)) })
						if !bytes.Equal(got, body[a:b+d+1]) {
							t.Errorf("range %d-%d across a part boundary: wrong bytes", a, b+d)
						}
					}
				}
				part := getBytes(t, c, bucket, "tm/big", func(in *s3.GetObjectInput) { in.PartNumber = aws.Int32(2) })
				if !bytes.Equal(part, body[8<<20:16<<20]) {
					t.Error("partNumber=2 returned other bytes")
				}
				out, err := c.ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("tm/")})
				must(t, err, "list")
				if len(out.Contents) != 1 || aws.ToInt64(out.Contents[0].Size) != int64(len(body)) {
					t.Errorf("listing: %+v", out.Contents)
				}
			})

			t.Run("minio-go", func(t *testing.T) {
				mc := p.minioClient(t)
				_, err := mc.PutObject(ctx(t), bucket, "mg/big", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{PartSize: 16 << 20})
				must(t, err, "minio-go multipart PutObject")
				o, err := mc.GetObject(ctx(t), bucket, "mg/big", minio.GetObjectOptions{})
				must(t, err, "GetObject")
				got, err := io.ReadAll(o)
				must(t, err, "read")
				if !bytes.Equal(got, body) {
					t.Error("minio-go read back other bytes")
				}
			})

			t.Run("aws-cli", func(t *testing.T) {
				dir := t.TempDir()
				must(t, os.WriteFile(filepath.Join(dir, "f"), body[:25<<20], 0o600), "write")
				p.runCLI(t, "s3", "cp", filepath.Join(dir, "f"), "s3://"+bucket+"/cli/f")
				p.runCLI(t, "s3", "cp", "s3://"+bucket+"/cli/f", filepath.Join(dir, "back"))
				got, _ := os.ReadFile(filepath.Join(dir, "back"))
				if !bytes.Equal(got, body[:25<<20]) {
					t.Error("aws s3 cp round trip differs")
				}
				ls := p.runCLI(t, "s3", "ls", "s3://"+bucket+"/cli/")
				if !strings.Contains(ls, fmt.Sprint(25<<20)) {
					t.Errorf("aws s3 ls does not show the plaintext size: %s", ls)
				}
			})

			t.Run("out-of-order-retried-duplicated", func(t *testing.T) {
				key := "low/level"
				cr, err := c.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), Metadata: map[string]string{"kind": "mpu"}})
				must(t, err, "Create")
				parts := [][]byte{body[:5<<20], body[5<<20 : 10<<20], body[10<<20 : 10<<20+777]}
				etags := make([]string, 3)
				var wg sync.WaitGroup
				var mu sync.Mutex
				// Upload in reverse order, concurrently, part 2 twice.
				for _, i := range []int{2, 1, 0, 1} {
					wg.Add(1)
					go func(i int) {
						defer wg.Done()
						out, err := c.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(parts[i])})
						if err != nil {
							t.Errorf("UploadPart %d: %v", i+1, err)
							return
						}
						mu.Lock()
						etags[i] = aws.ToString(out.ETag)
						mu.Unlock()
					}(i)
				}
				wg.Wait()
				lp, err := c.ListParts(ctx(t), &s3.ListPartsInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: cr.UploadId})
				must(t, err, "ListParts")
				// ListParts shows the store's part ETags; those UploadPart
				// returned carry the salt of the part's encryption after
				// them ("…-s<32 hex digits>", FORMAT.md section 8.4).
				for i, pt := range lp.Parts {
					listed := strings.TrimSuffix(strings.Trim(aws.ToString(pt.ETag), `"`), "-0")
					if aws.ToInt64(pt.Size) != int64(len(parts[i])) || !strings.HasPrefix(strings.Trim(etags[i], `"`), listed+"-s") {
						t.Errorf("ListParts part %d: size %d etag %s, want %d and the store's ETag of %s", i+1, aws.ToInt64(pt.Size), aws.ToString(pt.ETag), len(parts[i]), etags[i])
					}
				}
				if aws.ToString(lp.UploadId) != aws.ToString(cr.UploadId) {
					t.Error("ListParts shows another upload id")
				}
				// Parts listed out of order are refused.
				_, err = c.CompleteMultipartUpload(ctx(t), &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: cr.UploadId,
					MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(2), ETag: aws.String(etags[1])}, {PartNumber: aws.Int32(1), ETag: aws.String(etags[0])}}}})
				if errorCode(err) != "InvalidPartOrder" {
					t.Errorf("out-of-order Complete: %v", err)
				}
				var done []types.CompletedPart
				for i := range parts {
					done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: aws.String(etags[i])})
				}
				_, err = c.CompleteMultipartUpload(ctx(t), &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
				must(t, err, "Complete")
				got := getBytes(t, c, bucket, key)
				if !bytes.Equal(got, bytes.Join(parts, nil)) {
					t.Error("completed object differs")
				}
				h, err := c.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				must(t, err, "HEAD")
				if h.Metadata["kind"] != "mpu" || len(h.Metadata) != 1 {
					t.Errorf("metadata %v", h.Metadata)
				}
			})

			t.Run("unusual-part-sizes", func(t *testing.T) {
				key := "odd/parts"
				sizes := []int{5_300_001, 5_300_001, 5_300_001, 1234}
				cr, err := c.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), ContentType: aws.String("application/x-odd")})
				must(t, err, "Create")
				var done []types.CompletedPart
				var want []byte
				off := 0
				for i, n := range sizes {
					part := body[off : off+n]
					off += n
					want = append(want, part...)
					out, err := c.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(part)})
					must(t, err, "UploadPart")
					done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
				}
				res, err := c.CompleteMultipartUpload(ctx(t), &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
				must(t, err, "Complete")
				if got := getBytes(t, c, bucket, key); !bytes.Equal(got, want) {
					t.Fatalf("read back %d bytes, differ from the %d uploaded", len(got), len(want))
				}
				h, err := c.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				must(t, err, "HEAD")
				if aws.ToInt64(h.ContentLength) != int64(len(want)) || aws.ToString(h.ContentType) != "application/x-odd" || aws.ToString(h.ETag) != aws.ToString(res.ETag) {
					t.Errorf("HEAD: length %d type %s etag %s (Complete said %s)", aws.ToInt64(h.ContentLength), aws.ToString(h.ContentType), aws.ToString(h.ETag), aws.ToString(res.ETag))
				}
				out, err := c.ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("odd/")})
				must(t, err, "list")
				if len(out.Contents) != 1 || aws.ToInt64(out.Contents[0].Size) != int64(len(want)) {
					t.Errorf("listed size %+v, want %d", out.Contents, len(want))
				}
				for _, b := range []int{5_300_001, 10_600_002} {
					got := getBytes(t, c, bucket, key, func(in *s3.GetObjectInput) { in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", b-2, b+1)) })
					if !bytes.Equal(got, want[b-2:b+2]) {
						t.Errorf("range around %d: wrong bytes", b)
					}
				}
				ups, err := direct.ListMultipartUploads(ctx(t), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String("odd/")})
				must(t, err, "direct ListMultipartUploads")
				if len(ups.Uploads) != 0 {
					t.Errorf("%d uploads left behind", len(ups.Uploads))
				}
			})

			t.Run("resume-with-listed-upload-id", func(t *testing.T) {
				// The Docker registry resumes an upload with the id
				// ListMultipartUploads shows (the store's).
				key := "resume/blob"
				cr, err := c.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				must(t, err, "Create")
				part := body[:5<<20]
				u1, err := c.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: cr.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(part)})
				must(t, err, "UploadPart 1")
				// MinIO lists the uploads of one key at a time.
				ups, err := c.ListMultipartUploads(ctx(t), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String(key)})
				must(t, err, "ListMultipartUploads")
				if len(ups.Uploads) != 1 || aws.ToString(ups.Uploads[0].UploadId) == aws.ToString(cr.UploadId) {
					t.Fatalf("listed uploads %+v", ups.Uploads)
				}
				listed := ups.Uploads[0].UploadId
				u2, err := c.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: listed, PartNumber: aws.Int32(2), Body: bytes.NewReader(body[5<<20 : 6<<20])})
				must(t, err, "UploadPart 2 with the listed id")
				lp, err := c.ListParts(ctx(t), &s3.ListPartsInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: listed})
				must(t, err, "ListParts with the listed id")
				if len(lp.Parts) != 2 {
					t.Errorf("ListParts: %d parts", len(lp.Parts))
				}
				_, err = c.CompleteMultipartUpload(ctx(t), &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: listed,
					MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{
						{PartNumber: aws.Int32(1), ETag: u1.ETag}, {PartNumber: aws.Int32(2), ETag: u2.ETag}}}})
				must(t, err, "Complete with the listed id")
				if got := getBytes(t, c, bucket, key); !bytes.Equal(got, body[:6<<20]) {
					t.Errorf("resumed upload reads %d other bytes", len(got))
				}
				// The upload's state is gone, and clients never see it.
				left, err := direct.ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(".s3seal/")})
				must(t, err, "direct list of the state prefix")
				for _, o := range left.Contents {
					// The bucket's format markers stay (FORMAT.md 9.4).
					if k := aws.ToString(o.Key); !strings.HasPrefix(k, ".s3seal/format-2") && k != ".s3seal/irregular" {
						t.Errorf("state left behind: %s", k)
					}
				}
				_, err = c.ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(".s3seal/")})
				if errorCode(err) != "AccessDenied" {
					t.Errorf("listing the state prefix through s3seal: %v, want AccessDenied", err)
				}
				// A store id nobody recorded is refused.
				_, err = c.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: aws.String("not-an-upload"), PartNumber: aws.Int32(1), Body: bytes.NewReader(part[:10])})
				if errorCode(err) != "NoSuchUpload" {
					t.Errorf("unknown upload id: %v, want NoSuchUpload", err)
				}
			})

			t.Run("abort-leaves-nothing", func(t *testing.T) {
				cr, err := c.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("aborted")})
				must(t, err, "Create")
				_, err = c.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String("aborted"), UploadId: cr.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(body[:1000])})
				must(t, err, "UploadPart")
				_, err = c.AbortMultipartUpload(ctx(t), &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("aborted"), UploadId: cr.UploadId})
				must(t, err, "Abort")
				ups, err := direct.ListMultipartUploads(ctx(t), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String("aborted")})
				must(t, err, "direct ListMultipartUploads")
				if len(ups.Uploads) != 0 || objectExists(t, up, bucket, "aborted") {
					t.Error("the aborted upload left something in the store")
				}
			})

			t.Run("copy", func(t *testing.T) {
				// Single-PUT source: resealed server-side.
				src := body[:300_000]
				_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("copy/src"), Body: bytes.NewReader(src), Metadata: map[string]string{"a": "1"}})
				must(t, err, "PutObject")
				_, err = c.CopyObject(ctx(t), &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("copy/dst"), CopySource: aws.String(bucket + "/copy/src")})
				must(t, err, "CopyObject")
				if got := getBytes(t, c, bucket, "copy/dst"); !bytes.Equal(got, src) {
					t.Error("copy reads other bytes")
				}
				so, _ := direct.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("copy/src")})
				do, _ := direct.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("copy/dst")})
				sb, _ := io.ReadAll(so.Body)
				db, _ := io.ReadAll(do.Body)
				if !bytes.Equal(sb, db) {
					t.Error("the copy's stored body differs from the source's: it was re-encrypted, not resealed")
				}
				if so.Metadata["s3seal"] == do.Metadata["s3seal"] || do.Metadata["a"] != "1" {
					t.Errorf("copy metadata: s3seal field unchanged or user metadata lost: %v", do.Metadata)
				}
				_, err = c.CopyObject(ctx(t), &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("copy/replaced"), CopySource: aws.String(bucket + "/copy/src"),
					MetadataDirective: types.MetadataDirectiveReplace, Metadata: map[string]string{"b": "2"}})
				must(t, err, "CopyObject REPLACE")
				h, err := c.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("copy/replaced")})
				must(t, err, "HEAD")
				if h.Metadata["b"] != "2" || h.Metadata["a"] != "" {
					t.Errorf("REPLACE metadata: %v", h.Metadata)
				}
				// Multipart source: copied part by part server-side.
				_, err = c.CopyObject(ctx(t), &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("copy/big"), CopySource: aws.String(bucket + "/tm/big")})
				must(t, err, "CopyObject multipart source")
				if got := getBytes(t, c, bucket, "copy/big"); !bytes.Equal(got, body) {
					t.Error("multipart copy reads other bytes")
				}
				// Plaintext source (written directly to the store): encrypted through s3seal.
				_, err = direct.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("copy/plain"), Body: bytes.NewReader(src)})
				must(t, err, "direct PutObject")
				_, err = c.CopyObject(ctx(t), &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("copy/from-plain"), CopySource: aws.String(bucket + "/copy/plain")})
				must(t, err, "CopyObject from plaintext")
				if got := getBytes(t, c, bucket, "copy/from-plain"); !bytes.Equal(got, src) {
					t.Error("copy from plaintext reads other bytes")
				}
				// UploadPartCopy from an envelope object at an unaligned range.
				cr, err := c.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("copy/parts")})
				must(t, err, "Create")
				pc, err := c.UploadPartCopy(ctx(t), &s3.UploadPartCopyInput{Bucket: aws.String(bucket), Key: aws.String("copy/parts"), UploadId: cr.UploadId, PartNumber: aws.Int32(1),
					CopySource: aws.String(bucket + "/tm/big"), CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", 100, 100+5<<20-1))})
				must(t, err, "UploadPartCopy")
				_, err = c.CompleteMultipartUpload(ctx(t), &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("copy/parts"), UploadId: cr.UploadId,
					MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: pc.CopyPartResult.ETag}}}})
				must(t, err, "Complete")
				if got := getBytes(t, c, bucket, "copy/parts"); !bytes.Equal(got, body[100:100+5<<20]) {
					t.Error("UploadPartCopy object reads other bytes")
				}
			})

			t.Run("tampered-parts", func(t *testing.T) {
				// Rebuild "tm/big" in the store with parts 2 and 3 swapped,
				// keeping its s3seal metadata.
				h, err := direct.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("tm/big"), PartNumber: aws.Int32(1)})
				must(t, err, "direct HEAD part 1")
				ps := aws.ToInt64(h.ContentLength)
				full, err := direct.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("tm/big")})
				must(t, err, "direct HEAD")
				total := aws.ToInt64(full.ContentLength)
				cr, err := direct.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("tm/big"), Metadata: full.Metadata})
				must(t, err, "direct Create")
				order := []int{0, 2, 1, 3, 4}
				var done []types.CompletedPart
				for i, src := range order {
					end := min(int64(src+1)*ps, total) - 1
					out, err := direct.UploadPartCopy(ctx(t), &s3.UploadPartCopyInput{Bucket: aws.String(bucket), Key: aws.String("tm/big"), UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1)),
						CopySource: aws.String(bucket + "/tm/big"), CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", int64(src)*ps, end))})
					must(t, err, "direct UploadPartCopy")
					done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.CopyPartResult.ETag})
				}
				_, err = direct.CompleteMultipartUpload(ctx(t), &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("tm/big"), UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
				must(t, err, "direct Complete")
				out, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("tm/big")})
				if err == nil {
					got, rerr := io.ReadAll(out.Body)
					out.Body.Close()
					if rerr == nil {
						t.Fatalf("a swapped-parts object read cleanly (%d bytes)", len(got))
					}
					if len(got) > 8<<20 {
						t.Errorf("released %d bytes, beyond the intact first part", len(got))
					}
				}
			})
		})
	}
}

// TestEnvelopeMultipartAcrossReplicas alternates the parts of one upload
// between two s3seal processes, restarts one mid-upload, and completes on
// the other: no state lives in any process.
func TestEnvelopeMultipartAcrossReplicas(t *testing.T) {
	testbed.Require(t)
	up := shared.minio
	ring := newKeyring(t)
	// Two replicas with the same key ring and client identity.
	ak, sk := "replica-client", "replica-secret-"+randHex(8)
	env := map[string]string{"S3SEAL_MODE": "envelope", "S3SEAL_KEYS": "local:" + ring,
		"S3SEAL_CLIENT_ACCESS_KEY_ID": ak, "S3SEAL_CLIENT_SECRET_ACCESS_KEY": sk}
	a := startProxy(t, up, proxyOptions{Env: env})
	b := startProxy(t, up, proxyOptions{Env: env})
	a.AccessKey, a.SecretKey, b.AccessKey, b.SecretKey = ak, sk, ak, sk
	bucket := newBucket(t, up)
	key := "replicas/object"
	body := randBytes(4*(5<<20) + 999)
	cr, err := a.Client(t).CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	must(t, err, "Create on A")
	var done []types.CompletedPart
	for i := 0; i < 5; i++ {
		via := a
		if i%2 == 1 {
			via = b
		}
		if i == 2 {
			a.Restart(t) // s3seal A restarts between parts
			waitReady(t, a.Admin+"/readyz", 20*time.Second)
		}
		part := body[i*(5<<20) : min((i+1)*(5<<20), len(body))]
		out, err := via.Client(t).UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(part)})
		must(t, err, fmt.Sprintf("UploadPart %d", i+1))
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
	}
	_, err = b.Client(t).CompleteMultipartUpload(ctx(t), &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
	must(t, err, "Complete on B")
	for _, p := range []*proxy{a, b} {
		if got := getBytes(t, p.Client(t), bucket, key); !bytes.Equal(got, body) {
			t.Errorf("read through %s: other bytes", p.Endpoint)
		}
	}
}
