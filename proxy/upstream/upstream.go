// Package upstream sends requests to the real S3 endpoint behind s3seal,
// signed afresh with s3seal's own credentials.
//
// # Signing
//
// Every request is signed with aws-sdk-go-v2's SigV4 signer (which caches
// its derived signing keys per day). Bodies are never hashed for the
// signature: over TLS the payload is UNSIGNED-PAYLOAD, and integrity comes
// from an S3 checksum — the client's own checksum where it sent one,
// otherwise a CRC32C that s3seal computes while streaming and sends in an
// aws-chunked trailer. Content-Length is always known upstream.
//
// # Regions
//
// Requests are signed for the configured region. When S3 answers that a
// bucket lives elsewhere (a redirect, or AuthorizationHeaderMalformed naming
// the region), the bucket's region is cached and a request without a body is
// retried at once; a request whose body has been consumed fails with
// [ErrRegionChanged] so the caller can ask the client to retry.
package upstream

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	lru "github.com/hashicorp/golang-lru/v2"
	"go.uber.org/zap"

	"github.com/s3seal/s3seal/proxy/checksum"
	"github.com/s3seal/s3seal/proxy/s3"
	"github.com/s3seal/s3seal/proxy/sigv4"
)

// LoopHeader is added to every upstream request with the sending instance's
// id. A request arriving with an id of its own means s3seal is forwarding to
// itself.
const LoopHeader = "X-S3seal-Via"

// Payload hash values.
const (
	unsignedPayload        = "UNSIGNED-PAYLOAD"
	streamingUnsignedTrail = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	// trailerChunkSize is the aws-chunked chunk size s3seal sends. S3
	// accepts any size for unsigned chunks; large chunks keep framing
	// overhead negligible.
	trailerChunkSize = 1 << 20
)

// ErrRegionChanged reports that the bucket lives in another region than the
// request was signed for, and the request body was already consumed. The
// region is now cached; the same request sent again will succeed.
var ErrRegionChanged = errors.New("upstream: bucket is in another region; retry the request")

// Options configures a Client.
type Options struct {
	// Endpoint is the S3 endpoint (scheme and host, no path).
	Endpoint *url.URL
	// Region signs requests for buckets whose region is not known to
	// differ.
	Region string
	// PathStyle addresses buckets as the first path segment instead of
	// a host-name label.
	PathStyle bool
	// Credentials provides s3seal's upstream credentials; it is wrapped
	// in an aws.CredentialsCache.
	Credentials aws.CredentialsProvider
	// Transport sends requests. Nil means a transport built from the
	// other options.
	Transport http.RoundTripper
	// RootCAs verifies the upstream's TLS certificate (nil: system roots).
	RootCAs *x509.CertPool
	// DialTimeout, ResponseHeaderTimeout, IdleConnTimeout and
	// MaxIdleConnsPerHost tune the built transport.
	DialTimeout, ResponseHeaderTimeout, IdleConnTimeout time.Duration
	MaxIdleConnsPerHost                                 int
	// MaxConnsPerHost bounds connections to the store (requests wait for
	// one beyond it); 0 means no bound.
	MaxConnsPerHost int
	// InstanceID is sent in LoopHeader.
	InstanceID string
	// DefaultChecksum is added as a trailer to PutObject bodies whose
	// client sent no checksum. The zero value means none.
	DefaultChecksum checksum.Algorithm
	// Now returns the signing time; nil means time.Now.
	Now    func() time.Time
	Logger *zap.Logger
}

// Client sends signed requests upstream. It is safe for concurrent use.
type Client struct {
	o       Options
	creds   *aws.CredentialsCache
	signer  *v4.Signer
	rt      http.RoundTripper
	regions *lru.Cache[string, string] // bucket -> region, only where it differs
	aws     bool                       // endpoint is AWS's own
}

// New returns a Client.
func New(o Options) (*Client, error) {
	if o.Endpoint == nil || o.Endpoint.Host == "" {
		return nil, errors.New("upstream: no endpoint")
	}
	if o.Credentials == nil {
		return nil, errors.New("upstream: no credentials provider")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	rt := o.Transport
	if rt == nil {
		rt = NewTransport(o)
	}
	regions, _ := lru.New[string, string](10000)
	return &Client{
		o:      o,
		creds:  aws.NewCredentialsCache(o.Credentials),
		signer: v4.NewSigner(func(so *v4.SignerOptions) { so.DisableURIPathEscaping = true }),
		rt:     rt,
		// regions caches buckets found in another region.
		regions: regions,
		aws:     strings.HasSuffix(o.Endpoint.Hostname(), ".amazonaws.com"),
	}, nil
}

// NewTransport builds the HTTP transport s3seal uses upstream: HTTP/1.1 with
// large buffers and many idle connections (S3 does not speak HTTP/2), no
// transparent decompression (bodies pass through byte for byte), and the
// proxy from the environment as every AWS SDK honours it.
func NewTransport(o Options) *http.Transport {
	dial := &net.Dialer{Timeout: orDefault(o.DialTimeout, 10*time.Second), KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            dial.DialContext,
		TLSClientConfig:        &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    10 * time.Second,
		DisableCompression:     true,
		MaxIdleConns:           0,
		MaxIdleConnsPerHost:    max(o.MaxIdleConnsPerHost, 16),
		MaxConnsPerHost:        o.MaxConnsPerHost,
		IdleConnTimeout:        orDefault(o.IdleConnTimeout, 90*time.Second),
		ResponseHeaderTimeout:  orDefault(o.ResponseHeaderTimeout, 5*time.Minute),
		ExpectContinueTimeout:  time.Second,
		WriteBufferSize:        64 << 10,
		ReadBufferSize:         64 << 10,
		MaxResponseHeaderBytes: 1 << 20,
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Request is one upstream request.
type Request struct {
	Method string
	Bucket string
	// Key is the decoded object key.
	Key string
	// Query holds the query parameters to send (without client
	// authentication parameters).
	Query url.Values
	// Header holds the headers to send. Authentication and hop-by-hop
	// headers are set by Do; callers must not pass the client's.
	Header http.Header
	// Body is the request body (nil for none) and ContentLength its exact
	// length.
	Body          io.Reader
	ContentLength int64
	// Trailer, when set, sends Body aws-chunked with this checksum in an
	// unsigned trailer. TrailerValue returns the base64 value once Body
	// has reached EOF; nil means s3seal computes it over Body.
	Trailer      checksum.Algorithm
	TrailerValue func() string
}

// Do signs and sends r. The caller closes the response body.
func (c *Client) Do(ctx context.Context, r *Request) (*http.Response, error) {
	region := c.o.Region
	if reg, ok := c.regions.Get(r.Bucket); ok {
		region = reg
	}
	resp, err := c.send(ctx, r, region)
	if err != nil {
		return nil, err
	}
	newRegion := regionHint(resp)
	if newRegion == "" || newRegion == region || r.Bucket == "" {
		return resp, nil
	}
	// The bucket is elsewhere: remember, and retry what can be retried.
	c.regions.Add(r.Bucket, newRegion)
	c.o.Logger.Info("bucket is in another region", zap.String("bucket", r.Bucket), zap.String("region", newRegion))
	if r.Body != nil && r.ContentLength != 0 {
		drainClose(resp.Body)
		return nil, ErrRegionChanged
	}
	drainClose(resp.Body)
	return c.send(ctx, r, newRegion)
}

// regionHint returns the region a redirect-like response names, if any. The
// header is present on S3's 301 PermanentRedirect and 400
// AuthorizationHeaderMalformed answers.
func regionHint(resp *http.Response) string {
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusBadRequest:
	default:
		return ""
	}
	if reg := resp.Header.Get("X-Amz-Bucket-Region"); reg != "" {
		return reg
	}
	if resp.StatusCode != http.StatusBadRequest || resp.Body == nil {
		return ""
	}
	// AuthorizationHeaderMalformed carries <Region>; peek at a bounded
	// prefix and put it back.
	buf, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(buf), resp.Body), resp.Body}
	var e struct {
		Code   string `xml:"Code"`
		Region string `xml:"Region"`
	}
	if xml.Unmarshal(buf, &e) == nil && e.Code == "AuthorizationHeaderMalformed" {
		return e.Region
	}
	return ""
}

func drainClose(rc io.ReadCloser) {
	if rc == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, rc, 64<<10)
	_ = rc.Close()
}

// URL returns the upstream URL for bucket and key in region, and the
// escaped path that is signed and sent.
func (c *Client) URL(bucket, key, region string) *url.URL {
	ep := c.o.Endpoint
	host := ep.Host
	if c.aws && region != c.o.Region {
		host = "s3." + region + ".amazonaws.com"
	}
	u := &url.URL{Scheme: ep.Scheme, Host: host}
	switch {
	case bucket == "":
		u.Path = "/"
	case c.o.PathStyle || !virtualHostable(bucket, ep.Scheme):
		u.Path = "/" + bucket + "/" + key
		if key == "" {
			u.Path = "/" + bucket + "/"
		}
	default:
		u.Host = bucket + "." + host
		u.Path = "/" + key
	}
	u.RawPath = s3.EscapePath(u.Path)
	return u
}

// virtualHostable reports whether bucket can be a host-name label: DNS
// compatible, and without dots over TLS (a wildcard certificate covers one
// label only).
func virtualHostable(bucket, scheme string) bool {
	if len(bucket) < 3 || len(bucket) > 63 {
		return false
	}
	for i := 0; i < len(bucket); i++ {
		ch := bucket[i]
		switch {
		case 'a' <= ch && ch <= 'z', '0' <= ch && ch <= '9', ch == '-':
		case ch == '.' && scheme == "http":
		default:
			return false
		}
	}
	return bucket[0] != '-' && bucket[len(bucket)-1] != '-'
}

func (c *Client) send(ctx context.Context, r *Request, region string) (*http.Response, error) {
	u := c.URL(r.Bucket, r.Key, region)
	u.RawQuery = r.Query.Encode()
	req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	// NewRequest re-parses the URL; keep our exact escaping.
	req.URL = u
	req.Host = u.Host
	for k, v := range r.Header {
		req.Header[k] = v
	}
	if c.o.InstanceID != "" {
		req.Header.Set(LoopHeader, c.o.InstanceID)
	}
	payload := unsignedPayload
	if r.Body != nil && r.ContentLength != 0 {
		body, n := r.Body, r.ContentLength
		if r.Trailer != "" && n > 0 {
			payload = streamingUnsignedTrail
			req.Header.Set("X-Amz-Decoded-Content-Length", strconv.FormatInt(n, 10))
			req.Header.Set("X-Amz-Trailer", r.Trailer.HeaderName())
			addContentEncoding(req.Header, "aws-chunked")
			body = sigv4.NewUnsignedTrailerEncoderLen(body, n, r.Trailer, r.TrailerValue, trailerChunkSize)
			n = sigv4.EncodedLength(n, trailerChunkSize, r.Trailer)
		}
		req.Body = io.NopCloser(body)
		req.ContentLength = n
		// Never replay a streamed body on a retried connection.
		req.GetBody = nil
	} else {
		req.Body = http.NoBody
		req.ContentLength = 0
	}
	req.Header.Set("X-Amz-Content-Sha256", payload)
	creds, err := c.creds.Retrieve(ctx)
	if err != nil {
		return nil, &CredentialsError{Err: err}
	}
	if err := c.signer.SignHTTP(ctx, creds, req, payload, "s3", region, c.o.Now().UTC()); err != nil {
		return nil, fmt.Errorf("upstream: signing: %w", err)
	}
	return c.rt.RoundTrip(req)
}

func addContentEncoding(h http.Header, enc string) {
	if cur := h.Get("Content-Encoding"); cur != "" {
		h.Set("Content-Encoding", enc+","+cur)
		return
	}
	h.Set("Content-Encoding", enc)
}

// CredentialsError reports that s3seal's upstream credentials could not be
// obtained (for example an expired web identity token).
type CredentialsError struct{ Err error }

func (e *CredentialsError) Error() string {
	return "upstream: retrieving credentials: " + e.Err.Error()
}

func (e *CredentialsError) Unwrap() error { return e.Err }

// Probe reports whether the upstream endpoint answers HTTP at all. Any
// response, even an error status, counts as reachable.
func (c *Client) Probe(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, c.o.Endpoint.String(), nil)
	if err != nil {
		return err
	}
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		return err
	}
	drainClose(resp.Body)
	return nil
}
