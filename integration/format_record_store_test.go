package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/integration/testbed"
)

// TestPartSetRecordPlacement measures, on each store of the test bed (and
// on MinIO without TLS and KMS too), the two places that could hold a
// multipart object's part-set record (FORMAT.md, section 8.3), written
// after CompleteMultipartUpload: an object tag, set with one
// PutObjectTagging, and the object's user metadata, rewritten by a
// CopyObject of the object onto itself with the REPLACE metadata
// directive. For the tag, which FORMAT.md chose, it checks what s3seal
// relies on: the ETag keeps its "-N" suffix, the object keeps its parts
// (HEAD ?partNumber=1 answers with the first part and the part count), the
// bytes and the data directory stay as they were. For the self-copy it
// logs the same facts without requiring them, since MinIO copies the data
// and drops the parts. Timings are logged next to a copy of the same
// object to a new key, which copies the data.
//
// The object is 16 parts of 5 MiB by default; S3SEAL_RECORD_PART_MIB
// changes the part size (64 gives the 1 GiB object FORMAT.md reports).
func TestPartSetRecordPlacement(t *testing.T) {
	testbed.Require(t)
	partMiB := 5
	if v := os.Getenv("S3SEAL_RECORD_PART_MIB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 5 || n > 256 {
			t.Fatalf("S3SEAL_RECORD_PART_MIB=%q: want 5..256", v)
		}
		partMiB = n
	}
	const parts = 16
	plain := testbed.StartMinIO(t, testbed.MinIOOptions{})
	plain.Name = "minio-plain"
	for _, s := range append(upstreams(), plain) {
		t.Run(s.Name, func(t *testing.T) {
			bucket := "record-" + randHex(4)
			s.CreateBucket(t, bucket)
			measureRecordPlacement(t, s, bucket, parts, partMiB<<20)
		})
	}
}

func measureRecordPlacement(t *testing.T, s *testbed.S3Server, bucket string, parts, partSize int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := s.Client(t)
	key := "backup.tar"
	part := make([]byte, partSize)
	rand.Read(part)
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key,
		Metadata: map[string]string{"s3seal": "header-written-at-create"}})
	if err != nil {
		t.Fatal(err)
	}
	var done []s3types.CompletedPart
	t0 := time.Now()
	for n := int32(1); n <= int32(parts); n++ {
		part[0] = byte(n) // parts differ, so a reordering would show
		r, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
			PartNumber: aws.Int32(n), Body: bytes.NewReader(part), ContentLength: aws.Int64(int64(partSize))})
		if err != nil {
			t.Fatal(err)
		}
		done = append(done, s3types.CompletedPart{PartNumber: aws.Int32(n), ETag: r.ETag})
	}
	upload := time.Since(t0)
	t0 = time.Now()
	comp, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
		MultipartUpload: &s3types.CompletedMultipartUpload{Parts: done}})
	if err != nil {
		t.Fatal(err)
	}
	complete := time.Since(t0)
	etag := aws.ToString(comp.ETag)
	total := int64(parts) * int64(partSize)
	t.Logf("%s: %d parts of %d MiB (%d MiB): upload %v, complete %v, ETag %s",
		s.Name, parts, partSize>>20, total>>20, upload.Round(time.Millisecond), complete.Round(time.Millisecond), etag)
	if !strings.HasSuffix(strings.Trim(etag, `"`), "-"+strconv.Itoa(parts)) {
		t.Fatalf("multipart ETag %s has no -%d suffix", etag, parts)
	}
	checkParts := func(what string) {
		t.Helper()
		h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key, PartNumber: aws.Int32(1)})
		if err != nil {
			t.Fatalf("%s: HEAD ?partNumber=1: %v", what, err)
		}
		if aws.ToInt32(h.PartsCount) != int32(parts) || aws.ToInt64(h.ContentLength) != int64(partSize) {
			t.Errorf("%s: HEAD ?partNumber=1 gives %d parts, part 1 of %d bytes; want %d parts of %d",
				what, aws.ToInt32(h.PartsCount), aws.ToInt64(h.ContentLength), parts, partSize)
		}
		g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, Range: aws.String(fmt.Sprintf("bytes=%d-%d", total-int64(partSize), total-int64(partSize)+9))})
		if err != nil {
			t.Fatalf("%s: ranged GET: %v", what, err)
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(g.Body)
		g.Body.Close()
		if want := append([]byte{byte(parts)}, part[1:10]...); !bytes.Equal(b.Bytes(), want) {
			t.Errorf("%s: the last part's first bytes changed", what)
		}
	}
	checkParts("after Complete")

	// A tag.
	before := dirBytes(t, s.Dir)
	record := strings.Repeat("R", 111) // the size of a base64url part-set record
	t0 = time.Now()
	if _, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: &bucket, Key: &key,
		Tagging: &s3types.Tagging{TagSet: []s3types.Tag{{Key: aws.String("s3seal-parts"), Value: aws.String(record)}}}}); err != nil {
		t.Fatalf("PutObjectTagging: %v", err)
	}
	tagging := time.Since(t0)
	grown := dirBytes(t, s.Dir) - before
	tags, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: &bucket, Key: &key})
	if err != nil || len(tags.TagSet) != 1 || aws.ToString(tags.TagSet[0].Value) != record {
		t.Errorf("tag not stored: %v %v", tags, err)
	}
	h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: record as a tag: PutObjectTagging %v, ETag %s -> %s, data directory grew %d bytes",
		s.Name, tagging.Round(time.Millisecond), etag, aws.ToString(h.ETag), grown)
	if aws.ToString(h.ETag) != etag {
		t.Errorf("tagging changed the ETag from %s to %s", etag, aws.ToString(h.ETag))
	}
	if grown > total/2 {
		t.Errorf("tagging grew the data directory by %d bytes", grown)
	}
	checkParts("after tagging")

	// Metadata, by a copy onto itself. Logged, not required: FORMAT.md
	// keeps the record out of the metadata because of what this shows.
	before = dirBytes(t, s.Dir)
	t0 = time.Now()
	cp, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: &key,
		CopySource: aws.String(bucket + "/" + key), CopySourceIfMatch: aws.String(etag),
		MetadataDirective: s3types.MetadataDirectiveReplace,
		Metadata:          map[string]string{"s3seal": "header-written-at-create", "s3seal-parts": record}})
	selfCopy := time.Since(t0)
	if err != nil {
		t.Logf("%s: self-copy with REPLACE refused: %v", s.Name, err)
	} else {
		grown = dirBytes(t, s.Dir) - before
		h, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key, PartNumber: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: record in metadata by a self-copy: %v, ETag %s -> %s, parts %d -> %d, data directory grew %d bytes, record stored %v",
			s.Name, selfCopy.Round(time.Millisecond), etag, aws.ToString(cp.CopyObjectResult.ETag),
			parts, aws.ToInt32(h.PartsCount), grown, h.Metadata["s3seal-parts"] == record)
	}

	// For contrast: a copy to another key, which copies the data.
	before = dirBytes(t, s.Dir)
	t0 = time.Now()
	other := key + ".copy"
	oc, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: &other, CopySource: aws.String(bucket + "/" + key)})
	if err != nil {
		t.Logf("%s: copy to another key: %v", s.Name, err)
		return
	}
	t.Logf("%s: copy to another key: %v, ETag %s, data directory grew %d bytes",
		s.Name, time.Since(t0).Round(time.Millisecond), aws.ToString(oc.CopyObjectResult.ETag), dirBytes(t, s.Dir)-before)
}

// dirBytes is the total size of the regular files under dir.
func dirBytes(t *testing.T, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // files come and go while the store works
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
