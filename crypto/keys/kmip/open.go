package kmip

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/s3seal/s3seal/crypto/keys/internal/secretfile"
)

// Settings are the connection settings of the configuration file's kmip
// section.
type Settings struct {
	// Endpoint is the server's host:port. Required.
	Endpoint string
	// ClientCert and ClientKey are the PEM files of s3seal's client
	// certificate and key. Required. The key file must be a regular file
	// owned by s3seal's user that group and others cannot access.
	ClientCert, ClientKey string
	// CA is a PEM file of the CAs that sign the server's certificate.
	// Empty means the system roots.
	CA string
	// ServerName is the name the server's certificate must carry, if not
	// the host of Endpoint.
	ServerName string
	// Timeout, Retries, Backoff and MaxIdle are those of ClientConfig.
	Timeout time.Duration
	Retries int
	Backoff time.Duration
	MaxIdle int
}

// Open builds a Provider for keyIDs (the active one first) from s and
// checks them with the server (Check). Close the Provider when it is no
// longer used.
func Open(ctx context.Context, s Settings, keyIDs []string) (*Provider, error) {
	if s.Endpoint == "" {
		return nil, errors.New("kmip: kmip.endpoint is not set")
	}
	if s.ClientCert == "" || s.ClientKey == "" {
		return nil, errors.New("kmip: kmip.client_cert and kmip.client_key must name s3seal's client certificate and key (the server authenticates s3seal with them)")
	}
	certPEM, err := os.ReadFile(s.ClientCert)
	if err != nil {
		return nil, fmt.Errorf("kmip: kmip.client_cert: %w", err)
	}
	keyPEM, err := secretfile.Read(s.ClientKey, 1<<20, "KMIP client key")
	if err != nil {
		return nil, fmt.Errorf("kmip: kmip.client_key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	clear(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("kmip: client certificate and key: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, ServerName: s.ServerName, MinVersion: tls.VersionTLS12}
	if s.CA != "" {
		pem, err := os.ReadFile(s.CA)
		if err != nil {
			return nil, fmt.Errorf("kmip: kmip.ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kmip: kmip.ca: %s holds no PEM certificate", s.CA)
		}
	}
	c, err := NewClient(ClientConfig{Addr: s.Endpoint, TLS: tc, Timeout: s.Timeout, Retries: s.Retries, Backoff: s.Backoff, MaxIdle: s.MaxIdle})
	if err != nil {
		return nil, err
	}
	p, err := New(c, Config{KeyIDs: keyIDs})
	if err != nil {
		c.Close()
		return nil, err
	}
	p.closer = c
	if err := p.Check(ctx, keyIDs); err != nil {
		c.Close()
		return nil, fmt.Errorf("kmip: checking the keys with %s: %w", s.Endpoint, err)
	}
	return p, nil
}
