package proxy

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"html"
	"net/http"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/crypto/stream"
	"github.com/s3seal/s3seal/proxy/checksum"
)

// rangedGets counts the store's ranged GETs of bucket/key.
func rangedGets(st *memStore, bucket, key string) int {
	n := 0
	for _, r := range st.requests() {
		if r.Method == http.MethodGet && r.Path == "/"+bucket+"/"+key && r.Header.Get("Range") != "" {
			n++
		}
	}
	return n
}

// compositeCRC32C is S3's COMPOSITE CRC32C of parts, computed here from
// the parts' data.
func compositeCRC32C(parts ...[]byte) string {
	outer := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	for _, p := range parts {
		inner := crc32.New(crc32.MakeTable(crc32.Castagnoli))
		inner.Write(p)
		outer.Write(inner.Sum(nil))
	}
	return base64.StdEncoding.EncodeToString(outer.Sum(nil)) + fmt.Sprintf("-%d", len(parts))
}

// TestEnvelopeChecksumMode: GET and HEAD with checksum mode answer the
// checksum a client sent in an aws-chunked trailer for objects of any size,
// single PUT (FULL_OBJECT) and multipart (COMPOSITE), reading only the
// trailers, once; ranged GETs answer none; a trailer changed in the store
// fails the request.
func TestEnvelopeChecksumMode(t *testing.T) {
	t.Parallel()
	env := envelopeEnv(t)
	cm := []string{"X-Amz-Checksum-Mode", "ENABLED"}
	checkSum := func(what string, r *http.Response, value, typ string) {
		t.Helper()
		if got := r.Header.Get("X-Amz-Checksum-Crc32c"); got != value {
			t.Errorf("%s: x-amz-checksum-crc32c %q, want %q", what, got, value)
		}
		if got := r.Header.Get("X-Amz-Checksum-Type"); got != typ {
			t.Errorf("%s: x-amz-checksum-type %q, want %q", what, got, typ)
		}
	}

	// A single PUT above the size s3seal decrypts before answering.
	big := pattern(smallObject+3*stream.ChunkSize+5, 61)
	expect(t, env.doChunked(t, "PUT", "/benv/big", big, checksum.CRC32C, ""), 200)
	env.store.reset()
	r := env.do(t, "HEAD", "/benv/big", nil, cm...)
	expect(t, r, 200)
	checkSum("HEAD", r, crc32cB64(big), "FULL_OBJECT")
	if n := rangedGets(env.store, "benv", "big"); n != 1 {
		t.Errorf("HEAD with checksum mode made %d ranged GETs, want 1 (the trailer)", n)
	}
	r = env.do(t, "GET", "/benv/big", nil, cm...)
	got, _, _ := expect(t, r, 200)
	checkSum("GET", r, crc32cB64(big), "FULL_OBJECT")
	if !bytes.Equal(got, big) {
		t.Errorf("GET with checksum mode: %d bytes", len(got))
	}
	if n := rangedGets(env.store, "benv", "big"); n != 1 {
		t.Errorf("the checksum was read again (%d ranged GETs in all), want it cached", n)
	}
	r = env.do(t, "HEAD", "/benv/big", nil)
	expect(t, r, 200)
	checkSum("HEAD without checksum mode", r, "", "")
	r = env.do(t, "GET", "/benv/big", nil, append(cm, "Range", "bytes=10-99")...)
	expect(t, r, 206)
	checkSum("ranged GET", r, "", "")

	// A multipart upload whose parts carry CRC32C trailers.
	cs := stream.ChunkSize
	parts := [][]byte{pattern(3*cs+7, 62), pattern(3*cs+7, 63), pattern(100, 64)}
	body, _, _ := expect(t, env.do(t, "POST", "/benv/mp?uploads", nil, "X-Amz-Checksum-Algorithm", "CRC32C"), 200)
	id := between(string(body), "<UploadId>", "</UploadId>")
	var etags []string
	for i, p := range parts {
		resp := env.doChunked(t, "PUT", fmt.Sprintf("/benv/mp?partNumber=%d&uploadId=%s", i+1, id), p, checksum.CRC32C, "")
		expect(t, resp, 200)
		etags = append(etags, resp.Header.Get("ETag"))
	}
	expect(t, env.do(t, "POST", "/benv/mp?uploadId="+id, completeBody(etags...)), 200)
	want := compositeCRC32C(parts...)
	env.store.reset()
	r = env.do(t, "HEAD", "/benv/mp", nil, cm...)
	expect(t, r, 200)
	checkSum("multipart HEAD", r, want, "COMPOSITE")
	if n := rangedGets(env.store, "benv", "mp"); n != len(parts) {
		t.Errorf("multipart HEAD with checksum mode made %d ranged GETs, want %d (one per trailer)", n, len(parts))
	}
	r = env.do(t, "GET", "/benv/mp", nil, cm...)
	got, _, _ = expect(t, r, 200)
	checkSum("multipart GET", r, want, "COMPOSITE")
	if !bytes.Equal(got, bytes.Join(parts, nil)) {
		t.Errorf("multipart GET with checksum mode: %d bytes", len(got))
	}

	// A part without a checksum: the object has none.
	body, _, _ = expect(t, env.do(t, "POST", "/benv/mixed?uploads", nil), 200)
	id = between(string(body), "<UploadId>", "</UploadId>")
	r1 := env.doChunked(t, "PUT", "/benv/mixed?partNumber=1&uploadId="+id, parts[0], checksum.CRC32C, "")
	expect(t, r1, 200)
	r2 := env.do(t, "PUT", "/benv/mixed?partNumber=2&uploadId="+id, parts[2])
	expect(t, r2, 200)
	expect(t, env.do(t, "POST", "/benv/mixed?uploadId="+id, completeBody(r1.Header.Get("ETag"), r2.Header.Get("ETag"))), 200)
	r = env.do(t, "HEAD", "/benv/mixed", nil, cm...)
	expect(t, r, 200)
	checkSum("multipart with a part without a checksum", r, "", "")

	// A trailer changed in the store: HEAD with checksum mode fails
	// (without it, HEAD reads no content and answers).
	expect(t, env.doChunked(t, "PUT", "/benv/tampered", big, checksum.CRC32C, ""), 200)
	tamper(env.store, "benv", "tampered", func(b []byte) []byte { b[len(b)-20] ^= 1; return b })
	expect(t, env.do(t, "HEAD", "/benv/tampered", nil), 200)
	expect(t, env.do(t, "HEAD", "/benv/tampered", nil, cm...), 500)
	expect(t, env.do(t, "GET", "/benv/tampered", nil, cm...), 500)
}

func b64MD5(b []byte) string {
	s := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(s[:])
}

// TestEnvelopeMultipartPlaintextETag: parts sent with Content-MD5 get
// ETags carrying the MD5 and the salt, and Complete answers the ETag S3
// would give the plaintext upload; without Content-MD5 on every part, the
// store's. Made-up MD5s change only that ETag.
func TestEnvelopeMultipartPlaintextETag(t *testing.T) {
	t.Parallel()
	env := envelopeEnv(t)
	cs := stream.ChunkSize
	parts := [][]byte{pattern(2*cs, 71), pattern(2*cs, 72), pattern(77, 73)}
	h := md5.New()
	for _, p := range parts {
		s := md5.Sum(p)
		h.Write(s[:])
	}
	plainETag := `"` + hex.EncodeToString(h.Sum(nil)) + `-3"`
	upload := func(key string, withMD5 []bool) []string {
		body, _, _ := expect(t, env.do(t, "POST", "/benv/"+key+"?uploads", nil), 200)
		id := between(string(body), "<UploadId>", "</UploadId>")
		var etags []string
		for i, p := range parts {
			var kv []string
			if withMD5[i] {
				kv = []string{"Content-Md5", b64MD5(p)}
			}
			r := env.do(t, "PUT", fmt.Sprintf("/benv/%s?partNumber=%d&uploadId=%s", key, i+1, id), p, kv...)
			expect(t, r, 200)
			e := r.Header.Get("ETag")
			sum := md5.Sum(p)
			if hasMD5 := strings.HasPrefix(e, `"`+hex.EncodeToString(sum[:])+"."); hasMD5 != withMD5[i] {
				t.Errorf("%s part %d: ETag %s", key, i+1, e)
			}
			if _, salt, _ := splitPartETagMD5(e); salt == nil {
				t.Errorf("%s part %d: ETag %s carries no salt", key, i+1, e)
			}
			etags = append(etags, e)
		}
		etags = append(etags, id)
		return etags
	}
	complete := func(key, id string, etags []string) string {
		body, _, _ := expect(t, env.do(t, "POST", "/benv/"+key+"?uploadId="+id, completeBody(etags...)), 200)
		if got := mustBody(t, env.do(t, "GET", "/benv/"+key, nil)); !bytes.Equal(got, bytes.Join(parts, nil)) {
			t.Errorf("%s: reads back %d other bytes", key, len(got))
		}
		return html.UnescapeString(between(string(body), "<ETag>", "</ETag>"))
	}
	all := []bool{true, true, true}
	e := upload("all", all)
	if got := complete("all", e[3], e[:3]); got != plainETag {
		t.Errorf("Complete with every part's MD5: ETag %s, want %s", got, plainETag)
	}
	// GET and HEAD show it (the record keeps it), conditions accept it;
	// listings show the store's.
	storeTag := env.store.object("benv", "all").etag
	for _, m := range []string{"HEAD", "GET"} {
		if got := env.do(t, m, "/benv/all", nil).Header.Get("ETag"); got != plainETag {
			t.Errorf("%s ETag %s, want %s", m, got, plainETag)
		}
		expect(t, env.do(t, m, "/benv/all", nil, "If-Match", plainETag), 200)
		expect(t, env.do(t, m, "/benv/all", nil, "If-Match", `"x", `+plainETag), 200)
		expect(t, env.do(t, m, "/benv/all", nil, "If-Match", storeTag), 200)
		expect(t, env.do(t, m, "/benv/all", nil, "If-Match", `"`+strings.Repeat("0", 32)+`-3"`), 412)
		if r := env.do(t, m, "/benv/all", nil, "If-None-Match", plainETag); r.StatusCode != 304 || r.Header.Get("ETag") != plainETag {
			t.Errorf("%s If-None-Match: %d, ETag %s", m, r.StatusCode, r.Header.Get("ETag"))
		}
		expect(t, env.do(t, m, "/benv/all", nil, "If-None-Match", `"`+strings.Repeat("0", 32)+`-3"`), 200)
	}
	expect(t, env.do(t, "GET", "/benv/all", nil, "If-Match", plainETag, "Range", "bytes=1-2"), 206)
	if list := mustBody(t, env.do(t, "GET", "/benv?list-type=2&prefix=all", nil)); !strings.Contains(string(list), strings.Trim(storeTag, `"`)) {
		t.Errorf("the listing does not show the store's ETag %s: %s", storeTag, list)
	}
	// Parts of sizes s3seal rewrites at Complete: the rewritten object
	// keeps the plaintext ETag of the upload.
	{
		body, _, _ := expect(t, env.do(t, "POST", "/benv/relaid?uploads", nil), 200)
		id := between(string(body), "<UploadId>", "</UploadId>")
		odd := [][]byte{pattern(cs+1, 74), pattern(cs, 75), pattern(5, 76)}
		var etags, sums []string
		for i, p := range odd {
			r := env.do(t, "PUT", fmt.Sprintf("/benv/relaid?partNumber=%d&uploadId=%s", i+1, id), p, "Content-Md5", b64MD5(p))
			expect(t, r, 200)
			etags = append(etags, r.Header.Get("ETag"))
			m := md5.Sum(p)
			sums = append(sums, string(m[:]))
		}
		m := md5.Sum([]byte(strings.Join(sums, "")))
		want := `"` + hex.EncodeToString(m[:]) + `-3"`
		body, _, _ = expect(t, env.do(t, "POST", "/benv/relaid?uploadId="+id, completeBody(etags...)), 200)
		if got := html.UnescapeString(between(string(body), "<ETag>", "</ETag>")); got != want {
			t.Errorf("relaid out: Complete ETag %s, want %s", got, want)
		}
		if r := env.do(t, "HEAD", "/benv/relaid", nil); r.Header.Get("ETag") != want {
			t.Errorf("relaid out: HEAD %d, ETag %s, want %s; %v", r.StatusCode, r.Header.Get("ETag"), want, r.Header)
		}
	}
	// A copy is a new object: the store's ETag.
	expect(t, env.do(t, "PUT", "/benv/copied", nil, "X-Amz-Copy-Source", "/benv/all"), 200)
	if got := env.do(t, "HEAD", "/benv/copied", nil).Header.Get("ETag"); got == plainETag || got != env.store.object("benv", "copied").etag {
		t.Errorf("copy: HEAD ETag %s", got)
	}
	if got := mustBody(t, env.do(t, "GET", "/benv/copied", nil)); !bytes.Equal(got, bytes.Join(parts, nil)) {
		t.Error("the copy reads back other bytes")
	}
	// Copy-source conditions take the ETag GET and HEAD show (AWS SDKs
	// copy large objects part by part under x-amz-copy-source-if-match).
	other := `"` + strings.Repeat("0", 32) + `-3"`
	expect(t, env.do(t, "PUT", "/benv/copied2", nil, "X-Amz-Copy-Source", "/benv/all", "X-Amz-Copy-Source-If-Match", plainETag), 200)
	expect(t, env.do(t, "PUT", "/benv/copied3", nil, "X-Amz-Copy-Source", "/benv/all", "X-Amz-Copy-Source-If-Match", other), 412)
	expect(t, env.do(t, "PUT", "/benv/copied3", nil, "X-Amz-Copy-Source", "/benv/all", "X-Amz-Copy-Source-If-None-Match", plainETag), 412)
	body, _, _ := expect(t, env.do(t, "POST", "/benv/pc?uploads", nil), 200)
	pcID := between(string(body), "<UploadId>", "</UploadId>")
	expect(t, env.do(t, "PUT", "/benv/pc?partNumber=1&uploadId="+pcID, nil, "X-Amz-Copy-Source", "/benv/all",
		"X-Amz-Copy-Source-Range", "bytes=0-99", "X-Amz-Copy-Source-If-Match", plainETag), 200)
	expect(t, env.do(t, "PUT", "/benv/pc?partNumber=1&uploadId="+pcID, nil, "X-Amz-Copy-Source", "/benv/all",
		"X-Amz-Copy-Source-Range", "bytes=0-99", "X-Amz-Copy-Source-If-Match", other), 412)
	e = upload("some", []bool{true, false, true})
	if got := complete("some", e[3], e[:3]); got == plainETag || got != env.store.object("benv", "some").etag {
		t.Errorf("Complete with a part without MD5: ETag %s, want the store's %s", got, env.store.object("benv", "some").etag)
	}
	if got := env.do(t, "HEAD", "/benv/some", nil).Header.Get("ETag"); got != env.store.object("benv", "some").etag {
		t.Errorf("HEAD of an upload without every part's MD5: ETag %s", got)
	}
	// A client that drops the MD5s gets the store's ETag; one that makes
	// one up gets another ETag, and its object is still what it sent.
	e = upload("dropped", all)
	bare := make([]string, 3)
	for i, v := range e[:3] {
		store, salt, _ := splitPartETagMD5(v)
		bare[i] = partETag(store, *salt)
	}
	if got := complete("dropped", e[3], bare); got == plainETag || got != env.store.object("benv", "dropped").etag {
		t.Errorf("Complete without MD5s: ETag %s", got)
	}
	e = upload("madeup", all)
	store, salt, _ := splitPartETagMD5(e[1])
	e[1] = partETagWithMD5(b64MD5([]byte("other")), store, *salt)
	if got := complete("madeup", e[3], e[:3]); got == plainETag || !strings.HasSuffix(got, `-3"`) {
		t.Errorf("Complete with a made-up MD5: ETag %s", got)
	}
	// Part ETags whose store ETag was altered behind a valid-looking MD5
	// are refused.
	e = upload("altered", all)
	sum, rest, _ := splitSSEPartETag(e[0])
	inner := strings.Trim(rest, `"`)
	first := "0"
	if inner[0] == '0' {
		first = "1"
	}
	e[0] = `"` + hex.EncodeToString(sum) + "." + first + inner[1:] + `"`
	if _, code, _ := expect(t, env.do(t, "POST", "/benv/altered?uploadId="+e[3], completeBody(e[:3]...)), 400); code != "InvalidPart" {
		t.Errorf("altered store ETag: %s", code)
	}
	// A wrong Content-MD5 is refused, and nothing is stored.
	body, _, _ = expect(t, env.do(t, "POST", "/benv/bad?uploads", nil), 200)
	id := between(string(body), "<UploadId>", "</UploadId>")
	if _, code, _ := expect(t, env.do(t, "PUT", "/benv/bad?partNumber=1&uploadId="+id, parts[0], "Content-Md5", b64MD5(parts[1])), 400); code != "BadDigest" {
		t.Errorf("wrong Content-MD5 on a part: %s", code)
	}
}

// TestSplitPartETagMD5 parses part ETags adversarially: nothing a client
// writes yields a store ETag other than the text it wrote after the MD5
// and before the salt.
func TestSplitPartETagMD5(t *testing.T) {
	md := strings.Repeat("ab", 16)
	salt := strings.Repeat("0f", 16)
	for _, c := range []struct {
		in, store string
		salt, md5 bool
	}{
		{`"` + md + `.9b2c-s` + salt + `"`, `"9b2c"`, true, true},
		{`"9b2c-s` + salt + `"`, `"9b2c"`, true, false},
		{`"` + md + `.9b2c"`, `"9b2c"`, false, true},
		{`"9b2c"`, `"9b2c"`, false, false},
		{`"9b2c-0"`, `"9b2c"`, false, false},
		{`"` + md + `."`, `"` + md + `."`, false, false},
		{`"` + md[:31] + `.9b2c"`, `"` + md[:31] + `.9b2c"`, false, false},
		{`"` + strings.Repeat("zz", 16) + `.9b2c"`, `"` + strings.Repeat("zz", 16) + `.9b2c"`, false, false},
		{`"` + md + `.` + md + `.9b2c"`, `"` + md + `.9b2c"`, false, true},
		{`"` + md + `.-s` + salt + `"`, `"-s` + salt + `"`, false, true},
		{`"9b2c-s` + salt[:31] + `g"`, `"9b2c-s` + salt[:31] + `g"`, false, false},
		{`"-s` + salt + `"`, `"-s` + salt + `"`, false, false},
		{``, ``, false, false},
		{`""`, `""`, false, false},
	} {
		store, s, m := splitPartETagMD5(c.in)
		if store != c.store || (s != nil) != c.salt || (m != nil) != c.md5 {
			t.Errorf("%q: store %q, salt %v, md5 %x; want %q, %v, %v", c.in, store, s != nil, m, c.store, c.salt, c.md5)
		}
		if m != nil && len(m) != md5.Size {
			t.Errorf("%q: an MD5 of %d bytes", c.in, len(m))
		}
	}
}

// FuzzSplitPartETagMD5: parsing never panics, and what it returns puts
// back together to the input (up to the case of hex digits and quotes).
func FuzzSplitPartETagMD5(f *testing.F) {
	f.Add(`"` + strings.Repeat("ab", 16) + `.9b2c-s` + strings.Repeat("0f", 16) + `"`)
	f.Add(`"9b2c-0"`)
	f.Fuzz(func(t *testing.T, in string) {
		store, salt, sum := splitPartETagMD5(in)
		if salt == nil && sum == nil && store != storeETag(in) {
			t.Fatalf("%q: store %q", in, store)
		}
		if salt != nil && sum != nil {
			if got := partETagWithMD5(base64.StdEncoding.EncodeToString(sum), store, *salt); !strings.EqualFold(strings.ReplaceAll(got, `"`, ""), strings.ReplaceAll(in, `"`, "")) {
				t.Fatalf("%q: rebuilt %q", in, got)
			}
		}
	})
}
