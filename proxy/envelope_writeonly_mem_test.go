package proxy

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/keystest"
	"github.com/s3seal/s3seal/crypto/stream"
)

// writeOnlyProvider is a provider holding only public keys: it wraps large
// keys (as age's post-quantum recipients do) and never unwraps.
type writeOnlyProvider struct{ *keystest.Provider }

func (p writeOnlyProvider) Capabilities() keys.Capabilities {
	return keys.Capabilities{WriteOnly: true, MaxWrappedSize: 4096}
}

func (p writeOnlyProvider) Decrypt(context.Context, []byte, string) ([keys.DataKeySize]byte, error) {
	p.Decrypts.Add(1)
	return [keys.DataKeySize]byte{}, &keys.WriteOnlyError{Provider: keys.KindAge, Operation: "Decrypt"}
}

// TestEnvelopeWriteOnly: a write-only gateway writes single and multipart
// objects (the upload's object key sealed under the upload key), answers
// HEAD with plaintext sizes, refuses every read of plaintext with
// AccessDenied before any byte, never asks its provider to unwrap, and
// keeps no upload id in the store.
func TestEnvelopeWriteOnly(t *testing.T) {
	t.Parallel()
	kp := writeOnlyProvider{&keystest.Provider{Kind: keys.KindAge, WrappedSize: 1700}}
	env := envelopeEnv(t, func(o *envOptions) {
		o.Runtime = func(rt *Runtime) {
			rt.Keys = keys.NewCache(kp, keys.CacheConfig{})
			rt.UploadKeys = []*[envelope.UploadKeySize]byte{{7}}
		}
	})
	cs := stream.ChunkSize
	small, big := pattern(1000, 51), pattern(2*cs+4321, 52)
	expect(t, env.do(t, "PUT", "/benv/a", small, "X-Amz-Meta-Owner", "backup"), 200)

	body, _, _ := expect(t, env.do(t, "POST", "/benv/mp?uploads", nil), 200)
	id := between(string(body), "<UploadId>", "</UploadId>")
	if !strings.HasPrefix(id, uploadIDPrefixUK) {
		t.Fatalf("upload id %.8q…, want an upload-key id", id)
	}
	var etags []string
	// Parts not of whole chunks, the last longer than the first: Complete
	// rewrites the object under a new object key.
	for i, p := range [][]byte{big[:cs+5], big[cs+5:]} {
		resp := env.do(t, "PUT", "/benv/mp?partNumber="+strconv.Itoa(i+1)+"&uploadId="+id, p)
		expect(t, resp, 200)
		etags = append(etags, resp.Header.Get("ETag"))
	}
	// An altered id, or one for another upload key, is no upload.
	raw, _ := uploadB64.DecodeString(id[4:])
	raw[len(raw)-1] ^= 1
	if _, code, _ := expect(t, env.do(t, "PUT", "/benv/mp?partNumber=1&uploadId="+uploadIDPrefixUK+uploadB64.EncodeToString(raw), []byte("x")), 404); code != "NoSuchUpload" {
		t.Errorf("altered upload id: %s", code)
	}
	// Rotation: a replica whose new upload key comes first, with the old
	// one kept, takes the upload; one without the old key does not.
	env.rt.UploadKeys = []*[envelope.UploadKeySize]byte{{8}}
	if _, code, _ := expect(t, env.do(t, "PUT", "/benv/mp?partNumber=2&uploadId="+id, big[cs+5:]), 404); code != "NoSuchUpload" {
		t.Errorf("upload id under a key the replica does not hold: %s", code)
	}
	env.rt.UploadKeys = []*[envelope.UploadKeySize]byte{{8}, {7}}
	resp := env.do(t, "PUT", "/benv/mp?partNumber=2&uploadId="+id, big[cs+5:])
	expect(t, resp, 200)
	etags[1] = resp.Header.Get("ETag")
	expect(t, env.do(t, "POST", "/benv/mp?uploadId="+id, completeBody(etags...)), 200)
	for _, k := range env.store.keys("benv") {
		if strings.HasPrefix(k, uploadStateDir) {
			t.Errorf("upload state %s kept in the store", k)
		}
	}

	for key, want := range map[string][]byte{"a": small, "mp": big} {
		resp := env.do(t, "HEAD", "/benv/"+key, nil)
		expect(t, resp, 200)
		if resp.ContentLength != int64(len(want)) {
			t.Errorf("HEAD %s: %d bytes, want %d", key, resp.ContentLength, len(want))
		}
		for _, r := range []struct{ path, hdr string }{{"/benv/" + key, ""}, {"/benv/" + key, "bytes=5-900"}, {"/benv/" + key + "?partNumber=1", ""}} {
			var kv []string
			if r.hdr != "" {
				kv = []string{"Range", r.hdr}
			}
			b, code, msg := expect(t, env.do(t, "GET", r.path, nil, kv...), 403)
			if code != "AccessDenied" || msg != errWriteOnly.Message {
				t.Errorf("GET %s %s: %s %q", r.path, r.hdr, code, msg)
			}
			for i := 0; i+16 <= len(b); i++ {
				if bytes.Contains(want, b[i:i+16]) {
					t.Fatalf("GET %s: the refusal carries plaintext", r.path)
				}
			}
		}
	}
	if _, code, _ := expect(t, env.do(t, "PUT", "/benv/copy", nil, "X-Amz-Copy-Source", "benv/a"), 403); code != "AccessDenied" {
		t.Errorf("CopyObject: %s", code)
	}
	if env.store.object("benv", "copy") != nil {
		t.Error("a refused copy wrote an object")
	}
	if n := kp.Decrypts.Load(); n != 0 {
		t.Errorf("the provider was asked to unwrap %d times", n)
	}
	if n := kp.Generates.Load(); n != 1 {
		t.Errorf("%d data keys wrapped for two objects", n)
	}
}
