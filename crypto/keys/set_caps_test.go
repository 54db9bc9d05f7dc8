package keys_test

import (
	"testing"

	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/keystest"
)

// capsProvider reports fixed capabilities.
type capsProvider struct {
	*keystest.Provider
	caps keys.Capabilities
}

func (p capsProvider) Capabilities() keys.Capabilities { return p.caps }

// A set is write-only only when none of its members can unwrap, and wraps
// as its active member does.
func TestSetCapabilities(t *testing.T) {
	wo := capsProvider{&keystest.Provider{Kind: keys.KindAge}, keys.Capabilities{WriteOnly: true, MaxWrappedSize: 4096}}
	ring := &keystest.Provider{Kind: keys.KindLocal}
	alone, err := keys.NewSet(wo)
	if err != nil {
		t.Fatal(err)
	}
	if c := keys.CapabilitiesOf(alone); !c.WriteOnly || c.MaxWrappedSize != 4096 {
		t.Errorf("write-only provider alone: %+v", c)
	}
	withRing, err := keys.NewSet(wo, ring)
	if err != nil {
		t.Fatal(err)
	}
	if c := keys.CapabilitiesOf(withRing); c.WriteOnly || c.MaxWrappedSize != 4096 {
		t.Errorf("write-only provider reading a key ring: %+v", c)
	}
	ringFirst, err := keys.NewSet(ring, wo)
	if err != nil {
		t.Fatal(err)
	}
	if c := keys.CapabilitiesOf(ringFirst); c.WriteOnly || c.MaxWrappedSize != keys.MaxWrappedSize {
		t.Errorf("key ring with a write-only reader: %+v", c)
	}
}
