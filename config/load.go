package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Source says where Load reads configuration from.
type Source struct {
	// File is the YAML file; "" means S3SEAL_CONFIG, and none if that is
	// empty too.
	File string
	// LookupEnv reads environment variables; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Overrides is applied after the file and the environment; main uses
	// it for command-line flags.
	Overrides func(*Config)
	// HomeDir is used for the default data directory; "" means
	// os.UserHomeDir.
	HomeDir string
}

// Load reads the file, applies environment variables and overrides, fills
// defaults and validates. Errors name the field (see [FieldError]).
func Load(src Source) (*Config, error) {
	env := src.LookupEnv
	if env == nil {
		env = os.LookupEnv
	}
	var c Config
	file := src.File
	if file == "" {
		file, _ = env("S3SEAL_CONFIG")
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("config: reading %s: %w", file, err)
		}
		if err := Parse(b, &c); err != nil {
			return nil, inFile(err, file)
		}
	}
	if err := applyEnv(&c, env); err != nil {
		return nil, err
	}
	if src.Overrides != nil {
		src.Overrides(&c)
	}
	applyAWSEnv(&c, env)
	if c.DataDir == "" {
		c.DataDir = defaultDataDir(env, src.HomeDir)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// inFile names file in a parse error: each *FieldError gets it, other
// errors (YAML syntax) are prefixed with it.
func inFile(err error, file string) error {
	var fes []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		fes = j.Unwrap()
	} else {
		fes = []error{err}
	}
	all := true
	for _, e := range fes {
		if fe, ok := e.(*FieldError); ok {
			fe.File = file
		} else {
			all = false
		}
	}
	if all {
		return err
	}
	return fmt.Errorf("config: %s: %w", file, err)
}

func defaultDataDir(env func(string) (string, bool), home string) string {
	if d, ok := env("STATE_DIRECTORY"); ok && d != "" {
		// systemd may pass several, colon-separated; the first is ours.
		return strings.SplitN(d, ":", 2)[0]
	}
	if d, ok := env("XDG_DATA_HOME"); ok && d != "" {
		return filepath.Join(d, "s3seal")
	}
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	if home == "" {
		return "s3seal-data"
	}
	return filepath.Join(home, ".local", "share", "s3seal")
}

// envVar binds one environment variable to a field.
type envVar struct {
	name  string
	field string
	set   func(c *Config, v string) error
}

func str(p func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *p(c) = v; return nil }
}

func list(p func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error { *p(c) = splitList(v); return nil }
}

func boolean(p func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", v)
		}
		*p(c) = b
		return nil
	}
}

func integer(p func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("want an integer, got %q", v)
		}
		*p(c) = n
		return nil
	}
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// EnvVars lists every S3SEAL_* variable with the field it sets, in the order
// the configuration reference documents them.
func EnvVars() [][2]string {
	out := make([][2]string, 0, len(envTable))
	for _, e := range envTable {
		out = append(out, [2]string{e.name, e.field})
	}
	return out
}

var envTable = []envVar{
	{"S3SEAL_LISTEN", "listen", str(func(c *Config) *string { return &c.Listen })},
	{"S3SEAL_ADMIN_LISTEN", "admin_listen", str(func(c *Config) *string { return &c.AdminListen })},
	{"S3SEAL_PPROF", "pprof", boolean(func(c *Config) *bool { return &c.Pprof })},
	{"S3SEAL_DATA_DIR", "data_dir", str(func(c *Config) *string { return &c.DataDir })},
	{"S3SEAL_BASE_DOMAINS", "base_domains", list(func(c *Config) *[]string { return &c.BaseDomains })},
	{"S3SEAL_MODE", "mode", str(func(c *Config) *string { return &c.Mode })},
	{"S3SEAL_KEYS", "keys", str(func(c *Config) *string { return &c.Keys })},
	{"S3SEAL_UPLOAD_KEY", "upload_key", str(func(c *Config) *string { return &c.UploadKey })},
	{"S3SEAL_TLS", "tls.mode", str(func(c *Config) *string { return &c.TLS.Mode })},
	{"S3SEAL_TLS_CERT", "tls.cert_file", str(func(c *Config) *string { return &c.TLS.CertFile })},
	{"S3SEAL_TLS_KEY", "tls.key_file", str(func(c *Config) *string { return &c.TLS.KeyFile })},
	{"S3SEAL_TLS_MIN_VERSION", "tls.min_version", str(func(c *Config) *string { return &c.TLS.MinVersion })},
	{"S3SEAL_TLS_CLIENT_CA", "tls.client_ca_file", str(func(c *Config) *string { return &c.TLS.ClientCAFile })},
	{"S3SEAL_TLS_CLIENT_AUTH", "tls.client_auth", str(func(c *Config) *string { return &c.TLS.ClientAuth })},
	{"S3SEAL_TLS_PREFER_HTTP2", "tls.prefer_http2", boolean(func(c *Config) *bool { return &c.TLS.PreferHTTP2 })},
	{"S3SEAL_TLS_ALLOW_INSECURE", "tls.allow_insecure", boolean(func(c *Config) *bool { return &c.TLS.AllowInsecure })},
	{"S3SEAL_HTTP_LISTEN", "tls.http_listen", str(func(c *Config) *string { return &c.TLS.HTTPListen })},
	{"S3SEAL_ACME_DOMAINS", "tls.acme.domains", list(func(c *Config) *[]string { return &c.TLS.ACME.Domains })},
	{"S3SEAL_ACME_EMAIL", "tls.acme.email", str(func(c *Config) *string { return &c.TLS.ACME.Email })},
	{"S3SEAL_ACME_CA", "tls.acme.ca", str(func(c *Config) *string { return &c.TLS.ACME.CA })},
	{"S3SEAL_ACME_CA_ROOT", "tls.acme.ca_root", str(func(c *Config) *string { return &c.TLS.ACME.CARoot })},
	{"S3SEAL_ACME_CHALLENGES", "tls.acme.challenges", list(func(c *Config) *[]string { return &c.TLS.ACME.Challenges })},
	{"S3SEAL_ACME_ALT_HTTP_PORT", "tls.acme.alt_http_port", integer(func(c *Config) *int { return &c.TLS.ACME.AltHTTPPort })},
	{"S3SEAL_ACME_ALT_TLS_ALPN_PORT", "tls.acme.alt_tls_alpn_port", integer(func(c *Config) *int { return &c.TLS.ACME.AltTLSALPNPort })},
	{"S3SEAL_ACME_ON_DEMAND", "tls.acme.on_demand", boolean(func(c *Config) *bool { return &c.TLS.ACME.OnDemand })},
	{"S3SEAL_CERT_STORAGE", "tls.storage", func(c *Config, v string) error {
		st, err := ParseCertStorage(v)
		c.TLS.Storage = st
		return err
	}},
	{"S3SEAL_SIGV2", "auth.sigv2", func(c *Config, v string) error {
		var b bool
		if err := boolean(func(*Config) *bool { return &b })(c, v); err != nil {
			return err
		}
		c.Auth.SigV2 = &b
		return nil
	}},
	{"S3SEAL_CLIENT_ACCESS_KEY_ID", "clients[0].access_key_id", func(c *Config, v string) error {
		envClient(c).AccessKeyID = v
		return nil
	}},
	{"S3SEAL_CLIENT_SECRET_ACCESS_KEY", "clients[0].secret_access_key", func(c *Config, v string) error {
		envClient(c).SecretAccessKey = Secret(v)
		return nil
	}},
	{"S3SEAL_CLIENT_BUCKETS", "clients[0].buckets", func(c *Config, v string) error {
		envClient(c).Buckets = splitList(v)
		return nil
	}},
	{"S3SEAL_CLIENT_ACTIONS", "clients[0].permissions", func(c *Config, v string) error {
		envClient(c).Permissions = []Permission{{Actions: splitList(v)}}
		return nil
	}},
	{"S3SEAL_CLIENT_ADMIN", "clients[0].admin", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", v)
		}
		envClient(c).Admin = b
		return nil
	}},
	{"S3SEAL_REGION", "region", str(func(c *Config) *string { return &c.Region })},
	{"S3SEAL_UPSTREAM_LITERAL_KEYS", "upstream.literal_keys", boolean(func(c *Config) *bool { return &c.Upstream.LiteralKeys })},
	{"S3SEAL_SIDECAR_TRUST_LOOPBACK", "sidecar.trust_loopback", boolean(func(c *Config) *bool { return &c.Sidecar.TrustLoopback })},
	{"S3SEAL_SIDECAR_TRUST_CLIENT_CERT", "sidecar.trust_client_cert", boolean(func(c *Config) *bool { return &c.Sidecar.TrustClientCert })},
	{"S3SEAL_UPSTREAM_PATH_STYLE", "upstream.path_style", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", v)
		}
		c.Upstream.PathStyle = &b
		return nil
	}},
	{"S3SEAL_UPSTREAM_ALLOW_INSECURE_HTTP", "upstream.allow_insecure_http", boolean(func(c *Config) *bool { return &c.Upstream.AllowInsecureHTTP })},
	{"S3SEAL_UPSTREAM_CHECKSUM", "upstream.checksum", str(func(c *Config) *string { return &c.Upstream.Checksum })},
	{"S3SEAL_AUDIT", "audit", str(func(c *Config) *string { return &c.Audit })},
	{"S3SEAL_LOG_LEVEL", "log.level", str(func(c *Config) *string { return &c.Log.Level })},
	{"S3SEAL_LOG_FORMAT", "log.format", str(func(c *Config) *string { return &c.Log.Format })},
}

// envClient returns the client identity the S3SEAL_CLIENT_* variables
// configure: the file's first client named "env", created if needed, so the
// variables add one identity next to those in the file.
func envClient(c *Config) *Client {
	for i := range c.Clients {
		if c.Clients[i].Name == "env" {
			return &c.Clients[i]
		}
	}
	c.Clients = append(c.Clients, Client{Name: "env"})
	return &c.Clients[len(c.Clients)-1]
}

func applyEnv(c *Config, env func(string) (string, bool)) error {
	for _, e := range envTable {
		v, ok := env(e.name)
		if !ok || v == "" {
			continue
		}
		if err := e.set(c, v); err != nil {
			return &FieldError{Field: e.field, Env: e.name, Msg: err.Error()}
		}
	}
	return nil
}

// applyAWSEnv fills upstream settings from the variables every AWS SDK reads,
// where the file left them empty.
func applyAWSEnv(c *Config, env func(string) (string, bool)) {
	first := func(names ...string) string {
		for _, n := range names {
			if v, ok := env(n); ok && v != "" {
				return v
			}
		}
		return ""
	}
	u := &c.Upstream
	if u.Endpoint == "" {
		u.Endpoint = first("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
	}
	if u.Region == "" {
		u.Region = first("AWS_REGION", "AWS_DEFAULT_REGION")
	}
	if u.CABundle == "" {
		u.CABundle = first("AWS_CA_BUNDLE")
	}
}
