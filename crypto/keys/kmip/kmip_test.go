package kmip

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/keystest"
	"github.com/s3seal/s3seal/crypto/keys/kmip/internal/ttlv"
	"github.com/s3seal/s3seal/integration/testbed"
)

// pki is a CA with a server and a client certificate, for the fake server,
// and a client certificate of another CA.
type pki struct {
	caPool            *x509.CertPool
	caPEM             []byte
	server, client    tls.Certificate
	clientPEM, keyPEM []byte
	otherCA           *x509.CertPool
	strangerClient    tls.Certificate
}

func newPKI(t *testing.T) *pki {
	ca := testbed.NewCA(t, "test CA")
	p := &pki{caPool: ca.Pool(), caPEM: ca.CertPEM}
	p.server = ca.TLSCertificate(t, "127.0.0.1")
	p.clientPEM, p.keyPEM = ca.IssueCert(t, "s3seal")
	var err error
	if p.client, err = tls.X509KeyPair(p.clientPEM, p.keyPEM); err != nil {
		t.Fatal(err)
	}
	other := testbed.NewCA(t, "other CA")
	p.otherCA = other.Pool()
	p.strangerClient = other.TLSCertificate(t, "stranger")
	return p
}

// fakeServer is a KMIP server for unit tests: AES-GCM Encrypt and Decrypt
// and Get Attributes (State), over mutual TLS.
type fakeServer struct {
	ln   net.Listener
	mu   sync.Mutex
	keys map[string][]byte
	st   map[string]uint32
	// failReason, if not 0, makes every operation fail with it.
	failReason uint32
	failMsg    string
	hang       bool

	encrypts, decrypts, getAttrs atomic.Int64
}

func startServer(t *testing.T, p *pki) *fakeServer {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{p.server}, ClientCAs: p.caPool, ClientAuth: tls.RequireAndVerifyClientCert})
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{ln: ln, keys: map[string][]byte{}, st: map[string]uint32{}}
	for _, id := range []string{"key-1", "key-2", "key-3"} {
		k := make([]byte, 32)
		rand.Read(k)
		s.keys[id], s.st[id] = k, stateActive
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

func (s *fakeServer) serve(c net.Conn) {
	defer c.Close()
	for {
		var head [8]byte
		if _, err := io.ReadFull(c, head[:]); err != nil {
			return
		}
		n, err := ttlv.Header(head[:])
		if err != nil {
			return
		}
		buf := make([]byte, n)
		copy(buf, head[:])
		if _, err := io.ReadFull(c, buf[8:]); err != nil {
			return
		}
		s.mu.Lock()
		hang := s.hang
		s.mu.Unlock()
		if hang {
			time.Sleep(2 * time.Second)
			return
		}
		msg, _, err := ttlv.Decode(buf)
		if err != nil {
			return
		}
		bi, _ := msg.Find(tagBatchItem)
		op, _ := bi.Find(tagOperation)
		req, _ := bi.Find(tagRequestPayload)
		payload, reason, text := s.handle(uint32(op.Int), req)
		item := []ttlv.Item{ttlv.Enum(tagOperation, uint32(op.Int))}
		if reason != 0 {
			item = append(item, ttlv.Enum(tagResultStatus, 1), ttlv.Enum(tagResultReason, reason), ttlv.Text(tagResultMessage, text))
		} else {
			item = append(item, ttlv.Enum(tagResultStatus, statusSuccess), ttlv.Struct(tagResponsePayload, payload...))
		}
		resp := ttlv.Encode(nil, ttlv.Struct(tagResponseMessage,
			ttlv.Struct(tagResponseHeader, ttlv.Struct(tagProtocolVersion, ttlv.Int(tagVersionMajor, 1), ttlv.Int(tagVersionMinor, 4)),
				ttlv.Item{Tag: 0x420092, Type: ttlv.DateTime, Int: time.Now().Unix()}, ttlv.Int(tagBatchCount, 1)),
			ttlv.Struct(tagBatchItem, item...)))
		if _, err := c.Write(resp); err != nil {
			return
		}
	}
}

func (s *fakeServer) handle(op uint32, req ttlv.Item) ([]ttlv.Item, uint32, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch op {
	case opEncrypt:
		s.encrypts.Add(1)
	case opDecrypt:
		s.decrypts.Add(1)
	case opGetAttributes:
		s.getAttrs.Add(1)
	}
	if s.failReason != 0 {
		return nil, s.failReason, s.failMsg
	}
	uid, _ := textOf(req, tagUniqueIdentifier)
	key, ok := s.keys[uid]
	if !ok {
		return nil, ReasonItemNotFound, "Could not locate object: " + uid
	}
	idItem := ttlv.Text(tagUniqueIdentifier, uid)
	if op == opGetAttributes {
		return []ttlv.Item{idItem, ttlv.Struct(tagAttribute, ttlv.Text(tagAttributeName, "State"), ttlv.Enum(tagAttributeValue, s.st[uid]))}, 0, ""
	}
	if s.st[uid] != stateActive {
		return nil, ReasonPermissionDenied, "The encryption key must be in the Active state to be used for encryption."
	}
	block, _ := aes.NewCipher(key)
	aeadAD, _ := bytesOf(req, tagAEADAdditional)
	data, _ := bytesOf(req, tagData)
	switch op {
	case opEncrypt:
		iv := make([]byte, 16)
		rand.Read(iv)
		g, _ := cipher.NewGCMWithNonceSize(block, 16)
		out := g.Seal(nil, iv, data, aeadAD)
		return []ttlv.Item{idItem, ttlv.Bytes(tagData, out[:len(data)]), ttlv.Bytes(tagIVCounterNonce, iv), ttlv.Bytes(tagAEADTag, out[len(data):])}, 0, ""
	case opDecrypt:
		iv, _ := bytesOf(req, tagIVCounterNonce)
		tag, _ := bytesOf(req, tagAEADTag)
		if len(iv) == 0 {
			return nil, ReasonInvalidField, "no IV"
		}
		g, _ := cipher.NewGCMWithNonceSize(block, len(iv))
		pt, err := g.Open(nil, iv, append(append([]byte(nil), data...), tag...), aeadAD)
		if err != nil {
			return nil, ReasonCryptographicFailure, "InvalidTag"
		}
		return []ttlv.Item{idItem, ttlv.Bytes(tagData, pt)}, 0, ""
	}
	return nil, ReasonOperationUnsupported, "unsupported"
}

func (s *fakeServer) set(f func(s *fakeServer)) {
	s.mu.Lock()
	f(s)
	s.mu.Unlock()
}

func newProvider(t *testing.T, p *pki, s *fakeServer, cc ClientConfig, ids ...string) (*Provider, *Client) {
	t.Helper()
	cc.Addr = s.addr()
	if cc.TLS == nil {
		cc.TLS = &tls.Config{Certificates: []tls.Certificate{p.client}, RootCAs: p.caPool}
	}
	c, err := NewClient(cc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if len(ids) == 0 {
		ids = []string{"key-1", "key-2"}
	}
	prov, err := New(c, Config{KeyIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	return prov, c
}

func TestRoundTripAndRotation(t *testing.T) {
	ctx := context.Background()
	p := newPKI(t)
	s := startServer(t, p)
	prov, _ := newProvider(t, p, s, ClientConfig{})
	if err := prov.Check(ctx, []string{"key-1", "key-2"}); err != nil {
		t.Fatal(err)
	}
	// Rotation: key-2 becomes active, key-1 stays readable.
	rot, _ := newProvider(t, p, s, ClientConfig{}, "key-2", "key-1")
	dk := keystest.CheckRoundTrips(t, prov, rot)
	if dk.KeyID != "key-1" || len(dk.Ciphertext) != 2+16+32+16 || dk.Ciphertext[0] != wrapVersion {
		t.Fatalf("wrapped %q %d bytes", dk.KeyID, len(dk.Ciphertext))
	}
	if bytes.Contains(dk.Ciphertext, dk.Plaintext[:8]) {
		t.Fatal("plaintext visible in the wrapped key")
	}
}

func TestAdversarialWrappedKeys(t *testing.T) {
	ctx := context.Background()
	p := newPKI(t)
	s := startServer(t, p)
	prov, _ := newProvider(t, p, s, ClientConfig{})
	dk, err := prov.GenerateDataKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var unwrap *keys.UnwrapError
	for i := range dk.Ciphertext {
		bad := append([]byte(nil), dk.Ciphertext...)
		bad[i] ^= 0x01
		if _, err := prov.Decrypt(ctx, bad, dk.KeyID); !errors.As(err, &unwrap) {
			t.Fatalf("flip at %d: %v", i, err)
		}
	}
	for _, bad := range [][]byte{nil, {1}, dk.Ciphertext[:len(dk.Ciphertext)-1], append(append([]byte(nil), dk.Ciphertext...), 0)} {
		before := s.decrypts.Load()
		if _, err := prov.Decrypt(ctx, bad, dk.KeyID); !errors.As(err, &unwrap) {
			t.Fatalf("malformed %d bytes: %v", len(bad), err)
		}
		if s.decrypts.Load() != before {
			t.Fatal("malformed wrapped key sent to the server")
		}
	}
	// The same blob under the other allowed key: the server has it
	// decrypted with key-2 and the tag fails (the key id is also in the
	// additional data).
	if _, err := prov.Decrypt(ctx, dk.Ciphertext, "key-2"); !errors.As(err, &unwrap) {
		t.Fatalf("wrong key id: %v", err)
	}
	// A key outside the allow-list is refused without a server call.
	var unknown *keys.UnknownKeyError
	before := s.decrypts.Load()
	if _, err := prov.Decrypt(ctx, dk.Ciphertext, "key-3"); !errors.As(err, &unknown) || s.decrypts.Load() != before {
		t.Fatalf("key outside the allow-list: %v", err)
	}
	if _, err := prov.Rewrap(ctx, dk.Ciphertext, "key-3"); !errors.As(err, &unknown) {
		t.Fatalf("rewrap from a key outside the allow-list: %v", err)
	}
}

func TestServerErrors(t *testing.T) {
	ctx := context.Background()
	p := newPKI(t)
	s := startServer(t, p)
	prov, _ := newProvider(t, p, s, ClientConfig{Retries: -1})
	dk, _ := prov.GenerateDataKey(ctx)
	cases := []struct {
		reason uint32
		msg    string
		check  func(error) bool
	}{
		{ReasonItemNotFound, "gone", func(e error) bool { var x *keys.KeyDisabledError; return errors.As(e, &x) }},
		{ReasonPermissionDenied, "Could not locate object: 1", func(e error) bool { var x *keys.AccessDeniedError; return errors.As(e, &x) }},
		{ReasonPermissionDenied, "The decryption key must be in the Active state", func(e error) bool { var x *keys.KeyDisabledError; return errors.As(e, &x) }},
		{ReasonAuthenticationFailed, "who are you", func(e error) bool { var x *keys.AccessDeniedError; return errors.As(e, &x) }},
		{ReasonGeneralFailure, "db locked", func(e error) bool { var x *keys.UnavailableError; return errors.As(e, &x) }},
		{ReasonOperationUnsupported, "no GCM", func(e error) bool { return e != nil && !keys.IsWrongKey(e) }},
	}
	for _, c := range cases {
		s.set(func(s *fakeServer) { s.failReason, s.failMsg = c.reason, c.msg })
		if _, err := prov.Decrypt(ctx, dk.Ciphertext, dk.KeyID); !c.check(err) {
			t.Errorf("reason %#x %q on Decrypt: %v", c.reason, c.msg, err)
		}
		if _, err := prov.GenerateDataKey(ctx); !c.check(err) {
			t.Errorf("reason %#x %q on Encrypt: %v", c.reason, c.msg, err)
		}
	}
	s.set(func(s *fakeServer) { s.failReason = 0; s.st["key-1"] = 3 })
	var disabled *keys.KeyDisabledError
	if err := prov.Check(ctx, []string{"key-1"}); !errors.As(err, &disabled) || !strings.Contains(err.Error(), "Deactivated") {
		t.Fatalf("check of a deactivated active key: %v", err)
	}
	if err := prov.Check(ctx, []string{"key-2", "key-1"}); err != nil {
		t.Fatalf("a deactivated read-only key is fine: %v", err)
	}
	if err := prov.Check(ctx, []string{"key-1", "nope"}); err == nil {
		t.Fatal("check of a missing key passed")
	}
}

func TestMalformedResponses(t *testing.T) {
	for name, resp := range map[string][]byte{
		"not TTLV":        []byte("HTTP/1.1 400 Bad Request\r\n\r\n"),
		"wrong tag":       ttlv.Encode(nil, ttlv.Struct(tagRequestMessage)),
		"no batch item":   ttlv.Encode(nil, ttlv.Struct(tagResponseMessage, ttlv.Struct(tagResponseHeader))),
		"no status":       ttlv.Encode(nil, ttlv.Struct(tagResponseMessage, ttlv.Struct(tagResponseHeader), ttlv.Struct(tagBatchItem))),
		"other operation": ttlv.Encode(nil, ttlv.Struct(tagResponseMessage, ttlv.Struct(tagResponseHeader), ttlv.Struct(tagBatchItem, ttlv.Enum(tagOperation, opDecrypt), ttlv.Enum(tagResultStatus, 0), ttlv.Struct(tagResponsePayload)))),
		"two items":       ttlv.Encode(nil, ttlv.Struct(tagResponseMessage, ttlv.Struct(tagResponseHeader), ttlv.Struct(tagBatchItem), ttlv.Struct(tagBatchItem))),
	} {
		if _, err := parseResponse(resp, opEncrypt, "Encrypt"); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	// A payload without the fields Encrypt must return.
	prov, _ := New(callerFunc(func(ctx context.Context, op uint32, name string, _ ...ttlv.Item) (ttlv.Item, error) {
		return ttlv.Struct(tagResponsePayload, ttlv.Bytes(tagData, make([]byte, 32))), nil
	}), Config{KeyIDs: []string{"k"}})
	if _, err := prov.GenerateDataKey(context.Background()); err == nil || !strings.Contains(err.Error(), "IV") {
		t.Fatalf("Encrypt answer without IV and tag: %v", err)
	}
}

type callerFunc func(ctx context.Context, op uint32, name string, payload ...ttlv.Item) (ttlv.Item, error)

func (f callerFunc) Call(ctx context.Context, op uint32, name string, payload ...ttlv.Item) (ttlv.Item, error) {
	return f(ctx, op, name, payload...)
}

func TestTransport(t *testing.T) {
	ctx := context.Background()
	p := newPKI(t)
	s := startServer(t, p)

	// A client certificate the server does not trust.
	bad, _ := newProvider(t, p, s, ClientConfig{TLS: &tls.Config{Certificates: []tls.Certificate{p.strangerClient}, RootCAs: p.caPool}})
	var denied *keys.AccessDeniedError
	start := time.Now()
	if err := bad.Check(ctx, []string{"key-1"}); !errors.As(err, &denied) || !strings.Contains(err.Error(), "client_cert") {
		t.Fatalf("untrusted client certificate: %v", err)
	}
	if time.Since(start) > time.Second {
		t.Fatal("a refused certificate was retried")
	}
	// A server certificate s3seal does not trust.
	wrongCA, _ := newProvider(t, p, s, ClientConfig{TLS: &tls.Config{Certificates: []tls.Certificate{p.client}, RootCAs: p.otherCA}})
	if err := wrongCA.Check(ctx, []string{"key-1"}); err == nil || !strings.Contains(err.Error(), "kmip.ca") {
		t.Fatalf("untrusted server certificate: %v", err)
	}

	// A server that accepts and never answers: bounded by the timeout,
	// retried, then unavailable.
	s.set(func(s *fakeServer) { s.hang = true })
	slow, _ := newProvider(t, p, s, ClientConfig{Timeout: 200 * time.Millisecond, Retries: 1, Backoff: 10 * time.Millisecond})
	var unavail *keys.UnavailableError
	start = time.Now()
	if _, err := slow.GenerateDataKey(ctx); !errors.As(err, &unavail) {
		t.Fatalf("hanging server: %v", err)
	}
	if d := time.Since(start); d < 400*time.Millisecond || d > 1500*time.Millisecond {
		t.Fatalf("hanging server answered after %v, want two timeouts of 200 ms", d)
	}
	s.set(func(s *fakeServer) { s.hang = false })

	// A server that is down: connection refused, retried with backoff.
	prov, c := newProvider(t, p, s, ClientConfig{Retries: 2, Backoff: 20 * time.Millisecond})
	dk, err := prov.GenerateDataKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.ln.Close()
	c.Close() // drop pooled connections
	c2, _ := NewClient(ClientConfig{Addr: s.addr(), TLS: &tls.Config{Certificates: []tls.Certificate{p.client}, RootCAs: p.caPool}, Retries: 2, Backoff: 20 * time.Millisecond})
	down, _ := New(c2, Config{KeyIDs: []string{"key-1"}})
	start = time.Now()
	if _, err := down.Decrypt(ctx, dk.Ciphertext, dk.KeyID); !errors.As(err, &unavail) {
		t.Fatalf("server down: %v", err)
	}
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Fatalf("no backoff between retries (%v)", d)
	}
	// The context bounds the whole call.
	cctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	c3, _ := NewClient(ClientConfig{Addr: s.addr(), TLS: &tls.Config{RootCAs: p.caPool}, Retries: 5, Backoff: time.Second})
	down3, _ := New(c3, Config{KeyIDs: []string{"key-1"}})
	start = time.Now()
	if _, err := down3.GenerateDataKey(cctx); !errors.As(err, &unavail) || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("context deadline not honoured: %v after %v", err, time.Since(start))
	}
}

func TestPooledConnectionsAndConcurrency(t *testing.T) {
	p := newPKI(t)
	s := startServer(t, p)
	prov, _ := newProvider(t, p, s, ClientConfig{MaxIdle: 2})
	keystest.CheckConcurrent(t, prov, 16, 8)
	if s.encrypts.Load() != 128 || s.decrypts.Load() != 128 {
		t.Fatalf("server saw %d encrypts, %d decrypts", s.encrypts.Load(), s.decrypts.Load())
	}
}

func TestOpenFromFiles(t *testing.T) {
	ctx := context.Background()
	p := newPKI(t)
	s := startServer(t, p)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		path := filepath.Join(dir, name)
		os.WriteFile(path, b, 0o600)
		return path
	}
	set := Settings{Endpoint: s.addr(), ClientCert: write("c.pem", p.clientPEM), ClientKey: write("k.pem", p.keyPEM), CA: write("ca.pem", p.caPEM)}
	prov, err := Open(ctx, set, []string{"key-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer prov.Close()
	if _, err := prov.GenerateDataKey(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, set, []string{"missing"}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing key at start: %v", err)
	}
	noCert := set
	noCert.ClientKey = ""
	if _, err := Open(ctx, noCert, []string{"key-1"}); err == nil || !strings.Contains(err.Error(), "client_key") {
		t.Fatalf("no client key: %v", err)
	}
	badCA := set
	badCA.CA = write("bad.pem", []byte("nope"))
	if _, err := Open(ctx, badCA, []string{"key-1"}); err == nil || !strings.Contains(err.Error(), "no PEM") {
		t.Fatalf("bad CA file: %v", err)
	}
}

// TestGeneralFailureOnDecrypt: a server that reports a failed tag check as
// General Failure (PyKMIP) gives an UnwrapError when it is otherwise
// healthy, and an UnavailableError when it is not.
func TestGeneralFailureOnDecrypt(t *testing.T) {
	var healthy atomic.Bool
	prov, _ := New(callerFunc(func(ctx context.Context, op uint32, name string, _ ...ttlv.Item) (ttlv.Item, error) {
		switch {
		case op == opGetAttributes && healthy.Load():
			return ttlv.Struct(tagResponsePayload, ttlv.Struct(tagAttribute, ttlv.Text(tagAttributeName, "State"), ttlv.Enum(tagAttributeValue, stateActive))), nil
		case op == opGetAttributes:
			return ttlv.Item{}, &TransportError{Addr: "x", Err: errors.New("connection refused")}
		}
		return ttlv.Item{}, &ResultError{Operation: name, Reason: ReasonGeneralFailure, Message: "Operation failed."}
	}), Config{KeyIDs: []string{"k"}})
	w := append([]byte{wrapVersion, 16}, make([]byte, 16+32+16)...)
	healthy.Store(true)
	var unwrap *keys.UnwrapError
	if _, err := prov.Decrypt(context.Background(), w, "k"); !errors.As(err, &unwrap) {
		t.Fatalf("healthy server: %v", err)
	}
	healthy.Store(false)
	var unavail *keys.UnavailableError
	if _, err := prov.Decrypt(context.Background(), w, "k"); !errors.As(err, &unavail) {
		t.Fatalf("server in trouble: %v", err)
	}
}

// TestClientKeyHygiene: the client key file gets the key ring's checks.
func TestClientKeyHygiene(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	os.WriteFile(cert, p.clientPEM, 0o644)
	os.WriteFile(key, p.keyPEM, 0o640)
	set := Settings{Endpoint: "127.0.0.1:1", ClientCert: cert, ClientKey: key}
	if _, err := Open(context.Background(), set, []string{"k"}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("group-readable client key: %v", err)
	}
	os.Chmod(key, 0o600)
	link := filepath.Join(dir, "link.pem")
	os.Symlink(key, link)
	set.ClientKey = link
	if _, err := Open(context.Background(), set, []string{"k"}); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("symlinked client key: %v", err)
	}
}

// FuzzParseResponse: any bytes from a server give a payload structure or
// an error, never a panic; and the wrapped-key parser never accepts a form
// of the wrong length.
func FuzzParseResponse(f *testing.F) {
	ok := ttlv.Encode(nil, ttlv.Struct(tagResponseMessage, ttlv.Struct(tagResponseHeader, ttlv.Int(tagBatchCount, 1)),
		ttlv.Struct(tagBatchItem, ttlv.Enum(tagOperation, opEncrypt), ttlv.Enum(tagResultStatus, 0),
			ttlv.Struct(tagResponsePayload, ttlv.Bytes(tagData, make([]byte, 32)), ttlv.Bytes(tagIVCounterNonce, make([]byte, 16)), ttlv.Bytes(tagAEADTag, make([]byte, 16))))))
	f.Add(ok)
	f.Add(ttlv.Encode(nil, ttlv.Struct(tagResponseMessage, ttlv.Struct(tagResponseHeader),
		ttlv.Struct(tagBatchItem, ttlv.Enum(tagResultStatus, 1), ttlv.Enum(tagResultReason, ReasonGeneralFailure), ttlv.Text(tagResultMessage, "x")))))
	f.Add(append([]byte{wrapVersion, 12}, make([]byte, 60)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := parseResponse(b, opEncrypt, "Encrypt"); err == nil && p.Type != ttlv.Structure {
			t.Fatalf("payload of type %d", p.Type)
		}
		if iv, ct, tag, ok := parseWrapped(b); ok && (len(b) != 2+len(iv)+len(ct)+len(tag) || len(ct) != 32 || len(tag) != 16 || len(iv) < 12) {
			t.Fatalf("wrapped form of %d bytes accepted", len(b))
		}
	})
}
