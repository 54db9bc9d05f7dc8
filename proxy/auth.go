package proxy

import (
	"github.com/s3seal/s3seal/proxy/authz"
)

// Identity is a client s3seal accepts: its credentials and, in Client, its
// name and permissions (package authz decides with them).
type Identity struct {
	authz.Client
	// AccessKeyID and Secret authenticate the client's signatures.
	// Secret is empty for the sidecar identity, whose requests are
	// trusted by their transport instead.
	AccessKeyID string
	Secret      string
}

// Identities is the set of clients s3seal accepts. It is immutable once
// built; a configuration reload builds a new one.
type Identities struct {
	byKey map[string]*Identity
	// Sidecar is the identity trusted loopback or mTLS peers act as; nil
	// when sidecar trust is off.
	Sidecar *Identity
	// TrustLoopback and TrustClientCert select which peers are trusted as
	// Sidecar.
	TrustLoopback, TrustClientCert bool
}

// NewIdentities builds the set. Duplicate access key ids are a configuration
// error caught before this point; the last one wins here.
func NewIdentities(ids []Identity) *Identities {
	s := &Identities{byKey: make(map[string]*Identity, len(ids))}
	for i := range ids {
		id := ids[i]
		s.byKey[id.AccessKeyID] = &id
	}
	return s
}

// Lookup returns the secret for an access key id.
func (s *Identities) Lookup(accessKeyID string) (string, bool) {
	id, ok := s.byKey[accessKeyID]
	if !ok {
		return "", false
	}
	return id.Secret, true
}

// ByKey returns the identity for an access key id.
func (s *Identities) ByKey(accessKeyID string) *Identity {
	return s.byKey[accessKeyID]
}

// AnyAllowed reports whether some identity (including the sidecar one) may
// use bucket.
func (s *Identities) AnyAllowed(bucket string) bool {
	if s.Sidecar != nil && s.Sidecar.AllowedBucket(bucket) {
		return true
	}
	for _, id := range s.byKey {
		if id.AllowedBucket(bucket) {
			return true
		}
	}
	return false
}
