package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/s3seal/s3seal/config"
	"github.com/s3seal/s3seal/crypto/cli"
	"github.com/s3seal/s3seal/crypto/keys/keyspec"
	"github.com/s3seal/s3seal/deploy/rewrap"
)

// offline runs the offline key and object commands, which need no running
// proxy: data is never hostage to s3seal being up.
func offline(cmd string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	t := cli.Tool{Remote: openRemote, KeySettings: keySettings}
	switch cmd {
	case "keygen":
		return t.Keygen(args, stdin, stdout, stderr)
	case "inspect":
		return t.Inspect(args, stdin, stdout, stderr)
	default:
		return t.Decrypt(args, stdin, stdout, stderr)
	}
}

// loadStoreConfig loads the configuration as "s3seal serve" does, keeping
// only what the commands that work on the store directly use: the
// upstream, the keys and policies, logging. Listener, TLS and client
// settings are neither used nor checked. keys, if set, replaces the
// configuration's key spec, and readKeys, if set, its read_keys.
func loadStoreConfig(file, keys string, readKeys []string) (*config.Config, error) {
	return config.Load(config.Source{File: file, Overrides: func(c *config.Config) {
		*c = config.Config{Mode: c.Mode, Keys: c.Keys, ReadKeys: c.ReadKeys, KMIP: c.KMIP, PKCS11: c.PKCS11,
			Policies: c.Policies, Upstream: c.Upstream, Log: c.Log, DataDir: c.DataDir,
			Sidecar: config.Sidecar{TrustLoopback: true}}
		if keys != "" {
			c.Keys = keys
		}
		if readKeys != nil {
			c.ReadKeys = readKeys
		}
	}})
}

// openRemote reaches the store of s3seal's configuration with s3seal's
// own upstream client, for "inspect" and "decrypt" with --bucket/--key.
func openRemote(ctx context.Context, file string) (*cli.Remote, error) {
	cfg, err := loadStoreConfig(file, "", nil)
	if err != nil {
		return nil, err
	}
	ups, err := newUpstream(ctx, cfg, zap.NewNop())
	if err != nil {
		return nil, err
	}
	return &cli.Remote{
		Store: &storeReader{s: rewrap.NewS3Store(ups.s3Client(cfg.Upstream.Region), ups.client), where: ups.endpoint.Redacted()},
		Keys:  cfg.Keys,
	}, nil
}

// storeReader adapts the store client of rewrap to the offline commands.
type storeReader struct {
	s     *rewrap.S3Store
	where string
}

var _ cli.Store = (*storeReader)(nil)

func (r *storeReader) Head(ctx context.Context, bucket, key string) (cli.StoredObject, error) {
	o, err := r.s.Head(ctx, rewrap.HeadInput{Bucket: bucket, Key: key})
	if err != nil {
		return cli.StoredObject{}, err
	}
	return cli.StoredObject{Bucket: bucket, Key: key, Metadata: o.Metadata, Size: o.Size, Parts: etagParts(o.ETag), ETag: o.ETag}, nil
}

func (r *storeReader) Get(ctx context.Context, o cli.StoredObject) (io.ReadCloser, error) {
	return r.s.Get(ctx, o.Bucket, o.Key, "", o.ETag)
}

func (r *storeReader) Tagging(ctx context.Context, o cli.StoredObject) (string, error) {
	return r.s.Tagging(ctx, o.Bucket, o.Key, "")
}

func (r *storeReader) Small(ctx context.Context, bucket, key string, limit int64) ([]byte, error) {
	body, err := r.s.Get(ctx, bucket, key, "", "")
	if err != nil {
		return nil, err
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return b, nil
}

func (r *storeReader) Where() string { return r.where }

// etagParts is the part count of a multipart upload's ETag ("…-N"), 0 for
// others.
func etagParts(etag string) int {
	etag = strings.Trim(etag, `"`)
	i := strings.LastIndexByte(etag, '-')
	if i < 0 {
		return 0
	}
	n, err := strconv.Atoi(etag[i+1:])
	if err != nil || n < 1 {
		return 0
	}
	return n
}

// keySettings reads the kmip and pkcs11 settings of a configuration file
// ("" for $S3SEAL_CONFIG, or none) for the offline commands.
func keySettings(file string) (keyspec.Options, error) {
	cfg, err := config.Load(config.Source{File: file, Overrides: func(c *config.Config) {
		// Only the key provider settings matter here (and are checked).
		*c = config.Config{Keys: c.Keys, ReadKeys: c.ReadKeys, KMIP: c.KMIP, PKCS11: c.PKCS11,
			Sidecar: config.Sidecar{TrustLoopback: true}}
	}})
	if err != nil {
		return keyspec.Options{}, err
	}
	return keyOptions(cfg), nil
}
