package stream

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"io"
	"runtime"
	"testing"
	"time"
)

// The benchmarks compare the streaming format with raw AES-256-GCM Seal and
// Open over the same 64 KiB chunks, in the same run, so that the ratio
// (format MB/s ÷ raw MB/s) is meaningful on a noisy machine.

const benchSize = 1 << 20

func benchAEAD(b testing.TB) cipher.AEAD {
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
// reader or writer, in version 1 and, where it exists, version 2, and
// reports the throughputs and the ratios (format ÷ raw) of both versions and
// of version 2 to version 1, from wall time and (cpu-*) from the thread's
// CPU time. Each version's raw baseline opens that version's own stored
// chunks, so that neither version finds its data warmed in the cache by
// the other's baseline. Interleaving keeps the ratios comparable on a
// shared machine; the order rotates between iterations.
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
	skeys := testSaltedKeys("bench")
	ct2, salt2 := encryptV2(b, skeys, 0, plain, nil)
	obj2, sizes2, _ := encryptPartsV2(b, "bench", parts)
	l2, _ := SingleLayoutV2(int64(len(ct2)))
	rg2, _ := l2.WholeRange()
	lm2, _ := MultipartLayoutV2(sizes2)
	block2, _ := aes.NewCipher(skeys(0, &salt2))
	a2, _ := cipher.NewGCM(block2)

	var nonce [NonceSize]byte
	scratch := make([]byte, 0, EncryptedChunkSizeV2)
	rawSeal := func() error {
		for i := 0; i < benchSize; i += ChunkSize {
			setNonce(&nonce, uint64(i/ChunkSize), flagData)
			scratch = a.Seal(scratch[:0], nonce[:], plain[i:i+ChunkSize], nil)
		}
		return nil
	}
	// rawOpen opens version 1's stored chunks, rawOpenV2 version 2's
	// (nonce and additional data as stored), each into a scratch buffer.
	rawOpen := func() error {
		for i := 0; i < benchSize/ChunkSize; i++ {
			setNonce(&nonce, uint64(i), flagData)
			var err error
			if scratch, err = a.Open(scratch[:0], nonce[:], ct[i*EncryptedChunkSize:(i+1)*EncryptedChunkSize], nil); err != nil {
				return err
			}
		}
		return nil
	}
	var aad [aadV2Size]byte
	rawOpenV2 := func() error {
		for i := 0; i < benchSize/ChunkSize; i++ {
			c := ct2[i*EncryptedChunkSizeV2 : (i+1)*EncryptedChunkSizeV2]
			binary.BigEndian.PutUint64(aad[:8], uint64(i))
			var err error
			if scratch, err = a2.Open(scratch[:0], c[SaltSize:inPlaceOffset], c[inPlaceOffset:], aad[:]); err != nil {
				return err
			}
		}
		return nil
	}
	// rawReadOpen adds to the raw opens the one copy any streaming reader
	// makes: reading each chunk from the source into a buffer.
	rsrc := bytes.NewReader(nil)
	inbuf := make([]byte, EncryptedChunkSizeV2)
	rawReadOpen := func() error {
		rsrc.Reset(ct)
		for i := 0; i < benchSize/ChunkSize; i++ {
			c := inbuf[:EncryptedChunkSize]
			if _, err := io.ReadFull(rsrc, c); err != nil {
				return err
			}
			setNonce(&nonce, uint64(i), flagData)
			if _, err := a.Open(c[:0], nonce[:], c, nil); err != nil {
				return err
			}
		}
		return nil
	}
	rawReadOpenV2 := func() error {
		rsrc.Reset(ct2)
		for i := 0; i < benchSize/ChunkSize; i++ {
			c := inbuf[:EncryptedChunkSizeV2]
			if _, err := io.ReadFull(rsrc, c); err != nil {
				return err
			}
			binary.BigEndian.PutUint64(aad[:8], uint64(i))
			if _, err := a2.Open(c[inPlaceOffset:inPlaceOffset], c[SaltSize:inPlaceOffset], c[inPlaceOffset:], aad[:]); err != nil {
				return err
			}
		}
		return nil
	}
	src := bytes.NewReader(nil)
	drain := func(r io.Reader, err error) error {
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, r)
		return err
	}
	decryptV1 := func() error {
		src.Reset(ct)
		r, err := NewDecryptReader(key, src)
		return drain(r, err)
	}
	decryptV2 := func() error {
		src.Reset(ct2)
		r, err := NewDecryptReaderV2(skeys, l2, src)
		return drain(r, err)
	}
	for _, bc := range []struct {
		name     string
		raw1, v1 func() error
		raw2, v2 func() error // nil: no version 2 counterpart
	}{
		{"EncryptReader", rawSeal, func() error {
			src.Reset(plain)
			r, err := NewEncryptReader(key, src, nil)
			return drain(r, err)
		}, rawSeal, func() error {
			src.Reset(plain)
			r, err := NewEncryptReaderV2(skeys, 0, src, nil)
			return drain(r, err)
		}},
		{"EncryptWriter", rawSeal, func() error {
			w, _ := NewEncryptWriter(key, io.Discard, nil)
			if _, err := w.Write(plain); err != nil {
				return err
			}
			return w.Close()
		}, nil, nil},
		{"DecryptReader", rawOpen, decryptV1, rawOpenV2, decryptV2},
		{"DecryptReaderVsReadAndOpen", rawReadOpen, decryptV1, rawReadOpenV2, decryptV2},
		{"MultipartDecryptReader", rawOpen, func() error {
			src.Reset(obj)
			r, err := NewMultipartDecryptReader(keys, src)
			return drain(r, err)
		}, rawOpenV2, func() error {
			src.Reset(obj2)
			r, err := NewDecryptReaderV2(skeys, lm2, src)
			return drain(r, err)
		}},
		{"MultipartNoLayout", rawOpen, func() error {
			src.Reset(obj)
			r, err := NewMultipartDecryptReader(keys, src)
			return drain(r, err)
		}, rawOpenV2, func() error {
			src.Reset(obj2)
			return drain(NewMultipartScanReaderV2(skeys, src), nil)
		}},
		{"RangeReader", rawOpen, func() error {
			src.Reset(ct)
			r, err := NewRangeReader(SingleKey(key), l, rg, src)
			return drain(r, err)
		}, rawOpenV2, func() error {
			src.Reset(ct2)
			r, err := NewRangeReaderV2(skeys, l2, rg2, src)
			return drain(r, err)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			fns := []func() error{bc.raw1, bc.v1, bc.raw2, bc.v2}
			if bc.v2 == nil {
				fns = fns[:2]
			}
			// Wall time, and the thread's CPU time, which waiting for a
			// CPU on a loaded machine does not inflate.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			wall := make([]time.Duration, len(fns))
			cpu := make([]time.Duration, len(fns))
			_, haveCPU := threadCPU()
			b.SetBytes(int64(len(fns)) * benchSize)
			iter := 0
			for b.Loop() {
				// Rotate the pairs (raw, format) of the versions, each
				// pair in its order.
				for k := 0; k < len(fns); k += 2 {
					j := (k + 2*iter) % len(fns)
					for _, f := range []int{j, j + 1} {
						c0, _ := threadCPU()
						t0 := time.Now()
						if err := fns[f](); err != nil {
							b.Fatal(err)
						}
						wall[f] += time.Since(t0)
						c1, _ := threadCPU()
						cpu[f] += c1 - c0
					}
				}
				iter++
			}
			ratio := func(t []time.Duration, i, j int) float64 { return t[i].Seconds() / t[j].Seconds() }
			mb := float64(b.N) * benchSize / 1e6
			b.ReportMetric(mb/wall[0].Seconds(), "raw-MB/s")
			b.ReportMetric(mb/wall[1].Seconds(), "format-MB/s")
			b.ReportMetric(ratio(wall, 0, 1), "ratio")
			if haveCPU {
				b.ReportMetric(ratio(cpu, 0, 1), "cpu-ratio")
			}
			if len(fns) == 4 {
				b.ReportMetric(mb/wall[3].Seconds(), "v2-MB/s")
				b.ReportMetric(ratio(wall, 2, 3), "ratio-v2")
				b.ReportMetric(ratio(wall, 1, 3), "v2/v1")
				if haveCPU {
					b.ReportMetric(ratio(cpu, 2, 3), "cpu-ratio-v2")
					b.ReportMetric(ratio(cpu, 1, 3), "cpu-v2/v1")
				}
			}
		})
	}
}
