package proxy

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/crypto/envelope/envelopetest"
	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/keystest"
	"github.com/s3seal/s3seal/crypto/stream"
	"github.com/s3seal/s3seal/proxy/policy"
)

// Format version 2 in envelope mode, in front of the memory store: the
// part-set record and the tags around it, part ETags with salts, key
// objects, objects of version 1, and the markers listings read.

// taggingBody is a Tagging document with the tags k1, v1, k2, v2, ...
func taggingBody(kv ...string) []byte {
	var b strings.Builder
	b.WriteString("<Tagging><TagSet>")
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, "<Tag><Key>%s</Key><Value>%s</Value></Tag>", xmlEscape(kv[i]), xmlEscape(kv[i+1]))
	}
	b.WriteString("</TagSet></Tagging>")
	return []byte(b.String())
}

// nTags returns kv pairs of n tags t0=v0, t1=v1, ...
func nTags(n int) []string {
	var kv []string
	for i := 0; i < n; i++ {
		kv = append(kv, fmt.Sprintf("t%d", i), fmt.Sprintf("v%d", i))
	}
	return kv
}

// TestEnvelopeTags: s3seal's tag is hidden from clients, refused from
// them, kept when they set or delete tags, and counted against S3's 10.
func TestEnvelopeTags(t *testing.T) {
	t.Parallel()
	env := envelopeEnv(t)
	cs := stream.ChunkSize
	data := pattern(2*cs+3, 40)
	body, _, _ := expect(t, env.do(t, "POST", "/benv/mp?uploads", nil, "X-Amz-Tagging", "team=a"), 200)
	id := between(string(body), "<UploadId>", "</UploadId>")
	var etags []string
	for i, p := range [][]byte{data[:cs], data[cs:]} {
		r := env.do(t, "PUT", fmt.Sprintf("/benv/mp?partNumber=%d&uploadId=%s", i+1, id), p)
		expect(t, r, 200)
		etags = append(etags, r.Header.Get("ETag"))
	}
	expect(t, env.do(t, "POST", "/benv/mp?uploadId="+id, completeBody(etags...)), 200)
	o := checkSealed(t, env.store, "benv", "mp", data)
	record := o.tags.Get(envelope.PartSetTag)
	if o.tags.Get("team") != "a" || record == "" {
		t.Fatalf("the store's tags %v: want the client's and the record", o.tags)
	}
	readsBack := func(what string) {
		t.Helper()
		if got := mustBody(t, env.do(t, "GET", "/benv/mp", nil)); !bytes.Equal(got, data) {
			t.Errorf("%s: the object does not read back", what)
		}
	}
	// Hidden: GetObjectTagging and the count in GET and HEAD.
	tags := string(mustBody(t, env.do(t, "GET", "/benv/mp?tagging", nil)))
	if strings.Contains(tags, envelope.PartSetTag) || !strings.Contains(tags, "<Key>team</Key><Value>a</Value>") {
		t.Errorf("GetObjectTagging: %s", tags)
	}
	for _, m := range []string{"GET", "HEAD"} {
		if n := env.do(t, m, "/benv/mp", nil).Header.Get("X-Amz-Tagging-Count"); n != "1" {
			t.Errorf("%s: tag count %q, want the client's 1", m, n)
		}
	}
	// Refused: s3seal's tag from a client, in every way a client sets tags.
	for _, r := range []struct {
		method, path string
		body         []byte
		kv           []string
	}{
		{"PUT", "/benv/mp?tagging", taggingBody("x", "1", envelope.PartSetTag, record), nil},
		{"PUT", "/benv/single", []byte("data"), []string{"X-Amz-Tagging", envelope.PartSetTag + "=" + url.QueryEscape(record)}},
		{"POST", "/benv/mp2?uploads", nil, []string{"X-Amz-Tagging", "a=1&" + envelope.PartSetTag + "=x"}},
		{"PUT", "/benv/copy", nil, []string{"X-Amz-Copy-Source", "benv/mp", "X-Amz-Tagging-Directive", "REPLACE", "X-Amz-Tagging", envelope.PartSetTag + "=x"}},
	} {
		_, code, msg := expect(t, env.do(t, r.method, r.path, r.body, r.kv...), 400)
		if code != "InvalidTag" || !strings.Contains(msg, "reserved by s3seal") {
			t.Errorf("%s %s: %s %q", r.method, r.path, code, msg)
		}
	}
	if env.store.object("benv", "single") != nil || env.store.object("benv", "copy") != nil || env.store.uploadCount() != 0 {
		t.Error("a refused request wrote to the store")
	}
	if o := env.store.object("benv", "mp"); o.tags.Get(envelope.PartSetTag) != record || o.tags.Get("x") != "" {
		t.Errorf("a refused PutObjectTagging changed the tags: %v", o.tags)
	}
	// Merged: the client's tags replace the client's, the record stays.
	expect(t, env.do(t, "PUT", "/benv/mp?tagging", taggingBody("b", "2")), 200)
	if o := env.store.object("benv", "mp"); o.tags.Get("b") != "2" || o.tags.Get("team") != "" || o.tags.Get(envelope.PartSetTag) != record {
		t.Errorf("after PutObjectTagging: %v", o.tags)
	}
	readsBack("after PutObjectTagging")
	// Counted: 9 client tags fit beside the record, 10 do not.
	expect(t, env.do(t, "PUT", "/benv/mp?tagging", taggingBody(nTags(9)...)), 200)
	_, code, msg := expect(t, env.do(t, "PUT", "/benv/mp?tagging", taggingBody(nTags(10)...)), 400)
	if code != "BadRequest" || !strings.Contains(msg, envelope.PartSetTag) {
		t.Errorf("10 client tags on a multipart object: %s %q", code, msg)
	}
	if o := env.store.object("benv", "mp"); len(o.tags) != 10 || o.tags.Get(envelope.PartSetTag) != record {
		t.Errorf("after a refused 10-tag set: %v", o.tags)
	}
	_, code, _ = expect(t, env.do(t, "POST", "/benv/mp3?uploads", nil, "X-Amz-Tagging", url.Values{"a": {"1"}, "b": {"2"}, "c": {"3"}, "d": {"4"}, "e": {"5"}, "f": {"6"}, "g": {"7"}, "h": {"8"}, "i": {"9"}, "j": {"10"}}.Encode()), 400)
	if code != "BadRequest" {
		t.Errorf("CreateMultipartUpload with 10 tags: %s", code)
	}
	// Deleted: the client's tags go, the record stays.
	expect(t, env.do(t, "DELETE", "/benv/mp?tagging", nil), 204)
	if o := env.store.object("benv", "mp"); len(o.tags) != 1 || o.tags.Get(envelope.PartSetTag) != record {
		t.Errorf("after DeleteObjectTagging: %v", o.tags)
	}
	readsBack("after DeleteObjectTagging")
	if tags := string(mustBody(t, env.do(t, "GET", "/benv/mp?tagging", nil))); strings.Contains(tags, "<Tag>") {
		t.Errorf("GetObjectTagging after delete: %s", tags)
	}
	// A single-PUT object has no record: its 10 tags are the client's.
	expect(t, env.do(t, "PUT", "/benv/one", []byte("x")), 200)
	expect(t, env.do(t, "PUT", "/benv/one?tagging", taggingBody(nTags(10)...)), 200)
	expect(t, env.do(t, "DELETE", "/benv/one?tagging", nil), 204)
	if o := env.store.object("benv", "one"); len(o.tags) != 0 {
		t.Errorf("single object's tags after delete: %v", o.tags)
	}
}

// TestEnvelopePartSetRecordRequired: a version 2 multipart object whose
// record is missing, altered, or another object's is refused with a clear
// error, in every kind of read; nothing of it is released.
func TestEnvelopePartSetRecordRequired(t *testing.T) {
	t.Parallel()
	env := envelopeEnv(t)
	cs := stream.ChunkSize
	data := pattern(2*cs+9, 41)
	for _, k := range []string{"missing", "altered", "other", "intact"} {
		uploadParts(t, env, "benv", k, [][]byte{data[:cs], data[cs:]})
	}
	intact := env.store.object("benv", "intact").tags.Get(envelope.PartSetTag)
	env.store.object("benv", "missing").tags = nil
	env.store.object("benv", "other").tags = url.Values{envelope.PartSetTag: {intact}}
	altered := []byte(env.store.object("benv", "altered").tags.Get(envelope.PartSetTag))
	altered[len(altered)-3] ^= 'A' ^ 'B'
	env.store.object("benv", "altered").tags.Set(envelope.PartSetTag, string(altered))
	for _, k := range []string{"missing", "altered", "other"} {
		for _, r := range []struct {
			method, query string
			kv            []string
		}{{"GET", "", nil}, {"HEAD", "", nil}, {"GET", "", []string{"Range", "bytes=10-20"}}, {"GET", "?partNumber=2", nil}} {
			body, code, msg := expect(t, env.do(t, r.method, "/benv/"+k+r.query, nil, r.kv...), 500)
			if r.method == "GET" && (code != "InternalError" || !strings.Contains(msg, "part-set record") || bytes.Contains(body, data[10:40])) {
				t.Errorf("%s %s%s %v: %s %q", r.method, k, r.query, r.kv, code, msg)
			}
		}
	}
	if got := mustBody(t, env.do(t, "GET", "/benv/intact", nil)); !bytes.Equal(got, data) {
		t.Error("the intact object does not read")
	}
	if n := env.logs.FilterMessageSnippet("no valid part-set record").Len(); n == 0 {
		t.Error("no refusal was logged")
	}
}

// TestEnvelopeCompleteWithoutSalts: parts completed with the ETags
// ListParts shows (without salts) get their salts from the object; a made
// up salt makes the object fail its whole reads.
func TestEnvelopeCompleteWithoutSalts(t *testing.T) {
	t.Parallel()
	env := envelopeEnv(t)
	cs := stream.ChunkSize
	data := pattern(3*cs+1, 42)
	parts := [][]byte{data[:cs], data[cs : 2*cs], data[2*cs:]}
	for _, c := range []struct {
		key   string
		etags func(given []string) []string
		ok    bool
	}{
		{"listed", func(given []string) []string {
			out := make([]string, len(given))
			for i, e := range given {
				store, _ := splitPartETag(e)
				out[i] = clientETag(store)
			}
			return out
		}, true},
		{"mixed", func(given []string) []string {
			store, _ := splitPartETag(given[1])
			return []string{given[0], clientETag(store), given[2]}
		}, true},
		{"made-up", func(given []string) []string {
			store, _ := splitPartETag(given[0])
			return []string{partETag(store, [stream.SaltSize]byte{1, 2, 3}), given[1], given[2]}
		}, false},
	} {
		body, _, _ := expect(t, env.do(t, "POST", "/benv/"+c.key+"?uploads", nil), 200)
		id := between(string(body), "<UploadId>", "</UploadId>")
		var given []string
		for i, p := range parts {
			r := env.do(t, "PUT", fmt.Sprintf("/benv/%s?partNumber=%d&uploadId=%s", c.key, i+1, id), p)
			expect(t, r, 200)
			given = append(given, r.Header.Get("ETag"))
		}
		expect(t, env.do(t, "POST", "/benv/"+c.key+"?uploadId="+id, completeBody(c.etags(given)...)), 200)
		resp := env.do(t, "GET", "/benv/"+c.key, nil)
		if c.ok {
			if got, _, _ := expect(t, resp, 200); !bytes.Equal(got, data) {
				t.Errorf("%s: %d bytes", c.key, len(got))
			}
			continue
		}
		// The first chunk is released only once authenticated, and the
		// salts are checked at the end: the read is cut off.
		got, err := io.ReadAll(resp.Body)
		if err == nil && bytes.Equal(got, data) {
			t.Errorf("%s: a record with a made-up salt read to a clean end", c.key)
		}
	}
}

// TestEnvelopeKeyObjects: a data key whose wrapped form is too large for
// the metadata (an age recipient's) is stored once per data key and bucket
// as .s3seal/keys/<sha256>, and read back from the store (and cached)
// whenever an object needs it.
func TestEnvelopeKeyObjects(t *testing.T) {
	t.Parallel()
	kp := &keystest.Provider{Kind: keys.KindAge, WrappedSize: 1200}
	env := envelopeEnv(t, func(o *envOptions) {
		o.Rules = append(o.Rules, policy.Rule{Name: "env2", Bucket: "benv2", Mode: policy.Envelope})
		o.Buckets = append(o.Buckets, "benv2")
		o.Runtime = func(rt *Runtime) { rt.Keys = keys.NewCache(kp, keys.CacheConfig{}) }
	})
	cs := stream.ChunkSize
	small, big := pattern(1000, 43), pattern(2*cs+7, 44)
	expect(t, env.do(t, "PUT", "/benv/a", small), 200)
	expect(t, env.do(t, "PUT", "/benv/b", small), 200)
	uploadParts(t, env, "benv", "mp", [][]byte{big[:cs], big[cs:]})
	hdr, err := envelope.Parse(checkSealed(t, env.store, "benv", "a", small).meta[envelope.MetadataKey])
	if err != nil || !hdr.KeyObject() {
		t.Fatalf("the header does not reference a key object: %v", err)
	}
	name := envelope.KeyObjectName([envelope.WrappedKeyRefSize]byte(hdr.WrappedKey()))
	ko := env.store.object("benv", name)
	if ko == nil || len(ko.data) != 1200 || sha256.Sum256(ko.data) != [32]byte(hdr.WrappedKey()) {
		t.Fatalf("no key object %s holding the wrapped key", name)
	}
	if n := countRequests(env.store, "PUT", "/benv/"+name); n != 1 {
		t.Errorf("the key object was written %d times for one data key", n)
	}
	if kp.Generates.Load() != 1 {
		t.Errorf("%d data keys generated", kp.Generates.Load())
	}
	// Read back with the key object fetched from the store (a replica
	// that has not seen it), and with it cached.
	env.h.env.keyObjects.Purge()
	env.store.reset()
	for _, k := range []string{"a", "b"} {
		if got := mustBody(t, env.do(t, "GET", "/benv/"+k, nil)); !bytes.Equal(got, small) {
			t.Errorf("GET %s", k)
		}
	}
	if got := mustBody(t, env.do(t, "GET", "/benv/mp", nil)); !bytes.Equal(got, big) {
		t.Error("GET of the multipart object")
	}
	if n := countRequests(env.store, "GET", "/benv/"+name); n != 1 {
		t.Errorf("the key object was fetched %d times for three reads", n)
	}
	// A copy into another bucket takes the key object there.
	expect(t, env.do(t, "PUT", "/benv2/c", nil, "X-Amz-Copy-Source", "benv/a"), 200)
	expect(t, env.do(t, "PUT", "/benv2/mpc", nil, "X-Amz-Copy-Source", "benv/mp"), 200)
	if o := env.store.object("benv2", name); o == nil || !bytes.Equal(o.data, ko.data) {
		t.Error("no key object in the copy's bucket")
	}
	env.h.env.keyObjects.Purge()
	if got := mustBody(t, env.do(t, "GET", "/benv2/mpc", nil)); !bytes.Equal(got, big) {
		t.Error("GET of the copy")
	}
	// A key object changed at the store does not open anything.
	env.h.env.keyObjects.Purge()
	kp.SetFail(nil)
	altered := append([]byte(nil), ko.data...)
	altered[600] ^= 1
	env.store.put("benv", name, &memObject{data: altered})
	_, code, msg := expect(t, env.do(t, "GET", "/benv/a", nil), 500)
	if code != "InternalError" || !strings.Contains(msg, "failed authentication") {
		t.Errorf("altered key object: %s %q", code, msg)
	}
}

func countRequests(st *memStore, method, path string) int {
	n := 0
	for _, r := range st.requests() {
		if r.Method == method && r.Path == path && r.Query.Get("uploadId") == "" {
			n++
		}
	}
	return n
}

// vectorEnv is envelopeEnv whose key ring reads the committed version 1
// vectors, whose buckets hold them as an earlier release stored them, and
// whose store clock starts an hour ago.
func vectorEnv(t *testing.T) (*testEnv, []envelopetest.Vector, *time.Time) {
	t.Helper()
	vs, err := envelopetest.Version1()
	if err != nil {
		t.Fatal(err)
	}
	ring, err := vs[0].Keyring()
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now().Add(-time.Hour)
	// A store has no bucket "b" (too short a name): that vector stays out.
	kept := vs[:0]
	var buckets []string
	for _, v := range vs {
		if len(v.Bucket) >= 3 {
			kept = append(kept, v)
			buckets = append(buckets, v.Bucket)
		}
	}
	vs = kept
	env := newEnv(t, envOptions{Default: policy.Envelope, Ring: ring, Buckets: buckets,
		Store: memStoreOptions{MinPartSize: -1, Now: func() time.Time { return clock }}})
	for _, v := range vs {
		stored, sizes, err := v.Stored()
		if err != nil {
			t.Fatal(err)
		}
		o := &memObject{data: stored, meta: map[string]string{envelope.MetadataKey: v.Metadata}}
		if v.Multipart {
			o.parts = sizes
			o.etag = fmt.Sprintf(`"%x-%d"`, md5.Sum(stored), len(sizes))
		}
		env.store.put(v.Bucket, v.Key, o)
	}
	return env, vs, &clock
}

// TestEnvelopeVersion1Objects: objects an earlier release stored in format
// version 1 (the committed vectors, put into the store as they were
// written) are read, ranged, read by part, listed with their sizes, and
// copied; the copy stays version 1, and the bucket, which now holds
// version 2 objects too, gets the marker that makes listings look such
// objects up.
func TestEnvelopeVersion1Objects(t *testing.T) {
	t.Parallel()
	env, vs, clock := vectorEnv(t)
	for _, v := range vs {
		plain, _ := v.Plaintext()
		whole := bytes.Join(plain, nil)
		path := "/" + v.Bucket + "/" + s3Escape(v.Key)
		if got := mustBody(t, env.do(t, "GET", path, nil)); !bytes.Equal(got, whole) {
			t.Errorf("%s: GET %d bytes", v.Name, len(got))
		}
		if r := env.do(t, "HEAD", path, nil); r.ContentLength != int64(len(whole)) {
			t.Errorf("%s: HEAD length %d", v.Name, r.ContentLength)
		}
		if len(whole) > 2 {
			a, b := len(whole)/2-1, len(whole)-1
			got, _, _ := expect(t, env.do(t, "GET", path, nil, "Range", fmt.Sprintf("bytes=%d-%d", a, b)), 206)
			if !bytes.Equal(got, whole[a:b+1]) {
				t.Errorf("%s: range", v.Name)
			}
		}
		if v.Multipart {
			for n, p := range plain {
				if got, _, _ := expect(t, env.do(t, "GET", fmt.Sprintf("%s?partNumber=%d", path, n+1), nil), 206); !bytes.Equal(got, p) {
					t.Errorf("%s: part %d", v.Name, n+1)
				}
			}
		}
		l := parseListing(t, mustBody(t, env.do(t, "GET", "/"+v.Bucket+"/?list-type=2&prefix="+url.QueryEscape(v.Key), nil)))
		if len(l.Contents) != 1 || l.Contents[0].Size != int64(len(whole)) {
			t.Errorf("%s: listing %+v", v.Name, l.Contents)
		}
	}
	// A version 2 object after them: the bucket switches.
	*clock = clock.Add(10 * time.Minute)
	expect(t, env.do(t, "PUT", "/my-bucket/new", pattern(70_000, 1)), 200)
	if env.store.object("my-bucket", markerFormat2) == nil {
		t.Fatal("no format-2 marker after the first version 2 write")
	}
	// Copies of version 1 objects, single and multipart, stay version 1.
	*clock = clock.Add(10 * time.Minute)
	for _, v := range vs {
		if v.Bucket != "my-bucket" {
			continue
		}
		plain, _ := v.Plaintext()
		whole := bytes.Join(plain, nil)
		expect(t, env.do(t, "PUT", "/my-bucket/copy-of-"+v.Name, nil, "X-Amz-Copy-Source", "my-bucket/"+s3Escape(v.Key)), 200)
		h, _ := envelope.Parse(env.store.object("my-bucket", "copy-of-"+v.Name).meta[envelope.MetadataKey])
		if h == nil || h.Version() != envelope.Version {
			t.Errorf("%s: the copy is not version 1", v.Name)
		}
		if got := mustBody(t, env.do(t, "GET", "/my-bucket/copy-of-"+v.Name, nil)); !bytes.Equal(got, whole) {
			t.Errorf("%s: the copy does not read", v.Name)
		}
	}
	if env.store.object("my-bucket", markerMixed) == nil {
		t.Error("no mixed marker after version 1 copies into a version 2 bucket")
	}
	// Every object is listed with its size: version 1 from before the
	// switch, version 2 after it, version 1 copies after it.
	want := map[string]int64{"new": 70_000}
	for _, v := range vs {
		if v.Bucket == "my-bucket" {
			plain, _ := v.Plaintext()
			n := int64(len(bytes.Join(plain, nil)))
			want[v.Key], want["copy-of-"+v.Name] = n, n
		}
	}
	env.h.env.markers.Purge()
	l := parseListing(t, mustBody(t, env.do(t, "GET", "/my-bucket/?list-type=2", nil)))
	if len(l.Contents) != len(want) {
		t.Errorf("listing of %d objects: %+v", len(want), l.Contents)
	}
	for _, e := range l.Contents {
		if k, _ := url.QueryUnescape(e.Key); e.Size != want[k] && e.Size != want[e.Key] {
			t.Errorf("listing: %s has size %d, want %d", e.Key, e.Size, want[e.Key])
		}
	}
}

func s3Escape(key string) string {
	return strings.ReplaceAll(url.PathEscape(key), "%2F", "/")
}

// TestEnvelopeVersion1UploadCompletes: an upload an earlier release
// started (an "S3S1" id with a version 1 header) takes parts and completes
// as version 1.
func TestEnvelopeVersion1UploadCompletes(t *testing.T) {
	t.Parallel()
	env := envelopeEnv(t)
	ok, hdr, err := envelope.New(context.Background(), env.rt.Keys, envelope.Params{Bucket: "benv", Key: "old", Multipart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ok.Zero()
	env.store.addUpload("store-upload-1", "benv", "old", memObject{meta: map[string]string{envelope.MetadataKey: hdr.String()}})
	id := encodeUploadID("store-upload-1", hdr, ok.UploadTag("store-upload-1"))
	if !strings.HasPrefix(id, uploadIDPrefixV1) {
		t.Fatalf("a version 1 upload id %q", id)
	}
	cs := stream.ChunkSize
	data := pattern(2*cs-11, 45)
	var etags []string
	for i, p := range [][]byte{data[:cs], data[cs:]} {
		r := env.do(t, "PUT", fmt.Sprintf("/benv/old?partNumber=%d&uploadId=%s", i+1, id), p)
		expect(t, r, 200)
		if _, salt := splitPartETag(r.Header.Get("ETag")); salt != nil {
			t.Error("a version 1 part ETag with a salt")
		}
		if c, _ := stream.CiphertextSize(int64(len(p))); int64(len(env.store.partOf("store-upload-1", i+1).data)) != c {
			t.Errorf("part %d is not a version 1 segment", i+1)
		}
		etags = append(etags, r.Header.Get("ETag"))
	}
	expect(t, env.do(t, "POST", "/benv/old?uploadId="+id, completeBody(etags...)), 200)
	if got := mustBody(t, env.do(t, "GET", "/benv/old", nil)); !bytes.Equal(got, data) {
		t.Error("the version 1 upload does not read back")
	}
	h, _ := envelope.Parse(env.store.object("benv", "old").meta[envelope.MetadataKey])
	if h == nil || h.Version() != envelope.Version {
		t.Error("the completed upload is not version 1")
	}
	// One whose parts a version 1 object cannot keep (the last larger
	// than the others) is rewritten as version 2.
	ok2, hdr2, err := envelope.New(context.Background(), env.rt.Keys, envelope.Params{Bucket: "benv", Key: "old2", Multipart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ok2.Zero()
	env.store.addUpload("store-upload-2", "benv", "old2", memObject{meta: map[string]string{envelope.MetadataKey: hdr2.String()}})
	id2 := encodeUploadID("store-upload-2", hdr2, ok2.UploadTag("store-upload-2"))
	data2 := pattern(2*cs+11, 46)
	etags = nil
	for i, p := range [][]byte{data2[:cs], data2[cs:]} {
		r := env.do(t, "PUT", fmt.Sprintf("/benv/old2?partNumber=%d&uploadId=%s", i+1, id2), p)
		expect(t, r, 200)
		etags = append(etags, r.Header.Get("ETag"))
	}
	expect(t, env.do(t, "POST", "/benv/old2?uploadId="+id2, completeBody(etags...)), 200)
	checkSealed(t, env.store, "benv", "old2", data2)
	if got := mustBody(t, env.do(t, "GET", "/benv/old2", nil)); !bytes.Equal(got, data2) {
		t.Error("the rewritten upload does not read back")
	}
}

// TestEnvelopeListingMarkers: listings size objects by the version the
// bucket's markers give them, and look up the ones around the switch.
func TestEnvelopeListingMarkers(t *testing.T) {
	t.Parallel()
	clock := time.Now().Add(-time.Hour)
	env := envelopeEnv(t, func(o *envOptions) { o.Store.Now = func() time.Time { return clock } })
	// A version 1 object of an earlier release, then the switch.
	ok, hdr, err := envelope.New(context.Background(), env.rt.Keys, envelope.Params{Bucket: "benv", Key: "v1", Size: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	v1 := pattern(100_000, 46)
	enc, _ := stream.NewEncryptReader(ok.SegmentKey(0), bytes.NewReader(v1), nil)
	var ct bytes.Buffer
	_, _ = ct.ReadFrom(enc)
	ok.Zero()
	env.store.put("benv", "v1", &memObject{data: ct.Bytes(), meta: map[string]string{envelope.MetadataKey: hdr.String()}})
	listed := func() map[string]int64 {
		t.Helper()
		out := map[string]int64{}
		for _, e := range parseListing(t, mustBody(t, env.do(t, "GET", "/benv/?list-type=2", nil))).Contents {
			out[e.Key] = e.Size
		}
		return out
	}
	if l := listed(); l["v1"] != 100_000 {
		t.Errorf("before the switch: %v", l)
	}
	heads := func() int { return countMethod(env.store, "HEAD") }
	clock = clock.Add(time.Minute)
	expect(t, env.do(t, "PUT", "/benv/v2-same-second", pattern(100_000, 47)), 200)
	clock = clock.Add(time.Minute)
	expect(t, env.do(t, "PUT", "/benv/v2-later", pattern(100_000, 48)), 200)
	env.store.reset()
	if l := listed(); l["v1"] != 100_000 || l["v2-same-second"] != 100_000 || l["v2-later"] != 100_000 {
		t.Errorf("after the switch: %v", l)
	}
	// Only the object written in the marker's second is looked up, once.
	if n := heads(); n != 1 {
		t.Errorf("%d lookups, want 1 (the object modified with the marker)", n)
	}
	listed()
	if n := heads(); n != 1 {
		t.Errorf("%d lookups after a second listing, want the cached 1", n)
	}
}

func countMethod(st *memStore, method string) int {
	n := 0
	for _, r := range st.requests() {
		if r.Method == method {
			n++
		}
	}
	return n
}
