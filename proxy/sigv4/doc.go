// Package sigv4 authenticates inbound S3 requests signed with AWS Signature
// Version 4 and decodes their bodies, and encodes outbound bodies in the
// unsigned aws-chunked trailer framing.
//
// # Verifying requests
//
// [Verifier.Verify] checks an Authorization header or a presigned query
// string against the secret its LookupFunc returns for the access key, and
// returns a [Result] naming the client and carrying the request body in
// decoded, verifying form. Every x-amz-content-sha256 payload mode is
// supported:
//
//   - a hex SHA-256: the body is hashed as it is read;
//   - UNSIGNED-PAYLOAD: the body is returned as is;
//   - STREAMING-AWS4-HMAC-SHA256-PAYLOAD and its -TRAILER variant: the
//     aws-chunked framing is removed, each chunk is buffered (one at a
//     time, at most MaxChunkSize bytes) and its chained signature checked
//     before any of its bytes are released; the trailer's signature and
//     checksum are checked at the end;
//   - STREAMING-UNSIGNED-PAYLOAD-TRAILER: the framing is removed as the
//     bytes stream through, and the trailer checksum is checked at the end.
//
// Requests signed with Signature Version 2 (an "AWS AKID:signature"
// Authorization header, or AWSAccessKeyId, Expires and Signature query
// parameters) are verified too, unless [Verifier.DisableSigV2] is set: the
// HMAC-SHA1 string to sign of S3's specification (method, Content-MD5,
// Content-Type, Date or Expires, the x-amz-* headers, the path with the
// virtual-hosted bucket and the signed sub-resources), the same clock skew
// as SigV4 for headers, and Expires for URLs. Their bodies are unsigned;
// a Content-MD5 the client sent (which the signature covers) is checked.
//
// In every mode that carries an integrity check the body's final byte is
// withheld until the check has passed (see checksum.Reader), so a body that
// fails verification can never complete an upload forwarded with a fixed
// length.
//
// # Errors
//
// Verify returns [*s3err.Error] values for every client fault, with the
// code and status S3 uses; body reads fail with *s3err.Error values too.
// Two causes can be told apart with errors.Is: [ErrSignatureV2] (a request
// signed with Signature Version 2 while DisableSigV2 is set, answered with
// InvalidRequest)
// and [ErrAnonymous] (a request with no authentication at all, answered with
// AccessDenied unless policy allows anonymous access). Messages never
// contain secrets, signatures, strings to sign or canonical requests.
//
// # Encoding
//
// [NewUnsignedTrailerEncoder] frames a body as STREAMING-UNSIGNED-PAYLOAD-
// TRAILER with a checksum trailer, and [EncodedLength] gives the exact
// framed length for the Content-Length of the upstream request.
package sigv4
