package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/s3seal/s3seal/crypto/s3ec"
	"github.com/s3seal/s3seal/proxy/policy"
	"github.com/s3seal/s3seal/proxy/s3err"
	"github.com/s3seal/s3seal/proxy/upstream"
)

// Objects written by the Amazon S3 Encryption Client (package s3ec) are
// read, under envelope rules with allow_s3ec_reads, by fetching the whole
// body, checking its one GCM tag and only then answering: a whole-object
// tag leaves no other way to release nothing unauthenticated. Bodies are
// held in memory, within a budget shared by concurrent reads.

// s3ecMeta returns an object's user metadata by S3EC key.
func s3ecMeta(hdr http.Header) func(string) string {
	return func(k string) string { return hdr.Get("X-Amz-Meta-" + k) }
}

// isS3ECHeader reports whether a response header is S3EC metadata, which a
// client reading plaintext through s3seal must not see (an S3 Encryption
// Client would try to decrypt the plaintext again).
func isS3ECHeader(lk string) bool {
	return strings.HasPrefix(lk, "x-amz-meta-x-amz-")
}

// memBudget hands out bytes of a fixed budget. acquire does not wait: when
// the budget is spent the client gets 503 SlowDown and retries.
type memBudget struct {
	mu        sync.Mutex
	used, max int64
}

func (b *memBudget) acquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.max-b.used {
		return false
	}
	b.used += n
	return true
}

func (b *memBudget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

var errS3ECBusy = s3err.New("SlowDown", http.StatusServiceUnavailable,
	"s3seal is decrypting as many S3 Encryption Client objects as its memory budget allows (limits.s3ec_max_object_size); retry.")

// s3ecError maps a metadata parse error.
func (h *Handler) s3ecError(q *request, err error) *s3err.Error {
	if u, ok := err.(*s3ec.UnsupportedError); ok {
		return s3err.NotImplemented.WithMessage("This object was written by the Amazon S3 Encryption Client in a form s3seal does not read: %s.", u.Reason)
	}
	h.logAuthFailure(q, err)
	return errObjectAuth.WithCause(err)
}

// s3ecRefused is the error for an S3EC object under a rule that does not
// read them.
func s3ecRefused(rule string) *s3err.Error {
	return s3err.AccessDenied.WithMessage("The object was written by the Amazon S3 Encryption Client, and envelope policy %q does not read such objects (allow_s3ec_reads enables it for migrations).", rule)
}

// s3ecGet answers GetObject and HeadObject for an S3EC object. resp is a
// store answer carrying the object's headers; whole says its body is the
// whole object (else the body is fetched, pinned to resp's ETag);
// cipherSize is the object's whole stored size.
func (h *Handler) s3ecGet(w *responseWriter, rt *Runtime, q *request, resp *http.Response, rg *byteRange, head bool, cipherSize int64, whole bool) {
	if !q.rule.AllowS3ECReads {
		h.fail(w, q, s3ecRefused(q.rule.Name))
		return
	}
	if q.query.Get("partNumber") != "" {
		h.fail(w, q, s3err.NotImplemented.WithMessage("partNumber reads of Amazon S3 Encryption Client objects are not supported; read the whole object or a range."))
		return
	}
	o, err := s3ec.Parse(s3ecMeta(resp.Header))
	if err != nil {
		h.fail(w, q, h.s3ecError(q, err))
		return
	}
	size, err := o.PlaintextSize(cipherSize)
	if err != nil {
		h.fail(w, q, h.s3ecError(q, err))
		return
	}
	a, b := int64(0), size-1
	status := http.StatusOK
	if rg != nil {
		var ok bool
		if a, b, ok = rg.resolve(size); !ok {
			h.fail(w, q, rangeError(size))
			return
		}
		status = http.StatusPartialContent
	}
	if head {
		h.s3ecHeaders(w, resp, size, a, b, status)
		return
	}
	var body io.Reader
	if whole {
		body = resp.Body
	} else {
		// The speculative range was for s3seal's format: the whole body
		// is fetched, pinned to the version whose metadata was read.
		drainClose(resp.Body)
	}
	plain, release, err := h.readS3EC(rt, q, o, upstreamQuery(q.query), resp.Header.Get("Etag"), cipherSize, body)
	if err != nil {
		h.fail(w, q, err)
		return
	}
	defer release()
	h.s3ecHeaders(w, resp, size, a, b, status)
	q.upstreamN += cipherSize
	if _, err := w.Write(plain[a : b+1]); err != nil {
		q.err = errClientGone
	}
}

// readS3EC reads the whole n-byte body of the S3EC object at q's target —
// from body when the caller has it, else fetched with query and pinned to
// etag — checks its tag and returns the plaintext. The body is held within
// the memory budget until release, which also clears the plaintext.
func (h *Handler) readS3EC(rt *Runtime, q *request, o *s3ec.Object, query url.Values, etag string, n int64, body io.Reader) (plain []byte, release func(), err error) {
	if n > h.s3ecBudget.max {
		return nil, nil, s3err.NotImplemented.WithMessage("This Amazon S3 Encryption Client object holds %d bytes, more than s3seal decrypts in memory (limits.s3ec_max_object_size = %d); raise the limit or read it with the S3 Encryption Client.", n, h.s3ecBudget.max)
	}
	if !h.s3ecBudget.acquire(n) {
		return nil, nil, errS3ECBusy
	}
	defer func() {
		if err != nil {
			h.s3ecBudget.release(n)
		}
	}()
	if body == nil {
		hdr := http.Header{}
		if etag != "" {
			hdr.Set("If-Match", etag)
		}
		resp, err := h.up.Do(q.r.Context(), &upstream.Request{Method: http.MethodGet, Bucket: q.req.Bucket, Key: q.req.Key, Query: query, Header: hdr})
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, nil, upstreamError(resp)
		}
		if resp.ContentLength != n {
			return nil, nil, s3err.InternalError.WithMessage("The object changed while s3seal read it; retry.")
		}
		body = resp.Body
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(body, buf); err != nil {
		return nil, nil, s3err.UpstreamUnavailable.WithCause(err)
	}
	if plain, err = h.s3ecOpen(rt, q, o, buf); err != nil {
		return nil, nil, err
	}
	return plain, func() { clear(plain); h.s3ecBudget.release(n) }, nil
}

// s3ecOpen unwraps the object's data key and decrypts buf in place.
func (h *Handler) s3ecOpen(rt *Runtime, q *request, o *s3ec.Object, buf []byte) ([]byte, error) {
	if rt.S3EC == nil {
		return nil, s3err.NotImplemented.WithMessage("Reading Amazon S3 Encryption Client objects needs an AWS KMS key spec (keys: aws-kms:KEY) naming the key that wrapped them.")
	}
	key, keyID, err := rt.S3EC.DecryptWithContext(q.r.Context(), o.WrappedKey, o.Context)
	h.auditKeyID(q, "unwrap-s3ec", "aws-kms", keyID, err)
	if err != nil {
		e := keyError(err)
		if e.Code == errObjectAuth.Code {
			h.logAuthFailure(q, err)
		}
		return nil, e
	}
	defer clear(key[:])
	plain, err := o.Open(key[:], buf)
	if err != nil {
		h.logAuthFailure(q, fmt.Errorf("an Amazon S3 Encryption Client V%d object: %w", o.Version, err))
		return nil, errObjectAuth.WithCause(err)
	}
	return plain, nil
}

// s3ecHeaders writes the response headers of a plaintext answer.
func (h *Handler) s3ecHeaders(w *responseWriter, resp *http.Response, size, a, b int64, status int) {
	dst := w.Header()
	copyEnvelopeHeaders(dst, resp.Header)
	for k := range dst {
		if isS3ECHeader(strings.ToLower(k)) {
			delete(dst, k)
		}
	}
	if status == http.StatusPartialContent {
		dst.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", a, b, size))
	}
	dst.Set("Content-Length", itoa(b-a+1))
	w.WriteHeader(status)
}

// s3ecSource checks that an S3EC copy source may be read (its own rule
// allows it) and returns its metadata and plaintext size.
func (h *Handler) s3ecSource(sq *request, rt *Runtime, src copySource, sh *http.Response) (*s3ec.Object, int64, error) {
	rule := &policy.Rule{Name: "default"}
	if rt.Policy != nil {
		rule = rt.Policy.Match(src.Bucket, src.Key)
	}
	if rule.Mode != policy.Envelope || !rule.AllowS3ECReads {
		return nil, 0, s3ecRefused(rule.Name)
	}
	o, err := s3ec.Parse(s3ecMeta(sh.Header))
	if err != nil {
		return nil, 0, h.s3ecError(sq, err)
	}
	size, err := o.PlaintextSize(sh.ContentLength)
	if err != nil {
		return nil, 0, h.s3ecError(sq, err)
	}
	return o, size, nil
}

// openS3EC reads, checks and decrypts a whole S3EC copy source sq (pinned
// to the ETag of its HEAD sh) and returns length plaintext bytes from
// offset a. Closing the reader returns the memory to the budget.
func (h *Handler) openS3EC(sq *request, rt *Runtime, sh *http.Response, o *s3ec.Object, a, length int64) (io.ReadCloser, int64, error) {
	plain, release, err := h.readS3EC(rt, sq, o, sq.query, sh.Header.Get("Etag"), sh.ContentLength, nil)
	if err != nil {
		return nil, 0, err
	}
	return &budgetReader{Reader: bytes.NewReader(plain[a : a+length]), done: release}, length, nil
}

// budgetReader runs done once, on Close.
type budgetReader struct {
	*bytes.Reader
	once sync.Once
	done func()
}

func (r *budgetReader) Close() error {
	r.once.Do(r.done)
	return nil
}
