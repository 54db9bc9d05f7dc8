package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	smithy "github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/integration/soak"
	"github.com/s3seal/s3seal/integration/testbed"
)

// The reliability suite: faults (reliability_faults_test.go), hostile input
// (reliability_hostile_test.go), secrets and TLS (reliability_secrets_test.go),
// load (reliability_soak_test.go) and goroutine leaks in process
// (reliability_leak_test.go). Each records its figures with relRecord; with
// S3SEAL_RELIABILITY_REPORT=FILE they are also appended to FILE as JSON lines
// (docs/RELIABILITY.md is written from them).

// relRecord logs one row of a reliability table and appends it to the
// report file if one is configured.
func relRecord(t testing.TB, table string, row map[string]any) {
	t.Helper()
	keys := make([]string, 0, len(row))
	for k := range row {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, row[k])
	}
	t.Logf("reliability %s:%s", table, b.String())
	path := os.Getenv("S3SEAL_RELIABILITY_REPORT")
	if path == "" {
		return
	}
	rec := map[string]any{"table": table, "test": t.Name(), "time": time.Now().UTC().Format(time.RFC3339)}
	for k, v := range row {
		if d, ok := v.(time.Duration); ok {
			v = d.Round(time.Millisecond).String()
		}
		rec[k] = v
	}
	line, err := json.Marshal(rec)
	if err != nil {
		t.Errorf("report: %v", err)
		return
	}
	relReportMu.Lock()
	defer relReportMu.Unlock()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Errorf("report: %v", err)
		return
	}
	defer f.Close()
	_, _ = f.Write(append(line, '\n'))
}

var relReportMu sync.Mutex

// writeConfig writes a YAML configuration file for S3SEAL_CONFIG.
func writeConfig(t testing.TB, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s3seal.yaml")
	must(t, os.WriteFile(path, []byte(yaml), 0o600), "write config")
	return path
}

// noRetry makes an SDK client try each request once, so a test sees the
// answer to the request it made.
func noRetry(o *s3.Options) { o.RetryMaxAttempts = 1 }

// gauges reads s3seal's goroutine count and resident memory from /metrics.
func gauges(ctx context.Context, p *proxy) (soak.Gauges, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.Admin+"/metrics", nil)
	if err != nil {
		return soak.Gauges{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return soak.Gauges{}, err
	}
	defer resp.Body.Close()
	var g soak.Gauges
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "go_goroutines":
			g.Goroutines = v
		case "s3seal_process_resident_memory_bytes":
			g.RSS = v
		case "go_memstats_heap_inuse_bytes":
			g.HeapInuse = v
		case "go_memstats_heap_idle_bytes":
			g.Retained += v
		case "go_memstats_heap_released_bytes":
			g.Retained -= v
		}
	}
	g.PoolGoroutines = poolGoroutines(ctx, p)
	if g.Goroutines == 0 || g.RSS == 0 {
		return g, errors.New("go_goroutines or s3seal_process_resident_memory_bytes missing from /metrics")
	}
	return g, nil
}

// collectGarbage makes s3seal run a garbage collection, through the Go
// profiler's heap endpoint (S3SEAL_PPROF=true), so that heap figures taken
// next count live memory only. Without the profiler it does nothing.
func collectGarbage(ctx context.Context, p *proxy) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.Admin+"/debug/pprof/heap?gc=1", nil)
	if err != nil {
		return
	}
	if resp, err := http.DefaultClient.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// poolGoroutines counts, from the profiler's goroutine listing
// (S3SEAL_PPROF=true), the goroutines that serve keep-alive connections:
// net/http's server connections and its client's connection loops. It is 0
// without the profiler.
func poolGoroutines(ctx context.Context, p *proxy) float64 {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.Admin+"/debug/pprof/goroutine?debug=1", nil)
	if err != nil {
		return 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	// Groups are "N @ addresses" followed by "#\t... function" lines.
	n := 0.0
	for _, group := range strings.Split(string(b), "\n\n") {
		head, _, _ := strings.Cut(group, " @ ")
		count, err := strconv.Atoi(strings.TrimSpace(head[strings.LastIndex(head, "\n")+1:]))
		if err != nil {
			continue
		}
		if strings.Contains(group, "net/http.(*persistConn).readLoop") || strings.Contains(group, "net/http.(*persistConn).writeLoop") ||
			strings.Contains(group, "net/http.(*conn).serve") {
			n += float64(count)
		}
	}
	return n
}

// settledGauges waits until s3seal's goroutine count stops falling (idle
// connections and finished requests take a moment to go) and returns it,
// with heap figures taken just after a garbage collection.
func settledGauges(t testing.TB, p *proxy, atMost float64, within time.Duration) soak.Gauges {
	t.Helper()
	deadline := time.Now().Add(within)
	var g soak.Gauges
	var err error
	for {
		// Twice: buffers in sync.Pools survive one collection.
		collectGarbage(context.Background(), p)
		collectGarbage(context.Background(), p)
		g, err = gauges(context.Background(), p)
		if err == nil && (g.Goroutines <= atMost || time.Now().After(deadline)) {
			return g
		}
		if err != nil && time.Now().After(deadline) {
			t.Fatalf("gauges: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// health checks that s3seal answers /healthz and /readyz with 200.
func health(t testing.TB, p *proxy) {
	t.Helper()
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(p.Admin + path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d %s", path, resp.StatusCode, b)
		}
	}
}

// retryUntil calls f until it succeeds or timeout passes and returns how
// long it took; it fails the test on timeout.
func retryUntil(t testing.TB, what string, timeout time.Duration, f func() error) time.Duration {
	t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < timeout {
		if err = f(); err == nil {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: still failing after %v: %v", what, timeout, err)
	return 0
}

// apiCode returns the S3 error code of an SDK error ("" if none).
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// storeAudit lists a bucket directly on the store and checks every object
// through s3seal against want (key → content): an object that is not in
// want is partial or unexpected, one whose plaintext differs is corrupt. It
// returns those counts and the number of multipart uploads left open.
func storeAudit(t testing.TB, up *testbed.S3Server, c *s3.Client, bucket string, want map[string][]byte) (unexpected, corrupt, openUploads int) {
	t.Helper()
	direct := up.Client(t)
	p := s3.NewListObjectsV2Paginator(direct, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	seen := map[string]bool{}
	for p.HasMorePages() {
		page, err := p.NextPage(ctx(t))
		must(t, err, "list the store")
		for _, o := range page.Contents {
			k := aws.ToString(o.Key)
			if strings.HasPrefix(k, ".s3seal/") {
				// s3seal's own markers and key objects (FORMAT.md 6.5, 9.4).
				continue
			}
			seen[k] = true
			w, ok := want[k]
			if !ok {
				t.Errorf("store holds %s (%d bytes), which no successful request wrote", k, aws.ToInt64(o.Size))
				unexpected++
				continue
			}
			out, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)})
			if err != nil {
				t.Errorf("%s does not read back through s3seal: %v", k, err)
				corrupt++
				continue
			}
			got, err := io.ReadAll(out.Body)
			out.Body.Close()
			if err != nil || string(got) != string(w) {
				t.Errorf("%s reads back wrong: %d bytes, %v", k, len(got), err)
				corrupt++
			}
		}
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("%s was written successfully but is not in the store", k)
			corrupt++
		}
	}
	ups, err := direct.ListMultipartUploads(ctx(t), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	must(t, err, "list uploads")
	return unexpected, corrupt, len(ups.Uploads)
}

// faultProxy is a TCP proxy between s3seal and its store that can delay
// the store's answers, hold them back entirely, or cut every connection.
type faultProxy struct {
	ln     net.Listener
	target string
	delay  atomic.Int64 // nanoseconds added before each answer chunk
	mu     sync.Mutex
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
	closed atomic.Bool
}

// startFaultProxy proxies a free 127.0.0.1 port to target (host:port). A
// Cleanup closes it.
func startFaultProxy(t testing.TB, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err, "listen")
	f := &faultProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(f.Close)
	return f
}

// Addr is the proxy's address.
func (f *faultProxy) Addr() string { return f.ln.Addr().String() }

// SetDelay delays every chunk of the store's answers by d (0: none).
func (f *faultProxy) SetDelay(d time.Duration) { f.delay.Store(int64(d)) }

// CutAll closes every open connection.
func (f *faultProxy) CutAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		c.Close()
	}
}

// Close stops the proxy and waits for its goroutines.
func (f *faultProxy) Close() {
	if f.closed.Swap(true) {
		return
	}
	f.ln.Close()
	f.CutAll()
	f.wg.Wait()
}

func (f *faultProxy) track(c net.Conn, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if on {
		f.conns[c] = true
	} else {
		delete(f.conns, c)
	}
}

func (f *faultProxy) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go f.serve(c)
	}
}

func (f *faultProxy) serve(c net.Conn) {
	defer f.wg.Done()
	s, err := net.DialTimeout("tcp", f.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	f.track(c, true)
	f.track(s, true)
	defer func() {
		f.track(c, false)
		f.track(s, false)
		c.Close()
		s.Close()
	}()
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(s, c)
		done <- struct{}{}
	}()
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := s.Read(buf)
			if n > 0 {
				if d := time.Duration(f.delay.Load()); d > 0 {
					time.Sleep(d)
				}
				if _, werr := c.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}()
	<-done
}

// triggerReader passes r through and calls fire once after at bytes, then
// optionally fails with failErr instead of returning more.
type triggerReader struct {
	r       io.Reader
	at      int64
	n       int64
	fire    func()
	once    sync.Once
	failErr error
	pause   time.Duration // sleep after firing, before the next read
}

func (tr *triggerReader) Read(p []byte) (int, error) {
	if tr.n >= tr.at {
		fired := false
		tr.once.Do(func() {
			fired = true
			if tr.fire != nil {
				tr.fire()
			}
		})
		if fired && tr.pause > 0 {
			time.Sleep(tr.pause)
		}
		if tr.failErr != nil {
			return 0, tr.failErr
		}
	}
	if rem := tr.at - tr.n; rem > 0 && int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := tr.r.Read(p)
	tr.n += int64(n)
	return n, err
}

// logLines returns the lines of s3seal's raw log that contain every one of
// the given strings.
func logLines(t testing.TB, p *proxy, contains ...string) []string {
	t.Helper()
	b, err := os.ReadFile(p.LogPath())
	must(t, err, "read s3seal log")
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		ok := true
		for _, c := range contains {
			if !strings.Contains(line, c) {
				ok = false
				break
			}
		}
		if ok && line != "" {
			out = append(out, line)
		}
	}
	return out
}

// waitLog waits until s3seal's log has a line containing every string.
func waitLog(t testing.TB, p *proxy, timeout time.Duration, contains ...string) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if l := logLines(t, p, contains...); len(l) > 0 {
			return l[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q within %v", contains, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
