package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/s3seal/s3seal/proxy/s3"
	"github.com/s3seal/s3seal/proxy/s3err"
)

// listingEntries are the elements of listing answers that name keys.
var listingEntries = []string{"Contents", "Version", "DeleteMarker", "Upload", "CommonPrefixes"}

// maxListing bounds a listing answer s3seal rewrites.
const maxListing = 32 << 20

// listingKey returns the key (or common prefix) a listing entry names,
// decoded when the listing is URL-encoded.
func listingKey(q *request, e *s3.Entry) (string, bool) {
	name := "Key"
	if e.Name == "CommonPrefixes" {
		name = "Prefix"
	}
	k, ok := e.Fields[name]
	if !ok {
		return "", false
	}
	if q.query.Get("encoding-type") == "url" {
		if d, err := url.QueryUnescape(k); err == nil {
			k = d
		}
	}
	return k, true
}

// hidden reports whether authorization's filter hides a listing entry
// (keys in reserved storage or under deny-all rules).
func hidden(q *request, e *s3.Entry) bool {
	f := q.dec.Filter
	if f == nil {
		return false
	}
	k, ok := listingKey(q, e)
	if !ok {
		return false
	}
	if e.Name == "CommonPrefixes" {
		return !f.CommonPrefix(k)
	}
	return !f.Key(k)
}

// filteredListing relays a listing without the entries authorization
// hides.
func (h *Handler) filteredListing(w *responseWriter, q *request) {
	h.forwardWith(w, q, q.auth, hooks{response: func(w *responseWriter, q *request, resp *http.Response) bool {
		return h.rewriteListing(w, q, resp, func(e *s3.Entry) error {
			e.Drop = hidden(q, e)
			return nil
		})
	}})
}

// rewriteListing reads a listing answer, rewrites it with fn, and sends it.
// Other answers (errors) are left to relay: it reports false.
func (h *Handler) rewriteListing(w *responseWriter, q *request, resp *http.Response, fn func(e *s3.Entry) error) bool {
	if resp.StatusCode != http.StatusOK {
		return false
	}
	doc, err := io.ReadAll(io.LimitReader(resp.Body, maxListing+1))
	if err != nil {
		h.fail(w, q, err)
		return true
	}
	if len(doc) > maxListing {
		h.fail(w, q, errListingTooLarge())
		return true
	}
	out, err := s3.RewriteXML(doc, listingEntries, fn)
	if err != nil {
		if se, ok := s3err.As(err); ok {
			h.fail(w, q, se)
			return true
		}
		h.fail(w, q, errListingUnreadable().WithCause(err))
		return true
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{bytes.NewReader(out), resp.Body}
	resp.ContentLength = int64(len(out))
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	return false
}
