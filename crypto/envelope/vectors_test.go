package envelope

import (
	"bytes"
	"crypto/fips140"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/s3seal/s3seal/crypto/envelope/envelopetest"
	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/local"
	"github.com/s3seal/s3seal/crypto/stream"
)

var update = flag.Bool("update", false, "rewrite the expected values in testdata/vectors.json (and ciphertext files) from the current code")

// vector is one known-answer test of the whole format: a local key ring key,
// fixed randomness, the object's name and plaintext in, every intermediate
// key, the metadata and the ciphertext out. FORMAT.md's worked example is
// the vector named "hello".
type vector struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Bucket      string `json:"bucket"`
	Key         string `json:"key"`
	KeyName     string `json:"key_name"`
	MasterKey   string `json:"master_key"` // hex
	// Rand is consumed in order: data key (32), wrap nonce (12), object
	// key (32), seal salt (32).
	Rand string `json:"rand"`
	// Parts is the plaintext: one entry for a single PUT, one per part for
	// a multipart upload. Each is hex, or "pattern:N" for N bytes with byte
	// i = i mod 251.
	Parts     []string `json:"parts"`
	Multipart bool     `json:"multipart"`
	// Declared is a checksum declared up front (metadata), Trailing one
	// given at the end (trailer of the last segment): "ALG:hex".
	Declared string `json:"declared_checksum,omitempty"`
	Trailing string `json:"trailing_checksum,omitempty"`

	DataKey     string            `json:"data_key"`
	Wrapped     string            `json:"wrapped_key"`
	ObjectKey   string            `json:"object_key"`
	PRK         string            `json:"prk"`
	Commitment  string            `json:"commitment"`
	SealSalt    string            `json:"seal_salt"`
	SealKey     string            `json:"seal_key"`
	SegmentKeys map[string]string `json:"segment_keys,omitempty"` // version 1
	HeaderHex   string            `json:"header_hex"`
	Metadata    string            `json:"metadata"` // x-amz-meta-s3seal
	// Ciphertext is hex for small objects; larger ones are in
	// testdata/vectors/NAME.bin with their SHA-256 here.
	Ciphertext       string `json:"ciphertext,omitempty"`
	CiphertextSHA256 string `json:"ciphertext_sha256"`
}

func (v *vector) plaintexts(t *testing.T) [][]byte {
	out, err := envelopetest.ParseParts(v.Parts)
	if err != nil {
		t.Fatalf("%s: %v", v.Name, err)
	}
	return out
}

func parseSum(t *testing.T, s string) stream.Checksum {
	if s == "" {
		return stream.Checksum{}
	}
	i := bytes.IndexByte([]byte(s), ':')
	alg, err := stream.ParseChecksumAlgorithm(s[:i])
	if err != nil {
		t.Fatal(err)
	}
	val, _ := hex.DecodeString(s[i+1:])
	return stream.Checksum{Algorithm: alg, Value: val}
}

const vectorsFile = "testdata/vectors.json"

func loadVectors(t *testing.T, file string) []vector {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

// provider returns a local key provider holding the vector's key.
func (v *vector) provider(t *testing.T) keys.Provider {
	return local.NewProvider(v.ring(t), local.Config{})
}

func (v *vector) ring(t *testing.T) *local.Keyring {
	master, _ := hex.DecodeString(v.MasterKey)
	ring, err := local.Parse([]byte(v.KeyName + ":" + base64.StdEncoding.EncodeToString(master)))
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

// seeded returns a provider holding the vector's key that draws from the
// vector's fixed randomness, and that randomness.
func (v *vector) seeded(t *testing.T) (*local.Provider, *bytes.Reader) {
	random, _ := hex.DecodeString(v.Rand)
	rnd := bytes.NewReader(random)
	return local.NewProvider(v.ring(t), local.Config{Rand: rnd}), rnd
}

// stored returns the vector's committed ciphertext.
func (v *vector) stored(t *testing.T) []byte {
	if v.Ciphertext != "" {
		b, _ := hex.DecodeString(v.Ciphertext)
		return b
	}
	b, err := os.ReadFile(filepath.Join("testdata", "vectors", v.Name+".bin"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVectors(t *testing.T) {
	vs := loadVectors(t, vectorsFile)
	for i := range vs {
		v := &vs[i]
		t.Run(v.Name, func(t *testing.T) { checkVector(t, v) })
	}
	if *update {
		out, _ := json.MarshalIndent(vs, "", "  ")
		if err := os.WriteFile(vectorsFile, append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func checkVector(t *testing.T, v *vector) {
	if !*update {
		checkCommitted(t, v)
	}
	if fips140.Enforced() {
		t.Skip("FIPS 140-only mode: the committed object was decrypted; writing it again needs the vector's chosen nonces")
	}
	kp, rnd := v.seeded(t)
	parts := v.plaintexts(t)
	var size int64
	if !v.Multipart {
		size = int64(len(parts[0]))
	}
	dk, err := kp.GenerateDataKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ok, h, err := Seal(&dk, kp.Name(), Params{Bucket: v.Bucket, Key: v.Key, Multipart: v.Multipart, Size: size, Checksum: parseSum(t, v.Declared), Rand: rnd})
	if err != nil {
		t.Fatal(err)
	}
	if rnd.Len() != 0 {
		t.Fatalf("%d bytes of rand unused", rnd.Len())
	}
	sk, _ := sealKey(1, &dk.Plaintext, h.salt(), v.Bucket, v.Key)
	var ct []byte
	got := map[string]string{}
	for i, p := range parts {
		seg := uint32(0)
		if v.Multipart {
			seg = uint32(i + 1)
		}
		got[strconv.FormatUint(uint64(seg), 10)] = hex.EncodeToString(ok.SegmentKey(seg))
		var opts *stream.EncryptOptions
		if i == len(parts)-1 && v.Trailing != "" {
			sum := parseSum(t, v.Trailing)
			opts = &stream.EncryptOptions{Checksum: func(int64) (stream.Checksum, error) { return sum, nil }}
		}
		r, _ := stream.NewEncryptReader(ok.SegmentKey(seg), bytes.NewReader(p), opts)
		c, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		ct = append(ct, c...)
	}
	sum := sha256.Sum256(ct)
	actual := vector{
		DataKey:          hex.EncodeToString(dk.Plaintext[:]),
		Wrapped:          hex.EncodeToString(dk.Ciphertext),
		ObjectKey:        hex.EncodeToString(ok.key[:]),
		PRK:              hex.EncodeToString(ok.prk),
		Commitment:       hex.EncodeToString(h.Commitment()),
		SealSalt:         hex.EncodeToString(h.salt()),
		SealKey:          hex.EncodeToString(sk),
		SegmentKeys:      got,
		HeaderHex:        hex.EncodeToString(h),
		Metadata:         h.String(),
		CiphertextSHA256: hex.EncodeToString(sum[:]),
	}
	bin := filepath.Join("testdata", "vectors", v.Name+".bin")
	if len(ct) <= 512 {
		actual.Ciphertext = hex.EncodeToString(ct)
	}
	if *update {
		v.DataKey, v.Wrapped, v.ObjectKey, v.PRK, v.Commitment = actual.DataKey, actual.Wrapped, actual.ObjectKey, actual.PRK, actual.Commitment
		v.SealSalt, v.SealKey, v.SegmentKeys, v.HeaderHex, v.Metadata = actual.SealSalt, actual.SealKey, actual.SegmentKeys, actual.HeaderHex, actual.Metadata
		v.Ciphertext, v.CiphertextSHA256 = actual.Ciphertext, actual.CiphertextSHA256
		if v.Ciphertext == "" {
			os.MkdirAll(filepath.Dir(bin), 0o755)
			if err := os.WriteFile(bin, ct, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	check := func(field, got, want string) {
		if got != want {
			t.Errorf("%s: %s\n got %s\nwant %s", v.Name, field, got, want)
		}
	}
	check("data_key", actual.DataKey, v.DataKey)
	check("wrapped_key", actual.Wrapped, v.Wrapped)
	check("object_key", actual.ObjectKey, v.ObjectKey)
	check("prk", actual.PRK, v.PRK)
	check("commitment", actual.Commitment, v.Commitment)
	check("seal_salt", actual.SealSalt, v.SealSalt)
	check("seal_key", actual.SealKey, v.SealKey)
	check("header_hex", actual.HeaderHex, v.HeaderHex)
	check("metadata", actual.Metadata, v.Metadata)
	check("ciphertext", actual.Ciphertext, v.Ciphertext)
	check("ciphertext_sha256", actual.CiphertextSHA256, v.CiphertextSHA256)
	for seg, k := range v.SegmentKeys {
		check("segment key "+seg, got[seg], k)
	}
	if len(got) != len(v.SegmentKeys) {
		t.Errorf("%s: %d segment keys, want %d", v.Name, len(got), len(v.SegmentKeys))
	}
}

// checkCommitted decrypts the committed ciphertext from the committed
// metadata alone.
func checkCommitted(t *testing.T, v *vector) {
	committed := v.stored(t)
	hh, err := Parse(v.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	okc, err := Open(ctx, v.provider(t), hh, v.Bucket, v.Key)
	if err != nil {
		t.Fatal(err)
	}
	var dr *stream.DecryptReader
	if v.Multipart {
		dr, _ = stream.NewMultipartDecryptReader(okc.SegmentKey, bytes.NewReader(committed))
	} else {
		dr, _ = stream.NewDecryptReader(okc.SegmentKey(0), bytes.NewReader(committed))
	}
	plain, err := io.ReadAll(dr)
	parts := v.plaintexts(t)
	if err != nil || !bytes.Equal(plain, bytes.Join(parts, nil)) {
		t.Fatalf("%s: committed ciphertext does not decrypt: %v", v.Name, err)
	}
	if v.Trailing != "" {
		tr := dr.Trailers()
		last := tr[len(tr)-1].Checksum
		if want := parseSum(t, v.Trailing); last.Algorithm != want.Algorithm || !bytes.Equal(last.Value, want.Value) {
			t.Fatalf("%s: trailer checksum %v", v.Name, last)
		}
	}
}
