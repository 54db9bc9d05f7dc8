package keys

import (
	"fmt"
	"strings"
)

// Provider kinds, as they appear in key specs and in object metadata.
const (
	KindLocal  = "local"
	KindAWSKMS = "aws-kms"
	KindKMIP   = "kmip"
	KindPKCS11 = "pkcs11"
)

// Spec says which key provider to use and with which master keys. Its
// textual forms are:
//
//	local:PATH             a key ring file (see package local)
//	local:env:VAR          a key ring in environment variable VAR
//	                       (S3SEAL_KEYRING by convention)
//	aws-kms:ID[,ID...]     AWS KMS: the first key (key ID, key ARN, alias
//	                       name "alias/…" or alias ARN) wraps new data keys;
//	                       all listed keys may unwrap
//	kmip:UID[,UID...]      a KMIP server: keys by unique identifier, the
//	                       first active (connection settings come from the
//	                       configuration file's kmip section)
//	pkcs11:LABEL[,LABEL...] a PKCS#11 token: keys by CKA_LABEL, the first
//	                       active (module, token and PIN from the
//	                       configuration file's pkcs11 section)
//
// For aws-kms, kmip and pkcs11, keys other than the first are read-only,
// for objects written before a rotation.
type Spec struct {
	Kind string
	// Path is the key ring file (local, unless Env is set).
	Path string
	// Env is the environment variable holding the key ring (local).
	Env string
	// KeyIDs are the master keys, the active one first (aws-kms, kmip,
	// pkcs11).
	KeyIDs []string
}

// ParseSpec parses the textual form of a Spec.
func ParseSpec(s string) (Spec, error) {
	kind, rest, ok := strings.Cut(s, ":")
	if !ok || rest == "" {
		return Spec{}, fmt.Errorf("keys: key spec %q must be local:PATH, local:env:VAR, aws-kms:KEY-ID[,KEY-ID...], kmip:UID[,UID...] or pkcs11:LABEL[,LABEL...]", s)
	}
	switch kind {
	case KindLocal:
		if v, ok := strings.CutPrefix(rest, "env:"); ok {
			if v == "" || strings.ContainsAny(v, "= \t") {
				return Spec{}, fmt.Errorf("keys: key spec %q: bad environment variable name", s)
			}
			return Spec{Kind: KindLocal, Env: v}, nil
		}
		return Spec{Kind: KindLocal, Path: rest}, nil
	case KindAWSKMS:
		ids := strings.Split(rest, ",")
		seen := map[string]bool{}
		for _, id := range ids {
			if id == "" || strings.TrimSpace(id) != id || len(id) > 2048 {
				return Spec{}, fmt.Errorf("keys: key spec %q: empty or padded KMS key id", s)
			}
			if seen[id] {
				return Spec{}, fmt.Errorf("keys: key spec %q: KMS key %q listed twice", s, id)
			}
			seen[id] = true
		}
		return Spec{Kind: KindAWSKMS, KeyIDs: ids}, nil
	case KindKMIP, KindPKCS11:
		ids := strings.Split(rest, ",")
		seen := map[string]bool{}
		for _, id := range ids {
			if err := CheckKeyID(id); err != nil {
				return Spec{}, fmt.Errorf("keys: key spec %q: %v", s, err)
			}
			if seen[id] {
				return Spec{}, fmt.Errorf("keys: key spec %q: key %q listed twice", s, id)
			}
			seen[id] = true
		}
		return Spec{Kind: kind, KeyIDs: ids}, nil
	}
	return Spec{}, fmt.Errorf("keys: unknown key provider %q in key spec (want %s, %s, %s or %s)", kind, KindLocal, KindAWSKMS, KindKMIP, KindPKCS11)
}

// String returns the textual form; ParseSpec(s.String()) equals s.
func (s Spec) String() string {
	switch {
	case s.Kind == KindLocal && s.Env != "":
		return KindLocal + ":env:" + s.Env
	case s.Kind == KindLocal:
		return KindLocal + ":" + s.Path
	default:
		return s.Kind + ":" + strings.Join(s.KeyIDs, ",")
	}
}

// CheckKeyID checks a master key id that is stored as it is in object
// metadata (kmip, pkcs11): 1 to MaxKeyIDSize printable ASCII characters
// (0x21..0x7e).
func CheckKeyID(id string) error {
	if id == "" || len(id) > MaxKeyIDSize {
		return fmt.Errorf("key id must be 1 to %d characters", MaxKeyIDSize)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("key id %q: only printable ASCII without spaces can be stored", id)
		}
	}
	return nil
}
