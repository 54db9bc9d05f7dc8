package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"

	"github.com/s3seal/s3seal/crypto/envelope"
)

// StoredObject is an object as the S3 store holds it.
type StoredObject struct {
	Bucket, Key string
	// Metadata is the user metadata, names in lower case without
	// x-amz-meta-.
	Metadata map[string]string
	// Size is the stored (ciphertext) size.
	Size int64
	// Parts is the part count of a multipart upload (the N of an ETag
	// ending in -N), 0 otherwise.
	Parts int
	// ETag is the store's ETag; Store.Get reads exactly this object.
	ETag string
}

// Store reads objects straight from the S3 store, not through s3seal,
// which keeps its own metadata field out of what clients see.
type Store interface {
	// Head returns what the store says about an object.
	Head(ctx context.Context, bucket, key string) (StoredObject, error)
	// Get returns the stored bytes of o, failing if the object changed
	// since Head (If-Match on o.ETag).
	Get(ctx context.Context, o StoredObject) (io.ReadCloser, error)
	// Tagging returns the object's tags, URL-query encoded.
	Tagging(ctx context.Context, o StoredObject) (string, error)
	// Small reads a small object whole (a key object), at most limit
	// bytes.
	Small(ctx context.Context, bucket, key string, limit int64) ([]byte, error)
	// Where names the store in messages (its endpoint).
	Where() string
}

// Remote is what the fetching forms of inspect and decrypt take from
// s3seal's configuration: the store, reached with s3seal's upstream
// settings and credentials, and the key provider.
type Remote struct {
	Store Store
	// Keys is the configuration's key spec ("" if it has none).
	Keys string
}

// fetchHelp says how to give the fetching forms their configuration.
const fetchHelp = `With --bucket and --key and no --metadata, the object is read from the S3
store itself, with the store endpoint, credentials and keys of s3seal's
configuration, exactly as "s3seal serve" reads them (--config FILE or
$S3SEAL_CONFIG, S3SEAL_* and AWS_* variables). s3seal keeps its own
metadata field out of what its clients see, so ask the store, not s3seal.
`

// openRemote opens the store of s3seal's configuration.
func (t Tool) openRemote(configFile string) (*Remote, error) {
	if t.Remote == nil {
		return nil, errors.New("reading from the store is not available in this build; download the object and its metadata from the store and pass --metadata")
	}
	return t.Remote(t.ctx(), configFile)
}

// fetch opens the store of the configuration in configFile and reads an
// object's s3seal header from it.
func (t Tool) fetch(configFile, bucket, key string) (*Remote, StoredObject, envelope.Header, error) {
	r, err := t.openRemote(configFile)
	if err != nil {
		return nil, StoredObject{}, nil, err
	}
	o, h, err := fetchHeader(t.ctx(), r, bucket, key)
	return r, o, h, err
}

// fetchHeader reads an object's s3seal header from the store.
func fetchHeader(ctx context.Context, r *Remote, bucket, key string) (StoredObject, envelope.Header, error) {
	o, err := r.Store.Head(ctx, bucket, key)
	if err != nil {
		return o, nil, fmt.Errorf("reading s3://%s/%s from the store at %s: %w", bucket, key, r.Store.Where(), err)
	}
	for k, v := range o.Metadata {
		if envelope.IsReservedMetadata(k) {
			h, err := envelope.Parse(strings.TrimSpace(v))
			return o, h, err
		}
	}
	return o, nil, fmt.Errorf("s3://%s/%s at the store %s has no s3seal metadata field (%s): it was not written by s3seal in envelope mode",
		bucket, key, r.Store.Where(), describeFields(o.Metadata))
}

// describeFields lists metadata names for messages (never values).
func describeFields[V any](m map[string]V) string {
	if len(m) == 0 {
		return "no user metadata at all"
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return "its user metadata has only " + strings.Join(names, ", ")
}

// missingFieldHint explains a metadata file without the s3seal field and
// how to get the real one.
func missingFieldHint(fields string, empty bool) string {
	what := "the metadata has no s3seal field (" + fields + ")"
	if empty {
		what = "the metadata is empty ({})"
	}
	return what + `. s3seal keeps its own field, x-amz-meta-s3seal, out of what its clients see,
so head-object through s3seal never shows it (an object s3seal did not
encrypt has none either). Read the metadata from the store itself:
  s3seal inspect --bucket BUCKET --key KEY [--config FILE]
with the configuration "s3seal serve" uses, or
  aws s3api head-object --endpoint-url STORE --bucket BUCKET --key KEY --query Metadata
with the store's own credentials`
}

// remotePartSetRecord reads a version 2 multipart object's part-set record
// from its tag at the store.
func remotePartSetRecord(ctx context.Context, r *Remote, o StoredObject) (envelope.PartSetRecord, error) {
	raw, err := r.Store.Tagging(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("reading the tags of s3://%s/%s at the store %s: %w", o.Bucket, o.Key, r.Store.Where(), err)
	}
	tags, err := url.ParseQuery(raw)
	if err != nil {
		return nil, fmt.Errorf("tags of s3://%s/%s: %w", o.Bucket, o.Key, err)
	}
	v := tags.Get(envelope.PartSetTag)
	if v == "" {
		return nil, fmt.Errorf("s3://%s/%s is a version 2 multipart object without its part-set record (the tag %s): its tags were replaced at the store; restore the tag, or decrypt with --unverified-parts", o.Bucket, o.Key, envelope.PartSetTag)
	}
	rec, _, err := envelope.ParsePartSetTag(v)
	return rec, err
}

// remoteKeyObject reads the key object a header refers to from the store.
func remoteKeyObject(ctx context.Context, r *Remote, bucket string, ref [envelope.WrappedKeyRefSize]byte) ([]byte, error) {
	name := envelope.KeyObjectName(ref)
	b, err := r.Store.Small(ctx, bucket, name, 64<<10)
	if err != nil {
		return nil, fmt.Errorf("reading the key object s3://%s/%s at the store %s: %w", bucket, name, r.Store.Where(), err)
	}
	return b, nil
}
