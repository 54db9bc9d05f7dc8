package proxy

import (
	"errors"

	"go.uber.org/zap"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/proxy/s3err"
)

// Write-only gateways. A key provider that holds only public keys (age
// recipients without an identity) wraps new data keys but unwraps none:
// s3seal then writes envelope objects, lists them and answers HEAD with
// their plaintext sizes and metadata, all from what the store holds in the
// clear (the header and the part-set record, unverified here: a reader
// verifies them), and refuses every request that would need an object's
// plaintext (GET, CopyObject and UploadPartCopy of envelope objects) before
// anything is sent. Multipart uploads carry their object key sealed under
// the upload key the replicas share (Runtime.UploadKeys, FORMAT.md section
// 8.4), since no replica can unseal it from the header.

// writeOnly reports whether rt's key provider can only wrap.
func writeOnly(rt *Runtime) bool {
	return rt.Keys != nil && keys.CapabilitiesOf(rt.Keys).WriteOnly
}

// errWriteOnly refuses a request that needs plaintext on a write-only
// gateway.
var errWriteOnly = s3err.AccessDenied.WithMessage("s3seal holds only public keys for this data: read it through a deployment that holds an age identity, or with s3seal decrypt --identity.")

// uploadKeyID returns the "S3SU" upload id of a new upload on a write-only
// gateway: its object key ok sealed under the upload key (FORMAT.md,
// section 8.4).
func (h *Handler) uploadKeyID(rt *Runtime, q *request, ok *envelope.ObjectKey, hdr envelope.Header, storeID string) (string, error) {
	if len(rt.UploadKeys) == 0 {
		return "", errors.New("no upload key is configured")
	}
	sealed, err := ok.SealForUpload(rt.UploadKeys[0], hdr, q.req.Bucket, q.req.Key, storeID, nil)
	if err != nil {
		return "", err
	}
	return uploadIDPrefixUK + encodeUploadIDBody(storeID, hdr, sealed), nil
}

// openUploadKeyID opens the object key an "S3SU" upload id carries. An id
// that does not open under any upload key (forged, altered, spliced onto
// another upload, or sealed by a deployment with another upload key) is
// NoSuchUpload, as S3 answers for an unknown id.
func (h *Handler) openUploadKeyID(rt *Runtime, q *request, ref *uploadRef) (*envelope.ObjectKey, error) {
	ok, err := envelope.OpenForUpload(rt.UploadKeys, ref.hdr, q.req.Bucket, q.req.Key, ref.storeID, ref.sealedOK)
	h.auditKey(q, "unseal-upload", "", ref.hdr, err)
	if err != nil {
		if len(rt.UploadKeys) == 0 {
			h.log.Warn("an upload id sealed under an upload key reached an s3seal without one; set upload_key as on the write-only gateways",
				zap.String("request_id", q.id), zap.String("bucket", q.req.Bucket), zap.String("key", q.req.Key))
		}
		return nil, errUploadID
	}
	return ok, nil
}
