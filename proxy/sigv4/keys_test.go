package sigv4

import (
	"bytes"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/s3seal/s3seal/proxy/checksum"
)

func TestDeriveKeyMatchesSpecification(t *testing.T) {
	k := deriveKey(testSecret, "20250304", testRegion, "s3")
	if !bytes.Equal(k[:], specKey(testSecret, "20250304", testRegion)) {
		t.Fatal("derived key differs from the specification")
	}
}

func TestKeyCache(t *testing.T) {
	var c keyCache
	a := c.get("AKID", "secret-a", "20250304", "r")
	if a != deriveKey("secret-a", "20250304", "r", "s3") {
		t.Fatal("wrong key")
	}
	// A rotated secret never gets the key of the old one.
	if b := c.get("AKID", "secret-b", "20250304", "r"); b == a || b != deriveKey("secret-b", "20250304", "r", "s3") {
		t.Fatal("stale key served after rotation")
	}
	if c.get("AKID", "secret-b", "20250305", "r") == c.get("AKID", "secret-b", "20250304", "r") {
		t.Fatal("key reused across dates")
	}
	for i := range 3 * defaultKeyCacheSize {
		c.get(fmt.Sprint("K", i), "s", "20250304", "r")
	}
	if n := len(c.m); n > defaultKeyCacheSize {
		t.Fatalf("cache holds %d keys", n)
	}
}

// A request signed with a secret that has since been rotated fails even
// though its signing key was cached.
func TestRotatedSecret(t *testing.T) {
	var secret atomic.Value
	secret.Store(testSecret)
	v := newTestVerifier()
	v.Lookup = func(id string) (string, bool) { return secret.Load().(string), id == testAKID }
	build := func() *http.Request {
		r := newClientRequest(t, http.MethodGet, "k", "", nil)
		signSDK(t, r, emptySHA256, testTime)
		return toServer(t, r)
	}
	if _, err := v.Verify(build()); err != nil {
		t.Fatal(err)
	}
	secret.Store("rotated")
	_, err := v.Verify(build())
	expectCode(t, err, "SignatureDoesNotMatch")
}

func TestCheckBodyEmpty(t *testing.T) {
	res := &Result{Body: http.NoBody}
	ok, _ := checksum.Expect(checksum.ContentMD5, checksum.SumBytes(checksum.ContentMD5, nil))
	if err := res.CheckBody(ok); err != nil {
		t.Fatal(err)
	}
	bad, _ := checksum.Expect(checksum.ContentMD5, checksum.SumBytes(checksum.ContentMD5, []byte("x")))
	expectCode(t, res.CheckBody(bad), "BadDigest")
}

func TestPayloadModeNames(t *testing.T) {
	for m, want := range map[PayloadMode]string{
		UnsignedPayload: unsignedPayload, SignedPayload: "SIGNED-PAYLOAD", StreamingSigned: streamingPayload,
		StreamingSignedTrailer: streamingPayloadTrailer, StreamingUnsignedTrailer: streamingUnsignedTrailer,
	} {
		if m.String() != want || m.Streaming() != (m >= StreamingSigned) {
			t.Errorf("%d: %s", m, m)
		}
	}
}
