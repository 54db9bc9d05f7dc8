package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// sizes are the dimensions of the workloads; fullSizes and shortSizes are
// the two sets the driver runs.
type sizes struct {
	Big             int64         // the large object: single PUT/GET and the ranged reads' source
	Multipart       int64         // the multipart upload's size
	PartSize        int64         // its part size
	PartConcurrency int           // parts in flight
	Small           int           // the small objects' size
	SmallObjects    int           // how many small objects GETs pick from
	Clients         int           // concurrent clients of the small-object workloads
	SmallDuration   time.Duration // how long a concurrent small-object sample runs
	LatDuration     time.Duration // how long the single-client sample runs
	MaxRequests     int           // cap on requests of a timed sample
	RangeSize       int64         // bytes per ranged GET
	RangeCount      int           // ranged GETs per sample
	ListKeys        int           // keys under the listed prefix
	ListPage        int32         // MaxKeys per ListObjectsV2 page
	ListRounds      int           // full listings per sample
	SetupWorkers    int           // parallel writers while setting up
	SampleTimeout   time.Duration // bound on one sample
}

var fullSizes = sizes{
	Big: 256 << 20, Multipart: 1 << 30, PartSize: 16 << 20, PartConcurrency: 4,
	Small: 4 << 10, SmallObjects: 64, Clients: 16,
	SmallDuration: 3 * time.Second, LatDuration: 2 * time.Second, MaxRequests: 200_000,
	RangeSize: 1 << 20, RangeCount: 48,
	ListKeys: 10_000, ListPage: 1000, ListRounds: 3,
	SetupWorkers: 32, SampleTimeout: 3 * time.Minute,
}

var shortSizes = sizes{
	Big: 8 << 20, Multipart: 20 << 20, PartSize: 5 << 20, PartConcurrency: 4,
	Small: 4 << 10, SmallObjects: 16, Clients: 16,
	SmallDuration: 300 * time.Millisecond, LatDuration: 200 * time.Millisecond, MaxRequests: 20_000,
	RangeSize: 1 << 20, RangeCount: 6,
	ListKeys: 300, ListPage: 100, ListRounds: 1,
	SetupWorkers: 16, SampleTimeout: 30 * time.Second,
}

// Units of a workload's headline number.
const (
	unitMBps  = "MB/s"   // payload bytes per second, 10^6
	unitReqs  = "req/s"  // requests per second
	unitKeyps = "keys/s" // listed keys per second
)

// workload is one benchmark. prepare builds clients and warms their
// connections (untimed); the phase it returns is the timed part.
type workload struct {
	ID      string
	Title   func(sizes) string
	Unit    string
	Latency bool // whether p50/p99 mean something (more than one request)
	prepare func(ctx context.Context, e *runEnv) (*phase, error)
}

// phase is the timed part of a sample.
type phase struct {
	run   func(ctx context.Context) outcome
	close func()
}

// outcome is what a timed phase did.
type outcome struct {
	Requests int
	Bytes    int64 // payload bytes moved
	Keys     int   // keys listed
	Elapsed  time.Duration
	Lat      []float64 // seconds per request (or per page)
	Errors   int
	FirstErr string
}

func (o *outcome) fail(err error) {
	o.Errors++
	if o.FirstErr == "" {
		o.FirstErr = oneLine(err.Error())
	}
}

// runEnv is what a workload runs against.
type runEnv struct {
	t    *target
	sz   sizes
	rep  int
	data []byte // sz.Big random bytes
}

// Object keys the setup writes into every group's bucket.
const (
	keyBig        = "big"
	prefixSmall   = "small/"
	prefixList    = "list/"
	listKeyFormat = prefixList + "%05d"
)

func smallKey(i int) string { return fmt.Sprintf("%s%03d", prefixSmall, i) }

var allWorkloads = []workload{
	{ID: "put-big", Unit: unitMBps, Title: func(s sizes) string { return "PUT " + human(s.Big) + ", one stream, no checksum" }, prepare: prepPutBig},
	{ID: "get-big", Unit: unitMBps, Title: func(s sizes) string { return "GET " + human(s.Big) + ", one stream" }, prepare: prepGetBig},
	{ID: "get-small-c16", Unit: unitReqs, Latency: true, Title: func(s sizes) string {
		return fmt.Sprintf("GET %s, %d clients", human(int64(s.Small)), s.Clients)
	}, prepare: prepSmall(false, 0)},
	{ID: "put-small-c16", Unit: unitReqs, Latency: true, Title: func(s sizes) string {
		return fmt.Sprintf("PUT %s, %d clients", human(int64(s.Small)), s.Clients)
	}, prepare: prepSmall(true, 0)},
	{ID: "get-small-c1", Unit: unitReqs, Latency: true, Title: func(s sizes) string {
		return fmt.Sprintf("GET %s, 1 client", human(int64(s.Small)))
	}, prepare: prepSmall(false, 1)},
	{ID: "multipart", Unit: unitMBps, Title: func(s sizes) string {
		return fmt.Sprintf("multipart upload %s, %s parts ×%d", human(s.Multipart), human(s.PartSize), s.PartConcurrency)
	}, prepare: prepMultipart},
	{ID: "range", Unit: unitMBps, Latency: true, Title: func(s sizes) string {
		return fmt.Sprintf("ranged GET %s at random offsets of %s", human(s.RangeSize), human(s.Big))
	}, prepare: prepRange},
	{ID: "list", Unit: unitKeyps, Latency: true, Title: func(s sizes) string {
		return fmt.Sprintf("LIST %d keys, pages of %d", s.ListKeys, s.ListPage)
	}, prepare: prepList},
}

func workloadByID(id string) (workload, bool) {
	for _, w := range allWorkloads {
		if w.ID == id {
			return w, true
		}
	}
	return workload{}, false
}

// human formats a byte count in binary units: 256 MiB, 4 KiB, 1 GiB.
func human(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// warm makes one untimed request so that the client's connection and TLS
// session exist before timing starts.
func warm(ctx context.Context, c *s3.Client, bucket string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(smallKey(0))})
	return err
}

// withoutUploadChecksum makes a client send no checksum unless an
// operation requires one. The large single PUT needs it: with the default
// (a CRC32 trailer), aws-sdk-go-v2 sends a body of known length as one
// aws-chunked chunk, and MinIO refuses chunks over 16 MiB ("chunk too big",
// minio/minio#21611), so the baseline could not take the upload at all.
func withoutUploadChecksum(o *s3.Options) {
	o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
}

func prepPutBig(ctx context.Context, e *runEnv) (*phase, error) {
	c := e.t.client(withoutUploadChecksum)
	if err := warm(ctx, c, e.t.Bucket()); err != nil {
		return nil, err
	}
	key := "put-big/" + e.t.Name
	return &phase{
		run: func(ctx context.Context) (o outcome) {
			start := time.Now()
			_, err := c.PutObject(ctx, &s3.PutObjectInput{
				Bucket: aws.String(e.t.Bucket()), Key: aws.String(key),
				Body: bytes.NewReader(e.data), ContentLength: aws.Int64(int64(len(e.data))),
			})
			o.Elapsed = time.Since(start)
			o.Requests = 1
			if err != nil {
				o.fail(err)
				return o
			}
			o.Bytes = int64(len(e.data))
			o.Lat = []float64{o.Elapsed.Seconds()}
			return o
		},
		close: closeClients(c),
	}, nil
}

func prepGetBig(ctx context.Context, e *runEnv) (*phase, error) {
	c := e.t.client()
	if err := warm(ctx, c, e.t.Bucket()); err != nil {
		return nil, err
	}
	return &phase{
		run: func(ctx context.Context) (o outcome) {
			start := time.Now()
			n, err := getObject(ctx, c, e.t.Bucket(), keyBig, "")
			o.Elapsed = time.Since(start)
			o.Requests = 1
			o.Bytes = n
			if err == nil && n != e.sz.Big {
				err = fmt.Errorf("read %d bytes, want %d", n, e.sz.Big)
			}
			if err != nil {
				o.fail(err)
				return o
			}
			o.Lat = []float64{o.Elapsed.Seconds()}
			return o
		},
		close: closeClients(c),
	}, nil
}

// getObject reads an object (or a range of it) to the end and returns the
// number of body bytes.
func getObject(ctx context.Context, c *s3.Client, bucket, key, rng string) (int64, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if rng != "" {
		in.Range = aws.String(rng)
	}
	out, err := c.GetObject(ctx, in)
	if err != nil {
		return 0, err
	}
	defer out.Body.Close()
	return io.Copy(io.Discard, out.Body)
}

// prepSmall returns the small-object workload: GETs of random pre-written
// objects or PUTs of fresh bodies, by clients concurrent clients (0 means
// sz.Clients), each with its own connection, for sz.SmallDuration (or
// sz.LatDuration for one client).
func prepSmall(put bool, clients int) func(ctx context.Context, e *runEnv) (*phase, error) {
	return func(ctx context.Context, e *runEnv) (*phase, error) {
		n, dur := clients, e.sz.SmallDuration
		if n == 0 {
			n = e.sz.Clients
		}
		if n == 1 {
			dur = e.sz.LatDuration
		}
		cs := make([]*s3.Client, n)
		for i := range cs {
			cs[i] = e.t.client()
		}
		if err := warmAll(ctx, cs, e.t.Bucket()); err != nil {
			closeClients(cs...)()
			return nil, err
		}
		body := e.data[:e.sz.Small]
		return &phase{
			run: func(ctx context.Context) outcome {
				return runConcurrent(ctx, n, dur, e.sz.MaxRequests, func(ctx context.Context, w, i int, rng *rand.Rand) (int64, error) {
					if put {
						key := fmt.Sprintf("put-small/%s/%02d-%02d", e.t.Name, w, i%16)
						_, err := cs[w].PutObject(ctx, &s3.PutObjectInput{
							Bucket: aws.String(e.t.Bucket()), Key: aws.String(key),
							Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))),
						})
						if err != nil {
							return 0, err
						}
						return int64(len(body)), nil
					}
					got, err := getObject(ctx, cs[w], e.t.Bucket(), smallKey(rng.IntN(e.sz.SmallObjects)), "")
					if err == nil && got != int64(e.sz.Small) {
						err = fmt.Errorf("read %d bytes, want %d", got, e.sz.Small)
					}
					return got, err
				})
			},
			close: closeClients(cs...),
		}, nil
	}
}

// runConcurrent runs op from n workers until dur passes or max requests
// were started, and collects every request's latency.
func runConcurrent(ctx context.Context, n int, dur time.Duration, maxReq int, op func(ctx context.Context, worker, i int, rng *rand.Rand) (int64, error)) outcome {
	var (
		mu      sync.Mutex
		o       outcome
		started int
		wg      sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	deadline := start.Add(dur)
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 0x5eed))
			var lat []float64
			var bytes int64
			var errs []error
			for i := 0; ; i++ {
				mu.Lock()
				if started >= maxReq || time.Now().After(deadline) || ctx.Err() != nil {
					mu.Unlock()
					break
				}
				started++
				mu.Unlock()
				t0 := time.Now()
				rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
				b, err := op(rctx, w, i, rng)
				rcancel()
				if err != nil {
					errs = append(errs, err)
					continue
				}
				lat = append(lat, time.Since(t0).Seconds())
				bytes += b
			}
			mu.Lock()
			defer mu.Unlock()
			o.Lat = append(o.Lat, lat...)
			o.Bytes += bytes
			o.Requests += len(lat) + len(errs)
			for _, err := range errs {
				o.fail(err)
			}
		}()
	}
	wg.Wait()
	o.Elapsed = time.Since(start)
	return o
}

func warmAll(ctx context.Context, cs []*s3.Client, bucket string) error {
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = warm(ctx, c, bucket)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func closeClients(cs ...*s3.Client) func() {
	return func() {
		for _, c := range cs {
			if hc, ok := c.Options().HTTPClient.(interface{ CloseIdleConnections() }); ok {
				hc.CloseIdleConnections()
			}
		}
	}
}

func prepMultipart(ctx context.Context, e *runEnv) (*phase, error) {
	c := e.t.client()
	if err := warm(ctx, c, e.t.Bucket()); err != nil {
		return nil, err
	}
	tm := transfermanager.New(c, func(o *transfermanager.Options) {
		o.PartSizeBytes = e.sz.PartSize
		o.Concurrency = e.sz.PartConcurrency
	})
	key := "multipart/" + e.t.Name
	return &phase{
		run: func(ctx context.Context) (o outcome) {
			start := time.Now()
			_, err := tm.UploadObject(ctx, &transfermanager.UploadObjectInput{
				Bucket: aws.String(e.t.Bucket()), Key: aws.String(key),
				Body: &repeatReader{data: e.data, left: e.sz.Multipart},
			})
			o.Elapsed = time.Since(start)
			o.Requests = int(2 + (e.sz.Multipart+e.sz.PartSize-1)/e.sz.PartSize) // create, parts, complete
			if err != nil {
				o.fail(err)
				return o
			}
			o.Bytes = e.sz.Multipart
			return o
		},
		close: closeClients(c),
	}, nil
}

// repeatReader reads left bytes by cycling through data, so that a large
// upload needs no buffer of its own size.
type repeatReader struct {
	data []byte
	off  int
	left int64
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n := copy(p, r.data[r.off:])
	r.off = (r.off + n) % len(r.data)
	r.left -= int64(n)
	return n, nil
}

func prepRange(ctx context.Context, e *runEnv) (*phase, error) {
	c := e.t.client()
	if err := warm(ctx, c, e.t.Bucket()); err != nil {
		return nil, err
	}
	// The same offsets for every target within a repetition.
	rng := rand.New(rand.NewPCG(uint64(e.rep), 0xa11ce))
	offs := make([]int64, e.sz.RangeCount)
	for i := range offs {
		offs[i] = rng.Int64N(e.sz.Big - e.sz.RangeSize + 1)
	}
	return &phase{
		run: func(ctx context.Context) (o outcome) {
			start := time.Now()
			for _, off := range offs {
				if ctx.Err() != nil {
					o.fail(ctx.Err())
					break
				}
				t0 := time.Now()
				rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				n, err := getObject(rctx, c, e.t.Bucket(), keyBig, fmt.Sprintf("bytes=%d-%d", off, off+e.sz.RangeSize-1))
				cancel()
				o.Requests++
				if err == nil && n != e.sz.RangeSize {
					err = fmt.Errorf("range at %d: read %d bytes, want %d", off, n, e.sz.RangeSize)
				}
				if err != nil {
					o.fail(err)
					continue
				}
				o.Bytes += n
				o.Lat = append(o.Lat, time.Since(t0).Seconds())
			}
			o.Elapsed = time.Since(start)
			return o
		},
		close: closeClients(c),
	}, nil
}

func prepList(ctx context.Context, e *runEnv) (*phase, error) {
	c := e.t.client()
	if err := warm(ctx, c, e.t.Bucket()); err != nil {
		return nil, err
	}
	return &phase{
		run: func(ctx context.Context) (o outcome) {
			start := time.Now()
			for range e.sz.ListRounds {
				keys := 0
				p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{
					Bucket: aws.String(e.t.Bucket()), Prefix: aws.String(prefixList), MaxKeys: aws.Int32(e.sz.ListPage),
				})
				for p.HasMorePages() {
					t0 := time.Now()
					rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
					page, err := p.NextPage(rctx)
					cancel()
					o.Requests++
					if err != nil {
						o.fail(err)
						break
					}
					o.Lat = append(o.Lat, time.Since(t0).Seconds())
					keys += len(page.Contents)
				}
				if keys != e.sz.ListKeys {
					o.fail(fmt.Errorf("listed %d keys, want %d", keys, e.sz.ListKeys))
				}
				o.Keys += keys
			}
			o.Elapsed = time.Since(start)
			return o
		},
		close: closeClients(c),
	}, nil
}
