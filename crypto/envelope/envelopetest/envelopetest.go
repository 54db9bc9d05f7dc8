// Package envelopetest gives tests outside the crypto packages the
// committed format version 1 known-answer vectors of package envelope
// (testdata/vectors.json): objects exactly as earlier releases of s3seal
// stored them, with their name, metadata, stored bytes, plaintext and the
// key ring that reads them. Tests put them into a store and check that the
// current code still reads, ranges, lists, copies and rotates them.
package envelopetest

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/s3seal/s3seal/crypto/keys/local"
	"github.com/s3seal/s3seal/crypto/stream"
)

// Vector is one committed version 1 object.
type Vector struct {
	Name string `json:"name"`
	// Bucket and Key are the name it was written under (it opens under
	// that name only).
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	// KeyName and MasterKey (hex) are the local key ring entry that
	// wrapped its data key.
	KeyName   string `json:"key_name"`
	MasterKey string `json:"master_key"`
	// Parts is the plaintext, one entry per part (one for a single PUT):
	// hex, or "pattern:N" for N bytes with byte i = i mod 251.
	Parts     []string `json:"parts"`
	Multipart bool     `json:"multipart"`
	// Metadata is the value of x-amz-meta-s3seal.
	Metadata string `json:"metadata"`
	// Ciphertext is the stored bytes in hex, or empty when they are in
	// testdata/vectors/NAME.bin.
	Ciphertext string `json:"ciphertext,omitempty"`

	dir string
}

// testdata is package envelope's testdata directory.
func testdata() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata")
}

// Version1 returns the committed version 1 vectors.
func Version1() ([]Vector, error) {
	dir := testdata()
	raw, err := os.ReadFile(filepath.Join(dir, "vectors.json"))
	if err != nil {
		return nil, err
	}
	var vs []Vector
	if err := json.Unmarshal(raw, &vs); err != nil {
		return nil, err
	}
	for i := range vs {
		vs[i].dir = dir
	}
	return vs, nil
}

// Plaintext returns the plaintext of each part (one for a single PUT).
func (v Vector) Plaintext() ([][]byte, error) {
	out, err := ParseParts(v.Parts)
	if err != nil {
		return nil, fmt.Errorf("envelopetest: vector %s: %w", v.Name, err)
	}
	return out, nil
}

// ParseParts decodes the parts of a vector file: each hex, or "pattern:N"
// for N bytes with byte i = i mod 251.
func ParseParts(parts []string) ([][]byte, error) {
	var out [][]byte
	for _, p := range parts {
		var n int
		if _, err := fmt.Sscanf(p, "pattern:%d", &n); err == nil {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(i % 251)
			}
			out = append(out, b)
			continue
		}
		b, err := hex.DecodeString(p)
		if err != nil {
			return nil, fmt.Errorf("part %q", p)
		}
		out = append(out, b)
	}
	return out, nil
}

// Stored returns the stored bytes (the whole object) and the stored size
// of each part.
func (v Vector) Stored() ([]byte, []int64, error) {
	var b []byte
	var err error
	if v.Ciphertext != "" {
		b, err = hex.DecodeString(v.Ciphertext)
	} else {
		b, err = os.ReadFile(filepath.Join(v.dir, "vectors", v.Name+".bin"))
	}
	if err != nil {
		return nil, nil, err
	}
	plain, err := v.Plaintext()
	if err != nil {
		return nil, nil, err
	}
	var sizes []int64
	var total int64
	for _, p := range plain {
		c, err := stream.CiphertextSize(int64(len(p)))
		if err != nil {
			return nil, nil, err
		}
		sizes = append(sizes, c)
		total += c
	}
	if total != int64(len(b)) {
		return nil, nil, fmt.Errorf("envelopetest: vector %s: %d stored bytes, its parts make %d", v.Name, len(b), total)
	}
	return b, sizes, nil
}

// KeyringText returns the local key ring that reads the vector, as a key
// ring file holds it.
func (v Vector) KeyringText() (string, error) {
	master, err := hex.DecodeString(v.MasterKey)
	if err != nil {
		return "", err
	}
	return v.KeyName + ":" + base64.StdEncoding.EncodeToString(master) + "\n", nil
}

// Keyring returns the local key ring that reads the vector.
func (v Vector) Keyring() (*local.Keyring, error) {
	text, err := v.KeyringText()
	if err != nil {
		return nil, err
	}
	return local.Parse([]byte(text))
}
