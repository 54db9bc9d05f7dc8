package sigv4

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/s3seal/s3seal/proxy/s3err"
)

var (
	// ErrSignatureV2 is the cause recorded in the InvalidRequest error for a
	// request signed with Signature Version 2 (Authorization: AWS ... or
	// AWSAccessKeyId/Signature query parameters) when Verifier.DisableSigV2
	// is set.
	ErrSignatureV2 = errors.New("sigv4: signature version 2 is not supported")
	// ErrAnonymous is the cause recorded in the AccessDenied error for a
	// request that carries no authentication at all.
	ErrAnonymous = errors.New("sigv4: request is not authenticated")
	// errUnsupportedAlgorithm is the cause for any other signing scheme.
	errUnsupportedAlgorithm = errors.New("sigv4: unsupported signing algorithm")
)

const unsupportedMessage = "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."

func errSigV2() *s3err.Error {
	return s3err.InvalidRequest.WithMessage(unsupportedMessage).WithCause(ErrSignatureV2)
}

func errAnonymous() *s3err.Error {
	return s3err.AccessDenied.WithMessage("Access Denied: the request is not signed.").WithCause(ErrAnonymous)
}

// errUnsupported answers an Authorization header of no known scheme as S3
// does: InvalidArgument naming the scheme, or the whole value when it has
// no space at all.
func errUnsupported(header string) *s3err.Error {
	header = strings.TrimLeft(header, " \t")
	scheme, _, ok := strings.Cut(header, " ")
	if !ok {
		return s3err.InvalidArgument.WithMessage("Authorization header is invalid -- one and only one ' ' (space) required.").
			WithField("ArgumentName", "Authorization").WithField("ArgumentValue", clip(header)).WithCause(errUnsupportedAlgorithm)
	}
	return s3err.InvalidArgument.WithMessage("Unsupported Authorization Type").
		WithField("ArgumentName", "Authorization").WithField("ArgumentValue", clip(scheme)).WithCause(errUnsupportedAlgorithm)
}

func malformedHeader(format string, args ...any) *s3err.Error {
	return s3err.AuthorizationHeaderMalformed.WithMessage("The authorization header is malformed; "+format, args...)
}

func malformedQuery(format string, args ...any) *s3err.Error {
	return s3err.AuthorizationQueryParametersError.WithMessage(format, args...)
}

func errSignature() *s3err.Error {
	return s3err.SignatureDoesNotMatch.WithMessage("The request signature we calculated does not match the signature you provided. Check your key and signing method.")
}

func errChunkSignature() *s3err.Error {
	return s3err.SignatureDoesNotMatch.WithMessage("The chunk signature we calculated does not match the chunk signature you provided.")
}

func errTrailerSignature() *s3err.Error {
	return s3err.SignatureDoesNotMatch.WithMessage("The trailer signature we calculated does not match the trailer signature you provided.")
}

// errFraming reports malformed aws-chunked framing as S3 does: the body
// was not what its headers promised (IncompleteBody, S3's message). What
// was wrong is the error's cause, for the log.
func errFraming(format string, args ...any) *s3err.Error {
	return errTerminated.WithCause(fmt.Errorf("malformed aws-chunked body: "+format, args...))
}

// errTruncated reports an aws-chunked body that ended early.
func errTruncated() *s3err.Error {
	return errTerminated.WithCause(errors.New("the aws-chunked body ended early"))
}

// errTerminated is S3's IncompleteBody for a body whose framing broke off.
var errTerminated = s3err.IncompleteBody.WithMessage("The request body terminated unexpectedly")

// errLength is S3's IncompleteBody for a body of another length than its
// headers declare.
func errLength(cause error) *s3err.Error {
	return s3err.IncompleteBody.WithCause(cause)
}

// minChunkSize is the smallest data chunk S3 accepts in aws-chunked
// framing, except for the last one.
const minChunkSize = 8192

// errChunkSize reports a data chunk below minChunkSize that was not the
// last.
func errChunkSize() *s3err.Error {
	return s3err.New("InvalidChunkSizeError", http.StatusBadRequest, "Only the last chunk is allowed to have a size less than 8192 bytes")
}

// malformedTrailer is S3's answer to trailers that do not match the
// x-amz-trailer header: undeclared, missing, unnamed or repeated.
var malformedTrailer = s3err.New("MalformedTrailerError", http.StatusBadRequest,
	"The request contained trailing data that was not well-formed or did not conform to our published schema.")

func errMalformedTrailer(format string, args ...any) *s3err.Error {
	return malformedTrailer.WithCause(fmt.Errorf(format, args...))
}

// clip shortens client input quoted in error messages.
func clip(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
