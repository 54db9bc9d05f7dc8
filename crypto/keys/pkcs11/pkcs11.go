// Package pkcs11 is s3seal's PKCS#11 key provider: data keys are wrapped
// with AES-GCM inside a hardware security module (or any PKCS#11 token)
// under master keys that never leave it.
//
// # Mechanism
//
// A data key is 32 bytes from s3seal's own random source. It is wrapped by
// C_Encrypt with CKM_AES_GCM (12-byte random IV, 128-bit tag) under the
// active master key, with additional data "s3seal" 0x01 "pkcs11-wrap" 0x01
// || the key's label; C_Decrypt unwraps and checks the tag inside the
// token. The wrapped form (FORMAT.md §3.4) is
//
//	0x01 || IV (12) || ciphertext (32) || tag (16)        (61 bytes)
//
// Master keys are CKO_SECRET_KEY objects of type CKK_AES, found by
// CKA_LABEL (exactly one per label); the stored key id is the label. The
// first configured label wraps new data keys (its key needs CKA_ENCRYPT),
// all of them unwrap (CKA_DECRYPT). The master keys may be, and should be,
// CKA_SENSITIVE and not CKA_EXTRACTABLE: the provider never reads them.
//
// # Sessions
//
// PKCS#11 sessions are used by one goroutine at a time, so the provider
// keeps a pool of sessions (Settings.Sessions, opened as needed) and a call
// waits for a free one. The user logs in once (a login covers every
// session of the application). If the token is reset or removed, its
// sessions become invalid: the provider then discards every session,
// finds the keys again, logs in again on a new session and repeats the
// call once. A key handle that is no longer valid (tokens drop them when
// every session of the application closed) only makes it find the keys
// again.
//
// # The module
//
// Talking to a vendor's PKCS#11 library needs cgo, so the module is loaded
// only in builds with the pkcs11 tag and cgo (the "HSM build"); in the
// default static build, Open returns an error that says so. Everything
// else in this package is plain Go and is tested against a fake token.
package pkcs11

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/s3seal/s3seal/crypto/keys"
)

const (
	wrapVersion = 0x01
	ivSize      = 12
	tagSize     = 16
	// WrappedSize is the size of a wrapped data key.
	WrappedSize = 1 + ivSize + keys.DataKeySize + tagSize
	labelWrap   = "s3seal\x01pkcs11-wrap"
)

// PKCS#11 return values the provider tells apart.
const (
	ckrGeneralError          = 0x05
	ckrFunctionFailed        = 0x06
	ckrDeviceError           = 0x30
	ckrDeviceMemory          = 0x31
	ckrDeviceRemoved         = 0x32
	ckrEncryptedDataInvalid  = 0x40
	ckrEncryptedDataLenRange = 0x41
	ckrKeyHandleInvalid      = 0x60
	ckrKeyFunctionNotAllowed = 0x68
	ckrObjectHandleInvalid   = 0x82
	ckrPinIncorrect          = 0xA0
	ckrPinExpired            = 0xA3
	ckrPinLocked             = 0xA4
	ckrSessionClosed         = 0xB0
	ckrSessionHandleInvalid  = 0xB3
	ckrTokenNotPresent       = 0xE0
	ckrTokenNotRecognized    = 0xE1
	ckrUserAlreadyLoggedIn   = 0x100
	ckrUserNotLoggedIn       = 0x101
	ckrCryptokiNotInit       = 0x190
)

// Error is a PKCS#11 function that returned an error (CKR_*).
type Error struct {
	Func string
	Code uint
}

func (e *Error) Error() string { return fmt.Sprintf("pkcs11: %s: %s", e.Func, ckrName(e.Code)) }

func ckrName(c uint) string {
	names := map[uint]string{
		ckrGeneralError: "CKR_GENERAL_ERROR", ckrFunctionFailed: "CKR_FUNCTION_FAILED", ckrDeviceError: "CKR_DEVICE_ERROR",
		ckrDeviceMemory: "CKR_DEVICE_MEMORY", ckrDeviceRemoved: "CKR_DEVICE_REMOVED", ckrEncryptedDataInvalid: "CKR_ENCRYPTED_DATA_INVALID",
		ckrEncryptedDataLenRange: "CKR_ENCRYPTED_DATA_LEN_RANGE", ckrKeyHandleInvalid: "CKR_KEY_HANDLE_INVALID",
		ckrKeyFunctionNotAllowed: "CKR_KEY_FUNCTION_NOT_PERMITTED", ckrObjectHandleInvalid: "CKR_OBJECT_HANDLE_INVALID",
		ckrPinIncorrect: "CKR_PIN_INCORRECT", ckrPinExpired: "CKR_PIN_EXPIRED", ckrPinLocked: "CKR_PIN_LOCKED",
		ckrSessionClosed: "CKR_SESSION_CLOSED", ckrSessionHandleInvalid: "CKR_SESSION_HANDLE_INVALID",
		ckrTokenNotPresent: "CKR_TOKEN_NOT_PRESENT", ckrTokenNotRecognized: "CKR_TOKEN_NOT_RECOGNIZED",
		ckrUserAlreadyLoggedIn: "CKR_USER_ALREADY_LOGGED_IN", ckrUserNotLoggedIn: "CKR_USER_NOT_LOGGED_IN",
		ckrCryptokiNotInit: "CKR_CRYPTOKI_NOT_INITIALIZED",
	}
	if n, ok := names[c]; ok {
		return n
	}
	return fmt.Sprintf("CKR %#x", c)
}

func code(err error) (uint, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Code, true
	}
	return 0, false
}

// reset reports an error after which the session, and probably every
// session and the login, is gone: the token was reset or removed.
func reset(err error) bool {
	c, _ := code(err)
	switch c {
	case ckrSessionClosed, ckrSessionHandleInvalid, ckrUserNotLoggedIn, ckrDeviceRemoved, ckrTokenNotPresent,
		ckrTokenNotRecognized, ckrDeviceError, ckrCryptokiNotInit:
		return true
	}
	return false
}

// staleHandle reports an error after which the keys must be found again
// (their handles are no longer valid, as after the token closed every
// session) but the session itself is fine.
func staleHandle(err error) bool {
	c, _ := code(err)
	return c == ckrKeyHandleInvalid || c == ckrObjectHandleInvalid
}

// Object is a token object handle.
type Object uint

// Session is one PKCS#11 session. The provider uses a Session from one
// goroutine at a time.
type Session interface {
	// Login logs the user in with pin (CKR_USER_ALREADY_LOGGED_IN is
	// success).
	Login(pin []byte) error
	// FindKeys returns the handles of the secret keys labelled label.
	FindKeys(label string) ([]Object, error)
	// KeyInfo returns whether key is an AES key and may encrypt and
	// decrypt.
	KeyInfo(key Object) (aes, encrypt, decrypt bool, err error)
	// EncryptGCM and DecryptGCM run C_Encrypt and C_Decrypt with
	// CKM_AES_GCM and a 128-bit tag; the ciphertext includes the tag.
	// EncryptGCM returns the IV used, which a token that makes its own IVs
	// may have replaced.
	EncryptGCM(key Object, iv, aad, plaintext []byte) (ivUsed, ciphertext []byte, err error)
	DecryptGCM(key Object, iv, aad, ciphertext []byte) ([]byte, error)
	Close() error
}

// Token opens sessions on one token of a loaded module.
type Token interface {
	OpenSession() (Session, error)
	// Close finalizes the module.
	Close() error
}

// Config configures a Provider.
type Config struct {
	// Labels are the CKA_LABELs of the master keys, the active one first.
	// Required.
	Labels []string
	// PIN is the user PIN. The provider keeps a copy for logging in
	// again after a token reset, and zeroes it in Close.
	PIN []byte
	// Sessions bounds the sessions open at once. Default 8.
	Sessions int
	// Rand is the source of data keys and IVs. nil means crypto/rand.
	Rand io.Reader
}

// Provider is a keys.Provider backed by a PKCS#11 token. It is safe for
// concurrent use.
type Provider struct {
	tok     Token
	active  string
	allowed map[string]bool
	labels  []string
	rand    io.Reader

	// pool holds Sessions slots: an idle session, or nil for a slot
	// with no session open.
	pool chan *session

	// mu protects gen, handles and pin. gen counts token resets; a
	// session of an older generation is discarded.
	mu      sync.Mutex
	gen     uint64
	handles map[string]Object
	pin     []byte
	closed  bool
}

type session struct {
	s   Session
	gen uint64
}

var (
	_ keys.Provider = (*Provider)(nil)
	_ keys.Wrapper  = (*Provider)(nil)
)

// New returns a Provider on tok: it opens a session, logs in, and finds
// and checks every key, so that a wrong PIN, a missing key or a key
// without the needed permissions shows at once.
func New(tok Token, cfg Config) (*Provider, error) {
	if len(cfg.Labels) == 0 {
		return nil, errors.New("pkcs11: no key label configured")
	}
	n := cfg.Sessions
	if n <= 0 {
		n = 8
	}
	p := &Provider{tok: tok, active: cfg.Labels[0], allowed: map[string]bool{}, labels: append([]string(nil), cfg.Labels...),
		rand: cfg.Rand, pool: make(chan *session, n), pin: append([]byte(nil), cfg.PIN...)}
	if p.rand == nil {
		p.rand = rand.Reader
	}
	for _, l := range cfg.Labels {
		if err := keys.CheckKeyID(l); err != nil {
			return nil, fmt.Errorf("pkcs11: key label: %w", err)
		}
		p.allowed[l] = true
	}
	for i := 0; i < n; i++ {
		p.pool <- nil
	}
	s, err := p.acquire(context.Background())
	if err != nil {
		p.Close()
		return nil, err
	}
	if err := p.findKeys(s); err != nil {
		p.release(s, err)
		p.Close()
		return nil, err
	}
	p.release(s, nil)
	return p, nil
}

// Name returns "pkcs11".
func (p *Provider) Name() string { return keys.KindPKCS11 }

// Close closes the sessions, finalizes the module and zeroes the PIN.
func (p *Provider) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	clear(p.pin)
	p.mu.Unlock()
	for i := 0; i < cap(p.pool); i++ {
		if s := <-p.pool; s != nil {
			s.s.Close()
		}
	}
	return p.tok.Close()
}

// acquire returns a logged-in session of the current generation.
func (p *Provider) acquire(ctx context.Context) (*session, error) {
	var s *session
	select {
	case s = <-p.pool:
	case <-ctx.Done():
		return nil, &keys.UnavailableError{Provider: keys.KindPKCS11, Operation: "session", Err: fmt.Errorf("waiting for a free PKCS#11 session: %w", ctx.Err())}
	}
	p.mu.Lock()
	gen, closed := p.gen, p.closed
	p.mu.Unlock()
	if closed {
		p.pool <- s
		return nil, errors.New("pkcs11: provider closed")
	}
	if s != nil && s.gen == gen {
		return s, nil
	}
	if s != nil {
		s.s.Close()
	}
	ns, err := p.tok.OpenSession()
	if err != nil {
		p.pool <- nil
		return nil, mapError("C_OpenSession", p.active, err)
	}
	p.mu.Lock()
	err = ns.Login(p.pin)
	p.mu.Unlock()
	if err != nil {
		ns.Close()
		p.pool <- nil
		return nil, mapError("C_Login", p.active, err)
	}
	return &session{s: ns, gen: gen}, nil
}

// release returns s to the pool; after an error that means the token was
// reset, it starts a new generation and drops s.
func (p *Provider) release(s *session, err error) {
	if err != nil && staleHandle(err) {
		p.mu.Lock()
		if s.gen == p.gen {
			p.handles = nil
		}
		p.mu.Unlock()
	}
	if err != nil && reset(err) {
		p.mu.Lock()
		if s.gen == p.gen {
			p.gen++
			p.handles = nil
		}
		p.mu.Unlock()
		s.s.Close()
		p.pool <- nil
		return
	}
	p.pool <- s
}

// findKeys looks every label up and checks its key, and keeps the
// handles if s is of the current generation.
func (p *Provider) findKeys(s *session) error {
	_, err := p.lookupKeys(s)
	return err
}

// lookupKeys is findKeys returning the handles it found.
func (p *Provider) lookupKeys(s *session) (map[string]Object, error) {
	handles := map[string]Object{}
	for i, l := range p.labels {
		objs, err := s.s.FindKeys(l)
		if err != nil {
			return nil, mapError("C_FindObjects", l, err)
		}
		switch len(objs) {
		case 0:
			return nil, &keys.KeyDisabledError{Provider: keys.KindPKCS11, KeyID: l, Err: errors.New("no secret key with this label on the token")}
		case 1:
		default:
			return nil, fmt.Errorf("pkcs11: %d secret keys carry the label %q; labels must be unique", len(objs), l)
		}
		isAES, enc, dec, err := s.s.KeyInfo(objs[0])
		if err != nil {
			return nil, mapError("C_GetAttributeValue", l, err)
		}
		switch {
		case !isAES:
			return nil, fmt.Errorf("pkcs11: key %q is not an AES key", l)
		case i == 0 && !enc:
			return nil, &keys.AccessDeniedError{Provider: keys.KindPKCS11, KeyID: l, Operation: "C_Encrypt", Err: errors.New("the active key does not allow encryption (CKA_ENCRYPT is false)")}
		case !dec:
			return nil, &keys.AccessDeniedError{Provider: keys.KindPKCS11, KeyID: l, Operation: "C_Decrypt", Err: errors.New("the key does not allow decryption (CKA_DECRYPT is false)")}
		}
		handles[l] = objs[0]
	}
	p.mu.Lock()
	if s.gen == p.gen {
		p.handles = handles
	}
	p.mu.Unlock()
	return handles, nil
}

// handle returns the key handle of label for session s, finding the keys
// again after a reset.
func (p *Provider) handle(s *session, label string) (Object, error) {
	p.mu.Lock()
	h, ok := p.handles[label]
	fresh := s.gen == p.gen && p.handles != nil
	p.mu.Unlock()
	if ok && fresh {
		return h, nil
	}
	handles, err := p.lookupKeys(s)
	if err != nil {
		return 0, err
	}
	return handles[label], nil
}

// do runs f on a session with the key labelled label, once more on a new
// session if the token was reset meanwhile.
func (p *Provider) do(ctx context.Context, op, label string, f func(s Session, key Object) error) error {
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var s *session
		s, err = p.acquire(ctx)
		if err != nil {
			return err
		}
		var key Object
		key, err = p.handle(s, label)
		if err == nil {
			err = f(s.s, key)
		}
		p.release(s, err)
		if err == nil || !reset(err) && !staleHandle(err) {
			break
		}
	}
	if err != nil {
		if _, ok := code(err); ok {
			return mapError(op, label, err)
		}
	}
	return err
}

func aad(label string) []byte { return append([]byte(labelWrap+"\x01"), label...) }

// GenerateDataKey draws a data key and wraps it under the active key.
func (p *Provider) GenerateDataKey(ctx context.Context) (keys.DataKey, error) {
	return keys.GenerateAndWrap(ctx, p.rand, p.Wrap)
}

// Wrap wraps key under the active key inside the token.
func (p *Provider) Wrap(ctx context.Context, key *[keys.DataKeySize]byte) (keys.WrappedKey, error) {
	iv := make([]byte, ivSize)
	if _, err := io.ReadFull(p.rand, iv); err != nil {
		return keys.WrappedKey{}, fmt.Errorf("pkcs11: reading randomness: %w", err)
	}
	var ct, used []byte
	err := p.do(ctx, "C_Encrypt", p.active, func(s Session, k Object) error {
		var err error
		used, ct, err = s.EncryptGCM(k, iv, aad(p.active), key[:])
		return err
	})
	if err != nil {
		return keys.WrappedKey{}, err
	}
	if len(ct) != keys.DataKeySize+tagSize {
		return keys.WrappedKey{}, fmt.Errorf("pkcs11: C_Encrypt returned %d bytes, want %d", len(ct), keys.DataKeySize+tagSize)
	}
	if len(used) != ivSize {
		return keys.WrappedKey{}, fmt.Errorf("pkcs11: the token used a %d-byte GCM IV, want %d", len(used), ivSize)
	}
	iv = used
	out := make([]byte, 0, WrappedSize)
	out = append(append(append(out, wrapVersion), iv...), ct...)
	return keys.WrappedKey{KeyID: p.active, Ciphertext: out}, nil
}

// Decrypt unwraps a data key stored under label keyID inside the token.
func (p *Provider) Decrypt(ctx context.Context, wrapped []byte, keyID string) ([keys.DataKeySize]byte, error) {
	var key [keys.DataKeySize]byte
	if !p.allowed[keyID] {
		return key, &keys.UnknownKeyError{Provider: keys.KindPKCS11, KeyID: keyID}
	}
	if len(wrapped) != WrappedSize || wrapped[0] != wrapVersion {
		return key, &keys.UnwrapError{Provider: keys.KindPKCS11, KeyID: keyID, Err: errors.New("malformed wrapped key")}
	}
	var pt []byte
	err := p.do(ctx, "C_Decrypt", keyID, func(s Session, k Object) error {
		var err error
		pt, err = s.DecryptGCM(k, wrapped[1:1+ivSize], aad(keyID), wrapped[1+ivSize:])
		return err
	})
	if err != nil {
		return key, err
	}
	defer clear(pt)
	if len(pt) != keys.DataKeySize {
		return key, fmt.Errorf("pkcs11: C_Decrypt returned %d bytes, want %d", len(pt), keys.DataKeySize)
	}
	copy(key[:], pt)
	return key, nil
}

// Rewrap unwraps with the stored key and wraps under the active one; the
// plaintext passes through s3seal's memory (PKCS#11 has no re-encrypt).
func (p *Provider) Rewrap(ctx context.Context, wrapped []byte, keyID string) (keys.WrappedKey, error) {
	return keys.UnwrapAndWrap(ctx, p, wrapped, keyID)
}

// mapError turns a PKCS#11 error into the errors of package keys.
func mapError(op, label string, err error) error {
	c, ok := code(err)
	if !ok {
		return err
	}
	switch c {
	case ckrPinIncorrect, ckrPinExpired, ckrPinLocked:
		return &keys.AccessDeniedError{Provider: keys.KindPKCS11, KeyID: label, Operation: "C_Login",
			Err: fmt.Errorf("the token refused the PIN (%s): check pkcs11.pin_file or pkcs11.pin_env", ckrName(c))}
	case ckrKeyFunctionNotAllowed:
		return &keys.AccessDeniedError{Provider: keys.KindPKCS11, KeyID: label, Operation: op, Err: err}
	case ckrEncryptedDataInvalid, ckrEncryptedDataLenRange:
		return &keys.UnwrapError{Provider: keys.KindPKCS11, KeyID: label, Err: err}
	case ckrGeneralError, ckrFunctionFailed:
		// Tokens report a GCM tag mismatch with these too.
		if op == "C_Decrypt" {
			return &keys.UnwrapError{Provider: keys.KindPKCS11, KeyID: label, Err: err}
		}
	}
	if reset(err) || staleHandle(err) || c == ckrDeviceMemory {
		return &keys.UnavailableError{Provider: keys.KindPKCS11, Operation: op, Err: err}
	}
	return fmt.Errorf("pkcs11: %s with key %q: %w", op, label, err)
}
