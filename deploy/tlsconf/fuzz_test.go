package tlsconf

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"
)

// The seed corpora live in testdata/fuzz; their certificates are valid from
// 2025 to 2125.
var fuzzNow = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// FuzzParsePair checks that any certificate and key input either gives a
// FileError naming one of the two files (and no key material) or a pair
// whose key really belongs to the certificate, valid now.
func FuzzParsePair(f *testing.F) {
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		cert, err := parsePair(certPEM, keyPEM, "cert.pem", "key.pem", fuzzNow)
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) || (fe.Path != "cert.pem" && fe.Path != "key.pem") {
				t.Fatalf("error %v is not a FileError naming an input file", err)
			}
			if strings.Contains(err.Error(), "-----") {
				t.Fatalf("error echoes PEM input: %v", err)
			}
			return
		}
		leaf := cert.Leaf
		if leaf == nil || len(cert.Certificate) == 0 || string(cert.Certificate[0]) != string(leaf.Raw) {
			t.Fatal("accepted pair without a consistent leaf")
		}
		if fuzzNow.Before(leaf.NotBefore) || fuzzNow.After(leaf.NotAfter) {
			t.Fatal("accepted a certificate that is not valid now")
		}
		signer, ok := cert.PrivateKey.(crypto.Signer)
		if !ok {
			t.Fatalf("private key %T is not a signer", cert.PrivateKey)
		}
		// The key must belong to the certificate, by the standard library's
		// own check as well as ours.
		if _, err := tls.X509KeyPair(certPEM, pemKey(t, signer)); err != nil {
			t.Fatalf("standard library refuses the accepted pair: %v", err)
		}
	})
}

// FuzzParseLockRecord checks that lock records never crash the parser and
// that accepted ones survive re-encoding unchanged.
func FuzzParseLockRecord(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseLockRecord(b)
		if err != nil {
			return
		}
		if r.Owner == "" || r.Expires.IsZero() {
			t.Fatalf("accepted record without owner or expiry: %+v", r)
		}
		enc, err := json.Marshal(r)
		if err != nil {
			return // e.g. a year outside what RFC 3339 can carry
		}
		r2, err := parseLockRecord(enc)
		if err != nil {
			t.Fatalf("re-encoded record %s does not parse: %v", enc, err)
		}
		if r2.Owner != r.Owner || !r2.Expires.Equal(r.Expires) || r2.Released != r.Released || r2.Host != r.Host {
			t.Fatalf("round trip changed the record: %+v -> %+v", r, r2)
		}
	})
}

func pemKey(t *testing.T, k crypto.Signer) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// FuzzParseCertificates checks that certificate bundles never crash the
// parser and that every certificate it returns re-parses from its own DER.
func FuzzParseCertificates(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		certs, err := parseCertificates(b)
		if err != nil {
			if len(certs) != 0 {
				t.Fatal("certificates returned with an error")
			}
			return
		}
		if len(certs) == 0 {
			t.Fatal("no certificates and no error")
		}
		for _, c := range certs {
			if _, err := x509.ParseCertificate(c.Raw); err != nil {
				t.Fatalf("returned certificate does not re-parse: %v", err)
			}
		}
	})
}
