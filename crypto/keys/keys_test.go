package keys_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/keystest"
)

func TestParseSpec(t *testing.T) {
	good := map[string]keys.Spec{
		"local:/etc/s3seal/keyring": {Kind: "local", Path: "/etc/s3seal/keyring"},
		"local:keys.txt":            {Kind: "local", Path: "keys.txt"},
		"local:env:S3SEAL_KEYRING":  {Kind: "local", Env: "S3SEAL_KEYRING"},
		"aws-kms:alias/s3seal":      {Kind: "aws-kms", KeyIDs: []string{"alias/s3seal"}},
		"aws-kms:arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab,alias/old": {
			Kind: "aws-kms", KeyIDs: []string{"arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", "alias/old"}},
		"age:/etc/s3seal/recipients.txt": {Kind: "age", Recipients: "/etc/s3seal/recipients.txt"},
		"age:r.txt,identity=/etc/s3seal/id.txt,identity=old.txt,name=backups,allow_classical=true": {
			Kind: "age", Recipients: "r.txt", Identities: []string{"/etc/s3seal/id.txt", "old.txt"}, Name: "backups", AllowClassical: true},
		"age:identity=id.txt": {Kind: "age", Identities: []string{"id.txt"}},
	}
	for s, want := range good {
		got, err := keys.ParseSpec(s)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseSpec(%q) = %+v, %v; want %+v", s, got, err, want)
			continue
		}
		if got.String() != s {
			t.Errorf("String() = %q, want %q", got.String(), s)
		}
	}
	// Options in any order after the recipients file; false is the default.
	if got, err := keys.ParseSpec("age:r,allow_classical=false,name=n,identity=i"); err != nil ||
		!reflect.DeepEqual(got, keys.Spec{Kind: "age", Recipients: "r", Identities: []string{"i"}, Name: "n"}) {
		t.Errorf("reordered age options: %+v, %v", got, err)
	}
	for _, s := range []string{"", "local", "local:", "local:env:", "aws-kms:", "aws-kms:a,,b", "aws-kms:a,a", "aws-kms: a", "vault:x", "LOCAL:x",
		"age:", "age:r,", "age:,identity=i", "age:identity=", "age:r,name=", "age:r,name=a,name=b", "age:r,allow_classical", "age:r,allow_classical=yes",
		"age:r,allow_classical=true,allow_classical=true", "age:r,other.txt", "age:name=n", "age:allow_classical=true", "age:r, identity=i"} {
		if _, err := keys.ParseSpec(s); err == nil {
			t.Errorf("ParseSpec(%q) succeeded", s)
		}
	}
}

func TestWriteOnlyError(t *testing.T) {
	err := fmt.Errorf("envelope: %w", &keys.WriteOnlyError{Provider: "age", KeyID: "backups-0123456789abcdef", Operation: "Decrypt"})
	var wo *keys.WriteOnlyError
	if !errors.As(err, &wo) || keys.IsWrongKey(err) {
		t.Fatalf("WriteOnlyError: As %v, IsWrongKey %v", errors.As(err, &wo), keys.IsWrongKey(err))
	}
	for _, want := range []string{"keys: ", "only public keys", "backups-0123456789abcdef", "identity=FILE", "s3seal decrypt --identity"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
}

// capable gives a fake provider capabilities.
type capable struct {
	*keystest.Provider
	caps keys.Capabilities
}

func (c capable) Capabilities() keys.Capabilities { return c.caps }

func TestCapabilities(t *testing.T) {
	ctx := context.Background()
	plain := &keystest.Provider{}
	if c := keys.CapabilitiesOf(plain); c.WriteOnly || c.MaxWrappedSize != keys.MaxWrappedSize || c.LargeWrappedKeys() {
		t.Fatalf("default capabilities %+v", c)
	}
	if c := keys.CapabilitiesOf(keys.NewCache(plain, keys.CacheConfig{})); c != keys.CapabilitiesOf(plain) {
		t.Fatalf("cache of a plain provider: %+v", c)
	}
	wo := capable{&keystest.Provider{}, keys.Capabilities{WriteOnly: true, MaxWrappedSize: 16384}}
	c := keys.NewCache(wo, keys.CacheConfig{})
	if got := keys.CapabilitiesOf(c); got != wo.caps || !got.LargeWrappedKeys() {
		t.Fatalf("cache passes on %+v, want %+v", got, wo.caps)
	}
	// A write-only provider's generated key is not kept for Decrypt: the
	// read goes to the provider (which, being write-only, refuses it).
	dk, err := c.GenerateDataKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decrypt(ctx, dk.Ciphertext, dk.KeyID); err != nil {
		t.Fatal(err) // the fake can unwrap; what matters is that it was asked
	}
	if s := c.Stats(); s.Hits != 0 || s.ProviderCalls != 2 || wo.Decrypts.Load() != 1 {
		t.Fatalf("stats %+v, provider decrypts %d", s, wo.Decrypts.Load())
	}
	// A provider that reads keeps it.
	rc := keys.NewCache(plain, keys.CacheConfig{})
	dk, _ = rc.GenerateDataKey(ctx)
	if _, err := rc.Decrypt(ctx, dk.Ciphertext, dk.KeyID); err != nil || rc.Stats().Hits != 1 {
		t.Fatalf("reader cache: %v %+v", err, rc.Stats())
	}
}

func TestErrorsAreActionableAndTyped(t *testing.T) {
	cause := errors.New("cause")
	for _, err := range []error{
		&keys.UnknownKeyError{Provider: "aws-kms", KeyID: "k", Err: cause},
		&keys.UnwrapError{Provider: "local", KeyID: "k", Err: cause},
		&keys.KeyDisabledError{Provider: "aws-kms", KeyID: "k", Err: cause},
		&keys.AccessDeniedError{Provider: "aws-kms", KeyID: "k", Operation: "Decrypt", Err: cause},
		&keys.UnavailableError{Provider: "aws-kms", Operation: "Decrypt", Err: cause},
	} {
		if !errors.Is(err, cause) {
			t.Errorf("%T does not unwrap", err)
		}
		if msg := err.Error(); len(msg) < 30 || msg[:6] != "keys: " {
			t.Errorf("%T message %q", err, msg)
		}
	}
	if !keys.IsWrongKey(fmt.Errorf("x: %w", &keys.UnwrapError{})) || !keys.IsWrongKey(&keys.UnknownKeyError{}) || keys.IsWrongKey(&keys.UnavailableError{}) {
		t.Error("IsWrongKey misclassifies")
	}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestCacheReusePolicy(t *testing.T) {
	p := &keystest.Provider{}
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	c := keys.NewCache(p, keys.CacheConfig{Now: clock.Now})
	ctx := context.Background()
	seen := map[[32]byte]int{}
	for i := 0; i < 10_000; i++ {
		dk, err := c.GenerateDataKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seen[dk.Plaintext]++
	}
	if calls := p.Calls(); calls > 10 {
		t.Fatalf("10,000 encryptions made %d provider calls", calls)
	}
	if len(seen) != 1 {
		t.Fatalf("default policy used %d data keys for 10,000 objects, want 1", len(seen))
	}
	// The 10,001st object gets a new key.
	dk, _ := c.GenerateDataKey(ctx)
	if seen[dk.Plaintext] != 0 || p.Generates.Load() != 2 {
		t.Fatal("data key not renewed after 10,000 objects")
	}
	// Age bound: after 10 minutes a new key.
	clock.Add(10*time.Minute + time.Second)
	dk2, _ := c.GenerateDataKey(ctx)
	if dk2.Plaintext == dk.Plaintext || p.Generates.Load() != 3 {
		t.Fatal("data key not renewed after 10 minutes")
	}
	st := c.Stats()
	if st.Reused != 9_999 || st.ProviderCalls != 3 {
		t.Fatalf("stats %+v", st)
	}
	// A freshly generated key decrypts from the cache, without the provider.
	before := p.Calls()
	k, err := c.Decrypt(ctx, dk2.Ciphertext, dk2.KeyID)
	if err != nil || k != dk2.Plaintext || p.Calls() != before {
		t.Fatalf("new key not served from cache: %v", err)
	}

	// Reuse can be turned off.
	p2 := &keystest.Provider{}
	c2 := keys.NewCache(p2, keys.CacheConfig{ReuseObjects: -1})
	for i := 0; i < 5; i++ {
		if _, err := c2.GenerateDataKey(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if p2.Generates.Load() != 5 {
		t.Fatalf("no-reuse made %d calls", p2.Generates.Load())
	}
}

func TestCacheDecryptSharedKeys(t *testing.T) {
	gen := &keystest.Provider{}
	ctx := context.Background()
	var wrapped []keys.DataKey
	for i := 0; i < 5; i++ {
		dk, err := gen.GenerateDataKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wrapped = append(wrapped, dk)
	}
	p := &keystest.Provider{}
	c := keys.NewCache(p, keys.CacheConfig{})
	// 10,000 objects sharing 5 data keys, read concurrently.
	var wg sync.WaitGroup
	var bad atomic.Int64
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < 10_000; i += 8 {
				dk := wrapped[i%5]
				k, err := c.Decrypt(ctx, dk.Ciphertext, dk.KeyID)
				if err != nil || k != dk.Plaintext {
					bad.Add(1)
				}
			}
		}(w)
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d wrong results", bad.Load())
	}
	if n := p.Decrypts.Load(); n > 5 {
		t.Fatalf("decrypting 10,000 objects sharing 5 data keys made %d provider calls", n)
	}
	st := c.Stats()
	if st.Hits+st.Misses != 10_000 || st.ProviderCalls != uint64(p.Decrypts.Load()) {
		t.Fatalf("stats %+v", st)
	}
}

func TestCacheDoesNotCacheFailuresOrBypassAllowList(t *testing.T) {
	ctx := context.Background()
	other := &keystest.Provider{Active: "other-key"}
	dk, _ := other.GenerateDataKey(ctx)
	p := &keystest.Provider{}
	c := keys.NewCache(p, keys.CacheConfig{})
	for i := 0; i < 3; i++ {
		var u *keys.UnknownKeyError
		if _, err := c.Decrypt(ctx, dk.Ciphertext, dk.KeyID); !errors.As(err, &u) {
			t.Fatalf("key outside the allow-list: %v", err)
		}
	}
	if p.Decrypts.Load() != 3 {
		t.Fatalf("failures were cached: %d calls", p.Decrypts.Load())
	}
	// A key that the same cache generated is not readable under another
	// key id (the cache key includes the id).
	mine, _ := c.GenerateDataKey(ctx)
	if _, err := c.Decrypt(ctx, mine.Ciphertext, "other-key"); err == nil {
		t.Fatal("cached key served under another key id")
	}
}

func TestCacheFailFastNoFallback(t *testing.T) {
	p := &keystest.Provider{}
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	c := keys.NewCache(p, keys.CacheConfig{Now: clock.Now, ReuseObjects: 2, RetryAfter: 5 * time.Second})
	ctx := context.Background()
	first, err := c.GenerateDataKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GenerateDataKey(ctx); err != nil { // second use
		t.Fatal(err)
	}
	down := errors.New("connection refused")
	p.SetFail(down)
	_, err = c.GenerateDataKey(ctx) // renewal fails
	var u *keys.UnavailableError
	if !errors.As(err, &u) || !errors.Is(err, down) {
		t.Fatalf("renewal failure: %v", err)
	}
	calls := p.Generates.Load()
	for i := 0; i < 100; i++ {
		dk, err := c.GenerateDataKey(ctx)
		if !errors.As(err, &u) {
			t.Fatalf("write %d during outage: %v", i, err)
		}
		if dk.Plaintext == first.Plaintext {
			t.Fatal("fell back to the retired data key")
		}
	}
	if p.Generates.Load() != calls {
		t.Fatalf("fail-fast window still called the provider %d times", p.Generates.Load()-calls)
	}
	// After RetryAfter it tries again, and recovers when the provider does.
	p.SetFail(nil)
	clock.Add(6 * time.Second)
	dk, err := c.GenerateDataKey(ctx)
	if err != nil || dk.Plaintext == first.Plaintext {
		t.Fatalf("no recovery: %v", err)
	}
	// A caller's own cancellation does not open a fail-fast window.
	p.SetFail(context.Canceled)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	c.GenerateDataKey(ctx) // uses the second slot of the current key
	if _, err := c.GenerateDataKey(cctx); err == nil {
		t.Fatal("cancelled renewal succeeded")
	}
	p.SetFail(nil)
	if _, err := c.GenerateDataKey(ctx); err != nil {
		t.Fatalf("cancellation blocked other writers: %v", err)
	}
}

func TestCacheEvictionAndPurge(t *testing.T) {
	ctx := context.Background()
	gen := &keystest.Provider{}
	p := &keystest.Provider{}
	c := keys.NewCache(p, keys.CacheConfig{MaxKeys: 2, MaxAge: 200 * time.Millisecond})
	var dks []keys.DataKey
	for i := 0; i < 3; i++ {
		dk, _ := gen.GenerateDataKey(ctx)
		dks = append(dks, dk)
		if _, err := c.Decrypt(ctx, dk.Ciphertext, dk.KeyID); err != nil {
			t.Fatal(err)
		}
	}
	if c.Stats().Evictions != 1 {
		t.Fatalf("count bound: %+v", c.Stats())
	}
	// Age bound: the LRU expires entries on the wall clock.
	deadline := time.Now().Add(5 * time.Second)
	for c.Stats().Evictions < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if c.Stats().Evictions < 3 {
		t.Fatalf("entries did not expire: %+v", c.Stats())
	}
	before := p.Decrypts.Load()
	if k, err := c.Decrypt(ctx, dks[2].Ciphertext, dks[2].KeyID); err != nil || k != dks[2].Plaintext || p.Decrypts.Load() != before+1 {
		t.Fatal("expired key not fetched again")
	}
	c.Purge()
	if _, err := c.Decrypt(ctx, dks[2].Ciphertext, dks[2].KeyID); err != nil || p.Decrypts.Load() != before+2 {
		t.Fatal("Purge kept a key")
	}
}

func TestCacheConcurrentMixed(t *testing.T) {
	ctx := context.Background()
	p := &keystest.Provider{}
	c := keys.NewCache(p, keys.CacheConfig{ReuseObjects: 50, MaxKeys: 8})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				dk, err := c.GenerateDataKey(ctx)
				if err != nil {
					errs <- err
					return
				}
				k, err := c.Decrypt(ctx, dk.Ciphertext, dk.KeyID)
				if err != nil || k != dk.Plaintext {
					errs <- fmt.Errorf("round trip: %v", err)
					return
				}
				_ = c.Stats()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// 4,000 objects at 50 per key: about 80 generations, never one per object.
	if g := p.Generates.Load(); g < 80 || g > 90 {
		t.Fatalf("%d generations for 4,000 objects at 50 per key", g)
	}
}
