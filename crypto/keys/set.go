package keys

import (
	"context"
	"errors"
	"fmt"
)

// Set is a Provider made of one active provider, which makes every new data
// key, and providers of other kinds that only unwrap: objects written before
// s3seal moved from one kind of provider to another (a key ring to an HSM)
// stay readable, and "s3seal rewrap" moves them over.
//
// Name, GenerateDataKey, Decrypt and Rewrap are the active provider's. For
// returns the provider of a stored kind (package envelope uses it through
// Router), and Move rewraps across kinds (Mover).
type Set struct {
	active Provider
	byKind map[string]Provider
	all    []Provider
}

var (
	_ Provider = (*Set)(nil)
	_ Router   = (*Set)(nil)
	_ Mover    = (*Set)(nil)
	_ Capable  = (*Set)(nil)
)

// NewSet returns a Set. Every provider must be of a different kind.
func NewSet(active Provider, readOnly ...Provider) (*Set, error) {
	if active == nil {
		return nil, errors.New("keys: no active key provider")
	}
	s := &Set{active: active, byKind: map[string]Provider{}}
	for _, p := range append([]Provider{active}, readOnly...) {
		if _, dup := s.byKind[p.Name()]; dup {
			return nil, fmt.Errorf("keys: key provider %s is configured twice; list all its keys in one key spec", p.Name())
		}
		s.byKind[p.Name()] = p
		s.all = append(s.all, p)
	}
	return s, nil
}

// Active returns the provider that makes new data keys.
func (s *Set) Active() Provider { return s.active }

// Providers returns every provider, the active one first.
func (s *Set) Providers() []Provider { return append([]Provider(nil), s.all...) }

// Name returns the active provider's Name.
func (s *Set) Name() string { return s.active.Name() }

// GenerateDataKey asks the active provider.
func (s *Set) GenerateDataKey(ctx context.Context) (DataKey, error) {
	return s.active.GenerateDataKey(ctx)
}

// Decrypt asks the active provider; use For to reach the others.
func (s *Set) Decrypt(ctx context.Context, wrapped []byte, keyID string) ([DataKeySize]byte, error) {
	return s.active.Decrypt(ctx, wrapped, keyID)
}

// Rewrap asks the active provider.
func (s *Set) Rewrap(ctx context.Context, wrapped []byte, keyID string) (WrappedKey, error) {
	return s.active.Rewrap(ctx, wrapped, keyID)
}

// For returns the provider of kind.
func (s *Set) For(kind string) (Provider, bool) {
	p, ok := s.byKind[kind]
	return p, ok
}

// Move implements Mover.
func (s *Set) Move(ctx context.Context, from string, wrapped []byte, keyID string, key *[DataKeySize]byte) (WrappedKey, error) {
	if from == s.active.Name() {
		return s.active.Rewrap(ctx, wrapped, keyID)
	}
	w, ok := s.active.(Wrapper)
	if !ok {
		return WrappedKey{}, fmt.Errorf("keys: key provider %s cannot wrap data keys made by %s", s.active.Name(), from)
	}
	return w.Wrap(ctx, key)
}

// Capabilities are the active provider's wrapping limits; the set is
// write-only when no member can unwrap (every one is write-only).
func (s *Set) Capabilities() Capabilities {
	c := CapabilitiesOf(s.active)
	for _, p := range s.all {
		if !CapabilitiesOf(p).WriteOnly {
			c.WriteOnly = false
		}
	}
	return c
}
