package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestParseErrorsNamePathAndVariable: a misspelt key or a value of the
// wrong type is reported with its YAML path, its line and the environment
// variable for the same setting, never in terms of Go types.
func TestParseErrorsNamePathAndVariable(t *testing.T) {
	cases := []struct {
		name, doc string
		want      []string
	}{
		{"misspelt top-level key", "lisen: 127.0.0.1:8443\n", []string{"line 1: lisen: unknown key; did you mean listen (S3SEAL_LISTEN)?"}},
		{"misspelt nested key", "tls:\n  mdoe: files\n", []string{"line 2: tls.mdoe: unknown key; did you mean tls.mode (S3SEAL_TLS)?"}},
		{"misspelt key in a list entry", "clients:\n  - acces_key_id: app\n", []string{"line 2: clients[0].acces_key_id: unknown key; did you mean clients[0].access_key_id?"}},
		{"unrelated key lists the keys", "wibble: 1\n", []string{"wibble: unknown key; the keys at the top level are", "listen", "upstream"}},
		{"integer", "limits:\n  max_header_bytes: lots\n", []string{"line 2: limits.max_header_bytes: want a whole number, got \"lots\""}},
		{"integer with a variable", "tls: {acme: {alt_http_port: eighty}}\n", []string{"tls.acme.alt_http_port (S3SEAL_ACME_ALT_HTTP_PORT): want a whole number"}},
		{"boolean", "upstream:\n  path_style: maybe\n", []string{"upstream.path_style (S3SEAL_UPSTREAM_PATH_STYLE): want true or false, got \"maybe\""}},
		{"duration", "limits: {shutdown_timeout: forever}\n", []string{"limits.shutdown_timeout: invalid duration \"forever\""}},
		{"list expected", "base_domains: s3.example.com\n", []string{"base_domains (S3SEAL_BASE_DOMAINS): want a list"}},
		{"settings expected", "tls: acme\n", []string{"tls: want settings (key: value lines), got \"acme\""}},
		{"single value expected", "listen: [a, b]\n", []string{"listen (S3SEAL_LISTEN): want a single value, got a list"}},
		{"bad storage string", "tls: {storage: redis}\n", []string{"tls.storage (S3SEAL_CERT_STORAGE): want \"file\" or \"s3:BUCKET[/PREFIX]\", got \"redis\""}},
		{"unknown key in storage settings", "tls: {storage: {type: s3, buckt: b}}\n", []string{"tls.storage.buckt: unknown key; did you mean tls.storage.bucket?"}},
		{"several at once", "lisen: x\nmode: [a]\n", []string{"lisen: unknown key", "mode (S3SEAL_MODE): want a single value"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			err := Parse([]byte(tc.doc), &c)
			if err == nil {
				t.Fatal("accepted")
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("%T is not a FieldError: %v", err, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "config.") || strings.Contains(err.Error(), "!!") {
				t.Errorf("error speaks of Go or YAML types: %q", err)
			}
		})
	}
}

// TestCertStorageForms: tls.storage takes the short forms the reference
// documents (as S3SEAL_CERT_STORAGE does) and the long one.
func TestCertStorageForms(t *testing.T) {
	for doc, want := range map[string]CertStorage{
		"tls: {storage: file}":                             {Type: "file"},
		"tls: {storage: 's3:certs'}":                       {Type: "s3", Bucket: "certs"},
		"tls: {storage: 's3:certs/acme/prod'}":             {Type: "s3", Bucket: "certs", Prefix: "acme/prod"},
		"tls:\n  storage: s3:certs/acme\n":                 {Type: "s3", Bucket: "certs", Prefix: "acme"},
		"tls: {storage: {type: s3, bucket: b, prefix: p}}": {Type: "s3", Bucket: "b", Prefix: "p"},
	} {
		var c Config
		if err := Parse([]byte(doc), &c); err != nil {
			t.Errorf("%q: %v", doc, err)
			continue
		}
		if c.TLS.Storage != want {
			t.Errorf("%q: %+v, want %+v", doc, c.TLS.Storage, want)
		}
	}
	for _, bad := range []string{"s3:", "s3:/prefix", "S3:b", "files"} {
		var c Config
		if err := Parse([]byte("tls: {storage: '"+bad+"'}"), &c); err == nil {
			t.Errorf("tls.storage %q accepted", bad)
		}
		env := minimalEnv()
		env["S3SEAL_CERT_STORAGE"] = bad
		if _, err := Load(Source{LookupEnv: envMap(env), HomeDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "tls.storage (S3SEAL_CERT_STORAGE)") {
			t.Errorf("S3SEAL_CERT_STORAGE=%q: %v", bad, err)
		}
	}
}

// TestLoadNamesFileAndLine: errors from a file say which file and line.
func TestLoadNamesFileAndLine(t *testing.T) {
	f := filepath.Join(t.TempDir(), "s3seal.yaml")
	if err := os.WriteFile(f, []byte("# comment\nmode: envelope\nlisen: 127.0.0.1:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(Source{File: f, LookupEnv: envMap(minimalEnv()), HomeDir: t.TempDir()})
	want := "config: " + f + ":3: lisen: unknown key; did you mean listen (S3SEAL_LISTEN)?"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	// A YAML syntax error names the file too.
	if err := os.WriteFile(f, []byte("mode: [envelope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(Source{File: f, LookupEnv: envMap(minimalEnv()), HomeDir: t.TempDir()}); err == nil || !strings.HasPrefix(err.Error(), "config: "+f+": ") {
		t.Fatalf("syntax error: %v", err)
	}
}

// TestSSECKeysHint: sse-c without keys suggests what sse-c accepts (a key
// ring), not a KMS key, which it refuses.
func TestSSECKeysHint(t *testing.T) {
	env := minimalEnv()
	env["S3SEAL_MODE"] = "sse-c"
	_, err := Load(Source{LookupEnv: envMap(env), HomeDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "keys (S3SEAL_KEYS)") || !strings.Contains(err.Error(), "local:") || strings.Contains(err.Error(), "aws-kms") {
		t.Fatalf("err = %v, want a hint naming local: and not aws-kms", err)
	}
}
