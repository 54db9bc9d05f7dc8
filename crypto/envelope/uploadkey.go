package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Upload keys (FORMAT.md, section 8.4). A deployment whose replicas cannot
// unwrap data keys (a write-only gateway: its key provider holds only age
// recipients) cannot recover a multipart upload's object key from the
// header in the upload id as other deployments do. It seals the object key
// into the upload id under an upload key its replicas share instead:
//
//	salt = R(32)
//	UK'  = HKDF(IKM = upload key, salt = salt, info = "s3seal" 02 01 "upload-key", L = 32)
//	A    = "s3seal" 02 01 "upload-key" || LP(bucket) || LP(key) || LP(store upload id) || header
//	E    = salt || nonce || GCM-Seal(UK', nonce = R(12), P = OK, A)     (92 bytes)
//
// Opening checks the tag and then the header's key commitment, so the
// object key opens only for the upload, name and header it was sealed for.

// UploadKeySize is the size of an upload key.
const UploadKeySize = 32

// UploadSealedSize is the size of an object key sealed under an upload
// key: salt, nonce, sealed key and tag.
const UploadSealedSize = SaltSize + 12 + ObjectKeySize + 16

const labelUploadKey = "upload-key"

// uploadKeyAEAD returns the AEAD under the key derived from uk and salt.
func uploadKeyAEAD(uk *[UploadKeySize]byte, salt []byte) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, uk[:], salt, label(VersionV2, labelUploadKey), 32)
	if err != nil {
		return nil, err
	}
	defer clear(k)
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithRandomNonce(block)
}

// uploadKeyAAD is A above.
func uploadKeyAAD(h Header, bucket, key, storeID string) []byte {
	a := appendName([]byte(label(VersionV2, labelUploadKey)), bucket, key)
	a = binary.BigEndian.AppendUint32(a, uint32(len(storeID)))
	a = append(a, storeID...)
	return append(a, h...)
}

// SealForUpload seals the object key k of the multipart upload with header
// h (which k must open: its commitment is checked) at bucket/key, whose
// store upload id is storeID, under the upload key uk. random is
// crypto/rand.Reader if nil; the GCM nonce is always drawn inside the
// cryptographic module.
func (k *ObjectKey) SealForUpload(uk *[UploadKeySize]byte, h Header, bucket, key, storeID string, random io.Reader) ([]byte, error) {
	if k.version != VersionV2 || h.Version() != VersionV2 || !h.Multipart() {
		return nil, errors.New("envelope: only version 2 multipart uploads are sealed under an upload key")
	}
	if subtle.ConstantTimeCompare(k.commitment(), h.Commitment()) != 1 {
		return nil, errors.New("envelope: the object key does not belong to this header")
	}
	if random == nil {
		random = rand.Reader
	}
	out := make([]byte, SaltSize, UploadSealedSize)
	if _, err := io.ReadFull(random, out); err != nil {
		return nil, fmt.Errorf("envelope: reading randomness: %w", err)
	}
	aead, err := uploadKeyAEAD(uk, out)
	if err != nil {
		return nil, err
	}
	return aead.Seal(out, nil, k.key[:], uploadKeyAAD(h, bucket, key, storeID)), nil
}

// OpenForUpload opens an object key SealForUpload sealed, trying each of
// the upload keys (the current one and any kept for rotation) in turn.
// Anything altered, or a key, name, store id or header other than the
// sealing's, fails with ErrAuthentication.
func OpenForUpload(uks []*[UploadKeySize]byte, h Header, bucket, key, storeID string, sealed []byte) (*ObjectKey, error) {
	if len(sealed) != UploadSealedSize || h.Version() != VersionV2 || !h.Multipart() {
		return nil, ErrAuthentication
	}
	aad := uploadKeyAAD(h, bucket, key, storeID)
	var raw [ObjectKeySize]byte
	defer clear(raw[:])
	for _, uk := range uks {
		aead, err := uploadKeyAEAD(uk, sealed[:SaltSize])
		if err != nil {
			return nil, err
		}
		if _, err := aead.Open(raw[:0], nil, sealed[SaltSize:], aad); err != nil {
			continue
		}
		return committedKey(VersionV2, raw[:], h)
	}
	return nil, ErrAuthentication
}
