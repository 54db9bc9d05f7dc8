// Package proxy is s3seal's HTTP plumbing: the S3 request handler that
// authenticates, routes and forwards each request, the servers and
// listeners, the admin endpoints, and the request log.
//
// # Request path
//
// Each request is authenticated (SigV4 in every form clients send, or, for
// opted-in sidecars, trusted by its transport), checked against the
// client's bucket limits, classified into an S3 operation, handed to the
// policy that applies to its bucket and key, and forwarded upstream with
// s3seal's own signature. s3seal's own failures and upstream errors reach
// the client as S3 XML errors (see toS3Error and upstreamError); a failure
// after the response has started aborts the connection so the client never
// mistakes a truncated body for a complete one.
package proxy

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.uber.org/zap"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/local"
	"github.com/s3seal/s3seal/crypto/stream"
	"github.com/s3seal/s3seal/proxy/authz"
	"github.com/s3seal/s3seal/proxy/checksum"
	"github.com/s3seal/s3seal/proxy/policy"
	"github.com/s3seal/s3seal/proxy/s3"
	"github.com/s3seal/s3seal/proxy/s3err"
	"github.com/s3seal/s3seal/proxy/sigv4"
	"github.com/s3seal/s3seal/proxy/upstream"
)

// Runtime is the part of the handler's configuration that a reload
// replaces as a whole.
type Runtime struct {
	Identities *Identities
	// Verifier checks client signatures; its Lookup must consult
	// Identities.
	Verifier *sigv4.Verifier
	// Decoder parses sidecar requests: payload framing is decoded and
	// checksums verified, signatures are not checked.
	Decoder *sigv4.Verifier
	// BaseDomains enable virtual-hosted addressing.
	BaseDomains []string
	// Parse says how requests are parsed (virtual-hosted domains, which
	// object keys are accepted). SetRuntime fills its BaseDomains.
	Parse s3.ParseOptions
	// Policy chooses how each bucket and key is treated; nil means
	// passthrough everywhere.
	Policy *policy.Engine
	// Authz decides every request; SetRuntime builds it from Policy and
	// Reserved when nil.
	Authz *authz.Authorizer
	// SSE holds the SSE-C key ring and the caches of the server-side
	// encryption modes; nil means no key ring.
	SSE *SSE
	// Keys is the key provider (behind its data-key cache) of envelope
	// mode; nil when none is configured.
	Keys keys.Provider
	// S3EC unwraps the data keys of Amazon S3 Encryption Client objects
	// (envelope rules with allow_s3ec_reads); nil when the key provider
	// cannot (it is not AWS KMS).
	S3EC keys.ForeignUnwrapper
	// Keyring is the local key ring when Keys is one (sse-c derives its
	// keys from it); nil otherwise.
	Keyring *local.Keyring
	// UploadKeys seal the object keys of multipart uploads into their
	// upload ids when Keys cannot unwrap (a write-only gateway), the
	// sealing key first; nil otherwise.
	UploadKeys []*[envelope.UploadKeySize]byte
	// Reserved are bucket prefixes s3seal uses itself; no client may
	// touch them.
	Reserved []authz.Reserved
}

// complete fills what the runtime derives from its other fields.
func (rt *Runtime) complete() {
	if len(rt.Parse.BaseDomains) == 0 {
		rt.Parse.BaseDomains = rt.BaseDomains
	}
	if rt.Authz == nil {
		rt.Authz = &authz.Authorizer{Policy: rt.Policy, Reserved: rt.Reserved}
	}
}

// AllowCertificateFor decides whether an on-demand certificate may be
// obtained for a host name: only <bucket>.<base domain> names for buckets
// some client may use.
func (h *Handler) AllowCertificateFor(name string) error {
	rt := h.rt.Load()
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	for _, base := range rt.BaseDomains {
		base = strings.ToLower(strings.Trim(base, "."))
		bucket, ok := strings.CutSuffix(name, "."+base)
		if !ok || bucket == "" || strings.Contains(bucket, ".") {
			continue
		}
		if rt.Identities.AnyAllowed(bucket) {
			return nil
		}
		return fmt.Errorf("no client may use bucket %q", bucket)
	}
	return fmt.Errorf("%q is not <bucket>.<base domain> for a configured base domain", name)
}

// Options configures a Handler.
type Options struct {
	Runtime  *Runtime
	Upstream *upstream.Client
	// InstanceID identifies this process in upstream requests (loop
	// detection) and request ids.
	InstanceID string
	// BodyReadTimeout aborts a request whose body stalls this long; 0
	// means no limit.
	BodyReadTimeout time.Duration
	// WriteTimeout aborts a response the client stops reading for this
	// long; 0 means no limit.
	WriteTimeout time.Duration
	// MaxRequests caps requests in flight (503 SlowDown beyond); 0 means
	// no cap. MaxRequestsPerClient caps one client identity's.
	MaxRequests, MaxRequestsPerClient int
	// DefaultChecksum is sent upstream for PutObject bodies without a
	// client checksum ("" for none).
	DefaultChecksum checksum.Algorithm
	// S3ECMaxObjectSize is the memory budget for decrypting Amazon S3
	// Encryption Client objects, which are held whole until their tag
	// verifies; 0 means 64 MiB.
	S3ECMaxObjectSize int64
	// MarkerWait is W of FORMAT.md section 9.4 (envelope format markers);
	// 0 means DefaultMarkerWait.
	MarkerWait time.Duration
	// Metrics records request metrics; nil disables them.
	Metrics *Metrics
	// Audit receives one record per use of a key (nil: none).
	Audit  *zap.Logger
	Logger *zap.Logger
	Now    func() time.Time
}

// Handler serves the S3 API. It is safe for concurrent use.
type Handler struct {
	rt       atomic.Pointer[Runtime]
	up       *upstream.Client
	log      *zap.Logger
	now      func() time.Time
	instance string
	bodyTO   time.Duration
	writeTO  time.Duration
	seq      atomic.Uint64
	// inflight counts requests being served, and perClient each client
	// identity's (by name, *atomic.Int64), against the Options caps.
	inflight                  atomic.Int64
	perClient                 sync.Map
	maxInflight, maxPerClient int64
	idPrefix                  string
	// bufs holds 64 KiB buffers for copying bodies.
	bufs            sync.Pool
	defaultChecksum checksum.Algorithm
	// layouts caches multipart envelope objects' segment layouts by
	// bucket, key and store ETag.
	layouts *lru.Cache[string, *stream.Layout]
	metrics *Metrics
	audit   *zap.Logger
	// sizes caches plaintext sizes learnt by HEAD for listed objects whose
	// stored size is ambiguous, by bucket, key, version and ETag.
	sizes *lru.Cache[string, int64]
	// uploadIDs caches s3seal's upload ids by the store's
	// (envelope_uploads.go).
	uploadIDs *uploadStates
	// docBudget bounds the memory held by request documents
	// (readDocument).
	docBudget *memBudget
	// s3ecBudget bounds the memory held by S3EC reads.
	s3ecBudget *memBudget
	// env is envelope mode's format version 2 state (envelope_v2.go).
	env *envState
}

// NewHandler returns a Handler.
func NewHandler(o Options) (*Handler, error) {
	if o.Runtime == nil || o.Runtime.Verifier == nil || o.Runtime.Identities == nil {
		return nil, errors.New("proxy: runtime configuration incomplete")
	}
	if o.Upstream == nil {
		return nil, errors.New("proxy: no upstream")
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.InstanceID == "" {
		o.InstanceID = NewInstanceID()
	}
	h := &Handler{
		up:       o.Upstream,
		log:      o.Logger,
		now:      o.Now,
		instance: o.InstanceID,
		bodyTO:   o.BodyReadTimeout,
		writeTO:  o.WriteTimeout,

		maxInflight:  int64(o.MaxRequests),
		maxPerClient: int64(o.MaxRequestsPerClient),
		idPrefix:     strings.ToUpper(o.InstanceID[:min(8, len(o.InstanceID))]),
		bufs:         sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }},

		defaultChecksum: o.DefaultChecksum,
		metrics:         o.Metrics,
		audit:           o.Audit,
	}
	if h.audit == nil {
		h.audit = zap.NewNop()
	}
	if o.S3ECMaxObjectSize <= 0 {
		o.S3ECMaxObjectSize = 64 << 20
	}
	h.s3ecBudget = &memBudget{max: o.S3ECMaxObjectSize}
	h.docBudget = &memBudget{max: maxDocuments}
	h.uploadIDs = newUploadStates()
	h.env = newEnvState(o.MarkerWait)
	h.layouts, _ = lru.New[string, *stream.Layout](10000)
	h.sizes, _ = lru.New[string, int64](100000)
	h.SetRuntime(o.Runtime)
	return h, nil
}

// NewInstanceID returns a random identifier for this process.
func NewInstanceID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// SetRuntime atomically replaces the reloadable configuration. Requests in
// flight keep the one they started with.
func (h *Handler) SetRuntime(rt *Runtime) {
	rt.complete()
	h.rt.Store(rt)
}

// Runtime returns the current reloadable configuration.
func (h *Handler) Runtime() *Runtime { return h.rt.Load() }

func (h *Handler) requestID() string {
	n := h.seq.Add(1)
	b := make([]byte, 0, 24)
	b = append(b, h.idPrefix...)
	b = strconv.AppendUint(b, n, 16)
	return strings.ToUpper(string(b))
}

// request is the state of one request as it moves through the handler.
type request struct {
	r     *http.Request
	id    string
	start time.Time
	// req is the canonical request (package s3): the operation and
	// everything it touches, parsed once. Later stages read it, never
	// the raw request's target, query or copy source.
	req *s3.Request
	// query is the query sent to the store (req.Query).
	query    url.Values
	identity *Identity
	auth     *sigv4.Result
	// dec is what authorization allowed (package authz).
	dec    *authz.Decision
	policy string
	rule   *policy.Rule
	err    error
	// doc is a request document read before authorization (DeleteObjects,
	// CompleteMultipartUpload) as the client sent it; it is what goes
	// upstream unless a mode rewrites it.
	doc []byte
	// release runs when the request ends.
	release   []func()
	bytesIn   int64
	upstreamN int64
	// upstreamStatus is the status of the last upstream answer.
	upstreamStatus int
	// completeETag, if set, is the ETag a CompleteMultipartUpload result
	// shows instead of the store's (see sse_partetag.go).
	completeETag string
}

// ServeHTTP runs the request path: parse the request once into its
// canonical form, authenticate the client, authorize the request as a
// whole, and hand it to the mode its policy rule chooses, which forwards
// it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt := h.rt.Load()
	q := &request{r: r, id: h.requestID(), start: h.now(), policy: "passthrough"}
	rw := &responseWriter{ResponseWriter: w}
	defer func() {
		for _, f := range q.release {
			f()
		}
	}()
	defer rw.stop()
	if c, ok := r.Context().Value(connKey{}).(net.Conn); ok && h.writeTO > 0 {
		rw.conn, rw.timeout = c, h.writeTO
	} else if h.writeTO > 0 {
		rw.rc, rw.timeout, rw.now = http.NewResponseController(w), h.writeTO, h.now
		// A deadline left by the previous request on this connection
		// must not cut this one (or a 100 Continue) short.
		if err := rw.rc.SetWriteDeadline(time.Time{}); err != nil {
			rw.rc = nil
		}
	}
	defer h.logRequest(q, rw)
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				if q.err == nil {
					q.err = errors.New("response aborted mid-body")
				}
				panic(v)
			}
			h.log.Error("panic serving request", zap.Any("panic", v), zap.String("request_id", q.id), zap.Stack("stack"))
			q.err = errors.New("internal error")
			if !rw.wroteHeader {
				h.writeError(rw, q, s3err.InternalError)
				return
			}
			panic(http.ErrAbortHandler)
		}
	}()

	if via := r.Header.Values(upstream.LoopHeader); len(via) > 0 {
		for _, v := range via {
			if strings.Contains(v, h.instance) {
				q.req = &s3.Request{Op: s3.OpUnknown}
				h.fail(rw, q, s3err.New("LoopDetected", http.StatusLoopDetected, "s3seal received its own upstream request: its upstream endpoint points back at itself. Set s3seal's upstream to the real S3 endpoint."))
				return
			}
		}
	}

	if n := h.inflight.Add(1); h.maxInflight > 0 && n > h.maxInflight {
		h.inflight.Add(-1)
		q.req = &s3.Request{Op: s3.OpUnknown}
		h.fail(rw, q, s3err.SlowDown.WithMessage("Please reduce your request rate: s3seal is serving %d requests at once, its limit (limits.max_requests).", h.maxInflight))
		return
	}
	defer h.inflight.Add(-1)

	// 1. Parse.
	req, perr := s3.ParseRequest(r, rt.Parse)
	q.req = req
	q.query = req.Query
	if req.Op == s3.OpPreflight {
		if perr != nil {
			h.fail(rw, q, perr)
			return
		}
		h.forward(rw, q, nil)
		return
	}
	// A request S3 routes to 400 or 405 whatever its signature is
	// answered so here: it names nothing s3seal would send anywhere.
	if rerr := s3.RoutingError(r, req); rerr != nil {
		h.fail(rw, q, rerr)
		return
	}
	// 2. Authenticate.
	if err := h.authenticate(rt, q); err != nil {
		h.fail(rw, q, err)
		return
	}
	if h.maxPerClient > 0 {
		v, _ := h.perClient.LoadOrStore(q.identity.Name, new(atomic.Int64))
		c := v.(*atomic.Int64)
		if n := c.Add(1); n > h.maxPerClient {
			c.Add(-1)
			h.fail(rw, q, s3err.SlowDown.WithMessage("Please reduce your request rate: client %q has %d requests in flight, its limit (limits.max_requests_per_client).", q.identity.Name, h.maxPerClient))
			return
		}
		defer c.Add(-1)
	}
	if perr != nil {
		h.fail(rw, q, perr)
		return
	}
	if q.auth != nil && q.auth.Mode.Streaming() && req.Op != s3.OpPutObject && req.Op != s3.OpUploadPart {
		// S3 takes aws-chunked bodies for object and part uploads only.
		h.fail(rw, q, s3err.InvalidRequest.WithMessage("The value of x-amz-content-sha256 header is invalid."))
		return
	}
	if err := s3.CheckHeaders(r.Header); err != nil {
		h.fail(rw, q, err)
		return
	}
	if err := h.readDocument(rt, q); err != nil {
		h.fail(rw, q, err)
		return
	}
	// 3. Authorize.
	dec, err := rt.Authz.Authorize(&q.identity.Client, req, r.Header)
	if err != nil {
		h.fail(rw, q, err)
		return
	}
	q.dec = dec
	q.rule = dec.Rule
	q.policy = dec.Rule.Name + ":" + string(dec.Rule.Mode)
	// 4. The mode.
	h.dispatch(rw, rt, q)
}

// maxDocuments bounds the memory held by request documents read before
// they are forwarded, over all requests (a 10,000-part
// CompleteMultipartUpload takes about 1 MiB).
const maxDocuments = 64 << 20

// readDocument reads the body of the operations whose keys or parts are in
// it, before authorization decides: DeleteObjects (every key is checked as
// strictly as a target key) and CompleteMultipartUpload (S3's part limits
// are enforced here, in every mode, so that a document beyond them never
// reaches the store). The body is read as a stream, verified as it is
// read, within a memory budget shared by all requests (503 SlowDown when
// it is spent).
func (h *Handler) readDocument(rt *Runtime, q *request) error {
	req := q.req
	if req.Op != s3.OpDeleteObjects && req.Op != s3.OpCompleteMultipartUpload {
		return nil
	}
	if q.auth.Body == nil || q.auth.Body == http.NoBody {
		return s3err.MalformedXML.WithMessage("The %s request has no body.", req.Op)
	}
	src := &budgetedReader{r: q.auth.Body, b: h.docBudget}
	defer src.done(q)
	var err error
	switch req.Op {
	case s3.OpDeleteObjects:
		req.Delete, q.doc, err = s3.ParseDelete(src)
		if err == nil {
			// A store would delete what "a//b" or "x/../y" cleans to.
			for _, o := range req.Delete.Objects {
				if err = rt.Parse.Keys.Check(o.Key); err != nil {
					break
				}
			}
		}
	case s3.OpCompleteMultipartUpload:
		req.Complete, q.doc, err = s3.ParseComplete(src)
	}
	if src.over {
		return s3err.SlowDown.WithMessage("Please reduce your request rate: s3seal holds as many request documents as its memory budget allows.")
	}
	return err
}

// budgetedReader takes what it reads from a shared memory budget, 64 KiB
// at a time; done gives it back when the request ends.
type budgetedReader struct {
	r     io.Reader
	b     *memBudget
	taken int64
	read  int64
	over  bool
}

var errBudget = errors.New("proxy: request document budget spent")

func (r *budgetedReader) Read(p []byte) (int, error) {
	if r.read+int64(len(p)) > r.taken {
		if !r.b.acquire(64 << 10) {
			r.over = true
			return 0, errBudget
		}
		r.taken += 64 << 10
		p = p[:min(len(p), int(r.taken-r.read))]
	}
	n, err := r.r.Read(p)
	r.read += int64(n)
	return n, err
}

// done releases the budget when q's handling ends (the document is kept
// until then).
func (r *budgetedReader) done(q *request) {
	q.release = append(q.release, func() { r.b.release(r.taken) })
}

// authenticate verifies the request's signature, or trusts a sidecar peer,
// and records who the client is.
func (h *Handler) authenticate(rt *Runtime, q *request) error {
	ids := rt.Identities
	if ids.Sidecar != nil && h.trustedPeer(ids, q.r) {
		res, err := rt.Decoder.Verify(q.r)
		if err != nil {
			return err
		}
		q.auth = res
		q.identity = ids.Sidecar
		return nil
	}
	res, err := rt.Verifier.Verify(q.r)
	if err != nil {
		return err
	}
	q.auth = res
	q.identity = ids.ByKey(res.AccessKeyID)
	if q.identity == nil {
		// The verifier found the key, so the identity set changed
		// between the two lookups (a reload); refuse rather than guess.
		return s3err.InvalidAccessKeyID
	}
	return nil
}

// trustedPeer reports whether the connection is one sidecar trust covers.
func (h *Handler) trustedPeer(ids *Identities, r *http.Request) bool {
	if ids.TrustClientCert && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return true
	}
	if ids.TrustLoopback {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err == nil {
			if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
				return true
			}
		}
	}
	return false
}

// fail writes err as an S3 error and records it for the log.
func (h *Handler) fail(w *responseWriter, q *request, err error) {
	q.err = err
	if errors.Is(err, errClientGone) {
		// Nothing can be answered. Abort, so that net/http does not
		// finish the response with an implicit 200 for a client that
		// half-closed its connection and still reads.
		panic(http.ErrAbortHandler)
	}
	h.writeError(w, q, toS3Error(err))
}

func (h *Handler) writeError(w *responseWriter, q *request, e *s3err.Error) {
	if w.wroteHeader {
		panic(http.ErrAbortHandler)
	}
	s3err.Write(w, q.r, e, errorResource(q.r), q.id)
}

// responseWriter records the status and bytes written for the log, and
// bounds each write: a client that stops reading is cut off after the
// write timeout (its goroutine and store connection released), however
// long the whole response takes. Where the server recorded the client's
// connection (WithConn), a timer closes it under a write that does not
// finish in time; elsewhere the connection's write deadline is extended
// before each write. (Over TLS a write deadline alone is not enough: a
// blocked TLS write returned only seconds after it.)
type responseWriter struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
	// rc sets write deadlines; nil when there is no write timeout or
	// the connection cannot (HTTP/2 streams, test recorders).
	rc      *http.ResponseController
	timeout time.Duration
	now     func() time.Time
	// conn is the client's connection (nil when unknown) and timer the
	// watchdog of the write in progress.
	conn  net.Conn
	timer *time.Timer
}

type connKey struct{}

// WithConn records a connection in its context, for http.Server's
// ConnContext.
func WithConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// closeConn aborts the client's connection at once, under a write in
// progress: the TCP connection itself (closing a TLS connection would
// first wait to send close_notify), with a reset rather than a FIN queued
// behind megabytes the client is not reading.
func (w *responseWriter) closeConn() {
	c := w.conn
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// stop ends the watchdog when the response is done.
func (w *responseWriter) stop() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

func (w *responseWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status = code
		if code >= 200 {
			w.wroteHeader = true
			lowerMetadataNames(w.Header())
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// lowerMetadataNames sends user-metadata headers with lower-case names, as
// S3 does. Go canonicalises header names ("X-Amz-Meta-Foo") when it reads
// the store's answer; clients such as boto3 and the AWS CLI keep the case
// of what follows x-amz-meta-, so Metadata['foo'] would not be found.
func lowerMetadataNames(h http.Header) {
	for k, v := range h {
		if len(k) > len("X-Amz-Meta-") && strings.HasPrefix(k, "X-Amz-Meta-") {
			delete(h, k)
			h[strings.ToLower(k)] = v
		}
	}
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	switch {
	case w.conn != nil && w.timeout > 0:
		if w.timer == nil {
			w.timer = time.AfterFunc(w.timeout, w.closeConn)
		} else {
			w.timer.Reset(w.timeout)
		}
		defer w.timer.Stop()
	case w.rc != nil:
		if err := w.rc.SetWriteDeadline(w.now().Add(w.timeout)); err != nil {
			w.rc = nil
		}
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// stallReader aborts a request body that makes no progress for the timeout,
// by extending the connection's read deadline before each read.
type stallReader struct {
	r       io.Reader
	rc      *http.ResponseController
	timeout time.Duration
	now     func() time.Time
	n       int64
}

func (s *stallReader) Read(p []byte) (int, error) {
	if s.rc != nil {
		if err := s.rc.SetReadDeadline(s.now().Add(s.timeout)); err != nil {
			// HTTP/2 streams and test recorders cannot; the server's
			// own timeouts still apply.
			s.rc = nil
		}
	}
	n, err := s.r.Read(p)
	s.n += int64(n)
	return n, err
}

// contextErr reports whether the client's request context ended.
func contextErr(ctx context.Context) bool { return ctx.Err() != nil }
