package proxy

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/s3seal/s3seal/proxy/s3err"
)

// maxListBuckets bounds the ListBuckets answer s3seal filters (10,000
// buckets of a few hundred bytes each).
const maxListBuckets = 16 << 20

// filterBuckets is the response hook of ListBuckets for a client limited to
// some buckets: the answer lists only those (Client.AllowedBucket).
func (h *Handler) filterBuckets(w *responseWriter, q *request, resp *http.Response) bool {
	if resp.StatusCode != http.StatusOK {
		return false
	}
	doc, err := io.ReadAll(io.LimitReader(resp.Body, maxListBuckets+1))
	if err == nil && len(doc) > maxListBuckets {
		err = errors.New("proxy: ListBuckets answer too large to filter")
	}
	if err == nil {
		doc, err = filterListBuckets(doc, q.identity.AllowedBucket)
	}
	if err != nil {
		h.fail(w, q, s3err.InternalError.WithMessage("s3seal could not filter the bucket list for this client.").WithCause(err))
		return true
	}
	for k, v := range resp.Header {
		if !dropResponseHeaders[k] && k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.Header().Set("Content-Length", itoa(int64(len(doc))))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(doc)
	return true
}

// filterListBuckets removes from a ListAllMyBucketsResult document every
// Buckets/Bucket element whose Name allowed refuses, and copies the rest
// byte for byte.
func filterListBuckets(doc []byte, allowed func(string) bool) ([]byte, error) {
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var cuts [][2]int64
	var name strings.Builder
	start, depth, inName := int64(-1), 0, false
	for {
		before := dec.InputOffset()
		tok, err := dec.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 3 && t.Name.Local == "Bucket" {
				start = before
				name.Reset()
			}
			inName = start >= 0 && depth == 4 && t.Name.Local == "Name"
		case xml.CharData:
			if inName {
				name.Write(t)
			}
		case xml.EndElement:
			inName = false
			if depth == 3 && start >= 0 {
				if !allowed(strings.TrimSpace(name.String())) {
					cuts = append(cuts, [2]int64{start, dec.InputOffset()})
				}
				start = -1
			}
			depth--
		}
	}
	if depth != 0 {
		return nil, errors.New("proxy: ListBuckets answer is not well-formed")
	}
	out := make([]byte, 0, len(doc))
	prev := int64(0)
	for _, c := range cuts {
		out = append(out, doc[prev:c[0]]...)
		prev = c[1]
	}
	return append(out, doc[prev:]...), nil
}
