package policy

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func mustNew(t *testing.T, rules []Rule, def Rule) *Engine {
	t.Helper()
	e, err := New(rules, def)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestMatch(t *testing.T) {
	e := mustNew(t, []Rule{
		{Name: "secrets", Bucket: "prod-*", Prefix: "secrets/", Mode: SSEKMS, KMSKeyID: "k"},
		{Name: "prod", Bucket: "prod-*", Mode: SSES3},
		{Name: "logs-exact", Bucket: "logs", Prefix: "2026/", Mode: Deny},
		{Name: "any-tmp", Prefix: "tmp/", Mode: Passthrough},
		{Bucket: "archive-?", Mode: SSEC},
		{Name: "class", Bucket: "team-[ab]", Mode: Envelope},
	}, Rule{Mode: SSES3})
	cases := []struct{ bucket, key, want string }{
		{"prod-eu", "secrets/db.json", "secrets"}, // overlapping: first match wins
		{"prod-eu", "secrets", "prod"},            // prefix is a byte prefix, not a path
		{"prod-eu", "public/x", "prod"},
		{"prod-eu", "", "prod"}, // bucket-level request
		{"prod-eu", "tmp/x", "prod"},
		{"prod", "secrets/x", "default"},
		{"logs", "2026/01/x", "logs-exact"},
		{"logs", "2025/x", "default"},
		{"logs-2", "2026/x", "default"},
		{"dev", "tmp/scratch", "any-tmp"},
		{"archive-1", "x", "rule 5"}, // unnamed rules are numbered from 1
		{"archive-12", "x", "default"},
		{"team-a", "k", "class"},
		{"team-c", "k", "default"},
		{"", "", "default"}, // ListBuckets
	}
	for _, c := range cases {
		if got := e.Match(c.bucket, c.key).Name; got != c.want {
			t.Errorf("Match(%q, %q) = %s, want %s", c.bucket, c.key, got, c.want)
		}
	}
	if d := e.Match("x", "y"); d.Mode != SSES3 || d != e.Default() {
		t.Errorf("default rule = %+v", d)
	}
}

func TestUniform(t *testing.T) {
	e := mustNew(t, []Rule{
		{Name: "secrets", Bucket: "b", Prefix: "secrets/", Mode: SSEKMS},
		{Name: "bucket", Bucket: "b", Mode: SSES3},
		{Name: "c-tmp", Bucket: "c", Prefix: "tmp/", Mode: Passthrough},
	}, Rule{Mode: Passthrough})
	cases := []struct {
		bucket, prefix string
		want           string // "" for not uniform
	}{
		{"b", "secrets/", "secrets"},
		{"b", "secrets/deep/", "secrets"},
		{"b", "", ""},    // a narrower rule covers part of it
		{"b", "sec", ""}, // "sec" lists secrets/ too
		{"b", "public/", "bucket"},
		{"c", "", ""},
		{"c", "tmp/a", "c-tmp"},
		{"c", "other/", "default"},
		{"z", "", "default"},
	}
	for _, c := range cases {
		r, ok := e.Uniform(c.bucket, c.prefix)
		got := ""
		if ok {
			got = r.Name
		}
		if got != c.want {
			t.Errorf("Uniform(%q, %q) = %q, want %q", c.bucket, c.prefix, got, c.want)
		}
		if ok {
			// Every key under the prefix matches the same rule.
			for _, suffix := range []string{"", "x", "secrets/x", "/y"} {
				if m := e.Match(c.bucket, c.prefix+suffix); m != r {
					t.Errorf("Uniform(%q, %q) = %s but key %q matches %s", c.bucket, c.prefix, r.Name, c.prefix+suffix, m.Name)
				}
			}
		}
	}
}

func TestNewRejectsInvalidRules(t *testing.T) {
	yes := true
	cases := []struct {
		rule  Rule
		field string
	}{
		{Rule{Name: "m", Mode: "sse-x"}, "mode"},
		{Rule{Name: "g", Bucket: "a[", Mode: SSES3}, "bucket"},
		{Rule{Name: "slash", Bucket: "a/b", Mode: SSES3}, "bucket"},
		{Rule{Name: "k", Mode: SSES3, KMSKeyID: "x"}, "kms_key_id"},
		{Rule{Name: "ctx", Mode: SSEC, KMSContext: map[string]string{"a": "b"}}, "kms_context"},
		{Rule{Name: "bk", Mode: Passthrough, BucketKey: &yes}, "bucket_key"},
		{Rule{Name: "reserved", Mode: SSEKMS, KMSContext: map[string]string{"aws:s3:arn": "x"}}, "kms_context"},
		{Rule{Name: "ck", Mode: SSEKMS, SSECKey: "x"}, "sse_c_key"},
		{Rule{Name: "cs", Mode: SSEC, ClientSSE: ClientSSERefuse}, "client_sse"},
		{Rule{Name: "cs2", Mode: SSES3, ClientSSE: "maybe"}, "client_sse"},
		{Rule{Name: "csc", Mode: Envelope, ClientSSEC: ClientSSECAllow}, "client_sse_c"},
		{Rule{Name: "csc2", Mode: SSEC, ClientSSEC: "sometimes"}, "client_sse_c"},
		{Rule{Name: "http", Mode: SSEKMS, AllowHTTP: true}, "allow_http"},
		{Rule{Name: "apr", Mode: SSEC, AllowPlaintextReads: true}, "allow_plaintext_reads"},
		{Rule{Name: "s3ec", Mode: Passthrough, AllowS3ECReads: true}, "allow_s3ec_reads"},
		{Rule{Name: "d", Mode: Passthrough, Deny: DenyWrites}, "deny"},
		{Rule{Name: "d2", Mode: Deny, Deny: "reads"}, "deny"},
		{Rule{Name: "msg", Mode: SSES3, Message: "no"}, "message"},
	}
	for _, c := range cases {
		_, err := New([]Rule{{Name: "ok", Mode: SSES3}, c.rule}, Rule{})
		var re *RuleError
		if !errors.As(err, &re) || re.Rule != c.rule.Name || re.Field != c.field {
			t.Errorf("%s: got %v, want a RuleError on field %s", c.rule.Name, err, c.field)
			continue
		}
		if !strings.Contains(err.Error(), c.rule.Name) || !strings.Contains(err.Error(), c.field) || !strings.HasPrefix(err.Error(), "policy: ") {
			t.Errorf("error %q does not name the rule and field", err)
		}
	}
	if _, err := New(nil, Rule{Mode: SSES3, Bucket: "b"}); err == nil {
		t.Error("a default rule scoped to a bucket was accepted")
	}
	if _, err := New(nil, Rule{Mode: "nope"}); err == nil {
		t.Error("a default rule with an unknown mode was accepted")
	}
	e := mustNew(t, []Rule{{Mode: Deny}}, Rule{})
	if rules := e.Rules(); len(rules) != 2 || rules[0].Name != "rule 1" || rules[1].Name != "default" || rules[1].Mode != Passthrough {
		t.Errorf("Rules() = %+v", rules)
	}
}

func TestModes(t *testing.T) {
	for _, m := range Modes() {
		if !m.Valid() {
			t.Errorf("%s not valid", m)
		}
		enc := m == SSES3 || m == SSEKMS || m == SSEC || m == Envelope
		if m.Encrypting() != enc {
			t.Errorf("%s.Encrypting() = %t", m, m.Encrypting())
		}
		if m.ServerSide() != (enc && m != Envelope) {
			t.Errorf("%s.ServerSide() = %t", m, m.ServerSide())
		}
	}
	if Mode("SSE-S3").Valid() || Mode("").Valid() {
		t.Error("invalid modes accepted")
	}
}

func TestDenyMessage(t *testing.T) {
	for _, scope := range []DenyScope{"", DenyAll, DenyWrites, DenyPlaintextWrites} {
		r := &Rule{Name: "vault", Mode: Deny, Deny: scope}
		if msg := r.DenyMessage(); !strings.Contains(msg, `"vault"`) {
			t.Errorf("scope %q: message %q does not name the rule", scope, msg)
		}
	}
	r := &Rule{Name: "vault", Mode: Deny, Message: "Ask the storage team."}
	if r.DenyMessage() != "Ask the storage team." {
		t.Error("custom message not used")
	}
	if (&Rule{}).DenyScope() != DenyAll {
		t.Error("the default deny scope is not all")
	}
}

func TestPlaintextAllowed(t *testing.T) {
	cut := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	open := &Rule{Mode: Envelope, AllowPlaintextReads: true}
	guarded := &Rule{Mode: Envelope, AllowPlaintextReads: true, PlaintextBefore: cut}
	closed := &Rule{Mode: Envelope}
	for _, c := range []struct {
		r    *Rule
		at   time.Time
		want bool
	}{
		{open, cut.Add(time.Hour), true},
		{open, time.Time{}, true},
		{guarded, cut.Add(-time.Second), true},
		{guarded, cut, false},
		{guarded, cut.Add(time.Hour), false},
		{guarded, time.Time{}, false},
		{closed, cut.Add(-time.Hour), false},
	} {
		if got := c.r.PlaintextAllowed(c.at); got != c.want {
			t.Errorf("%+v at %v: %t, want %t", c.r, c.at, got, c.want)
		}
	}
}
