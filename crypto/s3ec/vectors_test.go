package s3ec

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// The vectors in testdata are objects the Amazon S3 Encryption Client for
// Go wrote (v3 release: V2 format; v4 release: V3 format), with their data
// keys unwrapped at a test KMS. integration/s3ec_test.go regenerates them
// (S3SEAL_WRITE_S3EC_VECTORS=1).
type vector struct {
	Metadata  map[string]string `json:"metadata"`
	DataKey   string            `json:"data_key"`
	Body      string            `json:"body"`
	Plaintext string            `json:"plaintext"`
}

func loadVectors(t *testing.T) map[string]vector {
	t.Helper()
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) != 2 {
		t.Fatalf("want the V2 and V3 vectors in testdata, found %v (%v)", files, err)
	}
	out := map[string]vector{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v vector
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = v
	}
	return out
}

func (v vector) decode(t *testing.T) (dk, body, plain []byte) {
	t.Helper()
	var err1, err2, err3 error
	dk, err1 = hex.DecodeString(v.DataKey)
	body, err2 = base64.StdEncoding.DecodeString(v.Body)
	plain, err3 = base64.StdEncoding.DecodeString(v.Plaintext)
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatal(err)
	}
	return dk, body, plain
}

func TestVectors(t *testing.T) {
	versions := map[int]bool{}
	for name, v := range loadVectors(t) {
		dk, body, plain := v.decode(t)
		o, err := Parse(func(k string) string { return v.Metadata[k] })
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		versions[o.Version] = true
		if n, err := o.PlaintextSize(int64(len(body))); err != nil || n != int64(len(plain)) {
			t.Fatalf("%s: size %d %v, want %d", name, n, err, len(plain))
		}
		got, err := o.Open(dk, bytes.Clone(body))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%s: %v", name, err)
		}
		// Every tampering fails, releasing nothing.
		for _, i := range []int{0, len(body) / 2, len(body) - TagSize - 1, len(body) - 1} {
			bad := bytes.Clone(body)
			bad[i] ^= 0x80
			if got, err := o.Open(dk, bad); !errors.Is(err, ErrAuthentication) || got != nil {
				t.Fatalf("%s: byte %d flipped: %v", name, i, err)
			}
		}
		wrong := bytes.Clone(dk)
		wrong[0] ^= 1
		if _, err := o.Open(wrong, bytes.Clone(body)); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("%s: wrong data key: %v", name, err)
		}
		if _, err := o.Open(dk, bytes.Clone(body[:len(body)-1])); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("%s: truncated: %v", name, err)
		}
	}
	if !versions[2] || !versions[3] {
		t.Fatalf("vectors cover versions %v, want 2 and 3", versions)
	}
}
