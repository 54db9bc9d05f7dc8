// Package policy decides, per bucket and object key, how s3seal treats a
// request: pass it through, have the store encrypt it (SSE-S3, SSE-KMS,
// SSE-C with keys s3seal holds), encrypt it client-side (envelope), or
// refuse it.
//
// Rules are ordered; the first rule whose bucket glob and key prefix match
// applies, and the default rule applies when none does. Reads are
// self-describing (an object's own metadata says how to read it); a rule
// governs how new objects are written and how listing sizes are read.
package policy

import (
	"fmt"
	"path"
	"strings"
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

// Encrypting reports whether the mode makes s3seal responsible for
// encrypting what is written, so that operations it cannot apply the
// encryption to must be refused.
func (m Mode) Encrypting() bool {
	return m == SSES3 || m == SSEKMS || m == SSEC || m == Envelope
}

// Rule is one policy rule.
type Rule struct {
	// Name identifies the rule in logs and errors; default "rule N" or
	// "default".
	Name string
	// Bucket is an exact bucket name or a glob (* and ?); empty matches
	// every bucket.
	Bucket string
	// Prefix limits the rule to keys starting with it.
	Prefix string
	Mode   Mode

	// KMSKeyID, KMSContext and BucketKey configure sse-kms.
	KMSKeyID   string
	KMSContext map[string]string
	BucketKey  *bool
	// SSECKey names the key-ring master key sse-c derives object keys
	// from; empty means the key ring's active key.
	SSECKey string
	// AllowPlaintextReads lets an envelope rule read objects that have no
	// s3seal metadata (migrating existing plaintext data).
	AllowPlaintextReads bool
	// Message is sent with AccessDenied by deny rules.
	Message string
}

// Engine matches requests to rules. It is immutable and safe for
// concurrent use.
type Engine struct {
	rules []Rule
	def   Rule
}

// New returns an engine with the given ordered rules and default.
func New(rules []Rule, def Rule) (*Engine, error) {
	e := &Engine{rules: append([]Rule(nil), rules...), def: def}
	for i := range e.rules {
		r := &e.rules[i]
		if r.Name == "" {
			r.Name = fmt.Sprintf("rule %d", i+1)
		}
		if r.Bucket != "" {
			if _, err := path.Match(r.Bucket, ""); err != nil {
				return nil, fmt.Errorf("policy: %s: bucket %q is not a valid glob", r.Name, r.Bucket)
			}
		}
	}
	if e.def.Name == "" {
		e.def.Name = "default"
	}
	if e.def.Mode == "" {
		e.def.Mode = Passthrough
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

func (r *Rule) matchesBucket(bucket string) bool {
	if r.Bucket == "" || r.Bucket == bucket {
		return true
	}
	ok, _ := path.Match(r.Bucket, bucket)
	return ok
}
