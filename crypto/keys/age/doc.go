// Package age is s3seal's public-key key provider: data keys are wrapped to
// age recipients (https://age-encryption.org, filippo.io/age), so that an
// s3seal holding only the recipients' public keys can store data it can
// never read back (a write-only gateway). Reading needs an age identity:
// in another s3seal, in the offline s3seal decrypt, or in the age tool
// itself, since every wrapped data key is an ordinary age file.
//
// # Recipients and identities
//
// A recipients file lists public keys, one a line, as age users know it:
// lines are trimmed of surrounding blanks (so CRLF files work), and empty
// lines and lines starting with # are skipped. Each other line is a
// recipient:
//
//   - age1pq1…: a hybrid post-quantum recipient (ML-KEM-768 + X25519 in
//     HPKE, stanza type mlkem768x25519, age v1.3 and later). The default,
//     and what s3seal keygen --age and age-keygen -pq make.
//   - age1…: an X25519 recipient. Not safe against a future quantum
//     computer, so refused unless the configuration sets allow_classical;
//     then a warning is given at start, and a set that mixes both kinds is
//     only as strong as X25519.
//
// Anything else is refused with its line number (never its text): SSH keys,
// plugin and tagged (hardware) recipients, and above all secret keys, so
// that a gateway meant to hold only public keys cannot be handed an
// identity by mistake. A recipient may not repeat; a set has at most
// MaxRecipients.
//
// An identity file holds secret keys, one a line (AGE-SECRET-KEY-PQ-1… or
// AGE-SECRET-KEY-1…), with the same comments and blank lines: the output of
// s3seal keygen --age or age-keygen. It must not be readable by group or
// others (mode 0600). Identities of either kind are accepted: reading
// exposes nothing that writing did not already decide.
//
// # Wrapped data keys
//
// The wrapped form of a data key is a binary (not armored) age file whose
// payload is the 32-byte data key:
//
//	age-encryption.org/v1
//	-> mlkem768x25519 BASE64(enc)     one stanza per recipient, in the
//	BASE64(wrapped file key)          order of the recipients file
//	…
//	--- BASE64(header MAC)
//	nonce (16 bytes) || ChaCha20-Poly1305 STREAM chunk of the data key (48 bytes)
//
// X25519 recipients give "-> X25519 BASE64(share)" stanzas instead. Its
// size is exact (WrappedSize): 1,691 bytes for one hybrid recipient, 1,557
// more for each further one, 232 bytes for one X25519 recipient and 98
// more for each further one. `age -d -i IDENTITY-FILE` recovers the data
// key from it.
//
// Unwrapping accepts only this structure: a binary age file of at most
// MaxWrappedSize bytes with 1 to MaxRecipients stanzas, each of type
// mlkem768x25519 or X25519, whose payload is exactly 32 bytes. Everything
// else, and every failure of age itself (header MAC, stanza, STREAM), is a
// *keys.UnwrapError, as is a wrapped key none of the identities opens.
//
// # Key id
//
// The stored key id names the recipient set: NAME "-" HEX16, where NAME
// is configurable (default "age") and HEX16 is the first 8 bytes, in
// lower-case hex, of SHA-256("s3seal age recipient set" 0x00 || LP(r1) ||
// LP(r2) || …) over the recipients' canonical (lower-case Bech32)
// encodings sorted bytewise, LP(s) being BE32(len(s)) || s. Reordering the
// file, its comments and its blank lines do not change it; adding,
// removing or replacing a recipient does. s3seal rewrap uses it to tell
// objects already wrapped to the current set.
//
// # What an identity accepts
//
// The other providers check the stored key id against an allow-list
// because the capability they hold (KMS credentials, a key ring) reaches
// keys that object metadata must not be able to pick. For age the
// capability is the identity itself: a wrapped key opens only with the
// identities configured, whatever its key id says. So Decrypt requires the
// key id to be well formed, and lets the identities decide: it opens any
// wrapped key that one of them opens, including those wrapped to an older
// recipient set (no list of past sets to keep after a rotation). Checking
// the id against configured sets would add no protection: recipients are
// public, so anyone who can write to the store can wrap a data key of
// their choosing to them and copy any key id. That is the nature of public-
// key wrapping, and the threat model says so: objects written through a
// write-only path are confidential, not authenticated against whoever
// holds the recipients and can write to the store.
//
// # Costs
//
// A wrap is one HPKE encapsulation per recipient, an unwrap one
// decapsulation per stanza tried; the provider sits under keys.Cache, so a
// gateway wraps once per data-key reuse window (not per object), and a
// reader unwraps each distinct wrapped key once while it stays cached.
package age
