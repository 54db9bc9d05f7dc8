// Package kmip is s3seal's KMIP key provider: data keys are wrapped and
// unwrapped by a KMIP server (an enterprise key manager or an HSM that
// speaks KMIP) under master keys that never leave it.
//
// # Operations
//
// The provider uses two KMIP 1.4 operations, Encrypt and Decrypt, with
// AES-GCM (Block Cipher Mode GCM, Tag Length 16) and Authenticated
// Encryption Additional Data, and Get Attributes (State) to check its keys
// when it starts. It never uses Get: the master keys stay inside the
// server. A data key is 32 bytes from s3seal's own random source; the
// server encrypts it under the active master key with an IV of its choice
// and returns ciphertext, IV and tag. Unwrapping sends all three back with
// the same additional data; the server checks the tag, so a wrapped key
// that was altered, or presented under another key id, is refused there.
// Rewrap is a Decrypt followed by an Encrypt under the active key (KMIP has
// no re-encrypt operation).
//
// The wrapped form (FORMAT.md §3.3) is
//
//	0x01 || len(IV) (1 byte) || IV || ciphertext (32) || tag (16)
//
// and the additional data is "s3seal" 0x01 "kmip-wrap" 0x01 || key id.
//
// # Keys
//
// Master keys are named by their KMIP Unique Identifier; the first of the
// configured keys wraps new data keys, all of them unwrap. A stored key id
// outside that list is refused without asking the server. The server must
// grant s3seal's client certificate Encrypt and Decrypt (the key's
// Cryptographic Usage Mask) and Get Attributes on the keys.
//
// # Errors
//
// Server answers map to the errors of package keys: Item Not Found and
// keys not in the Active state to *keys.KeyDisabledError, Permission Denied
// and Authentication Not Successful to *keys.AccessDeniedError, a failed
// tag check to *keys.UnwrapError, and a server that cannot be reached (after
// the client's retries) or answers General Failure to
// *keys.UnavailableError. A client certificate the server refuses is an
// *keys.AccessDeniedError. A Decrypt answered with General Failure (which
// is how PyKMIP reports a failed tag check) is followed by a Get
// Attributes of the key: if the server answers and the key is Active, the
// wrapped key is what failed (*keys.UnwrapError); otherwise the server is
// in trouble (*keys.UnavailableError).
package kmip

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/kmip/internal/ttlv"
)

// wrapVersion is the first byte of the wrapped form.
const wrapVersion = 0x01

// labelWrap starts the additional data of every wrap.
const labelWrap = "s3seal\x01kmip-wrap"

const tagSize = 16

// Caller is what the provider needs of a Client (tests replace it).
type Caller interface {
	Call(ctx context.Context, op uint32, opName string, payload ...ttlv.Item) (ttlv.Item, error)
}

var _ Caller = (*Client)(nil)

// Config configures a Provider.
type Config struct {
	// KeyIDs are the Unique Identifiers of the master keys, the active one
	// first. Required.
	KeyIDs []string
	// Rand is the source of data keys. nil means crypto/rand.
	Rand io.Reader
}

// Provider is a keys.Provider backed by a KMIP server. It is safe for
// concurrent use.
type Provider struct {
	c       Caller
	closer  io.Closer // the Client, when Open made it
	active  string
	allowed map[string]bool
	rand    io.Reader
}

var (
	_ keys.Provider = (*Provider)(nil)
	_ keys.Wrapper  = (*Provider)(nil)
)

// New returns a Provider that calls the server through c.
func New(c Caller, cfg Config) (*Provider, error) {
	if c == nil {
		return nil, errors.New("kmip: no client")
	}
	if len(cfg.KeyIDs) == 0 {
		return nil, errors.New("kmip: no KMIP key configured")
	}
	p := &Provider{c: c, active: cfg.KeyIDs[0], allowed: map[string]bool{}, rand: cfg.Rand}
	for _, id := range cfg.KeyIDs {
		if err := keys.CheckKeyID(id); err != nil {
			return nil, fmt.Errorf("kmip: %w", err)
		}
		p.allowed[id] = true
	}
	if p.rand == nil {
		p.rand = rand.Reader
	}
	return p, nil
}

// Close closes the connections of the Client that Open made; it does
// nothing for a Provider made with New.
func (p *Provider) Close() error {
	if p.closer == nil {
		return nil
	}
	return p.closer.Close()
}

// Name returns "kmip".
func (p *Provider) Name() string { return keys.KindKMIP }

func aad(keyID string) []byte {
	return append([]byte(labelWrap+"\x01"), keyID...)
}

func cryptoParams() ttlv.Item {
	return ttlv.Struct(tagCryptoParameters,
		ttlv.Enum(tagBlockCipherMode, modeGCM),
		ttlv.Enum(tagCryptoAlgorithm, algorithmAES),
		ttlv.Int(tagTagLength, tagSize))
}

// GenerateDataKey draws a data key and has the server wrap it under the
// active key.
func (p *Provider) GenerateDataKey(ctx context.Context) (keys.DataKey, error) {
	return keys.GenerateAndWrap(ctx, p.rand, p.Wrap)
}

// Wrap has the server encrypt key under the active master key (KMIP
// Encrypt, AES-GCM).
func (p *Provider) Wrap(ctx context.Context, key *[keys.DataKeySize]byte) (keys.WrappedKey, error) {
	resp, err := p.c.Call(ctx, opEncrypt, "Encrypt",
		ttlv.Text(tagUniqueIdentifier, p.active),
		cryptoParams(),
		ttlv.Bytes(tagData, key[:]),
		ttlv.Bytes(tagAEADAdditional, aad(p.active)))
	if err != nil {
		return keys.WrappedKey{}, mapError("Encrypt", p.active, err)
	}
	ct, ok1 := bytesOf(resp, tagData)
	iv, ok2 := bytesOf(resp, tagIVCounterNonce)
	tag, ok3 := bytesOf(resp, tagAEADTag)
	switch {
	case !ok1 || len(ct) != keys.DataKeySize:
		return keys.WrappedKey{}, fmt.Errorf("kmip: Encrypt returned %d bytes of ciphertext for a %d-byte key (is the key AES and GCM supported?)", len(ct), keys.DataKeySize)
	case !ok2 || len(iv) < 12 || len(iv) > 64:
		return keys.WrappedKey{}, fmt.Errorf("kmip: Encrypt returned no usable GCM IV (%d bytes)", len(iv))
	case !ok3 || len(tag) != tagSize:
		return keys.WrappedKey{}, fmt.Errorf("kmip: Encrypt returned a %d-byte authentication tag, want %d (does the server support KMIP 1.4 authenticated encryption?)", len(tag), tagSize)
	}
	if id, ok := textOf(resp, tagUniqueIdentifier); ok && id != p.active {
		return keys.WrappedKey{}, fmt.Errorf("kmip: Encrypt answered for key %q, not %q", id, p.active)
	}
	out := make([]byte, 0, 2+len(iv)+len(ct)+len(tag))
	out = append(out, wrapVersion, byte(len(iv)))
	out = append(append(append(out, iv...), ct...), tag...)
	return keys.WrappedKey{KeyID: p.active, Ciphertext: out}, nil
}

// parseWrapped splits the wrapped form.
func parseWrapped(w []byte) (iv, ct, tag []byte, ok bool) {
	if len(w) < 2 || w[0] != wrapVersion {
		return nil, nil, nil, false
	}
	n := int(w[1])
	if n < 12 || n > 64 || len(w) != 2+n+keys.DataKeySize+tagSize {
		return nil, nil, nil, false
	}
	return w[2 : 2+n], w[2+n : 2+n+keys.DataKeySize], w[2+n+keys.DataKeySize:], true
}

// Decrypt has the server unwrap a data key stored under keyID, which must
// be one of the configured keys.
func (p *Provider) Decrypt(ctx context.Context, wrapped []byte, keyID string) ([keys.DataKeySize]byte, error) {
	var key [keys.DataKeySize]byte
	if !p.allowed[keyID] {
		return key, &keys.UnknownKeyError{Provider: keys.KindKMIP, KeyID: keyID}
	}
	iv, ct, tag, ok := parseWrapped(wrapped)
	if !ok {
		return key, &keys.UnwrapError{Provider: keys.KindKMIP, KeyID: keyID, Err: errors.New("malformed wrapped key")}
	}
	resp, err := p.c.Call(ctx, opDecrypt, "Decrypt",
		ttlv.Text(tagUniqueIdentifier, keyID),
		cryptoParams(),
		ttlv.Bytes(tagData, ct),
		ttlv.Bytes(tagIVCounterNonce, iv),
		ttlv.Bytes(tagAEADAdditional, aad(keyID)),
		ttlv.Bytes(tagAEADTag, tag))
	if err != nil {
		var re *ResultError
		if errors.As(err, &re) && re.Reason == ReasonGeneralFailure && p.healthy(ctx, keyID) {
			// Some servers (PyKMIP) answer a failed tag check with General
			// Failure instead of Cryptographic Failure. The server is up
			// and the key usable, so the wrapped key is what failed.
			return key, &keys.UnwrapError{Provider: keys.KindKMIP, KeyID: keyID, Err: err}
		}
		return key, mapError("Decrypt", keyID, err)
	}
	pt, ok := bytesOf(resp, tagData)
	if !ok || len(pt) != keys.DataKeySize {
		return key, fmt.Errorf("kmip: Decrypt returned %d bytes, want %d", len(pt), keys.DataKeySize)
	}
	copy(key[:], pt)
	clear(pt)
	return key, nil
}

// healthy reports whether the server answers for keyID and the key is
// Active (after a Decrypt failed with General Failure).
func (p *Provider) healthy(ctx context.Context, keyID string) bool {
	resp, err := p.c.Call(ctx, opGetAttributes, "GetAttributes",
		ttlv.Text(tagUniqueIdentifier, keyID),
		ttlv.Text(tagAttributeName, "State"))
	if err != nil {
		return false
	}
	state, ok := stateOf(resp)
	return ok && state == stateActive
}

// Rewrap unwraps with the stored key and wraps under the active one.
func (p *Provider) Rewrap(ctx context.Context, wrapped []byte, keyID string) (keys.WrappedKey, error) {
	return keys.UnwrapAndWrap(ctx, p, wrapped, keyID)
}

// Check asks the server for the State of every configured key, so that a
// wrong certificate, an unreachable server, an unknown or inaccessible key
// or an active key that cannot encrypt shows when s3seal starts rather than
// at the first request. Read-only keys may be in any state that still
// decrypts (Active or Deactivated); the active key must be Active.
func (p *Provider) Check(ctx context.Context, keyIDs []string) error {
	for i, id := range keyIDs {
		resp, err := p.c.Call(ctx, opGetAttributes, "GetAttributes",
			ttlv.Text(tagUniqueIdentifier, id),
			ttlv.Text(tagAttributeName, "State"))
		if err != nil {
			return mapError("GetAttributes", id, err)
		}
		state, ok := stateOf(resp)
		if !ok {
			return fmt.Errorf("kmip: the server did not report the state of key %q", id)
		}
		if i == 0 && state != stateActive {
			return &keys.KeyDisabledError{Provider: keys.KindKMIP, KeyID: id, Err: fmt.Errorf("the active key is in KMIP state %s, not Active", stateName(state))}
		}
	}
	return nil
}

func stateOf(resp ttlv.Item) (uint32, bool) {
	for _, a := range resp.FindAll(tagAttribute) {
		if n, ok := textOf(a, tagAttributeName); ok && n == "State" {
			if v, ok := a.Find(tagAttributeValue); ok && v.Type == ttlv.Enumeration {
				return uint32(v.Int), true
			}
		}
	}
	return 0, false
}

func stateName(s uint32) string {
	names := []string{1: "Pre-Active", 2: "Active", 3: "Deactivated", 4: "Compromised", 5: "Destroyed", 6: "Destroyed Compromised"}
	if int(s) < len(names) && names[s] != "" {
		return names[s]
	}
	return fmt.Sprintf("%d", s)
}

func bytesOf(it ttlv.Item, tag uint32) ([]byte, bool) {
	c, ok := it.Find(tag)
	if !ok || c.Type != ttlv.ByteString {
		return nil, false
	}
	return c.Bytes, true
}

func textOf(it ttlv.Item, tag uint32) (string, bool) {
	c, ok := it.Find(tag)
	if !ok || c.Type != ttlv.TextString {
		return "", false
	}
	return string(c.Bytes), true
}

// mapError turns a client error into the errors of package keys.
func mapError(op, keyID string, err error) error {
	var re *ResultError
	if errors.As(err, &re) {
		switch re.Reason {
		case ReasonItemNotFound, ReasonObjectArchived:
			return &keys.KeyDisabledError{Provider: keys.KindKMIP, KeyID: keyID, Err: err}
		case ReasonPermissionDenied:
			// A key that is not Active is refused with Permission
			// Denied by some servers; their message says so.
			if m := strings.ToLower(re.Message); strings.Contains(m, "state") || strings.Contains(m, "deactivated") {
				return &keys.KeyDisabledError{Provider: keys.KindKMIP, KeyID: keyID, Err: err}
			}
			return &keys.AccessDeniedError{Provider: keys.KindKMIP, KeyID: keyID, Operation: op, Err: err}
		case ReasonAuthenticationFailed:
			return &keys.AccessDeniedError{Provider: keys.KindKMIP, KeyID: keyID, Operation: op, Err: err}
		case ReasonCryptographicFailure:
			if op == "Decrypt" {
				return &keys.UnwrapError{Provider: keys.KindKMIP, KeyID: keyID, Err: err}
			}
		case ReasonGeneralFailure:
			return &keys.UnavailableError{Provider: keys.KindKMIP, Operation: op, Err: err}
		}
		return fmt.Errorf("kmip: %s with key %q: %w", op, keyID, err)
	}
	var te *TransportError
	if errors.As(err, &te) {
		if isTLSAlert(err) {
			return &keys.AccessDeniedError{Provider: keys.KindKMIP, KeyID: keyID, Operation: op,
				Err: fmt.Errorf("the KMIP server refused the TLS connection (%w): check kmip.client_cert and kmip.client_key, and that the server trusts their CA", err)}
		}
		var verify *tls.CertificateVerificationError
		var unknown x509.UnknownAuthorityError
		if errors.As(err, &verify) || errors.As(err, &unknown) {
			return fmt.Errorf("kmip: the KMIP server's certificate does not verify (check kmip.ca and kmip.server_name): %w", err)
		}
		return &keys.UnavailableError{Provider: keys.KindKMIP, Operation: op, Err: err}
	}
	return fmt.Errorf("kmip: %s with key %q: %w", op, keyID, err)
}
