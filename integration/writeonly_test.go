package integration

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/crypto/stream"
	"github.com/s3seal/s3seal/integration/testbed"
)

// writeOnlyRefusal is the message a write-only gateway refuses reads with.
const writeOnlyRefusal = "s3seal holds only public keys for this data: read it through a deployment that holds an age identity, or with s3seal decrypt --identity."

// recordingClient keeps the body of every response the SDK receives, to
// check what a refused request sent back.
type recordingClient struct {
	inner interface {
		Do(*http.Request) (*http.Response, error)
	}
	mu     sync.Mutex
	bodies [][]byte
}

func (c *recordingClient) Do(r *http.Request) (*http.Response, error) {
	resp, err := c.inner.Do(r)
	if err != nil {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	c.mu.Lock()
	c.bodies = append(c.bodies, b)
	c.mu.Unlock()
	return resp, err
}

// last returns the body of the latest response.
func (c *recordingClient) last() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bodies[len(c.bodies)-1]
}

// leaks reports whether body holds any 16-byte window of plaintext.
func leaks(body, plaintext []byte) bool {
	for i := 0; i+16 <= len(body); i++ {
		if bytes.Contains(plaintext, body[i:i+16]) {
			return true
		}
	}
	return false
}

// writeFile0600 writes a secret file for s3seal.
func writeFile0600(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	must(t, os.WriteFile(p, b, 0o600), "write ", name)
	return p
}

// newUploadKey returns the text of an upload key file.
func newUploadKey() []byte {
	return []byte("# test upload key\n" + base64.StdEncoding.EncodeToString(randBytes(32)) + "\n")
}

// TestWriteOnlyGateway runs two write-only s3seal replicas (age recipients,
// no identity) that share an upload key, and a reader that holds the age
// identity, over one MinIO bucket: writes of every kind through the
// gateways, sizes and metadata from them, reads refused there before any
// byte, and every byte read back through the reader and offline.
func TestWriteOnlyGateway(t *testing.T) {
	up := shared.minio
	direct := up.Client(t)
	bucket := newBucket(t, up)
	dir := t.TempDir()

	identity := filepath.Join(dir, "restore.key")
	out, err := exec.Command(shared.bin, "keygen", "--age", "-o", identity).Output()
	must(t, err, "s3seal keygen --age")
	recipients := filepath.Join(dir, "recipients.txt")
	must(t, os.WriteFile(recipients, out, 0o644), "write recipients")
	ukFile := writeFile0600(t, dir, "upload.key", newUploadKey())

	gatewayEnv := map[string]string{"S3SEAL_MODE": "envelope", "S3SEAL_KEYS": "age:" + recipients, "S3SEAL_UPLOAD_KEY": ukFile}
	audit := filepath.Join(dir, "audit.log")
	wo1 := startProxy(t, up, proxyOptions{Env: map[string]string{"S3SEAL_MODE": "envelope", "S3SEAL_KEYS": "age:" + recipients, "S3SEAL_UPLOAD_KEY": ukFile, "S3SEAL_AUDIT": audit}})
	wo2 := startProxy(t, up, proxyOptions{Env: gatewayEnv})
	readerEnv := map[string]string{"S3SEAL_MODE": "envelope", "S3SEAL_KEYS": "age:" + recipients + ",identity=" + identity}
	reader := startProxy(t, up, proxyOptions{Env: readerEnv})

	rec := &recordingClient{inner: testbed.SDKHTTPClient(t, wo1.CAFile)}
	g1 := wo1.Client(t, func(o *s3.Options) { o.HTTPClient = rec })
	g2 := wo2.Client(t)
	rc := reader.Client(t)
	for _, p := range []*proxy{wo1, wo2} {
		if !strings.Contains(p.Log(), "every replica of this write-only gateway must share it") {
			t.Error("a write-only gateway did not log that its replicas must share the upload key")
		}
	}

	objects := map[string][]byte{}
	var ids []string // upload ids the gateways minted
	put := func(c *s3.Client, key string, body []byte, meta map[string]string) {
		t.Helper()
		_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body), Metadata: meta})
		must(t, err, "PUT ", key)
		objects[key] = body
	}

	t.Run("puts-one-wrap", func(t *testing.T) {
		before := scrape(t, wo1, `s3seal_key_provider_calls_total{call="generate"`)
		for i := range 100 {
			put(g1, fmt.Sprintf("small/%03d", i), randBytes(1+i*37), nil)
		}
		put(g1, "big", randBytes(3*65536+4321), map[string]string{"owner": "backup"})
		if n := scrape(t, wo1, `s3seal_key_provider_calls_total{call="generate"`) - before; n != 1 {
			t.Errorf("101 PUTs made %v age wraps, want 1 (the data key is reused)", n)
		}
		put(g2, "other-replica", randBytes(70000), nil)
	})

	// Multipart uploads: parts in parallel, alternately on the two
	// replicas, a part size that is not whole 64 KiB chunks, Complete on
	// the replica that did not create the upload.
	const partSize = 5<<20 + 1000
	multipart := func(t *testing.T, key string, sizes []int, listETags bool) {
		t.Helper()
		cr, err := g1.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), Metadata: map[string]string{"kind": "multipart"}})
		must(t, err, "Create")
		if id := aws.ToString(cr.UploadId); !strings.HasPrefix(id, "S3SU") {
			t.Fatalf("a write-only gateway's upload id %.8q… is not an upload-key id", id)
		}
		ids = append(ids, aws.ToString(cr.UploadId))
		parts := make([][]byte, len(sizes))
		done := make([]types.CompletedPart, len(sizes))
		var wg sync.WaitGroup
		errs := make([]error, len(sizes))
		for i, n := range sizes {
			parts[i] = randBytes(n)
			c := []*s3.Client{g2, g1}[i%2]
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := c.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(parts[i])})
				errs[i] = err
				if err == nil {
					done[i] = types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag}
				}
			}()
		}
		wg.Wait()
		for i, err := range errs {
			must(t, err, "UploadPart ", i+1)
		}
		lp, err := g1.ListParts(ctx(t), &s3.ListPartsInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: cr.UploadId})
		must(t, err, "ListParts")
		if len(lp.Parts) != len(sizes) {
			t.Fatalf("ListParts: %d parts, want %d", len(lp.Parts), len(sizes))
		}
		if listETags {
			// ETags as ListParts shows them (no salts): Complete reads
			// the salts from the completed object.
			for i, p := range lp.Parts {
				done[i].ETag = p.ETag
			}
		}
		_, err = g2.CompleteMultipartUpload(ctx(t), &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: cr.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
		must(t, err, "Complete")
		objects[key] = bytes.Join(parts, nil)
	}
	t.Run("multipart", func(t *testing.T) {
		multipart(t, "mpu/regular", []int{partSize, partSize, partSize, 12345}, false)
		multipart(t, "mpu/list-etags", []int{partSize, partSize, 999}, true)
		multipart(t, "mpu/relayout", []int{partSize + 7, partSize, 4096}, false) // unequal: rewritten
		// Abort through the other replica.
		cr, err := g1.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("mpu/aborted")})
		must(t, err, "Create")
		_, err = g1.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String("mpu/aborted"), UploadId: cr.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(randBytes(100))})
		must(t, err, "UploadPart")
		_, err = g2.AbortMultipartUpload(ctx(t), &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("mpu/aborted"), UploadId: cr.UploadId})
		must(t, err, "Abort")
	})

	t.Run("sizes-and-metadata", func(t *testing.T) {
		for key, body := range objects {
			h, err := g2.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			must(t, err, "HEAD ", key)
			if aws.ToInt64(h.ContentLength) != int64(len(body)) {
				t.Errorf("HEAD %s through a write-only gateway: %d bytes, want %d", key, aws.ToInt64(h.ContentLength), len(body))
			}
		}
		h, err := g1.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("big")})
		must(t, err, "HEAD big")
		if h.Metadata["owner"] != "backup" || h.Metadata["s3seal"] != "" {
			t.Errorf("HEAD metadata %v", h.Metadata)
		}
		h, err = g1.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("mpu/regular"), PartNumber: aws.Int32(2)})
		must(t, err, "HEAD partNumber=2")
		if aws.ToInt64(h.ContentLength) != partSize {
			t.Errorf("HEAD part 2: %d bytes", aws.ToInt64(h.ContentLength))
		}
		listed := map[string]int64{}
		p := s3.NewListObjectsV2Paginator(g1, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx(t))
			must(t, err, "list")
			for _, o := range page.Contents {
				listed[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
			}
		}
		if len(listed) != len(objects) {
			t.Errorf("listed %d objects, want %d", len(listed), len(objects))
		}
		for key, body := range objects {
			if listed[key] != int64(len(body)) {
				t.Errorf("listed %s: %d bytes, want %d", key, listed[key], len(body))
			}
		}
	})

	t.Run("reads-refused", func(t *testing.T) {
		refused := func(what string, err error, plaintext []byte) {
			t.Helper()
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" || ae.ErrorMessage() != writeOnlyRefusal {
				t.Errorf("%s: %v, want AccessDenied %q", what, err, writeOnlyRefusal)
			}
			if body := rec.last(); leaks(body, plaintext) {
				t.Errorf("%s: the refusal carries plaintext", what)
			}
		}
		get := func(what string, in *s3.GetObjectInput) {
			t.Helper()
			out, err := g1.GetObject(ctx(t), in)
			if err == nil {
				out.Body.Close()
			}
			refused(what, err, objects[aws.ToString(in.Key)])
		}
		for _, key := range []string{"big", "small/007", "mpu/regular", "mpu/relayout"} {
			get("GET "+key, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			get("GET range "+key, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Range: aws.String("bytes=10-99")})
			get("GET partNumber "+key, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), PartNumber: aws.Int32(1)})
		}
		_, err := g1.CopyObject(ctx(t), &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("copy"), CopySource: aws.String(bucket + "/big")})
		refused("CopyObject", err, objects["big"])
		if objectExists(t, up, bucket, "copy") {
			t.Error("a refused copy left an object")
		}
		cr, err := g1.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("partcopy")})
		must(t, err, "Create")
		_, err = g1.UploadPartCopy(ctx(t), &s3.UploadPartCopyInput{Bucket: aws.String(bucket), Key: aws.String("partcopy"), UploadId: cr.UploadId, PartNumber: aws.Int32(1), CopySource: aws.String(bucket + "/mpu/regular")})
		refused("UploadPartCopy", err, objects["mpu/regular"])
		_, err = g1.AbortMultipartUpload(ctx(t), &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("partcopy"), UploadId: cr.UploadId})
		must(t, err, "Abort")
	})

	t.Run("reader", func(t *testing.T) {
		for key, body := range objects {
			if got := getBytes(t, rc, bucket, key); !bytes.Equal(got, body) {
				t.Errorf("reader GET %s: other bytes (%d, want %d)", key, len(got), len(body))
			}
		}
		for _, key := range []string{"big", "mpu/regular", "mpu/relayout"} {
			body := objects[key]
			a, b := len(body)/3, len(body)/3+70000
			got := getBytes(t, rc, bucket, key, func(in *s3.GetObjectInput) { in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", a, b)) })
			if !bytes.Equal(got, body[a:b+1]) {
				t.Errorf("reader range of %s: other bytes", key)
			}
			_, err := rc.CopyObject(ctx(t), &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("copied/" + key), CopySource: aws.String(bucket + "/" + key)})
			must(t, err, "reader CopyObject ", key)
			if got := getBytes(t, rc, bucket, "copied/"+key); !bytes.Equal(got, body) {
				t.Errorf("reader copy of %s: other bytes", key)
			}
		}
	})

	t.Run("offline-decrypt", func(t *testing.T) {
		for _, key := range []string{"big", "other-replica", "mpu/regular", "mpu/list-etags"} {
			o, err := direct.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			must(t, err, "direct GET ", key)
			stored, _ := io.ReadAll(o.Body)
			o.Body.Close()
			h, err := envelope.Parse(o.Metadata[envelope.MetadataKey])
			must(t, err, "parse the header of ", key)
			if !h.KeyObject() {
				t.Fatalf("%s: the age-wrapped key is not in a key object", key)
			}
			ko := storeBytes(t, direct, bucket, envelope.KeyObjectName([envelope.WrappedKeyRefSize]byte(h.WrappedKey())))
			d := t.TempDir()
			meta, _ := json.Marshal(o.Metadata)
			args := []string{"decrypt", "--identity", identity,
				"--metadata", writeFile0600(t, d, "meta.json", meta),
				"--key-object", writeFile0600(t, d, "key-object", ko),
				"--bucket", bucket, "--key", key}
			if h.Multipart() {
				args = append(args, "--parts-record", storeTag(t, direct, bucket, key, envelope.PartSetTag))
			}
			args = append(args, writeFile0600(t, d, "cipher", stored), filepath.Join(d, "plain"))
			if b, err := exec.Command(shared.bin, args...).CombinedOutput(); err != nil {
				t.Fatalf("s3seal decrypt %s: %v\n%s", key, err, b)
			}
			got, _ := os.ReadFile(filepath.Join(d, "plain"))
			if !bytes.Equal(got, objects[key]) {
				t.Errorf("offline decrypt of %s: other bytes", key)
			}
			// Read from the store by decrypt itself: it fetches the key
			// object and the part-set record there.
			cmd := exec.Command(shared.bin, "decrypt", "--identity", identity, "--bucket", bucket, "--key", key, filepath.Join(d, "fetched"))
			cmd.Env = rewrapEnv(t, up, "")
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("s3seal decrypt %s from the store: %v\n%s", key, err, b)
			}
			if got, _ := os.ReadFile(filepath.Join(d, "fetched")); !bytes.Equal(got, objects[key]) {
				t.Errorf("decrypt from the store of %s: other bytes", key)
			}
		}
	})

	// Per-object cost with one hybrid recipient (README, "Write-only
	// gateways"): the key object, shared by every object under one data
	// key, holds the 1,691-byte age file; the metadata header holds its
	// SHA-256 instead of the wrapped key; the body costs what any version
	// 2 object's does.
	t.Run("overhead", func(t *testing.T) {
		h0, err := direct.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("big")})
		must(t, err, "direct HEAD")
		h, err := envelope.Parse(h0.Metadata[envelope.MetadataKey])
		must(t, err, "parse")
		ko := storeBytes(t, direct, bucket, envelope.KeyObjectName([envelope.WrappedKeyRefSize]byte(h.WrappedKey())))
		if len(ko) != 1691 {
			t.Errorf("key object of one hybrid recipient: %d bytes, want 1691", len(ko))
		}
		// version, algorithm, flags, provider, id length (5), key id
		// "age-" and 16 hex digits (20), wrapped length (2), SHA-256 of the
		// key object (32), size (8), checksum algorithm (1; the SDK's CRC32
		// goes in the segment trailer, so none here), commitment (32),
		// salt (32), sealed object key (60): 192 bytes, 256 characters.
		if keyID := h.KeyID(); len(h) != 192 || len(keyID) != 20 || !strings.HasPrefix(keyID, "age-") {
			t.Errorf("header: %d bytes with key id %q, want 192 bytes and a 20-byte id", len(h), keyID)
		}
		meta := len(h0.Metadata[envelope.MetadataKey])
		if meta != 256 {
			t.Errorf("x-amz-meta-s3seal: %d characters, want 256", meta)
		}
		n := int64(len(objects["big"]))
		cipher, _ := stream.CiphertextSizeV2(n)
		if aws.ToInt64(h0.ContentLength) != cipher {
			t.Errorf("stored %d bytes for %d, want %d", aws.ToInt64(h0.ContentLength), n, cipher)
		}
		t.Logf("one hybrid recipient: key object %d bytes (once per data key), header %d bytes (%d in x-amz-meta-s3seal), body %d bytes for %d (+%d)",
			len(ko), len(h), meta, cipher, n, cipher-n)
	})

	// s3seal rewrap moves age-wrapped data keys to a key ring and back;
	// going to age recipients it writes key objects.
	t.Run("rewrap", func(t *testing.T) {
		b2 := newBucket(t, up)
		single := randBytes(100000)
		_, err := g1.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(b2), Key: aws.String("r/single"), Body: bytes.NewReader(single)})
		must(t, err, "PUT")
		parts := [][]byte{randBytes(5 << 20), randBytes(500)} // whole chunks: no marker wait
		uploadThrough(t, g1, b2, "r/mp", parts)
		want := map[string][]byte{"r/single": single, "r/mp": bytes.Join(parts, nil)}
		ring := filepath.Join(dir, "ring")
		if b, err := exec.Command(shared.bin, "keygen", "-o", ring).CombinedOutput(); err != nil {
			t.Fatalf("keygen: %v\n%s", err, b)
		}
		rewrap := func(keys, readKeys string, keyObject bool) {
			t.Helper()
			cfg := writeFile0600(t, t.TempDir(), "rewrap.yaml", []byte(fmt.Sprintf("keys: %q\nread_keys: [%q]\n", keys, readKeys)))
			r := runRewrap(t, rewrapEnv(t, up, keys), 0, "--config", cfg, "--bucket", b2)
			if r.code != 0 || r.num("rewrapped") != 2 || r.num("failed") != 0 {
				t.Fatalf("rewrap to %s: %v", keys, r)
			}
			for key := range want {
				h0, err := direct.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(b2), Key: aws.String(key)})
				must(t, err, "direct HEAD")
				h, err := envelope.Parse(h0.Metadata[envelope.MetadataKey])
				must(t, err, "parse")
				if h.KeyObject() != keyObject {
					t.Fatalf("after the rewrap to %s, %s has key object %v", keys, key, h.KeyObject())
				}
				if keyObject && len(storeBytes(t, direct, b2, envelope.KeyObjectName([envelope.WrappedKeyRefSize]byte(h.WrappedKey())))) != 1691 {
					t.Errorf("%s: the key object is not one recipient's age file", key)
				}
			}
		}
		rewrap("local:"+ring, "age:identity="+identity, false)
		rewrap("age:"+recipients, "local:"+ring, true)
		for key, body := range want {
			if got := getBytes(t, rc, b2, key); !bytes.Equal(got, body) {
				t.Errorf("reader after the rewraps: %s has other bytes", key)
			}
		}
	})

	t.Run("tamper", func(t *testing.T) {
		// A replica with another upload key, and a forged id.
		other := startProxy(t, up, proxyOptions{Env: map[string]string{"S3SEAL_MODE": "envelope", "S3SEAL_KEYS": "age:" + recipients,
			"S3SEAL_UPLOAD_KEY": writeFile0600(t, dir, "other.key", newUploadKey())}})
		cr, err := other.Client(t).CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("t/mpu")})
		must(t, err, "Create on another upload key")
		mine, err := g1.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("t/mpu")})
		must(t, err, "Create")
		id := aws.ToString(mine.UploadId)
		ids = append(ids, id)
		raw, _ := base64.RawURLEncoding.DecodeString(id[4:])
		flipped := bytes.Clone(raw)
		flipped[len(flipped)-20] ^= 1
		spliced := splicedUploadID(t, id, storeUploadID(t, aws.ToString(cr.UploadId)))
		for what, bad := range map[string]string{
			"sealed under another upload key": aws.ToString(cr.UploadId),
			"forged":                          "S3SU" + base64.RawURLEncoding.EncodeToString(randBytes(len(raw))),
			"altered":                         "S3SU" + base64.RawURLEncoding.EncodeToString(flipped),
			"moved to another upload":         spliced,
		} {
			_, err := g2.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String("t/mpu"), UploadId: aws.String(bad), PartNumber: aws.Int32(1), Body: strings.NewReader("x")})
			if errorCode(err) != "NoSuchUpload" {
				t.Errorf("UploadPart with an upload id %s: %v, want NoSuchUpload", what, err)
			}
		}

		// Objects under two data keys (one per replica), so two key
		// objects; a fresh reader, so nothing is cached.
		put(g1, "t/a", randBytes(1000), nil)
		put(g2, "t/b", randBytes(1000), nil)
		ref := func(key string) string {
			h0, err := direct.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			must(t, err, "direct HEAD")
			h, err := envelope.Parse(h0.Metadata[envelope.MetadataKey])
			must(t, err, "parse")
			return envelope.KeyObjectName([envelope.WrappedKeyRefSize]byte(h.WrappedKey()))
		}
		koA, koB := ref("t/a"), ref("t/b")
		if koA == koB {
			t.Fatal("the two replicas share a data key")
		}
		origA, origB := storeBytes(t, direct, bucket, koA), storeBytes(t, direct, bucket, koB)
		fresh := func() *s3.Client { return startProxy(t, up, proxyOptions{Env: readerEnv}).Client(t) }
		denied := func(c *s3.Client, key, what string) {
			t.Helper()
			_, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err == nil {
				t.Errorf("%s: the reader served %s", what, key)
			}
		}
		flippedKO := bytes.Clone(origA)
		flippedKO[len(flippedKO)/2] ^= 1
		putStore(t, direct, bucket, koA, flippedKO)
		denied(fresh(), "t/a", "a flipped byte in the key object")
		// Key objects swapped.
		putStore(t, direct, bucket, koA, origB)
		putStore(t, direct, bucket, koB, origA)
		r := fresh()
		denied(r, "t/a", "key objects swapped")
		denied(r, "t/b", "key objects swapped")
		// The header of t/a pointed at t/b's key object.
		putStore(t, direct, bucket, koA, origA)
		putStore(t, direct, bucket, koB, origB)
		h0, err := direct.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("t/a")})
		must(t, err, "direct GET")
		stored, _ := io.ReadAll(h0.Body)
		h0.Body.Close()
		hdr, _ := envelope.Parse(h0.Metadata[envelope.MetadataKey])
		refB, _ := hex.DecodeString(strings.TrimPrefix(koB, ".s3seal/keys/"))
		forged := bytes.Replace(hdr, hdr.WrappedKey(), refB, 1)
		_, err = direct.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("t/a"), Body: bytes.NewReader(stored),
			Metadata: map[string]string{envelope.MetadataKey: envelope.Header(forged).String()}})
		must(t, err, "direct PUT")
		denied(fresh(), "t/a", "the header pointed at another data key's key object")
		if got := getBytes(t, fresh(), bucket, "t/b"); !bytes.Equal(got, objects["t/b"]) {
			t.Error("restored key objects: t/b no longer reads")
		}
	})

	t.Run("deletes", func(t *testing.T) {
		_, err := g1.DeleteObject(ctx(t), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("small/000")})
		must(t, err, "DeleteObject")
		_, err = g2.DeleteObjects(ctx(t), &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &types.Delete{Objects: []types.ObjectIdentifier{
			{Key: aws.String("small/001")}, {Key: aws.String("mpu/list-etags")}}}})
		must(t, err, "DeleteObjects")
		for _, key := range []string{"small/000", "small/001", "mpu/list-etags"} {
			if objectExists(t, up, bucket, key) {
				t.Errorf("%s is still in the store", key)
			}
		}
	})

	// The upload key reads an upload only with its s3seal upload id: no
	// id is kept in the store, in a log line or in the audit log.
	t.Run("upload-ids-not-kept", func(t *testing.T) {
		kept, err := direct.ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(".s3seal/uploads/")})
		must(t, err, "direct list")
		if len(kept.Contents) != 0 {
			t.Errorf("%d upload states kept in the store by write-only gateways", len(kept.Contents))
		}
		var text []byte
		for _, f := range []string{wo1.LogPath(), wo2.LogPath(), audit} {
			b, err := os.ReadFile(f)
			must(t, err, "read ", f)
			text = append(text, b...)
		}
		if !bytes.Contains(text, []byte(`"use":"unseal-upload"`)) || !bytes.Contains(text, []byte(`"op":"UploadPart"`)) {
			t.Fatal("the logs read are not those of the uploads")
		}
		for _, id := range ids {
			if bytes.Contains(text, []byte(id[len(id)-40:])) {
				t.Errorf("an s3seal upload id is in the logs")
			}
		}
	})
}

// splicedUploadID returns id with its store upload id replaced by storeID.
func splicedUploadID(t *testing.T, id, storeID string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(id[4:])
	must(t, err, "decode upload id")
	n := int(binary.BigEndian.Uint16(b))
	out := binary.BigEndian.AppendUint16(nil, uint16(len(storeID)))
	out = append(out, storeID...)
	out = append(out, b[2+n:]...)
	return id[:4] + base64.RawURLEncoding.EncodeToString(out)
}

// storeBytes reads an object directly from the store.
func storeBytes(t *testing.T, direct *s3.Client, bucket, key string) []byte {
	t.Helper()
	return getBytes(t, direct, bucket, key)
}

// putStore writes an object directly to the store.
func putStore(t *testing.T, direct *s3.Client, bucket, key string, body []byte) {
	t.Helper()
	_, err := direct.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
	must(t, err, "direct PUT ", key)
}
