package s3err

import "net/http"

// Predefined errors. Use them through WithMessage/WithCause so the shared
// values are never modified.
var (
	AccessDenied                      = New("AccessDenied", http.StatusForbidden, "Access Denied.")
	AuthorizationHeaderMalformed      = New("AuthorizationHeaderMalformed", http.StatusBadRequest, "The authorization header is malformed.")
	AuthorizationQueryParametersError = New("AuthorizationQueryParametersError", http.StatusBadRequest, "Error parsing the X-Amz-Credential parameter.")
	BadDigest                         = New("BadDigest", http.StatusBadRequest, "The Content-MD5 or checksum value that you specified did not match what the server received.")
	EntityTooLarge                    = New("EntityTooLarge", http.StatusBadRequest, "Your proposed upload exceeds the maximum allowed object size.")
	IncompleteBody                    = New("IncompleteBody", http.StatusBadRequest, "You did not provide the number of bytes specified by the Content-Length HTTP header")
	InternalError                     = New("InternalError", http.StatusInternalServerError, "We encountered an internal error. Please try again.")
	InvalidAccessKeyID                = New("InvalidAccessKeyId", http.StatusForbidden, "The AWS access key ID you provided does not exist in our records.")
	InvalidArgument                   = New("InvalidArgument", http.StatusBadRequest, "Invalid argument.")
	InvalidBucketName                 = New("InvalidBucketName", http.StatusBadRequest, "The specified bucket is not valid.")
	InvalidDigest                     = New("InvalidDigest", http.StatusBadRequest, "The Content-MD5 or checksum value that you specified is not valid.")
	InvalidRange                      = New("InvalidRange", http.StatusRequestedRangeNotSatisfiable, "The requested range is not satisfiable")
	InvalidRequest                    = New("InvalidRequest", http.StatusBadRequest, "Invalid request.")
	MalformedXML                      = New("MalformedXML", http.StatusBadRequest, "The XML you provided was not well-formed or did not validate against our published schema.")
	MethodNotAllowed                  = New("MethodNotAllowed", http.StatusMethodNotAllowed, "The specified method is not allowed against this resource.")
	MissingContentLength              = New("MissingContentLength", http.StatusLengthRequired, "You must provide the Content-Length HTTP header.")
	MissingSecurityHeader             = New("MissingSecurityHeader", http.StatusBadRequest, "Your request is missing a required header.")
	NotImplemented                    = New("NotImplemented", http.StatusNotImplemented, "A header you provided implies functionality that is not implemented.")
	PreconditionFailed                = New("PreconditionFailed", http.StatusPreconditionFailed, "At least one of the pre-conditions you specified did not hold.")
	RequestTimeout                    = New("RequestTimeout", http.StatusBadRequest, "Your socket connection to the server was not read from or written to within the timeout period.")
	RequestTimeTooSkewed              = New("RequestTimeTooSkewed", http.StatusForbidden, "The difference between the request time and the server's time is too large.")
	ServiceUnavailable                = New("ServiceUnavailable", http.StatusServiceUnavailable, "Please reduce your request rate.")
	SlowDown                          = New("SlowDown", http.StatusServiceUnavailable, "Please reduce your request rate.")
	SignatureDoesNotMatch             = New("SignatureDoesNotMatch", http.StatusForbidden, "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
	XAmzContentSHA256Mismatch         = New("XAmzContentSHA256Mismatch", http.StatusBadRequest, "The provided 'x-amz-content-sha256' header does not match what was computed.")
	// UpstreamAuthFailed is s3seal's own code for the upstream store
	// refusing s3seal's credentials; the upstream's details (which carry
	// its access key and canonical request) are never relayed.
	UpstreamAuthFailed = New("UpstreamAuthenticationFailed", http.StatusBadGateway, "The storage service behind s3seal refused s3seal's credentials; check the upstream credentials and region in s3seal's configuration.")
	// UpstreamUnavailable is sent when the upstream store cannot be reached.
	UpstreamUnavailable = New("ServiceUnavailable", http.StatusServiceUnavailable, "The storage service behind s3seal is unreachable; retry later.")
)
