package tlsconf

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
)

// filesFixture is a certificate pair on disk and a client trusting its CA.
type filesFixture struct {
	ca                *testCA
	certFile, keyFile string
}

func newFilesFixture(t *testing.T) *filesFixture {
	t.Helper()
	f := &filesFixture{ca: newTestCA(t, "files CA")}
	f.certFile, f.keyFile = pairPaths(t.TempDir())
	certPEM, keyPEM := f.ca.issue(t, leafOpts{names: []string{"localhost"}})
	f.write(t, certPEM, keyPEM)
	return f
}

func (f *filesFixture) write(t *testing.T, certPEM, keyPEM []byte) {
	t.Helper()
	replaceFile(t, f.certFile, certPEM)
	replaceFile(t, f.keyFile, keyPEM)
}

func (f *filesFixture) client() *tls.Config {
	return &tls.Config{RootCAs: f.ca.pool(), ServerName: "localhost"}
}

func (f *filesFixture) options() Options {
	return Options{Mode: ModeFiles, CertFile: f.certFile, KeyFile: f.keyFile, ReloadInterval: 25 * time.Millisecond}
}

func leafOf(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(certPEM)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFilesErrorsNameTheFile(t *testing.T) {
	ca := newTestCA(t, "start CA")
	goodCert, goodKey := ca.issue(t, leafOpts{names: []string{"localhost"}})
	_, otherKey := ca.issue(t, leafOpts{names: []string{"localhost"}})
	expiredCert, expiredKey := ca.issue(t, leafOpts{notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-time.Hour)})
	futureCert, futureKey := ca.issue(t, leafOpts{notBefore: time.Now().Add(48 * time.Hour), notAfter: time.Now().Add(96 * time.Hour)})
	truncated := goodCert[:len(goodCert)/2]
	corruptDER := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER")})
	encryptedKey := []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n")

	cases := []struct {
		name            string
		certPEM, keyPEM []byte
		missing         string // "cert" or "key": leave that file out
		blame           string // "cert" or "key"
		wantIs          error
		wantMsg         string
	}{
		{name: "missing cert", missing: "cert", keyPEM: goodKey, blame: "cert", wantIs: os.ErrNotExist},
		{name: "missing key", missing: "key", certPEM: goodCert, blame: "key", wantIs: os.ErrNotExist},
		{name: "garbage cert", certPEM: []byte("garbage"), keyPEM: goodKey, blame: "cert", wantMsg: "no PEM CERTIFICATE"},
		{name: "truncated cert", certPEM: truncated, keyPEM: goodKey, blame: "cert"},
		{name: "corrupt DER", certPEM: corruptDER, keyPEM: goodKey, blame: "cert", wantMsg: "certificate 1"},
		{name: "garbage key", certPEM: goodCert, keyPEM: []byte("garbage"), blame: "key", wantMsg: "no PEM PRIVATE KEY"},
		{name: "swapped files", certPEM: goodKey, keyPEM: goodCert, blame: "cert", wantMsg: "swapped"},
		{name: "encrypted key", certPEM: goodCert, keyPEM: encryptedKey, blame: "key", wantMsg: "encrypted"},
		{name: "mismatched key", certPEM: goodCert, keyPEM: otherKey, blame: "cert", wantIs: ErrKeyMismatch},
		{name: "expired", certPEM: expiredCert, keyPEM: expiredKey, blame: "cert", wantIs: ErrExpired},
		{name: "not yet valid", certPEM: futureCert, keyPEM: futureKey, blame: "cert", wantMsg: "not valid before"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			certFile, keyFile := pairPaths(t.TempDir())
			if c.missing != "cert" {
				writeFile(t, certFile, c.certPEM)
			}
			if c.missing != "key" {
				writeFile(t, keyFile, c.keyPEM)
			}
			_, err := New(t.Context(), Options{Mode: ModeFiles, CertFile: certFile, KeyFile: keyFile, Logger: nopLogger()})
			want := certFile
			if c.blame == "key" {
				want = keyFile
			}
			var fe *FileError
			if !errors.As(err, &fe) || fe.Path != want {
				t.Fatalf("err = %v, want a FileError for %s", err, want)
			}
			if !strings.HasPrefix(err.Error(), "tlsconf: "+want) {
				t.Errorf("message %q does not start with the file name", err)
			}
			if c.wantIs != nil && !errors.Is(err, c.wantIs) {
				t.Errorf("err %v does not wrap %v", err, c.wantIs)
			}
			if c.wantMsg != "" && !strings.Contains(err.Error(), c.wantMsg) {
				t.Errorf("err %q does not say %q", err, c.wantMsg)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY-----") || strings.Contains(err.Error(), string(goodKey[40:80])) {
				t.Error("error contains key material")
			}
		})
	}
	if _, err := New(t.Context(), Options{Mode: ModeFiles, Logger: nopLogger()}); err == nil || !strings.Contains(err.Error(), "CertFile") {
		t.Errorf("files mode without file names: %v", err)
	}
}

func TestFilesWeakRSAKeyRefused(t *testing.T) {
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weakPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(weak)})
	if _, err := parsePrivateKey(weakPEM); err == nil || !strings.Contains(err.Error(), "too weak") {
		t.Fatalf("1024-bit RSA key: %v, want refused as too weak", err)
	}
	ca := newTestCA(t, "rsa CA")
	certPEM, keyPEM := ca.issue(t, leafOpts{rsa: true})
	if _, err := parsePair(certPEM, keyPEM, "c", "k", time.Now()); err != nil {
		t.Fatalf("RSA 2048 pair refused: %v", err)
	}
}

func TestFilesReloadWithoutFailedHandshakes(t *testing.T) {
	f := newFilesFixture(t)
	log, logs := observedLogger()
	o := f.options()
	o.Logger = log
	m := newManager(t, o)
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	addr := serve(t, m.TLSConfig())
	first, err := handshake(addr, f.client())
	if err != nil {
		t.Fatal(err)
	}

	// Handshake in a loop while the files are replaced; every handshake must
	// succeed, and the new certificate must show up.
	var (
		stop               atomic.Bool
		total, failed, new atomic.Int64
		firstErr           atomic.Value
		wg                 sync.WaitGroup
	)
	nextCert, nextKey := f.ca.issue(t, leafOpts{names: []string{"localhost"}})
	next := leafOf(t, nextCert)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(10 * time.Second)
			for !stop.Load() && time.Now().Before(deadline) && total.Load() < 5000 {
				total.Add(1)
				st, err := quickHandshake(addr, f.client())
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				if st.PeerCertificates[0].Equal(next) {
					new.Add(1)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	f.write(t, nextCert, nextKey)
	swapped := eventually(t, 5*time.Second, func() bool { return new.Load() >= 200 })
	stop.Store(true)
	wg.Wait()
	if !swapped {
		t.Fatalf("new certificate not served within 5s (%d handshakes)", total.Load())
	}
	if failed.Load() != 0 {
		t.Fatalf("%d of %d handshakes failed during the swap; first: %v", failed.Load(), total.Load(), firstErr.Load())
	}
	if first.PeerCertificates[0].Equal(next) {
		t.Fatal("fixture error: first and next certificates are equal")
	}
	if !m.NotAfter().Equal(next.NotAfter) {
		t.Errorf("NotAfter %v, want the new certificate's %v", m.NotAfter(), next.NotAfter)
	}
	if !hasLog(logs, zapcore.InfoLevel, "reloaded certificate files") {
		t.Error("reload not logged")
	}
	t.Logf("%d handshakes, %d with the new certificate, 0 failed", total.Load(), new.Load())
}

func TestFilesReloadSymlinkSwap(t *testing.T) {
	// The layout of a Kubernetes secret volume (as cert-manager fills it):
	// cert.pem -> ..data/cert.pem, ..data -> ..2024_01_01, swapped by
	// renaming a new ..data symlink over the old one.
	ca := newTestCA(t, "k8s CA")
	dir := t.TempDir()
	writeVersion := func(name string) *x509.Certificate {
		certPEM, keyPEM := ca.issue(t, leafOpts{names: []string{"localhost"}})
		if err := os.Mkdir(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name, "tls.crt"), certPEM)
		writeFile(t, filepath.Join(dir, name, "tls.key"), keyPEM)
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		return leafOf(t, certPEM)
	}
	v1 := writeVersion("..v1")
	for _, n := range []string{"tls.crt", "tls.key"} {
		if err := os.Symlink(filepath.Join("..data", n), filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	m := newManager(t, Options{Mode: ModeFiles, CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key"), ReloadInterval: 25 * time.Millisecond})
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !m.cur.Load().cert.Leaf.Equal(v1) {
		t.Fatal("not serving the first version")
	}
	v2 := writeVersion("..v2")
	if !eventually(t, 5*time.Second, func() bool { return m.cur.Load().cert.Leaf.Equal(v2) }) {
		t.Fatal("symlink swap not picked up")
	}
}

func TestFilesBadReplacementKeepsServedCertificate(t *testing.T) {
	f := newFilesFixture(t)
	_, otherKey := f.ca.issue(t, leafOpts{})
	expiredCert, expiredKey := f.ca.issue(t, leafOpts{notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-time.Minute)})
	goodCert, _ := os.ReadFile(f.certFile)
	cases := []struct {
		name            string
		certPEM, keyPEM []byte
	}{
		{"garbage", []byte("garbage"), []byte("garbage")},
		{"mismatched key", goodCert, otherKey},
		{"expired", expiredCert, expiredKey},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFilesFixture(t)
			log, logs := observedLogger()
			o := f.options()
			o.Logger = log
			m := newManager(t, o)
			if err := m.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			addr := serve(t, m.TLSConfig())
			before, err := handshake(addr, f.client())
			if err != nil {
				t.Fatal(err)
			}
			f.write(t, c.certPEM, c.keyPEM)
			if !eventually(t, 5*time.Second, func() bool {
				return hasLog(logs, zapcore.ErrorLevel, "keeping the previous certificate")
			}) {
				t.Fatal("no error saying the previous certificate is kept")
			}
			after, err := handshake(addr, f.client())
			if err != nil {
				t.Fatalf("handshake after a bad replacement: %v", err)
			}
			if !after.PeerCertificates[0].Equal(before.PeerCertificates[0]) {
				t.Fatal("served certificate changed to a bad one")
			}
			if err := m.Ready(); err != nil {
				t.Errorf("Ready: %v", err)
			}
			if n := len(logs.FilterMessageSnippet("keeping the previous certificate").All()); n != 1 {
				t.Errorf("error logged %d times for one bad replacement, want once", n)
			}
			// A good pair afterwards is picked up.
			nextCert, nextKey := f.ca.issue(t, leafOpts{names: []string{"localhost"}})
			f.write(t, nextCert, nextKey)
			next := leafOf(t, nextCert)
			if !eventually(t, 5*time.Second, func() bool { return m.cur.Load().cert.Leaf.Equal(next) }) {
				t.Fatal("good pair after a bad one not picked up")
			}
		})
	}
}

func TestFilesExpiryWarningsAndReady(t *testing.T) {
	ca := newTestCA(t, "expiry CA")
	now := time.Now()
	certPEM, keyPEM := ca.issue(t, leafOpts{notBefore: now.Add(-80 * 24 * time.Hour), notAfter: now.Add(10 * 24 * time.Hour)})
	certFile, keyFile := pairPaths(t.TempDir())
	writeFile(t, certFile, certPEM)
	writeFile(t, keyFile, keyPEM)
	clock := newFakeClock(now)
	log, logs := observedLogger()
	m := newManager(t, Options{Mode: ModeFiles, CertFile: certFile, KeyFile: keyFile, Now: clock.Now, Logger: log, ReloadInterval: 10 * time.Millisecond})
	if !hasLog(logs, zapcore.WarnLevel, "expires soon") {
		t.Error("no warning for a certificate with 10 of 90 days left")
	}
	if err := m.Ready(); err != nil {
		t.Fatalf("Ready before expiry: %v", err)
	}
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(11 * 24 * time.Hour)
	if !eventually(t, 5*time.Second, func() bool { return hasLog(logs, zapcore.ErrorLevel, "has expired") }) {
		t.Error("no error once the served certificate expired")
	}
	err := m.Ready()
	var nr *NotReadyError
	if !errors.As(err, &nr) || nr.Name != certFile || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("Ready after expiry: %v", err)
	}
	warnings := len(logs.FilterMessageSnippet("expires soon").All())
	time.Sleep(100 * time.Millisecond)
	if n := len(logs.FilterMessageSnippet("expires soon").All()); n != warnings {
		t.Errorf("warning repeated on every poll (%d -> %d)", warnings, n)
	}
}

func TestFilesNamesNotCoveredWarned(t *testing.T) {
	f := newFilesFixture(t)
	log, logs := observedLogger()
	o := f.options()
	o.Logger, o.Names = log, []string{"localhost", "s3.example.com"}
	newManager(t, o)
	entries := logs.FilterMessageSnippet("does not cover").All()
	if len(entries) != 1 || entries[0].ContextMap()["name"] != "s3.example.com" {
		t.Errorf("warnings %v, want one for s3.example.com", entries)
	}
}
