package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

const pebbleReadyTimeout = 20 * time.Second

// Pebble is a running Pebble ACME server with pebble-challtestsrv as its DNS
// server, which answers every A query with 127.0.0.1 (and no AAAA), so
// Pebble validates challenges for any name against 127.0.0.1.
type Pebble struct {
	// Directory is the ACME directory URL, https://127.0.0.1:PORT/dir.
	Directory string
	// CAFile is the PEM of the CA that ACME clients must trust for
	// Directory and Mgmt (a fresh CA for every start).
	CAFile string
	// HTTPPort and TLSPort are where Pebble validates HTTP-01 and
	// TLS-ALPN-01 challenges on 127.0.0.1: the server under test must
	// listen there.
	HTTPPort, TLSPort int
	// Mgmt is Pebble's management URL, https://127.0.0.1:PORT; /roots/0
	// serves the root that signs issued certificates.
	Mgmt string
	// DNSMgmt is pebble-challtestsrv's management URL, http://127.0.0.1:PORT,
	// for tests that set DNS records (for example DNS-01 TXT records).
	DNSMgmt string

	pebble, dns *Process
}

type pebbleConfig struct {
	Pebble pebbleSettings `json:"pebble"`
}

type pebbleSettings struct {
	ListenAddress                  string                   `json:"listenAddress"`
	ManagementListenAddress        string                   `json:"managementListenAddress"`
	Certificate                    string                   `json:"certificate"`
	PrivateKey                     string                   `json:"privateKey"`
	HTTPPort                       int                      `json:"httpPort"`
	TLSPort                        int                      `json:"tlsPort"`
	OCSPResponderURL               string                   `json:"ocspResponderURL"`
	ExternalAccountBindingRequired bool                     `json:"externalAccountBindingRequired"`
	RetryAfter                     map[string]int           `json:"retryAfter"`
	KeyAlgorithm                   string                   `json:"keyAlgorithm"`
	Profiles                       map[string]pebbleProfile `json:"profiles"`
}

type pebbleProfile struct {
	Description    string `json:"description"`
	ValidityPeriod int    `json:"validityPeriod"`
}

// StartPebble starts pebble-challtestsrv (DNS only) and Pebble on free
// 127.0.0.1 ports, with PEBBLE_VA_NOSLEEP=1 and PEBBLE_WFE_NONCEREJECT=0 so
// that validation is immediate and nonces are never rejected at random, and
// waits until the directory answers. Cleanups stop both.
//
// Pebble's own configuration (as shipped in its module under test/config)
// listens on every interface; this one is written afresh with 127.0.0.1
// everywhere and a certificate from a fresh CA.
func StartPebble(t testing.TB) *Pebble {
	t.Helper()
	start := time.Now()
	dir := t.TempDir()
	ports := freePorts(t, 6)
	wfe, mgmt, httpPort, tlsPort, dnsPort, dnsMgmt := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]
	p := &Pebble{
		Directory: "https://" + loopback(wfe) + "/dir",
		HTTPPort:  httpPort,
		TLSPort:   tlsPort,
		Mgmt:      "https://" + loopback(mgmt),
		DNSMgmt:   "http://" + loopback(dnsMgmt),
	}
	ca := NewCA(t, "s3seal test CA for pebble")
	p.CAFile = ca.WriteFiles(t, dir, "ca.pem", "cert.pem", "key.pem", "127.0.0.1", "localhost")

	cfg := pebbleConfig{Pebble: pebbleSettings{
		ListenAddress:           loopback(wfe),
		ManagementListenAddress: loopback(mgmt),
		Certificate:             filepath.Join(dir, "cert.pem"),
		PrivateKey:              filepath.Join(dir, "key.pem"),
		HTTPPort:                httpPort,
		TLSPort:                 tlsPort,
		RetryAfter:              map[string]int{"authz": 1, "order": 1},
		KeyAlgorithm:            "ecdsa",
		Profiles: map[string]pebbleProfile{
			"default":    {Description: "90 days", ValidityPeriod: 90 * 24 * 3600},
			"shortlived": {Description: "6 days", ValidityPeriod: 6 * 24 * 3600},
		},
	}}
	js, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatalf("testbed: pebble config: %v", err)
	}
	cfgFile := filepath.Join(dir, "pebble-config.json")
	if err := os.WriteFile(cfgFile, js, 0o644); err != nil {
		t.Fatalf("testbed: %v", err)
	}

	dnsAddr := loopback(dnsPort)
	p.dns = StartProcess(t, "pebble-challtestsrv", nil,
		"-dnsserver", dnsAddr,
		"-management", loopback(dnsMgmt),
		"-defaultIPv4", "127.0.0.1",
		"-defaultIPv6", "",
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "",
	)
	plain, err := httpClient("")
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	defer plain.CloseIdleConnections()
	if err := waitHTTP(plain, p.DNSMgmt+"/", pebbleReadyTimeout, p.dns.Exited(), anyStatus); err != nil {
		t.Fatalf("testbed: pebble-challtestsrv did not start: %v\nlast output:\n%s", err, p.dns.tail(tailBytes))
	}

	p.pebble = StartProcess(t, "pebble",
		[]string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0"},
		"-config", cfgFile, "-dnsserver", dnsAddr)
	client, err := httpClient(p.CAFile)
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	defer client.CloseIdleConnections()
	if err := waitHTTP(client, p.Directory, pebbleReadyTimeout, p.pebble.Exited(), ok200); err != nil {
		t.Fatalf("testbed: pebble did not start: %v\nlast output:\n%s", err, p.pebble.tail(tailBytes))
	}
	t.Logf("testbed: pebble ready at %s in %v", p.Directory, time.Since(start).Round(time.Millisecond))
	return p
}

// HTTPClient returns an HTTP client that trusts CAFile, for talking to
// Directory and Mgmt.
func (p *Pebble) HTTPClient(t testing.TB) *http.Client {
	t.Helper()
	return HTTPClient(t, p.CAFile)
}

// IssuerRoots returns the PEM of Pebble's current issuing roots
// (/roots/0, /roots/1, … from the management interface, until one is
// missing). They change at every start of Pebble.
func (p *Pebble) IssuerRoots(t testing.TB) []byte {
	t.Helper()
	c := p.HTTPClient(t)
	defer c.CloseIdleConnections()
	var out []byte
	for i := 0; i < 8; i++ {
		b, status, err := fetch(c, p.Mgmt+"/roots/"+strconv.Itoa(i))
		if err != nil {
			t.Fatalf("testbed: pebble roots: %v", err)
		}
		if status != http.StatusOK {
			break
		}
		if blk, _ := pem.Decode(b); blk == nil || blk.Type != "CERTIFICATE" {
			t.Fatalf("testbed: pebble /roots/%d is not a PEM certificate", i)
		}
		out = append(out, bytes.TrimSpace(b)...)
		out = append(out, '\n')
	}
	if len(out) == 0 {
		t.Fatalf("testbed: pebble served no issuing root")
	}
	return out
}

func fetch(c *http.Client, url string) ([]byte, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", url, err)
	}
	return b, resp.StatusCode, nil
}

// Stop ends Pebble and pebble-challtestsrv and waits for both.
func (p *Pebble) Stop(t testing.TB) {
	t.Helper()
	p.pebble.Stop(t)
	p.dns.Stop(t)
}
