package proxy

import (
	"sync"
	"testing"
)

func TestMemBudget(t *testing.T) {
	b := &memBudget{max: 100}
	if !b.acquire(60) || b.acquire(41) || !b.acquire(40) || b.acquire(1) {
		t.Fatal("the budget is not enforced")
	}
	b.release(60)
	if !b.acquire(60) {
		t.Fatal("released bytes are not available again")
	}
	b.release(100)
	// Concurrent users never hold more than the budget.
	var wg sync.WaitGroup
	var mu sync.Mutex
	held, peak := int64(0), int64(0)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				if !b.acquire(30) {
					continue
				}
				mu.Lock()
				held += 30
				peak = max(peak, held)
				mu.Unlock()
				mu.Lock()
				held -= 30
				mu.Unlock()
				b.release(30)
			}
		}()
	}
	wg.Wait()
	if peak > 100 || b.used != 0 {
		t.Fatalf("peak %d, left %d", peak, b.used)
	}
}

func TestIsS3ECHeader(t *testing.T) {
	for h, want := range map[string]bool{"x-amz-meta-x-amz-key-v2": true, "x-amz-meta-x-amz-3": true, "x-amz-meta-app": false, "x-amz-version-id": false} {
		if isS3ECHeader(h) != want {
			t.Errorf("%s: %v", h, !want)
		}
	}
}
