package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.uber.org/zap"

	"github.com/s3seal/s3seal/proxy/authz"
	"github.com/s3seal/s3seal/proxy/upstream"
)

// Upload ids the store handed out. An envelope upload's parts need what
// s3seal's own upload id carries (the sealed object key); ListMultipartUploads
// shows the store's ids, and some clients (the Docker registry's S3 driver)
// resume uploads with them. The store keeps no metadata it would give back
// for an unfinished upload, so s3seal keeps, for each envelope upload, one
// small object holding s3seal's id for the store's: at UploadStatePrefix in
// the upload's bucket, named by a digest of the key and the store's id. It
// is written at CreateMultipartUpload and deleted when the upload completes
// or is aborted; any replica reads it (and caches it) when a client names an
// upload by the store's id. The object holds nothing secret: s3seal's id
// carries the object key sealed under a data key only the key provider
// unwraps, and a tag that binds it to the store's id, checked as for any id.

// UploadStatePrefix is the key prefix, in every bucket, where s3seal keeps
// the state of envelope uploads. No client may use it.
const UploadStatePrefix = authz.StatePrefix

// uploadStateDir is where upload ids are kept under UploadStatePrefix.
const uploadStateDir = UploadStatePrefix + "uploads/"

// UploadStateReserved is the reservation authorization applies for
// UploadStatePrefix.
var UploadStateReserved = authz.Reserved{Bucket: "*", Prefix: UploadStatePrefix, KeysOnly: true,
	Why: "s3seal keeps the state of encrypted multipart uploads there"}

// uploadStateKey names the state object of the store's upload storeID of
// key.
func uploadStateKey(key, storeID string) string {
	sum := sha256.Sum256([]byte(key + "\x00" + storeID))
	return uploadStateDir + hex.EncodeToString(sum[:])
}

// uploadStates caches s3seal ids by bucket, key and store id.
type uploadStates = lru.Cache[string, string]

func newUploadStates() *uploadStates {
	c, err := lru.New[string, string](4096)
	if err != nil {
		panic("proxy: internal error: " + err.Error())
	}
	return c
}

// saveUploadState records s3seal's id for a new upload. A failure is
// logged, not fatal: the client has s3seal's id, and only a resume by the
// store's id needs the record.
func (h *Handler) saveUploadState(ctx context.Context, q *request, storeID, id string) {
	resp, err := h.up.Do(ctx, &upstream.Request{
		Method: http.MethodPut, Bucket: q.req.Bucket, Key: uploadStateKey(q.req.Key, storeID),
		Header:        http.Header{"Content-Type": {"application/octet-stream"}},
		Body:          strings.NewReader(id),
		ContentLength: int64(len(id)),
	})
	if err == nil {
		drainClose(resp.Body)
		if resp.StatusCode != http.StatusOK {
			err = upstreamError(resp)
		}
	}
	if err != nil {
		h.log.Warn("could not record the state of a multipart upload; resuming it by the store's upload id will not work",
			zap.String("request_id", q.id), zap.String("bucket", q.req.Bucket), zap.String("key", q.req.Key), zap.String("error", describe(err)))
		return
	}
	h.uploadIDs.Add(q.req.Bucket+"\x00"+q.req.Key+"\x00"+storeID, id)
}

// loadUploadState returns s3seal's id for the store's upload storeID, or
// "" when none is recorded.
func (h *Handler) loadUploadState(ctx context.Context, q *request, storeID string) (string, error) {
	ck := q.req.Bucket + "\x00" + q.req.Key + "\x00" + storeID
	if id, ok := h.uploadIDs.Get(ck); ok {
		return id, nil
	}
	resp, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodGet, Bucket: q.req.Bucket, Key: uploadStateKey(q.req.Key, storeID), Header: http.Header{}})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return "", nil
	default:
		return "", upstreamError(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	if err != nil {
		return "", err
	}
	id := string(b)
	h.uploadIDs.Add(ck, id)
	return id, nil
}

// dropUploadState deletes the record of a finished upload (best effort).
// In a versioned bucket a delete leaves the record as an older version
// behind a delete marker: every version of it is then deleted.
func (h *Handler) dropUploadState(ctx context.Context, q *request, storeID string) {
	h.uploadIDs.Remove(q.req.Bucket + "\x00" + q.req.Key + "\x00" + storeID)
	key := uploadStateKey(q.req.Key, storeID)
	resp, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodDelete, Bucket: q.req.Bucket, Key: key, Header: http.Header{}})
	if err != nil {
		return
	}
	drainClose(resp.Body)
	if resp.Header.Get("X-Amz-Delete-Marker") != "true" {
		return
	}
	lr, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodGet, Bucket: q.req.Bucket,
		Query: url.Values{"versions": {""}, "prefix": {key}}, Header: http.Header{}})
	if err != nil {
		return
	}
	var list struct {
		Entries []struct {
			XMLName   xml.Name
			Key       string `xml:"Key"`
			VersionID string `xml:"VersionId"`
		} `xml:",any"`
	}
	err = xml.NewDecoder(io.LimitReader(lr.Body, 1<<20)).Decode(&list)
	drainClose(lr.Body)
	if err != nil || lr.StatusCode != http.StatusOK {
		return
	}
	for _, e := range list.Entries {
		if e.Key != key || e.VersionID == "" || (e.XMLName.Local != "Version" && e.XMLName.Local != "DeleteMarker") {
			continue
		}
		dr, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodDelete, Bucket: q.req.Bucket, Key: key,
			Query: url.Values{"versionId": {e.VersionID}}, Header: http.Header{}})
		if err == nil {
			drainClose(dr.Body)
		}
	}
}
