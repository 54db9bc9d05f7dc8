package proxy

import (
	"go.uber.org/zap"

	"github.com/s3seal/s3seal/crypto/envelope"
)

// auditKey writes one audit record for a use of a key: who (client), what
// (bucket, key, operation), which key (provider and key id, never key
// material) and the outcome.
func (h *Handler) auditKey(q *request, use string, provider string, hdr envelope.Header, err error) {
	keyID := ""
	if hdr != nil {
		keyID = hdr.KeyID()
		provider = hdr.Provider().String()
	}
	h.auditKeyID(q, use, provider, keyID, err)
}

// auditKeyID is auditKey for keys that no s3seal header names (objects
// of the Amazon S3 Encryption Client).
func (h *Handler) auditKeyID(q *request, use, provider, keyID string, err error) {
	client := ""
	if q.identity != nil {
		client = q.identity.Name
	}
	outcome := "ok"
	if err != nil {
		outcome = "failed"
		if e := keyError(err); e.Code == "AccessDenied" {
			outcome = "denied"
		} else if e.Code == "ServiceUnavailable" {
			outcome = "unavailable"
		}
	}
	h.audit.Info("key use",
		zap.String("request_id", q.id),
		zap.String("client", client),
		zap.String("op", string(q.req.Op)),
		zap.String("bucket", q.req.Bucket),
		zap.String("key", q.req.Key),
		zap.String("use", use),
		zap.String("provider", provider),
		zap.String("key_id", keyID),
		zap.String("outcome", outcome))
}
