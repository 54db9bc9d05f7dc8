package proxy

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/crypto/stream"
	"github.com/s3seal/s3seal/proxy/checksum"
	"github.com/s3seal/s3seal/proxy/s3"
	"github.com/s3seal/s3seal/proxy/upstream"
)

// Checksums of envelope objects for GET and HEAD with checksum mode
// (x-amz-checksum-mode: ENABLED).
//
// A checksum the client sent as a header before the body is in the
// object's header (FORMAT.md, section 6.1) and costs nothing to show. One
// sent after the body (an aws-chunked trailer, what the AWS SDKs and CLI
// send) is kept, encrypted, in the trailer chunk of its segment (section
// 7.3): the last 108 bytes of a single PUT, the last 108 bytes of each
// part of a multipart object. s3seal reads exactly those bytes with ranged
// GETs pinned to the object's ETag, authenticates them and answers as S3
// does: FULL_OBJECT for a single PUT; for a multipart object whose parts
// all carry a checksum of one algorithm, COMPOSITE, the checksum of the
// concatenated part checksums followed by "-N". A CRC64NVME multipart
// object gets none (S3 keeps those only as full-object checksums, which
// the parts' trailers cannot give without their data). Ranged GETs get no
// checksum, as from S3. The answer is cached per object version, ETag and
// header, so only the first such request on a replica costs the reads:
// one 108-byte GET for a single PUT, and for a multipart object the
// part-set record (usually cached already) and one 108-byte GET per part,
// eight at a time.

// objectSum is an object's checksum as GET and HEAD show it.
type objectSum struct {
	name, value, typ string // header name, value, x-amz-checksum-type; name "" for none
}

// setHeaders puts the checksum into a response's headers.
func (o objectSum) setHeaders(h http.Header) {
	if o.name == "" {
		return
	}
	h.Set(o.name, o.value)
	h.Set("X-Amz-Checksum-Type", o.typ)
}

// fullObjectSum is the FULL_OBJECT checksum c (none if c is none).
func fullObjectSum(c stream.Checksum) objectSum {
	name, v, ok := checksumHeader(c)
	if !ok {
		return objectSum{}
	}
	return objectSum{name: name, value: v, typ: "FULL_OBJECT"}
}

// compositeSum is S3's COMPOSITE checksum of parts whose checksums are
// sums: the checksum, by their algorithm, of their concatenated values,
// then "-N". None when a part has none, the algorithms differ, or the
// algorithm has no composite form (CRC64NVME).
func compositeSum(sums []stream.Checksum) objectSum {
	if len(sums) == 0 {
		return objectSum{}
	}
	a := sums[0].Algorithm
	if a == stream.ChecksumNone || a == stream.ChecksumCRC64NVME {
		return objectSum{}
	}
	alg, err := checksum.ParseAlgorithm(a.String())
	if err != nil {
		return objectSum{}
	}
	h := alg.New()
	for _, s := range sums {
		if s.Algorithm != a || len(s.Value) != a.Size() {
			return objectSum{}
		}
		h.Write(s.Value)
	}
	return objectSum{name: alg.HeaderName(), value: base64.StdEncoding.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(sums)), typ: "COMPOSITE"}
}

// objectChecksum returns the checksum of the whole envelope object s at
// q's target, reading trailers where the header has none.
func (h *Handler) objectChecksum(ctx context.Context, q *request, s *sealed) (objectSum, error) {
	if c := s.hdr.Checksum(); c.Algorithm != stream.ChecksumNone {
		return fullObjectSum(c), nil
	}
	if s.hdr.Version() != envelope.VersionV2 {
		// Version 1 trailers are read only with the whole object.
		return objectSum{}, nil
	}
	ck := recordKey(q.req.Bucket, q.req.Key, s.version, s.etag, s.hdr)
	if o, ok := h.env.sums.Get(ck); ok {
		return o, nil
	}
	l, _, err := h.layout(ctx, q, s)
	if err != nil {
		return objectSum{}, err
	}
	trailers, err := h.readTrailers(ctx, q, s, l)
	if err != nil {
		return objectSum{}, err
	}
	var o objectSum
	if s.hdr.Multipart() {
		sums := make([]stream.Checksum, len(trailers))
		for i, t := range trailers {
			sums[i] = t.Checksum
		}
		o = compositeSum(sums)
	} else {
		o = fullObjectSum(trailers[0].Checksum)
	}
	h.env.sums.Add(ck, o)
	return o, nil
}

// readTrailers reads and authenticates the trailer of every segment of
// the version 2 object s (layout l): one ranged GET each, eight at a time.
func (h *Handler) readTrailers(ctx context.Context, q *request, s *sealed, l *stream.Layout) ([]stream.Trailer, error) {
	n := l.Segments()
	out := make([]stream.Trailer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			off, size := l.TrailerSpan(i)
			ct, err := h.readStored(ctx, q.req.Bucket, q.req.Key, s.version, s.etag, off, size)
			if err != nil {
				errs[i] = err
				return
			}
			if out[i], err = stream.OpenTrailerV2(s.key.SegmentKeyV2, l, i, ct); err != nil {
				h.logAuthFailure(q, err)
				errs[i] = errObjectAuth.WithCause(err)
			}
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readStored reads the n stored bytes at off of an object version, pinned
// to its ETag.
func (h *Handler) readStored(ctx context.Context, bucket, key, version, etag string, off, n int64) ([]byte, error) {
	query := url.Values{}
	if version != "" {
		query.Set("versionId", version)
	}
	hdr := http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", off, off+n-1)}}
	if etag != "" {
		hdr.Set("If-Match", etag)
	}
	resp, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodGet, Bucket: bucket, Key: key, Query: query, Header: hdr})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		return nil, upstreamError(resp)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(resp.Body, b); err != nil {
		return nil, err
	}
	return b, nil
}

// Plaintext multipart ETags in conditional requests.
//
// GET and HEAD show a version 2 multipart object's plaintext multipart
// ETag where its record keeps one (objectHeaders), while the store knows
// only its own. A GET or HEAD whose If-Match or If-None-Match names a
// multipart ETag ("<32 hex>-N"), and a copy whose copy-source conditions
// do, therefore cost a HEAD of the object at the store first (and its
// record, usually cached): where the object's plaintext ETag is named, the
// store's takes its place before the request goes on. An object changed in
// between fails the condition at the store, as it should.

// multipartETagForm reports whether v (one entity tag of a list) has the
// form of a multipart ETag.
func multipartETagForm(v string) bool {
	inner := strings.Trim(strings.TrimPrefix(strings.TrimSpace(v), "W/"), `"`)
	_, n, ok := strings.Cut(inner, "-")
	if !ok || len(inner)-len(n)-1 != 32 || n == "" || n == "0" {
		return false
	}
	for _, c := range inner[:32] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	_, err := strconv.Atoi(n)
	return err == nil
}

// plainETagConditions are the conditional headers of GET and HEAD that may
// name a plaintext multipart ETag.
var plainETagConditions = []string{"If-Match", "If-None-Match"}

// resolvePlainETags rewrites plaintext multipart ETags in the conditional
// headers hdr (If-Match, If-None-Match) of an upstream GET or HEAD of the
// object bucket/key (version: "" for the current one), made on behalf of
// q, to the store's. It returns the object's store and plaintext ETags
// when it found the latter ("" otherwise), so that a 304 can show it.
func (h *Handler) resolvePlainETags(ctx context.Context, rt *Runtime, q *request, bucket, key, version string, hdr http.Header) (store, plain string, err error) {
	named := false
	for _, name := range plainETagConditions {
		for _, v := range hdr.Values(name) {
			for _, e := range strings.Split(v, ",") {
				named = named || multipartETagForm(e)
			}
		}
	}
	if !named {
		return "", "", nil
	}
	query := url.Values{}
	if version != "" {
		query.Set("versionId", version)
	}
	if rt == nil || rt.Keys == nil {
		return "", "", nil
	}
	resp, err := h.up.Do(ctx, &upstream.Request{Method: http.MethodHead, Bucket: bucket, Key: key, Query: query, Header: http.Header{}})
	if err != nil {
		return "", "", err
	}
	drainClose(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get(metaHeader) == "" {
		// The request itself answers (not found, not sealed, ...).
		return "", "", nil
	}
	// The object as named (for the seal and the record), on q's behalf.
	oq := &request{id: q.id, r: q.r, req: &s3.Request{Op: q.req.Op, Info: q.req.Info, Bucket: bucket, Key: key, Query: query}, query: query, identity: q.identity}
	s, err := h.openSealed(ctx, rt, oq, resp.Header, resp.ContentLength)
	if err != nil || s == nil {
		return "", "", err
	}
	defer s.key.Zero()
	if s.hdr.Version() != envelope.VersionV2 || !s.hdr.Multipart() {
		return "", "", nil
	}
	if _, err := h.partSet(ctx, oq, bucket, key, s); err != nil || s.plainETag == "" {
		return "", "", err
	}
	for _, name := range plainETagConditions {
		vs := hdr.Values(name)
		for i, v := range vs {
			parts := strings.Split(v, ",")
			for j, e := range parts {
				if strings.EqualFold(strings.Trim(strings.TrimPrefix(strings.TrimSpace(e), "W/"), `"`), s.plainETag) {
					parts[j] = s.etag
				}
			}
			vs[i] = strings.Join(parts, ",")
		}
	}
	return s.etag, s.plainETag, nil
}
