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
	KindAge    = "age"
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
//	age:RECIPIENTS[,OPT...]
//	                       age public keys (package age): new data keys are
//	                       wrapped to every recipient in the file RECIPIENTS;
//	                       without an identity the provider is write-only
//	age:identity=FILE[,OPT...]
//	                       age identities only: unwraps, cannot wrap
//
// For aws-kms, kmip and pkcs11, keys other than the first are read-only,
// for objects written before a rotation.
//
// The options of age are identity=FILE (an age identity file; may repeat),
// name=NAME (the readable part of the stored key id; default "age") and
// allow_classical=true (accept X25519-only recipients, which are not safe
// against quantum computers). An element without one of these names is the
// recipients file, which must come first; paths cannot contain commas.
type Spec struct {
	Kind string
	// Path is the key ring file (local, unless Env is set).
	Path string
	// Env is the environment variable holding the key ring (local).
	Env string
	// KeyIDs are the master keys, the active one first (aws-kms, kmip,
	// pkcs11).
	KeyIDs []string
	// Recipients is the age recipients file (age); empty for an
	// identity-only (decrypt-only) spec.
	Recipients string
	// Identities are age identity files (age); none for a write-only
	// gateway.
	Identities []string
	// Name is the readable part of the age key id (age); empty means
	// "age".
	Name string
	// AllowClassical accepts X25519 recipients (age).
	AllowClassical bool
}

// Age spec option names.
const (
	ageOptIdentity       = "identity="
	ageOptName           = "name="
	ageOptAllowClassical = "allow_classical="
)

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
	case KindAge:
		return parseAgeSpec(s, rest)
	}
	return Spec{}, fmt.Errorf("keys: unknown key provider %q in key spec (want %s, %s, %s, %s or %s)", kind, KindLocal, KindAWSKMS, KindKMIP, KindPKCS11, KindAge)
}

func parseAgeSpec(s, rest string) (Spec, error) {
	spec := Spec{Kind: KindAge}
	seenName, seenClassical := false, false
	for i, el := range strings.Split(rest, ",") {
		if el == "" || strings.TrimSpace(el) != el {
			return Spec{}, fmt.Errorf("keys: key spec %q: empty or padded element", s)
		}
		switch {
		case strings.HasPrefix(el, ageOptIdentity):
			f := el[len(ageOptIdentity):]
			if f == "" {
				return Spec{}, fmt.Errorf("keys: key spec %q: identity= needs a file", s)
			}
			spec.Identities = append(spec.Identities, f)
		case strings.HasPrefix(el, ageOptName):
			if seenName || el == ageOptName {
				return Spec{}, fmt.Errorf("keys: key spec %q: name= given twice or empty", s)
			}
			seenName, spec.Name = true, el[len(ageOptName):]
		case strings.HasPrefix(el, ageOptAllowClassical):
			v := el[len(ageOptAllowClassical):]
			if seenClassical || (v != "true" && v != "false") {
				return Spec{}, fmt.Errorf("keys: key spec %q: want allow_classical=true or allow_classical=false, once", s)
			}
			seenClassical, spec.AllowClassical = true, v == "true"
		case i == 0:
			spec.Recipients = el
		default:
			return Spec{}, fmt.Errorf("keys: key spec %q: %q is not an age option (identity=FILE, name=NAME, allow_classical=true); the recipients file comes first", s, el)
		}
	}
	if spec.Recipients == "" && len(spec.Identities) == 0 {
		return Spec{}, fmt.Errorf("keys: key spec %q: want age:RECIPIENTS-FILE[,identity=IDENTITY-FILE] or age:identity=IDENTITY-FILE", s)
	}
	return spec, nil
}

// String returns the textual form; ParseSpec(s.String()) equals s.
func (s Spec) String() string {
	switch {
	case s.Kind == KindLocal && s.Env != "":
		return KindLocal + ":env:" + s.Env
	case s.Kind == KindLocal:
		return KindLocal + ":" + s.Path
	case s.Kind == KindAge:
		var el []string
		if s.Recipients != "" {
			el = append(el, s.Recipients)
		}
		for _, f := range s.Identities {
			el = append(el, ageOptIdentity+f)
		}
		if s.Name != "" {
			el = append(el, ageOptName+s.Name)
		}
		if s.AllowClassical {
			el = append(el, ageOptAllowClassical+"true")
		}
		return KindAge + ":" + strings.Join(el, ",")
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
