package age

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"

	fage "filippo.io/age"

	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/local"
)

// MaxWrappedSize is the longest wrapped data key the provider makes or
// accepts: WrappedSize(MaxRecipients, 0) = 15,704 bytes, rounded up to 16
// KiB. It is far above keys.MaxWrappedSize, so the wrapped keys of this
// provider do not fit object metadata (keys.Capabilities.LargeWrappedKeys).
const MaxWrappedSize = 16 << 10

// DefaultName is the readable part of the key id when Config.Name is empty.
const DefaultName = "age"

// Sizes of the parts of a wrapped key (see the package documentation).
const (
	headerLine   = "age-encryption.org/v1\n"
	macLineSize  = len("--- ") + 43 + 1 // base64 of a 32-byte HMAC
	payloadSize  = 16 + keys.DataKeySize + 16
	bodyLineSize = 43 + 1 // base64 of a 16-byte file key and its 16-byte tag
	// HybridStanzaSize is the size of one mlkem768x25519 stanza: the
	// base64 of the 1,120-byte HPKE enc (ML-KEM-768 ciphertext and X25519
	// share) on the stanza line, then the wrapped file key.
	HybridStanzaSize = len("-> "+stanzaHybrid+" ") + 1494 + 1 + bodyLineSize
	// X25519StanzaSize is the size of one X25519 stanza.
	X25519StanzaSize = len("-> "+stanzaX25519+" ") + 43 + 1 + bodyLineSize
)

// WrappedSize returns the exact size of a data key wrapped to hybrid
// post-quantum and classical X25519 recipients.
func WrappedSize(hybrid, classical int) int {
	return len(headerLine) + hybrid*HybridStanzaSize + classical*X25519StanzaSize + macLineSize + payloadSize
}

// Config configures a Provider. At least one of Recipients and Identities
// must be set.
type Config struct {
	// Recipients are the public keys new data keys are wrapped to. nil
	// means the provider cannot wrap (decrypt only).
	Recipients *RecipientSet
	// Identities unwrap data keys. nil makes a write-only provider:
	// Decrypt and Rewrap fail with *keys.WriteOnlyError.
	Identities *IdentitySet
	// Name is the readable part of the key id (1 to 48 characters from
	// [A-Za-z0-9._-], starting with a letter or digit). "" means
	// DefaultName.
	Name string
	// AllowClassical accepts X25519 recipients, which are not safe against
	// a future quantum computer. A set that uses them gets a warning.
	AllowClassical bool
	// Rand is the source of data keys. nil means crypto/rand.Reader. (age
	// draws its own randomness for wrapping from crypto/rand.)
	Rand io.Reader
}

// maxNameSize leaves room in keys.MaxKeyIDSize for "-" and the hash.
const maxNameSize = 48

// Provider is a keys.Provider that wraps data keys to age recipients and
// unwraps them with age identities. It is safe for concurrent use.
type Provider struct {
	recipients *RecipientSet
	wrapTo     []fage.Recipient
	identities *IdentitySet
	keyID      string
	name       string
	warnings   []string
	rand       io.Reader
}

var _ keys.Provider = (*Provider)(nil)
var _ keys.Capable = (*Provider)(nil)

// New returns a Provider. It refuses X25519 recipients unless
// cfg.AllowClassical is set, naming the first one's line.
func New(cfg Config) (*Provider, error) {
	if err := checkFIPS(); err != nil {
		return nil, err
	}
	if cfg.Recipients == nil && cfg.Identities == nil {
		return nil, errors.New("age: no recipients and no identities configured")
	}
	p := &Provider{recipients: cfg.Recipients, identities: cfg.Identities, name: cfg.Name, rand: cfg.Rand}
	if p.name == "" {
		p.name = DefaultName
	}
	if err := local.ValidateName(p.name); err != nil || len(p.name) > maxNameSize {
		return nil, fmt.Errorf("age: name %q: use 1 to %d letters, digits, '.', '_' and '-', starting with a letter or digit", p.name, maxNameSize)
	}
	if p.rand == nil {
		p.rand = rand.Reader
	}
	if s := cfg.Recipients; s != nil {
		if s.Len() == 0 {
			return nil, errors.New("age: the recipient set is empty (make it with ParseRecipients or LoadRecipients)")
		}
		if s.Classical() > 0 && !cfg.AllowClassical {
			return nil, fmt.Errorf("age: recipients file line %d is an X25519 recipient (age1…), which is not safe against quantum computers; "+
				"use hybrid age1pq1… recipients (s3seal keygen --age, age-keygen -pq), or accept X25519 with allow_classical=true", s.classical[0])
		}
		switch {
		case s.Classical() > 0 && s.Hybrid() == 0:
			p.warnings = append(p.warnings, "age recipients are X25519 only (allow_classical): wrapped data keys are not protected against future quantum computers; move to age1pq1 recipients")
		case s.Classical() > 0:
			p.warnings = append(p.warnings, "age recipients mix hybrid and X25519 recipients (allow_classical): wrapped data keys are only as safe as X25519, not post-quantum")
		}
		p.keyID = KeyID(p.name, s.strs)
		p.wrapTo = s.recipients
		if s.Classical() > 0 && s.Hybrid() > 0 {
			// age refuses to mix them, rightly; allow_classical asks for it.
			p.wrapTo = make([]fage.Recipient, len(s.recipients))
			for i, r := range s.recipients {
				p.wrapTo[i] = unlabelled{r}
			}
		}
		if ids := cfg.Identities; ids != nil && !slices.ContainsFunc(ids.recipients, func(r string) bool { return slices.Contains(s.strs, r) }) {
			p.warnings = append(p.warnings, "none of the age identities is among the recipients: this s3seal cannot read back what it writes")
		}
	}
	return p, nil
}

// unlabelled hides a recipient's labels from age, so that hybrid and
// X25519 recipients can be mixed (Config.AllowClassical).
type unlabelled struct{ fage.Recipient }

// KeyID returns the key id of a recipient set given by the canonical
// encodings of its recipients (see the package documentation).
func KeyID(name string, recipients []string) string {
	sorted := slices.Clone(recipients)
	slices.Sort(sorted)
	h := sha256.New()
	h.Write([]byte("s3seal age recipient set\x00"))
	for _, r := range sorted {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(r)))
		h.Write(n[:])
		h.Write([]byte(r))
	}
	return name + "-" + hex.EncodeToString(h.Sum(nil)[:8])
}

// validKeyID reports whether id has the form of an age key id.
func validKeyID(id string) bool {
	const hashLen = 16
	if len(id) < 2+hashLen || len(id) > keys.MaxKeyIDSize || id[len(id)-hashLen-1] != '-' {
		return false
	}
	for _, c := range []byte(id[len(id)-hashLen:]) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	name := id[:len(id)-hashLen-1]
	return len(name) <= maxNameSize && local.ValidateName(name) == nil
}

// Name returns "age".
func (p *Provider) Name() string { return keys.KindAge }

// KeyID returns the key id of the recipient set, "" if the provider has no
// recipients.
func (p *Provider) KeyID() string { return p.keyID }

// WriteOnly reports whether the provider holds no identity.
func (p *Provider) WriteOnly() bool { return p.identities == nil }

// Recipients returns the recipient set, nil if none is configured.
func (p *Provider) Recipients() *RecipientSet { return p.recipients }

// Warnings returns what the configuration should be warned about at start:
// X25519 recipients (allow_classical), or identities none of which is a
// recipient. Each is one sentence without key material.
func (p *Provider) Warnings() []string { return slices.Clone(p.warnings) }

// Capabilities reports a provider without identities as write-only, and
// MaxWrappedSize.
func (p *Provider) Capabilities() keys.Capabilities {
	return keys.Capabilities{WriteOnly: p.WriteOnly(), MaxWrappedSize: MaxWrappedSize}
}

// errNoRecipients is returned when a decrypt-only provider is asked to wrap.
var errNoRecipients = errors.New("age: no recipients configured (the key spec names only identities), so data keys cannot be wrapped; add the recipients file: age:RECIPIENTS-FILE,identity=…")

// GenerateDataKey returns a random data key wrapped to every recipient.
func (p *Provider) GenerateDataKey(context.Context) (keys.DataKey, error) {
	if p.recipients == nil {
		return keys.DataKey{}, errNoRecipients
	}
	return keys.NewDataKey(p.rand, p.wrap)
}

func (p *Provider) wrap(key *[keys.DataKeySize]byte) (keys.WrappedKey, error) {
	var buf bytes.Buffer
	buf.Grow(p.recipients.WrappedSize())
	w, err := fage.Encrypt(&buf, p.wrapTo...)
	if err != nil {
		return keys.WrappedKey{}, fmt.Errorf("age: wrapping the data key: %w", err)
	}
	if _, err := w.Write(key[:]); err != nil {
		return keys.WrappedKey{}, fmt.Errorf("age: wrapping the data key: %w", err)
	}
	if err := w.Close(); err != nil {
		return keys.WrappedKey{}, fmt.Errorf("age: wrapping the data key: %w", err)
	}
	if buf.Len() != p.recipients.WrappedSize() {
		// Sizes are part of the format; a different age would break them.
		return keys.WrappedKey{}, fmt.Errorf("age: internal error: wrapped key of %d bytes, want %d", buf.Len(), p.recipients.WrappedSize())
	}
	return keys.WrappedKey{KeyID: p.keyID, Ciphertext: buf.Bytes()}, nil
}

// Decrypt unwraps a data key with the identities. Without identities it
// returns a *keys.WriteOnlyError; a key id not of the age form is a
// *keys.UnknownKeyError; a wrapped key that is malformed, altered, or not
// wrapped to any of the identities is a *keys.UnwrapError (errors.Is
// ErrNotRecipient in the last case).
func (p *Provider) Decrypt(_ context.Context, wrapped []byte, keyID string) ([keys.DataKeySize]byte, error) {
	var out [keys.DataKeySize]byte
	if p.identities == nil {
		return out, &keys.WriteOnlyError{Provider: keys.KindAge, KeyID: keyID, Operation: "Decrypt"}
	}
	if !validKeyID(keyID) {
		return out, &keys.UnknownKeyError{Provider: keys.KindAge, KeyID: keyID, Err: errors.New("not an age recipient-set id (NAME-HEX16)")}
	}
	pt, err := open(wrapped, p.identities.ids, wrappedShape)
	if err != nil {
		return out, &keys.UnwrapError{Provider: keys.KindAge, KeyID: keyID, Err: classify(err)}
	}
	copy(out[:], pt)
	clear(pt)
	return out, nil
}

// Wrap wraps a data key made elsewhere (by another provider) to the
// recipients: moving objects into age, from a key ring or a KMS, needs
// only public keys. The caller keeps ownership of key.
func (p *Provider) Wrap(_ context.Context, key *[keys.DataKeySize]byte) (keys.WrappedKey, error) {
	if p.recipients == nil {
		return keys.WrappedKey{}, errNoRecipients
	}
	return p.wrap(key)
}

// Rewrap unwraps with the identities and wraps to the current recipients.
func (p *Provider) Rewrap(ctx context.Context, wrapped []byte, keyID string) (keys.WrappedKey, error) {
	if p.identities == nil {
		return keys.WrappedKey{}, &keys.WriteOnlyError{Provider: keys.KindAge, KeyID: keyID, Operation: "Rewrap"}
	}
	if p.recipients == nil {
		return keys.WrappedKey{}, errNoRecipients
	}
	key, err := p.Decrypt(ctx, wrapped, keyID)
	if err != nil {
		return keys.WrappedKey{}, err
	}
	defer clear(key[:])
	return p.wrap(&key)
}
