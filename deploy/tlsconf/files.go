package tlsconf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"
)

// maxPEMFile bounds how much of a certificate or key file is read.
const maxPEMFile = 1 << 20

// minRSABits is the smallest RSA key accepted for serving.
const minRSABits = 2048

// watchState is the polling state of ModeFiles and ModeSelfSigned. It is
// written by New and afterwards only by the watch goroutine.
type watchState struct {
	lastHash [32]byte // contents of the pair being served
	badHash  [32]byte // contents most recently found unusable
	badSeen  int      // polls that saw badHash (1: warned, 2: error logged)
	badErr   error    // why badHash is unusable

	lastWarn    time.Time // last "expires soon" warning
	lastExpired time.Time // last "has expired" or regeneration error
}

// initFiles loads the ModeFiles pair for New.
func (m *Manager) initFiles() error {
	o := m.o
	if o.CertFile == "" || o.KeyFile == "" {
		return fmt.Errorf("tlsconf: mode %q needs CertFile and KeyFile", ModeFiles)
	}
	certPEM, keyPEM, err := readPair(o.CertFile, o.KeyFile)
	if err != nil {
		return err
	}
	cert, err := parsePair(certPEM, keyPEM, o.CertFile, o.KeyFile, m.now())
	if err != nil {
		return err
	}
	m.watch.lastHash = pairHash(certPEM, keyPEM)
	sc := newServedCert(cert, o.CertFile)
	m.cur.Store(sc)
	m.log.Info("serving certificate from files", certFields(sc)...)
	for _, name := range o.Names {
		if err := cert.Leaf.VerifyHostname(name); err != nil {
			m.log.Warn("certificate does not cover a configured name", zap.String("name", name), zap.String("cert_file", o.CertFile))
		}
	}
	m.checkExpiry()
	return nil
}

// pollFiles reloads the pair when the files' contents changed and are
// usable; otherwise the served pair stays.
func (m *Manager) pollFiles() {
	w := &m.watch
	certPEM, keyPEM, err := readPair(m.o.CertFile, m.o.KeyFile)
	var h [32]byte
	if err != nil {
		h = sha256.Sum256([]byte("read error\x00" + err.Error()))
	} else {
		h = pairHash(certPEM, keyPEM)
	}
	defer m.checkExpiry()
	if h == w.lastHash {
		return
	}
	if h == w.badHash {
		// A second look at the same unusable contents: this is no longer a
		// write in progress (certbot, for one, replaces the two files one
		// after the other), so say loudly that the old pair stays.
		if w.badSeen == 1 {
			w.badSeen = 2
			m.log.Error("certificate files changed but cannot be used; keeping the previous certificate",
				append(certFields(m.cur.Load()), zap.Error(w.badErr))...)
		}
		return
	}
	var cert *tls.Certificate
	if err == nil {
		cert, err = parsePair(certPEM, keyPEM, m.o.CertFile, m.o.KeyFile, m.now())
	}
	if err != nil {
		w.badHash, w.badSeen, w.badErr = h, 1, err
		m.log.Warn("certificate files changed but cannot be used yet; still serving the previous certificate",
			zap.Error(err), zap.Duration("next_check", m.o.ReloadInterval))
		return
	}
	w.lastHash, w.badHash, w.badSeen, w.badErr = h, [32]byte{}, 0, nil
	w.lastWarn, w.lastExpired = time.Time{}, time.Time{}
	sc := newServedCert(cert, m.o.CertFile)
	m.cur.Store(sc)
	m.log.Info("reloaded certificate files", certFields(sc)...)
}

// checkExpiry logs a warning as the served certificate's expiry approaches
// (at most daily) and an error once it has passed (at most hourly).
func (m *Manager) checkExpiry() {
	w := &m.watch
	sc := m.cur.Load()
	leaf := sc.cert.Leaf
	now := m.now()
	remaining := leaf.NotAfter.Sub(now)
	switch {
	case remaining <= 0:
		if w.lastExpired.IsZero() || now.Sub(w.lastExpired) >= time.Hour {
			w.lastExpired = now
			m.log.Error("the served certificate has expired and clients will refuse it; replace it", certFields(sc)...)
		}
	case remaining < warnWindow(leaf):
		if w.lastWarn.IsZero() || now.Sub(w.lastWarn) >= 24*time.Hour {
			w.lastWarn = now
			m.log.Warn("the served certificate expires soon; renew it",
				append(certFields(sc), zap.Duration("remaining", remaining.Round(time.Second)))...)
		}
	}
}

// warnWindow is how long before expiry a warning is due: a third of the
// certificate's lifetime, at most 30 days.
func warnWindow(leaf *x509.Certificate) time.Duration {
	w := leaf.NotAfter.Sub(leaf.NotBefore) / 3
	return min(w, 30*24*time.Hour)
}

func newServedCert(cert *tls.Certificate, source string) *servedCert {
	sum := sha256.Sum256(cert.Leaf.Raw)
	return &servedCert{cert: cert, fingerprint: hex.EncodeToString(sum[:]), source: source}
}

func certFields(sc *servedCert) []zap.Field {
	leaf := sc.cert.Leaf
	return []zap.Field{
		zap.String("path", sc.source),
		zap.String("sha256", sc.fingerprint),
		zap.Strings("names", certNames(leaf)),
		zap.Time("not_after", leaf.NotAfter),
	}
}

func certNames(leaf *x509.Certificate) []string {
	names := append([]string(nil), leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && leaf.Subject.CommonName != "" {
		names = append(names, leaf.Subject.CommonName)
	}
	return names
}

// pairHash identifies the contents of a certificate and key file pair.
func pairHash(certPEM, keyPEM []byte) [32]byte {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(certPEM)))
	h.Write(n[:])
	h.Write(certPEM)
	h.Write(keyPEM)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// readPair reads both files (following symlinks), each at most maxPEMFile.
func readPair(certPath, keyPath string) (certPEM, keyPEM []byte, err error) {
	if certPEM, err = readPEMFile(certPath); err != nil {
		return nil, nil, err
	}
	if keyPEM, err = readPEMFile(keyPath); err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

func readPEMFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	if len(b) > maxPEMFile {
		return nil, &FileError{Path: path, Err: fmt.Errorf("larger than %d bytes; not a PEM certificate or key", maxPEMFile)}
	}
	return b, nil
}

// parsePair checks a PEM certificate chain (leaf first) and private key and
// returns them as a tls.Certificate with Leaf set. Errors are *FileError
// naming the file at fault; they never contain key material.
func parsePair(certPEM, keyPEM []byte, certPath, keyPath string, now time.Time) (*tls.Certificate, error) {
	chain, err := parseCertificates(certPEM)
	if err != nil {
		return nil, &FileError{Path: certPath, Err: err}
	}
	key, err := parsePrivateKey(keyPEM)
	if err != nil {
		return nil, &FileError{Path: keyPath, Err: err}
	}
	leaf := chain[0]
	pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return nil, &FileError{Path: certPath, Err: fmt.Errorf("%w in %s", ErrKeyMismatch, keyPath)}
	}
	if now.After(leaf.NotAfter) {
		return nil, &FileError{Path: certPath, Err: fmt.Errorf("%w: it was valid until %s", ErrExpired, leaf.NotAfter.UTC().Format(time.RFC3339))}
	}
	if now.Before(leaf.NotBefore) {
		return nil, &FileError{Path: certPath, Err: fmt.Errorf("certificate is not valid before %s (check the system clock)", leaf.NotBefore.UTC().Format(time.RFC3339))}
	}
	der := make([][]byte, len(chain))
	for i, c := range chain {
		der[i] = c.Raw
	}
	return &tls.Certificate{Certificate: der, PrivateKey: key, Leaf: leaf}, nil
}

// parseCertificates returns every CERTIFICATE block of a PEM bundle, in order.
func parseCertificates(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch {
		case block.Type == "CERTIFICATE":
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("certificate %d in the file: %w", len(certs)+1, err)
			}
			certs = append(certs, c)
		case strings.Contains(block.Type, "PRIVATE KEY"):
			return nil, errors.New("holds a private key where certificates were expected (are the certificate and key files swapped?)")
		}
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	return certs, nil
}

// parsePrivateKey returns the first private key of a PEM file. It accepts
// PKCS #8, SEC 1 (EC) and PKCS #1 (RSA) encodings of RSA (2048 bits or
// more), ECDSA and Ed25519 keys.
func parsePrivateKey(b []byte) (crypto.Signer, error) {
	sawCert := false
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch {
		case block.Type == "CERTIFICATE":
			sawCert = true
			continue
		case !strings.HasSuffix(block.Type, "PRIVATE KEY"):
			continue
		case block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "":
			return nil, errors.New("encrypted private keys are not supported; store the key unencrypted with mode 0600")
		}
		key, err := parseKeyDER(block.Bytes)
		if err != nil {
			return nil, err
		}
		return key, nil
	}
	if sawCert {
		return nil, errors.New("holds a certificate where a private key was expected (are the certificate and key files swapped?)")
	}
	return nil, errors.New("no PEM PRIVATE KEY block found")
}

func parseKeyDER(der []byte) (crypto.Signer, error) {
	var key any
	var err error
	if key, err = x509.ParsePKCS8PrivateKey(der); err != nil {
		if key, err = x509.ParseECPrivateKey(der); err != nil {
			if key, err = x509.ParsePKCS1PrivateKey(der); err != nil {
				return nil, errors.New("private key is not valid PKCS #8, SEC 1 or PKCS #1 DER")
			}
		}
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key of %d bits is too weak (want at least %d)", k.N.BitLen(), minRSABits)
		}
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	default:
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
}
