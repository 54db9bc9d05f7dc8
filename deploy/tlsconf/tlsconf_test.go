package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
)

// selfSignedClient trusts the self-signed certificate in dataDir.
func selfSignedClient(t *testing.T, dataDir string) *tls.Config {
	t.Helper()
	certFile, _ := SelfSignedPaths(dataDir)
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatal("self-signed certificate file holds no certificate")
	}
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}
}

func TestSelfSignedGeneratedOnceAndReused(t *testing.T) {
	dir := t.TempDir()
	o := Options{DataDir: dir, Names: []string{"S3.Internal.Example", "10.1.2.3"}}
	m1 := newManager(t, o)
	addr1 := serve(t, m1.TLSConfig())
	st1, err := handshake(addr1, selfSignedClient(t, dir))
	if err != nil {
		t.Fatalf("handshake trusting the stored certificate: %v", err)
	}
	leaf := st1.PeerCertificates[0]

	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	for _, name := range []string{"localhost", "127.0.0.1", "::1", "s3.internal.example", "10.1.2.3"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("certificate does not cover %s: %v", name, err)
		}
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life < 364*24*time.Hour || life > 367*24*time.Hour {
		t.Errorf("lifetime %v, want about a year", life)
	}

	certFile, keyFile := SelfSignedPaths(dir)
	for path, want := range map[string]os.FileMode{keyFile: 0o600, filepath.Dir(keyFile): 0o700} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s has mode %v, want %v", path, got, want)
		}
	}

	m1.Close()
	m2 := newManager(t, o)
	st2, err := handshake(serve(t, m2.TLSConfig()), selfSignedClient(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	if !st2.PeerCertificates[0].Equal(leaf) {
		t.Error("second start generated a new certificate instead of reusing the stored one")
	}
	if got := m2.NotAfter(); !got.Equal(leaf.NotAfter) {
		t.Errorf("NotAfter = %v, want %v", got, leaf.NotAfter)
	}
	if err := m2.Ready(); err != nil {
		t.Errorf("Ready: %v", err)
	}
	if _, err := os.Stat(certFile); err != nil {
		t.Error(err)
	}
}

func TestSelfSignedReplacedWhenNamesChangeOrExpired(t *testing.T) {
	dir := t.TempDir()
	first := newManager(t, Options{DataDir: dir}).cur.Load()

	same := newManager(t, Options{DataDir: dir}).cur.Load()
	if same.fingerprint != first.fingerprint {
		t.Fatal("certificate replaced although nothing changed")
	}
	renamed := newManager(t, Options{DataDir: dir, Names: []string{"other.example"}}).cur.Load()
	if renamed.fingerprint == first.fingerprint {
		t.Error("certificate kept although a configured name is not covered")
	}
	later := time.Now().Add(366 * 24 * time.Hour)
	expired := newManager(t, Options{DataDir: dir, Names: []string{"other.example"}, Now: func() time.Time { return later }}).cur.Load()
	if expired.fingerprint == renamed.fingerprint {
		t.Error("expired certificate reused")
	}
	if !expired.cert.Leaf.NotAfter.After(later) {
		t.Errorf("new certificate ends %v, before the clock's %v", expired.cert.Leaf.NotAfter, later)
	}
}

func TestSelfSignedRenewedWhileRunning(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock(time.Now())
	m := newManager(t, Options{DataDir: dir, Now: clock.Now, ReloadInterval: 20 * time.Millisecond})
	before := m.cur.Load().fingerprint
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(365*24*time.Hour - time.Hour) // inside the last day
	if !eventually(t, 5*time.Second, func() bool { return m.cur.Load().fingerprint != before }) {
		t.Fatal("expiring self-signed certificate was not replaced")
	}
	if err := m.Ready(); err != nil {
		t.Errorf("Ready after renewal: %v", err)
	}
}

func TestSelfSignedKeyModeRestored(t *testing.T) {
	dir := t.TempDir()
	newManager(t, Options{DataDir: dir}).Close()
	_, keyFile := SelfSignedPaths(dir)
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	log, logs := observedLogger()
	newManager(t, Options{DataDir: dir, Logger: log})
	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600", fi.Mode().Perm())
	}
	if !hasLog(logs, zapcore.WarnLevel, "readable by others") {
		t.Error("no warning about the key's permissions")
	}
}

func TestSelfSignedNeedsDataDir(t *testing.T) {
	if _, err := New(t.Context(), Options{Logger: nopLogger()}); err == nil || !strings.Contains(err.Error(), "DataDir") {
		t.Fatalf("New without DataDir: %v, want an error naming DataDir", err)
	}
}

// TestHTTP2Negotiated: HTTP/2 is offered; a client offering both gets
// HTTP/1.1 unless PreferHTTP2 is set, and an HTTP/2-only client gets HTTP/2.
func TestHTTP2Negotiated(t *testing.T) {
	for _, c := range []struct {
		name        string
		prefer      bool
		clientProto []string
		want        string
	}{
		{"both offered", false, nil, "HTTP/1.1"},
		{"both offered, prefer h2", true, nil, "HTTP/2.0"},
		{"h2 only", false, []string{"h2"}, "HTTP/2.0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			m := newManager(t, Options{DataDir: dir, PreferHTTP2: c.prefer})
			addr := serve(t, m.TLSConfig())
			tc := selfSignedClient(t, dir)
			tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}
			if c.clientProto != nil {
				tc.NextProtos = c.clientProto
				tr = &http.Transport{TLSClientConfig: tc}
				tr.Protocols = new(http.Protocols)
				tr.Protocols.SetHTTP2(true)
			}
			client := &http.Client{Transport: tr}
			defer client.CloseIdleConnections()
			_, port, _ := net.SplitHostPort(addr)
			resp, err := client.Get("https://localhost:" + port + "/")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != c.want {
				t.Errorf("server saw %q, want %s", body, c.want)
			}
		})
	}
}

func TestProtocolVersions(t *testing.T) {
	dir := t.TempDir()
	addr := serve(t, newManager(t, Options{DataDir: dir}).TLSConfig())
	addr13 := serve(t, newManager(t, Options{DataDir: dir, MinVersion: tls.VersionTLS13}).TLSConfig())
	cases := []struct {
		name    string
		addr    string
		version uint16
		ok      bool
	}{
		{"TLS 1.0 refused", addr, tls.VersionTLS10, false},
		{"TLS 1.1 refused", addr, tls.VersionTLS11, false},
		{"TLS 1.2 accepted", addr, tls.VersionTLS12, true},
		{"TLS 1.3 accepted", addr, tls.VersionTLS13, true},
		{"TLS 1.2 refused when 1.3 is the minimum", addr13, tls.VersionTLS12, false},
		{"TLS 1.3 accepted when 1.3 is the minimum", addr13, tls.VersionTLS13, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := selfSignedClient(t, dir)
			cfg.MinVersion, cfg.MaxVersion = c.version, c.version
			st, err := handshake(c.addr, cfg)
			if c.ok && (err != nil || st.Version != c.version) {
				t.Fatalf("handshake: version %x, err %v", st.Version, err)
			}
			if !c.ok && err == nil {
				t.Fatalf("handshake succeeded with %s", tls.VersionName(st.Version))
			}
		})
	}
}

func TestMinVersionValidated(t *testing.T) {
	// 0x0300 is SSL 3.0 (its crypto/tls constant is deprecated).
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11, 0x0300, 0x0305} {
		_, err := New(t.Context(), Options{DataDir: t.TempDir(), MinVersion: v, Logger: nopLogger()})
		if err == nil || !strings.Contains(err.Error(), "MinVersion") {
			t.Errorf("MinVersion %#04x: err %v, want a MinVersion error", v, err)
		}
	}
}

func TestWeakCipherSuitesRefused(t *testing.T) {
	// An ECDSA certificate (self-signed) and an RSA one (files), so that
	// suites of both signature kinds meet a certificate they could use.
	dir := t.TempDir()
	ecAddr := serve(t, newManager(t, Options{DataDir: dir}).TLSConfig())
	ca := newTestCA(t, "suites CA")
	certPEM, keyPEM := ca.issue(t, leafOpts{names: []string{"localhost"}, rsa: true})
	certFile, keyFile := pairPaths(t.TempDir())
	writeFile(t, certFile, certPEM)
	writeFile(t, keyFile, keyPEM)
	rsaAddr := serve(t, newManager(t, Options{Mode: ModeFiles, CertFile: certFile, KeyFile: keyFile}).TLSConfig())

	ecClient := func() *tls.Config { return selfSignedClient(t, dir) }
	rsaClient := func() *tls.Config { return &tls.Config{RootCAs: ca.pool(), ServerName: "localhost"} }
	cases := []struct {
		addr   string
		client func() *tls.Config
		suite  uint16
		ok     bool
	}{
		{ecAddr, ecClient, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, false},
		{ecAddr, ecClient, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, false},
		{ecAddr, ecClient, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, false},
		{ecAddr, ecClient, tls.TLS_ECDHE_ECDSA_WITH_RC4_128_SHA, false},
		{ecAddr, ecClient, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, true},
		{ecAddr, ecClient, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, true},
		{rsaAddr, rsaClient, tls.TLS_RSA_WITH_AES_128_GCM_SHA256, false},
		{rsaAddr, rsaClient, tls.TLS_RSA_WITH_AES_256_GCM_SHA384, false},
		{rsaAddr, rsaClient, tls.TLS_RSA_WITH_AES_128_CBC_SHA, false},
		{rsaAddr, rsaClient, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA, false},
		{rsaAddr, rsaClient, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, false},
		{rsaAddr, rsaClient, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, true},
	}
	for _, c := range cases {
		t.Run(tls.CipherSuiteName(c.suite), func(t *testing.T) {
			cfg := c.client()
			cfg.MaxVersion = tls.VersionTLS12
			cfg.CipherSuites = []uint16{c.suite}
			st, err := handshake(c.addr, cfg)
			if c.ok && err != nil {
				t.Fatalf("modern suite refused: %v", err)
			}
			if !c.ok && err == nil {
				t.Fatalf("weak suite accepted: negotiated %s", tls.CipherSuiteName(st.CipherSuite))
			}
		})
	}
}

func TestClientCertificates(t *testing.T) {
	dir := t.TempDir()
	clientCA := newTestCA(t, "client CA")
	caFile := filepath.Join(t.TempDir(), "clients.pem")
	writeFile(t, caFile, clientCA.pem)
	goodCert, goodKey := clientCA.issue(t, leafOpts{client: true})
	good, err := tls.X509KeyPair(goodCert, goodKey)
	if err != nil {
		t.Fatal(err)
	}
	otherCA := newTestCA(t, "other CA")
	badCert, badKey := otherCA.issue(t, leafOpts{client: true})
	bad, err := tls.X509KeyPair(badCert, badKey)
	if err != nil {
		t.Fatal(err)
	}

	for _, mode := range []string{ClientAuthRequire, ClientAuthRequest} {
		t.Run(mode, func(t *testing.T) {
			addr := serve(t, newManager(t, Options{DataDir: dir, ClientCAFile: caFile, ClientAuth: mode}).TLSConfig())
			for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
				try := func(certs ...tls.Certificate) error {
					cfg := selfSignedClient(t, dir)
					cfg.MaxVersion = version
					// Present the certificate whatever CAs the server names,
					// as a misconfigured or hostile client would.
					cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
						if len(certs) == 0 {
							return &tls.Certificate{}, nil
						}
						return &certs[0], nil
					}
					_, err := handshake(addr, cfg)
					return err
				}
				if err := try(good); err != nil {
					t.Errorf("%s: certificate from ClientCAFile refused: %v", tls.VersionName(version), err)
				}
				if err := try(bad); err == nil {
					t.Errorf("%s: certificate from another CA accepted", tls.VersionName(version))
				}
				err := try()
				if mode == ClientAuthRequire && err == nil {
					t.Errorf("%s: handshake without a client certificate accepted in require mode", tls.VersionName(version))
				}
				if mode == ClientAuthRequest && err != nil {
					t.Errorf("%s: handshake without a client certificate refused in request mode: %v", tls.VersionName(version), err)
				}
			}
		})
	}
}

func TestClientAuthValidated(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	writeFile(t, garbage, []byte("not a certificate"))
	cases := []struct {
		o    Options
		want string
	}{
		{Options{ClientAuth: ClientAuthRequire}, "ClientCAFile"},
		{Options{ClientAuth: "always", ClientCAFile: garbage}, "ClientAuth"},
		{Options{ClientCAFile: garbage}, garbage},
		{Options{ClientCAFile: filepath.Join(dir, "missing.pem")}, "missing.pem"},
	}
	for _, c := range cases {
		c.o.DataDir, c.o.Logger = dir, nopLogger()
		_, err := New(t.Context(), c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want one mentioning %q", c.o, err, c.want)
		}
	}
}

func TestModeOff(t *testing.T) {
	m := newManager(t, Options{Mode: ModeOff})
	if m.TLSConfig() != nil {
		t.Error("TLSConfig is not nil in mode off")
	}
	if err := m.Ready(); err != nil {
		t.Error(err)
	}
	if err := m.Start(t.Context()); err != nil {
		t.Error(err)
	}
	if !m.NotAfter().IsZero() {
		t.Error("NotAfter is set in mode off")
	}
	called := false
	h := m.HTTPChallengeHandler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	if !called {
		t.Error("request not passed on in mode off")
	}
}

func TestUnknownModeRefused(t *testing.T) {
	_, err := New(t.Context(), Options{Mode: "magic", Logger: nopLogger()})
	if err == nil || !strings.Contains(err.Error(), "magic") {
		t.Fatalf("err %v", err)
	}
	if _, err := New(t.Context(), Options{}); err == nil || !strings.Contains(err.Error(), "Logger") {
		t.Fatalf("New without Logger: %v", err)
	}
}

func TestHTTPChallengeHandlerRedirects(t *testing.T) {
	m := newManager(t, Options{DataDir: t.TempDir(), HTTPSPort: 8443})
	cases := []struct{ host, target, want string }{
		{"s3.example.com", "/bucket/key?x=1", "https://s3.example.com:8443/bucket/key?x=1"},
		{"s3.example.com:8080", "/b", "https://s3.example.com:8443/b"},
		{"[::1]:80", "/", "https://[::1]:8443/"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("PUT", c.target, nil)
		r.Host = c.host
		w := httptest.NewRecorder()
		m.HTTPChallengeHandler(nil).ServeHTTP(w, r)
		if w.Code != http.StatusPermanentRedirect || w.Header().Get("Location") != c.want {
			t.Errorf("%s%s: %d %q, want 308 %q", c.host, c.target, w.Code, w.Header().Get("Location"), c.want)
		}
	}
	m443 := newManager(t, Options{DataDir: t.TempDir()})
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/k", nil)
	r.Host = "s3.example.com:80"
	m443.HTTPChallengeHandler(nil).ServeHTTP(w, r)
	if got := w.Header().Get("Location"); got != "https://s3.example.com/k" {
		t.Errorf("Location %q, want the default port left out", got)
	}
	called := false
	m.HTTPChallengeHandler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true })).
		ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/.well-known/acme-challenge/x", nil))
	if !called {
		t.Error("next handler not called outside ACME mode")
	}
}

func TestStartAndCloseLifecycle(t *testing.T) {
	m := newManager(t, Options{DataDir: t.TempDir(), ReloadInterval: 10 * time.Millisecond})
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(t.Context()); err == nil {
		t.Error("second Start accepted")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := m.Start(t.Context()); err == nil {
		t.Error("Start after Close accepted")
	}
}
