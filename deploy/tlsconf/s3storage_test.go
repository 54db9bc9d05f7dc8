package tlsconf

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// fakeS3 serves an in-memory S3 (with atomic conditional PutObject) on
// loopback and returns a client for it; the bucket "tls" exists.
func fakeS3(t *testing.T) *s3.Client {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket("tls"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
}

func newS3Storage(t *testing.T, client *s3.Client, o S3StorageOptions) *s3Storage {
	t.Helper()
	o.Client = client
	if o.Bucket == "" {
		o.Bucket = "tls"
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	st, err := NewS3Storage(o)
	if err != nil {
		t.Fatal(err)
	}
	s := st.(*s3Storage)
	s.poll = 10 * time.Millisecond // keep waiting tests fast
	return s
}

func TestS3StorageOptionsValidated(t *testing.T) {
	client := s3.New(s3.Options{Region: "us-east-1"})
	cases := []S3StorageOptions{
		{Bucket: "b", Logger: zap.NewNop()},
		{Client: client, Logger: zap.NewNop()},
		{Client: client, Bucket: "b"},
		{Client: client, Bucket: "b", Logger: zap.NewNop(), LockTTL: time.Millisecond},
	}
	for _, o := range cases {
		if _, err := NewS3Storage(o); err == nil || !strings.HasPrefix(err.Error(), "tlsconf: ") {
			t.Errorf("%+v: err %v", o, err)
		}
	}
}

func TestS3StorageKeyValue(t *testing.T) {
	ctx := t.Context()
	client := fakeS3(t)
	s := newS3Storage(t, client, S3StorageOptions{Prefix: "/replicas/tls"})
	if s.prefix != "replicas/tls/" {
		t.Fatalf("prefix %q", s.prefix)
	}
	files := map[string]string{
		"certificates/ca/a.example/a.example.crt":   "cert a",
		"certificates/ca/a.example/a.example.key":   "key a",
		"certificates/ca/ab.example/ab.example.crt": "cert ab",
		"acme/ca/users/x/x.json":                    "user",
		"last_clean.json":                           "{}",
	}
	for k, v := range files {
		if err := s.Store(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range files {
		got, err := s.Load(ctx, k)
		if err != nil || string(got) != v {
			t.Errorf("Load %s = %q, %v", k, got, err)
		}
	}
	if _, err := s.Load(ctx, "certificates/ca/none"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing key: %v, want fs.ErrNotExist", err)
	}
	// The objects live under the prefix, and another prefix sees none of them.
	if _, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("tls"), Key: aws.String("replicas/tls/last_clean.json")}); err != nil {
		t.Errorf("object not stored under the prefix: %v", err)
	}
	other := newS3Storage(t, client, S3StorageOptions{Prefix: "other"})
	if other.Exists(ctx, "last_clean.json") {
		t.Error("another prefix sees the object")
	}

	for k, want := range map[string]bool{
		"certificates":                            true,
		"certificates/ca/a.example":               true,
		"certificates/ca/a.example/a.example.crt": true,
		"certificates/ca/a":                       false, // a prefix of a name, not of a path
		"nothing":                                 false,
	} {
		if got := s.Exists(ctx, k); got != want {
			t.Errorf("Exists(%q) = %v, want %v", k, got, want)
		}
	}

	ki, err := s.Stat(ctx, "certificates/ca/a.example/a.example.crt")
	if err != nil || !ki.IsTerminal || ki.Size != int64(len("cert a")) || ki.Modified.IsZero() {
		t.Errorf("Stat file = %+v, %v", ki, err)
	}
	ki, err = s.Stat(ctx, "certificates/ca")
	if err != nil || ki.IsTerminal {
		t.Errorf("Stat directory = %+v, %v", ki, err)
	}
	if _, err := s.Stat(ctx, "nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat missing: %v", err)
	}

	list := func(path string, recursive bool) []string {
		t.Helper()
		keys, err := s.List(ctx, path, recursive)
		if err != nil {
			t.Fatalf("List(%q, %v): %v", path, recursive, err)
		}
		slices.Sort(keys)
		return keys
	}
	if got, want := list("certificates/ca", false), []string{"certificates/ca/a.example", "certificates/ca/ab.example"}; !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
	if got, want := list("", false), []string{"acme", "certificates", "last_clean.json"}; !slices.Equal(got, want) {
		t.Errorf("List root = %q, want %q", got, want)
	}
	if got, want := list("certificates", true), []string{
		"certificates/ca/a.example/a.example.crt", "certificates/ca/a.example/a.example.key", "certificates/ca/ab.example/ab.example.crt",
	}; !slices.Equal(got, want) {
		t.Errorf("recursive List = %q, want %q", got, want)
	}
	if _, err := s.List(ctx, "missing", false); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List missing: %v", err)
	}

	if err := s.Delete(ctx, "certificates/ca/a.example"); err != nil {
		t.Fatal(err)
	}
	if s.Exists(ctx, "certificates/ca/a.example/a.example.key") {
		t.Error("Delete left a key under the directory")
	}
	if !s.Exists(ctx, "certificates/ca/ab.example/ab.example.crt") {
		t.Error("Delete removed a sibling whose name shares the prefix")
	}
	if err := s.Delete(ctx, "certificates/ca/a.example"); err != nil {
		t.Errorf("deleting a missing key: %v", err)
	}
}

func TestS3StorageLockExcludes(t *testing.T) {
	client := fakeS3(t)
	const workers, rounds = 4, 5
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		s := newS3Storage(t, client, S3StorageOptions{Prefix: "p", LockTTL: 5 * time.Second})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				if err := s.Lock(ctx, "issue_cert_a.example"); err != nil {
					errs <- err
					return
				}
				// An unprotected read-modify-write: only the lock keeps
				// increments from being lost.
				n := 0
				if b, err := s.Load(ctx, "counter"); err == nil {
					n, _ = strconv.Atoi(string(b))
				}
				time.Sleep(5 * time.Millisecond)
				if err := s.Store(ctx, "counter", []byte(strconv.Itoa(n+1))); err != nil {
					errs <- err
					return
				}
				if err := s.Unlock(ctx, "issue_cert_a.example"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s := newS3Storage(t, client, S3StorageOptions{Prefix: "p"})
	b, err := s.Load(ctx, "counter")
	if err != nil || string(b) != strconv.Itoa(workers*rounds) {
		t.Fatalf("counter = %q (%v), want %d: increments were lost", b, err, workers*rounds)
	}
}

// writeLock puts a lock record as another instance would.
func writeLock(t *testing.T, s *s3Storage, name string, body []byte) {
	t.Helper()
	if _, err := s.put(t.Context(), s.lockKey(name), body, "", ""); err != nil {
		t.Fatal(err)
	}
}

func lockJSON(t *testing.T, r lockRecord) []byte {
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestS3StorageStaleLocks(t *testing.T) {
	ctx := t.Context()
	client := fakeS3(t)
	log, logs := observedLogger()
	clock := newFakeClock(time.Now())
	s := newS3Storage(t, client, S3StorageOptions{LockTTL: 10 * time.Second, Logger: log, Now: clock.Now})

	writeLock(t, s, "live", lockJSON(t, lockRecord{Owner: "other", Expires: clock.Now().Add(5 * time.Second)}))
	if ok, err := s.TryLock(ctx, "live"); ok || err != nil {
		t.Fatalf("TryLock on a live lock = %v, %v", ok, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := s.Lock(wctx, "live"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock on a live lock with a deadline: %v", err)
	}

	writeLock(t, s, "expired", lockJSON(t, lockRecord{Owner: "crashed", Host: "node-7", Expires: clock.Now().Add(-time.Second)}))
	if ok, err := s.TryLock(ctx, "expired"); !ok || err != nil {
		t.Fatalf("TryLock on an expired lock = %v, %v", ok, err)
	}
	if !hasLog(logs, zapcore.WarnLevel, "took over an expired lock") {
		t.Error("take-over not logged")
	}
	if err := s.Unlock(ctx, "expired"); err != nil {
		t.Fatal(err)
	}

	writeLock(t, s, "released", lockJSON(t, lockRecord{Owner: "done", Released: true, Expires: clock.Now().Add(time.Hour)}))
	if ok, err := s.TryLock(ctx, "released"); !ok || err != nil {
		t.Fatalf("TryLock on a released lock = %v, %v", ok, err)
	}
	s.Unlock(ctx, "released")

	// An unreadable lock is judged by its age.
	writeLock(t, s, "garbage", []byte("{not json"))
	if ok, err := s.TryLock(ctx, "garbage"); ok || err != nil {
		t.Fatalf("TryLock on a fresh unreadable lock = %v, %v", ok, err)
	}
	clock.Advance(11 * time.Second)
	if ok, err := s.TryLock(ctx, "garbage"); !ok || err != nil {
		t.Fatalf("TryLock on an old unreadable lock = %v, %v", ok, err)
	}
	s.Unlock(ctx, "garbage")
}

func TestS3StorageLockRefreshedWhileHeld(t *testing.T) {
	ctx := t.Context()
	client := fakeS3(t)
	a := newS3Storage(t, client, S3StorageOptions{LockTTL: time.Second})
	b := newS3Storage(t, client, S3StorageOptions{LockTTL: time.Second})
	if err := a.Lock(ctx, "n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // 2.5 TTLs: only refreshing keeps it
	if ok, err := b.TryLock(ctx, "n"); ok || err != nil {
		t.Fatalf("lock held and refreshed by a was taken: %v, %v", ok, err)
	}
	if err := a.Unlock(ctx, "n"); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.TryLock(ctx, "n"); !ok || err != nil {
		t.Fatalf("TryLock after Unlock = %v, %v", ok, err)
	}
	// Released: either deleted (conditional deletes honoured) or marked.
	body, _, _, err := b.get(ctx, a.lockKey("n"))
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := parseLockRecord(body); err != nil || rec.Released {
		t.Errorf("lock now held by b reads %+v, %v", rec, err)
	}
	b.Unlock(ctx, "n")
	if !b.probed {
		t.Error("conditional DeleteObject support not probed on Unlock")
	}
	body, _, _, err = b.get(ctx, a.lockKey("n"))
	switch {
	case isNotFound(err):
		if !b.condDelete {
			t.Error("lock deleted although conditional deletes are not honoured")
		}
	case err != nil:
		t.Fatal(err)
	default:
		if rec, err := parseLockRecord(body); err != nil || !rec.Released {
			t.Errorf("lock after Unlock reads %+v, %v; want released", rec, err)
		}
	}
}

func TestS3StorageUnlockLeavesOthersLock(t *testing.T) {
	ctx := t.Context()
	client := fakeS3(t)
	log, logs := observedLogger()
	s := newS3Storage(t, client, S3StorageOptions{Logger: log})
	if err := s.Lock(ctx, "n"); err != nil {
		t.Fatal(err)
	}
	// Another instance took the lock over (as if s had stalled past its TTL).
	theirs := lockJSON(t, lockRecord{Owner: "other", Expires: time.Now().Add(time.Hour)})
	writeLock(t, s, "n", theirs)
	if err := s.Unlock(ctx, "n"); err != nil {
		t.Fatal(err)
	}
	body, _, _, err := s.get(ctx, s.lockKey("n"))
	if err != nil || string(body) != string(theirs) {
		t.Fatalf("Unlock touched another instance's lock: %q, %v", body, err)
	}
	if !hasLog(logs, zapcore.WarnLevel, "taken over") {
		t.Error("no warning that the lock had been taken over")
	}
	if err := s.Unlock(ctx, "n"); err == nil {
		t.Error("Unlock of a lock not held succeeded")
	}
}

func TestS3StorageMissingBucketIsAnError(t *testing.T) {
	s := newS3Storage(t, fakeS3(t), S3StorageOptions{Bucket: "absent"})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	err := s.Lock(ctx, "n")
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock on a missing bucket: %v, want an immediate error", err)
	}
	if err := s.Store(ctx, "k", []byte("v")); err == nil {
		t.Error("Store into a missing bucket succeeded")
	}
}
