package rewrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Store is the part of S3 that rewrap uses. NewS3Store implements it for a
// real store; tests use fakes. Errors from the store are *StoreError.
type Store interface {
	// Versioning returns the bucket's versioning status: "" (never
	// enabled), "Enabled" or "Suspended".
	Versioning(ctx context.Context, bucket string) (string, error)
	// List calls fn for the key of every current object under prefix
	// whose key sorts after after, in key order.
	List(ctx context.Context, bucket, prefix, after string, fn func(key string) error) error
	// ListVersions calls fn once per key under prefix that sorts after
	// after, in key order, with all its versions and delete markers,
	// newest first.
	ListVersions(ctx context.Context, bucket, prefix, after string, fn func(key string, entries []Entry) error) error
	// Head returns an object's properties.
	Head(ctx context.Context, in HeadInput) (*Object, error)
	// Tagging returns an object version's tags as a URL query string.
	Tagging(ctx context.Context, bucket, key, versionID string) (string, error)
	// Get returns the stored bytes of an object (the current version
	// unless versionID is set; only while its ETag is ifMatch, if set).
	// Rewrap reads key objects with it, never object data.
	Get(ctx context.Context, bucket, key, versionID, ifMatch string) (io.ReadCloser, error)
	// PutNew creates a small object (a key object, a marker) unless one
	// exists (If-None-Match: *), and reports whether it created it.
	PutNew(ctx context.Context, bucket, key string, body []byte) (bool, error)
	// Copy copies an object server-side (CopyObject, metadata directive
	// REPLACE, tagging directive COPY).
	Copy(ctx context.Context, in CopyInput) (Written, error)
	// CreateUpload starts a multipart upload at in.Dst and returns its
	// id; in.Src is not used.
	CreateUpload(ctx context.Context, in CopyInput) (string, error)
	// CopyPart fills one part of an upload server-side (UploadPartCopy)
	// and returns the part's ETag.
	CopyPart(ctx context.Context, in PartInput) (string, error)
	// Complete completes an upload.
	Complete(ctx context.Context, in CompleteInput) (Written, error)
	// Abort abandons an upload.
	Abort(ctx context.Context, bucket, key, uploadID string) error
	// DeleteVersion deletes one version (or delete marker) by id.
	DeleteVersion(ctx context.Context, bucket, key, versionID string) error
	// PutDeleteMarker deletes key without a version id, which in a
	// versioned bucket adds a delete marker; it returns the marker's id.
	PutDeleteMarker(ctx context.Context, bucket, key string) (string, error)
}

// Versioning states as S3 reports them.
const (
	VersioningEnabled   = "Enabled"
	VersioningSuspended = "Suspended"
)

// Entry is one version or delete marker of a key, as listed.
type Entry struct {
	VersionID    string
	DeleteMarker bool
	ETag         string
	Size         int64
}

// HeadInput selects what Head looks at.
type HeadInput struct {
	Bucket, Key string
	// VersionID, if set, selects a version.
	VersionID string
	// IfMatch, if set, is sent as If-Match.
	IfMatch string
	// PartNumber, if not 0, asks for one part's size and the part count.
	PartNumber int
	// SSECKey, if set, is sent as the SSE-C customer key.
	SSECKey *[32]byte
}

// Object is what Head returns.
type Object struct {
	Key       string
	VersionID string
	ETag      string
	// Size is the stored size (of the part, with HeadInput.PartNumber).
	Size int64
	// Modified is its Last-Modified time.
	Modified time.Time
	// PartsCount is the number of parts, when a part was asked for and
	// the object is multipart; else 0.
	PartsCount int
	// Metadata holds the user metadata, with lower-case names without
	// the x-amz-meta- prefix.
	Metadata map[string]string
	// Props are the object's other properties that a copy must keep.
	Props Properties
	// Object Lock state.
	LockMode    string
	RetainUntil time.Time
	LegalHold   bool
	// SSEC reports that the object is stored with SSE-C (HEAD answered
	// with the customer-key headers).
	SSEC bool
}

// Properties are the object properties a copy carries over.
type Properties struct {
	ContentType        string
	ContentEncoding    string
	ContentDisposition string
	ContentLanguage    string
	CacheControl       string
	// Expires is the raw Expires header value.
	Expires         string
	WebsiteRedirect string
	// StorageClass is "" for STANDARD.
	StorageClass string
	// Store-side encryption (SSE-S3 or SSE-KMS) other than SSE-C.
	SSE              string
	SSEKMSKeyID      string
	BucketKeyEnabled bool
}

// Source is where a copy reads from.
type Source struct {
	Bucket, Key string
	// VersionID, if set, reads that version; else the current one.
	VersionID string
	// IfMatch, if set, is sent as x-amz-copy-source-if-match.
	IfMatch string
	// SSECKey is the source's SSE-C customer key, if any.
	SSECKey *[32]byte
}

// Dest is where a copy or upload writes.
type Dest struct {
	Bucket, Key string
	Metadata    map[string]string
	Props       Properties
	// SSECKey is the new SSE-C customer key, if any.
	SSECKey *[32]byte
	// Tagging is sent with CreateUpload (a URL query string).
	Tagging string
	// IfMatch, if set, makes the write conditional on the destination's
	// current ETag (If-Match), where the store supports it.
	IfMatch string
}

// CopyInput is a server-side copy.
type CopyInput struct {
	Src Source
	Dst Dest
}

// PartInput is one UploadPartCopy.
type PartInput struct {
	Bucket, Key, UploadID string
	Part                  int
	Src                   Source
	// Offset and Size select the source's bytes.
	Offset, Size int64
	// SSECKey is the upload's SSE-C customer key, if any.
	SSECKey *[32]byte
}

// CompleteInput completes an upload.
type CompleteInput struct {
	Bucket, Key, UploadID string
	// ETags are the parts' ETags, part 1 first.
	ETags []string
	// IfMatch, if set, is sent as If-Match.
	IfMatch string
	// SSECKey is the upload's SSE-C customer key, if any.
	SSECKey *[32]byte
}

// Written is the result of a write.
type Written struct {
	VersionID string
	ETag      string
}

// StoreError is a failed store request.
type StoreError struct {
	// Op is the S3 operation.
	Op string
	// Status is the HTTP status (0 if there was no answer) and Code the
	// S3 error code, if any.
	Status int
	Code   string
	Err    error
}

func (e *StoreError) Error() string {
	s := "rewrap: store " + e.Op
	if e.Status != 0 {
		s += fmt.Sprintf(": HTTP %d", e.Status)
	}
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *StoreError) Unwrap() error { return e.Err }

// status returns the HTTP status of a store error, or 0.
func status(err error) int {
	var se *StoreError
	if errors.As(err, &se) {
		return se.Status
	}
	return 0
}

func isNotFound(err error) bool { return status(err) == http.StatusNotFound }

func isPrecondition(err error) bool { return status(err) == http.StatusPreconditionFailed }
