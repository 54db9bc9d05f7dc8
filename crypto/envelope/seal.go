package envelope

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/stream"
)

// ErrAuthentication is the error (shared with package stream) that every
// authentication failure matches under errors.Is.
var ErrAuthentication = stream.ErrAuthentication

// HKDF info prefixes, part of the format: "s3seal", the version byte and
// the algorithm byte, then a label.
const (
	labelCommit  = "s3seal\x01\x01commit"
	labelContent = "s3seal\x01\x01content"
	labelSeal    = "s3seal\x01\x01seal"
	labelUpload  = "s3seal\x01\x01upload"
)

// ObjectKey is an object's unsealed key. It derives the content key of each
// segment. It is safe for concurrent use until Zero is called.
type ObjectKey struct {
	key [ObjectKeySize]byte
	prk []byte // HKDF-Extract(SHA-256, salt = none, IKM = key)
}

func newObjectKey(key []byte) (*ObjectKey, error) {
	k := &ObjectKey{}
	copy(k.key[:], key)
	prk, err := hkdf.Extract(sha256.New, k.key[:], nil)
	if err != nil {
		return nil, err
	}
	k.prk = prk
	return k, nil
}

func (k *ObjectKey) expand(info string, n int) []byte {
	b, err := hkdf.Expand(sha256.New, k.prk, info, n)
	if err != nil {
		panic("envelope: internal error: " + err.Error())
	}
	return b
}

// commitment returns HKDF-Expand(PRK, "s3seal" 01 01 "commit", 32).
func (k *ObjectKey) commitment() []byte { return k.expand(labelCommit, CommitmentSize) }

// SegmentKey returns the content key of segment n (0 for a single PUT, the
// part number for a multipart upload): HKDF-Expand(PRK, "s3seal" 01 01
// "content" || BE32(n), 32). It has the type stream.KeyFunc.
func (k *ObjectKey) SegmentKey(n uint32) []byte {
	var info [len(labelContent) + 4]byte
	copy(info[:], labelContent)
	binary.BigEndian.PutUint32(info[len(labelContent):], n)
	return k.expand(string(info[:]), stream.KeySize)
}

// UploadTag authenticates the store's id of a multipart upload for this
// object key: HMAC-SHA256 keyed with HKDF-Expand(PRK, "s3seal" 01 01
// "upload", 32) over the id. The proxy puts it in the upload id it hands
// out, so that an upload id cannot be moved to another upload of the same
// object name (FORMAT.md, "Multipart uploads").
func (k *ObjectKey) UploadTag(uploadID string) []byte {
	key := k.expand(labelUpload, 32)
	defer clear(key)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(uploadID))
	return m.Sum(nil)
}

// Zero overwrites the key material.
func (k *ObjectKey) Zero() {
	clear(k.key[:])
	clear(k.prk)
}

// Params describe a new object.
type Params struct {
	// Bucket and Key name the object. They are bound into the sealing, so
	// the object opens only under this name (or after Reseal).
	Bucket, Key string
	// Multipart is set for a multipart upload, whose parts are segments
	// 1..N; otherwise the object is one segment, number 0.
	Multipart bool
	// Size is the plaintext size of a single PUT (authenticated); 0 for a
	// multipart upload.
	Size int64
	// Checksum is a checksum of the plaintext the client declared before
	// the body (an x-amz-checksum-* header), if any.
	Checksum stream.Checksum
	// Rand is the source of the object key and the seal salt. nil means
	// crypto/rand.Reader.
	Rand io.Reader
}

// sealKey derives the key that seals the object key of bucket/key:
// HKDF-SHA256(IKM = data key, salt = seal salt, info = "s3seal" 01 01 "seal"
// || BE32(len(bucket)) || bucket || BE32(len(key)) || key), 32 bytes.
func sealKey(dataKey *[keys.DataKeySize]byte, salt []byte, bucket, key string) ([]byte, error) {
	if bucket == "" || key == "" {
		return nil, errors.New("envelope: bucket and key must not be empty")
	}
	var info bytes.Buffer
	info.WriteString(labelSeal)
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(bucket)))
	info.Write(n[:])
	info.WriteString(bucket)
	binary.BigEndian.PutUint32(n[:], uint32(len(key)))
	info.Write(n[:])
	info.WriteString(key)
	return hkdf.Key(sha256.New, dataKey[:], salt, info.String(), 32)
}

func sealAEAD(dataKey *[keys.DataKeySize]byte, salt []byte, bucket, key string) (cipher.AEAD, error) {
	sk, err := sealKey(dataKey, salt, bucket, key)
	if err != nil {
		return nil, err
	}
	defer clear(sk)
	block, err := aes.NewCipher(sk)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// The seal key is fresh for every seal (random salt), so a fixed nonce is
// safe.
var zeroNonce [12]byte

// Seal creates an object: it draws a random object key and seals it under
// the data key for (p.Bucket, p.Key). provider is the keys.Provider's Name.
// It returns the object key (for the content) and the header to store.
func Seal(dk *keys.DataKey, provider string, p Params) (*ObjectKey, Header, error) {
	random := p.Rand
	if random == nil {
		random = rand.Reader
	}
	var raw [ObjectKeySize]byte
	if _, err := io.ReadFull(random, raw[:]); err != nil {
		return nil, nil, fmt.Errorf("envelope: reading randomness: %w", err)
	}
	ok, err := newObjectKey(raw[:])
	clear(raw[:])
	if err != nil {
		return nil, nil, err
	}
	h, err := seal(ok, &dk.Plaintext, provider, dk.WrappedKey, p, random)
	if err != nil {
		ok.Zero()
		return nil, nil, err
	}
	return ok, h, nil
}

// seal builds the header of object key ok.
func seal(ok *ObjectKey, dataKey *[keys.DataKeySize]byte, provider string, w keys.WrappedKey, p Params, random io.Reader) (Header, error) {
	prov, err := ProviderFromName(provider)
	if err != nil {
		return nil, err
	}
	if len(w.KeyID) == 0 || len(w.KeyID) > keys.MaxKeyIDSize {
		return nil, fmt.Errorf("envelope: key id of %d bytes (1..%d supported)", len(w.KeyID), keys.MaxKeyIDSize)
	}
	for i := 0; i < len(w.KeyID); i++ {
		if c := w.KeyID[i]; c < 0x21 || c > 0x7e {
			return nil, errors.New("envelope: key id is not printable ASCII")
		}
	}
	if len(w.Ciphertext) == 0 || len(w.Ciphertext) > keys.MaxWrappedSize {
		return nil, fmt.Errorf("envelope: wrapped key of %d bytes (1..%d supported)", len(w.Ciphertext), keys.MaxWrappedSize)
	}
	if p.Multipart && p.Size != 0 {
		return nil, errors.New("envelope: a multipart object has no plaintext size up front")
	}
	if p.Size < 0 || p.Size > stream.MaxSegmentSize {
		return nil, fmt.Errorf("envelope: plaintext size %d out of range", p.Size)
	}
	if err := p.Checksum.Validate(); err != nil {
		return nil, err
	}
	if random == nil {
		random = rand.Reader
	}
	h := make([]byte, 0, MaxSize)
	var flags byte
	if p.Multipart {
		flags |= flagMultipart
	}
	h = append(h, Version, byte(AES256GCM), flags, byte(prov), byte(len(w.KeyID)))
	h = append(h, w.KeyID...)
	h = binary.BigEndian.AppendUint16(h, uint16(len(w.Ciphertext)))
	h = append(h, w.Ciphertext...)
	h = binary.BigEndian.AppendUint64(h, uint64(p.Size))
	h = append(h, byte(p.Checksum.Algorithm))
	h = append(h, p.Checksum.Value...)
	h = append(h, ok.commitment()...)
	aadLen := len(h)
	salt := make([]byte, SaltSize)
	if _, err := io.ReadFull(random, salt); err != nil {
		return nil, fmt.Errorf("envelope: reading randomness: %w", err)
	}
	h = append(h, salt...)
	aead, err := sealAEAD(dataKey, salt, p.Bucket, p.Key)
	if err != nil {
		return nil, err
	}
	h = aead.Seal(h, zeroNonce[:], ok.key[:], h[:aadLen])
	return ParseBinary(h)
}

// Unseal opens the object key of an object named bucket/key with its
// unwrapped data key, and checks the key commitment before returning it. A
// wrong name, a wrong data key or any altered field fails with
// ErrAuthentication.
func (h Header) Unseal(dataKey *[keys.DataKeySize]byte, bucket, key string) (*ObjectKey, error) {
	aead, err := sealAEAD(dataKey, h.salt(), bucket, key)
	if err != nil {
		return nil, err
	}
	var raw [ObjectKeySize]byte
	defer clear(raw[:])
	if _, err := aead.Open(raw[:0], zeroNonce[:], h.sealedKey(), h.aad()); err != nil {
		return nil, ErrAuthentication
	}
	ok, err := newObjectKey(raw[:])
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(ok.commitment(), h.Commitment()) != 1 {
		ok.Zero()
		return nil, ErrAuthentication
	}
	return ok, nil
}

// Reseal returns the header of the same object (same object key, same
// ciphertext) under a new name, as CopyObject needs, with a fresh salt.
// random is crypto/rand.Reader if nil.
func (h Header) Reseal(dataKey *[keys.DataKeySize]byte, fromBucket, fromKey, toBucket, toKey string, random io.Reader) (Header, error) {
	ok, err := h.Unseal(dataKey, fromBucket, fromKey)
	if err != nil {
		return nil, err
	}
	defer ok.Zero()
	return seal(ok, dataKey, h.Provider().String(), keys.WrappedKey{KeyID: h.KeyID(), Ciphertext: h.WrappedKey()}, h.params(toBucket, toKey), random)
}

// Rewrap returns the header with the data key's wrapping replaced by w
// (the same data key, rewrapped, e.g. under a new master key), the object
// key re-sealed accordingly. dataKey is the (unchanged) unwrapped data key.
func (h Header) Rewrap(dataKey *[keys.DataKeySize]byte, bucket, key string, provider string, w keys.WrappedKey, random io.Reader) (Header, error) {
	ok, err := h.Unseal(dataKey, bucket, key)
	if err != nil {
		return nil, err
	}
	defer ok.Zero()
	return seal(ok, dataKey, provider, w, h.params(bucket, key), random)
}

func (h Header) params(bucket, key string) Params {
	return Params{Bucket: bucket, Key: key, Multipart: h.Multipart(), Size: h.PlaintextSize(), Checksum: h.Checksum()}
}

// ProviderMismatchError reports an object whose data key was wrapped by
// another kind of key provider than the one configured.
type ProviderMismatchError struct {
	Stored     Provider
	Configured string
}

func (e *ProviderMismatchError) Error() string {
	return fmt.Sprintf("envelope: object's data key was wrapped by key provider %s, but %s is configured", e.Stored, e.Configured)
}

// authError marks a key problem as an authentication failure while keeping
// its cause reachable.
type authError struct{ cause error }

func (e *authError) Error() string        { return "envelope: cannot open object key: " + e.cause.Error() }
func (e *authError) Unwrap() error        { return e.cause }
func (e *authError) Is(target error) bool { return target == ErrAuthentication }

// providerFor returns the provider that unwraps h's data key: kp if it is
// of the stored kind, else the one of that kind kp fronts (keys.Router).
func providerFor(kp keys.Provider, h Header) (keys.Provider, error) {
	kind := h.Provider().String()
	if kind == kp.Name() {
		return kp, nil
	}
	if r, ok := kp.(keys.Router); ok {
		if p, ok := r.For(kind); ok {
			return p, nil
		}
	}
	return nil, &authError{&ProviderMismatchError{Stored: h.Provider(), Configured: kp.Name()}}
}

// unwrap obtains the data key of h from kp.
func unwrap(ctx context.Context, kp keys.Provider, h Header) ([keys.DataKeySize]byte, error) {
	src, err := providerFor(kp, h)
	if err != nil {
		return [keys.DataKeySize]byte{}, err
	}
	dk, err := src.Decrypt(ctx, h.WrappedKey(), h.KeyID())
	if err != nil {
		if keys.IsWrongKey(err) {
			return dk, &authError{err}
		}
		return dk, err
	}
	return dk, nil
}

// New creates an object with a data key from kp (generated or reused, as
// kp's policy says; wrap kp in a keys.Cache to reuse).
func New(ctx context.Context, kp keys.Provider, p Params) (*ObjectKey, Header, error) {
	dk, err := kp.GenerateDataKey(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer dk.Zero()
	return Seal(&dk, kp.Name(), p)
}

// Open unwraps the data key of h with kp and unseals the object key for
// bucket/key.
func Open(ctx context.Context, kp keys.Provider, h Header, bucket, key string) (*ObjectKey, error) {
	dk, err := unwrap(ctx, kp, h)
	if err != nil {
		return nil, err
	}
	defer clear(dk[:])
	return h.Unseal(&dk, bucket, key)
}

// Copy returns the header for a copy of the object at srcBucket/srcKey to
// dstBucket/dstKey (the ciphertext is copied as is, server-side).
func Copy(ctx context.Context, kp keys.Provider, h Header, srcBucket, srcKey, dstBucket, dstKey string, random io.Reader) (Header, error) {
	dk, err := unwrap(ctx, kp, h)
	if err != nil {
		return nil, err
	}
	defer clear(dk[:])
	return h.Reseal(&dk, srcBucket, srcKey, dstBucket, dstKey, random)
}

// Rotate returns the header with the data key rewrapped under kp's active
// master key (keys.Provider.Rewrap: KMS ReEncrypt, or unwrap and wrap for a
// key ring), for key rotation without touching the object's data. If kp
// fronts several kinds of provider (keys.Mover, keys.Router), an object of
// another kind moves to the active one.
func Rotate(ctx context.Context, kp keys.Provider, h Header, bucket, key string, random io.Reader) (Header, error) {
	dk, err := unwrap(ctx, kp, h)
	if err != nil {
		return nil, err
	}
	defer clear(dk[:])
	var w keys.WrappedKey
	if mv, ok := kp.(keys.Mover); ok {
		w, err = mv.Move(ctx, h.Provider().String(), h.WrappedKey(), h.KeyID(), &dk)
	} else {
		w, err = kp.Rewrap(ctx, h.WrappedKey(), h.KeyID())
	}
	if err != nil {
		return nil, err
	}
	return h.Rewrap(&dk, bucket, key, kp.Name(), w, random)
}
