package age

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/crypto/keys"
)

// TestEnvelopeRoundTrip: a write-only gateway writes a version 2 object
// whose age-wrapped data key goes to a key object; it cannot read the
// object back, a holder of an identity can, and a key object swapped or
// altered at the store opens nothing. Version 1 cannot name age at all.
func TestEnvelopeRoundTrip(t *testing.T) {
	ctx := context.Background()
	a, b := newParty(t, "a", false), newParty(t, "b", false)
	gateway := mustProvider(t, []party{a, b}, nil, false)

	if _, _, err := envelope.New(ctx, gateway, envelope.Params{Bucket: "bkt", Key: "k", Size: 1}); err == nil || !strings.Contains(err.Error(), "version 1 cannot name key provider age") {
		t.Fatalf("version 1 sealed an age-wrapped key: %v", err)
	}
	if _, _, err := envelope.NewV2(ctx, gateway, envelope.Params{Bucket: "bkt", Key: "k", Size: 1}); err == nil || !strings.Contains(err.Error(), "StoreWrappedKey") {
		t.Fatalf("version 2 without a key-object store: %v", err)
	}

	stored := map[string][]byte{}
	plain := bytes.Repeat([]byte("wal segment "), 10_000)
	ok, h, err := envelope.NewV2(ctx, gateway, envelope.Params{Bucket: "bkt", Key: "wal/0001", Size: int64(len(plain)),
		StoreWrappedKey: func(ref [envelope.WrappedKeyRefSize]byte, wrapped []byte) error {
			stored[envelope.KeyObjectName(ref)] = append([]byte(nil), wrapped...)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if !h.KeyObject() || h.Provider() != envelope.ProviderAge || len(stored) != 1 || h.FieldSize() > 500 {
		t.Fatalf("header: key object %v, provider %s, %d key objects, field %d bytes", h.KeyObject(), h.Provider(), len(stored), h.FieldSize())
	}
	seg, err := ok.EncryptSegment(0, bytes.NewReader(plain), nil)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := io.ReadAll(seg)
	if err != nil {
		t.Fatal(err)
	}
	ko := stored[envelope.KeyObjectName([envelope.WrappedKeyRefSize]byte(h.WrappedKey()))]

	// The gateway holds only public keys.
	var wo *keys.WriteOnlyError
	if _, err := envelope.OpenWithKeyObject(ctx, gateway, h, "bkt", "wal/0001", ko); !errors.As(err, &wo) {
		t.Fatalf("write-only gateway opened its object: %v", err)
	}
	// Either recipient reads it.
	for _, reader := range []party{a, b} {
		kp := mustProvider(t, nil, []party{reader}, false)
		if _, err := envelope.Open(ctx, kp, h, "bkt", "wal/0001"); !errors.As(err, new(*envelope.KeyObjectNeededError)) {
			t.Fatalf("open without the key object: %v", err)
		}
		rok, err := envelope.OpenWithKeyObject(ctx, kp, h, "bkt", "wal/0001", ko)
		if err != nil {
			t.Fatal(err)
		}
		r, err := rok.NewReader(h, nil, bytes.NewReader(ct))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("reader %s: %v", reader.recipient[:12], err)
		}
	}
	// A third party's identity, an altered key object, another data key's
	// key object: nothing opens.
	c := newParty(t, "c", false)
	if _, err := envelope.OpenWithKeyObject(ctx, mustProvider(t, nil, []party{c}, false), h, "bkt", "wal/0001", ko); err == nil {
		t.Fatal("a non-recipient opened the object")
	}
	reader := mustProvider(t, nil, []party{a}, false)
	bad := append([]byte(nil), ko...)
	bad[len(bad)/2] ^= 1
	if _, err := envelope.OpenWithKeyObject(ctx, reader, h, "bkt", "wal/0001", bad); !errors.Is(err, envelope.ErrAuthentication) {
		t.Fatalf("altered key object: %v", err)
	}
	other, err := gateway.GenerateDataKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := envelope.OpenWithKeyObject(ctx, reader, h, "bkt", "wal/0001", other.Ciphertext); !errors.Is(err, envelope.ErrAuthentication) {
		t.Fatalf("another data key's key object: %v", err)
	}
	// Even the smallest set, one X25519 recipient (232 bytes), would fit
	// the 384-byte field; one hybrid recipient does not, hence key objects.
	if WrappedSize(0, 1) > keys.MaxWrappedSize || WrappedSize(1, 0) <= keys.MaxWrappedSize {
		t.Fatal("the size argument above no longer holds")
	}
}
