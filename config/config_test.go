package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func minimalEnv() map[string]string {
	return map[string]string{
		"S3SEAL_CLIENT_ACCESS_KEY_ID":     "app",
		"S3SEAL_CLIENT_SECRET_ACCESS_KEY": "app-secret-123",
		"AWS_ENDPOINT_URL_S3":             "http://127.0.0.1:9000",
	}
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(Source{LookupEnv: envMap(minimalEnv()), HomeDir: "/home/u"})
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]string{
		"listen":       {c.Listen, DefaultListen},
		"admin_listen": {c.AdminListen, DefaultAdminListen},
		"mode":         {c.Mode, "passthrough"},
		"tls.mode":     {c.TLS.Mode, "self-signed"},
		"region":       {c.Upstream.Region, "us-east-1"},
		"data_dir":     {c.DataDir, "/home/u/.local/share/s3seal"},
		"client name":  {c.Clients[0].Name, "env"},
		"checksum":     {c.Upstream.Checksum, "crc64nvme"},
	}
	for name, v := range checks {
		if v[0] != v[1] {
			t.Errorf("%s = %q, want %q", name, v[0], v[1])
		}
	}
	if c.Clients[0].SecretAccessKey.Value() != "app-secret-123" {
		t.Errorf("client secret not loaded")
	}
}

func TestEnvOverridesFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "s3seal.yaml")
	yaml := `
listen: 127.0.0.1:7000
clients:
  - name: alice
    access_key_id: AKALICE
    secret_access_key: alice-secret
    buckets: [photos, "logs-*"]
upstream:
  endpoint: https://s3.example.test
  region: eu-west-1
`
	if err := os.WriteFile(f, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := minimalEnv()
	env["S3SEAL_LISTEN"] = "127.0.0.1:7001"
	delete(env, "AWS_ENDPOINT_URL_S3")
	c, err := Load(Source{File: f, LookupEnv: envMap(env), HomeDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:7001" {
		t.Errorf("listen = %s, want the environment's", c.Listen)
	}
	if c.Upstream.Endpoint != "https://s3.example.test" || c.Upstream.Region != "eu-west-1" {
		t.Errorf("upstream = %+v", c.Upstream)
	}
	if len(c.Clients) != 2 || c.Clients[0].Name != "alice" || c.Clients[1].Name != "env" {
		t.Fatalf("clients = %+v", c.Clients)
	}
	// Overrides (flags) win over both.
	c, err = Load(Source{File: f, LookupEnv: envMap(env), HomeDir: dir, Overrides: func(c *Config) { c.Listen = "127.0.0.1:7002" }})
	if err != nil || c.Listen != "127.0.0.1:7002" {
		t.Fatalf("override: %v %v", c.Listen, err)
	}
}

func TestUnknownFieldRefused(t *testing.T) {
	var c Config
	err := Parse([]byte("listen: x\nlisten_adress: y\n"), &c)
	if err == nil || !strings.Contains(err.Error(), "listen_adress") {
		t.Fatalf("err = %v, want it to name the unknown field", err)
	}
}

func TestValidationNamesField(t *testing.T) {
	cases := []struct {
		name  string
		env   map[string]string
		field string
		want  string
	}{
		{"bad listen", map[string]string{"S3SEAL_LISTEN": "nope"}, "listen (S3SEAL_LISTEN)", "host:port"},
		{"bad tls", map[string]string{"S3SEAL_TLS": "maybe"}, "tls.mode (S3SEAL_TLS)", "self-signed"},
		{"tls off public", map[string]string{"S3SEAL_TLS": "off", "S3SEAL_LISTEN": "0.0.0.0:8443"}, "tls.mode", "loopback"},
		{"files need cert", map[string]string{"S3SEAL_TLS": "files"}, "tls.cert_file (S3SEAL_TLS_CERT)", "required"},
		{"short secret", map[string]string{"S3SEAL_CLIENT_SECRET_ACCESS_KEY": "short"}, "clients[0].secret_access_key (S3SEAL_CLIENT_SECRET_ACCESS_KEY)", "8 characters"},
		{"bad mode", map[string]string{"S3SEAL_MODE": "rot13"}, "mode (S3SEAL_MODE)", "unknown mode"},
		{"envelope needs keys", map[string]string{"S3SEAL_MODE": "envelope"}, "keys (S3SEAL_KEYS)", "key provider"},
		{"bad keys", map[string]string{"S3SEAL_KEYS": "vault:x"}, "keys (S3SEAL_KEYS)", "local:"},
		{"age keys for sse-c", map[string]string{"S3SEAL_KEYS": "age:/etc/s3seal/recipients.txt", "S3SEAL_MODE": "sse-c"}, "keys (S3SEAL_KEYS)", "envelope mode only"},
		{"upload key env without name", map[string]string{"S3SEAL_UPLOAD_KEY": "env:"}, "upload_key (S3SEAL_UPLOAD_KEY)", "env:VAR"},
		{"insecure upstream", map[string]string{"AWS_ENDPOINT_URL_S3": "http://s3.example.test"}, "upstream.endpoint (AWS_ENDPOINT_URL_S3)", "loopback"},
		{"proxy loop", map[string]string{"AWS_ENDPOINT_URL_S3": "https://localhost:8443"}, "upstream.endpoint", "itself"},
		{"proxy loop wildcard", map[string]string{"S3SEAL_LISTEN": "0.0.0.0:9443", "AWS_ENDPOINT_URL_S3": "https://127.0.0.1:9443"}, "upstream.endpoint", "itself"},
		{"admin equals listen", map[string]string{"S3SEAL_ADMIN_LISTEN": DefaultListen}, "admin_listen", "bucket names"},
		{"no clients", map[string]string{"S3SEAL_CLIENT_ACCESS_KEY_ID": "", "S3SEAL_CLIENT_SECRET_ACCESS_KEY": ""}, "clients", "no client identities"},
		{"bad bool", map[string]string{"S3SEAL_SIDECAR_TRUST_LOOPBACK": "yes please"}, "sidecar.trust_loopback (S3SEAL_SIDECAR_TRUST_LOOPBACK)", "true or false"},
		{"bad storage", map[string]string{"S3SEAL_CERT_STORAGE": "redis"}, "tls.storage (S3SEAL_CERT_STORAGE)", "s3:"},
		{"acme no domains", map[string]string{"S3SEAL_TLS": "acme"}, "tls.acme.domains", "at least one"},
		{"bad challenge", map[string]string{"S3SEAL_TLS": "acme", "S3SEAL_ACME_DOMAINS": "a.test", "S3SEAL_ACME_CHALLENGES": "dns-01"}, "tls.acme.challenges[0]", "http-01"},
		{"old tls", map[string]string{"S3SEAL_TLS_MIN_VERSION": "1.0"}, "tls.min_version", "1.2 or 1.3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := minimalEnv()
			for k, v := range tc.env {
				env[k] = v
			}
			_, err := Load(Source{LookupEnv: envMap(env), HomeDir: t.TempDir()})
			if err == nil {
				t.Fatal("accepted")
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not a FieldError: %v", err, err)
			}
			if !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not name %q with %q", err, tc.field, tc.want)
			}
		})
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	c, err := Load(Source{LookupEnv: envMap(minimalEnv()), HomeDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		strings.Join([]string{c.Clients[0].SecretAccessKey.String()}, ""),
		strings.TrimSpace(fmt.Sprintf("%v %+v %#v", c, c, c)),
	} {
		if strings.Contains(s, "app-secret-123") {
			t.Fatalf("secret printed: %s", s)
		}
	}
}

func TestKeyProviderSections(t *testing.T) {
	load := func(yaml string) (*Config, error) {
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return Load(Source{File: path, LookupEnv: envMap(minimalEnv()), HomeDir: "/h"})
	}
	c, err := load(`mode: envelope
keys: kmip:1,2
read_keys: ["local:/etc/s3seal/keyring", "pkcs11:old"]
kmip:
  endpoint: kms.example:5696
  client_cert: /c.pem
  client_key: /k.pem
  ca: /ca.pem
  timeout: 3s
  retries: 4
pkcs11:
  module: /usr/lib/vendor/pkcs11.so
  slot: 0
  pin_env: HSM_PIN
  sessions: 16
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.KMIP.Endpoint != "kms.example:5696" || c.KMIP.Timeout.D().Seconds() != 3 || c.KMIP.Retries != 4 ||
		c.PKCS11.Slot == nil || *c.PKCS11.Slot != 0 || c.PKCS11.PinEnv != "HSM_PIN" || c.PKCS11.Sessions != 16 || len(c.ReadKeys) != 2 {
		t.Fatalf("parsed %+v %+v %v", c.KMIP, c.PKCS11, c.ReadKeys)
	}
	for yaml, want := range map[string]string{
		"mode: envelope\nkeys: kmip:1\n":                                                                     "kmip.endpoint",
		"mode: envelope\nkeys: kmip:1\nkmip: {endpoint: h:1}\n":                                              "kmip.client_cert",
		"mode: envelope\nkeys: kmip:1\nkmip: {endpoint: nohost, client_cert: a, client_key: b}\n":            "kmip.endpoint",
		"mode: envelope\nkeys: pkcs11:k\n":                                                                   "pkcs11.module",
		"mode: envelope\nkeys: pkcs11:k\npkcs11: {module: /m.so, pin_env: P}\n":                              "pkcs11.token_label",
		"mode: envelope\nkeys: pkcs11:k\npkcs11: {module: /m.so, token_label: t}\n":                          "pkcs11.pin_file",
		"mode: envelope\nkeys: pkcs11:k\npkcs11: {module: /m.so, token_label: t, pin_env: P, pin_file: f}\n": "pkcs11.pin_file",
		"mode: envelope\nkeys: local:/r\nread_keys: [\"local:/s\"]\n":                                        "read_keys[0]",
		"mode: envelope\nread_keys: [\"local:/s\"]\n":                                                        "read_keys",
		"mode: envelope\nkeys: vault:x\n":                                                                    "keys",
		"mode: envelope\nkeys: local:/r\nkmip: {endpoint: h:1, bogus: 1}\n":                                  "bogus",
	} {
		_, err := load(yaml)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v; want an error naming %s", yaml, err, want)
		}
	}
}

func TestSigV2Setting(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "s3seal.yaml")
	if err := os.WriteFile(f, []byte("auth:\n  sigv2: false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		file string
		env  string
		want bool
	}{
		{"default on", "", "", true},
		{"file off", f, "", false},
		{"env on over file", f, "true", true},
		{"env off", "", "0", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := minimalEnv()
			if c.env != "" {
				env["S3SEAL_SIGV2"] = c.env
			}
			cfg, err := Load(Source{File: c.file, LookupEnv: envMap(env), HomeDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Auth.SigV2Enabled(); got != c.want {
				t.Fatalf("SigV2Enabled() = %v, want %v", got, c.want)
			}
		})
	}
	env := minimalEnv()
	env["S3SEAL_SIGV2"] = "maybe"
	if _, err := Load(Source{LookupEnv: envMap(env), HomeDir: dir}); err == nil || !strings.Contains(err.Error(), "S3SEAL_SIGV2") {
		t.Fatalf("bad S3SEAL_SIGV2 accepted or unnamed: %v", err)
	}
}

func TestAgeKeysServeEnvelope(t *testing.T) {
	env := minimalEnv()
	env["S3SEAL_KEYS"] = "age:/etc/s3seal/recipients.txt"
	env["S3SEAL_MODE"] = "envelope"
	env["S3SEAL_UPLOAD_KEY"] = "env:S3SEAL_TEST_UK"
	c, err := Load(Source{LookupEnv: envMap(env), HomeDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if c.Keys != "age:/etc/s3seal/recipients.txt" || c.UploadKey != "env:S3SEAL_TEST_UK" {
		t.Fatalf("keys %q, upload key %q", c.Keys, c.UploadKey)
	}
}
