package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// results is everything a run measured; results.json holds it whole.
type results struct {
	Machine    machine        `json:"machine"`
	Command    string         `json:"command"`
	Short      bool           `json:"short"`
	Reps       int            `json:"reps"`
	Sizes      sizes          `json:"sizes"`
	Started    time.Time      `json:"started"`
	Elapsed    string         `json:"elapsed"`
	Incomplete string         `json:"incomplete,omitempty"`
	Targets    []targetInfo   `json:"targets"`
	Workloads  []workloadInfo `json:"workloads"`
	Summary    []summaryRow   `json:"summary"`
	Samples    []sample       `json:"samples"`

	MinioPID int      `json:"minio_pid"`
	Files    []string `json:"-"` // what writeOutputs wrote
}

type targetInfo struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Mode        string `json:"mode,omitempty"`
	WriteOnly   bool   `json:"write_only,omitempty"` // age recipients, no identity: only writing workloads
	Endpoint    string `json:"endpoint,omitempty"`
	PID         int    `json:"pid,omitempty"` // the proxy's process while it ran
	Unavailable string `json:"unavailable,omitempty"`
	// DefaultPut is "ok" or the error of a 17 MiB PutObject with the SDK's
	// default checksum settings (one aws-chunked chunk).
	DefaultPut string `json:"default_put_17mib,omitempty"`
}

// describe says what a target is, for the results table.
func (t targetInfo) describe() string {
	switch t.Kind {
	case kindDirect:
		return "MinIO over TLS, no proxy (the baseline)"
	case kindS3seal:
		if t.WriteOnly {
			return "s3seal, mode " + t.Mode + ", write-only (age post-quantum recipient; writing workloads only)"
		}
		return "s3seal, mode " + t.Mode
	case kindNginx:
		return "nginx, TLS reverse proxy, no encryption"
	case kindCaddy:
		return "Caddy, TLS reverse proxy, no encryption"
	}
	return t.Kind
}

type workloadInfo struct {
	ID      string `json:"id"`
	Title   string `json:"title"`
	Unit    string `json:"unit"`
	Latency bool   `json:"latency"`
}

// sample is one workload run once against one target.
type sample struct {
	Target     string  `json:"target"`
	Workload   string  `json:"workload"`
	Rep        int     `json:"rep"`
	Requests   int     `json:"requests"`
	Bytes      int64   `json:"bytes"`
	Keys       int     `json:"keys,omitempty"`
	Seconds    float64 `json:"seconds"`
	Value      num     `json:"value"` // in the workload's unit
	P50ms      num     `json:"p50_ms"`
	P99ms      num     `json:"p99_ms"`
	PeakRSS    int64   `json:"proxy_peak_rss_bytes"`
	ProxyCPUus num     `json:"proxy_cpu_us_per_request"`
	MinioCPUus num     `json:"minio_cpu_us_per_request"`
	KeyCalls   num     `json:"key_provider_calls"`
	Errors     int     `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
}

// fill computes Value from the counts, in unit. A sample in which nothing
// succeeded has no value.
func (s *sample) fill(unit string) {
	s.Value = nan
	ok := s.Requests - s.Errors
	if s.Seconds <= 0 || ok <= 0 {
		return
	}
	switch unit {
	case unitMBps:
		if s.Bytes > 0 {
			s.Value = num(float64(s.Bytes) / s.Seconds / 1e6)
		}
	case unitReqs:
		s.Value = num(float64(ok) / s.Seconds)
	case unitKeyps:
		s.Value = num(float64(s.Keys) / s.Seconds)
	}
}

// brief is a one-line progress report of the sample.
func (s sample) brief(unit string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", fmtNum(s.Value), unit)
	if s.P50ms.ok() {
		fmt.Fprintf(&b, ", p50 %s p99 %s ms", fmtNum(s.P50ms), fmtNum(s.P99ms))
	}
	if s.PeakRSS > 0 {
		fmt.Fprintf(&b, ", rss %s", fmtBytes(s.PeakRSS))
	}
	if s.ProxyCPUus.ok() {
		fmt.Fprintf(&b, ", proxy cpu %s/req", fmtMicros(s.ProxyCPUus))
	}
	if s.Errors > 0 {
		fmt.Fprintf(&b, ", %d errors (%s)", s.Errors, s.FirstError)
	}
	return b.String()
}

// summaryRow condenses the repetitions of one workload against one target.
type summaryRow struct {
	Workload   string `json:"workload"`
	Target     string `json:"target"`
	Value      spread `json:"value"`                // over repetitions
	Ratio      num    `json:"ratio_to_direct"`      // median ÷ direct's median
	P50ms      num    `json:"p50_ms"`               // median over repetitions
	P99ms      num    `json:"p99_ms"`               // median over repetitions
	PeakRSS    int64  `json:"proxy_peak_rss_bytes"` // max over repetitions
	ProxyCPUus num    `json:"proxy_cpu_us_per_request"`
	MinioCPUus num    `json:"minio_cpu_us_per_request"`
	KeyCalls   num    `json:"key_provider_calls"`
	Samples    int    `json:"samples"`
	Errors     int    `json:"errors"`
	FirstError string `json:"first_error,omitempty"`
}

// summarize fills r.Summary from r.Samples: a row per workload and
// measured target, in the order of r.Workloads and r.Targets.
func summarize(r *results) {
	r.Summary = nil
	for _, w := range r.Workloads {
		rows := map[string]*summaryRow{}
		for _, t := range r.Targets {
			if t.Unavailable != "" {
				continue
			}
			var vals, p50, p99, cpu, mcpu, kc []float64
			row := summaryRow{Workload: w.ID, Target: t.Name}
			for _, s := range r.Samples {
				if s.Workload != w.ID || s.Target != t.Name {
					continue
				}
				row.Samples++
				row.Errors += s.Errors
				if row.FirstError == "" {
					row.FirstError = s.FirstError
				}
				vals = append(vals, float64(s.Value))
				p50 = append(p50, float64(s.P50ms))
				p99 = append(p99, float64(s.P99ms))
				cpu = append(cpu, float64(s.ProxyCPUus))
				mcpu = append(mcpu, float64(s.MinioCPUus))
				kc = append(kc, float64(s.KeyCalls))
				row.PeakRSS = max(row.PeakRSS, s.PeakRSS)
			}
			if row.Samples == 0 {
				continue
			}
			row.Value = spreadOf(vals)
			row.P50ms, row.P99ms = median(p50), median(p99)
			row.ProxyCPUus, row.MinioCPUus, row.KeyCalls = median(cpu), median(mcpu), median(kc)
			rows[t.Name] = &row
		}
		direct := nan
		if d, ok := rows["direct"]; ok {
			direct = d.Value.Median
		}
		for _, t := range r.Targets {
			row, ok := rows[t.Name]
			if !ok {
				continue
			}
			row.Ratio = nan
			if direct.ok() && direct > 0 && row.Value.Median.ok() {
				row.Ratio = row.Value.Median / direct
			}
			r.Summary = append(r.Summary, *row)
		}
	}
}

// writeOutputs writes results.json, results.md and throughput.svg into dir
// and returns their paths.
func writeOutputs(dir string, r *results) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	summarize(r)
	var files []string
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("bench: results.json: %w", err)
	}
	write := func(name string, b []byte) error {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
		files = append(files, p)
		return nil
	}
	if err := write("results.json", append(js, '\n')); err != nil {
		return files, err
	}
	if err := write("results.md", []byte(markdown(r))); err != nil {
		return files, err
	}
	svg, err := ratioChart(r)
	if err != nil {
		return files, fmt.Errorf("bench: throughput.svg: %w", err)
	}
	if err := write("throughput.svg", svg); err != nil {
		return files, err
	}
	return files, nil
}

// markdown renders the results as results.md.
func markdown(r *results) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# s3seal benchmarks")
	p("")
	p("Generated by `%s` on %s in %s. Every number below comes from this one run; the machine is shared and noisy, so compare targets within the run (the ratios), not across runs.", r.Command, r.Started.Format("2006-01-02 15:04 MST"), r.Elapsed)
	p("")
	if r.Short {
		p("> **Short run**: small sizes and one repetition. It shows that the driver works, not how fast anything is.")
		p("")
	}
	if r.Incomplete != "" {
		p("> **Incomplete**: %s.", r.Incomplete)
		p("")
	}
	p("## Machine")
	p("")
	p("| | |")
	p("|---|---|")
	m := r.Machine
	p("| CPU | %s |", cell(m.CPU))
	p("| cores | %d |", m.Cores)
	p("| kernel | %s |", cell(m.Kernel))
	p("| Go | %s |", cell(m.Go))
	p("| date | %s |", cell(m.Date))
	p("| s3seal | %s |", cell(m.S3seal))
	p("| MinIO | %s |", cell(m.MinIO))
	p("| nginx | %s |", cell(m.Nginx))
	p("| Caddy | %s |", cell(m.Caddy))
	p("")
	p("## Targets")
	p("")
	p("| target | what | status | PutObject of %s with SDK-default checksums |", human(defaultPutSize))
	p("|---|---|---|---|")
	for _, t := range r.Targets {
		status := "measured"
		if t.Unavailable != "" {
			status = "**unavailable**: " + cell(t.Unavailable)
		}
		p("| %s | %s | %s | %s |", t.Name, t.describe(), status, cell(t.DefaultPut))
	}
	p("")
	p("The last column is a compatibility fact, not a measurement: with its default checksum settings aws-sdk-go-v2 sends a body of known length over HTTPS as a single aws-chunked chunk with a CRC32 trailer, and MinIO refuses chunks over 16 MiB (minio/minio#21611), directly and through proxies that pass the body on unchanged; s3seal re-frames the body upstream. For that reason the single-stream PUT below is made without an upload checksum, for every target; all other workloads use the defaults.")
	p("")
	p("## How to read the tables")
	p("")
	p("- **Throughput** is the median over %d repetition(s), with [min–max]; MB/s are 10⁶ bytes of object data per second; req/s count successful requests; LIST counts listed keys per second. **× direct** is that median divided by MinIO direct's.", r.Reps)
	p("- **p50/p99** are per request (per page for LIST, per range for ranged GETs), the median over repetitions; single-request workloads have none.")
	p("- **Peak RSS** is the largest resident set of the proxy's processes (nginx: master and workers), sampled every %v during the timed part of the workload (VmHWM cannot be reset between workloads), the largest over repetitions.", rssInterval)
	p("- **CPU/req** is user+system CPU time of the proxy's processes (and, separately, MinIO's) over the timed part, from /proc/PID/stat, divided by the requests made (a 256 MiB PUT is one request; a multipart upload counts create, parts and complete).")
	p("- **Key calls** are the key-provider calls (`s3seal_key_provider_calls_total`, behind the data-key cache) s3seal reports on its admin `/metrics` during the workload; n/a where there is no such listener.")
	p("- **Clients**: aws-sdk-go-v2 with the settings `config.LoadDefaultConfig` gives an application, the same for every target: a CRC32 on every upload, sent over HTTPS as an aws-chunked body with a trailer (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`), and validation of the checksum a whole-object GET returns (`s3.New` alone leaves both unset and sends no checksum). The single-stream PUT is the one exception: it sends no upload checksum (see Targets). Retries are off so every failure counts. HTTP/1.1 everywhere (S3 speaks nothing else), one connection per client, warmed before timing. Request bodies come from memory.")
	p("- **Signatures through nginx and Caddy**: clients sign for the proxy's own address; the proxy forwards the Host header unchanged (nginx `proxy_set_header Host $http_host`, Caddy `header_up Host {http.request.hostport}`) and MinIO checks the signature against the Host it receives, so path-style requests verify. s3seal instead verifies the client's signature itself and re-signs upstream.")
	p("- Client, proxy and MinIO share %d cores: CPU a proxy spends is taken from MinIO and the client, which is part of the cost being measured.", m.Cores)
	p("")
	p("![throughput relative to MinIO direct](throughput.svg)")
	p("")
	p("## Results")
	for _, w := range r.Workloads {
		p("")
		p("### %s (`%s`)", w.Title, w.ID)
		p("")
		p("| target | %s median [min–max] | × direct | p50 ms | p99 ms | proxy peak RSS | proxy CPU/req | MinIO CPU/req | key calls | errors |", w.Unit)
		p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
		any := false
		for _, row := range r.Summary {
			if row.Workload != w.ID {
				continue
			}
			any = true
			lat50, lat99 := "—", "—"
			if w.Latency {
				lat50, lat99 = fmtNum(row.P50ms), fmtNum(row.P99ms)
			}
			rss := "—"
			if row.PeakRSS > 0 {
				rss = fmtBytes(row.PeakRSS)
			}
			errs := "0"
			if row.Errors > 0 {
				errs = fmt.Sprintf("%d: %s", row.Errors, cell(row.FirstError))
			}
			p("| %s | %s [%s–%s] | %s | %s | %s | %s | %s | %s | %s | %s |",
				row.Target, fmtNum(row.Value.Median), fmtNum(row.Value.Min), fmtNum(row.Value.Max),
				fmtRatio(row.Ratio), lat50, lat99, rss, fmtMicros(row.ProxyCPUus), fmtMicros(row.MinioCPUus),
				fmtNum(row.KeyCalls), errs)
		}
		if !any {
			p("| (no samples) | | | | | | | | | |")
		}
	}
	p("")
	p("Raw samples: results.json.")
	return b.String()
}

// cell makes s safe inside a Markdown table cell.
func cell(s string) string {
	if s == "" {
		return "n/a"
	}
	return strings.ReplaceAll(oneLine(s), "|", `\|`)
}

// fmtNum formats a number with three significant digits at least, n/a for
// no value.
func fmtNum(n num) string {
	if !n.ok() {
		return "n/a"
	}
	f := float64(n)
	switch a := math.Abs(f); {
	case a >= 100:
		return fmt.Sprintf("%.0f", f)
	case a >= 10:
		return fmt.Sprintf("%.1f", f)
	case a >= 1:
		return fmt.Sprintf("%.2f", f)
	case a == 0:
		return "0"
	}
	return fmt.Sprintf("%.3g", f)
}

func fmtRatio(n num) string {
	if !n.ok() {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", float64(n))
}

// fmtMicros formats a duration given in microseconds.
func fmtMicros(n num) string {
	if !n.ok() {
		return "n/a"
	}
	us := float64(n)
	switch {
	case us >= 1e6:
		return fmt.Sprintf("%.2f s", us/1e6)
	case us >= 1e3:
		return fmt.Sprintf("%.1f ms", us/1e3)
	}
	return fmt.Sprintf("%.0f µs", us)
}

func fmtBytes(n int64) string {
	return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
}
