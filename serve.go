package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/s3seal/s3seal/config"
	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/keyspec"
	"github.com/s3seal/s3seal/crypto/keys/kmip"
	"github.com/s3seal/s3seal/crypto/keys/local"
	"github.com/s3seal/s3seal/crypto/keys/pkcs11"
	"github.com/s3seal/s3seal/crypto/keys/uploadkey"
	"github.com/s3seal/s3seal/deploy/sdnotify"
	"github.com/s3seal/s3seal/deploy/tlsconf"
	"github.com/s3seal/s3seal/proxy"
	"github.com/s3seal/s3seal/proxy/authz"
	"github.com/s3seal/s3seal/proxy/checksum"
	"github.com/s3seal/s3seal/proxy/policy"
	s3proto "github.com/s3seal/s3seal/proxy/s3"
	"github.com/s3seal/s3seal/proxy/sigv4"
	"github.com/s3seal/s3seal/proxy/upstream"
)

const serveUsage = `Usage: s3seal serve [--config FILE] [flags]

Runs the proxy. Settings come from, later ones winning: built-in defaults,
the YAML file (--config, or S3SEAL_CONFIG), the environment variables below,
and these flags. Every error names the file key and the variable to change.

Flags:
`

// serveFlags are the command-line flags of "s3seal serve".
type serveFlags struct {
	file, listen, admin, mode, level *string
}

// newServeFlags defines serve's flags; its usage lists them and every
// environment variable.
func newServeFlags(stderr io.Writer) (*flag.FlagSet, serveFlags) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := serveFlags{
		file:   fs.String("config", "", "YAML configuration `FILE` (default $S3SEAL_CONFIG)"),
		listen: fs.String("listen", "", "S3 listener `host:port` (S3SEAL_LISTEN, default "+config.DefaultListen+")"),
		admin:  fs.String("admin-listen", "", "admin listener `host:port`: /healthz, /readyz, /metrics (S3SEAL_ADMIN_LISTEN, default "+config.DefaultAdminListen+")"),
		mode:   fs.String("mode", "", "default policy `mode`: passthrough, sse-s3, sse-kms, sse-c, envelope or deny (S3SEAL_MODE)"),
		level:  fs.String("log-level", "", "log `level`: debug, info, warn, error (S3SEAL_LOG_LEVEL)"),
	}
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprint(w, serveUsage)
		fs.PrintDefaults()
		fmt.Fprint(w, envReference())
	}
	return fs, f
}

// serve runs "s3seal serve".
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, flags := newServeFlags(stderr)
	file, listen, admin, mode, level := flags.file, flags.listen, flags.admin, flags.mode, flags.level
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "s3seal serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	src := config.Source{File: *file, Overrides: func(c *config.Config) {
		set := func(dst *string, v string) {
			if v != "" {
				*dst = v
			}
		}
		set(&c.Listen, *listen)
		set(&c.AdminListen, *admin)
		set(&c.Mode, *mode)
		set(&c.Log.Level, *level)
	}}
	cfg, err := config.Load(src)
	if err != nil {
		fmt.Fprintf(stderr, "s3seal: %v\n", err)
		return 1
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "s3seal: %v\n", err)
		return 1
	}
	defer func() { _ = log.Sync() }()

	// SIGHUP is caught from here on: one arriving while s3seal starts (or
	// right after READY=1) becomes a reload instead of ending the process,
	// which is Go's default for an unhandled SIGHUP.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	// Start-up failures are printed the way configuration errors are: one
	// plain line saying what to change, not a log record.
	listeners := []listenerSetting{
		{"listen", "S3SEAL_LISTEN", "--listen", cfg.Listen},
		{"admin_listen", "S3SEAL_ADMIN_LISTEN", "--admin-listen", cfg.AdminListen},
		{"tls.http_listen", "S3SEAL_HTTP_LISTEN", "", cfg.TLS.HTTPListen},
	}
	app, err := newApp(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "s3seal: cannot start: %v\n", err)
		return 1
	}
	if err := app.Start(ctx); err != nil {
		_ = app.Close(time.Second)
		fmt.Fprintf(stderr, "s3seal: cannot start: %v\n", explainListenError(err, listeners))
		return 1
	}
	fmt.Fprintf(stdout, "s3seal listening on %s (admin %s)\n", app.server.Addr(), app.server.AdminAddr())
	var sd sdnotify.Notifier
	notify := func(what string, f func() (bool, error)) {
		if _, err := f(); err != nil {
			log.Warn("sd_notify failed", zap.String("state", what), zap.Error(err))
		}
	}
	notify("READY", sd.Ready)
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
			notify("STOPPING", sd.Stopping)
			if err := app.Close(cfg.Limits.ShutdownTimeout.D()); err != nil {
				log.Warn("shutdown", zap.Error(err))
			}
			return 0
		case err := <-app.server.Errors():
			log.Error("listener failed", zap.Error(err))
			notify("STOPPING", sd.Stopping)
			_ = app.Close(cfg.Limits.ShutdownTimeout.D())
			return 1
		case <-hup:
			notify("RELOADING", sd.Reloading)
			if err := app.Reload(ctx, src); err != nil {
				log.Error("reload refused; the previous configuration stays in force", zap.Error(err))
			} else {
				log.Info("configuration reloaded")
			}
			notify("READY", sd.Ready)
		}
	}
}

// newAuditLogger opens the audit log: "" for none, "stdout", "stderr" or a
// file path (appended to, mode 0600).
func newAuditLogger(dest string) (*zap.Logger, func() error, error) {
	if dest == "" {
		return zap.NewNop(), func() error { return nil }, nil
	}
	var ws zapcore.WriteSyncer
	closeFn := func() error { return nil }
	switch dest {
	case "stdout":
		ws = zapcore.Lock(os.Stdout)
	case "stderr":
		ws = zapcore.Lock(os.Stderr)
	default:
		f, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("audit (S3SEAL_AUDIT): %w", err)
		}
		ws = zapcore.Lock(f)
		closeFn = func() error { _ = f.Sync(); return f.Close() }
	}
	ec := zap.NewProductionEncoderConfig()
	ec.TimeKey = "time"
	ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	ec.LevelKey = ""
	core := zapcore.NewCore(zapcore.NewJSONEncoder(ec), ws, zapcore.InfoLevel)
	return zap.New(core).With(zap.String("log", "audit")), closeFn, nil
}

// newLogger builds the JSON (or console) logger writing to w.
func newLogger(c config.Log, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, err
	}
	ec := zap.NewProductionEncoderConfig()
	ec.TimeKey = "time"
	ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	var enc zapcore.Encoder = zapcore.NewJSONEncoder(ec)
	if c.Format == "console" {
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	}
	core := zapcore.NewCore(enc, zapcore.AddSync(w), lvl)
	return zap.New(core, zap.ErrorOutput(zapcore.AddSync(w))), nil
}

// app is a running s3seal: its handler, listeners and certificates.
type app struct {
	cfg     *config.Config
	log     *zap.Logger
	handler *proxy.Handler
	server  *proxy.Server
	certs   *tlsconf.Manager
	up      *upstream.Client
	metrics *proxy.Metrics
	// keys are the key providers of the configuration in force.
	keys atomic.Pointer[keyParts]
	// closeAudit flushes and closes the audit log.
	closeAudit func() error
}

// newApp builds s3seal from a validated configuration.
func newApp(ctx context.Context, cfg *config.Config, log *zap.Logger) (*app, error) {
	ups, err := newUpstream(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	up := ups.client
	metrics := proxy.NewMetrics(version())
	audit, closeAudit, err := newAuditLogger(cfg.Audit)
	if err != nil {
		return nil, err
	}
	rt, kp, err := newRuntime(ctx, cfg, log, metrics)
	if err != nil {
		return nil, err
	}
	h, err := proxy.NewHandler(proxy.Options{
		Runtime:              rt,
		Upstream:             up,
		BodyReadTimeout:      cfg.Limits.BodyReadTimeout.D(),
		WriteTimeout:         cfg.Limits.WriteTimeout.D(),
		MaxRequests:          cfg.Limits.MaxRequests,
		MaxRequestsPerClient: cfg.Limits.MaxRequestsPerClient,
		S3ECMaxObjectSize:    cfg.Limits.S3ECMaxObjectSize,
		DefaultChecksum:      defaultChecksum(cfg.Upstream.Checksum),
		Metrics:              metrics,
		Audit:                audit,
		Logger:               log.Named("s3"),
	})
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, log: log, handler: h, up: up, metrics: metrics, closeAudit: closeAudit}
	a.keys.Store(kp)
	metrics.Register(proxy.CacheCollector(func() *keys.Cache { return a.keys.Load().active() }))
	if cfg.TLS.Mode != "off" {
		to := tlsOptions(cfg, log)
		if cfg.TLS.Storage.Type == "s3" {
			to.Storage, err = tlsconf.NewS3Storage(tlsconf.S3StorageOptions{
				Client: ups.s3Client(cfg.Upstream.Region),
				Bucket: cfg.TLS.Storage.Bucket,
				Prefix: cfg.TLS.Storage.Prefix,
				Logger: log.Named("certstorage"),
			})
			if err != nil {
				return nil, err
			}
		}
		if cfg.TLS.ACME.OnDemand {
			to.ACME.OnDemandAllow = func(_ context.Context, name string) error { return h.AllowCertificateFor(name) }
		}
		if _, port, err := net.SplitHostPort(cfg.Listen); err == nil {
			to.HTTPSPort, _ = strconv.Atoi(port)
		}
		a.certs, err = tlsconf.New(ctx, to)
		if err != nil {
			return nil, err
		}
	} else {
		log.Warn("TLS is off: clients send credentials and data in plain text", zap.String("listen", cfg.Listen))
	}
	if cfg.Sidecar.TrustLoopback || cfg.Sidecar.TrustClientCert {
		log.Warn("sidecar trust is on: requests from trusted peers are accepted without checking their signature secret",
			zap.Bool("trust_loopback", cfg.Sidecar.TrustLoopback),
			zap.Bool("trust_client_cert", cfg.Sidecar.TrustClientCert),
			zap.String("identity", cfg.Sidecar.Client))
	}
	if a.certs != nil {
		metrics.Register(proxy.CertificateExpiry(a.certs.NotAfter))
	}
	so := proxy.ServerOptions{
		Listen:            cfg.Listen,
		Handler:           h,
		AdminListen:       cfg.AdminListen,
		Probe:             up.Probe,
		ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout.D(),
		IdleTimeout:       cfg.Limits.IdleTimeout.D(),
		MaxHeaderBytes:    cfg.Limits.MaxHeaderBytes,
		Logger:            log.Named("server"),
	}
	so.Admin = map[string]http.Handler{"GET /metrics": metrics.Handler()}
	if cfg.Pprof {
		so.Admin["/debug/pprof/"] = http.HandlerFunc(pprof.Index)
		so.Admin["/debug/pprof/cmdline"] = http.HandlerFunc(pprof.Cmdline)
		so.Admin["/debug/pprof/profile"] = http.HandlerFunc(pprof.Profile)
		so.Admin["/debug/pprof/symbol"] = http.HandlerFunc(pprof.Symbol)
		so.Admin["/debug/pprof/trace"] = http.HandlerFunc(pprof.Trace)
	}
	if a.certs != nil {
		so.TLS = a.certs.TLSConfig()
		so.Ready = a.certs.Ready
		if cfg.TLS.HTTPListen != "" {
			so.HTTPListen = cfg.TLS.HTTPListen
			so.HTTPHandler = a.certs.HTTPChallengeHandler(nil)
		}
	}
	a.server, err = proxy.NewServer(so)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Start binds the listeners and starts certificate management.
func (a *app) Start(ctx context.Context) error {
	if err := a.server.Start(); err != nil {
		return err
	}
	if a.certs != nil {
		if err := a.certs.Start(ctx); err != nil {
			return err
		}
	}
	go a.checkUpstream(ctx, a.cfg.Upstream.Endpoint, 15*time.Second)
	a.log.Info("s3seal started",
		zap.String("version", version()),
		zap.Stringer("listen", a.server.Addr()),
		zap.Stringer("admin", a.server.AdminAddr()),
		zap.String("tls", a.cfg.TLS.Mode),
		zap.String("mode", a.cfg.Mode),
		zap.String("upstream", a.cfg.Upstream.Endpoint),
		zap.String("region", a.cfg.Upstream.Region))
	return nil
}

// checkUpstream warns once when the upstream does not answer at start-up.
// It does not hold the start back: the store may come up later, and
// requests fail with 503 until it does (/readyz reports it meanwhile).
func (a *app) checkUpstream(ctx context.Context, endpoint string, within time.Duration) {
	pctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	err := a.up.Probe(pctx)
	if err == nil || ctx.Err() != nil {
		return
	}
	if pctx.Err() != nil {
		err = fmt.Errorf("no answer within %v", within)
	}
	a.log.Warn("upstream unreachable: s3seal serves anyway, and S3 requests fail with 503 ServiceUnavailable until it answers; check upstream.endpoint (AWS_ENDPOINT_URL_S3) and the network",
		zap.String("upstream", endpoint), zap.Error(err))
}

// listenerSetting is one listener address and where it is set.
type listenerSetting struct {
	field, env, flag, addr string
}

// explainListenError turns a failure to bind a listener into a message
// naming the setting (file key, variable, flag) to change.
func explainListenError(err error, ls []listenerSetting) error {
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "listen" || oe.Addr == nil {
		return err
	}
	_, port, _ := net.SplitHostPort(oe.Addr.String())
	var which *listenerSetting
	for i := range ls {
		if _, p, e := net.SplitHostPort(ls[i].addr); e == nil && p == port && ls[i].addr != "" {
			which = &ls[i]
			break
		}
	}
	if which == nil {
		return err
	}
	var names []string
	for _, n := range []string{which.env, which.flag} {
		if n != "" {
			names = append(names, n)
		}
	}
	where := which.field
	if len(names) > 0 {
		where += " (" + strings.Join(names, ", ") + ")"
	}
	how := which.field
	if len(names) > 0 {
		slices.Reverse(names)
		how = strings.Join(names, " or ")
	}
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("%s: %s is already in use by another process: stop it, or choose another address with %s (for example %s)",
			where, which.addr, how, nextPort(which.addr))
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%s: not allowed to listen on %s: ports below 1024 need CAP_NET_BIND_SERVICE; choose a port above 1023 with %s",
			where, which.addr, how)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("%s: %s is not an address of this host; choose another with %s", where, which.addr, how)
	}
	return fmt.Errorf("%s: %w", where, err)
}

// nextPort suggests the address with the next port.
func nextPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	n, err2 := strconv.Atoi(port)
	if err != nil || err2 != nil || n >= 65535 {
		return addr
	}
	return net.JoinHostPort(host, strconv.Itoa(n+1))
}

// envReference lists the environment variables "s3seal serve" reads, each
// with the file key it sets.
func envReference() string {
	var b strings.Builder
	b.WriteString("\nEnvironment variables (each sets the file key beside it; the README's\n" +
		"configuration reference says what every setting means):\n")
	row := func(name, key string) { fmt.Fprintf(&b, "  %-34s %s\n", name, key) }
	row("S3SEAL_CONFIG", "the configuration file (--config)")
	for _, e := range config.EnvVars() {
		row(e[0], e[1])
	}
	row("AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL", "upstream.endpoint")
	row("AWS_REGION, AWS_DEFAULT_REGION", "upstream.region")
	row("AWS_CA_BUNDLE", "upstream.ca_bundle")
	row("AWS_ACCESS_KEY_ID, AWS_PROFILE, ...", "upstream credentials: the AWS default chain")
	row("AWS_ENDPOINT_URL_KMS", "the KMS endpoint of keys: aws-kms:...")
	row("STATE_DIRECTORY", "data_dir's default under systemd")
	return b.String()
}

// Reload re-reads the configuration and atomically replaces what can change
// while running: client identities, policies and keys. Requests in flight
// keep the configuration they started with. A new configuration that does
// not load or validate is refused and the old one kept. Listener addresses,
// the upstream and TLS mode need a restart; a change to them is reported.
func (a *app) Reload(ctx context.Context, src config.Source) error {
	cfg, err := config.Load(src)
	if err != nil {
		return err
	}
	if cfg.Listen != a.cfg.Listen || cfg.AdminListen != a.cfg.AdminListen || cfg.TLS.Mode != a.cfg.TLS.Mode ||
		cfg.Upstream.Endpoint != a.cfg.Upstream.Endpoint {
		a.log.Warn("listener, TLS mode or upstream changed: restart s3seal to apply those; other settings are reloaded")
	}
	rt, kp, err := newRuntime(ctx, cfg, a.log, a.metrics)
	if err != nil {
		return err
	}
	a.handler.SetRuntime(rt)
	// The old configuration's data keys are purged and zeroed now; its
	// provider connections close once requests begun under it are done.
	a.keys.Swap(kp).retire(a.cfg.Limits.ShutdownTimeout.D())
	a.cfg = cfg
	return nil
}

// Close shuts the listeners down gracefully within timeout.
func (a *app) Close(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := a.server.Shutdown(ctx)
	if a.certs != nil {
		err = errors.Join(err, a.certs.Close())
	}
	if a.closeAudit != nil {
		err = errors.Join(err, a.closeAudit())
	}
	if kp := a.keys.Swap(nil); kp != nil {
		kp.retire(0)
	}
	return err
}

func defaultChecksum(name string) checksum.Algorithm {
	switch name {
	case "crc64nvme":
		return checksum.CRC64NVME
	case "crc32c":
		return checksum.CRC32C
	}
	return ""
}

// keyParts are the key providers of one configuration and their data-key
// caches, the active provider's first.
type keyParts struct {
	caches         []*keys.Cache
	closeProviders func()
}

// active returns the active provider's cache, or nil.
func (k *keyParts) active() *keys.Cache {
	if k == nil || len(k.caches) == 0 {
		return nil
	}
	return k.caches[0]
}

// retire ends a configuration's keys once another replaced it: the caches
// are purged and their keys zeroed at once (requests still in flight go
// straight to the providers), and the providers' connections and sessions
// are closed after grace, when those requests are done.
func (k *keyParts) retire(grace time.Duration) {
	if k == nil {
		return
	}
	for _, c := range k.caches {
		c.Close()
	}
	if k.closeProviders != nil {
		time.AfterFunc(grace, k.closeProviders)
	}
}

// keyOptions translates the key provider settings of the configuration.
func keyOptions(cfg *config.Config) keyspec.Options {
	k, p := cfg.KMIP, cfg.PKCS11
	return keyspec.Options{
		KMIP: kmip.Settings{Endpoint: k.Endpoint, ClientCert: k.ClientCert, ClientKey: k.ClientKey, CA: k.CA, ServerName: k.ServerName,
			Timeout: k.Timeout.D(), Retries: k.Retries, Backoff: k.Backoff.D(), MaxIdle: k.MaxIdleConns},
		PKCS11: pkcs11.Settings{Module: p.Module, TokenLabel: p.TokenLabel, Slot: p.Slot, PinFile: p.PinFile, PinEnv: p.PinEnv, Sessions: p.Sessions},
	}
}

// newRuntime builds the reloadable part of the handler's configuration:
// identities, policies and the key providers (each behind its data-key
// cache).
func newRuntime(ctx context.Context, cfg *config.Config, log *zap.Logger, m *proxy.Metrics) (_ *proxy.Runtime, _ *keyParts, err error) {
	ids := make([]proxy.Identity, 0, len(cfg.Clients))
	for _, c := range cfg.Clients {
		ids = append(ids, proxy.Identity{Client: authzClient(c), AccessKeyID: c.AccessKeyID, Secret: c.SecretAccessKey.Value()})
	}
	set := proxy.NewIdentities(ids)
	if cfg.Sidecar.TrustLoopback || cfg.Sidecar.TrustClientCert {
		side := &proxy.Identity{Client: authz.Client{Name: cfg.Sidecar.Client}}
		for _, c := range cfg.Clients {
			if c.Name == cfg.Sidecar.Client {
				side.Client = authzClient(c)
			}
		}
		set.Sidecar = side
		set.TrustLoopback = cfg.Sidecar.TrustLoopback
		set.TrustClientCert = cfg.Sidecar.TrustClientCert
	}
	rt := &proxy.Runtime{
		Identities: set,
		Verifier: &sigv4.Verifier{Lookup: set.Lookup, Region: cfg.Region, DisableSigV2: !cfg.Auth.SigV2Enabled(),
			VirtualHostBucket: func(r *http.Request) string {
				return s3proto.VirtualHostBucket(r, cfg.BaseDomains)
			}},
		Decoder:     &sigv4.Verifier{SkipSignatures: true},
		BaseDomains: cfg.BaseDomains,
		Parse: s3proto.ParseOptions{
			BaseDomains: cfg.BaseDomains,
			Keys:        s3proto.KeyRules{Literal: cfg.Upstream.LiteralKeys},
		},
	}
	if cfg.TLS.Storage.Type == "s3" {
		rt.Reserved = append(rt.Reserved, authz.Reserved{Bucket: cfg.TLS.Storage.Bucket, Prefix: cfg.TLS.Storage.Prefix,
			Why: "it holds s3seal's certificates and private keys"})
	}
	// Envelope uploads keep their state under .s3seal/ in the buckets
	// envelope rules govern.
	for _, b := range envelopeBuckets(cfg) {
		r := proxy.UploadStateReserved
		r.Bucket = b
		rt.Reserved = append(rt.Reserved, r)
	}
	kp := &keyParts{}
	if cfg.Keys != "" {
		var raw []keys.Provider
		set, closeProviders, err := keyspec.OpenSet(ctx, cfg.Keys, cfg.ReadKeys, keyOptions(cfg), func(p keys.Provider) keys.Provider {
			raw = append(raw, p)
			c := keys.NewCache(m.InstrumentProvider(p), keys.CacheConfig{
				ReuseObjects: cfg.KeysCache.ReuseObjects,
				ReuseAge:     cfg.KeysCache.ReuseAge.D(),
				RetryAfter:   cfg.KeysCache.RetryAfter.D(),
			})
			kp.caches = append(kp.caches, c)
			return c
		})
		if err != nil {
			return nil, nil, fmt.Errorf("keys (S3SEAL_KEYS): %w", err)
		}
		kp.closeProviders = closeProviders
		if lp, ok := raw[0].(*local.Provider); ok {
			rt.Keyring = lp.Keyring()
		}
		if fu, ok := raw[0].(keys.ForeignUnwrapper); ok {
			rt.S3EC = m.InstrumentForeign(raw[0].Name(), fu)
		}
		rt.Keys = set
		names := make([]string, len(raw))
		for i, p := range raw {
			names[i] = p.Name()
		}
		log.Info("key provider ready", zap.String("provider", raw[0].Name()), zap.Strings("read_only", names[1:]))
	}
	if rt.Keys != nil && keys.CapabilitiesOf(rt.Keys).WriteOnly || cfg.UploadKey != "" {
		uk, err := uploadkey.Load(cfg.UploadKey, cfg.DataDir, os.LookupEnv)
		if err != nil {
			return nil, nil, fmt.Errorf("upload_key (S3SEAL_UPLOAD_KEY): %w", err)
		}
		rt.UploadKeys = uk.Keys
		log.Info("upload key ready: every replica of this write-only gateway must share it, or a multipart upload fails on the replicas that do not hold it",
			zap.String("source", uk.Source), zap.Bool("generated", uk.Generated), zap.String("key_id", uk.ID()), zap.Int("old_keys", len(uk.Keys)-1))
	}
	rules := make([]policy.Rule, 0, len(cfg.Policies))
	for _, p := range cfg.Policies {
		rules = append(rules, policy.Rule{
			Name: p.Name, Bucket: p.Bucket, Prefix: p.Prefix, Mode: policy.Mode(p.Mode),
			KMSKeyID: p.KMSKeyID, KMSContext: p.KMSContext, BucketKey: p.BucketKey,
			SSECKey:   p.SSECKey,
			ClientSSE: policy.ClientSSE(p.ClientSSE), ClientSSEC: policy.ClientSSEC(p.ClientSSEC),
			AllowHTTP: p.AllowHTTP, AllowPlaintextReads: p.AllowPlaintextReads, AllowS3ECReads: p.AllowS3ECReads,
			PlaintextBefore: plaintextBefore(p.PlaintextBefore),
			Deny:            policy.DenyScope(p.Deny), Message: p.Message,
		})
	}
	engine, err := policy.New(rules, policy.Rule{Name: "default", Mode: policy.Mode(cfg.Mode)})
	if err != nil {
		kp.retire(0)
		return nil, nil, fmt.Errorf("policies: %w", err)
	}
	rt.Policy = engine
	upURL, err := url.Parse(cfg.Upstream.Endpoint)
	if err != nil {
		kp.retire(0)
		return nil, nil, fmt.Errorf("upstream.endpoint: %w", err)
	}
	rt.SSE = proxy.NewSSE(proxy.SSEOptions{Keyring: rt.Keyring, PlainHTTPUpstream: upURL.Scheme == "http"})
	if err := rt.SSE.CheckRules(engine); err != nil {
		kp.retire(0)
		return nil, nil, fmt.Errorf("policies: %w", err)
	}
	return rt, kp, nil
}

// newUpstream builds the upstream client: endpoint, credentials from the
// file or the AWS default chain, and TLS roots (system + AWS_CA_BUNDLE).
func newUpstream(ctx context.Context, cfg *config.Config, log *zap.Logger) (*upstreamParts, error) {
	u := cfg.Upstream
	ep, err := url.Parse(u.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("upstream.endpoint: %w", err)
	}
	var creds aws.CredentialsProvider
	if u.AccessKeyID != "" {
		creds = credentials.NewStaticCredentialsProvider(u.AccessKeyID, u.SecretAccessKey.Value(), u.SessionToken.Value())
	} else {
		opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(u.Region)}
		if u.Profile != "" {
			opts = append(opts, awsconfig.WithSharedConfigProfile(u.Profile))
		}
		ac, err := awsconfig.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("upstream credentials: %w", err)
		}
		if ac.Credentials == nil {
			return nil, errors.New("upstream credentials: none found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, or upstream.access_key_id in the file")
		}
		creds = ac.Credentials
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if u.CABundle != "" {
		pem, err := os.ReadFile(u.CABundle)
		if err != nil {
			return nil, fmt.Errorf("upstream.ca_bundle (AWS_CA_BUNDLE): %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("upstream.ca_bundle (AWS_CA_BUNDLE): %s holds no PEM certificates", u.CABundle)
		}
	}
	pathStyle := ep.Hostname() != "" && !isAWS(ep)
	if u.PathStyle != nil {
		pathStyle = *u.PathStyle
	}
	c, err := upstream.New(upstream.Options{
		Endpoint:              ep,
		Region:                u.Region,
		PathStyle:             pathStyle,
		Credentials:           creds,
		RootCAs:               roots,
		DialTimeout:           u.DialTimeout.D(),
		ResponseHeaderTimeout: u.ResponseHeaderTimeout.D(),
		IdleConnTimeout:       u.IdleConnTimeout.D(),
		MaxIdleConnsPerHost:   u.MaxIdleConnsPerHost,
		MaxConnsPerHost:       2 * cfg.Limits.MaxRequests,
		InstanceID:            proxy.NewInstanceID(),
		Logger:                log.Named("upstream"),
	})
	if err != nil {
		return nil, err
	}
	return &upstreamParts{client: c, creds: creds, roots: roots, endpoint: ep, pathStyle: pathStyle}, nil
}

// upstreamParts are the upstream client and what it was built from, so
// that other users of the store (certificate storage) reach it the same
// way.
type upstreamParts struct {
	client    *upstream.Client
	creds     aws.CredentialsProvider
	roots     *x509.CertPool
	endpoint  *url.URL
	pathStyle bool
}

// s3Client returns an aws-sdk-go-v2 S3 client for the upstream, with
// s3seal's upstream credentials and trust roots.
func (u *upstreamParts) s3Client(region string) *s3.Client {
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.TLSClientConfig = &tls.Config{RootCAs: u.roots, MinVersion: tls.VersionTLS12}
	})
	return s3.New(s3.Options{
		Region:       region,
		BaseEndpoint: aws.String(u.endpoint.String()),
		UsePathStyle: u.pathStyle,
		Credentials:  u.creds,
		HTTPClient:   hc,
	})
}

func isAWS(u *url.URL) bool {
	h := u.Hostname()
	return len(h) > len(".amazonaws.com") && h[len(h)-len(".amazonaws.com"):] == ".amazonaws.com"
}

// tlsOptions translates the configuration for the certificate manager.
func tlsOptions(cfg *config.Config, log *zap.Logger) tlsconf.Options {
	t := cfg.TLS
	o := tlsconf.Options{
		Mode:         tlsconf.Mode(t.Mode),
		DataDir:      cfg.DataDir,
		CertFile:     t.CertFile,
		KeyFile:      t.KeyFile,
		ClientCAFile: t.ClientCAFile,
		ClientAuth:   t.ClientAuth,
		PreferHTTP2:  t.PreferHTTP2,
		Logger:       log.Named("tls"),
		ACME: tlsconf.ACMEOptions{
			Domains:        t.ACME.Domains,
			Email:          t.ACME.Email,
			CA:             t.ACME.CA,
			CARoot:         t.ACME.CARoot,
			Challenges:     t.ACME.Challenges,
			AltHTTPPort:    t.ACME.AltHTTPPort,
			AltTLSALPNPort: t.ACME.AltTLSALPNPort,
			OnDemand:       t.ACME.OnDemand,
		},
	}
	if t.MinVersion == "1.3" {
		o.MinVersion = 0x0304
	}
	// Any challenge listener certmagic opens itself binds where s3seal's
	// own listeners do, never every interface by surprise.
	hostOf := func(addr string) string {
		h, _, _ := net.SplitHostPort(addr)
		return h
	}
	o.ACME.ListenHost = hostOf(cfg.Listen)
	if t.HTTPListen != "" {
		o.ACME.ListenHost = hostOf(t.HTTPListen)
	}
	return o
}

// authzClient translates a configured client into what authorization
// decides with.
func authzClient(c config.Client) authz.Client {
	out := authz.Client{Name: c.Name, Buckets: c.Buckets, Admin: c.Admin}
	for _, p := range c.Permissions {
		g := authz.Grant{Bucket: p.Bucket, Prefix: p.Prefix}
		for _, a := range p.Actions {
			// Validated by config.
			act, _ := authz.ParseAction(a)
			g.Actions = append(g.Actions, act)
		}
		out.Grants = append(out.Grants, g)
	}
	return out
}

// envelopeBuckets returns the bucket patterns envelope rules govern ("*"
// when the default mode or a rule without a bucket is envelope).
func envelopeBuckets(cfg *config.Config) []string {
	if cfg.Mode == "envelope" {
		return []string{"*"}
	}
	var out []string
	for _, p := range cfg.Policies {
		if p.Mode != "envelope" {
			continue
		}
		if p.Bucket == "" {
			return []string{"*"}
		}
		out = append(out, p.Bucket)
	}
	return out
}

// plaintextBefore parses a rule's plaintext_before (validated by config).
func plaintextBefore(v string) time.Time {
	if v == "" {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339, v)
	return t
}
