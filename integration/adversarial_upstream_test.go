package integration

import (
	"archive/tar"
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/integration/testbed"
)

// Only S3 goes upstream: the store's own admin API, service-level requests
// other than ListBuckets, methods and bucket names S3 does not use,
// store-specific headers and unknown operations are refused before they
// reach the store.

// TestAdversarialStoreAdminAPI sends the stores' admin APIs through s3seal,
// signed with s3seal's upstream (owner) credentials if forwarded: MinIO's
// /minio/admin/v3 (read as bucket "minio") and versitygw's PATCH
// /create-user on the S3 port. Each must be refused and the store must hold
// no new policy, user or bucket.
func TestAdversarialStoreAdminAPI(t *testing.T) {
	testbed.Require(t)
	for _, up := range advStores(t) {
		t.Run(up.Name, func(t *testing.T) {
			e := newAdvEnv(t, up, advOptions{})
			t.Run("control", func(t *testing.T) {
				r := e.do(t, "env", advReq{method: "GET", path: e.path(advPublic)})
				if r.status != 200 || !bytes.Equal(r.body, e.planted[advPublic]) {
					t.Errorf("GET %s: %s", advPublic, r)
				}
			})
			if up.Name == "minio" {
				minioAdminAttacks(t, e)
			} else {
				versitygwAdminAttacks(t, e)
			}
		})
	}
}

func minioAdminAttacks(t *testing.T, e *advEnv) {
	reads := []struct{ name, path, query, host, leak string }{
		{"server info", "/minio/admin/v3/info", "", "", "deploymentID"},
		{"canned policies", "/minio/admin/v3/list-canned-policies", "", "", "readwrite"},
		{"users", "/minio/admin/v3/list-users", "", "", "accessKey"},
		{"KMS status", "/minio/kms/v1/status", "", "", "endpoints"},
		{"cluster metrics", "/minio/v2/metrics/cluster", "", "", "minio_"},
		{"health", "/minio/health/cluster", "", "", ""},
		{"virtual-hosted server info", "/admin/v3/info", "", "minio." + advBase, "deploymentID"},
		{"meta bucket", "/.minio.sys/config/config.json", "", "", "\"version\""},
	}
	for _, c := range reads {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(t, "env", advReq{method: "GET", path: c.path, query: c.query, host: c.host})
			e.refuse(t, r, "InvalidBucketName", 400)
			if c.leak != "" && bytes.Contains(r.body, []byte(c.leak)) {
				t.Errorf("the answer is the store's admin data (%q): %.200s", c.leak, r.body)
			}
		})
	}
	t.Run("presigned server info", func(t *testing.T) {
		r := e.do(t, "env", advReq{method: "GET", path: "/minio/admin/v3/info", presign: true})
		e.refuse(t, r, "InvalidBucketName", 400)
		if bytes.Contains(r.body, []byte("deploymentID")) {
			t.Errorf("the answer is the store's server info: %.200s", r.body)
		}
	})
	t.Run("add canned policy", func(t *testing.T) {
		name := "adv-" + randHex(4)
		policy := []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":["arn:aws:s3:::*"]}]}`)
		r := e.do(t, "env", advReq{method: "PUT", path: "/minio/admin/v3/add-canned-policy", query: "name=" + name, body: policy})
		e.refuse(t, r, "InvalidBucketName", 400)
		if o := e.owner.do(t, advReq{method: "GET", path: "/minio/admin/v3/info-canned-policy", query: "name=" + name}); o.status == 200 {
			t.Errorf("store: canned policy %s exists: %.200s", name, o.body)
		}
	})
}

func versitygwAdminAttacks(t *testing.T, e *advEnv) {
	users := func(t *testing.T) string {
		r := e.owner.do(t, advReq{method: "PATCH", path: "/list-users"})
		if r.status != 200 {
			t.Fatalf("store: list-users as owner: %s", r)
		}
		return string(r.body)
	}
	t.Run("create admin user", func(t *testing.T) {
		access, secret := "advuser"+randHex(4), "advsecret"+randHex(12)
		body := []byte("<Account><Access>" + access + "</Access><Secret>" + secret + "</Secret><Role>admin</Role></Account>")
		r := e.do(t, "env", advReq{method: "PATCH", path: "/create-user", body: body})
		e.refuse(t, r, "MethodNotAllowed", 405)
		if strings.Contains(users(t), access) {
			t.Errorf("store: account %s was created", access)
		}
		// The keys must not work at the store.
		intruder := newAdvClient(t, &proxy{Endpoint: e.up.Endpoint, CAFile: e.up.CAFile}, access, secret)
		if r := intruder.do(t, advReq{method: "GET", path: "/"}); r.status == 200 {
			t.Errorf("store: the created account's keys list buckets")
		}
	})
	t.Run("list users", func(t *testing.T) {
		r := e.do(t, "env", advReq{method: "PATCH", path: "/list-users"})
		e.refuse(t, r, "MethodNotAllowed", 405)
		if bytes.Contains(r.body, []byte("<Access>")) || bytes.Contains(r.body, []byte(e.up.AccessKey)) {
			t.Errorf("the answer lists the store's accounts: %.200s", r.body)
		}
	})
	// An account the owner creates legitimately, for the attacks that name one.
	victim := "advvictim" + randHex(4)
	o := e.owner.do(t, advReq{method: "PATCH", path: "/create-user",
		body: []byte("<Account><Access>" + victim + "</Access><Secret>victimsecret" + randHex(8) + "</Secret><Role>user</Role></Account>")})
	if o.status/100 != 2 {
		t.Fatalf("store: create-user as owner: %s", o)
	}
	t.Run("change bucket owner", func(t *testing.T) {
		before := e.owner.do(t, advReq{method: "PATCH", path: "/list-buckets"})
		r := e.do(t, "env", advReq{method: "PATCH", path: "/change-bucket-owner", query: "bucket=" + e.bucket + "&owner=" + victim})
		e.refuse(t, r, "MethodNotAllowed", 405)
		after := e.owner.do(t, advReq{method: "PATCH", path: "/list-buckets"})
		if !bytes.Equal(before.body, after.body) {
			t.Errorf("store: bucket owners changed:\n%.300s\n%.300s", before.body, after.body)
		}
	})
}

// TestAdversarialServiceLevel sends service-level requests other than
// ListBuckets (on MinIO, POST / is the STS endpoint) as a bucket-limited and
// an unrestricted client; ListBuckets shows a limited client its buckets
// only.
func TestAdversarialServiceLevel(t *testing.T) {
	testbed.Require(t)
	for _, up := range advStores(t) {
		t.Run(up.Name, func(t *testing.T) {
			e := newAdvEnv(t, up, advOptions{})
			sts := []byte("Action=AssumeRole&Version=2011-06-15&DurationSeconds=3600")
			for _, client := range []string{"limited", "env"} {
				for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "HEAD"} {
					t.Run(client+"/"+m, func(t *testing.T) {
						req := advReq{method: m, path: "/"}
						if m == "POST" {
							req.body = sts
							req.header = map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
						}
						r := e.do(t, client, req)
						e.refuse(t, r, "", 405, 400)
						if m != "HEAD" && r.code != "MethodNotAllowed" && r.code != "InvalidRequest" && r.code != "InvalidArgument" {
							t.Errorf("code %q, want MethodNotAllowed", r.code)
						}
						for _, leak := range []string{"<AccessKeyId>", "<SecretAccessKey>", "<SessionToken>"} {
							if bytes.Contains(r.body, []byte(leak)) {
								t.Errorf("the answer carries store credentials (%s)", leak)
							}
						}
					})
				}
			}
			t.Run("limited/ListBuckets", func(t *testing.T) {
				r := e.do(t, "limited", advReq{method: "GET", path: "/"})
				if r.status != 200 || !bytes.Contains(r.body, []byte("<Name>"+e.bucket+"</Name>")) {
					t.Fatalf("ListBuckets: %s", r)
				}
				if n := bytes.Count(r.body, []byte("<Name>")); n != 1 || bytes.Contains(r.body, []byte(e.other)) {
					t.Errorf("a client limited to one bucket sees %d buckets: %.300s", n, r.body)
				}
			})
		})
	}
}

// TestAdversarialBucketNamesAndMethods sends bucket names S3 does not allow
// or stores reserve, and methods S3 does not use.
func TestAdversarialBucketNamesAndMethods(t *testing.T) {
	testbed.Require(t)
	for _, up := range advStores(t) {
		t.Run(up.Name, func(t *testing.T) {
			e := newAdvEnv(t, up, advOptions{})
			names := []struct{ method, bucket string }{
				{"GET", "minio"}, {"PUT", "minio"}, {"GET", ".minio.sys"}, {"GET", "Upper"},
				{"PUT", "ab"}, {"PUT", "a..b"}, {"PUT", "192.168.10.1"}, {"PUT", "-dash"},
				{"PUT", "under_score"}, {"PUT", strings.Repeat("l", 64)},
			}
			for _, n := range names {
				t.Run(n.method+" "+n.bucket, func(t *testing.T) {
					path := "/" + n.bucket
					if n.method == "GET" {
						path += "/some/key"
					}
					r := e.do(t, "env", advReq{method: n.method, path: path})
					e.refuse(t, r, "InvalidBucketName", 400)
					if o := e.owner.do(t, advReq{method: "HEAD", path: "/" + n.bucket}); n.method == "PUT" && o.status == 200 {
						t.Errorf("store: bucket %s exists", n.bucket)
					}
				})
			}
			for _, m := range []string{"PATCH", "PROPFIND", "TRACE", "MKCOL", "LOCK"} {
				t.Run(m+" object", func(t *testing.T) {
					r := e.do(t, "env", advReq{method: m, path: e.path(advPublic), body: []byte("x")})
					e.refuse(t, r, "MethodNotAllowed", 405)
					e.intact(t)
				})
			}
			t.Run("PATCH bucket/create", func(t *testing.T) {
				// versitygw's admin CreateBucket, sent to any store.
				name := "adv-" + randHex(5)
				r := e.do(t, "env", advReq{method: "PATCH", path: "/" + name + "/create", header: map[string]string{"X-Vgw-Owner": up.AccessKey}})
				e.refuse(t, r, "MethodNotAllowed", 405)
				if o := e.owner.do(t, advReq{method: "HEAD", path: "/" + name}); o.status == 200 {
					t.Errorf("store: bucket %s was created", name)
				}
			})
		})
	}
}

// TestAdversarialStoreExtensions sends store-specific headers, metadata
// the store interprets and store-specific operations: MinIO's forced
// bucket deletion, Snowball auto-extraction of a tar into prefixes under
// other rules, replication headers, bucket event listening and metadata
// listings. Each is refused, on every store, and the store is unchanged.
func TestAdversarialStoreExtensions(t *testing.T) {
	testbed.Require(t)
	for _, up := range advStores(t) {
		t.Run(up.Name, func(t *testing.T) {
			e := newAdvEnv(t, up, advOptions{})
			direct := up.Client(t)

			t.Run("force delete", func(t *testing.T) {
				doomed := newBucket(t, up)
				_, err := direct.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(doomed), Key: aws.String("keep"), Body: strings.NewReader("keep me")})
				must(t, err, "plant")
				r := e.do(t, "env", advReq{method: "DELETE", path: "/" + doomed, header: map[string]string{"X-Minio-Force-Delete": "true"}})
				e.refuse(t, r, "InvalidArgument", 400)
				mentions(t, r, "x-minio-force-delete")
				if _, ok := e.stored(t, doomed, "keep"); !ok {
					t.Error("store: the bucket and its object are gone")
				}
				// Control: an empty bucket is deleted without the header.
				empty := newBucket(t, up)
				if r := e.do(t, "env", advReq{method: "DELETE", path: "/" + empty}); r.status != 204 {
					t.Errorf("DeleteBucket of an empty bucket: %s", r)
				}
			})

			// Tar entries: "planted" stands for secret/planted-<id>, or
			// planted-<id> under the prefix header.
			snowball := []struct {
				name   string
				header map[string]string
				names  []string
			}{
				{"auto-extract", map[string]string{"X-Amz-Meta-Snowball-Auto-Extract": "true"}, []string{"secret/planted", advReadonly, advDenied, advCertKey}},
				{"auto-extract lower case", map[string]string{"x-amz-meta-snowball-auto-extract": "true"}, []string{"secret/planted"}},
				{"auto-extract with prefix", map[string]string{"X-Amz-Meta-Snowball-Auto-Extract": "true", "X-Amz-Meta-Minio-Snowball-Prefix": "secret"}, []string{"planted"}},
				{"snowball metadata only", map[string]string{"X-Amz-Meta-Minio-Snowball-Ignore-Errors": "true"}, []string{"secret/planted"}},
			}
			for _, c := range snowball {
				t.Run(c.name, func(t *testing.T) {
					e.replant(t)
					id := randHex(4)
					target := "public/upload-" + id + ".tar"
					files := map[string][]byte{}
					for _, n := range c.names {
						if strings.HasSuffix(n, "planted") {
							n += "-" + id
						}
						files[n] = []byte("PLANTED PLAINTEXT " + randHex(6))
					}
					// Content-MD5 makes s3seal send the body as it is, which
					// MinIO's extraction reads.
					body := tarOf(t, files)
					hdr := map[string]string{"Content-Md5": contentMD5(body)}
					for k, v := range c.header {
						hdr[k] = v
					}
					r := e.do(t, "env", advReq{method: "PUT", path: e.path(target), header: hdr, body: body})
					e.refuse(t, r, "InvalidArgument", 400)
					for k := range c.header {
						mentions(t, r, k)
						break
					}
					e.absent(t, e.bucket, "secret/planted-"+id)
					e.absent(t, e.bucket, target)
					e.intact(t)
				})
			}

			headers := []struct{ name, value string }{
				{"X-Minio-Source-Replication-Request", "true"},
				{"X-Minio-Source-Mtime", "2001-01-01T00:00:00Z"},
				{"X-Minio-Replication-Delete-Marker", "true"},
				{"X-Minio-Internal-Inline-Data", "true"},
			}
			for _, h := range headers {
				t.Run(h.name, func(t *testing.T) {
					key := "public/ext-" + randHex(4)
					r := e.do(t, "env", advReq{method: "PUT", path: e.path(key), header: map[string]string{h.name: h.value}, body: []byte("x")})
					e.refuse(t, r, "InvalidArgument", 400)
					mentions(t, r, h.name)
					e.absent(t, e.bucket, key)
				})
			}

			unknown := []struct{ name, method, path, query string }{
				{"listen for bucket events", "GET", "/" + e.bucket, "events=s3%3AObjectCreated%3A%2A&prefix=certs%2F"},
				{"listen for events service-wide", "GET", "/", "events=s3%3AObjectCreated%3A%2A"},
				{"bucket POST without operation", "POST", "/" + e.bucket, "unknown"},
				{"object POST without operation", "POST", e.path(advPublic), ""},
			}
			// Parameters S3 does not have are not forwarded: S3 ignores
			// them, stores may not (MinIO's metadata=true listing shows
			// every object's metadata). The request is served as the S3
			// operation it is.
			t.Run("listing with metadata", func(t *testing.T) {
				r := e.do(t, "env", advReq{method: "GET", path: "/" + e.bucket, query: "list-type=2&metadata=true"})
				if r.status != 200 || bytes.Contains(r.body, []byte("<UserMetadata>")) || bytes.Contains(r.body, []byte("X-Amz-Meta")) {
					t.Errorf("answered %s: want the plain listing, without the store's metadata extension", r)
				}
				noReservedNames(t, r)
			})
			for _, c := range unknown {
				t.Run(c.name, func(t *testing.T) {
					r := e.do(t, "env", advReq{method: c.method, path: c.path, query: c.query, timeout: 3 * time.Second})
					switch {
					case c.path == "/":
						e.refuse(t, r, "", 405, 400, 501)
					case c.method == "POST" && c.query == "":
						// S3's answer to a POST on an object that names no
						// operation, given before authentication.
						e.refuse(t, r, "MethodNotAllowed", 405)
					default:
						e.refuse(t, r, "NotImplemented", 501)
					}
					e.noLeak(t, r)
					noReservedNames(t, r)
					e.intact(t)
				})
			}
		})
	}
}

// tarOf returns a tar archive of files.
func tarOf(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for name, data := range files {
		must(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}), "tar header")
		_, err := tw.Write(data)
		must(t, err, "tar data")
	}
	must(t, tw.Close(), "tar")
	return b.Bytes()
}
