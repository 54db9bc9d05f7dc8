package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/crypto/envelope"
)

// fakeStore is a Store holding objects in memory.
type fakeStore struct {
	objects map[string]StoredObject
	bodies  map[string][]byte
	tags    map[string]string
	gets    int
}

func (f *fakeStore) Tagging(_ context.Context, o StoredObject) (string, error) {
	if _, ok := f.objects[o.Bucket+"/"+o.Key]; !ok {
		return "", errors.New("HTTP 404 NotFound")
	}
	return f.tags[o.Bucket+"/"+o.Key], nil
}

func (f *fakeStore) Small(_ context.Context, bucket, key string, limit int64) ([]byte, error) {
	b, ok := f.bodies[bucket+"/"+key]
	if !ok {
		return nil, errors.New("HTTP 404 NotFound")
	}
	if int64(len(b)) > limit {
		return nil, errors.New("too large")
	}
	return b, nil
}

func (f *fakeStore) Head(_ context.Context, bucket, key string) (StoredObject, error) {
	o, ok := f.objects[bucket+"/"+key]
	if !ok {
		return o, errors.New("HTTP 404 NotFound")
	}
	return o, nil
}

func (f *fakeStore) Get(_ context.Context, o StoredObject) (io.ReadCloser, error) {
	f.gets++
	cur := f.objects[o.Bucket+"/"+o.Key]
	if cur.ETag != o.ETag {
		return nil, errors.New("HTTP 412 PreconditionFailed")
	}
	return io.NopCloser(bytes.NewReader(f.bodies[o.Bucket+"/"+o.Key])), nil
}

func (f *fakeStore) Where() string { return "http://store.test" }

func (f *fakeStore) put(bucket, key string, meta map[string]string, body []byte, parts int) {
	if f.objects == nil {
		f.objects, f.bodies = map[string]StoredObject{}, map[string][]byte{}
	}
	f.objects[bucket+"/"+key] = StoredObject{Bucket: bucket, Key: key, Metadata: meta, Size: int64(len(body)), Parts: parts, ETag: `"e` + strconv.Itoa(len(f.objects)) + `"`}
	f.bodies[bucket+"/"+key] = body
}

func remoteTool(st Store, keys string, gotConfig *string) Tool {
	return Tool{Remote: func(_ context.Context, file string) (*Remote, error) {
		if gotConfig != nil {
			*gotConfig = file
		}
		return &Remote{Store: st, Keys: keys}, nil
	}}
}

// TestInspectEmptyMetadataExplains: the {} that head-object prints
// through s3seal (which hides its field) gets an explanation and the way
// to the real metadata, not "not written by s3seal".
func TestInspectEmptyMetadataExplains(t *testing.T) {
	for _, doc := range []string{`{}`, `{"Metadata": {}, "ContentLength": 5}`} {
		r := run(Inspect, []byte(doc), "--metadata", "-")
		if r.code != 1 {
			t.Fatalf("%s: %+v", doc, r)
		}
		for _, want := range []string{"the metadata is empty ({})", "x-amz-meta-s3seal", "s3seal inspect --bucket BUCKET --key KEY", "--endpoint-url STORE"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%s: stderr lacks %q:\n%s", doc, want, r.stderr)
			}
		}
		if strings.Contains(r.stderr, "was not written by s3seal") {
			t.Errorf("%s: claims the object was not written by s3seal:\n%s", doc, r.stderr)
		}
	}
	r := run(Inspect, []byte(`{"color":"blue"}`), "--metadata", "-")
	if r.code != 1 || !strings.Contains(r.stderr, "has only color") || !strings.Contains(r.stderr, "s3seal inspect --bucket") {
		t.Fatalf("other metadata: %+v", r)
	}
}

// TestFetchFromStore: inspect and decrypt with --bucket/--key read the
// object and its metadata from the store with the configuration's keys.
func TestFetchFromStore(t *testing.T) {
	dir := t.TempDir()
	o := makeObject(t, dir, [][]byte{bytes.Repeat([]byte("z"), 100_000)}, false)
	st := &fakeStore{}
	st.put("bkt", "a/b.txt", map[string]string{"s3seal": o.header.String(), "color": "blue"}, o.ct, 0)
	st.put("bkt", "plain.txt", map[string]string{"color": "red"}, []byte("hello"), 0)
	var cfgFile string
	tool := remoteTool(st, o.ringSpec, &cfgFile)

	r := run(tool.Inspect, nil, "--bucket", "bkt", "--key", "a/b.txt", "--config", "/etc/s3seal.yaml")
	if r.code != 0 || cfgFile != "/etc/s3seal.yaml" {
		t.Fatalf("inspect: %+v (config %q)", r, cfgFile)
	}
	for _, want := range []string{"s3://bkt/a/b.txt at http://store.test", "stored size:     " + strconv.Itoa(len(o.ct)), "plaintext size:  100000 bytes", o.header.KeyID()} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "warning") {
		t.Errorf("inspect warns about an intact object:\n%s", r.stdout)
	}

	out := filepath.Join(dir, "out")
	if r := run(tool.Decrypt, nil, "--bucket", "bkt", "--key", "a/b.txt", out); r.code != 0 {
		t.Fatalf("decrypt: %+v", r)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, o.plain) {
		t.Fatal("decrypted bytes differ")
	}
	if r := run(tool.Decrypt, nil, "--bucket", "bkt", "--key", "a/b.txt", "-"); r.code != 0 || r.stdout != string(o.plain) {
		t.Fatalf("decrypt to stdout: code %d %s", r.code, r.stderr)
	}

	// Not an s3seal object, a missing one, no keys anywhere, no store.
	if r := run(tool.Inspect, nil, "--bucket", "bkt", "--key", "plain.txt"); r.code != 1 || !strings.Contains(r.stderr, "has no s3seal metadata field (its user metadata has only color)") {
		t.Errorf("plain object: %+v", r)
	}
	if r := run(tool.Decrypt, nil, "--bucket", "bkt", "--key", "gone", filepath.Join(dir, "gone")); r.code != 1 || !strings.Contains(r.stderr, "404") {
		t.Errorf("missing object: %+v", r)
	}
	if r := run(remoteTool(st, "", nil).Decrypt, nil, "--bucket", "bkt", "--key", "a/b.txt", filepath.Join(dir, "x")); r.code != 2 || !strings.Contains(r.stderr, "names no keys") {
		t.Errorf("no keys: %+v", r)
	}
	if r := run(Inspect, nil, "--bucket", "bkt", "--key", "a/b.txt"); r.code != 1 || !strings.Contains(r.stderr, "--metadata") {
		t.Errorf("no store: %+v", r)
	}
	// A wrong key ring is refused without output.
	other := makeObject(t, t.TempDir(), [][]byte{[]byte("x")}, false)
	if r := run(tool.Decrypt, nil, "--bucket", "bkt", "--key", "a/b.txt", "--keys", other.ringSpec, filepath.Join(dir, "wrong")); r.code != 1 {
		t.Errorf("wrong ring: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "wrong")); err == nil {
		t.Error("output written with the wrong key ring")
	}
	for _, args := range [][]string{
		{"--bucket", "bkt"},
		{"--bucket", "bkt", "--key", "a/b.txt", "--metadata", "m.json"},
		{"--key", "a/b.txt", "x"},
	} {
		if r := run(tool.Inspect, nil, args...); r.code != 2 {
			t.Errorf("inspect usage %v: %+v", args, r)
		}
	}
	if r := run(tool.Decrypt, nil, "--bucket", "bkt", "--key", "a/b.txt", "--metadata", "m.json", "--config", "c.yaml", "in", "out"); r.code != 2 {
		t.Errorf("decrypt --config with --metadata: %+v", r)
	}
}

// TestFetchV2MultipartReadsTag: fetching a version 2 multipart object
// reads its part-set record from the store's tags; a record stripped at
// the store is reported, and a substituted one does not authenticate.
func TestFetchV2MultipartReadsTag(t *testing.T) {
	dir := t.TempDir()
	mp := makeObjectV2(t, dir, [][]byte{bytes.Repeat([]byte("p"), 70_000), bytes.Repeat([]byte("q"), 70_000), []byte("tail")}, true)
	other := makeObjectV2(t, dir, [][]byte{[]byte("x"), []byte("y")}, true)
	st := &fakeStore{}
	st.put("bkt", "a/b.txt", map[string]string{"s3seal": mp.header.String()}, mp.ct, 3)
	st.tags = map[string]string{"bkt/a/b.txt": "other=x&" + envelope.PartSetTag + "=" + url.QueryEscape(mp.record)}
	tool := remoteTool(st, mp.ringSpec, nil)

	if r := run(tool.Decrypt, nil, "--bucket", "bkt", "--key", "a/b.txt", "-"); r.code != 0 || r.stdout != string(mp.plain) {
		t.Fatalf("decrypt: code %d %s", r.code, r.stderr)
	}
	r := run(tool.Inspect, nil, "--bucket", "bkt", "--key", "a/b.txt")
	if r.code != 0 || !strings.Contains(r.stdout, "3 parts of 70000") || strings.Contains(r.stdout, "warning") {
		t.Fatalf("inspect: %+v", r)
	}

	st.tags["bkt/a/b.txt"] = "other=x"
	if r := run(tool.Decrypt, nil, "--bucket", "bkt", "--key", "a/b.txt", "-"); r.code != 1 || !strings.Contains(r.stderr, "without its part-set record") || r.stdout != "" {
		t.Fatalf("stripped tag: %+v", r)
	}
	if r := run(tool.Decrypt, nil, "--bucket", "bkt", "--key", "a/b.txt", "--unverified-parts", "-"); r.code != 0 || r.stdout != string(mp.plain) {
		t.Fatalf("stripped tag, --unverified-parts: code %d %s", r.code, r.stderr)
	}
	st.tags["bkt/a/b.txt"] = envelope.PartSetTag + "=" + url.QueryEscape(other.record)
	if r := run(tool.Decrypt, nil, "--bucket", "bkt", "--key", "a/b.txt", "-"); r.code != 1 || r.stdout != "" {
		t.Fatalf("substituted tag: %+v", r)
	}
}
