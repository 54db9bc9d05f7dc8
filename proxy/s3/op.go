package s3

import (
	"net/http"
	"net/url"
	"strings"
)

// Op names an S3 operation, as in the S3 API reference ("PutObject").
type Op string

// Operations s3seal distinguishes. Bucket sub-resources that s3seal treats
// alike are reported as GetBucketConfig/PutBucketConfig/DeleteBucketConfig
// with the sub-resource in Classification.Subresource.
const (
	OpUnknown                 Op = "Unknown"
	OpPreflight               Op = "PreflightRequest"
	OpListBuckets             Op = "ListBuckets"
	OpCreateBucket            Op = "CreateBucket"
	OpDeleteBucket            Op = "DeleteBucket"
	OpHeadBucket              Op = "HeadBucket"
	OpListObjects             Op = "ListObjects"
	OpListObjectsV2           Op = "ListObjectsV2"
	OpListObjectVersions      Op = "ListObjectVersions"
	OpListMultipartUploads    Op = "ListMultipartUploads"
	OpGetBucketLocation       Op = "GetBucketLocation"
	OpGetBucketConfig         Op = "GetBucketConfig"
	OpPutBucketConfig         Op = "PutBucketConfig"
	OpDeleteBucketConfig      Op = "DeleteBucketConfig"
	OpDeleteObjects           Op = "DeleteObjects"
	OpPostObject              Op = "PostObject"
	OpGetObject               Op = "GetObject"
	OpHeadObject              Op = "HeadObject"
	OpPutObject               Op = "PutObject"
	OpCopyObject              Op = "CopyObject"
	OpDeleteObject            Op = "DeleteObject"
	OpGetObjectConfig         Op = "GetObjectConfig"
	OpPutObjectConfig         Op = "PutObjectConfig"
	OpDeleteObjectConfig      Op = "DeleteObjectConfig"
	OpGetObjectAttributes     Op = "GetObjectAttributes"
	OpCreateMultipartUpload   Op = "CreateMultipartUpload"
	OpUploadPart              Op = "UploadPart"
	OpUploadPartCopy          Op = "UploadPartCopy"
	OpCompleteMultipartUpload Op = "CompleteMultipartUpload"
	OpAbortMultipartUpload    Op = "AbortMultipartUpload"
	OpListParts               Op = "ListParts"
	OpSelectObjectContent     Op = "SelectObjectContent"
	OpRestoreObject           Op = "RestoreObject"
)

// Classification is the result of [Classify].
type Classification struct {
	Op Op
	// Subresource is the configuration sub-resource for the *Config
	// operations ("tagging", "acl", "versioning", ...).
	Subresource string
}

// bucketSubresources are the query names that turn a bucket request into a
// configuration request.
var bucketSubresources = []string{
	"accelerate", "acl", "analytics", "cors", "encryption", "intelligent-tiering",
	"inventory", "lifecycle", "logging", "metadataConfiguration", "metadataTable",
	"metrics", "notification", "object-lock", "ownershipControls", "policy",
	"policyStatus", "publicAccessBlock", "replication", "requestPayment",
	"tagging", "versioning", "website",
}

// objectSubresources are the query names that turn an object request into an
// object configuration request.
var objectSubresources = []string{"acl", "legal-hold", "retention", "tagging", "torrent"}

func has(q url.Values, name string) bool {
	_, ok := q[name]
	return ok
}

func firstOf(q url.Values, names []string) string {
	for _, n := range names {
		if has(q, n) {
			return n
		}
	}
	return ""
}

// Classify names the operation of a request from its method, target, query
// and headers. Requests it does not recognise are OpUnknown; callers that
// must not pass unknown operations through can refuse those.
func Classify(method string, t Target, q url.Values, h http.Header) Classification {
	c := func(op Op) Classification { return Classification{Op: op} }
	if method == http.MethodOptions {
		return c(OpPreflight)
	}
	if t.Bucket == "" {
		if method == http.MethodGet {
			return c(OpListBuckets)
		}
		return c(OpUnknown)
	}
	if t.Key == "" {
		sub := firstOf(q, bucketSubresources)
		switch method {
		case http.MethodGet:
			switch {
			case has(q, "uploads"):
				return c(OpListMultipartUploads)
			case has(q, "versions"):
				return c(OpListObjectVersions)
			case has(q, "location"):
				return c(OpGetBucketLocation)
			case sub != "":
				return Classification{OpGetBucketConfig, sub}
			case q.Get("list-type") == "2":
				return c(OpListObjectsV2)
			case onlyListParams(q):
				return c(OpListObjects)
			}
		case http.MethodHead:
			return c(OpHeadBucket)
		case http.MethodPut:
			if sub != "" {
				return Classification{OpPutBucketConfig, sub}
			}
			if onlyIgnorable(q) {
				return c(OpCreateBucket)
			}
		case http.MethodDelete:
			if sub != "" {
				return Classification{OpDeleteBucketConfig, sub}
			}
			if onlyIgnorable(q) {
				return c(OpDeleteBucket)
			}
		case http.MethodPost:
			if has(q, "delete") {
				return c(OpDeleteObjects)
			}
			if strings.HasPrefix(strings.ToLower(h.Get("Content-Type")), "multipart/form-data") {
				return c(OpPostObject)
			}
		}
		return c(OpUnknown)
	}
	sub := firstOf(q, objectSubresources)
	switch method {
	case http.MethodGet:
		switch {
		case has(q, "uploadId"):
			return c(OpListParts)
		case has(q, "attributes"):
			return c(OpGetObjectAttributes)
		case sub != "":
			return Classification{OpGetObjectConfig, sub}
		}
		return c(OpGetObject)
	case http.MethodHead:
		return c(OpHeadObject)
	case http.MethodPut:
		copySrc := h.Get("X-Amz-Copy-Source") != ""
		switch {
		case has(q, "partNumber") && has(q, "uploadId"):
			if copySrc {
				return c(OpUploadPartCopy)
			}
			return c(OpUploadPart)
		case sub != "":
			return Classification{OpPutObjectConfig, sub}
		case copySrc:
			return c(OpCopyObject)
		case onlyVersionParam(q):
			return c(OpPutObject)
		}
	case http.MethodPost:
		switch {
		case has(q, "uploads"):
			return c(OpCreateMultipartUpload)
		case has(q, "uploadId"):
			return c(OpCompleteMultipartUpload)
		case has(q, "select"):
			return c(OpSelectObjectContent)
		case has(q, "restore"):
			return c(OpRestoreObject)
		}
	case http.MethodDelete:
		switch {
		case has(q, "uploadId"):
			return c(OpAbortMultipartUpload)
		case sub != "":
			return Classification{OpDeleteObjectConfig, sub}
		}
		return c(OpDeleteObject)
	}
	return c(OpUnknown)
}

var listParams = map[string]bool{
	"delimiter": true, "encoding-type": true, "marker": true, "max-keys": true,
	"prefix": true, "continuation-token": true, "fetch-owner": true,
	"start-after": true, "list-type": true, "allow-unordered": true,
}

// ignorable reports query parameters that do not select an operation: the
// SDKs' x-id hint and presigned-URL authentication parameters.
func ignorable(k string) bool {
	return k == "x-id" || strings.HasPrefix(k, "X-Amz-") || strings.HasPrefix(k, "x-amz-")
}

func onlyIgnorable(q url.Values) bool {
	for k := range q {
		if !ignorable(k) {
			return false
		}
	}
	return true
}

func onlyListParams(q url.Values) bool {
	for k := range q {
		if !listParams[k] && !ignorable(k) {
			return false
		}
	}
	return true
}

func onlyVersionParam(q url.Values) bool {
	for k := range q {
		if k != "versionId" && !ignorable(k) {
			return false
		}
	}
	return true
}

// HasBody reports whether the operation carries object data in its request
// body (as opposed to an XML document or nothing).
func (o Op) HasBody() bool {
	return o == OpPutObject || o == OpUploadPart || o == OpPostObject
}
