package proxy

// S3's answers in envelope mode where s3seal itself decides them: ranges,
// missing buckets and copy sources, metadata limits.

import (
	"strings"
	"testing"

	"github.com/s3seal/s3seal/proxy/policy"
)

// Ranges are parsed as S3 parses them: a range written other than exactly
// is ignored (the whole object, 200), and "bytes=-0" is satisfiable by no
// object.
func TestParseRangeAsS3(t *testing.T) {
	ignored := []string{
		"bytes= -1", "bytes=0 -1", "bytes=--1", "bytes=0--1", "bytes=10-5", "bytes=abc", "bytes=a-z",
		"bytes=,", "bytes=0-0,1-2", "foo=0-1", "bytes=abc-xyz", "bytes=100-x", "bytes=+1-2", "bytes=-+1",
		"bytes=-", "bytes=", "bytes=1", "bytes=0x10-",
	}
	for _, v := range ignored {
		if r := parseRange(v); r != nil {
			t.Errorf("%q parsed as %+v; want it ignored", v, *r)
		}
	}
	for v, want := range map[string]byteRange{
		"bytes=0-0":   {start: 0, end: 0},
		"bytes=00-01": {start: 0, end: 1},
		"bytes=5-":    {start: 5, end: -1},
		"bytes=-7":    {suffix: 7},
		"bytes=-0":    {none: true},
		" bytes=1-2":  {start: 1, end: 2},
	} {
		r := parseRange(v)
		if r == nil || *r != want {
			t.Errorf("%q parsed as %+v; want %+v", v, r, want)
		}
	}
	// On an empty object: a suffix range is the whole (empty) object, any
	// other range is unsatisfiable.
	if r := parseRange("bytes=-1"); !r.wholeEmpty(0) || r.wholeEmpty(1) {
		t.Error("bytes=-1 on an empty object should be the whole object")
	}
	for _, v := range []string{"bytes=-0", "bytes=0-0", "bytes=0-", "bytes=00-01"} {
		if _, _, ok := parseRange(v).resolve(0); ok || parseRange(v).wholeEmpty(0) {
			t.Errorf("%q on an empty object: want InvalidRange", v)
		}
	}
}

// The store's answers about a missing bucket reach the client as they
// are, in envelope mode too (where the first write checks the format
// marker).
func TestEnvelopeMissingBucket(t *testing.T) {
	t.Parallel()
	env := envelopeEnv(t, func(o *envOptions) {
		o.Rules = append(o.Rules, policy.Rule{Name: "missing", Bucket: "nobucket", Mode: policy.Envelope})
	})
	for _, c := range []struct{ method, path string }{{"PUT", "/nobucket/k"}, {"POST", "/nobucket/k?uploads"}} {
		r := env.do(t, c.method, c.path, []byte("x"))
		body, _, _ := expect(t, r, 404)
		if !strings.Contains(string(body), "<Code>NoSuchBucket</Code>") {
			t.Errorf("%s %s: %s; want NoSuchBucket", c.method, c.path, body)
		}
	}
	// Both a Range and a part number: S3's InvalidRequest.
	expect(t, env.do(t, "PUT", "/benv/k", []byte("data")), 200)
	r := env.do(t, "GET", "/benv/k?partNumber=1", nil, "Range", "bytes=0-1")
	if body, _, _ := expect(t, r, 400); !strings.Contains(string(body), "Cannot specify both Range header and partNumber") {
		t.Errorf("Range with partNumber: %s", body)
	}
}

// A copy whose source or destination is missing names what is missing, as
// S3 does, although s3seal looks the source up with a HEAD.
func TestEnvelopeCopyMissing(t *testing.T) {
	t.Parallel()
	env := envelopeEnv(t, func(o *envOptions) {
		o.Rules = append(o.Rules, policy.Rule{Name: "missing", Bucket: "nobucket", Mode: policy.Envelope})
	})
	expect(t, env.do(t, "PUT", "/benv/src", []byte("data")), 200)
	for _, c := range []struct{ dst, src, code string }{
		{"/benv/dst", "/benv/nokey", "NoSuchKey"},
		{"/benv/dst", "/nobucket/k", "NoSuchBucket"},
		{"/nobucket/dst", "/benv/src", "NoSuchBucket"},
	} {
		body, _, _ := expect(t, env.do(t, "PUT", c.dst, nil, "X-Amz-Copy-Source", c.src), 404)
		if !strings.Contains(string(body), "<Code>"+c.code+"</Code>") {
			t.Errorf("copy %s to %s: %s; want %s", c.src, c.dst, body, c.code)
		}
	}
}

// A copy's own metadata headers are held to S3's limit even when the
// directive COPY leaves them unused, as S3 does.
func TestEnvelopeCopyLongMetadata(t *testing.T) {
	t.Parallel()
	env := envelopeEnv(t)
	expect(t, env.do(t, "PUT", "/benv/src", []byte("data")), 200)
	body, _, _ := expect(t, env.do(t, "PUT", "/benv/dst", nil, "X-Amz-Copy-Source", "/benv/src", "X-Amz-Meta-"+strings.Repeat("s", 2048), "value"), 400)
	if !strings.Contains(string(body), "<Code>MetadataTooLarge</Code>") {
		t.Errorf("copy with 2 KB of metadata: %s", body)
	}
	expect(t, env.do(t, "PUT", "/benv/dst", nil, "X-Amz-Copy-Source", "/benv/src", "X-Amz-Meta-Small", "value"), 200)
}
