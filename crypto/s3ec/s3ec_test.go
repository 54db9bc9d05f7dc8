package s3ec

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// sealed is an object as a writer following the S3EC specification stores
// it: metadata (keys without "x-amz-meta-") and body.
type sealed struct {
	meta map[string]string
	body []byte
}

func (s sealed) get(k string) string { return s.meta[k] }

func testDataKey(seed byte) []byte { return bytes.Repeat([]byte{seed}, 32) }

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func gcmSeal(t testing.TB, key, nonce, plain, aad []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return a.Seal(nil, nonce, plain, aad)
}

// sealV2 writes plain as a V2 object with the content key dk.
func sealV2(t testing.TB, dk, plain []byte) sealed {
	iv := bytes.Repeat([]byte{7}, 12)
	return sealed{
		meta: map[string]string{
			"x-amz-key-v2":                     b64([]byte("kms-blob-v2")),
			"x-amz-iv":                         b64(iv),
			"x-amz-matdesc":                    `{"aws:x-amz-cek-alg":"AES/GCM/NoPadding","app":"billing"}`,
			"x-amz-wrap-alg":                   "kms+context",
			"x-amz-cek-alg":                    "AES/GCM/NoPadding",
			"x-amz-tag-len":                    "128",
			"x-amz-unencrypted-content-length": itoa(len(plain)),
		},
		body: gcmSeal(t, dk, iv, plain, nil),
	}
}

// sealV3 writes plain as a V3 object with the data key dk.
func sealV3(t testing.TB, dk, plain []byte) sealed {
	t.Helper()
	mid := bytes.Repeat([]byte{9}, 28)
	prk, err := hkdf.Extract(sha512.New, dk, mid)
	if err != nil {
		t.Fatal(err)
	}
	ck, _ := hkdf.Expand(sha512.New, prk, "\x00\x73COMMITKEY", 28)
	ek, _ := hkdf.Expand(sha512.New, prk, "\x00\x73DERIVEKEY", 32)
	return sealed{
		meta: map[string]string{
			"x-amz-c": "115",
			"x-amz-3": b64([]byte("kms-blob-v3")),
			"x-amz-w": "12",
			"x-amz-t": `{"aws:x-amz-cek-alg":"115"}`,
			"x-amz-d": b64(ck),
			"x-amz-i": b64(mid),
		},
		body: gcmSeal(t, ek, bytes.Repeat([]byte{1}, 12), plain, []byte{0x00, 0x73}),
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func open(t testing.TB, s sealed, dk []byte) ([]byte, error) {
	t.Helper()
	o, err := Parse(s.get)
	if err != nil {
		return nil, err
	}
	if _, err := o.PlaintextSize(int64(len(s.body))); err != nil {
		return nil, err
	}
	return o.Open(dk, bytes.Clone(s.body))
}

func TestRoundTrip(t *testing.T) {
	for _, v := range []struct {
		name string
		seal func(testing.TB, []byte, []byte) sealed
	}{{"V2", sealV2}, {"V3", sealV3}} {
		for _, n := range []int{0, 1, 15, 16, 17, 65536, 1<<20 + 3} {
			plain := bytes.Repeat([]byte("s3ec"), n/4+1)[:n]
			s := v.seal(t, testDataKey(1), plain)
			o, err := Parse(s.get)
			if err != nil {
				t.Fatalf("%s %d: %v", v.name, n, err)
			}
			if o.WrapAlg != "kms+context" || len(o.WrappedKey) == 0 {
				t.Fatalf("%s: wrap %q, key %d bytes", v.name, o.WrapAlg, len(o.WrappedKey))
			}
			if size, err := o.PlaintextSize(int64(len(s.body))); err != nil || size != int64(n) {
				t.Fatalf("%s %d: size %d %v", v.name, n, size, err)
			}
			got, err := o.Open(testDataKey(1), s.body)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("%s %d: %v", v.name, n, err)
			}
		}
	}
	// The encryption context goes to KMS as stored.
	o, _ := Parse(sealV2(t, testDataKey(1), nil).get)
	if o.Context["app"] != "billing" || o.Context["aws:x-amz-cek-alg"] != "AES/GCM/NoPadding" {
		t.Fatalf("context %v", o.Context)
	}
}

func TestTamper(t *testing.T) {
	plain := bytes.Repeat([]byte{0xab}, 3000)
	for _, v := range []struct {
		name string
		seal func(testing.TB, []byte, []byte) sealed
	}{{"V2", sealV2}, {"V3", sealV3}} {
		s := v.seal(t, testDataKey(1), plain)
		for _, i := range []int{0, 1, 1500, len(s.body) - 17, len(s.body) - 16, len(s.body) - 1} {
			bad := bytes.Clone(s.body)
			bad[i] ^= 0x01
			got, err := open(t, sealed{s.meta, bad}, testDataKey(1))
			if !errors.Is(err, ErrAuthentication) || got != nil {
				t.Fatalf("%s: byte %d flipped: %v, %d bytes", v.name, i, err, len(got))
			}
		}
		// Truncated, extended, wrong key.
		for name, body := range map[string][]byte{
			"truncated by one": s.body[:len(s.body)-1],
			"cut to the tag":   s.body[len(s.body)-16:],
			"one byte added":   append(bytes.Clone(s.body), 0),
		} {
			o, _ := Parse(s.get)
			if got, err := o.Open(testDataKey(1), bytes.Clone(body)); !errors.Is(err, ErrAuthentication) || got != nil {
				t.Fatalf("%s %s: %v", v.name, name, err)
			}
		}
		if _, err := open(t, s, testDataKey(2)); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("%s: wrong key: %v", v.name, err)
		}
	}
	// V3: another message id or commitment fails before any decryption.
	s := sealV3(t, testDataKey(1), plain)
	for _, field := range []string{"x-amz-i", "x-amz-d"} {
		m := cloneMeta(s.meta)
		b, _ := base64.StdEncoding.DecodeString(m[field])
		b[5] ^= 1
		m[field] = b64(b)
		if _, err := open(t, sealed{m, s.body}, testDataKey(1)); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("%s altered: %v", field, err)
		}
	}
	// V2: another IV.
	s2 := sealV2(t, testDataKey(1), plain)
	m := cloneMeta(s2.meta)
	m["x-amz-iv"] = b64(bytes.Repeat([]byte{8}, 12))
	if _, err := open(t, sealed{m, s2.body}, testDataKey(1)); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("IV altered: %v", err)
	}
	// A body whose size contradicts the stated plaintext length.
	m = cloneMeta(s2.meta)
	m["x-amz-unencrypted-content-length"] = "2999"
	if _, err := open(t, sealed{m, s2.body}, testDataKey(1)); err == nil || !strings.Contains(err.Error(), "states 2999") {
		t.Fatalf("length mismatch: %v", err)
	}
}

func cloneMeta(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestParseRefuses(t *testing.T) {
	v2 := sealV2(t, testDataKey(1), []byte("x")).meta
	v3 := sealV3(t, testDataKey(1), []byte("x")).meta
	edit := func(base map[string]string, k, v string) map[string]string {
		m := cloneMeta(base)
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	var unsupported *UnsupportedError
	for _, c := range []struct {
		name        string
		meta        map[string]string
		unsupported bool
		want        string
	}{
		{"nothing", map[string]string{"color": "blue"}, false, "not an S3 Encryption Client object"},
		{"V1", map[string]string{"x-amz-key": "AAAA", "x-amz-iv": "AAAA", "x-amz-matdesc": "{}"}, true, "V1"},
		{"V2 and V3 mixed", edit(v2, "x-amz-d", v3["x-amz-d"]), false, "mixes"},
		{"V1 and V2 mixed", edit(v2, "x-amz-key", "AAAA"), false, "mixes"},
		{"V2 CBC", edit(v2, "x-amz-cek-alg", "AES/CBC/PKCS5Padding"), true, "CBC"},
		{"V2 other algorithm", edit(v2, "x-amz-cek-alg", "AES/CTR/NoPadding"), false, "want"},
		{"V2 tag length", edit(v2, "x-amz-tag-len", "96"), false, "want 128"},
		{"V2 short IV", edit(v2, "x-amz-iv", b64(make([]byte, 11))), false, "want 12"},
		{"V2 IV not base64", edit(v2, "x-amz-iv", "!!"), false, "not base64"},
		{"V2 no IV", edit(v2, "x-amz-iv", ""), false, "missing"},
		{"V2 raw AES key ring", edit(v2, "x-amz-wrap-alg", "AES/GCM"), true, "AES/GCM"},
		{"V2 legacy kms", edit(v2, "x-amz-wrap-alg", "kms"), true, "kms"},
		{"V2 context without the algorithm", edit(v2, "x-amz-matdesc", `{"app":"billing"}`), false, "lacks"},
		{"V2 context for another algorithm", edit(v2, "x-amz-matdesc", `{"aws:x-amz-cek-alg":"AES/CBC/PKCS5Padding"}`), false, "lacks"},
		{"V2 context not JSON", edit(v2, "x-amz-matdesc", `{"a":1}`), false, "JSON"},
		{"V2 context trailing data", edit(v2, "x-amz-matdesc", `{} {}`), false, "JSON"},
		{"V2 bad length", edit(v2, "x-amz-unencrypted-content-length", "-1"), false, "not a length"},
		{"V3 other suite", edit(v3, "x-amz-c", "114"), false, "want 115"},
		{"V3 key in an instruction file", edit(edit(v3, "x-amz-3", ""), "x-amz-w", ""), true, "instruction files"},
		{"V3 raw AES key ring", edit(v3, "x-amz-w", "02"), true, "02"},
		{"V3 RSA key ring", edit(v3, "x-amz-w", "22"), true, "22"},
		{"V3 short message id", edit(v3, "x-amz-i", b64(make([]byte, 27))), false, "want 28"},
		{"V3 zero message id", edit(v3, "x-amz-i", b64(make([]byte, 28))), false, "all zeros"},
		{"V3 short commitment", edit(v3, "x-amz-d", b64(make([]byte, 20))), false, "want 28"},
		{"V3 material description with KMS", edit(v3, "x-amz-m", "{}"), false, "x-amz-m"},
		{"V3 context without the suite", edit(v3, "x-amz-t", `{"app":"x"}`), false, "lacks"},
		{"V3 absent context", edit(v3, "x-amz-t", ""), false, "lacks"},
	} {
		_, err := Parse(func(k string) string { return c.meta[k] })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
			continue
		}
		if errors.As(err, &unsupported) != c.unsupported {
			t.Errorf("%s: %v: unsupported %v, want %v", c.name, err, !c.unsupported, c.unsupported)
		}
		if Is(func(k string) string { return c.meta[k] }) == (c.name == "nothing") {
			t.Errorf("%s: Is disagrees", c.name)
		}
	}
}

func TestPlaintextSizeBounds(t *testing.T) {
	o, err := Parse(sealV3(t, testDataKey(1), nil).get)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int64{-1, 0, 15, MaxBodySize + 1} {
		if _, err := o.PlaintextSize(n); err == nil {
			t.Errorf("body of %d bytes accepted", n)
		}
	}
	if n, err := o.PlaintextSize(MaxBodySize); err != nil || n != MaxBodySize-TagSize {
		t.Errorf("largest body: %d %v", n, err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []sealed{sealV2(f, testDataKey(1), []byte("x")), sealV3(f, testDataKey(1), []byte("x"))} {
		b, _ := json.Marshal(s.meta)
		f.Add(b)
	}
	f.Add([]byte(`{"x-amz-key":"AAAA"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m map[string]string
		if json.Unmarshal(b, &m) != nil {
			return
		}
		o, err := Parse(func(k string) string { return m[k] })
		if err != nil {
			return
		}
		// Whatever parses has a usable shape and never opens a forged body.
		if o.Version != 2 && o.Version != 3 || len(o.WrappedKey) == 0 || o.Context == nil {
			t.Fatalf("parsed into %+v", o)
		}
		if _, err := o.Open(testDataKey(1), make([]byte, 64)); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("a zero body opened: %v", err)
		}
	})
}
