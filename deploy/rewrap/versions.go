package rewrap

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"go.uber.org/zap"
)

// version is one entry of a key's history during a rewrite.
type version struct {
	e   Entry
	o   *Object // nil for delete markers and versions that could not be read
	p   plan
	res Result
	w   *rewrite
}

// history rewrites the history of key (entries newest first) from its
// oldest version under an old key up: see the package documentation. It
// returns one result per version (delete markers have none).
func (r *runner) history(ctx context.Context, key string, entries []Entry) []Result {
	items := make([]*version, len(entries))
	for i, e := range entries {
		items[len(entries)-1-i] = &version{e: e}
	}
	first := -1
	for i, it := range items {
		if it.e.DeleteMarker {
			continue
		}
		it.res = Result{Key: key, VersionID: it.e.VersionID}
		o, master, err := r.head(ctx, key, it.e.VersionID)
		switch {
		case isNotFound(err):
			it.p = plan{outcome: Skipped, reason: ReasonGone}
			continue
		case err != nil:
			it.p = plan{outcome: Failed, err: err, reason: err.Error()}
			continue
		}
		if o.VersionID == "" {
			o.VersionID = it.e.VersionID
		}
		it.o = o
		it.p = r.decide(o, master)
		if it.p.outcome == Rewrapped && first < 0 {
			first = i
		}
	}
	results := func() []Result {
		var out []Result
		for _, it := range items {
			if it.e.DeleteMarker {
				continue
			}
			res := it.res
			if res.Outcome == 0 {
				res.Outcome, res.Reason, res.Err = it.p.outcome, it.p.reason, it.p.err
			}
			res.Kind, res.From = it.p.kind, it.p.from
			out = append(out, res)
		}
		return out
	}
	// settle sets the outcome of every version that needs rewrapping.
	settle := func(o Outcome, reason string, err error) {
		for _, it := range items {
			if !it.e.DeleteMarker && it.p.outcome == Rewrapped && it.res.Outcome == 0 {
				it.res.Outcome, it.res.Reason, it.res.Err = o, reason, err
				if err != nil && reason == "" {
					it.res.Reason = err.Error()
				}
			}
		}
	}
	if first < 0 {
		return results()
	}
	window := items[first:]
	for _, it := range window {
		if it.e.DeleteMarker {
			continue
		}
		if it.o == nil || it.p.outcome == Failed ||
			it.p.outcome == Skipped && it.p.reason != ReasonNotSealed ||
			it.o.LegalHold || it.o.LockMode != "" && it.o.RetainUntil.After(r.now()) || archived(it.o.Props.StorageClass) {
			settle(Skipped, ReasonHistory, nil)
			return results()
		}
	}
	if r.cfg.DryRun {
		for _, it := range window {
			if it.p.outcome == Rewrapped {
				w, err := r.prepare(ctx, it.o, it.p)
				if err != nil {
					it.res.Outcome, it.res.Err, it.res.Reason = Failed, err, err.Error()
					continue
				}
				it.res.To = w.to
				w.zero()
			}
		}
		settle(Rewrapped, "", nil)
		return results()
	}
	defer func() {
		for _, it := range window {
			if it.w != nil {
				it.w.zero()
			}
		}
	}()
	for _, it := range window {
		if it.e.DeleteMarker {
			continue
		}
		w, err := r.prepareAsIs(ctx, it)
		if err != nil {
			if it.p.outcome == Rewrapped {
				it.res.Outcome, it.res.Err, it.res.Reason = Failed, err, err.Error()
			}
			settle(Skipped, ReasonHistory, nil)
			return results()
		}
		it.w = w
	}

	// Write the window again, oldest first.
	var ours []string
	for _, it := range window {
		var id string
		var err error
		if it.e.DeleteMarker {
			id, err = r.cfg.Store.PutDeleteMarker(ctx, r.cfg.Bucket, key)
		} else {
			var written Written
			written, err = r.write(ctx, it.w)
			id = written.VersionID
			it.res.NewVersionID = id
		}
		if err == nil && id == "" {
			err = errors.New("rewrap: the store returned no version id for a write in a versioned bucket")
		}
		if err != nil {
			if id != "" {
				ours = append(ours, id)
			}
			settle(Failed, "", errors.Join(err, r.rollback(key, ours)))
			return results()
		}
		ours = append(ours, id)
	}
	ok, err := r.inPlace(ctx, key, ours, window)
	if err != nil || !ok {
		rerr := r.rollback(key, ours)
		switch {
		case err != nil || rerr != nil:
			settle(Failed, "", errors.Join(err, rerr))
		default:
			settle(Skipped, ReasonConcurrent, nil)
		}
		return results()
	}
	// The new history is in place above the old one: delete the old.
	var derr error
	for _, it := range window {
		if err := r.cfg.Store.DeleteVersion(context.WithoutCancel(ctx), r.cfg.Bucket, key, it.e.VersionID); err != nil {
			derr = errors.Join(derr, fmt.Errorf("version %s: %w", it.e.VersionID, err))
		}
	}
	if derr != nil {
		settle(Failed, "", fmt.Errorf("rewrap: the history was written again, but old versions could not be deleted (delete them by version id): %w", derr))
		return results()
	}
	for _, it := range window {
		if !it.e.DeleteMarker && it.p.outcome == Rewrapped {
			it.res.To = it.w.to
		}
	}
	settle(Rewrapped, "", nil)
	return results()
}

// prepareAsIs prepares the copy of a window version: rewrapped if it needs
// it, else unchanged (same metadata, same SSE-C key).
func (r *runner) prepareAsIs(ctx context.Context, it *version) (*rewrite, error) {
	if it.p.outcome == Rewrapped {
		return r.prepare(ctx, it.o, it.p)
	}
	o := it.o
	w := &rewrite{o: o, src: Source{Bucket: r.cfg.Bucket, Key: o.Key, VersionID: o.VersionID, IfMatch: o.ETag}, meta: maps.Clone(o.Metadata)}
	if w.meta == nil {
		w.meta = map[string]string{}
	}
	if it.p.kind == KindEnvelope {
		w.parts = it.p.hdr.Multipart()
	}
	if it.p.kind == KindSSEC {
		k, err := r.cfg.Keyring.DeriveSSECKey(it.p.master, r.cfg.Bucket, o.Key)
		if err != nil {
			return nil, err
		}
		k2 := k
		w.src.SSECKey, w.dstKey = &k, &k2
	}
	return w, nil
}

// inPlace reports whether the versions written (ours, oldest first) sit
// right above the window they copy, in order, with nothing between them:
// then no other writer interleaved. Other versions above them (written
// later) are fine.
func (r *runner) inPlace(ctx context.Context, key string, ours []string, window []*version) (bool, error) {
	var got []Entry
	errStop := errors.New("stop")
	err := r.cfg.Store.ListVersions(ctx, r.cfg.Bucket, key, "", func(k string, entries []Entry) error {
		if k == key {
			got = entries
		}
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return false, err
	}
	want := slices.Clone(ours)
	slices.Reverse(want)
	for i := len(window) - 1; i >= 0; i-- {
		want = append(want, window[i].e.VersionID)
	}
	for p, e := range got {
		if e.VersionID != want[0] {
			continue
		}
		if len(got)-p < len(want) {
			return false, nil
		}
		for i, id := range want {
			if got[p+i].VersionID != id {
				return false, nil
			}
		}
		return true, nil
	}
	return false, nil
}

// rollback deletes the versions a history rewrite wrote, newest first, so
// that the key's history is as it was.
func (r *runner) rollback(key string, ours []string) error {
	var err error
	for i := len(ours) - 1; i >= 0; i-- {
		if derr := r.cfg.Store.DeleteVersion(context.Background(), r.cfg.Bucket, key, ours[i]); derr != nil {
			r.log.Error("cannot delete a version written while rewriting a key's history; delete it by version id",
				zap.String("key", key), zap.String("version", ours[i]), zap.Error(derr))
			err = errors.Join(err, fmt.Errorf("rewrap: cannot delete version %s written during the rewrite: %w", ours[i], derr))
		}
	}
	return err
}
