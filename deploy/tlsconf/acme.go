package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// acmeManager is the ModeACME half of a Manager: one certmagic cache, a
// Config for the configured domains and, with on-demand issuance, a second
// Config sharing the cache for names decided at handshake time.
type acmeManager struct {
	log     *zap.Logger
	now     func() time.Time
	ca      string
	domains []string // normalized, in configuration order
	tlsALPN bool
	sync    time.Duration

	storage certmagic.Storage
	cache   *certmagic.Cache
	cfg     *certmagic.Config // manages domains
	issuer  *certmagic.ACMEIssuer
	odCfg   *certmagic.Config // on-demand names; nil unless OnDemand

	mu        sync.Mutex // protects failures, startedAt
	failures  map[string]error
	startedAt time.Time
}

// newACME validates the ACME options and builds certmagic's cache and
// configs; nothing talks to the CA before start.
func newACME(_ context.Context, m *Manager) (*acmeManager, error) {
	o := m.o
	ao := o.ACME
	domains, err := acmeDomains(ao.Domains)
	if err != nil {
		return nil, err
	}
	if len(domains) == 0 && !ao.OnDemand {
		return nil, errors.New("tlsconf: mode acme needs ACME.Domains (or ACME.OnDemand)")
	}
	if ao.OnDemand && ao.OnDemandAllow == nil {
		return nil, errors.New("tlsconf: ACME.OnDemand needs ACME.OnDemandAllow, which decides the names certificates may be obtained for")
	}
	httpOK, alpnOK := len(ao.Challenges) == 0, len(ao.Challenges) == 0
	for _, c := range ao.Challenges {
		switch strings.ToLower(c) {
		case ChallengeHTTP01:
			httpOK = true
		case ChallengeTLSALPN01:
			alpnOK = true
		case "dns-01":
			return nil, errors.New("tlsconf: ACME.Challenges: dns-01 is not built in; for wildcard names use mode files with a certificate obtained by DNS-01 elsewhere")
		default:
			return nil, fmt.Errorf("tlsconf: ACME.Challenges: unknown challenge %q (want %q or %q)", c, ChallengeHTTP01, ChallengeTLSALPN01)
		}
	}
	if ao.Lifetime < 0 {
		return nil, fmt.Errorf("tlsconf: ACME.Lifetime %v is negative", ao.Lifetime)
	}
	if ao.RenewalWindowRatio < 0 || ao.RenewalWindowRatio >= 1 {
		return nil, fmt.Errorf("tlsconf: ACME.RenewalWindowRatio %v is outside (0, 1)", ao.RenewalWindowRatio)
	}
	var roots *x509.CertPool
	if ao.CARoot != "" {
		if roots, err = loadCertPool(ao.CARoot); err != nil {
			return nil, err
		}
	}
	storage := o.Storage
	if storage == nil {
		if o.DataDir == "" {
			return nil, errors.New("tlsconf: mode acme needs DataDir (for certificate storage) or Storage")
		}
		storage = &certmagic.FileStorage{Path: filepath.Join(o.DataDir, "certmagic")}
	}
	ca := ao.CA
	if ca == "" {
		ca = certmagic.LetsEncryptProductionCA
	}
	a := &acmeManager{
		log:      m.log.Named("acme"),
		now:      m.now,
		ca:       ca,
		domains:  domains,
		tlsALPN:  alpnOK,
		sync:     ao.SyncInterval,
		storage:  storage,
		failures: make(map[string]error),
	}
	if a.sync <= 0 {
		a.sync = DefaultSyncInterval
	}
	cmLog := m.log.Named("certmagic")
	a.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   a.configForCert,
		RenewCheckInterval: ao.RenewCheckInterval,
		Logger:             cmLog,
	})
	newConfig := func(od *certmagic.OnDemandConfig) (*certmagic.Config, *certmagic.ACMEIssuer) {
		defaultName := ""
		if len(domains) > 0 {
			defaultName = domains[0]
		}
		cfg := certmagic.New(a.cache, certmagic.Config{
			Storage:            storage,
			Logger:             cmLog,
			OnDemand:           od,
			RenewalWindowRatio: ao.RenewalWindowRatio,
			DefaultServerName:  defaultName,
			OnEvent:            a.onEvent,
			ShouldEmitFunc:     func(event string) bool { return event == "cert_failed" || event == "cert_obtained" },
		})
		iss := certmagic.NewACMEIssuer(cfg, certmagic.ACMEIssuer{
			CA:                      ca,
			Email:                   ao.Email,
			Agreed:                  true,
			Profile:                 ao.Profile,
			NotAfter:                ao.Lifetime,
			TrustedRoots:            roots,
			DisableHTTPChallenge:    !httpOK,
			DisableTLSALPNChallenge: !alpnOK,
			AltHTTPPort:             ao.AltHTTPPort,
			AltTLSALPNPort:          ao.AltTLSALPNPort,
			ListenHost:              ao.ListenHost,
			Logger:                  cmLog,
		})
		cfg.Issuers = []certmagic.Issuer{iss}
		return cfg, iss
	}
	a.cfg, a.issuer = newConfig(nil)
	if ao.OnDemand {
		allow := ao.OnDemandAllow
		a.odCfg, _ = newConfig(&certmagic.OnDemandConfig{
			DecisionFunc: func(ctx context.Context, name string) error {
				if slices.Contains(a.domains, name) {
					// Configured domains are obtained in the background only.
					return fmt.Errorf("tlsconf: %s is managed in the background and has no certificate yet", name)
				}
				return allow(ctx, name)
			},
		})
	}
	return a, nil
}

// acmeDomains normalizes ACME.Domains and refuses names ACME cannot serve
// with HTTP-01 or TLS-ALPN-01.
func acmeDomains(in []string) ([]string, error) {
	var out []string
	for _, d := range in {
		d = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
		switch {
		case d == "":
			continue
		case strings.Contains(d, "*"):
			return nil, fmt.Errorf("tlsconf: ACME.Domains: wildcard %q needs the DNS-01 challenge, which is not built in; serve a certificate obtained elsewhere in mode files, or use ACME.OnDemand", d)
		case !certmagic.SubjectQualifiesForCert(d):
			return nil, fmt.Errorf("tlsconf: ACME.Domains: %q is not a valid certificate name", d)
		}
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out, nil
}

// configForCert tells certmagic's cache which Config manages a certificate.
func (a *acmeManager) configForCert(c certmagic.Certificate) (*certmagic.Config, error) {
	if a.odCfg == nil {
		return a.cfg, nil
	}
	for _, n := range c.Names {
		if slices.Contains(a.domains, n) {
			return a.cfg, nil
		}
	}
	return a.odCfg, nil
}

// getCertificate serves handshakes, including TLS-ALPN-01 validations.
func (a *acmeManager) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if a.odCfg != nil {
		return a.odCfg.GetCertificate(hello)
	}
	return a.cfg.GetCertificate(hello)
}

func (a *acmeManager) handleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	return a.issuer.HandleHTTPChallenge(w, r)
}

// onEvent records the outcome of each order for Ready.
func (a *acmeManager) onEvent(_ context.Context, event string, data map[string]any) error {
	id, _ := data["identifier"].(string)
	if id == "" {
		return nil
	}
	switch event {
	case "cert_failed":
		err, _ := data["error"].(error)
		if err == nil {
			err = errors.New("unknown error")
		}
		a.mu.Lock()
		a.failures[id] = err
		a.mu.Unlock()
	case "cert_obtained":
		a.mu.Lock()
		delete(a.failures, id)
		a.mu.Unlock()
	}
	return nil
}

// start begins managing the domains in the background and syncing with
// storage; wg tracks the sync goroutine.
func (a *acmeManager) start(ctx context.Context, wg *sync.WaitGroup) error {
	a.mu.Lock()
	a.startedAt = a.now()
	a.mu.Unlock()
	if err := a.cfg.ManageAsync(ctx, a.domains); err != nil {
		return fmt.Errorf("tlsconf: starting ACME management: %w", err)
	}
	a.log.Info("managing certificates", zap.Strings("domains", a.domains), zap.String("ca", a.ca),
		zap.Bool("on_demand", a.odCfg != nil), zap.Duration("sync_interval", a.sync))
	if len(a.domains) == 0 {
		return nil
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(a.sync)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				for _, d := range a.domains {
					if err := a.syncDomain(ctx, d); err != nil && ctx.Err() == nil {
						a.log.Warn("comparing the served certificate with storage", zap.String("domain", d), zap.Error(err))
					}
				}
			}
		}
	}()
	return nil
}

// syncDomain serves the certificate in storage for domain if it is newer
// than the one served, for example because another replica renewed it.
func (a *acmeManager) syncDomain(ctx context.Context, domain string) error {
	stored, err := a.storage.Load(ctx, certmagic.StorageKeys.SiteCert(a.issuer.IssuerKey(), domain))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // not obtained yet
	}
	if err != nil {
		return err
	}
	block, _ := pem.Decode(stored)
	if block == nil || block.Type != "CERTIFICATE" {
		return fmt.Errorf("tlsconf: stored certificate for %s is not PEM", domain)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("tlsconf: stored certificate for %s: %w", domain, err)
	}
	served := a.exactCerts(domain)
	var current *certmagic.Certificate
	var newest time.Time
	for i, c := range served {
		if string(c.Leaf.Raw) == string(leaf.Raw) {
			current = &served[i]
		}
		if c.Leaf.NotBefore.After(newest) {
			newest = c.Leaf.NotBefore
		}
	}
	loaded := false
	if current == nil {
		// Issuance time decides which certificate is newer: a renewal may
		// expire before its predecessor (another profile or lifetime), and
		// two issued within the same second are equal, in which case
		// storage wins.
		if len(served) > 0 && leaf.NotBefore.Before(newest) {
			return nil // storage holds an older certificate than the one served
		}
		cert, err := a.cfg.CacheManagedCertificate(ctx, domain)
		if err != nil {
			return err
		}
		current, loaded = &cert, true
	}
	// Serve the stored certificate only. Another copy can be cached next to
	// it when certmagic's own obtain or renewal job loads the same name
	// concurrently, and the cache would then serve whichever comes first.
	var old []string
	for _, c := range served {
		if c.Hash() != current.Hash() {
			old = append(old, c.Hash())
		}
	}
	if len(old) > 0 {
		a.cache.Remove(old)
	}
	if loaded || len(old) > 0 {
		a.log.Info("serving the certificate found in storage", zap.String("domain", domain),
			zap.Time("not_after", current.Leaf.NotAfter), zap.Int("replaced", len(old)))
	}
	return nil
}

// exactCerts returns the cached certificates whose names include domain.
func (a *acmeManager) exactCerts(domain string) []certmagic.Certificate {
	var out []certmagic.Certificate
	for _, c := range a.cache.AllMatchingCertificates(domain) {
		if c.Leaf != nil && slices.Contains(c.Names, domain) {
			out = append(out, c)
		}
	}
	return out
}

// validCert returns the latest-expiring currently valid certificate for domain.
func (a *acmeManager) validCert(domain string) (*x509.Certificate, bool) {
	now := a.now()
	var best *x509.Certificate
	for _, c := range a.exactCerts(domain) {
		if now.Before(c.Leaf.NotBefore) || now.After(c.Leaf.NotAfter) {
			continue
		}
		if best == nil || c.Leaf.NotAfter.After(best.NotAfter) {
			best = c.Leaf
		}
	}
	return best, best != nil
}

func (a *acmeManager) ready() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, d := range a.domains {
		if _, ok := a.validCert(d); ok {
			continue
		}
		if err := a.failures[d]; err != nil {
			return &NotReadyError{
				Name:   d,
				Reason: "ACME order failed at " + a.ca,
				Err:    err,
				Hint:   "s3seal retries with backoff; check the CA URL and ACME.CARoot, that the name resolves to this host, and that the CA reaches the HTTP-01 (port 80) or TLS-ALPN-01 (port 443) listener",
			}
		}
		if a.startedAt.IsZero() {
			return &NotReadyError{Name: d, Reason: "ACME management has not been started"}
		}
		return &NotReadyError{
			Name:   d,
			Reason: fmt.Sprintf("ACME order in progress for %s", a.now().Sub(a.startedAt).Round(time.Second)),
			Hint:   "see the tls.certmagic log for progress",
		}
	}
	return nil
}

func (a *acmeManager) notAfter() time.Time {
	var earliest time.Time
	for _, d := range a.domains {
		leaf, ok := a.validCert(d)
		if !ok {
			continue
		}
		if earliest.IsZero() || leaf.NotAfter.Before(earliest) {
			earliest = leaf.NotAfter
		}
	}
	return earliest
}

func (a *acmeManager) renewNow(ctx context.Context) error {
	for _, d := range a.domains {
		if err := a.cfg.RenewCertAsync(ctx, d, true); err != nil {
			return fmt.Errorf("tlsconf: renewing %s: %w", d, err)
		}
		if err := a.syncDomain(ctx, d); err != nil {
			return fmt.Errorf("tlsconf: serving the renewed certificate for %s: %w", d, err)
		}
	}
	return nil
}

func (a *acmeManager) close() {
	a.cache.Stop()
}
