package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

func acmeOptions(t *testing.T, ao ACMEOptions) Options {
	return Options{Mode: ModeACME, DataDir: t.TempDir(), ACME: ao, Logger: nopLogger()}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func TestACMEOptionsValidated(t *testing.T) {
	garbage := filepath.Join(t.TempDir(), "root.pem")
	writeFile(t, garbage, []byte("garbage"))
	cases := []struct {
		name string
		o    Options
		want string
	}{
		{"no domains", acmeOptions(t, ACMEOptions{}), "Domains"},
		{"wildcard", acmeOptions(t, ACMEOptions{Domains: []string{"*.s3.example.com"}}), "DNS-01"},
		{"bad name", acmeOptions(t, ACMEOptions{Domains: []string{"a b.example"}}), "not a valid"},
		{"dns-01", acmeOptions(t, ACMEOptions{Domains: []string{"s3.example.com"}, Challenges: []string{"dns-01"}}), "dns-01"},
		{"unknown challenge", acmeOptions(t, ACMEOptions{Domains: []string{"s3.example.com"}, Challenges: []string{"http-02"}}), "http-02"},
		{"on-demand without allow", acmeOptions(t, ACMEOptions{OnDemand: true}), "OnDemandAllow"},
		{"renewal ratio", acmeOptions(t, ACMEOptions{Domains: []string{"s3.example.com"}, RenewalWindowRatio: 1.5}), "RenewalWindowRatio"},
		{"CA root garbage", acmeOptions(t, ACMEOptions{Domains: []string{"s3.example.com"}, CARoot: garbage}), garbage},
		{"no storage", Options{Mode: ModeACME, ACME: ACMEOptions{Domains: []string{"s3.example.com"}}, Logger: nopLogger()}, "DataDir"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := New(t.Context(), c.o)
			if err == nil {
				m.Close()
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

func TestACMETLSConfigALPN(t *testing.T) {
	both := newManager(t, acmeOptions(t, ACMEOptions{Domains: []string{"s3.example.com"}}))
	if got := both.TLSConfig().NextProtos; !slices.Equal(got, []string{"http/1.1", "h2", "acme-tls/1"}) {
		t.Errorf("NextProtos %q", got)
	}
	httpOnly := newManager(t, acmeOptions(t, ACMEOptions{Domains: []string{"s3.example.com"}, Challenges: []string{"HTTP-01"}}))
	if got := httpOnly.TLSConfig().NextProtos; slices.Contains(got, "acme-tls/1") {
		t.Errorf("acme-tls/1 offered with TLS-ALPN-01 disabled: %q", got)
	}
	// TLSConfig hands out copies.
	c := both.TLSConfig()
	c.NextProtos[0] = "changed"
	if both.TLSConfig().NextProtos[0] != "http/1.1" {
		t.Error("TLSConfig returned shared state")
	}

	// With mutual TLS required, the CA's validation handshake (which offers
	// only acme-tls/1 and has no client certificate) is exempt.
	ca := newTestCA(t, "clients")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	writeFile(t, caFile, ca.pem)
	o := acmeOptions(t, ACMEOptions{Domains: []string{"s3.example.com"}})
	o.ClientCAFile, o.ClientAuth = caFile, ClientAuthRequire
	cfg := newManager(t, o).TLSConfig()
	if cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.GetConfigForClient == nil {
		t.Fatal("mutual TLS not configured")
	}
	exempt, err := cfg.GetConfigForClient(&tls.ClientHelloInfo{ServerName: "s3.example.com", SupportedProtos: []string{"acme-tls/1"}})
	if err != nil || exempt == nil || exempt.ClientAuth != tls.NoClientCert {
		t.Errorf("validation handshake config: %+v, %v", exempt, err)
	}
	normal, err := cfg.GetConfigForClient(&tls.ClientHelloInfo{ServerName: "s3.example.com", SupportedProtos: []string{"h2", "acme-tls/1"}})
	if err != nil || normal != nil {
		t.Errorf("ordinary handshake got a different config: %+v, %v", normal, err)
	}
}

func TestACMEUnreachableDirectory(t *testing.T) {
	const domain = "s3.example.test"
	ca := "https://127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/dir"
	m := newManager(t, acmeOptions(t, ACMEOptions{Domains: []string{domain}, CA: ca}))

	var nr *NotReadyError
	if err := m.Ready(); !errors.As(err, &nr) || !strings.Contains(err.Error(), "not been started") {
		t.Fatalf("Ready before Start: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var last error
	if !eventually(t, 20*time.Second, func() bool {
		last = m.Ready()
		return last != nil && strings.Contains(last.Error(), "ACME order failed")
	}) {
		t.Fatalf("Ready did not report the failed order: %v", last)
	}
	msg := last.Error()
	t.Logf("Ready: %s", msg)
	for _, want := range []string{domain, ca, "connection refused", "retries"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Ready error %q does not mention %q", msg, want)
		}
	}
	if !errors.As(last, &nr) || nr.Err == nil || nr.Name != domain {
		t.Errorf("Ready error is %#v, want a NotReadyError with the cause", last)
	}
	if !m.NotAfter().IsZero() {
		t.Error("NotAfter set without a certificate")
	}
	// Nothing is served for the name in the meantime.
	addr := serve(t, m.TLSConfig())
	if _, err := quickHandshake(addr, &tls.Config{ServerName: domain, InsecureSkipVerify: true}); err == nil {
		t.Error("handshake succeeded without a certificate")
	}
	cancel()
	m.Close()
}

func TestACMEHTTPHandlerPassesOtherRequests(t *testing.T) {
	m := newManager(t, acmeOptions(t, ACMEOptions{Domains: []string{"s3.example.com"}}))
	called := 0
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called++ })
	for _, target := range []string{"/bucket/key", "/.well-known/acme-challenge/unknown-token"} {
		r := httptest.NewRequest("GET", target, nil)
		r.Host = "s3.example.com"
		m.HTTPChallengeHandler(next).ServeHTTP(httptest.NewRecorder(), r)
	}
	if called != 2 {
		t.Errorf("next called %d times, want 2 (no challenge is pending)", called)
	}
	files := newManager(t, Options{DataDir: t.TempDir()})
	if err := files.RenewNow(t.Context()); err == nil {
		t.Error("RenewNow outside ACME mode succeeded")
	}
}

// storeManaged writes a certificate into a Manager's certmagic storage as
// another replica's obtain or renewal would.
func storeManaged(t *testing.T, m *Manager, domain string, certPEM, keyPEM []byte) {
	t.Helper()
	a := m.acme
	ik := a.issuer.IssuerKey()
	for key, v := range map[string][]byte{
		certmagic.StorageKeys.SitePrivateKey(ik, domain): keyPEM,
		certmagic.StorageKeys.SiteCert(ik, domain):       certPEM,
		certmagic.StorageKeys.SiteMeta(ik, domain):       []byte(`{"sans":["` + domain + `"]}`),
	} {
		if err := a.storage.Store(t.Context(), key, v); err != nil {
			t.Fatal(err)
		}
	}
}

func TestACMEServesCertificateRenewedElsewhere(t *testing.T) {
	const domain = "s3.sync.example.test"
	ca := newTestCA(t, "sync CA")
	issue := func(age time.Duration) ([]byte, []byte, *x509.Certificate) {
		now := time.Now()
		c, k := ca.issue(t, leafOpts{names: []string{domain}, notBefore: now.Add(-age), notAfter: now.Add(20 * time.Hour)})
		b, _ := pem.Decode(c)
		leaf, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c, k, leaf
	}
	// No CA is reachable: everything served comes from storage.
	o := acmeOptions(t, ACMEOptions{
		Domains: []string{domain}, CA: "https://127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/dir",
		SyncInterval: 20 * time.Millisecond,
	})
	m := newManager(t, o)
	c1, k1, leaf1 := issue(3 * time.Hour)
	storeManaged(t, m, domain, c1, k1)
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !eventually(t, 5*time.Second, func() bool { return m.Ready() == nil }) {
		t.Fatalf("certificate in storage not served: %v", m.Ready())
	}
	addr := serve(t, m.TLSConfig())
	client := &tls.Config{ServerName: domain, RootCAs: ca.pool()}
	served := func() *x509.Certificate {
		st, err := quickHandshake(addr, client)
		if err != nil {
			t.Fatal(err)
		}
		return st.PeerCertificates[0]
	}
	if !served().Equal(leaf1) || !m.NotAfter().Equal(leaf1.NotAfter) {
		t.Fatal("not serving the stored certificate")
	}

	// Another replica renews: the new certificate is served, alone.
	c2, k2, leaf2 := issue(2 * time.Hour)
	storeManaged(t, m, domain, c2, k2)
	if !eventually(t, 5*time.Second, func() bool { return served().Equal(leaf2) }) {
		t.Fatal("renewal in storage not picked up")
	}
	if n := len(m.acme.exactCerts(domain)); n != 1 {
		t.Errorf("%d certificates cached for the name, want 1", n)
	}

	// An older certificate written to storage does not replace a newer one.
	c0, k0, _ := issue(4 * time.Hour)
	storeManaged(t, m, domain, c0, k0)
	time.Sleep(200 * time.Millisecond)
	if !served().Equal(leaf2) {
		t.Error("older certificate from storage replaced the served one")
	}
}

func TestACMESyncRemovesDuplicateCopies(t *testing.T) {
	// certmagic's own obtain job may cache the stored certificate next to
	// the one the sync loaded before; the sync leaves only the stored one.
	const domain = "s3.dup.example.test"
	ca := newTestCA(t, "dup CA")
	m := newManager(t, acmeOptions(t, ACMEOptions{Domains: []string{domain}, CA: "https://127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/dir"}))
	now := time.Now()
	c1, k1 := ca.issue(t, leafOpts{names: []string{domain}, notBefore: now.Add(-2 * time.Hour)})
	storeManaged(t, m, domain, c1, k1)
	if _, err := m.acme.cfg.CacheManagedCertificate(t.Context(), domain); err != nil {
		t.Fatal(err)
	}
	c2, k2 := ca.issue(t, leafOpts{names: []string{domain}, notBefore: now.Add(-time.Hour)})
	storeManaged(t, m, domain, c2, k2)
	if _, err := m.acme.cfg.CacheManagedCertificate(t.Context(), domain); err != nil {
		t.Fatal(err)
	}
	if n := len(m.acme.exactCerts(domain)); n != 2 {
		t.Fatalf("fixture: %d cached copies, want 2", n)
	}
	if err := m.acme.syncDomain(t.Context(), domain); err != nil {
		t.Fatal(err)
	}
	certs := m.acme.exactCerts(domain)
	b, _ := pem.Decode(c2)
	if len(certs) != 1 || string(certs[0].Leaf.Raw) != string(b.Bytes) {
		t.Fatalf("after sync: %d copies cached, want only the stored one", len(certs))
	}
}
