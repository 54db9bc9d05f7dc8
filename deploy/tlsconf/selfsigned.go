package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Where and for how long the self-signed certificate lives.
const (
	selfSignedDir         = "tls"
	selfSignedCertFile    = "self-signed.crt"
	selfSignedKeyFile     = "self-signed.key"
	selfSignedValidity    = 365 * 24 * time.Hour
	selfSignedRenewBefore = 24 * time.Hour
	selfSignedBackdate    = time.Hour // tolerates clients whose clocks lag
)

// defaultSelfSignedNames are always covered by the self-signed certificate.
var defaultSelfSignedNames = []string{"localhost", "127.0.0.1", "::1"}

// SelfSignedPaths returns where ModeSelfSigned keeps its certificate (the
// file clients should trust) and key under dataDir.
func SelfSignedPaths(dataDir string) (certFile, keyFile string) {
	dir := filepath.Join(dataDir, selfSignedDir)
	return filepath.Join(dir, selfSignedCertFile), filepath.Join(dir, selfSignedKeyFile)
}

// initSelfSigned loads or creates the self-signed certificate for New.
func (m *Manager) initSelfSigned() error {
	if m.o.DataDir == "" {
		return fmt.Errorf("tlsconf: mode %q needs DataDir to keep its certificate in", ModeSelfSigned)
	}
	names, err := selfSignedNames(m.o.Names)
	if err != nil {
		return err
	}
	m.o.Names = names
	sc, err := m.loadOrCreateSelfSigned()
	if err != nil {
		return err
	}
	m.cur.Store(sc)
	return nil
}

// selfSignedNames normalizes the configured names and adds the defaults.
func selfSignedNames(extra []string) ([]string, error) {
	names := slices.Clone(defaultSelfSignedNames)
	for _, n := range extra {
		n = strings.ToLower(strings.TrimSpace(n))
		if n == "" {
			continue
		}
		if ip := net.ParseIP(n); ip != nil {
			n = ip.String()
		} else if strings.ContainsAny(n, "/:@ \t") {
			return nil, fmt.Errorf("tlsconf: Names: %q is neither a host name nor an IP address", n)
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names, nil
}

// loadOrCreateSelfSigned reuses the stored certificate when it is usable,
// covers the configured names and is not about to expire; otherwise it
// generates and stores a new one.
func (m *Manager) loadOrCreateSelfSigned() (*servedCert, error) {
	certPath, keyPath := SelfSignedPaths(m.o.DataDir)
	now := m.now()
	certPEM, keyPEM, err := readPair(certPath, keyPath)
	switch {
	case err == nil:
		cert, perr := parsePair(certPEM, keyPEM, certPath, keyPath, now)
		switch {
		case perr != nil:
			m.log.Warn("replacing unusable self-signed certificate", zap.Error(perr))
		case !now.Add(selfSignedRenewBefore).Before(cert.Leaf.NotAfter):
			m.log.Info("replacing expiring self-signed certificate", zap.Time("not_after", cert.Leaf.NotAfter))
		case !coversNames(cert.Leaf, m.o.Names):
			m.log.Info("replacing self-signed certificate: configured names changed",
				zap.Strings("had", certNames(cert.Leaf)), zap.Strings("want", m.o.Names))
		default:
			if err := ensurePrivate(keyPath, m.log); err != nil {
				return nil, err
			}
			sc := newServedCert(cert, certPath)
			m.log.Info("reusing self-signed certificate; clients must trust "+certPath, certFields(sc)...)
			return sc, nil
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, err
	}

	cert, certPEM, keyPEM, err := generateSelfSigned(m.o.Names, now)
	if err != nil {
		return nil, err
	}
	// The key goes first: a crash in between leaves a mismatched pair,
	// which the next start replaces.
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return nil, err
	}
	sc := newServedCert(cert, certPath)
	m.log.Info("generated self-signed certificate; clients must trust "+certPath, certFields(sc)...)
	return sc, nil
}

// checkSelfSigned replaces the served self-signed certificate when it is
// about to expire.
func (m *Manager) checkSelfSigned() {
	sc := m.cur.Load()
	now := m.now()
	if now.Add(selfSignedRenewBefore).Before(sc.cert.Leaf.NotAfter) {
		return
	}
	nsc, err := m.loadOrCreateSelfSigned()
	if err != nil {
		w := &m.watch
		if w.lastExpired.IsZero() || now.Sub(w.lastExpired) >= time.Hour {
			w.lastExpired = now
			m.log.Error("cannot replace the expiring self-signed certificate", zap.Error(err))
		}
		return
	}
	m.cur.Store(nsc)
}

// coversNames reports whether leaf is valid for every name.
func coversNames(leaf *x509.Certificate, names []string) bool {
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
				return false
			}
			continue
		}
		if !slices.Contains(leaf.DNSNames, n) {
			return false
		}
	}
	return true
}

// generateSelfSigned creates an ECDSA P-256 certificate for names.
func generateSelfSigned(names []string, now time.Time) (cert *tls.Certificate, certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("tlsconf: generating self-signed key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("tlsconf: generating serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "s3seal self-signed", Organization: []string{"s3seal"}},
		NotBefore:             now.Add(-selfSignedBackdate),
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("tlsconf: creating self-signed certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("tlsconf: internal error: parsing generated certificate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("tlsconf: encoding self-signed key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, certPEM, keyPEM, nil
}

// ensurePrivate makes a key file readable by its owner only.
func ensurePrivate(path string, log *zap.Logger) error {
	fi, err := os.Stat(path)
	if err != nil {
		return &FileError{Path: path, Err: err}
	}
	if fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	log.Warn("private key file was readable by others; restricting it to mode 0600",
		zap.String("path", path), zap.String("mode", fi.Mode().Perm().String()))
	if err := os.Chmod(path, 0o600); err != nil {
		return &FileError{Path: path, Err: err}
	}
	return nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory, so readers see the old or the new contents, never a mix. The
// directory is created with mode 0700 if needed.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return &FileError{Path: dir, Err: err}
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return &FileError{Path: dir, Err: err}
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return &FileError{Path: path, Err: err}
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return &FileError{Path: path, Err: err}
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return &FileError{Path: path, Err: err}
	}
	return nil
}
