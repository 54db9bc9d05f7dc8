package integration

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/integration/testbed"
)

// Authorization: per-client permissions, bucket configuration as an
// administrator's right, and the signature's scope (region, expiry).

// TestAdversarialPermissions checks each client permission against what
// the store holds afterwards: read-only and prefix-limited clients write
// and delete nothing, a create-only client never replaces an object, and
// the env-configured client's S3SEAL_CLIENT_ACTIONS applies.
func TestAdversarialPermissions(t *testing.T) {
	testbed.Require(t)
	for _, up := range advStores(t) {
		t.Run(up.Name, func(t *testing.T) {
			e := newAdvEnv(t, up, advOptions{})
			b := e.bucket
			t.Run("reader", func(t *testing.T) {
				if r := e.do(t, "reader", advReq{method: "GET", path: e.path(advPublic)}); r.status != 200 || !bytes.Equal(r.body, e.planted[advPublic]) {
					t.Errorf("control: GET %s: %s", advPublic, r)
				}
				if r := e.do(t, "reader", advReq{method: "GET", path: "/" + b, query: "list-type=2&prefix=public%2F"}); r.status != 200 {
					t.Errorf("control: ListObjectsV2: %s", r)
				}
				e.permissionRefusals(t, "reader", true)
			})
			t.Run("creator", func(t *testing.T) {
				key := "public/created-" + randHex(4)
				if r := e.do(t, "creator", advReq{method: "PUT", path: e.path(key), body: []byte("new")}); r.status != 200 {
					t.Errorf("control: PUT a new object: %s", r)
				}
				r := e.do(t, "creator", advReq{method: "PUT", path: e.path(advPublic), body: []byte("REPLACED")})
				refused(t, r, "PreconditionFailed", 412)
				// A copy cannot be held to "new objects only" on every store
				// (MinIO and versitygw replace the destination whatever
				// If-None-Match says): refused for create-only clients.
				r = e.do(t, "creator", advReq{method: "PUT", path: e.path(advPublic), header: map[string]string{"X-Amz-Copy-Source": b + "/" + key}})
				e.refuse(t, r, "AccessDenied", 403)
				e.intact(t)
				// Multipart onto an existing key: refused when it would replace it.
				init := e.do(t, "creator", advReq{method: "POST", path: e.path(advPublic), query: "uploads"})
				var created struct {
					UploadID string `xml:"UploadId"`
				}
				if init.status == 200 && xml.Unmarshal(init.body, &created) == nil && created.UploadID != "" {
					part := e.do(t, "creator", advReq{method: "PUT", path: e.path(advPublic), query: "partNumber=1&uploadId=" + created.UploadID, body: []byte("REPLACED BY MULTIPART")})
					done := e.do(t, "creator", advReq{method: "POST", path: e.path(advPublic), query: "uploadId=" + created.UploadID,
						body: []byte("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>" + part.header.Get("ETag") + "</ETag></Part></CompleteMultipartUpload>")})
					if part.status == 200 {
						refused(t, done, "PreconditionFailed", 412)
					}
					_, _ = up.Client(t).AbortMultipartUpload(ctx(t), &s3.AbortMultipartUploadInput{Bucket: aws.String(b), Key: aws.String(advPublic), UploadId: aws.String(created.UploadID)})
				}
				e.intact(t)
				r = e.do(t, "creator", advReq{method: "PUT", path: e.path(key), query: "tagging", body: tagging})
				refused(t, r, "AccessDenied", 403)
				if n := e.tagsOf(t, key); n != 0 {
					t.Errorf("store: a create-only client tagged %s", key)
				}
				r = e.do(t, "creator", advReq{method: "DELETE", path: e.path(key)})
				refused(t, r, "AccessDenied", 403)
				if _, ok := e.stored(t, b, key); !ok {
					t.Errorf("store: a create-only client deleted %s", key)
				}
			})
			t.Run("exporter", func(t *testing.T) {
				if r := e.do(t, "exporter", advReq{method: "GET", path: e.path(advPublic)}); r.status != 200 {
					t.Errorf("control: GET %s: %s", advPublic, r)
				}
				if r := e.do(t, "exporter", advReq{method: "GET", path: "/" + b, query: "list-type=2&prefix=public%2F"}); r.status != 200 {
					t.Errorf("control: list public/: %s", r)
				}
				r := e.do(t, "exporter", advReq{method: "GET", path: e.path(advReadonly)})
				refused(t, r, "AccessDenied", 403)
				if bytes.Contains(r.body, e.planted[advReadonly]) {
					t.Errorf("a client limited to public/ read %s", advReadonly)
				}
				for _, p := range []string{"", "readonly%2F", "pub", "public"} {
					r := e.do(t, "exporter", advReq{method: "GET", path: "/" + b, query: "list-type=2&prefix=" + p})
					refused(t, r, "AccessDenied", 403)
					if bytes.Contains(r.body, []byte(advReadonly)) {
						t.Errorf("listing prefix %q shows keys outside public/", p)
					}
				}
				e.permissionRefusals(t, "exporter", false)
			})
		})
	}
	t.Run("S3SEAL_CLIENT_ACTIONS", func(t *testing.T) {
		up := shared.minio
		p := startProxy(t, up, proxyOptions{Env: map[string]string{"S3SEAL_CLIENT_ACTIONS": "read,list"}})
		c := newAdvClient(t, p, p.AccessKey, p.SecretKey)
		b := newBucket(t, up)
		_, err := up.Client(t).PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("k"), Body: strings.NewReader("kept")})
		must(t, err, "plant")
		if r := c.do(t, advReq{method: "GET", path: "/" + b + "/k"}); r.status != 200 {
			t.Errorf("control: GET: %s", r)
		}
		refused(t, c.do(t, advReq{method: "PUT", path: "/" + b + "/new", body: []byte("x")}), "AccessDenied", 403)
		refused(t, c.do(t, advReq{method: "DELETE", path: "/" + b + "/k"}), "AccessDenied", 403)
		if objectExists(t, up, b, "new") {
			t.Error("store: a read,list client wrote an object")
		}
		if !objectExists(t, up, b, "k") {
			t.Error("store: a read,list client deleted an object")
		}
	})
}

// permissionRefusals sends the writes and deletes a client without write
// and delete permission on public/ must be refused, and checks the store.
func (e *advEnv) permissionRefusals(t *testing.T, client string, bucketWide bool) {
	b := e.bucket
	// Requests for a new key name KEY.
	cases := []struct {
		name string
		req  advReq
	}{
		{"PUT", advReq{method: "PUT", path: "KEY", body: []byte("x")}},
		{"copy", advReq{method: "PUT", path: "KEY", header: map[string]string{"X-Amz-Copy-Source": b + "/" + advPublic}}},
		{"multipart", advReq{method: "POST", path: "KEY", query: "uploads"}},
		{"DELETE", advReq{method: "DELETE", path: e.path(advPublic)}},
		{"tagging", advReq{method: "PUT", path: e.path(advPublic), query: "tagging", body: tagging}},
		{"private ACL", advReq{method: "PUT", path: e.path(advPublic), query: "acl", header: map[string]string{"X-Amz-Acl": "private"}}},
	}
	if bucketWide {
		cases = append(cases, struct {
			name string
			req  advReq
		}{"DeleteBucket", advReq{method: "DELETE", path: "/" + b}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := "public/by-" + client + "-" + randHex(4)
			if c.req.path == "KEY" {
				c.req.path = e.path(key)
			}
			r := e.do(t, client, c.req)
			e.refuse(t, r, "AccessDenied", 403)
			e.absent(t, b, key)
			e.intact(t)
			if n := e.tagsOf(t, advPublic); n != 0 {
				t.Errorf("store: %s has %d tags", advPublic, n)
			}
			ups, err := e.up.Client(t).ListMultipartUploads(ctx(t), &s3.ListMultipartUploadsInput{Bucket: aws.String(b), Prefix: aws.String(key)})
			must(t, err, "ListMultipartUploads directly")
			if len(ups.Uploads) != 0 {
				t.Errorf("store: %d uploads for %s", len(ups.Uploads), key)
			}
		})
	}
}

// bucketConfigs are the bucket configuration writes only an administrator
// may make: sub-resource, method, body, extra headers.
func bucketConfigs(bucket string) []struct {
	sub, method string
	body        []byte
	header      map[string]string
} {
	publicPolicy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::` + bucket + `","arn:aws:s3:::` + bucket + `/*"]}]}`
	type c = struct {
		sub, method string
		body        []byte
		header      map[string]string
	}
	return []c{
		{"policy", "PUT", []byte(publicPolicy), nil},
		{"policy", "DELETE", nil, nil},
		{"versioning", "PUT", []byte(`<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>`), nil},
		{"lifecycle", "PUT", []byte(`<LifecycleConfiguration><Rule><ID>wipe</ID><Filter><Prefix></Prefix></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>`), nil},
		{"lifecycle", "DELETE", nil, nil},
		{"acl", "PUT", nil, map[string]string{"X-Amz-Acl": "public-read"}},
		{"acl", "PUT", nil, map[string]string{"X-Amz-Grant-Read": `uri="http://acs.amazonaws.com/groups/global/AllUsers"`}},
		{"encryption", "PUT", []byte(`<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>`), nil},
		{"encryption", "DELETE", nil, nil},
		{"tagging", "PUT", []byte(`<Tagging><TagSet><Tag><Key>owner</Key><Value>attacker</Value></Tag></TagSet></Tagging>`), nil},
		{"cors", "PUT", []byte(`<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>`), nil},
		{"notification", "PUT", []byte(`<NotificationConfiguration></NotificationConfiguration>`), nil},
		{"object-lock", "PUT", []byte(`<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>`), nil},
		{"replication", "PUT", []byte(`<ReplicationConfiguration><Role></Role><Rule><Status>Enabled</Status><Destination><Bucket>arn:aws:s3:::elsewhere</Bucket></Destination></Rule></ReplicationConfiguration>`), nil},
		{"website", "PUT", []byte(`<WebsiteConfiguration><IndexDocument><Suffix>index.html</Suffix></IndexDocument></WebsiteConfiguration>`), nil},
		{"ownershipControls", "PUT", []byte(`<OwnershipControls><Rule><ObjectOwnership>ObjectWriter</ObjectOwnership></Rule></OwnershipControls>`), nil},
		{"publicAccessBlock", "PUT", []byte(`<PublicAccessBlockConfiguration><BlockPublicAcls>false</BlockPublicAcls><IgnorePublicAcls>false</IgnorePublicAcls><BlockPublicPolicy>false</BlockPublicPolicy><RestrictPublicBuckets>false</RestrictPublicBuckets></PublicAccessBlockConfiguration>`), nil},
		{"logging", "PUT", []byte(`<BucketLoggingStatus></BucketLoggingStatus>`), nil},
		{"accelerate", "PUT", []byte(`<AccelerateConfiguration><Status>Enabled</Status></AccelerateConfiguration>`), nil},
		{"requestPayment", "PUT", []byte(`<RequestPaymentConfiguration><Payer>Requester</Payer></RequestPaymentConfiguration>`), nil},
	}
}

// TestAdversarialBucketConfiguration has a client without admin rights
// change bucket configuration (a public policy first of all, after which
// anonymous requests at the store would read deny-rule and SSE-S3 objects),
// grant access through ACL headers, and bypass governance retention: each
// is refused and the store's configuration reads the same as before. An
// admin client's configuration write is the control.
func TestAdversarialBucketConfiguration(t *testing.T) {
	testbed.Require(t)
	for _, up := range advStores(t) {
		t.Run(up.Name, func(t *testing.T) {
			e := newAdvEnv(t, up, advOptions{})
			b := e.bucket
			direct := up.Client(t)
			// The owner's own configuration, which the attacks try to
			// change or remove.
			_, err := direct.PutBucketVersioning(ctx(t), &s3.PutBucketVersioningInput{Bucket: aws.String(b),
				VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}})
			must(t, err, "enable versioning directly")
			ownerPolicy := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::` + b + `/denied/*"]}]}`
			_, err = direct.PutBucketPolicy(ctx(t), &s3.PutBucketPolicyInput{Bucket: aws.String(b), Policy: aws.String(ownerPolicy)})
			must(t, err, "set a bucket policy directly")
			// restore puts back the owner's configuration after an attack
			// changed it, so the next case starts from the same state.
			restore := func(t *testing.T, sub string) {
				switch sub {
				case "policy":
					e.owner.do(t, advReq{method: "PUT", path: "/" + b, query: "policy", body: []byte(ownerPolicy)})
				case "versioning":
					body := []byte(`<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>`)
					e.owner.do(t, advReq{method: "PUT", path: "/" + b, query: "versioning", body: body, header: withMD5(nil, body)})
				case "acl":
					e.owner.do(t, advReq{method: "PUT", path: "/" + b, query: "acl", header: map[string]string{"X-Amz-Acl": "private"}})
				default:
					e.owner.do(t, advReq{method: "DELETE", path: "/" + b, query: sub})
				}
			}
			for _, c := range bucketConfigs(b) {
				name := c.method + " " + c.sub
				for h := range c.header {
					name += " " + h
				}
				t.Run(name, func(t *testing.T) {
					before := e.owner.do(t, advReq{method: "GET", path: "/" + b, query: c.sub})
					r := e.do(t, "env", advReq{method: c.method, path: "/" + b, query: c.sub, body: c.body, header: withMD5(c.header, c.body)})
					e.refuse(t, r, "AccessDenied", 403)
					after := e.owner.do(t, advReq{method: "GET", path: "/" + b, query: c.sub})
					if !sameConfig(before, after) {
						t.Errorf("store: bucket %s configuration changed:\nbefore %s\nafter  %s", c.sub, before, after)
					}
					e.anonymousLocked(t)
					if t.Failed() {
						restore(t, c.sub)
					}
				})
			}
			acls := []struct {
				name string
				req  advReq
			}{
				{"PutObject public-read", advReq{method: "PUT", body: []byte("x"), header: map[string]string{"X-Amz-Acl": "public-read"}}},
				{"PutObject grant AllUsers", advReq{method: "PUT", body: []byte("x"), header: map[string]string{"X-Amz-Grant-Read": `uri="http://acs.amazonaws.com/groups/global/AllUsers"`}}},
				{"PutObject grant full control", advReq{method: "PUT", body: []byte("x"), header: map[string]string{"X-Amz-Grant-Full-Control": `id="someone-else"`}}},
				{"CopyObject public-read-write", advReq{method: "PUT", header: map[string]string{"X-Amz-Copy-Source": b + "/" + advPublic, "X-Amz-Acl": "public-read-write"}}},
				{"CopyObject grant", advReq{method: "PUT", header: map[string]string{"X-Amz-Copy-Source": b + "/" + advPublic, "X-Amz-Grant-Read-Acp": `uri="http://acs.amazonaws.com/groups/global/AllUsers"`}}},
				{"CreateMultipartUpload public-read", advReq{method: "POST", query: "uploads", header: map[string]string{"X-Amz-Acl": "public-read"}}},
				{"CreateMultipartUpload authenticated-read", advReq{method: "POST", query: "uploads", header: map[string]string{"X-Amz-Acl": "authenticated-read"}}},
			}
			for _, a := range acls {
				t.Run(a.name, func(t *testing.T) {
					key := "public/acl-" + randHex(4)
					a.req.path = e.path(key)
					r := e.do(t, "env", a.req)
					e.refuse(t, r, "AccessDenied", 403)
					e.absent(t, b, key)
					ups, err := direct.ListMultipartUploads(ctx(t), &s3.ListMultipartUploadsInput{Bucket: aws.String(b), Prefix: aws.String(key)})
					must(t, err, "ListMultipartUploads directly")
					if len(ups.Uploads) != 0 {
						t.Errorf("store: an upload with a public ACL exists for %s", key)
					}
				})
			}
			t.Run("PutObjectAcl public-read", func(t *testing.T) {
				before := e.owner.do(t, advReq{method: "GET", path: e.path(advPublic), query: "acl"})
				r := e.do(t, "env", advReq{method: "PUT", path: e.path(advPublic), query: "acl", header: map[string]string{"X-Amz-Acl": "public-read"}})
				e.refuse(t, r, "AccessDenied", 403)
				after := e.owner.do(t, advReq{method: "GET", path: e.path(advPublic), query: "acl"})
				if !sameConfig(before, after) {
					t.Errorf("store: the object's ACL changed:\n%s\n%s", before, after)
				}
			})
			t.Run("PutObject private ACL", func(t *testing.T) {
				key := "public/private-" + randHex(4)
				if r := e.do(t, "env", advReq{method: "PUT", path: e.path(key), body: []byte("x"), header: map[string]string{"X-Amz-Acl": "private"}}); r.status != 200 {
					t.Errorf("control: PutObject with a private ACL: %s", r)
				}
			})
			t.Run("CreateBucket public-read", func(t *testing.T) {
				name := "adv-" + randHex(5)
				r := e.do(t, "env", advReq{method: "PUT", path: "/" + name, header: map[string]string{"X-Amz-Acl": "public-read"}})
				e.refuse(t, r, "AccessDenied", 403)
				if o := e.owner.do(t, advReq{method: "HEAD", path: "/" + name}); o.status == 200 {
					t.Errorf("store: bucket %s was created", name)
				}
			})
			t.Run("bypass governance retention", func(t *testing.T) {
				key := "public/retained-" + randHex(4)
				put, err := direct.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String(key), Body: strings.NewReader("kept")})
				must(t, err, "PutObject directly")
				version := aws.ToString(put.VersionId)
				if version == "" {
					t.Fatal("the store gave no version id in a versioned bucket")
				}
				r := e.do(t, "env", advReq{method: "DELETE", path: e.path(key), query: "versionId=" + url.QueryEscape(version),
					header: map[string]string{"X-Amz-Bypass-Governance-Retention": "true"}})
				e.refuse(t, r, "AccessDenied", 403)
				if _, err := direct.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(b), Key: aws.String(key), VersionId: aws.String(version)}); err != nil {
					t.Errorf("store: version %s of %s is gone: %v", version, key, err)
				}
			})
			t.Run("admin control", func(t *testing.T) {
				scratch := newBucket(t, up)
				r := e.do(t, "admin", advReq{method: "PUT", path: "/" + scratch, query: "versioning",
					body: []byte(`<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>`)})
				if r.status != 200 {
					t.Fatalf("admin PutBucketVersioning: %s", r)
				}
				v, err := direct.GetBucketVersioning(ctx(t), &s3.GetBucketVersioningInput{Bucket: aws.String(scratch)})
				must(t, err, "GetBucketVersioning directly")
				if v.Status != types.BucketVersioningStatusEnabled {
					t.Errorf("store: versioning %q after an admin enabled it", v.Status)
				}
			})
		})
	}
}

// sameConfig reports whether two reads of a configuration show the same
// state: the same document, or the same error (error bodies carry request
// ids).
func sameConfig(a, b advResp) bool {
	if a.status != b.status {
		return false
	}
	if a.status >= 300 {
		return a.code == b.code
	}
	return bytes.Equal(a.body, b.body)
}

// withMD5 adds Content-MD5 for a configuration body (S3 requires it on
// several of them).
func withMD5(h map[string]string, body []byte) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	if len(body) > 0 {
		out["Content-Md5"] = contentMD5(body)
	}
	return out
}

// anonymousLocked asserts that anonymous requests straight to the store
// read neither the deny-rule object nor the SSE-S3 one.
func (e *advEnv) anonymousLocked(t testing.TB) {
	t.Helper()
	hc := testbed.HTTPClient(t, e.up.CAFile)
	for _, k := range []string{advDenied, advSSE, ""} {
		if k == advSSE && e.sse == nil {
			continue
		}
		resp, err := hc.Get(e.up.Endpoint + "/" + e.bucket + "/" + k)
		if err != nil {
			t.Fatalf("anonymous GET at the store: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			what := k
			if k == "" {
				what = "the bucket listing"
			}
			t.Errorf("store: an anonymous request reads %s", what)
		}
	}
}

// TestAdversarialSignatureScope sends signatures scoped to another region
// (header and presigned, and under S3SEAL_REGION), presigned URLs whose
// X-Amz-Expires is out of range or overflows, and SigV2 presigned URLs:
// each is refused and nothing is stored.
func TestAdversarialSignatureScope(t *testing.T) {
	testbed.Require(t)
	up := shared.minio
	e := newAdvEnv(t, up, advOptions{})
	for _, presign := range []bool{false, true} {
		name := "header"
		if presign {
			name = "presigned"
		}
		t.Run(name+"/control", func(t *testing.T) {
			key := "public/region-ok-" + randHex(4)
			if r := e.do(t, "env", advReq{method: "PUT", path: e.path(key), body: []byte("x"), presign: presign}); r.status != 200 {
				t.Errorf("PUT signed for us-east-1: %s", r)
			}
		})
		for _, region := range []string{"eu-west-3", "us-east-2", "US-EAST-1", "aws-global"} {
			t.Run(name+"/"+region, func(t *testing.T) {
				key := "public/region-" + randHex(4)
				r := e.do(t, "env", advReq{method: "PUT", path: e.path(key), body: []byte("x"), region: region, presign: presign})
				if presign {
					refused(t, r, "", 400)
					if r.code != "AuthorizationHeaderMalformed" && r.code != "AuthorizationQueryParametersError" {
						t.Errorf("code %q, want AuthorizationHeaderMalformed", r.code)
					}
				} else {
					refused(t, r, "AuthorizationHeaderMalformed", 400)
				}
				e.absent(t, e.bucket, key)
				r = e.do(t, "env", advReq{method: "GET", path: e.path(advPublic), region: region, presign: presign})
				refused(t, r, "", 400)
			})
		}
	}
	t.Run("S3SEAL_REGION", func(t *testing.T) {
		p := startProxy(t, up, proxyOptions{Env: map[string]string{"S3SEAL_REGION": "eu-central-1"}})
		c := newAdvClient(t, p, p.AccessKey, p.SecretKey)
		path := "/" + e.bucket + "/" + advPublic
		if r := c.do(t, advReq{method: "GET", path: path, region: "eu-central-1"}); r.status != 200 {
			t.Errorf("control: GET signed for the region s3seal serves: %s", r)
		}
		refused(t, c.do(t, advReq{method: "GET", path: path}), "AuthorizationHeaderMalformed", 400)
	})
	for _, exp := range []string{"1000000000000000000", "9223372036854775807", "9223372036854775808", "604801", "-1", "0", "1e18", " 60"} {
		t.Run("X-Amz-Expires="+exp, func(t *testing.T) {
			key := "public/expires-" + randHex(4)
			r := e.do(t, "env", advReq{method: "PUT", path: e.path(key), body: []byte("x"), presign: true, expires: url.QueryEscape(exp)})
			refused(t, r, "AuthorizationQueryParametersError", 400)
			e.absent(t, e.bucket, key)
		})
	}
	t.Run("SigV2 presigned", func(t *testing.T) {
		for _, raw := range []string{"/" + advDenied, advDenied, advCertKey, "public/../" + advDenied} {
			r := e.sigV2Get(t, "env", "/"+e.bucket+"/"+raw)
			refused(t, r, "")
			e.noLeak(t, r)
		}
	})
}

// sigV2Get sends a SigV2 presigned GET (AWSAccessKeyId, Expires,
// Signature) for the raw path, signed over the path as sent.
func (e *advEnv) sigV2Get(t testing.TB, client, rawPath string) advResp {
	t.Helper()
	c := e.clients[client]
	expires := strconv.FormatInt(time.Now().Add(10*time.Minute).Unix(), 10)
	m := hmac.New(sha1.New, []byte(c.rc.p.SecretKey))
	m.Write([]byte("GET\n\n\n" + expires + "\n" + rawPath))
	q := "AWSAccessKeyId=" + url.QueryEscape(c.rc.p.AccessKey) + "&Expires=" + expires + "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(m.Sum(nil)))
	req, err := http.NewRequest("GET", e.p.Endpoint, nil)
	must(t, err, "request")
	req.URL.Opaque, req.URL.RawQuery = rawPath, q
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := c.rc.hc.Do(req)
	if err != nil {
		return advResp{err: err}
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	out := advResp{status: resp.StatusCode, body: b.Bytes(), header: resp.Header}
	var se s3Error
	if xml.Unmarshal(out.body, &se) == nil {
		out.code, out.message = se.Code, se.Message
	}
	return out
}
