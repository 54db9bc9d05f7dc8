package s3

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/proxy/s3err"
)

func TestRoutingError(t *testing.T) {
	cases := []struct {
		method, target string
		copySource     string
		code           string
		status         int
		fields         map[string]string
	}{
		{"POST", "/", "", "MethodNotAllowed", 405, map[string]string{"Method": "POST", "ResourceType": "SERVICE"}},
		{"POST", "/b/k", "", "MethodNotAllowed", 405, map[string]string{"Method": "POST", "ResourceType": "SERVICE"}},
		{"PUT", "/b/k?uploadId=x", "", "MethodNotAllowed", 405, map[string]string{"Method": "PUT", "ResourceType": "UPLOAD"}},
		{"PUT", "/b/k?partNumber=1", "", "InvalidArgument", 400, map[string]string{"ArgumentName": "partNumber"}},
		{"GET", "/b/k?uploads", "", "InvalidRequest", 400, nil},
		{"GET", "/b/k?versions", "", "InvalidRequest", 400, nil},
		{"GET", "/b/k", "b/o", "InvalidArgument", 400, map[string]string{"ArgumentName": "x-amz-copy-source", "ArgumentValue": "b/o"}},
		{"HEAD", "/b", "b/o", "InvalidArgument", 400, nil},
		{"DELETE", "/b/k", "b/o", "InvalidArgument", 400, nil},
		{"POST", "/b/k?uploadId=x", "b/o", "InvalidArgument", 400, nil},
		// Well-formed requests are left to authentication.
		{"PUT", "/b/k", "", "", 0, nil},
		{"PUT", "/b/k", "b/o", "", 0, nil},
		{"PUT", "/b/k?uploadId=x&partNumber=1", "b/o", "", 0, nil},
		{"GET", "/b/k?partNumber=1", "", "", 0, nil},
		{"GET", "/b?uploads", "", "", 0, nil},
		{"POST", "/b/k?uploads", "", "", 0, nil},
		{"POST", "/b?delete", "", "", 0, nil},
		{"GET", "/", "", "", 0, nil},
		// Unknown shapes S3 gives no routing answer for: authentication
		// first, then refusal.
		{"PATCH", "/b/k", "", "", 0, nil},
		{"GET", "/minio/admin/v3/info", "", "", 0, nil},
	}
	big := httptest.NewRequest("PUT", "/b/k", nil)
	big.Header.Set("X-Amz-Meta-Big", strings.Repeat("d", 8<<10))
	breq, _ := ParseRequest(big, ParseOptions{})
	if err := RoutingError(big, breq); err == nil || err.Code != "RequestHeaderSectionTooLarge" || err.Status != 400 {
		t.Errorf("8 KiB header: %v", err)
	}
	big.Header.Set("X-Amz-Meta-Big", strings.Repeat("d", 2<<10))
	if err := RoutingError(big, breq); err != nil {
		t.Errorf("2 KiB header: %v", err)
	}
	for _, c := range cases {
		r := httptest.NewRequest(c.method, c.target, nil)
		if c.copySource != "" {
			r.Header.Set("X-Amz-Copy-Source", c.copySource)
		}
		req, _ := ParseRequest(r, ParseOptions{})
		err := RoutingError(r, req)
		if c.code == "" {
			if err != nil {
				t.Errorf("%s %s: %v", c.method, c.target, err)
			}
			continue
		}
		if err == nil || err.Code != c.code || err.Status != c.status {
			t.Errorf("%s %s: got %v, want %s %d", c.method, c.target, err, c.code, c.status)
			continue
		}
		got := map[string]string{}
		for _, f := range err.Extra {
			got[f.Name] = f.Value
		}
		for k, v := range c.fields {
			if got[k] != v {
				t.Errorf("%s %s: field %s = %q, want %q", c.method, c.target, k, got[k], v)
			}
		}
	}
}

// TestCopySourceErrors: a malformed copy source is refused before any
// store sees it, with S3's message and the offending value.
func TestCopySourceErrors(t *testing.T) {
	cases := []struct{ src, msg, value string }{
		{"bucket/%ZZ", "Invalid copy source encoding", "bucket/%ZZ"},
		{"100%/foo/bar", "Invalid copy source encoding", "100%/foo/bar"},
		{"bucket/%A/bar", "Invalid copy source encoding", "bucket/%A/bar"},
		{"%", "Invalid copy source encoding", "%"},
		{"bucket/%C3%", "Invalid copy source encoding", "bucket/%C3%"},
		{"bucket/%C3", "Invalid copy source encoding", "bucket/%C3"},
		{"192.168.1.1/foo", "Invalid copy source bucket name", "192.168.1.1/foo"},
		{"my-buc@k&()t/obj", "Invalid copy source bucket name", "my-buc@k&()t/obj"},
		{"2001:db8::1/x", "Invalid copy source bucket name", "2001:db8::1/x"},
		{"bucket", "Invalid copy source object key", ""},
		{"bucket/", "Invalid copy source object key", ""},
		{"bucket/..", "Invalid copy source object key", ".."},
		{"bucket/foo/ba/../../../r/baz", "Invalid copy source object key", "foo/ba/../../../r/baz"},
		{"bucket/a//b", "Invalid copy source object key", "a//b"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("PUT", "/dst/obj", nil)
		r.Header.Set("X-Amz-Copy-Source", c.src)
		req, err := ParseRequest(r, ParseOptions{Keys: KeyRules{}})
		e, ok := s3err.As(err)
		if !ok || req.Op != OpCopyObject || e.Code != "InvalidArgument" || e.Message != c.msg {
			t.Errorf("%q: %v", c.src, err)
			continue
		}
		if v := field(e, "ArgumentValue"); v != c.value || field(e, "ArgumentName") != "x-amz-copy-source" {
			t.Errorf("%q: ArgumentValue %q, want %q", c.src, v, c.value)
		}
	}
}

func field(e *s3err.Error, name string) string {
	for _, f := range e.Extra {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}
