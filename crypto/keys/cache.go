package keys

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// CacheConfig configures a Cache. The zero value gives the defaults.
type CacheConfig struct {
	// MaxKeys bounds the number of unwrapped data keys kept. 0 means 1000.
	MaxKeys int
	// MaxAge is how long an unwrapped data key is kept. 0 means 10 minutes.
	MaxAge time.Duration
	// ReuseObjects is how many new objects one generated data key serves.
	// 0 means 10,000; a negative value turns reuse off (one provider call
	// per object). Every object still gets its own object key.
	ReuseObjects int
	// ReuseAge is how long one generated data key serves new objects. 0
	// means 10 minutes.
	ReuseAge time.Duration
	// RetryAfter is how long, after the provider failed to renew the data
	// key for new writes, further writes fail at once with the same
	// *UnavailableError instead of calling the provider again. 0 means 1 s.
	RetryAfter time.Duration
	// Now is the clock of the reuse policy and of the age of unwrapped
	// keys. nil means time.Now. (The sweep that drops expired keys from an
	// idle cache runs on real timers.)
	Now func() time.Time
}

func (c CacheConfig) withDefaults() CacheConfig {
	if c.MaxKeys <= 0 {
		c.MaxKeys = 1000
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 10 * time.Minute
	}
	if c.ReuseObjects == 0 {
		c.ReuseObjects = 10000
	}
	if c.ReuseAge <= 0 {
		c.ReuseAge = 10 * time.Minute
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// CacheStats are a Cache's counters since it was made.
type CacheStats struct {
	Hits           uint64 // Decrypt served from the cache
	Misses         uint64 // Decrypt that had to ask the provider (or wait for a call in flight)
	Evictions      uint64 // unwrapped keys dropped (count or age bound, Purge)
	Reused         uint64 // GenerateDataKey served by the current data key
	ProviderCalls  uint64 // calls made to the underlying provider
	ProviderErrors uint64 // of which failed
}

// Cache is a Provider that decorates another one. It keeps unwrapped data
// keys in an LRU keyed by a hash of (provider, encryption context, key id,
// wrapped key), bounded by count and age, and serves new writes from one
// generated data key until the reuse policy retires it. It calls the
// provider only on a miss or a renewal, never periodically; concurrent
// misses for the same wrapped key make one call.
//
// For a write-only provider (Capabilities.WriteOnly) it holds only the data
// key serving new writes, for no longer than the reuse policy allows, and
// never serves Decrypt from it.
//
// Plaintext keys are zeroed when they leave the cache (evicted by count,
// expired, purged, or the cache closed); callers get copies. An expired key
// is dropped when it is next looked up, and a sweep armed on a timer drops
// the expired keys of an idle cache within MaxAge of their expiry; the
// cache runs no goroutine of its own. Close zeroes everything and turns the
// cache into a pass-through, for a configuration reload that replaces it.
// Cache is safe for concurrent use.
type Cache struct {
	p   Provider
	cfg CacheConfig
	// caps are p's capabilities; a write-only provider's generated keys
	// are not kept for Decrypt.
	caps Capabilities
	lru  *lru.Cache[[32]byte, *cacheEntry]

	// renew admits one renewal of the current data key at a time.
	renew chan struct{}

	// mu protects cur, failErr, failedAt, inflight, sweep and closed.
	// Lock order: mu, then the LRU's own lock, then an entry's lock; the
	// LRU's eviction callback takes only the entry's.
	mu       sync.Mutex
	cur      *currentKey
	failErr  error
	failedAt time.Time
	inflight map[[32]byte]*decryptCall
	sweep    *time.Timer // armed while the cache holds keys
	closed   bool

	hits, misses, evictions, reused, calls, callErrors atomic.Uint64
}

// currentKey is the data key serving new writes, with its use count.
type currentKey struct {
	dk      DataKey
	created time.Time
	uses    int
}

// cacheEntry holds an unwrapped key; its own lock lets eviction zero it
// without racing a reader that is copying it out.
type cacheEntry struct {
	mu    sync.Mutex
	key   [DataKeySize]byte
	added time.Time
	dead  bool
}

func (e *cacheEntry) get() ([DataKeySize]byte, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.key, !e.dead
}

func (e *cacheEntry) zero() {
	e.mu.Lock()
	clear(e.key[:])
	e.dead = true
	e.mu.Unlock()
}

type decryptCall struct {
	done chan struct{}
	key  [DataKeySize]byte
	err  error
}

// NewCache returns a Cache around p.
func NewCache(p Provider, cfg CacheConfig) *Cache {
	c := &Cache{p: p, cfg: cfg.withDefaults(), caps: CapabilitiesOf(p), renew: make(chan struct{}, 1), inflight: map[[32]byte]*decryptCall{}}
	// lru.NewWithEvict fails only for a size below 1, which withDefaults
	// rules out.
	c.lru, _ = lru.NewWithEvict[[32]byte, *cacheEntry](c.cfg.MaxKeys, func(_ [32]byte, e *cacheEntry) {
		e.zero()
		c.evictions.Add(1)
	})
	return c
}

var (
	_ Provider = (*Cache)(nil)
	_ Wrapper  = (*Cache)(nil)
	_ Capable  = (*Cache)(nil)
)

// Name returns the underlying provider's name.
func (c *Cache) Name() string { return c.p.Name() }

// Capabilities returns the underlying provider's.
func (c *Cache) Capabilities() Capabilities { return c.caps }

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() CacheStats {
	return CacheStats{
		Hits:           c.hits.Load(),
		Misses:         c.misses.Load(),
		Evictions:      c.evictions.Load(),
		Reused:         c.reused.Load(),
		ProviderCalls:  c.calls.Load(),
		ProviderErrors: c.callErrors.Load(),
	}
}

// Purge drops and zeroes every cached key, including the one serving new
// writes.
func (c *Cache) Purge() {
	c.lru.Purge()
	c.mu.Lock()
	if c.cur != nil {
		c.cur.dk.Zero()
		c.cur = nil
	}
	if c.sweep != nil {
		c.sweep.Stop()
		c.sweep = nil
	}
	c.mu.Unlock()
}

// Close purges the cache and stops its sweep timer. Afterwards the cache
// keeps nothing: calls still in flight (requests that started under the
// configuration this cache belonged to) go straight to the provider.
// Close does not close the provider.
func (c *Cache) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.Purge()
}

// Len returns the number of unwrapped keys held (expired ones not yet
// dropped included).
func (c *Cache) Len() int { return c.lru.Len() }

// SweepExpired drops and zeroes every expired key now. The cache calls it
// itself from a timer; it is exported for tests and for callers that want
// to bound residency more tightly.
func (c *Cache) SweepExpired() {
	now := c.cfg.Now()
	for _, k := range c.lru.Keys() {
		if e, ok := c.lru.Peek(k); ok && now.Sub(e.added) >= c.cfg.MaxAge {
			c.lru.Remove(k)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweep = nil
	c.armSweep()
}

// armSweep starts the sweep timer if keys are held and none is armed. The
// caller holds mu.
func (c *Cache) armSweep() {
	if c.sweep != nil || c.closed || c.lru.Len() == 0 {
		return
	}
	c.sweep = time.AfterFunc(c.cfg.MaxAge, c.SweepExpired)
}

// lookup returns the unexpired key under k.
func (c *Cache) lookup(k [32]byte, peek bool) ([DataKeySize]byte, bool) {
	get := c.lru.Get
	if peek {
		get = c.lru.Peek
	}
	e, ok := get(k)
	if !ok {
		return [DataKeySize]byte{}, false
	}
	if c.cfg.Now().Sub(e.added) >= c.cfg.MaxAge {
		c.lru.Remove(k) // zeroes it through the eviction callback
		return [DataKeySize]byte{}, false
	}
	return e.get()
}

func (c *Cache) cacheKey(keyID string, wrapped []byte) [32]byte {
	h := sha256.New()
	put := func(b []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	put([]byte(c.p.Name()))
	if cp, ok := c.p.(ContextProvider); ok {
		ctx := cp.EncryptionContext()
		names := make([]string, 0, len(ctx))
		for k := range ctx {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			put([]byte(k))
			put([]byte(ctx[k]))
		}
	}
	put([]byte(keyID))
	put(wrapped)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// usable reports whether the current key may serve one more object.
func (c *Cache) usable(now time.Time) bool {
	return c.cur != nil && c.cur.uses < c.cfg.ReuseObjects && now.Sub(c.cur.created) < c.cfg.ReuseAge
}

// GenerateDataKey returns the current data key while the reuse policy
// allows, and a new one from the provider otherwise. If that renewal fails,
// it returns an *UnavailableError, and for RetryAfter further calls return
// it too without calling the provider.
func (c *Cache) GenerateDataKey(ctx context.Context) (DataKey, error) {
	if c.cfg.ReuseObjects < 0 {
		return c.generate(ctx)
	}
	if dk, ok, err := c.fromCurrent(); ok || err != nil {
		return dk, err
	}
	select {
	case c.renew <- struct{}{}:
	case <-ctx.Done():
		return DataKey{}, ctx.Err()
	}
	defer func() { <-c.renew }()
	// Another caller may have renewed while this one waited.
	if dk, ok, err := c.fromCurrent(); ok || err != nil {
		return dk, err
	}
	dk, err := c.generate(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			c.failErr, c.failedAt = err, c.cfg.Now()
		}
		return DataKey{}, err
	}
	if c.cur != nil {
		c.cur.dk.Zero()
	}
	c.cur = &currentKey{dk: dk, created: c.cfg.Now(), uses: 1}
	c.failErr = nil
	dk.Ciphertext = append([]byte(nil), dk.Ciphertext...)
	return dk, nil
}

// fromCurrent serves from the current key, or reports a recent failure.
func (c *Cache) fromCurrent() (DataKey, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
	if c.usable(now) {
		c.cur.uses++
		c.reused.Add(1)
		dk := c.cur.dk
		dk.Ciphertext = append([]byte(nil), dk.Ciphertext...)
		return dk, true, nil
	}
	if c.failErr != nil && now.Sub(c.failedAt) < c.cfg.RetryAfter {
		return DataKey{}, false, c.failErr
	}
	return DataKey{}, false, nil
}

// generate calls the provider and remembers the new key for Decrypt,
// unless the provider is write-only: a gateway that holds only public keys
// must not read back what it wrote from its cache either.
func (c *Cache) generate(ctx context.Context) (DataKey, error) {
	c.calls.Add(1)
	dk, err := c.p.GenerateDataKey(ctx)
	if err != nil {
		c.callErrors.Add(1)
		var u *UnavailableError
		if !errors.As(err, &u) {
			err = &UnavailableError{Provider: c.p.Name(), Operation: "GenerateDataKey", Err: err}
		}
		return DataKey{}, err
	}
	if !c.caps.WriteOnly {
		c.add(c.cacheKey(dk.KeyID, dk.Ciphertext), dk.Plaintext)
	}
	return dk, nil
}

func (c *Cache) add(k [32]byte, key [DataKeySize]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if old, ok := c.lru.Peek(k); ok {
		old.zero() // Add replaces without calling the eviction callback
	}
	c.lru.Add(k, &cacheEntry{key: key, added: c.cfg.Now()})
	c.armSweep()
}

// Decrypt returns the unwrapped key from the cache, or asks the provider
// (which checks its allow-list) and caches the result. Failures are not
// cached.
func (c *Cache) Decrypt(ctx context.Context, wrapped []byte, keyID string) ([DataKeySize]byte, error) {
	k := c.cacheKey(keyID, wrapped)
	if key, ok := c.lookup(k, false); ok {
		c.hits.Add(1)
		return key, nil
	}
	for attempt := 0; ; attempt++ {
		c.mu.Lock()
		call, waiting := c.inflight[k]
		if !waiting {
			// A call that finished since the lookup above added its key
			// before leaving inflight: look again under the lock.
			if key, ok := c.lookup(k, true); ok {
				c.mu.Unlock()
				c.hits.Add(1)
				return key, nil
			}
			call = &decryptCall{done: make(chan struct{})}
			c.inflight[k] = call
		}
		c.mu.Unlock()
		if attempt == 0 {
			c.misses.Add(1)
		}
		if !waiting {
			c.calls.Add(1)
			call.key, call.err = c.p.Decrypt(ctx, wrapped, keyID)
			if call.err != nil {
				c.callErrors.Add(1)
			} else {
				c.add(k, call.key)
			}
			c.mu.Lock()
			delete(c.inflight, k)
			c.mu.Unlock()
			close(call.done)
			return call.key, call.err
		}
		select {
		case <-call.done:
		case <-ctx.Done():
			return [DataKeySize]byte{}, ctx.Err()
		}
		// The caller that made the call gave up: try again with ours.
		if call.err != nil && ctx.Err() == nil && attempt < 3 &&
			(errors.Is(call.err, context.Canceled) || errors.Is(call.err, context.DeadlineExceeded)) {
			continue
		}
		return call.key, call.err
	}
}

// Wrap passes through to the provider, if it is a Wrapper.
func (c *Cache) Wrap(ctx context.Context, key *[DataKeySize]byte) (WrappedKey, error) {
	w, ok := c.p.(Wrapper)
	if !ok {
		return WrappedKey{}, fmt.Errorf("keys: key provider %s cannot wrap data keys made elsewhere", c.p.Name())
	}
	c.calls.Add(1)
	out, err := w.Wrap(ctx, key)
	if err != nil {
		c.callErrors.Add(1)
	}
	return out, err
}

// Rewrap passes through to the provider.
func (c *Cache) Rewrap(ctx context.Context, wrapped []byte, keyID string) (WrappedKey, error) {
	c.calls.Add(1)
	w, err := c.p.Rewrap(ctx, wrapped, keyID)
	if err != nil {
		c.callErrors.Add(1)
	}
	return w, err
}
