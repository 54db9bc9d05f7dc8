package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// fuzzSeeds are configuration files the fuzzer starts from: valid ones in
// every TLS and key mode, and near misses.
var fuzzSeeds = []string{
	"",
	"clients: [{access_key_id: app, secret_access_key: app-secret-1}]\nupstream: {endpoint: 'http://127.0.0.1:9000'}\n",
	`listen: 127.0.0.1:8443
admin_listen: 127.0.0.1:9180
mode: envelope
keys: local:/etc/s3seal/keyring
tls: {mode: files, cert_file: c.pem, key_file: k.pem, min_version: "1.3"}
clients:
  - {name: alice, access_key_id: AKALICE, secret_access_key: alice-secret, buckets: [photos, "logs-*"]}
policies:
  - {name: archives, bucket: "archive-*", mode: sse-kms, kms_key_id: alias/a}
  - {name: legacy, bucket: legacy, mode: deny, deny: writes}
upstream:
  endpoint: https://s3.example.test
  access_key_id: UPKEY
  secret_access_key: upstream-secret
  dial_timeout: 2s
  response_header_timeout: 30s
limits: {read_header_timeout: 5s, body_read_timeout: 10s, idle_timeout: 30s, max_header_bytes: 8192}
`,
	"sidecar: {trust_loopback: true}\ntls: {mode: 'off'}\n",
	"tls: {mode: acme, acme: {domains: [s3.example.test], ca: 'https://127.0.0.1:14000/dir'}}\nclients: [{access_key_id: app, secret_access_key: app-secret-1}]\n",
	"clients: [{access_key_id: app, secret_access_key: app-secret-1}]\nlimits: {read_header_timeout: -1s}\n",
	"clients: [{access_key_id: app, secret_access_key: app-secret-1}]\nupstream: {dial_timeout: -5s}\n",
	"listen: nope\nmode: bogus\nunknown_key: 1\n",
	"clients: {a: b}\n",
	"limits: {read_header_timeout: forever}\n",
	"&a [*a]\n",
}

func FuzzParseValidate(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 16<<10 {
			return // configuration files are small; keep runs fast
		}
		var c Config
		if err := Parse(b, &c); err != nil {
			return
		}
		// Secrets never shape what is printed: the same configuration with
		// other secret values of the same length validates and marshals
		// identically.
		other := withOtherSecrets(clone(c))
		err := c.Validate()
		oerr := other.Validate()
		if (err == nil) != (oerr == nil) || (err != nil && err.Error() != oerr.Error()) {
			t.Fatalf("validation depends on secret values: %v / %v", err, oerr)
		}
		if out, err2 := yaml.Marshal(&c); err2 == nil {
			oout, _ := yaml.Marshal(&other)
			if string(out) != string(oout) {
				t.Fatalf("marshalled configuration depends on secret values")
			}
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "config: ") {
				t.Fatalf("error without the package prefix: %v", err)
			}
			return
		}
		// Validate fills every default: a second run changes nothing.
		again := clone(c)
		if err := again.Validate(); err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("Validate is not idempotent: %v", err)
		}
		// Every timeout that guards s3seal against slow peers is in force.
		for name, d := range map[string]Duration{
			"limits.read_header_timeout":       c.Limits.ReadHeaderTimeout,
			"limits.idle_timeout":              c.Limits.IdleTimeout,
			"limits.body_read_timeout":         c.Limits.BodyReadTimeout,
			"limits.shutdown_timeout":          c.Limits.ShutdownTimeout,
			"upstream.dial_timeout":            c.Upstream.DialTimeout,
			"upstream.response_header_timeout": c.Upstream.ResponseHeaderTimeout,
			"upstream.idle_conn_timeout":       c.Upstream.IdleConnTimeout,
		} {
			if d.D() <= 0 {
				t.Fatalf("%s is %v after validation", name, time.Duration(d))
			}
		}
		if c.Listen == "" || c.AdminListen == "" || c.Upstream.Endpoint == "" || c.Limits.MaxHeaderBytes < 4096 {
			t.Fatalf("defaults missing after validation: %+v", c)
		}
		if len(c.Clients) == 0 && !c.Sidecar.TrustLoopback && !c.Sidecar.TrustClientCert {
			t.Fatal("valid without any way to authenticate clients")
		}
	})
}

// clone returns a deep copy of c: Validate edits slices in place.
func clone(c Config) Config {
	o := c
	o.BaseDomains = slices.Clone(c.BaseDomains)
	o.TLS.ACME.Domains = slices.Clone(c.TLS.ACME.Domains)
	o.TLS.ACME.Challenges = slices.Clone(c.TLS.ACME.Challenges)
	o.Clients = slices.Clone(c.Clients)
	for i, cl := range c.Clients {
		o.Clients[i].Buckets = slices.Clone(cl.Buckets)
	}
	o.Policies = slices.Clone(c.Policies)
	for i, p := range c.Policies {
		if p.KMSContext != nil {
			m := make(map[string]string, len(p.KMSContext))
			for k, v := range p.KMSContext {
				m[k] = v
			}
			p.KMSContext = m
		}
		if p.BucketKey != nil {
			v := *p.BucketKey
			p.BucketKey = &v
		}
		o.Policies[i] = p
	}
	if c.Upstream.PathStyle != nil {
		v := *c.Upstream.PathStyle
		o.Upstream.PathStyle = &v
	}
	return o
}

// withOtherSecrets returns c with its secrets replaced by different values
// of the same length.
func withOtherSecrets(c Config) Config {
	o := c
	swap := func(s Secret) Secret {
		if s == "" {
			return s
		}
		b := []byte(s)
		for i := range b {
			if b[i] == 'x' {
				b[i] = 'y'
			} else {
				b[i] = 'x'
			}
		}
		return Secret(b)
	}
	for i := range o.Clients {
		o.Clients[i].SecretAccessKey = swap(o.Clients[i].SecretAccessKey)
	}
	o.Upstream.SecretAccessKey = swap(c.Upstream.SecretAccessKey)
	o.Upstream.SessionToken = swap(c.Upstream.SessionToken)
	return o
}

// TestValidateRejectsNegativeTimeouts: a negative timeout would switch off
// the protection it configures (net/http treats it as none).
func TestValidateRejectsNegativeTimeouts(t *testing.T) {
	for _, doc := range []string{
		"limits: {read_header_timeout: -1s}", "limits: {body_read_timeout: -1s}", "limits: {idle_timeout: -1m}",
		"upstream: {response_header_timeout: -2s}", "upstream: {dial_timeout: -5s}", "keys_cache: {retry_after: -1s}",
	} {
		var c Config
		if err := Parse([]byte("clients: [{access_key_id: app, secret_access_key: app-secret-1}]\n"+doc+"\n"), &c); err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "must be positive") {
			t.Errorf("%s: %v, want a refusal", doc, err)
		}
	}
}

// TestKeysCacheSettings: the data-key cache settings parse and keep their
// zero values as "default".
func TestKeysCacheSettings(t *testing.T) {
	var c Config
	if err := Parse([]byte("clients: [{access_key_id: app, secret_access_key: app-secret-1}]\nkeys_cache: {reuse_objects: 5, reuse_age: 30s, retry_after: 2s}\n"), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.KeysCache.ReuseObjects != 5 || c.KeysCache.ReuseAge.D() != 30*time.Second || c.KeysCache.RetryAfter.D() != 2*time.Second {
		t.Errorf("keys_cache = %+v", c.KeysCache)
	}
	var d Config
	if err := Parse([]byte("keys_cache: {reuse_object: 5}\n"), &d); err == nil {
		t.Error("a misspelt keys_cache field was accepted")
	}
}

// TestS3ECMaxObjectSize: the S3EC memory budget defaults to 64 MiB and is
// refused when negative or beyond 16 GiB.
func TestS3ECMaxObjectSize(t *testing.T) {
	for doc, want := range map[string]string{
		"": "",
		"limits: {s3ec_max_object_size: 1048576}":     "",
		"limits: {s3ec_max_object_size: -1}":          "limits.s3ec_max_object_size",
		"limits: {s3ec_max_object_size: 17179869185}": "limits.s3ec_max_object_size",
	} {
		var c Config
		if err := Parse([]byte("clients: [{access_key_id: app, secret_access_key: app-secret-1}]\n"+doc+"\n"), &c); err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		err := c.Validate()
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", doc, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: %v, want a refusal naming %s", doc, err, want)
		case doc == "" && c.Limits.S3ECMaxObjectSize != 64<<20:
			t.Errorf("default %d, want 64 MiB", c.Limits.S3ECMaxObjectSize)
		case doc != "" && want == "" && c.Limits.S3ECMaxObjectSize != 1<<20:
			t.Errorf("set to 1 MiB, got %d", c.Limits.S3ECMaxObjectSize)
		}
	}
}
