package sigv4

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"testing"
	"testing/iotest"

	"github.com/s3seal/s3seal/proxy/checksum"
)

func TestEncoderFormat(t *testing.T) {
	cases := []struct {
		in    string
		alg   checksum.Algorithm
		chunk int
		want  string
	}{
		{"hello world", checksum.CRC32, 0, "b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n"},
		{"hello world", checksum.CRC32C, 4, "4\r\nhell\r\n4\r\no wo\r\n3\r\nrld\r\n0\r\nx-amz-checksum-crc32c:yZRlqg==\r\n\r\n"},
		{"", checksum.SHA256, 0, "0\r\nx-amz-checksum-sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\r\n\r\n"},
		{"hello world", "", 0, "b\r\nhello world\r\n0\r\n\r\n"},
	}
	for _, c := range cases {
		out, err := io.ReadAll(NewUnsignedTrailerEncoder(bytes.NewReader([]byte(c.in)), c.alg, nil, c.chunk))
		if err != nil || string(out) != c.want {
			t.Errorf("%q %s: %q, %v", c.in, c.alg, out, err)
		}
		if n := EncodedLength(int64(len(c.in)), c.chunk, c.alg); n != int64(len(c.want)) {
			t.Errorf("%q %s: EncodedLength %d, want %d", c.in, c.alg, n, len(c.want))
		}
	}
	out, _ := io.ReadAll(NewUnsignedTrailerEncoder(bytes.NewReader([]byte("ab")), checksum.CRC32, func() string { return "given=" }, 0))
	if string(out) != "2\r\nab\r\n0\r\nx-amz-checksum-crc32:given=\r\n\r\n" {
		t.Errorf("given value: %q", out)
	}
	if EncodedLength(-1, 0, checksum.CRC32) != -1 {
		t.Error("negative length")
	}
}

// Encoder output decodes through the verifier to the input, for sizes at
// the chunk boundaries, and EncodedLength is exact.
func TestEncoderRoundTrip(t *testing.T) {
	v := newTestVerifier()
	algs := append(checksum.Algorithms(), "")
	for _, cs := range []int{1, 7, 8192, 65536} {
		for _, size := range []int{0, 1, cs - 1, cs, cs + 1, 3*cs - 1, 3 * cs, 3*cs + 5, 100000} {
			if size < 0 || (cs == 1 && size > 5000) {
				continue
			}
			data := testBody(size)
			for _, alg := range algs {
				enc, err := io.ReadAll(NewUnsignedTrailerEncoder(iotest.HalfReader(bytes.NewReader(data)), alg, nil, cs))
				if err != nil {
					t.Fatal(err)
				}
				if n := EncodedLength(int64(size), cs, alg); n != int64(len(enc)) {
					t.Fatalf("cs %d size %d %s: EncodedLength %d, encoded %d", cs, size, alg, n, len(enc))
				}
				r := newClientRequest(t, http.MethodPut, "k", "", nil)
				r.Header.Set("Content-Encoding", "aws-chunked")
				r.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(size))
				if alg != "" {
					r.Header.Set("X-Amz-Trailer", alg.HeaderName())
				}
				r.ContentLength = int64(len(enc))
				signSDK(t, r, streamingUnsignedTrailer, testTime)
				r.Body = io.NopCloser(bytes.NewReader(enc))
				res, err := v.Verify(toServer(t, r))
				if err != nil {
					t.Fatal(err)
				}
				got, err := readBody(res.Body, 4096)
				if cs < minChunkSize && size > cs {
					// S3 refuses data chunks below 8 KiB but the last;
					// the framing itself still decodes.
					expectCode(t, err, "InvalidChunkSizeError")
					d := newChunkedReader(io.NopCloser(bytes.NewReader(enc)), chunkedOptions{trailer: true, declared: int64(size), trailers: trailerNames(alg)})
					got, err = readBody(d, 4096)
				}
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("cs %d size %d %s: %v", cs, size, alg, err)
				}
			}
		}
	}
}

func TestEncoderIOTest(t *testing.T) {
	data := testBody(70000)
	want, _ := io.ReadAll(NewUnsignedTrailerEncoder(bytes.NewReader(data), checksum.CRC64NVME, nil, 8192))
	if err := iotest.TestReader(NewUnsignedTrailerEncoder(bytes.NewReader(data), checksum.CRC64NVME, nil, 8192), want); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	_, err := io.ReadAll(NewUnsignedTrailerEncoder(io.MultiReader(bytes.NewReader(data), iotest.ErrReader(boom)), checksum.CRC32, nil, 8192))
	if !errors.Is(err, boom) {
		t.Fatalf("source error: %v", err)
	}
}

// TestEncoderLenMatchesBuffered: the length-known encoder writes exactly
// what the buffered one writes, for every size around chunk boundaries and
// every read size.
func TestEncoderLenMatchesBuffered(t *testing.T) {
	for _, alg := range []checksum.Algorithm{"", checksum.CRC32, checksum.SHA256} {
		for _, cs := range []int{1, 7, 8192} {
			for _, n := range []int{0, 1, cs - 1, cs, cs + 1, 3*cs + 5} {
				if n < 0 {
					continue
				}
				data := testBody(n)
				want, err := io.ReadAll(NewUnsignedTrailerEncoder(bytes.NewReader(data), alg, nil, cs))
				if err != nil {
					t.Fatal(err)
				}
				if int64(len(want)) != EncodedLength(int64(n), cs, alg) {
					t.Fatalf("EncodedLength(%d, %d) = %d, output %d", n, cs, EncodedLength(int64(n), cs, alg), len(want))
				}
				if err := iotest.TestReader(NewUnsignedTrailerEncoderLen(iotest.HalfReader(bytes.NewReader(data)), int64(n), alg, nil, cs), want); err != nil {
					t.Fatalf("alg %q chunk %d size %d: %v", alg, cs, n, err)
				}
			}
		}
	}
}

func TestEncoderLenSourceLength(t *testing.T) {
	data := testBody(100)
	if _, err := io.ReadAll(NewUnsignedTrailerEncoderLen(bytes.NewReader(data[:90]), 100, checksum.CRC32, nil, 32)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short source: %v", err)
	}
	if _, err := io.ReadAll(NewUnsignedTrailerEncoderLen(bytes.NewReader(data), 90, checksum.CRC32, nil, 32)); !errors.Is(err, errSourceTooLong) {
		t.Errorf("long source: %v", err)
	}
	boom := errors.New("boom")
	if _, err := io.ReadAll(NewUnsignedTrailerEncoderLen(io.MultiReader(bytes.NewReader(data[:50]), iotest.ErrReader(boom)), 100, checksum.CRC32, nil, 32)); !errors.Is(err, boom) {
		t.Errorf("failing source: %v", err)
	}
	// The trailer value is asked for only after the source reported its end.
	src := &eofWatcher{r: bytes.NewReader(data)}
	out, err := io.ReadAll(NewUnsignedTrailerEncoderLen(src, 100, checksum.CRC32, func() string {
		if !src.eof {
			t.Error("trailer value asked for before the source's end")
		}
		return "AAAAAA=="
	}, 32))
	if err != nil || !bytes.Contains(out, []byte("x-amz-checksum-crc32:AAAAAA==\r\n\r\n")) {
		t.Fatalf("%v %q", err, out)
	}
}

type eofWatcher struct {
	r   io.Reader
	eof bool
}

func (w *eofWatcher) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if err == io.EOF {
		w.eof = true
	}
	return n, err
}

func trailerNames(alg checksum.Algorithm) []string {
	if alg == "" {
		return nil
	}
	return []string{alg.HeaderName()}
}
