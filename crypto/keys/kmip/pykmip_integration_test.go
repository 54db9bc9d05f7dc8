package kmip_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/keystest"
	"github.com/s3seal/s3seal/crypto/keys/kmip"
	"github.com/s3seal/s3seal/integration/testbed"
)

// TestPyKMIP runs the provider against a real KMIP server (PyKMIP): wrap
// and unwrap, rotation to a second key, tampering refused by the server's
// GCM tag check, a revoked key, a stranger's certificate and another
// client's identity refused, and every call counted in the server's log.
func TestPyKMIP(t *testing.T) {
	testbed.Require(t)
	srv := testbed.StartPyKMIP(t)
	ids := srv.CreateKeys(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	set := kmip.Settings{Endpoint: srv.Addr, ClientCert: srv.ClientCert, ClientKey: srv.ClientKey, CA: srv.CAFile, ServerName: "127.0.0.1"}

	p, err := kmip.Open(ctx, set, ids[:1])
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	enc0, dec0 := srv.Count(t, "Encrypt"), srv.Count(t, "Decrypt")
	dk, err := p.GenerateDataKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Decrypt(ctx, dk.Ciphertext, dk.KeyID)
	if err != nil || got != dk.Plaintext {
		t.Fatalf("round trip: %v", err)
	}
	if e, d := srv.Count(t, "Encrypt")-enc0, srv.Count(t, "Decrypt")-dec0; e != 1 || d != 1 {
		t.Fatalf("server counted %d Encrypt and %d Decrypt, want 1 and 1", e, d)
	}
	t.Logf("wrapped data key: %d bytes under key %q", len(dk.Ciphertext), dk.KeyID)

	var unwrap *keys.UnwrapError
	bad := append([]byte(nil), dk.Ciphertext...)
	bad[len(bad)-1] ^= 1 // the tag
	if _, err := p.Decrypt(ctx, bad, dk.KeyID); !errors.As(err, &unwrap) {
		t.Fatalf("tampered tag: %v", err)
	}
	bad = append([]byte(nil), dk.Ciphertext...)
	bad[20] ^= 1 // the ciphertext
	if _, err := p.Decrypt(ctx, bad, dk.KeyID); !errors.As(err, &unwrap) {
		t.Fatalf("tampered ciphertext: %v", err)
	}

	// Rotation: the second key becomes active, the first stays readable.
	rot, err := kmip.Open(ctx, set, []string{ids[1], ids[0]})
	if err != nil {
		t.Fatal(err)
	}
	defer rot.Close()
	w, err := rot.Rewrap(ctx, dk.Ciphertext, dk.KeyID)
	if err != nil || w.KeyID != ids[1] {
		t.Fatalf("rewrap: %v", err)
	}
	if got, err := rot.Decrypt(ctx, w.Ciphertext, w.KeyID); err != nil || got != dk.Plaintext {
		t.Fatalf("after rotation: %v", err)
	}
	// The blob of key 1 presented as key 2's.
	if _, err := rot.Decrypt(ctx, dk.Ciphertext, ids[1]); !errors.As(err, &unwrap) {
		t.Fatalf("wrong key id: %v", err)
	}

	// A revoked (Deactivated) active key is refused at start.
	srv.Revoke(t, ids[2])
	var disabled *keys.KeyDisabledError
	if _, err := kmip.Open(ctx, set, ids[2:3]); !errors.As(err, &disabled) {
		t.Fatalf("revoked active key: %v", err)
	}
	// A certificate from another CA: the TLS handshake fails, clearly.
	other := testbed.NewCA(t, "stranger CA")
	sc, sk := srv.IssueClient(t, other, "s3seal")
	stranger := set
	stranger.ClientCert, stranger.ClientKey = sc, sk
	var denied *keys.AccessDeniedError
	start := time.Now()
	if _, err := kmip.Open(ctx, stranger, ids[:1]); !errors.As(err, &denied) || !strings.Contains(err.Error(), "client_cert") {
		t.Fatalf("stranger's certificate: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("refused certificate took %v (retried?)", d)
	}
	// A client of the same CA with another identity does not see s3seal's
	// keys.
	oc, ok := srv.IssueClient(t, nil, "somebody-else")
	another := set
	another.ClientCert, another.ClientKey = oc, ok
	if _, err := kmip.Open(ctx, another, ids[:1]); !errors.As(err, &denied) {
		t.Fatalf("another identity: %v", err)
	}
}

// BenchmarkPyKMIP measures wrap and unwrap through PyKMIP:
// S3SEAL_INTEGRATION=1 go test -run XXX -bench PyKMIP ./crypto/keys/kmip/
func BenchmarkPyKMIP(b *testing.B) {
	testbed.Require(b)
	srv := testbed.StartPyKMIP(b)
	ids := srv.CreateKeys(b, 1)
	ctx := context.Background()
	p, err := kmip.Open(ctx, kmip.Settings{Endpoint: srv.Addr, ClientCert: srv.ClientCert, ClientKey: srv.ClientKey, CA: srv.CAFile, ServerName: "127.0.0.1"}, ids)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	keystest.BenchmarkWrapUnwrap(b, p)
}
