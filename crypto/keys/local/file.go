package local

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/s3seal/s3seal/crypto/keys/internal/secretfile"
)

// Load reads a key ring file. It refuses a symbolic link (the file is
// opened without following one, so the file checked is the file read), a
// file that is not regular, one that group or others may read or write, and
// one owned by another user than the effective user.
func Load(path string) (*Keyring, error) {
	f, err := openChecked(path, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readRing(f, path)
}

// readRing parses the key ring f, read from its current offset.
func readRing(f *os.File, path string) (*Keyring, error) {
	text, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("local: reading key ring %s: %w", path, err)
	}
	defer clear(text)
	k, err := Parse(text)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return k, nil
}

// openChecked opens a key ring with secretfile.Open.
func openChecked(path string, flag int) (*os.File, error) {
	f, err := secretfile.Open(path, flag, "key ring")
	if err != nil {
		if errors.Is(err, secretfile.ErrNotRegular) {
			return nil, fmt.Errorf("local: key ring %s is not a regular file", path)
		}
		return nil, fmt.Errorf("local: %w", err)
	}
	return f, nil
}

// LoadEnv parses the key ring held in environment variable name. lookup is
// os.LookupEnv if nil.
func LoadEnv(name string, lookup func(string) (string, bool)) (*Keyring, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	v, ok := lookup(name)
	if !ok || v == "" {
		return nil, fmt.Errorf("local: environment variable %s is not set; set it to NAME:BASE64-KEY entries (see s3seal keygen)", name)
	}
	k, err := Parse([]byte(v))
	if err != nil {
		return nil, fmt.Errorf("%w (in $%s)", err, name)
	}
	return k, nil
}

// NewEntry returns a new key ring entry "NAME:KEY" with a random key and a
// name made of the date (from now) and random hex, and the name alone.
// rand is crypto/rand.Reader if nil.
func NewEntry(random io.Reader, now time.Time) (name, entry string, err error) {
	if random == nil {
		random = rand.Reader
	}
	var b [36]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return "", "", fmt.Errorf("local: reading randomness: %w", err)
	}
	defer clear(b[:])
	name = "s3seal-" + now.UTC().Format("20060102") + "-" + hex.EncodeToString(b[32:])
	return name, name + ":" + base64.StdEncoding.EncodeToString(b[:32]), nil
}

const fileHeader = "# s3seal key ring (format 1). Keep it secret: mode 0600, never in version control.\n" +
	"# Entries are NAME:BASE64-KEY, oldest first; the last one wraps new data keys, all of them unwrap.\n"

// ErrExists is returned by Create when the file already exists.
var ErrExists = errors.New("local: key ring file already exists")

// Create writes a new key ring file with one new key, mode 0600. It never
// overwrites: if path exists it returns an error wrapping ErrExists. It
// returns the new key's name.
func Create(path string, random io.Reader, now time.Time) (string, error) {
	name, entry, err := NewEntry(random, now)
	if err != nil {
		return "", err
	}
	if err := secretfile.Create(path, []byte(fileHeader+entry+"\n")); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("%w: %s (use --append to add a key to it)", ErrExists, path)
		}
		return "", fmt.Errorf("local: %w", err)
	}
	return name, nil
}

// Append adds a new key to an existing key ring file, where it becomes the
// active key; the older keys stay for reading. The file must pass Load's
// checks; it is opened once, and the checks, the parse and the write all go
// through that one descriptor. It returns the new key's name.
func Append(path string, random io.Reader, now time.Time) (string, error) {
	f, err := openChecked(path, os.O_RDWR|os.O_APPEND)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := readRing(f, path); err != nil {
		return "", err
	}
	name, entry, err := NewEntry(random, now)
	if err != nil {
		return "", err
	}
	if _, err := io.WriteString(f, "\n"+entry+"\n"); err != nil {
		return "", fmt.Errorf("local: writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("local: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("local: writing %s: %w", path, err)
	}
	return name, nil
}
