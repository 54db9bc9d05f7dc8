package kms

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"

	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/crypto/keys"
)

const (
	arnA = "arn:aws:kms:eu-west-1:111122223333:key/aaaaaaaa-1111-2222-3333-444444444444"
	arnB = "arn:aws:kms:eu-west-1:111122223333:key/bbbbbbbb-1111-2222-3333-444444444444"
)

// fakeKMS is a tiny KMS: blobs are key-index || nonce || AES-GCM(master,
// plaintext, AAD = context). Aliases map to key ARNs. It records inputs.
type fakeKMS struct {
	mu      sync.Mutex
	aliases map[string]string
	fail    error
	calls   []string
	pins    []string
}

func newFake() *fakeKMS {
	return &fakeKMS{aliases: map[string]string{"alias/current": arnB, "alias/old": arnA}}
}

func (f *fakeKMS) resolve(id string) (string, bool) {
	if a, ok := f.aliases[id]; ok {
		return a, true
	}
	if strings.HasPrefix(id, "arn:") {
		return id, id == arnA || id == arnB
	}
	for _, a := range []string{arnA, arnB} {
		if strings.HasSuffix(a, ":key/"+id) {
			return a, true
		}
	}
	return "", false
}

func master(arn string) cipher.AEAD {
	k := sha256.Sum256([]byte(arn))
	b, _ := aes.NewCipher(k[:])
	a, _ := cipher.NewGCM(b)
	return a
}

func ctxAAD(c map[string]string) []byte { return []byte(fmt.Sprint(c)) }

func (f *fakeKMS) seal(arn string, pt []byte, c map[string]string) []byte {
	nonce := make([]byte, 12)
	rand.Read(nonce)
	blob := append([]byte(arn+"|"), nonce...)
	return master(arn).Seal(blob, nonce, pt, ctxAAD(c))
}

func (f *fakeKMS) open(blob []byte, c map[string]string) (string, []byte, error) {
	i := bytes.IndexByte(blob, '|')
	if i < 0 || len(blob) < i+13 {
		return "", nil, &types.InvalidCiphertextException{Message: ptr("bad blob")}
	}
	arn := string(blob[:i])
	pt, err := master(arn).Open(nil, blob[i+1:i+13], blob[i+13:], ctxAAD(c))
	if err != nil {
		return "", nil, &types.InvalidCiphertextException{Message: ptr("bad blob")}
	}
	return arn, pt, nil
}

func ptr(s string) *string { return &s }

func (f *fakeKMS) record(op, pin string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, op)
	f.pins = append(f.pins, pin)
	return f.fail
}

func (f *fakeKMS) GenerateDataKey(_ context.Context, in *awskms.GenerateDataKeyInput, _ ...func(*awskms.Options)) (*awskms.GenerateDataKeyOutput, error) {
	if err := f.record("GenerateDataKey", *in.KeyId); err != nil {
		return nil, err
	}
	if in.KeySpec != types.DataKeySpecAes256 || in.NumberOfBytes != nil {
		return nil, errors.New("fake: want KeySpec AES_256")
	}
	arn, ok := f.resolve(*in.KeyId)
	if !ok {
		return nil, &types.NotFoundException{Message: ptr("no such key")}
	}
	pt := make([]byte, 32)
	rand.Read(pt)
	return &awskms.GenerateDataKeyOutput{KeyId: &arn, Plaintext: pt, CiphertextBlob: f.seal(arn, pt, in.EncryptionContext)}, nil
}

func (f *fakeKMS) Decrypt(_ context.Context, in *awskms.DecryptInput, _ ...func(*awskms.Options)) (*awskms.DecryptOutput, error) {
	if err := f.record("Decrypt", *in.KeyId); err != nil {
		return nil, err
	}
	arn, pt, err := f.open(in.CiphertextBlob, in.EncryptionContext)
	if err != nil {
		return nil, err
	}
	if pin, ok := f.resolve(*in.KeyId); !ok || pin != arn {
		return nil, &types.IncorrectKeyException{Message: ptr("wrong key")}
	}
	return &awskms.DecryptOutput{KeyId: &arn, Plaintext: pt}, nil
}

func (f *fakeKMS) ReEncrypt(_ context.Context, in *awskms.ReEncryptInput, _ ...func(*awskms.Options)) (*awskms.ReEncryptOutput, error) {
	if err := f.record("ReEncrypt", *in.SourceKeyId); err != nil {
		return nil, err
	}
	arn, pt, err := f.open(in.CiphertextBlob, in.SourceEncryptionContext)
	if err != nil {
		return nil, err
	}
	if pin, ok := f.resolve(*in.SourceKeyId); !ok || pin != arn {
		return nil, &types.IncorrectKeyException{Message: ptr("wrong key")}
	}
	dst, ok := f.resolve(*in.DestinationKeyId)
	if !ok {
		return nil, &types.NotFoundException{Message: ptr("no such key")}
	}
	return &awskms.ReEncryptOutput{KeyId: &dst, SourceKeyId: &arn, CiphertextBlob: f.seal(dst, pt, in.DestinationEncryptionContext)}, nil
}

func TestGenerateDecrypt(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	p, err := New(f, Config{KeyIDs: []string{"alias/current"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != "aws-kms" || !reflect.DeepEqual(p.EncryptionContext(), map[string]string{"s3seal": "v1"}) {
		t.Fatal("name or context")
	}
	dk, err := p.GenerateDataKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if dk.KeyID != arnB {
		t.Fatalf("stored key id %q, want the key ARN", dk.KeyID)
	}
	// The alias authorizes its key: Decrypt is pinned to the alias.
	k, err := p.Decrypt(ctx, dk.Ciphertext, dk.KeyID)
	if err != nil || k != dk.Plaintext {
		t.Fatalf("decrypt: %v", err)
	}
	if f.pins[len(f.pins)-1] != "alias/current" {
		t.Fatalf("pinned to %q", f.pins[len(f.pins)-1])
	}
	// A configured ARN pins to itself.
	p2, _ := New(f, Config{KeyIDs: []string{arnB}})
	if k, err := p2.Decrypt(ctx, dk.Ciphertext, dk.KeyID); err != nil || k != dk.Plaintext || f.pins[len(f.pins)-1] != arnB {
		t.Fatalf("ARN pin: %v", err)
	}
	// A configured bare key id matches the stored ARN.
	p3, _ := New(f, Config{KeyIDs: []string{"bbbbbbbb-1111-2222-3333-444444444444"}})
	if _, err := p3.Decrypt(ctx, dk.Ciphertext, dk.KeyID); err != nil {
		t.Fatalf("bare key id: %v", err)
	}
}

func TestAllowList(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	writer, _ := New(f, Config{KeyIDs: []string{arnA}})
	dkA, _ := writer.GenerateDataKey(ctx)
	p, _ := New(f, Config{KeyIDs: []string{arnB}})
	n := len(f.calls)
	var unknown *keys.UnknownKeyError
	if _, err := p.Decrypt(ctx, dkA.Ciphertext, dkA.KeyID); !errors.As(err, &unknown) {
		t.Fatalf("key outside the allow-list: %v", err)
	}
	if len(f.calls) != n {
		t.Fatal("KMS was called for a key outside the allow-list")
	}
	if _, err := p.Rewrap(ctx, dkA.Ciphertext, dkA.KeyID); !errors.As(err, &unknown) {
		t.Fatalf("rewrap outside the allow-list: %v", err)
	}
	// Metadata that names an allowed key for a blob of another key: KMS
	// refuses (IncorrectKeyException), reported as an unwrap failure.
	var unwrap *keys.UnwrapError
	if _, err := p.Decrypt(ctx, dkA.Ciphertext, arnB); !errors.As(err, &unwrap) {
		t.Fatalf("mislabelled blob: %v", err)
	}
	// With aliases only, a blob of a key no alias points to is refused.
	pa, _ := New(f, Config{KeyIDs: []string{"alias/current"}})
	if _, err := pa.Decrypt(ctx, dkA.Ciphertext, dkA.KeyID); !errors.As(err, &unknown) {
		t.Fatalf("alias allow-list: %v", err)
	}
	// Several aliases: the second one matches.
	pb, _ := New(f, Config{KeyIDs: []string{"alias/current", "alias/old"}})
	if k, err := pb.Decrypt(ctx, dkA.Ciphertext, dkA.KeyID); err != nil || k != dkA.Plaintext {
		t.Fatalf("second alias: %v", err)
	}
	// Stored ids that are not KMS key ARNs are refused outright.
	for _, id := range []string{"alias/current", "local-key", "arn:aws:s3:::bucket"} {
		if _, err := pb.Decrypt(ctx, dkA.Ciphertext, id); !errors.As(err, &unknown) {
			t.Fatalf("stored id %q: %v", id, err)
		}
	}
}

func TestWrongContextAndTamper(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	p, _ := New(f, Config{KeyIDs: []string{arnA}})
	// A blob made under another context (another application's data key).
	foreign := f.seal(arnA, make([]byte, 32), map[string]string{"app": "x"})
	var unwrap *keys.UnwrapError
	if _, err := p.Decrypt(ctx, foreign, arnA); !errors.As(err, &unwrap) {
		t.Fatalf("wrong context: %v", err)
	}
	dk, _ := p.GenerateDataKey(ctx)
	bad := append([]byte(nil), dk.Ciphertext...)
	bad[len(bad)-1] ^= 1
	if _, err := p.Decrypt(ctx, bad, dk.KeyID); !errors.As(err, &unwrap) {
		t.Fatalf("tampered blob: %v", err)
	}
}

func TestRewrap(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	old, _ := New(f, Config{KeyIDs: []string{arnA}})
	dk, _ := old.GenerateDataKey(ctx)
	p, _ := New(f, Config{KeyIDs: []string{arnB, arnA}})
	w, err := p.Rewrap(ctx, dk.Ciphertext, dk.KeyID)
	if err != nil || w.KeyID != arnB {
		t.Fatalf("%+v %v", w, err)
	}
	if f.calls[len(f.calls)-1] != "ReEncrypt" {
		t.Fatal("rewrap did not use ReEncrypt")
	}
	k, err := p.Decrypt(ctx, w.Ciphertext, w.KeyID)
	if err != nil || k != dk.Plaintext {
		t.Fatalf("rewrapped key: %v", err)
	}
}

func TestErrorMapping(t *testing.T) {
	ctx := context.Background()
	api := func(code string) error { return &smithy.GenericAPIError{Code: code, Message: "m"} }
	cases := []struct {
		err  error
		want any
	}{
		{&types.DisabledException{Message: ptr("off")}, new(*keys.KeyDisabledError)},
		{&types.KMSInvalidStateException{Message: ptr("pending deletion")}, new(*keys.KeyDisabledError)},
		{&types.NotFoundException{Message: ptr("gone")}, new(*keys.KeyDisabledError)},
		{api("AccessDeniedException"), new(*keys.AccessDeniedError)},
		{api("UnrecognizedClientException"), new(*keys.AccessDeniedError)},
		{&types.InvalidCiphertextException{Message: ptr("x")}, new(*keys.UnwrapError)},
		{api("ThrottlingException"), new(*keys.UnavailableError)},
		{&types.KMSInternalException{Message: ptr("x")}, new(*keys.UnavailableError)},
		{&types.KeyUnavailableException{Message: ptr("x")}, new(*keys.UnavailableError)},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, new(*keys.UnavailableError)},
		{context.DeadlineExceeded, new(*keys.UnavailableError)},
	}
	for _, c := range cases {
		f := newFake()
		p, _ := New(f, Config{KeyIDs: []string{arnA}})
		dk, _ := p.GenerateDataKey(ctx)
		f.fail = c.err
		_, gerr := p.GenerateDataKey(ctx)
		_, derr := p.Decrypt(ctx, dk.Ciphertext, dk.KeyID)
		_, rerr := p.Rewrap(ctx, dk.Ciphertext, dk.KeyID)
		for _, err := range []error{gerr, derr, rerr} {
			if !errors.As(err, c.want) {
				t.Errorf("%T mapped to %T (%v)", c.err, err, err)
			}
			if !errors.Is(err, c.err) {
				t.Errorf("%T not wrapped", c.err)
			}
		}
	}
	// Unknown API errors keep their text and the package prefix.
	f := newFake()
	p, _ := New(f, Config{KeyIDs: []string{arnA}})
	f.fail = api("SomethingNew")
	if _, err := p.GenerateDataKey(ctx); err == nil || !strings.HasPrefix(err.Error(), "kms: ") {
		t.Fatalf("%v", err)
	}
}

// badOutputs returns malformed GenerateDataKey outputs.
type badOutputs struct {
	fakeKMS
	out *awskms.GenerateDataKeyOutput
}

func (b *badOutputs) GenerateDataKey(context.Context, *awskms.GenerateDataKeyInput, ...func(*awskms.Options)) (*awskms.GenerateDataKeyOutput, error) {
	return b.out, nil
}

func TestRefusesMalformedOutputs(t *testing.T) {
	arn := arnA
	for name, out := range map[string]*awskms.GenerateDataKeyOutput{
		"short key": {KeyId: &arn, Plaintext: make([]byte, 16), CiphertextBlob: []byte{1}},
		"no key id": {Plaintext: make([]byte, 32), CiphertextBlob: []byte{1}},
		"no blob":   {KeyId: &arn, Plaintext: make([]byte, 32)},
		"huge blob": {KeyId: &arn, Plaintext: make([]byte, 32), CiphertextBlob: make([]byte, keys.MaxWrappedSize+1)},
	} {
		p, _ := New(&badOutputs{out: out}, Config{KeyIDs: []string{arnA}})
		if _, err := p.GenerateDataKey(context.Background()); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, err := New(nil, Config{KeyIDs: []string{arnA}}); err == nil {
		t.Error("nil client accepted")
	}
	if _, err := New(newFake(), Config{}); err == nil {
		t.Error("no keys accepted")
	}
	if ARNRegion(arnA) != "eu-west-1" || ARNRegion("alias/x") != "" {
		t.Error("ARNRegion")
	}
}

func TestDecryptWithContext(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	s3ecCtx := map[string]string{"aws:x-amz-cek-alg": "115", "app": "billing"}
	pt := bytes.Repeat([]byte{5}, 32)
	blob := f.seal(arnA, pt, s3ecCtx)

	// Pinned to each allowed key in turn: the blob of the second opens.
	p, _ := New(f, Config{KeyIDs: []string{"alias/current", "alias/old"}})
	k, keyID, err := p.DecryptWithContext(ctx, blob, s3ecCtx)
	if err != nil || !bytes.Equal(k[:], pt) || keyID != arnA {
		t.Fatalf("got %x %q %v", k, keyID, err)
	}
	if got := f.pins[len(f.pins)-2:]; !reflect.DeepEqual(got, []string{"alias/current", "alias/old"}) {
		t.Fatalf("pins %v", got)
	}
	// A different context is refused by KMS.
	other := map[string]string{"aws:x-amz-cek-alg": "115"}
	if _, _, err := p.DecryptWithContext(ctx, blob, other); err == nil {
		t.Fatal("opened with another encryption context")
	}
	// A blob of a key s3seal is not configured with is refused.
	only, _ := New(f, Config{KeyIDs: []string{"alias/current"}})
	var unknown *keys.UnknownKeyError
	if _, _, err := only.DecryptWithContext(ctx, blob, s3ecCtx); !errors.As(err, &unknown) {
		t.Fatalf("blob of an unconfigured key: %v", err)
	}
}
