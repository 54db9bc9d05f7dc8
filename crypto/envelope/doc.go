// Package envelope implements the object-level part of s3seal's envelope
// format: the per-object key hierarchy and the metadata stored with every
// object in the x-amz-meta-s3seal header.
//
// # Keys
//
// An object has three layers of keys:
//
//  1. a data key from a key provider (package keys), reused for many objects
//     and stored wrapped in the metadata;
//  2. a random 256-bit object key of its own;
//  3. per-segment content keys derived from the object key with HKDF, with a
//     key commitment stored in the metadata and checked, in constant time,
//     before any content key is derived.
//
// The object key is sealed (AES-256-GCM) under a key derived from the data
// key, a random salt and the object's bucket and key name, with every other
// metadata field as additional data. So the format version, algorithm,
// provider, key id, wrapped key, multipart flag, plaintext size and declared
// checksum are all authenticated, and ciphertext moved to another name fails
// to open. Reseal re-seals the same object key for a new name (CopyObject
// without touching the data); Rotate re-seals it under a rewrapped data key
// (key rotation without touching the data).
//
// # Metadata
//
// A Header is the binary metadata; its textual form, the value of
// x-amz-meta-s3seal, is unpadded base64url. Parse is strict (unknown
// versions, algorithms, providers, flags and checksum algorithms, wrong
// lengths and trailing bytes are refused), and Parse followed by String
// gives back the input. CheckMetadataSize keeps a request within S3's 2 KB
// user-metadata limit.
//
// # Errors
//
// Every failure to authenticate (a wrong name, a modified field, a wrong
// key, a data key that cannot be unwrapped with the configured keys) is
// reported with an error that matches ErrAuthentication under errors.Is;
// where the cause is a key-provider error (*keys.UnknownKeyError,
// *keys.UnwrapError) or a provider mismatch (*ProviderMismatchError),
// errors.As finds it too. Transient provider errors (*keys.UnavailableError
// and the like) are returned as they are.
//
// The byte-level format is specified in FORMAT.md at the repository root.
package envelope
