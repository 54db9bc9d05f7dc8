package proxy

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/proxy/s3err"
)

// Metrics are s3seal's Prometheus metrics, all named s3seal_*. They live
// in their own registry (no package-level state); Handler exposes it on the
// admin listener.
type Metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	bytesIn      prometheus.Counter
	bytesOut     prometheus.Counter
	upstreamErrs *prometheus.CounterVec
	authFailures *prometheus.CounterVec
	keyCalls     *prometheus.CounterVec
	keyLatency   *prometheus.HistogramVec
}

// NewMetrics registers s3seal's metrics in a new registry, with the Go
// runtime and process collectors.
func NewMetrics(version string) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "s3seal_requests_total", Help: "S3 requests handled, by operation, HTTP status and policy mode.",
		}, []string{"op", "status", "mode"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "s3seal_request_duration_seconds", Help: "Time to handle S3 requests, by operation and policy mode.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"op", "mode"}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "s3seal_request_bytes_total", Help: "Request body bytes received from clients (decoded).",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "s3seal_response_bytes_total", Help: "Response body bytes sent to clients.",
		}),
		upstreamErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "s3seal_upstream_errors_total", Help: "Requests the upstream store failed: unreachable, 5xx, or refusing s3seal's credentials.",
		}, []string{"kind"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "s3seal_auth_failures_total", Help: "Client requests refused before forwarding, by S3 error code.",
		}, []string{"reason"}),
		keyCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "s3seal_key_provider_calls_total", Help: "Calls to the key provider (behind the data-key cache), by provider, call and outcome.",
		}, []string{"provider", "call", "outcome"}),
		keyLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "s3seal_key_provider_call_duration_seconds", Help: "Key provider call latency.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"provider", "call"}),
	}
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "s3seal_build_info", Help: "s3seal's version."}, []string{"version"})
	info.WithLabelValues(version).Set(1)
	reg.MustRegister(m.requests, m.duration, m.bytesIn, m.bytesOut, m.upstreamErrs, m.authFailures, m.keyCalls, m.keyLatency, info,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{Namespace: "s3seal"}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Register adds collectors (for example the certificate expiry) to the
// registry.
func (m *Metrics) Register(cs ...prometheus.Collector) {
	for _, c := range cs {
		m.reg.MustRegister(c)
	}
}

// authCodes are the error codes counted as authentication failures.
var authCodes = map[string]bool{
	"SignatureDoesNotMatch": true, "InvalidAccessKeyId": true, "RequestTimeTooSkewed": true,
	"AuthorizationHeaderMalformed": true, "AuthorizationQueryParametersError": true, "XAmzContentSHA256Mismatch": true,
	"AccessDenied": true, "InvalidRequest": true, "MissingSecurityHeader": true, "IncompleteBody": true, "BadDigest": true,
}

// observe records a finished request.
func (m *Metrics) observe(q *request, status int, bytesOut int64, d time.Duration) {
	if m == nil {
		return
	}
	mode := "none"
	if q.rule != nil {
		mode = string(q.rule.Mode)
	}
	op := string(q.req.Op)
	if op == "" {
		op = "Unknown"
	}
	m.requests.WithLabelValues(op, strconv.Itoa(status), mode).Inc()
	m.duration.WithLabelValues(op, mode).Observe(d.Seconds())
	m.bytesIn.Add(float64(q.bytesIn))
	m.bytesOut.Add(float64(bytesOut))
	if q.err == nil {
		return
	}
	// Classified as the client's answer was: raw upstream errors (a
	// refused dial) become S3 errors only there.
	if e := toS3Error(q.err); e != nil {
		switch {
		case e.Code == s3err.UpstreamAuthFailed.Code:
			m.upstreamErrs.WithLabelValues("credentials").Inc()
		case e.Code == s3err.UpstreamUnavailable.Code && e.Status == http.StatusServiceUnavailable && e.Err != nil:
			m.upstreamErrs.WithLabelValues("unreachable").Inc()
		case q.identity == nil && authCodes[e.Code]:
			m.authFailures.WithLabelValues(e.Code).Inc()
		case e.Status >= 500 && q.upstreamStatus >= 500:
			m.upstreamErrs.WithLabelValues("status_5xx").Inc()
		}
	}
}

// CacheCollector exports the statistics of the data-key cache current()
// returns (the current runtime's, which a reload replaces; nil for none).
func CacheCollector(current func() *keys.Cache) prometheus.Collector {
	return &cacheCollector{current: current,
		hits:      prometheus.NewDesc("s3seal_datakey_cache_hits_total", "Data keys served from the cache (unwrapped keys and reused write keys).", nil, nil),
		misses:    prometheus.NewDesc("s3seal_datakey_cache_misses_total", "Data-key lookups that needed the key provider.", nil, nil),
		evictions: prometheus.NewDesc("s3seal_datakey_cache_evictions_total", "Unwrapped data keys dropped from the cache (and zeroed).", nil, nil),
		reused:    prometheus.NewDesc("s3seal_datakey_reused_total", "New objects written under a reused data key.", nil, nil),
	}
}

type cacheCollector struct {
	current                         func() *keys.Cache
	hits, misses, evictions, reused *prometheus.Desc
}

func (cc *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- cc.hits
	ch <- cc.misses
	ch <- cc.evictions
	ch <- cc.reused
}

func (cc *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	c := cc.current()
	if c == nil {
		return
	}
	s := c.Stats()
	ch <- prometheus.MustNewConstMetric(cc.hits, prometheus.CounterValue, float64(s.Hits))
	ch <- prometheus.MustNewConstMetric(cc.misses, prometheus.CounterValue, float64(s.Misses))
	ch <- prometheus.MustNewConstMetric(cc.evictions, prometheus.CounterValue, float64(s.Evictions))
	ch <- prometheus.MustNewConstMetric(cc.reused, prometheus.CounterValue, float64(s.Reused))
}

// InstrumentProvider wraps a key provider so that each call it makes is
// counted and timed. Wrap the provider itself, beneath the cache, to count
// real provider calls.
func (m *Metrics) InstrumentProvider(p keys.Provider) keys.Provider {
	if m == nil {
		return p
	}
	return &instrumented{p: p, m: m}
}

type instrumented struct {
	p keys.Provider
	m *Metrics
}

var _ keys.Provider = (*instrumented)(nil)

func (i *instrumented) Name() string { return i.p.Name() }

// EncryptionContext passes the wrapped provider's context on, so the cache
// keys stay what they would be without instrumentation.
func (i *instrumented) EncryptionContext() map[string]string {
	if cp, ok := i.p.(keys.ContextProvider); ok {
		return cp.EncryptionContext()
	}
	return nil
}

// Capabilities passes the wrapped provider's on (write-only, large wrapped
// keys), so the cache and the format layer see what they would without
// instrumentation.
func (i *instrumented) Capabilities() keys.Capabilities { return keys.CapabilitiesOf(i.p) }

func (i *instrumented) record(call string, start time.Time, err error) {
	i.m.recordKeyCall(i.p.Name(), call, start, err)
}

// recordKeyCall counts and times one call of the key provider provider.
func (m *Metrics) recordKeyCall(provider, call string, start time.Time, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
		var un *keys.UnavailableError
		if errors.As(err, &un) {
			outcome = "unavailable"
		}
	}
	m.keyCalls.WithLabelValues(provider, call, outcome).Inc()
	m.keyLatency.WithLabelValues(provider, call).Observe(time.Since(start).Seconds())
}

// InstrumentForeign counts the calls of an S3EC key unwrapper
// (call="decrypt-s3ec") with the other key provider calls.
func (m *Metrics) InstrumentForeign(provider string, f keys.ForeignUnwrapper) keys.ForeignUnwrapper {
	if m == nil {
		return f
	}
	return &instrumentedForeign{name: provider, f: f, m: m}
}

type instrumentedForeign struct {
	name string
	f    keys.ForeignUnwrapper
	m    *Metrics
}

func (i *instrumentedForeign) DecryptWithContext(ctx context.Context, wrapped []byte, ec map[string]string) ([keys.DataKeySize]byte, string, error) {
	start := time.Now()
	k, id, err := i.f.DecryptWithContext(ctx, wrapped, ec)
	i.m.recordKeyCall(i.name, "decrypt-s3ec", start, err)
	return k, id, err
}

func (i *instrumented) GenerateDataKey(ctx context.Context) (keys.DataKey, error) {
	start := time.Now()
	dk, err := i.p.GenerateDataKey(ctx)
	i.record("generate", start, err)
	return dk, err
}

func (i *instrumented) Decrypt(ctx context.Context, wrapped []byte, keyID string) ([keys.DataKeySize]byte, error) {
	start := time.Now()
	k, err := i.p.Decrypt(ctx, wrapped, keyID)
	i.record("decrypt", start, err)
	return k, err
}

func (i *instrumented) Rewrap(ctx context.Context, wrapped []byte, keyID string) (keys.WrappedKey, error) {
	start := time.Now()
	w, err := i.p.Rewrap(ctx, wrapped, keyID)
	i.record("rewrap", start, err)
	return w, err
}

// CertificateExpiry exports when the served TLS certificate expires.
func CertificateExpiry(notAfter func() time.Time) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "s3seal_tls_certificate_expiry_timestamp_seconds",
		Help: "Unix time at which the TLS certificate s3seal serves expires (0 when none).",
	}, func() float64 {
		t := notAfter()
		if t.IsZero() {
			return 0
		}
		return float64(t.Unix())
	})
}
