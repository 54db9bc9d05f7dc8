// Package stream implements the content encryption of s3seal's envelope
// format: chunked AES-256-GCM over independently keyed segments.
//
// # Segments and chunks
//
// An object's ciphertext is a sequence of segments. A single PUT is segment 0;
// part n (1..10000) of a multipart upload is segment n. Each segment is
// encrypted on its own, under its own 256-bit content key (derived by package
// envelope), so parts can be encrypted in any order, on any machine.
//
// A segment is its plaintext cut into 64 KiB chunks (the last data chunk may be
// shorter; an empty segment has none), each sealed with AES-256-GCM, followed
// by one fixed-size trailer chunk. The 12-byte nonce of a chunk is its index
// within the segment as an 11-byte big-endian counter followed by a flag byte
// that is 0x01 for the trailer and 0x00 for data chunks. The trailer's
// plaintext is a 64-byte record holding the segment's plaintext length and an
// optional checksum (see [Trailer]). Reordering, duplicating, truncating or
// extending the chunks of a segment therefore fails authentication.
//
// A data chunk never needs to know whether it is the last one, so the
// encrypter emits every full chunk as soon as it has read it.
//
// # Sizes
//
// Ciphertext sizes are pure functions of plaintext sizes and back: see
// [CiphertextSize], [PlaintextSize] and [MultipartPlaintextSize]. [Layout]
// maps plaintext ranges of single-segment and multi-segment objects to
// ciphertext byte ranges.
//
// # Readers and writers
//
//   - [EncryptReader] turns a plaintext io.Reader into ciphertext (for request
//     bodies); [EncryptWriter] is the io.WriteCloser form.
//   - [DecryptReader] decrypts a whole segment, or a whole multipart object whose
//     part sizes are not known (segment boundaries are found by authenticating
//     trailers).
//   - [RangeReader] decrypts ciphertext fetched for a [Range] as it streams.
//   - [ReaderAt] gives random access over a ciphertext io.ReaderAt.
//
// No reader releases a byte of a chunk before that chunk's tag has verified;
// a short final chunk is released only after the trailer behind it has
// verified too, and a stream ends cleanly (io.EOF) only after its final
// trailer verified. Every authentication failure (a modified, missing, reordered,
// duplicated or extra byte, a wrong key) is reported as [ErrAuthentication],
// and errors are sticky. Readers do not close their sources.
//
// The byte-level format is specified in FORMAT.md at the repository root.
package stream
