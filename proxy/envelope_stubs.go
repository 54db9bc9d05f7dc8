package proxy

import "github.com/s3seal/s3seal/proxy/s3err"

func (h *Handler) envCopy(w *responseWriter, rt *Runtime, q *request) {
	h.fail(w, q, s3err.NotImplemented)
}

func (h *Handler) envMultipart(w *responseWriter, rt *Runtime, q *request) {
	h.fail(w, q, s3err.NotImplemented)
}
