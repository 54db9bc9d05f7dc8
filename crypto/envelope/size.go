package envelope

import (
	"fmt"
	"strings"
)

// MetadataLimit is the limit on an object's user metadata that s3seal
// enforces: 2048 bytes, counting for each x-amz-meta-* header its full name
// and its value. AWS documents 2 KB counting names without the prefix;
// MinIO counts the full header names; s3seal uses the stricter count so a
// request that passes works on both.
const MetadataLimit = 2048

const userMetaPrefix = "x-amz-meta-"

// UserMetadataSize returns the size of user metadata as counted against
// MetadataLimit. Keys are metadata names without the x-amz-meta- prefix
// (with the prefix, they are counted as they are).
func UserMetadataSize(user map[string]string) int {
	n := 0
	for k, v := range user {
		if !strings.HasPrefix(strings.ToLower(k), userMetaPrefix) {
			n += len(userMetaPrefix)
		}
		n += len(k) + len(v)
	}
	return n
}

// FieldSize returns the bytes the header adds to the user metadata:
// x-amz-meta-s3seal plus its value. It is at most MaxFieldSize.
func (h Header) FieldSize() int {
	return len(userMetaPrefix) + len(MetadataKey) + b64.EncodedLen(len(h))
}

// MetadataTooLargeError reports that a request's own user metadata plus
// s3seal's would exceed MetadataLimit. A proxy answers it with S3's
// MetadataTooLarge error (HTTP 400) and this message, which is written for
// the client (it starts with S3's own wording, not a package prefix).
type MetadataTooLargeError struct {
	UserBytes   int // the client's x-amz-meta-* headers
	S3sealBytes int // x-amz-meta-s3seal
	Limit       int
}

func (e *MetadataTooLargeError) Error() string {
	return fmt.Sprintf("Your metadata headers exceed the maximum allowed metadata size: "+
		"the request's x-amz-meta-* headers take %d bytes and s3seal's encryption metadata (x-amz-meta-s3seal) %d, "+
		"over the %d-byte limit; reduce the x-amz-meta-* headers to at most %d bytes (header names included)",
		e.UserBytes, e.S3sealBytes, e.Limit, e.Limit-e.S3sealBytes)
}

// CheckMetadataSize returns a *MetadataTooLargeError if user metadata
// (names without the x-amz-meta- prefix, excluding s3seal's own) plus h
// would exceed MetadataLimit.
func CheckMetadataSize(user map[string]string, h Header) error {
	u, s := UserMetadataSize(user), h.FieldSize()
	if u+s > MetadataLimit {
		return &MetadataTooLargeError{UserBytes: u, S3sealBytes: s, Limit: MetadataLimit}
	}
	return nil
}

// IsReservedMetadata reports whether a user-metadata name (with or without
// the x-amz-meta- prefix) is s3seal's own, which clients must not set.
func IsReservedMetadata(name string) bool {
	name = strings.ToLower(name)
	name = strings.TrimPrefix(name, userMetaPrefix)
	return name == MetadataKey
}

// IsReservedTag reports whether an object tag key is s3seal's own
// (PartSetTag), which clients must neither set nor remove.
func IsReservedTag(key string) bool { return key == PartSetTag }
