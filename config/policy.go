package config

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
)

// PolicyRule is one policy rule in the YAML file. Rules are ordered: the
// first whose bucket and prefix match a request applies, and Mode
// (S3SEAL_MODE) applies where none does.
//
//	policies:
//	  - name: secrets
//	    bucket: "prod-*"
//	    prefix: "secrets/"
//	    mode: sse-kms
//	    kms_key_id: alias/prod-secrets
//	    kms_context: {team: payments}
//	    bucket_key: true
//	  - name: archive
//	    bucket: archive
//	    mode: sse-c             # keys derived from the key ring in keys
//	  - name: legacy-read-only
//	    bucket: legacy
//	    mode: deny
//	    deny: writes
//
// Settings that do not belong to a rule's mode are errors, so that a
// misplaced setting is never silently ignored.
type PolicyRule struct {
	// Name identifies the rule in logs and errors. Default "rule N"
	// (counting from 1).
	Name string `yaml:"name"`
	// Bucket is an exact bucket name or a glob (*, ?, [...]); empty
	// matches every bucket.
	Bucket string `yaml:"bucket"`
	// Prefix limits the rule to object keys starting with it.
	Prefix string `yaml:"prefix"`
	// Mode is passthrough, sse-s3, sse-kms, sse-c, envelope or deny.
	Mode string `yaml:"mode"`

	// KMSKeyID (sse-kms) is the KMS key new objects are encrypted with:
	// key id, key ARN, alias name or alias ARN. Empty means the store's
	// default key (aws/s3 on AWS).
	KMSKeyID string `yaml:"kms_key_id"`
	// KMSContext (sse-kms) is the encryption context S3 passes to KMS.
	// Keys starting with "aws:" are reserved.
	KMSContext map[string]string `yaml:"kms_context"`
	// BucketKey (sse-kms) turns S3 Bucket Keys on or off for new objects;
	// unset leaves the bucket's setting.
	BucketKey *bool `yaml:"bucket_key"`
	// SSECKey (sse-c) names the key-ring master key that the keys of new
	// objects are derived from. Default: the key ring's active (last)
	// key. Objects are read with whichever key ring key fits.
	SSECKey string `yaml:"sse_c_key"`
	// ClientSSE (sse-s3, sse-kms) is what to do with a client's own
	// x-amz-server-side-encryption headers: accept-stronger (default:
	// keep them when at least as strong as the rule, refuse them when
	// weaker) or refuse (refuse any that differ from the rule).
	ClientSSE string `yaml:"client_sse"`
	// ClientSSEC (sse-s3, sse-kms, sse-c) is what to do with SSE-C keys a
	// client sends itself: refuse (default) or allow (honour them end to
	// end).
	ClientSSEC string `yaml:"client_sse_c"`
	// AllowHTTP (sse-c) lets s3seal send SSE-C keys to a plain-HTTP
	// upstream; without it such requests are refused.
	AllowHTTP bool `yaml:"allow_http"`
	// AllowPlaintextReads (envelope) reads objects that carry no s3seal
	// encryption metadata as they are.
	AllowPlaintextReads bool `yaml:"allow_plaintext_reads"`
	// PlaintextBefore (envelope, with AllowPlaintextReads) reads plaintext
	// only of objects last modified before this instant (RFC 3339, e.g.
	// the moment the migration to s3seal started), so that plaintext
	// written into the store later is not served as an object.
	PlaintextBefore string `yaml:"plaintext_before"`
	// AllowS3ECReads (envelope) reads objects written by the Amazon S3
	// Encryption Client (V2 and V3, keys wrapped by one of the configured
	// KMS keys), decrypting them for the client.
	AllowS3ECReads bool `yaml:"allow_s3ec_reads"`
	// Deny (deny) is what the rule refuses: all (default), writes (reads
	// and listings pass) or plaintext-writes (uploads and copies that do
	// not ask for server-side encryption).
	Deny string `yaml:"deny"`
	// Message (deny) replaces the AccessDenied message; by default it
	// names the rule.
	Message string `yaml:"message"`
}

// policyModes are the modes a rule may have.
var policyModes = []string{"passthrough", "sse-s3", "sse-kms", "sse-c", "envelope", "deny"}

// validatePolicies checks the rules: known modes and options, settings that
// belong to the rule's mode, valid bucket globs, unique names, key
// providers for the modes that need one, and rules that can never apply
// because an earlier rule covers everything they would match.
func (c *Config) validatePolicies(v *validator) {
	keyKind, _, _ := strings.Cut(c.Keys, ":")
	if c.Mode == "sse-c" && c.Keys != "" && keyKind != "local" {
		v.fail("keys", "S3SEAL_KEYS", "mode sse-c derives SSE-C keys from a local key ring: set keys to local:<key ring file> (create one with `s3seal keygen -o FILE`)"+ageOnlyEnvelope(keyKind))
	}
	names := map[string]int{}
	for i, r := range c.Policies {
		f := func(field string) string { return fmt.Sprintf("policies[%d].%s", i, field) }
		label := fmt.Sprintf("rule %d", i+1)
		if r.Name != "" {
			label = fmt.Sprintf("rule %q", r.Name)
		}
		fail := func(field, format string, args ...any) {
			v.fail(f(field), "", label+": "+fmt.Sprintf(format, args...))
		}
		if r.Name != "" {
			if len(r.Name) > 64 || strings.IndexFunc(r.Name, func(c rune) bool { return c < 0x20 || c == 0x7f }) >= 0 {
				fail("name", "must be at most 64 printable characters")
			}
			if j, dup := names[r.Name]; dup {
				fail("name", "duplicates the name of policies[%d]", j)
			}
			names[r.Name] = i
		}
		if r.Bucket != "" {
			if _, err := path.Match(r.Bucket, ""); err != nil || strings.Contains(r.Bucket, "/") {
				fail("bucket", "%q is not a bucket name or glob (*, ?, [...])", r.Bucket)
			}
		}
		mode := r.Mode
		switch {
		case mode == "":
			fail("mode", "required: one of %s", strings.Join(policyModes, ", "))
			continue
		case !slices.Contains(policyModes, mode):
			fail("mode", "unknown mode %q; want one of %s", mode, strings.Join(policyModes, ", "))
			continue
		}
		only := func(field string, set bool, modes ...string) {
			if set && !slices.Contains(modes, mode) {
				fail(field, "applies only to mode %s, not %s", strings.Join(modes, " or "), mode)
			}
		}
		only("kms_key_id", r.KMSKeyID != "", "sse-kms")
		only("kms_context", len(r.KMSContext) > 0, "sse-kms")
		only("bucket_key", r.BucketKey != nil, "sse-kms")
		only("sse_c_key", r.SSECKey != "", "sse-c")
		only("client_sse", r.ClientSSE != "", "sse-s3", "sse-kms")
		only("client_sse_c", r.ClientSSEC != "", "sse-s3", "sse-kms", "sse-c")
		only("allow_http", r.AllowHTTP, "sse-c")
		only("allow_plaintext_reads", r.AllowPlaintextReads, "envelope")
		if r.PlaintextBefore != "" {
			if !r.AllowPlaintextReads {
				fail("plaintext_before", "applies only with allow_plaintext_reads: true")
			} else if _, err := time.Parse(time.RFC3339, r.PlaintextBefore); err != nil {
				fail("plaintext_before", "want an RFC 3339 time such as 2026-12-01T00:00:00Z, got %q", r.PlaintextBefore)
			}
		}
		only("allow_s3ec_reads", r.AllowS3ECReads, "envelope")
		only("deny", r.Deny != "", "deny")
		only("message", r.Message != "", "deny")

		if strings.TrimSpace(r.KMSKeyID) != r.KMSKeyID {
			fail("kms_key_id", "has leading or trailing spaces")
		}
		for k := range r.KMSContext {
			if k == "" || strings.HasPrefix(strings.ToLower(k), "aws:") {
				fail("kms_context", "key %q is empty or reserved (keys starting with aws: belong to AWS)", k)
			}
		}
		if r.SSECKey != "" && !validKeyName(r.SSECKey) {
			fail("sse_c_key", "%q is not a key ring key name (1 to 64 letters, digits, '.', '_', '-', starting with a letter or digit)", r.SSECKey)
		}
		if r.ClientSSE != "" && r.ClientSSE != "accept-stronger" && r.ClientSSE != "refuse" {
			fail("client_sse", "want accept-stronger or refuse, got %q", r.ClientSSE)
		}
		if r.ClientSSEC != "" && r.ClientSSEC != "refuse" && r.ClientSSEC != "allow" {
			fail("client_sse_c", "want refuse or allow, got %q", r.ClientSSEC)
		}
		if r.Deny != "" && r.Deny != "all" && r.Deny != "writes" && r.Deny != "plaintext-writes" {
			fail("deny", "want all, writes or plaintext-writes, got %q", r.Deny)
		}
		switch mode {
		case "sse-c":
			switch {
			case c.Keys == "":
				fail("mode", "sse-c needs a key ring: set keys (S3SEAL_KEYS) to local:<key ring file> (create one with `s3seal keygen -o FILE`)")
			case keyKind != "local":
				fail("mode", "sse-c derives SSE-C keys from a local key ring, and keys (S3SEAL_KEYS) is %s: set keys to local:<key ring file>%s", keyKind, ageOnlyEnvelope(keyKind))
			}
		case "envelope":
			if c.Keys == "" {
				fail("mode", "envelope needs a key provider: set keys (S3SEAL_KEYS) to local:<key ring file>, aws-kms:<key id>, kmip:<unique id> or pkcs11:<key label>")
			}
		}
		for j := 0; j < i; j++ {
			if covers(c.Policies[j], r) {
				fail("bucket", "never applies: policies[%d] comes first and matches every request this rule would (rules are tried in order; put narrower rules first)", j)
				break
			}
		}
	}
}

// covers reports whether rule a, tried before b, matches every request b
// would. Only clear cases are recognised: a's bucket is empty, "*" or the
// same as b's, and a's prefix is a prefix of b's.
func covers(a, b PolicyRule) bool {
	bucketCovered := a.Bucket == "" || a.Bucket == "*" || a.Bucket == b.Bucket
	return bucketCovered && strings.HasPrefix(b.Prefix, a.Prefix)
}

// validKeyName mirrors the key ring's naming rule: 1 to 64 characters from
// [A-Za-z0-9._-], starting with a letter or digit.
func validKeyName(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// ageOnlyEnvelope explains, for age keys, why sse-c cannot use them.
func ageOnlyEnvelope(kind string) string {
	if kind != "age" {
		return ""
	}
	return "; age keys (public recipients) serve envelope mode only"
}
