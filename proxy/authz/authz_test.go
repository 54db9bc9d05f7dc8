package authz

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/proxy/policy"
	"github.com/s3seal/s3seal/proxy/s3"
)

func parse(t *testing.T, method, target string, hdr http.Header) *s3.Request {
	t.Helper()
	r := httptest.NewRequest(method, "http://s3seal.test"+target, nil)
	for k, v := range hdr {
		r.Header[k] = v
	}
	req, err := s3.ParseRequest(r, s3.ParseOptions{})
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return req
}

func testAuthorizer(t *testing.T) *Authorizer {
	t.Helper()
	e, err := policy.New([]policy.Rule{
		{Name: "locked", Bucket: "data", Prefix: "denied/", Mode: policy.Deny},
		{Name: "readonly", Bucket: "data", Prefix: "readonly/", Mode: policy.Deny, Deny: policy.DenyWrites},
		{Name: "secrets", Bucket: "data", Prefix: "secret/", Mode: policy.Envelope},
		{Name: "legacy", Bucket: "legacy", Mode: policy.Deny, Deny: policy.DenyWrites},
	}, policy.Rule{Mode: policy.Passthrough})
	if err != nil {
		t.Fatal(err)
	}
	return &Authorizer{Policy: e, Reserved: []Reserved{
		{Bucket: "data", Prefix: ".s3seal/certs/", Why: "certificates"},
		{Bucket: "*", Prefix: ".s3seal/uploads/", Why: "upload state", KeysOnly: true},
	}}
}

func TestAuthorize(t *testing.T) {
	a := testAuthorizer(t)
	app := &Client{Name: "app"}
	admin := &Client{Name: "admin", Admin: true}
	analytics := &Client{Name: "analytics", Buckets: []string{"data", "warehouse"},
		Grants: []Grant{{Bucket: "warehouse", Prefix: "exports/", Actions: []Action{Read, List}}}}
	backup := &Client{Name: "backup", Grants: []Grant{{Bucket: "backups", Actions: []Action{Create, List, Read}}}}
	limited := &Client{Name: "limited", Buckets: []string{"data"}}
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	cases := []struct {
		name        string
		c           *Client
		method, url string
		hdr         http.Header
		wantCode    string // "" for allowed
		createOnly  bool
	}{
		{"read", app, "GET", "/data/x", nil, "", false},
		{"write", app, "PUT", "/data/x", nil, "", false},
		{"delete", app, "DELETE", "/data/x", nil, "", false},
		{"list", app, "GET", "/data?prefix=a/", nil, "", false},
		{"create bucket", app, "PUT", "/newbucket", nil, "", false},
		{"delete bucket", app, "DELETE", "/newbucket", nil, "", false},
		{"bucket policy by client", app, "PUT", "/data?policy", nil, "AccessDenied", false},
		{"versioning by client", app, "PUT", "/data?versioning", nil, "AccessDenied", false},
		{"lifecycle by client", app, "PUT", "/data?lifecycle", nil, "AccessDenied", false},
		{"bucket acl by client", app, "PUT", "/data?acl", nil, "AccessDenied", false},
		{"bucket policy by admin", admin, "PUT", "/warehouse?policy", nil, "", false},
		{"read bucket config", app, "GET", "/data?versioning", nil, "", false},
		{"public-read object", app, "PUT", "/data/x", h("X-Amz-Acl", "public-read"), "AccessDenied", false},
		{"private object", app, "PUT", "/data/x", h("X-Amz-Acl", "private"), "", false},
		{"grant on copy", app, "PUT", "/data/x", h("X-Amz-Copy-Source", "data/y", "X-Amz-Grant-Read", "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\""), "AccessDenied", false},
		{"public multipart", app, "POST", "/data/x?uploads", h("X-Amz-Acl", "public-read-write"), "AccessDenied", false},
		{"object acl document", app, "PUT", "/data/x?acl", nil, "AccessDenied", false},
		{"object acl private", app, "PUT", "/data/x?acl", h("X-Amz-Acl", "private"), "", false},
		{"governance bypass", app, "DELETE", "/data/x", h("X-Amz-Bypass-Governance-Retention", "true"), "AccessDenied", false},
		{"public by admin", admin, "PUT", "/data/x", h("X-Amz-Acl", "public-read"), "", false},
		{"deny-all read", app, "GET", "/data/denied/x", nil, "AccessDenied", false},
		{"deny-all listing inside", app, "GET", "/data?prefix=denied/", nil, "AccessDenied", false},
		{"deny-writes read", app, "GET", "/data/readonly/x", nil, "", false},
		{"deny-writes write", app, "PUT", "/data/readonly/x", nil, "AccessDenied", false},
		{"deny-writes tagging", app, "PUT", "/data/readonly/x?tagging", nil, "AccessDenied", false},
		{"deny-writes bucket config", admin, "PUT", "/legacy?versioning", nil, "AccessDenied", false},
		{"copy from denied", app, "PUT", "/data/out", h("X-Amz-Copy-Source", "data/denied/x"), "AccessDenied", false},
		{"copy from readonly", app, "PUT", "/data/out", h("X-Amz-Copy-Source", "data/readonly/x"), "", false},
		{"copy into readonly", app, "PUT", "/data/readonly/y", h("X-Amz-Copy-Source", "data/x"), "AccessDenied", false},
		{"part copy from reserved", app, "PUT", "/data/out?uploadId=u&partNumber=1", h("X-Amz-Copy-Source", "data/.s3seal/certs/key"), "AccessDenied", false},
		{"reserved read", app, "GET", "/data/.s3seal/certs/key", nil, "AccessDenied", false},
		{"reserved write", admin, "PUT", "/data/.s3seal/certs/key", nil, "AccessDenied", false},
		{"reserved listing", app, "GET", "/data?prefix=.s3seal/certs/x", nil, "AccessDenied", false},
		{"reserved bucket config", admin, "PUT", "/data?policy", nil, "AccessDenied", false},
		{"keys-only reserved in every bucket", app, "GET", "/warehouse/.s3seal/uploads/x", nil, "AccessDenied", false},
		{"keys-only reserved copy source", app, "PUT", "/warehouse/y", h("X-Amz-Copy-Source", "other/.s3seal/uploads/x"), "AccessDenied", false},
		{"keys-only reserved leaves bucket config", admin, "PUT", "/warehouse?versioning", nil, "", false},
		{"bucket outside limits", limited, "GET", "/other/x", nil, "AccessDenied", false},
		{"copy source outside limits", limited, "PUT", "/data/x", h("X-Amz-Copy-Source", "other/y"), "AccessDenied", false},
		{"analytics read", analytics, "GET", "/warehouse/exports/a.csv", nil, "", false},
		{"analytics list", analytics, "GET", "/warehouse?list-type=2&prefix=exports/2026/", nil, "", false},
		{"analytics list root", analytics, "GET", "/warehouse?list-type=2", nil, "AccessDenied", false},
		{"analytics read outside prefix", analytics, "GET", "/warehouse/raw/a.csv", nil, "AccessDenied", false},
		{"analytics write", analytics, "PUT", "/warehouse/exports/a.csv", nil, "AccessDenied", false},
		{"analytics delete", analytics, "DELETE", "/warehouse/exports/a.csv", nil, "AccessDenied", false},
		{"analytics other bucket", analytics, "GET", "/data/x", nil, "AccessDenied", false},
		{"backup creates", backup, "PUT", "/backups/snap/1", nil, "", true},
		{"backup multipart", backup, "POST", "/backups/snap/2?uploads", nil, "", false},
		{"backup completes", backup, "POST", "/backups/snap/2?uploadId=u", nil, "", true},
		{"backup copies", backup, "PUT", "/backups/snap/3", h("X-Amz-Copy-Source", "backups/snap/1"), "", true},
		{"backup overwrites with If-Match", backup, "PUT", "/backups/snap/1", h("If-Match", "\"e\""), "AccessDenied", false},
		{"backup tags", backup, "PUT", "/backups/snap/1?tagging", nil, "AccessDenied", false},
		{"backup deletes", backup, "DELETE", "/backups/snap/1", nil, "AccessDenied", false},
		{"backup creates bucket", backup, "PUT", "/backups", nil, "AccessDenied", false},
		{"post form", admin, "POST", "/data", h("Content-Type", "multipart/form-data; boundary=x"), "NotImplemented", false},
		{"unknown op", app, "POST", "/data/x", nil, "NotImplemented", false},
		{"patch", app, "PATCH", "/data/x", nil, "MethodNotAllowed", false},
		{"service POST", app, "POST", "/", nil, "MethodNotAllowed", false},
		{"service GET", limited, "GET", "/", nil, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := parse(t, c.method, c.url, c.hdr)
			d, err := a.Authorize(c.c, req, req2hdr(c.hdr))
			if c.wantCode == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if d.CreateOnly != c.createOnly {
					t.Errorf("CreateOnly = %t, want %t", d.CreateOnly, c.createOnly)
				}
				return
			}
			if err == nil {
				t.Fatalf("allowed, want %s", c.wantCode)
			}
			if !strings.HasPrefix(err.Error(), c.wantCode+":") {
				t.Errorf("got %v, want %s", err, c.wantCode)
			}
		})
	}
}

func req2hdr(h http.Header) http.Header {
	if h == nil {
		return http.Header{}
	}
	return h
}

func TestAuthorizeDeleteObjectsPerKey(t *testing.T) {
	a := testAuthorizer(t)
	req := parse(t, "POST", "/data?delete", nil)
	req.Delete = &s3.DeleteRequest{Objects: []s3.DeleteObject{
		{Key: "ok/1"}, {Key: "denied/x"}, {Key: ".s3seal/certs/k"}, {Key: "readonly/y"}, {Key: "ok/2", VersionID: "v"},
	}}
	d, err := a.Authorize(&Client{Name: "app"}, req, http.Header{})
	if err != nil {
		t.Fatal(err)
	}
	for i, refused := range []bool{false, true, true, true, false} {
		if (d.Refused[i] != nil) != refused {
			t.Errorf("key %q refused = %t, want %t", req.Delete.Objects[i].Key, d.Refused[i] != nil, refused)
		}
	}
	// A client without delete permission has every key refused.
	d, err = a.Authorize(&Client{Name: "ro", Grants: []Grant{{Actions: []Action{Read, List}}}}, req, http.Header{})
	if err != nil || len(d.Refused) != 5 {
		t.Fatalf("read-only client: %v, %d refused", err, len(d.Refused))
	}
}

func TestListingFilter(t *testing.T) {
	a := testAuthorizer(t)
	d, err := a.Authorize(&Client{Name: "app"}, parse(t, "GET", "/data?list-type=2", nil), http.Header{})
	if err != nil {
		t.Fatal(err)
	}
	f := d.Filter
	if f == nil {
		t.Fatal("no filter for a listing that includes reserved and denied keys")
	}
	for key, shown := range map[string]bool{
		"a": true, "denied/x": false, "denied": true, "readonly/x": true,
		".s3seal/certs/key.pem": false, ".s3seal/other": true, "secret/x": true,
	} {
		if f.Key(key) != shown {
			t.Errorf("Key(%q) = %t, want %t", key, f.Key(key), shown)
		}
	}
	for p, shown := range map[string]bool{"denied/": false, ".s3seal/": true, ".s3seal/certs/": false, "a/": true} {
		if f.CommonPrefix(p) != shown {
			t.Errorf("CommonPrefix(%q) = %t, want %t", p, f.CommonPrefix(p), shown)
		}
	}
	d, err = a.Authorize(&Client{Name: "app"}, parse(t, "GET", "/other?list-type=2", nil), http.Header{})
	if err != nil || d.Filter == nil || d.Filter.Key(".s3seal/uploads/x") || !d.Filter.Key("x") {
		t.Errorf("a bucket with only the keys-only reservation: filter %v, %v", d.Filter, err)
	}
	a.Reserved = a.Reserved[:1]
	d, err = a.Authorize(&Client{Name: "app"}, parse(t, "GET", "/other?list-type=2", nil), http.Header{})
	if err != nil || d.Filter != nil {
		t.Errorf("a bucket with nothing hidden: filter %v, %v", d.Filter, err)
	}
}

func TestDefaultActions(t *testing.T) {
	c := &Client{Name: "app"}
	for _, a := range []Action{Read, List, Write, Create, Delete} {
		if !c.may(a, "any", "key") {
			t.Errorf("default client may not %s", a)
		}
	}
	if c.Admin {
		t.Error("default client is an administrator")
	}
}
