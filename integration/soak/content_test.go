package soak

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestContentSeekable(t *testing.T) {
	const size = 3*16 + 7
	whole := Content(42, 0, size)
	for off := int64(0); off < size; off++ {
		if got := Content(42, off, size-off); !bytes.Equal(got, whole[off:]) {
			t.Fatalf("Content at %d differs from the whole", off)
		}
	}
	b := NewBody(42, size)
	if err := iotest.TestReader(b, whole); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(Content(43, 0, size), whole) {
		t.Fatal("two seeds give the same content")
	}
}

func TestCheck(t *testing.T) {
	want := Content(7, 100, 1000)
	if _, err := Check(bytes.NewReader(want), 7, 100, 1000); err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), want...)
	bad[500] ^= 1
	var mm *MismatchError
	if _, err := Check(bytes.NewReader(bad), 7, 100, 1000); !errors.As(err, &mm) || mm.Offset != 600 {
		t.Fatalf("flipped byte: %v", err)
	}
	if _, err := Check(bytes.NewReader(want[:999]), 7, 100, 1000); !errors.As(err, &mm) {
		t.Fatalf("short read: %v", err)
	}
	if _, err := Check(bytes.NewReader(append(want, 0)), 7, 100, 1000); !errors.As(err, &mm) {
		t.Fatalf("long read: %v", err)
	}
	if _, err := Check(iotest.ErrReader(io.ErrUnexpectedEOF), 7, 0, 1); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read error: %v", err)
	}
}
