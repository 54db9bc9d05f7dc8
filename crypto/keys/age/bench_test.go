//go:build linux

package age

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/local"
)

// The costs of one wrap (GenerateDataKey) and one unwrap (Decrypt):
//
//	go test -run - -bench . ./crypto/keys/age/
//
// Besides wall time per operation, each reports cpu-ns/op, the CPU time of
// the benchmark's thread, which a busy shared machine does not inflate.
func BenchmarkWrap(b *testing.B) {
	for _, bc := range benchCases(b) {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			defer cpuPerOp(b)()
			for b.Loop() {
				if _, err := bc.p.GenerateDataKey(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// cpuPerOp pins the benchmark to its thread and, when the returned func
// runs, reports the thread's CPU time per operation.
func cpuPerOp(b *testing.B) func() {
	runtime.LockOSThread()
	start := threadCPU(b)
	return func() {
		d := threadCPU(b) - start
		runtime.UnlockOSThread()
		b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

func threadCPU(b *testing.B) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ts.Nano())
}

func BenchmarkUnwrap(b *testing.B) {
	for _, bc := range benchCases(b) {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			dk, err := bc.p.GenerateDataKey(ctx)
			if err != nil {
				b.Fatal(err)
			}
			defer cpuPerOp(b)()
			for b.Loop() {
				if _, err := bc.p.Decrypt(ctx, dk.Ciphertext, dk.KeyID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type benchCase struct {
	name string
	p    keys.Provider
}

// benchCases: the reading identity is the last recipient, so an unwrap
// tries every stanza before its own (the worst case).
func benchCases(b *testing.B) []benchCase {
	h := []party{newParty(b, "a", false), newParty(b, "b", false), newParty(b, "c", false)}
	x := []party{newParty(b, "x", true), newParty(b, "y", true)}
	ring, err := local.Parse([]byte("k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))))
	if err != nil {
		b.Fatal(err)
	}
	cases := []benchCase{{"local", local.NewProvider(ring, local.Config{})}}
	for n := 1; n <= 3; n++ {
		cases = append(cases, benchCase{fmt.Sprintf("hybrid-%d", n), mustProvider(b, h[:n], h[n-1:n], false)})
	}
	for n := 1; n <= 2; n++ {
		cases = append(cases, benchCase{fmt.Sprintf("x25519-%d", n), mustProvider(b, x[:n], x[n-1:n], true)})
	}
	return cases
}
