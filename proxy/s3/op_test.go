package s3

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

func TestClassify(t *testing.T) {
	obj := Target{Bucket: "b", Key: "k"}
	bkt := Target{Bucket: "b"}
	copyH := http.Header{"X-Amz-Copy-Source": {"/b/src"}}
	form := http.Header{"Content-Type": {"multipart/form-data; boundary=x"}}
	cases := []struct {
		method string
		t      Target
		query  string
		h      http.Header
		want   Op
		sub    string
	}{
		{"GET", Target{}, "", nil, OpListBuckets, ""},
		{"PUT", bkt, "", nil, OpCreateBucket, ""},
		{"PUT", bkt, "x-id=CreateBucket", nil, OpCreateBucket, ""},
		{"DELETE", bkt, "", nil, OpDeleteBucket, ""},
		{"HEAD", bkt, "", nil, OpHeadBucket, ""},
		{"GET", bkt, "", nil, OpListObjects, ""},
		{"GET", bkt, "prefix=a&delimiter=%2F&marker=m", nil, OpListObjects, ""},
		{"GET", bkt, "list-type=2&prefix=a", nil, OpListObjectsV2, ""},
		{"GET", bkt, "versions&prefix=a", nil, OpListObjectVersions, ""},
		{"GET", bkt, "uploads", nil, OpListMultipartUploads, ""},
		{"GET", bkt, "location", nil, OpGetBucketLocation, ""},
		{"GET", bkt, "versioning", nil, OpGetBucketConfig, "versioning"},
		{"PUT", bkt, "encryption", nil, OpPutBucketConfig, "encryption"},
		{"DELETE", bkt, "cors", nil, OpDeleteBucketConfig, "cors"},
		{"POST", bkt, "delete", nil, OpDeleteObjects, ""},
		{"POST", bkt, "", form, OpPostObject, ""},
		{"POST", bkt, "", nil, OpUnknown, ""},
		{"GET", bkt, "somethingnew", nil, OpUnknown, ""},
		{"GET", obj, "", nil, OpGetObject, ""},
		{"GET", obj, "x-id=GetObject&versionId=3", nil, OpGetObject, ""},
		{"GET", obj, "partNumber=2", nil, OpGetObject, ""},
		{"HEAD", obj, "", nil, OpHeadObject, ""},
		{"PUT", obj, "", nil, OpPutObject, ""},
		{"PUT", obj, "x-id=PutObject", nil, OpPutObject, ""},
		{"PUT", obj, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=x", nil, OpPutObject, ""},
		{"PUT", obj, "", copyH, OpCopyObject, ""},
		{"PUT", obj, "partNumber=1&uploadId=u", nil, OpUploadPart, ""},
		{"PUT", obj, "partNumber=1&uploadId=u", copyH, OpUploadPartCopy, ""},
		{"PUT", obj, "tagging", nil, OpPutObjectConfig, "tagging"},
		{"GET", obj, "acl", nil, OpGetObjectConfig, "acl"},
		{"GET", obj, "attributes", nil, OpGetObjectAttributes, ""},
		{"GET", obj, "uploadId=u", nil, OpListParts, ""},
		{"POST", obj, "uploads", nil, OpCreateMultipartUpload, ""},
		{"POST", obj, "uploadId=u", nil, OpCompleteMultipartUpload, ""},
		{"POST", obj, "select&select-type=2", nil, OpSelectObjectContent, ""},
		{"POST", obj, "restore", nil, OpRestoreObject, ""},
		{"DELETE", obj, "", nil, OpDeleteObject, ""},
		{"DELETE", obj, "uploadId=u", nil, OpAbortMultipartUpload, ""},
		{"DELETE", obj, "tagging", nil, OpDeleteObjectConfig, "tagging"},
		{"PUT", obj, "unknownsub", nil, OpUnknown, ""},
		{"OPTIONS", obj, "", nil, OpPreflight, ""},
		{"PATCH", obj, "", nil, OpUnknown, ""},
	}
	for _, c := range cases {
		q, err := url.ParseQuery(c.query)
		if err != nil {
			t.Fatal(err)
		}
		got := Classify(c.method, c.t, q, c.h)
		if got.Op != c.want || got.Subresource != c.sub {
			t.Errorf("%s %+v ?%s = %v/%q, want %v/%q", c.method, c.t, c.query, got.Op, got.Subresource, c.want, c.sub)
		}
	}
}

func TestParseTarget(t *testing.T) {
	base := []string{"s3.example.test", "s3seal.local."}
	cases := []struct {
		host, path string
		want       Target
	}{
		{"127.0.0.1:8443", "/", Target{}},
		{"127.0.0.1:8443", "/b", Target{Bucket: "b"}},
		{"127.0.0.1:8443", "/b/", Target{Bucket: "b"}},
		{"127.0.0.1:8443", "/b/k/with//slashes/./and/../dots", Target{Bucket: "b", Key: "k/with//slashes/./and/../dots"}},
		{"s3.example.test", "/b/k", Target{Bucket: "b", Key: "k"}},
		{"b.s3.example.test:443", "/k/x", Target{Bucket: "b", Key: "k/x", VirtualHost: true}},
		{"my.dotted.bucket.s3.example.test", "/", Target{Bucket: "my.dotted.bucket", VirtualHost: true}},
		{"B.S3SEAL.LOCAL", "/k", Target{Bucket: "b", Key: "k", VirtualHost: true}},
		{"evil-s3.example.test", "/b/k", Target{Bucket: "b", Key: "k"}},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "http://x"+c.path, nil)
		r.Host = c.host
		r.URL.Path = c.path
		if got := ParseTarget(r, base); got != c.want {
			t.Errorf("%s %s = %+v, want %+v", c.host, c.path, got, c.want)
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
