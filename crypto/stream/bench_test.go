package stream

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"io"
	"testing"
	"time"
)

// The benchmarks compare the streaming format with raw AES-256-GCM Seal and
// Open over the same 64 KiB chunks, in the same run, so that the ratio
// (format MB/s ÷ raw MB/s) is meaningful on a noisy machine.

const benchSize = 1 << 20

func benchAEAD(b *testing.B) cipher.AEAD {
	block, err := aes.NewCipher(testKey("bench", 0))
	if err != nil {
		b.Fatal(err)
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	return a
}

func BenchmarkRawSeal(b *testing.B) {
	a := benchAEAD(b)
	plain := testPlaintext(benchSize, 1)
	out := make([]byte, 0, EncryptedChunkSize)
	var nonce [NonceSize]byte
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		for i := 0; i < benchSize; i += ChunkSize {
			setNonce(&nonce, uint64(i/ChunkSize), flagData)
			out = a.Seal(out[:0], nonce[:], plain[i:i+ChunkSize], nil)
		}
	}
}

func BenchmarkRawOpen(b *testing.B) {
	a := benchAEAD(b)
	plain := testPlaintext(benchSize, 1)
	var nonce [NonceSize]byte
	var ct []byte
	for i := 0; i < benchSize; i += ChunkSize {
		setNonce(&nonce, uint64(i/ChunkSize), flagData)
		ct = a.Seal(ct, nonce[:], plain[i:i+ChunkSize], nil)
	}
	out := make([]byte, 0, ChunkSize)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		for i := 0; i < len(ct); i += EncryptedChunkSize {
			setNonce(&nonce, uint64(i/EncryptedChunkSize), flagData)
			var err error
			if out, err = a.Open(out[:0], nonce[:], ct[i:i+EncryptedChunkSize], nil); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkEncryptReader(b *testing.B) {
	key := testKey("bench", 0)
	plain := testPlaintext(benchSize, 1)
	src := bytes.NewReader(plain)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		src.Reset(plain)
		r, err := NewEncryptReader(key, src, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncryptWriter(b *testing.B) {
	key := testKey("bench", 0)
	plain := testPlaintext(benchSize, 1)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		w, err := NewEncryptWriter(key, io.Discard, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write(plain); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecryptReader(b *testing.B) {
	key := testKey("bench", 0)
	ct := encrypt(b, key, testPlaintext(benchSize, 1), nil)
	src := bytes.NewReader(ct)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		src.Reset(ct)
		r, err := NewDecryptReader(key, src)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMultipartDecryptReader(b *testing.B) {
	parts := [][]byte{testPlaintext(benchSize/2, 1), testPlaintext(benchSize/2, 2)}
	obj, _ := encryptParts(b, "bench", parts)
	src := bytes.NewReader(obj)
	keys := testKeys("bench")
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		src.Reset(obj)
		r, err := NewMultipartDecryptReader(keys, src)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRangeReader(b *testing.B) {
	key := testKey("bench", 0)
	ct := encrypt(b, key, testPlaintext(benchSize, 1), nil)
	l, _ := SingleLayout(int64(len(ct)))
	rg, _ := l.WholeRange()
	src := bytes.NewReader(ct)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		src.Reset(ct)
		r, err := NewRangeReader(SingleKey(key), l, rg, src)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFormatVsRaw interleaves, in every iteration, raw AES-256-GCM over
// the 64 KiB chunks of a 1 MiB object and the same work through the format's
// reader or writer, and reports both throughputs and their ratio
// (format ÷ raw). Interleaving keeps the ratio stable on a shared machine.
func BenchmarkFormatVsRaw(b *testing.B) {
	key := testKey("bench", 0)
	a := benchAEAD(b)
	plain := testPlaintext(benchSize, 1)
	ct := encrypt(b, key, plain, nil)
	parts := [][]byte{plain[:benchSize/2], plain[benchSize/2:]}
	obj, _ := encryptParts(b, "bench", parts)
	keys := func(n uint32) []byte { return testKey("bench", n) }
	l, _ := SingleLayout(int64(len(ct)))
	rg, _ := l.WholeRange()

	var nonce [NonceSize]byte
	scratch := make([]byte, 0, EncryptedChunkSize)
	rawSeal := func() {
		for i := 0; i < benchSize; i += ChunkSize {
			setNonce(&nonce, uint64(i/ChunkSize), flagData)
			scratch = a.Seal(scratch[:0], nonce[:], plain[i:i+ChunkSize], nil)
		}
	}
	rawOpen := func() {
		for i := 0; i < benchSize/ChunkSize; i++ {
			setNonce(&nonce, uint64(i), flagData)
			var err error
			if scratch, err = a.Open(scratch[:0], nonce[:], ct[i*EncryptedChunkSize:(i+1)*EncryptedChunkSize], nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	// rawReadOpen adds to rawOpen the one copy any streaming reader makes:
	// reading each chunk from the source into a buffer.
	rsrc := bytes.NewReader(nil)
	inbuf := make([]byte, EncryptedChunkSize)
	rawReadOpen := func() {
		rsrc.Reset(ct)
		for i := 0; i < benchSize/ChunkSize; i++ {
			if _, err := io.ReadFull(rsrc, inbuf); err != nil {
				b.Fatal(err)
			}
			setNonce(&nonce, uint64(i), flagData)
			var err error
			if scratch, err = a.Open(inbuf[:0], nonce[:], inbuf, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	src := bytes.NewReader(nil)
	for _, bc := range []struct {
		name   string
		raw    func()
		format func() error
	}{
		{"EncryptReader", rawSeal, func() error {
			src.Reset(plain)
			r, _ := NewEncryptReader(key, src, nil)
			_, err := io.Copy(io.Discard, r)
			return err
		}},
		{"EncryptWriter", rawSeal, func() error {
			w, _ := NewEncryptWriter(key, io.Discard, nil)
			if _, err := w.Write(plain); err != nil {
				return err
			}
			return w.Close()
		}},
		{"DecryptReader", rawOpen, func() error {
			src.Reset(ct)
			r, _ := NewDecryptReader(key, src)
			_, err := io.Copy(io.Discard, r)
			return err
		}},
		{"DecryptReaderVsReadAndOpen", rawReadOpen, func() error {
			src.Reset(ct)
			r, _ := NewDecryptReader(key, src)
			_, err := io.Copy(io.Discard, r)
			return err
		}},
		{"MultipartDecryptReader", rawOpen, func() error {
			src.Reset(obj)
			r, _ := NewMultipartDecryptReader(keys, src)
			_, err := io.Copy(io.Discard, r)
			return err
		}},
		{"RangeReader", rawOpen, func() error {
			src.Reset(ct)
			r, _ := NewRangeReader(SingleKey(key), l, rg, src)
			_, err := io.Copy(io.Discard, r)
			return err
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var rawT, fmtT time.Duration
			b.SetBytes(2 * benchSize)
			for b.Loop() {
				t0 := time.Now()
				bc.raw()
				t1 := time.Now()
				if err := bc.format(); err != nil {
					b.Fatal(err)
				}
				rawT += t1.Sub(t0)
				fmtT += time.Since(t1)
			}
			mb := float64(b.N) * benchSize / 1e6
			b.ReportMetric(mb/rawT.Seconds(), "raw-MB/s")
			b.ReportMetric(mb/fmtT.Seconds(), "format-MB/s")
			b.ReportMetric(rawT.Seconds()/fmtT.Seconds(), "ratio")
		})
	}
}
