package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/local"
	"github.com/s3seal/s3seal/crypto/stream"
)

type result struct {
	code           int
	stdout, stderr string
}

func run(f func([]string, io.Reader, io.Writer, io.Writer) int, stdin []byte, args ...string) result {
	var out, errb bytes.Buffer
	code := f(args, bytes.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	ring := filepath.Join(dir, "ring")
	tool := Tool{Now: func() time.Time { return time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC) }}
	r := run(tool.Keygen, nil, "-o", ring)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "s3seal-20260102-") {
		t.Fatalf("%+v", r)
	}
	name := strings.TrimSpace(r.stdout)
	content, _ := os.ReadFile(ring)
	fi, _ := os.Stat(ring)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o", fi.Mode().Perm())
	}
	// The key itself appears in the file but never on stdout or stderr.
	k, err := local.Load(ring)
	if err != nil || k.Active() != name {
		t.Fatal(err)
	}
	secret := strings.TrimPrefix(strings.TrimSpace(string(content[strings.Index(string(content), name):])), name+":")
	if strings.Contains(r.stdout+r.stderr, secret) {
		t.Fatal("keygen printed the key")
	}
	if r := run(tool.Keygen, nil, "-o", ring); r.code != 1 || !strings.Contains(r.stderr, "exists") {
		t.Fatalf("overwrite: %+v", r)
	}
	if after, _ := os.ReadFile(ring); !bytes.Equal(after, content) {
		t.Fatal("key ring changed")
	}
	r = run(tool.Keygen, nil, "--append", ring)
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	if k, _ := local.Load(ring); len(k.Names()) != 2 || k.Active() != strings.TrimSpace(r.stdout) {
		t.Fatal("append")
	}
	for _, args := range [][]string{{}, {"-o", ring, "--append", ring}, {"-o", ring, "extra"}, {"--bogus"}} {
		if r := run(tool.Keygen, nil, args...); r.code != 2 || r.stderr == "" {
			t.Fatalf("usage %v: %+v", args, r)
		}
	}
	if r := run(tool.Keygen, nil, "-h"); r.code != 0 || !strings.Contains(r.stderr, "Usage: s3seal keygen") {
		t.Fatalf("help: %+v", r)
	}
}

// object is an encrypted object as a user would download it.
type object struct {
	ringSpec string
	metaJSON string // head-object --query Metadata
	ct       []byte
	plain    []byte
	header   envelope.Header
}

// newTestObject creates an object's key and header with the key ring in
// dir (made if missing), in format version 1 or 2 (create is envelope.New
// or envelope.NewV2).
func newTestObject(t *testing.T, dir string, parts [][]byte, multipart bool, create func(context.Context, keys.Provider, envelope.Params) (*envelope.ObjectKey, envelope.Header, error)) (*envelope.ObjectKey, object) {
	t.Helper()
	ring := filepath.Join(dir, "ring")
	if _, err := os.Stat(ring); err != nil {
		if _, err := local.Create(ring, nil, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	k, err := local.Load(ring)
	if err != nil {
		t.Fatal(err)
	}
	kp := local.NewProvider(k, local.Config{})
	var size int64
	if !multipart {
		size = int64(len(parts[0]))
	}
	ok, h, err := create(context.Background(), kp, envelope.Params{Bucket: "bkt", Key: "a/b.txt", Multipart: multipart, Size: size})
	if err != nil {
		t.Fatal(err)
	}
	return ok, object{ringSpec: "local:" + ring, header: h}
}

func makeObject(t *testing.T, dir string, parts [][]byte, multipart bool) object {
	t.Helper()
	ok, o := newTestObject(t, dir, parts, multipart, envelope.New)
	for i, p := range parts {
		seg := uint32(0)
		if multipart {
			seg = uint32(i + 1)
		}
		r, _ := stream.NewEncryptReader(ok.SegmentKey(seg), bytes.NewReader(p), nil)
		c, _ := io.ReadAll(r)
		o.ct = append(o.ct, c...)
		o.plain = append(o.plain, p...)
	}
	o.metaJSON = metadataJSON(o.header)
	return o
}

// metadataJSON is what head-object --query Metadata prints for h.
func metadataJSON(h envelope.Header) string {
	meta, _ := json.Marshal(map[string]string{"s3seal": h.String(), "color": "blue"})
	return string(meta)
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDecryptSingleAndMultipart(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name      string
		parts     [][]byte
		multipart bool
		extra     []string
	}{
		{"single", [][]byte{bytes.Repeat([]byte("x"), 200_000)}, false, nil},
		{"empty", [][]byte{{}}, false, nil},
		{"multipart", [][]byte{bytes.Repeat([]byte("p"), 5<<20), bytes.Repeat([]byte("q"), 5<<20), []byte("tail")}, true, []string{"--parts", "3", "--part-size", strconv.Itoa(5 << 20)}},
		{"irregular", [][]byte{bytes.Repeat([]byte("p"), 70_000), []byte("tail")}, true, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := makeObject(t, dir, c.parts, c.multipart)
			meta := writeFile(t, dir, c.name+".json", []byte(o.metaJSON))
			in := writeFile(t, dir, c.name+".ct", o.ct)
			out := filepath.Join(dir, c.name+".out")
			args := append([]string{"--keys", o.ringSpec, "--metadata", meta, "--bucket", "bkt", "--key", "a/b.txt"}, c.extra...)
			r := run(Decrypt, nil, append(args, in, out)...)
			if r.code != 0 {
				t.Fatalf("%+v", r)
			}
			if got, _ := os.ReadFile(out); !bytes.Equal(got, o.plain) {
				t.Fatal("plaintext differs")
			}
			// Streams: ciphertext on stdin, plaintext on stdout.
			r = run(Decrypt, o.ct, append(args, "-", "-")...)
			if r.code != 0 || r.stdout != string(o.plain) {
				t.Fatalf("streaming: code %d, %s", r.code, r.stderr)
			}
			// An existing output is not overwritten.
			if r := run(Decrypt, nil, append(args, in, out)...); r.code != 1 || !strings.Contains(r.stderr, "exists") {
				t.Fatalf("overwrite: %+v", r)
			}
		})
	}
}

func TestDecryptFailuresLeaveNoOutput(t *testing.T) {
	dir := t.TempDir()
	o := makeObject(t, dir, [][]byte{bytes.Repeat([]byte("s"), 3<<20)}, false)
	meta := writeFile(t, dir, "m.json", []byte(o.metaJSON))
	bad := append([]byte(nil), o.ct...)
	bad[len(bad)/2] ^= 1
	in := writeFile(t, dir, "ct", o.ct)
	tampered := writeFile(t, dir, "bad", bad)
	truncated := writeFile(t, dir, "short", o.ct[:len(o.ct)-1])
	other := t.TempDir()
	otherRing := filepath.Join(other, "ring")
	local.Create(otherRing, nil, time.Now())
	base := func(keys, bucket, key string) []string {
		return []string{"--keys", keys, "--metadata", meta, "--bucket", bucket, "--key", key}
	}
	for name, c := range map[string]struct {
		args []string
		in   string
		want string
	}{
		"tampered":   {base(o.ringSpec, "bkt", "a/b.txt"), tampered, "does not authenticate"},
		"truncated":  {base(o.ringSpec, "bkt", "a/b.txt"), truncated, "does not authenticate"},
		"moved":      {base(o.ringSpec, "bkt", "a/c.txt"), in, "--bucket/--key"},
		"wrong ring": {base("local:"+otherRing, "bkt", "a/b.txt"), in, "not configured"},
		"wrong kind": {base("aws-kms:arn:aws:kms:us-east-1:111122223333:key/x", "bkt", "a/b.txt"), in, "provider"},
	} {
		out := filepath.Join(dir, name+".out")
		r := run(Tool{Keys: noKMS}.Decrypt, nil, append(c.args, c.in, out)...)
		if r.code != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: code %d stderr %q", name, r.code, r.stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: output written", name)
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".s3seal-") {
				t.Errorf("%s: temporary file %s left", name, e.Name())
			}
		}
	}
	for _, args := range [][]string{
		{},
		{"--keys", o.ringSpec, "--metadata", meta, "--bucket", "bkt", "--key", "k", in},
		{"--keys", o.ringSpec, "--metadata", meta, "--bucket", "bkt", in, "x"},
		{"--keys", o.ringSpec, "--metadata", "-", "--bucket", "bkt", "--key", "k", "-", "x"},
		{"--keys", o.ringSpec, "--metadata", meta, "--bucket", "bkt", "--key", "k", "--parts", "2", in, "x"},
		{"--keys", o.ringSpec, "--metadata", meta, "--bucket", "bkt", "--key", "k", "--part-sizes", "1,x", in, "x"},
	} {
		if r := run(Decrypt, nil, args...); r.code != 2 {
			t.Errorf("usage %v: %+v", args, r)
		}
	}
}

var noKMS = keyspecOptionsWithoutAWS()

func TestDecryptPartChecks(t *testing.T) {
	dir := t.TempDir()
	o := makeObject(t, dir, [][]byte{bytes.Repeat([]byte("p"), 2*stream.ChunkSize), bytes.Repeat([]byte("q"), 2*stream.ChunkSize), []byte("x")}, true)
	meta := writeFile(t, dir, "m.json", []byte(o.metaJSON))
	in := writeFile(t, dir, "ct", o.ct)
	c1, _ := stream.CiphertextSize(2 * stream.ChunkSize)
	c3, _ := stream.CiphertextSize(1)
	args := []string{"--keys", o.ringSpec, "--metadata", meta, "--bucket", "bkt", "--key", "a/b.txt"}
	good := strconv.FormatInt(c1, 10) + "," + strconv.FormatInt(c1, 10) + "," + strconv.FormatInt(c3, 10)
	if r := run(Decrypt, nil, append(args, "--part-sizes", good, in, "-")...); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	for _, extra := range [][]string{{"--parts", "4"}, {"--part-size", "1000"}, {"--part-sizes", good + "," + strconv.FormatInt(c3, 10)}} {
		if r := run(Decrypt, nil, append(append(args, extra...), in, filepath.Join(dir, "out"))...); r.code != 1 {
			t.Fatalf("%v: %+v", extra, r)
		}
	}
	// Dropping the last part: authentic, but --parts catches it.
	cut := writeFile(t, dir, "cut", o.ct[:2*c1])
	if r := run(Decrypt, nil, append(args, cut, "-")...); r.code != 0 {
		t.Fatalf("without --parts: %+v", r)
	}
	if r := run(Decrypt, nil, append(args, "--parts", "3", cut, "-")...); r.code != 1 || !strings.Contains(r.stderr, "trailing parts") {
		t.Fatalf("with --parts: %+v", r)
	}
}

func TestInspect(t *testing.T) {
	dir := t.TempDir()
	o := makeObject(t, dir, [][]byte{[]byte("hello")}, false)
	// The whole head-object output works too.
	full, _ := json.Marshal(map[string]any{"ContentLength": len(o.ct), "Metadata": json.RawMessage(o.metaJSON)})
	for _, doc := range []string{o.metaJSON, string(full)} {
		meta := writeFile(t, dir, "m.json", []byte(doc))
		r := run(Inspect, nil, "--metadata", meta, "--size", strconv.Itoa(len(o.ct)))
		if r.code != 0 {
			t.Fatalf("%+v", r)
		}
		for _, want := range []string{"version 1", "local", o.header.KeyID(), "single PUT", "plaintext size:  5 bytes", "ciphertext size: " + strconv.Itoa(len(o.ct))} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("inspect output lacks %q:\n%s", want, r.stdout)
			}
		}
		// No secrets: neither the wrapped key nor the sealed key nor the
		// commitment appear in any encoding.
		for _, secret := range [][]byte{o.header.WrappedKey(), o.header.Commitment(), o.header[len(o.header)-48:]} {
			for _, enc := range []string{hex.EncodeToString(secret), base64.StdEncoding.EncodeToString(secret), base64.RawURLEncoding.EncodeToString(secret)} {
				if strings.Contains(r.stdout, enc) {
					t.Fatal("inspect printed key material")
				}
			}
		}
	}
	if r := run(Inspect, []byte(o.metaJSON), "--metadata", "-"); r.code != 0 {
		t.Fatalf("stdin: %+v", r)
	}
	mp := makeObject(t, dir, [][]byte{bytes.Repeat([]byte{1}, stream.ChunkSize), []byte("x")}, true)
	r := run(Inspect, []byte(mp.metaJSON), "--metadata", "-", "--size", strconv.Itoa(len(mp.ct)), "--parts", "2")
	if r.code != 0 || !strings.Contains(r.stdout, "multipart") || !strings.Contains(r.stdout, strconv.Itoa(stream.ChunkSize+1)+" bytes") {
		t.Fatalf("multipart: %+v", r)
	}
	for _, doc := range []string{`{"color":"blue"}`, `not json`, `{"s3seal":"AQ"}`, `{"s3seal":5}`} {
		if r := run(Inspect, []byte(doc), "--metadata", "-"); r.code != 1 || r.stderr == "" {
			t.Errorf("%s: %+v", doc, r)
		}
	}
	if r := run(Inspect, nil); r.code != 2 {
		t.Errorf("no args: %+v", r)
	}
}

// objectV2 is a version 2 object as a user would download it: stored
// bytes, metadata, tags.
type objectV2 struct {
	object
	tagsJSON string // get-object-tagging output
	record   string
}

func makeObjectV2(t *testing.T, dir string, parts [][]byte, multipart bool) objectV2 {
	t.Helper()
	ok, base := newTestObject(t, dir, parts, multipart, envelope.NewV2)
	o := objectV2{object: base}
	h := base.header
	var salts [][stream.SaltSize]byte
	for i, p := range parts {
		seg := uint32(0)
		if multipart {
			seg = uint32(i + 1)
		}
		r, err := ok.EncryptSegment(seg, bytes.NewReader(p), nil)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := io.ReadAll(r)
		o.ct = append(o.ct, c...)
		o.plain = append(o.plain, p...)
		salts = append(salts, r.Salt())
	}
	if multipart {
		ps := envelope.PartSet{Parts: len(parts), PartSize: int64(len(parts[0])), LastSize: int64(len(parts[len(parts)-1])), Salts: envelope.SaltsDigest(salts)}
		rec, err := ok.SealPartSet(h, "bkt", "a/b.txt", ps)
		if err != nil {
			t.Fatal(err)
		}
		o.record = rec.String()
		tags, _ := json.Marshal(map[string]any{"TagSet": []map[string]string{{"Key": "other", "Value": "x"}, {"Key": envelope.PartSetTag, "Value": o.record}}})
		o.tagsJSON = string(tags)
	}
	o.metaJSON = metadataJSON(h)
	return o
}

func TestDecryptV2(t *testing.T) {
	dir := t.TempDir()
	barman := 3*stream.ChunkSize + 1234 // not a multiple of 64 KiB, as Barman's part size
	single := makeObjectV2(t, dir, [][]byte{bytes.Repeat([]byte("s"), 200_000)}, false)
	mp := makeObjectV2(t, dir, [][]byte{bytes.Repeat([]byte("p"), barman), bytes.Repeat([]byte("q"), barman), []byte("tail")}, true)
	args := func(o objectV2, name string) []string {
		meta := writeFile(t, dir, name+".json", []byte(o.metaJSON))
		return []string{"--keys", o.ringSpec, "--metadata", meta, "--bucket", "bkt", "--key", "a/b.txt"}
	}
	if r := run(Decrypt, single.ct, append(args(single, "single"), "-", "-")...); r.code != 0 || r.stdout != string(single.plain) {
		t.Fatalf("single: %+v", r.stderr)
	}
	tags := writeFile(t, dir, "tags.json", []byte(mp.tagsJSON))
	margs := args(mp, "mp")
	for _, extra := range [][]string{{"--tags", tags}, {"--parts-record", mp.record}, {"--tags", tags, "--parts", "3"}} {
		if r := run(Decrypt, mp.ct, append(append(margs, extra...), "-", "-")...); r.code != 0 || r.stdout != string(mp.plain) {
			t.Fatalf("multipart %v: %+v", extra, r.stderr)
		}
	}
	// Without the record: refused, unless asked to go without it.
	if r := run(Decrypt, mp.ct, append(margs, "-", "-")...); r.code != 1 || !strings.Contains(r.stderr, "part-set record") {
		t.Fatalf("without the record: %+v", r)
	}
	if r := run(Decrypt, mp.ct, append(margs, "--unverified-parts", "-", "-")...); r.code != 0 || r.stdout != string(mp.plain) || !strings.Contains(r.stderr, "warning") {
		t.Fatalf("--unverified-parts: %+v", r)
	}
	// The last part dropped: the record catches it.
	c1, _ := stream.CiphertextSizeV2(int64(barman))
	cut := writeFile(t, dir, "cut", mp.ct[:2*c1])
	if r := run(Decrypt, nil, append(margs, "--tags", tags, cut, filepath.Join(dir, "cut.out"))...); r.code != 1 || !strings.Contains(r.stderr, "does not authenticate") {
		t.Fatalf("truncated: %+v", r)
	}
	// Another object's record.
	other := makeObjectV2(t, dir, [][]byte{[]byte("x")}, true)
	if r := run(Decrypt, mp.ct, append(margs, "--parts-record", other.record, "-", "-")...); r.code != 1 || !strings.Contains(r.stderr, "part-set record") {
		t.Fatalf("other record: %+v", r)
	}
	if r := run(Decrypt, single.ct, append(args(single, "single2"), "--parts-record", mp.record, "-", "-")...); r.code != 2 {
		t.Fatalf("record for a single PUT: %+v", r)
	}
	r := run(Inspect, []byte(mp.metaJSON), "--metadata", "-", "--parts-record", mp.record, "--size", strconv.Itoa(len(mp.ct)))
	if r.code != 0 || !strings.Contains(r.stdout, "version 2") || !strings.Contains(r.stdout, "3 parts of "+strconv.Itoa(barman)) ||
		!strings.Contains(r.stdout, strconv.Itoa(len(mp.plain))+" bytes") || strings.Contains(r.stdout, "warning") {
		t.Fatalf("inspect: %+v", r)
	}
	if r := run(Inspect, []byte(mp.metaJSON), "--metadata", "-", "--parts-record", mp.record, "--size", "5"); !strings.Contains(r.stdout, "warning") {
		t.Fatalf("inspect with a wrong size: %+v", r)
	}
}

// The committed known-answer vectors of both versions decrypt through the
// offline command from their metadata, tags, key objects and key ring alone.
func TestDecryptCommittedVectors(t *testing.T) {
	dir := t.TempDir()
	for _, file := range []string{"vectors.json", "vectors_v2.json"} {
		raw, err := os.ReadFile("../envelope/testdata/" + file)
		if err != nil {
			t.Fatal(err)
		}
		var vs []struct {
			Name, Bucket, Key, Metadata, Ciphertext string
			KeyName                                 string `json:"key_name"`
			MasterKey                               string `json:"master_key"`
			Record                                  string `json:"parts_record"`
			KeyObject                               string `json:"key_object_content"`
		}
		if err := json.Unmarshal(raw, &vs); err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			mk, _ := hex.DecodeString(v.MasterKey)
			env := map[string]string{"RING": v.KeyName + ":" + base64.StdEncoding.EncodeToString(mk)}
			tool := Tool{}
			tool.Keys.LookupEnv = func(k string) (string, bool) { s, ok := env[k]; return s, ok }
			ct, _ := hex.DecodeString(v.Ciphertext)
			if v.Ciphertext == "" {
				if ct, err = os.ReadFile("../envelope/testdata/vectors/" + v.Name + ".bin"); err != nil {
					t.Fatal(err)
				}
			}
			meta, _ := json.Marshal(map[string]string{"s3seal": v.Metadata})
			args := []string{"--keys", "local:env:RING", "--metadata", writeFile(t, dir, v.Name+".json", meta), "--bucket", v.Bucket, "--key", v.Key}
			if v.Record != "" {
				args = append(args, "--parts-record", v.Record)
			}
			if v.KeyObject != "" {
				if r := run(tool.Decrypt, ct, append(args, "-", "-")...); r.code != 1 || !strings.Contains(r.stderr, ".s3seal/keys/") {
					t.Fatalf("%s without the key object: %+v", v.Name, r)
				}
				ko, _ := hex.DecodeString(v.KeyObject)
				args = append(args, "--key-object", writeFile(t, dir, v.Name+".ko", ko))
			}
			r := run(tool.Decrypt, ct, append(args, "-", "-")...)
			if r.code != 0 {
				t.Fatalf("%s: %+v", v.Name, r.stderr)
			}
			if strings.HasPrefix(v.Name, "hello") && r.stdout != "Hello, s3seal!\n" {
				t.Fatalf("%s: %q", v.Name, r.stdout)
			}
		}
	}
}
