package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/integration/soak"
	"github.com/s3seal/s3seal/integration/testbed"
)

// crash ends a process with SIGKILL, as a crash would, from any goroutine,
// and waits until it has exited.
func crash(p *testbed.Process) {
	if pid := p.PID(); pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	select {
	case <-p.Exited():
	case <-time.After(10 * time.Second):
	}
}

// TestReliabilityUpstreamKilled kills the store (a MinIO of its own) in the
// middle of a PUT, a multipart upload and a GET. Each time the client must
// get an error, the store must hold no partial or corrupt object, s3seal
// must stay healthy, and it must serve again as soon as the store is back.
func TestReliabilityUpstreamKilled(t *testing.T) {
	testbed.Require(t)
	mini := testbed.StartMinIO(t, testbed.MinIOOptions{})
	p, _ := startEnvelopeProxy(t, mini, map[string]string{"S3SEAL_LOG_LEVEL": "info"})
	c := p.Client(t, noRetry)
	bucket := newBucket(t, mini)
	written := map[string][]byte{}
	put := func(key string, body []byte) error {
		_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
		if err == nil {
			written[key] = body
		}
		return err
	}
	must(t, put("before", randBytes(1<<20)), "PutObject before the faults")

	// down checks s3seal while the store is down: healthy, ready (an
	// upstream outage must not empty a load balancer), and answering S3
	// requests at once with a 503.
	down := func(t *testing.T) {
		health(t, p)
		start := time.Now()
		_, err := c.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("before")})
		if err == nil || !strings.Contains(err.Error(), "503") {
			t.Errorf("HEAD while the store is down: %v, want a 503", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("HEAD while the store is down took %v", d)
		}
	}
	// back restarts the store and returns how long s3seal took to serve a
	// PUT once the store was ready again.
	back := func(t *testing.T, key string) time.Duration {
		mini.Restart(t)
		return retryUntil(t, "PUT after the store came back", time.Minute, func() error { return put(key, randBytes(1000)) })
	}

	t.Run("mid-put", func(t *testing.T) {
		body := randBytes(48 << 20)
		tr := &triggerReader{r: bytes.NewReader(body), at: 16 << 20, fire: func() { crash(mini.Process()) }}
		start := time.Now()
		_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("killed-put"), Body: tr, ContentLength: aws.Int64(int64(len(body)))})
		if err == nil {
			t.Fatal("PUT succeeded although the store died during it")
		}
		failed := time.Since(start)
		down(t)
		rec := back(t, "after-put")
		relRecord(t, "fault", map[string]any{"scenario": "store killed mid-PUT (48 MiB, at 16 MiB)", "client": errSummary(err), "client_error_after": failed, "recovery": rec})
	})

	t.Run("mid-multipart", func(t *testing.T) {
		const ps = 5 << 20
		key := "killed-mpu"
		parts := [][]byte{randBytes(ps), randBytes(ps), randBytes(1 << 20)}
		up, err := c.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		must(t, err, "CreateMultipartUpload")
		etags := make([]*string, len(parts))
		upload := func(n int, body io.Reader) error {
			out, err := c.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId,
				PartNumber: aws.Int32(int32(n + 1)), Body: body, ContentLength: aws.Int64(int64(len(parts[n])))})
			if err == nil {
				etags[n] = out.ETag
			}
			return err
		}
		must(t, upload(0, bytes.NewReader(parts[0])), "UploadPart 1")
		partErr := upload(1, &triggerReader{r: bytes.NewReader(parts[1]), at: 2 << 20, fire: func() { crash(mini.Process()) }})
		if partErr == nil {
			t.Fatal("UploadPart succeeded although the store died during it")
		}
		down(t)
		mini.Restart(t)
		// The upload id s3seal handed out still works: the part is sent
		// again and the upload completes.
		rec := retryUntil(t, "UploadPart 2 again", time.Minute, func() error { return upload(1, bytes.NewReader(parts[1])) })
		must(t, upload(2, bytes.NewReader(parts[2])), "UploadPart 3")
		if objectExists(t, mini, bucket, key) {
			t.Error("an object exists before CompleteMultipartUpload")
		}
		var done []types.CompletedPart
		for i, e := range etags {
			done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: e})
		}
		_, err = c.CompleteMultipartUpload(ctx(t), &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
		must(t, err, "CompleteMultipartUpload after the store came back")
		written[key] = bytes.Join(parts, nil)
		relRecord(t, "fault", map[string]any{"scenario": "store killed mid-UploadPart (5 MiB part, at 2 MiB)", "client": errSummary(partErr), "recovery": rec,
			"note": "same upload id completed after the restart"})
	})

	t.Run("mid-get", func(t *testing.T) {
		want := randBytes(64 << 20)
		must(t, put("big", want), "PutObject")
		out, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("big")})
		must(t, err, "GetObject")
		got := make([]byte, 4<<20)
		_, err = io.ReadFull(out.Body, got)
		must(t, err, "read the first 4 MiB")
		crash(mini.Process())
		rest, err := io.ReadAll(out.Body)
		out.Body.Close()
		got = append(got, rest...)
		if err == nil {
			t.Errorf("GET ended cleanly after %d of %d bytes although the store died", len(got), len(want))
		}
		if len(got) >= len(want) {
			t.Errorf("the whole object arrived (%d bytes); the fault came too late", len(got))
		}
		wrong := 0
		if !bytes.Equal(got, want[:min(len(got), len(want))]) {
			wrong = 1
			t.Error("bytes released before the abort differ from the object")
		}
		down(t)
		mini.Restart(t)
		rec := retryUntil(t, "GET after the store came back", time.Minute, func() error {
			o, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("big")})
			if err != nil {
				return err
			}
			b, err := io.ReadAll(o.Body)
			o.Body.Close()
			if err == nil && !bytes.Equal(b, want) {
				t.Fatal("GET after the restart returned other bytes")
			}
			return err
		})
		relRecord(t, "fault", map[string]any{"scenario": "store killed mid-GET (64 MiB, after 4 MiB read)", "client": errSummary(err),
			"released_bytes": len(got), "wrong_bytes_released": wrong, "recovery": rec})
	})

	unexpected, corrupt, open := storeAudit(t, mini, c, bucket, written)
	relRecord(t, "fault-audit", map[string]any{"scenario": "store killed", "objects": len(written), "partial_or_unexpected": unexpected, "corrupt": corrupt, "open_uploads": open})
	health(t, p)
}

// errSummary shortens an SDK error to its status and code for the tables.
func errSummary(err error) string {
	if err == nil {
		return "ok"
	}
	var re interface{ HTTPStatusCode() int }
	status := ""
	if errors.As(err, &re) && re.HTTPStatusCode() > 0 {
		status = strconv.Itoa(re.HTTPStatusCode()) + " "
	}
	if code := apiCode(err); code != "" {
		return status + code
	}
	s := err.Error()
	for _, k := range []string{"INTERNAL_ERROR", "connection reset", "broken pipe", "unexpected EOF", "EOF", "timeout", "closed"} {
		if strings.Contains(s, k) {
			if k == "INTERNAL_ERROR" {
				k = "stream reset (HTTP/2 INTERNAL_ERROR)"
			}
			return status + k
		}
	}
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return status + s
}

// TestReliabilityProxyKilled kills s3seal in the middle of a PUT, and
// makes a client go away in the middle of one: no object may be committed
// upstream, and the aborted upload is logged.
func TestReliabilityProxyKilled(t *testing.T) {
	testbed.Require(t)
	up := shared.minio
	p, _ := startEnvelopeProxy(t, up, map[string]string{"S3SEAL_LOG_LEVEL": "info"})
	c := p.Client(t, noRetry)
	bucket := newBucket(t, up)

	t.Run("s3seal-killed-mid-put", func(t *testing.T) {
		body := randBytes(48 << 20)
		tr := &triggerReader{r: bytes.NewReader(body), at: 16 << 20, fire: func() { crash(p.Process) }}
		_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("killed-proxy"), Body: tr, ContentLength: aws.Int64(int64(len(body)))})
		if err == nil {
			t.Fatal("PUT succeeded although s3seal died during it")
		}
		time.Sleep(time.Second) // let the store notice the dropped connection
		stored := objectExists(t, up, bucket, "killed-proxy")
		if stored {
			t.Error("an object was committed although s3seal died mid-body")
		}
		start := time.Now()
		p.Restart(t)
		waitReady(t, p.Admin+"/readyz", 20*time.Second)
		rec := time.Since(start) + retryUntil(t, "PUT after restarting s3seal", 30*time.Second, func() error {
			_, err := p.Client(t, noRetry).PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("after-restart"), Body: strings.NewReader("ok")})
			return err
		})
		relRecord(t, "fault", map[string]any{"scenario": "s3seal killed mid-PUT (48 MiB, at 16 MiB)", "client": errSummary(err), "committed": stored, "recovery": rec,
			"note": "recovery includes s3seal's restart"})
	})

	t.Run("client-disconnects-mid-put", func(t *testing.T) {
		rc := newRawClient(t, p)
		key := "client-gone"
		body := randBytes(32 << 20)
		req, _ := http.NewRequest(http.MethodPut, rc.url(bucket, key), nil)
		req.ContentLength = int64(len(body))
		rc.sign(t, req, p.SecretKey, "UNSIGNED-PAYLOAD", time.Now())
		req.Body = io.NopCloser(&triggerReader{r: bytes.NewReader(body), at: 8 << 20, failErr: errors.New("the client gave up")})
		_, err := rc.hc.Do(req)
		if err == nil {
			t.Fatal("the request succeeded with half a body")
		}
		time.Sleep(time.Second)
		stored := objectExists(t, up, bucket, key)
		if stored {
			t.Error("an object was committed although the client went away mid-body")
		}
		line := waitLog(t, p, 10*time.Second, `"key":"`+key+`"`, `"error"`)
		relRecord(t, "fault", map[string]any{"scenario": "client disconnects mid-PUT (32 MiB, at 8 MiB)", "committed": stored, "logged": logField(line, "error")})
		health(t, p)
	})
}

// logField returns the string value of a field of a JSON log line.
func logField(line, field string) string {
	_, v, ok := strings.Cut(line, `"`+field+`":"`)
	if !ok {
		return ""
	}
	v, _, _ = strings.Cut(v, `"`)
	return v
}

// TestReliabilityKeyProviderDown stops the KMS: reads of objects whose data
// keys are cached go on, new writes go on while the data key's reuse budget
// lasts, then fail at once with a 503 and a clear message, and nothing is
// stored that cannot be read back. Writes resume by themselves when the
// KMS returns.
func TestReliabilityKeyProviderDown(t *testing.T) {
	testbed.Require(t)
	up := shared.minio
	kms := testbed.StartLocalKMS(t)
	keyID, _ := kms.CreateKey(t)
	const budget = 5
	const retryAfter = 2 * time.Second
	env := map[string]string{
		"S3SEAL_MODE": "envelope", "S3SEAL_KEYS": "aws-kms:" + keyID, "AWS_ENDPOINT_URL_KMS": kms.Endpoint, "S3SEAL_LOG_LEVEL": "info",
		"S3SEAL_CONFIG": writeConfig(t, fmt.Sprintf("keys_cache: {reuse_objects: %d, retry_after: %s}\n", budget, retryAfter)),
	}
	p := startProxy(t, up, proxyOptions{Env: env})
	c := p.Client(t, noRetry)
	bucket := newBucket(t, up)
	written := map[string][]byte{}
	put := func(key string) (time.Duration, error) {
		body := randBytes(70_000)
		start := time.Now()
		_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
		if err == nil {
			written[key] = body
		}
		return time.Since(start), err
	}
	read := func(key string) error {
		out, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			return err
		}
		b, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err == nil && !bytes.Equal(b, written[key]) {
			return fmt.Errorf("%s: other bytes", key)
		}
		return err
	}
	_, err := put("k0")
	must(t, err, "PUT with the KMS up")
	must(t, read("k0"), "GET with the KMS up")

	kms.Stop(t)
	readsOK := 0
	if err := read("k0"); err != nil {
		t.Errorf("GET of an object whose data key is cached, KMS down: %v", err)
	} else {
		readsOK++
	}
	for i := 1; i < budget; i++ {
		if _, err := put(fmt.Sprintf("k%d", i)); err != nil {
			t.Errorf("PUT %d of the reuse budget of %d, KMS down: %v", i+1, budget, err)
		}
	}
	first, err1 := put("k-over-1")
	second, err2 := put("k-over-2")
	for _, e := range []error{err1, err2} {
		msg := fmt.Sprint(e)
		if e == nil || !strings.Contains(msg, "503") || apiCode(e) != "ServiceUnavailable" || !strings.Contains(msg, "key provider is unavailable") {
			t.Errorf("PUT beyond the budget, KMS down: %v; want 503 ServiceUnavailable naming the key provider", e)
		}
	}
	if second > 500*time.Millisecond {
		t.Errorf("a PUT within retry_after of a failed renewal took %v; want an immediate refusal", second)
	}
	for _, k := range []string{"k-over-1", "k-over-2"} {
		if objectExists(t, up, bucket, k) {
			t.Errorf("%s was stored although its PUT failed", k)
		}
	}
	for i := 1; i < budget; i++ {
		if err := read(fmt.Sprintf("k%d", i)); err != nil {
			t.Errorf("GET k%d (cached key), KMS down: %v", i, err)
		} else {
			readsOK++
		}
	}

	kms.Restart(t)
	rec := retryUntil(t, "PUT after the KMS came back", time.Minute, func() error { _, err := put("k-after"); return err })

	// A fresh process, with nothing cached, reads every object stored.
	p.Stop(t)
	p2 := startProxy(t, up, proxyOptions{Env: env})
	c = p2.Client(t, noRetry)
	unexpected, corrupt, _ := storeAudit(t, up, c, bucket, written)
	relRecord(t, "fault", map[string]any{
		"scenario":        fmt.Sprintf("KMS stopped (reuse budget %d, retry_after %v)", budget, retryAfter),
		"cached_reads_ok": readsOK, "writes_within_budget": budget - 1,
		"refusal": errSummary(err1), "first_refusal_after": first, "next_refusal_after": second,
		"recovery": rec, "unreadable_objects": corrupt, "partial_or_unexpected": unexpected,
	})
}

// TestReliabilitySlowClients holds connections open the slow way: idle TCP
// connections, headers sent a byte at a time (slowloris) and bodies that
// stop. s3seal's timeouts must close them, and its goroutine count and
// memory must come back to where they were.
func TestReliabilitySlowClients(t *testing.T) {
	testbed.Require(t)
	up := shared.minio
	const headerTO, bodyTO, idleTO = 2 * time.Second, 3 * time.Second, 4 * time.Second
	cfg := writeConfig(t, fmt.Sprintf("limits: {read_header_timeout: %s, body_read_timeout: %s, idle_timeout: %s}\n", headerTO, bodyTO, idleTO))
	p, _ := startEnvelopeProxy(t, up, map[string]string{"S3SEAL_CONFIG": cfg, "S3SEAL_LOG_LEVEL": "info", "S3SEAL_PPROF": "true"})
	c := p.Client(t, noRetry)
	bucket := newBucket(t, up)
	for i := 0; i < 5; i++ {
		_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("warm"), Body: bytes.NewReader(randBytes(200_000))})
		must(t, err, "warm-up PUT")
		getBytes(t, c, bucket, "warm")
	}
	time.Sleep(idleTO + time.Second) // the warm-up's keep-alive connections go
	base := settledGauges(t, p, 0, 0)
	host := strings.TrimPrefix(p.Endpoint, "https://")
	tlsCfg := &tls.Config{RootCAs: x509Pool(t, mustRead(t, p.CAFile)), ServerName: "127.0.0.1"}
	rc := newRawClient(t, p)
	limits := map[string]time.Duration{"no TLS handshake": headerTO, "slowloris headers": headerTO, "stalled body": bodyTO, "idle keep-alive": idleTO}

	// The same burst of slow clients, three times (two with -short): the
	// first sets the runtime's steady state, later ones must not add to it.
	rounds := 3
	if testing.Short() {
		rounds = 2
	}
	var after []soak.Gauges
	for round := 1; round <= rounds; round++ {
		results, peak := slowClientBurst(t, p, host, tlsCfg, rc, bucket, round)
		for kind, rs := range results {
			var worst time.Duration
			answers := map[string]int{}
			for _, r := range rs {
				worst = max(worst, r.d)
				answers[r.resp]++
			}
			if worst > limits[kind]+3*time.Second {
				t.Errorf("%s: a connection stayed open %v (timeout %v)", kind, worst, limits[kind])
			}
			if kind == "stalled body" && answers["HTTP/1.1 400 Bad Request"] != len(rs) {
				t.Errorf("stalled bodies were answered %v, want 400 (RequestTimeout)", answers)
			}
			if round == 1 {
				relRecord(t, "slow-clients", map[string]any{"kind": kind, "connections": len(rs), "timeout": limits[kind], "closed_within": worst, "answers": fmt.Sprint(answers)})
			}
		}
		for i := 0; i < 10; i++ {
			if objectExists(t, up, bucket, fmt.Sprintf("stalled-%d-%d", round, i)) {
				t.Errorf("stalled-%d-%d was stored", round, i)
			}
		}
		g := settledGauges(t, p, base.Goroutines+2, 20*time.Second)
		after = append(after, g)
		relRecord(t, "slow-clients-gauges", map[string]any{"round": round, "goroutines_before": base.Goroutines, "goroutines_peak": peak, "goroutines_after": g.Goroutines,
			"rss_mib_before": mib(base.RSS), "rss_mib_after": mib(g.RSS), "heap_inuse_mib_before": mib(base.HeapInuse), "heap_inuse_mib_after": mib(g.HeapInuse)})
	}
	// Connections and their goroutines must all go; memory may settle at
	// a higher level after the first burst (buffer pools, the runtime's
	// own caches) but must not grow with each burst.
	for i, g := range after {
		if g.Goroutines > base.Goroutines+2 {
			t.Errorf("round %d: goroutines %v before, %v after the slow clients left", i+1, base.Goroutines, g.Goroutines)
		}
		// Resident memory lags the heap (freed pages go back to the
		// system gradually), so it gets a looser bound than the heap.
		if i == len(after)-1 && g.RSS > after[0].RSS*1.25+8<<20 {
			t.Errorf("round %d: resident memory %s MiB after round 1, %s MiB now: it grows with each burst", i+1, mib(after[0].RSS), mib(g.RSS))
		}
		if i > 0 && g.HeapInuse > after[0].HeapInuse*1.1+1<<20 {
			t.Errorf("round %d: live heap %s MiB after round 1, %s MiB now: it grows with each burst", i+1, mib(after[0].HeapInuse), mib(g.HeapInuse))
		}
	}
	health(t, p)
}

func mib(b float64) string { return fmt.Sprintf("%.1f", b/(1<<20)) }

type slowResult struct {
	d    time.Duration
	resp string
}

// slowClientBurst opens, at once, 20 TCP connections that never start TLS,
// 20 slowloris connections (a header line, then a byte every 500 ms), 10
// signed PUTs whose body stops after 1 MiB of 8 MiB, and 10 keep-alive
// connections left idle after one request, and returns, by kind, how long
// each took to be closed and what s3seal answered, and the peak goroutine
// count seen meanwhile.
func slowClientBurst(t *testing.T, p *proxy, host string, tlsCfg *tls.Config, rc *rawClient, bucket string, round int) (map[string][]slowResult, float64) {
	closedWithin := func(conn net.Conn, start time.Time) (time.Duration, string) {
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		b, _ := io.ReadAll(conn)
		return time.Since(start), firstLine(string(b))
	}
	var mu sync.Mutex
	results := map[string][]slowResult{}
	var wg sync.WaitGroup
	run := func(kind string, n int, f func(i int) (net.Conn, time.Time)) {
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				conn, start := f(i)
				if conn == nil {
					return
				}
				defer conn.Close()
				d, resp := closedWithin(conn, start)
				mu.Lock()
				results[kind] = append(results[kind], slowResult{d, resp})
				mu.Unlock()
			}(i)
		}
	}
	dialTLS := func() *tls.Conn {
		conn, err := tls.Dial("tcp", host, tlsCfg)
		if err != nil {
			t.Errorf("dial: %v", err)
			return nil
		}
		return conn
	}
	var peak float64
	stopPeak := make(chan struct{})
	peakDone := make(chan struct{})
	go func() {
		defer close(peakDone)
		for {
			if g, err := gauges(context.Background(), p); err == nil {
				peak = max(peak, g.Goroutines)
			}
			select {
			case <-stopPeak:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	run("no TLS handshake", 20, func(int) (net.Conn, time.Time) {
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Errorf("dial: %v", err)
			return nil, time.Time{}
		}
		return conn, time.Now()
	})
	run("slowloris headers", 20, func(int) (net.Conn, time.Time) {
		conn := dialTLS()
		if conn == nil {
			return nil, time.Time{}
		}
		start := time.Now()
		_, _ = io.WriteString(conn, "GET /"+bucket+"/warm HTTP/1.1\r\nHost: "+host+"\r\n")
		go func() {
			for i := 0; i < 60; i++ {
				if _, err := conn.Write([]byte("X")); err != nil {
					return
				}
				time.Sleep(500 * time.Millisecond)
			}
		}()
		return conn, start
	})
	run("stalled body", 10, func(i int) (net.Conn, time.Time) {
		req, _ := http.NewRequest(http.MethodPut, rc.url(bucket, fmt.Sprintf("stalled-%d-%d", round, i)), nil)
		req.ContentLength = 8 << 20
		rc.sign(t, req, p.SecretKey, "UNSIGNED-PAYLOAD", time.Now())
		conn := dialTLS()
		if conn == nil {
			return nil, time.Time{}
		}
		var hdr bytes.Buffer
		fmt.Fprintf(&hdr, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", req.URL.RequestURI(), host, req.ContentLength)
		for k, v := range req.Header {
			fmt.Fprintf(&hdr, "%s: %s\r\n", k, v[0])
		}
		hdr.WriteString("\r\n")
		_, _ = conn.Write(hdr.Bytes())
		_, _ = conn.Write(randBytes(1 << 20))
		return conn, time.Now()
	})
	run("idle keep-alive", 10, func(int) (net.Conn, time.Time) {
		conn := dialTLS()
		if conn == nil {
			return nil, time.Time{}
		}
		req, _ := http.NewRequest(http.MethodGet, p.Endpoint+"/", nil)
		_ = req.Write(conn)
		resp, err := http.ReadResponse(bufioReader(conn), req)
		if err != nil {
			t.Errorf("idle keep-alive: first request: %v", err)
			return nil, time.Time{}
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return conn, time.Now()
	})
	wg.Wait()
	close(stopPeak)
	<-peakDone
	return results, peak
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err, "read "+path)
	return b
}

func firstLine(s string) string {
	if s == "" {
		return "closed without an answer"
	}
	l, _, _ := strings.Cut(s, "\r\n")
	return l
}

// TestReliabilityUpstreamLatency puts a TCP proxy that can delay answers
// between s3seal and its store: slow answers within the configured
// response-header timeout succeed, slower ones fail with a 503 once that
// timeout passes (not when the store finally answers), s3seal serves again
// at once when the store is fast again, and nothing leaks.
func TestReliabilityUpstreamLatency(t *testing.T) {
	testbed.Require(t)
	mini := testbed.StartMinIO(t, testbed.MinIOOptions{})
	fp := startFaultProxy(t, "127.0.0.1:"+strconv.Itoa(mini.Port()))
	via := *mini
	via.Endpoint = "http://" + fp.Addr()
	const headerTO = 2 * time.Second
	// Short idle timeouts on both sides, so that the goroutine count
	// after the spike is not kept up by idle keep-alive connections.
	cfg := writeConfig(t, fmt.Sprintf("upstream: {response_header_timeout: %s, idle_conn_timeout: 2s}\nlimits: {idle_timeout: 2s}\n", headerTO))
	p, _ := startEnvelopeProxy(t, &via, map[string]string{"S3SEAL_CONFIG": cfg, "S3SEAL_LOG_LEVEL": "info", "S3SEAL_PPROF": "true"})
	c := p.Client(t, noRetry)
	bucket := newBucket(t, mini)
	want := randBytes(300_000)
	_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("obj"), Body: bytes.NewReader(want)})
	must(t, err, "PutObject")
	get := func() (time.Duration, error) {
		start := time.Now()
		out, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("obj")})
		if err == nil {
			var b []byte
			b, err = io.ReadAll(out.Body)
			out.Body.Close()
			if err == nil && !bytes.Equal(b, want) {
				err = errors.New("other bytes")
			}
		}
		return time.Since(start), err
	}
	for i := 0; i < 3; i++ {
		_, err := get()
		must(t, err, "GET")
	}
	base := settledGauges(t, p, 0, 0)

	for _, delay := range []time.Duration{300 * time.Millisecond, 5 * time.Second} {
		fp.SetDelay(delay)
		const n = 6
		var wg sync.WaitGroup
		var mu sync.Mutex
		var worst time.Duration
		outcomes := map[string]int{}
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d, err := get()
				mu.Lock()
				defer mu.Unlock()
				worst = max(worst, d)
				outcomes[errSummary(err)]++
			}()
		}
		wg.Wait()
		if delay < headerTO && outcomes["ok"] != n {
			t.Errorf("delay %v (below the %v timeout): %v", delay, headerTO, outcomes)
		}
		if delay > headerTO {
			if outcomes["504 RequestTimeout"] != n {
				t.Errorf("delay %v (above the %v timeout): %v, want 504 RequestTimeout", delay, headerTO, outcomes)
			}
			if worst >= delay {
				t.Errorf("delay %v: requests took %v; the %v timeout did not cut them short", delay, worst, headerTO)
			}
		}
		relRecord(t, "upstream-latency", map[string]any{"store_delay": delay, "response_header_timeout": headerTO, "requests": n, "outcomes": fmt.Sprint(outcomes), "slowest": worst})
	}
	fp.SetDelay(0)
	rec := retryUntil(t, "GET once the store is fast again", 30*time.Second, func() error { _, err := get(); return err })
	after := settledGauges(t, p, base.Goroutines+2, 20*time.Second)
	if after.Goroutines > base.Goroutines+2 {
		t.Errorf("goroutines: %v before, %v after the latency spike", base.Goroutines, after.Goroutines)
	}
	relRecord(t, "fault", map[string]any{"scenario": fmt.Sprintf("store answers 5 s late (response_header_timeout %v)", headerTO), "client": "504 RequestTimeout",
		"recovery": rec, "goroutines_before": base.Goroutines, "goroutines_after": after.Goroutines})
	health(t, p)
}

// TestReliabilityCertificates replaces s3seal's files-mode certificate with
// garbage and with an expired one, and lets a served certificate expire:
// s3seal keeps serving the last good certificate and says so in its log.
func TestReliabilityCertificates(t *testing.T) {
	testbed.Require(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM, keyPEM := shared.ca.IssueCert(t, "127.0.0.1", "localhost")
	must(t, os.WriteFile(certFile, certPEM, 0o644), "write")
	must(t, os.WriteFile(keyFile, keyPEM, 0o600), "write")
	p := startProxy(t, shared.minio, proxyOptions{Env: map[string]string{"S3SEAL_TLS_CERT": certFile, "S3SEAL_TLS_KEY": keyFile, "S3SEAL_LOG_LEVEL": "info"}})
	host := strings.TrimPrefix(p.Endpoint, "https://")
	first := servedSerial(t, host)
	bucket := newBucket(t, shared.minio)
	s3ok := func() bool {
		_, err := p.Client(t, noRetry).ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
		return err == nil
	}

	replace := func(cert, key []byte) {
		must(t, os.WriteFile(certFile, cert, 0o644), "write")
		must(t, os.WriteFile(keyFile, key, 0o600), "write")
	}
	expiredCert, expiredKey := selfSigned(t, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
	for _, c := range []struct {
		name      string
		cert, key []byte
		log       string
	}{
		{"garbage", []byte("this is not a certificate\n"), keyPEM, `"error":"`},
		{"expired", expiredCert, expiredKey, "expired"},
	} {
		replace(c.cert, c.key)
		start := time.Now()
		line := waitLog(t, p, 10*time.Second, "certificate files changed but cannot be used; keeping the previous certificate")
		if !strings.Contains(line, c.log) {
			t.Errorf("%s: log line %q does not say why (%q)", c.name, line, c.log)
		}
		serial := servedSerial(t, host)
		if serial != first {
			t.Errorf("%s: s3seal serves another certificate", c.name)
		}
		ok := s3ok()
		if !ok {
			t.Errorf("%s: S3 requests fail", c.name)
		}
		relRecord(t, "certificates", map[string]any{"case": "files-mode certificate replaced with " + c.name, "still_serving_last_good": serial == first && ok,
			"logged_within": time.Since(start), "log": "certificate files changed but cannot be used; keeping the previous certificate"})
		// Clear the log's memory of this content for the next case.
		must(t, os.Truncate(p.LogPath(), 0), "truncate log")
	}
	// A good replacement is taken: the refusals above were not a watcher
	// that stopped.
	certPEM2, keyPEM2 := shared.ca.IssueCert(t, "127.0.0.1", "localhost")
	replace(certPEM2, keyPEM2)
	waitLog(t, p, 10*time.Second, "reloaded certificate files")
	if servedSerial(t, host) == first {
		t.Error("a valid replacement was not served")
	}

	// A served certificate reaching its expiry.
	shortCert, shortKey := selfSigned(t, time.Now().Add(-time.Minute), time.Now().Add(8*time.Second))
	dir2 := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir2, "c.pem"), shortCert, 0o644), "write")
	must(t, os.WriteFile(filepath.Join(dir2, "k.pem"), shortKey, 0o600), "write")
	p2 := startProxy(t, shared.minio, proxyOptions{Env: map[string]string{"S3SEAL_TLS_CERT": filepath.Join(dir2, "c.pem"), "S3SEAL_TLS_KEY": filepath.Join(dir2, "k.pem"), "S3SEAL_LOG_LEVEL": "info"}})
	host2 := strings.TrimPrefix(p2.Endpoint, "https://")
	s2 := servedSerial(t, host2)
	waitLog(t, p2, 10*time.Second, "the served certificate expires soon")
	start := time.Now()
	waitLog(t, p2, 20*time.Second, "the served certificate has expired")
	expiry := scrape(t, p2, "s3seal_tls_certificate_expiry_timestamp_seconds")
	if expiry > float64(time.Now().Unix()) {
		t.Errorf("expiry metric %v is in the future", expiry)
	}
	relRecord(t, "certificates", map[string]any{"case": "served certificate expires", "still_serving_last_good": servedSerial(t, host2) == s2,
		"logged_within": time.Since(start), "log": "the served certificate expires soon; … has expired and clients will refuse it; replace it"})
}

// servedSerial returns the serial number of the certificate s3seal serves.
func servedSerial(t testing.TB, host string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", host, &tls.Config{InsecureSkipVerify: true})
	must(t, err, "TLS handshake")
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// selfSigned returns a certificate and key for 127.0.0.1 valid in
// [notBefore, notAfter].
func selfSigned(t testing.TB, notBefore, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err, "key")
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    notBefore, NotAfter: notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:    []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	must(t, err, "certificate")
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	must(t, err, "key")
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})
}
