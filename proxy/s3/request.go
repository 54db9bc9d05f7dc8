package s3

import (
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/s3seal/s3seal/proxy/s3err"
)

// Request is what s3seal knows about a client request once it has been
// parsed: the operation and everything it touches. It is parsed once, at
// the edge, and every later stage (authorization, the modes, forwarding)
// reads it instead of the raw request, so that what is authorized is what
// is sent.
type Request struct {
	Op   Op
	Info Info
	// Bucket is empty for service-level requests.
	Bucket string
	// Key is the target object key, empty for bucket-level requests. It
	// is the decoded key exactly as the client meant it.
	Key string
	// VirtualHost reports that the bucket came from the Host header.
	VirtualHost bool
	// CopySource is the x-amz-copy-source of CopyObject and
	// UploadPartCopy; nil otherwise.
	CopySource *Object
	// Prefix is a listing's prefix parameter (ListObjects, ListObjectsV2,
	// ListObjectVersions, ListMultipartUploads).
	Prefix string
	// Delete is the body of a DeleteObjects request, filled in by the
	// handler with ParseDelete before authorization.
	Delete *DeleteRequest
	// Complete lists the parts of a CompleteMultipartUpload request,
	// filled in by the handler with ParseComplete before authorization.
	Complete []CompletePart
	// Query holds the query parameters forwarded to the store: the
	// operation's sub-resource and parameters, nothing else.
	Query url.Values
}

// Object names one object (version) a request touches.
type Object struct {
	Bucket, Key string
	// VersionID is empty for the current version.
	VersionID string
}

// Keys returns every object key a request touches, with the access each
// needs: the target, the copy source (read), each DeleteObjects key
// (delete). Listings and bucket-level requests touch no key; their prefix
// is Prefix.
func (r *Request) Keys() []Touch {
	var out []Touch
	if r.Info.Level == LevelObject {
		out = append(out, Touch{Object: Object{Bucket: r.Bucket, Key: r.Key, VersionID: r.Query.Get("versionId")}, Access: r.Info.Access})
	}
	if r.CopySource != nil {
		out = append(out, Touch{Object: *r.CopySource, Access: AccessRead, Source: true})
	}
	if r.Delete != nil {
		for _, o := range r.Delete.Objects {
			out = append(out, Touch{Object: Object{Bucket: r.Bucket, Key: o.Key, VersionID: o.VersionID}, Access: AccessDelete})
		}
	}
	return out
}

// Touch is one object a request touches and what it does to it.
type Touch struct {
	Object
	Access Access
	// Source marks a copy source.
	Source bool
}

// ParseOptions configures ParseRequest.
type ParseOptions struct {
	// BaseDomains enable virtual-hosted addressing: a Host of
	// "<bucket>.<base>" names the bucket.
	BaseDomains []string
	// Keys says which object keys are accepted.
	Keys KeyRules
	// ReservedBuckets are bucket names the store gives a meaning of its
	// own (MinIO's "minio"); requests naming them are refused.
	ReservedBuckets []string
}

// ParseRequest parses r into a Request. It refuses (with an S3 error to
// send) what cannot be parsed unambiguously: a bucket name S3 would not
// accept or the store reserves, an object key or copy source the store
// could read differently (KeyRules), a malformed copy source. Unknown
// operations are not an error here: Op is OpUnknown and the caller
// refuses them.
func ParseRequest(r *http.Request, o ParseOptions) (*Request, error) {
	q := r.URL.Query()
	t := parseTarget(r, o.BaseDomains)
	level := LevelObject
	switch {
	case t.Bucket == "":
		level = LevelService
	case t.Key == "" && !t.keyPresent:
		level = LevelBucket
	}
	req := &Request{Bucket: t.Bucket, Key: t.Key, VirtualHost: t.VirtualHost}
	req.Op = Classify(r.Method, level, q, r.Header)
	if info, ok := Lookup(req.Op); ok {
		req.Info = info
	} else {
		req.Info = Info{Op: req.Op, Method: r.Method, Level: level}
	}
	if level != LevelService {
		if err := CheckBucket(t.Bucket, o.ReservedBuckets); err != nil {
			return req, err
		}
	}
	if level == LevelObject {
		if err := o.Keys.Check(t.Key); err != nil {
			return req, err
		}
	}
	req.Query = forwardQuery(req.Info, q)
	switch req.Op {
	case OpListObjects, OpListObjectsV2, OpListObjectVersions, OpListMultipartUploads:
		req.Prefix = q.Get("prefix")
		if err := o.Keys.CheckPrefix(req.Prefix); err != nil {
			return req, err
		}
	case OpCopyObject, OpUploadPartCopy:
		src, err := ParseCopySource(r.Header.Get("X-Amz-Copy-Source"))
		if err != nil {
			return req, err
		}
		if err := CheckBucket(src.Bucket, o.ReservedBuckets); err != nil {
			if e, ok := s3err.As(err); ok && e.Code == "InvalidBucketName" {
				return req, ErrCopySourceBucket(r.Header.Get("X-Amz-Copy-Source"))
			}
			return req, err
		}
		if err := o.Keys.Check(src.Key); err != nil {
			if e, ok := s3err.As(err); ok && e.Code == "InvalidArgument" {
				// The rule that refused it is in the log, as the cause.
				return req, s3err.InvalidArgument.WithMessage("Invalid copy source object key").
					WithField("ArgumentName", "x-amz-copy-source").WithField("ArgumentValue", src.Key).WithCause(err)
			}
			return req, err
		}
		req.CopySource = &src
	}
	return req, nil
}

// forwardQuery keeps the query parameters of info's operation.
func forwardQuery(info Info, q url.Values) url.Values {
	out := url.Values{}
	if info.Sub != "" {
		if v, ok := q[info.Sub]; ok {
			out[info.Sub] = v
		}
	}
	for _, p := range info.Params {
		if v, ok := q[p]; ok {
			out[p] = v
		}
	}
	return out
}

// target is the bucket and key a request addresses.
type target struct {
	Bucket, Key string
	VirtualHost bool
	// keyPresent reports a path with something after the bucket, even an
	// empty key ("/bucket/" addresses the bucket; "/bucket//x" the key
	// "/x").
	keyPresent bool
}

// parseTarget finds the bucket and key of r. A Host of the form
// "<bucket>.<base>" for one of baseDomains selects virtual-hosted
// addressing; otherwise the first path segment is the bucket (path style).
func parseTarget(r *http.Request, baseDomains []string) target {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	path := r.URL.Path
	for _, base := range baseDomains {
		base = strings.ToLower(strings.Trim(base, "."))
		if len(host) > len(base)+1 && strings.HasSuffix(host, base) && host[len(host)-len(base)-1] == '.' {
			key := strings.TrimPrefix(path, "/")
			return target{Bucket: host[:len(host)-len(base)-1], Key: key, VirtualHost: true, keyPresent: key != ""}
		}
	}
	path = strings.TrimPrefix(path, "/")
	bucket, key, _ := strings.Cut(path, "/")
	return target{Bucket: bucket, Key: key, keyPresent: key != ""}
}

// VirtualHostBucket returns the bucket a request names in its Host header
// ("<bucket>.<base>" for one of baseDomains), or "" for a path-style
// request. SigV2 puts that bucket in the resource it signs.
func VirtualHostBucket(r *http.Request, baseDomains []string) string {
	if t := parseTarget(r, baseDomains); t.VirtualHost {
		return t.Bucket
	}
	return ""
}
