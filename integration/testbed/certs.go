package testbed

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a throwaway certificate authority for tests: an ECDSA P-256 key and
// a self-signed CA certificate valid from an hour ago for 7 days. It lives
// only in memory until written out.
type CA struct {
	// Cert is the CA certificate; CertPEM is the same in PEM.
	Cert    *x509.Certificate
	CertPEM []byte
	key     *ecdsa.PrivateKey
}

// NewCA generates a CA whose subject is name ("s3seal test CA" if empty).
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	ca, err := newCA(name, time.Now())
	if err != nil {
		t.Fatalf("testbed: new CA: %v", err)
	}
	return ca
}

func newCA(name string, now time.Time) (*CA, error) {
	if name == "" {
		name = "s3seal test CA"
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"s3seal tests"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:     key,
	}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n.Add(n, big.NewInt(1))
}

// Pool returns a certificate pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// IssueCert issues a server and client certificate for hosts, each an IP
// address or a DNS name (the first one is also the subject's common name),
// valid as long as the CA. It returns the certificate chain (leaf, then CA)
// and the PKCS#8 private key, both in PEM.
func (ca *CA) IssueCert(t testing.TB, hosts ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	certPEM, keyPEM, err := ca.issue(hosts)
	if err != nil {
		t.Fatalf("testbed: issue certificate: %v", err)
	}
	return certPEM, keyPEM
}

func (ca *CA) issue(hosts []string) (certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		return nil, nil, fmt.Errorf("no hosts")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    ca.Cert.NotBefore,
		NotAfter:     ca.Cert.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	certPEM = append(certPEM, ca.CertPEM...)
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})
	return certPEM, keyPEM, nil
}

// TLSCertificate issues a certificate for hosts as IssueCert does and
// returns it ready for a tls.Config.
func (ca *CA) TLSCertificate(t testing.TB, hosts ...string) tls.Certificate {
	t.Helper()
	certPEM, keyPEM := ca.IssueCert(t, hosts...)
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("testbed: key pair: %v", err)
	}
	return c
}

// WriteFiles writes, into dir, the CA certificate as caName and a
// certificate and key for hosts as certName and keyName (mode 0600 for the
// key), and returns the CA file's path.
func (ca *CA) WriteFiles(t testing.TB, dir, caName, certName, keyName string, hosts ...string) (caFile string) {
	t.Helper()
	certPEM, keyPEM := ca.IssueCert(t, hosts...)
	caFile = filepath.Join(dir, caName)
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{caFile, ca.CertPEM, 0o644},
		{filepath.Join(dir, certName), certPEM, 0o644},
		{filepath.Join(dir, keyName), keyPEM, 0o600},
	} {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o700); err != nil {
			t.Fatalf("testbed: %v", err)
		}
		if err := os.WriteFile(f.path, f.data, f.mode); err != nil {
			t.Fatalf("testbed: %v", err)
		}
	}
	return caFile
}
