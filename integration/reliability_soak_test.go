package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/s3seal/s3seal/integration/soak"
	"github.com/s3seal/s3seal/integration/testbed"
)

// TestReliabilitySoak runs the mixed workload of package soak against
// s3seal in envelope mode: PUT, GET, ranges, HEAD, listings, multipart
// uploads, copies and deletes, objects from 0 bytes to 64 MiB, every byte
// read back verified. It runs 2 minutes in the suite, -short included;
// S3SEAL_SOAK=20m runs it for 20 minutes, S3SEAL_SOAK_CONCURRENCY sets the
// workers (default 8) and S3SEAL_SOAK_REPORT=FILE writes the report as
// JSON.
//
// It fails on any error or mismatch (no faults are injected), and when
// s3seal's goroutines or resident memory, sampled with the workers paused,
// spread by more than 25 % (max/min; goroutines also by more than 16)
// after the warm-up (see below for what is counted).
func TestReliabilitySoak(t *testing.T) {
	testbed.Require(t)
	d := 2 * time.Minute
	if v := os.Getenv("S3SEAL_SOAK"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatalf("S3SEAL_SOAK=%q: %v", v, err)
		}
	}
	conc := 8
	if v := os.Getenv("S3SEAL_SOAK_CONCURRENCY"); v != "" {
		conc, _ = strconv.Atoi(v)
	}
	every := 10 * time.Second
	if d >= 10*time.Minute {
		every = 30 * time.Second
	}
	warmup := min(d/4, 2*time.Minute)
	up := shared.minio
	p, _ := startEnvelopeProxy(t, up, map[string]string{"S3SEAL_LOG_LEVEL": "warn", "S3SEAL_PPROF": "true"})
	bucket := newBucket(t, up)
	rep, err := soak.Run(context.Background(), soak.Config{
		Client:      p.Client(t, noRetry),
		Bucket:      bucket,
		Concurrency: conc,
		Duration:    d,
		SampleEvery: every,
		Sample: func(ctx context.Context) (soak.Gauges, error) {
			// Live memory only: collect first (the workers are paused).
			collectGarbage(ctx, p)
			collectGarbage(ctx, p)
			return gauges(ctx, p)
		},
		Logf: t.Logf,
	})
	must(t, err, "soak")
	sp := rep.Spread(warmup)
	for _, s := range rep.FirstProblems {
		t.Log("problem: ", s)
	}
	if n := rep.TotalErrors(); n > 0 {
		t.Errorf("%d operations failed: %v", n, rep.Errors)
	}
	if rep.Mismatches > 0 {
		t.Errorf("%d mismatches", rep.Mismatches)
	}
	if rep.SampleErrors > 0 {
		t.Errorf("%d samples could not be taken", rep.SampleErrors)
	}
	// Flat means within 25 % (max/min) after the warm-up, for what s3seal
	// holds: goroutines less those serving keep-alive connections (the
	// pools' sizes move with the traffic's recent peaks) and resident
	// memory less heap pages freed but not yet returned (the runtime gives
	// them back gradually). The raw figures are reported too. A goroutine
	// count moving by at most 16 is not a leak over thousands of
	// operations, whatever its ratio.
	if sp.GoroutinesNet > 1.25 && sp.GoroutinesNetRange > 16 {
		t.Errorf("after the %v warm-up, goroutines outside connection pools spread %.2f× (%.0f goroutines, max/min); want at most 1.25× or 16", warmup, sp.GoroutinesNet, sp.GoroutinesNetRange)
	}
	if sp.RSSInUse > 1.25 {
		t.Errorf("after the %v warm-up, resident memory in use spread %.2f× (max/min); want at most 1.25×", warmup, sp.RSSInUse)
	}
	health(t, p)
	relRecord(t, "soak", map[string]any{
		"duration": rep.Duration.Round(time.Second), "concurrency": rep.Concurrency, "ops": rep.TotalOps(), "ops_by_kind": fmt.Sprint(rep.Ops),
		"errors": rep.TotalErrors(), "mismatches": rep.Mismatches, "written_mib": rep.BytesWritten >> 20, "read_mib": rep.BytesRead >> 20,
		"largest_object_mib": fmt.Sprintf("%.1f", float64(rep.LargestObject)/(1<<20)),
		"goroutine_spread":   fmt.Sprintf("%.2f", sp.Goroutines), "goroutine_net_spread": fmt.Sprintf("%.2f", sp.GoroutinesNet), "goroutine_net_range": sp.GoroutinesNetRange,
		"rss_spread": fmt.Sprintf("%.2f", sp.RSS), "rss_in_use_spread": fmt.Sprintf("%.2f", sp.RSSInUse),
		"warmup": warmup, "samples": len(rep.Samples),
	})
	if path := os.Getenv("S3SEAL_SOAK_REPORT"); path != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		must(t, os.WriteFile(path, b, 0o644), "write soak report")
	}
}
