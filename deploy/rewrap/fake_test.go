package rewrap

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// fakeVersion is one version (or delete marker) of a key in fakeStore.
type fakeVersion struct {
	id       string
	marker   bool
	data     []byte
	parts    []int64 // part sizes of a multipart object; nil for single
	etag     string
	meta     map[string]string
	props    Properties
	tags     string
	ssec     *[32]byte
	lockMode string
	retain   time.Time
	hold     bool
	modified time.Time
}

type fakeUpload struct {
	key   string
	dst   Dest
	parts map[int][]byte
}

// fakeStore is an in-memory S3 bucket with the behaviours rewrap relies
// on: conditional copies, SSE-C key checks (400 without a key, 403 with a
// wrong one), part layouts that a single copy flattens, and versions.
type fakeStore struct {
	mu         sync.Mutex
	bucket     string
	versioning string
	// destIfMatch: the store honours If-Match on CopyObject's destination
	// (MinIO ignores it).
	destIfMatch bool
	keys        map[string][]*fakeVersion // oldest first
	seq         int
	uploads     map[string]*fakeUpload
	calls       map[string]int
	// beforeWrite, if set, runs (without the lock) before a Copy or
	// Complete takes effect; it may change the store.
	beforeWrite func(op, key string)
	// failOp makes every call of an operation fail.
	failOp map[string]error
}

func newFakeStore(bucket string) *fakeStore {
	return &fakeStore{bucket: bucket, keys: map[string][]*fakeVersion{}, uploads: map[string]*fakeUpload{}, calls: map[string]int{}, failOp: map[string]error{}}
}

func md5ETag(b []byte) string {
	s := md5.Sum(b)
	return `"` + hex.EncodeToString(s[:]) + `"`
}

func (f *fakeStore) errStatus(op string, status int) error {
	return &StoreError{Op: op, Status: status, Code: http.StatusText(status)}
}

func (f *fakeStore) call(op string) error {
	f.calls[op]++
	return f.failOp[op]
}

// put stores a version as a client write would.
func (f *fakeStore) put(key string, v *fakeVersion) *fakeVersion {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.putLocked(key, v)
}

func (f *fakeStore) putLocked(key string, v *fakeVersion) *fakeVersion {
	if v.modified.IsZero() {
		v.modified = time.Now()
	}
	if v.etag == "" && !v.marker {
		if v.parts != nil {
			v.etag = fmt.Sprintf(`"%s-%d"`, strings.Trim(md5ETag(v.data), `"`), len(v.parts))
		} else {
			v.etag = md5ETag(v.data)
		}
	}
	switch f.versioning {
	case VersioningEnabled:
		f.seq++
		v.id = fmt.Sprintf("v%04d", f.seq)
		f.keys[key] = append(f.keys[key], v)
	default:
		v.id = ""
		f.keys[key] = []*fakeVersion{v}
	}
	return v
}

// current returns the current version of key (nil if none or a marker).
func (f *fakeStore) current(key string) *fakeVersion {
	vs := f.keys[key]
	if len(vs) == 0 || vs[len(vs)-1].marker {
		return nil
	}
	return vs[len(vs)-1]
}

func (f *fakeStore) lookup(key, id string) *fakeVersion {
	if id == "" {
		return f.current(key)
	}
	for _, v := range f.keys[key] {
		if v.id == id && !v.marker {
			return v
		}
	}
	return nil
}

func (f *fakeStore) checkSSEC(op string, v *fakeVersion, k *[32]byte) error {
	switch {
	case v.ssec == nil && k != nil, v.ssec != nil && k == nil:
		return f.errStatus(op, 400)
	case v.ssec != nil && *v.ssec != *k:
		return f.errStatus(op, 403)
	}
	return nil
}

func (f *fakeStore) Versioning(_ context.Context, bucket string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Versioning"); err != nil {
		return "", err
	}
	return f.versioning, nil
}

func (f *fakeStore) sortedKeys(prefix, after string) []string {
	var ks []string
	for k := range f.keys {
		if strings.HasPrefix(k, prefix) && k > after {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	return ks
}

func (f *fakeStore) List(ctx context.Context, bucket, prefix, after string, fn func(string) error) error {
	f.mu.Lock()
	if err := f.call("List"); err != nil {
		f.mu.Unlock()
		return err
	}
	var ks []string
	for _, k := range f.sortedKeys(prefix, after) {
		if f.current(k) != nil {
			ks = append(ks, k)
		}
	}
	f.mu.Unlock()
	for _, k := range ks {
		if err := fn(k); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeStore) ListVersions(ctx context.Context, bucket, prefix, after string, fn func(string, []Entry) error) error {
	f.mu.Lock()
	if err := f.call("ListVersions"); err != nil {
		f.mu.Unlock()
		return err
	}
	type group struct {
		key     string
		entries []Entry
	}
	var gs []group
	for _, k := range f.sortedKeys(prefix, after) {
		vs := f.keys[k]
		if len(vs) == 0 {
			continue
		}
		var es []Entry
		for i := len(vs) - 1; i >= 0; i-- {
			es = append(es, Entry{VersionID: vs[i].id, DeleteMarker: vs[i].marker, ETag: vs[i].etag, Size: int64(len(vs[i].data))})
		}
		gs = append(gs, group{k, es})
	}
	f.mu.Unlock()
	for _, g := range gs {
		if err := fn(g.key, g.entries); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeStore) Head(_ context.Context, in HeadInput) (*Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Head"); err != nil {
		return nil, err
	}
	v := f.lookup(in.Key, in.VersionID)
	if v == nil {
		return nil, f.errStatus("HeadObject", 404)
	}
	if err := f.checkSSEC("HeadObject", v, in.SSECKey); err != nil {
		return nil, err
	}
	if in.IfMatch != "" && in.IfMatch != v.etag {
		return nil, f.errStatus("HeadObject", 412)
	}
	o := &Object{Key: in.Key, VersionID: v.id, ETag: v.etag, Size: int64(len(v.data)), Modified: v.modified, Metadata: maps.Clone(v.meta), Props: v.props,
		LockMode: v.lockMode, RetainUntil: v.retain, LegalHold: v.hold, SSEC: v.ssec != nil}
	if in.PartNumber > 0 {
		if v.parts == nil {
			if in.PartNumber != 1 {
				return nil, f.errStatus("HeadObject", 416)
			}
		} else {
			if in.PartNumber > len(v.parts) {
				return nil, f.errStatus("HeadObject", 416)
			}
			o.Size = v.parts[in.PartNumber-1]
			o.PartsCount = len(v.parts)
		}
	}
	return o, nil
}

func (f *fakeStore) Tagging(_ context.Context, bucket, key, versionID string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Tagging"); err != nil {
		return "", err
	}
	v := f.lookup(key, versionID)
	if v == nil {
		return "", f.errStatus("GetObjectTagging", 404)
	}
	return v.tags, nil
}

func (f *fakeStore) Get(_ context.Context, bucket, key, versionID, ifMatch string) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Get"); err != nil {
		return nil, err
	}
	v := f.lookup(key, versionID)
	if v == nil {
		return nil, f.errStatus("GetObject", 404)
	}
	if ifMatch != "" && ifMatch != v.etag {
		return nil, f.errStatus("GetObject", 412)
	}
	return io.NopCloser(bytes.NewReader(v.data)), nil
}

func (f *fakeStore) PutNew(_ context.Context, bucket, key string, body []byte) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("PutNew"); err != nil {
		return false, err
	}
	if f.current(key) != nil {
		return false, nil
	}
	f.putLocked(key, &fakeVersion{data: append([]byte(nil), body...)})
	return true, nil
}

// source resolves a copy source.
func (f *fakeStore) source(op string, src Source) (*fakeVersion, error) {
	v := f.lookup(src.Key, src.VersionID)
	if v == nil {
		return nil, f.errStatus(op, 404)
	}
	if src.IfMatch != "" && src.IfMatch != v.etag {
		return nil, f.errStatus(op, 412)
	}
	if err := f.checkSSEC(op, v, src.SSECKey); err != nil {
		return nil, err
	}
	return v, nil
}

func cloneKey(k *[32]byte) *[32]byte {
	if k == nil {
		return nil
	}
	c := *k
	return &c
}

func (f *fakeStore) Copy(_ context.Context, in CopyInput) (Written, error) {
	if f.beforeWrite != nil {
		f.beforeWrite("Copy", in.Dst.Key)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Copy"); err != nil {
		return Written{}, err
	}
	v, err := f.source("CopyObject", in.Src)
	if err != nil {
		return Written{}, err
	}
	if f.destIfMatch && in.Dst.IfMatch != "" {
		if cur := f.current(in.Dst.Key); cur == nil || cur.etag != in.Dst.IfMatch {
			return Written{}, f.errStatus("CopyObject", 412)
		}
	}
	nv := &fakeVersion{data: bytes.Clone(v.data), meta: maps.Clone(in.Dst.Metadata), props: in.Dst.Props, tags: v.tags, ssec: cloneKey(in.Dst.SSECKey)}
	if nv.ssec != nil {
		// SSE-C ETags are not the MD5 and change with every write.
		f.seq++
		nv.etag = fmt.Sprintf(`"ssec%08d"`, f.seq)
	}
	nv = f.putLocked(in.Dst.Key, nv)
	return Written{VersionID: nv.id, ETag: nv.etag}, nil
}

func (f *fakeStore) CreateUpload(_ context.Context, in CopyInput) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("CreateUpload"); err != nil {
		return "", err
	}
	f.seq++
	id := "upload-" + strconv.Itoa(f.seq)
	f.uploads[id] = &fakeUpload{key: in.Dst.Key, dst: in.Dst, parts: map[int][]byte{}}
	return id, nil
}

func (f *fakeStore) CopyPart(_ context.Context, in PartInput) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("CopyPart"); err != nil {
		return "", err
	}
	u := f.uploads[in.UploadID]
	if u == nil || u.key != in.Key {
		return "", f.errStatus("UploadPartCopy", 404)
	}
	v, err := f.source("UploadPartCopy", in.Src)
	if err != nil {
		return "", err
	}
	if in.Offset < 0 || in.Size < 1 || in.Offset+in.Size > int64(len(v.data)) {
		return "", f.errStatus("UploadPartCopy", 416)
	}
	if (u.dst.SSECKey == nil) != (in.SSECKey == nil) || u.dst.SSECKey != nil && *u.dst.SSECKey != *in.SSECKey {
		return "", f.errStatus("UploadPartCopy", 400)
	}
	b := bytes.Clone(v.data[in.Offset : in.Offset+in.Size])
	u.parts[in.Part] = b
	return md5ETag(b), nil
}

func (f *fakeStore) Complete(_ context.Context, in CompleteInput) (Written, error) {
	if f.beforeWrite != nil {
		f.beforeWrite("Complete", in.Key)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Complete"); err != nil {
		return Written{}, err
	}
	u := f.uploads[in.UploadID]
	if u == nil || u.key != in.Key {
		return Written{}, f.errStatus("CompleteMultipartUpload", 404)
	}
	if in.IfMatch != "" {
		if cur := f.current(in.Key); cur == nil || cur.etag != in.IfMatch {
			return Written{}, f.errStatus("CompleteMultipartUpload", 412)
		}
	}
	var data []byte
	var parts []int64
	for i, e := range in.ETags {
		b, ok := u.parts[i+1]
		if !ok || md5ETag(b) != e {
			return Written{}, f.errStatus("CompleteMultipartUpload", 400)
		}
		data = append(data, b...)
		parts = append(parts, int64(len(b)))
	}
	if len(u.parts) != len(in.ETags) {
		return Written{}, f.errStatus("CompleteMultipartUpload", 400)
	}
	delete(f.uploads, in.UploadID)
	nv := &fakeVersion{data: data, parts: parts, meta: maps.Clone(u.dst.Metadata), props: u.dst.Props, tags: u.dst.Tagging, ssec: cloneKey(u.dst.SSECKey)}
	nv = f.putLocked(in.Key, nv)
	return Written{VersionID: nv.id, ETag: nv.etag}, nil
}

func (f *fakeStore) Abort(_ context.Context, bucket, key, uploadID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["Abort"]++
	if _, ok := f.uploads[uploadID]; !ok {
		return f.errStatus("AbortMultipartUpload", 404)
	}
	delete(f.uploads, uploadID)
	return nil
}

func (f *fakeStore) DeleteVersion(_ context.Context, bucket, key, versionID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("DeleteVersion"); err != nil {
		return err
	}
	vs := f.keys[key]
	for i, v := range vs {
		if v.id == versionID {
			f.keys[key] = slices.Delete(vs, i, i+1)
			if len(f.keys[key]) == 0 {
				delete(f.keys, key)
			}
			return nil
		}
	}
	return nil
}

func (f *fakeStore) PutDeleteMarker(_ context.Context, bucket, key string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("PutDeleteMarker"); err != nil {
		return "", err
	}
	if f.versioning != VersioningEnabled {
		delete(f.keys, key)
		return "", nil
	}
	v := f.putLocked(key, &fakeVersion{marker: true})
	return v.id, nil
}

// writes counts the calls that change the store.
func (f *fakeStore) writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, op := range []string{"Copy", "CreateUpload", "CopyPart", "Complete", "DeleteVersion", "PutDeleteMarker"} {
		n += f.calls[op]
	}
	return n
}

// history returns key's versions, oldest first.
func (f *fakeStore) history(key string) []*fakeVersion {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.keys[key])
}
