package age

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	fage "filippo.io/age"

	"github.com/s3seal/s3seal/crypto/keys"
)

// ErrNotRecipient is the cause (in a *keys.UnwrapError) when none of the
// identities opens a wrapped key: it was wrapped to other recipients.
var ErrNotRecipient = errors.New("age: the data key was not wrapped to any of this s3seal's identities")

// shape is what open accepts of an age file besides age's own checks.
type shape struct {
	maxSize    int             // of the whole file; 0 means any
	maxStanzas int             // 0 means any
	types      map[string]bool // stanza types allowed; nil means any
	payload    int             // exact payload size; -1 means any up to maxPayload
	maxPayload int
}

// wrappedShape is the fixed structure of a wrapped data key.
var wrappedShape = shape{
	maxSize:    MaxWrappedSize,
	maxStanzas: MaxRecipients,
	types:      map[string]bool{stanzaHybrid: true, stanzaX25519: true},
	payload:    keys.DataKeySize,
	maxPayload: keys.DataKeySize,
}

// errShape reports an age file outside the accepted structure.
type errShape struct{ reason string }

func (e errShape) Error() string {
	return "age: wrapped key is not of the expected structure: " + e.reason
}

// open decrypts the age file b with ids and returns its payload, which it
// reads to the end (so that age authenticates the final chunk) before
// returning any of it. It is the one path by which s3seal opens age files.
func open(b []byte, ids []fage.Identity, sh shape) ([]byte, error) {
	if sh.maxSize > 0 && len(b) > sh.maxSize {
		return nil, errShape{fmt.Sprintf("%d bytes, more than %d", len(b), sh.maxSize)}
	}
	if !bytes.HasPrefix(b, []byte(headerLine)) {
		return nil, errShape{"not a binary age v1 file"}
	}
	r, err := fage.Decrypt(bytes.NewReader(b), &checked{ids: ids, sh: sh})
	if err != nil {
		return nil, err
	}
	pt, err := io.ReadAll(io.LimitReader(r, int64(sh.maxPayload)+1))
	if err != nil {
		clear(pt)
		return nil, err
	}
	if len(pt) > sh.maxPayload || (sh.payload >= 0 && len(pt) != sh.payload) {
		clear(pt)
		return nil, errShape{fmt.Sprintf("payload of %d bytes, want %d", len(pt), sh.payload)}
	}
	return pt, nil
}

// checked is one age.Identity made of ids that first checks the stanzas
// against a shape: age passes every identity the whole list of stanzas.
type checked struct {
	ids []fage.Identity
	sh  shape
}

func (c *checked) Unwrap(stanzas []*fage.Stanza) ([]byte, error) {
	if len(stanzas) == 0 || (c.sh.maxStanzas > 0 && len(stanzas) > c.sh.maxStanzas) {
		return nil, errShape{fmt.Sprintf("%d stanzas, want 1 to %d", len(stanzas), c.sh.maxStanzas)}
	}
	if c.sh.types != nil {
		for _, s := range stanzas {
			if !c.sh.types[s.Type] {
				return nil, errShape{fmt.Sprintf("stanza of type %q", s.Type)}
			}
		}
	}
	for _, id := range c.ids {
		k, err := id.Unwrap(stanzas)
		if errors.Is(err, fage.ErrIncorrectIdentity) {
			continue
		}
		return k, err
	}
	return nil, fage.ErrIncorrectIdentity
}

// classify maps an error of open to what is reported: ErrNotRecipient when
// no identity matched, else the error itself (age's errors carry no key
// material).
func classify(err error) error {
	var nm *fage.NoIdentityMatchError
	if errors.As(err, &nm) {
		return ErrNotRecipient
	}
	return err
}
