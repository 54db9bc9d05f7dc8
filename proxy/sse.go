package proxy

import "github.com/s3seal/s3seal/proxy/s3err"

// serveSSE handles requests under the server-side encryption modes.
func (h *Handler) serveSSE(w *responseWriter, rt *Runtime, q *request) {
	h.fail(w, q, s3err.NotImplemented.WithMessage("s3seal policy mode %s is not available in this build.", q.rule.Mode))
}
