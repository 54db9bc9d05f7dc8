package proxy

import (
	"bufio"
	"io"
	"net/http"

	"github.com/s3seal/s3seal/proxy/s3"
)

// maxCompleteResult bounds a CompleteMultipartUpload result document (a
// few hundred bytes; an error document at most a few KiB).
const maxCompleteResult = 1 << 20

// relayCompleteResult relays a successful CompleteMultipartUpload answer.
// The store may keep the connection alive with whitespace for minutes
// before the document (or an error document) follows; s3seal passes that
// whitespace on as it arrives, then sends the document with its Location
// naming the object at s3seal, the endpoint the client used, rather than
// at the store. edit, if not nil, changes other fields of the result.
func (h *Handler) relayCompleteResult(w *responseWriter, q *request, resp *http.Response, edit func(*s3.Entry)) {
	dst := w.Header()
	for k, v := range resp.Header {
		if dropResponseHeaders[k] || k == "Content-Length" {
			continue
		}
		dst[k] = v
	}
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	br := bufio.NewReaderSize(resp.Body, 512)
	for {
		b, err := br.ReadByte()
		if err == io.EOF {
			return
		}
		if err != nil {
			q.err = err
			panic(http.ErrAbortHandler)
		}
		if b != ' ' && b != '\n' && b != '\r' && b != '\t' {
			_ = br.UnreadByte()
			break
		}
		if _, err := w.Write([]byte{b}); err != nil {
			q.err = errClientGone
			return
		}
		_ = rc.Flush()
	}
	doc, err := io.ReadAll(io.LimitReader(br, maxCompleteResult))
	if err != nil {
		q.err = err
		panic(http.ErrAbortHandler)
	}
	q.upstreamN += int64(len(doc))
	loc := clientLocation(q)
	if out, err := s3.RewriteXML(doc, []string{"CompleteMultipartUploadResult"}, func(e *s3.Entry) error {
		if _, ok := e.Fields["Location"]; ok {
			e.Fields["Location"] = loc
		}
		if _, ok := e.Fields["ETag"]; ok && q.completeETag != "" {
			e.Fields["ETag"] = q.completeETag
		}
		if edit != nil {
			edit(e)
		}
		return nil
	}); err == nil {
		doc = out
	}
	if _, err := w.Write(doc); err != nil {
		q.err = errClientGone
	}
}

// clientLocation is the URL of q's object at s3seal, as the client
// addressed it (path style or virtual-hosted).
func clientLocation(q *request) string {
	scheme := "http"
	if q.r.TLS != nil {
		scheme = "https"
	}
	path := "/" + s3.EscapePath(q.req.Key)
	if !q.req.VirtualHost {
		path = "/" + q.req.Bucket + path
	}
	return scheme + "://" + q.r.Host + path
}
