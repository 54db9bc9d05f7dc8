package rewrap

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/s3seal/s3seal/crypto/envelope"
)

// rewrite is a prepared server-side copy of an object version onto its own
// key with new encryption metadata or a new SSE-C key.
type rewrite struct {
	o   *Object
	src Source // the version read, pinned to its ETag
	// meta is the complete new user metadata.
	meta map[string]string
	// dstKey is the new SSE-C key (nil: none).
	dstKey *[32]byte
	// parts: copy part by part (multipart envelope objects).
	parts bool
	// replaceCurrent: the copy replaces the current version only if it is
	// still the one read (single copy: from the current version with
	// x-amz-copy-source-if-match and If-Match; upload: completed with
	// If-Match). Otherwise the copy reads src.VersionID as it is.
	replaceCurrent bool
	// to is the new master key id.
	to string
}

func (w *rewrite) zero() {
	if w.src.SSECKey != nil {
		clear(w.src.SSECKey[:])
	}
	if w.dstKey != nil {
		clear(w.dstKey[:])
	}
}

// prepare computes the new metadata or keys of o according to p. In a dry
// run it only checks that an envelope object opens with the configured
// keys.
func (r *runner) prepare(ctx context.Context, o *Object, p plan) (*rewrite, error) {
	w := &rewrite{o: o, src: Source{Bucket: r.cfg.Bucket, Key: o.Key, VersionID: o.VersionID, IfMatch: o.ETag}}
	switch p.kind {
	case KindEnvelope:
		w.to = r.activeID
		w.parts = p.hdr.Multipart()
		ko, err := r.keyObjectOf(ctx, p.hdr)
		if err != nil {
			return nil, err
		}
		if r.cfg.DryRun {
			ok, err := envelope.OpenWithKeyObject(ctx, r.kp, p.hdr, r.cfg.Bucket, o.Key, ko)
			if err != nil {
				return nil, err
			}
			ok.Zero()
			return w, nil
		}
		// The ciphertext, the object key and the name stay: a version 2
		// multipart object's part-set record (its tag, copied along)
		// stays valid.
		nh, err := envelope.RotateWithKeyObject(ctx, r.kp, p.hdr, r.cfg.Bucket, o.Key, r.cfg.Rand, ko,
			func(ref [envelope.WrappedKeyRefSize]byte, wrapped []byte) error {
				return r.storeKeyObject(ctx, ref, wrapped)
			})
		if err != nil {
			return nil, err
		}
		if nh.Version() == envelope.Version {
			if err := r.beforeVersion1Write(ctx); err != nil {
				return nil, err
			}
		}
		if nh.KeyID() != r.activeID {
			return nil, fmt.Errorf("rewrap: the key provider rewrapped to %q, not the active key %q", nh.KeyID(), r.activeID)
		}
		w.to = nh.KeyID()
		user := userMetadata(o)
		if err := envelope.CheckMetadataSize(user, nh); err != nil {
			return nil, err
		}
		user[metaName] = nh.String()
		w.meta = user
	case KindSSEC:
		ring := r.cfg.Keyring
		w.to = ring.Active()
		from, err := ring.DeriveSSECKey(p.master, r.cfg.Bucket, o.Key)
		if err != nil {
			return nil, err
		}
		to, err := ring.DeriveSSECKey(w.to, r.cfg.Bucket, o.Key)
		if err != nil {
			clear(from[:])
			return nil, err
		}
		w.src.SSECKey, w.dstKey = &from, &to
		w.meta = maps.Clone(o.Metadata)
	default:
		return nil, fmt.Errorf("rewrap: cannot rewrite a %s object", p.kind)
	}
	if w.meta == nil {
		w.meta = map[string]string{}
	}
	return w, nil
}

// write performs w.
func (r *runner) write(ctx context.Context, w *rewrite) (Written, error) {
	switch {
	case w.parts:
		sizes, err := r.partSizes(ctx, w)
		if err != nil {
			return Written{}, err
		}
		return r.upload(ctx, w, sizes)
	case w.o.Size > r.cfg.MaxCopySize:
		return r.upload(ctx, w, rangeSizes(w.o.Size, r.cfg.PartSize))
	}
	in := CopyInput{Src: w.src, Dst: Dest{Bucket: r.cfg.Bucket, Key: w.o.Key, Metadata: w.meta, Props: w.o.Props, SSECKey: w.dstKey}}
	if w.replaceCurrent {
		in.Src.VersionID = ""
		in.Dst.IfMatch = w.o.ETag
	}
	return r.cfg.Store.Copy(ctx, in)
}

// rangeSizes splits size bytes into parts of partSize (more if that would
// make more than 10,000 parts).
func rangeSizes(size, partSize int64) []int64 {
	if min := (size + maxParts - 1) / maxParts; partSize < min {
		partSize = min
	}
	var sizes []int64
	for size > 0 {
		n := min(partSize, size)
		sizes = append(sizes, n)
		size -= n
	}
	return sizes
}

// partSizes returns the stored sizes of a multipart object's parts, from a
// HEAD of each part (pinned to the version and ETag read).
func (r *runner) partSizes(ctx context.Context, w *rewrite) ([]int64, error) {
	head := func(n int) (*Object, error) {
		return r.cfg.Store.Head(ctx, HeadInput{Bucket: r.cfg.Bucket, Key: w.o.Key, VersionID: w.src.VersionID, IfMatch: w.o.ETag, PartNumber: n, SSECKey: w.src.SSECKey})
	}
	first, err := head(1)
	if err != nil {
		return nil, err
	}
	n := first.PartsCount
	if n <= 1 {
		// The store does not see parts (a multipart object copied whole
		// by a tool): one part, the whole object.
		return []int64{w.o.Size}, nil
	}
	if n > maxParts {
		return nil, fmt.Errorf("rewrap: the store reports %d parts", n)
	}
	sizes := []int64{first.Size}
	total := first.Size
	for i := 2; i <= n; i++ {
		p, err := head(i)
		if err != nil {
			return nil, err
		}
		sizes = append(sizes, p.Size)
		total += p.Size
	}
	if total != w.o.Size {
		return nil, fmt.Errorf("rewrap: the %d parts' sizes add up to %d bytes, the object has %d", n, total, w.o.Size)
	}
	return sizes, nil
}

// upload copies w's source part by part into a new upload at its key, one
// part per entry of sizes, and completes it.
func (r *runner) upload(ctx context.Context, w *rewrite, sizes []int64) (Written, error) {
	tags, err := r.cfg.Store.Tagging(ctx, r.cfg.Bucket, w.o.Key, w.o.VersionID)
	if err != nil {
		return Written{}, err
	}
	dst := Dest{Bucket: r.cfg.Bucket, Key: w.o.Key, Metadata: w.meta, Props: w.o.Props, SSECKey: w.dstKey, Tagging: tags}
	id, err := r.cfg.Store.CreateUpload(ctx, CopyInput{Dst: dst})
	if err != nil {
		return Written{}, err
	}
	abort := func(err error) (Written, error) {
		if aerr := r.cfg.Store.Abort(context.WithoutCancel(ctx), r.cfg.Bucket, w.o.Key, id); aerr != nil {
			err = errors.Join(err, aerr)
		}
		return Written{}, err
	}
	etags := make([]string, 0, len(sizes))
	var off int64
	for i, size := range sizes {
		etag, err := r.cfg.Store.CopyPart(ctx, PartInput{Bucket: r.cfg.Bucket, Key: w.o.Key, UploadID: id, Part: i + 1,
			Src: w.src, Offset: off, Size: size, SSECKey: w.dstKey})
		if err != nil {
			return abort(err)
		}
		etags = append(etags, etag)
		off += size
	}
	in := CompleteInput{Bucket: r.cfg.Bucket, Key: w.o.Key, UploadID: id, ETags: etags, SSECKey: w.dstKey}
	if w.replaceCurrent {
		in.IfMatch = w.o.ETag
	}
	written, err := r.cfg.Store.Complete(ctx, in)
	if err != nil {
		return abort(err)
	}
	return written, nil
}
