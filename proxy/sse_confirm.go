package proxy

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/s3seal/s3seal/proxy/policy"
	"github.com/s3seal/s3seal/proxy/s3err"
	"github.com/s3seal/s3seal/proxy/upstream"
)

// refuseUnconfirmed refuses a write to a bucket whose store recently
// accepted encryption headers without encrypting.
func (s *SSE) refuseUnconfirmed(q *request) error {
	if s.isUnconfirmed(q.req.Bucket, q.rule.Mode) {
		return s3err.NotImplemented.WithMessage("The storage service behind s3seal recently accepted a %s write to bucket %q without encrypting it, so s3seal refuses writes there under policy rule %q. Use a store that supports %s, or another policy mode for this bucket.", q.rule.Mode, q.req.Bucket, q.rule.Name, q.rule.Mode)
	}
	return nil
}

// sseWriteRefused handles an error answer to a write: an SSE-C write refused
// with 403 may meet AWS's default block of SSE-C (April 2026), which s3seal
// confirms and explains. It reports whether it answered the client.
func (h *Handler) sseWriteRefused(w *responseWriter, q *request, s *SSE, d sseDest, resp *http.Response) bool {
	if resp.StatusCode != http.StatusForbidden || !d.ssec() {
		return false
	}
	if err := h.ssecBlocked(q); err != nil {
		drainClose(resp.Body)
		h.fail(w, q, err)
		return true
	}
	return false
}

// ssecBlocked asks the store whether the request's bucket blocks SSE-C
// writes (GetBucketEncryption's BlockedEncryptionTypes) and, if so,
// returns the error that says how to allow them.
func (h *Handler) ssecBlocked(q *request) error {
	bucket := q.req.Bucket
	resp, err := h.up.Do(q.r.Context(), &upstream.Request{
		Method: http.MethodGet,
		Bucket: bucket,
		Query:  url.Values{bucketEncryptionSubpath: {""}},
		Header: http.Header{},
	})
	if err != nil {
		return nil
	}
	defer drainClose(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, sseMaxSmallBody))
	if !blocksSSEC(body) {
		return nil
	}
	return s3err.AccessDenied.WithMessage("Bucket %q blocks SSE-C encryption (AWS blocks it by default on new buckets since April 2026), and s3seal policy rule %q (sse-c) writes with SSE-C. "+
		"Allow SSE-C on the bucket with PutBucketEncryption, keeping its default encryption and adding <BlockedEncryptionTypes><EncryptionType>NONE</EncryptionType></BlockedEncryptionTypes> to the rule, e.g. "+
		`aws s3api put-bucket-encryption --bucket %s --server-side-encryption-configuration '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"},"BlockedEncryptionTypes":{"EncryptionType":["NONE"]}}]}'`+
		"; or choose another policy mode for this bucket.", bucket, q.rule.Name, bucket)
}

// blocksSSEC reports whether a ServerSideEncryptionConfiguration document
// blocks SSE-C in any rule.
func blocksSSEC(doc []byte) bool {
	var cfg struct {
		Rules []struct {
			Blocked struct {
				Types []string `xml:"EncryptionType"`
			} `xml:"BlockedEncryptionTypes"`
		} `xml:"Rule"`
	}
	if xml.Unmarshal(doc, &cfg) != nil {
		return false
	}
	for _, r := range cfg.Rules {
		for _, t := range r.Blocked.Types {
			if t == "SSE-C" {
				return true
			}
		}
	}
	return false
}

// sseConfirm checks that the store encrypted the object a write created: from
// the response's headers, else from a HEAD of the object. If the store did
// not encrypt, sseConfirm deletes the object, remembers the bucket and
// returns the error for the client.
func (h *Handler) sseConfirm(q *request, s *SSE, resp *http.Response, d sseDest, bucket, key string) error {
	if sseConfirmed(resp.Header, d) {
		return nil
	}
	version := resp.Header.Get(sseHdrVersionID)
	ctx := q.r.Context()
	head := &upstream.Request{Method: http.MethodHead, Bucket: bucket, Key: key, Query: url.Values{}, Header: http.Header{}}
	if version != "" {
		head.Query.Set("versionId", version)
	}
	if d.Client {
		for _, n := range ssecHeaderNames {
			if v := q.r.Header.Values(n); len(v) > 0 {
				head.Header[n] = v
			}
		}
	} else if d.Master != "" {
		// Only SSE-C keys: S3 refuses x-amz-server-side-encryption on
		// reads.
		if err := s.apply(head.Header, d, bucket, key); err != nil {
			return err
		}
	}
	hresp, err := h.up.Do(context.WithoutCancel(ctx), head)
	if err == nil {
		drainClose(hresp.Body)
		if hresp.StatusCode == http.StatusOK && sseConfirmed(hresp.Header, d) {
			return nil
		}
		if hresp.StatusCode == http.StatusBadRequest && !d.ssec() && q.rule.AllowsClientSSEC() {
			// A multipart upload the client began with its own SSE-C
			// key and completed without it: the store wants the key
			// to show the object, so the object is SSE-C.
			return nil
		}
	}
	mode := string(q.rule.Mode)
	s.markUnconfirmed(bucket, q.rule.Mode)
	del := &upstream.Request{Method: http.MethodDelete, Bucket: bucket, Key: key, Query: url.Values{}, Header: http.Header{}}
	if version != "" {
		del.Query.Set("versionId", version)
	}
	deleted := false
	if dresp, derr := h.up.Do(context.WithoutCancel(ctx), del); derr == nil {
		drainClose(dresp.Body)
		deleted = dresp.StatusCode < 300
	}
	h.log.Error("the storage service did not confirm server-side encryption of an object written under an encrypting policy",
		zap.String("request_id", q.id), zap.String("bucket", bucket), zap.String("key", key),
		zap.String("version_id", version), zap.String("policy", q.policy), zap.Bool("deleted", deleted))
	if !deleted {
		return s3err.New("InternalError", http.StatusInternalServerError, fmt.Sprintf(
			"The storage service accepted the request to encrypt with %s (s3seal policy rule %q) but did not confirm that it encrypted the object, and s3seal could not delete what it stored: delete %s/%s from the store directly, and use a store that supports %s or another policy mode for this bucket.",
			mode, q.rule.Name, bucket, key, mode))
	}
	return s3err.NotImplemented.WithMessage("The storage service accepted the request to encrypt with %s (s3seal policy rule %q) but did not confirm that it encrypted the object, so s3seal deleted what it stored and refuses the write. Use a store that supports %s, or another policy mode for bucket %q.",
		mode, q.rule.Name, mode, bucket)
}

// sseConfirmed reports whether response headers say the object is encrypted as
// d asked: SSE-C with AES256, or x-amz-server-side-encryption at least as
// strong as requested.
func sseConfirmed(h http.Header, d sseDest) bool {
	if d.ssec() {
		return h.Get(hdrSSECAlgorithm) == ssecAlgorithm
	}
	got := policy.Algorithm(h.Get(hdrSSE))
	return got != policy.None && got.Strength() >= d.SSE.Algorithm.Strength()
}
