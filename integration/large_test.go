package integration

import (
	"crypto/sha256"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/integration/testbed"
)

// patternReader yields n deterministic pseudo-random bytes without holding
// them, so multi-GiB objects cost the test no memory.
type patternReader struct {
	n, off int64
	x      uint64
}

func newPattern(n int64, seed uint64) *patternReader { return &patternReader{n: n, x: seed | 1} }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	m := int(min(int64(len(b)), p.n-p.off))
	for i := 0; i < m; i++ {
		if i%8 == 0 {
			p.x ^= p.x << 13
			p.x ^= p.x >> 7
			p.x ^= p.x << 17
		}
		b[i] = byte(p.x >> (8 * (i % 8)))
	}
	p.off += int64(m)
	return m, nil
}

// rssSampler records the largest resident set of a process.
type rssSampler struct {
	mu   sync.Mutex // protects peak
	peak int64
	stop chan struct{}
	done chan struct{}
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if kb := vmRSS(pid); kb > 0 {
				s.mu.Lock()
				s.peak = max(s.peak, kb)
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) Peak() int64 {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak << 10
}

func vmRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// TestLargeObjectsMemory moves a 2 GiB object (one PUT, one GET) and a
// 4 GiB multipart object (transfer manager, 4 parts at a time) through
// s3seal in envelope mode and checks that s3seal's resident memory stays
// below 64 MiB. It needs 4 GiB of disk for MinIO and a minute or two, so
// it runs when S3SEAL_LARGE=1 (integration/run.sh sets it unless
// S3SEAL_SHORT=1).
func TestLargeObjectsMemory(t *testing.T) {
	testbed.Require(t)
	if os.Getenv("S3SEAL_LARGE") != "1" {
		t.Skip("moves 6 GiB: set S3SEAL_LARGE=1 (integration/run.sh does unless S3SEAL_SHORT=1)")
	}
	up := shared.minio
	p, _ := startEnvelopeProxy(t, up, map[string]string{"S3SEAL_LOG_LEVEL": "warn"})
	c := p.Client(t)
	bucket := newBucket(t, up)
	const limit = 64 << 20
	check := func(what string, n int64, put func(io.Reader) error, key string) {
		rss := sampleRSS(p.PID())
		start := time.Now()
		must(t, put(newPattern(n, uint64(n))), what)
		putTime := time.Since(start)
		want := sha256.New()
		_, _ = io.Copy(want, newPattern(n, uint64(n)))
		out, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		must(t, err, "GetObject "+key)
		got := sha256.New()
		start = time.Now()
		m, err := io.Copy(got, out.Body)
		out.Body.Close()
		must(t, err, "read "+key)
		getTime := time.Since(start)
		peak := rss.Peak()
		t.Logf("%s: %d MiB, PUT %.0f MB/s, GET %.0f MB/s, s3seal peak RSS %.1f MiB", what, n>>20,
			float64(n)/putTime.Seconds()/1e6, float64(n)/getTime.Seconds()/1e6, float64(peak)/(1<<20))
		if m != n || string(got.Sum(nil)) != string(want.Sum(nil)) {
			t.Errorf("%s: read back %d bytes that differ", what, m)
		}
		if peak > limit {
			t.Errorf("%s: s3seal peak RSS %d MiB, want below %d MiB", what, peak>>20, limit>>20)
		}
	}
	const two, four = 2 << 30, 4 << 30
	check("2 GiB single PUT", two, func(r io.Reader) error {
		_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("large/2g"), Body: r, ContentLength: aws.Int64(two)})
		return err
	}, "large/2g")
	// Keep the store's disk use to one large object at a time.
	_, err := c.DeleteObject(ctx(t), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("large/2g")})
	must(t, err, "DeleteObject")
	tm := transfermanager.New(c, func(o *transfermanager.Options) {
		o.PartSizeBytes = 16 << 20
		o.Concurrency = 4
	})
	check("4 GiB multipart", four, func(r io.Reader) error {
		_, err := tm.UploadObject(ctx(t), &transfermanager.UploadObjectInput{Bucket: aws.String(bucket), Key: aws.String("large/4g"), Body: r})
		return err
	}, "large/4g")
}
