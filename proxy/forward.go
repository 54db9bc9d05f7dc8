package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/s3seal/s3seal/proxy/s3"
	"github.com/s3seal/s3seal/proxy/s3err"
	"github.com/s3seal/s3seal/proxy/sigv4"
	"github.com/s3seal/s3seal/proxy/upstream"
)

// dropResponseHeaders are upstream response headers never relayed.
var dropResponseHeaders = map[string]bool{
	"Connection":         true,
	"Keep-Alive":         true,
	"Proxy-Connection":   true,
	"Proxy-Authenticate": true,
	"Te":                 true,
	"Trailer":            true,
	"Transfer-Encoding":  true,
	"Upgrade":            true,
}

// upstreamQuery returns a copy of the query to forward (the canonical
// request's, which holds only the operation's S3 parameters).
func upstreamQuery(q url.Values) url.Values {
	out := make(url.Values, len(q))
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// upstreamHeader returns the headers to send the store for q: the S3
// request headers the client sent (s3.ForwardHeader; everything else,
// including the client's authentication and aws-chunked framing, stays
// behind), the copy source in the canonical form that was authorized, and
// If-None-Match: * for a client that may create but not replace objects.
func upstreamHeader(q *request) http.Header {
	h := q.r.Header
	out := make(http.Header, len(h))
	for k, v := range h {
		if s3.ForwardHeader(k) {
			out[k] = v
		}
	}
	out.Del("Content-Encoding")
	enc := h.Get("Content-Encoding")
	if q.auth != nil {
		enc = q.auth.ContentEncoding
	}
	if enc != "" {
		out.Set("Content-Encoding", enc)
	}
	// s3seal rewrites some answers (listings, results): it asks the store
	// for them as they are, never compressed, and relays bodies without
	// re-encoding them.
	out.Set("Accept-Encoding", "identity")
	if q.req != nil && q.req.CopySource != nil {
		out.Set("X-Amz-Copy-Source", q.req.CopySource.CopySourceHeader())
	}
	if q.dec != nil && q.dec.CreateOnly {
		switch q.req.Op {
		case s3.OpPutObject, s3.OpCompleteMultipartUpload:
			out.Set("If-None-Match", "*")
		}
	}
	return out
}

// hooks adapt forwarding to a policy mode.
type hooks struct {
	// request edits the upstream request before it is sent (for example
	// to add server-side encryption headers). An error is sent to the
	// client instead.
	request func(*upstream.Request) error
	// response handles a response itself and reports true, or leaves it
	// to relay by reporting false. It may edit resp's headers first.
	response func(w *responseWriter, q *request, resp *http.Response) bool
}

// forward sends the request upstream unchanged in meaning (passthrough) and
// relays the answer.
func (h *Handler) forward(w *responseWriter, q *request, auth *sigv4.Result) {
	h.forwardWith(w, q, auth, hooks{})
}

// forwardWith forwards with hooks.
func (h *Handler) forwardWith(w *responseWriter, q *request, auth *sigv4.Result, hk hooks) {
	ureq, body, err := h.upstreamRequest(w, q, auth)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	if hk.request != nil {
		if err := hk.request(ureq); err != nil {
			h.fail(w, q, err)
			return
		}
	}
	resp, ok := h.send(w, q, ureq, body)
	if !ok {
		return
	}
	defer resp.Body.Close()
	if hk.response != nil && hk.response(w, q, resp) {
		return
	}
	h.relay(w, q, resp)
}

// upstreamRequest builds the upstream request for a client request: the
// same method, target, query and headers (less authentication and framing),
// and the verified, decoded body.
func (h *Handler) upstreamRequest(w *responseWriter, q *request, auth *sigv4.Result) (*upstream.Request, *trackingReader, error) {
	r := q.r
	ureq := &upstream.Request{
		Method: r.Method,
		Bucket: q.req.Bucket,
		Key:    q.req.Key,
		Query:  upstreamQuery(q.query),
		Header: upstreamHeader(q),
	}
	if q.doc != nil {
		// A document the handler already read and checked.
		ureq.Body, ureq.ContentLength = bytes.NewReader(q.doc), int64(len(q.doc))
		if auth != nil {
			h.chooseChecksum(ureq, q, auth)
		}
		return ureq, nil, nil
	}
	if auth == nil || auth.Body == nil || auth.Body == http.NoBody {
		if auth == nil && r.ContentLength > 0 {
			// Unauthenticated requests (CORS preflight) carry no body.
			return nil, nil, s3err.InvalidRequest.WithMessage("Unauthenticated requests cannot carry a body.")
		}
		return ureq, nil, nil
	}
	n := auth.ContentLength
	switch {
	case n < 0:
		return nil, nil, s3err.MissingContentLength
	case n == 0:
		// Nothing to stream: verify the (empty) body now, and send a
		// checksum the client declared in a trailer as a header, since S3
		// expects a declared algorithm to come with its value.
		if _, err := io.Copy(io.Discard, io.LimitReader(auth.Body, 1)); err != nil {
			return nil, nil, err
		}
		if auth.ChecksumTrailer && auth.ChecksumAlgorithm != "" {
			if v, ok := auth.ChecksumValue(); ok {
				ureq.Header.Set(auth.ChecksumAlgorithm.HeaderName(), v)
			}
		}
		return ureq, nil, nil
	}
	var src io.Reader = auth.Body
	if h.bodyTO > 0 {
		src = &stallReader{r: src, rc: http.NewResponseController(w.ResponseWriter), timeout: h.bodyTO, now: h.now}
	}
	body := &trackingReader{r: src}
	ureq.Body, ureq.ContentLength = body, n
	h.chooseChecksum(ureq, q, auth)
	return ureq, body, nil
}

// send sends ureq and returns the response, or reports the failure to the
// client and returns false. A client body that failed verification is the
// error reported, whatever the upstream made of the aborted upload.
func (h *Handler) send(w *responseWriter, q *request, ureq *upstream.Request, body *trackingReader) (*http.Response, bool) {
	ctx := q.r.Context()
	resp, err := h.up.Do(ctx, ureq)
	if resp != nil {
		q.upstreamStatus = resp.StatusCode
	}
	if body != nil {
		var berr error
		q.bytesIn, berr = body.state()
		if berr != nil && !errors.Is(berr, io.EOF) {
			if resp != nil {
				drainClose(resp.Body)
			}
			// A body that stalled past the body read timeout is the
			// client's fault, as on S3 (the read error also cancels ctx).
			var ne net.Error
			if errors.As(berr, &ne) && ne.Timeout() {
				h.fail(w, q, s3err.RequestTimeout.WithCause(berr))
				return nil, false
			}
			if contextErr(ctx) {
				h.fail(w, q, errClientGone)
				return nil, false
			}
			h.fail(w, q, berr)
			return nil, false
		}
	}
	if err != nil {
		if contextErr(ctx) {
			h.fail(w, q, errClientGone)
			return nil, false
		}
		h.fail(w, q, err)
		return nil, false
	}
	return resp, true
}

// chooseChecksum decides what checksum goes upstream with a body: the
// client's trailer checksum is passed on as a trailer (s3seal verified it
// on the way in; S3 verifies it again); a client checksum header or
// Content-MD5 is forwarded as is; without any, PutObject gets s3seal's
// default, as S3 gives every object a checksum. Never two: stores refuse
// a request with more than one x-amz-checksum-*.
func (h *Handler) chooseChecksum(ureq *upstream.Request, q *request, auth *sigv4.Result) {
	if auth.ChecksumAlgorithm != "" {
		if auth.ChecksumTrailer {
			ureq.Trailer = auth.ChecksumAlgorithm
			ureq.TrailerValue = func() string { v, _ := auth.ChecksumValue(); return v }
		}
		return
	}
	if q.req.Op != s3.OpPutObject || ureq.Header.Get("Content-Md5") != "" {
		return
	}
	for k := range ureq.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-amz-checksum-") && !strings.EqualFold(k, "X-Amz-Checksum-Type") && !strings.EqualFold(k, "X-Amz-Checksum-Algorithm") {
			return
		}
	}
	ureq.Trailer = h.defaultChecksum
}

// readOK reads the body of a store answer that s3seal rewrites before the
// client sees it. Any status other than 200 is relayed as it is; a body
// longer than limit, or one that breaks, fails the request. ok is false
// when the client already has its answer.
func (h *Handler) readOK(w *responseWriter, q *request, resp *http.Response, limit int64) (doc []byte, ok bool) {
	if resp.StatusCode != http.StatusOK {
		h.relay(w, q, resp)
		return nil, false
	}
	doc, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err == nil && int64(len(doc)) > limit {
		err = s3err.InternalError.WithMessage("The store's answer is too large for s3seal to rewrite.")
	}
	if err != nil {
		h.fail(w, q, err)
		return nil, false
	}
	return doc, true
}

// relay copies an upstream response to the client. Errors are sanitised
// (upstreamError); a body that breaks after the status went out aborts the
// connection.
func (h *Handler) relay(w *responseWriter, q *request, resp *http.Response) {
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotModified {
		e := upstreamError(resp)
		q.err = e
		h.writeError(w, q, e)
		return
	}
	if q.req != nil && q.req.Op == s3.OpCompleteMultipartUpload && resp.StatusCode == http.StatusOK {
		h.relayCompleteResult(w, q, resp, nil)
		return
	}
	dst := w.Header()
	for k, v := range resp.Header {
		if dropResponseHeaders[k] {
			continue
		}
		dst[k] = v
	}
	cleanContentEncoding(dst)
	w.WriteHeader(resp.StatusCode)
	if q.r.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified {
		return
	}
	h.copyBody(w, q, resp.Body)
}

// copyBody streams src to the client with a pooled buffer. A read failure
// after the header went out panics with http.ErrAbortHandler so the client
// sees an aborted connection, never a short 200.
func (h *Handler) copyBody(w *responseWriter, q *request, src io.Reader) {
	bp := h.bufs.Get().(*[]byte)
	defer h.bufs.Put(bp)
	buf := *bp
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			q.upstreamN += int64(n)
			if _, werr := w.Write(buf[:n]); werr != nil {
				q.err = errClientGone
				return
			}
		}
		if rerr == io.EOF {
			return
		}
		if rerr != nil {
			q.err = rerr
			panic(http.ErrAbortHandler)
		}
	}
}

// trackingReader counts bytes and keeps the first error its source
// returned, because the HTTP transport does not always report a request
// body's own error.
type trackingReader struct {
	r   io.Reader
	n   int64
	err error
	mu  sync.Mutex
}

func (t *trackingReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.mu.Lock()
	t.n += int64(n)
	if err != nil && t.err == nil {
		t.err = err
	}
	t.mu.Unlock()
	return n, err
}

// state returns the bytes read so far and the first error.
func (t *trackingReader) state() (int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n, t.err
}

func drainClose(rc io.ReadCloser) {
	if rc == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, rc, 64<<10)
	_ = rc.Close()
}

// cleanContentEncoding removes aws-chunked from a response's
// Content-Encoding. It is upload framing, which S3 strips before storing;
// a store that keeps it (versitygw) would otherwise hand it to clients,
// which then try to decode the object as aws-chunked.
func cleanContentEncoding(h http.Header) {
	vs, ok := h["Content-Encoding"]
	if !ok {
		return
	}
	if v := sigv4.StripAWSChunked(vs); v != "" {
		h["Content-Encoding"] = []string{v}
	} else {
		delete(h, "Content-Encoding")
	}
}
