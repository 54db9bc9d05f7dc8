package age

import (
	"context"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/crypto/keys"
)

// TestEnvelopeV1CannotCarryAgeKeys records why objects cannot yet be
// written with this provider: version 1 metadata has no provider id for
// age and no room for its wrapped keys (they go in format 2's in-body
// header). When the format learns age, this test is replaced by a round
// trip.
func TestEnvelopeV1CannotCarryAgeKeys(t *testing.T) {
	ctx := context.Background()
	a := newParty(t, "a", false)
	p := mustProvider(t, []party{a}, []party{a}, false)
	_, _, err := envelope.New(ctx, p, envelope.Params{Bucket: "b", Key: "k", Size: 1})
	if err == nil || !strings.Contains(err.Error(), `"age" has no format identifier`) {
		t.Fatalf("version 1 sealed an age-wrapped key: %v", err)
	}
	// Even the smallest set, one X25519 recipient (232 bytes), would fit
	// the 384-byte field; one hybrid recipient does not, and the header
	// is bounded by S3's 2 KB of metadata.
	if WrappedSize(0, 1) > keys.MaxWrappedSize || WrappedSize(1, 0) <= keys.MaxWrappedSize || envelope.MaxSize+WrappedSize(1, 0) < 2048 {
		t.Fatal("the size argument above no longer holds")
	}
}
