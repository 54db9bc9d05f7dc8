package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults.
const (
	DefaultListen      = "127.0.0.1:8443"
	DefaultAdminListen = "127.0.0.1:9180"
	DefaultRegion      = "us-east-1"
)

// Validate fills defaults in place and checks every field. It returns the
// first problem found as a *FieldError, joined with any others.
func (c *Config) Validate() error {
	v := &validator{}
	c.defaults()

	v.hostPort("listen", "S3SEAL_LISTEN", c.Listen)
	v.hostPort("admin_listen", "S3SEAL_ADMIN_LISTEN", c.AdminListen)
	if sameAddr(c.Listen, c.AdminListen) {
		v.fail("admin_listen", "S3SEAL_ADMIN_LISTEN", "must differ from listen: admin paths such as /healthz are valid bucket names on the S3 listener")
	}
	for i, d := range c.BaseDomains {
		if strings.Trim(d, ".") == "" || strings.ContainsAny(d, "/: ") {
			v.fail(fmt.Sprintf("base_domains[%d]", i), "S3SEAL_BASE_DOMAINS", fmt.Sprintf("%q is not a DNS name", d))
		}
	}
	c.validateTLS(v)
	c.validateClients(v)
	c.validateUpstream(v)

	if !slices.Contains(modes, c.Mode) {
		v.fail("mode", "S3SEAL_MODE", fmt.Sprintf("unknown mode %q; want one of %s", c.Mode, strings.Join(modes, ", ")))
	}
	c.validatePolicies(v)
	c.validateKeys(v)
	switch {
	case c.Mode == "envelope" && c.Keys == "":
		v.fail("keys", "S3SEAL_KEYS", "mode envelope needs a key provider: set keys to local:<file> (create one with `s3seal keygen -o FILE`), aws-kms:<key id>, kmip:<unique id> or pkcs11:<key label>")
	case c.Mode == "sse-c" && c.Keys == "":
		v.fail("keys", "S3SEAL_KEYS", "mode sse-c derives each object's key from a local key ring: set keys to local:<file> (create one with `s3seal keygen -o FILE`)")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		v.fail("log.level", "S3SEAL_LOG_LEVEL", fmt.Sprintf("want debug, info, warn or error, got %q", c.Log.Level))
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		v.fail("log.format", "S3SEAL_LOG_FORMAT", fmt.Sprintf("want json or console, got %q", c.Log.Format))
	}
	if c.Limits.MaxHeaderBytes < 4096 {
		v.fail("limits.max_header_bytes", "", "must be at least 4096")
	}
	if c.Limits.S3ECMaxObjectSize < 0 || c.Limits.S3ECMaxObjectSize > 16<<30 {
		v.fail("limits.s3ec_max_object_size", "", "must be between 1 byte and 16 GiB (it is held in memory)")
	}
	if c.Limits.MaxRequests < 1 {
		v.fail("limits.max_requests", "", fmt.Sprintf("must be at least 1, got %d", c.Limits.MaxRequests))
	}
	if c.Limits.MaxRequestsPerClient < 1 || c.Limits.MaxRequestsPerClient > c.Limits.MaxRequests {
		v.fail("limits.max_requests_per_client", "", fmt.Sprintf("must be between 1 and limits.max_requests (%d), got %d", c.Limits.MaxRequests, c.Limits.MaxRequestsPerClient))
	}
	// A negative timeout would switch the protection off without a word.
	for _, d := range []struct {
		field string
		v     Duration
	}{
		{"limits.read_header_timeout", c.Limits.ReadHeaderTimeout}, {"limits.idle_timeout", c.Limits.IdleTimeout},
		{"limits.body_read_timeout", c.Limits.BodyReadTimeout}, {"limits.shutdown_timeout", c.Limits.ShutdownTimeout},
		{"limits.write_timeout", c.Limits.WriteTimeout},
		{"upstream.dial_timeout", c.Upstream.DialTimeout}, {"upstream.response_header_timeout", c.Upstream.ResponseHeaderTimeout},
		{"upstream.idle_conn_timeout", c.Upstream.IdleConnTimeout},
		{"keys_cache.reuse_age", c.KeysCache.ReuseAge}, {"keys_cache.retry_after", c.KeysCache.RetryAfter},
	} {
		if d.v < 0 {
			v.fail(d.field, "", fmt.Sprintf("must be positive, got %v", time.Duration(d.v)))
		}
	}
	return v.err()
}

func (c *Config) defaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.AdminListen == "" {
		c.AdminListen = DefaultAdminListen
	}
	if c.Mode == "" {
		c.Mode = "passthrough"
	}
	if c.TLS.Mode == "" {
		c.TLS.Mode = "self-signed"
	}
	if c.TLS.MinVersion == "" {
		c.TLS.MinVersion = "1.2"
	}
	if c.TLS.ClientCAFile != "" && c.TLS.ClientAuth == "" {
		c.TLS.ClientAuth = "require"
	}
	if c.TLS.Storage.Type == "" {
		c.TLS.Storage.Type = "file"
	}
	if len(c.TLS.ACME.Challenges) == 0 {
		c.TLS.ACME.Challenges = []string{"http-01", "tls-alpn-01"}
	}
	for i := range c.Clients {
		if c.Clients[i].Name == "" {
			c.Clients[i].Name = c.Clients[i].AccessKeyID
		}
	}
	if c.Sidecar.Client == "" {
		c.Sidecar.Client = "sidecar"
	}
	u := &c.Upstream
	if u.Region == "" {
		u.Region = DefaultRegion
	}
	if c.Region == "" {
		c.Region = u.Region
	}
	if u.Endpoint == "" {
		u.Endpoint = "https://s3." + u.Region + ".amazonaws.com"
	}
	if u.Checksum == "" {
		u.Checksum = "crc64nvme"
	}
	if u.DialTimeout == 0 {
		u.DialTimeout = Duration(10 * time.Second)
	}
	if u.ResponseHeaderTimeout == 0 {
		u.ResponseHeaderTimeout = Duration(5 * time.Minute)
	}
	if u.IdleConnTimeout == 0 {
		u.IdleConnTimeout = Duration(90 * time.Second)
	}
	if u.MaxIdleConnsPerHost == 0 {
		u.MaxIdleConnsPerHost = 256
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	l := &c.Limits
	if l.ReadHeaderTimeout == 0 {
		l.ReadHeaderTimeout = Duration(10 * time.Second)
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = Duration(120 * time.Second)
	}
	if l.BodyReadTimeout == 0 {
		l.BodyReadTimeout = Duration(60 * time.Second)
	}
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = 64 << 10
	}
	if l.ShutdownTimeout == 0 {
		l.ShutdownTimeout = Duration(30 * time.Second)
	}
	if l.S3ECMaxObjectSize == 0 {
		l.S3ECMaxObjectSize = 64 << 20
	}
	if l.WriteTimeout == 0 {
		l.WriteTimeout = Duration(60 * time.Second)
	}
	if l.MaxRequests == 0 {
		l.MaxRequests = 1024
	}
	if l.MaxRequestsPerClient == 0 {
		l.MaxRequestsPerClient = 256
	}
}

// keyKinds are the key provider kinds of key specs.
var keyKinds = []string{"local", "aws-kms", "kmip", "pkcs11", "age"}

// validateKeys checks the key specs' kinds (package keys parses the rest
// when it opens them) and the settings the kmip and pkcs11 kinds need.
func (c *Config) validateKeys(v *validator) {
	kinds := map[string]bool{}
	check := func(field, env, spec string) {
		kind, rest, _ := strings.Cut(spec, ":")
		if !slices.Contains(keyKinds, kind) || rest == "" {
			v.fail(field, env, `want "local:<key ring file>", "aws-kms:<key id, ARN or alias>", "kmip:<unique id>[,…]", "pkcs11:<key label>[,…]" or "age:<recipients file>[,identity=FILE]"`)
			return
		}
		if kinds[kind] {
			v.fail(field, env, fmt.Sprintf("a second %s key spec: list all keys of one provider in one spec", kind))
		}
		kinds[kind] = true
	}
	if c.Keys != "" {
		check("keys", "S3SEAL_KEYS", c.Keys)
	}
	for i, s := range c.ReadKeys {
		check(fmt.Sprintf("read_keys[%d]", i), "", s)
	}
	if name, ok := strings.CutPrefix(c.UploadKey, "env:"); ok && name == "" {
		v.fail("upload_key", "S3SEAL_UPLOAD_KEY", `want a file path or "env:VAR"`)
	}
	if len(c.ReadKeys) > 0 && c.Keys == "" {
		v.fail("read_keys", "", "needs keys: the provider that new objects use")
	}
	if kinds["kmip"] {
		k := c.KMIP
		if k.Endpoint == "" {
			v.fail("kmip.endpoint", "", "required for the kmip key provider (host:port of the KMIP server)")
		} else {
			v.hostPort("kmip.endpoint", "", k.Endpoint)
		}
		if k.ClientCert == "" || k.ClientKey == "" {
			v.fail("kmip.client_cert", "", "kmip.client_cert and kmip.client_key are required: the KMIP server authenticates s3seal by its client certificate")
		}
		if k.Timeout < 0 || k.Backoff < 0 {
			v.fail("kmip.timeout", "", "timeout and backoff must be positive")
		}
	}
	if kinds["pkcs11"] {
		p := c.PKCS11
		if p.Module == "" {
			v.fail("pkcs11.module", "", "required for the pkcs11 key provider (path of the token's PKCS#11 library)")
		}
		if p.TokenLabel == "" && p.Slot == nil {
			v.fail("pkcs11.token_label", "", "set pkcs11.token_label or pkcs11.slot")
		}
		if (p.PinFile == "") == (p.PinEnv == "") {
			v.fail("pkcs11.pin_file", "", "set exactly one of pkcs11.pin_file and pkcs11.pin_env (the user PIN)")
		}
	}
}

func (c *Config) validateTLS(v *validator) {
	t := &c.TLS
	switch t.Mode {
	case "self-signed":
	case "off":
		if !IsLoopback(c.Listen) && !t.AllowInsecure {
			v.fail("tls.mode", "S3SEAL_TLS", fmt.Sprintf("off is allowed only when listen is a loopback address (listen is %s); set tls.allow_insecure (S3SEAL_TLS_ALLOW_INSECURE=true) to serve plain HTTP beyond this host", c.Listen))
		}
	case "files":
		if t.CertFile == "" {
			v.fail("tls.cert_file", "S3SEAL_TLS_CERT", "required when tls.mode is files")
		}
		if t.KeyFile == "" {
			v.fail("tls.key_file", "S3SEAL_TLS_KEY", "required when tls.mode is files")
		}
	case "acme":
		if len(t.ACME.Domains) == 0 && !t.ACME.OnDemand {
			v.fail("tls.acme.domains", "S3SEAL_ACME_DOMAINS", "at least one domain is required when tls.mode is acme")
		}
		if t.ACME.OnDemand && len(c.BaseDomains) == 0 {
			v.fail("tls.acme.on_demand", "S3SEAL_ACME_ON_DEMAND", "on-demand certificates are issued for <bucket>.<base domain>: set base_domains too")
		}
		for i, ch := range t.ACME.Challenges {
			if ch != "http-01" && ch != "tls-alpn-01" {
				v.fail(fmt.Sprintf("tls.acme.challenges[%d]", i), "S3SEAL_ACME_CHALLENGES", fmt.Sprintf("want http-01 or tls-alpn-01, got %q", ch))
			}
		}
		if t.ACME.CA != "" {
			if u, err := url.Parse(t.ACME.CA); err != nil || u.Scheme != "https" || u.Host == "" {
				v.fail("tls.acme.ca", "S3SEAL_ACME_CA", fmt.Sprintf("want an https directory URL, got %q", t.ACME.CA))
			}
		}
	default:
		v.fail("tls.mode", "S3SEAL_TLS", fmt.Sprintf("want self-signed, files, acme or off, got %q", t.Mode))
	}
	switch t.MinVersion {
	case "1.2", "1.3":
	default:
		v.fail("tls.min_version", "S3SEAL_TLS_MIN_VERSION", fmt.Sprintf("want 1.2 or 1.3 (older versions are not offered), got %q", t.MinVersion))
	}
	switch t.ClientAuth {
	case "", "request", "require":
	default:
		v.fail("tls.client_auth", "S3SEAL_TLS_CLIENT_AUTH", fmt.Sprintf("want request or require, got %q", t.ClientAuth))
	}
	if t.ClientAuth != "" && t.ClientCAFile == "" {
		v.fail("tls.client_ca_file", "S3SEAL_TLS_CLIENT_CA", "required when tls.client_auth is set")
	}
	if t.HTTPListen != "" {
		v.hostPort("tls.http_listen", "S3SEAL_HTTP_LISTEN", t.HTTPListen)
	}
	switch t.Storage.Type {
	case "file":
	case "s3":
		if t.Storage.Bucket == "" {
			v.fail("tls.storage.bucket", "S3SEAL_CERT_STORAGE", "required when tls.storage.type is s3")
		}
	default:
		v.fail("tls.storage.type", "S3SEAL_CERT_STORAGE", fmt.Sprintf("want file or s3, got %q", t.Storage.Type))
	}
}

func (c *Config) validateClients(v *validator) {
	seen := map[string]int{}
	names := map[string]bool{}
	for i, cl := range c.Clients {
		f := fmt.Sprintf("clients[%d]", i)
		env := ""
		if cl.Name == "env" {
			env = "S3SEAL_CLIENT_ACCESS_KEY_ID"
		}
		switch {
		case cl.AccessKeyID == "":
			v.fail(f+".access_key_id", env, "required")
		case len(cl.AccessKeyID) < 3 || strings.ContainsAny(cl.AccessKeyID, "/ \t\n,="):
			v.fail(f+".access_key_id", env, "must be at least 3 characters, without '/', ',', '=' or spaces")
		}
		if j, dup := seen[cl.AccessKeyID]; dup && cl.AccessKeyID != "" {
			v.fail(f+".access_key_id", env, fmt.Sprintf("duplicates clients[%d]", j))
		}
		seen[cl.AccessKeyID] = i
		if names[cl.Name] {
			v.fail(f+".name", "", fmt.Sprintf("duplicate client name %q", cl.Name))
		}
		names[cl.Name] = true
		if len(cl.SecretAccessKey) < 8 {
			senv := ""
			if env != "" {
				senv = "S3SEAL_CLIENT_SECRET_ACCESS_KEY"
			}
			v.fail(f+".secret_access_key", senv, "required, at least 8 characters")
		}
		for j, b := range cl.Buckets {
			if _, err := path.Match(b, ""); err != nil || b == "" || strings.Contains(b, "/") {
				v.fail(fmt.Sprintf("%s.buckets[%d]", f, j), "", fmt.Sprintf("%q is not a bucket name or glob", b))
			}
		}
		for j, p := range cl.Permissions {
			pf := fmt.Sprintf("%s.permissions[%d]", f, j)
			penv := ""
			if cl.Name == "env" {
				penv = "S3SEAL_CLIENT_ACTIONS"
			}
			if _, err := path.Match(p.Bucket, ""); err != nil || strings.Contains(p.Bucket, "/") {
				v.fail(pf+".bucket", "", fmt.Sprintf("%q is not a bucket name or glob", p.Bucket))
			}
			if len(p.Actions) == 0 {
				v.fail(pf+".actions", penv, "list at least one of read, list, create, write, delete")
			}
			for k, a := range p.Actions {
				if !slices.Contains(clientActions, a) {
					v.fail(fmt.Sprintf("%s.actions[%d]", pf, k), penv, fmt.Sprintf("unknown action %q; want read, list, create, write or delete", a))
				}
			}
		}
	}
	sidecar := c.Sidecar.TrustLoopback || c.Sidecar.TrustClientCert
	if len(c.Clients) == 0 && !sidecar {
		v.fail("clients", "S3SEAL_CLIENT_ACCESS_KEY_ID", "no client identities: set S3SEAL_CLIENT_ACCESS_KEY_ID and S3SEAL_CLIENT_SECRET_ACCESS_KEY, list clients in the file, or enable sidecar trust")
	}
	if c.Sidecar.TrustClientCert && c.TLS.ClientCAFile == "" {
		v.fail("sidecar.trust_client_cert", "S3SEAL_SIDECAR_TRUST_CLIENT_CERT", "needs tls.client_ca_file to verify client certificates")
	}
	if sidecar && c.Sidecar.Client != "sidecar" && !names[c.Sidecar.Client] {
		v.fail("sidecar.client", "", fmt.Sprintf("no client named %q", c.Sidecar.Client))
	}
}

// clientActions are the actions a permission may list.
var clientActions = []string{"read", "list", "create", "write", "delete"}

func (c *Config) validateUpstream(v *validator) {
	u := &c.Upstream
	ep, err := url.Parse(u.Endpoint)
	switch {
	case err != nil || ep.Host == "" || (ep.Scheme != "http" && ep.Scheme != "https"):
		v.fail("upstream.endpoint", "AWS_ENDPOINT_URL_S3", fmt.Sprintf("want an http(s) URL such as https://s3.us-east-1.amazonaws.com, got %q", u.Endpoint))
	case ep.Path != "" && ep.Path != "/" || ep.RawQuery != "":
		v.fail("upstream.endpoint", "AWS_ENDPOINT_URL_S3", "must not have a path or query")
	case ep.Scheme == "http" && !IsLoopback(ep.Host) && !u.AllowInsecureHTTP:
		v.fail("upstream.endpoint", "AWS_ENDPOINT_URL_S3", "plain http is allowed only for a loopback endpoint; use https or set upstream.allow_insecure_http (S3SEAL_UPSTREAM_ALLOW_INSECURE_HTTP=true)")
	default:
		port := ep.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[ep.Scheme]
		}
		if sameAddr(net.JoinHostPort(ep.Hostname(), port), c.Listen) {
			v.fail("upstream.endpoint", "AWS_ENDPOINT_URL_S3", fmt.Sprintf("points at s3seal's own listener %s: s3seal would forward to itself. Set s3seal's upstream to the real S3 endpoint and the application's AWS_ENDPOINT_URL_S3 to s3seal", c.Listen))
		}
	}
	if strings.ContainsAny(u.Region, " /") {
		v.fail("upstream.region", "AWS_REGION", fmt.Sprintf("%q is not a region name", u.Region))
	}
	if (u.AccessKeyID == "") != (u.SecretAccessKey == "") {
		v.fail("upstream.secret_access_key", "", "upstream access_key_id and secret_access_key go together; leave both empty to use the AWS default credential chain")
	}
	switch u.Checksum {
	case "crc64nvme", "crc32c", "none":
	default:
		v.fail("upstream.checksum", "S3SEAL_UPSTREAM_CHECKSUM", fmt.Sprintf("want crc64nvme, crc32c or none, got %q", u.Checksum))
	}
}

// IsLoopback reports whether a host or host:port names a loopback address
// ("localhost" counts).
func IsLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sameAddr reports whether two host:port addresses would reach the same
// local listener (wildcard and loopback hosts match each other).
func sameAddr(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb {
		return false
	}
	local := func(h string) bool {
		if h == "" || h == "0.0.0.0" || h == "::" {
			return true
		}
		return IsLoopback(h)
	}
	return strings.EqualFold(ha, hb) || (local(ha) && local(hb))
}

type validator struct{ errs []error }

func (v *validator) fail(field, env, msg string) {
	v.errs = append(v.errs, &FieldError{Field: field, Env: env, Msg: msg})
}

func (v *validator) hostPort(field, env, s string) {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		v.fail(field, env, fmt.Sprintf("want host:port, got %q", s))
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.fail(field, env, fmt.Sprintf("invalid port in %q", s))
	}
}

func (v *validator) err() error { return errors.Join(v.errs...) }
