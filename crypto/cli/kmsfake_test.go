package cli

import (
	"context"
	"errors"

	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/s3seal/s3seal/crypto/keys/keyspec"
)

// keyspecOptionsWithoutAWS gives options that never reach a real AWS
// endpoint: aws-kms specs get a client whose calls fail, and the tests only
// use them where the provider kind is refused before any call.
func keyspecOptionsWithoutAWS() keyspec.Options {
	return keyspec.Options{KMSClient: failingKMS{}}
}

type failingKMS struct{}

var errNoKMS = errors.New("no KMS in this test")

func (failingKMS) GenerateDataKey(context.Context, *awskms.GenerateDataKeyInput, ...func(*awskms.Options)) (*awskms.GenerateDataKeyOutput, error) {
	return nil, errNoKMS
}
func (failingKMS) Decrypt(context.Context, *awskms.DecryptInput, ...func(*awskms.Options)) (*awskms.DecryptOutput, error) {
	return nil, errNoKMS
}
func (failingKMS) ReEncrypt(context.Context, *awskms.ReEncryptInput, ...func(*awskms.Options)) (*awskms.ReEncryptOutput, error) {
	return nil, errNoKMS
}
