package stream

import (
	"bytes"
	"crypto/fips140"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"testing"
)

// testKey returns a deterministic content key for segment n of test object id.
func testKey(id string, n uint32) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], n)
	h := sha256.Sum256(append([]byte("stream test key "+id), b[:]...))
	return h[:]
}

func testKeys(id string) KeyFunc { return func(n uint32) []byte { return testKey(id, n) } }

// testPlaintext returns n bytes of a pattern that differs per chunk, so that
// a misplaced chunk cannot compare equal.
func testPlaintext(n int, seed byte) []byte {
	p := make([]byte, n)
	var ctr [8]byte
	for i := 0; i < n; i += 32 {
		binary.BigEndian.PutUint64(ctr[:], uint64(i))
		h := sha256.Sum256(append([]byte{seed}, ctr[:]...))
		copy(p[i:], h[:])
	}
	return p
}

// v1Fixture runs f, which writes format version 1, outside FIPS 140-only
// enforcement: a FIPS build cannot write version 1, but its readers must
// read it, and the tests need version 1 objects to read.
func v1Fixture(f func()) { fips140.WithoutEnforcement(f) }

// skipV1Writer skips a test of the version 1 writers in FIPS 140-only
// mode, where they are refused by design.
func skipV1Writer(t *testing.T) {
	if fips140.Enforced() {
		t.Skip("FIPS 140-only mode refuses the version 1 writers (cipher.NewGCM); their readers are tested through v1Fixture")
	}
}

// encrypt encrypts plain as one segment with EncryptWriter.
func encrypt(t testing.TB, key, plain []byte, opts *EncryptOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	v1Fixture(func() {
		w, err := NewEncryptWriter(key, &buf, opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(plain); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	})
	return buf.Bytes()
}

// encryptParts encrypts each part as segment 1..N and returns the
// concatenated object and the part ciphertext sizes.
func encryptParts(t testing.TB, id string, parts [][]byte) ([]byte, []int64) {
	t.Helper()
	var obj []byte
	var sizes []int64
	for i, p := range parts {
		ct := encrypt(t, testKey(id, uint32(i+1)), p, nil)
		obj = append(obj, ct...)
		sizes = append(sizes, int64(len(ct)))
	}
	return obj, sizes
}

// readAllStep reads r to the end with reads of at most step bytes.
func readAllStep(r io.Reader, step int) ([]byte, error) {
	var out []byte
	buf := make([]byte, step)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// oneByteAtATime makes a source that returns at most one byte per Read.
type oneByteAtATime struct{ r io.Reader }

func (o oneByteAtATime) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

var testSizes = []int{0, 1, 15, 16, 17, ChunkSize - 1, ChunkSize, ChunkSize + 1, 2*ChunkSize + 500, 3 * ChunkSize, 3<<20 + 7}

var testSteps = []int{1, 7, 16, 100, 4096, ChunkSize - 1, ChunkSize, ChunkSize + 1, EncryptedChunkSize, bufSize, bufSize + 1, 1 << 20}
