// Package local is s3seal's local key ring: named 256-bit master keys kept
// in a file or an environment variable, and a keys.Provider that wraps data
// keys under them.
//
// # Key ring format (version 1)
//
// A key ring is text. Each entry is NAME:KEY, where NAME is 1 to 64
// characters from [A-Za-z0-9._-] starting with a letter or digit, and KEY
// is the standard base64 (with padding) of 32 random bytes. Entries are
// separated by newlines, commas or blanks; lines starting with # are
// comments. Entries are listed oldest first: the last one is the active key
// that wraps new data keys, and every key can unwrap. To rotate, append a
// new key (s3seal keygen --append) and keep the old ones for reading.
//
//	# s3seal key ring
//	s3seal-20260101-5f0c1a2b:q2F3nY…=
//	s3seal-20260601-93de77a0:0Jc8Lx…=
//
// A key ring file must not be readable or writable by group or others (mode
// 0600); Load refuses it otherwise. The same text can be given in an
// environment variable (S3SEAL_KEYRING by convention), e.g.
// S3SEAL_KEYRING="s3seal-20260101-5f0c1a2b:q2F3nY…=".
//
// # Wrapping
//
// A data key is wrapped with AES-256-GCM under a key-encryption key derived
// from the master key with HKDF-SHA256, with the key's name in the
// additional data: 0x01 || nonce (12 random bytes) || ciphertext+tag (48
// bytes), 61 bytes in all. See FORMAT.md.
//
// # SSE-C keys
//
// DeriveSSECKey derives per-object SSE-C customer keys from a master key,
// the bucket and the object key, with an HKDF label distinct from wrapping.
package local

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
)

// EnvVar is the conventional environment variable for a key ring.
const EnvVar = "S3SEAL_KEYRING"

// MaxNameSize is the longest key name.
const MaxNameSize = 64

// HKDF labels (the info strings), part of the format.
const (
	labelWrap = "s3seal\x01local-wrap"
	labelSSEC = "s3seal\x01sse-c"
)

// Keyring is a parsed key ring. It is immutable and safe for concurrent use.
type Keyring struct {
	keys []*masterKey // oldest first; the last is active
}

type masterKey struct {
	name string
	key  [32]byte
	// kek seals with a random nonce drawn inside Go's cryptographic
	// module (written in front of the ciphertext, exactly where the
	// wrapped form keeps its nonce) and opens any wrapped key, in FIPS
	// 140-only mode too; kekBlock serves tests that supply the nonce.
	kek      cipher.AEAD
	kekBlock cipher.Block
}

// Parse parses key ring text (see the package documentation). Errors name
// the offending entry by position, never show key material.
func Parse(text []byte) (*Keyring, error) {
	k := &Keyring{}
	seen := map[string]bool{}
	n := 0
	for _, line := range strings.Split(string(text), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, entry := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\r' }) {
			n++
			name, b64, ok := strings.Cut(entry, ":")
			if !ok {
				return nil, fmt.Errorf("local: key ring entry %d is not NAME:KEY", n)
			}
			if err := ValidateName(name); err != nil {
				return nil, fmt.Errorf("local: key ring entry %d: %w", n, err)
			}
			if seen[name] {
				return nil, fmt.Errorf("local: key ring entry %d: key name %q appears twice", n, name)
			}
			seen[name] = true
			raw, err := base64.StdEncoding.Strict().DecodeString(b64)
			if err != nil || len(raw) != 32 {
				return nil, fmt.Errorf("local: key ring entry %d (%q): key must be the base64 of 32 bytes", n, name)
			}
			mk, err := newMasterKey(name, raw)
			clear(raw)
			if err != nil {
				return nil, err
			}
			k.keys = append(k.keys, mk)
		}
	}
	if len(k.keys) == 0 {
		return nil, fmt.Errorf("local: key ring holds no keys")
	}
	return k, nil
}

func newMasterKey(name string, raw []byte) (*masterKey, error) {
	mk := &masterKey{name: name}
	copy(mk.key[:], raw)
	kek, err := hkdf.Key(sha256.New, raw, nil, labelWrap, 32)
	if err != nil {
		return nil, err
	}
	defer clear(kek)
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	if mk.kek, err = cipher.NewGCMWithRandomNonce(block); err != nil {
		return nil, err
	}
	mk.kekBlock = block
	return mk, nil
}

// ValidateName reports whether name is a valid key name.
func ValidateName(name string) error {
	if len(name) == 0 || len(name) > MaxNameSize {
		return fmt.Errorf("key name must be 1 to %d characters", MaxNameSize)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return fmt.Errorf("key name %q: use letters, digits, '.', '_' and '-', starting with a letter or digit", name)
		}
	}
	return nil
}

// Names returns the key names, newest (active) first. SSE-C tries them in
// this order when the newest does not match an object.
func (k *Keyring) Names() []string {
	names := make([]string, len(k.keys))
	for i, mk := range k.keys {
		names[len(k.keys)-1-i] = mk.name
	}
	return names
}

// Active returns the name of the key that wraps new data keys.
func (k *Keyring) Active() string { return k.keys[len(k.keys)-1].name }

func (k *Keyring) lookup(name string) *masterKey {
	for _, mk := range k.keys {
		if mk.name == name {
			return mk
		}
	}
	return nil
}

// DeriveSSECKey returns the SSE-C customer key of object key in bucket
// under master key name: HKDF-SHA256(master key, no salt, "s3seal" 0x01
// "sse-c" || BE32(len(bucket)) || bucket || BE32(len(key)) || key), 32
// bytes. No two objects share a key, and the label keeps these keys apart
// from every envelope key.
func (k *Keyring) DeriveSSECKey(name, bucket, key string) ([32]byte, error) {
	var out [32]byte
	mk := k.lookup(name)
	if mk == nil {
		return out, fmt.Errorf("local: no key named %q in the key ring", name)
	}
	var info bytes.Buffer
	info.WriteString(labelSSEC)
	writeLP(&info, bucket)
	writeLP(&info, key)
	b, err := hkdf.Key(sha256.New, mk.key[:], nil, info.String(), 32)
	if err != nil {
		return out, err
	}
	copy(out[:], b)
	clear(b)
	return out, nil
}

func writeLP(b *bytes.Buffer, s string) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(s)))
	b.Write(n[:])
	b.WriteString(s)
}
