package sigv4

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/s3seal/s3seal/proxy/checksum"
)

// splitSizes cuts n bytes into chunks of size cs (the last one shorter).
func splitSizes(n, cs int) []int {
	var sizes []int
	for n > 0 {
		k := min(n, cs)
		sizes = append(sizes, k)
		n -= k
	}
	return sizes
}

type modeCase struct {
	name string
	spec chunkSpec
	mode PayloadMode
}

func streamingModes() []modeCase {
	var cases []modeCase
	cases = append(cases, modeCase{"signed", chunkSpec{signed: true}, StreamingSigned})
	for _, a := range checksum.Algorithms() {
		cases = append(cases,
			modeCase{"signed-trailer-" + string(a), chunkSpec{signed: true, trailer: a}, StreamingSignedTrailer},
			modeCase{"unsigned-trailer-" + string(a), chunkSpec{trailer: a}, StreamingUnsignedTrailer})
	}
	cases = append(cases,
		modeCase{"signed-trailer-minio-layout", chunkSpec{signed: true, trailer: checksum.CRC32C, minioTrailer: true}, StreamingSignedTrailer},
		modeCase{"unsigned-trailer-minio-layout", chunkSpec{trailer: checksum.CRC32C, minioTrailer: true}, StreamingUnsignedTrailer})
	return cases
}

func TestStreamingModesRoundTrip(t *testing.T) {
	v := newTestVerifier()
	for _, mc := range streamingModes() {
		for _, size := range []int{0, 1, 8191, 8192, 65536, 65537, 200000} {
			for _, cs := range []int{8192, 65536} {
				data := testBody(size)
				spec := mc.spec
				spec.sizes = splitSizes(size, cs)
				for _, step := range []int{1, 7, 4096, 65536, 300000} {
					if step == 1 && size > 70000 {
						continue
					}
					r, _ := streamingRequest(t, data, spec)
					r.Header.Set("Content-Encoding", "gzip,aws-chunked")
					// Content-Encoding is signed: re-sign with the new value.
					r, _ = resign(t, r, data, spec)
					res, err := v.Verify(toServer(t, r))
					if err != nil {
						t.Fatalf("%s size %d: %v", mc.name, size, err)
					}
					if res.Mode != mc.mode || res.ContentLength != int64(size) || res.ContentEncoding != "gzip" {
						t.Fatalf("%s: result %+v", mc.name, res)
					}
					if _, ok := res.ChecksumValue(); ok {
						t.Fatalf("%s: trailer value before EOF", mc.name)
					}
					got, err := readBody(res.Body, step)
					if err != nil || !bytes.Equal(got, data) {
						t.Fatalf("%s size %d cs %d step %d: %d bytes, %v", mc.name, size, cs, step, len(got), err)
					}
					if spec.trailer != "" {
						val, ok := res.ChecksumValue()
						if !ok || val != checksum.SumBytes(spec.trailer, data) || res.ChecksumAlgorithm != spec.trailer || !res.ChecksumTrailer {
							t.Fatalf("%s: trailer %q %v", mc.name, val, ok)
						}
					}
					res.Body.Close()
				}
			}
		}
	}
}

// resign signs r again (after a header change) and rebuilds its body.
func resign(t *testing.T, r *http.Request, data []byte, spec chunkSpec) (*http.Request, [][]byte) {
	t.Helper()
	enc := r.Header.Get("Content-Encoding")
	n, frames := streamingRequestWith(t, data, spec, func(h http.Header) { h.Set("Content-Encoding", enc) })
	return n, frames
}

// streamingRequestWith is streamingRequest with extra headers set before
// signing.
func streamingRequestWith(t *testing.T, data []byte, spec chunkSpec, set func(http.Header)) (*http.Request, [][]byte) {
	t.Helper()
	r, _ := streamingRequest(t, data, spec)
	set(r.Header)
	r.Header.Del("Authorization")
	payload := r.Header.Get("X-Amz-Content-Sha256")
	signSDK(t, r, payload, testTime)
	s := &chunkSigner{
		key:   specKey(testSecret, testTime.Format(dateFormat), testRegion),
		date:  testTime.Format(iso8601Format),
		scope: testTime.Format(dateFormat) + "/" + testRegion + "/s3/aws4_request",
		prev:  authSignature(t, r),
	}
	frames := chunkFrames(data, spec, s)
	r.Body = io.NopCloser(bytes.NewReader(bytes.Join(frames, nil)))
	return r, frames
}

func TestStreamingIOTest(t *testing.T) {
	v := newTestVerifier()
	data := testBody(150000)
	for _, mc := range streamingModes()[:3] {
		spec := mc.spec
		spec.sizes = splitSizes(len(data), 65536)
		r, _ := streamingRequest(t, data, spec)
		res, err := v.Verify(toServer(t, r))
		if err != nil {
			t.Fatal(err)
		}
		if err := iotest.TestReader(res.Body, data); err != nil {
			t.Fatalf("%s: %v", mc.name, err)
		}
	}
	// The source delivered a byte at a time, or in halves.
	for _, wrap := range []func(io.Reader) io.Reader{iotest.OneByteReader, iotest.HalfReader, iotest.DataErrReader} {
		for _, mc := range streamingModes()[:3] {
			spec := mc.spec
			spec.sizes = splitSizes(20000, 8192)
			data := testBody(20000)
			r, _ := streamingRequest(t, data, spec)
			s := toServer(t, r)
			// iotest's wrappers expect a source that returns io.EOF on
			// its own, as a bytes.Reader does.
			raw, _ := io.ReadAll(s.Body)
			s.Body = io.NopCloser(wrap(bytes.NewReader(raw)))
			res, err := v.Verify(s)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := readBody(res.Body, 3000); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s: %v", mc.name, err)
			}
		}
	}
}

// bodyCase is an adversarial aws-chunked body.
type bodyCase struct {
	name  string
	spec  chunkSpec
	edit  func(frames [][]byte) [][]byte
	setup func(v *Verifier, h http.Header)
	code  string
	msg   string // S3's message, where it tells two faults of one code apart
}

func flipByte(f []byte, i int) []byte {
	f = bytes.Clone(f)
	f[i] ^= 1
	return f
}

// sigPos returns the offset of the first signature digit in a chunk frame.
func sigPos(f []byte) int {
	return bytes.Index(f, []byte("chunk-signature=")) + len("chunk-signature=")
}

func TestStreamingAdversarial(t *testing.T) {
	signed := chunkSpec{signed: true, sizes: []int{8192, 8192, 8192, 100}}
	signedTrailer := chunkSpec{signed: true, trailer: checksum.CRC32, sizes: []int{8192, 8192, 8192, 100}}
	unsigned := chunkSpec{trailer: checksum.CRC64NVME, sizes: []int{8192, 8192, 8192, 100}}
	cases := []bodyCase{
		{name: "wrong chunk signature", spec: signed, edit: func(f [][]byte) [][]byte { f[1] = flipByte(f[1], sigPos(f[1])+5); return f }, code: "SignatureDoesNotMatch"},
		{name: "tampered chunk data", spec: signed, edit: func(f [][]byte) [][]byte { f[2] = flipByte(f[2], len(f[2])-3); return f }, code: "SignatureDoesNotMatch"},
		{name: "tampered last chunk", spec: signed, edit: func(f [][]byte) [][]byte { f[3] = flipByte(f[3], len(f[3])-3); return f }, code: "SignatureDoesNotMatch"},
		{name: "reordered chunks", spec: signed, edit: func(f [][]byte) [][]byte { f[0], f[1] = f[1], f[0]; return f }, code: "SignatureDoesNotMatch"},
		{name: "dropped chunk", spec: signed, edit: func(f [][]byte) [][]byte { return append(f[:1], f[2:]...) }, code: "SignatureDoesNotMatch"},
		{name: "repeated chunk", spec: signed, edit: func(f [][]byte) [][]byte { return append(f[:2], f[1:]...) }, code: "SignatureDoesNotMatch"},
		{name: "missing final chunk", spec: signed, edit: func(f [][]byte) [][]byte { return f[:len(f)-1] }, code: "IncompleteBody"},
		{name: "wrong final chunk signature", spec: signed, edit: func(f [][]byte) [][]byte {
			f[4] = flipByte(f[4], sigPos(f[4])+63)
			return f
		}, code: "SignatureDoesNotMatch"},
		{name: "data after final chunk", spec: signed, edit: func(f [][]byte) [][]byte { return append(f, []byte("x")) }, code: "IncompleteBody"},
		// S3 takes data chunks below 8 KiB only as the last one.
		{name: "short signed chunk before the last", spec: chunkSpec{signed: true, sizes: []int{8192, 100, 8192, 8192}}, code: "InvalidChunkSizeError"},
		{name: "short unsigned chunk before the last", spec: chunkSpec{trailer: checksum.CRC64NVME, sizes: []int{100, 8192, 8192, 8192}}, code: "InvalidChunkSizeError"},
		{name: "oversize chunk", spec: signed, setup: func(v *Verifier, _ http.Header) { v.MaxChunkSize = 8191 }, code: "IncompleteBody"},
		{name: "decoded length too small", spec: signed, setup: func(_ *Verifier, h http.Header) { h.Set("X-Amz-Decoded-Content-Length", "24000") }, code: "IncompleteBody"},
		{name: "decoded length too large", spec: signed, setup: func(_ *Verifier, h http.Header) { h.Set("X-Amz-Decoded-Content-Length", "24677") }, code: "IncompleteBody"},
		{name: "chunk size overflow", spec: signed, edit: func(f [][]byte) [][]byte {
			f[1] = bytes.Replace(f[1], []byte("2000;"), []byte("fffffffffffffffffff;"), 1)
			return f
		}, code: "IncompleteBody"},
		{name: "negative-looking size", spec: signed, edit: func(f [][]byte) [][]byte {
			f[1] = bytes.Replace(f[1], []byte("2000;"), []byte("-2000;"), 1)
			return f
		}, code: "IncompleteBody"},
		{name: "endless line", spec: signed, edit: func(f [][]byte) [][]byte {
			return append(f[:1], bytes.Repeat([]byte("1"), 10000))
		}, code: "IncompleteBody"},
		{name: "missing CRLF after data", spec: signed, edit: func(f [][]byte) [][]byte {
			f[0] = append(bytes.Clone(f[0][:len(f[0])-2]), 'x', 'y')
			return f
		}, code: "IncompleteBody"},
		{name: "wrong trailer checksum", spec: chunkSpec{signed: true, trailer: checksum.CRC32, sizes: signedTrailer.sizes, trailerValue: checksum.SumBytes(checksum.CRC32, []byte("x"))}, code: "BadDigest"},
		{name: "malformed trailer checksum", spec: chunkSpec{signed: true, trailer: checksum.CRC32, sizes: signedTrailer.sizes, trailerValue: "not base64!"}, code: "InvalidRequest"},
		{name: "wrong trailer signature", spec: signedTrailer, edit: func(f [][]byte) [][]byte {
			last := f[len(f)-1]
			i := bytes.Index(last, []byte("x-amz-trailer-signature:")) + len("x-amz-trailer-signature:")
			f[len(f)-1] = flipByte(last, i+10)
			return f
		}, code: "SignatureDoesNotMatch"},
		{name: "tampered trailer value", spec: signedTrailer, edit: func(f [][]byte) [][]byte {
			last := f[len(f)-1]
			i := bytes.Index(last, []byte("crc32:")) + len("crc32:")
			f[len(f)-1] = flipByte(last, i+1)
			return f
		}, code: "SignatureDoesNotMatch"},
		{name: "missing trailer signature", spec: signedTrailer, edit: func(f [][]byte) [][]byte {
			last := f[len(f)-1]
			i := bytes.Index(last, []byte("x-amz-trailer-signature:"))
			f[len(f)-1] = append(bytes.Clone(last[:i]), '\r', '\n')
			return f
		}, code: "IncompleteBody"},
		{name: "trailer after signature", spec: signedTrailer, edit: func(f [][]byte) [][]byte {
			last := f[len(f)-1]
			f[len(f)-1] = append(bytes.Clone(last[:len(last)-2]), "x-amz-checksum-crc32:AAAAAA==\r\n\r\n"...)
			return f
		}, code: "IncompleteBody"},
		{name: "trailer missing", spec: signedTrailer, edit: func(f [][]byte) [][]byte {
			last := f[len(f)-1]
			i := bytes.Index(last, []byte("x-amz-checksum-crc32:"))
			j := bytes.Index(last, []byte("x-amz-trailer-signature:"))
			f[len(f)-1] = append(bytes.Clone(last[:i]), last[j:]...)
			return f
		}, code: "MalformedTrailerError"}, // as S3: checked before the signature
		{name: "unsigned wrong trailer checksum", spec: chunkSpec{trailer: checksum.CRC64NVME, sizes: unsigned.sizes, trailerValue: checksum.SumBytes(checksum.CRC64NVME, []byte("x"))}, code: "BadDigest"},
		{name: "unsigned tampered data", spec: unsigned, edit: func(f [][]byte) [][]byte { f[3] = flipByte(f[3], 10); return f }, code: "BadDigest"},
		{name: "unsigned missing final chunk", spec: unsigned, edit: func(f [][]byte) [][]byte { return f[:len(f)-1] }, code: "IncompleteBody"},
		{name: "unsigned trailer missing", spec: unsigned, edit: func(f [][]byte) [][]byte { f[len(f)-1] = []byte("0\r\n\r\n"); return f }, code: "MalformedTrailerError"},
		{name: "unsigned undeclared trailer", spec: unsigned, edit: func(f [][]byte) [][]byte {
			f[len(f)-1] = []byte("0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n")
			return f
		}, code: "MalformedTrailerError"},
		{name: "unsigned unnamed trailer", spec: unsigned, edit: func(f [][]byte) [][]byte {
			f[len(f)-1] = []byte("0\r\n:AAAAAAAAAAA=\r\n\r\n")
			return f
		}, code: "MalformedTrailerError"},
		{name: "unsigned undeclared trailer, body cut short", spec: chunkSpec{trailer: checksum.CRC64NVME, sizes: unsigned.sizes, trailerValue: checksum.SumBytes(checksum.CRC64NVME, testBody(24676))}, edit: func(f [][]byte) [][]byte {
			// A mangled trailer name in a body that then ends early: S3
			// reports the short body (IncompleteBody) first.
			last := f[len(f)-1]
			i := bytes.Index(last, []byte("x-amz-checksum"))
			f[len(f)-1] = append(bytes.Clone(last[:i]), "x-aminvalid-checksum-crc64nvme:AAAAAAAAAAA=\r\n"...)
			return f
		}, code: "IncompleteBody"},
		{name: "unsigned trailer without colon", spec: unsigned, edit: func(f [][]byte) [][]byte {
			f[len(f)-1] = []byte("0\r\ninvalid_trailer\r\n\r\n")
			return f
		}, code: "MalformedTrailerError"},
		{name: "unsigned huge chunk size", spec: unsigned, edit: func(f [][]byte) [][]byte {
			f[0] = append([]byte("fffffffffffff\r\n"), f[0][6:]...)
			return f
		}, code: "IncompleteBody"},
		{name: "unsigned chunk longer than declared", spec: unsigned, setup: func(_ *Verifier, h http.Header) { h.Set("X-Amz-Decoded-Content-Length", "8000") }, code: "IncompleteBody",
			msg: "You did not provide the number of bytes specified by the Content-Length HTTP header"},
		{name: "unsigned chunk longer than declared, then broken off", spec: unsigned, setup: func(_ *Verifier, h http.Header) { h.Set("X-Amz-Decoded-Content-Length", "8000") },
			edit: func(f [][]byte) [][]byte { f[0] = append(bytes.Clone(f[0][:len(f[0])-2]), 'x', 'y'); return f }, code: "IncompleteBody",
			msg: "The request body terminated unexpectedly"},
		{name: "signed chunk longer than declared", spec: signed, setup: func(_ *Verifier, h http.Header) { h.Set("X-Amz-Decoded-Content-Length", "8000") }, code: "IncompleteBody",
			msg: "You did not provide the number of bytes specified by the Content-Length HTTP header"},
		{name: "signed chunk longer than declared, then broken off", spec: signed, setup: func(_ *Verifier, h http.Header) { h.Set("X-Amz-Decoded-Content-Length", "8000") },
			edit: func(f [][]byte) [][]byte { f[0] = append(bytes.Clone(f[0][:len(f[0])-2]), 'x', 'y'); return f }, code: "IncompleteBody",
			msg: "The request body terminated unexpectedly"},
		{name: "unsigned chunk header ended by LF", spec: unsigned, edit: func(f [][]byte) [][]byte {
			i := bytes.Index(f[1], []byte("\r\n"))
			f[1] = append(append(bytes.Clone(f[1][:i]), '\n'), f[1][i+2:]...)
			return f
		}, code: "IncompleteBody"},
		{name: "unsigned bad hex", spec: unsigned, edit: func(f [][]byte) [][]byte { f[1] = append([]byte("2g00\r\n"), f[1][6:]...); return f }, code: "IncompleteBody"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := newTestVerifier()
			data := testBody(24676)
			r, frames := streamingRequestLen(t, data, c.spec, false)
			if c.setup != nil {
				c.setup(v, r.Header)
				r, frames = streamingRequestLen2(t, data, c.spec, r.Header)
			}
			if c.edit != nil {
				cp := make([][]byte, len(frames))
				copy(cp, frames)
				frames = c.edit(cp)
			}
			body := bytes.Join(frames, nil)
			for _, step := range []int{1, 100, 8192, 100000} {
				if step == 1 && c.name != "wrong chunk signature" && c.name != "unsigned tampered data" {
					continue
				}
				s := toServer(t, withBodyChunked(r, body))
				res, err := v.Verify(s)
				if err != nil {
					t.Fatal(err)
				}
				cr := &countingReader{r: res.Body}
				_, err = readBody(cr, step)
				if e := expectCode(t, err, c.code); c.msg != "" && e.Message != c.msg {
					t.Fatalf("message %q, want %q", e.Message, c.msg)
				}
				expectNoSecrets(t, err, authSignature(t, r))
				if cr.n >= int64(len(data)) {
					t.Fatalf("step %d: released %d of %d bytes", step, cr.n, len(data))
				}
				res.Body.Close()
			}
		})
	}
}

// streamingRequestLen2 rebuilds a chunked-transfer streaming request with
// the headers h (signed) instead of the defaults.
func streamingRequestLen2(t *testing.T, data []byte, spec chunkSpec, h http.Header) (*http.Request, [][]byte) {
	t.Helper()
	r, _ := streamingRequestLen(t, data, spec, false)
	for k, vs := range h {
		if k != "Authorization" && k != "X-Amz-Date" {
			r.Header[k] = vs
		}
	}
	r.Header.Del("Authorization")
	signSDK(t, r, r.Header.Get("X-Amz-Content-Sha256"), testTime)
	s := &chunkSigner{
		key:   specKey(testSecret, testTime.Format(dateFormat), testRegion),
		date:  testTime.Format(iso8601Format),
		scope: testTime.Format(dateFormat) + "/" + testRegion + "/s3/aws4_request",
		prev:  authSignature(t, r),
	}
	frames := chunkFrames(data, spec, s)
	return r, frames
}

// withBodyChunked returns r with body b sent with chunked transfer
// encoding (no Content-Length).
func withBodyChunked(r *http.Request, b []byte) *http.Request {
	c := r.Clone(r.Context())
	c.Body = io.NopCloser(bytes.NewReader(b))
	c.ContentLength = -1
	return c
}

// Cutting a body anywhere before its end must fail without releasing all
// the data.
func TestStreamingTruncation(t *testing.T) {
	v := newTestVerifier()
	data := testBody(20000)
	for _, mc := range []modeCase{streamingModes()[0], streamingModes()[1], streamingModes()[2]} {
		spec := mc.spec
		spec.sizes = splitSizes(len(data), 8192)
		r, frames := streamingRequestLen(t, data, spec, false)
		body := bytes.Join(frames, nil)
		// The last two bytes are the optional closing CRLF.
		for cut := 0; cut < len(body)-2; cut += 1 + cut/50 {
			res, err := v.Verify(toServer(t, withBodyChunked(r, body[:cut])))
			if err != nil {
				t.Fatal(err)
			}
			cr := &countingReader{r: res.Body}
			_, err = readBody(cr, 4096)
			expectCode(t, err, "IncompleteBody")
			if cr.n >= int64(len(data)) {
				t.Fatalf("%s cut %d: released %d bytes", mc.name, cut, cr.n)
			}
		}
	}
}

// The decoders allocate per request, not per chunk or per Read.
func TestStreamingAllocationsPerChunk(t *testing.T) {
	v := newTestVerifier()
	for _, mc := range streamingModes()[:3] {
		allocs := func(chunks int) float64 {
			data := testBody(chunks * 8192)
			spec := mc.spec
			spec.sizes = splitSizes(len(data), 8192)
			r, _ := streamingRequest(t, data, spec)
			s := toServer(t, r)
			raw, _ := io.ReadAll(s.Body)
			buf := make([]byte, 1000)
			return testing.AllocsPerRun(5, func() {
				s.Body = io.NopCloser(bytes.NewReader(raw))
				res, err := v.Verify(s)
				if err != nil {
					t.Fatal(err)
				}
				for {
					if _, err := res.Body.Read(buf); err != nil {
						if err != io.EOF {
							t.Fatal(err)
						}
						break
					}
				}
			})
		}
		few, many := allocs(4), allocs(64)
		if many > few+2 {
			t.Errorf("%s: %v allocations for 4 chunks, %v for 64", mc.name, few, many)
		}
	}
}

// Close may run while a Read is blocked on the client connection (HTTP
// transports do that); the pooled buffers must not be released under it.
func TestStreamingCloseDuringRead(t *testing.T) {
	v := newTestVerifier()
	data := testBody(30000)
	spec := chunkSpec{signed: true, sizes: splitSizes(len(data), 8192)}
	r, frames := streamingRequestLen(t, data, spec, false)
	pr, pw := io.Pipe()
	s := toServer(t, withBodyChunked(r, nil))
	s.Body = pr
	res, err := v.Verify(s)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		pw.Write(frames[0])
		pw.Write(frames[1][:100])
	}()
	var wg sync.WaitGroup
	wg.Add(1)
	var readErr error
	go func() {
		defer wg.Done()
		_, readErr = readBody(res.Body, 1000)
	}()
	time.Sleep(20 * time.Millisecond)
	if err := res.Body.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	expectCode(t, readErr, "IncompleteBody")
	if _, err := res.Body.Read(make([]byte, 10)); err == nil {
		t.Fatal("read after close succeeded")
	}
}

func TestStreamingHeaders(t *testing.T) {
	v := newTestVerifier()
	data := testBody(100)
	cases := []struct {
		name string
		set  func(h http.Header)
		code string
	}{
		{"bad decoded length", func(h http.Header) { h.Set("X-Amz-Decoded-Content-Length", "-1") }, "MissingContentLength"},
		{"decoded length not a number", func(h http.Header) { h.Set("X-Amz-Decoded-Content-Length", "12x") }, "MissingContentLength"},
		{"unsupported trailer", func(h http.Header) { h.Set("X-Amz-Trailer", "x-amz-meta-foo") }, "InvalidArgument"},
		{"two checksum trailers", func(h http.Header) { h.Set("X-Amz-Trailer", "x-amz-checksum-crc32,x-amz-checksum-sha1") }, "InvalidRequest"},
		{"trailer and header checksum", func(h http.Header) { h.Set("X-Amz-Checksum-Crc32", "AAAAAA==") }, "InvalidRequest"},
	}
	for _, c := range cases {
		r, _ := streamingRequestWith(t, data, chunkSpec{trailer: checksum.CRC32, sizes: []int{100}}, c.set)
		_, err := v.Verify(toServer(t, r))
		expectCode(t, err, c.code)
	}
	// A trailer declared for a mode without trailers.
	r, _ := streamingRequestWith(t, data, chunkSpec{signed: true, sizes: []int{100}}, func(h http.Header) { h.Set("X-Amz-Trailer", "x-amz-checksum-crc32") })
	_, err := v.Verify(toServer(t, r))
	expectCode(t, err, "InvalidRequest")
	// Without x-amz-decoded-content-length the length is unknown but the
	// body still decodes.
	r, _ = streamingRequestWith(t, data, chunkSpec{trailer: checksum.SHA1, sizes: []int{100}}, func(h http.Header) { h.Del("X-Amz-Decoded-Content-Length") })
	res, err := v.Verify(toServer(t, r))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readBody(res.Body, 7); err != nil || !bytes.Equal(got, data) || res.ContentLength != -1 {
		t.Fatalf("no decoded length: %v", err)
	}
}

func ExampleVerifier() {
	v := &Verifier{Lookup: StaticLookup(Credentials{"AKID", "secret"})}
	r, _ := http.NewRequest(http.MethodGet, "https://s3.example/bucket/key", nil)
	_, err := v.Verify(r)
	fmt.Println(err)
	// Output: AccessDenied: Access Denied: the request is not signed.: sigv4: request is not authenticated
}
