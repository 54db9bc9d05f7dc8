// Package s3ec reads objects written by the Amazon S3 Encryption Client
// (S3EC), so that data encrypted client-side by an application can be read
// through s3seal while it migrates. It decrypts; it never writes the format.
//
// Two formats are supported, both with the data key wrapped by AWS KMS with
// an encryption context ("kms+context"):
//
//   - V2, ALG_AES_256_GCM_IV12_TAG16_NO_KDF: the body is AES-256-GCM under
//     the data key with a random 12-byte IV and no additional data;
//   - V3, ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY (suite 115): the content
//     key is derived with HKDF-SHA512 from the data key and a 28-byte message
//     id, a stored key commitment is checked in constant time first, and the
//     body is AES-256-GCM with an IV of twelve 0x01 bytes and the suite id as
//     additional data.
//
// Either way the whole body is one GCM message with its 16-byte tag at the
// end, so nothing is authenticated before the last byte: Open decrypts a
// whole body held in memory and releases nothing unless the tag verifies.
// V1 objects (AES-CBC, unauthenticated), raw AES or RSA key rings and
// metadata kept in instruction files are refused with an explanation.
package s3ec

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Metadata keys, without the "x-amz-meta-" prefix S3 adds on the wire.
const (
	keyV1         = "x-amz-key"
	keyV2         = "x-amz-key-v2"
	ivV2          = "x-amz-iv"
	matDescV2     = "x-amz-matdesc"
	wrapAlgV2     = "x-amz-wrap-alg"
	cekAlgV2      = "x-amz-cek-alg"
	tagLenV2      = "x-amz-tag-len"
	plainLenV2    = "x-amz-unencrypted-content-length"
	cipherV3      = "x-amz-c"
	keyV3         = "x-amz-3"
	matDescV3     = "x-amz-m"
	contextV3     = "x-amz-t"
	wrapAlgV3     = "x-amz-w"
	commitmentV3  = "x-amz-d"
	messageIDV3   = "x-amz-i"
	cekContextKey = "aws:x-amz-cek-alg"
)

const (
	gcmV2       = "AES/GCM/NoPadding"
	suiteV3     = 0x0073
	suiteV3Name = "115"
	// TagSize is the GCM tag at the end of every body.
	TagSize       = 16
	dataKeySize   = 32
	messageIDSize = 28
	commitSize    = 28
	ivSize        = 12
	// MaxBodySize is the largest body one GCM message can hold
	// (2^39 - 256 bits of plaintext) plus the tag.
	MaxBodySize = (1<<36 - 32) + TagSize
)

// ErrNotS3EC reports metadata without any S3 Encryption Client key.
var ErrNotS3EC = errors.New("s3ec: not an S3 Encryption Client object")

// ErrAuthentication is the one error for a body, key or commitment that
// does not verify: no plaintext is released.
var ErrAuthentication = errors.New("s3ec: the object failed authentication (tampered, truncated or wrong key)")

// UnsupportedError reports an S3EC object s3seal recognises but cannot
// read; Reason says what and what to do.
type UnsupportedError struct{ Reason string }

func (e *UnsupportedError) Error() string { return "s3ec: unsupported object: " + e.Reason }

// Object is the parsed S3EC metadata of one object.
type Object struct {
	// Version is 2 or 3.
	Version int
	// WrapAlg is "kms+context".
	WrapAlg string
	// WrappedKey is the KMS ciphertext blob of the data key.
	WrappedKey []byte
	// Context is the KMS encryption context to unwrap WrappedKey with.
	Context map[string]string
	// iv is V2's IV; messageID and commitment are V3's.
	iv, messageID, commitment []byte
	// plainLen is V2's optional x-amz-unencrypted-content-length, or -1.
	plainLen int64
}

// Is reports whether any S3EC metadata key is present. meta returns a user
// metadata value by its key (without "x-amz-meta-"), "" if absent.
func Is(meta func(string) string) bool {
	for _, k := range [...]string{keyV1, keyV2, cipherV3, keyV3, commitmentV3, messageIDV3} {
		if meta(k) != "" {
			return true
		}
	}
	return false
}

// Parse reads and checks an object's S3EC metadata. meta returns a user
// metadata value by its key (without "x-amz-meta-"), "" if absent. It
// returns ErrNotS3EC when no S3EC key is present, *UnsupportedError for
// formats s3seal does not read, and an error naming the field otherwise.
func Parse(meta func(string) string) (*Object, error) {
	v1, v2 := meta(keyV1) != "", meta(keyV2) != ""
	v3 := meta(keyV3) != "" || meta(commitmentV3) != "" || meta(messageIDV3) != "" || meta(cipherV3) != ""
	n := 0
	for _, b := range []bool{v1, v2, v3} {
		if b {
			n++
		}
	}
	switch {
	case n == 0:
		return nil, ErrNotS3EC
	case n > 1:
		return nil, errors.New("s3ec: metadata mixes keys of several S3 Encryption Client format versions")
	case v1:
		return nil, &UnsupportedError{Reason: "V1 objects (AES-CBC without authentication) are not read; re-encrypt them with a current S3 Encryption Client"}
	case v2:
		return parseV2(meta)
	}
	return parseV3(meta)
}

func parseV2(meta func(string) string) (*Object, error) {
	o := &Object{Version: 2, plainLen: -1}
	if alg := meta(cekAlgV2); alg != gcmV2 {
		if alg == "AES/CBC/PKCS5Padding" {
			return nil, &UnsupportedError{Reason: "AES/CBC content (unauthenticated) is not read"}
		}
		return nil, fmt.Errorf("s3ec: %s %q, want %q", cekAlgV2, alg, gcmV2)
	}
	if tl := meta(tagLenV2); tl != "" && tl != "128" {
		return nil, fmt.Errorf("s3ec: %s %q, want 128", tagLenV2, tl)
	}
	var err error
	if o.iv, err = decodeB64(ivV2, meta(ivV2), ivSize); err != nil {
		return nil, err
	}
	if o.WrappedKey, err = decodeB64(keyV2, meta(keyV2), 0); err != nil {
		return nil, err
	}
	if o.Context, err = decodeContext(matDescV2, meta(matDescV2)); err != nil {
		return nil, err
	}
	switch o.WrapAlg = meta(wrapAlgV2); o.WrapAlg {
	case "kms+context":
		// The content algorithm is bound into the KMS context: check it
		// before asking KMS, as the client does.
		if o.Context[cekContextKey] != gcmV2 {
			return nil, fmt.Errorf("s3ec: %s lacks %s=%s", matDescV2, cekContextKey, gcmV2)
		}
	default:
		return nil, unsupportedWrap(o.WrapAlg)
	}
	if s := meta(plainLenV2); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("s3ec: %s %q is not a length", plainLenV2, s)
		}
		o.plainLen = n
	}
	return o, nil
}

func parseV3(meta func(string) string) (*Object, error) {
	o := &Object{Version: 3, plainLen: -1}
	if c := meta(cipherV3); c != suiteV3Name {
		return nil, fmt.Errorf("s3ec: %s %q, want %s", cipherV3, c, suiteV3Name)
	}
	if meta(keyV3) == "" || meta(wrapAlgV3) == "" {
		// V3 keeps the wrapped key in an instruction file when so set up.
		return nil, &UnsupportedError{Reason: "the wrapped data key is not in the object's metadata (instruction files are not read); write with the object-metadata strategy"}
	}
	var err error
	if o.WrappedKey, err = decodeB64(keyV3, meta(keyV3), 0); err != nil {
		return nil, err
	}
	if o.messageID, err = decodeB64(messageIDV3, meta(messageIDV3), messageIDSize); err != nil {
		return nil, err
	}
	if o.commitment, err = decodeB64(commitmentV3, meta(commitmentV3), commitSize); err != nil {
		return nil, err
	}
	if allZero(o.messageID) {
		return nil, fmt.Errorf("s3ec: %s is all zeros", messageIDV3)
	}
	switch w := meta(wrapAlgV3); w {
	case "12":
		o.WrapAlg = "kms+context"
	default:
		return nil, unsupportedWrap(w)
	}
	if meta(matDescV3) != "" {
		return nil, fmt.Errorf("s3ec: %s is set for a KMS-wrapped key", matDescV3)
	}
	t := meta(contextV3)
	if t == "" {
		t = "{}"
	}
	if o.Context, err = decodeContext(contextV3, t); err != nil {
		return nil, err
	}
	if o.Context[cekContextKey] != suiteV3Name {
		return nil, fmt.Errorf("s3ec: %s lacks %s=%s", contextV3, cekContextKey, suiteV3Name)
	}
	return o, nil
}

func unsupportedWrap(w string) error {
	return &UnsupportedError{Reason: fmt.Sprintf("data key wrapping %q (only AWS KMS with an encryption context, kms+context, is read)", w)}
}

func decodeB64(field, v string, size int) ([]byte, error) {
	if v == "" {
		return nil, fmt.Errorf("s3ec: %s is missing", field)
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("s3ec: %s is not base64", field)
	}
	if size > 0 && len(b) != size {
		return nil, fmt.Errorf("s3ec: %s holds %d bytes, want %d", field, len(b), size)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("s3ec: %s is empty", field)
	}
	return b, nil
}

func decodeContext(field, v string) (map[string]string, error) {
	if v == "" {
		return nil, fmt.Errorf("s3ec: %s is missing", field)
	}
	var m map[string]string
	d := json.NewDecoder(bytes.NewReader([]byte(v)))
	if err := d.Decode(&m); err != nil || d.More() || m == nil {
		return nil, fmt.Errorf("s3ec: %s is not a JSON object of strings", field)
	}
	return m, nil
}

func allZero(b []byte) bool {
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return acc == 0
}

// PlaintextSize is the plaintext length of a body of bodySize bytes, or an
// error when the body cannot hold a tag or contradicts the length the
// metadata states.
func (o *Object) PlaintextSize(bodySize int64) (int64, error) {
	if bodySize < TagSize || bodySize > MaxBodySize {
		return 0, fmt.Errorf("s3ec: a %d-byte body cannot be an S3 Encryption Client object", bodySize)
	}
	n := bodySize - TagSize
	if o.plainLen >= 0 && o.plainLen != n {
		return 0, fmt.Errorf("s3ec: the metadata states %d plaintext bytes, the body holds %d", o.plainLen, n)
	}
	return n, nil
}

// Open decrypts body (ciphertext and tag) with the unwrapped data key, in
// place: the plaintext is body[:len(body)-TagSize]. On any failure it
// returns ErrAuthentication and clears body.
func (o *Object) Open(dataKey []byte, body []byte) ([]byte, error) {
	if len(dataKey) != dataKeySize || len(body) < TagSize {
		clear(body)
		return nil, ErrAuthentication
	}
	aead, nonce, aad, err := o.contentCipher(dataKey)
	if err != nil {
		clear(body)
		return nil, err
	}
	out, err := aead.Open(body[:0], nonce, body, aad)
	if err != nil {
		clear(body)
		return nil, ErrAuthentication
	}
	return out, nil
}

// contentCipher returns the AEAD, nonce and additional data of the body.
func (o *Object) contentCipher(dataKey []byte) (cipher.AEAD, []byte, []byte, error) {
	key, nonce, aad := dataKey, o.iv, []byte(nil)
	if o.Version == 3 {
		var err error
		if key, err = deriveV3(dataKey, o.messageID, o.commitment); err != nil {
			return nil, nil, nil, err
		}
		defer clear(key)
		nonce = bytes.Repeat([]byte{1}, ivSize)
		aad = []byte{suiteV3 >> 8, suiteV3 & 0xff}
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, nil, nil, ErrAuthentication
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, nil, nil, ErrAuthentication
	}
	return aead, nonce, aad, nil
}

// deriveV3 checks the key commitment, in constant time, and only then
// derives the content key (HKDF-SHA512, salt the message id, info the
// suite id followed by "COMMITKEY" or "DERIVEKEY").
func deriveV3(dataKey, messageID, commitment []byte) ([]byte, error) {
	prk, err := hkdf.Extract(sha512.New, dataKey, messageID)
	if err != nil {
		return nil, ErrAuthentication
	}
	defer clear(prk)
	info := func(label string) string { return string([]byte{suiteV3 >> 8, suiteV3 & 0xff}) + label }
	ck, err := hkdf.Expand(sha512.New, prk, info("COMMITKEY"), commitSize)
	if err != nil || subtle.ConstantTimeCompare(ck, commitment) != 1 {
		return nil, ErrAuthentication
	}
	ek, err := hkdf.Expand(sha512.New, prk, info("DERIVEKEY"), dataKeySize)
	if err != nil {
		return nil, ErrAuthentication
	}
	return ek, nil
}
