package s3

import (
	"net/http/httptest"
	"testing"
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
