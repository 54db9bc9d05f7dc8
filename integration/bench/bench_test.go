package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/integration/testbed"
)

// TestShortRun runs the driver in short mode against real servers and
// checks that it measured direct and s3seal passthrough, accounted for
// every other target, wrote well-formed outputs and left no process behind.
// It does not check the numbers: the machine is noisy.
func TestShortRun(t *testing.T) {
	testbed.Require(t)
	bin := buildS3sealForTest(t)
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 110*time.Second)
	defer cancel()
	res, err := run(ctx, options{Short: true, Out: out, S3seal: bin, Log: t.Output()})
	if err != nil {
		t.Fatalf("run: %v", err)
	}

	// The files the run reports are the ones in out.
	want := []string{"results.json", "results.md", "throughput.svg"}
	if len(res.Files) != len(want) {
		t.Fatalf("wrote %v, want %v", res.Files, want)
	}
	for i, name := range want {
		if res.Files[i] != filepath.Join(out, name) {
			t.Errorf("file %d is %s, want %s", i, res.Files[i], filepath.Join(out, name))
		}
	}

	// results.json reads back and accounts for every target and workload.
	var got results
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("results.json: %v", err)
	}
	if !got.Short || got.Reps != 1 || got.Incomplete != "" {
		t.Errorf("short=%v reps=%d incomplete=%q, want a complete short run of 1 repetition", got.Short, got.Reps, got.Incomplete)
	}
	// Every target but the baselines, which run only with -baseline.
	wantTargets := 0
	for _, tg := range allTargets {
		if !tg.Baseline {
			wantTargets++
		}
	}
	if len(got.Targets) != wantTargets {
		t.Errorf("%d targets in results, want %d", len(got.Targets), wantTargets)
	}
	avail := map[string]bool{}
	for _, tg := range got.Targets {
		avail[tg.Name] = tg.Unavailable == ""
		if tg.Unavailable != "" {
			t.Logf("target %s unavailable: %s", tg.Name, tg.Unavailable)
		}
	}
	for _, name := range []string{"direct", "passthrough"} {
		if !avail[name] {
			t.Errorf("target %s is unavailable", name)
		}
	}
	for _, w := range allWorkloads {
		for _, name := range []string{"direct", "passthrough"} {
			row, ok := findRow(got.Summary, w.ID, name)
			if !ok {
				t.Errorf("no summary for %s against %s", w.ID, name)
				continue
			}
			if row.Samples != 1 || row.Errors != 0 || !row.Value.Median.ok() || row.Value.Median <= 0 {
				t.Errorf("%s against %s: %d samples, %d errors (%s), value %v; want one clean sample with a value",
					w.ID, name, row.Samples, row.Errors, row.FirstError, float64(row.Value.Median))
			}
			if name == "direct" && math.Abs(float64(row.Ratio)-1) > 1e-9 {
				t.Errorf("%s: direct's ratio to itself is %v", w.ID, float64(row.Ratio))
			}
			if name == "passthrough" && (!row.Ratio.ok() || row.PeakRSS <= 0 || !row.ProxyCPUus.ok()) {
				t.Errorf("%s against passthrough: ratio %v, peak RSS %d, CPU/req %v; want all measured",
					w.ID, float64(row.Ratio), row.PeakRSS, float64(row.ProxyCPUus))
			}
			if w.Latency && (!row.P50ms.ok() || row.P99ms < row.P50ms) {
				t.Errorf("%s against %s: p50 %v p99 %v", w.ID, name, float64(row.P50ms), float64(row.P99ms))
			}
		}
	}

	// results.md names every workload and every target, with the reason
	// for any that is unavailable.
	md, err := os.ReadFile(filepath.Join(out, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range got.Workloads {
		if !bytes.Contains(md, []byte("(`"+w.ID+"`)")) {
			t.Errorf("results.md has no section for %s", w.ID)
		}
	}
	for _, tg := range got.Targets {
		if !bytes.Contains(md, []byte("| "+tg.Name+" | ")) {
			t.Errorf("results.md does not mention target %s", tg.Name)
		}
		if tg.Unavailable != "" && !bytes.Contains(md, []byte(cell(tg.Unavailable))) {
			t.Errorf("results.md does not say why %s is unavailable", tg.Name)
		}
	}
	for _, fact := range []string{"| CPU | ", "| cores | ", "| kernel | ", "| Go | go1.", "| date | "} {
		if !bytes.Contains(md, []byte(fact)) {
			t.Errorf("results.md lacks the machine fact %q", fact)
		}
	}

	svg, err := os.ReadFile(filepath.Join(out, "throughput.svg"))
	if err != nil {
		t.Fatal(err)
	}
	checkSVG(t, svg, "passthrough")

	// Every process the run started has been stopped.
	pids := []int{got.MinioPID}
	for _, tg := range got.Targets {
		if tg.PID != 0 {
			pids = append(pids, tg.PID)
		}
	}
	if got.MinioPID == 0 || len(pids) < 2 {
		t.Fatalf("results name processes %v; want MinIO's and the proxies'", pids)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after the run (kill 0: %v)", pid, err)
		}
	}
}

func findRow(rows []summaryRow, workload, target string) (summaryRow, bool) {
	for _, r := range rows {
		if r.Workload == workload && r.Target == target {
			return r, true
		}
	}
	return summaryRow{}, false
}

// checkSVG fails unless b is well-formed XML with an <svg> root that
// contains the text want.
func checkSVG(t *testing.T, b []byte, want string) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	root := ""
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed: %v", err)
		}
		switch v := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = v.Name.Local
			}
		case xml.CharData:
			text.Write(v)
		}
	}
	if root != "svg" {
		t.Errorf("SVG root element is %q", root)
	}
	if !strings.Contains(text.String(), want) {
		t.Errorf("SVG text does not mention %q", want)
	}
}

// buildS3sealForTest compiles s3seal from the module, as the integration
// harness does.
func buildS3sealForTest(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "s3seal")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

func TestPercentileNearestRank(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	for _, c := range []struct{ p, want float64 }{{50, 5}, {90, 9}, {99, 10}, {100, 10}, {10, 1}, {1, 1}} {
		if got := percentile(xs, c.p); got != c.want {
			t.Errorf("percentile(%v) = %v, want %v", c.p, got, c.want)
		}
	}
	if xs[0] != 5 {
		t.Error("percentile sorted its input")
	}
	if !math.IsNaN(percentile(nil, 50)) {
		t.Error("percentile of nothing is not NaN")
	}
}

func TestSpread(t *testing.T) {
	s := spreadOf([]float64{3, math.NaN(), 1, 2})
	if s.Min != 1 || s.Median != 2 || s.Max != 3 || s.N != 3 {
		t.Errorf("spread = %+v", s)
	}
	if s := spreadOf([]float64{4, 1, 3, 2}); s.Median != 2.5 {
		t.Errorf("median of an even count = %v, want 2.5", float64(s.Median))
	}
	if s := spreadOf([]float64{math.NaN()}); s.N != 0 || s.Median.ok() {
		t.Errorf("spread of no values = %+v", s)
	}
}

func TestNumJSON(t *testing.T) {
	b, err := json.Marshal([]num{1.5, nan, num(math.Inf(1))})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "[1.5,null,null]" {
		t.Errorf("marshal = %s", b)
	}
	var back []num
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back[0] != 1.5 || back[1].ok() || back[2].ok() {
		t.Errorf("unmarshal = %v", back)
	}
	if err := json.Unmarshal([]byte(`["x"]`), &back); err == nil {
		t.Error("a string decoded as a number")
	}
}

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and a parenthesis, then fields 3 to 17;
	// utime (field 14) is 150 ticks and stime (field 15) 50.
	stat := []byte("1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 1 0 100 0 0\n")
	got, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if got != 2.0 {
		t.Errorf("cpu = %v s, want 2", got)
	}
	for _, bad := range []string{"1234 no name", "1 (x) S 1 2 3", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 u 5 0"} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseStatCPU(%q) succeeded", bad)
		}
	}
}

func TestParseStatusKB(t *testing.T) {
	status := []byte("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n")
	if got, err := parseStatusKB(status, "VmRSS"); err != nil || got != 1<<20 {
		t.Errorf("VmRSS = %d, %v; want 1 MiB", got, err)
	}
	if _, err := parseStatusKB(status, "VmSwap"); err == nil {
		t.Error("a missing field parsed")
	}
	if _, err := parseStatusKB([]byte("VmRSS: 12 MB\n"), "VmRSS"); err == nil {
		t.Error("a field in another unit parsed")
	}
}

// TestProcessTree starts a child that burns CPU and checks that the tree
// of this process includes it and that its CPU time and RSS are seen.
func TestProcessTree(t *testing.T) {
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; sleep 5")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	self := os.Getpid()
	tree := procTree(self)
	if len(tree) < 2 || tree[0] != self || !containsInt(tree, cmd.Process.Pid) {
		t.Fatalf("procTree(self) = %v, want self first and child %d", tree, cmd.Process.Pid)
	}
	deadline := time.Now().Add(10 * time.Second)
	for cpu := 0.0; cpu < 0.05; cpu, _ = cpuSeconds(cmd.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatalf("the busy child used only %v s of CPU", cpu)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if treeCPU(self) < treeCPU(cmd.Process.Pid) {
		t.Error("the tree's CPU time is less than one of its members'")
	}
	s := startRSSSampler(self, 5*time.Millisecond)
	time.Sleep(30 * time.Millisecond)
	if peak := s.Stop(); peak < treeRSS(cmd.Process.Pid) || peak <= 0 {
		t.Errorf("peak RSS %d of the tree is not above the child's %d", peak, treeRSS(cmd.Process.Pid))
	}
	if got := startRSSSampler(0, time.Millisecond).Stop(); got != 0 {
		t.Errorf("sampler without a process saw %d bytes", got)
	}
	if procTree(0) != nil || procTree(1<<30) != nil {
		t.Error("procTree of no process is not empty")
	}
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func TestSumKeyProviderCalls(t *testing.T) {
	metrics := `# HELP s3seal_key_provider_calls_total Calls to the key provider.
# TYPE s3seal_key_provider_calls_total counter
s3seal_key_provider_calls_total{op="generate",provider="local"} 3
s3seal_key_provider_calls_total{op="decrypt",provider="local"} 4.5
s3seal_key_provider_cache_hits_total 100
s3seal_requests_total{op="GetObject"} 7
`
	got, ok := sumKeyProviderCalls(strings.NewReader(metrics))
	if !ok || got != 7.5 {
		t.Errorf("sum = %v, %v; want 7.5, true", got, ok)
	}
	if _, ok := sumKeyProviderCalls(strings.NewReader("s3seal_requests_total 7\n")); ok {
		t.Error("found key-provider calls in metrics that have none")
	}
}

func TestNginxConfig(t *testing.T) {
	conf := nginxConfig(nginxParams{
		Prefix: "/p", Listen: "127.0.0.1:8443", CertFile: "/c.pem", KeyFile: "/k.pem",
		Upstream: "127.0.0.1:9000", UpstreamCA: "/ca.pem", UpstreamSNI: "localhost",
	})
	for _, want := range []string{
		"listen 127.0.0.1:8443 ssl;",
		"client_max_body_size 0;",
		"proxy_request_buffering off;",
		"proxy_buffering off;",
		"proxy_http_version 1.1;",
		`proxy_set_header Connection "";`,
		"proxy_set_header Host $http_host;",
		"server 127.0.0.1:9000;",
		"keepalive 64;",
		`proxy_ssl_trusted_certificate "/ca.pem";`,
		"proxy_ssl_verify on;",
		"merge_slashes off;",
		"proxy_pass https://s3; }",
		"daemon off;",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("nginx.conf lacks %q", want)
		}
	}
	if strings.Count(conf, "{") != strings.Count(conf, "}") {
		t.Error("nginx.conf braces do not balance")
	}
	if strings.Contains(conf, "0.0.0.0") || strings.Contains(conf, "listen 80") {
		t.Error("nginx.conf listens beyond loopback")
	}
}

func TestCaddyConfig(t *testing.T) {
	b, err := caddyConfig(caddyParams{
		Storage: "/s", Listen: "127.0.0.1:8443", CertFile: "/c.pem", KeyFile: "/k.pem",
		Upstream: "127.0.0.1:9000", UpstreamCA: "/ca.pem", UpstreamSNI: "localhost",
	})
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Admin struct {
			Disabled bool `json:"disabled"`
		} `json:"admin"`
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Listen         []string `json:"listen"`
					AutomaticHTTPS struct {
						Disable bool `json:"disable"`
					} `json:"automatic_https"`
					Routes []struct {
						Handle []struct {
							Handler       string              `json:"handler"`
							FlushInterval int                 `json:"flush_interval"`
							Upstreams     []map[string]string `json:"upstreams"`
							Headers       struct {
								Request struct {
									Set map[string][]string `json:"set"`
								} `json:"request"`
							} `json:"headers"`
							Transport struct {
								Versions []string `json:"versions"`
								TLS      struct {
									CA struct {
										PEMFiles []string `json:"pem_files"`
									} `json:"ca"`
								} `json:"tls"`
							} `json:"transport"`
						} `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	srv, ok := cfg.Apps.HTTP.Servers["bench"]
	if !ok || len(srv.Routes) != 1 || len(srv.Routes[0].Handle) != 1 {
		t.Fatalf("no single reverse_proxy route in %s", b)
	}
	h := srv.Routes[0].Handle[0]
	switch {
	case !cfg.Admin.Disabled:
		t.Error("admin endpoint enabled")
	case !srv.AutomaticHTTPS.Disable:
		t.Error("automatic HTTPS enabled")
	case len(srv.Listen) != 1 || srv.Listen[0] != "127.0.0.1:8443":
		t.Errorf("listen = %v", srv.Listen)
	case h.Handler != "reverse_proxy" || h.FlushInterval != -1:
		t.Errorf("handler %q flush_interval %d", h.Handler, h.FlushInterval)
	case len(h.Upstreams) != 1 || h.Upstreams[0]["dial"] != "127.0.0.1:9000":
		t.Errorf("upstreams = %v", h.Upstreams)
	case len(h.Headers.Request.Set["Host"]) != 1 || h.Headers.Request.Set["Host"][0] != "{http.request.hostport}":
		t.Errorf("Host header = %v", h.Headers.Request.Set["Host"])
	case len(h.Transport.TLS.CA.PEMFiles) != 1 || h.Transport.TLS.CA.PEMFiles[0] != "/ca.pem":
		t.Errorf("upstream CA = %v", h.Transport.TLS.CA.PEMFiles)
	case len(h.Transport.Versions) != 1 || h.Transport.Versions[0] != "1.1":
		t.Errorf("upstream versions = %v", h.Transport.Versions)
	}
}

func TestRepeatReader(t *testing.T) {
	data := []byte("abcdefg")
	r := &repeatReader{data: data, left: 20}
	got, err := io.ReadAll(io.LimitReader(r, 100))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "abcdefgabcdefgabcdef" {
		t.Errorf("read %q", got)
	}
	// Odd read sizes cross the end of data.
	r = &repeatReader{data: data, left: 10}
	buf := make([]byte, 3)
	var all []byte
	for {
		n, err := r.Read(buf)
		all = append(all, buf[:n]...)
		if err == io.EOF {
			break
		}
	}
	if string(all) != "abcdefgabc" {
		t.Errorf("read %q in pieces of 3", all)
	}
}

func TestRotate(t *testing.T) {
	xs := []int{1, 2, 3}
	for r, want := range [][]int{{1, 2, 3}, {2, 3, 1}, {3, 1, 2}, {1, 2, 3}} {
		got := rotate(xs, r)
		if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Errorf("rotate(%d) = %v, want %v", r, got, want)
		}
	}
	if xs[0] != 1 {
		t.Error("rotate changed its input")
	}
	if rotate([]int(nil), 2) != nil {
		t.Error("rotate of nothing is not empty")
	}
}

func TestHuman(t *testing.T) {
	for n, want := range map[int64]string{256 << 20: "256 MiB", 1 << 30: "1 GiB", 4 << 10: "4 KiB", 1000: "1000 B", 3 << 29: "1536 MiB"} {
		if got := human(n); got != want {
			t.Errorf("human(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestSampleFill(t *testing.T) {
	s := sample{Requests: 10, Errors: 2, Bytes: 8e6, Keys: 400, Seconds: 2}
	for unit, want := range map[string]float64{unitMBps: 4, unitReqs: 4, unitKeyps: 200} {
		s.fill(unit)
		if float64(s.Value) != want {
			t.Errorf("%s: value %v, want %v", unit, float64(s.Value), want)
		}
	}
	failed := sample{Requests: 1, Errors: 1, Seconds: 1}
	failed.fill(unitReqs)
	if failed.Value.ok() {
		t.Error("a sample with only failures has a value")
	}
	moved := sample{Requests: 6, Errors: 1, Seconds: 1}
	moved.fill(unitMBps)
	if moved.Value.ok() {
		t.Error("a throughput sample that moved no bytes has a value")
	}
}

// TestSummaryAndReport builds results by hand and checks the summary's
// arithmetic and what the Markdown and SVG show.
func TestSummaryAndReport(t *testing.T) {
	r := &results{
		Reps: 3, Started: time.Unix(0, 0), Command: "go run ./integration/bench",
		Machine: machine{CPU: "test CPU", Cores: 2, Go: "go1.x"},
		Targets: []targetInfo{
			{Name: "direct", Kind: kindDirect},
			{Name: "passthrough", Kind: kindS3seal, Mode: "passthrough"},
			{Name: "envelope", Kind: kindS3seal, Mode: "envelope", Unavailable: "s3seal envelope did not start: keys | missing"},
		},
		Workloads: []workloadInfo{{ID: "get-big", Title: "GET 256 MiB", Unit: unitMBps}},
	}
	add := func(target string, v float64, rss int64, errs int) {
		r.Samples = append(r.Samples, sample{Target: target, Workload: "get-big", Value: num(v), PeakRSS: rss,
			P50ms: nan, P99ms: nan, ProxyCPUus: 100, MinioCPUus: 50, KeyCalls: nan, Errors: errs, FirstError: map[bool]string{true: "boom"}[errs > 0]})
	}
	add("direct", 400, 0, 0)
	add("direct", 300, 0, 0)
	add("direct", 500, 0, 0)
	add("passthrough", 100, 10<<20, 0)
	add("passthrough", math.NaN(), 30<<20, 1)
	add("passthrough", 300, 20<<20, 0)
	summarize(r)
	if len(r.Summary) != 2 {
		t.Fatalf("%d summary rows, want 2 (the unavailable target has none)", len(r.Summary))
	}
	d, p := r.Summary[0], r.Summary[1]
	if d.Target != "direct" || d.Value.Median != 400 || d.Value.Min != 300 || d.Value.Max != 500 || d.Ratio != 1 {
		t.Errorf("direct row = %+v", d)
	}
	if p.Value.Median != 200 || p.Value.N != 2 || p.Ratio != 0.5 || p.PeakRSS != 30<<20 || p.Errors != 1 || p.FirstError != "boom" || p.Samples != 3 {
		t.Errorf("passthrough row = %+v", p)
	}
	md := markdown(r)
	for _, want := range []string{
		"| passthrough | 200 [100–300] | 0.50 | — | — | 30 MiB | 100 µs | 50 µs | n/a | 1: boom |",
		"| direct | 400 [300–500] | 1.00 |",
		`**unavailable**: s3seal envelope did not start: keys \| missing`,
		"| CPU | test CPU |",
		"### GET 256 MiB (`get-big`)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
	svg, err := ratioChart(r)
	if err != nil {
		t.Fatal(err)
	}
	checkSVG(t, svg, "passthrough")
	if bytes.Contains(svg, []byte(">envelope<")) {
		t.Error("the chart shows an unavailable target")
	}
}

// TestUnavailableTarget checks that a target whose process cannot run or
// exits at once comes back unavailable with the reason, and that no process
// is left running.
func TestUnavailableTarget(t *testing.T) {
	spec, _ := targetByName("passthrough")
	dir := t.TempDir()
	b := &bed{dir: dir, s3sealErr: errors.New("go build: broken"), minio: &testbed.S3Server{Endpoint: "https://127.0.0.1:1", Region: testbed.Region}}
	tg, cleanup := b.startTarget(context.Background(), spec)
	cleanup()
	if tg.Available() || !strings.Contains(tg.Unavailable, "no s3seal binary: go build: broken") {
		t.Errorf("without a binary: unavailable = %q", tg.Unavailable)
	}

	// A "binary" that prints an error in s3seal's log format and exits.
	fake := filepath.Join(dir, "fake-s3seal")
	script := "#!/bin/sh\necho '{\"level\":\"error\",\"msg\":\"cannot start\",\"error\":\"mode: bad\"}' >&2\nexit 1\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	b.s3seal, b.s3sealErr = fake, nil
	tg, cleanup = b.startTarget(context.Background(), spec)
	defer cleanup()
	if tg.Available() || !strings.Contains(tg.Unavailable, "did not start") || !strings.Contains(tg.Unavailable, "cannot start: mode: bad") {
		t.Errorf("with a failing binary: unavailable = %q", tg.Unavailable)
	}
	if tg.PID() != 0 {
		t.Errorf("the failed process %d still runs", tg.PID())
	}
}

func TestOptions(t *testing.T) {
	o, err := parseFlags([]string{"-short", "-targets", "direct, passthrough", "-workloads", "list", "-reps", "2"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !o.Short || o.Reps != 2 || len(o.Targets) != 2 || o.Targets[1] != "passthrough" || len(o.Workloads) != 1 {
		t.Errorf("options = %+v", o)
	}
	d := o.withDefaults("/repo")
	if d.Timeout != 100*time.Second || !strings.HasPrefix(d.Out, os.TempDir()) {
		t.Errorf("short defaults: timeout %v out %s", d.Timeout, d.Out)
	}
	full := options{}.withDefaults("/repo")
	if full.Reps != 3 || full.Out != "/repo/docs/benchmarks" || len(full.Targets) != len(allTargets)-2 || len(full.Workloads) != len(allWorkloads) || contains(full.Targets, "baseline-passthrough") {
		t.Errorf("full defaults = %+v", full)
	}
	withBase := options{Baseline: "/old/s3seal"}.withDefaults("/repo")
	if len(withBase.Targets) != len(allTargets) || !contains(withBase.Targets, "baseline-envelope") {
		t.Errorf("defaults with a baseline = %v", withBase.Targets)
	}
	for _, bad := range [][]string{{"-targets", "squid"}, {"-workloads", "put-huge"}, {"-reps", "-1"}, {"extra"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%v) succeeded", bad)
		}
	}
	if got := commandLine(d); got != "go run ./integration/bench -short -targets direct,passthrough -workloads list -reps 2" {
		t.Errorf("command line = %q", got)
	}
}

// TestClientSendsDefaultChecksums checks that the driver's clients send
// what an application's default SDK configuration sends: a CRC32 trailer
// on an aws-chunked upload, and checksum mode on GETs.
func TestClientSendsDefaultChecksums(t *testing.T) {
	type seen struct{ sha, trailer, encoding, mode string }
	got := make(chan seen, 2)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got <- seen{r.Header.Get("X-Amz-Content-Sha256"), r.Header.Get("X-Amz-Trailer"), r.Header.Get("Content-Encoding"), r.Header.Get("X-Amz-Checksum-Mode")}
		w.Header().Set("ETag", `"0"`)
	}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	tg := &target{Endpoint: srv.URL, roots: pool, accessKey: "AK", secretKey: "SK"}
	c := tg.client()
	defer closeClients(c)()
	ctx := context.Background()
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: bytes.NewReader(make([]byte, 1000))}); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s.sha != "STREAMING-UNSIGNED-PAYLOAD-TRAILER" || s.trailer != "x-amz-checksum-crc32" || s.encoding != "aws-chunked" {
		t.Errorf("PUT sent payload hash %q, trailer %q, encoding %q; want an aws-chunked CRC32 trailer", s.sha, s.trailer, s.encoding)
	}
	if _, err := getObject(ctx, c, "b", "k", ""); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s.mode != "ENABLED" {
		t.Errorf("GET sent checksum mode %q, want ENABLED", s.mode)
	}
}

func TestAPIError(t *testing.T) {
	err := errors.New("operation error S3: PutObject, https response error StatusCode: 400, RequestID: 1, HostID: 2, api error BadRequest: chunk too big")
	if got := apiError(err); got != "BadRequest: chunk too big" {
		t.Errorf("apiError = %q", got)
	}
	if got := apiError(errors.New("dial tcp: refused\nagain")); got != "dial tcp: refused again" {
		t.Errorf("apiError of a plain error = %q", got)
	}
}

func TestKeyProviderCallsEndpoint(t *testing.T) {
	body := "s3seal_requests_total 3\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, body)
	}))
	defer srv.Close()
	if n, ok := keyProviderCalls(srv.URL); !ok || n != 0 {
		t.Errorf("metrics without calls: %v, %v; want 0, true", n, ok)
	}
	body = "s3seal_key_provider_calls_total{call=\"decrypt\"} 2\n"
	if n, ok := keyProviderCalls(srv.URL); !ok || n != 2 {
		t.Errorf("metrics with calls: %v, %v; want 2, true", n, ok)
	}
	if _, ok := keyProviderCalls(srv.URL + "/none"); ok {
		t.Error("an admin listener without /metrics reported calls")
	}
	if _, ok := keyProviderCalls(""); ok {
		t.Error("a target without an admin listener reported calls")
	}
}
