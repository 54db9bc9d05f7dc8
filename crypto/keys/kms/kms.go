// Package kms is s3seal's AWS KMS key provider: data keys come from KMS
// GenerateDataKey, are unwrapped with Decrypt pinned to the stored key, and
// are rewrapped for rotation with ReEncrypt, so their plaintext never leaves
// KMS during rotation.
//
// # Encryption context
//
// Every call uses the fixed encryption context {"s3seal": "v1"}
// (EncryptionContext). It names no object, so one data key serves many
// objects (package envelope binds each object's name into the sealing of its
// object key instead). Key policies may condition on it
// (kms:EncryptionContext:s3seal = v1).
//
// # Allow-list
//
// The provider is configured with a list of KMS keys, the first of which
// wraps new data keys. Decrypt and Rewrap accept a stored key id only if it
// is one of them: the same key ARN, or the ARN of a configured key ID. A
// configured alias authorizes whichever key it points to: the call is made
// with KeyId set to the alias, and KMS refuses a ciphertext of another key.
//
// The client is built by the caller (package keyspec builds one with
// config.LoadDefaultConfig) and passed as the small Client interface, so
// tests can fake it. This is the only crypto package that imports the AWS
// SDK.
package kms

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/aws/aws-sdk-go-v2/config"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/s3seal/s3seal/crypto/keys"
)

// Client is the part of *kms.Client (aws-sdk-go-v2 service/kms) the
// provider uses.
type Client interface {
	GenerateDataKey(ctx context.Context, in *awskms.GenerateDataKeyInput, optFns ...func(*awskms.Options)) (*awskms.GenerateDataKeyOutput, error)
	Decrypt(ctx context.Context, in *awskms.DecryptInput, optFns ...func(*awskms.Options)) (*awskms.DecryptOutput, error)
	ReEncrypt(ctx context.Context, in *awskms.ReEncryptInput, optFns ...func(*awskms.Options)) (*awskms.ReEncryptOutput, error)
}

var _ Client = (*awskms.Client)(nil)

// Encrypter is the optional part of a Client that Wrap uses (KMS Encrypt).
type Encrypter interface {
	Encrypt(ctx context.Context, in *awskms.EncryptInput, optFns ...func(*awskms.Options)) (*awskms.EncryptOutput, error)
}

var _ Encrypter = (*awskms.Client)(nil)

// Config configures a Provider.
type Config struct {
	// KeyIDs are the KMS keys s3seal may use: key IDs, key ARNs, alias
	// names ("alias/…") or alias ARNs. The first wraps new data keys; the
	// others only unwrap (objects written before a rotation). Required.
	KeyIDs []string
}

// Provider is a keys.Provider backed by AWS KMS. It is safe for concurrent
// use.
type Provider struct {
	client  Client
	active  string
	allowed []string
}

var _ keys.Provider = (*Provider)(nil)
var _ keys.ContextProvider = (*Provider)(nil)
var _ keys.ForeignUnwrapper = (*Provider)(nil)
var _ keys.Wrapper = (*Provider)(nil)

// New returns a Provider using client.
func New(client Client, cfg Config) (*Provider, error) {
	if client == nil {
		return nil, errors.New("kms: nil client")
	}
	if len(cfg.KeyIDs) == 0 || cfg.KeyIDs[0] == "" {
		return nil, errors.New("kms: no KMS key configured")
	}
	for _, id := range cfg.KeyIDs {
		if id == "" {
			return nil, errors.New("kms: empty KMS key id")
		}
	}
	return &Provider{client: client, active: cfg.KeyIDs[0], allowed: append([]string(nil), cfg.KeyIDs...)}, nil
}

// contextKey and contextValue form the fixed encryption context.
const (
	contextKey   = "s3seal"
	contextValue = "v1"
)

// EncryptionContext returns the fixed encryption context of every call.
func (p *Provider) EncryptionContext() map[string]string {
	return map[string]string{contextKey: contextValue}
}

// Name returns "aws-kms".
func (p *Provider) Name() string { return keys.KindAWSKMS }

// GenerateDataKey asks KMS for a new AES-256 data key under the active key.
// The key id returned (and stored with objects) is the key's ARN.
func (p *Provider) GenerateDataKey(ctx context.Context) (keys.DataKey, error) {
	out, err := p.client.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{
		KeyId:             &p.active,
		KeySpec:           types.DataKeySpecAes256,
		EncryptionContext: p.EncryptionContext(),
	})
	if err != nil {
		return keys.DataKey{}, mapError("GenerateDataKey", p.active, err)
	}
	defer clear(out.Plaintext)
	var dk keys.DataKey
	switch {
	case len(out.Plaintext) != keys.DataKeySize:
		return keys.DataKey{}, fmt.Errorf("kms: GenerateDataKey returned a %d-byte key", len(out.Plaintext))
	case out.KeyId == nil || *out.KeyId == "" || len(*out.KeyId) > keys.MaxKeyIDSize:
		return keys.DataKey{}, errors.New("kms: GenerateDataKey returned no usable key id")
	case len(out.CiphertextBlob) == 0 || len(out.CiphertextBlob) > keys.MaxWrappedSize:
		return keys.DataKey{}, fmt.Errorf("kms: GenerateDataKey returned a %d-byte ciphertext blob (at most %d supported)", len(out.CiphertextBlob), keys.MaxWrappedSize)
	}
	copy(dk.Plaintext[:], out.Plaintext)
	dk.KeyID = *out.KeyId
	dk.Ciphertext = append([]byte(nil), out.CiphertextBlob...)
	return dk, nil
}

// pins returns the KeyId values to pin a Decrypt or ReEncrypt of a blob
// stored under keyID to: keyID itself if the allow-list names that key,
// else the configured aliases (KMS then refuses a blob of another key).
func (p *Provider) pins(keyID string) ([]string, error) {
	if !isKeyARN(keyID) {
		return nil, &keys.UnknownKeyError{Provider: keys.KindAWSKMS, KeyID: keyID, Err: errors.New("stored key id is not a KMS key ARN")}
	}
	var aliases []string
	for _, a := range p.allowed {
		switch {
		case a == keyID, isKeyID(a) && strings.HasSuffix(keyID, ":key/"+a):
			return []string{keyID}, nil
		case isAlias(a):
			aliases = append(aliases, a)
		}
	}
	if len(aliases) == 0 {
		return nil, &keys.UnknownKeyError{Provider: keys.KindAWSKMS, KeyID: keyID}
	}
	return aliases, nil
}

// Decrypt unwraps a data key that GenerateDataKey stored under keyID.
func (p *Provider) Decrypt(ctx context.Context, wrapped []byte, keyID string) ([keys.DataKeySize]byte, error) {
	var key [keys.DataKeySize]byte
	pins, err := p.pins(keyID)
	if err != nil {
		return key, err
	}
	for i, pin := range pins {
		out, err := p.client.Decrypt(ctx, &awskms.DecryptInput{
			CiphertextBlob:      wrapped,
			KeyId:               &pin,
			EncryptionContext:   p.EncryptionContext(),
			EncryptionAlgorithm: types.EncryptionAlgorithmSpecSymmetricDefault,
		})
		if err != nil {
			mapped := mapError("Decrypt", keyID, err)
			var ik *types.IncorrectKeyException
			if pin != keyID && errors.As(err, &ik) {
				if i == len(pins)-1 {
					return key, &keys.UnknownKeyError{Provider: keys.KindAWSKMS, KeyID: keyID, Err: errors.New("not wrapped under any configured alias")}
				}
				continue
			}
			return key, mapped
		}
		defer clear(out.Plaintext)
		if len(out.Plaintext) != keys.DataKeySize {
			return key, fmt.Errorf("kms: Decrypt returned a %d-byte key", len(out.Plaintext))
		}
		if out.KeyId != nil && *out.KeyId != keyID {
			// The metadata named another key than the one that wrapped.
			return key, &keys.UnwrapError{Provider: keys.KindAWSKMS, KeyID: keyID, Err: errors.New("blob was wrapped under a different key")}
		}
		copy(key[:], out.Plaintext)
		return key, nil
	}
	return key, &keys.UnknownKeyError{Provider: keys.KindAWSKMS, KeyID: keyID}
}

// DecryptWithContext unwraps a data key another program (the Amazon S3
// Encryption Client) wrapped with encryptionContext. Such objects do not
// name their key, so Decrypt is pinned to each allowed key in turn until
// KMS accepts one; a blob of any other key is refused.
func (p *Provider) DecryptWithContext(ctx context.Context, wrapped []byte, encryptionContext map[string]string) ([keys.DataKeySize]byte, string, error) {
	var key [keys.DataKeySize]byte
	for i, pin := range p.allowed {
		out, err := p.client.Decrypt(ctx, &awskms.DecryptInput{
			CiphertextBlob:      wrapped,
			KeyId:               &pin,
			EncryptionContext:   encryptionContext,
			EncryptionAlgorithm: types.EncryptionAlgorithmSpecSymmetricDefault,
		})
		if err != nil {
			var ik *types.IncorrectKeyException
			if errors.As(err, &ik) {
				if i == len(p.allowed)-1 {
					return key, "", &keys.UnknownKeyError{Provider: keys.KindAWSKMS, KeyID: "(not stored by the S3 Encryption Client)", Err: errors.New("wrapped under none of the configured keys")}
				}
				continue
			}
			return key, "", mapError("Decrypt", pin, err)
		}
		defer clear(out.Plaintext)
		if len(out.Plaintext) != keys.DataKeySize {
			return key, "", fmt.Errorf("kms: Decrypt returned a %d-byte key", len(out.Plaintext))
		}
		copy(key[:], out.Plaintext)
		keyID := pin
		if out.KeyId != nil && *out.KeyId != "" {
			keyID = *out.KeyId
		}
		return key, keyID, nil
	}
	return key, "", &keys.UnknownKeyError{Provider: keys.KindAWSKMS, KeyID: "(not stored by the S3 Encryption Client)"}
}

// Wrap encrypts a data key made elsewhere (another kind of key provider)
// under the active key with KMS Encrypt and the fixed encryption context,
// giving the same form as GenerateDataKey's CiphertextBlob.
func (p *Provider) Wrap(ctx context.Context, key *[keys.DataKeySize]byte) (keys.WrappedKey, error) {
	enc, ok := p.client.(Encrypter)
	if !ok {
		return keys.WrappedKey{}, errors.New("kms: this KMS client cannot Encrypt")
	}
	out, err := enc.Encrypt(ctx, &awskms.EncryptInput{
		KeyId:             &p.active,
		Plaintext:         key[:],
		EncryptionContext: p.EncryptionContext(),
	})
	if err != nil {
		return keys.WrappedKey{}, mapError("Encrypt", p.active, err)
	}
	if out.KeyId == nil || *out.KeyId == "" || len(*out.KeyId) > keys.MaxKeyIDSize ||
		len(out.CiphertextBlob) == 0 || len(out.CiphertextBlob) > keys.MaxWrappedSize {
		return keys.WrappedKey{}, errors.New("kms: Encrypt returned an unusable key id or blob")
	}
	return keys.WrappedKey{KeyID: *out.KeyId, Ciphertext: append([]byte(nil), out.CiphertextBlob...)}, nil
}

// Rewrap re-encrypts a stored data key under the active key with KMS
// ReEncrypt; the plaintext never leaves KMS.
func (p *Provider) Rewrap(ctx context.Context, wrapped []byte, keyID string) (keys.WrappedKey, error) {
	pins, err := p.pins(keyID)
	if err != nil {
		return keys.WrappedKey{}, err
	}
	for i, pin := range pins {
		out, err := p.client.ReEncrypt(ctx, &awskms.ReEncryptInput{
			CiphertextBlob:               wrapped,
			SourceKeyId:                  &pin,
			SourceEncryptionContext:      p.EncryptionContext(),
			DestinationKeyId:             &p.active,
			DestinationEncryptionContext: p.EncryptionContext(),
		})
		if err != nil {
			var ik *types.IncorrectKeyException
			if pin != keyID && errors.As(err, &ik) && i < len(pins)-1 {
				continue
			}
			return keys.WrappedKey{}, mapError("ReEncrypt", keyID, err)
		}
		if out.KeyId == nil || *out.KeyId == "" || len(*out.KeyId) > keys.MaxKeyIDSize ||
			len(out.CiphertextBlob) == 0 || len(out.CiphertextBlob) > keys.MaxWrappedSize {
			return keys.WrappedKey{}, errors.New("kms: ReEncrypt returned an unusable key id or blob")
		}
		return keys.WrappedKey{KeyID: *out.KeyId, Ciphertext: append([]byte(nil), out.CiphertextBlob...)}, nil
	}
	return keys.WrappedKey{}, &keys.UnknownKeyError{Provider: keys.KindAWSKMS, KeyID: keyID}
}

// isKeyARN reports whether s looks like arn:PARTITION:kms:REGION:ACCOUNT:key/ID.
func isKeyARN(s string) bool {
	parts := strings.SplitN(s, ":", 6)
	return len(parts) == 6 && parts[0] == "arn" && parts[2] == "kms" && strings.HasPrefix(parts[5], "key/") && len(parts[5]) > 4
}

func isKeyID(s string) bool {
	return s != "" && !strings.Contains(s, ":") && !strings.Contains(s, "/")
}

func isAlias(s string) bool {
	if strings.HasPrefix(s, "alias/") {
		return true
	}
	parts := strings.SplitN(s, ":", 6)
	return len(parts) == 6 && parts[0] == "arn" && parts[2] == "kms" && strings.HasPrefix(parts[5], "alias/")
}

// ARNRegion returns the region of a KMS ARN, or "".
func ARNRegion(s string) string {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) == 6 && parts[0] == "arn" && parts[2] == "kms" {
		return parts[3]
	}
	return ""
}

// mapError turns an SDK error into the typed errors of package keys.
func mapError(op, keyID string, err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "DisabledException", "KMSInvalidStateException", "NotFoundException":
			return &keys.KeyDisabledError{Provider: keys.KindAWSKMS, KeyID: keyID, Err: err}
		case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
			"ExpiredTokenException", "InvalidClientTokenId", "IncompleteSignature":
			return &keys.AccessDeniedError{Provider: keys.KindAWSKMS, KeyID: keyID, Operation: op, Err: err}
		case "InvalidCiphertextException", "IncorrectKeyException":
			return &keys.UnwrapError{Provider: keys.KindAWSKMS, KeyID: keyID, Err: err}
		case "ThrottlingException", "LimitExceededException", "KMSInternalException",
			"DependencyTimeoutException", "KeyUnavailableException", "RequestLimitExceeded",
			"ServiceUnavailable", "InternalFailure":
			return &keys.UnavailableError{Provider: keys.KindAWSKMS, Operation: op, Err: err}
		}
		return fmt.Errorf("kms: %s with key %q: %w", op, keyID, err)
	}
	var sendErr *smithyhttp.RequestSendError
	var netErr net.Error
	if errors.As(err, &sendErr) || errors.As(err, &netErr) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &keys.UnavailableError{Provider: keys.KindAWSKMS, Operation: op, Err: err}
	}
	return fmt.Errorf("kms: %s with key %q: %w", op, keyID, err)
}

// AWSConfigOption is an option of config.LoadDefaultConfig.
type AWSConfigOption = func(*config.LoadOptions) error

// NewFromDefaultConfig builds a Provider with a client from the AWS default
// configuration (environment, shared config and profiles, web identity,
// container and instance roles), which also honours AWS_ENDPOINT_URL_KMS.
// If no region is configured and the active key is an ARN, the ARN's region
// is used. It installs no HTTP client of its own, so AWS_CA_BUNDLE works
// (the SDK refuses a plain *http.Client together with AWS_CA_BUNDLE; pass
// one built with awshttp.NewBuildableClient if you need one).
func NewFromDefaultConfig(ctx context.Context, cfg Config, opts ...AWSConfigOption) (*Provider, error) {
	if len(cfg.KeyIDs) == 0 {
		return nil, errors.New("kms: no KMS key configured")
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("kms: loading AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = ARNRegion(cfg.KeyIDs[0])
	}
	if awsCfg.Region == "" {
		return nil, errors.New("kms: no AWS region: set AWS_REGION or give the key as an ARN")
	}
	return New(awskms.NewFromConfig(awsCfg), cfg)
}
