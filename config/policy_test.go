package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loadPolicies loads a configuration file holding yaml (plus a client and
// an upstream) with extra environment variables.
func loadPolicies(t *testing.T, yaml string, env map[string]string) (*Config, error) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "s3seal.yaml")
	if err := os.WriteFile(f, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	e := minimalEnv()
	for k, v := range env {
		e[k] = v
	}
	return Load(Source{File: f, LookupEnv: envMap(e), HomeDir: "/home/u"})
}

func TestPoliciesParse(t *testing.T) {
	c, err := loadPolicies(t, `
keys: local:/etc/s3seal/keyring
policies:
  - name: secrets
    bucket: "prod-*"
    prefix: secrets/
    mode: sse-kms
    kms_key_id: alias/prod
    kms_context: {team: payments, env: prod}
    bucket_key: true
    client_sse: refuse
    client_sse_c: allow
  - name: archive
    bucket: archive
    mode: sse-c
    sse_c_key: s3seal-20260101-0a1b2c3d
    allow_http: true
  - name: ro
    bucket: legacy
    mode: deny
    deny: writes
    message: legacy is read-only
  - bucket: "*"
    prefix: tmp/
    mode: passthrough
  - bucket: env
    mode: envelope
    allow_plaintext_reads: true
    allow_s3ec_reads: true
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Policies) != 5 {
		t.Fatalf("%d rules", len(c.Policies))
	}
	s := c.Policies[0]
	if s.Name != "secrets" || s.Bucket != "prod-*" || s.Prefix != "secrets/" || s.Mode != "sse-kms" || s.KMSKeyID != "alias/prod" ||
		s.KMSContext["team"] != "payments" || s.BucketKey == nil || !*s.BucketKey || s.ClientSSE != "refuse" || s.ClientSSEC != "allow" {
		t.Errorf("rule 0 = %+v", s)
	}
	if a := c.Policies[1]; a.SSECKey != "s3seal-20260101-0a1b2c3d" || !a.AllowHTTP {
		t.Errorf("rule 1 = %+v", a)
	}
	if d := c.Policies[2]; d.Deny != "writes" || d.Message != "legacy is read-only" {
		t.Errorf("rule 2 = %+v", d)
	}
	if e := c.Policies[4]; !e.AllowPlaintextReads || !e.AllowS3ECReads {
		t.Errorf("rule 4 = %+v", e)
	}
}

func TestPolicyValidationNamesRuleAndField(t *testing.T) {
	cases := []struct {
		name, yaml string
		env        map[string]string
		field, msg string
	}{
		{"missing mode", "policies:\n  - name: a\n    bucket: b\n", nil, "policies[0].mode", `rule "a": required`},
		{"unknown mode", "policies:\n  - bucket: b\n  - bucket: c\n    mode: sse-x\n", nil, "policies[1].mode", `rule 2: unknown mode "sse-x"`},
		{"key on sse-s3", "policies:\n  - name: s\n    mode: sse-s3\n    kms_key_id: k\n", nil, "policies[0].kms_key_id", "applies only to mode sse-kms"},
		{"context on sse-c", "keys: local:/k\npolicies:\n  - name: c\n    mode: sse-c\n    kms_context: {a: b}\n", nil, "policies[0].kms_context", "only to mode sse-kms"},
		{"reserved context key", "policies:\n  - name: k\n    mode: sse-kms\n    kms_context: {\"aws:s3:arn\": x}\n", nil, "policies[0].kms_context", "reserved"},
		{"bucket key on passthrough", "policies:\n  - name: p\n    mode: passthrough\n    bucket_key: false\n", nil, "policies[0].bucket_key", "only to mode sse-kms"},
		{"bad glob", "policies:\n  - name: g\n    bucket: \"a[\"\n    mode: sse-s3\n", nil, "policies[0].bucket", "not a bucket name or glob"},
		{"slash in bucket", "policies:\n  - name: g\n    bucket: a/b\n    mode: sse-s3\n", nil, "policies[0].bucket", "not a bucket name"},
		{"duplicate name", "policies:\n  - name: a\n    bucket: x\n    mode: sse-s3\n  - name: a\n    bucket: y\n    mode: sse-s3\n", nil, "policies[1].name", "duplicates the name of policies[0]"},
		{"sse-c without keys", "policies:\n  - name: c\n    bucket: b\n    mode: sse-c\n", nil, "policies[0].mode", "needs a key ring"},
		{"sse-c with kms keys", "keys: aws-kms:alias/x\npolicies:\n  - name: c\n    bucket: b\n    mode: sse-c\n", nil, "policies[0].mode", "local key ring"},
		{"default sse-c with kms keys", "keys: aws-kms:alias/x\nmode: sse-c\n", nil, "keys", "local key ring"},
		{"envelope without keys", "policies:\n  - name: e\n    mode: envelope\n", nil, "policies[0].mode", "needs a key provider"},
		{"bad key name", "keys: local:/k\npolicies:\n  - name: c\n    mode: sse-c\n    sse_c_key: \"-x\"\n", nil, "policies[0].sse_c_key", "not a key ring key name"},
		{"client_sse value", "policies:\n  - name: k\n    mode: sse-kms\n    client_sse: always\n", nil, "policies[0].client_sse", "want accept-stronger or refuse"},
		{"client_sse on sse-c", "keys: local:/k\npolicies:\n  - name: c\n    mode: sse-c\n    client_sse: refuse\n", nil, "policies[0].client_sse", "only to mode sse-s3 or sse-kms"},
		{"client_sse_c value", "policies:\n  - name: k\n    mode: sse-s3\n    client_sse_c: yes-please\n", nil, "policies[0].client_sse_c", "want refuse or allow"},
		{"allow_http on sse-kms", "policies:\n  - name: k\n    mode: sse-kms\n    allow_http: true\n", nil, "policies[0].allow_http", "only to mode sse-c"},
		{"deny value", "policies:\n  - name: d\n    mode: deny\n    deny: reads\n", nil, "policies[0].deny", "want all, writes or plaintext-writes"},
		{"deny option on sse-s3", "policies:\n  - name: d\n    mode: sse-s3\n    deny: writes\n", nil, "policies[0].deny", "only to mode deny"},
		{"message on passthrough", "policies:\n  - name: d\n    mode: passthrough\n    message: hi\n", nil, "policies[0].message", "only to mode deny"},
		{"plaintext_before alone", "keys: local:/k\npolicies:\n  - name: e\n    mode: envelope\n    plaintext_before: 2026-01-01T00:00:00Z\n", nil, "policies[0].plaintext_before", "only with allow_plaintext_reads"},
		{"plaintext_before not a time", "keys: local:/k\npolicies:\n  - name: e\n    mode: envelope\n    allow_plaintext_reads: true\n    plaintext_before: yesterday\n", nil, "policies[0].plaintext_before", "RFC 3339"},
		{"shadowed rule", "policies:\n  - name: all\n    mode: sse-s3\n  - name: never\n    bucket: b\n    prefix: x/\n    mode: sse-kms\n", nil, "policies[1].bucket", "never applies: policies[0]"},
		{"shadowed by prefix", "policies:\n  - name: wide\n    bucket: b\n    prefix: logs\n    mode: sse-s3\n  - name: narrow\n    bucket: b\n    prefix: logs/2026/\n    mode: deny\n", nil, "policies[1].bucket", "never applies"},
		{"shadowed by star", "policies:\n  - name: star\n    bucket: \"*\"\n    mode: sse-s3\n  - name: b\n    bucket: b\n    mode: deny\n", nil, "policies[1].bucket", "never applies"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadPolicies(t, c.yaml, c.env)
			if err == nil {
				t.Fatal("accepted")
			}
			var found bool
			var fe *FieldError
			for _, e := range unjoin(err) {
				if errors.As(e, &fe) && fe.Field == c.field && strings.Contains(fe.Msg, c.msg) {
					found = true
				}
			}
			if !found {
				t.Errorf("error %q does not name %s with %q", err, c.field, c.msg)
			}
		})
	}
}

func TestPolicyValidationAcceptsNarrowerRulesFirst(t *testing.T) {
	_, err := loadPolicies(t, `
policies:
  - {name: narrow, bucket: b, prefix: logs/2026/, mode: deny}
  - {name: wide, bucket: b, prefix: logs, mode: sse-s3}
  - {name: other-bucket, bucket: c, mode: sse-kms}
  - {name: glob-after-exact, bucket: "c*", mode: sse-s3}
  - {name: rest, mode: passthrough}
`, nil)
	if err != nil {
		t.Fatal(err)
	}
}

// unjoin flattens errors.Join trees.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}
