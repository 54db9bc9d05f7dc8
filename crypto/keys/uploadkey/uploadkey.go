// Package uploadkey loads the upload key of a write-only gateway: the
// secret its replicas share to seal each multipart upload's object key
// into the upload id they hand out (FORMAT.md, section 8.4).
//
// A key source is a file path, "env:VAR", or empty for the file
// upload.key in the data directory, generated there (mode 0600) when it
// does not exist. The text is one key a line, base64 of 32 bytes, with
// "#" comments and blank lines; the first key seals new upload ids, and
// every key opens them, so a replaced key can be kept (second) until the
// uploads begun under it are done. In a variable, keys are separated by
// commas.
package uploadkey

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/s3seal/s3seal/crypto/keys/internal/secretfile"
)

// Size is the size of an upload key.
const Size = 32

// DefaultFile is the name of the generated key in the data directory.
const DefaultFile = "upload.key"

// what names the file in errors.
const what = "upload key file"

// Keys are the loaded upload keys, the sealing one first.
type Keys struct {
	// Keys are the keys, the one that seals first.
	Keys []*[Size]byte
	// Source says where they came from (a path or "env:VAR"), for logs.
	Source string
	// Generated is set when the key was created by this Load.
	Generated bool
}

// ID is a short public fingerprint of the sealing key, for comparing
// replicas' keys in logs without showing the key.
func (k *Keys) ID() string {
	sum := sha256.Sum256(append([]byte("s3seal upload key id\x00"), k.Keys[0][:]...))
	return hex.EncodeToString(sum[:6])
}

// Zero overwrites the keys.
func (k *Keys) Zero() {
	for _, x := range k.Keys {
		clear(x[:])
	}
}

// Load reads the upload keys from spec (see the package documentation);
// dataDir is where the default key lives, getenv reads variables.
func Load(spec, dataDir string, getenv func(string) (string, bool)) (*Keys, error) {
	if name, ok := strings.CutPrefix(spec, "env:"); ok {
		v, set := getenv(name)
		if !set || strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("upload key: variable %s is not set", name)
		}
		ks, err := parse(strings.ReplaceAll(v, ",", "\n"))
		if err != nil {
			return nil, fmt.Errorf("upload key in %s: %w", name, err)
		}
		return &Keys{Keys: ks, Source: spec}, nil
	}
	path, generated := spec, false
	if path == "" {
		if dataDir == "" {
			return nil, errors.New("upload key: no data directory to keep a generated key in; set the upload key")
		}
		path = filepath.Join(dataDir, DefaultFile)
		var err error
		if generated, err = generate(path); err != nil {
			return nil, err
		}
	}
	b, err := secretfile.Read(path, 64<<10, what)
	if err != nil {
		return nil, fmt.Errorf("upload key: %w", err)
	}
	defer clear(b)
	ks, err := parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("upload key file %s: %w", path, err)
	}
	return &Keys{Keys: ks, Source: path, Generated: generated}, nil
}

// generate creates path with a new key unless it exists.
func generate(path string) (bool, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("upload key: %w", err)
	}
	var k [Size]byte
	if _, err := rand.Read(k[:]); err != nil {
		return false, err
	}
	text := []byte("# s3seal upload key: every replica of a write-only gateway needs this same file.\n" +
		base64.StdEncoding.EncodeToString(k[:]) + "\n")
	clear(k[:])
	defer clear(text)
	err := secretfile.Create(path, text)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrExist):
		return false, nil
	}
	return false, fmt.Errorf("upload key: %w", err)
}

// parse reads keys, one a line.
func parse(text string) ([]*[Size]byte, error) {
	var out []*[Size]byte
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(line)
		if err != nil || len(b) != Size {
			clear(b)
			return nil, fmt.Errorf("line %d: want the base64 of %d random bytes", i+1, Size)
		}
		k := new([Size]byte)
		copy(k[:], b)
		clear(b)
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, errors.New("no key in it")
	}
	return out, nil
}
