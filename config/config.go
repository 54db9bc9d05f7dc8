// Package config defines s3seal's configuration: its types, defaults, how it
// is loaded from a YAML file, environment variables and flags, and how it is
// validated.
//
// # Sources and precedence
//
// Later sources override earlier ones: built-in defaults, then the YAML file
// (--config or S3SEAL_CONFIG), then S3SEAL_* environment variables, then
// command-line flags. The upstream S3 endpoint, region and credentials follow
// the AWS SDK conventions (AWS_ENDPOINT_URL_S3, AWS_REGION, the default
// credential chain, AWS_CA_BUNDLE) unless the file sets them.
//
// # Errors
//
// Every validation error names the field that is wrong, as its YAML path and,
// where one exists, the environment variable that sets it, for example
// "listen (S3SEAL_LISTEN): missing port in address".
//
// This package imports nothing else from s3seal; main translates a Config
// into the options of the packages that use it.
package config

import (
	"fmt"
	"strings"
	"time"
)

// Config is s3seal's whole configuration. The zero value of each field means
// its default; call [Config.Validate] (Load does) to fill defaults and check
// the result.
type Config struct {
	// Listen is the S3 listener's host:port. Default 127.0.0.1:8443.
	Listen string `yaml:"listen"`
	// AdminListen is the admin listener (health, readiness, metrics).
	// Default 127.0.0.1:9180. It is never the S3 listener, where paths
	// such as /healthz are valid bucket names.
	AdminListen string `yaml:"admin_listen"`
	// DataDir holds the self-signed certificate and local certificate
	// storage. Default: $STATE_DIRECTORY (systemd), else
	// $XDG_DATA_HOME/s3seal, else ~/.local/share/s3seal.
	DataDir string `yaml:"data_dir"`
	// Pprof serves Go's profiler under /debug/pprof/ on the admin
	// listener. Off by default.
	Pprof bool `yaml:"pprof"`
	// BaseDomains enable virtual-hosted addressing: a request for host
	// "b.<base>" addresses bucket b. Path-style addressing always works.
	BaseDomains []string `yaml:"base_domains"`
	// Region is the region s3seal serves: the only region accepted in
	// clients' credential scopes (AuthorizationHeaderMalformed for any
	// other, as S3 answers). Default: the upstream region.
	Region string `yaml:"region"`

	TLS      TLS      `yaml:"tls"`
	Auth     Auth     `yaml:"auth"`
	Clients  []Client `yaml:"clients"`
	Sidecar  Sidecar  `yaml:"sidecar"`
	Upstream Upstream `yaml:"upstream"`

	// Mode is the default policy for buckets no rule matches:
	// passthrough, sse-s3, sse-kms, sse-c, envelope or deny (refuse what
	// no rule allows). Default passthrough.
	Mode string `yaml:"mode"`
	// Keys selects the key provider for envelope and sse-c modes:
	// "local:<key ring file>", "aws-kms:<key id, ARN or alias>",
	// "kmip:<unique id>[,…]" (settings in KMIP) or "pkcs11:<key
	// label>[,…]" (settings in PKCS11).
	Keys string `yaml:"keys"`
	// ReadKeys are key specs of other kinds of provider whose keys only
	// unwrap: objects written before s3seal moved from one kind of
	// provider to another stay readable, and "s3seal rewrap" moves them to
	// Keys.
	ReadKeys []string `yaml:"read_keys"`
	// UploadKey is the secret the replicas of a write-only gateway (keys
	// "age:" with recipients only) share to seal each multipart upload's
	// object key into the upload id: a file (one base64 key a line, the
	// first sealing, the others kept for uploads begun before a rotation)
	// or "env:VAR". Empty: upload.key in DataDir, generated once.
	UploadKey string `yaml:"upload_key"`
	// KMIP configures the kmip key provider.
	KMIP KMIP `yaml:"kmip"`
	// PKCS11 configures the pkcs11 key provider.
	PKCS11 PKCS11 `yaml:"pkcs11"`
	// Policies are ordered rules choosing a mode per bucket and key
	// prefix; the first match applies, Mode applies when none does.
	Policies []PolicyRule `yaml:"policies"`

	// Audit is where the audit log of key use goes: "" (off), "stdout",
	// "stderr" or a file path.
	Audit  string `yaml:"audit"`
	Log    Log    `yaml:"log"`
	Limits Limits `yaml:"limits"`
	// KeysCache tunes the data-key cache in front of the key provider.
	KeysCache KeysCache `yaml:"keys_cache"`
}

// Auth configures how clients authenticate.
type Auth struct {
	// SigV2 accepts requests signed with Signature Version 2 (the "AWS"
	// Authorization scheme and AWSAccessKeyId/Expires/Signature presigned
	// URLs, which AWS CLI v1 and s3cmd still make). Nil means true; false
	// refuses them with InvalidRequest.
	SigV2 *bool `yaml:"sigv2"`
}

// SigV2Enabled reports whether Signature Version 2 is accepted.
func (a Auth) SigV2Enabled() bool { return a.SigV2 == nil || *a.SigV2 }

// KeysCache tunes the data-key cache. Zero values mean the defaults.
type KeysCache struct {
	// ReuseObjects is how many new objects one generated data key serves
	// (default 10,000); a negative value makes one provider call per
	// object.
	ReuseObjects int `yaml:"reuse_objects"`
	// ReuseAge is how long one generated data key serves new objects.
	// Default 10m.
	ReuseAge Duration `yaml:"reuse_age"`
	// RetryAfter is how long new writes fail at once after the provider
	// failed to renew the data key, before it is asked again. Default 1s.
	RetryAfter Duration `yaml:"retry_after"`
}

// KMIP configures the connection to a KMIP server. The keys themselves are
// named in the key spec (kmip:UID,…).
type KMIP struct {
	// Endpoint is the server's host:port (KMIP's port is 5696).
	Endpoint string `yaml:"endpoint"`
	// ClientCert and ClientKey are PEM files: s3seal's client certificate
	// and its key, which the server authenticates.
	ClientCert string `yaml:"client_cert"`
	ClientKey  string `yaml:"client_key"`
	// CA is a PEM file of the CAs that sign the server's certificate
	// (default: the system roots).
	CA string `yaml:"ca"`
	// ServerName is the name in the server's certificate, if not the
	// endpoint's host.
	ServerName string `yaml:"server_name"`
	// Timeout bounds one attempt of one operation (default 5s).
	Timeout Duration `yaml:"timeout"`
	// Retries is how many times an operation that did not reach the
	// server is tried again (default 2; -1 for none).
	Retries int `yaml:"retries"`
	// Backoff is the wait before the first retry, doubled for each
	// further one (default 100ms).
	Backoff Duration `yaml:"backoff"`
	// MaxIdleConns bounds the connections kept open (default 8).
	MaxIdleConns int `yaml:"max_idle_conns"`
}

// PKCS11 configures the PKCS#11 token. The keys are named in the key spec
// (pkcs11:LABEL,…).
type PKCS11 struct {
	// Module is the path of the token's PKCS#11 library.
	Module string `yaml:"module"`
	// TokenLabel names the token; Slot names its slot instead.
	TokenLabel string `yaml:"token_label"`
	Slot       *uint  `yaml:"slot"`
	// PinFile is a file holding the user PIN (mode 0600), or PinEnv an
	// environment variable holding it; exactly one.
	PinFile string `yaml:"pin_file"`
	PinEnv  string `yaml:"pin_env"`
	// Sessions bounds the sessions s3seal opens (default 8).
	Sessions int `yaml:"sessions"`
}

// TLS configures the S3 listener's TLS.
type TLS struct {
	// Mode is self-signed (default), files, acme or off. Off is accepted
	// only on a loopback listener unless AllowInsecure is set.
	Mode string `yaml:"mode"`
	// CertFile and KeyFile are the PEM files for files mode.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string `yaml:"min_version"`
	// ClientCAFile enables client-certificate verification (mTLS) against
	// these CAs; ClientAuth is "request" or "require" (default "require"
	// when ClientCAFile is set).
	ClientCAFile string `yaml:"client_ca_file"`
	ClientAuth   string `yaml:"client_auth"`
	// PreferHTTP2 makes the listener choose HTTP/2 over HTTP/1.1 when a
	// client offers both. HTTP/2 is always offered; HTTP/1.1 is preferred
	// by default because it moves S3 bodies with less CPU.
	PreferHTTP2 bool `yaml:"prefer_http2"`
	// AllowInsecure permits mode off on a non-loopback listener.
	AllowInsecure bool `yaml:"allow_insecure"`
	// HTTPListen is an optional plain-HTTP listener serving ACME HTTP-01
	// challenges and redirecting everything else to HTTPS.
	HTTPListen string `yaml:"http_listen"`
	ACME       ACME   `yaml:"acme"`
	// Storage is where ACME certificates and locks are kept.
	Storage CertStorage `yaml:"storage"`
}

// ACME configures certificates from an ACME directory.
type ACME struct {
	Domains []string `yaml:"domains"`
	Email   string   `yaml:"email"`
	// CA is the directory URL; default Let's Encrypt production.
	CA string `yaml:"ca"`
	// CARoot is a PEM bundle trusted for the ACME server (private CAs).
	CARoot string `yaml:"ca_root"`
	// Challenges are http-01 and/or tls-alpn-01; default both.
	Challenges []string `yaml:"challenges"`
	// AltHTTPPort and AltTLSALPNPort are the ports the ACME server
	// validates on when they are not 80 and 443 (test CAs).
	AltHTTPPort    int `yaml:"alt_http_port"`
	AltTLSALPNPort int `yaml:"alt_tls_alpn_port"`
	// OnDemand issues certificates for <bucket>.<base domain> names on
	// first use, limited to buckets some client may access.
	OnDemand bool `yaml:"on_demand"`
}

// CertStorage selects certificate storage.
type CertStorage struct {
	// Type is "file" (default: under DataDir) or "s3" (shared by replicas).
	Type string `yaml:"type"`
	// Bucket and Prefix locate the storage for type s3. It is reached
	// through the same upstream and credentials as client traffic.
	Bucket string `yaml:"bucket"`
	Prefix string `yaml:"prefix"`
}

// Client is one identity allowed to call s3seal.
type Client struct {
	// Name identifies the client in logs and audit records. Default: the
	// access key id.
	Name            string `yaml:"name"`
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey Secret `yaml:"secret_access_key"`
	// Buckets limits the client to these buckets (exact names or globs
	// with * and ?). Empty means every bucket.
	Buckets []string `yaml:"buckets"`
	// Permissions say what the client may do where, per bucket and key
	// prefix. Empty means read, list, write and delete in every bucket of
	// Buckets.
	Permissions []Permission `yaml:"permissions"`
	// Admin lets the client change bucket configuration (policy, ACL,
	// lifecycle, versioning, encryption, …), set ACLs other than private,
	// grant access, and bypass governance-mode retention. Off by default.
	Admin bool `yaml:"admin"`
}

// Permission allows actions on keys under a prefix of some buckets.
type Permission struct {
	// Bucket is a bucket name or glob; empty means every bucket of the
	// client's Buckets.
	Bucket string `yaml:"bucket"`
	// Prefix limits the permission to keys starting with it; empty means
	// the whole bucket.
	Prefix string `yaml:"prefix"`
	// Actions are read, list, create (new objects only), write (create
	// and replace) and delete.
	Actions []string `yaml:"actions"`
}

// Sidecar configures trust for applications that keep their own AWS
// credentials, which s3seal cannot verify. Off by default.
type Sidecar struct {
	// TrustLoopback accepts requests from loopback peers without
	// checking their signature secret.
	TrustLoopback bool `yaml:"trust_loopback"`
	// TrustClientCert accepts requests over connections that presented
	// a client certificate verified against tls.client_ca_file.
	TrustClientCert bool `yaml:"trust_client_cert"`
	// Client is the Name of the client identity such requests act as
	// (its bucket limits apply). Default "sidecar", allowed every bucket.
	Client string `yaml:"client"`
}

// Upstream configures the real S3 endpoint s3seal forwards to.
type Upstream struct {
	// Endpoint is the S3 endpoint URL. Default: AWS_ENDPOINT_URL_S3,
	// else AWS_ENDPOINT_URL, else AWS S3 in Region.
	Endpoint string `yaml:"endpoint"`
	// Region used to sign upstream requests. Default AWS_REGION, else
	// AWS_DEFAULT_REGION, else us-east-1. Buckets in other regions are
	// followed automatically.
	Region string `yaml:"region"`
	// Static credentials. When empty, the AWS default chain is used
	// (environment, shared config and Profile, web identity, ECS, EC2).
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey Secret `yaml:"secret_access_key"`
	SessionToken    Secret `yaml:"session_token"`
	Profile         string `yaml:"profile"`
	// PathStyle forces path-style upstream URLs. Default: true for custom
	// endpoints, false (virtual-hosted) for AWS.
	PathStyle *bool `yaml:"path_style"`
	// CABundle adds PEM roots to the system roots for upstream TLS.
	// Default AWS_CA_BUNDLE.
	CABundle string `yaml:"ca_bundle"`
	// AllowInsecureHTTP permits a plain-HTTP endpoint that is not on
	// loopback.
	AllowInsecureHTTP bool `yaml:"allow_insecure_http"`
	// LiteralKeys accepts object keys that S3-compatible stores normalise
	// (a leading "/", "//", "." and ".." segments, control characters).
	// Set it only for a store that keeps keys exactly as sent, as AWS S3
	// does; by default s3seal refuses such keys, because a rule matched
	// against the key s3seal saw would not apply to the key the store
	// uses.
	LiteralKeys bool `yaml:"literal_keys"`
	// Checksum is the checksum s3seal adds to uploads whose client sent
	// none, as S3 itself adds one: "crc64nvme" (default, S3's own
	// default), "crc32c", or "none" for stores that do not support
	// aws-chunked trailers.
	Checksum string `yaml:"checksum"`
	// Timeouts for the upstream connection.
	DialTimeout           Duration `yaml:"dial_timeout"`
	ResponseHeaderTimeout Duration `yaml:"response_header_timeout"`
	IdleConnTimeout       Duration `yaml:"idle_conn_timeout"`
	MaxIdleConnsPerHost   int      `yaml:"max_idle_conns_per_host"`
}

// Log configures the JSON request log.
type Log struct {
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format is json (default) or console.
	Format string `yaml:"format"`
}

// Limits bounds what one client connection may hold.
type Limits struct {
	// ReadHeaderTimeout bounds reading request headers (slowloris).
	// Default 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes idle keep-alive connections. Default 120s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// BodyReadTimeout aborts a request whose body makes no progress for
	// this long. Default 60s.
	BodyReadTimeout Duration `yaml:"body_read_timeout"`
	// MaxHeaderBytes bounds request headers. Default 64 KiB.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// ShutdownTimeout bounds graceful shutdown. Default 30s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// WriteTimeout aborts a response the client makes no progress reading
	// for this long, releasing its store connection. Default 60s.
	WriteTimeout Duration `yaml:"write_timeout"`
	// MaxRequests caps the requests s3seal serves at once; beyond it,
	// clients get 503 SlowDown (and SDKs back off). It also bounds store
	// connections (twice this). Default 1024.
	MaxRequests int `yaml:"max_requests"`
	// MaxRequestsPerClient caps the requests one client identity has in
	// flight, so that one client cannot take every slot. Default 256.
	MaxRequestsPerClient int `yaml:"max_requests_per_client"`
	// S3ECMaxObjectSize bounds the Amazon S3 Encryption Client objects
	// s3seal decrypts (allow_s3ec_reads): their one GCM tag covers the
	// whole body, which is therefore held in memory until it verifies.
	// Concurrent reads share this budget. Default 64 MiB.
	S3ECMaxObjectSize int64 `yaml:"s3ec_max_object_size"`
}

// Secret is a string that never prints its value.
type Secret string

// String redacts the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "REDACTED"
}

// GoString redacts the value for %#v.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// MarshalText redacts the value, so a Config marshalled for display never
// carries secrets.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText stores the value.
func (s *Secret) UnmarshalText(b []byte) error { *s = Secret(b); return nil }

// Value returns the secret itself. Call it only where the secret is used.
func (s Secret) Value() string { return string(s) }

// Duration is a time.Duration written as "10s" in YAML.
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("invalid duration %q (use e.g. 30s, 5m)", string(b))
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Modes lists the valid policy modes.
var modes = []string{"passthrough", "sse-s3", "sse-kms", "sse-c", "envelope", "deny"}

// FieldError is a validation error for one field.
type FieldError struct {
	// Field is the YAML path, e.g. "upstream.endpoint" or "clients[1].access_key_id".
	Field string
	// Env is the environment variable that sets the field, if any.
	Env string
	// Msg says what is wrong and what is expected.
	Msg string
	// File and Line locate the setting in a configuration file, when it
	// comes from one (Line 0: not known).
	File string
	Line int
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	b.WriteString(e.Field)
	if e.Env != "" {
		fmt.Fprintf(&b, " (%s)", e.Env)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}
