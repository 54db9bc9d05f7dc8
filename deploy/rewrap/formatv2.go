package rewrap

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/proxy/authz"
)

// Objects of format version 2 (FORMAT.md): wrapped keys in key objects,
// and the marker a bucket needs when a version 1 object is written after
// it switched to version 2.

// DefaultMarkerWait is W of FORMAT.md section 9.4, as s3seal serve uses it.
const DefaultMarkerWait = 30 * time.Second

// Markers of FORMAT.md section 9.4.
const (
	markerFormat2 = authz.StatePrefix + "format-2"
	markerMixed   = authz.StatePrefix + "mixed"
)

// v2State is what a run keeps for version 2: key objects by reference, the
// key objects known to be stored, and whether the bucket's mixed marker is
// in place. mu protects all of it.
type v2State struct {
	mu         sync.Mutex
	keyObjects map[[envelope.WrappedKeyRefSize]byte][]byte
	stored     map[[envelope.WrappedKeyRefSize]byte]bool
	mixed      bool
}

// keyObject returns the content of the key object ref in the run's bucket
// (checked against ref).
func (r *runner) keyObject(ctx context.Context, ref [envelope.WrappedKeyRefSize]byte) ([]byte, error) {
	r.v2.mu.Lock()
	b, ok := r.v2.keyObjects[ref]
	r.v2.mu.Unlock()
	if ok {
		return b, nil
	}
	rc, err := r.cfg.Store.Get(ctx, r.cfg.Bucket, envelope.KeyObjectName(ref), "", "")
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if b, err = io.ReadAll(io.LimitReader(rc, 64<<10)); err != nil {
		return nil, &StoreError{Op: "GetObject", Err: err}
	}
	if sha256.Sum256(b) != ref {
		return nil, fmt.Errorf("rewrap: the key object %s does not hold the wrapped key its name promises", envelope.KeyObjectName(ref))
	}
	r.v2.mu.Lock()
	r.v2.keyObjects[ref] = b
	r.v2.stored[ref] = true
	r.v2.mu.Unlock()
	return b, nil
}

// storeKeyObject stores a new key object (a data key rewrapped for a
// provider whose wrapped keys do not fit in the metadata), once, never
// replacing one.
func (r *runner) storeKeyObject(ctx context.Context, ref [envelope.WrappedKeyRefSize]byte, wrapped []byte) error {
	r.v2.mu.Lock()
	done := r.v2.stored[ref]
	r.v2.mu.Unlock()
	if done {
		return nil
	}
	if _, err := r.cfg.Store.PutNew(ctx, r.cfg.Bucket, envelope.KeyObjectName(ref), wrapped); err != nil {
		return err
	}
	r.v2.mu.Lock()
	r.v2.stored[ref] = true
	r.v2.keyObjects[ref] = append([]byte(nil), wrapped...)
	r.v2.mu.Unlock()
	return nil
}

// keyObjectOf returns the key object content a header needs (nil if it
// needs none).
func (r *runner) keyObjectOf(ctx context.Context, h envelope.Header) ([]byte, error) {
	if !h.KeyObject() {
		return nil, nil
	}
	return r.keyObject(ctx, [envelope.WrappedKeyRefSize]byte(h.WrappedKey()))
}

// beforeVersion1Write is called before a version 1 object is rewritten: a
// bucket that holds version 2 objects (it has the format-2 marker) gets
// the mixed marker first, W old, so that listings look such objects up
// rather than size them as version 2 by their new Last-Modified.
func (r *runner) beforeVersion1Write(ctx context.Context) error {
	r.v2.mu.Lock()
	defer r.v2.mu.Unlock()
	if r.v2.mixed {
		return nil
	}
	if _, err := r.cfg.Store.Head(ctx, HeadInput{Bucket: r.cfg.Bucket, Key: markerFormat2}); err != nil {
		if isNotFound(err) {
			return nil
		}
		return err
	}
	age := time.Duration(0)
	o, err := r.cfg.Store.Head(ctx, HeadInput{Bucket: r.cfg.Bucket, Key: markerMixed})
	switch {
	case err == nil:
		age = r.now().Sub(o.Modified)
	case isNotFound(err):
		if _, err := r.cfg.Store.PutNew(ctx, r.cfg.Bucket, markerMixed, []byte("s3seal: mixed\n")); err != nil {
			return err
		}
	default:
		return err
	}
	// Last-Modified has a resolution of a second, and the clocks of
	// rewrap and the store may differ a little: a second more.
	if wait := r.cfg.MarkerWait + time.Second - age; wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	r.v2.mixed = true
	return nil
}
