package rewrap

import (
	"bytes"
	"context"
	"io"
	"net/url"
	"testing"
	"time"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/keystest"
	"github.com/s3seal/s3seal/crypto/stream"
)

// putV2 stores a version 2 object as s3seal serve writes it: a single PUT
// (one part) or a multipart object of parts with its part-set record as
// the tag s3seal-parts, next to a client tag. Key objects go into f.
func putV2(t *testing.T, f *fakeStore, kp keys.Provider, key string, parts [][]byte) []byte {
	t.Helper()
	multipart := len(parts) > 1
	var size int64
	if !multipart {
		size = int64(len(parts[0]))
	}
	ok, h, err := envelope.NewV2(context.Background(), kp, envelope.Params{Bucket: testBucket, Key: key, Multipart: multipart, Size: size,
		StoreWrappedKey: func(ref [envelope.WrappedKeyRefSize]byte, w []byte) error {
			f.put(envelope.KeyObjectName(ref), &fakeVersion{data: append([]byte(nil), w...)})
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer ok.Zero()
	var data []byte
	var sizes []int64
	var salts [][stream.SaltSize]byte
	for i, p := range parts {
		n := uint32(i + 1)
		if !multipart {
			n = 0
		}
		enc, err := ok.EncryptSegment(n, bytes.NewReader(p), nil)
		if err != nil {
			t.Fatal(err)
		}
		ct, _ := io.ReadAll(enc)
		data = append(data, ct...)
		sizes = append(sizes, int64(len(ct)))
		salts = append(salts, enc.Salt())
	}
	v := &fakeVersion{data: data, meta: map[string]string{metaName: h.String()}, tags: "team=a"}
	if multipart {
		rec, err := ok.SealPartSet(h, testBucket, key, envelope.PartSet{Parts: len(parts), PartSize: int64(len(parts[0])), LastSize: int64(len(parts[len(parts)-1])), Salts: envelope.SaltsDigest(salts)})
		if err != nil {
			t.Fatal(err)
		}
		v.parts, v.tags = sizes, url.Values{"team": {"a"}, envelope.PartSetTag: {rec.String()}}.Encode()
	}
	f.put(key, v)
	return bytes.Join(parts, nil)
}

// readV2 opens the current version of key with kp, as s3seal serve would:
// the key object where the header names one, the part-set record from its
// tags, every part checked.
func readV2(t *testing.T, f *fakeStore, kp keys.Provider, key string) ([]byte, error) {
	t.Helper()
	v := f.current(key)
	h := headerOf(t, v)
	var ko []byte
	if h.KeyObject() {
		kv := f.current(envelope.KeyObjectName([envelope.WrappedKeyRefSize]byte(h.WrappedKey())))
		if kv == nil {
			t.Fatalf("%s: the key object its header names is not in the store", key)
		}
		ko = kv.data
	}
	ok, err := envelope.OpenWithKeyObject(context.Background(), kp, h, testBucket, key, ko)
	if err != nil {
		return nil, err
	}
	defer ok.Zero()
	var ps *envelope.PartSet
	if h.Multipart() {
		tags, _ := url.ParseQuery(v.tags)
		rec, err := envelope.ParsePartSetRecord(tags.Get(envelope.PartSetTag))
		if err != nil {
			return nil, err
		}
		set, err := ok.OpenPartSet(h, testBucket, key, rec)
		if err != nil {
			return nil, err
		}
		ps = &set
	}
	r, err := ok.NewReader(h, ps, bytes.NewReader(v.data))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// TestRunFormatV2: version 2 objects, single and multipart, rotate within
// a key ring, into key objects and out of them; a multipart object's
// part-set record (its tag, copied with it) stays valid every time, since
// rotation changes neither the object key nor the name.
func TestRunFormatV2(t *testing.T) {
	ctx := context.Background()
	f := newFakeStore(testBucket)
	ringA := testRing(t, "a")
	cs := stream.ChunkSize
	plain := map[string][]byte{
		"single": putV2(t, f, provider(ringA), "single", [][]byte{randBytes(1000)}),
		"mp":     putV2(t, f, provider(ringA), "mp", [][]byte{randBytes(2*cs + 5), randBytes(2*cs + 5), randBytes(100)}),
	}
	check := func(what string, kp keys.Provider, keyID string, keyObject bool) {
		t.Helper()
		for key, want := range plain {
			h := headerOf(t, f.current(key))
			if h.Version() != envelope.VersionV2 || h.KeyID() != keyID || h.KeyObject() != keyObject {
				t.Errorf("%s: %s has version %d, key %s, key object %v", what, key, h.Version(), h.KeyID(), h.KeyObject())
			}
			if got, err := readV2(t, f, kp, key); err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: %s does not read: %v", what, key, err)
			}
			if tags, _ := url.ParseQuery(f.current(key).tags); tags.Get("team") != "a" {
				t.Errorf("%s: %s lost its tags", what, key)
			}
		}
	}
	run := func(what string, kp keys.Provider) {
		t.Helper()
		var errs []string
		sum, err := Run(ctx, Config{Store: f, Bucket: testBucket, Keys: kp, Now: fixedNow,
			OnResult: func(r Result) {
				if r.Err != nil {
					errs = append(errs, r.Key+": "+r.Err.Error())
				}
			}})
		if err != nil || sum.Failed != 0 || sum.Rewrapped != 2 {
			t.Fatalf("%s: %v %+v %v", what, err, sum, errs)
		}
	}
	ringAB := testRing(t, "a", "b")
	run("within the key ring", provider(ringAB))
	check("within the key ring", provider(ringAB), "b", false)
	// Into key objects: a provider whose wrapped keys do not fit in the
	// metadata (a post-quantum age recipient's), reading the ring's.
	big := &keystest.Provider{Kind: keys.KindAge, Active: "age-1", WrappedSize: 1200}
	into, err := keys.NewSet(big, provider(ringAB))
	if err != nil {
		t.Fatal(err)
	}
	run("into key objects", into)
	check("into key objects", into, "age-1", true)
	// Within the key-object provider, and out of key objects again.
	big2 := &keystest.Provider{Kind: keys.KindAge, Active: "age-2", Allowed: []string{"age-1"}, WrappedSize: 1200}
	run("to another key object", big2)
	check("to another key object", big2, "age-2", true)
	small := &keystest.Provider{Kind: keys.KindAge, Active: "small", Allowed: []string{"age-2"}}
	run("out of key objects", small)
	check("out of key objects", small, "small", false)
	// Nothing of a version 1 object was involved: no mixed marker.
	if f.current(markerMixed) != nil {
		t.Error("a mixed marker without version 1 objects")
	}
}

// TestRunVersion1InVersion2Bucket: rewriting a version 1 object into a
// bucket that holds version 2 objects first writes .s3seal/mixed and waits
// W, so that listings look it up rather than size it as version 2.
func TestRunVersion1InVersion2Bucket(t *testing.T) {
	ctx := context.Background()
	for _, switched := range []bool{false, true} {
		f := newFakeStore(testBucket)
		kp := provider(testRing(t, "a"))
		putEnvelope(t, f, kp, "old", nil)
		if switched {
			f.put(markerFormat2, &fakeVersion{data: []byte("s3seal: format-2\n")})
		}
		start := time.Now()
		sum, err := Run(ctx, Config{Store: f, Bucket: testBucket, Keys: provider(testRing(t, "a", "b")), Now: fixedNow, MarkerWait: 50 * time.Millisecond})
		if err != nil || sum.Rewrapped != 1 {
			t.Fatalf("switched %v: %v %+v", switched, err, sum)
		}
		if got := f.current(markerMixed) != nil; got != switched {
			t.Errorf("switched %v: mixed marker %v", switched, got)
		}
		if switched && time.Since(start) < 50*time.Millisecond {
			t.Error("rewrap did not wait after writing the mixed marker")
		}
		if h := headerOf(t, f.current("old")); h.Version() != envelope.Version || h.KeyID() != "b" {
			t.Errorf("switched %v: version %d key %s", switched, h.Version(), h.KeyID())
		}
	}
}
