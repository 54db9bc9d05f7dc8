package age

import (
	"crypto/fips140"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"
	"unicode/utf8"

	fage "filippo.io/age"

	"github.com/s3seal/s3seal/crypto/keys/internal/secretfile"
)

// Limits of the files.
const (
	// MaxRecipients is the most recipients a set may hold (and so the most
	// stanzas a wrapped key may have).
	MaxRecipients = 10
	// MaxIdentities is the most identities s3seal loads: each may be tried
	// on every stanza of a wrapped key.
	MaxIdentities = 16
	// maxFileSize bounds a recipients or identity file.
	maxFileSize = 1 << 20
	// maxLineSize bounds a line (a hybrid recipient is about 1,960
	// characters), as the age tool does.
	maxLineSize = 8 << 10
)

// ErrFIPS140Only is returned by every entry point of the package when Go's
// FIPS 140-only mode is enforced (GODEBUG=fips140=only): age's X25519 and
// ChaCha20-Poly1305 are not approved algorithms, so neither hybrid nor
// X25519 recipients can be used there. (Without this check some age
// operations would fail obscurely, and hybrid key generation would not
// return.)
var ErrFIPS140Only = errors.New("age: age recipients and identities use X25519 and ChaCha20-Poly1305, which FIPS 140-only mode (GODEBUG=fips140=only) does not allow; use a local key ring or a KMS there")

func checkFIPS() error {
	if fips140.Enforced() {
		return ErrFIPS140Only
	}
	return nil
}

// Stanza types of the recipients s3seal wraps to.
const (
	stanzaHybrid = "mlkem768x25519"
	stanzaX25519 = "X25519"
)

// RecipientSet is a parsed recipients file. It is immutable and safe for
// concurrent use.
type RecipientSet struct {
	recipients []fage.Recipient
	strs       []string // canonical encodings, in file order
	classical  []int    // line numbers of X25519 recipients
}

// Len returns the number of recipients.
func (s *RecipientSet) Len() int { return len(s.recipients) }

// Strings returns the recipients' canonical encodings, in file order.
func (s *RecipientSet) Strings() []string { return append([]string(nil), s.strs...) }

// Hybrid returns the number of post-quantum hybrid recipients.
func (s *RecipientSet) Hybrid() int { return len(s.recipients) - len(s.classical) }

// Classical returns the number of X25519 recipients.
func (s *RecipientSet) Classical() int { return len(s.classical) }

// WrappedSize returns the size of every data key wrapped to this set.
func (s *RecipientSet) WrappedSize() int { return WrappedSize(s.Hybrid(), s.Classical()) }

// fileLines calls f with each line that is neither blank nor a comment,
// trimmed, and its 1-based number. what names the file in errors
// ("recipients file").
func fileLines(text []byte, what string, f func(n int, line string) error) error {
	if len(text) > maxFileSize {
		return fmt.Errorf("age: %s is larger than %d bytes", what, maxFileSize)
	}
	for i, line := range strings.Split(string(text), "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !utf8.ValidString(line) {
			return fmt.Errorf("age: %s line %d is not valid UTF-8", what, n)
		}
		if len(line) > maxLineSize {
			return fmt.Errorf("age: %s line %d is longer than %d bytes", what, n, maxLineSize)
		}
		if err := f(n, line); err != nil {
			return err
		}
	}
	return nil
}

// isSecret reports whether line looks like an age secret key of any kind.
func isSecret(line string) bool {
	u := strings.ToUpper(line)
	return strings.HasPrefix(u, "AGE-SECRET-KEY-") || strings.HasPrefix(u, "AGE-PLUGIN-")
}

// ParseRecipients parses a recipients file (see the package
// documentation). It accepts X25519 recipients; whether to use them is the
// Provider's decision (Config.AllowClassical). Errors name the line, never
// its text.
func ParseRecipients(text []byte) (*RecipientSet, error) {
	if err := checkFIPS(); err != nil {
		return nil, err
	}
	s := &RecipientSet{}
	seen := map[string]int{}
	err := fileLines(text, "recipients file", func(n int, line string) error {
		var r fage.Recipient
		var str string
		switch {
		case isSecret(line):
			return fmt.Errorf("age: recipients file line %d holds a secret key (an identity), not a recipient; "+
				"a recipients file holds only public keys: give identities with identity=FILE, and list their public keys (age-keygen -y FILE) here", n)
		case strings.HasPrefix(line, "age1pq1"):
			h, err := fage.ParseHybridRecipient(line)
			if err != nil {
				return fmt.Errorf("age: recipients file line %d: malformed age1pq1 recipient (wrong length or checksum)", n)
			}
			r, str = h, h.String()
		case strings.HasPrefix(line, "age1tag1"), strings.HasPrefix(line, "age1tagpq1"):
			return fmt.Errorf("age: recipients file line %d: tagged (hardware) recipients are not supported; use age1pq1 recipients", n)
		case strings.HasPrefix(line, "age1") && strings.Count(line, "1") > 1:
			return fmt.Errorf("age: recipients file line %d: plugin recipients are not supported; use age1pq1 recipients", n)
		case strings.HasPrefix(line, "age1"):
			x, err := fage.ParseX25519Recipient(line)
			if err != nil {
				return fmt.Errorf("age: recipients file line %d: malformed age1 recipient (wrong length or checksum)", n)
			}
			r, str = x, x.String()
			s.classical = append(s.classical, n)
		case strings.HasPrefix(line, "ssh-"):
			return fmt.Errorf("age: recipients file line %d: SSH recipients are not supported; use age1pq1 recipients (s3seal keygen --age)", n)
		default:
			return fmt.Errorf("age: recipients file line %d is not an age recipient (want age1pq1…)", n)
		}
		if m, ok := seen[str]; ok {
			return fmt.Errorf("age: recipients file line %d repeats the recipient of line %d", n, m)
		}
		seen[str] = n
		if len(s.recipients) == MaxRecipients {
			return fmt.Errorf("age: recipients file line %d: more than %d recipients", n, MaxRecipients)
		}
		s.recipients = append(s.recipients, r)
		s.strs = append(s.strs, str)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(s.recipients) == 0 {
		return nil, errors.New("age: recipients file holds no recipients")
	}
	return s, nil
}

// IdentitySet is a parsed identity file, or several. It is immutable and
// safe for concurrent use.
type IdentitySet struct {
	ids        []fage.Identity
	recipients []string // the identities' recipients, canonical
}

// Len returns the number of identities.
func (s *IdentitySet) Len() int { return len(s.ids) }

// Recipients returns the canonical encodings of the identities' public
// keys, in file order.
func (s *IdentitySet) Recipients() []string { return append([]string(nil), s.recipients...) }

// ParseIdentities parses identity files' text (see the package
// documentation) into one set. Errors name the file's position in texts
// (from 1) and the line, never its text.
func ParseIdentities(texts ...[]byte) (*IdentitySet, error) {
	if err := checkFIPS(); err != nil {
		return nil, err
	}
	s := &IdentitySet{}
	for i, text := range texts {
		what := "identity file"
		if len(texts) > 1 {
			what = fmt.Sprintf("identity file %d", i+1)
		}
		err := fileLines(text, what, func(n int, line string) error {
			var id fage.Identity
			var rec string
			switch {
			case strings.HasPrefix(line, "AGE-SECRET-KEY-PQ-1"):
				h, err := fage.ParseHybridIdentity(line)
				if err != nil {
					return fmt.Errorf("age: %s line %d: malformed AGE-SECRET-KEY-PQ-1 identity", what, n)
				}
				id, rec = h, h.Recipient().String()
			case strings.HasPrefix(line, "AGE-SECRET-KEY-1"):
				x, err := fage.ParseX25519Identity(line)
				if err != nil {
					return fmt.Errorf("age: %s line %d: malformed AGE-SECRET-KEY-1 identity", what, n)
				}
				id, rec = x, x.Recipient().String()
			case strings.HasPrefix(strings.ToUpper(line), "AGE-PLUGIN-"):
				return fmt.Errorf("age: %s line %d: plugin identities are not supported", what, n)
			case strings.HasPrefix(line, "age1"):
				return fmt.Errorf("age: %s line %d is a recipient (a public key), not an identity", what, n)
			case strings.HasPrefix(line, "age-encryption.org/") || strings.HasPrefix(line, "-----BEGIN AGE"):
				return fmt.Errorf("age: %s is encrypted; passphrase-protected identity files are not supported", what)
			default:
				return fmt.Errorf("age: %s line %d is not an age identity (want AGE-SECRET-KEY-PQ-1… or AGE-SECRET-KEY-1…)", what, n)
			}
			if len(s.ids) == MaxIdentities {
				return fmt.Errorf("age: %s line %d: more than %d identities", what, n, MaxIdentities)
			}
			s.ids = append(s.ids, id)
			s.recipients = append(s.recipients, rec)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(s.ids) == 0 {
		return nil, errors.New("age: identity file holds no identities")
	}
	return s, nil
}

// LoadRecipients reads and parses a recipients file. It holds only public
// keys, so its mode is not checked.
func LoadRecipients(path string) (*RecipientSet, error) {
	text, err := readFile(path, false)
	if err != nil {
		return nil, err
	}
	s, err := ParseRecipients(text)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return s, nil
}

// LoadIdentities reads and parses identity files. It refuses a file that
// group or others may read or write, or that is not a regular file.
func LoadIdentities(paths ...string) (*IdentitySet, error) {
	texts := make([][]byte, 0, len(paths))
	defer func() {
		for _, t := range texts {
			clear(t)
		}
	}()
	for _, path := range paths {
		text, err := readFile(path, true)
		if err != nil {
			return nil, err
		}
		texts = append(texts, text)
	}
	s, err := ParseIdentities(texts...)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, strings.Join(paths, ", "))
	}
	return s, nil
}

func readFile(path string, secret bool) ([]byte, error) {
	what := "recipients file"
	if secret {
		what = "identity file"
	}
	read := secretfile.ReadPublic
	if secret {
		read = secretfile.Read
	}
	text, err := read(path, maxFileSize, what)
	if err != nil {
		return nil, fmt.Errorf("age: %w", err)
	}
	return text, nil
}

// ErrExists is returned by CreateIdentity when the file already exists.
var ErrExists = errors.New("age: identity file already exists")

// CreateIdentity writes a new identity file at path, mode 0600, in the
// age-keygen layout (a "# created:" and a "# public key:" comment, then the
// secret key), and returns its recipient. The identity is hybrid
// post-quantum unless classical is set (X25519). It never overwrites: if
// path exists it returns an error wrapping ErrExists. The key comes from
// crypto/rand.
func CreateIdentity(path string, classical bool, now time.Time) (recipient string, err error) {
	if err := checkFIPS(); err != nil {
		return "", err
	}
	var secret string
	if classical {
		k, err := fage.GenerateX25519Identity()
		if err != nil {
			return "", fmt.Errorf("age: %w", err)
		}
		secret, recipient = k.String(), k.Recipient().String()
	} else {
		k, err := fage.GenerateHybridIdentity()
		if err != nil {
			return "", fmt.Errorf("age: %w", err)
		}
		secret, recipient = k.String(), k.Recipient().String()
	}
	text := []byte("# created: " + now.Format(time.RFC3339) + "\n# public key: " + recipient + "\n" + secret + "\n")
	defer clear(text)
	if err := secretfile.Create(path, text); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("%w: %s", ErrExists, path)
		}
		return "", fmt.Errorf("age: %w", err)
	}
	return recipient, nil
}
