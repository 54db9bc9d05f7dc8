package s3

import (
	"fmt"
	"net"
	"strings"
	"unicode/utf8"

	"github.com/s3seal/s3seal/proxy/s3err"
)

// MaxKeyLength is S3's limit on an object key, in bytes of UTF-8.
const MaxKeyLength = 1024

// KeyRules says which object keys s3seal accepts. The zero value is the
// strict default: keys that stores normalise differently are refused.
//
// S3 keeps every key literally, but S3-compatible stores that map keys to
// file paths (MinIO, versitygw and others) clean them first: "a//b" and
// "a/./b" become "a/b", a leading "/" disappears, "a/../b" becomes "b". A
// rule or permission that matched the key s3seal saw would then not match
// the key the store used, so s3seal refuses such keys (InvalidArgument
// naming the key) instead of guessing how the store reads them.
type KeyRules struct {
	// Literal accepts keys a store would normalise: set it only when the
	// store keeps keys exactly as sent (AWS S3 does). Keys must still be
	// valid UTF-8 of at most 1024 bytes without NUL.
	Literal bool
}

// Check reports whether key is acceptable.
func (k KeyRules) Check(key string) error {
	if key == "" {
		return keyError(key, "an object key must not be empty")
	}
	if len(key) > MaxKeyLength {
		return s3err.New("KeyTooLongError", 400, "Your key is too long: S3 keys are at most 1024 bytes.")
	}
	if !utf8.ValidString(key) {
		return keyError(key, "it is not valid UTF-8")
	}
	if strings.IndexByte(key, 0) >= 0 {
		return keyError(key, "it contains a NUL character")
	}
	if k.Literal {
		return nil
	}
	return k.checkSegments(key, false)
}

// CheckPrefix reports whether a listing prefix is acceptable: the same
// rules as keys, except that a prefix may be empty.
func (k KeyRules) CheckPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if len(prefix) > MaxKeyLength || !utf8.ValidString(prefix) || strings.IndexByte(prefix, 0) >= 0 {
		return keyError(prefix, "it is not a valid key prefix (UTF-8, at most 1024 bytes, no NUL)")
	}
	if k.Literal {
		return nil
	}
	return k.checkSegments(prefix, true)
}

// checkSegments refuses keys whose "/"-separated segments a store would
// clean: empty segments other than the last (a leading "/" or "//"), "."
// and "..", and control characters. A prefix may end inside a segment,
// so its last segment may be "." or ".." only if a key could continue
// it: "a/." is the start of "a/.hidden" and is accepted.
func (k KeyRules) checkSegments(key string, prefix bool) error {
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x20 || c == 0x7f {
			return keyError(key, "it contains a control character, which stores handle differently")
		}
	}
	segs := strings.Split(key, "/")
	for i, s := range segs {
		last := i == len(segs)-1
		switch {
		case s == "" && !last:
			if i == 0 {
				return keyError(key, "it starts with \"/\", which stores drop")
			}
			return keyError(key, "it contains an empty path segment (\"//\"), which stores collapse")
		case (s == "." || s == "..") && !(last && prefix):
			return keyError(key, fmt.Sprintf("it contains a %q path segment, which stores resolve", s))
		case strings.Contains(s, "\\"):
			// Stores on Windows and some gateways treat "\" as a
			// separator.
			return keyError(key, "it contains a backslash, which some stores treat as \"/\"")
		}
	}
	return nil
}

func keyError(key, why string) *s3err.Error {
	shown := key
	if len(shown) > 200 || !utf8.ValidString(shown) {
		shown = fmt.Sprintf("%.200q", key)
	}
	return s3err.InvalidArgument.WithMessage("s3seal refuses the object key %q: %s. Use keys without empty, \".\" or \"..\" segments; if the store keeps keys literally (AWS S3 does), an operator can set upstream.literal_keys.", shown, why).
		WithField("ArgumentName", "key")
}

// StoreReservedBuckets are bucket names S3-compatible stores give a
// meaning of their own: MinIO serves its admin, health and STS APIs under
// "/minio/". s3seal refuses them as bucket names (they are not buckets a
// client can create on those stores either).
var StoreReservedBuckets = []string{"minio"}

// CheckBucket reports whether name is a bucket name s3seal forwards: an S3
// bucket name (3-63 characters of lower-case letters, digits, '.' and
// '-', beginning and ending with a letter or digit, not an IP address,
// none of the prefixes and suffixes S3 reserves) that is not in reserved
// or StoreReservedBuckets.
func CheckBucket(name string, reserved []string) error {
	bad := func(why string) error {
		shown := name
		if len(shown) > 80 {
			shown = shown[:80] + "…"
		}
		return s3err.InvalidBucketName.WithMessage("The specified bucket is not valid.").WithField("BucketName", shown).WithCause(fmt.Errorf("%q %s", shown, why))
	}
	if len(name) < 3 || len(name) > 63 {
		return bad("must be 3 to 63 characters long")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return bad("may hold only lower-case letters, digits, '.' and '-'")
		}
	}
	if !alnum(name[0]) || !alnum(name[len(name)-1]) {
		return bad("must begin and end with a letter or a digit")
	}
	if strings.Contains(name, "..") {
		return bad("must not contain two adjacent periods")
	}
	if net.ParseIP(name) != nil {
		return bad("must not look like an IP address")
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(name, p) {
			return bad("must not begin with " + p)
		}
	}
	for _, s := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(name, s) {
			return bad("must not end with " + s)
		}
	}
	for _, r := range StoreReservedBuckets {
		if name == r {
			return bad("is reserved by S3-compatible stores for their own APIs")
		}
	}
	for _, r := range reserved {
		if name == r {
			return bad("is reserved")
		}
	}
	return nil
}

func alnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

func errInvalidArgument(msg, arg, value string) *s3err.Error {
	if len(value) > 200 {
		value = value[:200] + "…"
	}
	return s3err.InvalidArgument.WithMessage("%s", msg).WithField("ArgumentName", arg).WithField("ArgumentValue", value)
}

func errNotImplemented(msg string) *s3err.Error {
	return s3err.NotImplemented.WithMessage("%s", msg)
}
