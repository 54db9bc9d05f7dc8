package proxy

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/crypto/stream"
	"github.com/s3seal/s3seal/proxy/authz"
	"github.com/s3seal/s3seal/proxy/policy"
)

// Authorization through the whole handler: what each client may do, what
// reaches the store, and what the store is left holding.

func grants(bucket string, actions ...authz.Action) []authz.Grant {
	return []authz.Grant{{Bucket: bucket, Actions: actions}}
}

func TestPermissionsThroughHandler(t *testing.T) {
	t.Parallel()
	env := newEnv(t, envOptions{
		Clients: []Identity{
			{Client: authz.Client{Name: "writer"}, AccessKeyID: "AKWRITER", Secret: "writer-secret"},
			{Client: authz.Client{Name: "reader", Grants: grants("bkt", authz.Read, authz.List)}, AccessKeyID: "AKREADER", Secret: "reader-secret"},
			{Client: authz.Client{Name: "creator", Grants: grants("bkt", authz.Create, authz.Read, authz.List)}, AccessKeyID: "AKCREATOR", Secret: "creator-secret"},
			{Client: authz.Client{Name: "admin", Admin: true}, AccessKeyID: "AKADMIN", Secret: "admin-secret"},
		},
		Buckets: []string{"bkt"},
		// S3 applies If-None-Match to CopyObject's destination; MinIO
		// ignores it there, and a create-only client's server-side copy is
		// then not stopped (see CopyConditions).
		Store: memStoreOptions{MinPartSize: -1, CopyConditions: true},
	})
	writer, reader := env.as("AKWRITER", "writer-secret"), env.as("AKREADER", "reader-secret")
	creator, admin := env.as("AKCREATOR", "creator-secret"), env.as("AKADMIN", "admin-secret")
	expect(t, writer.do(t, "PUT", "/bkt/existing", []byte("original")), 200)

	// refused checks that a request is refused naming the client, with
	// nothing reaching the store.
	refused := func(e *testEnv, name, method, path string, body []byte, kv ...string) {
		t.Helper()
		env.store.reset()
		_, code, msg := expect(t, e.do(t, method, path, body, kv...), 403)
		if code != "AccessDenied" || !strings.Contains(msg, `"`+name+`"`) {
			t.Errorf("%s %s %s: %s %q", name, method, path, code, msg)
		}
		if n := env.store.requestCount(); n != 0 {
			t.Errorf("%s %s %s: %d requests reached the store", name, method, path, n)
		}
	}
	t.Run("read only", func(t *testing.T) {
		expect(t, reader.do(t, "GET", "/bkt/existing", nil), 200)
		expect(t, reader.do(t, "HEAD", "/bkt/existing", nil), 200)
		expect(t, reader.do(t, "GET", "/bkt/?list-type=2", nil), 200)
		expect(t, reader.do(t, "GET", "/bkt/existing?tagging", nil), 200)
		refused(reader, "reader", "PUT", "/bkt/new", []byte("x"))
		refused(reader, "reader", "PUT", "/bkt/existing", []byte("x"))
		refused(reader, "reader", "DELETE", "/bkt/existing", nil)
		refused(reader, "reader", "PUT", "/bkt/copy", nil, "X-Amz-Copy-Source", "bkt/existing")
		refused(reader, "reader", "POST", "/bkt/mp?uploads", nil)
		refused(reader, "reader", "PUT", "/bkt/existing?tagging", []byte("<Tagging><TagSet/></Tagging>"))
		refused(reader, "reader", "PUT", "/bkt/", nil)
	})
	t.Run("create only", func(t *testing.T) {
		env.store.reset()
		expect(t, creator.do(t, "PUT", "/bkt/created", []byte("new")), 200)
		if r := storeReq(t, env.store, "PUT", "/bkt/created"); r.Header.Get("If-None-Match") != "*" {
			t.Errorf("a create-only PUT reached the store without If-None-Match: * (%v)", r.Header)
		}
		_, code, _ := expect(t, creator.do(t, "PUT", "/bkt/existing", []byte("overwrite")), 412)
		if code != "PreconditionFailed" {
			t.Errorf("overwrite: %s", code)
		}
		// Copies are refused: stores differ on whether a copy honours
		// If-None-Match (MinIO replaces the destination regardless).
		env.store.reset()
		expect(t, creator.do(t, "PUT", "/bkt/existing", nil, "X-Amz-Copy-Source", "bkt/created"), 403)
		expect(t, creator.do(t, "PUT", "/bkt/copied", nil, "X-Amz-Copy-Source", "bkt/created"), 403)
		if n := len(env.store.requests()); n != 0 {
			t.Errorf("a create-only CopyObject reached the store (%d requests)", n)
		}
		// A multipart upload onto an existing key fails at Complete.
		body, _, _ := expect(t, creator.do(t, "POST", "/bkt/existing?uploads", nil), 200)
		id := between(string(body), "<UploadId>", "</UploadId>")
		pr := creator.do(t, "PUT", "/bkt/existing?partNumber=1&uploadId="+id, []byte("part"))
		expect(t, pr, 200)
		expect(t, creator.do(t, "POST", "/bkt/existing?uploadId="+id, completeBody(pr.Header.Get("ETag"))), 412)
		if r := storeReq(t, env.store, "POST", "/bkt/existing", "uploadId"); r.Header.Get("If-None-Match") != "*" {
			t.Error("a create-only Complete reached the store without If-None-Match: *")
		}
		if got := string(env.store.object("bkt", "existing").data); got != "original" {
			t.Errorf("a create-only client replaced an object: %q", got)
		}
		refused(creator, "creator", "DELETE", "/bkt/created", nil)
		// A client's own If-None-Match: * passes for writers too.
		expect(t, writer.do(t, "PUT", "/bkt/existing", []byte("x"), "If-None-Match", "*"), 412)
	})
	t.Run("administration", func(t *testing.T) {
		policyDoc := []byte(`{"Version":"2012-10-17","Statement":[]}`)
		refused(writer, "writer", "PUT", "/bkt/?policy", policyDoc)
		refused(writer, "writer", "PUT", "/bkt/?versioning", []byte(`<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>`))
		refused(writer, "writer", "PUT", "/bkt/acl-public", []byte("x"), "X-Amz-Acl", "public-read")
		refused(writer, "writer", "PUT", "/bkt/acl-grant", []byte("x"), "X-Amz-Grant-Read", `uri="http://acs.amazonaws.com/groups/global/AllUsers"`)
		refused(writer, "writer", "PUT", "/bkt/existing?acl", nil, "X-Amz-Acl", "public-read")
		refused(writer, "writer", "DELETE", "/bkt/?policy", nil)
		expect(t, writer.do(t, "PUT", "/bkt/acl-private", []byte("x"), "X-Amz-Acl", "private"), 200)
		if storeReq(t, env.store, "PUT", "/bkt/acl-private").Header.Get("X-Amz-Acl") != "private" {
			t.Error("the private ACL header did not reach the store")
		}
		expect(t, admin.do(t, "PUT", "/bkt/?policy", policyDoc), 200)
		env.store.mu.Lock()
		stored := string(env.store.buckets["bkt"].config["policy"])
		env.store.mu.Unlock()
		if stored != string(policyDoc) {
			t.Errorf("the store holds policy %q", stored)
		}
		if got := mustBody(t, admin.do(t, "GET", "/bkt/?policy", nil)); !bytes.Equal(got, policyDoc) {
			t.Errorf("GetBucketPolicy: %q", got)
		}
		expect(t, admin.do(t, "PUT", "/bkt/acl-public", []byte("x"), "X-Amz-Acl", "public-read"), 200)
	})
}

func TestReservedPrefixes(t *testing.T) {
	t.Parallel()
	env := newEnv(t, envOptions{
		Clients:  []Identity{{Client: authz.Client{Name: "admin", Admin: true}, AccessKeyID: testAK, Secret: testSK}},
		Reserved: []authz.Reserved{{Bucket: "certs", Prefix: "tls/", Why: "it holds s3seal's certificates"}},
	})
	for _, k := range []string{"tls/key.pem", "tls/cert.pem", "other", "tlsx"} {
		env.store.put("certs", k, &memObject{data: []byte(k)})
	}
	env.store.put("bkt", "x", &memObject{data: []byte("x")})
	// Listings leave reserved keys out, or are refused inside them.
	for _, q := range []string{"?list-type=2", "", "?versions", "?list-type=2&delimiter=%2F", "?list-type=2&prefix=tl"} {
		l := parseListing(t, mustBody(t, env.do(t, "GET", "/certs/"+q, nil)))
		var keys []string
		for _, e := range append(l.Contents, l.Versions...) {
			keys = append(keys, e.Key)
		}
		keys = append(keys, l.CommonPrefixes...)
		if strings.Contains(strings.Join(keys, " "), "tls/") {
			t.Errorf("listing %s shows reserved keys: %v", q, keys)
		}
		if len(keys) == 0 {
			t.Errorf("listing %s shows nothing", q)
		}
	}
	env.store.reset()
	refusedAll := func(method, path string, body []byte, kv ...string) {
		t.Helper()
		_, code, msg := expect(t, env.do(t, method, path, body, kv...), 403)
		if code != "AccessDenied" || !strings.Contains(msg, "certificates") {
			t.Errorf("%s %s: %s %q", method, path, code, msg)
		}
	}
	refusedAll("GET", "/certs/?list-type=2&prefix=tls/", nil)
	refusedAll("GET", "/certs/tls/key.pem", nil)
	refusedAll("PUT", "/certs/tls/key.pem", []byte("forged"))
	refusedAll("DELETE", "/certs/tls/key.pem", nil)
	refusedAll("GET", "/certs/tls/key.pem?tagging", nil)
	refusedAll("POST", "/certs/tls/new?uploads", nil)
	refusedAll("PUT", "/bkt/stolen", nil, "X-Amz-Copy-Source", "certs/tls/key.pem")
	refusedAll("PUT", "/certs/tls/planted", nil, "X-Amz-Copy-Source", "bkt/x")
	refusedAll("PUT", "/certs/?policy", []byte("{}"))
	refusedAll("DELETE", "/certs/", nil)
	if code := env.do(t, "HEAD", "/certs/tls/key.pem", nil).StatusCode; code != 403 {
		t.Errorf("HEAD of a reserved key: %d", code)
	}
	if n := env.store.requestCount(); n != 0 {
		t.Errorf("%d requests for reserved keys reached the store", n)
	}
	// DeleteObjects is answered per key.
	c := env.sdk(t)
	out, err := c.DeleteObjects(context.Background(), &s3.DeleteObjectsInput{Bucket: aws.String("certs"), Delete: &types.Delete{
		Objects: []types.ObjectIdentifier{{Key: aws.String("tls/key.pem")}, {Key: aws.String("other")}, {Key: aws.String("tls/cert.pem")}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Deleted) != 1 || aws.ToString(out.Deleted[0].Key) != "other" || len(out.Errors) != 2 {
		t.Fatalf("DeleteObjects: deleted %+v, errors %+v", out.Deleted, out.Errors)
	}
	for _, e := range out.Errors {
		if aws.ToString(e.Code) != "AccessDenied" || !strings.HasPrefix(aws.ToString(e.Key), "tls/") {
			t.Errorf("error entry %s %s", aws.ToString(e.Key), aws.ToString(e.Code))
		}
	}
	if keys := env.store.keys("certs"); strings.Join(keys, " ") != "tls/cert.pem tls/key.pem tlsx" {
		t.Errorf("keys left %v", keys)
	}
	if r := storeReq(t, env.store, "POST", "/certs/", "delete"); r.Header.Get("Content-Md5") == "" {
		t.Error("the filtered DeleteObjects reached the store without a digest of its new body")
	}
}

// TestDenyRulesOnSourcesAndBulkDeletes: a deny rule refuses copies from
// what it covers and the keys of a DeleteObjects it covers, and nothing
// else.
func TestDenyRulesOnSourcesAndBulkDeletes(t *testing.T) {
	t.Parallel()
	env := newEnv(t, envOptions{
		Rules: []policy.Rule{
			{Name: "sealed-off", Bucket: "bkt", Prefix: "secret/", Mode: policy.Deny},
			{Name: "keep", Bucket: "bkt", Prefix: "keep/", Mode: policy.Deny, Deny: policy.DenyWrites},
		},
		Buckets: []string{"bkt"},
	})
	for _, k := range []string{"secret/a", "keep/a", "keep/b", "free/a", "free/b"} {
		env.store.put("bkt", k, &memObject{data: []byte(k)})
	}
	env.store.reset()
	_, code, msg := expect(t, env.do(t, "PUT", "/bkt/free/c", nil, "X-Amz-Copy-Source", "bkt/secret/a"), 403)
	if code != "AccessDenied" || !strings.Contains(msg, "sealed-off") || env.store.requestCount() != 0 {
		t.Errorf("copy from a denied prefix: %s %q, %d store requests", code, msg, env.store.requestCount())
	}
	// Copying from a deny-writes prefix is a read: allowed.
	expect(t, env.do(t, "PUT", "/bkt/free/c", nil, "X-Amz-Copy-Source", "bkt/keep/a"), 200)
	type result struct {
		Deleted []struct {
			Key string `xml:"Key"`
		} `xml:"Deleted"`
		Errors []struct {
			Key     string `xml:"Key"`
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		} `xml:"Error"`
	}
	doc := `<Delete><Object><Key>keep/a</Key></Object><Object><Key>free/a</Key></Object><Object><Key>secret/a</Key></Object><Object><Key>free/b</Key></Object></Delete>`
	body := mustBody(t, env.do(t, "POST", "/bkt/?delete", []byte(doc), "Content-Md5", md5B64([]byte(doc))))
	var res result
	if err := xml.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Deleted) != 2 || len(res.Errors) != 2 {
		t.Fatalf("DeleteObjects: %s", body)
	}
	for _, e := range res.Errors {
		if e.Code != "AccessDenied" || (e.Key == "keep/a") != strings.Contains(e.Message, "keep") {
			t.Errorf("error entry %+v", e)
		}
	}
	if got := strings.Join(env.store.keys("bkt"), " "); got != "free/c keep/a keep/b secret/a" {
		t.Errorf("keys left: %s", got)
	}
	// Quiet: only the errors come back.
	doc = `<Delete><Quiet>true</Quiet><Object><Key>keep/b</Key></Object><Object><Key>free/c</Key></Object></Delete>`
	body = mustBody(t, env.do(t, "POST", "/bkt/?delete", []byte(doc), "Content-Md5", md5B64([]byte(doc))))
	res = result{}
	if err := xml.Unmarshal(body, &res); err != nil || len(res.Deleted) != 0 || len(res.Errors) != 1 || res.Errors[0].Key != "keep/b" {
		t.Errorf("quiet DeleteObjects: %s", body)
	}
	if env.store.object("bkt", "free/c") != nil || env.store.object("bkt", "keep/b") == nil {
		t.Error("quiet DeleteObjects deleted the wrong keys")
	}
}

// TestRefusedBeforeTheStore: requests s3seal refuses whatever the mode,
// with nothing reaching the store.
func TestRefusedBeforeTheStore(t *testing.T) {
	t.Parallel()
	env := modesEnv(t)
	env.store.put("bplain", "k", &memObject{data: []byte("k")})
	env.store.reset()
	check := func(name string, status int, codes string, method, path string, body []byte, kv ...string) {
		t.Helper()
		_, code, _ := expect(t, env.do(t, method, path, body, kv...), status)
		if !strings.Contains(" "+codes+" ", " "+code+" ") {
			t.Errorf("%s: %s, want one of %s", name, code, codes)
		}
	}
	// Keys a store would read as another key.
	for _, p := range []string{"/bplain/a//b", "/bplain/./x", "/bplain/a/../b", "/bplain/a/./b", "/bplain//lead", "/bplain/back%5Cslash", "/bplain/ctl%01"} {
		for _, m := range []string{"GET", "PUT", "DELETE"} {
			check(m+" "+p, 400, "InvalidArgument", m, p, nil)
		}
	}
	check("copy source a//b", 400, "InvalidArgument", "PUT", "/bplain/dst", nil, "X-Amz-Copy-Source", "bplain/a//b")
	check("listing prefix ../", 400, "InvalidArgument", "GET", "/bplain/?list-type=2&prefix=a/../", nil)
	// Operations s3seal does not know, in every mode.
	for _, b := range []string{"bplain", "bs3", "bkms", "bssec", "benv", "bdeny"} {
		check("rename in "+b, 501, "NotImplemented", "PUT", "/"+b+"/k?renameObject", nil)
		check("POST object in "+b, 405, "MethodNotAllowed", "POST", "/"+b+"/k", nil)
		check("PATCH in "+b, 405, "MethodNotAllowed", "PATCH", "/"+b+"/k", nil)
		check("form upload in "+b, 501, "NotImplemented", "POST", "/"+b+"/", nil, "Content-Type", "multipart/form-data; boundary=x")
	}
	// Service-level requests other than ListBuckets.
	check("service POST", 405, "MethodNotAllowed", "POST", "/", nil)
	check("service PUT", 405, "MethodNotAllowed", "PUT", "/", nil)
	// Headers a store interprets beyond S3.
	check("x-minio header", 400, "InvalidArgument", "PUT", "/bplain/h", []byte("x"), "X-Minio-Extract", "true")
	check("snowball metadata", 400, "InvalidArgument", "PUT", "/bplain/h", []byte("x"), "X-Amz-Meta-Snowball-Auto-Extract", "true")
	check("minio metadata", 400, "InvalidArgument", "PUT", "/bplain/h", []byte("x"), "X-Amz-Meta-Minio-Internal", "1")
	check("unknown x-amz header", 501, "NotImplemented", "PUT", "/bplain/h", []byte("x"), "X-Amz-Frobnicate", "1")
	if n := env.store.requestCount(); n != 0 {
		for _, r := range env.store.requests() {
			t.Logf("reached the store: %s %s %v", r.Method, r.Path, r.Query)
		}
		t.Errorf("%d refused requests reached the store", n)
	}
}

// TestWrongRegionRefused: a credential scope for another region than
// s3seal's is refused as S3 does.
func TestWrongRegionRefused(t *testing.T) {
	t.Parallel()
	env := newEnv(t, envOptions{Buckets: []string{"bkt"}})
	c := env.sdk(t, func(o *s3.Options) { o.Region = "eu-west-1" })
	_, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k"), Body: bytes.NewReader([]byte("x"))})
	if apiCode(err) != "AuthorizationHeaderMalformed" || !strings.Contains(err.Error(), "us-east-1") {
		t.Errorf("wrong region: %v", err)
	}
	// A presigned URL for another region too.
	req, _ := newPresigned(t, env, "eu-west-1")
	resp, err := env.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	e, raw := readErr(t, resp)
	if resp.StatusCode != 400 || e.Code != "AuthorizationQueryParametersError" || !strings.Contains(e.Message, "us-east-1") {
		t.Errorf("presigned for another region: %d %s", resp.StatusCode, raw)
	}
	if n := env.store.requestCount(); n != 0 {
		t.Errorf("%d requests reached the store", n)
	}
}

func md5B64(b []byte) string {
	sum := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// newPresigned returns a GET of /b/k presigned for region.
func newPresigned(t testing.TB, env *testEnv, region string) (*http.Request, error) {
	t.Helper()
	req, err := http.NewRequest("GET", env.srv.URL+"/bkt/k?X-Amz-Expires=300", nil)
	if err != nil {
		return nil, err
	}
	u, hdr, err := v4.NewSigner().PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: env.ak, SecretAccessKey: env.sk}, req, "UNSIGNED-PAYLOAD", "s3", region, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	out, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		out.Header[k] = v
	}
	return out, nil
}

// TestCreateOnlyCopies: a client that may only create objects cannot copy
// at all (a copy's destination condition is not honoured by every store),
// whichever way s3seal would carry out the copy; and a client whose own
// If-None-Match: * says so cannot replace an object by copying onto it,
// even where s3seal copies part by part (a multipart envelope source).
func TestCreateOnlyCopies(t *testing.T) {
	t.Parallel()
	env := newEnv(t, envOptions{
		Rules: []policy.Rule{{Name: "env", Bucket: "benv", Mode: policy.Envelope}},
		Ring:  testRing(t, "k"),
		Clients: []Identity{
			{Client: authz.Client{Name: "writer"}, AccessKeyID: "AKWRITER", Secret: "writer-secret"},
			{Client: authz.Client{Name: "creator", Grants: []authz.Grant{{Actions: []authz.Action{authz.Create, authz.Read, authz.List}}}}, AccessKeyID: "AKCREATOR", Secret: "creator-secret"},
		},
		Buckets: []string{"benv", "bplain"},
		// S3 applies If-None-Match to CopyObject's destination; MinIO
		// ignores it there, and a create-only client's server-side copy is
		// then not stopped (see CopyConditions).
		Store: memStoreOptions{MinPartSize: 64 << 10, CopyConditions: true},
	})
	writer, creator := env.as("AKWRITER", "writer-secret"), env.as("AKCREATOR", "creator-secret")
	cs := stream.ChunkSize
	data := pattern(2*cs+5, 1)
	uploadParts(t, writer, "benv", "src-mp", [][]byte{data[:cs], data[cs:]})
	expect(t, writer.do(t, "PUT", "/benv/single", []byte("single")), 200)
	expect(t, writer.do(t, "PUT", "/bplain/plain", []byte("plain")), 200)
	for _, dst := range []string{"benv", "bplain"} {
		expect(t, writer.do(t, "PUT", "/"+dst+"/existing", []byte("original")), 200)
	}
	for i, c := range []struct {
		e        *testEnv
		dst, src string
		kv       []string
	}{
		{creator, "benv", "benv/single", nil},
		{creator, "benv", "benv/src-mp", nil},
		{creator, "benv", "bplain/plain", nil},
		{creator, "bplain", "benv/single", nil},
		{creator, "bplain", "benv/src-mp", nil},
		{creator, "bplain", "bplain/plain", nil},
		{writer, "benv", "benv/src-mp", []string{"If-None-Match", "*"}},
	} {
		before := env.store.object(c.dst, "existing").etag
		kv := append([]string{"X-Amz-Copy-Source", c.src}, c.kv...)
		want, wantCode := 412, "PreconditionFailed"
		if c.e == creator {
			want, wantCode = 403, "AccessDenied"
		}
		_, code, _ := expect(t, c.e.do(t, "PUT", "/"+c.dst+"/existing", nil, kv...), want)
		if code != wantCode || env.store.object(c.dst, "existing").etag != before {
			t.Errorf("copy %s onto %s/existing: %s, object replaced: %t", c.src, c.dst, code, env.store.object(c.dst, "existing").etag != before)
		}
		if n := env.store.uploadCount(); n != 0 {
			t.Errorf("copy %s onto %s/existing left %d uploads", c.src, c.dst, n)
		}
		// Onto a new key, the same copy succeeds for a client that may
		// copy.
		if c.e != creator {
			expect(t, c.e.do(t, "PUT", fmt.Sprintf("/%s/new-%d", c.dst, i), nil, kv...), 200)
		}
	}
}
