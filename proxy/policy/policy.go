// Package policy decides, per bucket and object key, how s3seal treats a
// request: pass it through, have the store encrypt it (SSE-S3, SSE-KMS,
// SSE-C with keys s3seal holds), encrypt it client-side (envelope), or
// refuse it.
//
// # Matching
//
// Rules are ordered; the first rule whose bucket (an exact name or a glob
// with *, ? and [...]) and key prefix match applies, and the default rule
// (S3SEAL_MODE) applies when none does. Reads are self-describing (an
// object's own metadata says how to read it); a rule governs how new objects
// are written and how listing sizes are read.
//
// # Server-side encryption strength
//
// A client may send its own x-amz-server-side-encryption header. Under an
// sse-s3 or sse-kms rule it is kept when it is at least as strong as the
// rule (see [Algorithm.Strength]): AES256 < aws:kms < aws:kms:dsse. When an
// sse-kms rule names a KMS key, only that key is at least as strong: a
// request for another key is weaker, because the rule's key is where the
// operator controls who may decrypt. A rule without a key accepts any key
// the client names. A client's encryption context may add pairs to the
// rule's context but not change them. [Rule.ClientSSE] set to
// [ClientSSERefuse] refuses every client choice that differs from the rule.
//
// SSE-C headers a client sends itself are refused unless the rule's
// [Rule.ClientSSEC] is [ClientSSECAllow]; then they are honoured end to end
// and s3seal adds no keys of its own to that request.
//
// # Deny rules
//
// A deny rule refuses with AccessDenied and a message naming the rule. Its
// [Rule.Deny] scope says what it refuses: every request ([DenyAll], the
// default), requests that change stored data or configuration
// ([DenyWrites]; reads and listings pass through), or uploads and copies
// that do not ask for server-side encryption ([DenyPlaintextWrites]).
package policy

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
)

// Mode is what a rule does.
type Mode string

// Modes.
const (
	Passthrough Mode = "passthrough"
	SSES3       Mode = "sse-s3"
	SSEKMS      Mode = "sse-kms"
	SSEC        Mode = "sse-c"
	Envelope    Mode = "envelope"
	Deny        Mode = "deny"
)

// Modes lists every mode, in the order documentation names them.
func Modes() []Mode { return []Mode{Passthrough, SSES3, SSEKMS, SSEC, Envelope, Deny} }

// Valid reports whether m is a known mode.
func (m Mode) Valid() bool {
	for _, v := range Modes() {
		if m == v {
			return true
		}
	}
	return false
}

// Encrypting reports whether the mode makes s3seal responsible for
// encrypting what is written, so that operations it cannot apply the
// encryption to must be refused.
func (m Mode) Encrypting() bool {
	return m == SSES3 || m == SSEKMS || m == SSEC || m == Envelope
}

// ServerSide reports whether the mode has the store encrypt (sse-s3,
// sse-kms, sse-c).
func (m Mode) ServerSide() bool { return m == SSES3 || m == SSEKMS || m == SSEC }

// ClientSSE says what an sse-s3 or sse-kms rule does with a client's own
// x-amz-server-side-encryption headers.
type ClientSSE string

// ClientSSE values.
const (
	// ClientSSEAcceptStronger (the default, also the zero value) keeps a
	// client's choice that is at least as strong as the rule and refuses
	// a weaker one.
	ClientSSEAcceptStronger ClientSSE = "accept-stronger"
	// ClientSSERefuse refuses any client choice that differs from what
	// the rule sets.
	ClientSSERefuse ClientSSE = "refuse"
)

// ClientSSEC says what a server-side encryption rule does with SSE-C
// headers (customer keys) a client sends itself.
type ClientSSEC string

// ClientSSEC values.
const (
	// ClientSSECRefuse (the default, also the zero value) refuses them:
	// applications never handle SSE-C keys, s3seal does.
	ClientSSECRefuse ClientSSEC = "refuse"
	// ClientSSECAllow honours them end to end: s3seal passes the client's
	// keys and adds none of its own to that request.
	ClientSSECAllow ClientSSEC = "allow"
)

// DenyScope says what a deny rule refuses.
type DenyScope string

// DenyScope values.
const (
	// DenyAll (the default, also the zero value) refuses every request.
	DenyAll DenyScope = "all"
	// DenyWrites refuses every request that changes stored objects,
	// uploads or bucket configuration; reads and listings pass through.
	DenyWrites DenyScope = "writes"
	// DenyPlaintextWrites refuses uploads and copies (PutObject,
	// CopyObject, CreateMultipartUpload, browser-form POST) that do not
	// ask for server-side encryption; everything else passes through.
	DenyPlaintextWrites DenyScope = "plaintext-writes"
)

// Rule is one policy rule.
type Rule struct {
	// Name identifies the rule in logs and errors; default "rule N" or
	// "default".
	Name string
	// Bucket is an exact bucket name or a glob (*, ? and [...]); empty
	// matches every bucket.
	Bucket string
	// Prefix limits the rule to keys starting with it.
	Prefix string
	Mode   Mode

	// KMSKeyID, KMSContext and BucketKey configure sse-kms. An empty
	// KMSKeyID means the store's default key (aws/s3 on AWS); nil
	// BucketKey leaves the bucket's setting alone.
	KMSKeyID   string
	KMSContext map[string]string
	BucketKey  *bool
	// SSECKey names the key-ring master key sse-c derives the keys of new
	// objects from; empty means the key ring's active key. Reads try every
	// key in the key ring.
	SSECKey string
	// ClientSSE and ClientSSEC say what the server-side encryption modes
	// do with encryption headers clients send themselves; the zero values
	// mean the defaults (accept-stronger, refuse).
	ClientSSE  ClientSSE
	ClientSSEC ClientSSEC
	// AllowHTTP lets an sse-c rule send SSE-C keys to a plain-HTTP
	// upstream. Off, s3seal refuses: a key sent in clear text must be
	// treated as leaked.
	AllowHTTP bool
	// AllowPlaintextReads lets an envelope rule read objects that have no
	// s3seal metadata (migrating existing plaintext data).
	AllowPlaintextReads bool
	// PlaintextBefore, when set, limits AllowPlaintextReads to objects
	// last modified before it: anyone who can write the store could
	// otherwise replace an encrypted object with plaintext that s3seal
	// serves as the object.
	PlaintextBefore time.Time
	// AllowS3ECReads lets an envelope rule read (decrypt) objects the
	// Amazon S3 Encryption Client wrote, for migrations to s3seal.
	AllowS3ECReads bool
	// Deny is the scope of a deny rule; empty means DenyAll.
	Deny DenyScope
	// Message is sent with AccessDenied by deny rules.
	Message string
}

// PlaintextAllowed reports whether the rule reads an object without s3seal
// metadata that was last modified at lastModified (zero when unknown).
func (r *Rule) PlaintextAllowed(lastModified time.Time) bool {
	if !r.AllowPlaintextReads {
		return false
	}
	if r.PlaintextBefore.IsZero() {
		return true
	}
	return !lastModified.IsZero() && lastModified.Before(r.PlaintextBefore)
}

// DenyScope returns the rule's deny scope with the default filled in.
func (r *Rule) DenyScope() DenyScope {
	if r.Deny == "" {
		return DenyAll
	}
	return r.Deny
}

// ClientSSEChoice returns the rule's ClientSSE with the default filled in.
func (r *Rule) ClientSSEChoice() ClientSSE {
	if r.ClientSSE == "" {
		return ClientSSEAcceptStronger
	}
	return r.ClientSSE
}

// AllowsClientSSEC reports whether the rule honours SSE-C keys clients send
// themselves.
func (r *Rule) AllowsClientSSEC() bool { return r.ClientSSEC == ClientSSECAllow }

// DenyMessage returns the message a deny rule refuses with: its own
// Message, or one naming the rule.
func (r *Rule) DenyMessage() string {
	if r.Message != "" {
		return r.Message
	}
	switch r.DenyScope() {
	case DenyWrites:
		return fmt.Sprintf("Access Denied by s3seal policy rule %q: this location is read-only.", r.Name)
	case DenyPlaintextWrites:
		return fmt.Sprintf("Access Denied by s3seal policy rule %q: writes must ask for server-side encryption (x-amz-server-side-encryption or SSE-C headers).", r.Name)
	}
	return fmt.Sprintf("Access Denied by s3seal policy rule %q.", r.Name)
}

// RuleError reports a rule whose settings are invalid.
type RuleError struct {
	// Rule is the rule's name; Field is the setting at fault, as in the
	// YAML file ("kms_key_id").
	Rule, Field string
	Err         error
}

func (e *RuleError) Error() string {
	return fmt.Sprintf("policy: rule %q: %s: %v", e.Rule, e.Field, e.Err)
}

// Unwrap returns the underlying problem.
func (e *RuleError) Unwrap() error { return e.Err }

// Check reports the first setting that is invalid for the rule's mode, as a
// *RuleError. It does not check SSECKey against a key ring.
func (r *Rule) Check() error {
	bad := func(field, format string, args ...any) error {
		return &RuleError{Rule: r.Name, Field: field, Err: fmt.Errorf(format, args...)}
	}
	if !r.Mode.Valid() {
		return bad("mode", "unknown mode %q", r.Mode)
	}
	if r.Bucket != "" {
		if _, err := path.Match(r.Bucket, ""); err != nil || strings.Contains(r.Bucket, "/") {
			return bad("bucket", "%q is not a bucket name or glob", r.Bucket)
		}
	}
	only := func(field string, set bool, modes ...Mode) error {
		if !set {
			return nil
		}
		for _, m := range modes {
			if r.Mode == m {
				return nil
			}
		}
		names := make([]string, len(modes))
		for i, m := range modes {
			names[i] = string(m)
		}
		return bad(field, "applies only to mode %s, not %s", strings.Join(names, " or "), r.Mode)
	}
	errs := []error{
		only("kms_key_id", r.KMSKeyID != "", SSEKMS),
		only("kms_context", len(r.KMSContext) > 0, SSEKMS),
		only("bucket_key", r.BucketKey != nil, SSEKMS),
		only("sse_c_key", r.SSECKey != "", SSEC),
		only("client_sse", r.ClientSSE != "", SSES3, SSEKMS),
		only("client_sse_c", r.ClientSSEC != "", SSES3, SSEKMS, SSEC),
		only("allow_http", r.AllowHTTP, SSEC),
		only("allow_plaintext_reads", r.AllowPlaintextReads, Envelope),
		only("plaintext_before", !r.PlaintextBefore.IsZero(), Envelope),
		only("allow_s3ec_reads", r.AllowS3ECReads, Envelope),
		only("deny", r.Deny != "", Deny),
		only("message", r.Message != "", Deny),
	}
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	for k := range r.KMSContext {
		if k == "" || strings.HasPrefix(strings.ToLower(k), "aws:") {
			return bad("kms_context", "key %q is reserved or empty (keys starting with aws: belong to AWS)", k)
		}
	}
	switch r.ClientSSE {
	case "", ClientSSEAcceptStronger, ClientSSERefuse:
	default:
		return bad("client_sse", "want %s or %s, got %q", ClientSSEAcceptStronger, ClientSSERefuse, r.ClientSSE)
	}
	switch r.ClientSSEC {
	case "", ClientSSECRefuse, ClientSSECAllow:
	default:
		return bad("client_sse_c", "want %s or %s, got %q", ClientSSECRefuse, ClientSSECAllow, r.ClientSSEC)
	}
	switch r.Deny {
	case "", DenyAll, DenyWrites, DenyPlaintextWrites:
	default:
		return bad("deny", "want %s, %s or %s, got %q", DenyAll, DenyWrites, DenyPlaintextWrites, r.Deny)
	}
	return nil
}

// Engine matches requests to rules. It is immutable and safe for
// concurrent use.
type Engine struct {
	rules []Rule
	def   Rule
}

// New returns an engine with the given ordered rules and default. Rules
// without a name are named "rule N" (counting from 1), the default
// "default" if unnamed, and a default without a mode is passthrough. Each
// rule is checked with [Rule.Check]; the default may not be scoped to a
// bucket or prefix.
func New(rules []Rule, def Rule) (*Engine, error) {
	e := &Engine{rules: append([]Rule(nil), rules...), def: def}
	for i := range e.rules {
		r := &e.rules[i]
		if r.Name == "" {
			r.Name = fmt.Sprintf("rule %d", i+1)
		}
		if err := r.Check(); err != nil {
			return nil, err
		}
	}
	if e.def.Name == "" {
		e.def.Name = "default"
	}
	if e.def.Mode == "" {
		e.def.Mode = Passthrough
	}
	if e.def.Bucket != "" || e.def.Prefix != "" {
		return nil, &RuleError{Rule: e.def.Name, Field: "bucket", Err: errors.New("the default rule applies everywhere; it has no bucket or prefix")}
	}
	if err := e.def.Check(); err != nil {
		return nil, err
	}
	return e, nil
}

// Match returns the rule for an object (or, with key "", a bucket-level
// request).
func (e *Engine) Match(bucket, key string) *Rule {
	for i := range e.rules {
		r := &e.rules[i]
		if r.matchesBucket(bucket) && strings.HasPrefix(key, r.Prefix) {
			return r
		}
	}
	return &e.def
}

// Uniform reports whether every key under prefix in bucket is governed by
// the same rule, and returns it; listings use it to avoid matching each key.
func (e *Engine) Uniform(bucket, prefix string) (*Rule, bool) {
	for i := range e.rules {
		r := &e.rules[i]
		if !r.matchesBucket(bucket) {
			continue
		}
		switch {
		case strings.HasPrefix(prefix, r.Prefix):
			return r, true
		case strings.HasPrefix(r.Prefix, prefix):
			// A narrower rule covers part of the listing.
			return nil, false
		}
	}
	return &e.def, true
}

// Rules returns the ordered rules followed by the default rule. The
// returned rules are copies.
func (e *Engine) Rules() []Rule {
	out := make([]Rule, 0, len(e.rules)+1)
	out = append(out, e.rules...)
	return append(out, e.def)
}

// Default returns the rule that applies where no other rule matches.
func (e *Engine) Default() *Rule { return &e.def }

func (r *Rule) matchesBucket(bucket string) bool {
	if r.Bucket == "" || r.Bucket == bucket {
		return true
	}
	ok, _ := path.Match(r.Bucket, bucket)
	return ok
}
