// Package s3 holds s3seal's knowledge of the S3 protocol that is independent
// of HTTP plumbing: how a request addresses a bucket and key (path-style and
// virtual-hosted), which operation it is, and how S3 escapes object keys.
package s3

import (
	"net"
	"net/http"
	"strings"
)

// Target is the bucket and object key a request addresses.
type Target struct {
	// Bucket is empty for service-level requests (ListBuckets).
	Bucket string
	// Key is the object key, empty for bucket-level requests. It is the
	// decoded key exactly as the client meant it: "a//b", "./x" and
	// "a b+c" survive unchanged.
	Key string
	// VirtualHost reports that the bucket came from the Host header.
	VirtualHost bool
}

// ParseTarget finds the bucket and key of r. A Host of the form
// "<bucket>.<base>" for one of baseDomains selects virtual-hosted addressing;
// otherwise the first path segment is the bucket (path style).
func ParseTarget(r *http.Request, baseDomains []string) Target {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	path := r.URL.Path
	for _, base := range baseDomains {
		base = strings.ToLower(strings.Trim(base, "."))
		if len(host) > len(base)+1 && strings.HasSuffix(host, base) && host[len(host)-len(base)-1] == '.' {
			return Target{
				Bucket:      host[:len(host)-len(base)-1],
				Key:         strings.TrimPrefix(path, "/"),
				VirtualHost: true,
			}
		}
	}
	path = strings.TrimPrefix(path, "/")
	bucket, key, _ := strings.Cut(path, "/")
	return Target{Bucket: bucket, Key: key}
}

// EscapePath percent-encodes an S3 object path the way S3 and its SDKs sign
// it: every byte except A-Z a-z 0-9 - . _ ~ and / is encoded as %XX with
// upper-case hex. It never normalises the path.
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
