package stream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"
)

var partLayouts = [][]int{
	{0},
	{1},
	{ChunkSize},
	{2 * ChunkSize, 2 * ChunkSize, 100},
	{ChunkSize, ChunkSize, ChunkSize, 0},
	{3 * ChunkSize, ChunkSize + 1},
	// Irregular: non-final parts that are not multiples of the chunk size.
	{ChunkSize + 17, 5, ChunkSize - 1, 2*ChunkSize + 500},
	{100, 0, 200},
	{17, 16, 15, 1},
}

func makeParts(sizes []int) (parts [][]byte, all []byte) {
	for i, n := range sizes {
		p := testPlaintext(n, byte(10+i))
		parts = append(parts, p)
		all = append(all, p...)
	}
	return parts, all
}

func TestMultipartDecryptReader(t *testing.T) {
	for _, sizes := range partLayouts {
		t.Run(fmt.Sprint(sizes), func(t *testing.T) {
			parts, plain := makeParts(sizes)
			obj, _ := encryptParts(t, "mp", parts)
			for _, step := range []int{1, 100, ChunkSize, 1 << 20} {
				dr, err := NewMultipartDecryptReader(testKeys("mp"), bytes.NewReader(obj))
				if err != nil {
					t.Fatal(err)
				}
				got, err := readAllStep(dr, step)
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("step %d: err %v, equal %v", step, err, bytes.Equal(got, plain))
				}
				tr := dr.Trailers()
				if len(tr) != len(sizes) {
					t.Fatalf("%d trailers for %d parts", len(tr), len(sizes))
				}
				for i, n := range sizes {
					if tr[i].Length != int64(n) {
						t.Fatalf("part %d: trailer length %d, want %d", i+1, tr[i].Length, n)
					}
				}
			}
			dr, _ := NewMultipartDecryptReader(testKeys("mp"), iotest.HalfReader(bytes.NewReader(obj)))
			if err := iotest.TestReader(dr, plain); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A multipart object is not a single-segment one and vice versa.
func TestSingleVersusMultipart(t *testing.T) {
	plain := testPlaintext(1000, 5)
	single := encrypt(t, testKey("sv", 0), plain, nil)
	dr, _ := NewMultipartDecryptReader(testKeys("sv"), bytes.NewReader(single))
	if _, err := io.ReadAll(dr); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("segment 0 read as part 1: %v", err)
	}
	multi, _ := encryptParts(t, "sv", [][]byte{plain})
	dr, _ = NewDecryptReader(testKey("sv", 0), bytes.NewReader(multi))
	if _, err := io.ReadAll(dr); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("part 1 read as segment 0: %v", err)
	}
	// Two single-PUT segments concatenated are not one object.
	dr, _ = NewDecryptReader(testKey("sv", 0), bytes.NewReader(append(append([]byte{}, single...), single...)))
	if _, err := io.ReadAll(dr); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("two segments read as one: %v", err)
	}
}

func TestLayouts(t *testing.T) {
	for _, sizes := range partLayouts {
		parts, plain := makeParts(sizes)
		obj, csizes := encryptParts(t, "lay", parts)
		l, err := MultipartLayout(csizes)
		if err != nil {
			t.Fatal(err)
		}
		if l.PlaintextSize() != int64(len(plain)) || l.CiphertextSize() != int64(len(obj)) || l.Segments() != len(sizes) || !l.Multipart() {
			t.Fatalf("%v: layout sizes %d/%d", sizes, l.PlaintextSize(), l.CiphertextSize())
		}
		ra, err := NewReaderAt(testKeys("lay"), l, bytes.NewReader(obj))
		if err != nil {
			t.Fatal(err)
		}
		if err := iotest.TestReader(io.NewSectionReader(ra, 0, ra.Size()), plain); err != nil {
			t.Fatalf("%v: %v", sizes, err)
		}
		checkAllRanges(t, testKeys("lay"), l, obj, plain)
	}
	// Uniform layouts, as upload managers produce them.
	parts, plain := makeParts([]int{2 * ChunkSize, 2 * ChunkSize, 2 * ChunkSize, 7})
	obj, csizes := encryptParts(t, "uni", parts)
	l, err := UniformMultipartLayout(int64(len(obj)), 4, csizes[0])
	if err != nil {
		t.Fatal(err)
	}
	if l.Segment(3).CipherSize != csizes[3] || l.PlaintextSize() != int64(len(plain)) {
		t.Fatal("uniform layout wrong")
	}
	if n, err := MultipartPlaintextSize(int64(len(obj)), 4); err != nil || n != int64(len(plain)) {
		t.Fatalf("MultipartPlaintextSize %d, %v", n, err)
	}
	checkAllRanges(t, testKeys("uni"), l, obj, plain)
	if _, err := UniformMultipartLayout(int64(len(obj)), 5, csizes[0]); err == nil {
		t.Fatal("impossible uniform layout accepted")
	}
	if _, err := MultipartLayout([]int64{100, 50}); err == nil {
		t.Fatal("invalid part size accepted")
	}
	if _, err := MultipartLayout(nil); err == nil {
		t.Fatal("no parts accepted")
	}
}

func TestSingleRanges(t *testing.T) {
	key := testKey("range", 0)
	for _, size := range []int{1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3*ChunkSize + 100} {
		plain := testPlaintext(size, 6)
		ct := encrypt(t, key, plain, nil)
		l, err := SingleLayout(int64(len(ct)))
		if err != nil {
			t.Fatal(err)
		}
		checkAllRanges(t, SingleKey(key), l, ct, plain)
	}
}

// boundaryOffsets returns the offsets at every chunk and segment boundary
// ±1 within [0, size].
func boundaryOffsets(l *Layout) []int64 {
	size := l.PlaintextSize()
	set := map[int64]bool{}
	add := func(b int64) {
		for d := int64(-1); d <= 1; d++ {
			if o := b + d; o >= 0 && o <= size {
				set[o] = true
			}
		}
	}
	for i := 0; i < l.Segments(); i++ {
		s := l.Segment(i)
		for c := int64(0); c <= chunks(s.PlainSize); c++ {
			add(s.PlainOffset + min(c*ChunkSize, s.PlainSize))
		}
	}
	var out []int64
	for o := range set {
		out = append(out, o)
	}
	return out
}

// checkAllRanges reads every range between boundary offsets through
// RangeReader and checks the plan's arithmetic.
func checkAllRanges(t *testing.T, keys KeyFunc, l *Layout, obj, plain []byte) {
	t.Helper()
	checkRanges(t, func(rg Range, src io.Reader) (*RangeReader, error) { return NewRangeReader(keys, l, rg, src) }, l, obj, plain)
}

// checkRanges is checkAllRanges with the reader made by open.
func checkRanges(t *testing.T, open func(Range, io.Reader) (*RangeReader, error), l *Layout, obj, plain []byte) {
	t.Helper()
	offs := boundaryOffsets(l)
	for _, a := range offs {
		for _, b := range offs {
			if b <= a {
				continue
			}
			rg, err := l.Range(a, b-a)
			if err != nil {
				t.Fatalf("Range(%d, %d): %v", a, b-a, err)
			}
			if rg.CipherOffset < 0 || rg.CipherOffset+rg.CipherLength > int64(len(obj)) {
				t.Fatalf("Range(%d, %d): ciphertext range out of bounds", a, b-a)
			}
			first := l.Segment(rg.FirstSegment)
			if (rg.CipherOffset-first.CipherOffset)%l.f.encChunk != 0 {
				t.Fatalf("Range(%d, %d): ciphertext offset not chunk aligned", a, b-a)
			}
			if rg.Skip != a-first.PlainOffset-rg.FirstChunk*ChunkSize || rg.Skip < 0 || rg.Skip >= ChunkSize {
				t.Fatalf("Range(%d, %d): skip %d", a, b-a, rg.Skip)
			}
			src := bytes.NewReader(obj[rg.CipherOffset : rg.CipherOffset+rg.CipherLength])
			rr, err := open(rg, src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rr)
			if err != nil || !bytes.Equal(got, plain[a:b]) {
				t.Fatalf("Range(%d, %d): err %v, got %d bytes, equal %v", a, b-a, err, len(got), bytes.Equal(got, plain[a:b]))
			}
			if src.Len() != 0 {
				t.Fatalf("Range(%d, %d): %d fetched bytes unused", a, b-a, src.Len())
			}
		}
	}
	size := l.PlaintextSize()
	for _, bad := range [][2]int64{{-1, 1}, {0, 0}, {size, 1}, {0, size + 1}} {
		if _, err := l.Range(bad[0], bad[1]); err == nil {
			t.Fatalf("Range(%d, %d) accepted for size %d", bad[0], bad[1], size)
		}
	}
}

func TestReaderAtConcurrent(t *testing.T) {
	parts, plain := makeParts([]int{3 * ChunkSize, ChunkSize + 77, 5})
	obj, cs := encryptParts(t, "conc", parts)
	l, _ := MultipartLayout(cs)
	ra, err := NewReaderAt(testKeys("conc"), l, bytes.NewReader(obj))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func(g int) {
			buf := make([]byte, 1000)
			for i := 0; i < 200; i++ {
				off := int64((g*7919 + i*104729) % len(plain))
				n, err := ra.ReadAt(buf, off)
				if err != nil && err != io.EOF {
					done <- err
					return
				}
				if !bytes.Equal(buf[:n], plain[off:off+int64(n)]) {
					done <- fmt.Errorf("ReadAt(%d) returned wrong bytes", off)
					return
				}
			}
			done <- nil
		}(g)
	}
	for g := 0; g < 4; g++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
