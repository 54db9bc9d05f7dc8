package envelope

import (
	"encoding/hex"
	"testing"

	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/local"
	"github.com/s3seal/s3seal/crypto/stream"
)

// pairs records every (key, nonce) pair an encryption used, and where.
type pairs struct {
	t    *testing.T
	seen map[string]string
}

func (p *pairs) add(key, nonce []byte, where string) {
	p.t.Helper()
	k := hex.EncodeToString(key) + "/" + hex.EncodeToString(nonce)
	if prev, ok := p.seen[k]; ok {
		p.t.Fatalf("the (key, nonce) pair of %s repeats that of %s", where, prev)
	}
	p.seen[k] = where
}

// segment records the pairs of every chunk of a version 2 segment of
// plainLen bytes: the key from the chunk's salt, the nonce from the chunk.
func (p *pairs) segment(ok *ObjectKey, n uint32, stored []byte, plainLen int, where string) {
	p.t.Helper()
	sizes := []int{}
	for left := plainLen; left > 0; left -= stream.ChunkSize {
		sizes = append(sizes, min(left, stream.ChunkSize)+stream.ChunkOverheadV2)
	}
	sizes = append(sizes, stream.TrailerSizeV2)
	for _, size := range sizes {
		salt := [stream.SaltSize]byte(stored[:stream.SaltSize])
		p.add(ok.SegmentKeyV2(n, &salt), stored[stream.SaltSize:stream.SaltSize+stream.NonceSize], where)
		stored = stored[size:]
	}
	if len(stored) != 0 {
		p.t.Fatalf("%s: %d bytes after the trailer", where, len(stored))
	}
}

// seal records the pair of a header's seal: the seal key (from the data
// key, the seal salt and the name) and the seal's nonce.
func (p *pairs) seal(dk *[keys.DataKeySize]byte, h Header, bucket, key, where string) {
	p.t.Helper()
	sk, err := sealKey(h.Version(), dk, h.salt(), bucket, key)
	if err != nil {
		p.t.Fatal(err)
	}
	p.add(sk, h.sealedKey()[:12], where)
}

// wrap records the pair of a key ring wrap: the key ring key's name stands
// for its key-encryption key; the nonce is in the wrapped form.
func (p *pairs) wrap(w keys.WrappedKey, where string) {
	p.t.Helper()
	p.add([]byte("key ring KEK "+w.KeyID), w.Ciphertext[1:13], where)
}

// TestNonceUniqueness runs, at the crypto level, every path on which s3seal
// encrypts — each many times under one data key, one object name and,
// where the path allows, one object key and one part number — and checks
// that no (key, nonce) pair is ever used twice: AES-GCM's one requirement.
// FORMAT.md's nonce-uniqueness table names these subtests.
func TestNonceUniqueness(t *testing.T) {
	ring, err := local.Parse([]byte("nonce-key:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="))
	if err != nil {
		t.Fatal(err)
	}
	kp := local.NewProvider(ring, local.Config{})
	dk, err := kp.GenerateDataKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := &pairs{t: t, seen: map[string]string{}}
	p.wrap(dk.WrappedKey, "the data key's wrap")
	const rounds = 24
	plain := pattern(2*stream.ChunkSize+5, 1)
	encrypt := func(ok *ObjectKey, n uint32, b []byte) ([]byte, [stream.SaltSize]byte) {
		return segmentV2(t, ok, n, b)
	}
	// One upload, shared by the part paths: same object key, same part
	// number 3 for every attempt.
	up, uh, err := SealV2(&dk, kp.Name(), Params{Bucket: "b", Key: "k", Multipart: true})
	if err != nil {
		t.Fatal(err)
	}
	p.seal(&dk.Plaintext, uh, "b", "k", "the upload's seal")
	single := func(where string) (*ObjectKey, Header) {
		ok, h, err := SealV2(&dk, kp.Name(), Params{Bucket: "b", Key: "k", Size: int64(len(plain))})
		if err != nil {
			t.Fatal(err)
		}
		p.seal(&dk.Plaintext, h, "b", "k", where)
		ct, _ := encrypt(ok, 0, plain)
		p.segment(ok, 0, ct, len(plain), where)
		return ok, h
	}
	var lastSingle Header
	t.Run("PutObject", func(t *testing.T) {
		// The same bytes to the same name, again and again.
		for range rounds {
			_, lastSingle = single("PutObject")
		}
	})
	t.Run("UploadPart-retry-same-bytes", func(t *testing.T) {
		for range rounds {
			ct, _ := encrypt(up, 3, plain)
			p.segment(up, 3, ct, len(plain), "UploadPart of part 3, same bytes")
		}
	})
	t.Run("UploadPart-retry-different-bytes", func(t *testing.T) {
		for i := range rounds {
			b := pattern(len(plain), byte(10+i))
			ct, _ := encrypt(up, 3, b)
			p.segment(up, 3, ct, len(b), "UploadPart of part 3, other bytes")
		}
	})
	t.Run("UploadPartCopy", func(t *testing.T) {
		// Part 3 filled from another object's plaintext (a range of it),
		// after the UploadParts above: the same call, a fresh salt.
		src := pattern(3*stream.ChunkSize, 99)
		for i := range rounds {
			b := src[i : i+len(plain)]
			ct, _ := encrypt(up, 3, b)
			p.segment(up, 3, ct, len(b), "UploadPartCopy into part 3")
		}
	})
	t.Run("CopyObject-single", func(t *testing.T) {
		// A copy reseals the object key (a new seal); the content is
		// copied as stored, not encrypted again.
		for i := range rounds {
			h2, err := lastSingle.Reseal(&dk.Plaintext, "b", "k", "b", "copy", nil)
			if err != nil {
				t.Fatal(err)
			}
			p.seal(&dk.Plaintext, h2, "b", "copy", "CopyObject reseal "+string(rune('a'+i)))
		}
	})
	t.Run("CopyObject-multipart", func(t *testing.T) {
		// A multipart copy reseals too, copies the parts as stored
		// (UploadPartCopy of their byte ranges) and MACs a new part-set
		// record: no encryption of content.
		for range rounds {
			h2, err := uh.Reseal(&dk.Plaintext, "b", "k", "b2", "k2", nil)
			if err != nil {
				t.Fatal(err)
			}
			p.seal(&dk.Plaintext, h2, "b2", "k2", "multipart CopyObject reseal")
			if _, err := up.SealPartSet(h2, "b2", "k2", PartSet{Parts: 1, PartSize: 5, LastSize: 5}); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("Relayout", func(t *testing.T) {
		// An upload whose parts are not all-but-the-last equal is written
		// again as a new upload: a new object key, new salts.
		for range rounds {
			nk, nh, err := SealV2(&dk, kp.Name(), Params{Bucket: "b", Key: "k", Multipart: true})
			if err != nil {
				t.Fatal(err)
			}
			p.seal(&dk.Plaintext, nh, "b", "k", "relayout's seal")
			for n := uint32(1); n <= 2; n++ {
				ct, _ := encrypt(nk, n, plain)
				p.segment(nk, n, ct, len(plain), "relayout part")
			}
		}
	})
	t.Run("Rewrap", func(t *testing.T) {
		// Rotation wraps the same data key again (a key ring wrap with a
		// new nonce) and reseals; the content is not touched.
		for range rounds {
			h2, err := Rotate(ctx, kp, lastSingle, "b", "k", nil)
			if err != nil {
				t.Fatal(err)
			}
			p.wrap(keys.WrappedKey{KeyID: h2.KeyID(), Ciphertext: h2.WrappedKey()}, "rewrap's wrap")
			p.seal(&dk.Plaintext, h2, "b", "k", "rewrap's seal")
		}
	})
	t.Run("SSE-C", func(t *testing.T) {
		// s3seal encrypts nothing in sse-c mode: it derives one customer
		// key per object name and the store encrypts. Distinct names give
		// distinct keys (the store's nonces are its own).
		seen := map[[32]byte]bool{}
		for _, name := range []string{"a", "b", "ab", "a/b"} {
			for _, bucket := range []string{"x", "xa"} {
				k, err := ring.DeriveSSECKey("nonce-key", bucket, name)
				if err != nil || seen[k] {
					t.Fatalf("SSE-C key of %s/%s repeats (%v)", bucket, name, err)
				}
				seen[k] = true
			}
		}
	})
	t.Run("S3EC-migration", func(t *testing.T) {
		// Copying an object of the S3 Encryption Client into envelope mode
		// decrypts it and writes a new object: a PutObject.
		for range rounds {
			single("S3EC migration copy")
		}
	})
	if n := len(p.seen); n < 35*rounds {
		t.Fatalf("only %d pairs recorded", n)
	}
}
