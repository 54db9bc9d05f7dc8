package age

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	fage "filippo.io/age"
)

// cctvVector is one C2SP CCTV age vector (testdata/cctv/README.md).
type cctvVector struct {
	expect      string
	payloadHash []byte
	identities  string // identity file text, built from the identity lines
	file        []byte
}

func readCCTV(t *testing.T, path string) cctvVector {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v cctvVector
	compressed := false
	rest := raw
	for {
		line, after, ok := bytes.Cut(rest, []byte("\n"))
		if !ok {
			t.Fatal("vector has no payload")
		}
		rest = after
		if len(line) == 0 {
			break
		}
		k, val, _ := strings.Cut(string(line), ": ")
		switch k {
		case "expect":
			v.expect = val
		case "payload":
			if v.payloadHash, err = hex.DecodeString(val); err != nil {
				t.Fatal(err)
			}
		case "identity":
			v.identities += val + "\n"
		case "compressed":
			compressed = val == "zlib"
		case "file key", "comment", "armored":
		default:
			t.Fatalf("unknown vector header %q", k)
		}
	}
	v.file = rest
	if compressed {
		r, err := zlib.NewReader(bytes.NewReader(rest))
		if err != nil {
			t.Fatal(err)
		}
		if v.file, err = io.ReadAll(r); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

// vectorShape accepts any age file: the vectors have other payloads and
// stanzas than wrapped data keys. Everything else is the provider's path.
var vectorShape = shape{payload: -1, maxPayload: 1 << 20}

// TestCCTVVectors runs the C2SP age vectors for the hybrid (mlkem768x25519)
// and X25519 recipient types, and the header-level ones, through the
// function the provider opens wrapped keys with, with identities parsed by
// the provider's identity-file parser.
func TestCCTVVectors(t *testing.T) {
	paths, err := filepath.Glob("testdata/cctv/*")
	if err != nil {
		t.Fatal(err)
	}
	hybrid := 0
	for _, path := range paths {
		name := filepath.Base(path)
		if name == "README.md" {
			continue
		}
		if strings.HasPrefix(name, "hybrid") {
			hybrid++
		}
		t.Run(name, func(t *testing.T) {
			v := readCCTV(t, path)
			ids, err := ParseIdentities([]byte(v.identities))
			if err != nil {
				t.Fatalf("identities: %v", err)
			}
			pt, err := open(v.file, ids.ids, vectorShape)
			var nm *fage.NoIdentityMatchError
			switch v.expect {
			case "success":
				if err != nil {
					t.Fatalf("want success, got %v", err)
				}
				if sum := sha256.Sum256(pt); !bytes.Equal(sum[:], v.payloadHash) {
					t.Fatal("payload hash mismatch")
				}
			case "no match":
				if !errors.As(err, &nm) || !errors.Is(classify(err), ErrNotRecipient) {
					t.Fatalf("want no match, got %v", err)
				}
			case "HMAC failure":
				if err == nil || !strings.HasSuffix(err.Error(), "bad header MAC") {
					t.Fatalf("want a header MAC failure, got %v", err)
				}
			case "header failure", "payload failure":
				if err == nil || errors.As(err, &nm) || strings.HasSuffix(err.Error(), "bad header MAC") {
					t.Fatalf("want %s, got %v", v.expect, err)
				}
			default:
				t.Fatalf("unexpected expect %q", v.expect)
			}
			if err != nil && pt != nil {
				t.Fatal("plaintext released with an error")
			}
			// None of these files is a wrapped data key: the provider's
			// own shape refuses every one, whatever age says.
			if _, err := open(v.file, ids.ids, wrappedShape); err == nil {
				t.Fatal("a CCTV vector passed as a wrapped data key")
			}
		})
	}
	if hybrid < 18 {
		t.Fatalf("only %d hybrid vectors found", hybrid)
	}
}

var update = flag.Bool("update", false, "rewrite testdata/vectors.json from a new wrap")

// knownAnswer pins the wrapped form (testdata/vectors.json; age draws its
// own randomness, so the vector is made once and then only unwrapped).
type knownAnswer struct {
	Comment    string `json:"comment"`
	Name       string `json:"name"`
	Recipients string `json:"recipients_file"`
	Identities string `json:"identity_file"`
	KeyID      string `json:"key_id"`
	DataKey    string `json:"data_key"` // hex
	Wrapped    string `json:"wrapped"`  // base64
}

func loadKnownAnswer(t testing.TB) knownAnswer {
	t.Helper()
	raw, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v knownAnswer
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestKnownAnswer(t *testing.T) {
	ctx := context.Background()
	if *update {
		dir := t.TempDir()
		var recips []string
		var idText []byte
		for _, n := range []string{"a", "b"} {
			path := filepath.Join(dir, n)
			r, err := CreateIdentity(path, false, fixedTime)
			if err != nil {
				t.Fatal(err)
			}
			recips = append(recips, r)
			if n == "a" {
				idText, _ = os.ReadFile(path)
			}
		}
		rtext := "# two hybrid recipients; the identity below is the first's\n" + strings.Join(recips, "\n") + "\n"
		rs, _ := ParseRecipients([]byte(rtext))
		p, err := New(Config{Recipients: rs, Name: "vector", Rand: bytes.NewReader(bytes.Repeat([]byte{0x5a}, 32))})
		if err != nil {
			t.Fatal(err)
		}
		dk, err := p.GenerateDataKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		v := knownAnswer{
			Comment: "s3seal age provider: a 32-byte data key wrapped to two hybrid recipients (FORMAT section 3.5); unwrap with identity_file",
			Name:    "vector", Recipients: rtext, Identities: string(idText), KeyID: dk.KeyID,
			DataKey: hex.EncodeToString(dk.Plaintext[:]), Wrapped: base64.StdEncoding.EncodeToString(dk.Ciphertext),
		}
		out, _ := json.MarshalIndent(v, "", "  ")
		if err := os.WriteFile("testdata/vectors.json", append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	v := loadKnownAnswer(t)
	rs, err := ParseRecipients([]byte(v.Recipients))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := ParseIdentities([]byte(v.Identities))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{Recipients: rs, Identities: ids, Name: v.Name})
	if err != nil {
		t.Fatal(err)
	}
	if p.KeyID() != v.KeyID {
		t.Fatalf("key id %s, vector says %s", p.KeyID(), v.KeyID)
	}
	wrapped, _ := base64.StdEncoding.DecodeString(v.Wrapped)
	if len(wrapped) != WrappedSize(2, 0) || len(wrapped) != rs.WrappedSize() {
		t.Fatalf("vector of %d bytes, WrappedSize says %d", len(wrapped), WrappedSize(2, 0))
	}
	k, err := p.Decrypt(ctx, wrapped, v.KeyID)
	if err != nil || hex.EncodeToString(k[:]) != v.DataKey {
		t.Fatalf("unwrap vector: %v", err)
	}
	// What the age tool does with it (age -d -i identity_file) gives the
	// same data key.
	fids, err := fage.ParseIdentities(strings.NewReader(v.Identities))
	if err != nil {
		t.Fatal(err)
	}
	r, err := fage.Decrypt(bytes.NewReader(wrapped), fids...)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := io.ReadAll(r); err != nil || hex.EncodeToString(pt) != v.DataKey {
		t.Fatalf("age itself: %v", err)
	}
}
