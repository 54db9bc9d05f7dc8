package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/crypto/envelope/envelopetest"
	"github.com/s3seal/s3seal/crypto/keys/local"
	"github.com/s3seal/s3seal/crypto/stream"
	"github.com/s3seal/s3seal/integration/testbed"
)

// Format version 2 through s3seal, judged by what the store holds: the
// stored encryptions of a part uploaded twice share no keystream, a part
// uploaded but left out of Complete cannot be appended by a store writer,
// and objects an earlier release stored in version 1 still read.

// storeTap sits between s3seal and a store, passing every request on as it
// is, and keeps the bodies of the parts s3seal uploads, by the store's
// upload id and part number. No S3 API reads a part of an unfinished
// upload, so this is how a test holds an encryption of a part that a later
// upload of the same part number replaces at the store; the store's part
// ETag (the MD5 of what it holds) attests that the tap kept exactly that.
type storeTap struct {
	mu    sync.Mutex
	parts map[string][][]byte // upload id "/" part number → bodies, in order
}

// newStoreTap starts a tap in front of up and returns the store as s3seal
// should see it (the tap's plain-HTTP loopback endpoint) and the tap.
func newStoreTap(t *testing.T, up *testbed.S3Server) (*testbed.S3Server, *storeTap) {
	t.Helper()
	target, err := url.Parse(up.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if up.CAFile != "" {
		pem, err := os.ReadFile(up.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	t.Cleanup(tr.CloseIdleConnections)
	tap := &storeTap{parts: map[string][][]byte{}}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			// The signature covers the host s3seal addressed.
			r.Out.Host = r.In.Host
		},
		Transport: tr,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.Method == http.MethodPut && q.Get("uploadId") != "" && q.Get("partNumber") != "" && r.Header.Get("X-Amz-Copy-Source") == "" {
			raw, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body := raw
			if strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-") {
				if body, err = decodeAWSChunked(raw); err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
			}
			tap.mu.Lock()
			k := q.Get("uploadId") + "/" + q.Get("partNumber")
			tap.parts[k] = append(tap.parts[k], body)
			tap.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(raw))
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	tapped := *up
	tapped.Endpoint, tapped.CAFile = srv.URL, ""
	return &tapped, tap
}

// sent returns the bodies s3seal sent for part n of the store's upload id.
func (s *storeTap) sent(id string, n int) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.parts[id+"/"+strconv.Itoa(n)]
}

// decodeAWSChunked returns the payload of an aws-chunked body.
func decodeAWSChunked(b []byte) ([]byte, error) {
	br := bufio.NewReader(bytes.NewReader(b))
	var out []byte
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, err
		}
		size, _, _ := strings.Cut(strings.TrimSpace(line), ";")
		n, err := strconv.ParseInt(size, 16, 64)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return out, nil
		}
		chunk := make([]byte, n+2)
		if _, err := io.ReadFull(br, chunk); err != nil {
			return nil, err
		}
		out = append(out, chunk[:n]...)
	}
}

// storeUploadID returns the store's upload id inside an s3seal upload id
// (FORMAT.md, section 8.4).
func storeUploadID(t testing.TB, id string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(id[4:])
	if err != nil || len(b) < 2 {
		t.Fatalf("upload id %q is not s3seal's", id)
	}
	n := int(binary.BigEndian.Uint16(b))
	return string(b[2 : 2+n])
}

// capturePart returns the last body s3seal sent for part n of its upload
// id, after checking that the store holds exactly that (its part ETag is
// the body's MD5).
func capturePart(t *testing.T, tap *storeTap, direct *s3.Client, bucket, key, id string, n int) []byte {
	t.Helper()
	storeID := storeUploadID(t, id)
	bodies := tap.sent(storeID, n)
	if len(bodies) == 0 {
		t.Fatalf("the tap saw no part %d of upload %s", n, storeID)
	}
	body := bodies[len(bodies)-1]
	lp, err := direct.ListParts(ctx(t), &s3.ListPartsInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: aws.String(storeID)})
	must(t, err, "direct ListParts")
	sum := md5.Sum(body)
	for _, p := range lp.Parts {
		if aws.ToInt32(p.PartNumber) == int32(n) {
			if etag := strings.Trim(aws.ToString(p.ETag), `"`); etag != hex.EncodeToString(sum[:]) || aws.ToInt64(p.Size) != int64(len(body)) {
				t.Fatalf("the store holds part %d as ETag %s, %d bytes; the tap kept %x, %d bytes", n, etag, aws.ToInt64(p.Size), sum, len(body))
			}
			return body
		}
	}
	t.Fatalf("the store lists no part %d", n)
	return nil
}

// noKeystreamReuse fails if two stored encryptions ca, cb of plaintexts pa,
// pb of one part show the relation that key and nonce reuse leaves:
// ca ⊕ cb = pa ⊕ pb over the chunks' encrypted bytes. Both formats'
// positions are checked (version 2: a chunk of 65,580 bytes whose data
// starts after the 28-byte salt and nonce; version 1: 65,552 bytes, data
// first). Unrelated ciphertexts agree on about 1 position in 256.
func noKeystreamReuse(t *testing.T, ca, cb, pa, pb []byte) {
	t.Helper()
	for _, f := range []struct {
		name         string
		stride, skip int
	}{{"version 2", stream.EncryptedChunkSizeV2, stream.SaltSize + stream.NonceSize}, {"version 1", stream.EncryptedChunkSize, 0}} {
		match, total := 0, 0
		for i := 0; ; i++ {
			p, c := i*stream.ChunkSize, i*f.stride+f.skip
			n := min(stream.ChunkSize, len(pa)-p, len(pb)-p, len(ca)-c, len(cb)-c)
			if n <= 0 {
				break
			}
			for k := 0; k < n; k++ {
				if ca[c+k]^cb[c+k] == pa[p+k]^pb[p+k] {
					match++
				}
			}
			total += n
		}
		if total == 0 || match*16 > total {
			t.Errorf("at %s positions, %d of %d bytes satisfy ca ⊕ cb = pa ⊕ pb: the two encryptions share a keystream", f.name, match, total)
		}
	}
	if bytes.Equal(ca[:stream.SaltSize], cb[:stream.SaltSize]) {
		t.Error("the two encryptions have the same salt")
	}
}

// TestEnvelopeNonceUniqueness runs the paths of FORMAT.md's
// nonce-uniqueness table (section 12.3) through s3seal and checks what the
// store holds: no two encryptions share a key and nonce.
func TestEnvelopeNonceUniqueness(t *testing.T) {
	testbed.Require(t)
	for _, up := range upstreams() {
		t.Run(up.Name, func(t *testing.T) {
			tapped, tap := newStoreTap(t, up)
			p, _ := startEnvelopeProxy(t, tapped, nil)
			c := p.Client(t)
			direct := up.Client(t)
			bucket := newBucket(t, up)
			const size = 5<<20 + 1000
			reupload := func(t *testing.T, key string, a, b []byte, second func(id string) string) {
				cr, err := c.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				must(t, err, "Create")
				id := aws.ToString(cr.UploadId)
				_, err = c.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: cr.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(a)})
				must(t, err, "UploadPart A")
				ca := capturePart(t, tap, direct, bucket, key, id, 1)
				etag := second(id)
				cb := capturePart(t, tap, direct, bucket, key, id, 1)
				_, err = c.CompleteMultipartUpload(ctx(t), &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: cr.UploadId,
					MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: aws.String(etag)}}}})
				must(t, err, "Complete")
				if stored := getBytes(t, direct, bucket, key); !bytes.Equal(stored, cb) {
					t.Fatal("the completed object is not the second encryption the store held")
				}
				noKeystreamReuse(t, ca, cb, a, b)
				if got := getBytes(t, c, bucket, key); !bytes.Equal(got, b) {
					t.Error("the completed object does not read as the second upload's bytes")
				}
			}
			t.Run("UploadPart-retry-different-bytes", func(t *testing.T) {
				a, b := randBytes(size), randBytes(size)
				reupload(t, "retry/different", a, b, func(id string) string {
					out, err := c.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String("retry/different"), UploadId: aws.String(id), PartNumber: aws.Int32(1), Body: bytes.NewReader(b)})
					must(t, err, "UploadPart B")
					return aws.ToString(out.ETag)
				})
			})
			t.Run("UploadPart-retry-same-bytes", func(t *testing.T) {
				a := randBytes(size)
				reupload(t, "retry/same", a, a, func(id string) string {
					out, err := c.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String("retry/same"), UploadId: aws.String(id), PartNumber: aws.Int32(1), Body: bytes.NewReader(a)})
					must(t, err, "UploadPart again")
					return aws.ToString(out.ETag)
				})
			})
			t.Run("UploadPartCopy", func(t *testing.T) {
				a, b := randBytes(size), randBytes(size)
				_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("copy/source"), Body: bytes.NewReader(b)})
				must(t, err, "PutObject source")
				reupload(t, "copy/part", a, b, func(id string) string {
					out, err := c.UploadPartCopy(ctx(t), &s3.UploadPartCopyInput{Bucket: aws.String(bucket), Key: aws.String("copy/part"), UploadId: aws.String(id), PartNumber: aws.Int32(1),
						CopySource: aws.String(bucket + "/copy/source")})
					must(t, err, "UploadPartCopy")
					return aws.ToString(out.CopyPartResult.ETag)
				})
			})
			t.Run("PutObject", func(t *testing.T) {
				a, b := randBytes(300_000), randBytes(300_000)
				var stored [][]byte
				var headers []string
				for _, body := range [][]byte{a, b} {
					_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("put/same-key"), Body: bytes.NewReader(body)})
					must(t, err, "PutObject")
					stored = append(stored, getBytes(t, direct, bucket, "put/same-key"))
					h, err := direct.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("put/same-key")})
					must(t, err, "direct HEAD")
					headers = append(headers, h.Metadata[envelope.MetadataKey])
				}
				noKeystreamReuse(t, stored[0], stored[1], a, b)
				h0, err0 := envelope.Parse(headers[0])
				h1, err1 := envelope.Parse(headers[1])
				if err0 != nil || err1 != nil || h0.Version() != envelope.VersionV2 || bytes.Equal(h0.Commitment(), h1.Commitment()) {
					t.Errorf("two PUTs of one name: headers %v %v, want version 2 with different object keys", err0, err1)
				}
			})
			t.Run("CopyObject-single", func(t *testing.T) {
				body := randBytes(200_000)
				_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("cp/src"), Body: bytes.NewReader(body)})
				must(t, err, "PutObject")
				_, err = c.CopyObject(ctx(t), &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("cp/dst"), CopySource: aws.String(bucket + "/cp/src")})
				must(t, err, "CopyObject")
				src, dst := getBytes(t, direct, bucket, "cp/src"), getBytes(t, direct, bucket, "cp/dst")
				if !bytes.Equal(src, dst) {
					t.Error("the copy's content was re-encrypted; nothing of it should be")
				}
				hs, _ := direct.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("cp/src")})
				hd, _ := direct.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("cp/dst")})
				a, _ := envelope.Parse(hs.Metadata[envelope.MetadataKey])
				b, _ := envelope.Parse(hd.Metadata[envelope.MetadataKey])
				if a == nil || b == nil || !bytes.Equal(a.Commitment(), b.Commitment()) || a.String() == b.String() {
					t.Error("the copy's header is not the same object key resealed with a new salt and nonce")
				}
				if got := getBytes(t, c, bucket, "cp/dst"); !bytes.Equal(got, body) {
					t.Error("the copy does not read")
				}
			})
			t.Run("CopyObject-multipart", func(t *testing.T) {
				body := randBytes(2*(5<<20) + 77)
				uploadThrough(t, c, bucket, "cpm/src", [][]byte{body[:5<<20], body[5<<20 : 10<<20], body[10<<20:]})
				_, err := c.CopyObject(ctx(t), &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("cpm/dst"), CopySource: aws.String(bucket + "/cpm/src")})
				must(t, err, "CopyObject")
				if !bytes.Equal(getBytes(t, direct, bucket, "cpm/src"), getBytes(t, direct, bucket, "cpm/dst")) {
					t.Error("the multipart copy's content was re-encrypted; nothing of it should be")
				}
				rs, rd := storeTag(t, direct, bucket, "cpm/src", envelope.PartSetTag), storeTag(t, direct, bucket, "cpm/dst", envelope.PartSetTag)
				if rs == "" || rd == "" || rs == rd {
					t.Errorf("part-set records: source %q, copy %q; want a new one for the copy's name", rs, rd)
				}
				if got := getBytes(t, c, bucket, "cpm/dst"); !bytes.Equal(got, body) {
					t.Error("the multipart copy does not read")
				}
			})
			t.Run("Relayout", func(t *testing.T) {
				body := randBytes(6<<20 + 5<<20 + 10)
				parts := [][]byte{body[:6<<20], body[6<<20 : 11<<20], body[11<<20:]}
				cr, err := c.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("relayout")})
				must(t, err, "Create")
				var done []types.CompletedPart
				var sent [][]byte
				for i, part := range parts {
					out, err := c.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String("relayout"), UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(part)})
					must(t, err, "UploadPart")
					sent = append(sent, capturePart(t, tap, direct, bucket, "relayout", aws.ToString(cr.UploadId), i+1))
					done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
				}
				_, err = c.CompleteMultipartUpload(ctx(t), &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("relayout"), UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
				must(t, err, "Complete")
				stored := getBytes(t, direct, bucket, "relayout")
				// The rewrite is a new encryption under a new object key:
				// unrelated to what the parts were uploaded as.
				noKeystreamReuse(t, sent[0], stored, parts[0], body)
				if got := getBytes(t, c, bucket, "relayout"); !bytes.Equal(got, body) {
					t.Error("the re-laid-out object does not read")
				}
			})
		})
	}
}

// uploadThrough uploads parts through s3seal client c and completes them;
// it returns the parts' ETags.
func uploadThrough(t *testing.T, c *s3.Client, bucket, key string, parts [][]byte) []string {
	t.Helper()
	cr, err := c.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	must(t, err, "Create")
	var done []types.CompletedPart
	var etags []string
	for i, part := range parts {
		out, err := c.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(part)})
		must(t, err, "UploadPart")
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
		etags = append(etags, aws.ToString(out.ETag))
	}
	_, err = c.CompleteMultipartUpload(ctx(t), &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
	must(t, err, "Complete")
	return etags
}

// storeTag returns the value of an object's tag at the store ("" if none).
func storeTag(t testing.TB, direct *s3.Client, bucket, key, name string) string {
	t.Helper()
	out, err := direct.GetObjectTagging(ctx(t), &s3.GetObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	must(t, err, "direct GetObjectTagging")
	for _, tg := range out.TagSet {
		if aws.ToString(tg.Key) == name {
			return aws.ToString(tg.Value)
		}
	}
	return ""
}

// mintVersion1Upload starts, directly at the store, a multipart upload as
// an earlier release of s3seal did (a version 1 header sealed with the
// key ring s3seal uses), and returns the upload id that release handed
// out (FORMAT.md, section 8.4).
func mintVersion1Upload(t *testing.T, direct *s3.Client, ringFile, bucket, key string) string {
	t.Helper()
	ring, err := local.Load(ringFile)
	must(t, err, "key ring")
	ok, hdr, err := envelope.New(context.Background(), local.NewProvider(ring, local.Config{}), envelope.Params{Bucket: bucket, Key: key, Multipart: true})
	must(t, err, "version 1 header")
	defer ok.Zero()
	cr, err := direct.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), Metadata: map[string]string{envelope.MetadataKey: hdr.String()}})
	must(t, err, "direct Create")
	storeID := aws.ToString(cr.UploadId)
	b := binary.BigEndian.AppendUint16(nil, uint16(len(storeID)))
	b = append(b, storeID...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(hdr)))
	b = append(b, hdr...)
	b = append(b, ok.UploadTag(storeID)...)
	return "S3S1" + base64.RawURLEncoding.EncodeToString(b)
}

// TestEnvelopeExtensionRefused: a part uploaded through s3seal but left
// out of CompleteMultipartUpload, captured by someone who can write the
// store and appended there to the completed object (a new upload with the
// same metadata, the stored parts copied across, the captured part added,
// completed, and s3seal's tag copied) is refused by s3seal: the part-set
// record fixes the part count. A version 1 object, which has no record,
// was served so extended; this test shows that too.
func TestEnvelopeExtensionRefused(t *testing.T) {
	testbed.Require(t)
	for _, up := range upstreams() {
		t.Run(up.Name, func(t *testing.T) {
			tapped, tap := newStoreTap(t, up)
			p, ring := startEnvelopeProxy(t, tapped, nil)
			c := p.Client(t)
			direct := up.Client(t)
			bucket := newBucket(t, up)
			body := randBytes(2*(5<<20) + 3000)
			parts := [][]byte{body[:5<<20], body[5<<20 : 10<<20], body[10<<20:]}
			for _, version := range []int{2, 1} {
				key := fmt.Sprintf("v%d/extended", version)
				var id string
				if version == 2 {
					cr, err := c.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
					must(t, err, "Create")
					id = aws.ToString(cr.UploadId)
				} else {
					id = mintVersion1Upload(t, direct, ring, bucket, key)
				}
				var done []types.CompletedPart
				for i, part := range parts {
					out, err := c.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: aws.String(id), PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(part)})
					must(t, err, "UploadPart")
					done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
				}
				captured := capturePart(t, tap, direct, bucket, key, id, 3)
				// Complete with parts 1 and 2 only.
				_, err := c.CompleteMultipartUpload(ctx(t), &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: aws.String(id),
					MultipartUpload: &types.CompletedMultipartUpload{Parts: done[:2]}})
				must(t, err, "Complete")
				want := body[:10<<20]
				if got := getBytes(t, c, bucket, key); !bytes.Equal(got, want) {
					t.Fatalf("version %d: the completed object does not read", version)
				}
				// The store writer appends the captured part.
				head, err := direct.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), PartNumber: aws.Int32(1)})
				must(t, err, "direct HEAD part 1")
				ps := aws.ToInt64(head.ContentLength)
				full, err := direct.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				must(t, err, "direct HEAD")
				tags, err := direct.GetObjectTagging(ctx(t), &s3.GetObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				must(t, err, "direct GetObjectTagging")
				cr, err := direct.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), Metadata: full.Metadata})
				must(t, err, "direct Create")
				var forged []types.CompletedPart
				for i := 0; i < 2; i++ {
					out, err := direct.UploadPartCopy(ctx(t), &s3.UploadPartCopyInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1)),
						CopySource: aws.String(bucket + "/" + key), CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", int64(i)*ps, min(int64(i+1)*ps, aws.ToInt64(full.ContentLength))-1))})
					must(t, err, "direct UploadPartCopy")
					forged = append(forged, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.CopyPartResult.ETag})
				}
				out, err := direct.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: cr.UploadId, PartNumber: aws.Int32(3), Body: bytes.NewReader(captured)})
				must(t, err, "direct UploadPart of the captured part")
				forged = append(forged, types.CompletedPart{PartNumber: aws.Int32(3), ETag: out.ETag})
				_, err = direct.CompleteMultipartUpload(ctx(t), &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: forged}})
				must(t, err, "direct Complete")
				if len(tags.TagSet) > 0 {
					_, err = direct.PutObjectTagging(ctx(t), &s3.PutObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String(key), Tagging: &types.Tagging{TagSet: tags.TagSet}})
					must(t, err, "direct PutObjectTagging")
				}
				if version == 1 {
					// The known weakness of version 1: the extended object
					// authenticates.
					if got := getBytes(t, c, bucket, key); !bytes.Equal(got, body) {
						t.Errorf("version 1: the extended object read %d bytes; the weakness this test documents did not show", len(got))
					}
					continue
				}
				for _, rg := range []string{"", "bytes=0-99", fmt.Sprintf("bytes=%d-", 10<<20)} {
					in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
					if rg != "" {
						in.Range = aws.String(rg)
					}
					got, err := c.GetObject(ctx(t), in)
					if err == nil {
						b, _ := io.ReadAll(got.Body)
						got.Body.Close()
						t.Errorf("version 2, range %q: the extended object was served (%d bytes)", rg, len(b))
						continue
					}
					if code := errorCode(err); code != "InternalError" || !strings.Contains(err.Error(), "failed authentication") {
						t.Errorf("version 2, range %q: %v; want s3seal's authentication failure", rg, err)
					}
				}
			}
		})
	}
}

// TestEnvelopeVersion1Objects: objects an earlier release stored in format
// version 1 — the committed vectors, put into the store with their
// metadata, and multipart objects of parts the store accepts — are read,
// ranged, read by part, listed with their sizes and copied by this
// release, in a bucket that also holds version 2 objects.
func TestEnvelopeVersion1Objects(t *testing.T) {
	testbed.Require(t)
	vs, err := version1Vectors()
	must(t, err, "vectors")
	for _, up := range upstreams() {
		t.Run(up.Name, func(t *testing.T) {
			ringFile := writeVectorRing(t, vs[0])
			p := startProxy(t, up, proxyOptions{Env: map[string]string{"S3SEAL_MODE": "envelope", "S3SEAL_KEYS": "local:" + ringFile}})
			c := p.Client(t)
			direct := up.Client(t)
			objects := putVersion1Objects(t, up, ringFile, vs)
			checkObjects := func(what string) {
				t.Helper()
				for _, o := range objects {
					path := o.bucket + "/" + o.key
					if got := getBytes(t, c, o.bucket, o.key); !bytes.Equal(got, o.plain) {
						t.Errorf("%s: GET %s: %d bytes, differ", what, path, len(got))
					}
					h, err := c.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(o.bucket), Key: aws.String(o.key)})
					if err != nil || aws.ToInt64(h.ContentLength) != int64(len(o.plain)) {
						t.Errorf("%s: HEAD %s: %v", what, path, err)
					}
					if n := len(o.plain); n > 2 {
						a, b := n/3, n-2
						got := getBytes(t, c, o.bucket, o.key, func(in *s3.GetObjectInput) { in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", a, b)) })
						if !bytes.Equal(got, o.plain[a:b+1]) {
							t.Errorf("%s: range of %s differs", what, path)
						}
					}
					off := 0
					for i, n := range o.parts {
						if len(o.parts) < 2 {
							break
						}
						got := getBytes(t, c, o.bucket, o.key, func(in *s3.GetObjectInput) { in.PartNumber = aws.Int32(int32(i + 1)) })
						if !bytes.Equal(got, o.plain[off:off+n]) {
							t.Errorf("%s: part %d of %s differs", what, i+1, path)
						}
						off += n
					}
				}
				listed := map[string]int64{}
				for _, b := range []string{"photos", "my-bucket"} {
					out, err := c.ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: aws.String(b)})
					must(t, err, "list")
					for _, e := range out.Contents {
						listed[b+"/"+aws.ToString(e.Key)] = aws.ToInt64(e.Size)
					}
				}
				for _, o := range objects {
					if got := listed[o.bucket+"/"+o.key]; got != int64(len(o.plain)) {
						t.Errorf("%s: %s/%s listed with %d bytes, want %d", what, o.bucket, o.key, got, len(o.plain))
					}
				}
			}
			checkObjects("before any version 2 object")
			// Version 2 objects join them; the version 1 ones keep their
			// sizes in listings.
			v2 := randBytes(70_000)
			_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String("my-bucket"), Key: aws.String("written-now"), Body: bytes.NewReader(v2)})
			must(t, err, "PutObject")
			objects = append(objects, version1Object{bucket: "my-bucket", key: "written-now", plain: v2, parts: []int{len(v2)}})
			checkObjects("beside a version 2 object")
			// Copies stay version 1, resealed for their new names.
			for _, o := range objects {
				if o.bucket != "my-bucket" || o.key == "written-now" {
					continue
				}
				dst := "copy-of/" + o.key
				_, err := c.CopyObject(ctx(t), &s3.CopyObjectInput{Bucket: aws.String("my-bucket"), Key: aws.String(dst), CopySource: aws.String("my-bucket/" + strings.ReplaceAll(url.PathEscape(o.key), "%2F", "/"))})
				must(t, err, "CopyObject of ", o.key)
				h, err := direct.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String("my-bucket"), Key: aws.String(dst)})
				must(t, err, "direct HEAD of the copy")
				if hdr, err := envelope.Parse(h.Metadata[envelope.MetadataKey]); err != nil || hdr.Version() != envelope.Version {
					t.Errorf("the copy of %s is not version 1: %v", o.key, err)
				}
				objects = append(objects, version1Object{bucket: "my-bucket", key: dst, plain: o.plain, parts: o.parts})
			}
			if !objectExists(t, up, "my-bucket", ".s3seal/mixed") {
				t.Error("no .s3seal/mixed after version 1 copies into a bucket holding version 2")
			}
			checkObjects("after copies")
			// Rotation: the version 1 objects move to a new key and stay
			// version 1; they read, and list, through an s3seal that has
			// the rotated key ring.
			out, err := exec.Command(shared.bin, "keygen", "--append", ringFile).CombinedOutput()
			must(t, err, "s3seal keygen --append: ", string(out))
			newKey := strings.TrimSpace(string(out))
			env := rewrapEnv(t, up, "local:"+ringFile)
			for _, b := range []string{"photos", "my-bucket"} {
				if r := runRewrap(t, env, 0, "--bucket", b); r.code != 0 || r.num("failed") != 0 || r.num("rewrapped") == 0 {
					t.Errorf("rewrap of %s: %s", b, r)
				}
			}
			for _, o := range objects {
				h, err := direct.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(o.bucket), Key: aws.String(o.key)})
				must(t, err, "direct HEAD")
				hdr, err := envelope.Parse(h.Metadata[envelope.MetadataKey])
				if err != nil || hdr.KeyID() != newKey || (o.key != "written-now") != (hdr.Version() == envelope.Version) {
					t.Errorf("%s/%s after rewrap: %v, key %s, version %d", o.bucket, o.key, err, hdr.KeyID(), hdr.Version())
				}
			}
			p.Stop(t)
			p = startProxy(t, up, proxyOptions{Env: map[string]string{"S3SEAL_MODE": "envelope", "S3SEAL_KEYS": "local:" + ringFile}})
			c = p.Client(t)
			checkObjects("after rewrap")
		})
	}
}

// version1Object is an object of version 1 in the store, and what it
// holds.
type version1Object struct {
	bucket, key string
	plain       []byte
	parts       []int // plaintext sizes
}

// envelopeVector is a committed version 1 vector.
type envelopeVector = envelopetest.Vector

func version1Vectors() ([]envelopeVector, error) { return envelopetest.Version1() }

// writeVectorRing writes the key ring of the committed vectors to a file
// s3seal reads (mode 0600).
func writeVectorRing(t *testing.T, v envelopeVector) string {
	t.Helper()
	text, err := v.KeyringText()
	must(t, err, "key ring")
	path := t.TempDir() + "/vectors.ring"
	must(t, os.WriteFile(path, []byte(text), 0o600), "write key ring")
	return path
}

// putVersion1Objects puts, directly into the store, the committed version
// 1 vectors (in their own buckets, photos and my-bucket: their names are
// sealed into them), and a version 1 multipart object of 5 MiB parts
// written with the version 1 writer (the multipart vector's 64 KiB parts
// are below the part size MinIO accepts).
func putVersion1Objects(t *testing.T, up *testbed.S3Server, ringFile string, vs []envelopeVector) []version1Object {
	t.Helper()
	direct := up.Client(t)
	for _, b := range []string{"photos", "my-bucket"} {
		_, err := direct.CreateBucket(ctx(t), &s3.CreateBucketInput{Bucket: aws.String(b)})
		if err != nil && !strings.Contains(err.Error(), "BucketAlreadyOwnedByYou") && !strings.Contains(err.Error(), "BucketAlreadyExists") {
			t.Fatalf("CreateBucket %s: %v", b, err)
		}
	}
	var out []version1Object
	for _, v := range vs {
		if len(v.Bucket) < 3 || v.Multipart {
			continue
		}
		stored, _, err := v.Stored()
		must(t, err, v.Name)
		plain, _ := v.Plaintext()
		_, err = direct.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(v.Bucket), Key: aws.String(v.Key), Body: bytes.NewReader(stored),
			Metadata: map[string]string{envelope.MetadataKey: v.Metadata}})
		must(t, err, "direct PutObject ", v.Name)
		out = append(out, version1Object{bucket: v.Bucket, key: v.Key, plain: bytes.Join(plain, nil), parts: []int{len(plain[0])}})
	}
	// A version 1 multipart object: parts of 5 MiB and a short last one.
	ring, err := local.Load(ringFile)
	must(t, err, "key ring")
	ok, hdr, err := envelope.New(context.Background(), local.NewProvider(ring, local.Config{}), envelope.Params{Bucket: "my-bucket", Key: "v1/multipart", Multipart: true})
	must(t, err, "version 1 header")
	defer ok.Zero()
	cr, err := direct.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String("my-bucket"), Key: aws.String("v1/multipart"), Metadata: map[string]string{envelope.MetadataKey: hdr.String()}})
	must(t, err, "direct Create")
	plain := randBytes(2*(5<<20) + 4321)
	sizes := []int{5 << 20, 5 << 20, 4321}
	var done []types.CompletedPart
	off := 0
	for i, n := range sizes {
		enc, err := stream.NewEncryptReader(ok.SegmentKey(uint32(i+1)), bytes.NewReader(plain[off:off+n]), nil)
		must(t, err, "encrypt")
		ct, _ := io.ReadAll(enc)
		p, err := direct.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String("my-bucket"), Key: aws.String("v1/multipart"), UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(ct)})
		must(t, err, "direct UploadPart")
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: p.ETag})
		off += n
	}
	_, err = direct.CompleteMultipartUpload(ctx(t), &s3.CompleteMultipartUploadInput{Bucket: aws.String("my-bucket"), Key: aws.String("v1/multipart"), UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
	must(t, err, "direct Complete")
	return append(out, version1Object{bucket: "my-bucket", key: "v1/multipart", plain: plain, parts: sizes})
}
