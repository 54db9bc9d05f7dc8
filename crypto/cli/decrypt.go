package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/keyspec"
	"github.com/s3seal/s3seal/crypto/stream"
)

const decryptUsage = `Usage: s3seal decrypt --keys SPEC --metadata FILE --bucket B --key K [options] IN OUT
       s3seal decrypt --bucket B --key K [--config FILE] [--keys SPEC] [options] OUT
       s3seal decrypt --identity FILE --metadata FILE --bucket B --key K [options] IN OUT

Decrypts an object that s3seal stored in envelope mode, without a running
proxy. IN is the object's stored bytes as downloaded from the bucket (for
example with aws s3api get-object through the store, not through s3seal),
FILE its user metadata as JSON (aws s3api head-object --query Metadata).
IN and OUT are paths, or - for standard input and output.

--bucket and --key name the object as it was written: the object key is
sealed to that name, so an object moved or copied at the store level is
decrypted by naming its original location.

SPEC is the key provider: local:KEYRING-FILE, local:env:VAR,
aws-kms:KEY-ID[,KEY-ID...] (AWS credentials and region from the usual AWS
environment and configuration), kmip:UID[,UID...] or pkcs11:LABEL[,LABEL...]
(the server's or token's settings from the kmip or pkcs11 section of the
configuration file, --config or $S3SEAL_CONFIG; pkcs11 needs the HSM build),
or age:identity=FILE. --identity FILE (may repeat) is short for
age:identity=FILE: an age identity file (s3seal keygen --age, age-keygen)
that unwraps data keys wrapped to its recipient by a write-only gateway.
(Objects whose data keys are age-wrapped need envelope format 2; version 1
metadata cannot hold them.)

Objects of format versions 1 and 2, single-PUT and multipart, are handled.
A version 2 multipart object needs its part-set record, the object tag
s3seal-parts: give the tags as JSON (aws s3api get-object-tagging) with
--tags, or the tag's value with --parts-record. It fixes the part count,
the part sizes and which upload of each part was completed, and decrypt
checks all three. If the record is lost, --unverified-parts decrypts the
parts found in IN without that check (trailing parts removed, or a part
replaced by an earlier upload of it, would go unnoticed).

A version 2 header may keep its wrapped data key in a key object
(.s3seal/keys/<hex> in the bucket): give that object's bytes with
--key-object.

In a version 1 multipart object, part boundaries are found by
authenticating each part's trailer; removing whole trailing parts at the
store yields a shorter object that still authenticates (see FORMAT.md).
--parts, --part-size and --part-sizes check the result when they are known
from elsewhere.

OUT is written only if everything authenticates (it is written to a
temporary file first and renamed), and is never overwritten. Written to
standard output, the plaintext streams: bytes of every chunk are released
only after that chunk authenticated, but a failure later leaves output
that is incomplete (the exit code is then 1).

` + fetchHelp + `The object is read as the store holds it and decrypted here; --keys
defaults to the configuration's keys.
`

// Decrypt decrypts an object's ciphertext to its plaintext.
func (t Tool) Decrypt(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("decrypt", decryptUsage, stderr)
	spec := fs.String("keys", "", "key provider `SPEC`")
	var identities []string
	fs.Func("identity", "age identity `FILE` (may repeat; instead of --keys)", func(v string) error {
		if v == "" {
			return errors.New("empty file name")
		}
		identities = append(identities, v)
		return nil
	})
	metaFile := fs.String("metadata", "", "the object's user metadata as JSON (`FILE` or -)")
	bucket := fs.String("bucket", "", "`BUCKET` the object was written to")
	key := fs.String("key", "", "object `KEY` it was written under")
	parts := fs.Int("parts", 0, "check: the multipart object has `N` parts")
	partSize := fs.Int64("part-size", 0, "check: every part but the last holds `BYTES` plaintext bytes")
	partSizes := fs.String("part-sizes", "", "check: the parts' stored sizes, comma-separated `LIST` (as ListParts or GetObjectAttributes report them)")
	configFile := fs.String("config", "", "s3seal's configuration `FILE`: its kmip and pkcs11 settings, and the store when the object is read from it (default $S3SEAL_CONFIG)")
	tagsFile := fs.String("tags", "", "the object's tags as JSON (`FILE`), for a version 2 multipart object's part-set record")
	record := fs.String("parts-record", "", "the value of the object's s3seal-parts tag (`RECORD`)")
	keyObjectFile := fs.String("key-object", "", "the key object holding the wrapped data key (`FILE`)")
	unverified := fs.Bool("unverified-parts", false, "decrypt a version 2 multipart object without its part-set record")
	if code, stop := parse(fs, args); stop {
		return code
	}
	fetch := *metaFile == "" && fs.NArg() == 1
	switch {
	case *spec != "" && len(identities) > 0:
		return usageError(stderr, fs, "give --keys SPEC or --identity FILE, not both")
	case *bucket == "" || *key == "":
		return usageError(stderr, fs, "--bucket and --key are required")
	case !fetch && *metaFile == "":
		return usageError(stderr, fs, "give --metadata FILE with IN and OUT, or only OUT to read the object from the store")
	case !fetch && *spec == "" && len(identities) == 0:
		return usageError(stderr, fs, "--keys SPEC or --identity FILE is required")
	case !fetch && fs.NArg() != 2:
		return usageError(stderr, fs, "want IN and OUT, got %d arguments", fs.NArg())
	case *metaFile == "-" && fs.Arg(0) == "-":
		return usageError(stderr, fs, "metadata and ciphertext cannot both come from standard input")
	}
	var (
		h       envelope.Header
		in, out string
		src     = stdin
		err     error
	)
	var remote *Remote
	var stored StoredObject
	if fetch {
		out = fs.Arg(0)
		r, o, hh, err := t.fetch(*configFile, *bucket, *key)
		if err != nil {
			return fail(stderr, "decrypt", "%v", err)
		}
		remote, stored, h = r, o, hh
		if *spec == "" && len(identities) == 0 {
			*spec = remote.Keys
		}
		if *spec == "" && len(identities) == 0 {
			return usageError(stderr, fs, "the configuration names no keys: give --keys SPEC")
		}
		body, err := remote.Store.Get(t.ctx(), stored)
		if err != nil {
			return fail(stderr, "decrypt", "reading s3://%s/%s from the store at %s: %v", *bucket, *key, remote.Store.Where(), err)
		}
		defer body.Close()
		src = body
	} else {
		in, out = fs.Arg(0), fs.Arg(1)
		if h, err = readMetadata(*metaFile, stdin); err != nil {
			return fail(stderr, "decrypt", "%v", err)
		}
	}
	expect, err := partExpectations(h.Version(), *parts, *partSize, *partSizes)
	if err != nil {
		return usageError(stderr, fs, "%v", err)
	}
	if !h.Multipart() && (*parts != 0 || *partSize != 0 || *partSizes != "") {
		return usageError(stderr, fs, "--parts, --part-size and --part-sizes apply to multipart objects; this is a single-PUT object")
	}
	rec, err := partSetRecord(*tagsFile, *record, stdin)
	if err != nil {
		return fail(stderr, "decrypt", "%v", err)
	}
	needRecord := h.Version() == envelope.VersionV2 && h.Multipart()
	if remote != nil && needRecord && rec == nil && !*unverified {
		if rec, err = remotePartSetRecord(t.ctx(), remote, stored); err != nil {
			return fail(stderr, "decrypt", "%v", err)
		}
	}
	switch {
	case rec != nil && !needRecord:
		return usageError(stderr, fs, "--tags and --parts-record apply to version 2 multipart objects; this object has no part-set record")
	case needRecord && rec == nil && !*unverified:
		return fail(stderr, "decrypt", "this version 2 multipart object needs its part-set record (the tag s3seal-parts): give --tags or --parts-record, or --unverified-parts to decrypt without checking which parts it holds")
	}
	var keyObject []byte
	switch {
	case *keyObjectFile != "":
		if keyObject, err = os.ReadFile(*keyObjectFile); err != nil {
			return fail(stderr, "decrypt", "%v", err)
		}
	case remote != nil && h.KeyObject():
		if keyObject, err = remoteKeyObject(t.ctx(), remote, *bucket, [envelope.WrappedKeyRefSize]byte(h.WrappedKey())); err != nil {
			return fail(stderr, "decrypt", "%v", err)
		}
	}
	ks := keys.Spec{Kind: keys.KindAge, Identities: identities}
	if *spec != "" {
		if ks, err = keys.ParseSpec(*spec); err != nil {
			return fail(stderr, "decrypt", "%v", err)
		}
	}
	opts := t.Keys
	if opts.Warn == nil {
		opts.Warn = func(msg string) { fmt.Fprintf(stderr, "s3seal decrypt: warning: %s\n", msg) }
	}
	if t.KeySettings != nil && (ks.Kind == keys.KindKMIP || ks.Kind == keys.KindPKCS11) {
		fromFile, err := t.KeySettings(*configFile)
		if err != nil {
			return fail(stderr, "decrypt", "%v", err)
		}
		opts.KMIP, opts.PKCS11 = fromFile.KMIP, fromFile.PKCS11
	}
	kp, err := keyspec.Open(t.ctx(), ks, opts)
	if err != nil {
		return fail(stderr, "decrypt", "%v", err)
	}
	if c, ok := kp.(io.Closer); ok {
		defer c.Close()
	}
	ok, err := envelope.OpenWithKeyObject(t.ctx(), kp, h, *bucket, *key, keyObject)
	var needKO *envelope.KeyObjectNeededError
	if errors.As(err, &needKO) {
		return fail(stderr, "decrypt", "the wrapped data key is in the key object %s of bucket %s: download it and give it with --key-object", envelope.KeyObjectName(needKO.Ref), *bucket)
	}
	if err != nil {
		if errors.Is(err, envelope.ErrAuthentication) {
			return fail(stderr, "decrypt", "cannot open the object key: %v\n"+
				"Check that --bucket/--key name the object as it was written, that the metadata is this object's, and that %s holds its key (%s key %q).",
				err, ks, h.Provider(), h.KeyID())
		}
		return fail(stderr, "decrypt", "%v", err)
	}
	defer ok.Zero()

	if !fetch && in != "-" {
		f, err := os.Open(in)
		if err != nil {
			return fail(stderr, "decrypt", "%v", err)
		}
		defer f.Close()
		src = f
	}
	var ps *envelope.PartSet
	if rec != nil {
		set, err := ok.OpenPartSet(h, *bucket, *key, rec)
		if err != nil {
			return fail(stderr, "decrypt", "the part-set record does not authenticate: it is not this object's, or it was altered (%v)", err)
		}
		ps = &set
	}
	var dr interface {
		io.Reader
		Trailers() []stream.Trailer
	}
	if needRecord && ps == nil {
		fmt.Fprintln(stderr, "s3seal decrypt: warning: decrypting without the part-set record; which parts the object holds is not checked")
		dr = scanTrailers{stream.NewMultipartScanReaderV2(ok.SegmentKeyV2, src)}
	} else if dr, err = ok.NewReader(h, ps, src); err != nil {
		return fail(stderr, "decrypt", "%v", err)
	}
	check := func() error {
		if !h.Multipart() {
			return nil
		}
		return expect.check(dr.Trailers())
	}
	if out == "-" {
		if _, err := io.Copy(stdout, dr); err != nil {
			return fail(stderr, "decrypt", "%s (output is incomplete)", describe(err))
		}
		if err := check(); err != nil {
			return fail(stderr, "decrypt", "%s", describe(err))
		}
		return ExitOK
	}
	if err := writeNew(out, func(w io.Writer) error {
		if _, err := io.Copy(w, dr); err != nil {
			return err
		}
		return check()
	}); err != nil {
		return fail(stderr, "decrypt", "%s; %s was not written", describe(err), out)
	}
	return ExitOK
}

// scanTrailers gives a version 2 scanning reader the Trailers method.
type scanTrailers struct{ *stream.DecryptReaderV2 }

func (s scanTrailers) Trailers() []stream.Trailer {
	var out []stream.Trailer
	for _, seg := range s.Segments() {
		out = append(out, seg.Trailer)
	}
	return out
}

func describe(err error) string {
	if errors.Is(err, stream.ErrAuthentication) {
		return "the ciphertext does not authenticate: it was modified, truncated or extended, or it is not the object this metadata belongs to"
	}
	return err.Error()
}

// writeNew writes a new file at path through a temporary file in the same
// directory, renamed into place only if fill succeeds. It refuses to
// replace an existing file.
func writeNew(path string, fill func(io.Writer) error) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s exists; remove it or choose another output", path)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".s3seal-*")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := fill(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// Link, unlike rename, fails if path appeared meanwhile; fall back to
	// rename where the file system cannot link.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s exists; remove it or choose another output", path)
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			return err
		}
	}
	os.Remove(tmp.Name())
	done = true
	return nil
}

// partCheck holds the multipart layout the user asserted.
type partCheck struct {
	parts    int
	partSize int64
	sizes    []int64 // plaintext sizes from --part-sizes
}

func partExpectations(version uint8, parts int, partSize int64, list string) (partCheck, error) {
	c := partCheck{parts: parts, partSize: partSize}
	if parts < 0 || parts > stream.MaxParts {
		return c, fmt.Errorf("--parts must be 1..%d", stream.MaxParts)
	}
	if partSize < 0 {
		return c, errors.New("--part-size must be positive")
	}
	if list != "" {
		for _, f := range strings.Split(list, ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
			if err != nil {
				return c, fmt.Errorf("--part-sizes: %q is not a number", f)
			}
			p, err := stream.PlaintextSize(n)
			if version == envelope.VersionV2 {
				p, err = stream.PlaintextSizeV2(n)
			}
			if err != nil {
				return c, fmt.Errorf("--part-sizes: %d cannot be the stored size of a part: %v", n, err)
			}
			c.sizes = append(c.sizes, p)
		}
		if parts != 0 && parts != len(c.sizes) {
			return c, errors.New("--parts and --part-sizes disagree")
		}
	}
	return c, nil
}

func (c partCheck) check(tr []stream.Trailer) error {
	if c.parts != 0 && len(tr) != c.parts {
		return fmt.Errorf("the object has %d parts, not %d as --parts says (trailing parts may have been removed)", len(tr), c.parts)
	}
	if c.sizes != nil {
		if len(tr) != len(c.sizes) {
			return fmt.Errorf("the object has %d parts, --part-sizes lists %d", len(tr), len(c.sizes))
		}
		for i, t := range tr {
			if t.Length != c.sizes[i] {
				return fmt.Errorf("part %d holds %d plaintext bytes, --part-sizes implies %d", i+1, t.Length, c.sizes[i])
			}
		}
	}
	if c.partSize != 0 {
		for i, t := range tr[:len(tr)-1] {
			if t.Length != c.partSize {
				return fmt.Errorf("part %d holds %d plaintext bytes, not --part-size %d", i+1, t.Length, c.partSize)
			}
		}
	}
	return nil
}
