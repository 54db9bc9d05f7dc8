package proxy

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/proxy/authz"
	"github.com/s3seal/s3seal/proxy/policy"
	s3proto "github.com/s3seal/s3seal/proxy/s3"
)

// modesEnv has one bucket per mode: bplain (passthrough), bs3, bkms,
// bssec, benv and bdeny (deny writes).
func modesEnv(t testing.TB) *testEnv {
	t.Helper()
	return newEnv(t, envOptions{
		Rules: []policy.Rule{
			{Name: "s3", Bucket: "bs3", Mode: policy.SSES3},
			{Name: "kms", Bucket: "bkms", Mode: policy.SSEKMS, KMSKeyID: "k1"},
			{Name: "ssec", Bucket: "bssec", Mode: policy.SSEC},
			{Name: "env", Bucket: "benv", Mode: policy.Envelope},
			{Name: "ro", Bucket: "bdeny", Mode: policy.Deny, Deny: policy.DenyWrites},
		},
		Ring:    testRing(t, "k"),
		Clients: []Identity{{Client: authz.Client{Name: "app", Admin: true}, AccessKeyID: testAK, Secret: testSK}},
		Buckets: []string{"bplain", "bs3", "bkms", "bssec", "benv", "bdeny"},
		Store:   memStoreOptions{MinPartSize: 64 << 10},
	})
}

// TestModesPutGetListCopyMultipart runs the object operations through
// each writable mode and checks what the store holds.
func TestModesPutGetListCopyMultipart(t *testing.T) {
	t.Parallel()
	env := modesEnv(t)
	ring := env.rt.Keyring
	ctx := context.Background()
	for _, bucket := range []string{"bplain", "bs3", "bkms", "bssec", "benv"} {
		t.Run(bucket, func(t *testing.T) {
			c := env.sdk(t)
			b := aws.String(bucket)
			data := pattern(100_000, 13)
			// stored checks how the store holds key.
			stored := func(key string, want []byte) {
				t.Helper()
				o := env.store.object(bucket, key)
				if o == nil {
					t.Fatalf("the store holds no %s", key)
				}
				if bucket == "benv" {
					checkSealed(t, env.store, bucket, key, want)
					return
				}
				if !bytes.Equal(o.data, want) {
					t.Errorf("%s: the store holds %d bytes, want the %d sent", key, len(o.data), len(want))
				}
				var got string
				switch bucket {
				case "bplain":
					got = o.alg + o.keyMD5
				case "bs3":
					got = o.alg
				case "bkms":
					got = o.alg + " " + o.kmsKey
				case "bssec":
					got = o.keyMD5
				}
				wantEnc := map[string]string{"bplain": "", "bs3": "AES256", "bkms": "aws:kms k1"}[bucket]
				if bucket == "bssec" {
					wantEnc = derivedMD5(t, ring, "k", bucket, key)
				}
				if got != wantEnc {
					t.Errorf("%s: stored with encryption %q, want %q", key, got, wantEnc)
				}
			}
			read := func(key string) []byte {
				t.Helper()
				out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String(key)})
				if err != nil {
					t.Fatalf("GET %s: %v", key, err)
				}
				defer out.Body.Close()
				got, _ := io.ReadAll(out.Body)
				return got
			}
			put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("k"), Body: bytes.NewReader(data), Metadata: map[string]string{"m": "v"}})
			if err != nil {
				t.Fatal(err)
			}
			stored("k", data)
			if !bytes.Equal(read("k"), data) {
				t.Error("GET does not return what was put")
			}
			head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("k")})
			if err != nil || aws.ToInt64(head.ContentLength) != int64(len(data)) || head.Metadata["m"] != "v" || aws.ToString(head.ETag) != aws.ToString(put.ETag) {
				t.Errorf("HEAD: %v, %+v", err, head)
			}
			// Copy within the bucket.
			if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("k2"), CopySource: aws.String(bucket + "/k")}); err != nil {
				t.Fatal(err)
			}
			stored("k2", data)
			if !bytes.Equal(read("k2"), data) {
				t.Error("the copy does not read back")
			}
			// Multipart: a 64 KiB part and a small one.
			cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("mp")})
			if err != nil {
				t.Fatal(err)
			}
			var done []types.CompletedPart
			for i, p := range [][]byte{data[:65536], data[65536:]} {
				out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("mp"), UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)})
				if err != nil {
					t.Fatal(err)
				}
				done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
			}
			lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: aws.String("mp"), UploadId: cr.UploadId})
			if err != nil || len(lp.Parts) != 2 || aws.ToInt64(lp.Parts[0].Size) != 65536 {
				t.Fatalf("ListParts: %v %+v", err, lp)
			}
			co, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: aws.String("mp"), UploadId: cr.UploadId,
				MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
			if err != nil {
				t.Fatal(err)
			}
			// Location names the object at s3seal, not at the store.
			if got, want := aws.ToString(co.Location), env.srv.URL+"/"+bucket+"/mp"; got != want {
				t.Errorf("Location %q, want %q", got, want)
			}
			if o := env.store.object(bucket, "mp"); o == nil || len(o.parts) != 2 || !strings.HasSuffix(o.etag, `-2"`) {
				t.Errorf("the completed object: %+v", o)
			}
			stored("mp", data)
			if !bytes.Equal(read("mp"), data) {
				t.Error("the multipart object does not read back")
			}
			// Listings show every key with the size clients see.
			l, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b})
			if err != nil || len(l.Contents) != 3 {
				t.Fatalf("listing: %v %+v", err, l)
			}
			for _, o := range l.Contents {
				if aws.ToInt64(o.Size) != int64(len(data)) {
					t.Errorf("listing: %s has size %d", aws.ToString(o.Key), aws.ToInt64(o.Size))
				}
			}
			// Deletes.
			if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: aws.String("k2")}); err != nil {
				t.Fatal(err)
			}
			dr, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: b, Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("k")}, {Key: aws.String("mp")}}}})
			if err != nil || len(dr.Deleted) != 2 || len(dr.Errors) != 0 {
				t.Fatalf("DeleteObjects: %v %+v", err, dr)
			}
			// What is left is s3seal's: the marker of an envelope bucket.
			if keys := env.store.keys(bucket); len(keys) != 0 && (bucket != "benv" || strings.Join(keys, " ") != markerFormat2) {
				t.Errorf("keys left: %v", keys)
			}
		})
	}
}

// TestDenyWritesMode: reads pass, every write is refused before the
// store.
func TestDenyWritesMode(t *testing.T) {
	t.Parallel()
	env := modesEnv(t)
	env.store.put("bdeny", "k", &memObject{data: []byte("read me")})
	env.store.put("bplain", "src", &memObject{data: []byte("source")})
	if got := mustBody(t, env.do(t, "GET", "/bdeny/k", nil)); string(got) != "read me" {
		t.Errorf("GET %q", got)
	}
	if l := parseListing(t, mustBody(t, env.do(t, "GET", "/bdeny/?list-type=2", nil))); len(l.Contents) != 1 {
		t.Errorf("listing %+v", l)
	}
	// Copying out of it is a read.
	expect(t, env.do(t, "PUT", "/bplain/out", nil, "X-Amz-Copy-Source", "bdeny/k"), 200)
	env.store.reset()
	for _, w := range []struct {
		method, path string
		kv           []string
	}{
		{"PUT", "/bdeny/k", nil},
		{"PUT", "/bdeny/k2", []string{"X-Amz-Copy-Source", "bplain/src"}},
		{"POST", "/bdeny/k?uploads", nil},
		{"DELETE", "/bdeny/k", nil},
		{"PUT", "/bdeny/k?tagging", nil},
	} {
		_, code, msg := expect(t, env.do(t, w.method, w.path, []byte("<Tagging><TagSet/></Tagging>"), w.kv...), 403)
		if code != "AccessDenied" || !strings.Contains(msg, `"ro"`) {
			t.Errorf("%s %s: %s %q", w.method, w.path, code, msg)
		}
	}
	if n := env.store.requestCount(); n != 0 {
		t.Errorf("%d refused writes reached the store", n)
	}
	if string(env.store.object("bdeny", "k").data) != "read me" {
		t.Error("the object changed")
	}
}

// TestListingParameters pages through listings with every parameter
// s3seal forwards, in a passthrough bucket and an envelope one.
func TestListingParameters(t *testing.T) {
	t.Parallel()
	env := modesEnv(t)
	keys := []string{"a b", "a+b", "dir/1", "dir/2", "dir/sub/3", "z", "é"} // in byte order
	for _, b := range []string{"bplain", "benv"} {
		for _, k := range keys {
			expect(t, env.do(t, "PUT", s3proto.EscapePath("/"+b+"/"+k), []byte(k)), 200)
		}
	}
	for _, b := range []string{"bplain", "benv"} {
		t.Run(b, func(t *testing.T) {
			// V1, two at a time, with markers.
			var got []string
			marker := ""
			for page := 0; page < 10; page++ {
				l := parseListing(t, mustBody(t, env.do(t, "GET", "/"+b+"/?max-keys=2&marker="+url.QueryEscape(marker), nil)))
				for _, e := range l.Contents {
					got = append(got, e.Key)
					if e.Size != int64(len(e.Key)) {
						t.Errorf("%s: size %d", e.Key, e.Size)
					}
				}
				if !l.IsTruncated {
					break
				}
				marker = l.NextMarker
			}
			if strings.Join(got, "|") != strings.Join(keys, "|") {
				t.Errorf("V1 pages: %q", got)
			}
			// V2 with a delimiter, start-after and URL encoding.
			l := parseListing(t, mustBody(t, env.do(t, "GET", "/"+b+"/?list-type=2&delimiter=/&start-after=a%2Bb&encoding-type=url", nil)))
			var names []string
			for _, e := range l.Contents {
				k, err := url.QueryUnescape(e.Key)
				if err != nil {
					t.Fatal(err)
				}
				names = append(names, k)
			}
			if strings.Join(names, "|") != "z|é" || strings.Join(l.CommonPrefixes, "|") != "dir/" || l.KeyCount != 3 {
				t.Errorf("V2: keys %q, prefixes %q, count %d", names, l.CommonPrefixes, l.KeyCount)
			}
			// Within a prefix, with a continuation token.
			l = parseListing(t, mustBody(t, env.do(t, "GET", "/"+b+"/?list-type=2&prefix=dir/&max-keys=1", nil)))
			if len(l.Contents) != 1 || l.Contents[0].Key != "dir/1" || !l.IsTruncated || l.NextContinuationToken == "" {
				t.Fatalf("V2 first page: %+v", l)
			}
			l = parseListing(t, mustBody(t, env.do(t, "GET", "/"+b+"/?list-type=2&prefix=dir/&delimiter=/&continuation-token="+url.QueryEscape(l.NextContinuationToken), nil)))
			if len(l.Contents) != 1 || l.Contents[0].Key != "dir/2" || strings.Join(l.CommonPrefixes, "|") != "dir/sub/" || l.IsTruncated {
				t.Errorf("V2 second page: %+v", l)
			}
			// Versions, paged. In the envelope bucket the store's first
			// page also holds s3seal's marker .s3seal/format-2, which
			// clients do not see: that page has one entry less.
			first := 3
			if b == "benv" {
				first = 2
			}
			l = parseListing(t, mustBody(t, env.do(t, "GET", "/"+b+"/?versions&max-keys=3", nil)))
			if len(l.Versions) != first || !l.IsTruncated || l.NextKeyMarker != keys[first-1] {
				t.Fatalf("versions page: %+v", l)
			}
			l = parseListing(t, mustBody(t, env.do(t, "GET", "/"+b+"/?versions&key-marker="+url.QueryEscape(l.NextKeyMarker)+"&version-id-marker="+l.NextVersionIDMarker, nil)))
			if len(l.Versions) != len(keys)-first || l.Versions[0].Key != keys[first] || l.Versions[0].Size != int64(len(keys[first])) || !l.Versions[0].IsLatest {
				t.Errorf("versions second page: %+v", l.Versions)
			}
		})
	}
}

// TestSSEMultipartPlaintextETag: under sse-kms and sse-c, a multipart
// upload whose parts were sent with Content-MD5 completes with the ETag
// rclone and other verifying tools compute (the MD5 of the parts' MD5s,
// -N); with a part without Content-MD5 the store's ETag stands.
func TestSSEMultipartPlaintextETag(t *testing.T) {
	t.Parallel()
	env := modesEnv(t)
	c := env.sdk(t)
	ctx := context.Background()
	for _, bucket := range []string{"bkms", "bssec", "bplain"} {
		for _, withMD5 := range []bool{true, false} {
			b, k := aws.String(bucket), aws.String(fmt.Sprintf("mp-%v", withMD5))
			cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: k})
			if err != nil {
				t.Fatal(err)
			}
			parts := [][]byte{pattern(5<<20, 1), pattern(1000, 2)}
			composite := md5.New()
			var done []types.CompletedPart
			for i, p := range parts {
				sum := md5.Sum(p)
				composite.Write(sum[:])
				in := &s3.UploadPartInput{Bucket: b, Key: k, UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)}
				if withMD5 {
					in.ContentMD5 = aws.String(base64.StdEncoding.EncodeToString(sum[:]))
				}
				out, err := c.UploadPart(ctx, in)
				if err != nil {
					t.Fatal(err)
				}
				done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
			}
			co, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: k, UploadId: cr.UploadId,
				MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
			if err != nil {
				t.Fatalf("%s %v: %v", bucket, withMD5, err)
			}
			want := `"` + hex.EncodeToString(composite.Sum(nil)) + `-2"`
			stored := env.store.object(bucket, *k).etag
			got := aws.ToString(co.ETag)
			if bucket != "bplain" && stored == want {
				t.Fatalf("%s: the store's ETag is the plaintext one, so this proves nothing", bucket)
			}
			switch {
			case bucket == "bplain":
				// Passthrough: the store's ETag (which the in-memory
				// store computes the way MinIO does without SSE).
				if got != stored {
					t.Errorf("%s: Complete ETag %s, store's %s", bucket, got, stored)
				}
			case withMD5 && got != want:
				t.Errorf("%s with Content-MD5: Complete ETag %s, want %s", bucket, got, want)
			case !withMD5 && got != stored:
				t.Errorf("%s without Content-MD5: Complete ETag %s, want the store's %s", bucket, got, stored)
			}
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: k})
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(out.Body)
			out.Body.Close()
			if !bytes.Equal(data, append(append([]byte(nil), parts[0]...), parts[1]...)) {
				t.Errorf("%s: the object does not read back", bucket)
			}
		}
	}
}
