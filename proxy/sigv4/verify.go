package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/s3seal/s3seal/proxy/checksum"
	"github.com/s3seal/s3seal/proxy/s3err"
)

// Payload hash values of x-amz-content-sha256.
const (
	unsignedPayload          = "UNSIGNED-PAYLOAD"
	streamingPayload         = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingPayloadTrailer  = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	emptySHA256              = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// expiresTooLong is S3's message for an X-Amz-Expires over a week.
const expiresTooLong = "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds"

// Defaults for the zero values of Verifier's fields.
const (
	DefaultMaxSkew      = 15 * time.Minute
	DefaultMaxChunkSize = 16 << 20
	// MaxPresignExpiry is the longest X-Amz-Expires S3 accepts (7 days).
	MaxPresignExpiry = 604800 * time.Second
)

// Credentials is an access key id and its secret.
type Credentials struct{ AccessKeyID, SecretAccessKey string }

// LookupFunc returns the secret for an access key id, or ok=false when the
// key is unknown. It is called once per verified request and must be safe
// for concurrent use.
type LookupFunc func(accessKeyID string) (secret string, ok bool)

// StaticLookup returns a LookupFunc over a fixed set of credentials.
func StaticLookup(creds ...Credentials) LookupFunc {
	m := make(map[string]string, len(creds))
	for _, c := range creds {
		m[c.AccessKeyID] = c.SecretAccessKey
	}
	return func(id string) (string, bool) {
		s, ok := m[id]
		return s, ok
	}
}

// Verifier authenticates SigV4-signed S3 requests. The zero value refuses
// every signed request (no key is known); set Lookup. A Verifier is safe for
// concurrent use and must not be copied after first use (it owns a
// signing-key cache).
type Verifier struct {
	// Lookup returns the secret for an access key id. Nil knows no keys.
	Lookup LookupFunc
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// MaxSkew is the largest difference between a header-signed request's
	// time and Now. Zero means 15 minutes, as S3.
	MaxSkew time.Duration
	// MaxChunkSize is the largest signed aws-chunked chunk accepted (each
	// is buffered whole before it is verified). Zero means 16 MiB.
	// Unsigned aws-chunked bodies stream through and have no chunk limit.
	MaxChunkSize int64
	// Region, when set, is the only region accepted in credential scopes
	// (AuthorizationHeaderMalformed otherwise). Empty accepts any region:
	// s3seal serves whatever region its clients sign for.
	Region string
	// SkipSignatures turns authentication off, for sidecar deployments
	// whose clients sign with credentials s3seal does not hold: no secret
	// is looked up, no signature (header, presigned, chunk or trailer) and
	// no request time is checked, and requests without authentication are
	// accepted. Bodies are still decoded and their payload hashes and
	// trailer checksums verified.
	SkipSignatures bool
	// DisableSigV2 refuses requests signed with Signature Version 2
	// (InvalidRequest, as S3 regions that never supported it answer). By
	// default they are verified: HMAC-SHA1 over S3's string to sign, the
	// same clock skew as SigV4 for header authentication, Expires for
	// presigned URLs, and the body checked against Content-MD5 when sent.
	DisableSigV2 bool
	// VirtualHostBucket returns the bucket a virtual-hosted request names
	// in its Host header, or "" for path-style requests. SigV2 signs
	// "/bucket" before the path of virtual-hosted requests. Nil treats
	// every request as path-style.
	VirtualHostBucket func(r *http.Request) string

	keys keyCache
	// debugCanonical, when set (by tests only), receives each canonical
	// request and string to sign.
	debugCanonical func(canonicalRequest, stringToSign string)
}

// PayloadMode is how a request's body is covered by its signature, from its
// x-amz-content-sha256 value.
type PayloadMode int

// The payload modes.
const (
	// UnsignedPayload: UNSIGNED-PAYLOAD, always the case for presigned URLs
	// without X-Amz-Content-Sha256, and for unauthenticated requests.
	UnsignedPayload PayloadMode = iota
	// SignedPayload: the hex SHA-256 of the whole body.
	SignedPayload
	// StreamingSigned: STREAMING-AWS4-HMAC-SHA256-PAYLOAD.
	StreamingSigned
	// StreamingSignedTrailer: STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER.
	StreamingSignedTrailer
	// StreamingUnsignedTrailer: STREAMING-UNSIGNED-PAYLOAD-TRAILER.
	StreamingUnsignedTrailer
)

func (m PayloadMode) String() string {
	switch m {
	case UnsignedPayload:
		return unsignedPayload
	case SignedPayload:
		return "SIGNED-PAYLOAD"
	case StreamingSigned:
		return streamingPayload
	case StreamingSignedTrailer:
		return streamingPayloadTrailer
	case StreamingUnsignedTrailer:
		return streamingUnsignedTrailer
	}
	return "PayloadMode(" + strconv.Itoa(int(m)) + ")"
}

// Streaming reports whether the body is aws-chunked.
func (m PayloadMode) Streaming() bool { return m >= StreamingSigned }

// Result describes a verified request.
type Result struct {
	// AccessKeyID is the client's access key id ("" for an unauthenticated
	// request accepted with SkipSignatures).
	AccessKeyID string
	// Presigned is set for query-string (presigned URL) authentication.
	Presigned bool
	// SigV2 is set for a request signed with Signature Version 2. Its Mode
	// is UnsignedPayload and Region and SignedHeaders are empty; Body is
	// verified against Content-MD5 when the client sent one.
	SigV2 bool
	// Mode is the payload mode.
	Mode PayloadMode
	// Region is the region of the credential scope.
	Region string
	// SignedHeaders are the signed header names, lower case, as signed.
	SignedHeaders []string
	// Body is the verified, decoded request body (aws-chunked framing
	// removed), or http.NoBody. Reading it verifies the payload hash, chunk
	// and trailer signatures and trailer checksums; its errors are
	// *s3err.Error values, and its final byte is withheld until every check
	// has passed. Closing it closes the request body. It may be closed
	// concurrently with a Read.
	Body io.ReadCloser
	// ContentLength is the decoded body length (x-amz-decoded-content-length
	// for aws-chunked bodies, else the request's Content-Length), or -1 when
	// unknown (aws-chunked without a declared decoded length, or a chunked
	// transfer).
	ContentLength int64
	// ContentEncoding is the request's Content-Encoding with aws-chunked
	// removed ("gzip,aws-chunked" → "gzip"), "" when nothing remains. For
	// bodies that are not aws-chunked it is the header as sent.
	ContentEncoding string
	// ChecksumAlgorithm is the checksum the client declared for the body:
	// the x-amz-trailer checksum of an aws-chunked body, or the
	// x-amz-checksum-* header; "" when none.
	ChecksumAlgorithm checksum.Algorithm
	// ChecksumTrailer is set when ChecksumAlgorithm came from a trailer.
	ChecksumTrailer bool
	// ChecksumValue returns the base64 checksum value. A trailer value is
	// available, verified, only once Body has returned io.EOF; a header
	// value is available at once and is not verified by Body (its meaning
	// depends on the operation; see CheckBody).
	ChecksumValue func() (string, bool)
}

// CheckBody adds checks (for example checksum.HeaderChecks of the request)
// to the verification of Body. It must be called before Body is read. For
// an empty body the checks are run at once.
func (res *Result) CheckBody(checks ...checksum.Check) error {
	if len(checks) == 0 {
		return nil
	}
	switch b := res.Body.(type) {
	case *checksum.Reader:
		return b.AddChecks(checks...)
	case nil:
		return verifyEmpty(checks)
	default:
		if b == http.NoBody {
			return verifyEmpty(checks)
		}
		res.Body = checksum.NewVerifier(b, res.ContentLength, checks...)
		return nil
	}
}

func verifyEmpty(checks []checksum.Check) error {
	v := checksum.NewVerifier(http.NoBody, 0, checks...)
	if _, err := v.Read(make([]byte, 1)); err != io.EOF {
		return err
	}
	return nil
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) maxSkew() time.Duration {
	if v.MaxSkew > 0 {
		return v.MaxSkew
	}
	return DefaultMaxSkew
}

func (v *Verifier) maxChunk() int64 {
	if v.MaxChunkSize > 0 {
		return v.MaxChunkSize
	}
	return DefaultMaxChunkSize
}

// Verify authenticates r and returns the verified request. It does not read
// the body: Result.Body verifies as it is read. Client faults are
// *s3err.Error values with S3's codes.
func (v *Verifier) Verify(r *http.Request) (*Result, error) {
	params, ok := parseQuery(r.URL.RawQuery)
	if !ok {
		return nil, s3err.InvalidArgument.WithMessage("The query string contains an invalid percent-encoding.")
	}
	authz := r.Header.Values("Authorization")
	_, nAlg := lookup(params, "X-Amz-Algorithm")
	_, nCred := lookup(params, "X-Amz-Credential")
	_, nSig := lookup(params, "X-Amz-Signature")
	presigned := nAlg+nCred+nSig > 0
	_, nV2 := lookup(params, "AWSAccessKeyId")
	_, nV2Sig := lookup(params, "Signature")
	v2Query := nV2+nV2Sig > 0
	_, nToken := lookup(params, "X-Amz-Security-Token")
	token := nToken > 0 || len(r.Header.Values("X-Amz-Security-Token")) > 0

	switch {
	case len(authz) > 1:
		return nil, malformedHeader("more than one Authorization header.")
	case len(authz) == 1 && (presigned || v2Query), presigned && v2Query:
		return nil, s3err.InvalidArgument.WithMessage("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified.")
	case token && !v.SkipSignatures && (len(authz) == 1 || presigned || v2Query):
		// s3seal's clients have long-term keys only: a session token
		// belongs to credentials s3seal never issued.
		return nil, s3err.New("InvalidToken", http.StatusBadRequest, "The provided token is malformed or otherwise invalid.")
	case len(authz) == 1:
		a := strings.TrimLeft(authz[0], " \t")
		switch {
		case strings.HasPrefix(a, algorithm+" ") || strings.HasPrefix(a, algorithm+"\t"):
			return v.verifyHeader(r, params, a)
		case v.SkipSignatures:
			return v.unauthenticated(r)
		case strings.HasPrefix(a, v2Prefix) && v.DisableSigV2:
			return nil, errSigV2()
		case strings.HasPrefix(a, v2Prefix):
			return v.verifyV2Header(r, params, a)
		default:
			return nil, errUnsupported(a)
		}
	case presigned:
		return v.verifyPresigned(r, params)
	case v.SkipSignatures:
		return v.unauthenticated(r)
	case v2Query && v.DisableSigV2:
		return nil, errSigV2()
	case v2Query:
		return v.verifyV2Presigned(r, params)
	default:
		return nil, errAnonymous()
	}
}

// unauthenticated describes a request accepted without authentication
// (SkipSignatures): the body is decoded as its x-amz-content-sha256 says.
func (v *Verifier) unauthenticated(r *http.Request) (*Result, error) {
	res := &Result{}
	payload := unsignedPayload
	if vs := r.Header.Values("X-Amz-Content-Sha256"); len(vs) > 0 {
		payload = vs[0]
	}
	mode, err := parseMode(payload)
	if err != nil {
		return nil, err
	}
	res.Mode = mode
	if err := v.body(r, res, payload, nil); err != nil {
		return nil, err
	}
	return res, nil
}

// requestTime returns the X-Amz-Date header (or Date) and its time.
func requestTime(r *http.Request) (string, time.Time, error) {
	missing := func() error {
		return s3err.AccessDenied.WithMessage("AWS authentication requires a valid Date or x-amz-date header.")
	}
	if vs := r.Header.Values("X-Amz-Date"); len(vs) > 0 {
		if len(vs) > 1 {
			return "", time.Time{}, missing()
		}
		t, err := time.Parse(iso8601Format, vs[0])
		if err != nil {
			return "", time.Time{}, missing()
		}
		return vs[0], t, nil
	}
	d := r.Header.Get("Date")
	if d == "" {
		return "", time.Time{}, missing()
	}
	t, err := time.Parse(iso8601Format, d)
	if err != nil {
		if t, err = http.ParseTime(d); err != nil {
			return "", time.Time{}, missing()
		}
	}
	t = t.UTC()
	return t.Format(iso8601Format), t, nil
}

func parseMode(payload string) (PayloadMode, error) {
	switch payload {
	case unsignedPayload:
		return UnsignedPayload, nil
	case streamingPayload:
		return StreamingSigned, nil
	case streamingPayloadTrailer:
		return StreamingSignedTrailer, nil
	case streamingUnsignedTrailer:
		return StreamingUnsignedTrailer, nil
	}
	if isHex(payload, 2*sha256.Size) {
		return SignedPayload, nil
	}
	return 0, s3err.InvalidArgument.WithMessage("x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER or a valid sha256 value.").WithField("ArgumentName", "x-amz-content-sha256").WithField("ArgumentValue", clip(payload))
}

// isHex reports whether s is n hex digits.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func (v *Verifier) secret(accessKeyID string) (string, error) {
	if v.Lookup != nil {
		if s, ok := v.Lookup(accessKeyID); ok {
			return s, nil
		}
	}
	return "", s3err.InvalidAccessKeyID
}

func errNotSigned(names []string) *s3err.Error {
	return s3err.AccessDenied.WithMessage("There were headers present in the request which were not signed").WithField("HeadersNotSigned", strings.Join(names, ", "))
}

// verifyHeader authenticates an Authorization-header request.
func (v *Verifier) verifyHeader(r *http.Request, params []queryParam, authz string) (*Result, error) {
	a, err := parseAuthorization(authz)
	if err != nil {
		if v.SkipSignatures {
			return v.unauthenticated(r)
		}
		return nil, err
	}
	cred, msg := parseCredential(a.credential)
	signed, msg2 := parseSignedHeaders(a.signedHeaders)
	if v.SkipSignatures {
		if msg != "" || msg2 != "" {
			return v.unauthenticated(r)
		}
		res, err := v.unauthenticated(r)
		if err == nil {
			res.AccessKeyID, res.Region, res.SignedHeaders = cred.accessKeyID, cred.region, signed
		}
		return res, err
	}
	if msg != "" {
		return nil, malformedHeader("%s", msg)
	}
	if v.Region != "" && cred.region != v.Region {
		return nil, malformedHeader("the region '%s' is wrong; expecting '%s'.", clip(cred.region), v.Region).WithField("Region", v.Region)
	}
	if msg2 != "" {
		return nil, malformedHeader("%s", msg2)
	}
	if !slices.Contains(signed, "host") {
		return nil, errNotSigned([]string{"host"})
	}
	amzDate, t, err := requestTime(r)
	if err != nil {
		return nil, err
	}
	if t.UTC().Format(dateFormat) != cred.date {
		return nil, malformedHeader("Invalid credential date. Date is not the same as X-Amz-Date.")
	}
	now := v.now()
	if d := now.Sub(t); d > v.maxSkew() || d < -v.maxSkew() {
		return nil, s3err.RequestTimeTooSkewed.
			WithField("RequestTime", amzDate).
			WithField("ServerTime", now.UTC().Format(time.RFC3339)).
			WithField("MaxAllowedSkewMilliseconds", strconv.FormatInt(v.maxSkew().Milliseconds(), 10))
	}
	vs := r.Header.Values("X-Amz-Content-Sha256")
	if len(vs) == 0 {
		return nil, s3err.InvalidRequest.WithMessage("Missing required header for this request: x-amz-content-sha256")
	}
	if len(vs) > 1 {
		return nil, s3err.InvalidArgument.WithMessage("x-amz-content-sha256 appears more than once.")
	}
	payload := vs[0]
	mode, err := parseMode(payload)
	if err != nil {
		return nil, err
	}
	secret, err := v.secret(cred.accessKeyID)
	if err != nil {
		return nil, err
	}
	key := v.keys.get(cred.accessKeyID, secret, cred.date, cred.region)
	sig, ok := v.matches(&key, r, params, false, signed, payload, amzDate, cred.scope, a.signature)
	if !ok {
		return nil, errSignature()
	}
	if names := unsignedAmzHeaders(r, signed); len(names) > 0 {
		return nil, errNotSigned(names)
	}
	res := &Result{
		AccessKeyID:   cred.accessKeyID,
		Mode:          mode,
		Region:        cred.region,
		SignedHeaders: signed,
	}
	seed := &chainSeed{key: key, date: amzDate, scope: cred.scope, signature: sig}
	if err := v.body(r, res, payload, seed); err != nil {
		return nil, err
	}
	return res, nil
}

// verifyPresigned authenticates a presigned (query-string) request.
func (v *Verifier) verifyPresigned(r *http.Request, params []queryParam) (*Result, error) {
	// The parameters in the order S3 names them in its error message.
	presignParams := [...]string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Expires"}
	var vals [len(presignParams)]string
	for i, name := range presignParams {
		val, n := lookup(params, name)
		if n == 0 {
			if v.SkipSignatures {
				return v.unauthenticated(r)
			}
			return nil, malformedQuery("Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
		}
		if n > 1 && !v.SkipSignatures {
			return nil, malformedQuery("The %s parameter appears more than once.", name)
		}
		vals[i] = val
	}
	alg, credStr, signature, date, signedStr, expiresStr := vals[0], vals[1], vals[2], vals[3], vals[4], vals[5]
	cred, msg := parseCredential(credStr)
	signed, msg2 := parseSignedHeaders(signedStr)
	if v.SkipSignatures {
		if msg != "" || msg2 != "" {
			return v.unauthenticated(r)
		}
		res := &Result{AccessKeyID: cred.accessKeyID, Presigned: true, Region: cred.region, SignedHeaders: signed}
		payload, err := presignedPayload(r, params, signed)
		if err != nil {
			return nil, err
		}
		res.Mode, _ = parseMode(payload)
		if err := v.body(r, res, payload, nil); err != nil {
			return nil, err
		}
		return res, nil
	}
	switch alg {
	case algorithm:
	case "AWS4-ECDSA-P256-SHA256":
		return nil, malformedQuery("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
	default:
		return nil, malformedQuery("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256 and AWS4-ECDSA-P256-SHA256\"")
	}
	if msg != "" {
		return nil, malformedQuery("Error parsing the X-Amz-Credential parameter; %s", msg)
	}
	if v.Region != "" && cred.region != v.Region {
		return nil, malformedQuery("Error parsing the X-Amz-Credential parameter; the region '%s' is wrong; expecting '%s'.", clip(cred.region), v.Region).WithField("Region", v.Region)
	}
	t, err := time.Parse(iso8601Format, date)
	if err != nil {
		return nil, malformedQuery("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\".")
	}
	if t.Format(dateFormat) != cred.date {
		return nil, malformedQuery("Invalid credential date %q. This date is not the same as X-Amz-Date: %q.", clip(cred.date), t.Format(dateFormat))
	}
	secs, err := strconv.ParseInt(expiresStr, 10, 64)
	switch {
	case err != nil && strings.TrimLeft(expiresStr, "+-0123456789") == "" && expiresStr != "":
		return nil, malformedQuery(expiresTooLong)
	case err != nil:
		return nil, malformedQuery("X-Amz-Expires should be a number")
	case secs < 0:
		return nil, malformedQuery("X-Amz-Expires must be non-negative")
	case secs == 0:
		return nil, malformedQuery("X-Amz-Expires must be at least 1 second.")
	case secs > int64(MaxPresignExpiry/time.Second):
		// Compared in seconds: converted to a Duration first, a huge
		// value would overflow and pass.
		return nil, malformedQuery(expiresTooLong)
	}
	if msg2 != "" {
		return nil, malformedQuery("%s", msg2)
	}
	if !slices.Contains(signed, "host") {
		return nil, errNotSigned([]string{"host"})
	}
	now := v.now()
	if t.After(now.Add(v.maxSkew())) {
		return nil, s3err.AccessDenied.WithMessage("Request is not valid yet.")
	}
	expires := t.Add(time.Duration(secs) * time.Second)
	if now.After(expires) {
		return nil, s3err.AccessDenied.WithMessage("Request has expired.").
			WithField("X-Amz-Expires", expiresStr).
			WithField("Expires", expires.UTC().Format(time.RFC3339)).
			WithField("ServerTime", now.UTC().Format(time.RFC3339))
	}
	payload, err := presignedPayload(r, params, signed)
	if err != nil {
		return nil, err
	}
	mode, err := parseMode(payload)
	if err != nil {
		return nil, err
	}
	secret, err := v.secret(cred.accessKeyID)
	if err != nil {
		return nil, err
	}
	key := v.keys.get(cred.accessKeyID, secret, cred.date, cred.region)
	if _, ok := v.matches(&key, r, params, true, signed, payload, date, cred.scope, signature); !ok {
		return nil, errSignature()
	}
	if names := unsignedAmzHeaders(r, signed); len(names) > 0 {
		return nil, errNotSigned(names)
	}
	res := &Result{
		AccessKeyID:   cred.accessKeyID,
		Presigned:     true,
		Mode:          mode,
		Region:        cred.region,
		SignedHeaders: signed,
	}
	if err := v.body(r, res, payload, nil); err != nil {
		return nil, err
	}
	return res, nil
}

// presignedPayload returns the payload hash of a presigned request: the
// X-Amz-Content-Sha256 query parameter, else a signed x-amz-content-sha256
// header, else UNSIGNED-PAYLOAD. Presigned bodies cannot be aws-chunked.
func presignedPayload(r *http.Request, params []queryParam, signed []string) (string, error) {
	payload := unsignedPayload
	if val, n := lookup(params, "X-Amz-Content-Sha256"); n > 0 {
		payload = val
	} else if slices.Contains(signed, "x-amz-content-sha256") {
		if vs := r.Header.Values("X-Amz-Content-Sha256"); len(vs) > 0 {
			payload = vs[0]
		}
	}
	mode, err := parseMode(payload)
	if err != nil {
		return "", err
	}
	if mode.Streaming() {
		return "", s3err.InvalidRequest.WithMessage("Presigned requests cannot carry an aws-chunked body; use UNSIGNED-PAYLOAD or a SHA-256 payload hash.")
	}
	return payload, nil
}

// matches computes the request signature and compares it with the one the
// client sent, in constant time. When signed header values hold whitespace
// the signers treat differently, both header rules are tried.
func (v *Verifier) matches(key *signingKey, r *http.Request, params []queryParam, presigned bool, signed []string, payload, amzDate, scope, given string) (sig [2 * sha256.Size]byte, ok bool) {
	sig = v.signature(key, r, params, presigned, signed, payload, amzDate, scope, collapseAllSpace)
	if subtle.ConstantTimeCompare(sig[:], []byte(given)) == 1 {
		return sig, true
	}
	if hasOtherSpace(r, signed) {
		sig = v.signature(key, r, params, presigned, signed, payload, amzDate, scope, collapseSpacesOnly)
		if subtle.ConstantTimeCompare(sig[:], []byte(given)) == 1 {
			return sig, true
		}
	}
	return sig, false
}

// signature computes the request signature (lower-case hex).
func (v *Verifier) signature(key *signingKey, r *http.Request, params []queryParam, presigned bool, signed []string, payload, amzDate, scope string, rule int) [2 * sha256.Size]byte {
	var arr [2048]byte
	buf := arr[:0]
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	buf = append(buf, method...)
	buf = append(buf, '\n')
	buf = canonicalURI(buf, r.URL.Path)
	buf = append(buf, '\n')
	buf = canonicalQuery(buf, params, presigned)
	buf = append(buf, '\n')
	buf = canonicalHeaders(buf, r, signed, rule)
	buf = append(buf, '\n')
	for i, name := range signed {
		if i > 0 {
			buf = append(buf, ';')
		}
		buf = append(buf, name...)
	}
	buf = append(buf, '\n')
	buf = append(buf, payload...)
	h := sha256.Sum256(buf)

	sts := make([]byte, 0, len(algorithm)+len(amzDate)+len(scope)+3+2*sha256.Size)
	sts = append(sts, algorithm...)
	sts = append(sts, '\n')
	sts = append(sts, amzDate...)
	sts = append(sts, '\n')
	sts = append(sts, scope...)
	sts = append(sts, '\n')
	sts = hex.AppendEncode(sts, h[:])
	if v.debugCanonical != nil {
		v.debugCanonical(string(buf), string(sts))
	}
	mac := hmac.New(sha256.New, key[:])
	mac.Write(sts)
	var sum [sha256.Size]byte
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], mac.Sum(sum[:0]))
	return out
}

// body sets up res.Body, ContentLength, ContentEncoding and the checksum
// fields for the payload mode. seed is nil when signatures are not checked.
func (v *Verifier) body(r *http.Request, res *Result, payload string, seed *chainSeed) error {
	src := r.Body
	empty := src == nil || src == http.NoBody
	res.ContentEncoding = strings.Join(r.Header.Values("Content-Encoding"), ",")

	trailers, err := parseTrailerHeader(r.Header.Values("X-Amz-Trailer"))
	if err != nil {
		return err
	}
	if len(trailers) > 0 && res.Mode != StreamingSignedTrailer && res.Mode != StreamingUnsignedTrailer {
		return s3err.InvalidRequest.WithMessage("x-amz-trailer is only allowed with x-amz-content-sha256 %s or %s.", streamingPayloadTrailer, streamingUnsignedTrailer)
	}
	fromHeader := checksum.FromHeader
	if r.Method == http.MethodPost && r.URL.Query().Has("uploadId") {
		// CompleteMultipartUpload: the header names the object's
		// checksum, which may be composite ("…-N").
		fromHeader = checksum.FromCompleteHeader
	}
	alg, value, hasHeaderSum, err := fromHeader(r.Header)
	if err != nil {
		return err
	}
	if hasHeaderSum {
		if len(trailers) > 0 {
			return s3err.InvalidRequest.WithMessage("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		res.ChecksumAlgorithm = alg
		res.ChecksumValue = func() (string, bool) { return value, true }
	} else {
		res.ChecksumValue = func() (string, bool) { return "", false }
	}

	switch res.Mode {
	case UnsignedPayload:
		res.ContentLength = r.ContentLength
		if empty {
			res.Body, res.ContentLength = http.NoBody, 0
		} else {
			res.Body = src
		}
		return nil
	case SignedPayload:
		c, err := checksum.ExpectPayloadSHA256(payload)
		if err != nil {
			return err
		}
		if empty || r.ContentLength == 0 {
			if !strings.EqualFold(payload, emptySHA256) {
				return checksum.ContentSHA256Mismatch(payload, emptySHA256)
			}
			res.Body, res.ContentLength = http.NoBody, 0
			return nil
		}
		res.ContentLength = r.ContentLength
		res.Body = checksum.NewVerifier(src, r.ContentLength, c)
		return nil
	}

	// aws-chunked.
	res.ContentEncoding = StripAWSChunked(r.Header.Values("Content-Encoding"))
	res.ContentLength = -1
	if vs := r.Header.Values("X-Amz-Decoded-Content-Length"); len(vs) > 0 {
		n, err := strconv.ParseInt(vs[0], 10, 64)
		if len(vs) > 1 || err != nil || n < 0 {
			// S3 answers an unusable decoded length as a missing one.
			return s3err.MissingContentLength.WithCause(errors.New("sigv4: x-amz-decoded-content-length is not a non-negative integer"))
		}
		res.ContentLength = n
	}
	if src == nil {
		src = http.NoBody
	}
	dec := newChunkedReader(src, chunkedOptions{
		signed:   res.Mode == StreamingSigned || res.Mode == StreamingSignedTrailer,
		trailer:  res.Mode == StreamingSignedTrailer || res.Mode == StreamingUnsignedTrailer,
		seed:     seed,
		maxChunk: v.maxChunk(),
		declared: res.ContentLength,
		trailers: trailers,
		minChunk: minChunkSize,
	})
	var checks []checksum.Check
	for i, name := range trailers {
		a, ok := checksum.AlgorithmForHeader(name)
		if !ok {
			continue
		}
		checks = append(checks, checksum.Check{Algorithm: a, WantFunc: dec.trailerDigest(i, a)})
		res.ChecksumAlgorithm, res.ChecksumTrailer = a, true
	}
	body := checksum.NewVerifier(dec, res.ContentLength, checks...)
	res.Body = body
	if res.ChecksumTrailer {
		i := slices.Index(trailers, res.ChecksumAlgorithm.HeaderName())
		res.ChecksumValue = func() (string, bool) {
			if !body.Verified() {
				return "", false
			}
			return dec.trailerValue(i), true
		}
	}
	return nil
}

// maxTrailers bounds the trailers a request may declare.
const maxTrailers = 4

// parseTrailerHeader returns the lower-case names x-amz-trailer declares.
// Only checksum trailers are supported, at most one of them.
func parseTrailerHeader(vs []string) ([]string, error) {
	var names []string
	sums := 0
	for _, v := range vs {
		for name := range strings.SplitSeq(v, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" {
				continue
			}
			if _, ok := checksum.AlgorithmForHeader(name); !ok {
				return nil, s3err.InvalidArgument.WithMessage("The value specified in the x-amz-trailer header is not supported: %q.", clip(name))
			}
			if slices.Contains(names, name) || len(names) == maxTrailers {
				return nil, s3err.InvalidArgument.WithMessage("The x-amz-trailer header is malformed.")
			}
			if sums++; sums > 1 {
				return nil, s3err.InvalidRequest.WithMessage("Expecting a single x-amz-checksum- trailer. Multiple checksum Types are not allowed.")
			}
			names = append(names, name)
		}
	}
	return names, nil
}

// StripAWSChunked returns Content-Encoding values without aws-chunked, the
// framing S3 removes before it stores an object.
func StripAWSChunked(vs []string) string {
	var out []string
	for _, v := range vs {
		for enc := range strings.SplitSeq(v, ",") {
			enc = strings.TrimSpace(enc)
			if enc == "" || strings.EqualFold(enc, "aws-chunked") {
				continue
			}
			out = append(out, enc)
		}
	}
	return strings.Join(out, ",")
}
