package age

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/s3seal/s3seal/crypto/keys"
)

// counting counts the age provider's wraps (GenerateDataKey calls).
type counting struct {
	*Provider
	wraps atomic.Int64
}

func (c *counting) GenerateDataKey(ctx context.Context) (keys.DataKey, error) {
	c.wraps.Add(1)
	return c.Provider.GenerateDataKey(ctx)
}

// TestCacheKeepsWrapsOffThePerObjectPath: through keys.Cache, 1,000 new
// objects cost one age wrap, and a write-only gateway's cache never
// serves reads of what it wrote.
func TestCacheKeepsWrapsOffThePerObjectPath(t *testing.T) {
	ctx := context.Background()
	a, b := newParty(t, "a", false), newParty(t, "b", false)
	p := &counting{Provider: mustProvider(t, []party{a, b}, nil, false)}
	c := keys.NewCache(p, keys.CacheConfig{})
	if !keys.CapabilitiesOf(c).WriteOnly || !keys.CapabilitiesOf(c).LargeWrappedKeys() {
		t.Fatal("the cache hides the provider's capabilities")
	}
	var first keys.DataKey
	for i := range 1000 {
		dk, err := c.GenerateDataKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = dk
		} else if dk.Plaintext != first.Plaintext || !bytes.Equal(dk.Ciphertext, first.Ciphertext) {
			t.Fatalf("object %d got another data key", i)
		}
	}
	if n := p.wraps.Load(); n != 1 {
		t.Fatalf("%d wraps for 1,000 objects", n)
	}
	if s := c.Stats(); s.ProviderCalls != 1 || s.Reused != 999 {
		t.Fatalf("stats %+v", s)
	}
	var wo *keys.WriteOnlyError
	if _, err := c.Decrypt(ctx, first.Ciphertext, first.KeyID); !errors.As(err, &wo) {
		t.Fatalf("write-only cache served a read: %v", err)
	}
	if s := c.Stats(); s.Hits != 0 {
		t.Fatalf("stats %+v", s)
	}

	// A reading gateway: its own recent writes and others' wrapped keys
	// are unwrapped once, then served from the cache.
	rw := &counting{Provider: mustProvider(t, []party{a}, []party{a}, false)}
	rc := keys.NewCache(rw, keys.CacheConfig{})
	for range 3 {
		if k, err := rc.Decrypt(ctx, first.Ciphertext, first.KeyID); err != nil || k != first.Plaintext {
			t.Fatal(err)
		}
	}
	if s := rc.Stats(); s.ProviderCalls != 1 || s.Hits != 2 {
		t.Fatalf("reader stats %+v", s)
	}
}

// TestConcurrentUse wraps and unwraps from several goroutines at once
// (run with -race).
func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	a, b := newParty(t, "a", false), newParty(t, "b", false)
	p := mustProvider(t, []party{a, b}, []party{b}, false)
	c := keys.NewCache(p, keys.CacheConfig{ReuseObjects: 3})
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for range 4 {
				dk, err := c.GenerateDataKey(ctx)
				if err == nil {
					var k [keys.DataKeySize]byte
					if k, err = p.Decrypt(ctx, dk.Ciphertext, dk.KeyID); err == nil && k != dk.Plaintext {
						err = errors.New("unwrapped another key")
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
