package proxy

import (
	"net/http"

	"github.com/s3seal/s3seal/proxy/policy"
	"github.com/s3seal/s3seal/proxy/s3"
	"github.com/s3seal/s3seal/proxy/s3err"
	"github.com/s3seal/s3seal/proxy/upstream"
)

// sseCopy handles CopyObject and UploadPartCopy: the destination is
// encrypted as its rule says, the source is opened with the key its own
// rule (or the client, where allowed) supplies.
func (h *Handler) sseCopy(w *responseWriter, rt *Runtime, s *SSE, q *request) {
	// Authorization has parsed the source and checked it against the
	// client's permissions and the source's own rule.
	src := *q.req.CopySource
	srcRule := q.dec.SourceRule
	if srcRule.Mode == policy.Envelope {
		h.fail(w, q, s3err.NotImplemented.WithMessage("The copy source is under s3seal policy rule %q (envelope): s3seal cannot copy client-side encrypted objects into a server-side encrypted location (%s) without decrypting them; download the object through s3seal and upload it again.", srcRule.Name, q.rule.Mode))
		return
	}
	clientSrc := hasSSEC(q.r.Header, copySourcePrefix)
	if clientSrc && srcRule.Mode.ServerSide() && !srcRule.AllowsClientSSEC() {
		h.fail(w, q, s3err.AccessDenied.WithMessage("s3seal policy rule %q (%s) manages the copy source's encryption keys itself: remove the x-amz-copy-source-server-side-encryption-customer-* headers.", srcRule.Name, srcRule.Mode))
		return
	}
	if !clientSrc && srcRule.Mode == policy.SSEC {
		if err := s.ssecUsable(srcRule); err != nil {
			h.fail(w, q, err)
			return
		}
	}

	// The destination.
	part := q.req.Op == s3.OpUploadPartCopy
	var d sseDest
	var err error
	switch {
	case part && hasSSEC(q.r.Header, ""):
		d.Client = true
	case part && q.rule.Mode == policy.SSEC:
		if err := s.ssecUsable(q.rule); err != nil {
			h.fail(w, q, err)
			return
		}
		d.Master = s.uploadMaster(q)
	case part:
	default:
		if d, err = h.sseDestination(s, q); err == nil {
			err = s.refuseUnconfirmed(q)
		}
		if err != nil {
			h.fail(w, q, err)
			return
		}
	}

	// The source.
	cands := []string{noSSECKey}
	if !clientSrc {
		cands = s.candidates(srcRule, ssecCacheKey{Bucket: src.Bucket, Key: src.Key, Version: src.VersionID})
	}
	bucket, key := q.req.Bucket, q.req.Key
	h.ssecTryKeys(w, q, cands,
		func(u *upstream.Request, master string) error {
			if !part || d.Master != "" {
				if err := s.apply(u.Header, d, bucket, key); err != nil {
					return err
				}
			}
			if clientSrc {
				return nil
			}
			delSSEC(u.Header, copySourcePrefix)
			if master == noSSECKey {
				return nil
			}
			k, err := s.ring.DeriveSSECKey(master, src.Bucket, src.Key)
			if err != nil {
				return err
			}
			setSSEC(u.Header, copySourcePrefix, &k)
			clear(k[:])
			return nil
		},
		func(w *responseWriter, q *request, resp *http.Response, master string, t *ssecTrial) bool {
			if resp.StatusCode >= 300 {
				if !part && h.sseWriteRefused(w, q, s, d, resp) {
					return true
				}
				if resp.StatusCode == http.StatusForbidden && master != noSSECKey && t.wrongKey {
					drainClose(resp.Body)
					h.fail(w, q, ssecNoKeyFits(len(s.ring.Names())))
					return true
				}
				return false
			}
			if !clientSrc {
				s.masters.Add(ssecCacheKey{Bucket: src.Bucket, Key: src.Key, Version: src.VersionID}, master)
			}
			if !part && sseResultOK(resp) {
				if err := h.sseConfirm(q, s, resp, d, bucket, key); err != nil {
					drainClose(resp.Body)
					h.fail(w, q, err)
					return true
				}
				if d.Master != "" {
					s.remember(bucket, key, resp.Header.Get(sseHdrVersionID), d.Master)
				}
			}
			if part && d.Master != "" {
				s.masters.Add(s.uploadKey(q), d.Master)
			}
			// Each side's key digest is the client's business only
			// when the client supplied that side's key.
			if !d.Client {
				resp.Header.Del(hdrSSECKeyMD5)
			}
			if !clientSrc {
				resp.Header.Del(ssecName(copySourcePrefix, hdrSSECKeyMD5))
			}
			if !part {
				sseResultETags(q.rule, q.req.Op, resp)
			}
			return false
		})
}
