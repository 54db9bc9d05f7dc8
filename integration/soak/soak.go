// Package soak drives a mixed S3 workload against one endpoint for a fixed
// time at a fixed concurrency and checks every byte it reads back.
//
// # Workload
//
// Each worker owns the key prefix "w<N>/" of the bucket and keeps, in
// memory, the seed and size of every object it wrote there; object content
// is generated from the seed (see [Content]), so reads of any size and any
// range are verified without holding objects in memory. Operations, drawn
// at random: PutObject (sizes from 0 bytes to Config.MaxSize), multipart
// uploads, GetObject of whole objects and of ranges, HeadObject,
// ListObjectsV2 of the worker's prefix (keys and sizes must match what the
// worker wrote), CopyObject, and DeleteObject (a HEAD must then answer 404).
//
// # Measurements
//
// Every failed operation counts as an error and every wrong byte, length,
// size or listing as a mismatch. Every Config.SampleEvery the workers are
// paused between operations and Config.Sample is called, so that goroutine
// and memory samples of the server measure what it keeps, not what it is
// busy with.
//
// # Contracts
//
// Run ends at Config.Duration or when ctx ends, whichever is first, and
// returns after every worker has stopped. It never deletes objects it did
// not write and leaves the objects it wrote in place.
package soak

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Config configures Run. Zero values mean the defaults.
type Config struct {
	// Client is an S3 client of the endpoint under test. Required.
	Client *s3.Client
	// Bucket exists and is used only by this run. Required.
	Bucket string
	// Concurrency is the number of workers. Default 8.
	Concurrency int
	// Duration is how long the workload runs. Default 2 minutes.
	Duration time.Duration
	// MaxSize is the largest object. Default 64 MiB.
	MaxSize int64
	// PartSize is the size of every multipart part but the last. Default
	// 5 MiB.
	PartSize int64
	// MaxObjects bounds the objects a worker keeps before it deletes.
	// Default 40.
	MaxObjects int
	// SampleEvery is the sampling interval. Default 10 seconds.
	SampleEvery time.Duration
	// Sample reads the server's gauges while the workers are paused; nil
	// records no gauges.
	Sample func(context.Context) (Gauges, error)
	// OpTimeout bounds one operation. Default 2 minutes.
	OpTimeout time.Duration
	// Seed makes the run's choices reproducible; 0 picks one at random.
	Seed uint64
	// Logf receives progress lines; nil discards them.
	Logf func(format string, args ...any)
}

func (c Config) withDefaults() Config {
	if c.Concurrency <= 0 {
		c.Concurrency = 8
	}
	if c.Duration <= 0 {
		c.Duration = 2 * time.Minute
	}
	if c.MaxSize <= 0 {
		c.MaxSize = 64 << 20
	}
	if c.PartSize <= 0 {
		c.PartSize = 5 << 20
	}
	if c.MaxObjects <= 0 {
		c.MaxObjects = 40
	}
	if c.SampleEvery <= 0 {
		c.SampleEvery = 10 * time.Second
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = 2 * time.Minute
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64() | 1
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return c
}

// Gauges are the server-side figures a sample records.
type Gauges struct {
	// Goroutines is the server's goroutine count; PoolGoroutines of them
	// serve keep-alive connections, client or upstream, which come and go
	// with the connection pools' sizes rather than with leaks.
	Goroutines, PoolGoroutines float64
	// RSS is the resident memory; Retained is heap memory the Go runtime
	// has freed but not yet returned to the system (heap idle less heap
	// released), which it gives back gradually. Bytes.
	RSS, Retained float64
	// HeapInuse is the Go heap in use, bytes.
	HeapInuse float64
}

// Sample is the state of a run at one moment.
type Sample struct {
	At time.Duration // since the run started
	Gauges
	Ops, Errors, Mismatches int64
}

// Report is the outcome of a run.
type Report struct {
	Seed        uint64
	Concurrency int
	Duration    time.Duration
	// Ops counts completed operations by name, Errors failed ones.
	Ops, Errors map[string]int64
	Mismatches  int64
	// BytesWritten and BytesRead count object bytes sent and verified.
	BytesWritten, BytesRead int64
	// LargestObject is the largest object written.
	LargestObject int64
	Samples       []Sample
	// SampleErrors counts samples that could not be taken.
	SampleErrors int
	// FirstProblems holds the first errors and mismatches, described.
	FirstProblems []string
}

// TotalOps returns the number of operations that completed.
func (r *Report) TotalOps() int64 { return sum(r.Ops) }

// TotalErrors returns the number of operations that failed.
func (r *Report) TotalErrors() int64 { return sum(r.Errors) }

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// Spreads are max/min ratios of gauges over a run's samples (1 means
// flat).
type Spreads struct {
	// Goroutines is over the whole count, GoroutinesNet over the count
	// less PoolGoroutines.
	Goroutines, GoroutinesNet float64
	// GoroutinesNetRange is max-min of the count less PoolGoroutines: a
	// handful of goroutines (timers, a connection closing) moves a small
	// count's ratio a lot without being a leak.
	GoroutinesNetRange float64
	// RSS is over resident memory, RSSInUse over resident memory less
	// Retained.
	RSS, RSSInUse float64
}

// Spread returns the spreads of the samples taken at or after warmup (1
// where there are none).
func (r *Report) Spread(warmup time.Duration) Spreads {
	bounds := func(f func(Sample) float64) (lo, hi float64) {
		for _, s := range r.Samples {
			v := f(s)
			if s.At < warmup || s.Goroutines <= 0 || v <= 0 {
				continue
			}
			if lo == 0 {
				lo, hi = v, v
			}
			lo, hi = min(lo, v), max(hi, v)
		}
		return lo, hi
	}
	ratio := func(f func(Sample) float64) float64 {
		lo, hi := bounds(f)
		if lo == 0 {
			return 1
		}
		return hi / lo
	}
	net := func(s Sample) float64 { return s.Goroutines - s.PoolGoroutines }
	lo, hi := bounds(net)
	return Spreads{
		Goroutines:         ratio(func(s Sample) float64 { return s.Goroutines }),
		GoroutinesNet:      ratio(net),
		GoroutinesNetRange: hi - lo,
		RSS:                ratio(func(s Sample) float64 { return s.RSS }),
		RSSInUse:           ratio(func(s Sample) float64 { return s.RSS - s.Retained }),
	}
}

// object is what a worker remembers of an object it wrote.
type object struct {
	seed uint64
	size int64
}

// run is the shared state of one Run.
type run struct {
	cfg   Config
	start time.Time
	// gate pauses the workers for samples: each operation holds it for
	// reading, a sample for writing.
	gate sync.RWMutex

	mu       sync.Mutex // protects ops, errs, problems
	ops      map[string]int64
	errs     map[string]int64
	problems []string

	mismatches, written, read, largest atomic.Int64
}

// Run drives the workload and returns its report. It fails only on an
// invalid Config; errors of the workload are in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Client == nil || cfg.Bucket == "" {
		return nil, errors.New("soak: Config needs Client and Bucket")
	}
	cfg = cfg.withDefaults()
	if cfg.PartSize%(64<<10) != 0 || cfg.PartSize < 5<<20 {
		return nil, fmt.Errorf("soak: PartSize %d must be a multiple of 64 KiB and at least 5 MiB", cfg.PartSize)
	}
	r := &run{cfg: cfg, start: time.Now(), ops: map[string]int64{}, errs: map[string]int64{}}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	rep := &Report{Seed: cfg.Seed, Concurrency: cfg.Concurrency}

	var wg sync.WaitGroup
	for i := 0; i < cfg.Concurrency; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			w := &worker{r: r, id: i, prefix: fmt.Sprintf("w%02d/", i), objects: map[string]object{},
				rng: rand.New(rand.NewPCG(cfg.Seed, uint64(i)+1))}
			w.loop(ctx)
		}(i)
	}
	sample := func() {
		r.gate.Lock()
		defer r.gate.Unlock()
		if ctx.Err() != nil {
			return // the run ended while the workers were pausing
		}
		s := Sample{At: time.Since(r.start)}
		if cfg.Sample != nil {
			sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
			g, err := cfg.Sample(sctx)
			scancel()
			if err != nil {
				rep.SampleErrors++
			} else {
				s.Gauges = g
			}
		}
		r.mu.Lock()
		s.Ops, s.Errors = sum(r.ops), sum(r.errs)
		r.mu.Unlock()
		s.Mismatches = r.mismatches.Load()
		rep.Samples = append(rep.Samples, s)
		cfg.Logf("soak %v: %d ops, %d errors, %d mismatches, %.0f goroutines (%.0f serving connections), %.1f MiB RSS (%.1f MiB freed, not yet returned), %.1f MiB heap in use",
			s.At.Round(time.Second), s.Ops, s.Errors, s.Mismatches, s.Goroutines, s.PoolGoroutines, s.RSS/(1<<20), s.Retained/(1<<20), s.HeapInuse/(1<<20))
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(cfg.SampleEvery)
	defer tick.Stop()
	sample()
loop:
	for {
		select {
		case <-done:
			break loop
		case <-tick.C:
			if ctx.Err() == nil {
				sample()
			}
		}
	}
	// No sample after the end: requests cut off by it close their
	// connections, which says nothing about what s3seal keeps.
	rep.Duration = time.Since(r.start)
	rep.Ops, rep.Errors = r.ops, r.errs
	rep.Mismatches = r.mismatches.Load()
	rep.BytesWritten, rep.BytesRead, rep.LargestObject = r.written.Load(), r.read.Load(), r.largest.Load()
	rep.FirstProblems = r.problems
	return rep, nil
}

func (r *run) done(op string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.ops[op]++
		return
	}
	var mm *MismatchError
	if errors.As(err, &mm) || errors.Is(err, errMismatch) {
		r.mismatches.Add(1)
		r.ops[op]++
	} else {
		r.errs[op]++
	}
	if len(r.problems) < 20 {
		r.problems = append(r.problems, fmt.Sprintf("%v %s: %v", time.Since(r.start).Round(time.Millisecond), op, err))
	}
}

// errMismatch marks a wrong size or listing.
var errMismatch = errors.New("soak: mismatch")

type worker struct {
	r       *run
	id      int
	prefix  string
	objects map[string]object
	seq     int
	rng     *rand.Rand
}

func (w *worker) loop(ctx context.Context) {
	for ctx.Err() == nil {
		w.r.gate.RLock()
		if ctx.Err() != nil {
			w.r.gate.RUnlock()
			return
		}
		op, err := w.step(ctx)
		w.r.gate.RUnlock()
		if op == "" || (err != nil && ctx.Err() != nil) {
			continue // nothing chosen, or cut off by the end of the run
		}
		w.r.done(op, err)
	}
}

// step runs one random operation and returns its name and outcome.
func (w *worker) step(ctx context.Context) (string, error) {
	octx, cancel := context.WithTimeout(ctx, w.r.cfg.OpTimeout)
	defer cancel()
	n := len(w.objects)
	p := w.rng.IntN(100)
	switch {
	case n >= w.r.cfg.MaxObjects || (n > 0 && p < 10):
		return "delete", w.delete(octx)
	case n == 0 || p < 35:
		return "put", w.put(octx, w.size())
	case p < 40:
		return "multipart", w.multipart(octx)
	case p < 62:
		return "get", w.get(octx)
	case p < 77:
		return "range", w.getRange(octx)
	case p < 82:
		return "head", w.head(octx)
	case p < 88:
		return "list", w.list(octx)
	default:
		return "copy", w.copy(octx)
	}
}

// size draws an object size: mostly small, sometimes up to MaxSize.
func (w *worker) size() int64 {
	limit := w.r.cfg.MaxSize
	var n int64
	switch p := w.rng.IntN(100); {
	case p < 5:
		n = 0
	case p < 45:
		n = w.rng.Int64N(4 << 10)
	case p < 75:
		n = w.rng.Int64N(1 << 20)
	case p < 92:
		n = w.rng.Int64N(8 << 20)
	case p < 98:
		n = w.rng.Int64N(32 << 20)
	default:
		n = limit - w.rng.Int64N(limit/4+1)
	}
	// Sizes near the 64 KiB chunk boundaries, where the format changes.
	if w.rng.IntN(8) == 0 {
		n = (n/(64<<10))*(64<<10) + w.rng.Int64N(3) - 1
	}
	return min(max(n, 0), limit)
}

func (w *worker) newKey() string {
	w.seq++
	return fmt.Sprintf("%s%06d", w.prefix, w.seq)
}

// pick returns a random object the worker wrote.
func (w *worker) pick() (string, object) {
	keys := make([]string, 0, len(w.objects))
	for k := range w.objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	k := keys[w.rng.IntN(len(keys))]
	return k, w.objects[k]
}

func (w *worker) record(key string, o object) {
	w.objects[key] = o
	w.r.written.Add(o.size)
	for {
		cur := w.r.largest.Load()
		if o.size <= cur || w.r.largest.CompareAndSwap(cur, o.size) {
			return
		}
	}
}

func (w *worker) put(ctx context.Context, size int64) error {
	key := w.newKey()
	if len(w.objects) > 0 && w.rng.IntN(5) == 0 {
		key, _ = w.pick() // overwrite
	}
	o := object{seed: w.rng.Uint64() | 1, size: size}
	_, err := w.r.cfg.Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(w.r.cfg.Bucket), Key: aws.String(key),
		Body: NewBody(o.seed, size), ContentLength: aws.Int64(size),
	})
	if err != nil {
		// The object may or may not have been replaced: forget it.
		delete(w.objects, key)
		return err
	}
	w.record(key, o)
	return nil
}

func (w *worker) multipart(ctx context.Context) error {
	ps, limit := w.r.cfg.PartSize, w.r.cfg.MaxSize
	if limit <= ps {
		return w.put(ctx, w.size())
	}
	size := ps + 1 + w.rng.Int64N(limit-ps)
	if w.rng.IntN(2) == 0 {
		size = ps + 1 + w.rng.Int64N(min(limit, 3*ps)-ps) // 2 or 3 parts, more often
	}
	key := w.newKey()
	o := object{seed: w.rng.Uint64() | 1, size: size}
	c, b := w.r.cfg.Client, aws.String(w.r.cfg.Bucket)
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String(key)})
	if err != nil {
		return err
	}
	var parts []types.CompletedPart
	for n, off := int32(1), int64(0); off < size; n, off = n+1, off+ps {
		l := min(ps, size-off)
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String(key), UploadId: up.UploadId,
			PartNumber: aws.Int32(n), Body: bytes.NewReader(Content(o.seed, off, l)), ContentLength: aws.Int64(l)})
		if err != nil {
			w.abort(key, up.UploadId)
			return err
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.ETag})
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: aws.String(key), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	if err != nil {
		w.abort(key, up.UploadId)
		return err
	}
	w.record(key, o)
	return nil
}

func (w *worker) abort(key string, id *string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = w.r.cfg.Client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(w.r.cfg.Bucket), Key: aws.String(key), UploadId: id})
}

func (w *worker) get(ctx context.Context) error {
	key, o := w.pick()
	out, err := w.r.cfg.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(w.r.cfg.Bucket), Key: aws.String(key)})
	if err != nil {
		return err
	}
	defer out.Body.Close()
	if aws.ToInt64(out.ContentLength) != o.size {
		return fmt.Errorf("%w: %s: Content-Length %d, wrote %d", errMismatch, key, aws.ToInt64(out.ContentLength), o.size)
	}
	n, err := Check(out.Body, o.seed, 0, o.size)
	w.r.read.Add(n)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

func (w *worker) getRange(ctx context.Context) error {
	key, o := w.pick()
	if o.size == 0 {
		return w.head(ctx)
	}
	a := w.rng.Int64N(o.size)
	b := a + w.rng.Int64N(min(o.size-a, 3<<20))
	spec := fmt.Sprintf("bytes=%d-%d", a, b)
	if w.rng.IntN(4) == 0 {
		n := 1 + w.rng.Int64N(min(o.size, 1<<20))
		a, b, spec = o.size-n, o.size-1, fmt.Sprintf("bytes=-%d", n)
	}
	out, err := w.r.cfg.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(w.r.cfg.Bucket), Key: aws.String(key), Range: aws.String(spec)})
	if err != nil {
		return err
	}
	defer out.Body.Close()
	if want := fmt.Sprintf("bytes %d-%d/%d", a, b, o.size); aws.ToString(out.ContentRange) != want {
		return fmt.Errorf("%w: %s %s: Content-Range %q, want %q", errMismatch, key, spec, aws.ToString(out.ContentRange), want)
	}
	n, err := Check(out.Body, o.seed, a, b-a+1)
	w.r.read.Add(n)
	if err != nil {
		return fmt.Errorf("%s %s: %w", key, spec, err)
	}
	return nil
}

func (w *worker) head(ctx context.Context) error {
	key, o := w.pick()
	out, err := w.r.cfg.Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(w.r.cfg.Bucket), Key: aws.String(key)})
	if err != nil {
		return err
	}
	if aws.ToInt64(out.ContentLength) != o.size {
		return fmt.Errorf("%w: %s: HEAD length %d, wrote %d", errMismatch, key, aws.ToInt64(out.ContentLength), o.size)
	}
	return nil
}

func (w *worker) list(ctx context.Context) error {
	seen := map[string]int64{}
	p := s3.NewListObjectsV2Paginator(w.r.cfg.Client, &s3.ListObjectsV2Input{Bucket: aws.String(w.r.cfg.Bucket), Prefix: aws.String(w.prefix), MaxKeys: aws.Int32(25)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, c := range page.Contents {
			seen[aws.ToString(c.Key)] = aws.ToInt64(c.Size)
		}
	}
	if len(seen) != len(w.objects) {
		return fmt.Errorf("%w: listed %d objects under %s, wrote %d", errMismatch, len(seen), w.prefix, len(w.objects))
	}
	for k, o := range w.objects {
		if s, ok := seen[k]; !ok || s != o.size {
			return fmt.Errorf("%w: %s listed with size %d (present %v), wrote %d", errMismatch, k, s, ok, o.size)
		}
	}
	return nil
}

func (w *worker) copy(ctx context.Context) error {
	src, o := w.pick()
	dst := w.newKey()
	_, err := w.r.cfg.Client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(w.r.cfg.Bucket), Key: aws.String(dst),
		CopySource: aws.String(w.r.cfg.Bucket + "/" + src)})
	if err != nil {
		return err
	}
	w.objects[dst] = o
	return nil
}

func (w *worker) delete(ctx context.Context) error {
	key, _ := w.pick()
	c, b := w.r.cfg.Client, aws.String(w.r.cfg.Bucket)
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: aws.String(key)}); err != nil {
		return err
	}
	delete(w.objects, key)
	_, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String(key)})
	var nf *types.NotFound
	if err == nil {
		return fmt.Errorf("%w: %s still there after DeleteObject", errMismatch, key)
	}
	if !errors.As(err, &nf) {
		return err
	}
	return nil
}

var _ io.ReadSeeker = (*Body)(nil)
