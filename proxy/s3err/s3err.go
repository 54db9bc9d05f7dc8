// Package s3err defines the S3 error responses s3seal produces itself and
// writes them in S3's XML error format.
//
// An [*Error] carries an S3 error code, the HTTP status S3 uses for it and a
// message meant for the client. Messages must never contain secrets: no
// signatures, keys, string-to-sign or canonical requests.
package s3err

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// Error is an S3 API error. The zero value is not useful; build errors with
// [New] or from the predefined codes with [Code.With].
type Error struct {
	// Code is the S3 error code, e.g. "SignatureDoesNotMatch".
	Code string
	// Status is the HTTP status code sent with the error.
	Status int
	// Message is the human-readable explanation sent to the client.
	Message string
	// Extra holds additional elements for the XML body (for example
	// ActualObjectSize for InvalidRange). Values are sent as is.
	Extra []Field
	// Header holds additional response headers (for example
	// x-amz-bucket-region on a redirect).
	Header http.Header
	// Err is an optional underlying cause. It is logged by the server but
	// never sent to the client.
	Err error
}

// Field is one extra element of an XML error body.
type Field struct {
	Name, Value string
}

// New returns an error with the given code, status and message.
func New(code string, status int, message string) *Error {
	return &Error{Code: code, Status: status, Message: message}
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// WithMessage returns a copy of e with another message.
func (e *Error) WithMessage(format string, args ...any) *Error {
	c := *e
	c.Message = fmt.Sprintf(format, args...)
	return &c
}

// WithCause returns a copy of e that records err as its (private) cause.
func (e *Error) WithCause(err error) *Error {
	c := *e
	c.Err = err
	return &c
}

// WithField returns a copy of e with one more XML element.
func (e *Error) WithField(name, value string) *Error {
	c := *e
	c.Extra = append(append([]Field(nil), e.Extra...), Field{name, value})
	return &c
}

// As reports whether err is or wraps an *Error and returns it.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// Response is the XML body of an S3 error.
type Response struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Extra     []xmlField
	Resource  string `xml:"Resource,omitempty"`
	RequestID string `xml:"RequestId,omitempty"`
	HostID    string `xml:"HostId,omitempty"`
}

type xmlField struct {
	XMLName xml.Name
	Value   string `xml:",chardata"`
}

// Write sends e as an S3 XML error response. resource is the request path and
// requestID the request's id; both may be empty. A HEAD request gets the
// status and headers only, as on S3.
func Write(w http.ResponseWriter, r *http.Request, e *Error, resource, requestID string) {
	h := w.Header()
	for k, v := range e.Header {
		h[k] = v
	}
	if requestID != "" {
		h.Set("X-Amz-Request-Id", requestID)
	}
	if r != nil && r.Method == http.MethodHead {
		h.Del("Content-Type")
		h.Del("Content-Length")
		w.WriteHeader(e.Status)
		return
	}
	body := Marshal(e, resource, requestID)
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

// Marshal returns the XML body for e.
func Marshal(e *Error, resource, requestID string) []byte {
	resp := Response{Code: e.Code, Message: e.Message, Resource: resource, RequestID: requestID}
	for _, f := range e.Extra {
		resp.Extra = append(resp.Extra, xmlField{XMLName: xml.Name{Local: f.Name}, Value: f.Value})
	}
	b, err := xml.Marshal(resp)
	if err != nil {
		// Only reachable with an invalid element name in Extra, which is
		// a programming error.
		panic("s3err: internal error: " + err.Error())
	}
	return append([]byte(xml.Header), b...)
}
