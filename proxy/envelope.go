package proxy

import (
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/stream"
	"github.com/s3seal/s3seal/proxy/checksum"
	"github.com/s3seal/s3seal/proxy/policy"
	"github.com/s3seal/s3seal/proxy/s3err"
)

// Envelope mode: s3seal encrypts object bodies itself (FORMAT.md) and the
// store holds only ciphertext plus the x-amz-meta-s3seal field. Clients see
// plaintext sizes, ranges, checksums and stable ETags (etag.go).

// metaHeader is the request/response header carrying s3seal's metadata.
const metaHeader = "X-Amz-Meta-" + envelope.MetadataKey

// maxSinglePut is S3's largest single PUT.
const maxSinglePut = 5 << 30

// keyError maps a key provider failure to the S3 error the client gets.
func keyError(err error) *s3err.Error {
	var unavail *keys.UnavailableError
	var unknown *keys.UnknownKeyError
	var denied *keys.AccessDeniedError
	var disabled *keys.KeyDisabledError
	var unwrap *keys.UnwrapError
	var mismatch *envelope.ProviderMismatchError
	var writeOnly *keys.WriteOnlyError
	switch {
	case errors.As(err, &writeOnly):
		return errWriteOnly.WithCause(err)
	case errors.As(err, &unavail):
		return s3err.ServiceUnavailable.WithMessage("s3seal's key provider is unavailable; retry later.").WithCause(err)
	case errors.As(err, &unknown), errors.As(err, &mismatch):
		return s3err.AccessDenied.WithMessage("The object is encrypted under a key s3seal is not configured to use.").WithCause(err)
	case errors.As(err, &denied):
		return s3err.InternalError.WithMessage("s3seal's key provider denied access to the key; check its permissions.").WithCause(err)
	case errors.As(err, &disabled):
		return s3err.InternalError.WithMessage("The key protecting this object is disabled or scheduled for deletion in the key provider.").WithCause(err)
	case errors.As(err, &unwrap), errors.Is(err, envelope.ErrAuthentication):
		return errObjectAuth.WithCause(err)
	}
	return s3err.InternalError.WithCause(err)
}

// errObjectAuth is sent when a stored object fails authentication before
// any of it was sent: it was changed in the store, moved from another name,
// or sealed under other keys.
var errObjectAuth = s3err.New("InternalError", http.StatusInternalServerError,
	"s3seal: the stored object failed authentication (it was modified in the store, moved from another name, or is sealed under a key s3seal does not hold); no data was returned.")

// errNotSealed is sent for an object without s3seal metadata under an
// envelope rule that does not allow plaintext reads.
func errNotSealed(rule string) *s3err.Error {
	return s3err.AccessDenied.WithMessage("The object is not encrypted by s3seal, and envelope policy %q does not allow reading plaintext objects (allow_plaintext_reads enables it for migrations).", rule)
}

// errPlaintextTooNew is sent for an object without s3seal metadata that
// was written after the rule's plaintext_before: someone wrote plaintext
// into the store behind s3seal's back.
func errPlaintextTooNew(rule *policy.Rule) *s3err.Error {
	return s3err.AccessDenied.WithMessage("The object is not encrypted by s3seal and was written after %s, the plaintext_before of envelope policy %q: plaintext written into the store since then is not served.", rule.PlaintextBefore.UTC().Format(time.RFC3339), rule.Name)
}

// lastModified parses a response's Last-Modified (zero when absent).
func lastModified(h http.Header) time.Time {
	t, _ := http.ParseTime(h.Get("Last-Modified"))
	return t
}

// userMetadata returns the client's x-amz-meta-* headers by lower-case name
// without the prefix, and refuses names s3seal reserves.
func userMetadata(h http.Header) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range h {
		name, ok := cutFoldPrefix(k, "X-Amz-Meta-")
		if !ok {
			continue
		}
		name = strings.ToLower(name)
		if envelope.IsReservedMetadata(name) {
			return nil, s3err.InvalidArgument.WithMessage("The metadata name x-amz-meta-%s is reserved by s3seal.", name)
		}
		out[name] = strings.Join(v, ",")
	}
	return out, nil
}

func cutFoldPrefix(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return "", false
}

// plaintextChecksumHeaders are request headers describing the plaintext;
// they are verified by s3seal and never sent with the ciphertext.
func dropPlaintextChecksums(h http.Header) {
	for k := range h {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-amz-checksum-") || lk == "content-md5" || lk == "x-amz-sdk-checksum-algorithm" {
			delete(h, k)
		}
	}
}

// streamChecksum converts a verified S3 checksum (algorithm and base64
// value) to the format's representation.
func streamChecksum(alg checksum.Algorithm, b64 string) (stream.Checksum, error) {
	if alg == "" || alg == checksum.ContentMD5 {
		return stream.Checksum{}, nil
	}
	a, err := stream.ParseChecksumAlgorithm(string(alg))
	if err != nil {
		return stream.Checksum{}, err
	}
	v, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return stream.Checksum{}, err
	}
	return stream.Checksum{Algorithm: a, Value: v}, nil
}

// checksumHeader returns the response header for a stored checksum.
func checksumHeader(c stream.Checksum) (name, value string, ok bool) {
	if c.Algorithm == stream.ChecksumNone {
		return "", "", false
	}
	alg, err := checksum.ParseAlgorithm(c.Algorithm.String())
	if err != nil {
		return "", "", false
	}
	return alg.HeaderName(), base64.StdEncoding.EncodeToString(c.Value), true
}

// envelopeResponseHeaders are store response headers never relayed for
// envelope objects: s3seal's metadata, checksums over the ciphertext, and
// lengths that the plaintext replaces.
func copyEnvelopeHeaders(dst, src http.Header) {
	for k, v := range src {
		lk := strings.ToLower(k)
		switch {
		case dropResponseHeaders[k], lk == "content-length", lk == "content-range", lk == "content-md5",
			strings.HasPrefix(lk, "x-amz-checksum-"), lk == "x-amz-meta-"+envelope.MetadataKey:
			continue
		case lk == "etag":
			dst[k] = []string{clientETag(v[0])}
		default:
			dst[k] = v
		}
	}
	cleanContentEncoding(dst)
}

// logAuthFailure records an object that failed authentication.
func (h *Handler) logAuthFailure(q *request, err error) {
	h.log.Error("stored object failed authentication; nothing of the bad chunk was released",
		zap.String("request_id", q.id), zap.String("bucket", q.req.Bucket), zap.String("key", q.req.Key),
		zap.String("reason", fmt.Sprint(err)))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// clientChecksums verifies the checksums a client sent in headers over the
// plaintext body (the final byte is held back until they pass) and returns
// the checksum known up front (a header) and the function the encrypter
// calls at the end of the body for the checksum to keep in the segment
// trailer (an aws-chunked trailer's, else the header's).
func clientChecksums(q *request) (stream.Checksum, func(int64) (stream.Checksum, error), error) {
	auth := q.auth
	checks, err := checksum.HeaderChecks(q.r.Header)
	if err != nil {
		return stream.Checksum{}, nil, err
	}
	if err := auth.CheckBody(checks...); err != nil {
		return stream.Checksum{}, nil, err
	}
	if a := auth.ChecksumAlgorithm; a != "" && a != checksum.ContentMD5 {
		if _, err := stream.ParseChecksumAlgorithm(string(a)); err != nil {
			return stream.Checksum{}, nil, errEnvelopeChecksum(a)
		}
	}
	var upfront stream.Checksum
	if alg, v, ok, _ := checksum.FromHeader(q.r.Header); ok {
		if upfront, err = streamChecksum(alg, v); err != nil {
			return stream.Checksum{}, nil, errEnvelopeChecksum(alg)
		}
	}
	late := func(int64) (stream.Checksum, error) {
		if auth.ChecksumTrailer && auth.ChecksumAlgorithm != "" {
			v, ok := auth.ChecksumValue()
			if !ok {
				return stream.Checksum{}, s3err.IncompleteBody
			}
			return streamChecksum(auth.ChecksumAlgorithm, v)
		}
		return upfront, nil
	}
	return upfront, late, nil
}

// echoClientChecksum puts the checksum the client sent (verified on the
// way in) into a response.
func echoClientChecksum(h http.Header, q *request, upfront stream.Checksum) {
	auth := q.auth
	if auth.ChecksumAlgorithm != "" {
		if v, ok := auth.ChecksumValue(); ok {
			h.Set(auth.ChecksumAlgorithm.HeaderName(), v)
		}
		return
	}
	if name, v, ok := checksumHeader(upfront); ok {
		h.Set(name, v)
	}
}

// writeResult sends a small XML result document (CopyObjectResult,
// CopyPartResult, ...) with the given ETag (already the client's) and
// last-modified time.
func (h *Handler) writeResult(w *responseWriter, name, etag, lastModified string) {
	if lastModified == "" {
		lastModified = h.now().UTC().Format("2006-01-02T15:04:05.000Z")
	}
	out := copyResult{XMLName: xml.Name{Space: "http://s3.amazonaws.com/doc/2006-03-01/", Local: name}, ETag: etag, LastModified: lastModified}
	b, _ := xml.Marshal(out)
	b = append([]byte(xml.Header), b...)
	w.Header().Set("Content-Type", "application/xml")
	writeDocument(w, b)
}

// writeDocument answers 200 with doc as the whole body, after whatever
// headers the caller set.
func writeDocument(w *responseWriter, doc []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(doc)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(doc)
}

// errEnvelopeChecksum refuses a checksum algorithm the envelope format has
// no identifier for (FORMAT.md 6.1): s3seal verifies and keeps the
// client's checksum over the plaintext, and can keep only these.
func errEnvelopeChecksum(a checksum.Algorithm) error {
	return s3err.InvalidRequest.WithMessage("Objects s3seal encrypts (envelope mode) keep CRC32, CRC32C, CRC64NVME, SHA1 or SHA256 checksums; %s cannot be kept. Send one of those, or none.", a.HeaderName())
}
