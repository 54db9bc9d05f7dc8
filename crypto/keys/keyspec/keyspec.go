// Package keyspec builds the key provider a keys.Spec names: a local key
// ring (package local), AWS KMS (package kms), a KMIP server (package kmip),
// a PKCS#11 token (package pkcs11) or age recipients and identities
// (package age). It is the one place that knows every provider, so that
// main and the offline tools stay small. A long-running server wraps the
// result in keys.NewCache; one-shot tools use it as it is. Providers that
// hold connections or sessions implement io.Closer (Close).
package keyspec

import (
	"context"
	"fmt"
	"io"

	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/age"
	"github.com/s3seal/s3seal/crypto/keys/kmip"
	"github.com/s3seal/s3seal/crypto/keys/kms"
	"github.com/s3seal/s3seal/crypto/keys/local"
	"github.com/s3seal/s3seal/crypto/keys/pkcs11"
)

// Options are the optional inputs of Open. The zero value gives the
// defaults.
type Options struct {
	// LookupEnv reads environment variables (local:env:VAR). nil means
	// os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Rand is the randomness of the local provider, and of the age
	// provider's data keys. nil means crypto/rand.
	Rand io.Reader
	// Warn receives what a provider's configuration should be warned
	// about at start (age: X25519 recipients), one sentence without key
	// material each. nil drops them; callers that start a server or a tool
	// should log or print them.
	Warn func(msg string)
	// KMSClient, if not nil, is used for aws-kms instead of a client built
	// from the AWS default configuration.
	KMSClient kms.Client
	// AWSConfig are extra options for config.LoadDefaultConfig (for
	// aws-kms when KMSClient is nil). Note: with AWS_CA_BUNDLE set, do not
	// pass a plain *http.Client here (the SDK refuses it); use
	// awshttp.NewBuildableClient instead.
	AWSConfig []kms.AWSConfigOption
	// KMIP are the connection settings of kmip specs.
	KMIP kmip.Settings
	// PKCS11 are the module, token and PIN settings of pkcs11 specs.
	PKCS11 pkcs11.Settings
}

// Open builds the provider spec names. For aws-kms without a KMSClient it
// loads the AWS default configuration (environment, shared config and
// profiles, web identity, container and instance roles), which also honours
// AWS_ENDPOINT_URL_KMS; if no region is configured and the active key is an
// ARN, the ARN's region is used.
func Open(ctx context.Context, spec keys.Spec, opts Options) (keys.Provider, error) {
	switch spec.Kind {
	case keys.KindLocal:
		var ring *local.Keyring
		var err error
		if spec.Env != "" {
			ring, err = local.LoadEnv(spec.Env, opts.LookupEnv)
		} else {
			ring, err = local.Load(spec.Path)
		}
		if err != nil {
			return nil, err
		}
		return local.NewProvider(ring, local.Config{Rand: opts.Rand}), nil
	case keys.KindAWSKMS:
		if len(spec.KeyIDs) == 0 {
			return nil, fmt.Errorf("keyspec: aws-kms needs at least one key id")
		}
		cfg := kms.Config{KeyIDs: spec.KeyIDs}
		if opts.KMSClient == nil {
			return kms.NewFromDefaultConfig(ctx, cfg, opts.AWSConfig...)
		}
		return kms.New(opts.KMSClient, cfg)
	case keys.KindKMIP:
		return kmip.Open(ctx, opts.KMIP, spec.KeyIDs)
	case keys.KindPKCS11:
		return pkcs11.Open(opts.PKCS11, spec.KeyIDs, opts.LookupEnv)
	case keys.KindAge:
		return openAge(spec, opts)
	}
	return nil, fmt.Errorf("keyspec: unknown key provider %q", spec.Kind)
}

// OpenSet opens the provider active names and, if readOnly names others
// (of other kinds, whose keys only unwrap), a keys.Set of them all. wrap,
// if not nil, is applied to every provider before it joins the set (main
// puts each behind its own data-key cache). close closes what was opened.
func OpenSet(ctx context.Context, active string, readOnly []string, opts Options, wrap func(keys.Provider) keys.Provider) (kp keys.Provider, close func(), err error) {
	var opened []keys.Provider
	closeAll := func() {
		for _, p := range opened {
			if c, ok := p.(io.Closer); ok {
				c.Close()
			}
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	var members []keys.Provider
	for i, s := range append([]string{active}, readOnly...) {
		p, err := OpenString(ctx, s, opts)
		if err != nil {
			if i > 0 {
				return nil, nil, fmt.Errorf("read_keys[%d]: %w", i-1, err)
			}
			return nil, nil, err
		}
		opened = append(opened, p)
		if wrap != nil {
			p = wrap(p)
		}
		members = append(members, p)
	}
	if len(members) == 1 {
		return members[0], closeAll, nil
	}
	set, err := keys.NewSet(members[0], members[1:]...)
	if err != nil {
		return nil, nil, err
	}
	return set, closeAll, nil
}

// OpenString parses s with keys.ParseSpec and opens it.
func OpenString(ctx context.Context, s string, opts Options) (keys.Provider, error) {
	spec, err := keys.ParseSpec(s)
	if err != nil {
		return nil, err
	}
	return Open(ctx, spec, opts)
}

func openAge(spec keys.Spec, opts Options) (keys.Provider, error) {
	cfg := age.Config{Name: spec.Name, AllowClassical: spec.AllowClassical, Rand: opts.Rand}
	var err error
	if spec.Recipients != "" {
		if cfg.Recipients, err = age.LoadRecipients(spec.Recipients); err != nil {
			return nil, err
		}
	}
	if len(spec.Identities) > 0 {
		if cfg.Identities, err = age.LoadIdentities(spec.Identities...); err != nil {
			return nil, err
		}
	}
	p, err := age.New(cfg)
	if err != nil {
		return nil, err
	}
	if opts.Warn != nil {
		for _, w := range p.Warnings() {
			opts.Warn(w)
		}
	}
	return p, nil
}
