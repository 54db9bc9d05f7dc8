package s3

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	copyH := http.Header{"X-Amz-Copy-Source": {"/b/src"}}
	form := http.Header{"Content-Type": {"multipart/form-data; boundary=x"}}
	S, B, O := LevelService, LevelBucket, LevelObject
	cases := []struct {
		method string
		level  Level
		query  string
		h      http.Header
		want   Op
	}{
		{"GET", S, "", nil, OpListBuckets},
		{"GET", S, "max-buckets=10", nil, OpListBuckets},
		{"POST", S, "", nil, OpUnknown},
		{"PUT", S, "", nil, OpUnknown},
		{"GET", S, "acl", nil, OpUnknown},
		{"PUT", B, "", nil, OpCreateBucket},
		{"PUT", B, "x-id=CreateBucket", nil, OpCreateBucket},
		{"DELETE", B, "", nil, OpDeleteBucket},
		{"HEAD", B, "", nil, OpHeadBucket},
		{"GET", B, "", nil, OpListObjects},
		{"GET", B, "prefix=a&delimiter=%2F&marker=m", nil, OpListObjects},
		{"GET", B, "metadata=true", nil, OpListObjects},
		{"GET", B, "list-type=2&prefix=a", nil, OpListObjectsV2},
		{"GET", B, "list-type=3", nil, OpUnknown},
		{"GET", B, "versions&prefix=a", nil, OpListObjectVersions},
		{"GET", B, "uploads", nil, OpListMultipartUploads},
		{"GET", B, "location", nil, OpGetBucketLocation},
		{"GET", B, "versioning", nil, "GetBucketVersioning"},
		{"PUT", B, "versioning", nil, "PutBucketVersioning"},
		{"PUT", B, "encryption", nil, "PutBucketEncryption"},
		{"DELETE", B, "cors", nil, "DeleteBucketCors"},
		{"PUT", B, "policy", nil, "PutBucketPolicy"},
		{"DELETE", B, "lifecycle", nil, "DeleteBucketLifecycle"},
		{"GET", B, "analytics", nil, "ListBucketAnalyticsConfigurations"},
		{"GET", B, "analytics&id=a", nil, "GetBucketAnalyticsConfiguration"},
		{"GET", B, "inventory", nil, "ListBucketInventoryConfigurations"},
		{"DELETE", B, "versioning", nil, OpUnknown},
		{"GET", B, "acl&policy", nil, OpUnknown},
		{"POST", B, "delete", nil, OpDeleteObjects},
		{"POST", B, "", form, OpPostObject},
		{"POST", B, "", nil, OpUnknown},
		{"GET", B, "metadataTable", nil, OpUnknown},
		{"PATCH", B, "", nil, OpUnknown},
		{"GET", O, "", nil, OpGetObject},
		{"GET", O, "x-id=GetObject&versionId=3", nil, OpGetObject},
		{"GET", O, "partNumber=2", nil, OpGetObject},
		{"HEAD", O, "", nil, OpHeadObject},
		{"PUT", O, "", nil, OpPutObject},
		{"PUT", O, "x-id=PutObject", nil, OpPutObject},
		{"PUT", O, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=x", nil, OpPutObject},
		{"PUT", O, "", copyH, OpCopyObject},
		{"PUT", O, "partNumber=1&uploadId=u", nil, OpUploadPart},
		{"PUT", O, "partNumber=1&uploadId=u", copyH, OpUploadPartCopy},
		{"PUT", O, "uploadId=u", nil, OpUnknown},
		{"PUT", O, "tagging", nil, OpPutObjectTagging},
		{"PUT", O, "tagging", copyH, OpPutObjectTagging},
		{"GET", O, "acl", nil, OpGetObjectAcl},
		{"PUT", O, "acl", nil, OpPutObjectAcl},
		{"PUT", O, "retention", nil, OpPutObjectRetention},
		{"GET", O, "legal-hold", nil, OpGetObjectLegalHold},
		{"GET", O, "attributes", nil, OpGetObjectAttributes},
		{"GET", O, "uploadId=u", nil, OpListParts},
		{"POST", O, "uploads", nil, OpCreateMultipartUpload},
		{"POST", O, "uploadId=u", nil, OpCompleteMultipartUpload},
		{"POST", O, "select&select-type=2", nil, OpSelectObjectContent},
		{"POST", O, "select", nil, OpUnknown},
		{"POST", O, "restore", nil, OpRestoreObject},
		{"POST", O, "", nil, OpUnknown},
		{"DELETE", O, "", nil, OpDeleteObject},
		{"DELETE", O, "uploadId=u", nil, OpAbortMultipartUpload},
		{"DELETE", O, "tagging", nil, OpDeleteObjectTagging},
		{"PUT", O, "unknownsub", nil, OpPutObject},
		{"PUT", O, "renameObject", nil, OpUnknown},
		{"GET", O, "tagging&acl", nil, OpUnknown},
		{"GET", O, "policy", nil, OpUnknown},
		{"OPTIONS", O, "", nil, OpPreflight},
		{"PATCH", O, "", nil, OpUnknown},
		{"PROPFIND", O, "", nil, OpUnknown},
	}
	for _, c := range cases {
		q, err := url.ParseQuery(c.query)
		if err != nil {
			t.Fatal(err)
		}
		if got := Classify(c.method, c.level, q, c.h); got != c.want {
			t.Errorf("%s level %d ?%s = %v, want %v", c.method, c.level, c.query, got, c.want)
		}
	}
}

// TestOpsTable checks the table itself: every operation is reachable by
// Classify from its own description, and no two rows claim one request.
func TestOpsTable(t *testing.T) {
	for _, op := range Ops() {
		info, ok := Lookup(op)
		if !ok {
			t.Fatalf("Lookup(%s) failed", op)
		}
		q := url.Values{}
		h := http.Header{}
		if info.Sub != "" {
			q.Set(info.Sub, "")
		}
		switch op {
		case OpListObjectsV2:
			q.Set("list-type", "2")
		case OpUploadPart:
			q.Set("partNumber", "1")
		case OpUploadPartCopy:
			q.Set("partNumber", "1")
			h.Set("X-Amz-Copy-Source", "b/k")
		case OpCopyObject:
			h.Set("X-Amz-Copy-Source", "b/k")
		case OpPostObject:
			h.Set("Content-Type", "multipart/form-data; boundary=x")
		case OpSelectObjectContent:
			q.Set("select-type", "2")
		}
		if strings.HasPrefix(string(op), "Get") && contains(info.Params, "id") {
			q.Set("id", "x")
		}
		if got := Classify(info.Method, info.Level, q, h); got != op {
			t.Errorf("%s (%s level %d ?%s) classifies as %s", op, info.Method, info.Level, q.Encode(), got)
		}
		if info.Access == AccessNone {
			t.Errorf("%s has no access kind", op)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestParseRequest(t *testing.T) {
	base := []string{"s3.example.test", "s3seal.local."}
	cases := []struct {
		method, host, path, query string
		hdr                       http.Header
		bucket, key               string
		op                        Op
		vhost                     bool
		errCode                   string
	}{
		{method: "GET", host: "127.0.0.1:8443", path: "/", op: OpListBuckets},
		{method: "GET", host: "127.0.0.1:8443", path: "/bkt", bucket: "bkt", op: OpListObjects},
		{method: "GET", host: "127.0.0.1:8443", path: "/bkt/", bucket: "bkt", op: OpListObjects},
		{method: "GET", host: "127.0.0.1:8443", path: "/bkt/k/x", bucket: "bkt", key: "k/x", op: OpGetObject},
		{method: "GET", host: "bk1.s3.example.test:443", path: "/k/x", bucket: "bk1", key: "k/x", op: OpGetObject, vhost: true},
		{method: "GET", host: "my.dotted.bucket.s3.example.test", path: "/", bucket: "my.dotted.bucket", op: OpListObjects, vhost: true},
		{method: "GET", host: "BKT.S3SEAL.LOCAL", path: "/k", bucket: "bkt", key: "k", op: OpGetObject, vhost: true},
		{method: "GET", host: "evil-s3.example.test", path: "/bkt/k", bucket: "bkt", key: "k", op: OpGetObject},
		// Keys stores normalise are refused.
		{method: "GET", host: "h", path: "/bkt//denied/x", errCode: "InvalidArgument"},
		{method: "PUT", host: "h", path: "/bkt/a//b", errCode: "InvalidArgument"},
		{method: "PUT", host: "h", path: "/bkt/a/./b", errCode: "InvalidArgument"},
		{method: "PUT", host: "h", path: "/bkt/a/../b", errCode: "InvalidArgument"},
		{method: "PUT", host: "h", path: "/bkt/..", errCode: "InvalidArgument"},
		{method: "PUT", host: "h", path: "/bkt/a\x01b", errCode: "InvalidArgument"},
		{method: "PUT", host: "h", path: "/bkt/a\\b", errCode: "InvalidArgument"},
		{method: "PUT", host: "h", path: "/bkt/dir/", bucket: "bkt", key: "dir/", op: OpPutObject},
		{method: "PUT", host: "h", path: "/bkt/.hidden/..x/a.b", bucket: "bkt", key: ".hidden/..x/a.b", op: OpPutObject},
		{method: "GET", host: "h", path: "/bkt", query: "prefix=a//", errCode: "InvalidArgument"},
		{method: "GET", host: "h", path: "/bkt", query: "list-type=2&prefix=a/.", bucket: "bkt", op: OpListObjectsV2},
		// Bucket names.
		{method: "GET", host: "h", path: "/minio/admin/v3/info", errCode: "InvalidBucketName"},
		{method: "GET", host: "h", path: "/Bkt/k", errCode: "InvalidBucketName"},
		{method: "GET", host: "h", path: "/b/k", errCode: "InvalidBucketName"},
		{method: "GET", host: "h", path: "/192.168.1.1/k", errCode: "InvalidBucketName"},
		{method: "GET", host: "h", path: "/a..b/k", errCode: "InvalidBucketName"},
		// Copy sources.
		{method: "PUT", host: "h", path: "/bkt/dst", hdr: http.Header{"X-Amz-Copy-Source": {"src/a//b"}}, errCode: "InvalidArgument"},
		{method: "PUT", host: "h", path: "/bkt/dst", hdr: http.Header{"X-Amz-Copy-Source": {"minio/x"}}, errCode: "InvalidArgument"},
		{method: "PUT", host: "h", path: "/bkt/dst", hdr: http.Header{"X-Amz-Copy-Source": {"src%2Fx/k"}}, bucket: "bkt", key: "dst", op: OpCopyObject},
		{method: "PUT", host: "h", path: "/bkt/dst", hdr: http.Header{"X-Amz-Copy-Source": {"sr%3Fc/k"}}, errCode: "InvalidArgument"},
		{method: "PUT", host: "h", path: "/bkt/dst", hdr: http.Header{"X-Amz-Copy-Source": {"minio%2Fadmin%2Fx"}}, errCode: "InvalidArgument"},
		{method: "PUT", host: "h", path: "/bkt/dst", hdr: http.Header{"X-Amz-Copy-Source": {"/src/a%2F%2Fb"}}, errCode: "InvalidArgument"},
		{method: "PUT", host: "h", path: "/bkt/dst", hdr: http.Header{"X-Amz-Copy-Source": {"src/k?versionId=%zz"}}, errCode: "InvalidArgument"},
		{method: "PUT", host: "h", path: "/bkt/dst", hdr: http.Header{"X-Amz-Copy-Source": {"src/k?partNumber=1"}}, errCode: "InvalidArgument"},
		{method: "PUT", host: "h", path: "/bkt/dst", hdr: http.Header{"X-Amz-Copy-Source": {"/src/a%20b?versionId=v1"}}, bucket: "bkt", key: "dst", op: OpCopyObject},
	}
	for _, c := range cases {
		r := httptest.NewRequest(c.method, "http://x/", nil)
		r.Host = c.host
		r.URL.Path = c.path
		r.URL.RawQuery = c.query
		if c.hdr != nil {
			r.Header = c.hdr
		}
		got, err := ParseRequest(r, ParseOptions{BaseDomains: base})
		if c.errCode != "" {
			if err == nil {
				t.Errorf("%s %s %s: parsed as %+v, want %s", c.method, c.host, c.path, got, c.errCode)
			} else if !strings.HasPrefix(err.Error(), c.errCode+":") {
				t.Errorf("%s %s %s: %v, want %s", c.method, c.host, c.path, err, c.errCode)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %s %s: %v", c.method, c.host, c.path, err)
			continue
		}
		if got.Bucket != c.bucket || got.Key != c.key || got.Op != c.op || got.VirtualHost != c.vhost {
			t.Errorf("%s %s %s = %s %q %q vhost=%v, want %s %q %q vhost=%v", c.method, c.host, c.path, got.Op, got.Bucket, got.Key, got.VirtualHost, c.op, c.bucket, c.key, c.vhost)
		}
	}
}

func TestParseRequestQueryForwarded(t *testing.T) {
	r := httptest.NewRequest("GET", "http://h/bkt/k?versionId=v&x-id=GetObject&response-content-type=a%2Fb&metadata=true&X-Amz-Signature=s", nil)
	got, err := ParseRequest(r, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := "response-content-type=a%2Fb&versionId=v"
	if e := got.Query.Encode(); e != want {
		t.Errorf("forwarded query %q, want %q", e, want)
	}
}

func TestLiteralKeys(t *testing.T) {
	r := httptest.NewRequest("PUT", "http://h/bkt/a//./../b", nil)
	if _, err := ParseRequest(r, ParseOptions{}); err == nil {
		t.Fatal("strict rules accepted a//./../b")
	}
	got, err := ParseRequest(r, ParseOptions{Keys: KeyRules{Literal: true}})
	if err != nil || got.Key != "a//./../b" {
		t.Fatalf("literal rules: %+v %v", got, err)
	}
	bad := httptest.NewRequest("PUT", "http://h/bkt/x", nil)
	bad.URL.Path = "/bkt/\xff"
	if _, err := ParseRequest(bad, ParseOptions{Keys: KeyRules{Literal: true}}); err == nil {
		t.Fatal("invalid UTF-8 accepted under literal rules")
	}
}

func TestCopySourceRoundTrip(t *testing.T) {
	for _, o := range []Object{
		{Bucket: "src", Key: "plain"},
		{Bucket: "src", Key: "a b+c/ü?#%", VersionID: "v+1/="},
		{Bucket: "my.bucket", Key: "dir/"},
	} {
		got, err := ParseCopySource(o.CopySourceHeader())
		if err != nil || got != o {
			t.Errorf("ParseCopySource(%q) = %+v, %v; want %+v", o.CopySourceHeader(), got, err, o)
		}
	}
}

func TestEscapePath(t *testing.T) {
	cases := map[string]string{
		"/b/plain.txt":           "/b/plain.txt",
		"/b/a b+c":               "/b/a%20b%2Bc",
		"/b/100%":                "/b/100%25",
		"/b/ü":                   "/b/%C3%BC",
		"/b/a//b/./c~_-.":        "/b/a//b/./c~_-.",
		"/b/q?x=#y&z=:@!$'()*,;": "/b/q%3Fx%3D%23y%26z%3D%3A%40%21%24%27%28%29%2A%2C%3B",
	}
	for in, want := range cases {
		if got := EscapePath(in); got != want {
			t.Errorf("EscapePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseCopySource(f *testing.F) {
	for _, s := range []string{
		"b/k", "/b/k", "b/k?versionId=v1", "b/dir/a%20b", "b", "/b/", "//b/k", "b/%zz", "b/k?versionId=%zz",
		"b%2Fc/k", "b%3F/k", "bu%25cket/k", "other%252F..%252Fb/k", "b/k?x=1&versionId=2", "b/日本",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		o, err := ParseCopySource(v)
		if err != nil {
			return
		}
		if o.Bucket == "" || o.Key == "" {
			t.Fatalf("%q parsed to an empty bucket or key: %+v", v, o)
		}
		// The bucket authorization checks is the one the store is sent:
		// no decoding on either side can make it another.
		if strings.ContainsAny(o.Bucket, "%/?") {
			t.Fatalf("%q: bucket %q", v, o.Bucket)
		}
		// What s3seal sends upstream names the same source.
		again, err := ParseCopySource(o.CopySourceHeader())
		if err != nil || again != o {
			t.Fatalf("%q: %+v re-parsed from %q as %+v, %v", v, o, o.CopySourceHeader(), again, err)
		}
	})
}

func TestForwardHeader(t *testing.T) {
	for k, want := range map[string]bool{
		"Content-Type": true, "Content-Md5": true, "If-None-Match": true, "Range": true,
		"X-Amz-Meta-Color": true, "X-Amz-Checksum-Crc32": true, "X-Amz-Storage-Class": true,
		"X-Amz-Copy-Source": true, "X-Amz-Server-Side-Encryption": true,
		"Authorization": false, "X-Amz-Date": false, "X-Amz-Content-Sha256": false, "X-Amz-Trailer": false,
		"X-Amz-Decoded-Content-Length": false, "X-Amz-Security-Token": false, "Host": false,
		"Transfer-Encoding": false, "Content-Length": false, "Accept-Encoding": false,
		"X-Minio-Force-Delete": false, "X-Forwarded-For": false, "Amz-Sdk-Invocation-Id": false,
	} {
		if got := ForwardHeader(k); got != want {
			t.Errorf("ForwardHeader(%q) = %t, want %t", k, got, want)
		}
	}
}

func TestCheckHeaders(t *testing.T) {
	for _, c := range []struct {
		h    http.Header
		code string
	}{
		{http.Header{"X-Minio-Force-Delete": {"true"}}, "InvalidArgument"},
		{http.Header{"X-Minio-Extract": {"true"}}, "InvalidArgument"},
		{http.Header{"X-Amz-Meta-Snowball-Auto-Extract": {"true"}}, "InvalidArgument"},
		{http.Header{"X-Amz-Meta-Minio-Snowball-Prefix": {"a"}}, "InvalidArgument"},
		{http.Header{"X-Amz-Frobnicate": {"1"}}, "NotImplemented"},
		{http.Header{"X-Amz-Meta-Snow": {"ok"}, "X-Amz-Checksum-Crc64nvme": {"x"}, "X-Amz-Grant-Read": {"id=x"}}, ""},
	} {
		err := CheckHeaders(c.h)
		switch {
		case c.code == "" && err != nil:
			t.Errorf("%v refused: %v", c.h, err)
		case c.code != "" && (err == nil || !strings.HasPrefix(err.Error(), c.code)):
			t.Errorf("%v: %v, want %s", c.h, err, c.code)
		}
	}
}
