// Package rewrap moves the objects under a bucket and key prefix to the
// currently active key, without reading or rewriting their data through
// s3seal. It is the engine of "s3seal rewrap".
//
// # What changes
//
// Envelope objects (FORMAT.md) keep their stored ciphertext byte for byte:
// only the x-amz-meta-s3seal header changes (the data key is rewrapped
// under the active master key and the object key resealed, see
// envelope.Rotate). The header is written with a server-side copy of the
// object onto itself (metadata directive REPLACE, every other user
// metadata field, the content headers, storage class, store-side
// encryption and tags preserved). A multipart envelope object is copied
// part by part (UploadPartCopy of each stored part's byte range) into a new
// upload at the same key, so its part layout, which readers need, stays as
// it was; a single-request object is copied with one CopyObject. A format
// version 2 multipart object's part-set record (its tag s3seal-parts) is
// copied with its other tags and stays valid: it is bound to the object key
// and the name, which rotation does not change, not to how the data key is
// wrapped. A data key whose wrapped form does not fit in the metadata (an
// age recipient's) is read from, and rewrapped into, a key object
// .s3seal/keys/<sha256> (FORMAT.md, section 6.5). Before rewriting a
// version 1 object in a bucket that holds version 2 objects (it has the
// marker .s3seal/format-2), rewrap writes the marker .s3seal/mixed and waits
// Config.MarkerWait, so that listings through s3seal keep such objects'
// sizes right (FORMAT.md, section 9.4).
//
// SSE-C objects written by s3seal (customer keys derived from a key-ring
// master key, local.Keyring.DeriveSSECKey) are re-encrypted by the store
// with a server-side copy from the old derived key to the one derived from
// the key ring's newest key. The master key that fits an object is found by
// HEAD requests with each key-ring key's derived key, newest first.
//
// Objects already under the active key are left alone. Objects that
// s3seal did not encrypt, SSE-C objects whose key no key-ring key derives,
// objects under Object Lock (retention in force or a legal hold) and
// archived objects (GLACIER, DEEP_ARCHIVE) are skipped and reported.
//
// Every rewrite changes the object's Last-Modified time and, in a versioned
// bucket, creates a new version. Stores compute ETags from the bytes they
// hold, so an envelope object's ETag usually stays the same (its stored
// bytes and part layout do), while an SSE-C object's changes. S3 copies
// never carry ACLs: an object with a non-default ACL gets the bucket's
// default one.
//
// # Concurrent writers
//
// A rewrite never clobbers a concurrent write. A single copy is pinned to
// the ETag that was read (x-amz-copy-source-if-match, and If-Match on the
// destination where the store supports it); a multipart copy pins every
// part to the version and ETag that was read and completes with If-Match
// on that ETag. An object that changed in between is reported as
// "changed concurrently, skipped; rerun" (ReasonConcurrent).
//
// # Versions
//
// Without Config.AllVersions only current versions are rewritten; in a
// versioned bucket the version that was current stays, under its old key,
// as a noncurrent version, so the old key cannot be retired until those
// versions expire or are deleted.
//
// S3 versions are immutable, and any write to a key becomes its current
// version, so an old version can only be moved to a new key by writing it
// again. With Config.AllVersions, for each key whose history holds a
// version under an old key, the history is rewritten from the oldest such
// version up: those versions (and the delete markers among them) are
// written again, oldest first, as new versions under the active key, and
// once they are all in place the old version ids are deleted. The history
// keeps its contents and order, but version ids and Last-Modified times
// change, and while one key's history is rewritten, readers of that key
// may for a moment see one of its older versions as current. If another
// writer interleaves, the new versions are deleted again (the history is as
// before) and the key is reported as changed concurrently. A history that
// holds a version under Object Lock, an archived version or one that
// cannot be read is not rewritten. AllVersions needs a bucket whose
// versioning is enabled (or was never enabled, where each key has one
// version).
//
// # Progress and resumption
//
// Keys are processed in listing (lexicographic) order by Config.Concurrency
// workers, at most Config.Rate objects per second. The state file
// (Config.StatePath, see State) records the key up to which every object is
// done; a run with the same state file continues after it. When the
// context ends, no new object is started, those in flight finish (for up
// to Config.DrainTimeout), the state is saved and Run returns the summary
// with Interrupted set.
//
// With Config.DryRun nothing is written (not even the state file): every
// object is examined and envelope objects that would be rewrapped are
// opened with the key provider, so that the summary also shows the
// failures a real run would meet.
package rewrap
