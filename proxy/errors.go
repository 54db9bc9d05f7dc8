package proxy

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/proxy/s3err"
	"github.com/s3seal/s3seal/proxy/upstream"
)

// errClientGone marks a request whose client went away; nothing is written.
var errClientGone = errors.New("proxy: client closed the connection")

// toS3Error maps any error from handling a request to the S3 error the
// client gets. It is the one place that decides statuses.
func toS3Error(err error) *s3err.Error {
	if e, ok := s3err.As(err); ok {
		return e
	}
	var ce *upstream.CredentialsError
	switch {
	case errors.Is(err, upstream.ErrRegionChanged):
		return s3err.ServiceUnavailable.WithMessage("The bucket is in another region than s3seal expected; s3seal has learnt its region. Retry the request.").WithCause(err)
	case errors.As(err, &ce):
		return s3err.UpstreamAuthFailed.WithMessage("s3seal could not obtain its upstream credentials; check its AWS credential configuration.").WithCause(err)
	case errors.Is(err, context.DeadlineExceeded):
		return s3err.New("RequestTimeout", http.StatusGatewayTimeout, "The storage service behind s3seal did not answer in time.").WithCause(err)
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return s3err.UpstreamUnavailable.WithCause(err)
	}
	return s3err.InternalError.WithCause(err)
}

// upstreamAuthCodes are upstream errors about s3seal's own signature or
// credentials. Their bodies carry s3seal's access key, string-to-sign and
// canonical request, so they are replaced, never relayed.
var upstreamAuthCodes = map[string]string{
	"SignatureDoesNotMatch":             "the storage service rejected s3seal's request signature; check s3seal's upstream secret access key",
	"InvalidAccessKeyId":                "the storage service does not know s3seal's upstream access key id",
	"InvalidToken":                      "the storage service rejected s3seal's upstream session token",
	"ExpiredToken":                      "s3seal's upstream session token has expired",
	"TokenRefreshRequired":              "s3seal's upstream session token must be refreshed",
	"InvalidSecurity":                   "the storage service rejected s3seal's upstream credentials",
	"RequestTimeTooSkewed":              "s3seal's clock differs from the storage service's by more than 15 minutes; fix the clock of the host running s3seal",
	"AuthorizationHeaderMalformed":      "the storage service rejected the authorization s3seal sent; check the upstream region",
	"AuthorizationQueryParametersError": "the storage service rejected the authorization s3seal sent",
	"XAmzContentSHA256Mismatch":         "the storage service rejected s3seal's payload hash",
}

// safeErrorFields are the elements of an upstream error body relayed to the
// client besides Code and Message.
var safeErrorFields = map[string]bool{
	"BucketName": true, "Key": true, "VersionId": true, "ActualObjectSize": true,
	"RangeRequested": true, "Region": true, "Condition": true, "ArgumentName": true,
	"ArgumentValue": true, "MaxAllowedSize": true, "ProposedSize": true,
	"MinSizeAllowed": true, "PartNumber": true, "ETag": true, "UploadId": true,
	"Method": true, "ResourceType": true, "AllowedMethod": true, "BucketRegion": true,
	"MaxSizeAllowed": true, "ExpectedDigest": true, "CalculatedDigest": true, "Content-MD5": true,
}

// maxErrorBody bounds how much of an upstream error body s3seal reads.
const maxErrorBody = 64 << 10

// upstreamError turns an upstream error response into the S3 error relayed
// to the client: auth problems become UpstreamAuthenticationFailed, other
// errors keep their code, message and safe fields only, and a body that is
// not an S3 error becomes a generic one with the same status.
func upstreamError(resp *http.Response) *s3err.Error {
	var body []byte
	if resp.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	}
	code, msg, extra := parseErrorBody(body)
	if code == "" {
		code = resp.Header.Get("X-Amz-Error-Code")
	}
	if code == "" {
		// HEAD answers and non-S3 bodies: keep the status.
		return &s3err.Error{Code: statusCode(resp.StatusCode), Status: resp.StatusCode, Message: http.StatusText(resp.StatusCode)}
	}
	if why, ok := upstreamAuthCodes[code]; ok {
		return s3err.UpstreamAuthFailed.WithMessage("Upstream authentication failed (%s): %s.", code, why)
	}
	e := &s3err.Error{Code: code, Status: resp.StatusCode, Message: msg, Extra: extra}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// statusCode names the S3 error code conventionally sent with a status.
func statusCode(status int) string {
	switch status {
	case http.StatusNotFound:
		return "NotFound"
	case http.StatusForbidden:
		return "AccessDenied"
	case http.StatusPreconditionFailed:
		return "PreconditionFailed"
	case http.StatusNotModified:
		return "NotModified"
	case http.StatusBadRequest:
		return "BadRequest"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailable"
	}
	if status >= 500 {
		return "InternalError"
	}
	return "Error" + strconv.Itoa(status)
}

// parseErrorBody extracts Code, Message and the safe extra fields from an S3
// XML error body. It tolerates any XML and returns empty values for bodies
// that are not S3 errors.
func parseErrorBody(body []byte) (code, msg string, extra []s3err.Field) {
	if len(body) == 0 {
		return "", "", nil
	}
	dec := xml.NewDecoder(strings.NewReader(string(body)))
	depth := 0
	var name string
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 && t.Name.Local != "Error" {
				return "", "", nil
			}
			name = t.Name.Local
			text.Reset()
		case xml.CharData:
			if depth == 2 {
				text.Write(t)
			}
		case xml.EndElement:
			if depth == 2 {
				v := strings.TrimSpace(text.String())
				switch {
				case name == "Code":
					code = v
				case name == "Message":
					// Relayed as the store wrote it: S3's messages are
					// compared byte for byte by some clients and tests.
					msg = text.String()
				case safeErrorFields[name]:
					extra = append(extra, s3err.Field{Name: name, Value: v})
				}
			}
			depth--
		}
	}
	return code, msg, extra
}

// errorResource is the Resource element of s3seal's own errors: the path
// the client asked for.
func errorResource(r *http.Request) string {
	return r.URL.Path
}

// describe summarises an error for a log line, never including secrets
// (errors built in this module never carry them).
func describe(err error) string {
	if err == nil {
		return ""
	}
	return fmt.Sprint(err)
}
