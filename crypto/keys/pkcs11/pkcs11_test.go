package pkcs11

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/keystest"
)

// fakeToken is an in-memory token: AES keys by label, one PIN, sessions
// that a reset invalidates, and checks that no session is used by two
// goroutines at once.
type fakeToken struct {
	mu       sync.Mutex
	pin      string
	keys     map[string][]byte // label → key
	noEnc    map[string]bool
	dup      map[string]bool
	gen      int  // bumped by reset: older sessions are invalid
	loggedIn bool // for the current generation
	removed  bool

	open, maxOpen, logins, encrypts, decrypts atomic.Int64
	misuse                                    atomic.Bool
}

func newFakeToken(labels ...string) *fakeToken {
	t := &fakeToken{pin: "1234", keys: map[string][]byte{}, noEnc: map[string]bool{}, dup: map[string]bool{}}
	for _, l := range labels {
		k := make([]byte, 32)
		rand.Read(k)
		t.keys[l] = k
	}
	return t
}

// reset simulates a token reset: every session and the login are gone.
func (t *fakeToken) reset() {
	t.mu.Lock()
	t.gen++
	t.loggedIn = false
	t.mu.Unlock()
}

func (t *fakeToken) setRemoved(v bool) {
	t.mu.Lock()
	t.removed = v
	t.gen++
	t.loggedIn = false
	t.mu.Unlock()
}

func (t *fakeToken) OpenSession() (Session, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.removed {
		return nil, &Error{"C_OpenSession", ckrTokenNotPresent}
	}
	n := t.open.Add(1)
	for {
		m := t.maxOpen.Load()
		if n <= m || t.maxOpen.CompareAndSwap(m, n) {
			break
		}
	}
	return &fakeSession{t: t, gen: t.gen}, nil
}

func (t *fakeToken) Close() error { return nil }

type fakeSession struct {
	t     *fakeToken
	gen   int
	inUse atomic.Bool
}

func (s *fakeSession) enter() func() {
	if !s.inUse.CompareAndSwap(false, true) {
		s.t.misuse.Store(true)
	}
	return func() { s.inUse.Store(false) }
}

// check returns the error of a session that a reset invalidated.
func (s *fakeSession) check(needLogin bool) error {
	if s.t.removed {
		return &Error{"C_Encrypt", ckrDeviceRemoved}
	}
	if s.gen != s.t.gen {
		return &Error{"C_EncryptInit", ckrSessionHandleInvalid}
	}
	if needLogin && !s.t.loggedIn {
		return &Error{"C_EncryptInit", ckrUserNotLoggedIn}
	}
	return nil
}

func (s *fakeSession) Login(pin []byte) error {
	defer s.enter()()
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	if err := s.check(false); err != nil {
		return err
	}
	if s.t.loggedIn {
		return nil // CKR_USER_ALREADY_LOGGED_IN, which the module reports as success
	}
	if string(pin) != s.t.pin {
		return &Error{"C_Login", ckrPinIncorrect}
	}
	s.t.logins.Add(1)
	s.t.loggedIn = true
	return nil
}

func (s *fakeSession) FindKeys(label string) ([]Object, error) {
	defer s.enter()()
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	if err := s.check(true); err != nil {
		return nil, err
	}
	if _, ok := s.t.keys[label]; !ok {
		return nil, nil
	}
	h := Object(len(label) + 100*s.t.gen)
	if s.t.dup[label] {
		return []Object{h, h + 1}, nil
	}
	return []Object{h}, nil
}

func (s *fakeSession) KeyInfo(Object) (bool, bool, bool, error) { return true, true, true, nil }

func (s *fakeSession) key(label string) cipher.AEAD {
	b, _ := aes.NewCipher(s.t.keys[label])
	g, _ := cipher.NewGCM(b)
	return g
}

// labelFor maps a handle back to its label (handles are label lengths
// here, so the test labels have distinct lengths).
func (s *fakeSession) labelFor(o Object) string {
	for l := range s.t.keys {
		if Object(len(l)+100*s.t.gen) == o {
			return l
		}
	}
	return ""
}

func (s *fakeSession) EncryptGCM(o Object, iv, aad, pt []byte) ([]byte, []byte, error) {
	defer s.enter()()
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	if err := s.check(true); err != nil {
		return nil, nil, err
	}
	l := s.labelFor(o)
	if l == "" {
		return nil, nil, &Error{"C_EncryptInit", ckrKeyHandleInvalid}
	}
	if s.t.noEnc[l] {
		return nil, nil, &Error{"C_EncryptInit", ckrKeyFunctionNotAllowed}
	}
	s.t.encrypts.Add(1)
	return iv, s.key(l).Seal(nil, iv, pt, aad), nil
}

func (s *fakeSession) DecryptGCM(o Object, iv, aad, ct []byte) ([]byte, error) {
	defer s.enter()()
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	if err := s.check(true); err != nil {
		return nil, err
	}
	l := s.labelFor(o)
	if l == "" {
		return nil, &Error{"C_DecryptInit", ckrKeyHandleInvalid}
	}
	s.t.decrypts.Add(1)
	pt, err := s.key(l).Open(nil, iv, ct, aad)
	if err != nil {
		return nil, &Error{"C_Decrypt", ckrEncryptedDataInvalid}
	}
	return pt, nil
}

func (s *fakeSession) Close() error {
	s.t.open.Add(-1)
	return nil
}

var ctx = context.Background()

func TestRoundTripAndRotation(t *testing.T) {
	tok := newFakeToken("new-key", "old")
	p, err := New(tok, Config{Labels: []string{"old"}, PIN: []byte("1234")})
	if err != nil {
		t.Fatal(err)
	}
	rot, err := New(tok, Config{Labels: []string{"new-key", "old"}, PIN: []byte("1234")})
	if err != nil {
		t.Fatal(err)
	}
	dk := keystest.CheckRoundTrips(t, p, rot)
	if dk.KeyID != "old" || len(dk.Ciphertext) != WrappedSize {
		t.Fatalf("%+v", dk.WrappedKey)
	}
}

func TestAdversarial(t *testing.T) {
	tok := newFakeToken("aaaa", "bbbbbb", "cccccccc")
	p, err := New(tok, Config{Labels: []string{"aaaa", "bbbbbb"}, PIN: []byte("1234")})
	if err != nil {
		t.Fatal(err)
	}
	dk, _ := p.GenerateDataKey(ctx)
	var unwrap *keys.UnwrapError
	before := tok.decrypts.Load()
	for _, bad := range [][]byte{nil, dk.Ciphertext[:WrappedSize-1], append(append([]byte(nil), dk.Ciphertext...), 1)} {
		if _, err := p.Decrypt(ctx, bad, dk.KeyID); !errors.As(err, &unwrap) {
			t.Fatalf("malformed: %v", err)
		}
	}
	if tok.decrypts.Load() != before {
		t.Fatal("malformed wrapped keys reached the token")
	}
	// The other configured key: its GCM tag fails (and the label is in
	// the additional data).
	if _, err := p.Decrypt(ctx, dk.Ciphertext, "bbbbbb"); !errors.As(err, &unwrap) {
		t.Fatalf("wrong key: %v", err)
	}
	var unknown *keys.UnknownKeyError
	before = tok.decrypts.Load()
	if _, err := p.Decrypt(ctx, dk.Ciphertext, "cccccccc"); !errors.As(err, &unknown) || tok.decrypts.Load() != before {
		t.Fatalf("key outside the allow-list: %v", err)
	}
}

func TestStartupRefusals(t *testing.T) {
	tok := newFakeToken("k1", "dup")
	var denied *keys.AccessDeniedError
	if _, err := New(tok, Config{Labels: []string{"k1"}, PIN: []byte("0000")}); !errors.As(err, &denied) || !strings.Contains(err.Error(), "refused the PIN") || strings.Contains(err.Error(), "0000") {
		t.Fatalf("wrong PIN: %v", err)
	}
	if _, err := New(tok, Config{Labels: []string{"k1", "missing"}, PIN: []byte("1234")}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing key: %v", err)
	}
	tok.dup["dup"] = true
	if _, err := New(tok, Config{Labels: []string{"dup"}, PIN: []byte("1234")}); err == nil || !strings.Contains(err.Error(), "unique") {
		t.Fatalf("duplicate label: %v", err)
	}
	if _, err := New(tok, Config{Labels: []string{"has space"}, PIN: []byte("1234")}); err == nil {
		t.Fatal("unstorable label accepted")
	}
	tok.setRemoved(true)
	var unavail *keys.UnavailableError
	if _, err := New(tok, Config{Labels: []string{"k1"}, PIN: []byte("1234")}); !errors.As(err, &unavail) {
		t.Fatalf("removed token: %v", err)
	}
}

func TestReloginAfterReset(t *testing.T) {
	tok := newFakeToken("k1")
	p, err := New(tok, Config{Labels: []string{"k1"}, PIN: []byte("1234"), Sessions: 2})
	if err != nil {
		t.Fatal(err)
	}
	dk, _ := p.GenerateDataKey(ctx)
	if tok.logins.Load() != 1 {
		t.Fatalf("%d logins", tok.logins.Load())
	}
	tok.reset()
	if got, err := p.Decrypt(ctx, dk.Ciphertext, dk.KeyID); err != nil || got != dk.Plaintext {
		t.Fatalf("after a reset: %v", err)
	}
	if tok.logins.Load() != 2 {
		t.Fatalf("after a reset: %d logins, want 2", tok.logins.Load())
	}
	// Removed: unavailable; back: works again with a new login.
	tok.setRemoved(true)
	var unavail *keys.UnavailableError
	if _, err := p.GenerateDataKey(ctx); !errors.As(err, &unavail) {
		t.Fatalf("token removed: %v", err)
	}
	tok.setRemoved(false)
	if _, err := p.GenerateDataKey(ctx); err != nil {
		t.Fatalf("token back: %v", err)
	}
	if tok.logins.Load() != 3 {
		t.Fatalf("token back: %d logins, want 3", tok.logins.Load())
	}
	if tok.open.Load() > 2 {
		t.Fatalf("%d sessions open, pool of 2", tok.open.Load())
	}
	p.Close()
	if tok.open.Load() != 0 {
		t.Fatalf("Close left %d sessions open", tok.open.Load())
	}
	if p.pin[0] != 0 {
		t.Fatal("Close kept the PIN")
	}
}

func TestSessionPoolBoundsConcurrency(t *testing.T) {
	tok := newFakeToken("k1")
	p, err := New(tok, Config{Labels: []string{"k1"}, PIN: []byte("1234"), Sessions: 3})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	fail := func(err error) {
		failed.Add(1)
		firstErr.CompareAndSwap(nil, err)
	}
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				dk, err := p.GenerateDataKey(ctx)
				if err != nil {
					fail(err)
					continue
				}
				if got, err := p.Decrypt(ctx, dk.Ciphertext, dk.KeyID); err != nil || got != dk.Plaintext {
					fail(fmt.Errorf("decrypt: %v", err))
				}
				if i == 0 && j == 25 {
					tok.reset() // once, in the middle of the traffic
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d calls failed, the first with %v", failed.Load(), firstErr.Load())
	}
	if tok.misuse.Load() {
		t.Fatal("a session was used by two goroutines at once")
	}
	if m := tok.maxOpen.Load(); m > 3 {
		t.Fatalf("%d sessions open at once, pool of 3", m)
	}
	// A caller that cannot get a session in time gives up.
	hold := make([]*session, 0, 3)
	for i := 0; i < 3; i++ {
		s, err := p.acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		hold = append(hold, s)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	var unavail *keys.UnavailableError
	if _, err := p.GenerateDataKey(cctx); !errors.As(err, &unavail) {
		t.Fatalf("no free session: %v", err)
	}
	for _, s := range hold {
		p.release(s, nil)
	}
}

func TestReadPIN(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "pin")
	os.WriteFile(f, []byte("4321\n"), 0o600)
	pin, err := readPIN(Settings{PinFile: f}, nil)
	if err != nil || string(pin) != "4321" {
		t.Fatalf("%q %v", pin, err)
	}
	os.Chmod(f, 0o644)
	if _, err := readPIN(Settings{PinFile: f}, nil); err == nil || !strings.Contains(err.Error(), "chmod 600") || strings.Contains(err.Error(), "4321") {
		t.Fatalf("world-readable PIN file: %v", err)
	}
	os.Chmod(f, 0o600)
	link := filepath.Join(dir, "pin-link")
	os.Symlink(f, link)
	if _, err := readPIN(Settings{PinFile: link}, nil); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("symlinked PIN file: %v", err)
	}
	env := func(k string) (string, bool) { return map[string]string{"P": "99"}[k], k == "P" }
	if pin, err := readPIN(Settings{PinEnv: "P"}, env); err != nil || string(pin) != "99" {
		t.Fatal(err)
	}
	if _, err := readPIN(Settings{PinEnv: "Q"}, env); err == nil {
		t.Fatal("unset PIN variable accepted")
	}
	if _, err := readPIN(Settings{}, env); err == nil {
		t.Fatal("no PIN accepted")
	}
	if _, err := readPIN(Settings{PinEnv: "P", PinFile: f}, env); err == nil {
		t.Fatal("two PIN sources accepted")
	}
}

func TestOpenWithoutSupport(t *testing.T) {
	if Supported {
		t.Skip("this build loads modules; the SoftHSM tests cover Open")
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "pin")
	os.WriteFile(f, []byte("1"), 0o600)
	if _, err := Open(Settings{Module: "/x.so", TokenLabel: "t", PinFile: f}, []string{"k"}, nil); err == nil || !strings.Contains(err.Error(), "-tags pkcs11") {
		t.Fatalf("default build: %v", err)
	}
}
