package integration

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/integration/testbed"
)

// headerFields returns the byte ranges of the fields of s3seal's binary
// header (FORMAT.md section 6.1), by name.
func headerFields(t *testing.T, h []byte) map[string][2]int {
	t.Helper()
	f := map[string][2]int{"version": {0, 1}, "algorithm": {1, 2}, "flags": {2, 3}, "provider": {3, 4}, "key id length": {4, 5}}
	l := int(h[4])
	f["key id"] = [2]int{5, 5 + l}
	o := 5 + l
	f["wrapped length"] = [2]int{o, o + 2}
	w := int(binary.BigEndian.Uint16(h[o:]))
	o += 2
	f["wrapped key"] = [2]int{o, o + w}
	o += w
	f["plaintext size"] = [2]int{o, o + 8}
	o += 8
	f["checksum algorithm"] = [2]int{o, o + 1}
	c := map[byte]int{0: 0, 1: 4, 2: 4, 3: 8, 4: 20, 5: 32}[h[o]]
	o++
	if c > 0 {
		f["checksum"] = [2]int{o, o + c}
	}
	o += c
	f["commitment"] = [2]int{o, o + 32}
	f["seal salt"] = [2]int{o + 32, o + 64}
	o += 64
	if h[0] == 2 {
		// Version 2 stores the seal's nonce before the sealed key.
		f["seal nonce"] = [2]int{o, o + 12}
		o += 12
	}
	f["sealed key"] = [2]int{o, o + 48}
	if o+48 != len(h) {
		t.Fatalf("header of %d bytes does not parse as FORMAT.md 6.1 says (%d)", len(h), o+48)
	}
	return f
}

// TestEnvelopeTamper changes stored objects directly in the store and reads
// them through s3seal: no wrong plaintext may come back.
func TestEnvelopeTamper(t *testing.T) {
	testbed.Require(t)
	up := shared.minio
	p, _ := startEnvelopeProxy(t, up, nil)
	c := p.Client(t)
	direct := up.Client(t)
	bucket := newBucket(t, up)
	plain := randBytes(3*65536 + 1000)
	other := randBytes(3*65536 + 1000)
	put := func(key string, b []byte) {
		_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(b)})
		must(t, err, "PutObject")
	}
	stored := func(key string) ([]byte, map[string]string) {
		out, err := direct.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		must(t, err, "direct GetObject")
		defer out.Body.Close()
		b, _ := io.ReadAll(out.Body)
		return b, out.Metadata
	}
	store := func(key string, b []byte, meta map[string]string) {
		_, err := direct.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(b), Metadata: meta})
		must(t, err, "direct PutObject")
	}
	// read returns what a client gets, and whether it failed.
	read := func(key string) ([]byte, bool) {
		out, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			return nil, true
		}
		defer out.Body.Close()
		b, err := io.ReadAll(out.Body)
		return b, err != nil
	}
	put("victim", plain)
	put("other", other)
	cipher, meta := stored("victim")
	otherCipher, otherMeta := stored("other")
	hdr, err := base64.RawURLEncoding.DecodeString(meta["s3seal"])
	must(t, err, "decode header")

	type tc struct {
		name string
		b    []byte
		meta map[string]string
	}
	clone := func(b []byte) []byte { return append([]byte(nil), b...) }
	withHeader := func(h []byte) map[string]string {
		return map[string]string{"s3seal": base64.RawURLEncoding.EncodeToString(h)}
	}
	if hdr[0] != 2 {
		t.Fatalf("s3seal wrote a version %d header; it writes version 2", hdr[0])
	}
	// Version 2: chunks of 65,580 stored bytes (salt, nonce, data, tag)
	// and a 108-byte trailer (FORMAT.md section 7.1).
	const ec, tr = 65580, 108
	var cases []tc
	for _, pos := range []int{0, 15, 16, 27, 28, 100, ec - 1, ec, ec + 16, 100_000, len(cipher) - tr - 1, len(cipher) - tr, len(cipher) - 40, len(cipher) - 1} {
		b := clone(cipher)
		b[pos] ^= 0x01
		cases = append(cases, tc{fmt.Sprintf("flip byte %d", pos), b, meta})
	}
	for _, n := range []int{ec, 2 * ec, ec + 17, len(cipher) - tr, len(cipher) - 1, 0} {
		cases = append(cases, tc{fmt.Sprintf("truncate to %d", n), clone(cipher[:n]), meta})
	}
	cases = append(cases,
		tc{"append bytes", append(clone(cipher), 1, 2, 3), meta},
		tc{"append a chunk", append(clone(cipher), cipher[:ec]...), meta},
		tc{"swap chunks", append(append(clone(cipher[ec:2*ec]), cipher[:ec]...), cipher[2*ec:]...), meta},
		tc{"chunk of another object", append(append(clone(cipher[:ec]), otherCipher[ec:2*ec]...), cipher[2*ec:]...), meta},
		tc{"other object's ciphertext", otherCipher, meta},
		tc{"other object's ciphertext and metadata", otherCipher, otherMeta},
		tc{"metadata deleted", clone(cipher), nil},
	)
	for name, r := range headerFields(t, hdr) {
		for _, at := range []int{r[0], r[1] - 1} {
			h := clone(hdr)
			h[at] ^= 0x01
			cases = append(cases, tc{fmt.Sprintf("metadata field %s byte %d", name, at-r[0]), clone(cipher), withHeader(h)})
		}
	}
	// Each case is written over the victim itself (its name is sealed
	// into its metadata), then the control restores it.
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			store("victim", c.b, c.meta)
			got, failed := read("victim")
			if !failed {
				t.Fatalf("read succeeded with %d bytes", len(got))
			}
			if !bytes.HasPrefix(plain, got) {
				t.Fatalf("%d bytes of wrong plaintext released", len(got))
			}
		})
	}
	t.Run("moved to another name", func(t *testing.T) {
		store("moved", clone(cipher), meta)
		got, failed := read("moved")
		if !failed || len(got) != 0 {
			t.Fatalf("ciphertext and metadata moved to another name: failed=%v, %d bytes", failed, len(got))
		}
	})
	t.Run("control", func(t *testing.T) {
		store("victim", clone(cipher), meta)
		got, failed := read("victim")
		if failed || !bytes.Equal(got, plain) {
			t.Fatalf("the untouched ciphertext and metadata rewritten as they were do not read: failed=%v", failed)
		}
	})
}

// TestEnvelopeCopyAcrossModes copies between an envelope prefix and a
// passthrough prefix in both directions.
func TestEnvelopeCopyAcrossModes(t *testing.T) {
	testbed.Require(t)
	up := shared.minio
	ring := newKeyring(t)
	cfg := filepath.Join(t.TempDir(), "s3seal.yaml")
	must(t, os.WriteFile(cfg, []byte("mode: envelope\nkeys: local:"+ring+"\npolicies:\n  - name: open\n    prefix: plain/\n    mode: passthrough\n"), 0o600), "config")
	p := startProxy(t, up, proxyOptions{Env: map[string]string{"S3SEAL_CONFIG": cfg}})
	c := p.Client(t)
	direct := up.Client(t)
	bucket := newBucket(t, up)
	body := randBytes(150_000)
	_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("sealed/src"), Body: bytes.NewReader(body), Metadata: map[string]string{"m": "1"}})
	must(t, err, "PutObject")
	_, err = c.CopyObject(ctx(t), &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("plain/out"), CopySource: aws.String(bucket + "/sealed/src")})
	must(t, err, "CopyObject envelope -> passthrough")
	out, err := direct.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("plain/out")})
	must(t, err, "direct GetObject")
	stored, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(stored, body) || out.Metadata["s3seal"] != "" || out.Metadata["m"] != "1" {
		t.Errorf("passthrough copy of an envelope object: stored %d bytes (plaintext: %v), metadata %v", len(stored), bytes.Equal(stored, body), out.Metadata)
	}
	_, err = c.CopyObject(ctx(t), &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("sealed/back"), CopySource: aws.String(bucket + "/plain/out")})
	must(t, err, "CopyObject passthrough -> envelope")
	if got := getBytes(t, c, bucket, "sealed/back"); !bytes.Equal(got, body) {
		t.Error("copy back into envelope reads other bytes")
	}
	out, err = direct.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("sealed/back")})
	must(t, err, "direct GetObject")
	stored, _ = io.ReadAll(out.Body)
	out.Body.Close()
	if bytes.Contains(stored, body[:32]) || out.Metadata["s3seal"] == "" {
		t.Error("copy into an envelope key stored plaintext")
	}
}
