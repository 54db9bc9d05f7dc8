package proxy

// Server-side encryption modes (sse-s3, sse-kms, sse-c).
//
// Under these modes s3seal has the store encrypt: it adds encryption
// headers to the requests that create objects and, for sse-c, the SSE-C
// keys it derives to every request that needs them. Bodies pass through
// unchanged.
//
//   - PutObject, CreateMultipartUpload and CopyObject (the destination)
//     get the rule's encryption: x-amz-server-side-encryption for sse-s3
//     and sse-kms (with the KMS key id, context and bucket-key flag), the
//     three SSE-C headers for sse-c. UploadPart never gets
//     x-amz-server-side-encryption (S3 refuses it there); under sse-c it
//     gets the upload's SSE-C key, as do UploadPartCopy and
//     CompleteMultipartUpload.
//   - Reads (GetObject, HeadObject, GetObjectAttributes) and copy sources
//     are self-describing: when a key ring is configured, s3seal finds
//     the key that opens an SSE-C object by trying its master keys (cached
//     per object), and reads other objects without SSE-C headers.
//   - A client's own encryption headers are kept or refused as the rule
//     says (policy.Rule.ResolveSSE, ClientSSEC).
//   - Browser-form POST uploads, SelectObjectContent and unknown
//     operations that are not reads are refused: s3seal cannot apply the
//     policy to them.
//   - After a write, s3seal checks that the store says it encrypted the
//     object (the response's encryption headers, else a HEAD). A store
//     that accepts encryption headers and ignores them has stored
//     plaintext: s3seal deletes that object (that version, on a versioned
//     bucket), logs an error, refuses the write with NotImplemented, and
//     refuses further writes to that bucket under that mode for a while
//     without sending data. Between the store's answer and the delete,
//     another writer of the same key on an unversioned bucket could be
//     deleted instead; versioned buckets do not have this race.
//   - SSE-C keys never reach applications (the key digests stores echo are
//     removed from responses), are never logged, and are never sent to a
//     plain-HTTP upstream unless the rule says allow_http.
//   - ETags under sse-kms and sse-c are never shown as 32 hex digits
//     (sse_etag.go).

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/s3seal/s3seal/crypto/keys/local"
	"github.com/s3seal/s3seal/proxy/policy"
	"github.com/s3seal/s3seal/proxy/s3"
	"github.com/s3seal/s3seal/proxy/s3err"
	"github.com/s3seal/s3seal/proxy/upstream"
)

// Defaults of SSEOptions.
const (
	DefaultSSECCacheSize    = 1 << 16
	DefaultUnconfirmedTTL   = 10 * time.Minute
	maxUnconfirmedBuckets   = 1024
	sseMaxSmallBody         = 64 << 10
	ssecAlgorithm           = "AES256"
	noSSECKey               = "" // a read attempt without SSE-C headers
	bucketEncryptionSubpath = "encryption"
)

// SSEOptions configures the server-side encryption modes. The zero value
// means no key ring (sse-c requests fail with a clear error) and the
// default cache sizes.
type SSEOptions struct {
	// Keyring derives SSE-C keys (sse-c rules, and reading SSE-C objects
	// under the other modes). Nil means none.
	Keyring *local.Keyring
	// PlainHTTPUpstream reports that the upstream endpoint is plain HTTP:
	// SSE-C keys are then sent only under rules with AllowHTTP.
	PlainHTTPUpstream bool
	// CacheSize bounds the cache of which master key opens which object
	// and multipart upload. 0 means DefaultSSECCacheSize.
	CacheSize int
	// UnconfirmedTTL is how long a bucket whose store did not confirm
	// encryption is refused writes without trying. 0 means
	// DefaultUnconfirmedTTL.
	UnconfirmedTTL time.Duration
	// Now is the clock of UnconfirmedTTL; nil means time.Now.
	Now func() time.Time
}

// SSE is the state of the server-side encryption modes: the key ring and
// the caches. It is safe for concurrent use; a configuration reload builds
// a new one.
type SSE struct {
	ring      *local.Keyring
	plainHTTP bool
	// masters maps an object (bucket, key, version) or a multipart
	// upload to the key-ring master key that opens it (noSSECKey: not an
	// SSE-C object). It has its own lock.
	masters *lru.Cache[ssecCacheKey, string]
	// unconfirmed maps "bucket mode" pairs whose store accepted
	// encryption headers without encrypting to when s3seal stops
	// refusing them. It has its own lock.
	unconfirmed    *lru.Cache[string, time.Time]
	unconfirmedTTL time.Duration
	now            func() time.Time
}

// ssecCacheKey identifies an object version (Upload empty) or a multipart
// upload.
type ssecCacheKey struct {
	Bucket, Key, Version, Upload string
}

// NewSSE returns the server-side encryption state for o.
func NewSSE(o SSEOptions) *SSE {
	if o.CacheSize <= 0 {
		o.CacheSize = DefaultSSECCacheSize
	}
	if o.UnconfirmedTTL <= 0 {
		o.UnconfirmedTTL = DefaultUnconfirmedTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	masters, err := lru.New[ssecCacheKey, string](o.CacheSize)
	if err != nil {
		panic("proxy: internal error: " + err.Error())
	}
	unconfirmed, err := lru.New[string, time.Time](maxUnconfirmedBuckets)
	if err != nil {
		panic("proxy: internal error: " + err.Error())
	}
	return &SSE{
		ring:           o.Keyring,
		plainHTTP:      o.PlainHTTPUpstream,
		masters:        masters,
		unconfirmed:    unconfirmed,
		unconfirmedTTL: o.UnconfirmedTTL,
		now:            o.Now,
	}
}

// CheckRules reports the first sse-c rule whose sse_c_key is not in the key
// ring, or any sse-c rule when there is no key ring.
func (s *SSE) CheckRules(e *policy.Engine) error {
	if e == nil {
		return nil
	}
	for _, r := range e.Rules() {
		if r.Mode != policy.SSEC {
			continue
		}
		if s.ring == nil {
			return &policy.RuleError{Rule: r.Name, Field: "mode", Err: errors.New("sse-c needs a local key ring: set keys (S3SEAL_KEYS) to local:<key ring file>")}
		}
		if r.SSECKey != "" && !slices.Contains(s.ring.Names(), r.SSECKey) {
			return &policy.RuleError{Rule: r.Name, Field: "sse_c_key", Err: fmt.Errorf("key %q is not in the key ring", r.SSECKey)}
		}
	}
	return nil
}

// writeMaster returns the master key new objects under rule get.
func (s *SSE) writeMaster(rule *policy.Rule) string {
	if rule.SSECKey != "" {
		return rule.SSECKey
	}
	return s.ring.Active()
}

// ringError is the error for an sse-c request without a key ring.
func (s *SSE) ringError(rule *policy.Rule) *s3err.Error {
	return s3err.New("ServiceUnavailable", http.StatusServiceUnavailable,
		fmt.Sprintf("s3seal policy rule %q (sse-c) cannot derive SSE-C keys: no local key ring is configured. Set s3seal's keys (S3SEAL_KEYS) to local:<key ring file>.", rule.Name))
}

// sseClientKeys refuses SSE-C keys a client sends itself where its rule
// does not allow them, and any SSE-C key bound for a plain-HTTP upstream.
func (h *Handler) sseClientKeys(s *SSE, q *request) error {
	rule := q.rule
	if hasSSEC(q.r.Header, "") && !rule.AllowsClientSSEC() {
		return s3err.AccessDenied.WithMessage("s3seal policy rule %q (%s) manages encryption keys itself: remove the x-amz-server-side-encryption-customer-* headers (or set client_sse_c: allow on the rule).", rule.Name, rule.Mode)
	}
	if (hasSSEC(q.r.Header, "") || hasSSEC(q.r.Header, copySourcePrefix)) && s.plainHTTP && !rule.AllowHTTP {
		return s3err.InvalidRequest.WithMessage("s3seal's upstream endpoint is plain HTTP, and SSE-C keys sent in clear text must be treated as leaked, so s3seal does not forward them (policy rule %q). Use an https upstream.", rule.Name)
	}
	return nil
}

// sseForward forwards a request under a server-side encryption rule that
// needs no encryption headers: only ETags change (conditional headers
// mapped back, answers' ETags as clients see them).
func (h *Handler) sseForward(w *responseWriter, q *request) {
	h.forwardWith(w, q, q.auth, hooks{
		request: func(u *upstream.Request) error { mapConditionalHeaders(u.Header); return nil },
		response: func(w *responseWriter, q *request, resp *http.Response) bool {
			sseResultETags(q.rule, q.req.Op, resp)
			return false
		},
	})
}

// sseDest is the encryption a write asks the store for.
type sseDest struct {
	// SSE is set for sse-s3 and sse-kms.
	SSE policy.SSE
	// Master is the key-ring master key of an sse-c write ("" when the
	// write is not s3seal's SSE-C).
	Master string
	// Client marks a write with the client's own SSE-C headers, honoured.
	Client bool
}

// ssec reports whether the write is SSE-C (s3seal's or the client's).
func (d sseDest) ssec() bool { return d.Master != "" || d.Client }

// sseDestination decides the encryption of a write under q's rule.
func (h *Handler) sseDestination(s *SSE, q *request) (sseDest, error) {
	rule := q.rule
	client, err := readClientSSE(q.r.Header)
	if err != nil {
		return sseDest{}, err
	}
	if hasSSEC(q.r.Header, "") {
		// Allowed by the rule (serveSSE refused it otherwise).
		return sseDest{Client: true, SSE: client}, nil
	}
	switch rule.Mode {
	case policy.SSEC:
		if !client.Empty() {
			return sseDest{}, s3err.AccessDenied.WithMessage("s3seal policy rule %q encrypts with SSE-C keys that s3seal holds: remove the x-amz-server-side-encryption headers.", rule.Name)
		}
		if err := s.ssecUsable(rule); err != nil {
			return sseDest{}, err
		}
		return sseDest{Master: s.writeMaster(rule)}, nil
	default:
		sse, err := rule.ResolveSSE(client)
		var refused *policy.RefusedError
		var invalid *policy.InvalidSSEError
		switch {
		case errors.As(err, &refused):
			return sseDest{}, s3err.AccessDenied.WithMessage("%s.", refused.Error())
		case errors.As(err, &invalid):
			return sseDest{}, s3err.InvalidArgument.WithMessage("%s", invalid.Reason)
		case err != nil:
			return sseDest{}, err
		}
		return sseDest{SSE: sse}, nil
	}
}

// ssecUsable reports whether s3seal may send SSE-C keys for rule: it has
// a key ring, and the upstream is HTTPS or the rule allows plain HTTP.
func (s *SSE) ssecUsable(rule *policy.Rule) error {
	if s.ring == nil {
		return s.ringError(rule)
	}
	if s.plainHTTP && !rule.AllowHTTP {
		return s3err.InvalidRequest.WithMessage("s3seal's upstream endpoint is plain HTTP, and SSE-C keys sent in clear text must be treated as leaked, so s3seal refuses requests under policy rule %q (sse-c). Use an https upstream, or set allow_http: true on the rule if the link is protected otherwise.", rule.Name)
	}
	return nil
}

// keysAllowed reports whether SSE-C keys may be sent for reads under
// rule over this upstream.
func (s *SSE) keysAllowed(rule *policy.Rule) bool {
	return s.ring != nil && (!s.plainHTTP || rule.Mode == policy.SSEC && rule.AllowHTTP)
}

// apply sets d's headers on an upstream request for bucket/key.
func (s *SSE) apply(hdr http.Header, d sseDest, bucket, key string) error {
	switch {
	case d.Client:
		// The client's own headers go as they are.
	case d.Master != "":
		writeSSE(hdr, policy.SSE{})
		k, err := s.ring.DeriveSSECKey(d.Master, bucket, key)
		if err != nil {
			return err
		}
		setSSEC(hdr, "", &k)
		clear(k[:])
	default:
		writeSSE(hdr, d.SSE)
	}
	return nil
}

// sseWrite handles PutObject and CreateMultipartUpload.
func (h *Handler) sseWrite(w *responseWriter, rt *Runtime, s *SSE, q *request) {
	d, err := h.sseDestination(s, q)
	if err == nil {
		err = s.refuseUnconfirmed(q)
	}
	if err != nil {
		h.fail(w, q, err)
		return
	}
	bucket, key := q.req.Bucket, q.req.Key
	h.forwardWith(w, q, q.auth, hooks{
		request: func(u *upstream.Request) error {
			mapConditionalHeaders(u.Header)
			return s.apply(u.Header, d, bucket, key)
		},
		response: func(w *responseWriter, q *request, resp *http.Response) bool {
			if resp.StatusCode >= 300 {
				return h.sseWriteRefused(w, q, s, d, resp)
			}
			if q.req.Op == s3.OpCreateMultipartUpload {
				if d.Master != "" {
					s.rememberUpload(q, resp, d.Master)
				}
				// Stores may confirm only when the upload completes.
				if !d.Client {
					stripSSECKeyMD5(resp.Header)
				}
				return false
			}
			if err := h.sseConfirm(q, s, resp, d, bucket, key); err != nil {
				drainClose(resp.Body)
				h.fail(w, q, err)
				return true
			}
			if d.Master != "" {
				s.remember(bucket, key, resp.Header.Get(sseHdrVersionID), d.Master)
			}
			if !d.Client {
				stripSSECKeyMD5(resp.Header)
			}
			sseResultETags(q.rule, q.req.Op, resp)
			return false
		},
	})
}

// markUnconfirmed records that the store did not encrypt a write to bucket
// under mode.
func (s *SSE) markUnconfirmed(bucket string, mode policy.Mode) {
	s.unconfirmed.Add(bucket+" "+string(mode), s.now().Add(s.unconfirmedTTL))
}

// isUnconfirmed reports whether markUnconfirmed recorded bucket and mode
// less than UnconfirmedTTL ago.
func (s *SSE) isUnconfirmed(bucket string, mode policy.Mode) bool {
	k := bucket + " " + string(mode)
	until, ok := s.unconfirmed.Get(k)
	if !ok {
		return false
	}
	if !s.now().Before(until) {
		s.unconfirmed.Remove(k)
		return false
	}
	return true
}
