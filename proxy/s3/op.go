package s3

import (
	"net/http"
	"net/url"
	"strings"
)

// Op names an S3 operation, as in the S3 API reference ("PutObject").
type Op string

// Level says what an operation addresses.
type Level uint8

// Levels.
const (
	// LevelService addresses no bucket (ListBuckets).
	LevelService Level = iota
	// LevelBucket addresses a bucket.
	LevelBucket
	// LevelObject addresses an object key in a bucket.
	LevelObject
)

// Access says what an operation does to what it addresses. Authorization
// decides on it (package authz).
type Access uint8

// Access kinds.
const (
	// AccessNone is a CORS preflight: no data, no authentication.
	AccessNone Access = iota
	// AccessRead reads object data or an object's metadata.
	AccessRead
	// AccessList lists keys, uploads or parts, or reads bucket-level
	// information (location, configuration).
	AccessList
	// AccessWrite creates or replaces an object, or works on a multipart
	// upload.
	AccessWrite
	// AccessModify changes an existing object's metadata in place
	// (tagging, ACL, retention, legal hold, restore).
	AccessModify
	// AccessDelete deletes objects or object versions.
	AccessDelete
	// AccessCreateBucket creates a bucket.
	AccessCreateBucket
	// AccessDeleteBucket deletes an (empty) bucket.
	AccessDeleteBucket
	// AccessConfigure changes a bucket's configuration.
	AccessConfigure
)

func (a Access) String() string {
	switch a {
	case AccessNone:
		return "none"
	case AccessRead:
		return "read"
	case AccessList:
		return "list"
	case AccessWrite:
		return "write"
	case AccessModify:
		return "modify"
	case AccessDelete:
		return "delete"
	case AccessCreateBucket:
		return "create-bucket"
	case AccessDeleteBucket:
		return "delete-bucket"
	case AccessConfigure:
		return "configure"
	}
	return "unknown"
}

// Changes reports whether the access may change what the store holds.
func (a Access) Changes() bool {
	switch a {
	case AccessNone, AccessRead, AccessList:
		return false
	}
	return true
}

// Body says what an operation's request body is.
type Body uint8

// Body kinds.
const (
	// BodyNone: the request has no body.
	BodyNone Body = iota
	// BodyData: object data (PutObject, UploadPart, PostObject).
	BodyData
	// BodyDocument: an XML or JSON document (configuration, DeleteObjects,
	// CompleteMultipartUpload, Select and restore requests).
	BodyDocument
)

// Info describes an operation: how a request is recognised and what
// s3seal forwards of it.
type Info struct {
	Op     Op
	Method string
	Level  Level
	// Sub is the query parameter that selects the operation (a
	// sub-resource such as "acl", or "uploadId"); empty for none. Every
	// sub-resource parameter of a request must be accounted for by
	// exactly one operation, or the request is OpUnknown.
	Sub string
	// Access is what the operation does, for authorization.
	Access Access
	// Body is the kind of request body.
	Body Body
	// Params are the query parameters forwarded to the store besides
	// Sub; any other parameter is dropped.
	Params []string
}

// Operations s3seal distinguishes.
const (
	OpUnknown   Op = "Unknown"
	OpPreflight Op = "PreflightRequest"

	OpListBuckets Op = "ListBuckets"

	OpCreateBucket         Op = "CreateBucket"
	OpDeleteBucket         Op = "DeleteBucket"
	OpHeadBucket           Op = "HeadBucket"
	OpListObjects          Op = "ListObjects"
	OpListObjectsV2        Op = "ListObjectsV2"
	OpListObjectVersions   Op = "ListObjectVersions"
	OpListMultipartUploads Op = "ListMultipartUploads"
	OpGetBucketLocation    Op = "GetBucketLocation"
	OpDeleteObjects        Op = "DeleteObjects"
	OpPostObject           Op = "PostObject"

	OpGetObject               Op = "GetObject"
	OpHeadObject              Op = "HeadObject"
	OpPutObject               Op = "PutObject"
	OpCopyObject              Op = "CopyObject"
	OpDeleteObject            Op = "DeleteObject"
	OpGetObjectAcl            Op = "GetObjectAcl"
	OpPutObjectAcl            Op = "PutObjectAcl"
	OpGetObjectTagging        Op = "GetObjectTagging"
	OpPutObjectTagging        Op = "PutObjectTagging"
	OpDeleteObjectTagging     Op = "DeleteObjectTagging"
	OpGetObjectRetention      Op = "GetObjectRetention"
	OpPutObjectRetention      Op = "PutObjectRetention"
	OpGetObjectLegalHold      Op = "GetObjectLegalHold"
	OpPutObjectLegalHold      Op = "PutObjectLegalHold"
	OpGetObjectTorrent        Op = "GetObjectTorrent"
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

// Query parameter sets shared by several operations.
var (
	getObjectParams = []string{"versionId", "partNumber", "response-cache-control", "response-content-disposition",
		"response-content-encoding", "response-content-language", "response-content-type", "response-expires"}
	listV1Params       = []string{"delimiter", "encoding-type", "marker", "max-keys", "prefix"}
	listV2Params       = []string{"list-type", "continuation-token", "delimiter", "encoding-type", "fetch-owner", "max-keys", "prefix", "start-after"}
	listVersionsParams = []string{"delimiter", "encoding-type", "key-marker", "max-keys", "prefix", "version-id-marker"}
	listUploadsParams  = []string{"delimiter", "encoding-type", "key-marker", "max-uploads", "prefix", "upload-id-marker"}
	versionParam       = []string{"versionId"}
	idParam            = []string{"id"}
)

// ops is the table of every operation s3seal recognises. Classify finds a
// request's operation in it; what is not in it is OpUnknown, and s3seal
// refuses unknown operations in every mode.
var ops = buildOps()

func buildOps() []Info {
	t := []Info{
		{Op: OpListBuckets, Method: http.MethodGet, Level: LevelService, Access: AccessList,
			Params: []string{"max-buckets", "continuation-token", "prefix", "bucket-region"}},

		{Op: OpCreateBucket, Method: http.MethodPut, Level: LevelBucket, Access: AccessCreateBucket, Body: BodyDocument},
		{Op: OpDeleteBucket, Method: http.MethodDelete, Level: LevelBucket, Access: AccessDeleteBucket},
		{Op: OpHeadBucket, Method: http.MethodHead, Level: LevelBucket, Access: AccessList},
		{Op: OpListObjects, Method: http.MethodGet, Level: LevelBucket, Access: AccessList, Params: listV1Params},
		{Op: OpListObjectsV2, Method: http.MethodGet, Level: LevelBucket, Sub: "list-type", Access: AccessList, Params: listV2Params},
		{Op: OpListObjectVersions, Method: http.MethodGet, Level: LevelBucket, Sub: "versions", Access: AccessList, Params: listVersionsParams},
		{Op: OpListMultipartUploads, Method: http.MethodGet, Level: LevelBucket, Sub: "uploads", Access: AccessList, Params: listUploadsParams},
		{Op: OpGetBucketLocation, Method: http.MethodGet, Level: LevelBucket, Sub: "location", Access: AccessList},
		{Op: OpDeleteObjects, Method: http.MethodPost, Level: LevelBucket, Sub: "delete", Access: AccessDelete, Body: BodyDocument},
		{Op: OpPostObject, Method: http.MethodPost, Level: LevelBucket, Access: AccessWrite, Body: BodyData},

		{Op: OpGetObject, Method: http.MethodGet, Level: LevelObject, Access: AccessRead, Params: getObjectParams},
		{Op: OpHeadObject, Method: http.MethodHead, Level: LevelObject, Access: AccessRead, Params: getObjectParams},
		{Op: OpPutObject, Method: http.MethodPut, Level: LevelObject, Access: AccessWrite, Body: BodyData},
		{Op: OpCopyObject, Method: http.MethodPut, Level: LevelObject, Access: AccessWrite},
		{Op: OpDeleteObject, Method: http.MethodDelete, Level: LevelObject, Access: AccessDelete, Params: versionParam},
		{Op: OpGetObjectAcl, Method: http.MethodGet, Level: LevelObject, Sub: "acl", Access: AccessRead, Params: versionParam},
		{Op: OpPutObjectAcl, Method: http.MethodPut, Level: LevelObject, Sub: "acl", Access: AccessModify, Body: BodyDocument, Params: versionParam},
		{Op: OpGetObjectTagging, Method: http.MethodGet, Level: LevelObject, Sub: "tagging", Access: AccessRead, Params: versionParam},
		{Op: OpPutObjectTagging, Method: http.MethodPut, Level: LevelObject, Sub: "tagging", Access: AccessModify, Body: BodyDocument, Params: versionParam},
		{Op: OpDeleteObjectTagging, Method: http.MethodDelete, Level: LevelObject, Sub: "tagging", Access: AccessModify, Params: versionParam},
		{Op: OpGetObjectRetention, Method: http.MethodGet, Level: LevelObject, Sub: "retention", Access: AccessRead, Params: versionParam},
		{Op: OpPutObjectRetention, Method: http.MethodPut, Level: LevelObject, Sub: "retention", Access: AccessModify, Body: BodyDocument, Params: versionParam},
		{Op: OpGetObjectLegalHold, Method: http.MethodGet, Level: LevelObject, Sub: "legal-hold", Access: AccessRead, Params: versionParam},
		{Op: OpPutObjectLegalHold, Method: http.MethodPut, Level: LevelObject, Sub: "legal-hold", Access: AccessModify, Body: BodyDocument, Params: versionParam},
		{Op: OpGetObjectTorrent, Method: http.MethodGet, Level: LevelObject, Sub: "torrent", Access: AccessRead},
		{Op: OpGetObjectAttributes, Method: http.MethodGet, Level: LevelObject, Sub: "attributes", Access: AccessRead, Params: versionParam},
		{Op: OpCreateMultipartUpload, Method: http.MethodPost, Level: LevelObject, Sub: "uploads", Access: AccessWrite},
		{Op: OpUploadPart, Method: http.MethodPut, Level: LevelObject, Sub: "uploadId", Access: AccessWrite, Body: BodyData, Params: []string{"partNumber"}},
		{Op: OpUploadPartCopy, Method: http.MethodPut, Level: LevelObject, Sub: "uploadId", Access: AccessWrite, Params: []string{"partNumber"}},
		{Op: OpCompleteMultipartUpload, Method: http.MethodPost, Level: LevelObject, Sub: "uploadId", Access: AccessWrite, Body: BodyDocument},
		{Op: OpAbortMultipartUpload, Method: http.MethodDelete, Level: LevelObject, Sub: "uploadId", Access: AccessWrite},
		{Op: OpListParts, Method: http.MethodGet, Level: LevelObject, Sub: "uploadId", Access: AccessList, Params: []string{"max-parts", "part-number-marker"}},
		{Op: OpSelectObjectContent, Method: http.MethodPost, Level: LevelObject, Sub: "select", Access: AccessRead, Body: BodyDocument, Params: []string{"select-type"}},
		{Op: OpRestoreObject, Method: http.MethodPost, Level: LevelObject, Sub: "restore", Access: AccessModify, Body: BodyDocument, Params: versionParam},
	}
	// Bucket configuration: one sub-resource, read with GET, written with
	// PUT, removed with DELETE where S3 has that operation.
	type conf struct {
		sub              string
		get, put, del    Op
		list             Op // GET without an id lists configurations
		putBody, withIDs bool
	}
	confs := []conf{
		{sub: "accelerate", get: "GetBucketAccelerateConfiguration", put: "PutBucketAccelerateConfiguration"},
		{sub: "acl", get: "GetBucketAcl", put: "PutBucketAcl"},
		{sub: "analytics", get: "GetBucketAnalyticsConfiguration", put: "PutBucketAnalyticsConfiguration", del: "DeleteBucketAnalyticsConfiguration", list: "ListBucketAnalyticsConfigurations", withIDs: true},
		{sub: "cors", get: "GetBucketCors", put: "PutBucketCors", del: "DeleteBucketCors"},
		{sub: "encryption", get: "GetBucketEncryption", put: "PutBucketEncryption", del: "DeleteBucketEncryption"},
		{sub: "intelligent-tiering", get: "GetBucketIntelligentTieringConfiguration", put: "PutBucketIntelligentTieringConfiguration", del: "DeleteBucketIntelligentTieringConfiguration", list: "ListBucketIntelligentTieringConfigurations", withIDs: true},
		{sub: "inventory", get: "GetBucketInventoryConfiguration", put: "PutBucketInventoryConfiguration", del: "DeleteBucketInventoryConfiguration", list: "ListBucketInventoryConfigurations", withIDs: true},
		{sub: "lifecycle", get: "GetBucketLifecycleConfiguration", put: "PutBucketLifecycleConfiguration", del: "DeleteBucketLifecycle"},
		{sub: "logging", get: "GetBucketLogging", put: "PutBucketLogging"},
		{sub: "metrics", get: "GetBucketMetricsConfiguration", put: "PutBucketMetricsConfiguration", del: "DeleteBucketMetricsConfiguration", list: "ListBucketMetricsConfigurations", withIDs: true},
		{sub: "notification", get: "GetBucketNotificationConfiguration", put: "PutBucketNotificationConfiguration"},
		{sub: "object-lock", get: "GetObjectLockConfiguration", put: "PutObjectLockConfiguration"},
		{sub: "ownershipControls", get: "GetBucketOwnershipControls", put: "PutBucketOwnershipControls", del: "DeleteBucketOwnershipControls"},
		{sub: "policy", get: "GetBucketPolicy", put: "PutBucketPolicy", del: "DeleteBucketPolicy"},
		{sub: "policyStatus", get: "GetBucketPolicyStatus"},
		{sub: "publicAccessBlock", get: "GetPublicAccessBlock", put: "PutPublicAccessBlock", del: "DeletePublicAccessBlock"},
		{sub: "replication", get: "GetBucketReplication", put: "PutBucketReplication", del: "DeleteBucketReplication"},
		{sub: "requestPayment", get: "GetBucketRequestPayment", put: "PutBucketRequestPayment"},
		{sub: "tagging", get: "GetBucketTagging", put: "PutBucketTagging", del: "DeleteBucketTagging"},
		{sub: "versioning", get: "GetBucketVersioning", put: "PutBucketVersioning"},
		{sub: "website", get: "GetBucketWebsite", put: "PutBucketWebsite", del: "DeleteBucketWebsite"},
	}
	for _, c := range confs {
		var params []string
		if c.withIDs {
			params = idParam
		}
		if c.get != "" {
			t = append(t, Info{Op: c.get, Method: http.MethodGet, Level: LevelBucket, Sub: c.sub, Access: AccessList, Params: params})
		}
		if c.list != "" {
			t = append(t, Info{Op: c.list, Method: http.MethodGet, Level: LevelBucket, Sub: c.sub, Access: AccessList, Params: []string{"continuation-token"}})
		}
		if c.put != "" {
			t = append(t, Info{Op: c.put, Method: http.MethodPut, Level: LevelBucket, Sub: c.sub, Access: AccessConfigure, Body: BodyDocument, Params: params})
		}
		if c.del != "" {
			t = append(t, Info{Op: c.del, Method: http.MethodDelete, Level: LevelBucket, Sub: c.sub, Access: AccessConfigure, Params: params})
		}
	}
	return t
}

// byOp indexes ops.
var byOp = func() map[Op]*Info {
	m := make(map[Op]*Info, len(ops))
	for i := range ops {
		if _, dup := m[ops[i].Op]; dup {
			panic("s3: internal error: operation listed twice: " + string(ops[i].Op))
		}
		m[ops[i].Op] = &ops[i]
	}
	return m
}()

// opKey indexes the table by what a request shows.
type opKey struct {
	level       Level
	method, sub string
}

// byShape holds, for each level, method and sub-resource, the table rows
// that match, in table order.
var byShape = func() map[opKey][]*Info {
	m := map[opKey][]*Info{}
	for i := range ops {
		k := opKey{ops[i].Level, ops[i].Method, ops[i].Sub}
		m[k] = append(m[k], &ops[i])
	}
	return m
}()

// subresources are every query parameter that selects an operation.
var subresources = func() map[string]bool {
	m := map[string]bool{}
	for _, o := range ops {
		if o.Sub != "" {
			m[o.Sub] = true
		}
	}
	// Sub-resources S3 has that s3seal does not forward: requests naming
	// them are unknown operations, never a GetObject of the same key.
	for _, s := range []string{"metadataConfiguration", "metadataTable", "session", "renameObject",
		"abac", "journalTable", "inventoryTable", "object-lambda", "website-redirect", "requestPayment-status",
		"replication-status", "encryption-status", "tagging-status", "lambda"} {
		m[s] = true
	}
	return m
}()

// Ops returns every operation s3seal recognises (not OpUnknown or
// OpPreflight), in table order.
func Ops() []Op {
	out := make([]Op, len(ops))
	for i, o := range ops {
		out[i] = o.Op
	}
	return out
}

// Lookup returns the description of op; ok is false for OpUnknown,
// OpPreflight and names not in the table.
func Lookup(op Op) (Info, bool) {
	i, ok := byOp[op]
	if !ok {
		return Info{}, false
	}
	return *i, true
}

// HasBody reports whether the operation carries object data in its request
// body (as opposed to a document or nothing).
func (o Op) HasBody() bool {
	i, ok := byOp[o]
	return ok && i.Body == BodyData
}

// Access returns what the operation does (AccessNone for unknown ones).
func (o Op) Access() Access {
	if i, ok := byOp[o]; ok {
		return i.Access
	}
	return AccessNone
}

// Classify names the operation of a request from its method, its level
// (whether it names a bucket and a key), its query and its headers.
// Requests it does not recognise are OpUnknown: a method S3 does not use,
// a sub-resource the table does not have for that method and level, two
// sub-resources at once, or a shape S3 gives no meaning.
func Classify(method string, level Level, q url.Values, h http.Header) Op {
	if method == http.MethodOptions {
		return OpPreflight
	}
	var subs []string
	for k := range q {
		if subresources[k] {
			subs = append(subs, k)
		}
	}
	copySrc := h.Get("X-Amz-Copy-Source") != ""
	sub := ""
	switch len(subs) {
	case 0:
	case 1:
		sub = subs[0]
	case 2:
		// UploadPart and ListParts name the upload with uploadId and the
		// part with partNumber; partNumber is not a sub-resource, so two
		// sub-resources are always ambiguous.
		return OpUnknown
	default:
		return OpUnknown
	}
	switch level {
	case LevelService:
		if method == http.MethodGet && sub == "" {
			return OpListBuckets
		}
		return OpUnknown
	case LevelBucket:
		switch {
		case method == http.MethodGet && sub == "list-type":
			if q.Get("list-type") == "2" {
				return OpListObjectsV2
			}
			return OpUnknown
		case method == http.MethodPost && sub == "":
			if strings.HasPrefix(strings.ToLower(h.Get("Content-Type")), "multipart/form-data") {
				return OpPostObject
			}
			return OpUnknown
		}
		if c, ok := withIDList(method, sub, q); ok {
			return c
		}
	case LevelObject:
		switch {
		case method == http.MethodPut && sub == "uploadId":
			if !has(q, "partNumber") {
				return OpUnknown
			}
			if copySrc {
				return OpUploadPartCopy
			}
			return OpUploadPart
		case method == http.MethodPut && sub == "" && copySrc:
			return OpCopyObject
		case method == http.MethodPost && sub == "select":
			if q.Get("select-type") != "2" {
				return OpUnknown
			}
			return OpSelectObjectContent
		}
	}
	for _, o := range byShape[opKey{level, method, sub}] {
		switch o.Op {
		case OpListObjectsV2, OpPostObject, OpUploadPart, OpUploadPartCopy, OpCopyObject, OpSelectObjectContent:
			continue // decided above
		case OpPutObject:
			if copySrc {
				continue
			}
		}
		return o.Op
	}
	return OpUnknown
}

// withIDList separates, for the configurations kept per id (analytics,
// inventory, metrics, intelligent tiering), GET of one configuration (with
// an id) from listing them (without).
func withIDList(method, sub string, q url.Values) (Op, bool) {
	if method != http.MethodGet {
		return "", false
	}
	switch sub {
	case "analytics", "inventory", "metrics", "intelligent-tiering":
	default:
		return "", false
	}
	withID := has(q, "id")
	for i := range ops {
		o := &ops[i]
		if o.Level != LevelBucket || o.Method != http.MethodGet || o.Sub != sub {
			continue
		}
		isList := strings.HasPrefix(string(o.Op), "List")
		if isList != withID {
			return o.Op, true
		}
	}
	return OpUnknown, true
}

func has(q url.Values, name string) bool {
	_, ok := q[name]
	return ok
}
