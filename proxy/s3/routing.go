package s3

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/s3seal/s3seal/proxy/s3err"
)

// RoutingError returns the error S3 answers for a request whose shape
// names no operation, or names one with a parameter that operation does
// not take, before it looks at the request's signature: such a request
// reaches no store and reveals nothing, so it is answered as S3 answers it
// (400 or 405) rather than with an authentication error. It returns nil
// for requests it has nothing to say about (they are refused, or served,
// after authentication).
func RoutingError(r *http.Request, req *Request) *s3err.Error {
	if n := headerSectionSize(r.Header); n > MaxHeaderSection {
		return s3err.New("RequestHeaderSectionTooLarge", http.StatusBadRequest, "Your request header section exceeds the maximum allowed size.").
			WithField("MaxSizeAllowed", strconv.Itoa(MaxHeaderSection))
	}
	q := r.URL.Query()
	if src := r.Header.Get("X-Amz-Copy-Source"); src != "" && copySourceRefused(r.Method, q) {
		return s3err.InvalidArgument.WithMessage("You can only specify a copy source header for copy requests.").
			WithField("ArgumentName", "x-amz-copy-source").WithField("ArgumentValue", src)
	}
	level := req.Info.Level
	switch {
	case req.Op == OpPutObject && has(q, "partNumber"):
		return s3err.InvalidArgument.WithMessage("This operation does not accept partNumber without uploadId").
			WithField("ArgumentName", "partNumber").WithField("ArgumentValue", "partNumber")
	case req.Op != OpUnknown:
		return nil
	case r.Method == http.MethodPost && (level == LevelService || level == LevelObject && len(q) == 0):
		return methodNotAllowed(r.Method, "SERVICE")
	case level == LevelObject && r.Method == http.MethodPut && has(q, "uploadId") && !has(q, "partNumber"):
		return methodNotAllowed(r.Method, "UPLOAD")
	case level == LevelObject && r.Method == http.MethodGet && has(q, "uploads"):
		return s3err.InvalidRequest.WithMessage("Key is not expected for the GET method ?uploads subresource")
	case level == LevelObject && r.Method == http.MethodGet && has(q, "versions"):
		return s3err.InvalidRequest.WithMessage("There is no such thing as the ?versions sub-resource for a key")
	}
	return nil
}

// copySourceRefused reports a method S3 takes no x-amz-copy-source with:
// only PUT copies; POST is refused when it names an upload.
func copySourceRefused(method string, q url.Values) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodDelete:
		return true
	case http.MethodPost:
		return has(q, "uploadId")
	}
	return false
}

func methodNotAllowed(method, resource string) *s3err.Error {
	return s3err.MethodNotAllowed.WithField("Method", method).WithField("ResourceType", resource)
}

// MaxHeaderSection is S3's limit on a request's header section (8 KB).
const MaxHeaderSection = 8 << 10

// headerSectionSize counts a request's header lines as sent, "Name: value"
// and CRLF.
func headerSectionSize(h http.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}
