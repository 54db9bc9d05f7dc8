package proxy

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http"
	"strings"

	"github.com/s3seal/s3seal/proxy/s3"
	"github.com/s3seal/s3seal/proxy/s3err"
)

// DeleteObjects is answered per key, as S3 does. Authorization decided
// each key (authz.Decision.Refused); the keys the client may delete go to
// the store in a DeleteObjects request of their own, the others never
// leave s3seal and come back as AccessDenied entries of the result.

// maxDeleteResult bounds the store's DeleteResult (1,000 entries).
const maxDeleteResult = 8 << 20

// serveDeleteObjects handles DeleteObjects under every mode.
func (h *Handler) serveDeleteObjects(w *responseWriter, _ *Runtime, q *request) {
	del := q.req.Delete
	refused := q.dec.Refused
	if len(refused) == len(del.Objects) {
		h.writeDeleteResult(w, q, nil, nil)
		return
	}
	body := q.doc
	var allowed []s3.DeleteObject
	if len(refused) > 0 {
		for i, o := range del.Objects {
			if refused[i] == nil {
				allowed = append(allowed, o)
			}
		}
		body = del.Marshal(allowed)
	}
	ureq := h.baseRequest(q)
	if len(refused) > 0 {
		// The client's digest was over the document it sent.
		dropPlaintextChecksums(ureq.Header)
		sum := md5.Sum(body)
		ureq.Header.Set("Content-Md5", base64.StdEncoding.EncodeToString(sum[:]))
	}
	ureq.Body, ureq.ContentLength = bytes.NewReader(body), int64(len(body))
	resp, ok := h.send(w, q, ureq, nil)
	if !ok {
		return
	}
	defer resp.Body.Close()
	if len(refused) == 0 || resp.StatusCode != http.StatusOK {
		h.relay(w, q, resp)
		return
	}
	doc, err := io.ReadAll(io.LimitReader(resp.Body, maxDeleteResult+1))
	if err != nil || len(doc) > maxDeleteResult {
		h.fail(w, q, s3err.InternalError.WithMessage("The store's DeleteObjects answer could not be read.").WithCause(err))
		return
	}
	h.writeDeleteResult(w, q, doc, resp.Header)
}

// deleteResultEntry is one entry of a DeleteResult document.
type deleteResultEntry struct {
	XMLName   xml.Name
	Key       string `xml:"Key"`
	VersionID string `xml:"VersionId,omitempty"`
	Code      string `xml:"Code,omitempty"`
	Message   string `xml:"Message,omitempty"`
	// Deleted entries' other fields.
	DeleteMarker          string `xml:"DeleteMarker,omitempty"`
	DeleteMarkerVersionID string `xml:"DeleteMarkerVersionId,omitempty"`
}

// writeDeleteResult answers a DeleteObjects request with the store's
// result (doc, nil when nothing was sent) plus an Error entry for each key
// authorization refused.
func (h *Handler) writeDeleteResult(w *responseWriter, q *request, doc []byte, hdr http.Header) {
	var entries []deleteResultEntry
	if doc != nil {
		var res struct {
			Entries []deleteResultEntry `xml:",any"`
		}
		if err := xml.Unmarshal(doc, &res); err != nil {
			h.fail(w, q, s3err.InternalError.WithMessage("The store's DeleteObjects answer could not be read.").WithCause(err))
			return
		}
		for _, e := range res.Entries {
			if e.XMLName.Local == "Deleted" || e.XMLName.Local == "Error" {
				e.XMLName = xml.Name{Local: e.XMLName.Local}
				entries = append(entries, e)
			}
		}
	}
	for i, o := range q.req.Delete.Objects {
		if why := q.dec.Refused[i]; why != nil {
			entries = append(entries, deleteResultEntry{XMLName: xml.Name{Local: "Error"}, Key: o.Key, VersionID: o.VersionID, Code: why.Code, Message: why.Message})
		}
	}
	out := struct {
		XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ DeleteResult"`
		Entries []deleteResultEntry
	}{Entries: entries}
	b, err := xml.Marshal(out)
	if err != nil {
		h.fail(w, q, s3err.InternalError.WithCause(err))
		return
	}
	b = append([]byte(xml.Header), b...)
	for k, v := range hdr {
		if !dropResponseHeaders[k] && !strings.EqualFold(k, "Content-Length") {
			w.Header()[k] = v
		}
	}
	w.Header().Set("Content-Type", "application/xml")
	writeDocument(w, b)
}
