package tlsconf

import (
	"context"
	"crypto/tls"
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
	if got := both.TLSConfig().NextProtos; !slices.Equal(got, []string{"h2", "http/1.1", "acme-tls/1"}) {
		t.Errorf("NextProtos %q", got)
	}
	httpOnly := newManager(t, acmeOptions(t, ACMEOptions{Domains: []string{"s3.example.com"}, Challenges: []string{"HTTP-01"}}))
	if got := httpOnly.TLSConfig().NextProtos; slices.Contains(got, "acme-tls/1") {
		t.Errorf("acme-tls/1 offered with TLS-ALPN-01 disabled: %q", got)
	}
	// TLSConfig hands out copies.
	c := both.TLSConfig()
	c.NextProtos[0] = "changed"
	if both.TLSConfig().NextProtos[0] != "h2" {
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
