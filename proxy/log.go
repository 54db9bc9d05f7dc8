package proxy

import (
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// logRequest writes the one log line each request gets. It never logs
// headers, so Authorization, security tokens and SSE-C keys cannot leak
// through it.
func (h *Handler) logRequest(q *request, w *responseWriter) {
	status := w.status
	if status == 0 {
		status = 200
		if q.err != nil {
			status = 0 // aborted before any response
		}
	}
	h.metrics.observe(q, status, w.bytes, h.now().Sub(q.start))
	lvl := zapcore.InfoLevel
	if status >= 500 || (q.err != nil && status == 0) {
		lvl = zapcore.WarnLevel
	}
	ce := h.log.Check(lvl, "request")
	if ce == nil {
		return
	}
	client := ""
	if q.identity != nil {
		client = q.identity.Name
	}
	fields := []zap.Field{
		zap.String("request_id", q.id),
		zap.String("op", string(q.req.Op)),
		zap.String("method", q.r.Method),
		zap.String("bucket", q.req.Bucket),
		zap.String("key", q.req.Key),
		zap.Int("status", status),
		zap.Int64("bytes_in", q.bytesIn),
		zap.Int64("bytes_out", w.bytes),
		zap.Duration("duration", h.now().Sub(q.start)),
		zap.String("client", client),
		zap.String("policy", q.policy),
		zap.String("remote", q.r.RemoteAddr),
	}
	if up := w.Header().Get("X-Amz-Request-Id"); up != "" && up != q.id {
		fields = append(fields, zap.String("upstream_request_id", up))
	}
	if q.err != nil {
		fields = append(fields, zap.String("error", describe(q.err)))
	}
	ce.Write(fields...)
}
