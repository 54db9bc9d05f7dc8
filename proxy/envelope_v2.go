package proxy

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.uber.org/zap"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/stream"
	"github.com/s3seal/s3seal/proxy/s3err"
	"github.com/s3seal/s3seal/proxy/upstream"
)

// Format version 2 in the proxy (FORMAT.md, sections 6.5, 8.3, 8.4 and
// 9.4): the part-set record kept as the object tag s3seal-parts, part
// ETags that carry the salt of their encryption, key objects for wrapped
// keys too large for the metadata, and the markers under .s3seal/ that let
// listings tell the format versions apart.

// DefaultMarkerWait is W of FORMAT.md section 9.4: how long a replica may
// use a marker state it read, and how long a writer waits after creating a
// marker whose absence readers cache.
const DefaultMarkerWait = 30 * time.Second

// markerRecheck is how long a writer trusts that a marker it found or
// wrote still exists before it looks again (one HEAD per bucket and
// marker): a bucket deleted through another replica and created again
// gets its markers back from the first write after that.
const markerRecheck = time.Minute

// Marker objects (FORMAT.md, section 9.4).
const (
	markerFormat2   = UploadStatePrefix + "format-2"
	markerIrregular = UploadStatePrefix + "irregular"
	// markerMixed is written before a version 1 object is written into a
	// bucket that already holds version 2 objects (a version 1 upload
	// completed, copied or rotated after the switch): listings then look
	// up every object modified since the switch.
	markerMixed = UploadStatePrefix + "mixed"
)

// maxTags is S3's limit of tags per object.
const maxTags = 10

// envState holds what envelope mode keeps between requests for format
// version 2. Each cache owns its lock.
type envState struct {
	// wait is W (DefaultMarkerWait unless Options.MarkerWait sets it).
	wait time.Duration
	// records holds verified part sets, with the plaintext multipart
	// ETag their tag keeps, by bucket, key, version, store ETag and header
	// commitment (recordKey).
	records *lru.Cache[string, recordEntry]
	// keyObjects holds key objects' contents by reference (their SHA-256,
	// checked before they are cached).
	keyObjects *lru.Cache[[envelope.WrappedKeyRefSize]byte, []byte]
	// keyObjectsIn records the key objects known to exist, by bucket and
	// reference.
	keyObjectsIn *lru.Cache[string, struct{}]
	// markersOK records markers known to exist and (for those whose
	// absence readers cache) to be older than wait, by bucket and name.
	// Each entry holds when it was learnt and is trusted for markerRecheck:
	// DeleteBucket removes markers (delete_bucket.go).
	markersOK *lru.Cache[string, time.Time]
	// markers caches what listings read under .s3seal/, by bucket.
	markers *lru.Cache[string, markerState]
	// sums holds whole-object checksums read from segment trailers, by
	// recordKey (envelope_checksum.go).
	sums *lru.Cache[string, objectSum]
}

func newEnvState(wait time.Duration) *envState {
	if wait <= 0 {
		wait = DefaultMarkerWait
	}
	s := &envState{wait: wait}
	s.records, _ = lru.New[string, recordEntry](10000)
	s.keyObjects, _ = lru.New[[envelope.WrappedKeyRefSize]byte, []byte](1000)
	s.keyObjectsIn, _ = lru.New[string, struct{}](10000)
	s.markersOK, _ = lru.New[string, time.Time](10000)
	s.markers, _ = lru.New[string, markerState](10000)
	s.sums, _ = lru.New[string, objectSum](10000)
	return s
}

// --- part ETags ---

// partETagSalt separates the store's ETag of a part from the salt s3seal
// appends (FORMAT.md, section 8.4).
const partETagSalt = "-s"

// partETag is the ETag s3seal returns for a part of a version 2 upload:
// the store's ETag with "-s" and the hex of the part's salt appended, so
// that CompleteMultipartUpload learns which encryption of each part the
// client completes. A part sent with Content-MD5 also gets its MD5 in
// front (partETagWithMD5).
func partETag(store string, salt [stream.SaltSize]byte) string {
	inner := strings.Trim(store, `"`)
	return `"` + inner + partETagSalt + hex.EncodeToString(salt[:]) + `"`
}

// partETagWithMD5 is partETag with the part's plaintext MD5 in front when
// the client sent Content-MD5 (contentMD5, base64, verified on the way in;
// "" for none): "<md5 hex>.<store ETag>-s<salt hex>".
func partETagWithMD5(contentMD5, store string, salt [stream.SaltSize]byte) string {
	return ssePartETag(contentMD5, partETag(store, salt))
}

// splitPartETag returns the store's ETag of a part ETag a client sent, and
// the salt it carries (nil when it carries none: a part ETag from
// ListParts, or of a version 1 upload).
func splitPartETag(client string) (string, *[stream.SaltSize]byte) {
	store, salt, _ := splitPartETagMD5(client)
	return store, salt
}

// splitPartETagMD5 is splitPartETag for part ETags that may also carry
// the MD5 of the part's plaintext in front ("<md5 hex>.", where the client
// sent Content-MD5; sse_partetag.go): it returns that MD5 too, or nil.
// Whatever a client makes up here only changes its own Complete: a store
// ETag that is not the part's fails the part list check, a salt that is
// not the part's fails whole reads, an MD5 only the ETag Complete answers.
func splitPartETagMD5(client string) (string, *[stream.SaltSize]byte, []byte) {
	sum, rest, ok := splitSSEPartETag(client)
	if !ok {
		sum, rest = nil, client
	}
	store, salt := splitSaltETag(rest)
	return store, salt, sum
}

// splitSaltETag splits the salt off a part ETag (without an MD5).
func splitSaltETag(client string) (string, *[stream.SaltSize]byte) {
	inner := strings.Trim(client, `"`)
	if i := len(inner) - len(partETagSalt) - 2*stream.SaltSize; i > 0 && inner[i:i+len(partETagSalt)] == partETagSalt {
		var salt [stream.SaltSize]byte
		if _, err := hex.Decode(salt[:], []byte(inner[i+len(partETagSalt):])); err == nil {
			return `"` + inner[:i] + `"`, &salt
		}
	}
	return storeETag(client), nil
}

// --- key objects ---

// openKey unwraps the data key of hdr (fetching its key object from bucket
// when the header references one) and unseals the object key for
// bucket/key. Errors are the envelope package's, for keyError.
func (h *Handler) openKey(ctx context.Context, rt *Runtime, hdr envelope.Header, bucket, key string) (*envelope.ObjectKey, error) {
	var ko []byte
	if hdr.KeyObject() {
		var err error
		if ko, err = h.keyObject(ctx, bucket, [envelope.WrappedKeyRefSize]byte(hdr.WrappedKey())); err != nil {
			return nil, err
		}
	}
	return envelope.OpenWithKeyObject(ctx, rt.Keys, hdr, bucket, key, ko)
}

// keyObject returns the content of the key object ref in bucket, from the
// cache or the store. What the store returns must hash to ref.
func (h *Handler) keyObject(ctx context.Context, bucket string, ref [envelope.WrappedKeyRefSize]byte) ([]byte, error) {
	if b, ok := h.env.keyObjects.Get(ref); ok {
		return b, nil
	}
	resp, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodGet, Bucket: bucket, Key: envelope.KeyObjectName(ref), Header: http.Header{}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, &keys.UnwrapError{Err: fmt.Errorf("the key object %s is missing from bucket %s", envelope.KeyObjectName(ref), bucket)}
	default:
		return nil, upstreamError(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, err
	}
	if sha256.Sum256(b) != ref {
		return nil, &keys.UnwrapError{Err: fmt.Errorf("the key object %s does not hold the wrapped key its name promises", envelope.KeyObjectName(ref))}
	}
	h.env.keyObjects.Add(ref, b)
	h.env.keyObjectsIn.Add(bucket+"\x00"+string(ref[:]), struct{}{})
	return b, nil
}

// storeKeyObject stores the key object ref (content wrapped) in bucket
// unless it is known to be there: PutObject with If-None-Match: *, so an
// existing one is never replaced (FORMAT.md, section 6.5).
func (h *Handler) storeKeyObject(ctx context.Context, bucket string, ref [envelope.WrappedKeyRefSize]byte, wrapped []byte) error {
	ck := bucket + "\x00" + string(ref[:])
	if _, ok := h.env.keyObjectsIn.Get(ck); ok {
		return nil
	}
	if err := h.putOnce(ctx, bucket, envelope.KeyObjectName(ref), wrapped); err != nil {
		return fmt.Errorf("proxy: storing the key object %s: %w", envelope.KeyObjectName(ref), err)
	}
	h.env.keyObjects.Add(ref, append([]byte(nil), wrapped...))
	h.env.keyObjectsIn.Add(ck, struct{}{})
	return nil
}

// copyKeyObject makes sure the key object hdr references exists in bucket
// (a copy into another bucket references the same key object).
func (h *Handler) copyKeyObject(ctx context.Context, fromBucket, bucket string, hdr envelope.Header) error {
	if !hdr.KeyObject() || fromBucket == bucket {
		return nil
	}
	ref := [envelope.WrappedKeyRefSize]byte(hdr.WrappedKey())
	b, err := h.keyObject(ctx, fromBucket, ref)
	if err != nil {
		return err
	}
	return h.storeKeyObject(ctx, bucket, ref, b)
}

// putOnce creates key in bucket with body unless it exists (If-None-Match:
// *); an existing object is success.
func (h *Handler) putOnce(ctx context.Context, bucket, key string, body []byte) error {
	resp, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodPut, Bucket: bucket, Key: key,
		Header:        http.Header{"If-None-Match": {"*"}, "Content-Type": {"application/octet-stream"}},
		Body:          bytes.NewReader(body),
		ContentLength: int64(len(body)),
	})
	if err != nil {
		return err
	}
	defer drainClose(resp.Body)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPreconditionFailed {
		return upstreamError(resp)
	}
	return nil
}

// --- markers ---

// markerState is what a listing read under .s3seal/ in a bucket.
type markerState struct {
	format2   bool
	t0        time.Time // LastModified of the format-2 marker
	irregular bool
	mixed     bool
	read      time.Time // when it was read (s3seal's clock)
}

// ensureFormat2 makes sure the bucket has the format-2 marker before the
// first version 2 object is written into it. Listings read the markers
// after the listing itself and never cache their absence, so the writer
// need not wait (FORMAT.md, section 9.4).
func (h *Handler) ensureFormat2(ctx context.Context, bucket string) error {
	return h.ensureMarker(ctx, bucket, markerFormat2, false)
}

// ensureMarker makes sure marker exists in bucket. With wait set (a marker
// whose absence readers cache for W), it returns only once the marker is W
// old by the store's clock.
func (h *Handler) ensureMarker(ctx context.Context, bucket, marker string, wait bool) error {
	ck := bucket + "\x00" + marker
	if at, ok := h.env.markersOK.Get(ck); ok && h.now().Sub(at) < markerRecheck {
		return nil
	}
	age, found, err := h.markerAge(ctx, bucket, marker)
	if err != nil {
		return err
	}
	if !found {
		body := []byte("s3seal: " + strings.TrimPrefix(marker, UploadStatePrefix) + "\n")
		if err := h.putOnce(ctx, bucket, marker, body); err != nil {
			return fmt.Errorf("proxy: writing the marker %s: %w", marker, err)
		}
		age = 0
	}
	// The store's Last-Modified and Date have a resolution of one second:
	// a second more (or W more, if W is shorter) covers it.
	if total := h.env.wait + min(h.env.wait, time.Second); wait && age < total {
		t := time.NewTimer(total - age)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	h.env.markersOK.Add(ck, h.now())
	return nil
}

// markerAge returns how old a marker is by the store's clock (its Date
// less its Last-Modified), or found = false.
func (h *Handler) markerAge(ctx context.Context, bucket, marker string) (time.Duration, bool, error) {
	resp, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodHead, Bucket: bucket, Key: marker, Header: http.Header{}})
	if err != nil {
		return 0, false, err
	}
	drainClose(resp.Body)
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return 0, false, nil
	case resp.StatusCode != http.StatusOK:
		return 0, false, upstreamError(resp)
	}
	now, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		now = h.now()
	}
	return now.Sub(lastModified(resp.Header)), true, nil
}

// markersFor returns the markers of bucket for a listing whose entries the
// store has already answered. The format-2 marker's presence is cached (it
// is never removed); its absence is not, so a listing never misses a
// switch to version 2 that happened before it read the markers. The other
// markers' absence is cached for W, which is why their writers wait W.
func (h *Handler) markersFor(ctx context.Context, bucket string) (markerState, error) {
	if m, ok := h.env.markers.Get(bucket); ok && m.format2 && (m.irregular && m.mixed || h.now().Sub(m.read) < h.env.wait) {
		return m, nil
	}
	m, err := h.readMarkers(ctx, bucket)
	if err != nil {
		return markerState{}, err
	}
	h.env.markers.Add(bucket, m)
	return m, nil
}

// readMarkers lists .s3seal/ in bucket (one request: the markers are its
// direct children).
func (h *Handler) readMarkers(ctx context.Context, bucket string) (markerState, error) {
	m := markerState{read: h.now()}
	query := url.Values{"list-type": {"2"}, "prefix": {UploadStatePrefix}, "delimiter": {"/"}, "max-keys": {"100"}}
	resp, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodGet, Bucket: bucket, Query: query, Header: http.Header{}})
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, upstreamError(resp)
	}
	var res struct {
		Contents []struct {
			Key          string `xml:"Key"`
			LastModified string `xml:"LastModified"`
		} `xml:"Contents"`
	}
	if err := xml.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&res); err != nil {
		return m, fmt.Errorf("proxy: reading the markers of bucket %s: %w", bucket, err)
	}
	for _, c := range res.Contents {
		switch c.Key {
		case markerFormat2:
			t, err := time.Parse(time.RFC3339Nano, c.LastModified)
			if err != nil {
				return m, fmt.Errorf("proxy: the marker %s has no valid LastModified", markerFormat2)
			}
			m.format2, m.t0 = true, t
		case markerIrregular:
			m.irregular = true
		case markerMixed:
			m.mixed = true
		}
	}
	return m, nil
}

// listedVersion classifies a listed envelope object by its LastModified
// (FORMAT.md, section 9.4): 1, 2, or 0 when it must be looked up.
func (m markerState) listedVersion(modified string, w time.Duration) uint8 {
	if !m.format2 {
		return envelope.Version
	}
	t, err := time.Parse(time.RFC3339Nano, modified)
	switch {
	case err != nil:
		return 0
	case t.Before(m.t0.Add(-w)):
		return envelope.Version
	case m.mixed:
		return 0
	case t.After(m.t0.Add(w)):
		return envelope.VersionV2
	}
	return 0
}

// beforeVersion1Write is called before s3seal writes a version 1 object
// into bucket (it completes a version 1 upload, or copies a version 1
// object): where the bucket already holds version 2 objects, the mixed
// marker makes listings look such objects up. It returns whether the
// format-2 marker was absent, in which case afterVersion1Write must check
// again once the object is written.
func (h *Handler) beforeVersion1Write(ctx context.Context, bucket string) (bool, error) {
	_, found, err := h.markerAge(ctx, bucket, markerFormat2)
	if err != nil || !found {
		return true, err
	}
	return false, h.ensureMarker(ctx, bucket, markerMixed, true)
}

// afterVersion1Write closes the race of beforeVersion1Write: a switch to
// version 2 that another replica made while the object was written.
func (h *Handler) afterVersion1Write(ctx context.Context, q *request, bucket string) {
	_, found, err := h.markerAge(ctx, bucket, markerFormat2)
	if err == nil && found {
		err = h.ensureMarker(ctx, bucket, markerMixed, true)
	}
	if err != nil {
		h.log.Warn("could not mark the bucket as holding version 1 objects written after version 2 ones; listings may show a wrong size for the object",
			zap.String("request_id", q.id), zap.String("bucket", bucket), zap.String("error", describe(err)))
	}
}

// --- the part-set record ---

// errNoRecord is sent for a version 2 multipart object without a part-set
// record that verifies: it is refused rather than read unverified.
func errNoRecord(reason string) *s3err.Error {
	return s3err.New("InternalError", http.StatusInternalServerError,
		"s3seal: the stored multipart object has no valid part-set record (the object tag "+envelope.PartSetTag+": "+reason+"), so which parts it holds cannot be verified; it is not served. A tool that replaced the object's tags at the store removes the record; an object assembled at the store never had one.")
}

// recordKey is the record cache's key: the ETag fixes the stored bytes,
// the commitment the header (a store may change metadata and keep the
// ETag).
func recordKey(bucket, key, version, etag string, hdr envelope.Header) string {
	return bucket + "\x00" + key + "\x00" + version + "\x00" + etag + "\x00" + string(hdr.Commitment())
}

// recordEntry is a verified part set and the plaintext multipart ETag its
// tag keeps ("" if none).
type recordEntry struct {
	ps   envelope.PartSet
	etag string
}

// partSet returns the verified part set of the version 2 multipart object
// s at bucket/key (version: the version the store answered with, "" if
// none), from the cache or its tag, and sets s.plainETag to the plaintext
// multipart ETag the tag keeps.
func (h *Handler) partSet(ctx context.Context, q *request, bucket, key string, s *sealed) (envelope.PartSet, error) {
	ck := recordKey(bucket, key, s.version, s.etag, s.hdr)
	if e, ok := h.env.records.Get(ck); ok {
		s.plainETag = e.etag
		return e.ps, nil
	}
	tags, err := h.getTags(ctx, bucket, key, s.version)
	if err != nil {
		return envelope.PartSet{}, err
	}
	value, ok := "", false
	for _, t := range tags {
		if t.Key == envelope.PartSetTag {
			value, ok = t.Value, true
		}
	}
	fail := func(reason string, cause error) (envelope.PartSet, error) {
		h.log.Error("a version 2 multipart object has no valid part-set record; refused",
			zap.String("request_id", q.id), zap.String("bucket", bucket), zap.String("key", key), zap.String("reason", reason))
		return envelope.PartSet{}, errNoRecord(reason).WithCause(cause)
	}
	if !ok {
		return fail("missing", nil)
	}
	rec, etag, err := envelope.ParsePartSetTag(value)
	if err != nil {
		return fail("malformed", err)
	}
	if s.key == nil {
		// A write-only gateway cannot verify the record; it serves sizes
		// from it (checked against the stored size by the caller), never
		// plaintext, and does not cache it.
		return rec.Unverified(), nil
	}
	ps, err := s.key.OpenPartSet(s.hdr, bucket, key, rec)
	if err != nil {
		return fail("it does not verify for this object", err)
	}
	h.env.records.Add(ck, recordEntry{ps: ps, etag: etag})
	s.plainETag = etag
	return ps, nil
}

// tag is one object tag.
type tag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type tagging struct {
	XMLName xml.Name `xml:"Tagging"`
	Xmlns   string   `xml:"xmlns,attr,omitempty"`
	Tags    []tag    `xml:"TagSet>Tag"`
}

// parseTagging parses a Tagging document.
func parseTagging(doc []byte) ([]tag, error) {
	var t tagging
	if err := xml.Unmarshal(doc, &t); err != nil {
		return nil, s3err.MalformedXML
	}
	return t.Tags, nil
}

func marshalTagging(tags []tag) []byte {
	b, _ := xml.Marshal(tagging{Xmlns: "http://s3.amazonaws.com/doc/2006-03-01/", Tags: append([]tag{}, tags...)})
	return append([]byte(xml.Header), b...)
}

// getTags returns an object version's tags.
func (h *Handler) getTags(ctx context.Context, bucket, key, version string) ([]tag, error) {
	query := url.Values{"tagging": {""}}
	if version != "" {
		query.Set("versionId", version)
	}
	resp, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodGet, Bucket: bucket, Key: key, Query: query, Header: http.Header{}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, upstreamError(resp)
	}
	doc, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	return parseTagging(doc)
}

// putTags replaces an object version's tags.
func (h *Handler) putTags(ctx context.Context, bucket, key, version string, tags []tag) error {
	query := url.Values{"tagging": {""}}
	if version != "" {
		query.Set("versionId", version)
	}
	doc := marshalTagging(tags)
	sum := md5.Sum(doc)
	resp, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodPut, Bucket: bucket, Key: key, Query: query,
		Header:        http.Header{"Content-Md5": {base64.StdEncoding.EncodeToString(sum[:])}, "Content-Type": {"application/xml"}},
		Body:          bytes.NewReader(doc),
		ContentLength: int64(len(doc)),
	})
	if err != nil {
		return err
	}
	drainClose(resp.Body)
	if resp.StatusCode/100 != 2 {
		return upstreamError(resp)
	}
	return nil
}

// withRecord returns tags (a client's, without any s3seal-parts) with the
// record (and the plaintext multipart ETag etag, "" if none) added, or an
// error if that makes more than S3's 10.
func withRecord(tags []tag, rec envelope.PartSetRecord, etag string) ([]tag, error) {
	out := make([]tag, 0, len(tags)+1)
	for _, t := range tags {
		if !envelope.IsReservedTag(t.Key) {
			out = append(out, t)
		}
	}
	if len(out)+1 > maxTags {
		return nil, errTooManyTags(len(out))
	}
	return append(out, tag{Key: envelope.PartSetTag, Value: envelope.PartSetTagValue(rec, strings.Trim(etag, `"`))}), nil
}

func errTooManyTags(n int) *s3err.Error {
	return s3err.New("BadRequest", http.StatusBadRequest,
		fmt.Sprintf("Object tags cannot be greater than %d: s3seal keeps one of them (%s) on encrypted multipart objects, so at most %d are left for you, and this request has %d.", maxTags, envelope.PartSetTag, maxTags-1, n))
}

// writeRecord sets the part-set record of the object version bucket/key
// version as its tag s3seal-parts (with the plaintext multipart ETag etag
// where known, else ""), next to the client tags it has. It retries, since
// the object exists and is unreadable without it.
func (h *Handler) writeRecord(ctx context.Context, bucket, key, version string, rec envelope.PartSetRecord, etag string, client []tag, known bool) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		tags := client
		if !known {
			if tags, err = h.getTags(ctx, bucket, key, version); err != nil {
				continue
			}
		}
		var all []tag
		if all, err = withRecord(tags, rec, etag); err != nil {
			return err
		}
		if err = h.putTags(ctx, bucket, key, version, all); err == nil {
			return nil
		}
		if se, ok := s3err.As(err); ok && se.Status/100 == 4 {
			return err
		}
	}
	return err
}

// objectHeaders adjusts a GET or HEAD answer's headers for the envelope
// object s: the plaintext multipart ETag where its record keeps one
// (FORMAT.md, section 8.3), and the tag count without s3seal's tag.
func objectHeaders(hdr http.Header, s *sealed) {
	if s.plainETag != "" {
		hdr.Set("Etag", `"`+s.plainETag+`"`)
	}
	hideRecordTag(hdr, s)
}

// hideRecordTag takes s3seal's tag out of the tag count the store answers
// with for a version 2 multipart object (which has one, or is not served).
func hideRecordTag(hdr http.Header, s *sealed) {
	if s.hdr.Version() != envelope.VersionV2 || !s.hdr.Multipart() {
		return
	}
	if n, err := strconv.Atoi(hdr.Get("X-Amz-Tagging-Count")); err == nil && n > 0 {
		if n == 1 {
			hdr.Del("X-Amz-Tagging-Count")
		} else {
			hdr.Set("X-Amz-Tagging-Count", strconv.Itoa(n-1))
		}
	}
}

// --- tags clients set ---

// errReservedTag refuses a client's tag s3seal-parts.
var errReservedTag = s3err.New("InvalidTag", http.StatusBadRequest,
	"The tag key "+envelope.PartSetTag+" is reserved by s3seal: it holds the part-set record of encrypted multipart objects.")

// checkTaggingHeader refuses an x-amz-tagging header that sets s3seal's
// tag, or (limit 9 on a multipart upload, which needs one for the record)
// too many tags. It returns the tags.
func checkTaggingHeader(hdr http.Header, limit int) (url.Values, error) {
	v := hdr.Get("X-Amz-Tagging")
	if v == "" {
		return nil, nil
	}
	tags, err := url.ParseQuery(v)
	if err != nil {
		return nil, s3err.InvalidArgument.WithMessage("The x-amz-tagging header is not a valid URL query string.")
	}
	n := 0
	for k, vs := range tags {
		if envelope.IsReservedTag(k) {
			return nil, errReservedTag
		}
		n += len(vs)
	}
	if n > limit {
		return nil, errTooManyTags(n)
	}
	return tags, nil
}

// tagsFromQuery turns a URL query string of tags into tags.
func tagsFromQuery(v url.Values) []tag {
	var out []tag
	for k, vs := range v {
		for _, x := range vs {
			out = append(out, tag{Key: k, Value: x})
		}
	}
	return out
}

// envGetTagging answers GetObjectTagging without s3seal's tag.
func (h *Handler) envGetTagging(w *responseWriter, _ *Runtime, q *request) {
	h.forwardWith(w, q, q.auth, hooks{
		request: func(u *upstream.Request) error {
			mapConditionalHeaders(u.Header)
			return nil
		},
		response: func(w *responseWriter, q *request, resp *http.Response) bool {
			if resp.StatusCode != http.StatusOK {
				return false
			}
			doc, ok := h.readOK(w, q, resp, 1<<20)
			if !ok {
				return true
			}
			tags, err := parseTagging(doc)
			if err != nil {
				h.fail(w, q, s3err.InternalError.WithMessage("The store's tag set could not be read.").WithCause(err))
				return true
			}
			out := make([]tag, 0, len(tags))
			for _, t := range tags {
				if !envelope.IsReservedTag(t.Key) {
					out = append(out, t)
				}
			}
			copyEnvelopeHeaders(w.Header(), resp.Header)
			w.Header().Set("Content-Type", "application/xml")
			writeDocument(w, marshalTagging(out))
			return true
		},
	})
}

// readTaggingBody reads and parses a client's Tagging document (small).
func readTaggingBody(q *request) ([]tag, error) {
	if q.auth.Body == nil {
		return nil, s3err.MalformedXML
	}
	doc, err := io.ReadAll(io.LimitReader(q.auth.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	return parseTagging(doc)
}

// envPutTagging sets a client's tags. s3seal's tag is refused from
// clients and kept where the object has one: S3 replaces the whole set.
func (h *Handler) envPutTagging(w *responseWriter, _ *Runtime, q *request) {
	tags, err := readTaggingBody(q)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	for _, t := range tags {
		if envelope.IsReservedTag(t.Key) {
			h.fail(w, q, errReservedTag)
			return
		}
	}
	h.setTagsKeepingRecord(w, q, tags, http.StatusOK)
}

// envDeleteTagging deletes a client's tags, keeping s3seal's.
func (h *Handler) envDeleteTagging(w *responseWriter, _ *Runtime, q *request) {
	h.setTagsKeepingRecord(w, q, nil, http.StatusNoContent)
}

// setTagsKeepingRecord replaces the client tags of q's object version with
// tags, keeping its record tag if it has one, and answers status.
func (h *Handler) setTagsKeepingRecord(w *responseWriter, q *request, tags []tag, status int) {
	ctx := q.r.Context()
	version := q.query.Get("versionId")
	current, err := h.getTags(ctx, q.req.Bucket, q.req.Key, version)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	var record *tag
	for i := range current {
		if envelope.IsReservedTag(current[i].Key) {
			record = &current[i]
		}
	}
	if record == nil && len(tags) > maxTags {
		h.fail(w, q, s3err.New("BadRequest", http.StatusBadRequest, fmt.Sprintf("Object tags cannot be greater than %d", maxTags)))
		return
	}
	if record != nil {
		if len(tags)+1 > maxTags {
			h.fail(w, q, errTooManyTags(len(tags)))
			return
		}
		tags = append(append([]tag{}, tags...), *record)
	}
	var resp *http.Response
	if len(tags) == 0 {
		query := url.Values{"tagging": {""}}
		if version != "" {
			query.Set("versionId", version)
		}
		resp, err = h.up.Do(ctx, &upstream.Request{Method: http.MethodDelete, Bucket: q.req.Bucket, Key: q.req.Key, Query: query, Header: http.Header{}})
		if err == nil {
			drainClose(resp.Body)
			if resp.StatusCode/100 != 2 {
				err = upstreamError(resp)
			}
		}
	} else {
		err = h.putTags(ctx, q.req.Bucket, q.req.Key, version, tags)
	}
	if err != nil {
		h.fail(w, q, err)
		return
	}
	if version != "" {
		w.Header().Set("X-Amz-Version-Id", version)
	}
	w.WriteHeader(status)
}

// errorIs reports whether err is an S3 error with one of the codes.
func errorIs(err error, codes ...string) bool {
	var se *s3err.Error
	if !errors.As(err, &se) {
		return false
	}
	for _, c := range codes {
		if se.Code == c {
			return true
		}
	}
	return false
}

// salts of the parts of a just-completed version 2 object: from the part
// ETags where they carry one, else read from the object (the first 16
// bytes of each part, one ranged GET each; FORMAT.md, section 8.4).
func (h *Handler) partSalts(ctx context.Context, bucket, key, version, etag string, given []*[stream.SaltSize]byte, cipherSizes []int64) ([][stream.SaltSize]byte, error) {
	out := make([][stream.SaltSize]byte, len(given))
	var off int64
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, s := range given {
		if s != nil {
			out[i] = *s
			off += cipherSizes[i]
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, off int64) {
			defer wg.Done()
			defer func() { <-sem }()
			salt, err := h.readSalt(ctx, bucket, key, version, etag, off)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			out[i] = salt
		}(i, off)
		off += cipherSizes[i]
	}
	wg.Wait()
	return out, firstErr
}

// readSalt reads the 16 bytes at off of an object version (pinned to its
// ETag).
func (h *Handler) readSalt(ctx context.Context, bucket, key, version, etag string, off int64) ([stream.SaltSize]byte, error) {
	var salt [stream.SaltSize]byte
	b, err := h.readStored(ctx, bucket, key, version, etag, off, stream.SaltSize)
	if err != nil {
		return salt, err
	}
	copy(salt[:], b)
	return salt, nil
}
