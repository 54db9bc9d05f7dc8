package integration

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/integration/testbed"
)

// TestDeleteBucketEnvelope deletes, through s3seal in envelope mode, a
// bucket whose client objects are all gone but which still holds s3seal's
// format marker and the state of an unfinished upload; and refuses to
// delete one that still holds a client object, leaving s3seal's objects
// in place. Judged by what the store holds.
func TestDeleteBucketEnvelope(t *testing.T) {
	testbed.Require(t)
	for _, up := range upstreams() {
		t.Run(up.Name, func(t *testing.T) {
			p, _ := startEnvelopeProxy(t, up, nil)
			c, direct := p.Client(t), up.Client(t)
			bucket := newBucket(t, up)
			put := func(key string) {
				_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(randBytes(1000))})
				must(t, err, "PutObject ", key)
			}
			put("a")
			put("b")
			_, err := c.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("pending")})
			must(t, err, "CreateMultipartUpload")
			own := storeKeys(t, direct, bucket, ".s3seal/")
			if len(own) < 2 {
				t.Fatalf("the store holds %v under .s3seal/; want the format marker and the upload's state", own)
			}

			// A client object left: the store's BucketNotEmpty, and
			// s3seal's objects untouched.
			_, err = c.DeleteObject(ctx(t), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("a")})
			must(t, err, "DeleteObject a")
			_, err = c.DeleteBucket(ctx(t), &s3.DeleteBucketInput{Bucket: aws.String(bucket)})
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != "BucketNotEmpty" {
				t.Fatalf("DeleteBucket with an object left: %v; want BucketNotEmpty", err)
			}
			if got := storeKeys(t, direct, bucket, ".s3seal/"); strings.Join(got, ",") != strings.Join(own, ",") {
				t.Errorf("after a refused DeleteBucket the store holds %v under .s3seal/; want %v", got, own)
			}
			if got := getBytes(t, c, bucket, "b"); len(got) != 1000 {
				t.Errorf("object b reads back %d bytes after the refused DeleteBucket", len(got))
			}

			// The last client object gone: the bucket is deleted.
			_, err = c.DeleteObject(ctx(t), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("b")})
			must(t, err, "DeleteObject b")
			_, err = c.DeleteBucket(ctx(t), &s3.DeleteBucketInput{Bucket: aws.String(bucket)})
			must(t, err, "DeleteBucket once only s3seal's objects are left")
			if _, err := direct.HeadBucket(ctx(t), &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err == nil {
				t.Fatal("the store still has the bucket")
			}

			// Created again with the same name, it takes version 2 objects
			// whose listed sizes are right (the markers come back).
			up.CreateBucket(t, bucket)
			put("again")
			l, err := c.ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
			must(t, err, "ListObjectsV2")
			if len(l.Contents) != 1 || aws.ToInt64(l.Contents[0].Size) != 1000 {
				t.Errorf("listing of the bucket created again: %d entries, first size %v; want 1 of 1000 bytes", len(l.Contents), l.Contents)
			}
		})
	}
}

// storeKeys lists the keys under prefix in bucket as the store's owner.
func storeKeys(t *testing.T, c *s3.Client, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx(t))
		must(t, err, "list the store")
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}
