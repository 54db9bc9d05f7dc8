package tlsconf

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// S3StorageOptions configures NewS3Storage.
type S3StorageOptions struct {
	// Client talks to the S3 endpoint; required. It is used as is (its
	// region, endpoint, credentials and retries).
	Client *s3.Client

	// Bucket holds the objects; required. It must not be readable by s3seal's
	// clients: it stores private keys.
	Bucket string

	// Prefix is prepended to every object key, e.g. "s3seal/tls/"; a
	// missing trailing slash is added. "" means the bucket's root.
	Prefix string

	// Logger receives lock take-overs and losses; required.
	Logger *zap.Logger

	// LockTTL is how long a lock outlives its holder's last refresh; a
	// holder refreshes every LockTTL/3, and a lock not refreshed for LockTTL
	// (its holder crashed or hangs) is taken over. It must exceed the clock
	// difference between replicas. 0 means one minute.
	LockTTL time.Duration

	// Now is the clock for lock expiry; nil means time.Now.
	Now func() time.Time
}

// DefaultLockTTL is the LockTTL used when S3StorageOptions.LockTTL is 0.
const DefaultLockTTL = time.Minute

// maxStoredObject bounds what Load reads; certmagic's objects are a few KB.
const maxStoredObject = 16 << 20

// NewS3Storage returns a certmagic.Storage (also a certmagic.TryLocker) that
// keeps certmagic's files as objects in an S3 bucket, so that replicas
// sharing it share certificates, ACME accounts and locks.
//
// Keys map to objects Prefix+key; "directories" are implicit, as in S3.
//
// Locks are objects Prefix+"locks/"+name+".lock" holding their owner's random
// token and an expiry, and rely on the conditional writes that AWS S3, MinIO
// and versitygw implement atomically: PutObject with If-None-Match: * to
// create a lock, and PutObject with If-Match: <ETag> to refresh it, to take
// over one whose expiry has passed, and to release it (only while it is
// still ours). A holder refreshes its lock every LockTTL/3. Unlock marks the
// lock released and then deletes it with DeleteObject If-Match, but only if
// the server honours If-Match on DeleteObject (AWS S3 and versitygw do;
// MinIO ignores it and would delete unconditionally): this is probed once
// with a throw-away object. Where it is not honoured, the released lock
// object stays and the next Lock reuses it.
func NewS3Storage(o S3StorageOptions) (certmagic.Storage, error) {
	switch {
	case o.Client == nil:
		return nil, errors.New("tlsconf: S3StorageOptions.Client is required")
	case o.Bucket == "":
		return nil, errors.New("tlsconf: S3StorageOptions.Bucket is required")
	case o.Logger == nil:
		return nil, errors.New("tlsconf: S3StorageOptions.Logger is required")
	case o.LockTTL < 0 || (o.LockTTL > 0 && o.LockTTL < time.Second):
		return nil, fmt.Errorf("tlsconf: S3StorageOptions.LockTTL %v is below one second", o.LockTTL)
	}
	prefix := strings.TrimLeft(o.Prefix, "/")
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	s := &s3Storage{
		client: o.Client,
		bucket: o.Bucket,
		prefix: prefix,
		log:    o.Logger.Named("s3storage"),
		ttl:    o.LockTTL,
		now:    o.Now,
		held:   make(map[string]*heldLock),
	}
	if s.ttl == 0 {
		s.ttl = DefaultLockTTL
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.poll = min(time.Second, s.ttl/4)
	s.host, _ = os.Hostname()
	return s, nil
}

// s3Storage implements certmagic.Storage and certmagic.TryLocker on S3.
type s3Storage struct {
	client *s3.Client
	bucket string
	prefix string
	log    *zap.Logger
	ttl    time.Duration
	poll   time.Duration
	now    func() time.Time
	host   string // written into locks, for people inspecting them

	mu   sync.Mutex // protects held
	held map[string]*heldLock

	probeMu    sync.Mutex // protects probed and condDelete
	probed     bool
	condDelete bool
}

// heldLock is a lock this instance holds.
type heldLock struct {
	owner string
	stop  chan struct{} // closed by Unlock to end the refresher
	done  chan struct{} // closed when the refresher has ended

	mu   sync.Mutex // protects etag and lost
	etag string     // ETag of our latest write of the lock object
	lost bool       // another instance took the lock over
}

// lockRecord is the content of a lock object.
type lockRecord struct {
	Owner    string    `json:"owner"`
	Expires  time.Time `json:"expires"`
	Released bool      `json:"released,omitempty"`
	Host     string    `json:"host,omitempty"`
}

// parseLockRecord decodes a lock object; an unparsable one is reported so
// that its age decides whether it is stale.
func parseLockRecord(b []byte) (lockRecord, error) {
	var r lockRecord
	if len(b) > 4096 {
		return r, errors.New("lock record too large")
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return lockRecord{}, err
	}
	if r.Owner == "" || r.Expires.IsZero() {
		return lockRecord{}, errors.New("lock record lacks owner or expiry")
	}
	return r, nil
}

func (s *s3Storage) String() string { return "s3://" + s.bucket + "/" + s.prefix }

func (s *s3Storage) objKey(key string) string   { return s.prefix + key }
func (s *s3Storage) lockKey(name string) string { return s.prefix + "locks/" + name + ".lock" }

func (s *s3Storage) errorf(op, key string, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("tlsconf: s3 storage: %s %s: %w", op, key, fs.ErrNotExist)
	}
	return fmt.Errorf("tlsconf: s3 storage: %s %s: %w", op, key, err)
}

// Store writes value at key.
func (s *s3Storage) Store(ctx context.Context, key string, value []byte) error {
	if _, err := s.put(ctx, s.objKey(key), value, "", ""); err != nil {
		return s.errorf("store", key, err)
	}
	return nil
}

// Load reads the value at key; a missing key gives an error wrapping fs.ErrNotExist.
func (s *s3Storage) Load(ctx context.Context, key string) ([]byte, error) {
	b, _, _, err := s.get(ctx, s.objKey(key))
	if err != nil {
		return nil, s.errorf("load", key, err)
	}
	return b, nil
}

// Delete removes key and everything under key+"/"; missing keys are not an error.
func (s *s3Storage) Delete(ctx context.Context, key string) error {
	if err := s.deleteObject(ctx, s.objKey(key)); err != nil {
		return s.errorf("delete", key, err)
	}
	under, err := s.listKeys(ctx, s.objKey(key)+"/", true, 0)
	if err != nil {
		return s.errorf("delete", key, err)
	}
	for _, k := range under {
		if err := s.deleteObject(ctx, k); err != nil {
			return s.errorf("delete", key, err)
		}
	}
	return nil
}

// Exists reports whether key is an object or a prefix of objects.
func (s *s3Storage) Exists(ctx context.Context, key string) bool {
	_, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: aws.String(s.objKey(key))})
	if err == nil {
		return true
	}
	if !isNotFound(err) {
		return false
	}
	under, err := s.listKeys(ctx, s.objKey(key)+"/", true, 1)
	return err == nil && len(under) > 0
}

// List returns the keys under path: its direct children (objects and
// implicit directories) or, if recursive, every object below it. An empty
// result is an error wrapping fs.ErrNotExist.
func (s *s3Storage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	p := s.objKey(strings.Trim(path, "/"))
	if strings.Trim(path, "/") != "" {
		p += "/"
	}
	full, err := s.listKeys(ctx, p, recursive, 0)
	if err != nil {
		return nil, s.errorf("list", path, err)
	}
	if len(full) == 0 {
		return nil, s.errorf("list", path, fs.ErrNotExist)
	}
	keys := make([]string, len(full))
	for i, k := range full {
		keys[i] = strings.TrimSuffix(strings.TrimPrefix(k, s.prefix), "/")
	}
	return keys, nil
}

// Stat describes key: an object, or a directory (a prefix of objects).
func (s *s3Storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: aws.String(s.objKey(key))})
	if err == nil {
		return certmagic.KeyInfo{
			Key:        key,
			Modified:   aws.ToTime(out.LastModified),
			Size:       aws.ToInt64(out.ContentLength),
			IsTerminal: true,
		}, nil
	}
	if !isNotFound(err) {
		return certmagic.KeyInfo{}, s.errorf("stat", key, err)
	}
	page, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket: &s.bucket, Prefix: aws.String(s.objKey(key) + "/"), MaxKeys: aws.Int32(1),
	})
	if err != nil {
		return certmagic.KeyInfo{}, s.errorf("stat", key, err)
	}
	if len(page.Contents) == 0 {
		return certmagic.KeyInfo{}, s.errorf("stat", key, fs.ErrNotExist)
	}
	return certmagic.KeyInfo{Key: key, Modified: aws.ToTime(page.Contents[0].LastModified), IsTerminal: false}, nil
}

// listKeys lists full object keys (and, without recursive, common prefixes
// ending in "/") under prefix; limit > 0 stops after that many.
func (s *s3Storage) listKeys(ctx context.Context, prefix string, recursive bool, limit int) ([]string, error) {
	in := &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(prefix)}
	if !recursive {
		in.Delimiter = aws.String("/")
	}
	if limit > 0 {
		in.MaxKeys = aws.Int32(int32(limit))
	}
	var keys []string
	pages := s3.NewListObjectsV2Paginator(s.client, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
		for _, cp := range page.CommonPrefixes {
			keys = append(keys, aws.ToString(cp.Prefix))
		}
		if limit > 0 && len(keys) >= limit {
			break
		}
	}
	return keys, nil
}

// put writes an object, optionally conditional, and returns its ETag.
func (s *s3Storage) put(ctx context.Context, key string, body []byte, ifMatch, ifNoneMatch string) (string, error) {
	in := &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String("application/octet-stream"),
	}
	if ifMatch != "" {
		in.IfMatch = aws.String(ifMatch)
	}
	if ifNoneMatch != "" {
		in.IfNoneMatch = aws.String(ifNoneMatch)
	}
	out, err := s.client.PutObject(ctx, in)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

// get reads an object with its ETag and modification time.
func (s *s3Storage) get(ctx context.Context, key string) ([]byte, string, time.Time, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(key)})
	if err != nil {
		return nil, "", time.Time{}, err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, maxStoredObject+1))
	if err != nil {
		return nil, "", time.Time{}, err
	}
	if len(b) > maxStoredObject {
		return nil, "", time.Time{}, fmt.Errorf("object larger than %d bytes", maxStoredObject)
	}
	return b, aws.ToString(out.ETag), aws.ToTime(out.LastModified), nil
}

func (s *s3Storage) deleteObject(ctx context.Context, key string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(key)})
	if err != nil && !isNotFound(err) {
		return err
	}
	return nil
}

// Lock blocks until this instance holds the named lock or ctx is done.
func (s *s3Storage) Lock(ctx context.Context, name string) error {
	for {
		ok, err := s.TryLock(ctx, name)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		t := time.NewTimer(s.poll + jitter(s.poll))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("tlsconf: s3 storage: waiting for lock %s: %w", name, ctx.Err())
		case <-t.C:
		}
	}
}

// TryLock takes the named lock if it is free, released or expired.
func (s *s3Storage) TryLock(ctx context.Context, name string) (bool, error) {
	key := s.lockKey(name)
	owner := randomToken()
	body, err := json.Marshal(lockRecord{Owner: owner, Expires: s.now().Add(s.ttl), Host: s.host})
	if err != nil {
		return false, fmt.Errorf("tlsconf: internal error: encoding lock: %w", err)
	}
	// Each round looks at the lock object and then writes it conditionally.
	// A failed condition means another instance wrote in between, or the SDK
	// retried a write of ours that had in fact succeeded; the next round
	// tells the two apart by the owner token.
	for range 3 {
		cur, curETag, modified, err := s.get(ctx, key)
		var etag string
		var prev *lockRecord
		switch {
		case isNotFound(err):
			etag, err = s.put(ctx, key, body, "", "*")
		case err != nil:
			return false, s.errorf("lock", name, err)
		default:
			rec, perr := parseLockRecord(cur)
			if perr == nil && rec.Owner == owner {
				s.hold(name, key, owner, curETag)
				return true, nil
			}
			stale := rec.Released || s.now().After(rec.Expires)
			if perr != nil {
				stale = s.now().After(modified.Add(s.ttl))
			}
			if !stale {
				return false, nil
			}
			prev = &rec
			etag, err = s.put(ctx, key, body, curETag, "")
		}
		switch {
		case err == nil:
			if prev != nil && !prev.Released {
				s.log.Warn("took over an expired lock", zap.String("lock", name),
					zap.String("previous_host", prev.Host), zap.Time("previous_expiry", prev.Expires))
			}
			s.hold(name, key, owner, etag)
			return true, nil
		case isConflict(err) || isNotFound(err):
			continue
		default:
			return false, s.errorf("lock", name, err)
		}
	}
	return false, nil
}

// hold records a lock as ours and starts refreshing it.
func (s *s3Storage) hold(name, key, owner, etag string) {
	h := &heldLock{owner: owner, etag: etag, stop: make(chan struct{}), done: make(chan struct{})}
	s.mu.Lock()
	prev := s.held[name]
	s.held[name] = h
	s.mu.Unlock()
	if prev != nil {
		close(prev.stop)
		<-prev.done
	}
	go s.refresh(name, key, h)
}

// refresh extends a held lock every ttl/3 until Unlock or until the lock is lost.
func (s *s3Storage) refresh(name, key string, h *heldLock) {
	defer close(h.done)
	t := time.NewTicker(s.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		body, _ := json.Marshal(lockRecord{Owner: h.owner, Expires: s.now().Add(s.ttl), Host: s.host})
		ctx, cancel := context.WithTimeout(context.Background(), s.ttl/3)
		h.mu.Lock()
		etag, err := s.put(ctx, key, body, h.etag, "")
		switch {
		case err == nil:
			h.etag = etag
		case isConflict(err) || isNotFound(err):
			h.lost = true
		}
		h.mu.Unlock()
		cancel()
		switch {
		case err == nil:
		case isConflict(err) || isNotFound(err):
			s.log.Error("lost a lock to another instance while holding it; it was not refreshed in time",
				zap.String("lock", name), zap.Duration("ttl", s.ttl))
			return
		default:
			s.log.Warn("refreshing lock", zap.String("lock", name), zap.Error(err))
		}
	}
}

// Unlock releases a lock this instance holds, only if it is still ours.
func (s *s3Storage) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	h := s.held[name]
	delete(s.held, name)
	s.mu.Unlock()
	if h == nil {
		return fmt.Errorf("tlsconf: s3 storage: unlock %s: not held by this instance", name)
	}
	close(h.stop)
	<-h.done
	h.mu.Lock()
	etag, lost := h.etag, h.lost
	h.mu.Unlock()
	if lost {
		return nil // already reported by the refresher
	}
	key := s.lockKey(name)
	body, _ := json.Marshal(lockRecord{Owner: h.owner, Expires: s.now(), Released: true, Host: s.host})
	relETag, err := s.put(ctx, key, body, etag, "")
	switch {
	case err == nil:
	case isConflict(err) || isNotFound(err):
		s.log.Warn("lock was taken over by another instance before it was released", zap.String("lock", name))
		return nil
	default:
		return s.errorf("unlock", name, err)
	}
	if s.conditionalDeletes(ctx) {
		_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(key), IfMatch: aws.String(relETag)})
		if err != nil && !isConflict(err) && !isNotFound(err) {
			s.log.Debug("deleting released lock", zap.String("lock", name), zap.Error(err))
		}
	}
	return nil
}

// conditionalDeletes reports whether the server honours If-Match on
// DeleteObject, probing once with a throw-away object.
func (s *s3Storage) conditionalDeletes(ctx context.Context) bool {
	s.probeMu.Lock()
	defer s.probeMu.Unlock()
	if s.probed {
		return s.condDelete
	}
	key := s.prefix + "locks/.probe-" + randomToken()
	if _, err := s.put(ctx, key, []byte("probe"), "", ""); err != nil {
		return false
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: &s.bucket, Key: aws.String(key), IfMatch: aws.String(`"00000000000000000000000000000000"`),
	})
	switch {
	case err == nil:
		s.condDelete = false // the mismatching condition was ignored
	case isConflict(err):
		s.condDelete = true
		_ = s.deleteObject(ctx, key)
	default:
		_ = s.deleteObject(ctx, key)
		return false // undecided; ask again next time
	}
	s.probed = true
	s.log.Info("probed conditional DeleteObject", zap.String("storage", s.String()), zap.Bool("honoured", s.condDelete))
	return s.condDelete
}

// httpStatus returns the HTTP status of an S3 error, or 0.
func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		case "NoSuchBucket":
			return false // a configuration error, not a missing key
		}
	}
	return errors.Is(err, fs.ErrNotExist) || httpStatus(err) == 404
}

// isConflict reports a failed precondition (412) or a concurrent
// conditional write (409 ConditionalRequestConflict).
func isConflict(err error) bool {
	if err == nil {
		return false
	}
	switch httpStatus(err) {
	case 412, 409:
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "PreconditionFailed", "ConditionalRequestConflict":
			return true
		}
	}
	return false
}

func randomToken() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("tlsconf: internal error: no randomness: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// jitter returns a random duration in [0, d).
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(mrand.Int64N(int64(d)))
}

// Interface guards.
var (
	_ certmagic.Storage   = (*s3Storage)(nil)
	_ certmagic.TryLocker = (*s3Storage)(nil)
)
