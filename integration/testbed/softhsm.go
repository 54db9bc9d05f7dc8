package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// SoftHSMModule is where Debian's softhsm2 package puts the module.
const SoftHSMModule = "/usr/lib/softhsm/libsofthsm2.so"

// SoftHSM is a SoftHSM2 token initialised in a fresh directory: a
// configuration file (SOFTHSM2_CONF) naming a token directory under the
// test's TempDir, one token with a random user PIN, and AES keys made
// with pkcs11-tool (OpenSC) as sensitive, never-extractable token objects.
// SoftHSM2 is a library, not a server: a process that loads the module
// with Env in its environment sees the token.
type SoftHSM struct {
	Dir        string
	Conf       string // the SOFTHSM2_CONF file
	Module     string
	TokenLabel string
	PIN        string
	// PinFile holds PIN, mode 0600.
	PinFile string
}

// NewSoftHSM initialises a token labelled "s3seal" and sets SOFTHSM2_CONF
// for the test process (t.Setenv), so that modules loaded in it see the
// token.
func NewSoftHSM(t testing.TB) *SoftHSM {
	t.Helper()
	for _, tool := range []string{"softhsm2-util", "pkcs11-tool"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("testbed: %s not found (apt-get install softhsm2 opensc); %s", tool, installHint)
		}
	}
	if _, err := os.Stat(SoftHSMModule); err != nil {
		t.Fatalf("testbed: %v (apt-get install softhsm2); %s", err, installHint)
	}
	h := &SoftHSM{Dir: t.TempDir(), Module: SoftHSMModule, TokenLabel: "s3seal", PIN: randomString(12, "0123456789")}
	tokens := filepath.Join(h.Dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	h.Conf = filepath.Join(h.Dir, "softhsm2.conf")
	writeFile(t, h.Conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600)
	h.PinFile = filepath.Join(h.Dir, "pin")
	writeFile(t, h.PinFile, []byte(h.PIN+"\n"), 0o600)
	t.Setenv("SOFTHSM2_CONF", h.Conf)
	h.run(t, "softhsm2-util", "--init-token", "--free", "--label", h.TokenLabel, "--so-pin", randomString(12, "0123456789"), "--pin", h.PIN)
	return h
}

// Env is the environment a process needs to see the token.
func (h *SoftHSM) Env() []string { return []string{"SOFTHSM2_CONF=" + h.Conf} }

func (h *SoftHSM) run(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), h.Env()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("testbed: %s: %v\n%s", name, err, strings.ReplaceAll(string(out), h.PIN, "[REDACTED]"))
	}
	return string(out)
}

// CreateKey makes an AES-256 key labelled label on the token: sensitive,
// never extractable, usable to encrypt and decrypt.
func (h *SoftHSM) CreateKey(t testing.TB, label string) {
	t.Helper()
	h.run(t, "pkcs11-tool", "--module", h.Module, "--token-label", h.TokenLabel, "--login", "--pin", h.PIN,
		"--keygen", "--key-type", "AES:32", "--label", label, "--sensitive")
}

// Spy is the p11spy module (integration/testbed/p11spy) in front of a
// token's module: it counts the calls that reach the token and can make
// it look removed or reset.
type Spy struct {
	// Module is the spy's path, to configure instead of the real module.
	Module string
	// Dir is its control directory.
	Dir  string
	real string
}

// NewSpy builds p11spy with the C compiler (the PKCS#11 headers come
// from the github.com/miekg/pkcs11 module) in front of h's module.
func (h *SoftHSM) NewSpy(t testing.TB) *Spy {
	t.Helper()
	src, err := filepath.Abs(filepath.Join(testbedDir(t), "p11spy", "p11spy.c"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/miekg/pkcs11").Output()
	if err != nil {
		t.Fatalf("testbed: locating the PKCS#11 headers: %v", err)
	}
	s := &Spy{Dir: t.TempDir(), real: h.Module}
	s.Module = filepath.Join(s.Dir, "libp11spy.so")
	cc := exec.Command("cc", "-shared", "-fPIC", "-O2", "-Wall", "-o", s.Module, src, "-I", strings.TrimSpace(string(out)), "-ldl")
	if b, err := cc.CombinedOutput(); err != nil {
		t.Fatalf("testbed: building p11spy: %v\n%s", err, b)
	}
	t.Setenv("P11SPY_MODULE", h.Module)
	t.Setenv("P11SPY_DIR", s.Dir)
	return s
}

// Env is the environment a process loading the spy needs (with the
// token's Env).
func (s *Spy) Env() []string { return []string{"P11SPY_MODULE=" + s.real, "P11SPY_DIR=" + s.Dir} }

// Counts returns the calls counted so far by every process that loaded
// the spy: C_Encrypt and C_Decrypt that reached the token, successful
// C_Login, C_OpenSession, and calls refused while the token was down
// ("removed").
func (s *Spy) Counts(t testing.TB) map[string]int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.Dir, "calls"))
	if os.IsNotExist(err) {
		return map[string]int{}
	}
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" {
			m[l]++
		}
	}
	return m
}

// SetDown makes the token look removed (every call fails with
// CKR_DEVICE_REMOVED) or present again.
func (s *Spy) SetDown(t testing.TB, down bool) {
	t.Helper()
	p := filepath.Join(s.Dir, "down")
	if down {
		writeFile(t, p, nil, 0o600)
	} else if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}

// Reset makes the next call close every session of the token first, as a
// token reset does (the user is logged out).
func (s *Spy) Reset(t testing.TB) { writeFile(t, filepath.Join(s.Dir, "reset"), nil, 0o600) }

// String describes the spy for logs.
func (s *Spy) String() string { return fmt.Sprintf("p11spy(%s)", s.real) }

// testbedDir returns this package's source directory.
func testbedDir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testbed: cannot locate the test bed's sources")
	}
	return filepath.Dir(file)
}
