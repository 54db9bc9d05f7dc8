package proxy

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/zeebo/xxh3"
)

// memStore is an in-memory S3 store for package tests. It answers what
// s3seal uses as MinIO does (its server-side encryption per PROTOCOL.md §2
// and probes of MinIO; the rest as S3 documents it and MinIO implements
// it, error codes included): buckets, objects with user metadata (names
// lower-cased) and content headers, single ranges and partNumber reads,
// versions, conditional requests, CopyObject and UploadPartCopy,
// multipart uploads with S3 ETags, DeleteObject(s), listings (V1, V2,
// versions, uploads, parts), tagging, aws-chunked bodies with checksum
// trailers and checksum headers (verified), and server-side encryption:
//
//   - SSE-C objects need their key on GET, HEAD, GetObjectAttributes and
//     as copy sources (400 without, 403 with a wrong one, 400 with a key
//     for an object that is not SSE-C); parts need the upload's key (400
//     without, 403 wrong);
//   - CopyObject, CreateMultipartUpload and CompleteMultipartUpload
//     answers carry no encryption headers;
//   - the ETag of an SSE-KMS or SSE-C object is not the MD5 of its data.
//
// It records every request it receives, and every resource it holds is
// bounded (memStoreOptions). Tests read and change its contents directly
// (object, put, requests) and may answer requests themselves (hook).
//
// What it does not do: verify signatures (it checks their form, the access
// key and the region of the scope), serve several ranges at once, or keep
// object ACLs, retention and legal holds (NotImplemented).
type memStore struct {
	mu      sync.Mutex // protects everything below
	o       memStoreOptions
	buckets map[string]*memBucket
	uploads map[string]*memUpload
	reqs    []storeRequest
	nreqs   int
	bytes   int64 // object and part data held
	seq     int
	hook    func(w http.ResponseWriter, r *http.Request) bool
}

// memStoreOptions are the store's settings; zero values mean defaults.
type memStoreOptions struct {
	// MinPartSize is the smallest part but the last of a completed
	// upload (EntityTooSmall below it); 0 means S3's 5 MiB, -1 none.
	MinPartSize int64
	// MaxObjectSize bounds one object or part (EntityTooLarge beyond);
	// 0 means 64 MiB.
	MaxObjectSize int64
	// MaxBytes bounds all data held; 0 means 512 MiB.
	MaxBytes int64
	// MaxRequests bounds the requests recorded (later ones are counted
	// only); 0 means 10,000.
	MaxRequests int
	// IgnoreSSE accepts encryption headers and ignores them, as
	// versitygw does: nothing is encrypted, nothing is echoed.
	IgnoreSSE bool
	// BlockSSEC refuses SSE-C writes with 403 and reports SSE-C in
	// BlockedEncryptionTypes, as AWS does for new buckets since April
	// 2026.
	BlockSSEC bool
	// FailDelete makes DeleteObject fail with 500.
	FailDelete bool
	// CopyConditions applies If-Match and If-None-Match to the
	// destination of CopyObject, as S3 does. MinIO ignores them there
	// (it honours them on PutObject and CompleteMultipartUpload), and so
	// does the store by default.
	CopyConditions bool
	// Region is the region of every bucket ("us-east-1" when empty);
	// requests signed for another get AuthorizationHeaderMalformed.
	Region string
	// AccessKey, when set, is the only access key the store accepts.
	AccessKey string
	// Now is the store's clock; nil means time.Now.
	Now func() time.Time
}

func (o *memStoreOptions) defaults() {
	if o.MinPartSize == 0 {
		o.MinPartSize = 5 << 20
	}
	if o.MaxObjectSize == 0 {
		o.MaxObjectSize = 64 << 20
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = 512 << 20
	}
	if o.MaxRequests == 0 {
		o.MaxRequests = 10000
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

type memBucket struct {
	name       string
	created    time.Time
	versioning string // "", "Enabled" or "Suspended"
	objects    map[string][]*memObject
	config     map[string][]byte // other sub-resources, by name
}

// memObject is one version of an object.
type memObject struct {
	data         []byte
	etag         string // quoted
	version      string // "null" when unversioned
	deleteMarker bool
	modified     time.Time
	meta         map[string]string // user metadata by lower-case name
	content      http.Header       // Content-Type and the other content headers
	tags         url.Values
	parts        []int64 // sizes of the parts of a multipart object
	checksum     memChecksum
	storageClass string
	// Server-side encryption.
	alg    string // x-amz-server-side-encryption
	kmsKey string
	ctx    string
	keyMD5 string // SSE-C key digest; "" for none
}

type memChecksum struct {
	alg, value string // lower-case algorithm ("crc32c"), base64 value
	typ        string // FULL_OBJECT or COMPOSITE
}

type memUpload struct {
	id, bucket, key string
	initiated       time.Time
	obj             memObject // metadata, content headers, encryption, tags
	checksumAlg     string
	parts           map[int]*memPart
}

type memPart struct {
	data     []byte
	etag     string
	modified time.Time
	checksum memChecksum
}

// storeRequest is what the store received.
type storeRequest struct {
	Method, Path string
	Query        url.Values
	Header       http.Header
}

func newMemStore(o memStoreOptions) *memStore {
	o.defaults()
	return &memStore{o: o, buckets: map[string]*memBucket{}, uploads: map[string]*memUpload{}}
}

// configure changes the store's settings.
func (s *memStore) configure(f func(o *memStoreOptions)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.o)
	s.o.defaults()
}

// setHook makes h see every request first; it reports whether it answered.
func (s *memStore) setHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	s.mu.Lock()
	s.hook = h
	s.mu.Unlock()
}

// requests returns the requests recorded since the last reset.
func (s *memStore) requests() []storeRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]storeRequest(nil), s.reqs...)
}

// requestCount is the number of requests received since the last reset,
// recorded or not.
func (s *memStore) requestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nreqs
}

// reset forgets the recorded requests.
func (s *memStore) reset() {
	s.mu.Lock()
	s.reqs, s.nreqs = nil, 0
	s.mu.Unlock()
}

// createBucket creates buckets directly.
func (s *memStore) createBucket(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		if s.buckets[n] == nil {
			s.buckets[n] = &memBucket{name: n, created: s.o.Now(), objects: map[string][]*memObject{}, config: map[string][]byte{}}
		}
	}
}

// object returns the current version of an object, nil when there is none.
func (s *memStore) object(bucket, key string) *memObject {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[bucket]
	if b == nil {
		return nil
	}
	o := latest(b.objects[key])
	if o == nil || o.deleteMarker {
		return nil
	}
	return o
}

// versions returns every version of an object, oldest first.
func (s *memStore) versions(bucket, key string) []*memObject {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.buckets[bucket]; b != nil {
		return append([]*memObject(nil), b.objects[key]...)
	}
	return nil
}

// keys returns the keys of a bucket's current objects, sorted.
func (s *memStore) keys(bucket string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	if b := s.buckets[bucket]; b != nil {
		for k, vs := range b.objects {
			if o := latest(vs); o != nil && !o.deleteMarker {
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

// partOf returns part n of the upload with store id id, nil when there is
// none.
func (s *memStore) partOf(id string, n int) *memPart {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.uploads[id]; u != nil {
		return u.parts[n]
	}
	return nil
}

// uploadCount is the number of uploads in progress.
func (s *memStore) uploadCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.uploads)
}

// put stores o as the current object, creating the bucket if needed.
func (s *memStore) put(bucket, key string, o *memObject) {
	s.createBucket(bucket)
	s.mu.Lock()
	defer s.mu.Unlock()
	if o.etag == "" {
		o.setETag()
	}
	if o.modified.IsZero() {
		o.modified = s.now()
	}
	version := o.version
	s.addVersion(s.buckets[bucket], key, o)
	if version != "" {
		o.version = version
	}
}

// addUpload adds an upload in progress directly.
func (s *memStore) addUpload(id, bucket, key string, obj memObject) {
	s.createBucket(bucket)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.uploads[id] = &memUpload{id: id, bucket: bucket, key: key, obj: obj, initiated: s.now(), parts: map[int]*memPart{}}
}

// setETag gives the object the ETag a store gives it: the MD5 of the data
// for plain and SSE-S3 objects, 32 other hex digits for SSE-KMS and SSE-C.
func (o *memObject) setETag() {
	data := o.data
	if o.keyMD5 != "" || o.kmsKey != "" {
		data = append([]byte("not the md5 of "), data...)
	}
	sum := md5.Sum(data)
	o.etag = `"` + hex.EncodeToString(sum[:]) + `"`
}

func latest(vs []*memObject) *memObject {
	if len(vs) == 0 {
		return nil
	}
	return vs[len(vs)-1]
}

// addVersion adds o as the newest version of key, replacing the "null"
// version unless the bucket keeps versions.
func (s *memStore) addVersion(b *memBucket, key string, o *memObject) {
	vs := b.objects[key]
	if b.versioning == "Enabled" {
		s.seq++
		o.version = fmt.Sprintf("v%06d-%x", s.seq, md5.Sum([]byte(key+strconv.Itoa(s.seq))))[:24]
	} else {
		o.version = "null"
		kept := vs[:0]
		for _, v := range vs {
			if v.version == "null" {
				s.bytes -= int64(len(v.data))
				continue
			}
			kept = append(kept, v)
		}
		vs = kept
	}
	s.bytes += int64(len(o.data))
	b.objects[key] = append(vs, o)
}

func (s *memStore) now() time.Time { return s.o.Now().UTC().Truncate(time.Second) }

// keep stores o, just written, as the newest version of key and names its
// version in the answer where the bucket keeps versions. Called with s.mu
// held.
func (s *memStore) keep(w http.ResponseWriter, b *memBucket, key string, o *memObject) {
	o.modified = s.now()
	s.addVersion(b, key, o)
	if b.versioning != "" {
		w.Header().Set("X-Amz-Version-Id", o.version)
	}
}

// writeCopyResult answers CopyObject (CopyObjectResult) or UploadPartCopy
// (CopyPartResult).
func writeCopyResult(w http.ResponseWriter, name string, modified time.Time, etag string) {
	writeXML(w, struct {
		XMLName      xml.Name
		Xmlns        string `xml:"xmlns,attr"`
		LastModified string `xml:"LastModified"`
		ETag         string `xml:"ETag"`
	}{XMLName: xml.Name{Local: name}, Xmlns: s3NS, LastModified: modified.Format("2006-01-02T15:04:05.000Z"), ETag: etag})
}

// memErr is an S3 error answer.
type memErr struct {
	status        int
	code, message string
	fields        map[string]string
	header        http.Header
}

func (e *memErr) Error() string { return e.code + ": " + e.message }

func errS3(status int, code, msg string) *memErr {
	return &memErr{status: status, code: code, message: msg}
}

func (e *memErr) with(k, v string) *memErr {
	c := *e
	c.fields = map[string]string{}
	for k, v := range e.fields {
		c.fields[k] = v
	}
	c.fields[k] = v
	return &c
}

var (
	errNoSuchBucket   = errS3(404, "NoSuchBucket", "The specified bucket does not exist")
	errNoSuchKey      = errS3(404, "NoSuchKey", "The specified key does not exist.")
	errNoSuchVersion  = errS3(404, "NoSuchVersion", "The specified version does not exist.")
	errNoSuchUpload   = errS3(404, "NoSuchUpload", "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")
	errPrecondition   = errS3(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
	errBadDigest      = errS3(400, "BadDigest", "The Content-Md5 you specified did not match what we received.")
	errChecksumBad    = errS3(400, "BadDigest", "The checksum you specified did not match the calculated checksum.")
	errMalformedXML   = errS3(400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.")
	errInvalidPart    = errS3(400, "InvalidPart", "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.")
	errPartOrder      = errS3(400, "InvalidPartOrder", "The list of parts was not in ascending order. The parts list must be specified in order by part number.")
	errEntityTooSmall = errS3(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.")
	errEntityTooLarge = errS3(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size.")
	errNotImplemented = errS3(501, "NotImplemented", "A header you provided implies functionality that is not implemented")
	errStorageFull    = errS3(507, "XMinioStorageFull", "Storage backend has reached its minimum free drive threshold. Please delete a few objects to proceed.")
	errIncompleteBody = errS3(400, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header.")
)

// writeErr writes e as S3 does, with the fields a store adds that s3seal
// must not relay (HostId).
func writeErr(w http.ResponseWriter, r *http.Request, e *memErr) {
	for k, v := range e.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("X-Amz-Request-Id", "MEMSTORE0001")
	w.WriteHeader(e.status)
	if r.Method == http.MethodHead {
		return
	}
	var b strings.Builder
	b.WriteString(xml.Header + "<Error><Code>" + e.code + "</Code><Message>" + xmlEscape(e.message) + "</Message>")
	var names []string
	for k := range e.fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		b.WriteString("<" + k + ">" + xmlEscape(e.fields[k]) + "</" + k + ">")
	}
	b.WriteString("<Resource>" + xmlEscape(r.URL.Path) + "</Resource><RequestId>MEMSTORE0001</RequestId><HostId>memstore-host-id</HostId></Error>")
	_, _ = io.WriteString(w, b.String())
}

// writeXML answers 200 with v marshalled.
func writeXML(w http.ResponseWriter, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		panic("memstore: " + err.Error())
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(xml.Header)+len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, xml.Header)
	_, _ = w.Write(b)
}

const s3NS = "http://s3.amazonaws.com/doc/2006-03-01/"

func (s *memStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.nreqs++
	if len(s.reqs) < s.o.MaxRequests {
		s.reqs = append(s.reqs, storeRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone()})
	}
	hook := s.hook
	s.mu.Unlock()
	if hook != nil && hook(w, r) {
		return
	}
	if err := s.serve(w, r); err != nil {
		var e *memErr
		if !errors.As(err, &e) {
			e = errS3(500, "InternalError", err.Error())
		}
		writeErr(w, r, e)
	}
}

// serve routes a request; an error it returns is the answer.
func (s *memStore) serve(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkAuth(r); err != nil {
		return err
	}
	body, err := s.readBody(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	has := func(p string) bool { _, ok := q[p]; return ok }
	switch {
	case bucket == "":
		if r.Method != http.MethodGet {
			return errS3(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
		}
		return s.listBuckets(w)
	case key == "":
		return s.serveBucket(w, r, bucket, q, body)
	}
	uploadID := q.Get("uploadId")
	switch {
	case has("tagging"):
		return s.serveTagging(w, r, bucket, key, q, body)
	case has("acl"):
		return s.serveACL(w, r, bucket, key, q)
	case has("attributes") && r.Method == http.MethodGet:
		return s.attributes(w, r, bucket, key, q)
	case has("uploads") && r.Method == http.MethodPost:
		return s.createUpload(w, r, bucket, key)
	case uploadID != "" && r.Method == http.MethodPut:
		return s.uploadPart(w, r, bucket, key, q, body)
	case uploadID != "" && r.Method == http.MethodGet:
		return s.listParts(w, bucket, key, q)
	case uploadID != "" && r.Method == http.MethodPost:
		return s.complete(w, r, bucket, key, uploadID, body)
	case uploadID != "" && r.Method == http.MethodDelete:
		return s.abort(w, bucket, key, uploadID)
	case has("retention"), has("legal-hold"), has("restore"), has("select"), has("torrent"):
		return errNotImplemented
	case r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "":
		return s.copyObject(w, r, bucket, key, q)
	case r.Method == http.MethodPut:
		return s.putObject(w, r, bucket, key, body)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		return s.getObject(w, r, bucket, key, q)
	case r.Method == http.MethodDelete:
		return s.deleteObject(w, bucket, key, q)
	}
	return errS3(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
}

// checkAuth checks what the store can check of the signature without the
// secret: its form, the access key and the region of its scope.
func (s *memStore) checkAuth(r *http.Request) error {
	a := r.Header.Get("Authorization")
	cred, ok := strings.CutPrefix(a, "AWS4-HMAC-SHA256 Credential=")
	if !ok || !strings.Contains(a, "SignedHeaders=") || !strings.Contains(a, "Signature=") {
		return errS3(403, "AccessDenied", "Access Denied.")
	}
	cred, _, _ = strings.Cut(cred, ",")
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[3] != "s3" || parts[4] != "aws4_request" {
		return errS3(400, "AuthorizationHeaderMalformed", "The authorization header is malformed.")
	}
	s.mu.Lock()
	region, ak := s.o.Region, s.o.AccessKey
	s.mu.Unlock()
	if ak != "" && parts[0] != ak {
		return errS3(403, "InvalidAccessKeyId", "The Access Key Id you provided does not exist in our records.")
	}
	if parts[2] != region {
		e := errS3(400, "AuthorizationHeaderMalformed", "The authorization header is malformed; the region '"+parts[2]+"' is wrong; expecting '"+region+"'").with("Region", region)
		return e
	}
	switch r.Header.Get("X-Amz-Content-Sha256") {
	case "":
		return errS3(400, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
	}
	return nil
}

// readBody reads and verifies the request body: aws-chunked framing with
// an unsigned trailer, Content-MD5, x-amz-content-sha256 and x-amz-checksum-*.
func (s *memStore) readBody(r *http.Request) ([]byte, error) {
	s.mu.Lock()
	limit := s.o.MaxObjectSize
	s.mu.Unlock()
	payload := r.Header.Get("X-Amz-Content-Sha256")
	var body []byte
	trailers := http.Header{}
	if strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") || strings.HasPrefix(payload, "STREAMING-") {
		if payload != "STREAMING-UNSIGNED-PAYLOAD-TRAILER" {
			return nil, errS3(501, "NotImplemented", "memstore: only unsigned aws-chunked payloads are implemented")
		}
		declared, err := strconv.ParseInt(r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
		if err != nil || declared < 0 {
			return nil, errS3(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
		}
		if declared > limit {
			return nil, errEntityTooLarge
		}
		body, trailers, err = decodeAWSChunked(bufio.NewReader(r.Body), declared)
		if err != nil {
			return nil, err
		}
		want := strings.ToLower(r.Header.Get("X-Amz-Trailer"))
		for k := range trailers {
			if strings.ToLower(k) != want {
				return nil, errS3(400, "MalformedTrailerError", "The request contained trailing data that was not well-formed or did not conform to our published schema.")
			}
		}
		if want != "" && trailers.Get(want) == "" {
			return nil, errS3(400, "MalformedTrailerError", "The trailer declared in x-amz-trailer was not sent.")
		}
	} else {
		if r.ContentLength > limit {
			return nil, errEntityTooLarge
		}
		var err error
		body, err = io.ReadAll(io.LimitReader(r.Body, limit+1))
		if err != nil {
			return nil, errIncompleteBody
		}
		if int64(len(body)) > limit {
			return nil, errEntityTooLarge
		}
		if payload != "UNSIGNED-PAYLOAD" {
			sum := sha256.Sum256(body)
			if !strings.EqualFold(hex.EncodeToString(sum[:]), payload) {
				return nil, errS3(400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.")
			}
		}
	}
	if v := r.Header.Get("Content-Md5"); v != "" {
		want, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(want) != md5.Size {
			return nil, errS3(400, "InvalidDigest", "The Content-Md5 you specified is not valid.")
		}
		if sum := md5.Sum(body); !bytes.Equal(sum[:], want) {
			return nil, errBadDigest
		}
	}
	found := 0
	for _, src := range []http.Header{r.Header, trailers} {
		for k, v := range src {
			alg, ok := cutFoldPrefix(k, "X-Amz-Checksum-")
			alg = strings.ToLower(alg)
			if !ok || alg == "algorithm" || alg == "mode" || alg == "type" {
				continue
			}
			h := newChecksumHash(alg)
			if h == nil {
				return nil, errS3(400, "InvalidRequest", "Unknown checksum "+k)
			}
			found++
			h.Write(body)
			if base64.StdEncoding.EncodeToString(h.Sum(nil)) != v[0] {
				return nil, errChecksumBad.with("ChecksumAlgorithm", strings.ToUpper(alg))
			}
		}
	}
	if found > 1 {
		return nil, errS3(400, "InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
	}
	// Keep a verified trailer checksum for the object.
	for k, v := range trailers {
		r.Header.Set(k, v[0])
	}
	return body, nil
}

// decodeAWSChunked decodes an aws-chunked body: chunks "hex-size\r\n data
// \r\n", a zero chunk, trailer lines and an empty line.
func decodeAWSChunked(br *bufio.Reader, declared int64) ([]byte, http.Header, error) {
	malformed := errS3(400, "IncompleteBody", "memstore: malformed aws-chunked body")
	var out []byte
	for {
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasSuffix(line, "\r\n") {
			return nil, nil, malformed
		}
		sizeText, _, _ := strings.Cut(strings.TrimSuffix(line, "\r\n"), ";")
		n, err := strconv.ParseInt(sizeText, 16, 64)
		if err != nil || n < 0 || int64(len(out))+n > declared {
			return nil, nil, malformed
		}
		if n == 0 {
			break
		}
		chunk := make([]byte, n+2)
		if _, err := io.ReadFull(br, chunk); err != nil || string(chunk[n:]) != "\r\n" {
			return nil, nil, malformed
		}
		out = append(out, chunk[:n]...)
	}
	if int64(len(out)) != declared {
		return nil, nil, errIncompleteBody
	}
	trailers := http.Header{}
	for i := 0; ; i++ {
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasSuffix(line, "\r\n") || i > 8 {
			return nil, nil, malformed
		}
		line = strings.TrimSuffix(line, "\r\n")
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, nil, malformed
		}
		trailers.Set(k, strings.TrimSpace(v))
	}
	if n, _ := br.Read(make([]byte, 1)); n != 0 {
		return nil, nil, malformed
	}
	return out, trailers, nil
}

// crc64NVME is the CRC-64/NVME table (reflected polynomial).
var crc64NVME = crc64.MakeTable(0x9a6c9329ac4bc9b5)

func newChecksumHash(alg string) hash.Hash {
	switch alg {
	case "crc32":
		return crc32.NewIEEE()
	case "crc32c":
		return crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case "crc64nvme":
		return crc64.New(crc64NVME)
	case "sha1":
		return sha1.New()
	case "sha256":
		return sha256.New()
	case "sha512":
		return sha512.New()
	case "md5":
		return md5.New()
	case "xxhash64":
		return xxhash.New()
	case "xxhash3":
		return xxh3.New()
	case "xxhash128":
		return xxh3.New128()
	}
	return nil
}

// requestChecksum is the verified checksum a request carried.
func requestChecksum(h http.Header) memChecksum {
	for k, v := range h {
		alg, ok := cutFoldPrefix(k, "X-Amz-Checksum-")
		alg = strings.ToLower(alg)
		if ok && newChecksumHash(alg) != nil {
			return memChecksum{alg: alg, value: v[0], typ: "FULL_OBJECT"}
		}
	}
	return memChecksum{}
}

func (s *memStore) bucketLocked(name string) (*memBucket, error) {
	b := s.buckets[name]
	if b == nil {
		return nil, errNoSuchBucket.with("BucketName", name)
	}
	return b, nil
}

// findVersion returns the object version a request names ("" for the
// current one), or the error S3 answers.
func (s *memStore) findVersion(bucket, key, version string) (*memObject, error) {
	b, err := s.bucketLocked(bucket)
	if err != nil {
		return nil, err
	}
	vs := b.objects[key]
	if version == "" {
		o := latest(vs)
		if o == nil {
			return nil, errNoSuchKey.with("Key", key)
		}
		if o.deleteMarker {
			e := errNoSuchKey.with("Key", key)
			e.header = http.Header{"X-Amz-Delete-Marker": {"true"}, "X-Amz-Version-Id": {o.version}}
			return nil, e
		}
		return o, nil
	}
	for _, o := range vs {
		if o.version == version {
			if o.deleteMarker {
				e := errS3(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
				e.header = http.Header{"X-Amz-Delete-Marker": {"true"}, "X-Amz-Version-Id": {o.version}}
				return nil, e
			}
			return o, nil
		}
	}
	return nil, errNoSuchVersion.with("Key", key).with("VersionId", version)
}

// --- server-side encryption ---

// memSSEC reads the SSE-C headers with prefix; ok is false when they are
// malformed. keyMD5 is "" without headers.
func memSSEC(h http.Header, prefix string) (keyMD5 string, ok bool) {
	alg := h.Get(ssecName(prefix, hdrSSECAlgorithm))
	key := h.Get(ssecName(prefix, hdrSSECKey))
	sum := h.Get(ssecName(prefix, hdrSSECKeyMD5))
	if alg == "" && key == "" && sum == "" {
		return "", true
	}
	raw, err := base64.StdEncoding.DecodeString(key)
	if alg != "AES256" || err != nil || len(raw) != 32 {
		return "", false
	}
	got := md5.Sum(raw)
	if base64.StdEncoding.EncodeToString(got[:]) != sum {
		return "", false
	}
	return sum, true
}

// openSSE checks the SSE-C key a read or copy source gives for o.
func (s *memStore) openSSE(o *memObject, h http.Header, prefix string) error {
	keyMD5, ok := memSSEC(h, prefix)
	switch {
	case !ok:
		return errS3(400, "InvalidArgument", "The SSE-C headers are not valid.")
	case s.o.IgnoreSSE:
		return nil
	case o.keyMD5 == "" && keyMD5 != "":
		return errS3(400, "InvalidRequest", "The encryption parameters are not applicable to this object.")
	case o.keyMD5 != "" && keyMD5 == "":
		return errS3(400, "InvalidRequest", "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.")
	case o.keyMD5 != keyMD5:
		return errS3(403, "AccessDenied", "Access Denied.")
	}
	return nil
}

// echoSSE adds the encryption headers of o to an answer.
func (s *memStore) echoSSE(h http.Header, o *memObject) {
	if s.o.IgnoreSSE {
		return
	}
	if o.keyMD5 != "" {
		h.Set(hdrSSECAlgorithm, "AES256")
		h.Set(hdrSSECKeyMD5, o.keyMD5)
	}
	if o.alg != "" {
		h.Set(hdrSSE, o.alg)
	}
	if o.kmsKey != "" {
		h.Set(hdrSSEKMSKeyID, "arn:aws:kms:"+o.kmsKey)
	}
}

// encryption reads the encryption a write asks for into o.
func (s *memStore) encryption(h http.Header, o *memObject) error {
	keyMD5, ok := memSSEC(h, "")
	if !ok {
		return errS3(400, "InvalidArgument", "The SSE-C headers are not valid.")
	}
	alg, kms, ctx := h.Get(hdrSSE), h.Get(hdrSSEKMSKeyID), h.Get(hdrSSEContext)
	switch alg {
	case "", "AES256", "aws:kms", "aws:kms:dsse":
	default:
		return errS3(400, "InvalidArgument", "The encryption method specified is not supported")
	}
	if kms != "" && alg != "aws:kms" && alg != "aws:kms:dsse" {
		return errS3(400, "InvalidArgument", "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms")
	}
	if alg == "aws:kms" && kms == "" {
		kms = "default-key"
	}
	if keyMD5 != "" && alg != "" {
		return errS3(400, "InvalidArgument", "Server side encryption specified with both SSE-C and SSE headers")
	}
	if keyMD5 != "" && s.o.BlockSSEC {
		return errS3(403, "AccessDenied", "Access Denied.")
	}
	if s.o.IgnoreSSE {
		return nil
	}
	o.alg, o.kmsKey, o.ctx, o.keyMD5 = alg, kms, ctx, keyMD5
	return nil
}

// --- objects ---

// contentHeaders are the object properties kept from a write.
var contentHeaders = []string{"Content-Type", "Content-Encoding", "Content-Disposition", "Content-Language", "Cache-Control", "Expires", "X-Amz-Website-Redirect-Location"}

// objectProps reads user metadata, content headers, storage class and tags
// from a write.
func objectProps(h http.Header, o *memObject) error {
	o.meta = map[string]string{}
	size := 0
	for k, v := range h {
		if name, ok := cutFoldPrefix(k, "X-Amz-Meta-"); ok {
			o.meta[strings.ToLower(name)] = strings.Join(v, ",")
			size += len(name) + len(strings.Join(v, ","))
		}
	}
	if size > 2048 {
		return errS3(400, "MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size.")
	}
	o.content = http.Header{}
	for _, n := range contentHeaders {
		if v := h.Get(n); v != "" {
			o.content.Set(n, v)
		}
	}
	if enc := o.content.Get("Content-Encoding"); enc != "" {
		// aws-chunked is framing, not a property of the object.
		var kept []string
		for _, e := range strings.Split(enc, ",") {
			if e = strings.TrimSpace(e); e != "aws-chunked" && e != "" {
				kept = append(kept, e)
			}
		}
		o.content.Del("Content-Encoding")
		if len(kept) > 0 {
			o.content.Set("Content-Encoding", strings.Join(kept, ","))
		}
	}
	o.storageClass = h.Get("X-Amz-Storage-Class")
	if v := h.Get("X-Amz-Tagging"); v != "" {
		tags, err := parseTagQuery(v)
		if err != nil {
			return err
		}
		o.tags = tags
	}
	return nil
}

func parseTagQuery(v string) (url.Values, error) {
	tags, err := url.ParseQuery(v)
	if err != nil || len(tags) > 10 {
		return nil, errS3(400, "InvalidTag", "The tag provided was not a valid tag.")
	}
	return tags, nil
}

// checkConditions applies If-Match, If-None-Match, If-Modified-Since and
// If-Unmodified-Since (with prefix "X-Amz-Copy-Source-" for copy sources)
// to o, nil when the object does not exist. read selects the answers of
// GET and HEAD (304 for If-None-Match and If-Modified-Since).
func checkConditions(h http.Header, prefix string, o *memObject, read bool) error {
	im, inm := h.Get(prefix+"If-Match"), h.Get(prefix+"If-None-Match")
	ims, ius := h.Get(prefix+"If-Modified-Since"), h.Get(prefix+"If-Unmodified-Since")
	if o == nil {
		if im != "" {
			return errPrecondition
		}
		return nil
	}
	notModified := errS3(304, "NotModified", "Not Modified")
	notModified.header = http.Header{"Etag": {o.etag}, "Last-Modified": {o.modified.Format(http.TimeFormat)}}
	if !read {
		notModified = errPrecondition
	}
	if im != "" {
		if !etagMatches(im, o.etag) {
			return errPrecondition
		}
	} else if t, err := http.ParseTime(ius); ius != "" && err == nil && o.modified.After(t) {
		return errPrecondition
	}
	if inm != "" {
		if etagMatches(inm, o.etag) {
			return notModified
		}
	} else if t, err := http.ParseTime(ims); ims != "" && err == nil && !o.modified.After(t) && read {
		return notModified
	}
	return nil
}

// etagMatches reports whether a list of ETags (or "*") names etag.
func etagMatches(list, etag string) bool {
	norm := func(s string) string { return strings.Trim(strings.TrimPrefix(strings.TrimSpace(s), "W/"), `"`) }
	for _, v := range strings.Split(list, ",") {
		if strings.TrimSpace(v) == "*" || norm(v) == norm(etag) {
			return true
		}
	}
	return false
}

func (s *memStore) putObject(w http.ResponseWriter, r *http.Request, bucket, key string, body []byte) error {
	o := &memObject{data: body}
	if err := objectProps(r.Header, o); err != nil {
		return err
	}
	if len(key) > 1024 {
		return errS3(400, "KeyTooLongError", "Your key is too long")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.bucketLocked(bucket)
	if err != nil {
		return err
	}
	if err := s.encryption(r.Header, o); err != nil {
		return err
	}
	if err := s.writeConditions(r.Header, b, key); err != nil {
		return err
	}
	if s.bytes+int64(len(body)) > s.o.MaxBytes {
		return errStorageFull
	}
	o.checksum = requestChecksum(r.Header)
	o.setETag()
	s.keep(w, b, key, o)
	s.echoSSE(w.Header(), o)
	w.Header().Set("ETag", o.etag)
	if o.checksum.alg != "" {
		w.Header().Set("X-Amz-Checksum-"+strings.ToUpper(o.checksum.alg), o.checksum.value)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// writeConditions applies If-Match and If-None-Match to a write of key
// (PutObject, CopyObject, CompleteMultipartUpload): If-None-Match only
// as "*".
func (s *memStore) writeConditions(h http.Header, b *memBucket, key string) error {
	cur := latest(b.objects[key])
	if cur != nil && cur.deleteMarker {
		cur = nil
	}
	if v := h.Get("If-None-Match"); v != "" {
		if strings.TrimSpace(v) != "*" {
			return errNotImplemented
		}
		if cur != nil {
			return errPrecondition
		}
	}
	if v := h.Get("If-Match"); v != "" {
		if cur == nil {
			return errNoSuchKey.with("Key", key)
		}
		if !etagMatches(v, cur.etag) {
			return errPrecondition
		}
	}
	return nil
}

// parseStoreRange parses a Range header as MinIO does; nil, nil means
// no (or an ignored) range.
func parseStoreRange(v string) (*[2]int64, error) {
	spec, ok := strings.CutPrefix(v, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return nil, nil
	}
	a, b, ok := strings.Cut(spec, "-")
	if !ok || (a == "" && b == "") || strings.HasPrefix(a, "+") || strings.HasPrefix(b, "+") {
		return nil, nil
	}
	start, end := int64(-1), int64(-1)
	var err error
	if a != "" {
		if start, err = strconv.ParseInt(a, 10, 64); err != nil || start < 0 {
			return nil, nil
		}
	}
	if b != "" {
		if end, err = strconv.ParseInt(b, 10, 64); err != nil || end < 0 {
			return nil, nil
		}
	}
	switch {
	case start >= 0 && end >= 0 && start > end:
		return nil, errS3(416, "InvalidRange", "The requested range is not satisfiable")
	case start < 0 && end == 0:
		return nil, errS3(416, "InvalidRange", "The requested range is not satisfiable")
	}
	return &[2]int64{start, end}, nil
}

// resolveRange applies a parsed range to size bytes: offset and length,
// or InvalidRange.
func resolveRange(rg *[2]int64, size int64) (int64, int64, error) {
	start, end := rg[0], rg[1]
	if start < 0 { // suffix
		n := min(end, size)
		return size - n, n, nil
	}
	if start >= size {
		return 0, 0, errS3(416, "InvalidRange", "The requested range is not satisfiable").with("RangeRequested", fmt.Sprintf("bytes=%d-", start)).with("ActualObjectSize", strconv.FormatInt(size, 10))
	}
	if end < 0 || end >= size {
		end = size - 1
	}
	return start, end - start + 1, nil
}

func (s *memStore) getObject(w http.ResponseWriter, r *http.Request, bucket, key string, q url.Values) error {
	s.mu.Lock()
	o, err := s.findVersion(bucket, key, q.Get("versionId"))
	if err != nil {
		s.mu.Unlock()
		return err
	}
	versioned := s.buckets[bucket].versioning != ""
	if err := s.openSSE(o, r.Header, ""); err != nil {
		s.mu.Unlock()
		return err
	}
	if r.Header.Get(hdrSSE) != "" {
		s.mu.Unlock()
		return errS3(400, "InvalidArgument", "x-amz-server-side-encryption header is not supported for this operation.")
	}
	hdr := w.Header()
	s.echoSSE(hdr, o)
	tagCount := len(o.tags)
	s.mu.Unlock()
	if err := checkConditions(r.Header, "", o, true); err != nil {
		return err
	}
	data := o.data
	size := int64(len(data))
	status := http.StatusOK
	off, n := int64(0), size
	if pn := q.Get("partNumber"); pn != "" {
		p, err := strconv.Atoi(pn)
		if err != nil || p < 1 || p > 10000 {
			return errS3(400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
		}
		if r.Header.Get("Range") != "" {
			return errS3(400, "InvalidRequest", "Cannot specify both Range header and partNumber query parameter")
		}
		parts := o.parts
		if len(parts) == 0 {
			parts = []int64{size}
		}
		if p > len(parts) {
			return errS3(416, "InvalidPartNumber", "The requested partnumber is not satisfiable")
		}
		for _, ps := range parts[:p-1] {
			off += ps
		}
		n = parts[p-1]
		// MinIO answers 206 with a Content-Range for part 1 of a single
		// object too, without a parts count.
		if len(o.parts) > 0 {
			hdr.Set("X-Amz-Mp-Parts-Count", strconv.Itoa(len(o.parts)))
		}
		if n > 0 {
			status = http.StatusPartialContent
			hdr.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, size))
		}
	} else if v := r.Header.Get("Range"); v != "" {
		rg, err := parseStoreRange(v)
		if err != nil {
			return err
		}
		if rg != nil {
			if off, n, err = resolveRange(rg, size); err != nil {
				return err
			}
			if n > 0 {
				status = http.StatusPartialContent
				hdr.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, size))
			}
		}
	}
	for k, v := range o.content {
		hdr[k] = v
	}
	if hdr.Get("Content-Type") == "" {
		hdr.Set("Content-Type", "binary/octet-stream")
	}
	for k, v := range o.meta {
		hdr.Set("X-Amz-Meta-"+k, v) // canonical, as MinIO sends them
	}
	if tagCount > 0 {
		hdr.Set("X-Amz-Tagging-Count", strconv.Itoa(tagCount))
	}
	if o.storageClass != "" && o.storageClass != "STANDARD" {
		hdr.Set("X-Amz-Storage-Class", o.storageClass)
	}
	if versioned {
		hdr.Set("X-Amz-Version-Id", o.version)
	}
	if strings.EqualFold(r.Header.Get("X-Amz-Checksum-Mode"), "ENABLED") && o.checksum.alg != "" && status == http.StatusOK {
		hdr.Set("X-Amz-Checksum-"+strings.ToUpper(o.checksum.alg), o.checksum.value)
		hdr.Set("X-Amz-Checksum-Type", o.checksum.typ)
	}
	hdr.Set("ETag", o.etag)
	hdr.Set("Last-Modified", o.modified.Format(http.TimeFormat))
	hdr.Set("Accept-Ranges", "bytes")
	hdr.Set("Content-Length", strconv.FormatInt(n, 10))
	w.WriteHeader(status)
	if r.Method == http.MethodGet {
		_, _ = w.Write(data[off : off+n])
	}
	return nil
}

func (s *memStore) attributes(w http.ResponseWriter, r *http.Request, bucket, key string, q url.Values) error {
	s.mu.Lock()
	o, err := s.findVersion(bucket, key, q.Get("versionId"))
	if err == nil {
		err = s.openSSE(o, r.Header, "")
	}
	if err != nil {
		s.mu.Unlock()
		return err
	}
	s.echoSSE(w.Header(), o)
	s.mu.Unlock()
	if err := checkConditions(r.Header, "", o, true); err != nil {
		return err
	}
	type parts struct {
		TotalPartsCount int `xml:"TotalPartsCount"`
	}
	res := struct {
		XMLName      xml.Name `xml:"GetObjectAttributesResponse"`
		ETag         string   `xml:"ETag,omitempty"`
		ObjectSize   *int64   `xml:"ObjectSize,omitempty"`
		StorageClass string   `xml:"StorageClass,omitempty"`
		ObjectParts  *parts   `xml:"ObjectParts,omitempty"`
	}{}
	for _, a := range strings.Split(r.Header.Get("X-Amz-Object-Attributes"), ",") {
		switch strings.TrimSpace(a) {
		case "ETag":
			res.ETag = strings.Trim(o.etag, `"`)
		case "ObjectSize":
			n := int64(len(o.data))
			res.ObjectSize = &n
		case "StorageClass":
			res.StorageClass = "STANDARD"
		case "ObjectParts":
			if len(o.parts) > 0 {
				res.ObjectParts = &parts{TotalPartsCount: len(o.parts)}
			}
		}
	}
	w.Header().Set("Last-Modified", o.modified.Format(http.TimeFormat))
	writeXML(w, res)
	return nil
}

func (s *memStore) deleteObject(w http.ResponseWriter, bucket, key string, q url.Values) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.o.FailDelete {
		return errS3(500, "InternalError", "We encountered an internal error, please try again.")
	}
	b, err := s.bucketLocked(bucket)
	if err != nil {
		return err
	}
	marker, version := s.deleteLocked(b, key, q.Get("versionId"))
	if marker {
		w.Header().Set("X-Amz-Delete-Marker", "true")
	}
	if version != "" && b.versioning != "" {
		w.Header().Set("X-Amz-Version-Id", version)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteLocked deletes a key (a delete marker where versions are kept) or
// one version; it reports whether a delete marker was made or removed,
// and its version.
func (s *memStore) deleteLocked(b *memBucket, key, version string) (bool, string) {
	vs := b.objects[key]
	if version != "" {
		for i, o := range vs {
			if o.version == version {
				s.bytes -= int64(len(o.data))
				b.objects[key] = append(vs[:i:i], vs[i+1:]...)
				if len(b.objects[key]) == 0 {
					delete(b.objects, key)
				}
				return o.deleteMarker, version
			}
		}
		return false, version
	}
	if b.versioning == "" {
		for _, o := range vs {
			s.bytes -= int64(len(o.data))
		}
		delete(b.objects, key)
		return false, ""
	}
	m := &memObject{deleteMarker: true, modified: s.now()}
	s.addVersion(b, key, m)
	return true, m.version
}

// copySource finds and opens the copy source of r, applying its
// conditions and SSE-C key. Called with s.mu held.
func (s *memStore) copySource(r *http.Request) (*memObject, string, error) {
	v := r.Header.Get("X-Amz-Copy-Source")
	path, query, _ := strings.Cut(v, "?")
	path, err := url.PathUnescape(strings.TrimPrefix(path, "/"))
	if err != nil {
		return nil, "", errS3(400, "InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
	}
	b, k, ok := strings.Cut(path, "/")
	if !ok || k == "" {
		return nil, "", errS3(400, "InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
	}
	qv, _ := url.ParseQuery(query)
	o, err := s.findVersion(b, k, qv.Get("versionId"))
	if err != nil {
		return nil, "", err
	}
	if err := s.openSSE(o, r.Header, copySourcePrefix); err != nil {
		return nil, "", err
	}
	if err := checkConditions(r.Header, "X-Amz-Copy-Source-", o, false); err != nil {
		return nil, "", err
	}
	return o, b + "/" + k, nil
}

func (s *memStore) copyObject(w http.ResponseWriter, r *http.Request, bucket, key string, q url.Values) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.bucketLocked(bucket)
	if err != nil {
		return err
	}
	src, srcName, err := s.copySource(r)
	if err != nil {
		return err
	}
	o := &memObject{data: src.data}
	directive := strings.ToUpper(r.Header.Get("X-Amz-Metadata-Directive"))
	switch directive {
	case "", "COPY":
		o.meta, o.content, o.storageClass = src.meta, src.content, src.storageClass
		if srcName == bucket+"/"+key && r.Header.Get(hdrSSE) == "" && r.Header.Get(hdrSSECAlgorithm) == "" && r.Header.Get("X-Amz-Storage-Class") == "" {
			return errS3(400, "InvalidRequest", "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
		}
	case "REPLACE":
		if err := objectProps(r.Header, o); err != nil {
			return err
		}
	default:
		return errS3(400, "InvalidArgument", "Unknown metadata directive.")
	}
	switch strings.ToUpper(r.Header.Get("X-Amz-Tagging-Directive")) {
	case "", "COPY":
		o.tags = src.tags
	case "REPLACE":
		o.tags = nil
		if v := r.Header.Get("X-Amz-Tagging"); v != "" {
			if o.tags, err = parseTagQuery(v); err != nil {
				return err
			}
		}
	}
	if err := s.encryption(r.Header, o); err != nil {
		return err
	}
	if s.o.CopyConditions {
		if err := s.writeConditions(r.Header, b, key); err != nil {
			return err
		}
	}
	if s.bytes+int64(len(o.data)) > s.o.MaxBytes {
		return errStorageFull
	}
	o.checksum = src.checksum
	if len(src.parts) > 0 {
		o.checksum = memChecksum{}
	}
	o.setETag()
	s.keep(w, b, key, o)
	if src.version != "null" {
		w.Header().Set("X-Amz-Copy-Source-Version-Id", src.version)
	}
	writeCopyResult(w, "CopyObjectResult", o.modified, o.etag)
	return nil
}

// --- multipart uploads ---

func (s *memStore) createUpload(w http.ResponseWriter, r *http.Request, bucket, key string) error {
	u := &memUpload{bucket: bucket, key: key, parts: map[int]*memPart{}}
	if err := objectProps(r.Header, &u.obj); err != nil {
		return err
	}
	u.checksumAlg = strings.ToLower(r.Header.Get("X-Amz-Checksum-Algorithm"))
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.bucketLocked(bucket); err != nil {
		return err
	}
	if err := s.encryption(r.Header, &u.obj); err != nil {
		return err
	}
	if len(s.uploads) >= 1000 {
		return errS3(503, "SlowDown", "memstore: too many uploads in progress")
	}
	s.seq++
	u.id = fmt.Sprintf("mem-upload-%d-%x", s.seq, md5.Sum([]byte(bucket+"/"+key)))
	u.initiated = s.now()
	s.uploads[u.id] = u
	writeXML(w, struct {
		XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
		Xmlns    string   `xml:"xmlns,attr"`
		Bucket   string   `xml:"Bucket"`
		Key      string   `xml:"Key"`
		UploadID string   `xml:"UploadId"`
	}{Xmlns: s3NS, Bucket: bucket, Key: key, UploadID: u.id})
	return nil
}

// upload returns the upload a request names. Called with s.mu held.
func (s *memStore) upload(bucket, key, id string) (*memUpload, error) {
	if _, err := s.bucketLocked(bucket); err != nil {
		return nil, err
	}
	u := s.uploads[id]
	if u == nil || u.bucket != bucket || u.key != key {
		return nil, errNoSuchUpload.with("UploadId", id)
	}
	return u, nil
}

func (s *memStore) uploadPart(w http.ResponseWriter, r *http.Request, bucket, key string, q url.Values, body []byte) error {
	n, err := strconv.Atoi(q.Get("partNumber"))
	if err != nil || n < 1 || n > 10000 {
		return errS3(400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.upload(bucket, key, q.Get("uploadId"))
	if err != nil {
		return err
	}
	keyMD5, ok := memSSEC(r.Header, "")
	switch {
	case !ok:
		return errS3(400, "InvalidArgument", "The SSE-C headers are not valid.")
	case s.o.IgnoreSSE:
	case u.obj.keyMD5 != "" && keyMD5 == "":
		return errS3(400, "InvalidRequest", "The multipart upload initiate requested encryption. Subsequent part requests must include the appropriate encryption parameters.")
	case u.obj.keyMD5 != keyMD5:
		return errS3(403, "AccessDenied", "Access Denied.")
	}
	p := &memPart{data: body, modified: s.now(), checksum: requestChecksum(r.Header)}
	copied := r.Header.Get("X-Amz-Copy-Source") != ""
	if copied {
		src, _, err := s.copySource(r)
		if err != nil {
			return err
		}
		p.data = src.data
		if v := r.Header.Get("X-Amz-Copy-Source-Range"); v != "" {
			spec, ok := strings.CutPrefix(v, "bytes=")
			a, b, ok2 := strings.Cut(spec, "-")
			x, err1 := strconv.ParseInt(a, 10, 64)
			y, err2 := strconv.ParseInt(b, 10, 64)
			if !ok || !ok2 || err1 != nil || err2 != nil || x < 0 || y < x {
				return errS3(400, "InvalidArgument", "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy")
			}
			if y >= int64(len(src.data)) {
				return errS3(400, "InvalidArgument", "Range specified is not valid for source object of size: "+strconv.Itoa(len(src.data)))
			}
			p.data = src.data[x : y+1]
		}
		p.checksum = memChecksum{}
	}
	if s.bytes+int64(len(p.data)) > s.o.MaxBytes {
		return errStorageFull
	}
	if u.checksumAlg != "" && p.checksum.alg == "" {
		h := newChecksumHash(u.checksumAlg)
		h.Write(p.data)
		p.checksum = memChecksum{alg: u.checksumAlg, value: base64.StdEncoding.EncodeToString(h.Sum(nil))}
	}
	data := p.data
	if u.obj.keyMD5 != "" || u.obj.kmsKey != "" {
		// As for whole objects: SSE-C and SSE-KMS ETags are not the
		// MD5 of the data (AWS, MinIO).
		data = append([]byte("not the md5 of "), data...)
	}
	sum := md5.Sum(data)
	p.etag = `"` + hex.EncodeToString(sum[:]) + `"`
	if old := u.parts[n]; old != nil {
		s.bytes -= int64(len(old.data))
	}
	s.bytes += int64(len(p.data))
	u.parts[n] = p
	if copied {
		writeCopyResult(w, "CopyPartResult", p.modified, p.etag)
		return nil
	}
	s.echoSSE(w.Header(), &u.obj)
	if p.checksum.alg != "" {
		w.Header().Set("X-Amz-Checksum-"+strings.ToUpper(p.checksum.alg), p.checksum.value)
	}
	w.Header().Set("ETag", p.etag)
	w.WriteHeader(http.StatusOK)
	return nil
}

type memPartEntry struct {
	PartNumber     int    `xml:"PartNumber"`
	LastModified   string `xml:"LastModified"`
	ETag           string `xml:"ETag"`
	Size           int64  `xml:"Size"`
	ChecksumCRC32  string `xml:"ChecksumCRC32,omitempty"`
	ChecksumCRC32C string `xml:"ChecksumCRC32C,omitempty"`
	ChecksumSHA1   string `xml:"ChecksumSHA1,omitempty"`
	ChecksumSHA256 string `xml:"ChecksumSHA256,omitempty"`
}

func (s *memStore) listParts(w http.ResponseWriter, bucket, key string, q url.Values) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.upload(bucket, key, q.Get("uploadId"))
	if err != nil {
		return err
	}
	max := 1000
	if v := q.Get("max-parts"); v != "" {
		if max, err = strconv.Atoi(v); err != nil || max < 0 {
			return errS3(400, "InvalidArgument", "Argument max-parts must be an integer between 0 and 2147483647")
		}
		max = min(max, 1000)
	}
	marker, _ := strconv.Atoi(q.Get("part-number-marker"))
	var nums []int
	for n := range u.parts {
		if n > marker {
			nums = append(nums, n)
		}
	}
	sort.Ints(nums)
	type result struct {
		XMLName              xml.Name       `xml:"ListPartsResult"`
		Xmlns                string         `xml:"xmlns,attr"`
		Bucket               string         `xml:"Bucket"`
		Key                  string         `xml:"Key"`
		UploadID             string         `xml:"UploadId"`
		StorageClass         string         `xml:"StorageClass"`
		PartNumberMarker     int            `xml:"PartNumberMarker"`
		NextPartNumberMarker int            `xml:"NextPartNumberMarker"`
		MaxParts             int            `xml:"MaxParts"`
		IsTruncated          bool           `xml:"IsTruncated"`
		Parts                []memPartEntry `xml:"Part"`
	}
	res := result{Xmlns: s3NS, Bucket: bucket, Key: key, UploadID: u.id, StorageClass: "STANDARD", PartNumberMarker: marker, MaxParts: max}
	for _, n := range nums {
		if len(res.Parts) == max {
			res.IsTruncated = true
			break
		}
		p := u.parts[n]
		e := memPartEntry{PartNumber: n, LastModified: p.modified.Format("2006-01-02T15:04:05.000Z"), ETag: p.etag, Size: int64(len(p.data))}
		switch p.checksum.alg {
		case "crc32":
			e.ChecksumCRC32 = p.checksum.value
		case "crc32c":
			e.ChecksumCRC32C = p.checksum.value
		case "sha1":
			e.ChecksumSHA1 = p.checksum.value
		case "sha256":
			e.ChecksumSHA256 = p.checksum.value
		}
		res.Parts = append(res.Parts, e)
		res.NextPartNumberMarker = n
	}
	writeXML(w, res)
	return nil
}

func (s *memStore) complete(w http.ResponseWriter, r *http.Request, bucket, key, id string, body []byte) error {
	var req struct {
		Parts []struct {
			PartNumber     int    `xml:"PartNumber"`
			ETag           string `xml:"ETag"`
			ChecksumCRC32  string `xml:"ChecksumCRC32"`
			ChecksumCRC32C string `xml:"ChecksumCRC32C"`
			ChecksumSHA1   string `xml:"ChecksumSHA1"`
			ChecksumSHA256 string `xml:"ChecksumSHA256"`
		} `xml:"Part"`
	}
	if err := xml.Unmarshal(body, &req); err != nil {
		return errMalformedXML
	}
	if len(req.Parts) == 0 {
		return errS3(400, "InvalidRequest", "You must specify at least one part")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.upload(bucket, key, id)
	if err != nil {
		return err
	}
	b := s.buckets[bucket]
	var data []byte
	var sizes []int64
	sums := md5.New()
	last := 0
	for i, rp := range req.Parts {
		if rp.PartNumber <= last {
			return errPartOrder
		}
		last = rp.PartNumber
		p := u.parts[rp.PartNumber]
		if p == nil || strings.Trim(rp.ETag, `" `) != strings.Trim(p.etag, `"`) {
			return errInvalidPart.with("PartNumber", strconv.Itoa(rp.PartNumber))
		}
		for _, c := range []struct{ alg, v string }{{"crc32", rp.ChecksumCRC32}, {"crc32c", rp.ChecksumCRC32C}, {"sha1", rp.ChecksumSHA1}, {"sha256", rp.ChecksumSHA256}} {
			if c.v != "" && (p.checksum.alg != c.alg || p.checksum.value != c.v) {
				return errInvalidPart.with("PartNumber", strconv.Itoa(rp.PartNumber))
			}
		}
		if i < len(req.Parts)-1 && s.o.MinPartSize > 0 && int64(len(p.data)) < s.o.MinPartSize {
			return errEntityTooSmall.with("PartNumber", strconv.Itoa(rp.PartNumber)).with("ProposedSize", strconv.Itoa(len(p.data))).with("MinSizeAllowed", strconv.FormatInt(s.o.MinPartSize, 10))
		}
		raw, _ := hex.DecodeString(strings.Trim(p.etag, `"`))
		sums.Write(raw)
		data = append(data, p.data...)
		sizes = append(sizes, int64(len(p.data)))
	}
	if err := s.writeConditions(r.Header, b, key); err != nil {
		return err
	}
	o := u.obj
	o.data, o.parts = data, sizes
	o.etag = fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(sums.Sum(nil)), len(req.Parts))
	if u.checksumAlg != "" {
		h := newChecksumHash(u.checksumAlg)
		for _, rp := range req.Parts {
			raw, _ := base64.StdEncoding.DecodeString(u.parts[rp.PartNumber].checksum.value)
			h.Write(raw)
		}
		o.checksum = memChecksum{alg: u.checksumAlg, value: base64.StdEncoding.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(req.Parts)), typ: "COMPOSITE"}
	}
	for _, p := range u.parts {
		s.bytes -= int64(len(p.data))
	}
	delete(s.uploads, id)
	s.keep(w, b, key, &o)
	writeXML(w, struct {
		XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
		Xmlns    string   `xml:"xmlns,attr"`
		Location string   `xml:"Location"`
		Bucket   string   `xml:"Bucket"`
		Key      string   `xml:"Key"`
		ETag     string   `xml:"ETag"`
	}{Xmlns: s3NS, Location: "http://" + r.Host + "/" + bucket + "/" + key, Bucket: bucket, Key: key, ETag: o.etag})
	return nil
}

func (s *memStore) abort(w http.ResponseWriter, bucket, key, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.upload(bucket, key, id)
	if err != nil {
		return err
	}
	for _, p := range u.parts {
		s.bytes -= int64(len(p.data))
	}
	delete(s.uploads, id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- tagging and ACLs ---

type memTagging struct {
	XMLName xml.Name `xml:"Tagging"`
	Xmlns   string   `xml:"xmlns,attr,omitempty"`
	Tags    []memTag `xml:"TagSet>Tag"`
}

type memTag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

func (s *memStore) serveTagging(w http.ResponseWriter, r *http.Request, bucket, key string, q url.Values, body []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.findVersion(bucket, key, q.Get("versionId"))
	if err != nil {
		return err
	}
	if s.buckets[bucket].versioning != "" {
		w.Header().Set("X-Amz-Version-Id", o.version)
	}
	switch r.Method {
	case http.MethodGet:
		res := memTagging{Xmlns: s3NS, Tags: []memTag{}}
		var names []string
		for k := range o.tags {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			res.Tags = append(res.Tags, memTag{Key: k, Value: o.tags.Get(k)})
		}
		writeXML(w, res)
	case http.MethodPut:
		var t memTagging
		if err := xml.Unmarshal(body, &t); err != nil {
			return errMalformedXML
		}
		if len(t.Tags) > 10 {
			return errS3(400, "BadRequest", "Object tags cannot be greater than 10")
		}
		o.tags = url.Values{}
		for _, tag := range t.Tags {
			if tag.Key == "" || len(tag.Key) > 128 || len(tag.Value) > 256 || o.tags.Has(tag.Key) {
				return errS3(400, "InvalidTag", "The TagKey you have provided is invalid")
			}
			o.tags.Set(tag.Key, tag.Value)
		}
		w.WriteHeader(http.StatusOK)
	case http.MethodDelete:
		o.tags = nil
		w.WriteHeader(http.StatusNoContent)
	default:
		return errS3(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
	}
	return nil
}

func (s *memStore) serveACL(w http.ResponseWriter, r *http.Request, bucket, key string, q url.Values) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.findVersion(bucket, key, q.Get("versionId")); err != nil {
		return err
	}
	switch r.Method {
	case http.MethodGet:
		w.Header().Set("Content-Type", "application/xml")
		_, _ = io.WriteString(w, xml.Header+`<AccessControlPolicy xmlns="`+s3NS+`"><Owner><ID>memstore</ID></Owner><AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>memstore</ID></Grantee><Permission>FULL_CONTROL</Permission></Grant></AccessControlList></AccessControlPolicy>`)
	case http.MethodPut:
		if acl := r.Header.Get("X-Amz-Acl"); acl != "" && acl != "private" {
			return errNotImplemented
		}
		w.WriteHeader(http.StatusOK)
	default:
		return errS3(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
	}
	return nil
}

// --- buckets ---

func (s *memStore) listBuckets(w http.ResponseWriter) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	type bucket struct {
		Name         string `xml:"Name"`
		CreationDate string `xml:"CreationDate"`
	}
	res := struct {
		XMLName xml.Name `xml:"ListAllMyBucketsResult"`
		Xmlns   string   `xml:"xmlns,attr"`
		OwnerID string   `xml:"Owner>ID"`
		Buckets []bucket `xml:"Buckets>Bucket"`
	}{Xmlns: s3NS, OwnerID: "memstore"}
	var names []string
	for n := range s.buckets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		res.Buckets = append(res.Buckets, bucket{Name: n, CreationDate: s.buckets[n].created.Format("2006-01-02T15:04:05.000Z")})
	}
	writeXML(w, res)
	return nil
}

// bucketConfigs are the bucket sub-resources the store keeps as
// documents, with the error for a missing one.
var bucketConfigs = map[string]string{
	"policy": "NoSuchBucketPolicy", "cors": "NoSuchCORSConfiguration", "lifecycle": "NoSuchLifecycleConfiguration",
	"tagging": "NoSuchTagSet", "website": "NoSuchWebsiteConfiguration", "replication": "ReplicationConfigurationNotFoundError",
	"object-lock": "ObjectLockConfigurationNotFoundError", "notification": "", "acl": "", "publicAccessBlock": "NoSuchPublicAccessBlockConfiguration",
	"ownershipControls": "OwnershipControlsNotFoundError", "logging": "", "accelerate": "", "requestPayment": "",
}

func (s *memStore) serveBucket(w http.ResponseWriter, r *http.Request, bucket string, q url.Values, body []byte) error {
	has := func(p string) bool { _, ok := q[p]; return ok }
	switch {
	case r.Method == http.MethodPut && len(q) == 0:
		return s.createBucketRequest(w, bucket)
	case r.Method == http.MethodDelete && len(q) == 0:
		return s.deleteBucket(w, bucket)
	case r.Method == http.MethodHead:
		s.mu.Lock()
		_, err := s.bucketLocked(bucket)
		region := s.o.Region
		s.mu.Unlock()
		if err != nil {
			return err
		}
		w.Header().Set("X-Amz-Bucket-Region", region)
		w.WriteHeader(http.StatusOK)
		return nil
	case r.Method == http.MethodPost && has("delete"):
		return s.deleteObjects(w, r, bucket, body)
	case r.Method == http.MethodPost:
		return errS3(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
	}
	s.mu.Lock()
	b, err := s.bucketLocked(bucket)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	switch {
	case has("encryption"):
		s.mu.Lock()
		block := s.o.BlockSSEC
		s.mu.Unlock()
		if r.Method != http.MethodGet {
			return errNotImplemented
		}
		if !block {
			return errS3(404, "ServerSideEncryptionConfigurationNotFoundError", "The server side encryption configuration was not found")
		}
		w.Header().Set("Content-Type", "application/xml")
		_, _ = io.WriteString(w, `<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault><BlockedEncryptionTypes><EncryptionType>SSE-C</EncryptionType></BlockedEncryptionTypes></Rule></ServerSideEncryptionConfiguration>`)
		return nil
	case has("versioning"):
		s.mu.Lock()
		defer s.mu.Unlock()
		if r.Method == http.MethodPut {
			var v struct {
				Status string `xml:"Status"`
			}
			if xml.Unmarshal(body, &v) != nil || (v.Status != "Enabled" && v.Status != "Suspended") {
				return errMalformedXML
			}
			b.versioning = v.Status
			w.WriteHeader(http.StatusOK)
			return nil
		}
		writeXML(w, struct {
			XMLName xml.Name `xml:"VersioningConfiguration"`
			Xmlns   string   `xml:"xmlns,attr"`
			Status  string   `xml:"Status,omitempty"`
		}{Xmlns: s3NS, Status: b.versioning})
		return nil
	case has("location"):
		w.Header().Set("Content-Type", "application/xml")
		s.mu.Lock()
		loc := s.o.Region
		s.mu.Unlock()
		if loc == "us-east-1" {
			loc = ""
		}
		_, _ = io.WriteString(w, xml.Header+`<LocationConstraint xmlns="`+s3NS+`">`+loc+`</LocationConstraint>`)
		return nil
	case has("uploads"):
		return s.listUploads(w, bucket, q)
	case has("versions"):
		return s.listVersions(w, bucket, q)
	}
	for name, missing := range bucketConfigs {
		if !has(name) {
			continue
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		switch r.Method {
		case http.MethodPut:
			if len(body) > 64<<10 {
				return errEntityTooLarge
			}
			b.config[name] = body
			w.WriteHeader(http.StatusOK)
		case http.MethodDelete:
			delete(b.config, name)
			w.WriteHeader(http.StatusNoContent)
		default:
			doc, ok := b.config[name]
			if !ok {
				if missing == "" {
					return errNotImplemented
				}
				return errS3(404, missing, "The "+name+" configuration does not exist").with("BucketName", bucket)
			}
			w.Header().Set("Content-Type", "application/xml")
			_, _ = w.Write(doc)
		}
		return nil
	}
	if r.Method != http.MethodGet {
		return errNotImplemented
	}
	if q.Get("list-type") == "2" {
		return s.listObjects(w, bucket, q, true)
	}
	return s.listObjects(w, bucket, q, false)
}

func (s *memStore) createBucketRequest(w http.ResponseWriter, bucket string) error {
	s.mu.Lock()
	exists := s.buckets[bucket] != nil
	n := len(s.buckets)
	s.mu.Unlock()
	if exists {
		return errS3(409, "BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and you already own it.").with("BucketName", bucket)
	}
	if n >= 100 {
		return errS3(400, "TooManyBuckets", "You have attempted to create more buckets than allowed")
	}
	s.createBucket(bucket)
	w.Header().Set("Location", "/"+bucket)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *memStore) deleteBucket(w http.ResponseWriter, bucket string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.bucketLocked(bucket)
	if err != nil {
		return err
	}
	if len(b.objects) > 0 {
		return errS3(409, "BucketNotEmpty", "The bucket you tried to delete is not empty").with("BucketName", bucket)
	}
	delete(s.buckets, bucket)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *memStore) deleteObjects(w http.ResponseWriter, r *http.Request, bucket string, body []byte) error {
	if r.Header.Get("Content-Md5") == "" && requestChecksum(r.Header).alg == "" {
		return errS3(400, "InvalidRequest", "Missing required header for this request: Content-Md5")
	}
	var req struct {
		Quiet   bool `xml:"Quiet"`
		Objects []struct {
			Key       string `xml:"Key"`
			VersionID string `xml:"VersionId"`
		} `xml:"Object"`
	}
	if err := xml.Unmarshal(body, &req); err != nil || len(req.Objects) == 0 || len(req.Objects) > 1000 {
		return errMalformedXML
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.bucketLocked(bucket)
	if err != nil {
		return err
	}
	type entry struct {
		XMLName               xml.Name
		Key                   string `xml:"Key"`
		VersionID             string `xml:"VersionId,omitempty"`
		DeleteMarker          bool   `xml:"DeleteMarker,omitempty"`
		DeleteMarkerVersionID string `xml:"DeleteMarkerVersionId,omitempty"`
		Code                  string `xml:"Code,omitempty"`
		Message               string `xml:"Message,omitempty"`
	}
	res := struct {
		XMLName xml.Name `xml:"DeleteResult"`
		Xmlns   string   `xml:"xmlns,attr"`
		Entries []entry
	}{Xmlns: s3NS}
	for _, o := range req.Objects {
		if s.o.FailDelete {
			res.Entries = append(res.Entries, entry{XMLName: xml.Name{Local: "Error"}, Key: o.Key, VersionID: o.VersionID, Code: "InternalError", Message: "We encountered an internal error, please try again."})
			continue
		}
		marker, version := s.deleteLocked(b, o.Key, o.VersionID)
		if req.Quiet {
			continue
		}
		e := entry{XMLName: xml.Name{Local: "Deleted"}, Key: o.Key, VersionID: o.VersionID, DeleteMarker: marker}
		if marker && o.VersionID == "" {
			e.DeleteMarkerVersionID = version
		}
		res.Entries = append(res.Entries, e)
	}
	writeXML(w, res)
	return nil
}

// --- listings ---

type memContents struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
	StorageClass string `xml:"StorageClass"`
}

type memPrefix struct {
	Prefix string `xml:"Prefix"`
}

// s3EncodeName encodes a name as S3 does for encoding-type=url.
func s3EncodeName(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "%2F", "/")
}

// walkKeys visits, in order, the keys (and common prefixes) of names
// after marker under prefix, grouping by delimiter, up to max entries. It
// returns whether more remain and the last name visited.
func walkKeys(names []string, prefix, delimiter, marker string, max int, visit func(key string, isPrefix bool)) (truncated bool, last string) {
	n := 0
	lastPrefix := ""
	for _, k := range names {
		if !strings.HasPrefix(k, prefix) || k <= marker {
			continue
		}
		if delimiter != "" && strings.HasSuffix(marker, delimiter) && strings.HasPrefix(k, marker) {
			continue
		}
		name, isPrefix := k, false
		if delimiter != "" {
			if i := strings.Index(k[len(prefix):], delimiter); i >= 0 {
				name, isPrefix = k[:len(prefix)+i+len(delimiter)], true
				if name == lastPrefix {
					continue
				}
				lastPrefix = name
			}
		}
		if n == max {
			return true, last
		}
		visit(name, isPrefix)
		last = name
		n++
	}
	return false, last
}

func listMax(q url.Values, name string) (int, error) {
	v := q.Get(name)
	if v == "" {
		return 1000, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, errS3(400, "InvalidArgument", "Argument "+name+" must be an integer between 0 and 2147483647")
	}
	return min(n, 1000), nil
}

func (s *memStore) listObjects(w http.ResponseWriter, bucket string, q url.Values, v2 bool) error {
	max, err := listMax(q, "max-keys")
	if err != nil {
		return err
	}
	enc := q.Get("encoding-type")
	if enc != "" && enc != "url" {
		return errS3(400, "InvalidArgument", "Invalid Encoding Method specified in Request")
	}
	name := func(s string) string {
		if enc == "url" {
			return s3EncodeName(s)
		}
		return s
	}
	s.mu.Lock()
	b, err := s.bucketLocked(bucket)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	var keys []string
	objs := map[string]*memObject{}
	for k, vs := range b.objects {
		if o := latest(vs); o != nil && !o.deleteMarker {
			keys = append(keys, k)
			objs[k] = o
		}
	}
	s.mu.Unlock()
	sort.Strings(keys)
	prefix, delimiter := q.Get("prefix"), q.Get("delimiter")
	marker := q.Get("marker")
	token := q.Get("continuation-token")
	if v2 {
		marker = q.Get("start-after")
		if token != "" {
			raw, err := base64.StdEncoding.DecodeString(token)
			if err != nil {
				return errS3(400, "InvalidArgument", "The continuation token provided is incorrect")
			}
			marker = string(raw)
		}
	}
	var contents []memContents
	var prefixes []memPrefix
	truncated, last := walkKeys(keys, prefix, delimiter, marker, max, func(k string, isPrefix bool) {
		if isPrefix {
			prefixes = append(prefixes, memPrefix{Prefix: name(k)})
			return
		}
		o := objs[k]
		contents = append(contents, memContents{Key: name(k), LastModified: o.modified.Format("2006-01-02T15:04:05.000Z"), ETag: o.etag, Size: int64(len(o.data)), StorageClass: "STANDARD"})
	})
	if v2 {
		res := struct {
			XMLName               xml.Name      `xml:"ListBucketResult"`
			Xmlns                 string        `xml:"xmlns,attr"`
			Name                  string        `xml:"Name"`
			Prefix                string        `xml:"Prefix"`
			StartAfter            string        `xml:"StartAfter,omitempty"`
			ContinuationToken     string        `xml:"ContinuationToken,omitempty"`
			NextContinuationToken string        `xml:"NextContinuationToken,omitempty"`
			KeyCount              int           `xml:"KeyCount"`
			MaxKeys               int           `xml:"MaxKeys"`
			Delimiter             string        `xml:"Delimiter,omitempty"`
			EncodingType          string        `xml:"EncodingType,omitempty"`
			IsTruncated           bool          `xml:"IsTruncated"`
			Contents              []memContents `xml:"Contents"`
			CommonPrefixes        []memPrefix   `xml:"CommonPrefixes"`
		}{Xmlns: s3NS, Name: bucket, Prefix: name(prefix), StartAfter: name(q.Get("start-after")), ContinuationToken: token,
			KeyCount: len(contents) + len(prefixes), MaxKeys: max, Delimiter: name(delimiter), EncodingType: enc, IsTruncated: truncated,
			Contents: contents, CommonPrefixes: prefixes}
		if truncated {
			res.NextContinuationToken = base64.StdEncoding.EncodeToString([]byte(last))
		}
		writeXML(w, res)
		return nil
	}
	res := struct {
		XMLName        xml.Name      `xml:"ListBucketResult"`
		Xmlns          string        `xml:"xmlns,attr"`
		Name           string        `xml:"Name"`
		Prefix         string        `xml:"Prefix"`
		Marker         string        `xml:"Marker"`
		NextMarker     string        `xml:"NextMarker,omitempty"`
		MaxKeys        int           `xml:"MaxKeys"`
		Delimiter      string        `xml:"Delimiter,omitempty"`
		EncodingType   string        `xml:"EncodingType,omitempty"`
		IsTruncated    bool          `xml:"IsTruncated"`
		Contents       []memContents `xml:"Contents"`
		CommonPrefixes []memPrefix   `xml:"CommonPrefixes"`
	}{Xmlns: s3NS, Name: bucket, Prefix: name(prefix), Marker: name(marker), MaxKeys: max, Delimiter: name(delimiter), EncodingType: enc,
		IsTruncated: truncated, Contents: contents, CommonPrefixes: prefixes}
	if truncated {
		res.NextMarker = name(last)
	}
	writeXML(w, res)
	return nil
}

func (s *memStore) listVersions(w http.ResponseWriter, bucket string, q url.Values) error {
	max, err := listMax(q, "max-keys")
	if err != nil {
		return err
	}
	enc := q.Get("encoding-type")
	name := func(s string) string {
		if enc == "url" {
			return s3EncodeName(s)
		}
		return s
	}
	type version struct {
		XMLName      xml.Name
		Key          string `xml:"Key"`
		VersionID    string `xml:"VersionId"`
		IsLatest     bool   `xml:"IsLatest"`
		LastModified string `xml:"LastModified"`
		ETag         string `xml:"ETag,omitempty"`
		Size         *int64 `xml:"Size,omitempty"`
		StorageClass string `xml:"StorageClass,omitempty"`
	}
	res := struct {
		XMLName             xml.Name    `xml:"ListVersionsResult"`
		Xmlns               string      `xml:"xmlns,attr"`
		Name                string      `xml:"Name"`
		Prefix              string      `xml:"Prefix"`
		KeyMarker           string      `xml:"KeyMarker"`
		VersionIDMarker     string      `xml:"VersionIdMarker"`
		NextKeyMarker       string      `xml:"NextKeyMarker,omitempty"`
		NextVersionIDMarker string      `xml:"NextVersionIdMarker,omitempty"`
		MaxKeys             int         `xml:"MaxKeys"`
		Delimiter           string      `xml:"Delimiter,omitempty"`
		EncodingType        string      `xml:"EncodingType,omitempty"`
		IsTruncated         bool        `xml:"IsTruncated"`
		Versions            []version   `xml:",any"`
		CommonPrefixes      []memPrefix `xml:"CommonPrefixes"`
	}{Xmlns: s3NS, Name: bucket, Prefix: name(q.Get("prefix")), KeyMarker: name(q.Get("key-marker")), VersionIDMarker: q.Get("version-id-marker"),
		MaxKeys: max, Delimiter: name(q.Get("delimiter")), EncodingType: enc}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.bucketLocked(bucket)
	if err != nil {
		return err
	}
	var keys []string
	for k := range b.objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	prefix, delimiter := q.Get("prefix"), q.Get("delimiter")
	keyMarker, vMarker := q.Get("key-marker"), q.Get("version-id-marker")
	n := 0
	lastPrefix := ""
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) || k < keyMarker || (k == keyMarker && vMarker == "") {
			continue
		}
		if delimiter != "" {
			if i := strings.Index(k[len(prefix):], delimiter); i >= 0 {
				cp := k[:len(prefix)+i+len(delimiter)]
				if cp == lastPrefix || (strings.HasSuffix(keyMarker, delimiter) && strings.HasPrefix(k, keyMarker)) {
					continue
				}
				if n == max {
					res.IsTruncated = true
					break
				}
				lastPrefix = cp
				res.CommonPrefixes = append(res.CommonPrefixes, memPrefix{Prefix: name(cp)})
				res.NextKeyMarker, res.NextVersionIDMarker = name(cp), ""
				n++
				continue
			}
		}
		vs := b.objects[k]
		skipping := k == keyMarker
		for i := len(vs) - 1; i >= 0; i-- {
			o := vs[i]
			if skipping {
				if o.version == vMarker {
					skipping = false
				}
				continue
			}
			if n == max {
				res.IsTruncated = true
				break
			}
			v := version{XMLName: xml.Name{Local: "Version"}, Key: name(k), VersionID: o.version, IsLatest: i == len(vs)-1, LastModified: o.modified.Format("2006-01-02T15:04:05.000Z")}
			if o.deleteMarker {
				v.XMLName.Local = "DeleteMarker"
			} else {
				size := int64(len(o.data))
				v.ETag, v.Size, v.StorageClass = o.etag, &size, "STANDARD"
			}
			res.Versions = append(res.Versions, v)
			res.NextKeyMarker, res.NextVersionIDMarker = name(k), o.version
			n++
		}
		if res.IsTruncated {
			break
		}
	}
	if !res.IsTruncated {
		res.NextKeyMarker, res.NextVersionIDMarker = "", ""
	}
	writeXML(w, res)
	return nil
}

func (s *memStore) listUploads(w http.ResponseWriter, bucket string, q url.Values) error {
	max, err := listMax(q, "max-uploads")
	if err != nil {
		return err
	}
	type upload struct {
		Key          string `xml:"Key"`
		UploadID     string `xml:"UploadId"`
		Initiated    string `xml:"Initiated"`
		StorageClass string `xml:"StorageClass"`
	}
	res := struct {
		XMLName            xml.Name    `xml:"ListMultipartUploadsResult"`
		Xmlns              string      `xml:"xmlns,attr"`
		Bucket             string      `xml:"Bucket"`
		KeyMarker          string      `xml:"KeyMarker"`
		UploadIDMarker     string      `xml:"UploadIdMarker"`
		NextKeyMarker      string      `xml:"NextKeyMarker"`
		NextUploadIDMarker string      `xml:"NextUploadIdMarker"`
		Prefix             string      `xml:"Prefix"`
		Delimiter          string      `xml:"Delimiter,omitempty"`
		MaxUploads         int         `xml:"MaxUploads"`
		IsTruncated        bool        `xml:"IsTruncated"`
		Uploads            []upload    `xml:"Upload"`
		CommonPrefixes     []memPrefix `xml:"CommonPrefixes"`
	}{Xmlns: s3NS, Bucket: bucket, KeyMarker: q.Get("key-marker"), UploadIDMarker: q.Get("upload-id-marker"), Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter"), MaxUploads: max}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.bucketLocked(bucket); err != nil {
		return err
	}
	var ups []*memUpload
	for _, u := range s.uploads {
		if u.bucket == bucket && strings.HasPrefix(u.key, res.Prefix) {
			ups = append(ups, u)
		}
	}
	sort.Slice(ups, func(i, j int) bool {
		if ups[i].key != ups[j].key {
			return ups[i].key < ups[j].key
		}
		return ups[i].id < ups[j].id
	})
	for _, u := range ups {
		if u.key < res.KeyMarker || (u.key == res.KeyMarker && (res.UploadIDMarker == "" || u.id <= res.UploadIDMarker)) {
			continue
		}
		if len(res.Uploads) == max {
			res.IsTruncated = true
			break
		}
		res.Uploads = append(res.Uploads, upload{Key: u.key, UploadID: u.id, Initiated: u.initiated.Format("2006-01-02T15:04:05.000Z"), StorageClass: "STANDARD"})
		res.NextKeyMarker, res.NextUploadIDMarker = u.key, u.id
	}
	writeXML(w, res)
	return nil
}
