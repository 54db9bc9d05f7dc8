// Package s3 holds s3seal's knowledge of the S3 protocol that is independent
// of HTTP plumbing: every operation of the S3 API and how a request is
// recognised as one (op.go), the canonical form of a request with every
// bucket and object key it touches (request.go), which bucket names and keys
// s3seal accepts (names.go), the request bodies it must read before
// authorizing (DeleteObjects, CompleteMultipartUpload), how S3 escapes object
// keys, and rewriting the XML documents stores answer with.
package s3

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// EscapePath percent-encodes an S3 object path the way S3 and its SDKs sign
// it: every byte except A-Z a-z 0-9 - . _ ~ and / is encoded as %XX with
// upper-case hex. It never normalises the path. It is the one S3 path
// escaper of s3seal.
func EscapePath(p string) string {
	n := 0
	for i := 0; i < len(p); i++ {
		if !unreservedPath(p[i]) {
			n++
		}
	}
	if n == 0 {
		return p
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(p)+2*n)
	for i := 0; i < len(p); i++ {
		c := p[i]
		if unreservedPath(c) {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hex[c>>4], hex[c&15])
	}
	return string(b)
}

func unreservedPath(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~' || c == '/'
}

// CopySourceHeader is the x-amz-copy-source value naming o, in the one
// canonical encoding s3seal sends: "bucket/escaped-key[?versionId=v]".
func (o Object) CopySourceHeader() string {
	v := o.Bucket + "/" + EscapePath(o.Key)
	if o.VersionID != "" {
		v += "?versionId=" + url.QueryEscape(o.VersionID)
	}
	return v
}

// ParseCopySource parses an x-amz-copy-source value: "bucket/key" or
// "/bucket/key", URL-encoded as S3 expects (some clients encode the "/"
// after the bucket too), optionally followed by "?versionId=…". As stores
// do, the query is split off first and the rest is decoded before the
// bucket is split from the key. It is the one copy-source parser of
// s3seal; the handler sends the store the canonical form
// (Object.CopySourceHeader) of what it parsed, never the client's text, so
// the store copies exactly what was authorized.
func ParseCopySource(v string) (Object, error) {
	raw, rawQuery, hasQuery := strings.Cut(v, "?")
	path, err := url.PathUnescape(raw)
	if err != nil || !utf8.ValidString(path) {
		return Object{}, errInvalidArgument("Invalid copy source encoding", "x-amz-copy-source", v)
	}
	path = strings.TrimPrefix(path, "/")
	if strings.HasPrefix(path, "arn:") {
		return Object{}, errNotImplemented("s3seal does not accept access point ARNs as copy sources; name the source bucket and key.")
	}
	bucket, key, _ := strings.Cut(path, "/")
	if bucket == "" || !copySourceBucketChars(bucket) {
		return Object{}, ErrCopySourceBucket(v)
	}
	if key == "" {
		return Object{}, ErrCopySourceKey(key)
	}
	o := Object{Bucket: bucket, Key: key}
	if hasQuery {
		qv, err := url.ParseQuery(rawQuery)
		if err != nil {
			return Object{}, errInvalidArgument("Invalid copy source version id.", "x-amz-copy-source", v)
		}
		for name := range qv {
			if name != "versionId" {
				return Object{}, errInvalidArgument("A copy source may name only a versionId after '?'.", "x-amz-copy-source", v)
			}
		}
		if vs := qv["versionId"]; len(vs) != 1 || vs[0] == "" {
			return Object{}, errInvalidArgument("Invalid copy source version id.", "x-amz-copy-source", v)
		}
		o.VersionID = qv.Get("versionId")
	}
	return o, nil
}

// copySourceBucketChars reports whether a copy source's bucket holds only
// characters a bucket name may have (CheckBucket checks the rest).
func copySourceBucketChars(b string) bool {
	for i := 0; i < len(b); i++ {
		if c := b[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ErrCopySourceBucket is the error for a copy source whose bucket is not a
// valid bucket name; v is the x-amz-copy-source value.
func ErrCopySourceBucket(v string) error {
	return errInvalidArgument("Invalid copy source bucket name", "x-amz-copy-source", v)
}

// ErrCopySourceKey is the error for a copy source whose key is empty or
// one the store could read as another key.
func ErrCopySourceKey(key string) error {
	return errInvalidArgument("Invalid copy source object key", "x-amz-copy-source", key)
}
