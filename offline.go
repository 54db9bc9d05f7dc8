package main

import (
	"io"

	"github.com/s3seal/s3seal/config"
	"github.com/s3seal/s3seal/crypto/cli"
	"github.com/s3seal/s3seal/crypto/keys/keyspec"
)

// offline runs the offline key and object commands, which need no running
// proxy: data is never hostage to s3seal being up.
func offline(cmd string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	switch cmd {
	case "keygen":
		return cli.Keygen(args, stdin, stdout, stderr)
	case "inspect":
		return cli.Inspect(args, stdin, stdout, stderr)
	default:
		return cli.Tool{KeySettings: keySettings}.Decrypt(args, stdin, stdout, stderr)
	}
}

// keySettings reads the kmip and pkcs11 settings of a configuration file
// ("" for $S3SEAL_CONFIG, or none) for the offline commands.
func keySettings(file string) (keyspec.Options, error) {
	cfg, err := config.Load(config.Source{File: file, Overrides: func(c *config.Config) {
		// Only the key provider settings matter here (and are checked).
		*c = config.Config{Keys: c.Keys, ReadKeys: c.ReadKeys, KMIP: c.KMIP, PKCS11: c.PKCS11,
			Sidecar: config.Sidecar{TrustLoopback: true}}
	}})
	if err != nil {
		return keyspec.Options{}, err
	}
	return keyOptions(cfg), nil
}
