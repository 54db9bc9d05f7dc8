package envelope

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/s3seal/s3seal/crypto/internal/gcm"
	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/stream"
)

// ErrAuthentication is the error (shared with package stream) that every
// authentication failure matches under errors.Is.
var ErrAuthentication = stream.ErrAuthentication

// HKDF info labels, part of the format: "s3seal", the version byte and
// the algorithm byte, then a label.
const (
	labelCommit  = "commit"
	labelContent = "content"
	labelSeal    = "seal"
	labelUpload  = "upload"
	labelParts   = "parts"
)

// label returns the HKDF info prefix of name in format version v.
func label(v uint8, name string) string {
	return "s3seal" + string([]byte{v, byte(AES256GCM)}) + name
}

// ObjectKey is an object's unsealed key. It derives the content key of each
// segment. It is safe for concurrent use until Zero is called.
type ObjectKey struct {
	version uint8
	key     [ObjectKeySize]byte
	prk     []byte // HKDF-Extract(SHA-256, salt = none, IKM = key)
}

func newObjectKey(version uint8, key []byte) (*ObjectKey, error) {
	k := &ObjectKey{version: version}
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

// Version returns the format version of the object the key belongs to.
func (k *ObjectKey) Version() uint8 { return k.version }

// commitment returns HKDF-Expand(PRK, "s3seal" V 01 "commit", 32).
func (k *ObjectKey) commitment() []byte {
	return k.expand(label(k.version, labelCommit), CommitmentSize)
}

// SegmentKey returns the content key of segment n of a version 1 object (0
// for a single PUT, the part number for a multipart upload):
// HKDF-Expand(PRK, "s3seal" 01 01 "content" || BE32(n), 32). It has the type
// stream.KeyFunc.
func (k *ObjectKey) SegmentKey(n uint32) []byte {
	return k.expand(label(k.version, labelContent)+string(binary.BigEndian.AppendUint32(nil, n)), stream.KeySize)
}

// SegmentKeyV2 returns the content key of one encryption of segment n of a
// version 2 object, the one that drew salt: HKDF-Expand(PRK, "s3seal" 02 01
// "content" || BE32(n) || salt, 32). It has the type stream.SaltedKeyFunc.
func (k *ObjectKey) SegmentKeyV2(n uint32, salt *[stream.SaltSize]byte) []byte {
	info := binary.BigEndian.AppendUint32([]byte(label(k.version, labelContent)), n)
	return k.expand(string(append(info, salt[:]...)), stream.KeySize)
}

// EncryptSegment returns the stored form of segment n of a version 2
// object (0 for a single PUT, the part number for a part) with the
// plaintext src yields, encrypted under a fresh salt: every call, for the
// same n too, encrypts under a new key. The reader's Salt is what the
// part-set record binds. opts may be nil.
func (k *ObjectKey) EncryptSegment(n uint32, src io.Reader, opts *stream.EncryptOptions) (*stream.EncryptReaderV2, error) {
	if k.version != VersionV2 {
		return nil, fmt.Errorf("envelope: EncryptSegment writes version 2; this is a version %d object", k.version)
	}
	return stream.NewEncryptReaderV2(k.SegmentKeyV2, n, src, opts)
}

// UploadTag authenticates the store's id of a multipart upload for this
// object key: HMAC-SHA256 keyed with HKDF-Expand(PRK, "s3seal" V 01
// "upload", 32) over the id. The proxy puts it in the upload id it hands
// out, so that an upload id cannot be moved to another upload of the same
// object name (FORMAT.md, "Multipart uploads").
func (k *ObjectKey) UploadTag(uploadID string) []byte {
	return k.mac(labelUpload, []byte(uploadID))
}

// mac returns HMAC-SHA256 under HKDF-Expand(PRK, "s3seal" V 01 name, 32)
// of msg.
func (k *ObjectKey) mac(name string, msg []byte) []byte {
	key := k.expand(label(k.version, name), 32)
	defer clear(key)
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// Zero overwrites the key material.
func (k *ObjectKey) Zero() {
	if k == nil {
		return
	}
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
	// Rand is the source of the object key and the seal salt, and in
	// version 2 of the seal's nonce. nil means crypto/rand.Reader and, for
	// the nonce, the random source inside Go's cryptographic module (the
	// only way to seal in FIPS 140-only mode). Tests set it for known
	// answers.
	Rand io.Reader
	// StoreWrappedKey is called by the version 2 writers when the data
	// key's wrapped form is longer than keys.MaxWrappedSize (post-quantum
	// age recipients' are): the header then holds ref, the SHA-256 of
	// wrapped, and the caller stores wrapped as the key object
	// KeyObjectName(ref) before the object is written (FORMAT.md, section
	// 6.5). nil makes such data keys an error.
	StoreWrappedKey func(ref [WrappedKeyRefSize]byte, wrapped []byte) error
}

// appendName appends LP(bucket) || LP(key): each length-prefixed, so that
// ("ab", "c") and ("a", "bc") differ.
func appendName(b []byte, bucket, key string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(bucket)))
	b = append(b, bucket...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(key)))
	return append(b, key...)
}

// sealKey derives the key that seals the object key of bucket/key:
// HKDF-SHA256(IKM = data key, salt = seal salt, info = "s3seal" V 01 "seal"
// || BE32(len(bucket)) || bucket || BE32(len(key)) || key), 32 bytes.
func sealKey(version uint8, dataKey *[keys.DataKeySize]byte, salt []byte, bucket, key string) ([]byte, error) {
	if bucket == "" || key == "" {
		return nil, errors.New("envelope: bucket and key must not be empty")
	}
	info := appendName([]byte(label(version, labelSeal)), bucket, key)
	return hkdf.Key(sha256.New, dataKey[:], salt, string(info), 32)
}

// sealBlock returns the AES block cipher of the seal key.
func sealBlock(version uint8, dataKey *[keys.DataKeySize]byte, salt []byte, bucket, key string) (cipher.Block, error) {
	sk, err := sealKey(version, dataKey, salt, bucket, key)
	if err != nil {
		return nil, err
	}
	defer clear(sk)
	return aes.NewCipher(sk)
}

// The version 1 seal key is fresh for every seal (random salt), so a fixed
// nonce is safe. Version 2 adds a random nonce, which is how FIPS 140-only
// mode lets AES-GCM encrypt at all.
var zeroNonce [12]byte

// Seal creates a version 1 object: it draws a random object key and seals
// it under the data key for (p.Bucket, p.Key). provider is the
// keys.Provider's Name. It returns the object key (for the content) and the
// header to store. New objects are written with SealV2; Seal remains for
// the version 1 vectors and for tests that need version 1 objects to read.
func Seal(dk *keys.DataKey, provider string, p Params) (*ObjectKey, Header, error) {
	return sealNew(Version, dk, provider, p)
}

// SealV2 is Seal for format version 2, which every new object should use:
// its segments are encrypted with ObjectKey.EncryptSegment, and a multipart
// object gets a part-set record at CompleteMultipartUpload
// (ObjectKey.SealPartSet).
func SealV2(dk *keys.DataKey, provider string, p Params) (*ObjectKey, Header, error) {
	return sealNew(VersionV2, dk, provider, p)
}

func sealNew(version uint8, dk *keys.DataKey, provider string, p Params) (*ObjectKey, Header, error) {
	random := p.Rand
	if random == nil {
		random = rand.Reader
	}
	var raw [ObjectKeySize]byte
	if _, err := io.ReadFull(random, raw[:]); err != nil {
		return nil, nil, fmt.Errorf("envelope: reading randomness: %w", err)
	}
	ok, err := newObjectKey(version, raw[:])
	clear(raw[:])
	if err != nil {
		return nil, nil, err
	}
	w := dk.WrappedKey
	var flags byte
	if version == VersionV2 && len(w.Ciphertext) > keys.MaxWrappedSize {
		if p.StoreWrappedKey == nil {
			ok.Zero()
			return nil, nil, fmt.Errorf("envelope: a wrapped key of %d bytes needs a key object, and no StoreWrappedKey was given", len(w.Ciphertext))
		}
		ref := sha256.Sum256(w.Ciphertext)
		if err := p.StoreWrappedKey(ref, w.Ciphertext); err != nil {
			ok.Zero()
			return nil, nil, err
		}
		w.Ciphertext, flags = ref[:], flagKeyObject
	}
	h, err := seal(ok, &dk.Plaintext, provider, w, flags, p, random)
	if err != nil {
		ok.Zero()
		return nil, nil, err
	}
	return ok, h, nil
}

// seal builds the header of object key ok, in ok's format version. extra
// holds flags beyond multipart (flagKeyObject: w.Ciphertext is a key
// object's reference).
func seal(ok *ObjectKey, dataKey *[keys.DataKeySize]byte, provider string, w keys.WrappedKey, extra byte, p Params, random io.Reader) (Header, error) {
	v := ok.version
	prov, err := ProviderFromName(provider)
	if err != nil {
		return nil, err
	}
	if v == Version && prov > ProviderPKCS11 {
		return nil, fmt.Errorf("envelope: format version 1 cannot name key provider %s", prov)
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
	maxSize := int64(stream.MaxSegmentSize)
	if v == VersionV2 {
		maxSize = stream.MaxSegmentSizeV2
	}
	if p.Size < 0 || p.Size > maxSize {
		return nil, fmt.Errorf("envelope: plaintext size %d out of range", p.Size)
	}
	if err := p.Checksum.Validate(); err != nil {
		return nil, err
	}
	if random == nil {
		random = rand.Reader
	}
	h := make([]byte, 0, MaxSize)
	flags := extra
	if p.Multipart {
		flags |= flagMultipart
	}
	h = append(h, v, byte(AES256GCM), flags, byte(prov), byte(len(w.KeyID)))
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
	block, err := sealBlock(v, dataKey, salt, p.Bucket, p.Key)
	if err != nil {
		return nil, err
	}
	if h, err = sealObjectKey(block, v, h, ok.key[:], h[:aadLen], p.Rand); err != nil {
		return nil, err
	}
	return ParseBinary(h)
}

// sealObjectKey appends the sealed object key to h. Version 1 seals under
// a fixed nonce. Version 2 draws a random nonce inside the cryptographic
// module and stores it first, unless random (the caller's Params.Rand, for
// known answers) supplies it.
func sealObjectKey(block cipher.Block, v uint8, h, objectKey, aad []byte, random io.Reader) ([]byte, error) {
	if v == VersionV2 && random == nil {
		aead, err := cipher.NewGCMWithRandomNonce(block)
		if err != nil {
			return nil, err
		}
		return aead.Seal(h, nil, objectKey, aad), nil
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		if v == Version {
			return nil, fmt.Errorf("envelope: a version 1 header cannot be sealed in FIPS 140-only mode, where AES-GCM may not encrypt under its fixed nonce; copy or rotate the object by re-encrypting it to version 2: %w", err)
		}
		return nil, fmt.Errorf("envelope: chosen seal nonces are not available here: %w", err)
	}
	nonce := zeroNonce[:]
	if v == VersionV2 {
		nonce = make([]byte, len(zeroNonce))
		if _, err := io.ReadFull(random, nonce); err != nil {
			return nil, fmt.Errorf("envelope: reading randomness: %w", err)
		}
		h = append(h, nonce...)
	}
	return aead.Seal(h, nonce, objectKey, aad), nil
}

// Unseal opens the object key of an object named bucket/key with its
// unwrapped data key, and checks the key commitment before returning it. A
// wrong name, a wrong data key or any altered field fails with
// ErrAuthentication.
func (h Header) Unseal(dataKey *[keys.DataKeySize]byte, bucket, key string) (*ObjectKey, error) {
	v := h.Version()
	block, err := sealBlock(v, dataKey, h.salt(), bucket, key)
	if err != nil {
		return nil, err
	}
	var raw [ObjectKeySize]byte
	defer clear(raw[:])
	if v == VersionV2 {
		aead, err := cipher.NewGCMWithRandomNonce(block)
		if err != nil {
			return nil, err
		}
		_, err = aead.Open(raw[:0], nil, h.sealedKey(), h.aad())
		if err != nil {
			return nil, ErrAuthentication
		}
	} else {
		aead, err := gcm.NewOpener(block)
		if err != nil {
			return nil, err
		}
		if _, err := aead.Open(raw[:0], zeroNonce[:], h.sealedKey(), h.aad()); err != nil {
			return nil, ErrAuthentication
		}
	}
	return committedKey(v, raw[:], h)
}

// committedKey returns the object key raw of format version v after
// checking it against h's key commitment, which every key opened from a
// seal must pass before it is used.
func committedKey(v uint8, raw []byte, h Header) (*ObjectKey, error) {
	ok, err := newObjectKey(v, raw)
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
// ciphertext, same format version) under a new name, as CopyObject needs,
// with a fresh salt. random is crypto/rand.Reader if nil.
func (h Header) Reseal(dataKey *[keys.DataKeySize]byte, fromBucket, fromKey, toBucket, toKey string, random io.Reader) (Header, error) {
	ok, err := h.Unseal(dataKey, fromBucket, fromKey)
	if err != nil {
		return nil, err
	}
	defer ok.Zero()
	return seal(ok, dataKey, h.Provider().String(), keys.WrappedKey{KeyID: h.KeyID(), Ciphertext: h.WrappedKey()}, h[2]&flagKeyObject, h.params(toBucket, toKey), random)
}

// Rewrap returns the header with the data key's wrapping replaced by w
// (the same data key, rewrapped, e.g. under a new master key), the object
// key re-sealed accordingly. dataKey is the (unchanged) unwrapped data key.
// A version 2 header may move into or out of a key object: a w.Ciphertext
// longer than keys.MaxWrappedSize needs storeWrappedKey (see
// Params.StoreWrappedKey), which may otherwise be nil.
func (h Header) Rewrap(dataKey *[keys.DataKeySize]byte, bucket, key string, provider string, w keys.WrappedKey, random io.Reader) (Header, error) {
	return h.rewrap(dataKey, bucket, key, provider, w, random, nil)
}

func (h Header) rewrap(dataKey *[keys.DataKeySize]byte, bucket, key string, provider string, w keys.WrappedKey, random io.Reader, storeWrappedKey func([WrappedKeyRefSize]byte, []byte) error) (Header, error) {
	ok, err := h.Unseal(dataKey, bucket, key)
	if err != nil {
		return nil, err
	}
	defer ok.Zero()
	var extra byte
	if h.Version() == VersionV2 && len(w.Ciphertext) > keys.MaxWrappedSize {
		if storeWrappedKey == nil {
			return nil, fmt.Errorf("envelope: a wrapped key of %d bytes needs a key object", len(w.Ciphertext))
		}
		ref := sha256.Sum256(w.Ciphertext)
		if err := storeWrappedKey(ref, w.Ciphertext); err != nil {
			return nil, err
		}
		w.Ciphertext, extra = ref[:], flagKeyObject
	}
	return seal(ok, dataKey, provider, w, extra, h.params(bucket, key), random)
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

// KeyObjectNeededError reports a header whose wrapped data key lives in a
// key object: fetch the object KeyObjectName(Ref) and call
// OpenWithKeyObject (or CopyWithKeyObject, RotateWithKeyObject).
type KeyObjectNeededError struct {
	Ref [WrappedKeyRefSize]byte
}

func (e *KeyObjectNeededError) Error() string {
	return "envelope: the object's wrapped data key is in the key object " + KeyObjectName(e.Ref)
}

// KeyObjectPrefix is where key objects live in a bucket.
const KeyObjectPrefix = ".s3seal/keys/"

// KeyObjectName is the name, within the object's bucket, of the key object
// holding the wrapped data key with reference ref (its SHA-256):
// ".s3seal/keys/" and the reference in lowercase hex.
func KeyObjectName(ref [WrappedKeyRefSize]byte) string {
	return KeyObjectPrefix + hex.EncodeToString(ref[:])
}

// wrappedKey returns the wrapped data key of h: from the header, or the
// key object content given, which must hash to the header's reference.
func (h Header) wrappedKey(keyObject []byte) ([]byte, error) {
	if !h.KeyObject() {
		return h.WrappedKey(), nil
	}
	ref := [WrappedKeyRefSize]byte(h.WrappedKey())
	if keyObject == nil {
		return nil, &KeyObjectNeededError{Ref: ref}
	}
	if sha256.Sum256(keyObject) != ref {
		return nil, &authError{errors.New("the key object does not match the header's reference")}
	}
	return keyObject, nil
}

// unwrap obtains the data key of h from kp (or, for a kp that fronts
// several kinds of provider, from the one of h's kind).
func unwrap(ctx context.Context, kp keys.Provider, h Header, keyObject []byte) ([keys.DataKeySize]byte, error) {
	src, err := providerFor(kp, h)
	if err != nil {
		return [keys.DataKeySize]byte{}, err
	}
	wrapped, err := h.wrappedKey(keyObject)
	if err != nil {
		return [keys.DataKeySize]byte{}, err
	}
	dk, err := src.Decrypt(ctx, wrapped, h.KeyID())
	if err != nil {
		if keys.IsWrongKey(err) {
			return dk, &authError{err}
		}
		return dk, err
	}
	return dk, nil
}

// New creates a version 1 object with a data key from kp (generated or
// reused, as kp's policy says; wrap kp in a keys.Cache to reuse). New
// objects are written with NewV2; New remains for tests that need version 1
// objects to read (what earlier releases wrote).
func New(ctx context.Context, kp keys.Provider, p Params) (*ObjectKey, Header, error) {
	return createObject(ctx, kp, p, Seal)
}

// NewV2 is New for format version 2.
func NewV2(ctx context.Context, kp keys.Provider, p Params) (*ObjectKey, Header, error) {
	return createObject(ctx, kp, p, SealV2)
}

func createObject(ctx context.Context, kp keys.Provider, p Params, seal func(*keys.DataKey, string, Params) (*ObjectKey, Header, error)) (*ObjectKey, Header, error) {
	dk, err := kp.GenerateDataKey(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer dk.Zero()
	return seal(&dk, kp.Name(), p)
}

// Open unwraps the data key of h with kp and unseals the object key for
// bucket/key. A header whose wrapped key is in a key object fails with
// *KeyObjectNeededError; see OpenWithKeyObject.
func Open(ctx context.Context, kp keys.Provider, h Header, bucket, key string) (*ObjectKey, error) {
	return OpenWithKeyObject(ctx, kp, h, bucket, key, nil)
}

// OpenWithKeyObject is Open for a header whose wrapped data key is in a key
// object, whose content keyObject is (checked against the header's
// reference). keyObject is ignored, and may be nil, for other headers.
func OpenWithKeyObject(ctx context.Context, kp keys.Provider, h Header, bucket, key string, keyObject []byte) (*ObjectKey, error) {
	dk, err := unwrap(ctx, kp, h, keyObject)
	if err != nil {
		return nil, err
	}
	defer clear(dk[:])
	return h.Unseal(&dk, bucket, key)
}

// Copy returns the header for a copy of the object at srcBucket/srcKey to
// dstBucket/dstKey (the ciphertext is copied as is, server-side). A header
// whose wrapped key is in a key object fails with *KeyObjectNeededError;
// see CopyWithKeyObject.
func Copy(ctx context.Context, kp keys.Provider, h Header, srcBucket, srcKey, dstBucket, dstKey string, random io.Reader) (Header, error) {
	return CopyWithKeyObject(ctx, kp, h, srcBucket, srcKey, dstBucket, dstKey, random, nil)
}

// CopyWithKeyObject is Copy with the key object's content, for headers
// that reference one. The copy references the same key object, which must
// exist in the destination bucket too.
func CopyWithKeyObject(ctx context.Context, kp keys.Provider, h Header, srcBucket, srcKey, dstBucket, dstKey string, random io.Reader, keyObject []byte) (Header, error) {
	dk, err := unwrap(ctx, kp, h, keyObject)
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
// another kind moves to the active one. A header whose wrapped key is in a
// key object fails with *KeyObjectNeededError; see RotateWithKeyObject.
func Rotate(ctx context.Context, kp keys.Provider, h Header, bucket, key string, random io.Reader) (Header, error) {
	return RotateWithKeyObject(ctx, kp, h, bucket, key, random, nil, nil)
}

// RotateWithKeyObject is Rotate for headers whose wrapped key is, before
// or after, in a key object: keyObject is the current key object's content
// (nil if none), and storeWrappedKey stores a new one when the rewrapped
// key needs it (see Params.StoreWrappedKey).
func RotateWithKeyObject(ctx context.Context, kp keys.Provider, h Header, bucket, key string, random io.Reader, keyObject []byte, storeWrappedKey func([WrappedKeyRefSize]byte, []byte) error) (Header, error) {
	dk, err := unwrap(ctx, kp, h, keyObject)
	if err != nil {
		return nil, err
	}
	defer clear(dk[:])
	wrapped, err := h.wrappedKey(keyObject)
	if err != nil {
		return nil, err
	}
	var w keys.WrappedKey
	if mv, ok := kp.(keys.Mover); ok {
		w, err = mv.Move(ctx, h.Provider().String(), wrapped, h.KeyID(), &dk)
	} else {
		w, err = kp.Rewrap(ctx, wrapped, h.KeyID())
	}
	if err != nil {
		return nil, err
	}
	return h.rewrap(&dk, bucket, key, kp.Name(), w, random, storeWrappedKey)
}
