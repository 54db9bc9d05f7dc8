package rewrap

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/local"
)

const testBucket = "bkt"

// testRing returns a key ring of the named keys, oldest first (the last is
// active); a name always has the same key, so rings can share keys.
func testRing(t testing.TB, names ...string) *local.Keyring {
	t.Helper()
	var b strings.Builder
	for _, n := range names {
		k := sha256.Sum256([]byte("test key " + n))
		fmt.Fprintf(&b, "%s:%s\n", n, base64.StdEncoding.EncodeToString(k[:]))
	}
	ring, err := local.Parse([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

func provider(ring *local.Keyring) keys.Provider { return local.NewProvider(ring, local.Config{}) }

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// putEnvelope stores an envelope object sealed with kp; parts != nil makes
// it multipart with those stored part sizes.
func putEnvelope(t testing.TB, f *fakeStore, kp keys.Provider, key string, parts []int64) (*fakeVersion, envelope.Header) {
	t.Helper()
	var size int64
	for _, p := range parts {
		size += p
	}
	if parts == nil {
		size = 300
	}
	ok, h, err := envelope.New(context.Background(), kp, envelope.Params{Bucket: testBucket, Key: key, Multipart: parts != nil, Size: map[bool]int64{true: 0, false: size - 80}[parts != nil]})
	if err != nil {
		t.Fatal(err)
	}
	ok.Zero()
	v := f.put(key, &fakeVersion{
		data:  randBytes(int(size)),
		parts: parts,
		meta:  map[string]string{"s3seal": h.String(), "owner": "tests"},
		props: Properties{ContentType: "text/x-test", CacheControl: "no-cache", StorageClass: "STANDARD_IA"},
		tags:  "team=a",
	})
	return v, h
}

func headerOf(t testing.TB, v *fakeVersion) envelope.Header {
	t.Helper()
	h, err := envelope.Parse(v.meta["s3seal"])
	if err != nil {
		t.Fatalf("stored header: %v", err)
	}
	return h
}

func fixedNow() time.Time { return time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC) }

func TestRunEnvelope(t *testing.T) {
	ctx := context.Background()
	oldKP := provider(testRing(t, "a"))
	newRing := testRing(t, "a", "b")
	newKP := keys.NewCache(provider(newRing), keys.CacheConfig{})
	f := newFakeStore(testBucket)
	type obj struct {
		v     *fakeVersion
		h     envelope.Header
		parts []int64
	}
	objs := map[string]obj{}
	for i, parts := range [][]int64{nil, nil, {65632 * 2, 65632 * 2, 1000}, {500}} {
		key := fmt.Sprintf("p/obj%d", i)
		v, h := putEnvelope(t, f, oldKP, key, parts)
		objs[key] = obj{v, h, parts}
	}
	curV, _ := putEnvelope(t, f, newKP, "p/current", nil)
	f.put("p/plain", &fakeVersion{data: []byte("plaintext")})
	f.put("q/outside", &fakeVersion{data: []byte("x"), meta: map[string]string{"s3seal": objs["p/obj0"].v.meta["s3seal"]}})

	var results []Result
	sum, err := Run(ctx, Config{Store: f, Bucket: testBucket, Prefix: "p/", Keys: newKP, Keyring: newRing, Now: fixedNow,
		OnResult: func(r Result) { results = append(results, r) }})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Scanned != 6 || sum.Rewrapped != 4 || sum.Current != 1 || sum.Failed != 0 || sum.Skipped[ReasonNotSealed] != 1 || !sum.OK() {
		t.Fatalf("summary %+v", sum)
	}
	if len(results) != 6 {
		t.Fatalf("%d results", len(results))
	}
	for key, o := range objs {
		now := f.current(key)
		if !bytes.Equal(now.data, o.v.data) {
			t.Errorf("%s: stored bytes changed", key)
		}
		nh := headerOf(t, now)
		if nh.KeyID() != "b" || nh.Provider().String() != "local" {
			t.Errorf("%s: key %s:%s after rewrap", key, nh.Provider(), nh.KeyID())
		}
		if !bytes.Equal(nh.Commitment(), o.h.Commitment()) || nh.Multipart() != o.h.Multipart() {
			t.Errorf("%s: the object key or format changed", key)
		}
		ok, err := envelope.Open(ctx, newKP, nh, testBucket, key)
		if err != nil {
			t.Errorf("%s: new header does not open: %v", key, err)
		} else {
			ok.Zero()
		}
		if now.meta["owner"] != "tests" || len(now.meta) != 2 || now.props != o.v.props || now.tags != "team=a" {
			t.Errorf("%s: metadata %v props %+v tags %q", key, now.meta, now.props, now.tags)
		}
		if fmt.Sprint(now.parts) != fmt.Sprint(o.parts) {
			t.Errorf("%s: parts %v, want %v", key, now.parts, o.parts)
		}
	}
	if f.current("p/current") != curV || f.current("q/outside").meta["s3seal"] != objs["p/obj0"].v.meta["s3seal"] {
		t.Error("an object that needed nothing, or one outside the prefix, was rewritten")
	}
	// Rewritten objects are single copies or uploads: one per object.
	if f.calls["Copy"] != 2 || f.calls["Complete"] != 2 || f.calls["CopyPart"] != 4 {
		t.Errorf("calls %v", f.calls)
	}
	writes := f.writes()
	sum, err = Run(ctx, Config{Store: f, Bucket: testBucket, Prefix: "p/", Keys: newKP, Keyring: newRing, Now: fixedNow})
	if err != nil || sum.Current != 5 || sum.Rewrapped != 0 || f.writes() != writes {
		t.Fatalf("second run: %+v %v, %d writes", sum, err, f.writes()-writes)
	}
}

// TestRunKeyProviderCalls: objects sharing a data key cost one rewrap.
func TestRunKeyProviderCalls(t *testing.T) {
	ctx := context.Background()
	oldKP := keys.NewCache(provider(testRing(t, "a")), keys.CacheConfig{})
	f := newFakeStore(testBucket)
	for i := range 20 {
		putEnvelope(t, f, oldKP, fmt.Sprintf("k%02d", i), nil)
	}
	counting := &countingProvider{Provider: provider(testRing(t, "a", "b"))}
	sum, err := Run(ctx, Config{Store: f, Bucket: testBucket, Keys: keys.NewCache(counting, keys.CacheConfig{})})
	if err != nil || sum.Rewrapped != 20 {
		t.Fatalf("%+v %v", sum, err)
	}
	if counting.rewraps != 1 || counting.decrypts != 1 {
		t.Errorf("%d rewraps and %d unwraps for 20 objects sharing one data key", counting.rewraps, counting.decrypts)
	}
}

type countingProvider struct {
	keys.Provider
	rewraps, decrypts int
}

func (c *countingProvider) Rewrap(ctx context.Context, w []byte, id string) (keys.WrappedKey, error) {
	c.rewraps++
	return c.Provider.Rewrap(ctx, w, id)
}

func (c *countingProvider) Decrypt(ctx context.Context, w []byte, id string) ([keys.DataKeySize]byte, error) {
	c.decrypts++
	return c.Provider.Decrypt(ctx, w, id)
}

func TestRunConcurrentChange(t *testing.T) {
	ctx := context.Background()
	oldKP := provider(testRing(t, "a"))
	newRing := testRing(t, "a", "b")
	for _, tc := range []struct {
		name        string
		parts       []int64
		versioning  string
		destIfMatch bool
		op          string
	}{
		{"single", nil, "", false, "Copy"},
		{"single-dest-if-match", nil, "", true, "Copy"},
		{"single-versioned", nil, VersioningEnabled, false, "Copy"},
		{"multipart", []int64{65632, 700}, "", false, "Complete"},
		{"multipart-versioned", []int64{65632, 700}, VersioningEnabled, false, "Complete"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeStore(testBucket)
			f.versioning = tc.versioning
			f.destIfMatch = tc.destIfMatch
			putEnvelope(t, f, oldKP, "k", tc.parts)
			other, _ := putEnvelope(t, f, oldKP, "other", nil)
			var theirs *fakeVersion
			f.beforeWrite = func(op, key string) {
				if key == "k" && theirs == nil && op == tc.op {
					// Another writer replaces the object between the
					// read and the rewrite.
					theirs = &fakeVersion{data: []byte("a concurrent write"), meta: map[string]string{"x": "y"}}
					f.put("k", theirs)
				}
			}
			sum, err := Run(ctx, Config{Store: f, Bucket: testBucket, Keys: provider(newRing), Concurrency: 1})
			if err != nil {
				t.Fatal(err)
			}
			if theirs == nil {
				t.Fatal("the concurrent write did not happen")
			}
			if sum.Skipped[ReasonConcurrent] != 1 || sum.Rewrapped != 1 || sum.OK() != true {
				t.Errorf("summary %+v", sum)
			}
			if f.current("k") != theirs {
				t.Error("the concurrent write was clobbered")
			}
			if f.current("other") == other {
				t.Error("the other object was not rewrapped")
			}
			if len(f.uploads) != 0 {
				t.Errorf("%d uploads left open", len(f.uploads))
			}
		})
	}
}

func TestRunDryRun(t *testing.T) {
	ctx := context.Background()
	oldKP := provider(testRing(t, "a"))
	newRing := testRing(t, "a", "b")
	f := newFakeStore(testBucket)
	putEnvelope(t, f, oldKP, "a", nil)
	putEnvelope(t, f, oldKP, "b", []int64{65632, 100})
	// An object of a key ring that is not configured: a dry run reports
	// the failure a real run would meet.
	putEnvelope(t, f, provider(testRing(t, "z")), "c", nil)
	f.put("d", &fakeVersion{data: []byte("x")})
	state := filepath.Join(t.TempDir(), "state")
	var results []Result
	sum, err := Run(ctx, Config{Store: f, Bucket: testBucket, DryRun: true, Keys: provider(newRing), StatePath: state,
		OnResult: func(r Result) { results = append(results, r) }})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.DryRun || sum.Rewrapped != 2 || sum.Failed != 1 || sum.Skipped[ReasonNotSealed] != 1 || sum.OK() {
		t.Errorf("summary %+v", sum)
	}
	if n := f.writes(); n != 0 {
		t.Errorf("a dry run made %d writes", n)
	}
	if st, err := LoadState(state); st != nil || err != nil {
		t.Errorf("a dry run wrote the state file: %v %v", st, err)
	}
	for _, r := range results {
		if !r.DryRun {
			t.Errorf("%s: result not marked as a dry run", r.Key)
		}
		if r.Key == "c" && (r.Outcome != Failed || !keys.IsWrongKey(r.Err)) {
			t.Errorf("c: %v %v", r.Outcome, r.Err)
		}
		if r.Key == "a" && (r.From != "a" || r.To != "b") {
			t.Errorf("a: from %q to %q", r.From, r.To)
		}
	}
}

func TestRunSkipsLockedAndArchived(t *testing.T) {
	ctx := context.Background()
	oldKP := provider(testRing(t, "a"))
	f := newFakeStore(testBucket)
	v, _ := putEnvelope(t, f, oldKP, "retained", nil)
	v.lockMode, v.retain = "COMPLIANCE", fixedNow().Add(time.Hour)
	v, _ = putEnvelope(t, f, oldKP, "held", nil)
	v.hold = true
	v, _ = putEnvelope(t, f, oldKP, "expired-retention", nil)
	v.lockMode, v.retain = "GOVERNANCE", fixedNow().Add(-time.Hour)
	v, _ = putEnvelope(t, f, oldKP, "glacier", nil)
	v.props.StorageClass = "GLACIER"
	sum, err := Run(ctx, Config{Store: f, Bucket: testBucket, Keys: provider(testRing(t, "a", "b")), Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Skipped[ReasonLocked] != 2 || sum.Skipped[ReasonArchived] != 1 || sum.Rewrapped != 1 {
		t.Errorf("summary %+v", sum)
	}
	if headerOf(t, f.current("held")).KeyID() != "a" || headerOf(t, f.current("expired-retention")).KeyID() != "b" {
		t.Error("wrong objects rewritten")
	}
}

func TestRunSSEC(t *testing.T) {
	ctx := context.Background()
	ring := testRing(t, "a", "b", "c")
	f := newFakeStore(testBucket)
	derive := func(master, key string) *[32]byte {
		k, err := ring.DeriveSSECKey(master, testBucket, key)
		if err != nil {
			t.Fatal(err)
		}
		return &k
	}
	data := map[string][]byte{}
	for key, master := range map[string]string{"old-a": "a", "old-b": "b", "current": "c", "big": "a"} {
		data[key] = randBytes(map[bool]int{true: 2500, false: 100}[key == "big"])
		f.put(key, &fakeVersion{data: data[key], ssec: derive(master, key), meta: map[string]string{"m": key}, props: Properties{ContentType: "a/b"}, tags: "t=1", etag: `"e-` + key + `"`})
	}
	var foreign [32]byte
	foreign[0] = 1
	f.put("foreign", &fakeVersion{data: []byte("x"), ssec: &foreign, etag: `"f"`})
	sum, err := Run(ctx, Config{Store: f, Bucket: testBucket, Keyring: ring, MaxCopySize: 1000, PartSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Rewrapped != 3 || sum.Current != 1 || sum.Skipped[ReasonForeignSSEC] != 1 || sum.Failed != 0 {
		t.Fatalf("summary %+v", sum)
	}
	for key := range data {
		v := f.current(key)
		if v.ssec == nil || *v.ssec != *derive("c", key) {
			t.Errorf("%s: not under the active key's derived key", key)
		}
		if !bytes.Equal(v.data, data[key]) || v.meta["m"] != key || v.props.ContentType != "a/b" || v.tags != "t=1" {
			t.Errorf("%s: content or properties changed: %v %+v %q", key, v.meta, v.props, v.tags)
		}
	}
	if p := f.current("big").parts; len(p) != 3 {
		t.Errorf("big object copied in parts %v, want 3 ranges of at most 1000 bytes", p)
	}
	// Without a key ring, SSE-C objects are skipped, not failed.
	sum, err = Run(ctx, Config{Store: f, Bucket: testBucket})
	if err != nil || sum.Skipped[ReasonNoKeyring] != 5 {
		t.Errorf("without a key ring: %+v %v", sum, err)
	}
}

func TestRunResume(t *testing.T) {
	oldKP := provider(testRing(t, "a"))
	newKP := provider(testRing(t, "a", "b"))
	f := newFakeStore(testBucket)
	const n = 30
	for i := range n {
		putEnvelope(t, f, oldKP, fmt.Sprintf("k%02d", i), nil)
	}
	const plain = 5
	for i := range plain {
		f.put(fmt.Sprintf("k%02dp", i*7), &fakeVersion{data: []byte("plain")})
	}
	state := filepath.Join(t.TempDir(), "rewrap.state")
	ctx, cancel := context.WithCancel(context.Background())
	seen := 0
	first, err := Run(ctx, Config{Store: f, Bucket: testBucket, Keys: newKP, StatePath: state, Concurrency: 3,
		OnResult: func(Result) {
			if seen++; seen == 10 {
				cancel()
			}
		}})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if !first.Interrupted || first.OK() || first.Scanned < 10 || first.Scanned >= n+plain {
		t.Fatalf("first run: %+v", first)
	}
	st, err := LoadState(state)
	if err != nil || st == nil || st.Finished || st.After == "" || st.Totals.Rewrapped > first.Rewrapped {
		t.Fatalf("state after the interruption: %+v %v", st, err)
	}
	copies := f.calls["Copy"]
	second, err := Run(context.Background(), Config{Store: f, Bucket: testBucket, Keys: newKP, StatePath: state})
	if err != nil {
		t.Fatal(err)
	}
	if second.Interrupted || second.ResumedAfter != st.After || second.Scanned >= n+plain || first.Scanned+second.Scanned != n+plain {
		t.Fatalf("second run: %+v", second)
	}
	// Nothing is redone but what the first run finished beyond the saved
	// point, and those are found current.
	if first.Rewrapped+second.Rewrapped != n || f.calls["Copy"]-copies != int(second.Rewrapped) {
		t.Errorf("rewrapped %d + %d, want %d", first.Rewrapped, second.Rewrapped, n)
	}
	if second.Totals.Scanned != n+plain || second.Totals.Rewrapped != n || second.Totals.Skipped[ReasonNotSealed] != plain {
		t.Errorf("totals %+v", second.Totals)
	}
	st, _ = LoadState(state)
	if !st.Finished || st.Totals.Rewrapped != n || st.Totals.Skipped[ReasonNotSealed] != plain || st.Totals.Scanned != n+plain {
		t.Errorf("final state %+v", st)
	}
	for i := range n {
		if headerOf(t, f.current(fmt.Sprintf("k%02d", i))).KeyID() != "b" {
			t.Errorf("k%02d not rewrapped", i)
		}
	}
	// A finished pass starts over.
	third, err := Run(context.Background(), Config{Store: f, Bucket: testBucket, Keys: newKP, StatePath: state})
	if err != nil || third.ResumedAfter != "" || third.Current != n || third.Totals.Scanned != n+plain {
		t.Errorf("third run: %+v %v", third, err)
	}
	// Another bucket's state file is refused.
	_, err = Run(context.Background(), Config{Store: f, Bucket: testBucket, Prefix: "k1", Keys: newKP, StatePath: state})
	var se *StateError
	if !errors.As(err, &se) {
		t.Errorf("state of another prefix: %v", err)
	}
}

func TestRunRate(t *testing.T) {
	oldKP := provider(testRing(t, "a"))
	f := newFakeStore(testBucket)
	for i := range 6 {
		putEnvelope(t, f, oldKP, fmt.Sprintf("k%d", i), nil)
	}
	start := time.Now()
	sum, err := Run(context.Background(), Config{Store: f, Bucket: testBucket, Keys: provider(testRing(t, "a", "b")), Rate: 20})
	if err != nil || sum.Rewrapped != 6 {
		t.Fatal(sum, err)
	}
	// Six objects at 20/s: the last starts 250 ms after the first.
	if d := time.Since(start); d < 240*time.Millisecond {
		t.Errorf("6 objects at 20/s took %v", d)
	}
}

func TestRunFailures(t *testing.T) {
	oldKP := provider(testRing(t, "a"))
	f := newFakeStore(testBucket)
	putEnvelope(t, f, oldKP, "a", nil)
	putEnvelope(t, f, oldKP, "b", []int64{65632, 10})
	f.put("corrupt", &fakeVersion{data: []byte("x"), meta: map[string]string{"s3seal": "AAAA"}})
	f.failOp["Copy"] = &StoreError{Op: "CopyObject", Status: 500, Code: "InternalError"}
	f.failOp["CopyPart"] = &StoreError{Op: "UploadPartCopy", Status: 503, Code: "SlowDown"}
	var failed []Result
	sum, err := Run(context.Background(), Config{Store: f, Bucket: testBucket, Keys: provider(testRing(t, "a", "b")),
		OnResult: func(r Result) {
			if r.Outcome == Failed {
				failed = append(failed, r)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Failed != 3 || sum.OK() {
		t.Errorf("summary %+v", sum)
	}
	if len(f.uploads) != 0 || f.calls["Abort"] != 1 {
		t.Errorf("failed upload not aborted: %d open, %d aborts", len(f.uploads), f.calls["Abort"])
	}
	for _, r := range failed {
		if r.Err == nil || r.Reason == "" {
			t.Errorf("%s: failure without an error", r.Key)
		}
	}
	// A failing listing is an error, and the run counts as interrupted.
	f.failOp["List"] = &StoreError{Op: "ListObjectsV2", Status: 403, Code: "AccessDenied"}
	sum, err = Run(context.Background(), Config{Store: f, Bucket: testBucket, Keys: provider(testRing(t, "a", "b"))})
	if err == nil || !sum.Interrupted {
		t.Errorf("listing failure: %+v %v", sum, err)
	}
}

func TestDecide(t *testing.T) {
	now := fixedNow()
	kp := provider(testRing(t, "a"))
	_, ha, err := envelope.New(context.Background(), kp, envelope.Params{Bucket: "b", Key: "k", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	env := func(mut func(o *Object)) *Object {
		o := &Object{Metadata: map[string]string{"s3seal": ha.String()}}
		if mut != nil {
			mut(o)
		}
		return o
	}
	for _, tc := range []struct {
		name       string
		o          *Object
		master     string
		provider   string
		activeID   string
		activeSSEC string
		want       Outcome
		reason     string
	}{
		{"envelope current", env(nil), "", "local", "a", "", Current, ""},
		{"envelope old", env(nil), "", "local", "b", "", Rewrapped, ""},
		{"envelope other provider", env(nil), "", "aws-kms", "a", "", Rewrapped, ""},
		{"envelope without provider", env(nil), "", "", "", "", Failed, ""},
		{"envelope corrupt", env(func(o *Object) { o.Metadata["s3seal"] = "!!" }), "", "local", "b", "", Failed, ""},
		{"envelope legal hold", env(func(o *Object) { o.LegalHold = true }), "", "local", "b", "", Skipped, ReasonLocked},
		{"envelope retained", env(func(o *Object) { o.LockMode, o.RetainUntil = "COMPLIANCE", now.Add(time.Second) }), "", "local", "b", "", Skipped, ReasonLocked},
		{"envelope retention over", env(func(o *Object) { o.LockMode, o.RetainUntil = "COMPLIANCE", now.Add(-time.Second) }), "", "local", "b", "", Rewrapped, ""},
		{"envelope current and held", env(func(o *Object) { o.LegalHold = true }), "", "local", "a", "", Current, ""},
		{"envelope deep archive", env(func(o *Object) { o.Props.StorageClass = "DEEP_ARCHIVE" }), "", "local", "b", "", Skipped, ReasonArchived},
		{"envelope glacier ir", env(func(o *Object) { o.Props.StorageClass = "GLACIER_IR" }), "", "local", "b", "", Rewrapped, ""},
		{"envelope and sse-c", env(func(o *Object) { o.SSEC = true }), "a", "local", "b", "b", Failed, ""},
		{"sse-c current", &Object{SSEC: true}, "b", "", "", "b", Current, ""},
		{"sse-c old", &Object{SSEC: true}, "a", "", "", "b", Rewrapped, ""},
		{"sse-c old locked", &Object{SSEC: true, LegalHold: true}, "a", "", "", "b", Skipped, ReasonLocked},
		{"sse-c foreign", &Object{SSEC: true}, "", "", "", "b", Skipped, ReasonForeignSSEC},
		{"sse-c no ring", &Object{SSEC: true}, "", "", "", "", Skipped, ReasonNoKeyring},
		{"plain", &Object{}, "", "local", "a", "a", Skipped, ReasonNotSealed},
		{"plain with other metadata", &Object{Metadata: map[string]string{"s3seal-x": "1"}}, "", "local", "a", "a", Skipped, ReasonNotSealed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := decide(tc.o, tc.master, tc.provider, tc.activeID, tc.activeSSEC, now)
			if p.outcome != tc.want || tc.reason != "" && p.reason != tc.reason {
				t.Errorf("outcome %v (%s), want %v (%s)", p.outcome, p.reason, tc.want, tc.reason)
			}
			if p.outcome == Failed && (p.err == nil || p.reason == "") {
				t.Error("failure without an error")
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	f := newFakeStore(testBucket)
	if _, err := Run(context.Background(), Config{Bucket: "b"}); err == nil {
		t.Error("no store accepted")
	}
	if _, err := Run(context.Background(), Config{Store: f}); err == nil {
		t.Error("no bucket accepted")
	}
	f.versioning = VersioningSuspended
	var ce *ConfigError
	if _, err := Run(context.Background(), Config{Store: f, Bucket: testBucket, AllVersions: true}); !errors.As(err, &ce) {
		t.Errorf("all versions on a suspended bucket: %v", err)
	}
}
