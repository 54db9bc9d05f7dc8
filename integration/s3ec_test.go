package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	s3ecclient "github.com/aws/amazon-s3-encryption-client-go/v3/client"
	"github.com/aws/amazon-s3-encryption-client-go/v3/commitment"
	"github.com/aws/amazon-s3-encryption-client-go/v3/materials"
	s3ec4client "github.com/aws/amazon-s3-encryption-client-go/v4/client"
	materials4 "github.com/aws/amazon-s3-encryption-client-go/v4/materials"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/integration/testbed"
)

// TestS3ECReads writes objects with the Amazon S3 Encryption Client for Go
// (its v3 release writes the V2 format, v4 the committing V3 format)
// straight to the store (MinIO, versitygw) with keys from local-kms, and
// reads them through s3seal under an envelope rule with allow_s3ec_reads:
// bytes, sizes in HEAD and listings, ranges, copies into s3seal's own
// format, tampering and the rules that do not read such objects.
func TestS3ECReads(t *testing.T) {
	testbed.Require(t)
	kms := testbed.StartLocalKMS(t)
	keyID, _ := kms.CreateKey(t)
	otherKey, _ := kms.CreateKey(t)
	for _, up := range upstreams() {
		t.Run(up.Name, func(t *testing.T) { testS3ECReads(t, up, kms, keyID, otherKey) })
	}
}

func testS3ECReads(t *testing.T, up *testbed.S3Server, kms *testbed.KMS, keyID, otherKey string) {
	cfg := filepath.Join(t.TempDir(), "s3seal.yaml")
	must(t, os.WriteFile(cfg, []byte(`mode: envelope
keys: aws-kms:`+keyID+`
limits:
  s3ec_max_object_size: 8388608
policies:
  - name: migrating
    prefix: s3ec/
    mode: envelope
    allow_s3ec_reads: true
  - name: legacy-plain
    prefix: plain/
    mode: envelope
    allow_plaintext_reads: true
  - name: migrated-long-ago
    prefix: guarded/
    mode: envelope
    allow_plaintext_reads: true
    plaintext_before: 2026-01-01T00:00:00Z
  - name: migrating-until-2100
    prefix: cutoff-later/
    mode: envelope
    allow_plaintext_reads: true
    plaintext_before: 2100-01-01T00:00:00Z
`), 0o600), "config")
	p := startProxy(t, up, proxyOptions{Env: map[string]string{"S3SEAL_CONFIG": cfg, "AWS_ENDPOINT_URL_KMS": kms.Endpoint}})
	c := p.Client(t)
	direct := up.Client(t)
	bucket := newBucket(t, up)

	v2writer := func(key string) *s3ecclient.S3EncryptionClientV3 {
		cmm, err := materials.NewCryptographicMaterialsManager(materials.NewKmsKeyring(kms.Client(t), key))
		must(t, err, "S3EC v3 materials manager")
		ec, err := s3ecclient.New(direct, cmm)
		must(t, err, "S3EC v3 client")
		return ec
	}
	v2 := v2writer(keyID)
	cmm4, err := materials4.NewCryptographicMaterialsManager(materials4.NewKmsKeyring(kms.Client(t), keyID))
	must(t, err, "S3EC v4 materials manager")
	v3, err := s3ec4client.New(direct, cmm4)
	must(t, err, "S3EC v4 client")
	type putter interface {
		PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	}

	type object struct {
		key  string
		body []byte
	}
	var objects []object
	plain := map[string][]byte{}
	for _, w := range []struct {
		name string
		ec   putter
		ctx  context.Context
	}{
		//lint:ignore SA1029 the S3 Encryption Client looks its encryption context up under this string key
		{"v2", v2, context.WithValue(ctx(t), s3ecclient.EncryptionContext, map[string]string{"app": "billing"})},
		//lint:ignore SA1029 the S3 Encryption Client looks its encryption context up under this string key
		{"v3", v3, context.WithValue(ctx(t), s3ec4client.EncryptionContext, map[string]string{"app": "billing"})},
	} {
		for _, n := range []int{0, 1, 1000, 65536, 1<<20 + 7} {
			o := object{fmt.Sprintf("s3ec/%s/%d", w.name, n), randBytes(n)}
			_, err := w.ec.PutObject(w.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.key), Body: bytes.NewReader(o.body)})
			must(t, err, "S3EC PutObject "+o.key)
			objects = append(objects, o)
			plain[o.key] = o.body
		}
	}
	// The stored objects are the S3 Encryption Client's, in both formats.
	for _, o := range []string{"s3ec/v2/1", "s3ec/v3/1"} {
		h, err := direct.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(o)})
		must(t, err, "direct HEAD")
		v3Keys := h.Metadata["x-amz-3"] != "" && h.Metadata["x-amz-d"] != "" && h.Metadata["x-amz-i"] != ""
		if strings.Contains(o, "v2") == v3Keys || aws.ToInt64(h.ContentLength) != 17 {
			t.Fatalf("%s stored with metadata %v and %d bytes", o, h.Metadata, aws.ToInt64(h.ContentLength))
		}
	}

	if os.Getenv("S3SEAL_WRITE_S3EC_VECTORS") != "" && up == shared.minio {
		writeS3ECVectors(t, kms.Client(t), direct, bucket, []string{"s3ec/v2/1000", "s3ec/v3/1000"}, [][]byte{plain["s3ec/v2/1000"], plain["s3ec/v3/1000"]})
	}

	for _, o := range objects {
		out, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.key)})
		must(t, err, "GetObject through s3seal "+o.key)
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		must(t, err, "read "+o.key)
		if !bytes.Equal(got, o.body) || aws.ToInt64(out.ContentLength) != int64(len(o.body)) {
			t.Fatalf("%s: read %d bytes (equal %v), Content-Length %d", o.key, len(got), bytes.Equal(got, o.body), aws.ToInt64(out.ContentLength))
		}
		for k := range out.Metadata {
			if strings.HasPrefix(k, "x-amz-") {
				t.Fatalf("%s: the client sees S3 Encryption Client metadata %q", o.key, k)
			}
		}
		h, err := c.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.key)})
		must(t, err, "HeadObject")
		if aws.ToInt64(h.ContentLength) != int64(len(o.body)) {
			t.Fatalf("%s: HEAD size %d, want %d", o.key, aws.ToInt64(h.ContentLength), len(o.body))
		}
		if len(o.body) > 70000 {
			for _, r := range [][2]int{{0, 0}, {65535, 65536}, {len(o.body) - 10, len(o.body) - 1}} {
				out, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.key), Range: aws.String(fmt.Sprintf("bytes=%d-%d", r[0], r[1]))})
				must(t, err, "ranged GetObject")
				got, _ := io.ReadAll(out.Body)
				out.Body.Close()
				if !bytes.Equal(got, o.body[r[0]:r[1]+1]) || aws.ToString(out.ContentRange) != fmt.Sprintf("bytes %d-%d/%d", r[0], r[1], len(o.body)) {
					t.Fatalf("%s range %v: %d bytes, Content-Range %q", o.key, r, len(got), aws.ToString(out.ContentRange))
				}
			}
		}
	}
	// A suffix range, and a range past the end (the store refuses the
	// speculative ciphertext range first; the error carries the plaintext
	// size).
	big1 := plain["s3ec/v3/1048583"]
	sr, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("s3ec/v3/1048583"), Range: aws.String("bytes=-10")})
	must(t, err, "suffix range")
	sb, _ := io.ReadAll(sr.Body)
	sr.Body.Close()
	if !bytes.Equal(sb, big1[len(big1)-10:]) {
		t.Fatalf("suffix range: %d bytes", len(sb))
	}
	var rangeErr smithy.APIError
	_, err = c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("s3ec/v3/1048583"), Range: aws.String("bytes=5000000-")})
	if !errors.As(err, &rangeErr) || rangeErr.ErrorCode() != "InvalidRange" {
		t.Errorf("range past the end: %v", err)
	}

	// Ranges the speculative ciphertext range overshoots (the store answers
	// 416 to it) are still served: an S3EC object of 131,080 bytes read
	// from 131,073, and a plaintext object of 65,540 bytes under
	// allow_plaintext_reads read from 65,537.
	edge := randBytes(131080)
	_, err = v3.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("s3ec/edge"), Body: bytes.NewReader(edge)})
	must(t, err, "S3EC PutObject 131080")
	plainEdge := randBytes(65540)
	_, err = direct.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("plain/edge"), Body: bytes.NewReader(plainEdge)})
	must(t, err, "direct PutObject 65540")
	for key, want := range map[string][]byte{"s3ec/edge": edge[131073:], "plain/edge": plainEdge[65537:]} {
		from := len(edge) - len(want)
		if key == "plain/edge" {
			from = len(plainEdge) - len(want)
		}
		out, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Range: aws.String(fmt.Sprintf("bytes=%d-", from))})
		must(t, err, "GetObject "+key+" near its end")
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if !bytes.Equal(got, want) {
			t.Fatalf("%s from %d: %d bytes, want %d", key, from, len(got), len(want))
		}
	}

	// plaintext_before: plaintext written into the store after the cutoff
	// (as someone who can write the store could do to replace an
	// encrypted object) is refused, before it served.
	for _, key := range []string{"guarded/planted", "cutoff-later/old"} {
		_, err = direct.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("plaintext planted in the store")})
		must(t, err, "direct PutObject "+key)
	}
	_, err = c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("guarded/planted")})
	if errorCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "plaintext_before") {
		t.Errorf("plaintext newer than plaintext_before: %v, want AccessDenied naming plaintext_before", err)
	}
	_, err = c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("guarded/planted"), Range: aws.String("bytes=5-")})
	if errorCode(err) != "AccessDenied" {
		t.Errorf("ranged read of plaintext newer than plaintext_before: %v, want AccessDenied", err)
	}
	if got := getBytes(t, c, bucket, "cutoff-later/old"); string(got) != "plaintext planted in the store" {
		t.Errorf("plaintext older than plaintext_before: %q", got)
	}

	// Listings show plaintext sizes.
	list, err := c.ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("s3ec/")})
	must(t, err, "ListObjectsV2")
	sizes := map[string]int64{}
	for _, e := range list.Contents {
		sizes[aws.ToString(e.Key)] = aws.ToInt64(e.Size)
	}
	for _, o := range objects {
		if sizes[o.key] != int64(len(o.body)) {
			t.Errorf("listing: %s is %d bytes, want %d", o.key, sizes[o.key], len(o.body))
		}
	}

	// A copy through s3seal turns an S3EC object into s3seal's format.
	_, err = c.CopyObject(ctx(t), &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("s3ec/migrated"), CopySource: aws.String(bucket + "/s3ec/v3/65536")})
	must(t, err, "CopyObject from an S3EC object")
	mh, err := direct.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("s3ec/migrated")})
	must(t, err, "direct HEAD of the copy")
	if mh.Metadata["s3seal"] == "" || mh.Metadata["x-amz-3"] != "" || mh.Metadata["x-amz-key-v2"] != "" {
		t.Fatalf("the copy carries metadata %v, want s3seal's only", mh.Metadata)
	}
	out, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("s3ec/migrated")})
	must(t, err, "GetObject of the copy")
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, plain["s3ec/v3/65536"]) {
		t.Fatal("the copy does not read back as the S3EC object's plaintext")
	}

	// Tampering: one flipped byte of the body, and a key of another KMS
	// key, each refused with no data.
	tampered := func(name string, edit func([]byte, map[string]string)) {
		t.Helper()
		src, err := direct.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("s3ec/v2/65536")})
		must(t, err, "direct GET")
		b, _ := io.ReadAll(src.Body)
		src.Body.Close()
		meta := src.Metadata
		edit(b, meta)
		key := "s3ec/tampered-" + name
		_, err = direct.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(b), Metadata: meta})
		must(t, err, "direct PutObject")
		out, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err == nil {
			n, _ := io.Copy(io.Discard, out.Body)
			out.Body.Close()
			t.Fatalf("%s: read %d bytes, want an error", name, n)
		}
	}
	tampered("flipped-byte", func(b []byte, _ map[string]string) { b[1000] ^= 1 })
	tampered("flipped-tag", func(b []byte, _ map[string]string) { b[len(b)-1] ^= 1 })
	other := v2writer(otherKey)
	_, err = other.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("s3ec/other-key"), Body: strings.NewReader("secret")})
	must(t, err, "S3EC PutObject under another key")
	if _, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("s3ec/other-key")}); err == nil {
		t.Fatal("an object wrapped under a KMS key s3seal is not configured with was read")
	}

	// Objects over the memory budget are refused with an explanation.
	big := randBytes(9 << 20)
	_, err = v2.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("s3ec/big"), Body: bytes.NewReader(big)})
	must(t, err, "S3EC PutObject 9 MiB")
	_, err = c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("s3ec/big")})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "NotImplemented" || !strings.Contains(api.ErrorMessage(), "s3ec_max_object_size") {
		t.Fatalf("9 MiB S3EC object over an 8 MiB budget: %v", err)
	}

	// A rule without allow_s3ec_reads refuses them, naming the setting;
	// one with allow_plaintext_reads passes them on as stored, and the S3
	// Encryption Client itself, pointed at s3seal, still decrypts them.
	_, err = v3.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("plain/s3ec"), Body: strings.NewReader("for the client")})
	must(t, err, "S3EC PutObject under plain/")
	_, err = v3.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("sealed/s3ec"), Body: strings.NewReader("refused")})
	must(t, err, "S3EC PutObject under sealed/")
	_, err = c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("sealed/s3ec")})
	if !errors.As(err, &api) || api.ErrorCode() != "AccessDenied" || !strings.Contains(api.ErrorMessage(), "allow_s3ec_reads") {
		t.Fatalf("S3EC object under a rule without allow_s3ec_reads: %v", err)
	}
	cmm, err := materials.NewCryptographicMaterialsManager(materials.NewKmsKeyring(kms.Client(t), keyID))
	must(t, err, "S3EC materials manager")
	through, err := s3ecclient.New(c, cmm, func(o *s3ecclient.EncryptionClientOptions) {
		o.CommitmentPolicy = commitment.REQUIRE_ENCRYPT_ALLOW_DECRYPT
	})
	must(t, err, "S3EC client through s3seal")
	po, err := through.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("plain/s3ec")})
	must(t, err, "S3EC GetObject through s3seal under allow_plaintext_reads")
	pb, _ := io.ReadAll(po.Body)
	po.Body.Close()
	if string(pb) != "for the client" {
		t.Fatalf("S3EC client through s3seal read %q", pb)
	}
}

// writeS3ECVectors stores objects the S3 Encryption Client wrote, with their
// data keys (unwrapped at local-kms) and plaintexts, as the test vectors of
// package crypto/s3ec: S3SEAL_WRITE_S3EC_VECTORS=1 go test -run TestS3ECReads.
func writeS3ECVectors(t *testing.T, kc *kms.Client, direct *s3.Client, bucket string, keys []string, plains [][]byte) {
	for i, key := range keys {
		out, err := direct.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		must(t, err, "direct GET")
		body, _ := io.ReadAll(out.Body)
		out.Body.Close()
		wrapped, ctxJSON := out.Metadata["x-amz-key-v2"], out.Metadata["x-amz-matdesc"]
		if wrapped == "" {
			wrapped, ctxJSON = out.Metadata["x-amz-3"], out.Metadata["x-amz-t"]
		}
		blob, err := base64.StdEncoding.DecodeString(wrapped)
		must(t, err, "wrapped key")
		var ec map[string]string
		must(t, json.Unmarshal([]byte(ctxJSON), &ec), "encryption context")
		dk, err := kc.Decrypt(ctx(t), &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec})
		must(t, err, "local-kms Decrypt")
		v := map[string]any{
			"comment":   "written by the Amazon S3 Encryption Client for Go through MinIO; data key unwrapped at local-kms (a test key)",
			"metadata":  out.Metadata,
			"data_key":  hex.EncodeToString(dk.Plaintext),
			"body":      base64.StdEncoding.EncodeToString(body),
			"plaintext": base64.StdEncoding.EncodeToString(plains[i]),
		}
		b, err := json.MarshalIndent(v, "", "  ")
		must(t, err, "vector")
		name := filepath.Join("..", "crypto", "s3ec", "testdata", strings.ReplaceAll(strings.TrimPrefix(key, "s3ec/"), "/", "-")+".json")
		must(t, os.WriteFile(name, append(b, '\n'), 0o644), "write "+name)
		t.Logf("wrote %s", name)
	}
}
