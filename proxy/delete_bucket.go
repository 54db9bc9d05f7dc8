package proxy

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/proxy/upstream"
)

// DeleteBucket and s3seal's own objects.
//
// Envelope mode keeps small objects of its own under UploadStatePrefix in a
// bucket: the format markers, the state of unfinished uploads, and key
// objects. A client that has deleted every object of its own would
// otherwise be unable to delete the bucket through s3seal: the store
// answers BucketNotEmpty. So when the store refuses a DeleteBucket as
// BucketNotEmpty and the bucket holds nothing (no version, no delete
// marker) outside that prefix but markers and upload state, s3seal deletes
// them and asks once more. Key objects are never deleted: a replica that
// knows one exists does not write it again for the next object under the
// same data key, so deleting one could leave that object unreadable; a
// bucket that holds key objects (written with age recipients) is deleted
// at the store. A write that lands between the listing and the second request
// keeps the bucket (the store refuses again); such a write may then lack a
// format marker that listings use for its size, which the next write in
// the bucket through any replica restores (markers are re-checked every
// markerRecheck).

// maxStateObjects bounds how many of its own objects s3seal deletes to
// delete a bucket; a bucket with more gets the store's BucketNotEmpty.
const maxStateObjects = 10000

func (h *Handler) serveDeleteBucket(w *responseWriter, _ *Runtime, q *request) {
	h.forwardWith(w, q, q.auth, hooks{response: func(w *responseWriter, q *request, resp *http.Response) bool {
		if resp.StatusCode != http.StatusConflict {
			return false
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if err != nil {
			return false
		}
		if code, _, _ := parseErrorBody(body); code != "BucketNotEmpty" {
			return false
		}
		ctx := q.r.Context()
		n, err := h.deleteStateObjects(ctx, q.req.Bucket)
		if err != nil || n == 0 {
			if err != nil {
				h.log.Warn("could not delete s3seal's own objects to delete a bucket",
					zap.String("request_id", q.id), zap.String("bucket", q.req.Bucket), zap.String("error", describe(err)))
			}
			return false
		}
		h.forgetBucket(q.req.Bucket)
		again, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodDelete, Bucket: q.req.Bucket, Header: http.Header{}})
		if err != nil {
			h.fail(w, q, err)
			return true
		}
		defer again.Body.Close()
		h.log.Info("deleted s3seal's own objects to delete a bucket",
			zap.String("request_id", q.id), zap.String("bucket", q.req.Bucket), zap.Int("objects", n), zap.Int("status", again.StatusCode))
		h.relay(w, q, again)
		return true
	}})
}

// stateEntry is one version (or delete marker) listed in a bucket.
type stateEntry struct {
	Key       string `xml:"Key"`
	VersionID string `xml:"VersionId"`
}

// deleteStateObjects deletes every version under UploadStatePrefix in
// bucket if nothing else is in it, and returns how many it deleted (0 when
// the bucket holds other objects).
func (h *Handler) deleteStateObjects(ctx context.Context, bucket string) (int, error) {
	entries, others, err := h.listAllVersions(ctx, bucket)
	if err != nil || others || len(entries) == 0 {
		return 0, err
	}
	for _, e := range entries {
		query := url.Values{}
		if e.VersionID != "" && e.VersionID != "null" {
			query.Set("versionId", e.VersionID)
		}
		resp, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodDelete, Bucket: bucket, Key: e.Key, Query: query, Header: http.Header{}})
		if err != nil {
			return 0, err
		}
		drainClose(resp.Body)
		if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound {
			return 0, upstreamError(resp)
		}
	}
	return len(entries), nil
}

// listAllVersions lists bucket's versions and delete markers (its objects,
// where the store has no ListObjectVersions) and returns those under
// UploadStatePrefix, or others = true as soon as it meets anything else.
func (h *Handler) listAllVersions(ctx context.Context, bucket string) (entries []stateEntry, others bool, err error) {
	versions := true
	marker, vmarker := "", ""
	for len(entries) <= maxStateObjects {
		query := url.Values{"versions": {""}, "max-keys": {"1000"}}
		if !versions {
			query = url.Values{"list-type": {"2"}, "max-keys": {"1000"}}
		}
		if marker != "" {
			if versions {
				query.Set("key-marker", marker)
				query.Set("version-id-marker", vmarker)
			} else {
				query.Set("continuation-token", marker)
			}
		}
		resp, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodGet, Bucket: bucket, Query: query, Header: http.Header{}})
		if err != nil {
			return nil, false, err
		}
		if resp.StatusCode != http.StatusOK {
			drainClose(resp.Body)
			if versions && marker == "" && resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusForbidden {
				versions = false
				continue
			}
			return nil, false, upstreamError(resp)
		}
		var page struct {
			Truncated     bool         `xml:"IsTruncated"`
			Versions      []stateEntry `xml:"Version"`
			DeleteMarkers []stateEntry `xml:"DeleteMarker"`
			Contents      []stateEntry `xml:"Contents"`
			NextKey       string       `xml:"NextKeyMarker"`
			NextVersion   string       `xml:"NextVersionIdMarker"`
			NextToken     string       `xml:"NextContinuationToken"`
		}
		err = xml.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&page)
		drainClose(resp.Body)
		if err != nil {
			return nil, false, fmt.Errorf("proxy: reading the listing of bucket %s: %w", bucket, err)
		}
		for _, list := range [][]stateEntry{page.Versions, page.DeleteMarkers, page.Contents} {
			for _, e := range list {
				if !strings.HasPrefix(e.Key, UploadStatePrefix) || strings.HasPrefix(e.Key, envelope.KeyObjectPrefix) {
					return nil, true, nil
				}
				entries = append(entries, e)
			}
		}
		if !page.Truncated {
			return entries, false, nil
		}
		marker, vmarker = page.NextKey, page.NextVersion
		if !versions {
			marker = page.NextToken
		}
		if marker == "" {
			return nil, false, fmt.Errorf("proxy: the listing of bucket %s is truncated without a marker", bucket)
		}
	}
	// Too many to delete on a request's time: the store's answer stands.
	return nil, true, nil
}

// forgetBucket drops what this replica cached about bucket's markers.
func (h *Handler) forgetBucket(bucket string) {
	h.env.markers.Remove(bucket)
	for _, k := range h.env.markersOK.Keys() {
		if strings.HasPrefix(k, bucket+"\x00") {
			h.env.markersOK.Remove(k)
		}
	}
}
