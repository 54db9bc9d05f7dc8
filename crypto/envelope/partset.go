package envelope

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/crypto/stream"
)

// PartSetTag is the object tag that holds a version 2 multipart object's
// part-set record (FORMAT.md, section 8.3). Clients may not set it.
const PartSetTag = "s3seal-parts"

// PartSet is what CompleteMultipartUpload fixes about a version 2
// multipart object: how many parts it has, their plaintext sizes, and
// which upload of each part was completed.
type PartSet struct {
	// Parts is the number of parts, 1..10000.
	Parts int
	// PartSize is the plaintext size of each part but the last; with one
	// part it equals LastSize.
	PartSize int64
	// LastSize is the plaintext size of the last part.
	LastSize int64
	// Salts is SaltsDigest of the salts of the completed uploads of parts
	// 1..Parts, in part order.
	Salts [32]byte
}

// SaltsDigest is the attempt binding of a part set: SHA-256 over the
// salts of the completed parts' encryptions, in part order. Every upload of
// a part (a retry, an UploadPartCopy) draws its own salt, so an earlier
// upload of part n that the store kept does not match.
func SaltsDigest(salts [][stream.SaltSize]byte) [32]byte {
	h := sha256.New()
	for _, s := range salts {
		h.Write(s[:])
	}
	return [32]byte(h.Sum(nil))
}

// Layout returns the object's layout, from which sizes and ranges follow.
func (ps PartSet) Layout() (*stream.Layout, error) {
	return stream.UniformLayoutV2(ps.Parts, ps.PartSize, ps.LastSize)
}

// PlaintextSize returns the object's plaintext size.
func (ps PartSet) PlaintextSize() int64 { return int64(ps.Parts-1)*ps.PartSize + ps.LastSize }

// Check verifies the segments a whole read authenticated against the part
// set: their number, their sizes, and their salts. A part missing, added,
// or replaced by another upload of the same part number fails with
// ErrAuthentication.
func (ps PartSet) Check(segs []stream.SegmentInfo) error {
	if len(segs) != ps.Parts {
		return ErrAuthentication
	}
	salts := make([][stream.SaltSize]byte, len(segs))
	for i, s := range segs {
		want := ps.PartSize
		if i == len(segs)-1 {
			want = ps.LastSize
		}
		if s.Number != uint32(i+1) || s.Trailer.Length != want {
			return ErrAuthentication
		}
		salts[i] = s.Salt
	}
	if d := SaltsDigest(salts); !hmac.Equal(d[:], ps.Salts[:]) {
		return ErrAuthentication
	}
	return nil
}

// PartSetRecord is a part set sealed for one object: the binary record
//
//	size  field
//	1     record version (0x02, the format version)
//	2     part count N (big-endian, 1..10000)
//	8     plaintext size of each part but the last, P (big-endian)
//	8     plaintext size of the last part, L (big-endian)
//	32    SHA-256 of the parts' salts, in part order
//	32    HMAC-SHA256 of the above, keyed with HKDF-Expand(PRK,
//	      "s3seal" 02 01 "parts", 32), over "s3seal" 02 01 "parts" ||
//	      header bytes 0..2 (version, algorithm, flags with the
//	      key-object bit cleared) || commitment || LP(bucket) || LP(key) ||
//	      the 51 bytes above
//
// stored base64url (unpadded) as the object tag PartSetTag. It is valid
// only as returned by ParsePartSetRecord or SealPartSet.
type PartSetRecord []byte

// PartSetRecordSize is the size of a binary part-set record.
const PartSetRecordSize = 1 + 2 + 8 + 8 + 32 + 32

const partSetBody = PartSetRecordSize - 32

// SealPartSet returns the part-set record of ps for the version 2
// multipart object with header h named bucket/key, whose object key is k.
// s3seal writes it when it completes the upload.
func (k *ObjectKey) SealPartSet(h Header, bucket, key string, ps PartSet) (PartSetRecord, error) {
	if k.version != VersionV2 || h.Version() != VersionV2 || !h.Multipart() {
		return nil, fmt.Errorf("envelope: part sets belong to version 2 multipart objects")
	}
	if _, err := ps.Layout(); err != nil {
		return nil, fmt.Errorf("envelope: part set: %w", err)
	}
	r := make([]byte, 0, PartSetRecordSize)
	r = append(r, VersionV2)
	r = binary.BigEndian.AppendUint16(r, uint16(ps.Parts))
	r = binary.BigEndian.AppendUint64(r, uint64(ps.PartSize))
	r = binary.BigEndian.AppendUint64(r, uint64(ps.LastSize))
	r = append(r, ps.Salts[:]...)
	r = append(r, k.partSetMAC(h, bucket, key, r)...)
	return ParsePartSetRecordBinary(r)
}

// partSetMAC binds the record to the object's key, name and kind, not to
// how its data key is wrapped: the key-object flag (which rotation into or
// out of a key object changes) is left out, so rotation keeps the record
// valid.
func (k *ObjectKey) partSetMAC(h Header, bucket, key string, body []byte) []byte {
	msg := append([]byte(label(k.version, labelParts)), h[0], h[1], h[2]&^flagKeyObject)
	msg = append(msg, h.Commitment()...)
	msg = appendName(msg, bucket, key)
	return k.mac(labelParts, append(msg, body...))
}

// ParsePartSetRecord parses the value of the tag PartSetTag strictly
// (canonical unpadded base64url, exact length, known version, sizes the
// format allows). Parsing authenticates nothing: see OpenPartSet.
func ParsePartSetRecord(value string) (PartSetRecord, error) {
	if len(value) != (PartSetRecordSize*8+5)/6 {
		return nil, parseErr("part-set record of %d characters", len(value))
	}
	b, err := decodeB64(value)
	if err != nil {
		return nil, err
	}
	return ParsePartSetRecordBinary(b)
}

// ParsePartSetRecordBinary parses a binary part-set record. The result
// aliases b.
func ParsePartSetRecordBinary(b []byte) (PartSetRecord, error) {
	if len(b) != PartSetRecordSize {
		return nil, parseErr("part-set record of %d bytes", len(b))
	}
	if b[0] != VersionV2 {
		return nil, parseErr("part-set record version %d", b[0])
	}
	r := PartSetRecord(b)
	if _, err := r.Unverified().Layout(); err != nil {
		return nil, parseErr("part-set record: %v", err)
	}
	return r, nil
}

// String returns the record's textual form, the tag value.
func (r PartSetRecord) String() string { return b64.EncodeToString(r) }

// Unverified returns the part set the record states, without checking its
// MAC: enough for a listing's sizes, which the store could falsify anyway,
// never for reading.
func (r PartSetRecord) Unverified() PartSet {
	return PartSet{
		Parts:    int(binary.BigEndian.Uint16(r[1:3])),
		PartSize: int64(binary.BigEndian.Uint64(r[3:11])),
		LastSize: int64(binary.BigEndian.Uint64(r[11:19])),
		Salts:    [32]byte(r[19:51]),
	}
}

// OpenPartSet authenticates the part-set record of the version 2
// multipart object with header h named bucket/key and returns its part
// set. A record of another object, name or upload, or an altered one,
// fails with ErrAuthentication.
func (k *ObjectKey) OpenPartSet(h Header, bucket, key string, r PartSetRecord) (PartSet, error) {
	if k.version != VersionV2 || h.Version() != VersionV2 || !h.Multipart() {
		return PartSet{}, ErrAuthentication
	}
	if !hmac.Equal(k.partSetMAC(h, bucket, key, r[:partSetBody]), r[partSetBody:]) {
		return PartSet{}, ErrAuthentication
	}
	return r.Unverified(), nil
}

// PartSetTagValue is the value of the tag PartSetTag: the record's
// String, then, where the upload's plaintext multipart ETag is known (the
// client sent Content-MD5 with every part), "." and that ETag,
// "<32 lowercase hex digits>-N" with N the number of parts the client
// uploaded, 1..10000 (FORMAT.md, section 8.3; the object may hold another
// number if s3seal rewrote it). The ETag is not authenticated: it is what
// S3 would have shown for the plaintext upload, not something a reader
// checks.
func PartSetTagValue(r PartSetRecord, etag string) string {
	if etag == "" {
		return r.String()
	}
	return r.String() + "." + etag
}

// ParsePartSetTag parses the value of the tag PartSetTag: the record
// (ParsePartSetRecord) and the plaintext multipart ETag after it, "" if
// none. A value whose ETag is not of the form PartSetTagValue writes is
// refused.
func ParsePartSetTag(value string) (PartSetRecord, string, error) {
	rec, etag, found := strings.Cut(value, ".")
	r, err := ParsePartSetRecord(rec)
	if err != nil || !found {
		return r, "", err
	}
	if !validPlainETag(etag) {
		return nil, "", parseErr("part-set tag with a malformed ETag")
	}
	return r, etag, nil
}

// validPlainETag reports whether etag is "<32 lowercase hex>-N", N in
// 1..10000 in canonical decimal.
func validPlainETag(etag string) bool {
	sum, n, ok := strings.Cut(etag, "-")
	parts, err := strconv.Atoi(n)
	if !ok || len(sum) != 32 || err != nil || parts < 1 || parts > stream.MaxParts || n != strconv.Itoa(parts) {
		return false
	}
	for i := 0; i < len(sum); i++ {
		if c := sum[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
