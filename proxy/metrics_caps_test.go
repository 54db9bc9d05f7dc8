package proxy

import (
	"testing"

	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/keystest"
)

type writeOnlyFake struct{ *keystest.Provider }

func (writeOnlyFake) Capabilities() keys.Capabilities {
	return keys.Capabilities{WriteOnly: true, MaxWrappedSize: 16384}
}

// Instrumentation sits between the provider and the cache; it must not hide
// that a provider is write-only or has large wrapped keys.
func TestInstrumentedProviderKeepsCapabilities(t *testing.T) {
	p := NewMetrics("test").InstrumentProvider(writeOnlyFake{&keystest.Provider{}})
	if c := keys.CapabilitiesOf(keys.NewCache(p, keys.CacheConfig{})); !c.WriteOnly || !c.LargeWrappedKeys() {
		t.Fatalf("capabilities through instrumentation and cache: %+v", c)
	}
	if c := keys.CapabilitiesOf(NewMetrics("test").InstrumentProvider(&keystest.Provider{})); c.WriteOnly || c.LargeWrappedKeys() {
		t.Fatalf("plain provider: %+v", c)
	}
}
