package s3

import (
	"net/http"

	"github.com/s3seal/s3seal/proxy/s3err"
)

// Request headers that reach the store. s3seal forwards the S3 request
// headers in these lists and nothing else: a header some store interprets
// beyond S3 (MinIO's x-minio-*, its Snowball auto-extract metadata) must
// never reach it with s3seal's credentials.

// forwardHeaders are the standard HTTP headers S3 reads.
var forwardHeaders = map[string]bool{
	"Cache-Control": true, "Content-Disposition": true, "Content-Encoding": true,
	"Content-Language": true, "Content-Md5": true, "Content-Type": true, "Expires": true,
	"If-Match": true, "If-None-Match": true, "If-Modified-Since": true, "If-Unmodified-Since": true,
	"Range": true,
	// CORS: stores answer with Access-Control-* headers for the origin.
	"Origin": true, "Access-Control-Request-Method": true, "Access-Control-Request-Headers": true,
}

// amzHeaders are the x-amz-* request headers of the S3 API (besides
// x-amz-meta-*, x-amz-checksum-* and x-amz-grant-*, which are families).
var amzHeaders = map[string]bool{
	"X-Amz-Acl": true, "X-Amz-Bucket-Object-Lock-Enabled": true, "X-Amz-Bypass-Governance-Retention": true,
	"X-Amz-Checksum-Algorithm": true, "X-Amz-Checksum-Type": true, "X-Amz-Confirm-Remove-Self-Bucket-Access": true,
	"X-Amz-Copy-Source": true, "X-Amz-Copy-Source-If-Match": true, "X-Amz-Copy-Source-If-Modified-Since": true,
	"X-Amz-Copy-Source-If-None-Match": true, "X-Amz-Copy-Source-If-Unmodified-Since": true, "X-Amz-Copy-Source-Range": true,
	"X-Amz-Copy-Source-Server-Side-Encryption-Customer-Algorithm": true,
	"X-Amz-Copy-Source-Server-Side-Encryption-Customer-Key":       true,
	"X-Amz-Copy-Source-Server-Side-Encryption-Customer-Key-Md5":   true,
	"X-Amz-Expected-Bucket-Owner":                                 true, "X-Amz-Source-Expected-Bucket-Owner": true,
	"X-Amz-Max-Parts": true, "X-Amz-Part-Number-Marker": true, "X-Amz-Metadata-Directive": true,
	"X-Amz-Mfa": true, "X-Amz-Mp-Object-Size": true, "X-Amz-Object-Attributes": true,
	"X-Amz-Object-Lock-Legal-Hold": true, "X-Amz-Object-Lock-Mode": true, "X-Amz-Object-Lock-Retain-Until-Date": true,
	"X-Amz-Object-Lock-Token": true, "X-Amz-Object-Ownership": true, "X-Amz-Optional-Object-Attributes": true,
	"X-Amz-Request-Payer": true, "X-Amz-Sdk-Checksum-Algorithm": true,
	"X-Amz-Server-Side-Encryption": true, "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id": true,
	"X-Amz-Server-Side-Encryption-Bucket-Key-Enabled": true, "X-Amz-Server-Side-Encryption-Context": true,
	"X-Amz-Server-Side-Encryption-Customer-Algorithm": true, "X-Amz-Server-Side-Encryption-Customer-Key": true,
	"X-Amz-Server-Side-Encryption-Customer-Key-Md5": true,
	"X-Amz-Skip-Destination-Validation":             true, "X-Amz-Storage-Class": true, "X-Amz-Tagging": true,
	"X-Amz-Tagging-Directive": true, "X-Amz-Website-Redirect-Location": true, "X-Amz-Write-Offset-Bytes": true,
	"X-Amz-If-Match-Last-Modified-Time": true, "X-Amz-If-Match-Size": true, "X-Amz-If-Match-Initiated-Time": true,
	"X-Amz-Restore-Output-Path": true, "X-Amz-Transition-Default-Minimum-Object-Size": true,
	// Consumed by s3seal's verification and re-signing (droppedHeaders).
	"X-Amz-Content-Sha256": true, "X-Amz-Date": true, "X-Amz-Security-Token": true,
	"X-Amz-Decoded-Content-Length": true, "X-Amz-Trailer": true,
	// Sent by SDKs, meaningless to the store: dropped.
	"X-Amz-User-Agent": true, "X-Amz-Request-Id": true, "X-Amz-Id-2": true,
}

// droppedHeaders are S3 headers that are not forwarded as the client sent
// them: the client's authentication and aws-chunked framing, which s3seal
// verifies and replaces with its own (the upstream signer sets
// X-Amz-Date, X-Amz-Content-Sha256 and, for trailers, X-Amz-Trailer
// itself), and SDK telemetry.
var droppedHeaders = map[string]bool{
	"X-Amz-Content-Sha256": true, "X-Amz-Date": true, "X-Amz-Security-Token": true,
	"X-Amz-Decoded-Content-Length": true, "X-Amz-Trailer": true,
	"X-Amz-User-Agent": true, "X-Amz-Request-Id": true, "X-Amz-Id-2": true,
}

// storeMetadataPrefixes are user-metadata names (after x-amz-meta-) that
// stores interpret: MinIO unpacks a tar PUT with
// x-amz-meta-snowball-auto-extract into many objects, with
// x-amz-meta-minio-snowball-* settings.
var storeMetadataPrefixes = []string{"snowball-", "minio-", "x-minio-"}

// CheckHeaders refuses a request whose headers a store would interpret
// beyond S3: store-specific headers (x-minio-*), store-interpreted user
// metadata (Snowball extraction), and x-amz-* headers that are not part of
// the S3 API s3seal knows (it cannot tell what a store would make of
// them, so it does not guess).
func CheckHeaders(h http.Header) error {
	for k := range h {
		if len(k) < 2 || k[0]|0x20 != 'x' || k[1] != '-' {
			continue // not an x- header: dropped or standard
		}
		switch {
		case hasFoldPrefix(k, "x-minio-"):
			return headerError(k, "it is specific to MinIO, and s3seal forwards only S3 headers")
		case hasFoldPrefix(k, "x-amz-meta-"):
			name := k[len("x-amz-meta-"):]
			for _, p := range storeMetadataPrefixes {
				if hasFoldPrefix(name, p) {
					return headerError(k, "stores interpret this metadata name (MinIO unpacks archives with it), so s3seal refuses it")
				}
			}
		case hasFoldPrefix(k, "x-amz-checksum-"), hasFoldPrefix(k, "x-amz-grant-"):
		case hasFoldPrefix(k, "x-amz-"):
			if !amzHeaders[http.CanonicalHeaderKey(k)] {
				return s3err.NotImplemented.WithMessage("s3seal does not forward the header %s: it is not an S3 request header s3seal knows, and s3seal does not guess what a store would do with it.", clip(k)).
					WithField("Header", clip(k))
			}
		}
	}
	return nil
}

// ForwardHeader reports whether a client request header named k (as Go
// canonicalises it) may reach the store, once CheckHeaders passed.
func ForwardHeader(k string) bool {
	if forwardHeaders[k] {
		return true
	}
	switch {
	case hasFoldPrefix(k, "x-amz-meta-"), hasFoldPrefix(k, "x-amz-checksum-"), hasFoldPrefix(k, "x-amz-grant-"):
		return true
	case hasFoldPrefix(k, "x-amz-"):
		return amzHeaders[k] && !droppedHeaders[k]
	}
	return false
}

// hasFoldPrefix is strings.HasPrefix ignoring ASCII case, without
// allocating (prefix is lower case).
func hasFoldPrefix(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

func headerError(name, why string) *s3err.Error {
	return s3err.InvalidArgument.WithMessage("s3seal refuses the header %s: %s.", clip(name), why).WithField("ArgumentName", clip(name))
}

func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}
