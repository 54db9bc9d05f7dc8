package rewrap

import (
	"bytes"
	"context"
	"testing"
)

// shape describes a version for comparing histories: kind, data and part
// count.
type shape struct {
	marker bool
	key    string // envelope master key, "" for others
	data   string
	parts  int
}

func shapes(t *testing.T, vs []*fakeVersion) []shape {
	t.Helper()
	var out []shape
	for _, v := range vs {
		s := shape{marker: v.marker, data: string(v.data), parts: len(v.parts)}
		if _, ok := v.meta["s3seal"]; ok {
			s.key = headerOf(t, v).KeyID()
		}
		out = append(out, s)
	}
	return out
}

func ids(vs []*fakeVersion) map[string]bool {
	m := map[string]bool{}
	for _, v := range vs {
		m[v.id] = true
	}
	return m
}

func TestRunAllVersions(t *testing.T) {
	ctx := context.Background()
	oldKP := provider(testRing(t, "a"))
	newRing := testRing(t, "a", "b")
	newKP := provider(newRing)
	f := newFakeStore(testBucket)
	f.versioning = VersioningEnabled

	putEnvelope(t, f, oldKP, "k", nil)
	putEnvelope(t, f, oldKP, "k", []int64{65632, 300})
	f.put("k", &fakeVersion{marker: true})
	putEnvelope(t, f, newKP, "k", nil)
	f.put("k", &fakeVersion{data: []byte("plain"), meta: map[string]string{"a": "b"}})
	putEnvelope(t, f, newKP, "n", nil)
	putEnvelope(t, f, oldKP, "m", nil)
	// A history that cannot be rewritten: a newer version is held.
	putEnvelope(t, f, oldKP, "l", nil)
	held, _ := putEnvelope(t, f, newKP, "l", nil)
	held.hold = true

	beforeK, beforeN, beforeL := f.history("k"), f.history("n"), f.history("l")
	wantK := shapes(t, beforeK)
	for i := range wantK {
		if wantK[i].key != "" {
			wantK[i].key = "b"
		}
	}

	dry, err := Run(ctx, Config{Store: f, Bucket: testBucket, AllVersions: true, DryRun: true, Keys: newKP, Now: fixedNow})
	if err != nil || f.writes() != 0 || dry.Rewrapped != 3 {
		t.Fatalf("dry run: %+v %v, %d writes", dry, err, f.writes())
	}

	sum, err := Run(ctx, Config{Store: f, Bucket: testBucket, AllVersions: true, Keys: newKP, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Scanned != 8 || sum.Rewrapped != 3 || sum.Current != 3 || sum.Skipped[ReasonNotSealed] != 1 || sum.Skipped[ReasonHistory] != 1 || sum.Failed != 0 {
		t.Errorf("summary %+v", sum)
	}
	afterK := f.history("k")
	if got := shapes(t, afterK); len(got) != len(wantK) {
		t.Fatalf("history of k: %+v, want %+v", got, wantK)
	} else {
		for i := range got {
			if got[i] != wantK[i] {
				t.Errorf("version %d of k: %+v, want %+v", i, got[i], wantK[i])
			}
		}
	}
	old := ids(beforeK)
	for _, v := range afterK {
		if old[v.id] {
			t.Errorf("old version %s of k still there", v.id)
		}
	}
	if !bytes.Equal(afterK[0].data, beforeK[0].data) || afterK[1].tags != beforeK[1].tags {
		t.Error("version content or tags changed")
	}
	if h := f.history("n"); len(h) != 1 || h[0] != beforeN[0] {
		t.Error("a key with nothing to rewrap was rewritten")
	}
	if h := f.history("l"); len(h) != 2 || h[0] != beforeL[0] || h[1] != beforeL[1] {
		t.Error("a history with a held version was rewritten")
	}
	if h := f.history("m"); len(h) != 1 || headerOf(t, h[0]).KeyID() != "b" {
		t.Errorf("m: %+v", shapes(t, h))
	}

	again, err := Run(ctx, Config{Store: f, Bucket: testBucket, AllVersions: true, Keys: newKP, Now: fixedNow})
	if err != nil || again.Rewrapped != 0 || again.Skipped[ReasonHistory] != 1 {
		t.Errorf("second run: %+v %v", again, err)
	}
}

// TestRunAllVersionsConcurrent: a write that lands while a history is
// rewritten makes the rewrite undo itself; nothing is lost.
func TestRunAllVersionsConcurrent(t *testing.T) {
	ctx := context.Background()
	oldKP := provider(testRing(t, "a"))
	newKP := provider(testRing(t, "a", "b"))
	f := newFakeStore(testBucket)
	f.versioning = VersioningEnabled
	putEnvelope(t, f, oldKP, "c", nil)
	putEnvelope(t, f, oldKP, "c", nil)
	before := f.history("c")
	var theirs *fakeVersion
	f.beforeWrite = func(op, key string) {
		if theirs == nil {
			theirs = &fakeVersion{data: []byte("a concurrent write")}
			f.put("c", theirs)
		}
	}
	sum, err := Run(ctx, Config{Store: f, Bucket: testBucket, AllVersions: true, Keys: newKP})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Skipped[ReasonConcurrent] != 2 || sum.Rewrapped != 0 {
		t.Errorf("summary %+v", sum)
	}
	h := f.history("c")
	if len(h) != 3 || h[0] != before[0] || h[1] != before[1] || h[2] != theirs {
		t.Errorf("history after an interleaved write: %+v", shapes(t, h))
	}
}

// TestRunAllVersionsUnversioned: on a bucket that never had versioning,
// AllVersions rewraps the current (only) versions.
func TestRunAllVersionsUnversioned(t *testing.T) {
	oldKP := provider(testRing(t, "a"))
	f := newFakeStore(testBucket)
	putEnvelope(t, f, oldKP, "x", nil)
	sum, err := Run(context.Background(), Config{Store: f, Bucket: testBucket, AllVersions: true, Keys: provider(testRing(t, "a", "b"))})
	if err != nil || sum.Rewrapped != 1 || !sum.CurrentOnly {
		t.Errorf("%+v %v", sum, err)
	}
}

// TestRunCurrentOnlyVersioned: without AllVersions the old current version
// stays as a noncurrent version.
func TestRunCurrentOnlyVersioned(t *testing.T) {
	oldKP := provider(testRing(t, "a"))
	f := newFakeStore(testBucket)
	f.versioning = VersioningEnabled
	v, _ := putEnvelope(t, f, oldKP, "x", nil)
	sum, err := Run(context.Background(), Config{Store: f, Bucket: testBucket, Keys: provider(testRing(t, "a", "b"))})
	if err != nil || sum.Rewrapped != 1 {
		t.Fatalf("%+v %v", sum, err)
	}
	h := f.history("x")
	if len(h) != 2 || h[0] != v || headerOf(t, h[1]).KeyID() != "b" {
		t.Errorf("history %+v", shapes(t, h))
	}
}
