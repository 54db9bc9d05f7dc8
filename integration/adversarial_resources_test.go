package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
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

	"github.com/s3seal/s3seal/integration/testbed"
)

// Resource exhaustion, measured against the s3seal binary: peak resident
// memory (VmHWM of the process, one fresh process per attack), goroutines,
// s3seal's connections to the store, and a bystander client's 1 KiB GET
// latency while the attack runs. Every attack is bounded in count and time.
// Figures go to the test log as "resources <attack>: ...".

// resourceLimits is the configuration the resource tests run with: a short
// write deadline and caps on requests in flight.
const resourceLimits = `limits:
  write_timeout: 2s
  max_requests: 256
  max_requests_per_client: 32
`

// procStatus returns a field of /proc/PID/status in bytes (VmHWM, VmRSS).
func procStatus(t testing.TB, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	must(t, err, "read /proc status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			n, err := strconv.ParseInt(f[0], 10, 64)
			must(t, err, "parse ", field)
			return n << 10 // kB
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// procCPU returns the CPU time the process has used.
func procCPU(t testing.TB, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	must(t, err, "read /proc stat")
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// storeConns counts the process's established TCP connections to port.
func storeConns(pid, port int) int {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	n := 0
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "01" || !inodes[fs[9]] {
				continue
			}
			_, rport, _ := strings.Cut(fs[2], ":")
			if p, err := strconv.ParseInt(rport, 16, 32); err == nil && int(p) == port {
				n++
			}
		}
	}
	return n
}

// sampler records s3seal's peaks while an attack runs.
type sampler struct {
	stop                  chan struct{}
	done                  sync.WaitGroup
	mu                    sync.Mutex
	goroutines, connsPeak int
	rssPeak               int64
	// scrapes and missed count /metrics reads, and those s3seal did not
	// answer within 5 s (its admin listener shares the process).
	scrapes, missed int
}

// String reports the peaks for the log.
func (s *sampler) String() string {
	return fmt.Sprintf("peak goroutines %d (%d of %d metrics scrapes unanswered), peak store connections %d", s.goroutines, s.missed, s.scrapes, s.connsPeak)
}

// sample polls s3seal every 100 ms until Stop.
func sample(t testing.TB, p *proxy) *sampler {
	s := &sampler{stop: make(chan struct{})}
	port := p.Upstream.Port()
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		for {
			cx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			g, err := gauges(cx, p)
			cancel()
			c := storeConns(p.PID(), port)
			s.mu.Lock()
			s.scrapes++
			if err == nil {
				s.goroutines = max(s.goroutines, int(g.Goroutines))
				s.rssPeak = max(s.rssPeak, int64(g.RSS))
			} else {
				s.missed++
			}
			s.connsPeak = max(s.connsPeak, c)
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return s
}

func (s *sampler) Stop() {
	close(s.stop)
	s.done.Wait()
}

// bystander GETs a 1 KiB object as another client every 100 ms until
// stopped and reports the latencies and failures.
type bystander struct {
	stop      chan struct{}
	done      sync.WaitGroup
	starts    []time.Time
	latencies []time.Duration
	failures  []string
}

func startBystander(t testing.TB, e *advEnv, key string) *bystander {
	b := &bystander{stop: make(chan struct{})}
	b.done.Add(1)
	go func() {
		defer b.done.Done()
		for {
			start := time.Now()
			r := e.clients["limited"].do(t, advReq{method: "GET", path: e.path(key), timeout: 30 * time.Second})
			b.starts = append(b.starts, start)
			b.latencies = append(b.latencies, time.Since(start))
			if r.status != 200 || len(r.body) != 1024 {
				b.failures = append(b.failures, r.String())
			}
			select {
			case <-b.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return b
}

// Stop ends the bystander and returns the median and worst latency, and
// the number, of its GETs that started at or after from.
func (b *bystander) Stop(from time.Time) (median, worst time.Duration, n int) {
	close(b.stop)
	b.done.Wait()
	var l []time.Duration
	for i, d := range b.latencies {
		if !b.starts[i].Before(from) {
			l = append(l, d)
		}
	}
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	if len(l) == 0 {
		return 0, 0, 0
	}
	return l[len(l)/2], l[len(l)-1], len(l)
}

// loadClient sends many requests at once, each on its own connection,
// keeping up to idle connections open between requests.
func loadClient(t testing.TB, p *proxy, idle int) *http.Client {
	hc := testbed.HTTPClient(t, p.CAFile)
	tr := hc.Transport.(*http.Transport).Clone()
	tr.DisableKeepAlives = idle == 0
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 0, idle
	tr.IdleConnTimeout = 5 * time.Minute
	tr.TLSHandshakeTimeout = 30 * time.Second
	tr.DisableCompression = true
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}
}

// answerOf sends req and names the answer: "STATUS CODE", "timeout" when
// the request's context ended first, or "error" for another failure (a
// server may close the connection after an early answer).
func answerOf(hc *http.Client, req *http.Request, first *firstError) string {
	resp, err := hc.Do(req)
	if err != nil {
		if req.Context().Err() != nil {
			return "timeout"
		}
		first.set(err)
		return "error"
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if req.Context().Err() != nil {
		return "timeout"
	}
	return strings.TrimSpace(strconv.Itoa(resp.StatusCode) + " " + xmlCode(string(b)))
}

// dialS3seal opens an HTTP/1.1 TLS connection to s3seal; readBuffer, if
// not 0, shrinks the socket's receive buffer.
func dialS3seal(t testing.TB, p *proxy, readBuffer int) (*tls.Conn, error) {
	raw, err := net.DialTimeout("tcp", strings.TrimPrefix(p.Endpoint, "https://"), 30*time.Second)
	if err != nil {
		return nil, err
	}
	if readBuffer > 0 {
		_ = raw.(*net.TCPConn).SetReadBuffer(readBuffer)
	}
	conn := tls.Client(raw, &tls.Config{RootCAs: x509Pool(t, mustRead(t, p.CAFile)), ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}})
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if err := conn.Handshake(); err != nil {
		raw.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, nil
}

// roundTrip sends req on conn and names the answer as answerOf does.
func roundTrip(conn net.Conn, br *bufio.Reader, req *http.Request, deadline time.Time, first *firstError) string {
	_ = conn.SetDeadline(deadline)
	if err := req.Write(conn); err != nil {
		first.set(err)
		return "error"
	}
	resp, err := http.ReadResponse(br, req)
	if err == nil {
		var b []byte
		b, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			return strings.TrimSpace(strconv.Itoa(resp.StatusCode) + " " + xmlCode(string(b)))
		}
	}
	if time.Now().After(deadline) {
		return "timeout"
	}
	first.set(err)
	return "error"
}

// figures are what an attack cost s3seal and a bystander.
type figures struct {
	elapsed, median, worst time.Duration
	gets, failed           int
	peak                   int64 // VmHWM
	s                      *sampler
}

func (f figures) String() string {
	return fmt.Sprintf("s3seal peak RSS %d MiB, %s; bystander 1 KiB GET during the attack median %v, worst %v (%d GETs, %d failed)",
		f.peak>>20, f.s, f.median.Round(time.Millisecond), f.worst.Round(time.Millisecond), f.gets, f.failed)
}

// endAttack stops the bystander and the sampler of an attack that began at
// start and collects the figures.
func endAttack(t testing.TB, e *advEnv, start time.Time, by *bystander, s *sampler) figures {
	f := figures{elapsed: time.Since(start), s: s}
	f.median, f.worst, f.gets = by.Stop(start)
	f.failed = len(by.failures)
	s.Stop()
	f.peak = procStatus(t, e.p.PID(), "VmHWM")
	return f
}

// tally counts answers from concurrent senders.
type tally struct{ m sync.Map }

func (c *tally) add(answer string) {
	n, _ := c.m.LoadOrStore(answer, new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
}

// counts returns the answers and how often each came.
func (c *tally) counts() map[string]int64 {
	out := map[string]int64{}
	c.m.Range(func(k, v any) bool { out[k.(string)] = v.(*atomic.Int64).Load(); return true })
	return out
}

// firstError keeps the first error it is given, for the log.
type firstError struct {
	once sync.Once
	msg  string
}

func (f *firstError) set(err error) { f.once.Do(func() { f.msg = err.Error() }) }

// get returns the error kept; call it after the senders are done.
func (f *firstError) get() string {
	if f.msg == "" {
		return "none"
	}
	return f.msg
}

// resourceEnv is a fresh s3seal (so that its VmHWM is this attack's) with
// the resource limits, on MinIO, with a 1 KiB object for the bystander.
func resourceEnv(t *testing.T) *advEnv {
	e := newAdvEnv(t, shared.minio, advOptions{extraYAML: resourceLimits})
	_, err := shared.minio.Client(t).PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(e.bucket), Key: aws.String("public/1k"), Body: bytes.NewReader(randBytes(1024))})
	must(t, err, "plant public/1k")
	return e
}

// completeBody is a CompleteMultipartUpload document listing parts 1..n.
func completeBody(n int) []byte {
	var b bytes.Buffer
	b.Grow(n * 80)
	b.WriteString("<CompleteMultipartUpload>")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, `<Part><PartNumber>%d</PartNumber><ETag>"0123456789abcdef0123456789abcdef"</ETag></Part>`, i)
	}
	b.WriteString("</CompleteMultipartUpload>")
	return b.Bytes()
}

// createUpload starts a multipart upload through s3seal and returns its id.
func (e *advEnv) createUpload(t testing.TB, key string) string {
	t.Helper()
	r := e.do(t, "env", advReq{method: "POST", path: e.path(key), query: "uploads"})
	var created struct {
		UploadID string `xml:"UploadId"`
	}
	if r.status != 200 || xml.Unmarshal(r.body, &created) != nil || created.UploadID == "" {
		t.Fatalf("CreateMultipartUpload %s: %s", key, r)
	}
	return created.UploadID
}

// TestAdversarialCompleteParts sends CompleteMultipartUpload bodies with
// more parts than S3 allows, to an envelope and a passthrough upload: each
// is refused before the store is asked and the upload stays open.
func TestAdversarialCompleteParts(t *testing.T) {
	testbed.Require(t)
	body := completeBody(10_001)
	for _, up := range advStores(t) {
		t.Run(up.Name, func(t *testing.T) {
			e := newAdvEnv(t, up, advOptions{})
			for _, key := range []string{"secret/parts-" + randHex(4), "public/parts-" + randHex(4)} {
				t.Run(strings.Split(key, "/")[0], func(t *testing.T) {
					id := e.createUpload(t, key)
					r := e.do(t, "env", advReq{method: "POST", path: e.path(key), query: "uploadId=" + url.QueryEscape(id), body: body})
					e.refuse(t, r, "", 400)
					if r.code != "MalformedXML" && r.code != "InvalidPart" && r.code != "InvalidArgument" {
						t.Errorf("code %q, want MalformedXML or InvalidPart", r.code)
					}
					e.absent(t, e.bucket, key)
					ups, err := up.Client(t).ListMultipartUploads(ctx(t), &s3.ListMultipartUploadsInput{Bucket: aws.String(e.bucket), Prefix: aws.String(key)})
					must(t, err, "ListMultipartUploads directly")
					if len(ups.Uploads) != 1 {
						t.Errorf("store: %d uploads for %s, want the one still open", len(ups.Uploads), key)
					}
				})
			}
		})
	}
}

// TestAdversarialCompleteFlood sends 200 CompleteMultipartUpload bodies of
// 45,000 parts (under the 4 MiB body cap) at once to an envelope upload.
func TestAdversarialCompleteFlood(t *testing.T) {
	testbed.Require(t)
	e := resourceEnv(t)
	const key = "secret/flood"
	id := e.createUpload(t, key)
	body := completeBody(45_000)
	c := e.clients["env"]
	// CPU per 10,000-part body (S3's maximum), sequentially, for the log.
	tenK := completeBody(10_000)
	cpu0 := procCPU(t, e.p.PID())
	const seq = 10
	for range seq {
		c.do(t, advReq{method: "POST", path: e.path(key), query: "uploadId=" + url.QueryEscape(id), body: tenK,
			header: map[string]string{"X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"}})
	}
	perTenK := (procCPU(t, e.p.PID()) - cpu0) / seq

	hc := loadClient(t, e.p, 0)
	s := sample(t, e.p)
	by := startBystander(t, e, "public/1k")
	cx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	var statuses tally
	var firstErr firstError
	start := time.Now()
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := c.build(t, advReq{method: "POST", path: e.path(key), query: "uploadId=" + url.QueryEscape(id), body: body,
				header: map[string]string{"X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"}})
			statuses.add(answerOf(hc, req.WithContext(cx), &firstErr))
		}()
	}
	wg.Wait()
	f := endAttack(t, e, start, by, s)
	answers := statuses.counts()
	median, worst, peak := f.median, f.worst, f.peak
	t.Logf("resources complete-flood: 200 x 45,000-part bodies in %v; answers %v (first error: %s); %s; CPU per 10,000-part body %v",
		f.elapsed.Round(time.Millisecond), answers, firstErr.get(), f, perTenK)
	if peak > 512<<20 {
		t.Errorf("s3seal's peak RSS %d MiB, want under 512 MiB", peak>>20)
	}
	// The flood runs for seconds on a loaded 2-core machine, and a
	// bystander GET that lands in it queues; before the limits it took
	// 5.5–8.2 s (median).
	if median > 3*time.Second || worst > 6*time.Second {
		t.Errorf("bystander GET median %v, worst %v: want under 3 s and 6 s", median, worst)
	}
	for k, v := range answers {
		switch {
		case strings.HasPrefix(k, "400 ") || k == "503 SlowDown" || k == "error":
		default:
			t.Errorf("answer %q (%d times): want 400 (too many parts) or 503 SlowDown within a minute", k, v)
		}
	}
	if len(by.failures) > 0 {
		t.Errorf("bystander failures: %v", by.failures[:min(3, len(by.failures))])
	}
}

// TestAdversarialSlowReader opens 20 GETs of a 64 MiB object with one
// presigned URL and stops reading after the first bytes. With
// limits.write_timeout of 2 s, s3seal must cut them off and release their
// store connections within seconds, not hold them until the client hangs up.
func TestAdversarialSlowReader(t *testing.T) {
	testbed.Require(t)
	e := resourceEnv(t)
	const size = 64 << 20
	_, err := shared.minio.Client(t).PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(e.bucket), Key: aws.String("public/big"), Body: bytes.NewReader(randBytes(size))})
	must(t, err, "plant public/big")
	pre := e.clients["env"].build(t, advReq{method: "GET", path: e.path("public/big"), presign: true, expires: "600"})
	host := strings.TrimPrefix(e.p.Endpoint, "https://")
	baseline := storeConns(e.p.PID(), shared.minio.Port())
	s := sample(t, e.p)
	by := startBystander(t, e, "public/1k")
	const readers = 20
	conns := make([]net.Conn, 0, readers)
	for range readers {
		conn, err := dialS3seal(t, e.p, 4096)
		must(t, err, "dial s3seal")
		defer conn.Close()
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept-Encoding: identity\r\n\r\n", pre.URL.RequestURI(), host)
		resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 1024), nil)
		must(t, err, "read the response head")
		if resp.StatusCode != 200 {
			t.Fatalf("presigned GET: %d", resp.StatusCode)
		}
		conns = append(conns, conn)
	}
	// Stop reading. Wait for s3seal to let go of the store connections.
	start := time.Now()
	const bound = 25 * time.Second
	held := storeConns(e.p.PID(), shared.minio.Port())
	released := time.Duration(-1)
	for time.Since(start) < bound {
		if storeConns(e.p.PID(), shared.minio.Port()) <= baseline {
			released = time.Since(start)
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	// Were the stalled connections cut? Read what is left, briefly.
	cut := 0
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := io.Copy(io.Discard, c)
		if err != nil && !isTimeout(err) || err == nil && n < size {
			cut++
		}
	}
	f := endAttack(t, e, start, by, s)
	releasedS := "not within " + bound.String()
	if released >= 0 {
		releasedS = released.Round(100 * time.Millisecond).String()
	}
	t.Logf("resources slow-reader: %d stalled GETs of 64 MiB; store connections %d while stalled (baseline %d), released %s; %d of %d connections cut by s3seal; %s",
		readers, held, baseline, releasedS, cut, readers, f)
	if released < 0 || released > 15*time.Second {
		t.Errorf("store connections released %s after the clients stopped reading; want within 15 s (write_timeout 2 s)", releasedS)
	}
	if cut != readers {
		t.Errorf("%d of %d stalled connections were cut", cut, readers)
	}
	if f.median > time.Second {
		t.Errorf("bystander GET median %v, want under 1 s", f.median)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return err != nil && errors.As(err, &ne) && ne.Timeout()
}

// TestAdversarialRequestFlood sends 2,000 concurrent tiny ranged GETs of an
// envelope object as one client, on connections opened beforehand so that
// they arrive at once, while another client's 1 KiB GETs must stay fast:
// requests beyond the per-client cap get 503 SlowDown, memory, goroutines
// and store connections stay bounded.
func TestAdversarialRequestFlood(t *testing.T) {
	testbed.Require(t)
	e := resourceEnv(t)
	const n = 2000
	const object = "secret/ranged"
	c := e.clients["env"]
	if r := c.do(t, advReq{method: "PUT", path: e.path(object), body: randBytes(1 << 20)}); r.status != 200 {
		t.Fatalf("PUT %s: %s", object, r)
	}
	// Open the connections, 16 at a time (under the per-client cap), each
	// with one request so that s3seal holds it as an idle keep-alive
	// connection.
	type kept struct {
		conn *tls.Conn
		br   *bufio.Reader
	}
	conns := make([]kept, n)
	var warm sync.WaitGroup
	var warmErr firstError
	slots := make(chan struct{}, 16)
	for i := range n {
		warm.Add(1)
		slots <- struct{}{}
		go func() {
			defer warm.Done()
			defer func() { <-slots }()
			conn, err := dialS3seal(t, e.p, 0)
			if err != nil {
				warmErr.set(err)
				return
			}
			br := bufio.NewReader(conn)
			if a := roundTrip(conn, br, c.build(t, advReq{method: "HEAD", path: e.path("public/1k")}), time.Now().Add(30*time.Second), &warmErr); a != "200" {
				conn.Close()
				return
			}
			conns[i] = kept{conn, br}
		}()
	}
	warm.Wait()
	opened := 0
	for _, k := range conns {
		if k.conn != nil {
			opened++
			defer k.conn.Close()
		}
	}
	if opened < n*9/10 {
		t.Fatalf("opened %d of %d connections before the flood (first error: %s)", opened, n, warmErr.get())
	}
	// Goroutines with the connections open and idle: one each at least.
	idle, err := gauges(context.Background(), e.p)
	must(t, err, "gauges")
	s := sample(t, e.p)
	by := startBystander(t, e, "public/1k")
	time.Sleep(500 * time.Millisecond) // a few unloaded bystander GETs first
	var wg sync.WaitGroup
	var statuses tally
	var firstErr firstError
	gate := make(chan struct{})
	start := time.Now()
	deadline := start.Add(time.Minute)
	for i, k := range conns {
		if k.conn == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := c.build(t, advReq{method: "GET", path: e.path(object), header: map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", i*300, i*300+15)}})
			<-gate
			statuses.add(roundTrip(k.conn, k.br, req, deadline, &firstErr))
		}()
	}
	close(gate)
	wg.Wait()
	f := endAttack(t, e, start, by, s)
	answers := statuses.counts()
	median, worst, peak := f.median, f.worst, f.peak
	t.Logf("resources request-flood: %d concurrent ranged GETs in %v; answers %v (first error: %s); %d goroutines before; %s",
		opened, f.elapsed.Round(time.Millisecond), answers, firstErr.get(), int(idle.Goroutines), f)
	if peak > 256<<20 {
		t.Errorf("s3seal's peak RSS %d MiB, want under 256 MiB", peak>>20)
	}
	if added := s.goroutines - int(idle.Goroutines); added > 1500 {
		t.Errorf("the flood added %d goroutines to the %d of the idle connections; want under 1,500", added, int(idle.Goroutines))
	}
	if s.connsPeak > 320 {
		t.Errorf("s3seal held %d store connections at once, want at most max_requests (256) and a few idle ones", s.connsPeak)
	}
	// The flood itself lasts well under a second, so a bystander GET that
	// lands in it queues behind it; before the limits it took 5–8 s.
	if median > 2*time.Second || worst > 5*time.Second {
		t.Errorf("bystander GET median %v, worst %v: want under 2 s and 5 s", median, worst)
	}
	if answers["503 SlowDown"] == 0 {
		t.Error("no request was refused with 503 SlowDown beyond max_requests_per_client (32)")
	}
	for k, v := range answers {
		switch {
		case k == "206" || k == "503 SlowDown":
		case k == "error" && v <= int64(n/20):
			// Connection failures of the test's own client on a loaded
			// machine.
		default:
			t.Errorf("answer %q (%d times): want 206 or 503 SlowDown within a minute", k, v)
		}
	}
	if len(by.failures) > 0 {
		t.Errorf("bystander failures: %v", by.failures[:min(3, len(by.failures))])
	}
}
