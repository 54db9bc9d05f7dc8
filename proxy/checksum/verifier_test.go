package checksum

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/s3seal/s3seal/proxy/s3err"
)

// readAll reads r with reads of at most step bytes and returns what was
// released and the terminal error (nil for io.EOF).
func readAll(r io.Reader, step int) ([]byte, error) {
	var out []byte
	buf := make([]byte, step)
	for i := 0; i < 1<<24; i++ {
		n, err := r.Read(buf)
		if n < 0 || n > len(buf) {
			return out, fmt.Errorf("bad count %d", n)
		}
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
	return out, errors.New("no progress")
}

func testData(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func TestVerifierPasses(t *testing.T) {
	for _, size := range []int{0, 1, 2, 3, 100, 4096, 70000} {
		data := testData(size)
		sum := sha256.Sum256(data)
		for _, step := range []int{1, 2, 3, 7, 64, 4096, 100000} {
			for _, wrap := range []func(io.Reader) io.Reader{
				func(r io.Reader) io.Reader { return r },
				iotest.OneByteReader, iotest.HalfReader, iotest.DataErrReader,
			} {
				v := NewVerifier(wrap(bytes.NewReader(data)), int64(size),
					Check{Algorithm: SHA256, Want: sum[:]},
					Check{Algorithm: CRC32C, WantFunc: func() ([]byte, error) { return mustDecode(SumBytes(CRC32C, data)), nil }})
				got, err := readAll(v, step)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("size %d step %d: %d bytes, %v", size, step, len(got), err)
				}
				if !v.Verified() {
					t.Fatalf("size %d step %d: not verified", size, step)
				}
			}
		}
		sumHex := fmt.Sprintf("%x", sum)
		c, err := ExpectPayloadSHA256(sumHex)
		if err != nil {
			t.Fatal(err)
		}
		if err := iotest.TestReader(NewVerifier(bytes.NewReader(data), int64(size), c), data); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
	}
}

func mustDecode(v string) []byte {
	b, err := ParseValue(CRC32C, v)
	if err != nil {
		panic(err)
	}
	return b
}

// Every failing stream must end in the right error having released fewer
// bytes than it holds, whatever the read sizes.
func TestVerifierWithholdsFinalByte(t *testing.T) {
	data := testData(1000)
	good := sha256.Sum256(data)
	bad := good
	bad[0] ^= 1
	payload, _ := ExpectPayloadSHA256(fmt.Sprintf("%x", bad))
	cases := []struct {
		name   string
		src    func() io.Reader
		want   int64
		checks []Check
		code   string
		limit  int // bytes that may be released
	}{
		{"payload hash", func() io.Reader { return bytes.NewReader(data) }, 1000, []Check{payload}, "XAmzContentSHA256Mismatch", 999},
		{"checksum", func() io.Reader { return bytes.NewReader(data) }, -1, []Check{{Algorithm: CRC32, Want: []byte{1, 2, 3, 4}}}, "BadDigest", 999},
		{"trailer missing", func() io.Reader { return bytes.NewReader(data) }, 1000, []Check{{Algorithm: CRC32, WantFunc: func() ([]byte, error) {
			return nil, s3err.IncompleteBody.WithMessage("no trailer")
		}}}, "IncompleteBody", 999},
		{"short", func() io.Reader { return bytes.NewReader(data[:999]) }, 1000, nil, "IncompleteBody", 998},
		{"long", func() io.Reader { return bytes.NewReader(append(data, 'x')) }, 1000, []Check{{Algorithm: SHA256, Want: good[:]}}, "IncompleteBody", 999},
		{"broken", func() io.Reader { return io.MultiReader(bytes.NewReader(data), iotest.ErrReader(io.ErrUnexpectedEOF)) }, -1, nil, "IncompleteBody", 999},
	}
	for _, c := range cases {
		for _, step := range []int{1, 2, 5, 999, 1000, 1001, 4096} {
			got, err := readAll(NewVerifier(c.src(), c.want, c.checks...), step)
			expectCode(t, err, c.code)
			if len(got) > c.limit || !bytes.Equal(got, data[:len(got)]) {
				t.Fatalf("%s step %d: released %d bytes", c.name, step, len(got))
			}
		}
	}
}

func TestVerifierStickyAndClose(t *testing.T) {
	v := NewVerifier(strings.NewReader("abc"), 3, Check{Algorithm: CRC32, Want: []byte{0, 0, 0, 0}})
	_, err := readAll(v, 10)
	expectCode(t, err, "BadDigest")
	if _, err2 := v.Read(make([]byte, 10)); err2 != err {
		t.Errorf("error not sticky: %v", err2)
	}
	if v.Verified() {
		t.Error("failed stream reported verified")
	}
	closed := false
	rc := struct {
		io.Reader
		io.Closer
	}{strings.NewReader("x"), closerFunc(func() error { closed = true; return nil })}
	if err := NewVerifier(rc, 1).Close(); err != nil || !closed {
		t.Error("Close did not reach the source")
	}
	v = NewVerifier(strings.NewReader("abc"), 3)
	v.Read(make([]byte, 1))
	if err := v.AddChecks(Check{Algorithm: CRC32}); err == nil {
		t.Error("AddChecks after Read accepted")
	}
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestReadErrorMapping(t *testing.T) {
	cases := []struct {
		err  error
		code string
	}{
		{io.ErrUnexpectedEOF, "IncompleteBody"},
		{&http.MaxBytesError{Limit: 10}, "EntityTooLarge"},
		{fmt.Errorf("read: %w", os.ErrDeadlineExceeded), "RequestTimeout"},
		{timeoutErr{}, "RequestTimeout"},
		{s3err.SignatureDoesNotMatch, "SignatureDoesNotMatch"},
		{errors.New("connection reset"), "IncompleteBody"},
	}
	for _, c := range cases {
		_, err := readAll(NewVerifier(iotest.ErrReader(c.err), -1), 8)
		expectCode(t, err, c.code)
		if e, _ := s3err.As(err); c.code != "SignatureDoesNotMatch" && !errors.Is(e, c.err) {
			t.Errorf("%v: cause lost", c.err)
		}
	}
}

func TestVerifierReadAllocs(t *testing.T) {
	data := testData(1 << 20)
	src := bytes.NewReader(data)
	v := NewVerifier(src, -1, Check{Algorithm: SHA256, Want: make([]byte, 32)}, Check{Algorithm: CRC32C, Want: make([]byte, 4)})
	buf := make([]byte, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := v.Read(buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per Read", allocs)
	}
}

func BenchmarkVerifier(b *testing.B) {
	data := testData(64 << 10)
	for _, alg := range []Algorithm{SHA256, CRC32, CRC32C, CRC64NVME, MD5} {
		b.Run(string(alg), func(b *testing.B) {
			buf := make([]byte, 32<<10)
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				v := NewVerifier(bytes.NewReader(data), int64(len(data)), Check{Algorithm: alg, WantFunc: func() ([]byte, error) { return nil, nil }})
				for {
					_, err := v.Read(buf)
					if err != nil {
						break
					}
				}
			}
		})
	}
}

// TestMismatchMessages: S3's wording names the algorithm, for every
// algorithm, and Content-MD5 has its own.
func TestMismatchMessages(t *testing.T) {
	for _, a := range append(Algorithms(), ContentMD5) {
		want := "The " + string(a) + " you specified did not match the calculated checksum."
		if a == ContentMD5 {
			want = "The Content-MD5 you specified did not match what we received."
		}
		v := NewVerifier(strings.NewReader("abc"), 3, Check{Algorithm: a, Want: make([]byte, a.Size())})
		_, err := readAll(v, 10)
		if e, ok := s3err.As(err); !ok || e.Code != "BadDigest" || e.Message != want {
			t.Errorf("%s: %v", a, err)
		}
	}
}
