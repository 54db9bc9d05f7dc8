package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// Mode selects where certificates come from.
type Mode string

const (
	// ModeSelfSigned serves a self-signed certificate kept in DataDir.
	ModeSelfSigned Mode = "self-signed"
	// ModeFiles serves a certificate and key from PEM files, reloaded on change.
	ModeFiles Mode = "files"
	// ModeACME obtains and renews certificates from an ACME CA.
	ModeACME Mode = "acme"
	// ModeOff disables TLS; the server must then listen on loopback only.
	ModeOff Mode = "off"
)

// Client authentication settings for Options.ClientAuth.
const (
	// ClientAuthRequest verifies a client certificate when one is presented.
	ClientAuthRequest = "request"
	// ClientAuthRequire refuses handshakes without a valid client certificate.
	ClientAuthRequire = "require"
)

// ACME challenge names for ACMEOptions.Challenges.
const (
	ChallengeHTTP01    = "http-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
)

// Default intervals; the zero value of the corresponding option means these.
const (
	DefaultReloadInterval = 2 * time.Second
	DefaultSyncInterval   = 10 * time.Minute
)

// Options configures a Manager. The zero value of every field means its
// documented default; New works on a copy and never modifies the caller's
// value.
type Options struct {
	// Mode selects the certificate source; "" means ModeSelfSigned.
	Mode Mode

	// DataDir is s3seal's data directory. ModeSelfSigned keeps its
	// certificate under DataDir/tls; ModeACME with a nil Storage keeps
	// certmagic's files under DataDir/certmagic. Required in those cases.
	DataDir string

	// Names are extra host names and IP addresses the self-signed
	// certificate covers besides localhost, 127.0.0.1 and ::1. In ModeFiles
	// a warning is logged for each name the certificate does not cover.
	Names []string

	// CertFile and KeyFile are the PEM certificate chain (leaf first) and
	// private key of ModeFiles.
	CertFile, KeyFile string

	// MinVersion is the lowest TLS version accepted: 0 means TLS 1.2, and
	// tls.VersionTLS13 accepts TLS 1.3 only. Lower versions are refused.
	MinVersion uint16

	// ClientCAFile, if set, is a PEM bundle of CAs whose client certificates
	// are verified (mutual TLS).
	ClientCAFile string

	// ClientAuth is "request" (verify a client certificate when one is
	// presented; the default when ClientCAFile is set) or "require" (refuse
	// handshakes without a valid one). It needs ClientCAFile.
	ClientAuth string

	// ACME configures ModeACME.
	ACME ACMEOptions

	// Storage holds ACME certificates, keys, account data and locks; nil
	// means file storage under DataDir. Replicas must share one (see
	// NewS3Storage).
	Storage certmagic.Storage

	// Logger receives all log output; required.
	Logger *zap.Logger

	// Now is the clock for certificate validity checks and self-signed
	// certificate dates; nil means time.Now. (certmagic keeps its own clock.)
	Now func() time.Time

	// ReloadInterval is how often ModeFiles polls its files and the
	// self-signed certificate is checked for expiry; 0 means 2s.
	ReloadInterval time.Duration

	// PreferHTTP2 makes the listener choose HTTP/2 when a client offers
	// both it and HTTP/1.1. By default HTTP/2 is offered but HTTP/1.1
	// preferred: S3 clients move large bodies, and Go's HTTP/2 server
	// copies every body through an extra buffer (about a fifth more CPU
	// per byte in s3seal's profiles), while S3 itself speaks HTTP/1.1.
	PreferHTTP2 bool

	// HTTPSPort is the port named in redirects from plain HTTP to HTTPS; 0
	// means 443, which is left out of the URL.
	HTTPSPort int
}

// ACMEOptions configures ModeACME.
type ACMEOptions struct {
	// Domains are the names to obtain certificates for at start. Wildcards
	// are not allowed (they need DNS-01; see the package documentation).
	Domains []string

	// Email is the ACME account contact; optional but recommended, since
	// CAs use it to warn about problems with certificates.
	Email string

	// CA is the ACME directory URL; "" means Let's Encrypt production.
	CA string

	// CARoot is a PEM bundle file of roots to trust for the ACME server
	// itself (for private CAs); when set it replaces the system roots for
	// ACME requests.
	CARoot string

	// Challenges lists the enabled challenge types, "http-01" and
	// "tls-alpn-01"; empty means both.
	Challenges []string

	// AltHTTPPort and AltTLSALPNPort are the ports s3seal's own listeners
	// use for HTTP-01 and TLS-ALPN-01 when they are not 80 and 443 (traffic
	// from the CA must still arrive there, e.g. through port forwarding).
	// When nothing listens on the port, certmagic starts a temporary
	// challenge listener on ListenHost.
	AltHTTPPort, AltTLSALPNPort int

	// ListenHost is the host of any temporary challenge listener certmagic
	// opens; "" means all interfaces.
	ListenHost string

	// Profile selects an ACME certificate profile the CA offers (such as
	// Let's Encrypt's "shortlived"); "" means the CA's default.
	Profile string

	// Lifetime asks the CA for certificates valid this long (the order's
	// notAfter); 0 means the CA's default. Private CAs such as step-ca and
	// Pebble honour it; Let's Encrypt refuses orders that set it.
	Lifetime time.Duration

	// OnDemand enables on-demand certificates: a handshake for a name
	// outside Domains obtains a certificate for it, if OnDemandAllow
	// accepts the name. OnDemandAllow is required when OnDemand is set.
	OnDemand      bool
	OnDemandAllow func(ctx context.Context, name string) error

	// RenewalWindowRatio is the fraction of a certificate's lifetime, at its
	// end, in which it is renewed; 0 means certmagic's default (1/3).
	RenewalWindowRatio float64

	// RenewCheckInterval is how often certmagic checks certificates for
	// renewal; 0 means certmagic's default (10 minutes).
	RenewCheckInterval time.Duration

	// SyncInterval is how often the served certificates are compared with
	// Storage, so that a certificate renewed by another replica is served
	// here too; 0 means 10 minutes.
	SyncInterval time.Duration
}

// Manager provides the TLS configuration of s3seal's listeners and keeps
// its certificates current. Its methods are safe for concurrent use.
type Manager struct {
	mode Mode
	o    Options
	log  *zap.Logger
	now  func() time.Time

	base *tls.Config // template for TLSConfig; never handed out itself

	// cur is the certificate of ModeSelfSigned and ModeFiles.
	cur atomic.Pointer[servedCert]
	// watch is the ModeFiles and ModeSelfSigned polling state.
	watch watchState

	acme *acmeManager // ModeACME only

	mu      sync.Mutex // protects started, closed, cancel
	started bool
	closed  bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// servedCert is an immutable certificate being served with its description.
type servedCert struct {
	cert        *tls.Certificate // Leaf is set
	fingerprint string           // hex SHA-256 of the leaf DER
	source      string           // file path the pair came from
}

// New validates o and builds a Manager. Certificate files are read and
// checked now: a file that cannot be read or parsed, an expired certificate
// or a key that does not match gives a *FileError naming the file. In
// ModeSelfSigned the certificate is created in DataDir on first use and
// reused afterwards. In ModeACME nothing is requested before Start.
func New(ctx context.Context, o Options) (*Manager, error) {
	if o.Logger == nil {
		return nil, errors.New("tlsconf: Options.Logger is required")
	}
	if o.Mode == "" {
		o.Mode = ModeSelfSigned
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ReloadInterval <= 0 {
		o.ReloadInterval = DefaultReloadInterval
	}
	o.Names = append([]string(nil), o.Names...)
	m := &Manager{mode: o.Mode, o: o, log: o.Logger.Named("tls"), now: o.Now}

	switch o.Mode {
	case ModeOff:
		m.log.Warn("TLS is off: s3seal must listen on loopback only")
		return m, nil
	case ModeSelfSigned, ModeFiles, ModeACME:
	default:
		return nil, fmt.Errorf("tlsconf: unknown mode %q (want %q, %q, %q or %q)",
			o.Mode, ModeSelfSigned, ModeFiles, ModeACME, ModeOff)
	}

	base, err := baseConfig(o)
	if err != nil {
		return nil, err
	}
	m.base = base

	switch o.Mode {
	case ModeSelfSigned:
		err = m.initSelfSigned()
	case ModeFiles:
		err = m.initFiles()
	case ModeACME:
		m.acme, err = newACME(ctx, m)
	}
	if err != nil {
		return nil, err
	}
	if o.Mode == ModeACME {
		m.base.GetCertificate = m.acme.getCertificate
		if m.acme.tlsALPN {
			m.base.NextProtos = append(m.base.NextProtos, acmeTLSALPNProto)
		}
	} else {
		m.base.GetCertificate = m.getStaticCertificate
	}
	if m.base.ClientAuth != tls.NoClientCert && m.acme != nil && m.acme.tlsALPN {
		m.base.GetConfigForClient = acmeExemptConfig(m.base)
	}
	return m, nil
}

// acmeTLSALPNProto is the ALPN protocol of the TLS-ALPN-01 challenge (RFC 8737).
const acmeTLSALPNProto = "acme-tls/1"

// modernSuites are the TLS 1.2 cipher suites s3seal accepts: ECDHE key
// exchange with AEAD ciphers only. TLS 1.3 suites are all AEAD and not
// configurable.
var modernSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// baseConfig builds the protocol policy shared by all modes.
func baseConfig(o Options) (*tls.Config, error) {
	minV := o.MinVersion
	switch minV {
	case 0:
		minV = tls.VersionTLS12
	case tls.VersionTLS12, tls.VersionTLS13:
	default:
		if minV < tls.VersionTLS12 {
			return nil, fmt.Errorf("tlsconf: MinVersion %s is not allowed: TLS 1.2 is the minimum (use 0 for TLS 1.2 or %#04x for TLS 1.3)",
				tls.VersionName(minV), tls.VersionTLS13)
		}
		return nil, fmt.Errorf("tlsconf: MinVersion %#04x is not a known TLS version (use 0 for TLS 1.2 or %#04x for TLS 1.3)",
			minV, tls.VersionTLS13)
	}
	c := &tls.Config{
		MinVersion:   minV,
		CipherSuites: append([]uint16(nil), modernSuites...),
		NextProtos:   []string{"http/1.1", "h2"},
	}
	if o.PreferHTTP2 {
		c.NextProtos = []string{"h2", "http/1.1"}
	}
	switch o.ClientAuth {
	case "", ClientAuthRequest, ClientAuthRequire:
	default:
		return nil, fmt.Errorf("tlsconf: ClientAuth %q is not valid (want %q or %q)", o.ClientAuth, ClientAuthRequest, ClientAuthRequire)
	}
	if o.ClientCAFile == "" {
		if o.ClientAuth != "" {
			return nil, fmt.Errorf("tlsconf: ClientAuth %q needs ClientCAFile, the CAs to verify client certificates with", o.ClientAuth)
		}
		return c, nil
	}
	pool, err := loadCertPool(o.ClientCAFile)
	if err != nil {
		return nil, err
	}
	c.ClientCAs = pool
	c.ClientAuth = tls.VerifyClientCertIfGiven
	if o.ClientAuth == ClientAuthRequire {
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// loadCertPool reads a PEM bundle of CA certificates.
func loadCertPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	certs, err := parseCertificates(b)
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// acmeExemptConfig returns a GetConfigForClient hook that serves ACME
// TLS-ALPN-01 validation handshakes without asking for a client
// certificate: the CA's validator has none, and with "require" its
// handshake would otherwise fail.
func acmeExemptConfig(base *tls.Config) func(*tls.ClientHelloInfo) (*tls.Config, error) {
	exempt := base.Clone()
	exempt.ClientAuth = tls.NoClientCert
	exempt.ClientCAs = nil
	exempt.GetConfigForClient = nil
	return func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmeTLSALPNProto {
			return exempt, nil
		}
		return nil, nil
	}
}

// TLSConfig returns the configuration for s3seal's TLS listeners, or nil in
// ModeOff. Each call returns a new copy that the caller may modify (for
// example to add ALPN protocols); certificates are chosen per handshake by
// its GetCertificate, so copies taken before a reload or renewal serve the
// new certificate too.
func (m *Manager) TLSConfig() *tls.Config {
	if m.base == nil {
		return nil
	}
	c := m.base.Clone()
	c.NextProtos = slices.Clone(c.NextProtos)
	c.CipherSuites = slices.Clone(c.CipherSuites)
	return c
}

// HTTPChallengeHandler wraps the handler of the plain-HTTP listener. It
// answers ACME HTTP-01 challenges (in ModeACME, including those started by
// other replicas sharing Storage), passes every other request to next, and,
// when next is nil, redirects it to the same URL over HTTPS (308, so that
// the method and body are kept). In ModeOff it returns next, or a handler
// that answers 404 when next is nil.
func (m *Manager) HTTPChallengeHandler(next http.Handler) http.Handler {
	if m.mode == ModeOff {
		if next == nil {
			return http.NotFoundHandler()
		}
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.acme != nil && m.acme.handleHTTPChallenge(w, r) {
			return
		}
		if next != nil {
			next.ServeHTTP(w, r)
			return
		}
		m.redirectToHTTPS(w, r)
	})
}

func (m *Manager) redirectToHTTPS(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "" {
		http.Error(w, "tlsconf: request has no Host; use https", http.StatusBadRequest)
		return
	}
	if net.ParseIP(host) != nil && net.ParseIP(host).To4() == nil {
		host = "[" + host + "]"
	}
	if p := m.o.HTTPSPort; p != 0 && p != 443 {
		host += ":" + strconv.Itoa(p)
	}
	w.Header().Set("Connection", "close")
	http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
}

// Start begins background work and returns without waiting for it: in
// ModeFiles, watching the files; in ModeSelfSigned, watching for expiry; in
// ModeACME, obtaining missing certificates, renewing and syncing with
// Storage. The work stops when ctx is done or Close is called. Start may be
// called once.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errors.New("tlsconf: Start after Close")
	}
	if m.started {
		return errors.New("tlsconf: Start called twice")
	}
	m.started = true
	if m.mode == ModeOff {
		return nil
	}
	runCtx, cancel := context.WithCancel(ctx)
	m.cancel = cancel
	if m.acme != nil {
		if err := m.acme.start(runCtx, &m.wg); err != nil {
			cancel()
			return err
		}
		return nil
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.watchLoop(runCtx)
	}()
	return nil
}

// Ready reports whether there is a currently valid certificate to serve for
// every configured name. It returns nil in ModeOff and, when not ready, a
// *NotReadyError that says what is missing and what to check (for ACME,
// including the CA's last error).
func (m *Manager) Ready() error {
	switch {
	case m.mode == ModeOff:
		return nil
	case m.acme != nil:
		return m.acme.ready()
	}
	sc := m.cur.Load()
	now := m.now()
	leaf := sc.cert.Leaf
	if now.After(leaf.NotAfter) {
		hint := "replace the certificate and key files; s3seal picks them up within " + m.o.ReloadInterval.String()
		if m.mode == ModeSelfSigned {
			hint = "it is regenerated automatically; check the log for errors writing " + sc.source
		}
		return &NotReadyError{Name: sc.source, Reason: "the certificate expired at " + leaf.NotAfter.UTC().Format(time.RFC3339), Hint: hint}
	}
	if now.Before(leaf.NotBefore) {
		return &NotReadyError{Name: sc.source, Reason: "the certificate is not valid before " + leaf.NotBefore.UTC().Format(time.RFC3339), Hint: "check the system clock"}
	}
	return nil
}

// NotAfter returns the expiry of the certificate being served; in ModeACME
// the earliest among the configured domains. It is the zero time when no
// certificate is served yet and in ModeOff.
func (m *Manager) NotAfter() time.Time {
	switch {
	case m.mode == ModeOff:
		return time.Time{}
	case m.acme != nil:
		return m.acme.notAfter()
	}
	return m.cur.Load().cert.Leaf.NotAfter
}

// RenewNow renews every certificate of ACMEOptions.Domains now, even if it
// is not due (for example after a key compromise or a revocation), and
// serves the new ones. Other replicas sharing Storage serve them within
// ACMEOptions.SyncInterval. It retries with backoff until ctx is done and is
// an error outside ModeACME.
func (m *Manager) RenewNow(ctx context.Context) error {
	if m.acme == nil {
		return fmt.Errorf("tlsconf: RenewNow needs mode %q (mode is %q)", ModeACME, m.mode)
	}
	return m.acme.renewNow(ctx)
}

// Close stops background work and waits for it. It does not close any
// listener. Closing twice is allowed.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	cancel := m.cancel
	m.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	m.wg.Wait()
	if m.acme != nil {
		m.acme.close()
	}
	return nil
}

// getStaticCertificate serves the ModeSelfSigned and ModeFiles certificate.
func (m *Manager) getStaticCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.cur.Load().cert, nil
}

// watchLoop polls files or checks the self-signed certificate until ctx is done.
func (m *Manager) watchLoop(ctx context.Context) {
	t := time.NewTicker(m.o.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if m.mode == ModeFiles {
				m.pollFiles()
			} else {
				m.checkSelfSigned()
			}
		}
	}
}

// FileError reports a certificate, key or CA file that cannot be used.
type FileError struct {
	Path string // the file at fault
	Err  error  // what is wrong with it
}

func (e *FileError) Error() string { return "tlsconf: " + e.Path + ": " + e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// Errors wrapped by FileError and NotReadyError where they apply.
var (
	ErrExpired     = errors.New("certificate has expired")
	ErrKeyMismatch = errors.New("certificate does not match the private key")
)

// NotReadyError is Ready's answer when a name has no valid certificate.
type NotReadyError struct {
	Name   string // the domain or file concerned
	Reason string // what is missing, e.g. "ACME order failed"
	Hint   string // what to check or do; may be empty
	Err    error  // the cause, e.g. the CA's last error; may be nil
}

func (e *NotReadyError) Error() string {
	s := "tlsconf: no valid certificate for " + strconv.Quote(e.Name) + ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

func (e *NotReadyError) Unwrap() error { return e.Err }
