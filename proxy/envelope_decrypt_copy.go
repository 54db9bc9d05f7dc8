package proxy

import (
	"net/http"
	"strings"

	"github.com/s3seal/s3seal/proxy/s3err"
	"github.com/s3seal/s3seal/proxy/upstream"
)

// copyOutOfEnvelope serves CopyObject into a key that is not under an
// envelope rule. When the source is an envelope object, a server-side copy
// would leave ciphertext sealed for another name (unreadable) where the
// policy expects plaintext, so s3seal reads the source's plaintext and
// writes it; edit adds what the destination's mode needs (server-side
// encryption headers). Other sources are copied server-side as usual. It
// reports false when the source is not an envelope object and the caller
// should copy normally.
func (h *Handler) copyOutOfEnvelope(w *responseWriter, rt *Runtime, q *request, edit func(*upstream.Request) error) bool {
	if rt.Keys == nil {
		return false // no key provider: no envelope objects to read
	}
	src, sh, err := h.headCopySource(rt, q)
	if err != nil {
		// Let the store answer the copy as it would.
		return false
	}
	if sh.Header.Get(metaHeader) == "" {
		return false
	}
	rd, n, err := h.openPlaintext(q, rt, src, sh, "")
	if err != nil {
		h.fail(w, q, err)
		return true
	}
	defer rd.Close()
	if n > maxSinglePut {
		h.fail(w, q, s3err.NotImplemented.WithMessage("Copying an encrypted object larger than 5 GiB out of envelope mode is not supported; download and upload it instead."))
		return true
	}
	ureq := h.baseRequest(q)
	replace := strings.EqualFold(q.r.Header.Get("X-Amz-Metadata-Directive"), "REPLACE")
	for k := range ureq.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-amz-copy-source") || lk == "x-amz-metadata-directive" || (!replace && strings.HasPrefix(lk, "x-amz-meta-")) {
			delete(ureq.Header, k)
		}
	}
	dropPlaintextChecksums(ureq.Header)
	if !replace {
		for k, v := range sh.Header {
			if name, ok := cutFoldPrefix(k, "X-Amz-Meta-"); ok && !strings.EqualFold(name, "s3seal") {
				ureq.Header[k] = v
			}
		}
		for _, name := range copiedHeaders {
			ureq.Header.Del(name)
			if v := sh.Header.Get(name); v != "" {
				ureq.Header.Set(name, v)
			}
		}
	}
	ureq.Body, ureq.ContentLength, ureq.Trailer = rd, n, h.defaultChecksum
	if edit != nil {
		if err := edit(ureq); err != nil {
			h.fail(w, q, err)
			return true
		}
	}
	resp, sent := h.send(w, q, ureq, nil)
	if !sent {
		return true
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		h.relay(w, q, resp)
		return true
	}
	for _, k := range []string{"X-Amz-Version-Id", "X-Amz-Server-Side-Encryption", "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id",
		"X-Amz-Server-Side-Encryption-Customer-Algorithm"} {
		if v := resp.Header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	h.writeResult(w, "CopyObjectResult", resp.Header.Get("Etag"), "")
	return true
}
