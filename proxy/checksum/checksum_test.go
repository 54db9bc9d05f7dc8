package checksum

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"hash/crc64"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/proxy/s3err"
)

// Known answers published in the AWS SDK for Go v2 checksum tests
// (service/internal/checksum/algorithms_test.go).
func TestKnownAnswers(t *testing.T) {
	cases := []struct {
		alg   Algorithm
		input string
		want  string
	}{
		{CRC32, "hello world", "DUoRhQ=="},
		{CRC32, "Hello world", "i9aeUg=="},
		{CRC32C, "hello world", "yZRlqg=="},
		{CRC64NVME, "hello world", "jSnVw/bqjr4="},
		{SHA1, "hello world", "Kq5sNclPz7QV2+lfQIuc6R7oRu0="},
		{SHA256, "hello world", "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="},
		{MD5, "", "1B2M2Y8AsgTpgAmY7PhCfg=="},
		{ContentMD5, "", "1B2M2Y8AsgTpgAmY7PhCfg=="},
		// Values from coreutils' sha512sum and the xxHash project's
		// xxhsum (-H1, -H3, -H2), big-endian as S3 encodes them.
		{SHA512, "hello world", "MJ7MSJwS1utMxA9QyQLytNDtd+5RGnx6m808qG1M2G+YndNbxf9JlnDaNCVbRbDP2DDoH2Bdz33FVC6TrpzXbw=="},
		{XXHASH64, "hello world", "RatnNLIeaWg="},
		{XXHASH3, "hello world", "1Eex6kDmmIs="},
		{XXHASH128, "hello world", "340J6T+HSQCpm4d1zBW2xw=="},
	}
	for _, c := range cases {
		if got := SumBytes(c.alg, []byte(c.input)); got != c.want {
			t.Errorf("%s(%q) = %s, want %s", c.alg, c.input, got, c.want)
		}
		got, n, err := Sum(c.alg, strings.NewReader(c.input))
		if err != nil || got != c.want || n != int64(len(c.input)) {
			t.Errorf("Sum %s(%q) = %s, %d, %v", c.alg, c.input, got, n, err)
		}
		if len(c.want) != c.alg.EncodedLen() {
			t.Errorf("%s: EncodedLen %d, value length %d", c.alg, c.alg.EncodedLen(), len(c.want))
		}
	}
}

// The accelerated CRC64NVME must agree with a plain table implementation of
// the NVMe polynomial (bit-reversed form), across lengths that exercise its
// block paths, and fed in pieces.
func TestCRC64NVMEMatchesTable(t *testing.T) {
	table := crc64.MakeTable(0x9a6c9329ac4bc9b5)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, 7, 8, 15, 16, 127, 128, 129, 255, 256, 1000, 4096, 65537} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		var want [8]byte
		binary.BigEndian.PutUint64(want[:], crc64.Checksum(data, table))
		h := CRC64NVME.New()
		for rest := data; len(rest) > 0; {
			k := min(len(rest), 1+rng.IntN(300))
			h.Write(rest[:k])
			rest = rest[k:]
		}
		if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
			t.Fatalf("size %d: got %x, want %x", size, got, want)
		}
	}
}

func TestParseAlgorithm(t *testing.T) {
	for _, s := range []string{"crc32", "CRC32", "Crc32c", "crc64nvme", "sha1", "SHA256", "sha512", "MD5", "xxhash64", "XXHASH3", "xxhash128"} {
		a, err := ParseAlgorithm(s)
		if err != nil || !strings.EqualFold(string(a), s) {
			t.Errorf("ParseAlgorithm(%q) = %q, %v", s, a, err)
		}
	}
	for _, s := range []string{"", "CONTENT-MD5", "sha384", "xxhash", "crc32 ", "crc"} {
		_, err := ParseAlgorithm(s)
		if e, ok := s3err.As(err); !ok || e.Code != "InvalidArgument" {
			t.Errorf("ParseAlgorithm(%q) error = %v", s, err)
		}
	}
	if a, ok := AlgorithmForHeader("X-Amz-Checksum-Crc64nvme"); !ok || a != CRC64NVME {
		t.Errorf("AlgorithmForHeader = %q, %v", a, ok)
	}
	for _, h := range []string{"x-amz-checksum-mode", "x-amz-checksum-", "x-amz-checksum", "content-md5"} {
		if _, ok := AlgorithmForHeader(h); ok {
			t.Errorf("AlgorithmForHeader(%q) accepted", h)
		}
	}
	if CRC32C.HeaderName() != "x-amz-checksum-crc32c" || MD5.HeaderName() != "x-amz-checksum-md5" || ContentMD5.HeaderName() != "content-md5" || Algorithm("x").HeaderName() != "" {
		t.Error("HeaderName")
	}
	if Algorithm("x").Valid() || !MD5.Valid() || !ContentMD5.Valid() {
		t.Error("Valid")
	}
}

func TestFromHeader(t *testing.T) {
	crc := SumBytes(CRC32, []byte("x"))
	sha := SumBytes(SHA256, []byte("x"))
	cases := []struct {
		name   string
		header map[string][]string
		alg    Algorithm
		code   string
	}{
		{"none", map[string][]string{"X-Amz-Checksum-Mode": {"ENABLED"}, "X-Amz-Checksum-Algorithm": {"CRC32"}}, "", ""},
		{"crc32", map[string][]string{"X-Amz-Checksum-Crc32": {crc}, "X-Amz-Checksum-Type": {"FULL_OBJECT"}}, CRC32, ""},
		{"sha256", map[string][]string{"X-Amz-Checksum-Sha256": {sha}}, SHA256, ""},
		{"two kinds", map[string][]string{"X-Amz-Checksum-Crc32": {crc}, "X-Amz-Checksum-Sha256": {sha}}, "", "InvalidRequest"},
		{"repeated", map[string][]string{"X-Amz-Checksum-Crc32": {crc, crc}}, "", "InvalidRequest"},
		{"not base64", map[string][]string{"X-Amz-Checksum-Crc32": {"!!!!!!!!"}}, "", "InvalidRequest"},
		{"wrong length", map[string][]string{"X-Amz-Checksum-Crc32": {sha}}, "", "InvalidRequest"},
		{"composite", map[string][]string{"X-Amz-Checksum-Crc32": {crc + "-3"}}, "", "InvalidRequest"},
	}
	for _, c := range cases {
		alg, v, ok, err := FromHeader(http.Header(c.header))
		if c.code != "" {
			if e, isS3 := s3err.As(err); !isS3 || e.Code != c.code {
				t.Errorf("%s: error %v, want %s", c.name, err, c.code)
			}
			continue
		}
		if err != nil || alg != c.alg || ok != (c.alg != "") {
			t.Errorf("%s: %q %q %v %v", c.name, alg, v, ok, err)
		}
	}
}

func TestHeaderChecks(t *testing.T) {
	body := []byte("some body")
	h := http.Header{}
	h.Set("X-Amz-Checksum-Crc32c", SumBytes(CRC32C, body))
	h.Set("Content-Md5", SumBytes(MD5, body))
	checks, err := HeaderChecks(h)
	if err != nil || len(checks) != 2 {
		t.Fatalf("HeaderChecks = %v, %v", checks, err)
	}
	got, err := readAll(NewVerifier(bytes.NewReader(body), int64(len(body)), checks...), 3)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read %q, %v", got, err)
	}
	// A wrong MD5 is BadDigest; an invalid one InvalidDigest.
	h.Set("Content-Md5", SumBytes(MD5, []byte("other")))
	checks, _ = HeaderChecks(h)
	_, err = readAll(NewVerifier(bytes.NewReader(body), -1, checks...), 4)
	expectCode(t, err, "BadDigest")
	h.Set("Content-Md5", base64.StdEncoding.EncodeToString([]byte("short")))
	_, err = HeaderChecks(h)
	expectCode(t, err, "InvalidDigest")
	if checks, err := HeaderChecks(http.Header{}); err != nil || len(checks) != 0 {
		t.Errorf("no headers: %v %v", checks, err)
	}
}

func expectCode(t *testing.T, err error, code string) {
	t.Helper()
	e, ok := s3err.As(err)
	if !ok || e.Code != code {
		t.Fatalf("error %v, want %s", err, code)
	}
}

func TestParseObjectValue(t *testing.T) {
	full := SumBytes(CRC32, []byte("x"))
	for _, v := range []string{full, full + "-1", full + "-3", full + "-10000"} {
		if err := ParseObjectValue(CRC32, v); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
	for _, v := range []string{full + "-0", full + "-10001", full + "-", full + "-03", full + "-x", "-3", "AAAA-3", full + "-1-2"} {
		if err := ParseObjectValue(CRC32, v); err == nil {
			t.Errorf("%q accepted", v)
		}
	}
	// Only Complete takes composite values.
	h := http.Header{"X-Amz-Checksum-Crc32": {full + "-3"}}
	if _, _, _, err := FromHeader(h); err == nil {
		t.Error("FromHeader took a composite value")
	}
	if a, v, ok, err := FromCompleteHeader(h); err != nil || !ok || a != CRC32 || v != full+"-3" {
		t.Errorf("FromCompleteHeader: %s %q %v %v", a, v, ok, err)
	}
}
