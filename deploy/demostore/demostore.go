// Package demostore runs a small S3-compatible store on loopback, keeping
// buckets as folders and objects as files under a directory, so that
// "s3seal demo" can show s3seal working without any other server. It is
// for demonstrations only: it checks no signatures and is never used by
// "s3seal serve".
package demostore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
)

// Store is a running demo store.
type Store struct {
	// Endpoint is the store's URL (http://127.0.0.1:PORT).
	Endpoint string
	// Dir is where objects are kept: Dir/buckets/<bucket>/<key>.
	Dir     string
	srv     *http.Server
	backend gofakes3.Backend
}

// Start runs a store under dir on a free loopback port.
func Start(dir string) (*Store, error) {
	fs, err := s3afero.FsPath(dir, s3afero.FsPathCreateAll)
	if err != nil {
		return nil, fmt.Errorf("demostore: %w", err)
	}
	backend, err := s3afero.MultiBucket(fs)
	if err != nil {
		return nil, fmt.Errorf("demostore: %w", err)
	}
	faker := gofakes3.New(backend, gofakes3.WithTimeSkewLimit(0), gofakes3.WithLogger(gofakes3.DiscardLog()))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demostore: %w", err)
	}
	s := &Store{
		Endpoint: "http://" + ln.Addr().String(),
		Dir:      dir,
		srv:      &http.Server{Handler: faker.Server(), ReadHeaderTimeout: 10 * time.Second},
		backend:  backend,
	}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// CreateBucket creates a bucket unless it exists.
func (s *Store) CreateBucket(name string) error {
	ok, err := s.backend.BucketExists(name)
	if err != nil || ok {
		return err
	}
	return s.backend.CreateBucket(name)
}

// ObjectPath is the file holding an object's stored bytes.
func (s *Store) ObjectPath(bucket, key string) string {
	return filepath.Join(s.Dir, "buckets", bucket, filepath.FromSlash(key))
}

// Close stops the store.
func (s *Store) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
