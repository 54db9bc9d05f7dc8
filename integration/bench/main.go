// Command bench measures s3seal side by side with MinIO reached directly
// and with two TLS reverse proxies that encrypt nothing (nginx and Caddy),
// the cost of putting any proxy in the path.
//
//	go run ./integration/bench [-short] [-out DIR] [-targets LIST] [-workloads LIST] [-reps N]
//
// # What it runs
//
// It starts its own MinIO (TLS, with a KMS key), builds s3seal from the
// module, and starts one s3seal process per mode (passthrough, sse-s3,
// sse-c, envelope), nginx and Caddy, all on 127.0.0.1 and free ports. Each
// repetition runs every workload against every target, the targets of a
// workload back to back and in an order rotated per repetition, so that
// drift of the machine affects all targets alike. A target that does not
// start, or whose first request fails, is reported as unavailable with the
// reason; it is never left out silently.
//
// Clients are aws-sdk-go-v2 with the settings config.LoadDefaultConfig
// gives an application, the same for every target: a CRC32 on every upload,
// sent over HTTPS as an aws-chunked body with a trailer, and validation of
// the checksum a whole-object GET returns. (s3.New alone leaves these unset
// and then sends no checksum; the driver sets them.) The large single PUT
// alone sends no upload checksum: MinIO refuses the single aws-chunked
// chunk the SDK would send (see withoutUploadChecksum); each target's
// answer to such an upload is reported instead. Retries are off so
// that every failure is counted. Every client speaks HTTP/1.1, as S3 does.
// Request bodies come from memory.
//
// # What it reports
//
// Into -out: results.md (machine facts and, per workload and target, the
// throughput or request rate as median [min–max] over the repetitions, its
// ratio to MinIO direct, p50/p99 latency, the proxy's peak RSS sampled every
// 50 ms, CPU time per request of the proxy and of MinIO from
// /proc/PID/stat, and key-provider calls when s3seal exports them),
// throughput.svg (the ratios to direct as a bar chart) and results.json (every
// sample).
//
// # Contracts
//
// Every process it starts is stopped by its process ID when it ends,
// whether it completes, fails or is interrupted (Ctrl-C; a second Ctrl-C
// exits at once, and the children then get SIGKILL from the kernel). Every
// sample is bounded in time and request count, and the whole run by
// -timeout. Credentials are random per run and never printed.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// options configure a run; the zero value of a field means its default.
type options struct {
	Short     bool          // small sizes and one repetition: a check that the driver works
	Out       string        // output directory
	Targets   []string      // target names; nil means all
	Workloads []string      // workload IDs; nil means all
	Reps      int           // repetitions; 0 means 3 (1 with Short)
	S3seal    string        // a built s3seal binary; "" builds one from the module
	Baseline  string        // another s3seal binary, run as the baseline-* targets; "" leaves them out
	Timeout   time.Duration // bound on the whole run; 0 means 14 min (100 s with Short)
	Perf      string        // directory for perf CPU profiles of the proxies; "" takes none
	Pprof     bool          // start s3seal with S3SEAL_PPROF=true
	Log       io.Writer     // progress; nil means os.Stderr
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal the run winds down and stops its
		// processes; a second one ends the driver at once.
		<-ctx.Done()
		stop()
	}()
	res, err := run(ctx, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "bench: wrote %s\n", strings.Join(res.Files, ", "))
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: go run ./integration/bench [flags]\n\n")
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\ntargets: %s\nworkloads: %s\n", strings.Join(targetNames(), ","), strings.Join(workloadIDs(), ","))
	}
	var o options
	var targets, workloads string
	fs.BoolVar(&o.Short, "short", false, "a quick run (< 2 min): small sizes, one repetition")
	fs.StringVar(&o.Out, "out", "", "output directory (default docs/benchmarks in the module; a temporary directory with -short)")
	fs.StringVar(&targets, "targets", "", "comma-separated targets (default all): "+strings.Join(targetNames(), ","))
	fs.StringVar(&workloads, "workloads", "", "comma-separated workloads (default all): "+strings.Join(workloadIDs(), ","))
	fs.IntVar(&o.Reps, "reps", 0, "repetitions (default 3; 1 with -short)")
	fs.StringVar(&o.S3seal, "s3seal", "", "s3seal binary to run (default: build one from the module)")
	fs.StringVar(&o.Baseline, "baseline", "", "an s3seal `binary` (say, built from an earlier commit) to measure beside this one as targets baseline-passthrough and baseline-envelope, in the same run")
	fs.DurationVar(&o.Timeout, "timeout", 0, "bound on the whole run (default 14m; 100s with -short)")
	fs.StringVar(&o.Perf, "perf", "", "record a perf CPU profile of each proxy during each sample into `DIR` (skews the numbers: use a separate run)")
	fs.BoolVar(&o.Pprof, "pprof", false, "start s3seal with its profiler on the admin listener (S3SEAL_PPROF)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected argument %q\n", fs.Arg(0))
		return o, fmt.Errorf("unexpected argument")
	}
	o.Targets, o.Workloads = splitList(targets), splitList(workloads)
	if err := o.validate(); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return o, err
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func targetNames() []string {
	var out []string
	for _, t := range allTargets {
		out = append(out, t.Name)
	}
	return out
}

func workloadIDs() []string {
	var out []string
	for _, w := range allWorkloads {
		out = append(out, w.ID)
	}
	return out
}

// validate checks names and numbers.
func (o options) validate() error {
	for _, n := range o.Targets {
		if _, ok := targetByName(n); !ok {
			return fmt.Errorf("unknown target %q; want some of %s", n, strings.Join(targetNames(), ","))
		}
	}
	for _, id := range o.Workloads {
		if _, ok := workloadByID(id); !ok {
			return fmt.Errorf("unknown workload %q; want some of %s", id, strings.Join(workloadIDs(), ","))
		}
	}
	if o.Reps < 0 || o.Reps > 20 {
		return fmt.Errorf("-reps %d: want 1 to 20", o.Reps)
	}
	if o.Timeout < 0 {
		return fmt.Errorf("-timeout %v: want a positive duration", o.Timeout)
	}
	return nil
}

// withDefaults returns o with defaults filled in; root is the module's
// directory.
func (o options) withDefaults(root string) options {
	if o.Reps == 0 {
		o.Reps = 3
		if o.Short {
			o.Reps = 1
		}
	}
	if o.Timeout == 0 {
		o.Timeout = 14 * time.Minute
		if o.Short {
			o.Timeout = 100 * time.Second
		}
	}
	if o.Out == "" {
		if o.Short {
			o.Out = filepath.Join(os.TempDir(), "s3seal-bench-short")
		} else {
			o.Out = filepath.Join(root, "docs", "benchmarks")
		}
	}
	if len(o.Targets) == 0 {
		for _, t := range allTargets {
			// Baselines only when there is a baseline to run.
			if !t.Baseline || o.Baseline != "" {
				o.Targets = append(o.Targets, t.Name)
			}
		}
	}
	if len(o.Workloads) == 0 {
		o.Workloads = workloadIDs()
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
	return o
}

// moduleRoot returns the directory of s3seal's go.mod at or above dir.
func moduleRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/s3seal/s3seal\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("bench: no s3seal go.mod at or above %s: run from the repository", dir)
		}
	}
}
