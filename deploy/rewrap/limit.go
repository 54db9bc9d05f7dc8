package rewrap

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limiter spaces events at most rate per second apart, with no burst: the
// n-th Wait returns no earlier than (n-1)/rate seconds after the first. A
// rate of 0 (or less) means no limit. It is safe for concurrent use.
type Limiter struct {
	interval time.Duration
	now      func() time.Time
	sleep    func(context.Context, time.Duration) error

	mu   sync.Mutex // protects next
	next time.Time  // the earliest time the next event may happen
}

// NewLimiter returns a limiter of perSecond events a second. now and sleep
// are the clock (nil: time.Now and a timer).
func NewLimiter(perSecond float64, now func() time.Time, sleep func(context.Context, time.Duration) error) *Limiter {
	l := &Limiter{now: now, sleep: sleep}
	if l.now == nil {
		l.now = time.Now
	}
	if l.sleep == nil {
		l.sleep = sleepContext
	}
	if perSecond > 0 {
		l.interval = time.Duration(float64(time.Second) / perSecond)
		if l.interval <= 0 {
			l.interval = 1
		}
	}
	return l
}

// Wait blocks until the next event may happen, or ctx ends (then it
// returns ctx's error and the slot is given back).
func (l *Limiter) Wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if l.interval == 0 {
		return nil
	}
	l.mu.Lock()
	now := l.now()
	at := l.next
	if at.Before(now) {
		at = now
	}
	l.next = at.Add(l.interval)
	l.mu.Unlock()
	d := at.Sub(now)
	if d <= 0 {
		return nil
	}
	if err := l.sleep(ctx, d); err != nil {
		l.mu.Lock()
		if l.next.Equal(at.Add(l.interval)) {
			l.next = at
		}
		l.mu.Unlock()
		return err
	}
	return nil
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ParseRate parses a rate: "N" or "N/s" (per second), "N/m" or "N/min"
// (per minute), "N/h" (per hour), with N a positive decimal number. "0"
// and "" mean no limit.
func ParseRate(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	num, unit, _ := strings.Cut(s, "/")
	per := 1.0
	switch strings.ToLower(strings.TrimSpace(unit)) {
	case "", "s", "sec", "second":
		per = 1
	case "m", "min", "minute":
		per = 60
	case "h", "hour":
		per = 3600
	default:
		return 0, fmt.Errorf("rewrap: rate %q: unit must be /s, /m or /h", s)
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(n) || math.IsInf(n, 0) || n < 0 {
		return 0, fmt.Errorf("rewrap: rate %q: want a number of objects per second, such as 50/s", s)
	}
	r := n / per
	if n > 0 && r < 1e-6 {
		return 0, fmt.Errorf("rewrap: rate %q is too low", s)
	}
	return r, nil
}
