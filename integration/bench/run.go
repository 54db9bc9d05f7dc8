package main

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/integration/testbed"
)

// rssInterval is how often the proxies' resident set is sampled.
const rssInterval = 50 * time.Millisecond

// run carries out a benchmark run and writes its outputs. It returns the
// results (also when some targets were unavailable or the time ran out:
// what was measured is written) or an error if nothing could be measured.
func run(ctx context.Context, o options) (*results, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	root, err := moduleRoot(wd)
	if err != nil {
		return nil, err
	}
	o = o.withDefaults(root)
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	tb := testbed.NewMainTB("bench")
	var res *results
	var runErr error
	ok := tb.Do(func(tb testing.TB) { res, runErr = execute(ctx, tb, o, root) })
	logf(o.Log, "stopping every process the run started")
	closed := tb.Close()
	switch {
	case !ok || !closed:
		return res, fmt.Errorf("run failed:\n%s", tb.Logs())
	case runErr != nil:
		return res, runErr
	}
	res.Files, err = writeOutputs(o.Out, res)
	return res, err
}

func logf(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "bench: "+format+"\n", args...)
}

// execute starts the servers, sets up the buckets and runs the samples.
func execute(ctx context.Context, tb testing.TB, o options, root string) (*results, error) {
	sz := fullSizes
	if o.Short {
		sz = shortSizes
	}
	started := time.Now()
	dir := tb.TempDir()
	b := &bed{dir: dir, pprof: o.Pprof, baseline: o.Baseline}

	specs := selectedTargets(o.Targets)
	needS3seal := false
	for _, s := range specs {
		needS3seal = needS3seal || s.Kind == kindS3seal
	}
	var build sync.WaitGroup
	if needS3seal {
		build.Add(1)
		go func() {
			defer build.Done()
			b.s3seal, b.s3sealErr = o.S3seal, nil
			if b.s3seal == "" {
				b.s3seal, b.s3sealErr = buildS3seal(ctx, root, dir)
			}
			if b.s3sealErr == nil {
				b.keyring, b.keyErr = makeKeyring(ctx, b.s3seal, dir)
			}
			if b.s3sealErr == nil && b.keyErr == nil {
				b.recipients, b.keyErr = makeRecipients(ctx, b.s3seal, dir)
			}
		}()
	}

	logf(o.Log, "starting MinIO (TLS, KMS)")
	b.minio = testbed.StartMinIO(tb, testbed.MinIOOptions{TLS: true, KMS: true})
	var err error
	if b.minioRoots, err = loadRoots(b.minio.CAFile); err != nil {
		return nil, err
	}
	ca := testbed.NewCA(tb, "s3seal bench")
	ca.WriteFiles(tb, dir, "proxy-ca.pem", "proxy-cert.pem", "proxy-key.pem", "127.0.0.1", "localhost")
	b.certFile, b.keyFile = filepath.Join(dir, "proxy-cert.pem"), filepath.Join(dir, "proxy-key.pem")
	b.roots = ca.Pool()
	build.Wait()
	if b.s3sealErr != nil {
		logf(o.Log, "s3seal targets unavailable: %v", b.s3sealErr)
	}

	// Buckets, straight on MinIO.
	groups := map[string]bool{}
	for _, s := range specs {
		groups[s.Group] = true
	}
	groups["plain"] = true // direct writes the plain group's objects
	mc := (&target{targetSpec: allTargets[0], Endpoint: b.minio.Endpoint, roots: b.minioRoots,
		accessKey: b.minio.AccessKey, secretKey: b.minio.SecretKey}).client()
	for g := range groups {
		if _, err := mc.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucketFor(g))}); err != nil {
			return nil, fmt.Errorf("create bucket %s: %w", bucketFor(g), err)
		}
	}

	// Targets, all at once; direct is always there to write the plain group.
	logf(o.Log, "starting targets: %s", strings.Join(o.Targets, ", "))
	all := specs
	if !containsTarget(specs, "direct") {
		all = append([]targetSpec{allTargets[0]}, specs...)
	}
	targets := make([]*target, len(all))
	cleanups := make([]func(), len(all))
	var wg sync.WaitGroup
	for i, s := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			targets[i], cleanups[i] = b.startTarget(ctx, s)
		}()
	}
	wg.Wait()
	tb.Cleanup(func() { parallel(cleanups) }) // before MinIO, which was started first
	for i, t := range targets {
		if t.Available() {
			if err := firstRequest(ctx, t); err != nil {
				t.Unavailable = oneLine("first request failed: " + err.Error())
				cleanups[i]() // stop it now; stopping again at the end is a no-op
			}
		}
		if !t.Available() {
			logf(o.Log, "target %s unavailable: %s", t.Name, t.Unavailable)
		}
	}
	defaultPut := map[string]string{}
	for _, t := range targets {
		if t.Available() {
			defaultPut[t.Name] = probeDefaultPut(ctx, t)
		}
	}

	// Objects, untimed: written once per group through a target that
	// stores them the way the group's readers expect.
	data := make([]byte, sz.Big)
	rand.NewChaCha8([32]byte{1}).Read(data) //nolint:errcheck // never fails
	needList := contains(o.Workloads, "list")
	for g := range groups {
		w := groupWriter(targets, g)
		if w == nil || !w.Available() {
			continue
		}
		logf(o.Log, "setting up bucket %s through %s", bucketFor(g), w.Name)
		if err := setupGroup(ctx, w, sz, data, needList); err != nil {
			for _, t := range targets {
				if t.Group == g && t.Available() {
					t.Unavailable = oneLine("setting up its objects failed: " + err.Error())
				}
			}
		}
	}

	res := &results{
		Machine:  machineFacts(ctx, root, b),
		Short:    o.Short,
		Reps:     o.Reps,
		Sizes:    sz,
		Started:  started.UTC(),
		Command:  commandLine(o),
		MinioPID: b.minio.Process().PID(),
	}
	for _, t := range targets {
		if !containsTarget(specs, t.Name) {
			continue
		}
		res.Targets = append(res.Targets, targetInfo{Name: t.Name, Kind: t.Kind, Mode: t.Mode, WriteOnly: t.WriteOnly, Endpoint: t.Endpoint, PID: t.PID(), Unavailable: t.Unavailable, DefaultPut: defaultPut[t.Name]})
	}
	for _, id := range o.Workloads {
		w, _ := workloadByID(id)
		res.Workloads = append(res.Workloads, workloadInfo{ID: w.ID, Title: w.Title(sz), Unit: w.Unit, Latency: w.Latency})
	}

	var measured []*target
	for _, t := range targets {
		if t.Available() && containsTarget(specs, t.Name) {
			measured = append(measured, t)
		}
	}
	if o.Perf != "" {
		if err := os.MkdirAll(o.Perf, 0o755); err != nil {
			return nil, err
		}
	}
	total := 0
	for _, id := range o.Workloads {
		for _, t := range measured {
			if !t.WriteOnly || writeWorkload(id) {
				total += o.Reps
			}
		}
	}
	done := 0
reps:
	for rep := range o.Reps {
		order := rotate(measured, rep)
		for _, id := range o.Workloads {
			w, _ := workloadByID(id)
			for _, t := range order {
				if ctx.Err() != nil {
					res.Incomplete = fmt.Sprintf("stopped after %d of %d samples: %v", done, total, context.Cause(ctx))
					logf(o.Log, "%s", res.Incomplete)
					break reps
				}
				if t.WriteOnly && !writeWorkload(w.ID) {
					continue
				}
				s := measure(ctx, w, &runEnv{t: t, sz: sz, rep: rep, data: data}, res.MinioPID, o.Perf)
				res.Samples = append(res.Samples, s)
				done++
				logf(o.Log, "[%d/%d] rep %d %-13s %-11s %s", done, total, rep+1, w.ID, t.Name, s.brief(w.Unit))
			}
		}
	}
	res.Elapsed = time.Since(started).Round(time.Second).String()
	return res, nil
}

// parallel runs fs concurrently and waits for them.
func parallel(fs []func()) {
	var wg sync.WaitGroup
	for _, f := range fs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	wg.Wait()
}

func selectedTargets(names []string) []targetSpec {
	var out []targetSpec
	for _, t := range allTargets {
		if contains(names, t.Name) {
			out = append(out, t)
		}
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}

func containsTarget(ts []targetSpec, name string) bool {
	for _, t := range ts {
		if t.Name == name {
			return true
		}
	}
	return false
}

// rotate returns ts starting at index r (mod len).
func rotate[T any](ts []T, r int) []T {
	if len(ts) == 0 {
		return nil
	}
	r %= len(ts)
	return append(append([]T(nil), ts[r:]...), ts[:r]...)
}

// groupWriter returns the target that writes a group's objects: direct for
// the plain group, the encrypting target itself otherwise.
func groupWriter(ts []*target, group string) *target {
	for _, t := range ts {
		if t.Group == group && (group != "plain" || t.Kind == kindDirect) {
			return t
		}
	}
	return nil
}

// firstRequest writes and reads back a small object through t.
func firstRequest(ctx context.Context, t *target) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c := t.client()
	defer closeClients(c)()
	body := []byte("s3seal bench probe through " + t.Name)
	key := "probe/" + t.Name
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(t.Bucket()), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		return fmt.Errorf("PUT: %w", err)
	}
	if t.WriteOnly {
		h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(t.Bucket()), Key: aws.String(key)})
		if err != nil {
			return fmt.Errorf("HEAD: %w", err)
		}
		if aws.ToInt64(h.ContentLength) != int64(len(body)) {
			return fmt.Errorf("HEAD says %d bytes, %d were written", aws.ToInt64(h.ContentLength), len(body))
		}
		return nil
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(t.Bucket()), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("GET: %w", err)
	}
	defer out.Body.Close()
	got, err := io.ReadAll(out.Body)
	if err != nil {
		return fmt.Errorf("GET body: %w", err)
	}
	if !bytes.Equal(got, body) {
		return fmt.Errorf("GET returned %d bytes that differ from the %d written", len(got), len(body))
	}
	return nil
}

// defaultPutSize is just over the largest aws-chunked chunk MinIO takes.
const defaultPutSize = 16<<20 + 1<<20

// probeDefaultPut uploads a defaultPutSize object through t with the SDK's
// default checksum settings, which send it as a single aws-chunked chunk,
// and reports "ok" or the error.
func probeDefaultPut(ctx context.Context, t *target) string {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c := t.client()
	defer closeClients(c)()
	_, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(t.Bucket()), Key: aws.String("probe-default-put/" + t.Name),
		Body: bytes.NewReader(make([]byte, defaultPutSize)), ContentLength: aws.Int64(defaultPutSize),
	})
	if err != nil {
		return "refused: " + apiError(err)
	}
	return "ok"
}

// apiError returns the S3 error code and message of an SDK error (what
// follows "api error "), or the whole error if it has none.
func apiError(err error) string {
	s := err.Error()
	if _, after, ok := strings.Cut(s, "api error "); ok {
		s = after
	}
	return oneLine(s)
}

// setupGroup writes, through w, the large object, the small objects and
// (if list) the keys to list, with sz.SetupWorkers writers in parallel.
func setupGroup(ctx context.Context, w *target, sz sizes, data []byte, list bool) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	big := w.client(withoutUploadChecksum)
	defer closeClients(big)()
	if _, err := big.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(w.Bucket()), Key: aws.String(keyBig),
		Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
	}); err != nil {
		return fmt.Errorf("PUT %s: %w", keyBig, err)
	}
	var keys []string
	for i := range sz.SmallObjects {
		keys = append(keys, smallKey(i))
	}
	if list {
		for i := range sz.ListKeys {
			keys = append(keys, fmt.Sprintf(listKeyFormat, i))
		}
	}
	small := data[len(data)-sz.Small:]
	jobs := make(chan string)
	errc := make(chan error, sz.SetupWorkers)
	var wg sync.WaitGroup
	for range sz.SetupWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := w.client()
			defer closeClients(c)()
			for k := range jobs {
				body := small
				if strings.HasPrefix(k, prefixList) {
					body = small[:16]
				}
				var err error
				for attempt := 0; attempt < 3; attempt++ { // setup is untimed: retry
					_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(w.Bucket()), Key: aws.String(k), Body: bytes.NewReader(body)})
					if err == nil || ctx.Err() != nil {
						break
					}
				}
				if err != nil {
					errc <- fmt.Errorf("PUT %s: %w", k, err)
					cancel()
					return
				}
			}
		}()
	}
feed:
	for _, k := range keys {
		select {
		case jobs <- k:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	return ctx.Err()
}

// measure takes one sample of w against e.t.
func measure(ctx context.Context, w workload, e *runEnv, minioPID int, perfDir string) sample {
	s := sample{Target: e.t.Name, Workload: w.ID, Rep: e.rep + 1}
	if e.t.proc != nil && !e.t.proc.Running() {
		s.Errors, s.FirstError = 1, "the proxy's process has exited"
		s.fill(w.Unit)
		return s
	}
	ctx, cancel := context.WithTimeout(ctx, e.sz.SampleTimeout)
	defer cancel()
	ph, err := w.prepare(ctx, e)
	if err != nil {
		s.Errors, s.FirstError = 1, oneLine("before timing: "+err.Error())
		s.fill(w.Unit)
		return s
	}
	defer ph.close()
	runtime.GC()
	pid := e.t.PID()
	kc0, kcOK := keyProviderCalls(e.t.admin)
	stopPerf := startPerf(perfDir, w.ID, e, pid)
	rss := startRSSSampler(pid, rssInterval)
	cpu0, m0 := treeCPU(pid), treeCPU(minioPID)
	out := ph.run(ctx)
	cpu1, m1 := treeCPU(pid), treeCPU(minioPID)
	s.PeakRSS = rss.Stop()
	stopPerf()
	s.KeyCalls = num(math.NaN())
	if kc1, ok := keyProviderCalls(e.t.admin); ok && kcOK {
		s.KeyCalls = num(kc1 - kc0)
	}
	s.Requests, s.Bytes, s.Keys = out.Requests, out.Bytes, out.Keys
	s.Seconds = out.Elapsed.Seconds()
	s.Errors, s.FirstError = out.Errors, out.FirstErr
	s.P50ms, s.P99ms = num(math.NaN()), num(math.NaN())
	if len(out.Lat) > 0 {
		s.P50ms = num(percentile(out.Lat, 50) * 1e3)
		s.P99ms = num(percentile(out.Lat, 99) * 1e3)
	}
	s.ProxyCPUus, s.MinioCPUus = num(math.NaN()), num(math.NaN())
	if out.Requests > 0 {
		if pid != 0 {
			s.ProxyCPUus = num((cpu1 - cpu0) / float64(out.Requests) * 1e6)
		}
		s.MinioCPUus = num((m1 - m0) / float64(out.Requests) * 1e6)
	}
	s.fill(w.Unit)
	return s
}

// keyProviderCalls sums s3seal's key-provider call counters from its
// admin /metrics. It reports false when there is no admin listener or no
// /metrics; metrics without such a counter (no call made yet) count 0.
func keyProviderCalls(admin string) (float64, bool) {
	if admin == "" {
		return 0, false
	}
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(admin + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false
	}
	n, _ := sumKeyProviderCalls(resp.Body)
	return n, true
}

// sumKeyProviderCalls sums the samples of counters in Prometheus text
// format whose names mention the key provider and end in _total (cache
// counters excluded). It reports false if there is none.
func sumKeyProviderCalls(r io.Reader) (float64, bool) {
	var sum float64
	found := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		if !strings.Contains(name, "key_provider") || !strings.HasSuffix(name, "_total") || strings.Contains(name, "cache") {
			continue
		}
		f := strings.Fields(line[strings.LastIndex(line, "}")+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}

// startPerf records a perf profile of the proxy's process tree into dir
// until the returned function is called, which also writes a text report
// of the hottest symbols beside it. With no dir or no process it does
// nothing.
func startPerf(dir, workload string, e *runEnv, pid int) func() {
	if dir == "" || pid == 0 {
		return func() {}
	}
	var pids []string
	for _, p := range procTree(pid) {
		pids = append(pids, strconv.Itoa(p))
	}
	base := filepath.Join(dir, fmt.Sprintf("%s-%s-r%d", workload, e.t.Name, e.rep+1))
	cmd := exec.Command("perf", "record", "-q", "-F", "999", "-g", "-p", strings.Join(pids, ","), "-o", base+".perf.data")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return func() {}
	}
	time.Sleep(200 * time.Millisecond) // let perf attach
	return func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		rep := exec.Command("perf", "report", "-i", base+".perf.data", "--stdio", "--no-children",
			"--sort", "symbol", "-g", "none", "--percent-limit", "0.7")
		if b, err := rep.Output(); err == nil {
			_ = os.WriteFile(base+".txt", b, 0o644)
		}
	}
}

// buildS3seal compiles s3seal from the module into dir.
func buildS3seal(ctx context.Context, root, dir string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	out := filepath.Join(dir, "s3seal")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v: %s", err, oneLine(string(b)))
	}
	return out, nil
}

// makeKeyring creates a local key ring with "s3seal keygen".
func makeKeyring(ctx context.Context, bin, dir string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	file := filepath.Join(dir, "keyring")
	cmd := exec.CommandContext(ctx, bin, "keygen", "-o", file)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("s3seal keygen: %v: %s", err, oneLine(string(b)))
	}
	return file, nil
}

// makeRecipients creates an age identity with "s3seal keygen --age" and
// returns the file holding its recipient (the public key) alone.
func makeRecipients(ctx context.Context, bin, dir string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "keygen", "--age", "-o", filepath.Join(dir, "age-identity")).Output()
	if err != nil {
		return "", fmt.Errorf("s3seal keygen --age: %v", err)
	}
	file := filepath.Join(dir, "age-recipients")
	return file, os.WriteFile(file, out, 0o644)
}

// writeWorkload reports whether workload id only writes (what a
// write-only target can run).
func writeWorkload(id string) bool {
	return id == "put-big" || id == "put-small-c16" || id == "multipart"
}

func loadRoots(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		return nil, errors.New("bench: no certificate in " + file)
	}
	return p, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	crand.Read(b) //nolint:errcheck // never fails
	return hex.EncodeToString(b)
}

// commandLine is how the run can be repeated.
func commandLine(o options) string {
	var b strings.Builder
	b.WriteString("go run ./integration/bench")
	if o.Short {
		b.WriteString(" -short")
	}
	if len(o.Targets) != len(allTargets) {
		b.WriteString(" -targets " + strings.Join(o.Targets, ","))
	}
	if len(o.Workloads) != len(allWorkloads) {
		b.WriteString(" -workloads " + strings.Join(o.Workloads, ","))
	}
	if (o.Short && o.Reps != 1) || (!o.Short && o.Reps != 3) {
		fmt.Fprintf(&b, " -reps %d", o.Reps)
	}
	return b.String()
}
