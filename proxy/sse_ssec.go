package proxy

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http"
	"strings"

	"github.com/s3seal/s3seal/proxy/policy"
	"github.com/s3seal/s3seal/proxy/s3"
	"github.com/s3seal/s3seal/proxy/s3err"
	"github.com/s3seal/s3seal/proxy/upstream"
)

// rememberUpload records which master key a new multipart upload uses,
// from the UploadId in the CreateMultipartUpload answer. It leaves the body
// for relaying.
func (s *SSE) rememberUpload(q *request, resp *http.Response, master string) {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, sseMaxSmallBody))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
	var res struct {
		UploadID string `xml:"UploadId"`
	}
	if xml.Unmarshal(body, &res) == nil && res.UploadID != "" {
		s.masters.Add(ssecCacheKey{Bucket: q.req.Bucket, Key: q.req.Key, Upload: res.UploadID}, master)
	}
}

// remember records the master key that opens an object (noSSECKey: none).
func (s *SSE) remember(bucket, key, version, master string) {
	s.masters.Add(ssecCacheKey{Bucket: bucket, Key: key}, master)
	if version != "" {
		s.masters.Add(ssecCacheKey{Bucket: bucket, Key: key, Version: version}, master)
	}
}

// candidates returns the SSE-C master keys to try, in order, to read an
// object under rule (noSSECKey: without SSE-C headers): the cached key first;
// then, under sse-c, the rule's write key, the other key-ring keys newest
// first and finally no key; under other modes no key first, then the key
// ring newest first. Without a key ring (or where keys may not be sent),
// only noSSECKey.
func (s *SSE) candidates(rule *policy.Rule, ck ssecCacheKey) []string {
	if !s.keysAllowed(rule) {
		return []string{noSSECKey}
	}
	names := s.ring.Names()
	out := make([]string, 0, len(names)+2)
	if c, ok := s.masters.Get(ck); ok {
		out = append(out, c)
	} else if ck.Version != "" {
		if c, ok := s.masters.Get(ssecCacheKey{Bucket: ck.Bucket, Key: ck.Key}); ok {
			out = append(out, c)
		}
	}
	if rule.Mode == policy.SSEC {
		out = append(out, s.writeMaster(rule))
		out = append(out, names...)
		out = append(out, noSSECKey)
	} else {
		out = append(out, noSSECKey)
		out = append(out, names...)
	}
	return uniqueNames(out)
}

func uniqueNames(list []string) []string {
	seen := make(map[string]bool, len(list))
	out := list[:0]
	for _, v := range list {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// ssecTrial tracks what the store said about the attempts at opening one
// object, to skip attempts that cannot succeed: after a wrong key (403) the
// object is SSE-C, so no attempt without a key; after a key the store calls
// not applicable (400), no further keys.
type ssecTrial struct {
	wrongKey, notSSEC, triedNone bool
}

// observe records the store's answer to attempt c and reports whether the
// answer is a key mismatch worth another attempt.
func (t *ssecTrial) observe(c string, status int) bool {
	switch {
	case status == http.StatusForbidden && c != noSSECKey:
		t.wrongKey = true
		return true
	case status == http.StatusBadRequest && c != noSSECKey:
		t.notSSEC = true
		return true
	case status == http.StatusBadRequest && c == noSSECKey:
		t.triedNone = true
		return true
	}
	if c == noSSECKey {
		t.triedNone = true
	}
	return false
}

// skip reports whether attempt c cannot succeed given what was observed.
func (t *ssecTrial) skip(c string) bool {
	if c == noSSECKey {
		return t.triedNone || t.wrongKey
	}
	return t.notSSEC
}

// next returns the index of the next attempt in cands after i worth
// making, or -1.
func (t *ssecTrial) next(cands []string, i int) int {
	for j := i + 1; j < len(cands); j++ {
		if !t.skip(cands[j]) {
			return j
		}
	}
	return -1
}

// ssecTryKeys sends a body-less request once per candidate master key until
// the store accepts one (see ssecTrial). edit sets the headers for a
// candidate; final handles the answer that ends the search (as a hooks
// response function) and learns which candidate it was.
func (h *Handler) ssecTryKeys(w *responseWriter, q *request, cands []string,
	edit func(u *upstream.Request, master string) error,
	final func(w *responseWriter, q *request, resp *http.Response, master string, t *ssecTrial) bool) {
	var t ssecTrial
	i := 0
	for i >= 0 && i < len(cands) {
		c, next := cands[i], -1
		h.forwardWith(w, q, q.auth, hooks{
			request: func(u *upstream.Request) error {
				mapConditionalHeaders(u.Header)
				return edit(u, c)
			},
			response: func(w *responseWriter, q *request, resp *http.Response) bool {
				if t.observe(c, resp.StatusCode) {
					if next = t.next(cands, i); next >= 0 {
						drainClose(resp.Body)
						return true
					}
				}
				return final(w, q, resp, c, &t)
			},
		})
		i = next
	}
}

// ssecNoKeyFits is the answer when every master key was refused.
func ssecNoKeyFits(n int) *s3err.Error {
	return s3err.AccessDenied.WithMessage("None of the %d SSE-C master keys in s3seal's key ring opens this object (or the storage service denies access to it): it was written with a key s3seal does not hold.", n)
}

// sseRead handles GetObject, HeadObject and GetObjectAttributes.
func (h *Handler) sseRead(w *responseWriter, s *SSE, q *request) {
	rule := q.rule
	if hasSSEC(q.r.Header, "") {
		h.sseForward(w, q) // the client's own keys, allowed by the rule
		return
	}
	if rule.Mode == policy.SSEC {
		if err := s.ssecUsable(rule); err != nil {
			h.fail(w, q, err)
			return
		}
	}
	bucket, key := q.req.Bucket, q.req.Key
	ck := ssecCacheKey{Bucket: bucket, Key: key, Version: q.query.Get("versionId")}
	cands := s.candidates(rule, ck)
	h.ssecTryKeys(w, q, cands,
		func(u *upstream.Request, master string) error {
			delSSEC(u.Header, "")
			if master == noSSECKey {
				return nil
			}
			return s.apply(u.Header, sseDest{Master: master}, bucket, key)
		},
		func(w *responseWriter, q *request, resp *http.Response, master string, t *ssecTrial) bool {
			switch {
			case resp.StatusCode < 300 || resp.StatusCode == http.StatusNotModified:
				s.masters.Add(ck, master)
			case resp.StatusCode == http.StatusForbidden && master != noSSECKey:
				drainClose(resp.Body)
				h.fail(w, q, ssecNoKeyFits(len(s.ring.Names())))
				return true
			}
			stripSSECKeyMD5(resp.Header)
			sseResultETags(q.rule, q.req.Op, resp)
			return false
		})
}

// uploadMaster returns the master key a multipart upload's parts use: the
// cached one, else the rule's write key.
func (s *SSE) uploadMaster(q *request) string {
	if m, ok := s.masters.Get(s.uploadKey(q)); ok && m != noSSECKey {
		return m
	}
	return s.writeMaster(q.rule)
}

func (s *SSE) uploadKey(q *request) ssecCacheKey {
	return ssecCacheKey{Bucket: q.req.Bucket, Key: q.req.Key, Upload: q.query.Get("uploadId")}
}

// nextUploadMaster records, after master was refused for an upload, the
// key-ring key to try next (the next older one, wrapping round), and
// reports whether there is one that has not been tried since.
func (s *SSE) nextUploadMaster(q *request, master string) bool {
	names := s.ring.Names()
	if len(names) < 2 {
		return false
	}
	first := s.writeMaster(q.rule)
	for i, n := range names {
		if n == master {
			next := names[(i+1)%len(names)]
			if next == first {
				return false
			}
			s.masters.Add(s.uploadKey(q), next)
			return true
		}
	}
	return false
}

// ssePart handles UploadPart and CompleteMultipartUpload. Under sse-c
// they carry the upload's SSE-C key. Their bodies are consumed when the
// store answers, so a key mismatch (an upload begun before the key ring
// changed) cannot be retried here: s3seal records the next key to try
// and answers 503, which SDKs retry.
func (h *Handler) ssePart(w *responseWriter, s *SSE, q *request) {
	rule := q.rule
	complete := q.req.Op == s3.OpCompleteMultipartUpload
	bucket, key := q.req.Bucket, q.req.Key
	var d sseDest
	switch {
	case hasSSEC(q.r.Header, ""):
		d.Client = true
	case rule.Mode == policy.SSEC:
		if err := s.ssecUsable(rule); err != nil {
			h.fail(w, q, err)
			return
		}
		d.Master = s.uploadMaster(q)
	default:
		d.SSE.Algorithm = policy.AES256
		if rule.Mode == policy.SSEKMS {
			d.SSE.Algorithm = policy.AWSKMS
		}
	}
	if complete && sseMapsETags(rule) && q.doc != nil {
		doc, etag, err := sseCompleteDoc(q.doc)
		if err != nil {
			h.fail(w, q, s3err.MalformedXML.WithCause(err))
			return
		}
		q.doc, q.completeETag = doc, etag
	}
	h.forwardWith(w, q, q.auth, hooks{
		request: func(u *upstream.Request) error {
			mapConditionalHeaders(u.Header)
			if complete && u.Header.Get("Content-Md5") != "" {
				// The document may have been rewritten above.
				sum := md5.Sum(q.doc)
				u.Header.Set("Content-Md5", base64.StdEncoding.EncodeToString(sum[:]))
			}
			if d.Master == "" {
				return nil
			}
			return s.apply(u.Header, d, bucket, key)
		},
		response: func(w *responseWriter, q *request, resp *http.Response) bool {
			if !complete && sseMapsETags(rule) {
				ssePartResponse(q, resp)
			}
			if d.Master != "" && ssecPartMismatch(resp) && s.nextUploadMaster(q, d.Master) {
				drainClose(resp.Body)
				h.fail(w, q, s3err.ServiceUnavailable.WithMessage("s3seal's key ring changed since this multipart upload began, and the SSE-C key it tried does not fit the upload; retry the request."))
				return true
			}
			if resp.StatusCode < 300 && d.Master != "" {
				s.masters.Add(s.uploadKey(q), d.Master)
			}
			if complete && resp.StatusCode < 300 {
				// CompleteMultipartUpload may answer 200 with an error
				// document; only a result is confirmed.
				if ok := sseResultOK(resp); ok {
					if err := h.sseConfirm(q, s, resp, d, bucket, key); err != nil {
						drainClose(resp.Body)
						h.fail(w, q, err)
						return true
					}
					if d.Master != "" {
						s.remember(bucket, key, resp.Header.Get(sseHdrVersionID), d.Master)
					}
				}
			}
			if !d.Client {
				stripSSECKeyMD5(resp.Header)
			}
			return false
		},
	})
}

// sseListParts handles ListParts. Under sse-c it carries the upload's key:
// AWS wants it when the upload has a checksum algorithm, which SDKs now
// always set.
func (h *Handler) sseListParts(w *responseWriter, s *SSE, q *request) {
	if q.rule.Mode != policy.SSEC || hasSSEC(q.r.Header, "") {
		h.sseForward(w, q)
		return
	}
	if err := s.ssecUsable(q.rule); err != nil {
		h.fail(w, q, err)
		return
	}
	d := sseDest{Master: s.uploadMaster(q)}
	bucket, key := q.req.Bucket, q.req.Key
	h.forwardWith(w, q, q.auth, hooks{
		request: func(u *upstream.Request) error { return s.apply(u.Header, d, bucket, key) },
		response: func(w *responseWriter, q *request, resp *http.Response) bool {
			stripSSECKeyMD5(resp.Header)
			return false
		},
	})
}

// ssecPartMismatch reports whether a part or completion answer says the
// SSE-C key does not fit the upload: 403 AccessDenied (MinIO), or 400
// InvalidRequest/InvalidArgument about the encryption (AWS).
func ssecPartMismatch(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusForbidden:
		return true
	case http.StatusBadRequest:
	default:
		return false
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
	code, msg, _ := parseErrorBody(body)
	if code != "InvalidRequest" && code != "InvalidArgument" {
		return false
	}
	msg = strings.ToLower(msg)
	return strings.Contains(msg, "encrypt") || strings.Contains(msg, "key")
}

// sseResultOK peeks at a 200 CompleteMultipartUpload answer and reports
// whether it is a result (not an error document). It leaves the body for
// relaying.
func sseResultOK(resp *http.Response) bool {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, sseMaxSmallBody))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
	code, _, _ := parseErrorBody(body)
	return code == ""
}
