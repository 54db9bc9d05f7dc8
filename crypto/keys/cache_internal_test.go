package keys

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"
)

// fakeProvider unwraps every "wrapped key" to its first 32 bytes.
type fakeProvider struct {
	mu    sync.Mutex
	calls int
}

func (f *fakeProvider) Name() string { return "fake" }
func (f *fakeProvider) GenerateDataKey(context.Context) (DataKey, error) {
	var dk DataKey
	dk.Plaintext[0] = 0x5a
	dk.KeyID, dk.Ciphertext = "k", []byte("wrapped")
	return dk, nil
}
func (f *fakeProvider) Decrypt(_ context.Context, wrapped []byte, _ string) ([DataKeySize]byte, error) {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	var k [DataKeySize]byte
	copy(k[:], wrapped)
	return k, nil
}
func (f *fakeProvider) Rewrap(context.Context, []byte, string) (WrappedKey, error) {
	return WrappedKey{}, nil
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func wrappedOf(b byte) []byte { w := make([]byte, DataKeySize); w[0] = b; w[31] = 0xff; return w }

// entries returns the cache's entries, to check that the keys that left
// it were zeroed.
func entries(c *Cache) []*cacheEntry {
	var out []*cacheEntry
	for _, k := range c.lru.Keys() {
		e, _ := c.lru.Peek(k)
		out = append(out, e)
	}
	return out
}

func zeroed(e *cacheEntry) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dead && e.key == [DataKeySize]byte{}
}

func TestCacheZeroesOnEvictExpireAndClose(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	p := &fakeProvider{}
	c := NewCache(p, CacheConfig{MaxKeys: 2, MaxAge: time.Hour, Now: clk.now})
	defer c.Close()
	c.Decrypt(ctx, wrappedOf(1), "k")
	first := entries(c)[0]
	c.Decrypt(ctx, wrappedOf(2), "k")
	c.Decrypt(ctx, wrappedOf(3), "k") // evicts 1 by count
	if !zeroed(first) {
		t.Fatal("key evicted by count was not zeroed")
	}
	// Expiry on lookup, with the injected clock.
	held := entries(c)
	clk.add(time.Hour)
	if _, err := c.Decrypt(ctx, wrappedOf(3), "k"); err != nil || p.calls != 4 {
		t.Fatalf("expired key served from the cache (%d provider calls)", p.calls)
	}
	// The sweep drops expired keys that nobody looks up.
	c.SweepExpired()
	for _, e := range held {
		if !zeroed(e) {
			t.Fatal("expired key was not zeroed by the sweep")
		}
	}
	if c.Len() != 1 {
		t.Fatalf("after the sweep %d keys remain, want the one fetched again", c.Len())
	}
	live := entries(c)
	dk, _ := c.GenerateDataKey(ctx)
	dk.Zero()
	c.Close()
	for _, e := range live {
		if !zeroed(e) {
			t.Fatal("Close left a key in memory")
		}
	}
	if c.Len() != 0 || c.cur != nil || c.sweep != nil {
		t.Fatal("Close kept state")
	}
	// A closed cache is a pass-through: nothing is kept for later.
	before := p.calls
	c.Decrypt(ctx, wrappedOf(9), "k")
	c.Decrypt(ctx, wrappedOf(9), "k")
	if p.calls != before+2 || c.Len() != 0 {
		t.Fatalf("closed cache kept a key: %d calls, %d keys", p.calls-before, c.Len())
	}
}

// TestCacheIdleSweepOnTimer: an idle cache drops its keys after MaxAge on
// its own, without a goroutine of its own.
func TestCacheIdleSweepOnTimer(t *testing.T) {
	c := NewCache(&fakeProvider{}, CacheConfig{MaxAge: 50 * time.Millisecond})
	defer c.Close()
	c.Decrypt(context.Background(), wrappedOf(1), "k")
	e := entries(c)[0]
	deadline := time.Now().Add(5 * time.Second)
	for c.Len() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if c.Len() != 0 || !zeroed(e) {
		t.Fatal("idle cache kept an expired key")
	}
	c.mu.Lock()
	armed := c.sweep != nil
	c.mu.Unlock()
	if armed {
		t.Fatal("sweep timer still armed on an empty cache")
	}
}

// TestCacheNoGoroutinePerCache: building and closing caches, as each
// configuration reload does, leaves no goroutine behind.
func TestCacheNoGoroutinePerCache(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := 0; i < 200; i++ {
		c := NewCache(&fakeProvider{}, CacheConfig{})
		c.Decrypt(context.Background(), wrappedOf(byte(i)), "k")
		c.Close()
	}
	time.Sleep(50 * time.Millisecond)
	if after := runtime.NumGoroutine(); after > before+2 {
		t.Fatalf("goroutines %d before, %d after 200 caches", before, after)
	}
}
