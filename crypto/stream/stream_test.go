package stream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"
)

func TestRoundTrip(t *testing.T) {
	skipV1Writer(t)
	key := testKey("rt", 0)
	for _, size := range testSizes {
		plain := testPlaintext(size, 1)
		want := encrypt(t, key, plain, nil)
		if c, _ := CiphertextSize(int64(size)); int64(len(want)) != c {
			t.Fatalf("size %d: ciphertext %d bytes, CiphertextSize says %d", size, len(want), c)
		}
		for _, step := range testSteps {
			if size > 1<<20 && step < 4096 {
				continue // keep the run short
			}
			t.Run(fmt.Sprintf("size=%d/step=%d", size, step), func(t *testing.T) {
				// EncryptReader with reads of step bytes gives the same bytes.
				er, err := NewEncryptReader(key, bytes.NewReader(plain), nil)
				if err != nil {
					t.Fatal(err)
				}
				got, err := readAllStep(er, step)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("EncryptReader: err %v, equal %v", err, bytes.Equal(got, want))
				}
				// EncryptWriter with writes of step bytes.
				var buf bytes.Buffer
				w, _ := NewEncryptWriter(key, &buf, nil)
				for p := plain; len(p) > 0; {
					n := min(step, len(p))
					if _, err := w.Write(p[:n]); err != nil {
						t.Fatal(err)
					}
					p = p[n:]
				}
				if err := w.Close(); err != nil || !bytes.Equal(buf.Bytes(), want) {
					t.Fatalf("EncryptWriter: err %v, equal %v", err, bytes.Equal(buf.Bytes(), want))
				}
				// DecryptReader with reads of step bytes, from a source
				// that returns small reads too.
				var src io.Reader = bytes.NewReader(want)
				if step == 7 {
					src = oneByteAtATime{src}
				}
				dr, err := NewDecryptReader(key, src)
				if err != nil {
					t.Fatal(err)
				}
				dec, err := readAllStep(dr, step)
				if err != nil || !bytes.Equal(dec, plain) {
					t.Fatalf("DecryptReader: err %v, equal %v", err, bytes.Equal(dec, plain))
				}
				if tr := dr.Trailers(); len(tr) != 1 || tr[0].Length != int64(size) {
					t.Fatalf("trailers %+v", tr)
				}
			})
		}
		// io.Copy goes through WriteTo on both sides.
		er, _ := NewEncryptReader(key, bytes.NewReader(plain), nil)
		var ct bytes.Buffer
		if _, err := io.Copy(&ct, er); err != nil || !bytes.Equal(ct.Bytes(), want) {
			t.Fatalf("size %d: EncryptReader.WriteTo differs (err %v)", size, err)
		}
		dr, _ := NewDecryptReader(key, &ct)
		var pt bytes.Buffer
		if _, err := io.Copy(&pt, dr); err != nil || !bytes.Equal(pt.Bytes(), plain) {
			t.Fatalf("size %d: DecryptReader.WriteTo differs (err %v)", size, err)
		}
	}
}

func TestIOTestReader(t *testing.T) {
	skipV1Writer(t)
	key := testKey("iotest", 0)
	for _, size := range []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 2*ChunkSize + 500} {
		plain := testPlaintext(size, 2)
		ct := encrypt(t, key, plain, nil)
		dr, _ := NewDecryptReader(key, bytes.NewReader(ct))
		if err := iotest.TestReader(dr, plain); err != nil {
			t.Errorf("DecryptReader size %d: %v", size, err)
		}
		er, _ := NewEncryptReader(key, bytes.NewReader(plain), nil)
		if err := iotest.TestReader(er, ct); err != nil {
			t.Errorf("EncryptReader size %d: %v", size, err)
		}
		ra, err := NewDecryptReaderAt(key, bytes.NewReader(ct), int64(len(ct)))
		if err != nil {
			t.Fatal(err)
		}
		if err := iotest.TestReader(io.NewSectionReader(ra, 0, ra.Size()), plain); err != nil {
			t.Errorf("ReaderAt size %d: %v", size, err)
		}
		if size > 0 {
			l, _ := SingleLayout(int64(len(ct)))
			rg, _ := l.WholeRange()
			rr, err := NewRangeReader(SingleKey(key), l, rg, bytes.NewReader(ct[rg.CipherOffset:rg.CipherOffset+rg.CipherLength]))
			if err != nil {
				t.Fatal(err)
			}
			if err := iotest.TestReader(rr, plain); err != nil {
				t.Errorf("RangeReader size %d: %v", size, err)
			}
		}
	}
}

func TestChecksumTrailer(t *testing.T) {
	skipV1Writer(t)
	key := testKey("sum", 0)
	plain := testPlaintext(ChunkSize+3, 3)
	sum := Checksum{Algorithm: ChecksumSHA256, Value: bytes.Repeat([]byte{0xab}, 32)}
	var sawLen int64 = -1
	opts := &EncryptOptions{Checksum: func(n int64) (Checksum, error) { sawLen = n; return sum, nil }}
	er, _ := NewEncryptReader(key, bytes.NewReader(plain), opts)
	ct, err := io.ReadAll(er)
	if err != nil {
		t.Fatal(err)
	}
	if sawLen != int64(len(plain)) {
		t.Fatalf("callback saw length %d", sawLen)
	}
	if w := encrypt(t, key, plain, opts); !bytes.Equal(w, ct) {
		t.Fatal("writer and reader disagree with a checksum")
	}
	dr, _ := NewDecryptReader(key, bytes.NewReader(ct))
	if _, err := io.ReadAll(dr); err != nil {
		t.Fatal(err)
	}
	tr := dr.Trailers()
	if len(tr) != 1 || tr[0].Checksum.Algorithm != ChecksumSHA256 || !bytes.Equal(tr[0].Checksum.Value, sum.Value) {
		t.Fatalf("trailer %+v", tr)
	}
	ra, _ := NewDecryptReaderAt(key, bytes.NewReader(ct), int64(len(ct)))
	if got := ra.Trailers()[0].Checksum; !bytes.Equal(got.Value, sum.Value) {
		t.Fatal("ReaderAt lost the checksum")
	}

	// A failing callback (a trailing checksum that did not match) stops the
	// stream without a trailer.
	boom := errors.New("checksum mismatch")
	er, _ = NewEncryptReader(key, bytes.NewReader(plain), &EncryptOptions{Checksum: func(int64) (Checksum, error) { return Checksum{}, boom }})
	partial, err := io.ReadAll(er)
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want the callback's error", err)
	}
	if _, err := io.ReadAll(must(NewDecryptReader(key, bytes.NewReader(partial)))); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("unfinished segment decrypted: %v", err)
	}
	w, _ := NewEncryptWriter(key, io.Discard, &EncryptOptions{Checksum: func(int64) (Checksum, error) { return Checksum{}, boom }})
	if err := w.Close(); !errors.Is(err, boom) {
		t.Fatalf("writer Close: %v", err)
	}
	// A malformed checksum is refused.
	bad := &EncryptOptions{Checksum: func(int64) (Checksum, error) {
		return Checksum{Algorithm: ChecksumCRC32, Value: []byte{1, 2}}, nil
	}}
	er, _ = NewEncryptReader(key, bytes.NewReader(plain), bad)
	if _, err := io.ReadAll(er); err == nil {
		t.Fatal("short CRC32 accepted")
	}
}

func must(r *DecryptReader, err error) *DecryptReader {
	if err != nil {
		panic(err)
	}
	return r
}

func TestStickyErrors(t *testing.T) {
	skipV1Writer(t)
	key := testKey("sticky", 0)
	boom := errors.New("source failed")
	er, _ := NewEncryptReader(key, io.MultiReader(bytes.NewReader(make([]byte, 100)), iotest.ErrReader(boom)), nil)
	for i := 0; i < 3; i++ {
		if _, err := er.Read(make([]byte, 10)); !errors.Is(err, boom) {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	ct := encrypt(t, key, testPlaintext(3*ChunkSize, 4), nil)
	ct[10] ^= 1
	dr, _ := NewDecryptReader(key, bytes.NewReader(ct))
	for i := 0; i < 3; i++ {
		if n, err := dr.Read(make([]byte, 10)); n != 0 || !errors.Is(err, ErrAuthentication) {
			t.Fatalf("read %d: %d, %v", i, n, err)
		}
	}
	fw := &failWriter{after: 1}
	w, _ := NewEncryptWriter(key, fw, nil)
	_, err := w.Write(make([]byte, 3*ChunkSize))
	if err == nil {
		t.Fatal("write error lost")
	}
	if _, err2 := w.Write([]byte{1}); err2 != err {
		t.Fatalf("not sticky: %v", err2)
	}
	if err3 := w.Close(); err3 != err {
		t.Fatalf("Close: %v", err3)
	}
	w, _ = NewEncryptWriter(key, io.Discard, nil)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := w.Write([]byte{1}); err == nil {
		t.Fatal("write after Close accepted")
	}
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after == 0 {
		return 0, errors.New("sink failed")
	}
	f.after--
	return len(p), nil
}

func TestBadKeys(t *testing.T) {
	if _, err := NewEncryptReader(make([]byte, 16), nil, nil); err == nil {
		t.Error("16-byte key accepted")
	}
	if _, err := NewDecryptReader(nil, nil); err == nil {
		t.Error("nil key accepted")
	}
}
