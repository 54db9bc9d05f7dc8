package proxy

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/crypto/stream"
	"github.com/s3seal/s3seal/proxy/authz"
	"github.com/s3seal/s3seal/proxy/policy"
)

// Envelope mode through the whole handler, in front of the memory store.

// envelopeEnv is s3seal with bucket benv under an envelope rule, bplain
// passthrough, bs3 sse-s3 and bkms sse-kms, an administrator client, and
// parts of at least 64 KiB.
func envelopeEnv(t testing.TB, edit ...func(*envOptions)) *testEnv {
	t.Helper()
	o := envOptions{
		Rules: []policy.Rule{
			{Name: "env", Bucket: "benv", Mode: policy.Envelope},
			{Name: "s3", Bucket: "bs3", Mode: policy.SSES3},
			{Name: "kms", Bucket: "bkms", Mode: policy.SSEKMS, KMSKeyID: "k1"},
		},
		Ring:    testRing(t, "k"),
		Clients: []Identity{{Client: authz.Client{Name: "app", Admin: true}, AccessKeyID: testAK, Secret: testSK}},
		Buckets: []string{"benv", "bplain", "bs3", "bkms"},
		Store:   memStoreOptions{MinPartSize: 64 << 10},
	}
	for _, f := range edit {
		f(&o)
	}
	return newEnv(t, o)
}

// pattern returns n bytes that differ from any other (n, seed) pair at
// every chunk.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i/7) ^ byte(i>>16) ^ seed ^ byte(i*31)
	}
	return b
}

func quotedMD5(b []byte) string {
	sum := md5.Sum(b)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

// apiCode returns the S3 error code of an SDK error, "" for none.
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// checkSealed checks that the store holds bucket/key as s3seal ciphertext
// of plain in format version 2: s3seal's metadata, the ciphertext size,
// none of the plaintext, the store's ETag the MD5 of the ciphertext, and a
// multipart object's part-set record as its tag.
func checkSealed(t testing.TB, st *memStore, bucket, key string, plain []byte) *memObject {
	t.Helper()
	o := st.object(bucket, key)
	if o == nil {
		t.Fatalf("the store holds no %s/%s", bucket, key)
	}
	hdr, err := envelope.Parse(o.meta[envelope.MetadataKey])
	if err != nil {
		t.Fatalf("%s/%s: no valid s3seal metadata in the store (metadata %v): %v", bucket, key, o.meta, err)
	}
	if hdr.Version() != envelope.VersionV2 || hdr.Multipart() != (len(o.parts) > 0) {
		t.Errorf("%s/%s: header version %d, multipart %v; want a version 2 header of this kind of object", bucket, key, hdr.Version(), hdr.Multipart())
	}
	if rec := o.tags.Get(envelope.PartSetTag); hdr.Multipart() {
		r, err := envelope.ParsePartSetRecord(rec)
		if err != nil || r.Unverified().Parts != len(o.parts) || r.Unverified().PlaintextSize() != int64(len(plain)) {
			t.Errorf("%s/%s: part-set record %q (%v) does not describe %d parts and %d bytes", bucket, key, rec, err, len(o.parts), len(plain))
		}
	} else if rec != "" {
		t.Errorf("%s/%s: a single-PUT object with a part-set record", bucket, key)
	}
	if len(o.parts) == 0 {
		if want, _ := stream.CiphertextSizeV2(int64(len(plain))); int64(len(o.data)) != want {
			t.Errorf("%s/%s: the store holds %d bytes, want the ciphertext size %d", bucket, key, len(o.data), want)
		}
		if o.etag != quotedMD5(o.data) {
			t.Errorf("%s/%s: store ETag %s is not the MD5 of what it holds", bucket, key, o.etag)
		}
	}
	if len(plain) >= 16 && bytes.Contains(o.data, plain[:16]) {
		t.Errorf("%s/%s: the store holds plaintext", bucket, key)
	}
	return o
}

func TestEnvelopePutGetHeadSizes(t *testing.T) {
	t.Parallel()
	env := envelopeEnv(t)
	c := env.sdk(t)
	ctx := context.Background()
	for _, n := range []int{0, 1, 65535, 65536, 65537, 3<<20 + 17} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			key := fmt.Sprintf("sizes/%d", n)
			data := pattern(n, byte(n))
			put, err := c.PutObject(ctx, &s3.PutObjectInput{
				Bucket: aws.String("benv"), Key: aws.String(key), Body: bytes.NewReader(data),
				ContentType: aws.String("text/x-test"), Metadata: map[string]string{"Colour": "Blue", "x-y": "z"},
			})
			if err != nil {
				t.Fatal(err)
			}
			o := checkSealed(t, env.store, "benv", key, data)
			wantETag := strings.TrimSuffix(o.etag, `"`) + `-0"`
			if got := aws.ToString(put.ETag); got != wantETag {
				t.Errorf("PutObject ETag %s, want %s", got, wantETag)
			}
			if o.meta["colour"] != "Blue" || o.meta["x-y"] != "z" || o.content.Get("Content-Type") != "text/x-test" {
				t.Errorf("store metadata %v, content %v", o.meta, o.content)
			}
			get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("benv"), Key: aws.String(key)})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(get.Body)
			get.Body.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("GetObject: %d bytes (%v), want %d", len(got), err, n)
			}
			if aws.ToInt64(get.ContentLength) != int64(n) || aws.ToString(get.ETag) != wantETag || aws.ToString(get.ContentType) != "text/x-test" {
				t.Errorf("GetObject length %d, ETag %s, type %s", aws.ToInt64(get.ContentLength), aws.ToString(get.ETag), aws.ToString(get.ContentType))
			}
			if get.Metadata["colour"] != "Blue" || get.Metadata["x-y"] != "z" || get.Metadata[envelope.MetadataKey] != "" || len(get.Metadata) != 2 {
				t.Errorf("GetObject metadata %v: want the client's, lower-cased, and not s3seal's", get.Metadata)
			}
			head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("benv"), Key: aws.String(key)})
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToInt64(head.ContentLength) != int64(n) || aws.ToString(head.ETag) != wantETag || len(head.Metadata) != 2 {
				t.Errorf("HeadObject length %d, ETag %s, metadata %v", aws.ToInt64(head.ContentLength), aws.ToString(head.ETag), head.Metadata)
			}
		})
	}
	// s3seal's own metadata name is refused from clients.
	_, code, _ := expect(t, env.do(t, "PUT", "/benv/reserved", []byte("x"), "X-Amz-Meta-S3seal", "forged"), 400)
	if code != "InvalidArgument" || env.store.object("benv", "reserved") != nil {
		t.Errorf("a client's x-amz-meta-s3seal: %s", code)
	}
	// What the store answers about a missing key reaches the client.
	_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("benv"), Key: aws.String("missing")})
	if apiCode(err) != "NoSuchKey" {
		t.Errorf("missing key: %v", err)
	}
}

// rangeCase is a Range header and the plaintext bytes [a, b] it selects.
type rangeCase struct {
	spec string
	a, b int64
}

func rangeCases(size int64) []rangeCase {
	cs := int64(stream.ChunkSize)
	return []rangeCase{
		{"bytes=0-0", 0, 0},
		{"bytes=0-99", 0, 99},
		{fmt.Sprintf("bytes=%d-%d", cs-10, cs+9), cs - 10, cs + 9},          // across a chunk boundary
		{fmt.Sprintf("bytes=%d-%d", cs, 2*cs-1), cs, 2*cs - 1},              // one whole chunk
		{fmt.Sprintf("bytes=%d-%d", cs-1, 2*cs), cs - 1, 2 * cs},            // a chunk and a byte either side
		{fmt.Sprintf("bytes=%d-", size-1), size - 1, size - 1},              // the last byte
		{"bytes=-100", size - 100, size - 1},                                // suffix
		{fmt.Sprintf("bytes=-%d", size+1000), 0, size - 1},                  // suffix longer than the object
		{fmt.Sprintf("bytes=%d-%d", size/2, size+5000), size / 2, size - 1}, // end past the end
		{"bytes=100-", 100, size - 1},
	}
}

// checkRanges reads every range case of bucket/key (plaintext data) and
// a range past the end.
func checkRanges(t *testing.T, env *testEnv, bucket, key string, data []byte) {
	t.Helper()
	size := int64(len(data))
	for _, rc := range rangeCases(size) {
		resp := env.do(t, "GET", "/"+bucket+"/"+key, nil, "Range", rc.spec)
		body, code, _ := expect(t, resp, 206)
		if code != "" || !bytes.Equal(body, data[rc.a:rc.b+1]) {
			t.Errorf("%s: %d bytes, want [%d, %d]", rc.spec, len(body), rc.a, rc.b)
		}
		if got, want := resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-%d/%d", rc.a, rc.b, size); got != want {
			t.Errorf("%s: Content-Range %q, want %q", rc.spec, got, want)
		}
		if resp.ContentLength != rc.b-rc.a+1 {
			t.Errorf("%s: Content-Length %d", rc.spec, resp.ContentLength)
		}
		// HEAD with a range answers the same headers.
		hr := env.do(t, "HEAD", "/"+bucket+"/"+key, nil, "Range", rc.spec)
		expect(t, hr, 206)
		if got := hr.Header.Get("Content-Range"); got != resp.Header.Get("Content-Range") {
			t.Errorf("HEAD %s: Content-Range %q", rc.spec, got)
		}
	}
	for _, spec := range []string{fmt.Sprintf("bytes=%d-", size), fmt.Sprintf("bytes=%d-%d", size+100, size+200)} {
		resp := env.do(t, "GET", "/"+bucket+"/"+key, nil, "Range", spec)
		body, code, _ := expect(t, resp, 416)
		if code != "InvalidRange" || !strings.Contains(string(body), "<ActualObjectSize>"+strconv.FormatInt(size, 10)+"</ActualObjectSize>") {
			t.Errorf("%s past the end: %s %s", spec, code, body)
		}
		if got := resp.Header.Get("Content-Range"); got != fmt.Sprintf("bytes */%d", size) {
			t.Errorf("%s past the end: Content-Range %q", spec, got)
		}
	}
}

func TestEnvelopeRanges(t *testing.T) {
	t.Parallel()
	env := envelopeEnv(t)
	data := pattern(3*stream.ChunkSize-100, 1)
	expect(t, env.do(t, "PUT", "/benv/single", data), 200)
	t.Run("single", func(t *testing.T) { checkRanges(t, env, "benv", "single", data) })

	// A multipart object of regular parts: a chunk, a chunk, the rest.
	uploadParts(t, env, "benv", "multi", [][]byte{data[:stream.ChunkSize], data[stream.ChunkSize : 2*stream.ChunkSize], data[2*stream.ChunkSize:]})
	if o := env.store.object("benv", "multi"); len(o.parts) != 3 {
		t.Fatalf("the multipart object has %d parts", len(o.parts))
	}
	t.Run("multipart", func(t *testing.T) { checkRanges(t, env, "benv", "multi", data) })

	// An empty object has no satisfiable range.
	expect(t, env.do(t, "PUT", "/benv/empty", nil), 200)
	_, code, _ := expect(t, env.do(t, "GET", "/benv/empty", nil, "Range", "bytes=0-"), 416)
	if code != "InvalidRange" {
		t.Errorf("range of an empty object: %s", code)
	}
	// A range that is not a single byte range is ignored, as S3 does.
	body, _, _ := expect(t, env.do(t, "GET", "/benv/single", nil, "Range", "bytes=0-1,5-6"), 200)
	if !bytes.Equal(body, data) {
		t.Error("a multi-range request did not return the whole object")
	}
}

// uploadParts uploads parts as one multipart upload through s3seal and
// completes it; it returns the parts' ETags and checks the ETag of the
// result against the store's.
func uploadParts(t *testing.T, env *testEnv, bucket, key string, parts [][]byte) []string {
	t.Helper()
	body, _, _ := expect(t, env.do(t, "POST", "/"+bucket+"/"+key+"?uploads", nil), 200)
	id := between(string(body), "<UploadId>", "</UploadId>")
	var etags []string
	for i, p := range parts {
		resp := env.do(t, "PUT", fmt.Sprintf("/%s/%s?partNumber=%d&uploadId=%s", bucket, key, i+1, id), p)
		expect(t, resp, 200)
		etags = append(etags, resp.Header.Get("ETag"))
	}
	body, _, _ = expect(t, env.do(t, "POST", "/"+bucket+"/"+key+"?uploadId="+id, completeBody(etags...)), 200)
	if got, want := resultETag(body), env.store.object(bucket, key).etag; got != want {
		t.Errorf("Complete ETag %s, store ETag %s", got, want)
	}
	return etags
}

func TestEnvelopeMultipart(t *testing.T) {
	t.Parallel()
	env := envelopeEnv(t)
	c := env.sdk(t)
	ctx := context.Background()
	cs := stream.ChunkSize
	data := pattern(5*cs+333, 2)
	parts := [][]byte{data[:2*cs], data[2*cs : 4*cs], data[4*cs:]}

	create, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("benv"), Key: aws.String("mp"),
		Metadata: map[string]string{"Owner": "me"}, ContentType: aws.String("application/x-parts")})
	if err != nil {
		t.Fatal(err)
	}
	id := create.UploadId
	if !strings.HasPrefix(aws.ToString(id), uploadIDPrefix) {
		t.Fatalf("upload id %q is not one s3seal minted", aws.ToString(id))
	}
	upload := func(n int32, p []byte) string {
		t.Helper()
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("benv"), Key: aws.String("mp"), UploadId: id, PartNumber: aws.Int32(n), Body: bytes.NewReader(p)})
		if err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
		return aws.ToString(out.ETag)
	}
	// Out of order, and part 2 sent twice (first with other data): the
	// last one counts.
	e3 := upload(3, parts[2])
	upload(2, pattern(2*cs, 99))
	e1 := upload(1, parts[0])
	e2 := upload(2, parts[1])
	if env.store.object("benv", "mp") != nil {
		t.Fatal("the object exists before Complete")
	}
	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("benv"), Key: aws.String("mp"), UploadId: id})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(lp.UploadId) != aws.ToString(id) || len(lp.Parts) != 3 {
		t.Fatalf("ListParts: upload %q, %d parts", aws.ToString(lp.UploadId), len(lp.Parts))
	}
	// ListParts shows the store's part ETags (mapped as every ETag is);
	// UploadPart's carry the salt of the part's encryption besides.
	for i, p := range lp.Parts {
		store, salt := splitPartETag([]string{e1, e2, e3}[i])
		if salt == nil || aws.ToInt64(p.Size) != int64(len(parts[i])) || aws.ToString(p.ETag) != clientETag(store) {
			t.Errorf("ListParts part %d: size %d, ETag %s; want the plaintext size %d and %s without its salt", i+1, aws.ToInt64(p.Size), aws.ToString(p.ETag), len(parts[i]), []string{e1, e2, e3}[i])
		}
	}
	// Parts named out of order, or one that was not uploaded, are refused.
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("benv"), Key: aws.String("mp"), UploadId: id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(2), ETag: aws.String(e2)}, {PartNumber: aws.Int32(1), ETag: aws.String(e1)}}}})
	if apiCode(err) != "InvalidPartOrder" {
		t.Errorf("parts out of order: %v", err)
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("benv"), Key: aws.String("mp"), UploadId: id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: aws.String(e1)}, {PartNumber: aws.Int32(2), ETag: aws.String(e3)}}}})
	if apiCode(err) != "InvalidPart" {
		t.Errorf("a part with another part's ETag: %v", err)
	}
	done, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("benv"), Key: aws.String("mp"), UploadId: id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{
			{PartNumber: aws.Int32(1), ETag: aws.String(e1)}, {PartNumber: aws.Int32(2), ETag: aws.String(e2)}, {PartNumber: aws.Int32(3), ETag: aws.String(e3)}}}})
	if err != nil {
		t.Fatal(err)
	}
	o := checkSealed(t, env.store, "benv", "mp", data)
	if ref, _ := decodeUploadID(aws.ToString(id)); env.store.object("benv", uploadStateKey("mp", ref.storeID)) != nil {
		t.Error("the upload's state is left after Complete")
	}
	if aws.ToString(done.ETag) != o.etag || !strings.HasSuffix(o.etag, `-3"`) || len(o.parts) != 3 {
		t.Errorf("Complete ETag %s, store ETag %s with %d parts", aws.ToString(done.ETag), o.etag, len(o.parts))
	}
	if o.meta["owner"] != "me" || o.content.Get("Content-Type") != "application/x-parts" {
		t.Errorf("the upload's metadata did not reach the object: %v %v", o.meta, o.content)
	}
	get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("benv"), Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(get.Body)
	get.Body.Close()
	if !bytes.Equal(got, data) || aws.ToString(get.ETag) != o.etag || get.Metadata["owner"] != "me" {
		t.Errorf("GetObject: %d bytes, ETag %s, metadata %v", len(got), aws.ToString(get.ETag), get.Metadata)
	}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("benv"), Key: aws.String("mp")})
	if err != nil || aws.ToInt64(head.ContentLength) != int64(len(data)) {
		t.Errorf("HeadObject: %v, length %d", err, aws.ToInt64(head.ContentLength))
	}
	// A part by number is that part's plaintext.
	for n := 1; n <= 3; n++ {
		resp := env.do(t, "GET", fmt.Sprintf("/benv/mp?partNumber=%d", n), nil)
		body, _, _ := expect(t, resp, 206)
		if !bytes.Equal(body, parts[n-1]) || resp.Header.Get("X-Amz-Mp-Parts-Count") != "3" {
			t.Errorf("part %d: %d bytes, parts count %q", n, len(body), resp.Header.Get("X-Amz-Mp-Parts-Count"))
		}
	}
	expect(t, env.do(t, "GET", "/benv/mp?partNumber=4", nil), 416)
	// The listing shows the plaintext size and the client's ETag.
	l, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("benv")})
	if err != nil || len(l.Contents) != 1 || aws.ToInt64(l.Contents[0].Size) != int64(len(data)) || aws.ToString(l.Contents[0].ETag) != o.etag {
		t.Errorf("listing: %v %+v", err, l)
	}
	// An upload resumes by the store's id (as ListMultipartUploads shows
	// it) through the state s3seal keeps under .s3seal/, which clients
	// neither list nor touch; an id is good for its own key only.
	create2, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("benv"), Key: aws.String("mp2")})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := decodeUploadID(aws.ToString(create2.UploadId))
	if err != nil {
		t.Fatal(err)
	}
	state := uploadStateKey("mp2", ref.storeID)
	if o := env.store.object("benv", state); o == nil || string(o.data) != aws.ToString(create2.UploadId) {
		t.Fatalf("no upload state at %s", state)
	}
	r := env.do(t, "PUT", "/benv/mp2?partNumber=1&uploadId="+ref.storeID, parts[0])
	expect(t, r, 200)
	if p := env.store.partOf(ref.storeID, 1); p == nil || bytes.Contains(p.data, parts[0][:64]) {
		t.Error("a part sent with the store's upload id is not encrypted")
	}
	if l := parseListing(t, mustBody(t, env.do(t, "GET", "/benv/?list-type=2&prefix=.s3seal", nil))); len(l.Contents)+len(l.CommonPrefixes) != 0 {
		t.Errorf("upload state listed: %+v", l)
	}
	_, code, _ := expect(t, env.do(t, "GET", "/benv/"+state, nil), 403)
	if code != "AccessDenied" {
		t.Errorf("a client read upload state: %s", code)
	}
	env.store.reset()
	_, code, _ = expect(t, env.do(t, "PUT", "/benv/other?partNumber=1&uploadId="+aws.ToString(create2.UploadId), []byte("x")), 404)
	if code != "NoSuchUpload" {
		t.Errorf("an upload id used for another key: %s", code)
	}
	if n := env.store.requestCount(); n != 0 {
		t.Errorf("%d requests with an upload id of another key reached the store", n)
	}
	// ListMultipartUploads shows the upload; Abort with either id ends it.
	lu, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("benv")})
	if err != nil || len(lu.Uploads) != 1 || aws.ToString(lu.Uploads[0].Key) != "mp2" {
		t.Fatalf("ListMultipartUploads: %v %+v", err, lu)
	}
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("benv"), Key: aws.String("mp2"), UploadId: create2.UploadId}); err != nil {
		t.Fatal(err)
	}
	if n := env.store.uploadCount(); n != 0 || env.store.object("benv", state) != nil {
		t.Errorf("%d uploads left in the store after Abort, upload state left: %t", n, env.store.object("benv", state) != nil)
	}
	_, err = c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("benv"), Key: aws.String("mp2"), UploadId: create2.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("late"))})
	if apiCode(err) != "NoSuchUpload" {
		t.Errorf("UploadPart after Abort: %v", err)
	}
}

// TestEnvelopeMultipartIrregular: parts of one size that is not whole
// chunks (Barman's 21,474,836 bytes, here 100,000) are kept as uploaded:
// the part-set record describes them, the bucket gets the marker
// .s3seal/irregular, and listings size such objects from the object.
// Parts whose sizes differ before the last are re-laid out at Complete.
func TestEnvelopeMultipartIrregular(t *testing.T) {
	t.Parallel()
	env := envelopeEnv(t)
	data := pattern(200_005, 3)
	uploadParts(t, env, "benv", "odd", [][]byte{data[:100_000], data[100_000:200_000], data[200_000:]})
	o := checkSealed(t, env.store, "benv", "odd", data)
	if len(o.parts) != 3 {
		t.Errorf("the object has %d parts, want the 3 uploaded", len(o.parts))
	}
	if env.store.object("benv", markerIrregular) == nil {
		t.Error("no marker .s3seal/irregular after an irregular upload")
	}
	if n := env.store.uploadCount(); n != 0 {
		t.Errorf("%d uploads left in the store", n)
	}
	body, _, _ := expect(t, env.do(t, "GET", "/benv/odd", nil), 200)
	if !bytes.Equal(body, data) {
		t.Fatalf("GET: %d bytes", len(body))
	}
	checkRanges(t, env, "benv", "odd", data)
	for n, want := range [][]byte{data[:100_000], data[100_000:200_000], data[200_000:]} {
		if got, _, _ := expect(t, env.do(t, "GET", fmt.Sprintf("/benv/odd?partNumber=%d", n+1), nil), 206); !bytes.Equal(got, want) {
			t.Errorf("part %d: %d bytes", n+1, len(got))
		}
	}
	// Unequal parts before the last: one new upload of equal parts.
	uneven := pattern(300_001, 4)
	uploadParts(t, env, "benv", "uneven", [][]byte{uneven[:200_000], uneven[200_000:300_000], uneven[300_000:]})
	if o := checkSealed(t, env.store, "benv", "uneven", uneven); len(o.parts) != 1 {
		t.Errorf("the re-laid-out object has %d parts, want 1 (8 MiB parts)", len(o.parts))
	}
	if got := mustBody(t, env.do(t, "GET", "/benv/uneven", nil)); !bytes.Equal(got, uneven) {
		t.Fatalf("GET after re-layout: %d bytes", len(got))
	}
	l := parseListing(t, mustBody(t, env.do(t, "GET", "/benv/?list-type=2", nil)))
	if len(l.Contents) != 2 || l.Contents[0].Size != int64(len(data)) || l.Contents[1].Size != int64(len(uneven)) {
		t.Errorf("listing: %+v", l.Contents)
	}
}

func mustBody(t testing.TB, resp *http.Response) []byte {
	t.Helper()
	b, _, _ := expect(t, resp, 200)
	return b
}

func TestEnvelopeCopy(t *testing.T) {
	t.Parallel()
	env := envelopeEnv(t, func(o *envOptions) {
		o.Rules = append([]policy.Rule{{Name: "no-source", Bucket: "benv", Prefix: "secret/", Mode: policy.Deny}}, o.Rules...)
	})
	c := env.sdk(t)
	ctx := context.Background()
	cs := stream.ChunkSize
	small := pattern(70_000, 4)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("benv"), Key: aws.String("src"), Body: bytes.NewReader(small),
		Metadata: map[string]string{"a": "1"}, ContentType: aws.String("text/plain")}); err != nil {
		t.Fatal(err)
	}
	big := pattern(3*cs-5, 5)
	uploadParts(t, env, "benv", "src-mp", [][]byte{big[:cs], big[cs : 2*cs], big[2*cs:]})
	env.store.put("bplain", "plain", &memObject{data: []byte("plaintext source"), meta: map[string]string{"p": "q"}})

	read := func(bucket, key string) ([]byte, *s3.GetObjectOutput) {
		t.Helper()
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("GET %s/%s: %v", bucket, key, err)
		}
		b, _ := io.ReadAll(out.Body)
		out.Body.Close()
		return b, out
	}
	t.Run("single, metadata copied", func(t *testing.T) {
		env.store.reset()
		out, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("benv"), Key: aws.String("copy1"), CopySource: aws.String("benv/src")})
		if err != nil {
			t.Fatal(err)
		}
		o := checkSealed(t, env.store, "benv", "copy1", small)
		if aws.ToString(out.CopyObjectResult.ETag) != strings.TrimSuffix(o.etag, `"`)+`-0"` {
			t.Errorf("copy ETag %s, store %s", aws.ToString(out.CopyObjectResult.ETag), o.etag)
		}
		// Server-side: no object data passed through s3seal.
		for _, r := range env.store.requests() {
			if r.Method == "GET" {
				t.Errorf("the copy read the source through s3seal: %s %s", r.Method, r.Path)
			}
		}
		b, got := read("benv", "copy1")
		if !bytes.Equal(b, small) || got.Metadata["a"] != "1" || aws.ToString(got.ContentType) != "text/plain" {
			t.Errorf("copy: %d bytes, metadata %v, type %s", len(b), got.Metadata, aws.ToString(got.ContentType))
		}
	})
	t.Run("single, metadata replaced", func(t *testing.T) {
		if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("benv"), Key: aws.String("copy2"), CopySource: aws.String("benv/src"),
			MetadataDirective: types.MetadataDirectiveReplace, Metadata: map[string]string{"b": "2"}, ContentType: aws.String("image/png")}); err != nil {
			t.Fatal(err)
		}
		b, got := read("benv", "copy2")
		if !bytes.Equal(b, small) || got.Metadata["b"] != "2" || got.Metadata["a"] != "" || aws.ToString(got.ContentType) != "image/png" {
			t.Errorf("copy: %d bytes, metadata %v, type %s", len(b), got.Metadata, aws.ToString(got.ContentType))
		}
	})
	t.Run("onto itself with new metadata", func(t *testing.T) {
		if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("benv"), Key: aws.String("copy2"), CopySource: aws.String("benv/copy2"),
			MetadataDirective: types.MetadataDirectiveReplace, Metadata: map[string]string{"c": "3"}}); err != nil {
			t.Fatal(err)
		}
		if b, got := read("benv", "copy2"); !bytes.Equal(b, small) || got.Metadata["c"] != "3" {
			t.Errorf("self copy: %d bytes, metadata %v", len(b), got.Metadata)
		}
	})
	t.Run("multipart source", func(t *testing.T) {
		out, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("benv"), Key: aws.String("copy-mp"), CopySource: aws.String("benv/src-mp")})
		if err != nil {
			t.Fatal(err)
		}
		o := checkSealed(t, env.store, "benv", "copy-mp", big)
		if len(o.parts) != 3 || aws.ToString(out.CopyObjectResult.ETag) != o.etag {
			t.Errorf("multipart copy: %d parts, ETag %s, store %s", len(o.parts), aws.ToString(out.CopyObjectResult.ETag), o.etag)
		}
		if b, _ := read("benv", "copy-mp"); !bytes.Equal(b, big) {
			t.Errorf("multipart copy: %d bytes", len(b))
		}
		if n := env.store.uploadCount(); n != 0 {
			t.Errorf("%d uploads left", n)
		}
		checkRanges(t, env, "benv", "copy-mp", big)
	})
	t.Run("plaintext source is encrypted", func(t *testing.T) {
		if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("benv"), Key: aws.String("from-plain"), CopySource: aws.String("bplain/plain")}); err != nil {
			t.Fatal(err)
		}
		checkSealed(t, env.store, "benv", "from-plain", []byte("plaintext source"))
		if b, got := read("benv", "from-plain"); string(b) != "plaintext source" || got.Metadata["p"] != "q" {
			t.Errorf("copy of a plaintext source: %q, metadata %v", b, got.Metadata)
		}
	})
	t.Run("into passthrough decrypts", func(t *testing.T) {
		for _, src := range []string{"src", "src-mp"} {
			if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("bplain"), Key: aws.String("dec-" + src), CopySource: aws.String("benv/" + src)}); err != nil {
				t.Fatal(err)
			}
			o := env.store.object("bplain", "dec-"+src)
			want := map[string][]byte{"src": small, "src-mp": big}[src]
			if o == nil || !bytes.Equal(o.data, want) || o.meta[envelope.MetadataKey] != "" {
				t.Fatalf("decrypting copy of %s: %+v", src, o)
			}
			if src == "src" && o.meta["a"] != "1" {
				t.Errorf("decrypting copy lost the metadata: %v", o.meta)
			}
		}
	})
	t.Run("into sse refused", func(t *testing.T) {
		env.store.reset()
		for _, b := range []string{"bs3", "bkms"} {
			_, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(b), Key: aws.String("x"), CopySource: aws.String("benv/src")})
			if apiCode(err) != "NotImplemented" || !strings.Contains(err.Error(), `"env"`) {
				t.Errorf("copy into %s: %v", b, err)
			}
		}
		if n := env.store.requestCount(); n != 0 {
			t.Errorf("%d requests reached the store", n)
		}
	})
	t.Run("conditions", func(t *testing.T) {
		_, got := read("benv", "src")
		etag := aws.ToString(got.ETag)
		if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("benv"), Key: aws.String("cond"), CopySource: aws.String("benv/src"), CopySourceIfMatch: aws.String(etag)}); err != nil {
			t.Errorf("copy if-match the client's ETag: %v", err)
		}
		_, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("benv"), Key: aws.String("cond2"), CopySource: aws.String("benv/src"), CopySourceIfNoneMatch: aws.String(etag)})
		if apiCode(err) != "PreconditionFailed" {
			t.Errorf("copy if-none-match the client's ETag: %v", err)
		}
		_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("benv"), Key: aws.String("cond2"), CopySource: aws.String("benv/src"), CopySourceIfMatch: aws.String(`"0123456789abcdef0123456789abcdef-0"`)})
		if apiCode(err) != "PreconditionFailed" || env.store.object("benv", "cond2") != nil {
			t.Errorf("copy if-match another ETag: %v", err)
		}
	})
	t.Run("denied source", func(t *testing.T) {
		env.store.put("benv", "secret/x", &memObject{data: []byte("x")})
		env.store.reset()
		_, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("benv"), Key: aws.String("leak"), CopySource: aws.String("benv/secret/x")})
		if apiCode(err) != "AccessDenied" || env.store.requestCount() != 0 {
			t.Errorf("copy from a denied prefix: %v, %d store requests", err, env.store.requestCount())
		}
	})
}

func TestEnvelopeUploadPartCopy(t *testing.T) {
	t.Parallel()
	env := envelopeEnv(t)
	cs := stream.ChunkSize
	// Sources of 3 chunks less one byte, copied in three parts that cross
	// the chunk boundaries and, for a multipart source, its parts.
	src := pattern(3*cs-1, 6)
	expect(t, env.do(t, "PUT", "/benv/src", src), 200)
	env.store.put("bplain", "plain", &memObject{data: src})
	uploadParts(t, env, "benv", "src-mp", [][]byte{src[:cs], src[cs : 2*cs], src[2*cs:]})
	if o := env.store.object("benv", "src-mp"); len(o.parts) != 3 {
		t.Fatalf("the multipart source has %d parts", len(o.parts))
	}
	for _, from := range []string{"benv/src", "bplain/plain", "benv/src-mp"} {
		t.Run(from, func(t *testing.T) {
			key := "pc-" + strings.ReplaceAll(from, "/", "-")
			body, _, _ := expect(t, env.do(t, "POST", "/benv/"+key+"?uploads", nil), 200)
			id := between(string(body), "<UploadId>", "</UploadId>")
			var etags []string
			for i, rg := range []string{fmt.Sprintf("bytes=0-%d", cs+9), fmt.Sprintf("bytes=%d-%d", cs+10, 2*cs+20), fmt.Sprintf("bytes=%d-%d", 2*cs+21, len(src)-1)} {
				body, _, _ := expect(t, env.do(t, "PUT", fmt.Sprintf("/benv/%s?partNumber=%d&uploadId=%s", key, i+1, id), nil,
					"X-Amz-Copy-Source", from, "X-Amz-Copy-Source-Range", rg), 200)
				etags = append(etags, resultETag(body))
			}
			// A range past the source's end is refused.
			_, code, _ := expect(t, env.do(t, "PUT", fmt.Sprintf("/benv/%s?partNumber=4&uploadId=%s", key, id), nil,
				"X-Amz-Copy-Source", from, "X-Amz-Copy-Source-Range", fmt.Sprintf("bytes=0-%d", len(src))), 416)
			if code != "InvalidRange" {
				t.Errorf("range past the end: %s", code)
			}
			expect(t, env.do(t, "POST", "/benv/"+key+"?uploadId="+id, completeBody(etags...)), 200)
			checkSealed(t, env.store, "benv", key, src)
			if got := mustBody(t, env.do(t, "GET", "/benv/"+key, nil)); !bytes.Equal(got, src) {
				t.Errorf("object from copied parts: %d bytes", len(got))
			}
		})
	}
	// Into a passthrough upload, an envelope source is refused (it would
	// copy ciphertext).
	body, _, _ := expect(t, env.do(t, "POST", "/bplain/pc?uploads", nil), 200)
	id := between(string(body), "<UploadId>", "</UploadId>")
	env.store.reset()
	_, code, _ := expect(t, env.do(t, "PUT", "/bplain/pc?partNumber=1&uploadId="+id, nil, "X-Amz-Copy-Source", "benv/src"), 501)
	if code != "NotImplemented" || env.store.requestCount() != 0 {
		t.Errorf("UploadPartCopy of an envelope source into passthrough: %s, %d store requests", code, env.store.requestCount())
	}
}

func TestEnvelopeListings(t *testing.T) {
	t.Parallel()
	env := envelopeEnv(t)
	c := env.sdk(t)
	ctx := context.Background()
	sizes := map[string]int{"a/1": 0, "a/2": 1, "b": 65536, "c d": 65537, "e+f": 100}
	etags := map[string]string{}
	for k, n := range sizes {
		out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("benv"), Key: aws.String(k), Body: bytes.NewReader(pattern(n, 7))})
		if err != nil {
			t.Fatal(err)
		}
		etags[k] = aws.ToString(out.ETag)
	}
	mp := pattern(2*stream.ChunkSize+10, 8)
	uploadParts(t, env, "benv", "m", [][]byte{mp[:2*stream.ChunkSize], mp[2*stream.ChunkSize:]})
	sizes["m"] = len(mp)
	etags["m"] = env.store.object("benv", "m").etag

	check := func(what string, entries []listEntry) {
		t.Helper()
		for _, e := range entries {
			if int64(sizes[e.Key]) != e.Size || etags[e.Key] != e.ETag {
				t.Errorf("%s: %s size %d ETag %s, want %d %s", what, e.Key, e.Size, e.ETag, sizes[e.Key], etags[e.Key])
			}
		}
	}
	// V2, paged two at a time through the SDK's paginator.
	var all []listEntry
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String("benv"), MaxKeys: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			all = append(all, listEntry{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size), ETag: aws.ToString(o.ETag)})
		}
	}
	if len(all) != len(sizes) {
		t.Fatalf("V2 listed %d keys, want %d", len(all), len(sizes))
	}
	check("V2", all)
	// V1 with a delimiter and URL encoding.
	l := parseListing(t, mustBody(t, env.do(t, "GET", "/benv/?delimiter=%2F&encoding-type=url", nil)))
	if len(l.CommonPrefixes) != 1 || l.CommonPrefixes[0] != "a/" || len(l.Contents) != 4 {
		t.Errorf("V1 with delimiter: prefixes %v, %d keys", l.CommonPrefixes, len(l.Contents))
	}
	for i := range l.Contents {
		if l.Contents[i].Key == "c+d" || l.Contents[i].Key == "c%20d" {
			l.Contents[i].Key = "c d"
		} else if l.Contents[i].Key == "e%2Bf" {
			l.Contents[i].Key = "e+f"
		}
	}
	check("V1", l.Contents)
	// Versions.
	expect(t, env.do(t, "PUT", "/benv/?versioning", []byte(`<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>`)), 200)
	v1, v2 := pattern(10, 9), pattern(70000, 10)
	r1 := env.do(t, "PUT", "/benv/ver", v1)
	expect(t, r1, 200)
	r2 := env.do(t, "PUT", "/benv/ver", v2)
	expect(t, r2, 200)
	id1, id2 := r1.Header.Get("X-Amz-Version-Id"), r2.Header.Get("X-Amz-Version-Id")
	if id1 == "" || id1 == id2 {
		t.Fatalf("version ids %q %q", id1, id2)
	}
	if vs := env.store.versions("benv", "ver"); len(vs) != 2 || vs[0].version != id1 || bytes.Contains(vs[0].data, v1) {
		t.Fatalf("the store holds %d versions", len(vs))
	}
	vl, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("benv"), Prefix: aws.String("ver")})
	if err != nil || len(vl.Versions) != 2 {
		t.Fatalf("versions: %v %+v", err, vl)
	}
	for _, v := range vl.Versions {
		want := map[string]int{id1: len(v1), id2: len(v2)}[aws.ToString(v.VersionId)]
		if aws.ToInt64(v.Size) != int64(want) || !strings.HasSuffix(aws.ToString(v.ETag), `-0"`) {
			t.Errorf("version %s: size %d, ETag %s", aws.ToString(v.VersionId), aws.ToInt64(v.Size), aws.ToString(v.ETag))
		}
	}
	if got := mustBody(t, env.do(t, "GET", "/benv/ver?versionId="+id1, nil)); !bytes.Equal(got, v1) {
		t.Errorf("GET of the older version: %d bytes", len(got))
	}
	expect(t, env.do(t, "DELETE", "/benv/ver", nil), 204)
	expect(t, env.do(t, "GET", "/benv/ver", nil), 404)
	if got := mustBody(t, env.do(t, "GET", "/benv/ver?versionId="+id2, nil)); !bytes.Equal(got, v2) {
		t.Errorf("GET of a version behind a delete marker: %d bytes", len(got))
	}
}

func TestEnvelopeConditionals(t *testing.T) {
	t.Parallel()
	env := envelopeEnv(t)
	resp := env.do(t, "PUT", "/benv/k", []byte("conditional"))
	expect(t, resp, 200)
	etag := resp.Header.Get("ETag")
	storeETag := env.store.object("benv", "k").etag
	if etag != strings.TrimSuffix(storeETag, `"`)+`-0"` {
		t.Fatalf("ETag %s for store ETag %s", etag, storeETag)
	}
	expect(t, env.do(t, "GET", "/benv/k", nil, "If-Match", etag), 200)
	expect(t, env.do(t, "GET", "/benv/k", nil, "If-Match", `"`+strings.Repeat("0", 32)+`-0"`), 412)
	expect(t, env.do(t, "HEAD", "/benv/k", nil, "If-Match", `"other", `+etag), 200)
	resp = env.do(t, "GET", "/benv/k", nil, "If-None-Match", etag)
	expect(t, resp, 304)
	if resp.Header.Get("ETag") != etag {
		t.Errorf("304 ETag %s, want %s", resp.Header.Get("ETag"), etag)
	}
	// Creating only if absent.
	_, code, _ := expect(t, env.do(t, "PUT", "/benv/k", []byte("replaced"), "If-None-Match", "*"), 412)
	if code != "PreconditionFailed" || string(mustBody(t, env.do(t, "GET", "/benv/k", nil))) != "conditional" {
		t.Errorf("If-None-Match: * over an existing object: %s", code)
	}
	expect(t, env.do(t, "PUT", "/benv/new", []byte("new"), "If-None-Match", "*"), 200)
	// Replacing only the version the client saw.
	expect(t, env.do(t, "PUT", "/benv/k", []byte("second"), "If-Match", etag), 200)
	expect(t, env.do(t, "PUT", "/benv/k", []byte("third"), "If-Match", etag), 412)
	if got := string(mustBody(t, env.do(t, "GET", "/benv/k", nil))); got != "second" {
		t.Errorf("after conditional writes: %q", got)
	}
	// Complete refuses to replace with If-None-Match: *.
	body, _, _ := expect(t, env.do(t, "POST", "/benv/k?uploads", nil), 200)
	id := between(string(body), "<UploadId>", "</UploadId>")
	pr := env.do(t, "PUT", "/benv/k?partNumber=1&uploadId="+id, []byte("part"))
	expect(t, pr, 200)
	expect(t, env.do(t, "POST", "/benv/k?uploadId="+id, completeBody(pr.Header.Get("ETag")), "If-None-Match", "*"), 412)
	if got := string(mustBody(t, env.do(t, "GET", "/benv/k", nil))); got != "second" {
		t.Errorf("after a refused Complete: %q", got)
	}
}

// tamper replaces the stored object bucket/key with edit applied to its
// data (and the store's ETag recomputed, as a store would).
func tamper(st *memStore, bucket, key string, edit func([]byte) []byte) {
	o := *st.object(bucket, key)
	o.data = edit(append([]byte(nil), o.data...))
	o.etag, o.version = "", ""
	st.put(bucket, key, &o)
}

// TestEnvelopeTamperedObjects: an object changed, cut or moved in the
// store is never served as plaintext: before the first byte s3seal
// answers an error, after it the connection is aborted, and nothing of a
// chunk that failed authentication is released.
func TestEnvelopeTamperedObjects(t *testing.T) {
	t.Parallel()
	env := envelopeEnv(t)
	small := pattern(200_000, 14)
	big := pattern(3<<20, 15)
	for _, k := range []string{"flip-first", "flip-range", "truncate", "extend", "moved-from"} {
		expect(t, env.do(t, "PUT", "/benv/"+k, small), 200)
	}
	expect(t, env.do(t, "PUT", "/benv/flip-late", big), 200)
	ec := stream.EncryptedChunkSizeV2
	tamper(env.store, "benv", "flip-first", func(b []byte) []byte { b[100] ^= 1; return b })
	tamper(env.store, "benv", "flip-range", func(b []byte) []byte { b[2*ec+5] ^= 1; return b })
	tamper(env.store, "benv", "truncate", func(b []byte) []byte { return b[:len(b)-ec] })
	tamper(env.store, "benv", "extend", func(b []byte) []byte { return append(b, 0) })
	tamper(env.store, "benv", "flip-late", func(b []byte) []byte { b[len(b)-ec] ^= 1; return b })
	// An object moved to another name, metadata and all.
	moved := *env.store.object("benv", "moved-from")
	moved.version = ""
	env.store.put("benv", "moved-to", &moved)

	for _, c := range []struct{ key, rng string }{
		{"flip-first", ""}, {"flip-range", "bytes=131072-140000"}, {"truncate", ""}, {"extend", ""}, {"moved-to", ""}, {"truncate", "bytes=0-10"},
	} {
		var kv []string
		if c.rng != "" {
			kv = []string{"Range", c.rng}
		}
		body, code, msg := expect(t, env.do(t, "GET", "/benv/"+c.key, nil, kv...), 500)
		if code != "InternalError" || !strings.Contains(msg, "failed authentication") || bytes.Contains(body, small[:64]) {
			t.Errorf("%s %s: %s %q", c.key, c.rng, code, msg)
		}
	}
	// The range of intact chunks of a tampered object is still served.
	if got, _, _ := expect(t, env.do(t, "GET", "/benv/flip-range", nil, "Range", "bytes=0-99"), 206); !bytes.Equal(got, small[:100]) {
		t.Error("an intact range of a tampered object was not served")
	}
	// A failure past the first chunk aborts the connection.
	resp := env.do(t, "GET", "/benv/flip-late", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("late failure: status %d", resp.StatusCode)
	}
	got, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("a tampered object was read to a clean end (%d bytes)", len(got))
	}
	if len(got) >= len(big)-stream.ChunkSize+1 || !bytes.Equal(got, big[:len(got)]) {
		t.Errorf("the client got %d bytes before the abort, not a prefix of the intact chunks", len(got))
	}
	if n := env.logs.FilterMessageSnippet("failed authentication").Len(); n == 0 {
		t.Error("no authentication failure was logged")
	}
}

// TestEnvelopePlaintextObjects: objects s3seal did not encrypt are refused
// under an envelope rule, unless the rule allows plaintext reads.
func TestEnvelopePlaintextObjects(t *testing.T) {
	t.Parallel()
	env := envelopeEnv(t, func(o *envOptions) {
		o.Rules = append([]policy.Rule{{Name: "migrating", Bucket: "bmig", Mode: policy.Envelope, AllowPlaintextReads: true}}, o.Rules...)
		o.Buckets = append(o.Buckets, "bmig")
	})
	data := pattern(150_000, 16)
	env.store.put("benv", "plain", &memObject{data: data})
	env.store.put("bmig", "plain", &memObject{data: data})
	_, code, msg := expect(t, env.do(t, "GET", "/benv/plain", nil), 403)
	if code != "AccessDenied" || !strings.Contains(msg, "allow_plaintext_reads") {
		t.Errorf("plaintext under envelope: %s %q", code, msg)
	}
	if got := mustBody(t, env.do(t, "GET", "/bmig/plain", nil)); !bytes.Equal(got, data) {
		t.Errorf("plaintext read allowed: %d bytes", len(got))
	}
	for _, rc := range rangeCases(int64(len(data)))[:6] {
		got, _, _ := expect(t, env.do(t, "GET", "/bmig/plain", nil, "Range", rc.spec), 206)
		if !bytes.Equal(got, data[rc.a:rc.b+1]) {
			t.Errorf("plaintext range %s: %d bytes", rc.spec, len(got))
		}
	}
	// Writes are encrypted; the listing shows both kinds with their
	// plaintext sizes.
	expect(t, env.do(t, "PUT", "/bmig/sealed", data[:1000]), 200)
	checkSealed(t, env.store, "bmig", "sealed", data[:1000])
	l := parseListing(t, mustBody(t, env.do(t, "GET", "/bmig/?list-type=2", nil)))
	if len(l.Contents) != 2 || l.Contents[0].Size != int64(len(data)) || l.Contents[1].Size != 1000 {
		t.Errorf("listing %+v", l.Contents)
	}
}

// TestEnvelopeRelayoutKeepsProperties: re-laying out an irregular upload
// keeps its metadata, content headers and tags.
func TestEnvelopeRelayoutKeepsProperties(t *testing.T) {
	t.Parallel()
	env := envelopeEnv(t)
	data := pattern(300_001, 17)
	body, _, _ := expect(t, env.do(t, "POST", "/benv/tagged?uploads", nil, "X-Amz-Tagging", "team=a&tier=2",
		"X-Amz-Meta-Owner", "me", "Content-Type", "text/csv", "Cache-Control", "no-cache"), 200)
	id := between(string(body), "<UploadId>", "</UploadId>")
	var etags []string
	// Parts of unequal sizes before the last: re-laid out.
	for i, p := range [][]byte{data[:200_000], data[200_000:300_000], data[300_000:]} {
		r := env.do(t, "PUT", fmt.Sprintf("/benv/tagged?partNumber=%d&uploadId=%s", i+1, id), p)
		expect(t, r, 200)
		etags = append(etags, r.Header.Get("ETag"))
	}
	expect(t, env.do(t, "POST", "/benv/tagged?uploadId="+id, completeBody(etags...)), 200)
	if o := checkSealed(t, env.store, "benv", "tagged", data); len(o.parts) != 1 {
		t.Errorf("the re-laid-out object has %d parts, want 1", len(o.parts))
	}
	resp := env.do(t, "GET", "/benv/tagged", nil)
	got, _, _ := expect(t, resp, 200)
	if !bytes.Equal(got, data) || resp.Header.Get("X-Amz-Meta-Owner") != "me" || resp.Header.Get("Content-Type") != "text/csv" ||
		resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("X-Amz-Tagging-Count") != "2" {
		t.Errorf("after re-layout: %d bytes, headers %v", len(got), resp.Header)
	}
	tags := string(mustBody(t, env.do(t, "GET", "/benv/tagged?tagging", nil)))
	if !strings.Contains(tags, "<Key>team</Key><Value>a</Value>") || !strings.Contains(tags, "<Key>tier</Key><Value>2</Value>") {
		t.Errorf("tags after re-layout: %s", tags)
	}
	// Metadata that does not fit beside s3seal's is refused.
	_, code, _ := expect(t, env.do(t, "PUT", "/benv/big-meta", []byte("x"), "X-Amz-Meta-Big", strings.Repeat("m", 1900)), 400)
	if code != "MetadataTooLarge" {
		t.Errorf("oversized metadata: %s", code)
	}
}

// TestEnvelopePartNumbers: GET and HEAD of a part by number, on multipart
// and single objects, and past the last part.
func TestEnvelopePartNumbers(t *testing.T) {
	t.Parallel()
	env := envelopeEnv(t)
	cs := stream.ChunkSize
	data := pattern(3*cs-7, 21)
	uploadParts(t, env, "benv", "mp", [][]byte{data[:cs], data[cs : 2*cs], data[2*cs:]})
	expect(t, env.do(t, "PUT", "/benv/single", data), 200)
	for n, want := range [][]byte{data[:cs], data[cs : 2*cs], data[2*cs:]} {
		off := n * cs
		for _, m := range []string{"GET", "HEAD"} {
			resp := env.do(t, m, fmt.Sprintf("/benv/mp?partNumber=%d", n+1), nil)
			body, _, _ := expect(t, resp, 206)
			if m == "GET" && !bytes.Equal(body, want) {
				t.Errorf("GET part %d: %d bytes", n+1, len(body))
			}
			if resp.ContentLength != int64(len(want)) || resp.Header.Get("X-Amz-Mp-Parts-Count") != "3" ||
				resp.Header.Get("Content-Range") != fmt.Sprintf("bytes %d-%d/%d", off, off+len(want)-1, len(data)) {
				t.Errorf("%s part %d: length %d, headers %v", m, n+1, resp.ContentLength, resp.Header)
			}
		}
	}
	// Part 1 of a single object is the whole object (206, as MinIO
	// answers).
	for _, m := range []string{"GET", "HEAD"} {
		resp := env.do(t, m, "/benv/single?partNumber=1", nil)
		body, _, _ := expect(t, resp, 206)
		if resp.ContentLength != int64(len(data)) || (m == "GET" && !bytes.Equal(body, data)) ||
			resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 0-%d/%d", len(data)-1, len(data)) {
			t.Errorf("%s part 1 of a single object: length %d, %d bytes, headers %v", m, resp.ContentLength, len(body), resp.Header)
		}
	}
	for _, p := range []string{"/benv/single?partNumber=2", "/benv/mp?partNumber=4"} {
		_, code, _ := expect(t, env.do(t, "GET", p, nil), 416)
		if code != "InvalidPartNumber" {
			t.Errorf("GET %s: %s", p, code)
		}
		expect(t, env.do(t, "HEAD", p, nil), 416)
	}
}

// TestEnvelopeVersionedMultipart: ranges of an older multipart version,
// and a re-laid-out upload in a versioned bucket leaves one version.
func TestEnvelopeVersionedMultipart(t *testing.T) {
	t.Parallel()
	env := envelopeEnv(t)
	cs := stream.ChunkSize
	expect(t, env.do(t, "PUT", "/benv/?versioning", []byte(`<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>`)), 200)
	old := pattern(3*cs-7, 24)
	uploadParts(t, env, "benv", "mp", [][]byte{old[:cs], old[cs : 2*cs], old[2*cs:]})
	cur := pattern(2*cs+5, 25)
	uploadParts(t, env, "benv", "mp", [][]byte{cur[:cs], cur[cs:]})
	vs := env.store.versions("benv", "mp")
	if len(vs) != 2 {
		t.Fatalf("%d versions", len(vs))
	}
	for _, c := range []struct {
		version string
		data    []byte
	}{{vs[0].version, old}, {vs[1].version, cur}, {"", cur}} {
		path := "/benv/mp"
		if c.version != "" {
			path += "?versionId=" + c.version
		}
		got, _, _ := expect(t, env.do(t, "GET", path, nil, "Range", fmt.Sprintf("bytes=%d-%d", cs-3, cs+3)), 206)
		if !bytes.Equal(got, c.data[cs-3:cs+4]) {
			t.Errorf("range of version %q: wrong bytes", c.version)
		}
	}
	odd := pattern(300_001, 22)
	uploadParts(t, env, "benv", "odd", [][]byte{odd[:200_000], odd[200_000:300_000], odd[300_000:]})
	if vs := env.store.versions("benv", "odd"); len(vs) != 1 || len(vs[0].parts) != 1 {
		t.Errorf("after re-layout in a versioned bucket: %d versions", len(vs))
	}
	if got := mustBody(t, env.do(t, "GET", "/benv/odd", nil)); !bytes.Equal(got, odd) {
		t.Error("re-laid-out object does not read back")
	}
}

// TestEnvelopeDestinationConditions: If-Match on the destination of a
// CopyObject or CompleteMultipartUpload takes the ETag s3seal showed the
// client, whichever way the write is carried out.
func TestEnvelopeDestinationConditions(t *testing.T) {
	t.Parallel()
	// As S3 does: MinIO ignores conditions on CopyObject's destination.
	env := envelopeEnv(t, func(o *envOptions) { o.Store.CopyConditions = true })
	cs := stream.ChunkSize
	data := pattern(2*cs+5, 1)
	uploadParts(t, env, "benv", "src-mp", [][]byte{data[:cs], data[cs:]})
	expect(t, env.do(t, "PUT", "/benv/single", []byte("single")), 200)
	expect(t, env.do(t, "PUT", "/bplain/plain", []byte("plain")), 200)
	stale := `"` + strings.Repeat("0", 32) + `-0"`
	put := func() string {
		t.Helper()
		r := env.do(t, "PUT", "/benv/dst", []byte("current"))
		expect(t, r, 200)
		return r.Header.Get("ETag")
	}
	for _, src := range []string{"benv/single", "benv/src-mp", "bplain/plain"} {
		etag := put()
		expect(t, env.do(t, "PUT", "/benv/dst", nil, "X-Amz-Copy-Source", src, "If-Match", stale), 412)
		if got := mustBody(t, env.do(t, "GET", "/benv/dst", nil)); string(got) != "current" {
			t.Errorf("copy of %s with a stale If-Match replaced the object", src)
		}
		expect(t, env.do(t, "PUT", "/benv/dst", nil, "X-Amz-Copy-Source", src, "If-Match", etag), 200)
		if got := mustBody(t, env.do(t, "GET", "/benv/dst", nil)); string(got) == "current" {
			t.Errorf("copy of %s with the current If-Match did not replace the object", src)
		}
	}
	for _, cond := range []string{stale, ""} {
		etag := put()
		if cond == "" {
			cond = etag
		}
		body, _, _ := expect(t, env.do(t, "POST", "/benv/dst?uploads", nil), 200)
		id := between(string(body), "<UploadId>", "</UploadId>")
		pr := env.do(t, "PUT", "/benv/dst?partNumber=1&uploadId="+id, []byte("part"))
		expect(t, pr, 200)
		want := 200
		if cond == stale {
			want = 412
		}
		expect(t, env.do(t, "POST", "/benv/dst?uploadId="+id, completeBody(pr.Header.Get("ETag")), "If-Match", cond), want)
	}
	if got := mustBody(t, env.do(t, "GET", "/benv/dst", nil)); string(got) != "part" {
		t.Errorf("after a Complete with the current If-Match: %q", got)
	}
}

// TestEnvelopeCopyOlderVersion: copies and part copies of an older
// version read that version.
func TestEnvelopeCopyOlderVersion(t *testing.T) {
	t.Parallel()
	env := envelopeEnv(t)
	cs := stream.ChunkSize
	expect(t, env.do(t, "PUT", "/benv/?versioning", []byte(`<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>`)), 200)
	old := pattern(2*cs+5, 1)
	uploadParts(t, env, "benv", "mp", [][]byte{old[:cs], old[cs:]})
	expect(t, env.do(t, "PUT", "/benv/mp", []byte("new")), 200)
	oldID := env.store.versions("benv", "mp")[0].version
	for _, dst := range []string{"benv/c1", "bplain/c2"} {
		expect(t, env.do(t, "PUT", "/"+dst, nil, "X-Amz-Copy-Source", "benv/mp?versionId="+oldID), 200)
		if got := mustBody(t, env.do(t, "GET", "/"+dst, nil)); !bytes.Equal(got, old) {
			t.Errorf("copy of the older version into %s: %d bytes", dst, len(got))
		}
	}
	body, _, _ := expect(t, env.do(t, "POST", "/benv/pc?uploads", nil), 200)
	id := between(string(body), "<UploadId>", "</UploadId>")
	r := env.do(t, "PUT", "/benv/pc?partNumber=1&uploadId="+id, nil, "X-Amz-Copy-Source", "benv/mp?versionId="+oldID,
		"X-Amz-Copy-Source-Range", fmt.Sprintf("bytes=%d-%d", cs-2, cs+2))
	body, _, _ = expect(t, r, 200)
	expect(t, env.do(t, "POST", "/benv/pc?uploadId="+id, completeBody(resultETag(body))), 200)
	if got := mustBody(t, env.do(t, "GET", "/benv/pc", nil)); !bytes.Equal(got, old[cs-2:cs+3]) {
		t.Errorf("part copy of the older version: %q", got)
	}
}
