package integration

import (
	"bytes"
	"encoding/xml"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/integration/testbed"
)

// Keys the store normalises differently, the reserved certificate-storage
// prefix, and every key a request touches: copy sources, UploadPartCopy,
// DeleteObjects and listings.

// keyEncoding writes a key so that s3seal, reading it literally, sees
// another key than the store, which cleans paths (MinIO: "//x" → "x",
// "a/../x" → "x").
type keyEncoding struct {
	name string
	// raw is the key part of the path as sent, for key k.
	raw func(k string) string
	// vhost sends it virtual-hosted; presign as a presigned URL.
	vhost, presign bool
	// literal encodings are keys the store keeps literally (a '%' in a
	// key): any answer is fine as long as the target stays untouched.
	literal bool
}

// normalisingEncodings reach k from a key s3seal would match against
// another rule ("public/...") or none ("/...").
var normalisingEncodings = []keyEncoding{
	{name: "leading slash", raw: func(k string) string { return "/" + k }},
	{name: "encoded slash", raw: func(k string) string { return "%2F" + k }},
	{name: "lower-case encoded slash", raw: func(k string) string { return "%2f" + k }},
	{name: "dot-dot", raw: func(k string) string { return "public/../" + k }},
	{name: "encoded dot-dot", raw: func(k string) string { return "public/%2e%2e/" + k }},
	{name: "upper-case encoded dot-dot", raw: func(k string) string { return "public/%2E%2E/" + k }},
	{name: "mixed-case encoded dot-dot", raw: func(k string) string { return "public/%2E%2e/" + k }},
	{name: "encoded dot-dot-slash", raw: func(k string) string { return "public/..%2F" + k }},
	{name: "dot segment", raw: func(k string) string { return "./" + k }},
	{name: "empty segment and dot-dot", raw: func(k string) string { return "public//../" + k }},
	{name: "virtual-hosted leading slash", raw: func(k string) string { return "/" + k }, vhost: true},
	{name: "virtual-hosted dot-dot", raw: func(k string) string { return "public/../" + k }, vhost: true},
	{name: "presigned leading slash", raw: func(k string) string { return "/" + k }, presign: true},
	{name: "presigned encoded dot-dot", raw: func(k string) string { return "public/%2e%2e/" + k }, presign: true},
	{name: "double-encoded dot-dot", raw: func(k string) string { return "public/%252e%252e/" + k }, literal: true},
}

// request returns req addressed to key k through encoding enc.
func (enc keyEncoding) request(e *advEnv, k string, req advReq) advReq {
	raw := enc.raw(urlPathEscape(k))
	if enc.vhost {
		req.path, req.host = "/"+raw, e.bucket+"."+advBase
	} else {
		req.path = "/" + e.bucket + "/" + raw
	}
	req.presign = enc.presign
	return req
}

// tagsOf returns the number of tags on key, read directly, and removes
// them so that the next case starts without.
func (e *advEnv) tagsOf(t testing.TB, key string) int {
	t.Helper()
	c := e.up.Client(t)
	out, err := c.GetObjectTagging(ctx(t), &s3.GetObjectTaggingInput{Bucket: aws.String(e.bucket), Key: aws.String(key)})
	must(t, err, "GetObjectTagging ", key, " directly")
	if len(out.TagSet) > 0 {
		_, err := c.DeleteObjectTagging(ctx(t), &s3.DeleteObjectTaggingInput{Bucket: aws.String(e.bucket), Key: aws.String(key)})
		must(t, err, "DeleteObjectTagging ", key, " directly")
	}
	return len(out.TagSet)
}

// tagging is a PutObjectTagging body with a tag a lifecycle rule could
// act on.
var tagging = []byte(`<Tagging><TagSet><Tag><Key>expire</Key><Value>now</Value></Tag></TagSet></Tagging>`)

// TestAdversarialKeyNormalisation reaches keys under deny, deny-writes and
// envelope rules through paths the store cleans: each request is refused
// with InvalidArgument before it reaches the store, and the store still
// holds the original bytes (no plaintext under the envelope prefix).
func TestAdversarialKeyNormalisation(t *testing.T) {
	testbed.Require(t)
	type op struct {
		name   string
		target func() string
		req    advReq
		check  func(t *testing.T, e *advEnv, r advResp, target string)
	}
	readCheck := func(t *testing.T, e *advEnv, r advResp, _ string) {
		e.noLeak(t, r)
		e.intact(t)
	}
	writeCheck := func(t *testing.T, e *advEnv, _ advResp, _ string) { e.intact(t) }
	fixed := func(k string) func() string { return func() string { return k } }
	ops := []op{
		{"GET denied", fixed(advDenied), advReq{method: "GET"}, readCheck},
		{"HEAD denied", fixed(advDenied), advReq{method: "HEAD"}, readCheck},
		{"GET denied version", fixed(advDenied), advReq{method: "GET", query: "versionId=null"}, readCheck},
		{"PUT over deny-writes", fixed(advReadonly), advReq{method: "PUT", body: []byte("OVERWRITTEN")}, writeCheck},
		{"PUT under envelope", func() string { return "secret/plain-" + randHex(4) }, advReq{method: "PUT", body: []byte("PLAINTEXT UNDER ENVELOPE")},
			func(t *testing.T, e *advEnv, _ advResp, target string) { e.absent(t, e.bucket, target) }},
		{"DELETE deny-writes", fixed(advReadonly), advReq{method: "DELETE"}, writeCheck},
		{"DELETE deny-writes version", fixed(advReadonly), advReq{method: "DELETE", query: "versionId=null"}, writeCheck},
		{"tag deny-writes", fixed(advReadonly), advReq{method: "PUT", query: "tagging", body: tagging},
			func(t *testing.T, e *advEnv, _ advResp, target string) {
				if n := e.tagsOf(t, target); n != 0 {
					t.Errorf("store: %s has %d tags", target, n)
				}
			}},
	}
	for _, up := range advStores(t) {
		t.Run(up.Name, func(t *testing.T) {
			e := newAdvEnv(t, up, advOptions{})
			t.Run("control", func(t *testing.T) {
				key := "public/control-" + randHex(4)
				if r := e.do(t, "env", advReq{method: "PUT", path: e.path(key), body: []byte("fine")}); r.status != 200 {
					t.Fatalf("PUT %s: %s", key, r)
				}
				if got, _ := e.stored(t, e.bucket, key); string(got) != "fine" {
					t.Errorf("store: %s holds %q", key, got)
				}
			})
			for _, enc := range normalisingEncodings {
				for _, o := range ops {
					t.Run(enc.name+"/"+o.name, func(t *testing.T) {
						target := o.target()
						r := e.do(t, "env", enc.request(e, target, o.req))
						if !enc.literal {
							e.refuse(t, r, "InvalidArgument", 400)
							mentions(t, r, target)
						}
						o.check(t, e, r, target)
					})
				}
			}
			weird := []struct{ name, raw string }{
				{"NUL", "a%00b"}, {"control character", "a%01b"}, {"newline", "a%0Ab"}, {"DEL", "a%7Fb"},
				{"invalid UTF-8", "a%FFb"}, {"overlong UTF-8 slash", "a%C0%AFb"}, {"lone surrogate", "a%ED%A0%80b"},
				{"trailing dot-dot", "x/.."}, {"trailing dot", "x/."},
			}
			for _, w := range weird {
				t.Run(w.name, func(t *testing.T) {
					prefix := "public/weird-" + randHex(4) + "-"
					r := e.do(t, "env", advReq{method: "PUT", path: e.path(prefix) + w.raw, body: []byte("weird")})
					e.refuse(t, r, "InvalidArgument", 400)
					out, err := up.Client(t).ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: aws.String(e.bucket), Prefix: aws.String(strings.TrimSuffix(prefix, "-"))})
					must(t, err, "list directly")
					for _, o := range out.Contents {
						t.Errorf("store holds %q", aws.ToString(o.Key))
					}
				})
			}
		})
	}
}

// TestAdversarialReservedPrefix attacks the certificate-storage prefix
// s3seal reserves (it holds TLS private keys) with every operation under
// every encoding: each is refused, the key's bytes, tags and the owner's
// multipart upload there are unchanged, and nothing new appears under the
// prefix.
func TestAdversarialReservedPrefix(t *testing.T) {
	testbed.Require(t)
	encodings := append([]keyEncoding{
		{name: "plain", raw: func(k string) string { return k }},
		{name: "percent-encoded letters", raw: func(k string) string { return "%63%65rts" + strings.TrimPrefix(k, "certs") }},
		{name: "virtual-hosted", raw: func(k string) string { return k }, vhost: true},
		{name: "presigned", raw: func(k string) string { return k }, presign: true},
	}, normalisingEncodings...)
	type op struct {
		name string
		req  advReq
	}
	ops := []op{
		{"GET", advReq{method: "GET"}},
		{"HEAD", advReq{method: "HEAD"}},
		{"GET version", advReq{method: "GET", query: "versionId=null"}},
		{"GET range", advReq{method: "GET", header: map[string]string{"Range": "bytes=0-9"}}},
		{"GET acl", advReq{method: "GET", query: "acl"}},
		{"GET tagging", advReq{method: "GET", query: "tagging"}},
		{"GET attributes", advReq{method: "GET", query: "attributes", header: map[string]string{"X-Amz-Object-Attributes": "ETag,ObjectSize"}}},
		{"PUT", advReq{method: "PUT", body: []byte("-----BEGIN EC PRIVATE KEY-----\nATTACKER\n")}},
		{"PUT tagging", advReq{method: "PUT", query: "tagging", body: tagging}},
		{"PUT acl", advReq{method: "PUT", query: "acl", header: map[string]string{"X-Amz-Acl": "private"}}},
		{"DELETE", advReq{method: "DELETE"}},
		{"DELETE version", advReq{method: "DELETE", query: "versionId=null"}},
		{"create multipart upload", advReq{method: "POST", query: "uploads"}},
		{"copy onto it", advReq{method: "PUT", header: map[string]string{"X-Amz-Copy-Source": "BUCKET/" + advPublic}}},
	}
	for _, up := range advStores(t) {
		t.Run(up.Name, func(t *testing.T) {
			e := newAdvEnv(t, up, advOptions{})
			direct := up.Client(t)
			// What s3seal's certificate storage might hold besides keys: an
			// upload in progress.
			const upKey = "certs/locks/upload"
			var uploadID, partETag string
			newUpload := func(t *testing.T) {
				mpu, err := direct.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(e.bucket), Key: aws.String(upKey)})
				must(t, err, "CreateMultipartUpload directly")
				uploadID = aws.ToString(mpu.UploadId)
				part, err := direct.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String(e.bucket), Key: aws.String(upKey),
					UploadId: aws.String(uploadID), PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("lock part"))})
				must(t, err, "UploadPart directly")
				partETag = aws.ToString(part.ETag)
			}
			newUpload(t)
			unchanged := func(t *testing.T) {
				e.intact(t)
				if n := e.tagsOf(t, advCertKey); n != 0 {
					t.Errorf("store: %s has %d tags", advCertKey, n)
				}
				out, err := direct.ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: aws.String(e.bucket), Prefix: aws.String(advReserved)})
				must(t, err, "list the reserved prefix directly")
				for _, o := range out.Contents {
					if k := aws.ToString(o.Key); k != advCertKey {
						t.Errorf("store holds %s under the reserved prefix", k)
						_, _ = direct.DeleteObject(ctx(t), &s3.DeleteObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(k)})
					}
				}
				parts, err := direct.ListParts(ctx(t), &s3.ListPartsInput{Bucket: aws.String(e.bucket), Key: aws.String(upKey), UploadId: aws.String(uploadID)})
				switch {
				case err != nil:
					t.Errorf("store: the owner's upload under the reserved prefix is gone: %v", err)
				case len(parts.Parts) != 1 || aws.ToString(parts.Parts[0].ETag) != partETag:
					t.Errorf("store: the owner's upload has %d parts now", len(parts.Parts))
				default:
					return
				}
				_, _ = direct.AbortMultipartUpload(ctx(t), &s3.AbortMultipartUploadInput{Bucket: aws.String(e.bucket), Key: aws.String(upKey), UploadId: aws.String(uploadID)})
				_, _ = direct.DeleteObject(ctx(t), &s3.DeleteObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(upKey)})
				newUpload(t)
			}
			t.Run("control", func(t *testing.T) {
				r := e.do(t, "env", advReq{method: "GET", path: e.path(advPublic)})
				if r.status != 200 || !bytes.Equal(r.body, e.planted[advPublic]) {
					t.Errorf("GET %s: %s", advPublic, r)
				}
			})
			for _, enc := range encodings {
				for _, o := range ops {
					t.Run(enc.name+"/"+o.name, func(t *testing.T) {
						req := o.req
						if src, ok := req.header["X-Amz-Copy-Source"]; ok {
							req.header = map[string]string{"X-Amz-Copy-Source": strings.Replace(src, "BUCKET", e.bucket, 1)}
						}
						r := e.do(t, "env", enc.request(e, advCertKey, req))
						if !enc.literal {
							e.refuse(t, r, "", 400, 403)
						}
						e.noLeak(t, r)
						unchanged(t)
					})
				}
			}
			// The owner's upload, addressed through s3seal.
			upload := []struct {
				name string
				req  func() advReq
			}{
				{"ListParts", func() advReq { return advReq{method: "GET", query: "uploadId=" + uploadID} }},
				{"UploadPart", func() advReq {
					return advReq{method: "PUT", query: "partNumber=1&uploadId=" + uploadID, body: []byte("attacker part")}
				}},
				{"UploadPartCopy", func() advReq {
					return advReq{method: "PUT", query: "partNumber=2&uploadId=" + uploadID, header: map[string]string{"X-Amz-Copy-Source": e.bucket + "/" + advPublic}}
				}},
				{"CompleteMultipartUpload", func() advReq {
					return advReq{method: "POST", query: "uploadId=" + uploadID,
						body: []byte(`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>` + partETag + `</ETag></Part></CompleteMultipartUpload>`)}
				}},
				{"AbortMultipartUpload", func() advReq { return advReq{method: "DELETE", query: "uploadId=" + uploadID} }},
			}
			for _, enc := range []keyEncoding{encodings[0], normalisingEncodings[0], normalisingEncodings[4]} {
				for _, u := range upload {
					t.Run(enc.name+"/"+u.name, func(t *testing.T) {
						r := e.do(t, "env", enc.request(e, upKey, u.req()))
						e.refuse(t, r, "", 400, 403)
						e.noLeak(t, r)
						e.absent(t, e.bucket, upKey)
						unchanged(t)
					})
				}
			}
		})
	}
}

// TestAdversarialCopySource names denied and reserved keys as copy
// sources, in every form a store may read them, for CopyObject and
// UploadPartCopy with ranges: each is refused and the destination never
// holds their bytes; copies into reserved and deny-writes destinations are
// refused too.
func TestAdversarialCopySource(t *testing.T) {
	testbed.Require(t)
	for _, up := range advStores(t) {
		t.Run(up.Name, func(t *testing.T) {
			e := newAdvEnv(t, up, advOptions{})
			b := e.bucket
			// Sources and the refusal each must get: 403 for authorization,
			// 400 for a key the store would read as another; none listed
			// means any answer, as long as no denied bytes are copied.
			sources := []struct {
				name, value string
				status      []int
			}{
				{"denied", b + "/" + advDenied, []int{403}},
				{"reserved", b + "/" + advCertKey, []int{403}},
				{"leading-slash form", "/" + b + "/" + advDenied, []int{403}},
				{"encoded slashes", b + "%2F" + strings.ReplaceAll(advDenied, "/", "%2F"), []int{403}},
				{"version", b + "/" + advDenied + "?versionId=null", []int{403}},
				{"reserved version", b + "/" + advCertKey + "?versionId=null", []int{403}},
				{"unknown parameter", b + "/" + advDenied + "?x-id=CopyObject", []int{400, 403}},
				{"empty segment", b + "//" + advDenied, []int{400}},
				{"dot-dot", b + "/public/../" + advDenied, []int{400}},
				{"encoded dot-dot", b + "/public/%2e%2e/" + advDenied, []int{400}},
				{"encoded dot-dot-slash", b + "/public/..%2F" + advCertKey, []int{400}},
				{"dot-dot after a version", b + "/" + advPublic + "?versionId=null/../../" + advDenied, nil},
				{"encoded question mark", b + "/public/ok%3F/../../" + advDenied, nil},
			}
			secretBytes := [][]byte{e.planted[advDenied], e.planted[advCertKey]}
			destClean := func(t *testing.T, key string) {
				got, ok := e.stored(t, b, key)
				for _, s := range secretBytes {
					if ok && bytes.Contains(got, s) {
						t.Errorf("store: %s holds a denied or reserved object's bytes", key)
					}
				}
			}
			t.Run("control", func(t *testing.T) {
				dst := "public/copy-ok-" + randHex(4)
				r := e.do(t, "env", advReq{method: "PUT", path: e.path(dst), header: map[string]string{"X-Amz-Copy-Source": b + "/" + advPublic}})
				if r.status != 200 {
					t.Fatalf("CopyObject %s: %s", advPublic, r)
				}
				if got, _ := e.stored(t, b, dst); !bytes.Equal(got, e.planted[advPublic]) {
					t.Errorf("store: the copy holds %q", got)
				}
			})
			for _, s := range sources {
				t.Run("CopyObject/"+s.name, func(t *testing.T) {
					dst := "public/copy-" + randHex(4)
					r := e.do(t, "env", advReq{method: "PUT", path: e.path(dst), header: map[string]string{"X-Amz-Copy-Source": s.value}})
					if s.status != nil {
						e.refuse(t, r, "", s.status...)
						e.absent(t, b, dst)
					}
					e.noLeak(t, r)
					destClean(t, dst)
					e.intact(t)
				})
			}
			for _, d := range []struct{ name, key string }{{"reserved", advReserved + "planted-" + randHex(4)}, {"deny-writes", advReadonly}, {"denied", advDenied}} {
				t.Run("CopyObject into "+d.name, func(t *testing.T) {
					r := e.do(t, "env", advReq{method: "PUT", path: e.path(d.key), header: map[string]string{"X-Amz-Copy-Source": b + "/" + advPublic}})
					e.refuse(t, r, "AccessDenied", 403)
					if _, planted := e.planted[d.key]; !planted {
						e.absent(t, b, d.key)
					}
					e.intact(t)
				})
			}
			// UploadPartCopy: an upload of the client's own, parts copied
			// from sources it may not read, with and without ranges.
			dst := "public/mpu-" + randHex(4)
			init := e.do(t, "env", advReq{method: "POST", path: e.path(dst), query: "uploads"})
			var created struct {
				UploadID string `xml:"UploadId"`
			}
			if init.status != 200 || xml.Unmarshal(init.body, &created) != nil || created.UploadID == "" {
				t.Fatalf("CreateMultipartUpload: %s", init)
			}
			partNumber := 0
			for _, s := range sources {
				for _, rng := range []string{"", "bytes=0-5"} {
					name := s.name
					if rng != "" {
						name += " range"
					}
					t.Run("UploadPartCopy/"+name, func(t *testing.T) {
						partNumber++
						hdr := map[string]string{"X-Amz-Copy-Source": s.value}
						if rng != "" {
							hdr["X-Amz-Copy-Source-Range"] = rng
						}
						r := e.do(t, "env", advReq{method: "PUT", path: e.path(dst), query: "partNumber=" + strconv.Itoa(partNumber) + "&uploadId=" + created.UploadID, header: hdr})
						if s.status != nil {
							e.refuse(t, r, "", s.status...)
						}
						e.noLeak(t, r)
					})
				}
			}
			t.Run("UploadPartCopy/store holds no copied part", func(t *testing.T) {
				parts, err := up.Client(t).ListParts(ctx(t), &s3.ListPartsInput{Bucket: aws.String(b), Key: aws.String(dst), UploadId: aws.String(created.UploadID)})
				must(t, err, "ListParts directly")
				for _, p := range parts.Parts {
					t.Errorf("store: part %d (%d bytes) was copied into the upload", aws.ToInt32(p.PartNumber), aws.ToInt64(p.Size))
				}
			})
			t.Run("UploadPartCopy/control", func(t *testing.T) {
				r := e.do(t, "env", advReq{method: "PUT", path: e.path(dst), query: "partNumber=1&uploadId=" + created.UploadID,
					header: map[string]string{"X-Amz-Copy-Source": b + "/" + advPublic, "X-Amz-Copy-Source-Range": "bytes=0-5"}})
				if r.status != 200 {
					t.Errorf("UploadPartCopy from %s: %s", advPublic, r)
				}
			})
			_, _ = up.Client(t).AbortMultipartUpload(ctx(t), &s3.AbortMultipartUploadInput{Bucket: aws.String(b), Key: aws.String(dst), UploadId: aws.String(created.UploadID)})
		})
	}
}

// TestAdversarialDeleteObjects sends DeleteObjects with keys the client
// may not delete mixed with keys it may: the first come back as
// AccessDenied errors and stay in the store, the others are deleted, in
// verbose and quiet mode; keys the store would normalise are refused.
func TestAdversarialDeleteObjects(t *testing.T) {
	testbed.Require(t)
	for _, up := range advStores(t) {
		t.Run(up.Name, func(t *testing.T) {
			e := newAdvEnv(t, up, advOptions{})
			direct := up.Client(t)
			fresh := func(t *testing.T) string {
				k := "public/del-" + randHex(4)
				_, err := direct.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(k), Body: strings.NewReader("delete me")})
				must(t, err, "plant ", k)
				return k
			}
			post := func(t *testing.T, client string, body []byte) (advResp, deleteResult) {
				// Bounded: some bodies make MinIO hang (see below).
				r := e.do(t, client, advReq{method: "POST", path: "/" + e.bucket, query: "delete", body: body,
					header: map[string]string{"Content-Md5": contentMD5(body)}, timeout: 10 * time.Second})
				var res deleteResult
				if r.status == 200 {
					must(t, xml.Unmarshal(r.body, &res), "DeleteObjects answer")
				}
				return r, res
			}
			refusedKeys := []string{advDenied, advReadonly, advCertKey, advDenied + "@null", advCertKey + "@null", advReserved}
			for _, quiet := range []bool{false, true} {
				name := "verbose"
				if quiet {
					name = "quiet"
				}
				t.Run("mixed "+name, func(t *testing.T) {
					ok := fresh(t)
					r, res := post(t, "env", deleteBody(quiet, append([]string{ok}, refusedKeys...)...))
					if r.status != 200 {
						t.Fatalf("DeleteObjects: %s", r)
					}
					denied := map[string]bool{}
					for _, er := range res.Errors {
						if er.Code == "AccessDenied" {
							denied[er.Key] = true
						}
					}
					for _, k := range refusedKeys {
						k, _, _ = strings.Cut(k, "@")
						if !denied[k] {
							t.Errorf("no AccessDenied entry for %s", k)
						}
					}
					for _, d := range res.Deleted {
						if d.Key != ok {
							t.Errorf("the answer reports %s deleted", d.Key)
						}
					}
					if !quiet && len(res.Deleted) == 0 {
						t.Errorf("the answer does not report %s deleted", ok)
					}
					e.absent(t, e.bucket, ok)
					e.intact(t)
				})
			}
			// Keys the store would normalise: the request is refused, or each
			// such key is answered with an error; either way the store keeps
			// what they name. Two keys that name one object after
			// normalisation make MinIO hang without answering.
			normalising := [][]string{
				{"/" + advDenied}, {"/" + advCertKey}, {"public/../" + advReadonly}, {"./" + advCertKey},
				{"public//../" + advDenied}, {"/" + advDenied, "public//../" + advDenied},
			}
			for i, keys := range normalising {
				t.Run("normalising "+strings.Join(keys, " "), func(t *testing.T) {
					if i == len(normalising)-1 {
						// MinIO holds denied/x locked while it hangs.
						e.readTimeout = 10 * time.Second
						defer func() { e.readTimeout = 0 }()
					}
					ok := fresh(t)
					r, res := post(t, "env", deleteBody(false, append([]string{ok}, keys...)...))
					switch r.status {
					case 400:
						e.refuse(t, r, "InvalidArgument", 400)
					case 200:
						errs := map[string]bool{}
						for _, er := range res.Errors {
							errs[er.Key] = true
						}
						for _, k := range keys {
							if !errs[k] {
								t.Errorf("no error entry for %q", k)
							}
						}
					default:
						t.Errorf("DeleteObjects: %s", r)
					}
					e.intact(t)
				})
			}
			t.Run("client without delete permission", func(t *testing.T) {
				k := fresh(t)
				r, res := post(t, "reader", deleteBody(false, k))
				if r.status == 200 && (len(res.Errors) != 1 || res.Errors[0].Code != "AccessDenied") {
					t.Errorf("DeleteObjects by a read-only client: %s", r.body)
				} else if r.status != 200 {
					refused(t, r, "AccessDenied", 403)
				}
				if _, ok := e.stored(t, e.bucket, k); !ok {
					t.Errorf("store: %s was deleted by a read-only client", k)
				}
			})
		})
	}
}

// TestAdversarialListings lists into the reserved prefix in every way S3
// allows (prefix, delimiter, start-after, marker, versions, uploads, URL
// encoding, virtual-hosted, presigned), through s3seal's envelope and
// passthrough listing paths: no reserved key name ever appears. Listing
// prefixes the store would normalise are refused.
func TestAdversarialListings(t *testing.T) {
	testbed.Require(t)
	for _, up := range advStores(t) {
		for _, plain := range []bool{false, true} {
			name := up.Name + "/envelope bucket"
			if plain {
				name = up.Name + "/passthrough bucket"
			}
			t.Run(name, func(t *testing.T) {
				e := newAdvEnv(t, up, advOptions{plain: plain})
				_, err := up.Client(t).CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(e.bucket), Key: aws.String("certs/locks/upload")})
				must(t, err, "CreateMultipartUpload directly")
				b := "/" + e.bucket
				lists := []struct {
					name string
					req  advReq
				}{
					{"whole bucket v2", advReq{path: b, query: "list-type=2"}},
					{"prefix", advReq{path: b, query: "list-type=2&prefix=certs%2F"}},
					{"partial prefix", advReq{path: b, query: "list-type=2&prefix=cert"}},
					{"deep prefix", advReq{path: b, query: "list-type=2&prefix=certs%2Fcertificates%2F"}},
					{"delimiter", advReq{path: b, query: "list-type=2&delimiter=%2F&prefix=certs%2F"}},
					{"start-after", advReq{path: b, query: "list-type=2&start-after=certs%2F"}},
					{"url encoding", advReq{path: b, query: "list-type=2&encoding-type=url&prefix=certs%2F"}},
					{"v1 marker", advReq{path: b, query: "marker=certs%2F"}},
					{"v1 prefix", advReq{path: b, query: "prefix=certs%2F"}},
					{"versions", advReq{path: b, query: "versions&prefix=certs%2F"}},
					{"versions key-marker", advReq{path: b, query: "versions&key-marker=certs%2F"}},
					{"uploads", advReq{path: b, query: "uploads&prefix=certs%2F"}},
					{"uploads key-marker", advReq{path: b, query: "uploads&key-marker=cert"}},
					{"virtual-hosted", advReq{path: "/", host: e.bucket + "." + advBase, query: "list-type=2&prefix=certs%2F"}},
					{"presigned", advReq{path: b, query: "list-type=2&prefix=certs%2F", presign: true}},
				}
				for _, l := range lists {
					t.Run(l.name, func(t *testing.T) {
						l.req.method = "GET"
						r := e.do(t, "env", l.req)
						if r.status != 200 {
							refused(t, r, "AccessDenied", 403)
						}
						noReservedNames(t, r)
					})
				}
				t.Run("control", func(t *testing.T) {
					r := e.do(t, "env", advReq{method: "GET", path: b, query: "list-type=2&prefix=public%2F"})
					if r.status != 200 || !bytes.Contains(r.body, []byte(advPublic)) {
						t.Errorf("ListObjectsV2 public/: %s", r)
					}
				})
				for _, p := range []string{"%2Fcerts%2F", "public%2F..%2Fcerts%2F", ".%2Fcerts%2F", "public%2F%2F..%2Fcerts"} {
					t.Run("normalising prefix "+p, func(t *testing.T) {
						r := e.do(t, "env", advReq{method: "GET", path: b, query: "list-type=2&prefix=" + p})
						e.refuse(t, r, "InvalidArgument", 400)
						noReservedNames(t, r)
					})
				}
			})
		}
	}
}
