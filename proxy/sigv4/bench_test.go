package sigv4

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/s3seal/s3seal/proxy/checksum"
)

// benchRequest returns a server-side request and its raw body, ready to be
// verified again with a fresh body reader.
func benchRequest(b *testing.B, build func() *http.Request) (*http.Request, []byte) {
	s := toServer(b, build())
	raw, err := io.ReadAll(s.Body)
	if err != nil {
		b.Fatal(err)
	}
	return s, raw
}

func benchBody(b *testing.B, v *Verifier, s *http.Request, raw []byte, decoded int) {
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(decoded))
	b.ReportAllocs()
	for b.Loop() {
		s.Body = io.NopCloser(bytes.NewReader(raw))
		res, err := v.Verify(s)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			k, err := res.Body.Read(buf)
			n += k
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		if n != decoded {
			b.Fatalf("decoded %d bytes", n)
		}
		res.Body.Close()
	}
}

const benchSize = 8 << 20

func BenchmarkDecode(b *testing.B) {
	data := testBody(benchSize)
	v := newTestVerifier()
	for _, c := range []struct {
		name string
		spec chunkSpec
	}{
		{"signed-64KiB", chunkSpec{signed: true, sizes: splitSizes(benchSize, 64<<10)}},
		{"signed-trailer-crc32c-64KiB", chunkSpec{signed: true, trailer: checksum.CRC32C, sizes: splitSizes(benchSize, 64<<10)}},
		{"unsigned-trailer-crc32-64KiB", chunkSpec{trailer: checksum.CRC32, sizes: splitSizes(benchSize, 64<<10)}},
		{"unsigned-trailer-crc64nvme-one-chunk", chunkSpec{trailer: checksum.CRC64NVME, sizes: []int{benchSize}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			s, raw := benchRequest(b, func() *http.Request { r, _ := streamingRequest(b, data, c.spec); return r })
			benchBody(b, v, s, raw, len(data))
		})
	}
	b.Run("signed-payload-sha256", func(b *testing.B) {
		s, raw := benchRequest(b, func() *http.Request {
			r := newClientRequest(b, http.MethodPut, "k", "", data)
			signSDK(b, r, hexSHA256(data), testTime)
			return r
		})
		benchBody(b, v, s, raw, len(data))
	})
	b.Run("unsigned-payload", func(b *testing.B) {
		s, raw := benchRequest(b, func() *http.Request {
			r := newClientRequest(b, http.MethodPut, "k", "", data)
			signSDK(b, r, unsignedPayload, testTime)
			return r
		})
		benchBody(b, v, s, raw, len(data))
	})
}

func BenchmarkEncoder(b *testing.B) {
	data := testBody(benchSize)
	b.Run("buffered", func(b *testing.B) {
		benchEncoder(b, func() io.Reader {
			return NewUnsignedTrailerEncoder(bytes.NewReader(data), checksum.CRC32C, nil, 64<<10)
		})
	})
	b.Run("length-known", func(b *testing.B) {
		benchEncoder(b, func() io.Reader {
			return NewUnsignedTrailerEncoderLen(bytes.NewReader(data), int64(len(data)), checksum.CRC32C, nil, 64<<10)
		})
	})
}

func benchEncoder(b *testing.B, newEncoder func() io.Reader) {
	buf := make([]byte, 32<<10)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		e := newEncoder()
		for {
			if _, err := e.Read(buf); err != nil {
				break
			}
		}
	}
}

func BenchmarkVerifyHeader(b *testing.B) {
	v := newTestVerifier()
	r := newClientRequest(b, http.MethodGet, "some/object key.txt", "versionId=abc", nil)
	r.Header.Set("Range", "bytes=0-1023")
	signSDK(b, r, emptySHA256, testTime)
	s := toServer(b, r)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(s); err != nil {
			b.Fatal(err)
		}
	}
}
