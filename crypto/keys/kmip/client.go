package kmip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/s3seal/s3seal/crypto/keys/kmip/internal/ttlv"
)

// Tags, operations and enumerations of KMIP 1.4 that the client uses.
const (
	tagAttribute         = 0x420008
	tagAttributeName     = 0x42000A
	tagAttributeValue    = 0x42000B
	tagBatchCount        = 0x42000D
	tagBatchItem         = 0x42000F
	tagBlockCipherMode   = 0x420011
	tagCryptoAlgorithm   = 0x420028
	tagCryptoParameters  = 0x42002B
	tagIVCounterNonce    = 0x42003D
	tagOperation         = 0x42005C
	tagProtocolVersion   = 0x420069
	tagVersionMajor      = 0x42006A
	tagVersionMinor      = 0x42006B
	tagRequestHeader     = 0x420077
	tagRequestMessage    = 0x420078
	tagRequestPayload    = 0x420079
	tagResponseHeader    = 0x42007A
	tagResponseMessage   = 0x42007B
	tagResponsePayload   = 0x42007C
	tagResultMessage     = 0x42007D
	tagResultReason      = 0x42007E
	tagResultStatus      = 0x42007F
	tagUniqueIdentifier  = 0x420094
	tagData              = 0x4200C2
	tagTagLength         = 0x4200CE
	tagAEADAdditional    = 0x4200FE
	tagAEADTag           = 0x4200FF
	opGetAttributes      = 0x0B
	opEncrypt            = 0x1F
	opDecrypt            = 0x20
	statusSuccess        = 0
	algorithmAES         = 0x03
	modeGCM              = 0x09
	stateActive          = 0x02
	maxResponseSize      = 1 << 20
	protocolMajor, minor = 1, 4
)

// Result reasons (KMIP 1.4 §9.1.3.2.29) the provider maps to errors.
const (
	ReasonItemNotFound         = 0x01
	ReasonAuthenticationFailed = 0x03
	ReasonInvalidMessage       = 0x04
	ReasonOperationUnsupported = 0x05
	ReasonInvalidField         = 0x07
	ReasonFeatureUnsupported   = 0x08
	ReasonCryptographicFailure = 0x0A
	ReasonIllegalOperation     = 0x0B
	ReasonPermissionDenied     = 0x0C
	ReasonObjectArchived       = 0x0D
	ReasonGeneralFailure       = 0x100
)

// ResultError is an operation the server answered with a failure.
type ResultError struct {
	Operation string
	Reason    uint32
	Message   string // the server's Result Message, possibly empty
}

func (e *ResultError) Error() string {
	return fmt.Sprintf("kmip: server failed %s: reason %#x: %s", e.Operation, e.Reason, e.Message)
}

// ClientConfig configures a Client. Zero values mean the defaults.
type ClientConfig struct {
	// Addr is the server's host:port (KMIP's port is 5696). Required.
	Addr string
	// TLS is the client's TLS configuration: its certificate
	// (Certificates) and the server's CA (RootCAs), and ServerName if Addr
	// does not name the server as its certificate does. Required.
	TLS *tls.Config
	// Timeout bounds one attempt of one operation: connecting, the TLS
	// handshake, sending and receiving. Default 5 s.
	Timeout time.Duration
	// Retries is how many times an operation that failed to reach the
	// server (connection refused or reset, timeout) is tried again.
	// Operations the server answered are never retried. Default 2; -1
	// means none.
	Retries int
	// Backoff is the wait before the first retry; it doubles for each
	// further one, with jitter. Default 100 ms.
	Backoff time.Duration
	// MaxIdle bounds the connections kept open between operations.
	// Default 8.
	MaxIdle int
	// Dial, if set, replaces the TCP dialer (tests).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (c ClientConfig) withDefaults() ClientConfig {
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Retries == 0 {
		c.Retries = 2
	} else if c.Retries < 0 {
		c.Retries = 0
	}
	if c.Backoff <= 0 {
		c.Backoff = 100 * time.Millisecond
	}
	if c.MaxIdle <= 0 {
		c.MaxIdle = 8
	}
	if c.Dial == nil {
		d := &net.Dialer{}
		c.Dial = d.DialContext
	}
	return c
}

// Client speaks KMIP 1.4 over mutual TLS: one request per message, over a
// small pool of connections. It is safe for concurrent use.
type Client struct {
	cfg ClientConfig

	mu     sync.Mutex // protects idle and closed
	idle   []*tls.Conn
	closed bool
}

// NewClient returns a Client. It does not connect.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Addr == "" {
		return nil, errors.New("kmip: no server address")
	}
	if cfg.TLS == nil {
		return nil, errors.New("kmip: no TLS configuration")
	}
	cfg = cfg.withDefaults()
	cfg.TLS = cfg.TLS.Clone()
	if cfg.TLS.MinVersion < tls.VersionTLS12 {
		cfg.TLS.MinVersion = tls.VersionTLS12
	}
	if cfg.TLS.ServerName == "" {
		host, _, err := net.SplitHostPort(cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("kmip: server address %q: %w", cfg.Addr, err)
		}
		cfg.TLS.ServerName = host
	}
	return &Client{cfg: cfg}, nil
}

// Close closes the idle connections; operations in flight finish.
func (c *Client) Close() error {
	c.mu.Lock()
	idle := c.idle
	c.idle, c.closed = nil, true
	c.mu.Unlock()
	for _, conn := range idle {
		conn.Close()
	}
	return nil
}

// TransportError is a failure to exchange a message with the server
// (after the retries): the server is down, unreachable, too slow, or
// refused the TLS connection.
type TransportError struct {
	Addr string
	Err  error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("kmip: talking to %s: %v", e.Addr, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// Call sends one operation with payload and returns the response payload.
// A server that answers with a failure gives a *ResultError; one that
// cannot be reached gives a *TransportError.
func (c *Client) Call(ctx context.Context, op uint32, opName string, payload ...ttlv.Item) (ttlv.Item, error) {
	req := ttlv.Encode(nil, ttlv.Struct(tagRequestMessage,
		ttlv.Struct(tagRequestHeader,
			ttlv.Struct(tagProtocolVersion, ttlv.Int(tagVersionMajor, protocolMajor), ttlv.Int(tagVersionMinor, minor)),
			ttlv.Int(tagBatchCount, 1)),
		ttlv.Struct(tagBatchItem,
			ttlv.Enum(tagOperation, op),
			ttlv.Struct(tagRequestPayload, payload...))))
	var lastErr error
	for attempt := 0; attempt <= c.cfg.Retries; attempt++ {
		if attempt > 0 {
			wait := c.cfg.Backoff << (attempt - 1)
			wait += time.Duration(rand.Int64N(int64(wait)/2 + 1))
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ttlv.Item{}, &TransportError{Addr: c.cfg.Addr, Err: errors.Join(ctx.Err(), lastErr)}
			case <-t.C:
			}
		}
		resp, reused, err := c.exchange(ctx, req)
		if err == nil {
			return parseResponse(resp, op, opName)
		}
		lastErr = err
		if isPermanent(err) || ctx.Err() != nil {
			break
		}
		if reused && attempt == 0 {
			// A pooled connection the server had closed: not a sign of
			// trouble, try at once on a new one without using a retry.
			resp, _, err = c.exchange(ctx, req)
			if err == nil {
				return parseResponse(resp, op, opName)
			}
			lastErr = err
			if isPermanent(err) {
				break
			}
		}
	}
	return ttlv.Item{}, &TransportError{Addr: c.cfg.Addr, Err: lastErr}
}

// isPermanent reports a TLS failure that retrying cannot fix: the server
// rejected the client's certificate, or the server's certificate does not
// verify.
func isPermanent(err error) bool {
	var verify *tls.CertificateVerificationError
	return isTLSAlert(err) || errors.As(err, &verify)
}

// isTLSAlert reports a TLS alert from the server (it refused the client's
// certificate or the handshake). crypto/tls reports alerts received over
// TCP with an unexported type whose text starts "remote error: tls:".
func isTLSAlert(err error) bool {
	var alert tls.AlertError
	return errors.As(err, &alert) || strings.Contains(err.Error(), "remote error: tls:")
}

// exchange sends req and reads one response message on a pooled or new
// connection. reused reports a pooled connection.
func (c *Client) exchange(ctx context.Context, req []byte) (resp []byte, reused bool, err error) {
	conn, reused, err := c.conn(ctx)
	if err != nil {
		return nil, false, err
	}
	deadline := time.Now().Add(c.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	resp, err = roundTrip(conn, req)
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
		return nil, reused, err
	}
	conn.SetDeadline(time.Time{})
	c.put(conn)
	return resp, reused, nil
}

func roundTrip(conn net.Conn, req []byte) ([]byte, error) {
	if _, err := conn.Write(req); err != nil {
		return nil, err
	}
	var head [8]byte
	if _, err := io.ReadFull(conn, head[:]); err != nil {
		return nil, err
	}
	n, err := ttlv.Header(head[:])
	if err != nil {
		return nil, err
	}
	if n > maxResponseSize {
		return nil, fmt.Errorf("response of %d bytes, more than %d", n, maxResponseSize)
	}
	buf := make([]byte, n)
	copy(buf, head[:])
	if _, err := io.ReadFull(conn, buf[8:]); err != nil {
		return nil, err
	}
	return buf, nil
}

func (c *Client) conn(ctx context.Context) (*tls.Conn, bool, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, false, errors.New("client closed")
	}
	if n := len(c.idle); n > 0 {
		conn := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return conn, true, nil
	}
	c.mu.Unlock()
	dctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	raw, err := c.cfg.Dial(dctx, "tcp", c.cfg.Addr)
	if err != nil {
		return nil, false, err
	}
	conn := tls.Client(raw, c.cfg.TLS)
	if err := conn.HandshakeContext(dctx); err != nil {
		raw.Close()
		return nil, false, err
	}
	return conn, false, nil
}

func (c *Client) put(conn *tls.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || len(c.idle) >= c.cfg.MaxIdle {
		conn.Close()
		return
	}
	c.idle = append(c.idle, conn)
}

// parseResponse checks a response message and returns its payload.
func parseResponse(b []byte, op uint32, opName string) (ttlv.Item, error) {
	msg, rest, err := ttlv.Decode(b)
	if err != nil || len(rest) != 0 || msg.Tag != tagResponseMessage || msg.Type != ttlv.Structure {
		return ttlv.Item{}, fmt.Errorf("kmip: %s: malformed response message: %v", opName, err)
	}
	if _, ok := msg.Find(tagResponseHeader); !ok {
		return ttlv.Item{}, fmt.Errorf("kmip: %s: response without a header", opName)
	}
	items := msg.FindAll(tagBatchItem)
	if len(items) != 1 {
		return ttlv.Item{}, fmt.Errorf("kmip: %s: response with %d batch items, want 1", opName, len(items))
	}
	bi := items[0]
	status, ok := bi.Find(tagResultStatus)
	if !ok || status.Type != ttlv.Enumeration {
		return ttlv.Item{}, fmt.Errorf("kmip: %s: response without a result status", opName)
	}
	if status.Int != statusSuccess {
		re := &ResultError{Operation: opName}
		if r, ok := bi.Find(tagResultReason); ok && r.Type == ttlv.Enumeration {
			re.Reason = uint32(r.Int)
		}
		if m, ok := bi.Find(tagResultMessage); ok && m.Type == ttlv.TextString {
			re.Message = printable(string(m.Bytes))
		}
		return ttlv.Item{}, re
	}
	if o, ok := bi.Find(tagOperation); ok && (o.Type != ttlv.Enumeration || uint32(o.Int) != op) {
		return ttlv.Item{}, fmt.Errorf("kmip: %s: response for another operation (%d)", opName, o.Int)
	}
	p, ok := bi.Find(tagResponsePayload)
	if !ok || p.Type != ttlv.Structure {
		return ttlv.Item{}, fmt.Errorf("kmip: %s: response without a payload", opName)
	}
	return p, nil
}

// printable bounds and cleans a server's message for logs and errors.
func printable(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c == 0x7f {
			b[i] = '?'
		}
	}
	return string(b)
}
