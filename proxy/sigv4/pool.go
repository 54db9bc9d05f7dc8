package sigv4

import (
	"bufio"
	"io"
	"math/bits"
	"sync"
)

// Chunk buffers come in power-of-two classes from 64 KiB to 16 MiB; larger
// requests (a MaxChunkSize raised above 16 MiB) are allocated and dropped.
const (
	minBufShift = 16 // 64 KiB
	maxBufShift = 24 // 16 MiB
	lineBufSize = 4096
)

// The pools are process-wide caches of reusable memory, like the buffer
// pools of net/http; they hold no state that affects behaviour.
var (
	chunkPools [maxBufShift - minBufShift + 1]sync.Pool
	linePool   = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, lineBufSize) }}
)

// bufClass returns the pool index for a buffer of n bytes, or -1 when n is
// above the largest class.
func bufClass(n int) int {
	if n <= 1<<minBufShift {
		return 0
	}
	shift := bits.Len(uint(n - 1))
	if shift > maxBufShift {
		return -1
	}
	return shift - minBufShift
}

// getBuf returns a buffer of length n with capacity of its class.
func getBuf(n int) []byte {
	c := bufClass(n)
	if c < 0 {
		return make([]byte, n)
	}
	if p, ok := chunkPools[c].Get().(*[]byte); ok {
		return (*p)[:n]
	}
	return make([]byte, n, 1<<(c+minBufShift))
}

// putBuf returns b to its pool; buffers not of a class size are dropped.
func putBuf(b []byte) {
	c := bufClass(cap(b))
	if c < 0 || cap(b) != 1<<(c+minBufShift) {
		return
	}
	b = b[:0]
	chunkPools[c].Put(&b)
}

// getLineReader returns a pooled 4 KiB bufio.Reader reading r. Lines longer
// than the buffer fail with bufio.ErrBufferFull, which bounds every framing
// line the decoders accept.
func getLineReader(r io.Reader) *bufio.Reader {
	br := linePool.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

func putLineReader(br *bufio.Reader) {
	br.Reset(nil)
	linePool.Put(br)
}
