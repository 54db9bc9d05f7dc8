package rewrap

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func validState() *State {
	return &State{Version: StateVersion, Bucket: "b", Prefix: "p/", After: "p/k9", Updated: fixedNow(),
		Totals: Counts{Scanned: 12, Rewrapped: 9, Current: 1, Failed: 1, Skipped: map[string]int64{ReasonLocked: 1}}}
}

func TestStateRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	if s, err := LoadState(path); s != nil || err != nil {
		t.Fatalf("missing file: %v %v", s, err)
	}
	s := validState()
	if err := SaveState(path, s); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", fi.Mode(), err)
	}
	got, err := LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.After != s.After || got.Totals.Skipped[ReasonLocked] != 1 || got.Totals.Scanned != 12 || !got.Updated.Equal(s.Updated) {
		t.Errorf("read back %+v", got)
	}
	// Saving again replaces the file and leaves no temporary files.
	s.After = "p/z"
	if err := SaveState(path, s); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("%d files in the directory", len(entries))
	}
	if got, _ := LoadState(path); got.After != "p/z" {
		t.Errorf("after %q", got.After)
	}
	if err := SaveState(filepath.Join(t.TempDir(), "missing-dir", "s"), s); err == nil {
		t.Error("saving into a missing directory succeeded")
	}
}

func TestParseStateRefuses(t *testing.T) {
	good, err := validState().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseState(good); err != nil {
		t.Fatalf("valid state refused: %v", err)
	}
	edit := func(old, new string) []byte {
		if !strings.Contains(string(good), old) {
			t.Fatalf("%q not in %s", old, good)
		}
		return []byte(strings.Replace(string(good), old, new, 1))
	}
	for name, b := range map[string][]byte{
		"empty":            nil,
		"not json":         []byte("after=p/k9"),
		"unknown field":    edit(`"version": 1`, `"version": 1, "extra": true`),
		"other version":    edit(`"version": 1`, `"version": 2`),
		"no bucket":        edit(`"bucket": "b"`, `"bucket": ""`),
		"trailing data":    append(append([]byte{}, good...), []byte(`{"version":1}`)...),
		"after not in pfx": edit(`"after": "p/k9"`, `"after": "q/k9"`),
		"negative":         edit(`"failed": 1`, `"failed": -1`),
		"sums differ":      edit(`"scanned": 12`, `"scanned": 13`),
		"negative skipped": edit(`: 1
    }`, `: -1
    }`),
		"invalid utf-8": edit(`"after": "p/k9"`, "\"after\": \"p/k\xff\""),
		"key too long":  edit(`"after": "p/k9"`, `"after": "p/`+strings.Repeat("k", 1100)+`"`),
		"wrong type":    edit(`"finished": false`, `"finished": "no"`),
		"too large":     append(append([]byte{}, good...), make([]byte, maxStateSize)...),
	} {
		if _, err := ParseState(b); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			var se *StateError
			if !errors.As(err, &se) {
				t.Errorf("%s: %T %v", name, err, err)
			}
		}
	}
}

func TestLoadStateErrorsNamePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadState(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("error %v does not name the file", err)
	}
}

func FuzzParseState(f *testing.F) {
	good, _ := validState().Marshal()
	f.Add(good)
	f.Add([]byte(`{"version":1,"bucket":"b","prefix":"","after":"","finished":true,"updated":"2026-01-01T00:00:00Z","totals":{"scanned":0,"rewrapped":0,"current":0,"failed":0}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseState(b)
		if err != nil {
			return
		}
		// An accepted state encodes and parses back to the same.
		again, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		s2, err := ParseState(again)
		if err != nil {
			t.Fatalf("re-encoded state refused: %v", err)
		}
		if s2.After != s.After || s2.Bucket != s.Bucket || s2.Totals.Scanned != s.Totals.Scanned || s2.Finished != s.Finished {
			t.Fatal("round trip changed the state")
		}
	})
}

func TestTracker(t *testing.T) {
	tr := newTracker("start")
	if tr.finish(1, "b") || tr.after != "start" {
		t.Fatal("moved past an unfinished key")
	}
	if tr.finish(2, "c") {
		t.Fatal("moved past an unfinished key")
	}
	if !tr.finish(0, "a") || tr.after != "c" || len(tr.done) != 0 {
		t.Fatalf("after %q, pending %v", tr.after, tr.done)
	}
	if tr.finish(1, "b") || tr.after != "c" {
		t.Fatal("an old completion moved the watermark")
	}
	if !tr.finish(3, "d") || tr.after != "d" {
		t.Fatal("did not move")
	}
}

// fakeClock is a clock whose sleeps advance it.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	slept  []time.Duration
	cancel bool
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancel {
		return context.Canceled
	}
	c.slept = append(c.slept, d)
	c.t = c.t.Add(d)
	return nil
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestLimiter(t *testing.T) {
	ctx := context.Background()
	c := &fakeClock{t: fixedNow()}
	l := NewLimiter(10, c.now, c.sleep)
	start := c.now()
	for range 5 {
		if err := l.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if d := c.now().Sub(start); d != 400*time.Millisecond {
		t.Errorf("5 events at 10/s took %v, want 400ms", d)
	}
	// Idle time does not build up a burst.
	c.advance(10 * time.Second)
	before := len(c.slept)
	for range 3 {
		_ = l.Wait(ctx)
	}
	if n := len(c.slept) - before; n != 2 {
		t.Errorf("after idling, %d of 3 events waited, want 2", n)
	}
	// A cancelled wait gives its slot back.
	c.cancel = true
	next := l.next
	if err := l.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	if !l.next.Equal(next) {
		t.Errorf("the cancelled slot was kept: next %v, was %v", l.next, next)
	}
	c.cancel = false
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := l.Wait(done); err == nil {
		t.Error("wait on an ended context succeeded")
	}
	// No limit: never sleeps.
	u := NewLimiter(0, c.now, func(context.Context, time.Duration) error { t.Error("slept"); return nil })
	for range 100 {
		_ = u.Wait(ctx)
	}
}

func TestLimiterConcurrent(t *testing.T) {
	// Time stands still: all 50 events are reserved at once.
	c := &fakeClock{t: fixedNow()}
	var slept sync.Map
	l := NewLimiter(100, c.now, func(_ context.Context, d time.Duration) error {
		if _, dup := slept.LoadOrStore(d, true); dup {
			t.Errorf("two events given the same slot %v", d)
		}
		return nil
	})
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() { defer wg.Done(); _ = l.Wait(context.Background()) }()
	}
	wg.Wait()
	// 50 events at 100/s: the last one is 490 ms after the first.
	if !l.next.Equal(fixedNow().Add(500 * time.Millisecond)) {
		t.Errorf("next slot %v after 50 events", l.next.Sub(fixedNow()))
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{"": 0, "0": 0, "50": 50, "50/s": 50, " 2.5/s ": 2.5, "120/m": 2, "120/min": 2, "3600/h": 1} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"x", "-1", "5/d", "NaN", "Inf/s", "1/s/s", "0.000001/h"} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}
