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
environment and configuration), or age:identity=FILE. --identity FILE (may
repeat) is short for age:identity=FILE: an age identity file (s3seal keygen
--age, age-keygen) that unwraps data keys wrapped to its recipient by a
write-only gateway. (Objects whose data keys are age-wrapped need envelope
format 2; version 1 metadata cannot hold them.)

Single-PUT and multipart objects are both handled, and a multipart
object's part sizes need not be known: part boundaries are found by
authenticating each part's trailer. --parts, --part-size and --part-sizes
only check the result. Note: removing whole trailing parts of a multipart
object at the store yields a shorter object that still authenticates (see
FORMAT.md); --parts N guards against that when N is known from elsewhere.

OUT is written only if everything authenticates (it is written to a
temporary file first and renamed), and is never overwritten. Written to
standard output, the plaintext streams: bytes of every chunk are released
only after that chunk authenticated, but a failure later leaves output
that is incomplete (the exit code is then 1).
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
	if code, stop := parse(fs, args); stop {
		return code
	}
	switch {
	case *spec == "" && len(identities) == 0:
		return usageError(stderr, fs, "--keys SPEC or --identity FILE is required")
	case *spec != "" && len(identities) > 0:
		return usageError(stderr, fs, "give --keys SPEC or --identity FILE, not both")
	case *metaFile == "":
		return usageError(stderr, fs, "--metadata FILE is required")
	case *bucket == "" || *key == "":
		return usageError(stderr, fs, "--bucket and --key are required")
	case fs.NArg() != 2:
		return usageError(stderr, fs, "want IN and OUT, got %d arguments", fs.NArg())
	case *metaFile == "-" && fs.Arg(0) == "-":
		return usageError(stderr, fs, "metadata and ciphertext cannot both come from standard input")
	}
	expect, err := partExpectations(*parts, *partSize, *partSizes)
	if err != nil {
		return usageError(stderr, fs, "%v", err)
	}
	in, out := fs.Arg(0), fs.Arg(1)

	h, err := readMetadata(*metaFile, stdin)
	if err != nil {
		return fail(stderr, "decrypt", "%v", err)
	}
	if !h.Multipart() && (*parts != 0 || *partSize != 0 || *partSizes != "") {
		return usageError(stderr, fs, "--parts, --part-size and --part-sizes apply to multipart objects; this is a single-PUT object")
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
	kp, err := keyspec.Open(t.ctx(), ks, opts)
	if err != nil {
		return fail(stderr, "decrypt", "%v", err)
	}
	ok, err := envelope.Open(t.ctx(), kp, h, *bucket, *key)
	if err != nil {
		if errors.Is(err, envelope.ErrAuthentication) {
			return fail(stderr, "decrypt", "cannot open the object key: %v\n"+
				"Check that --bucket/--key name the object as it was written, that the metadata is this object's, and that %s holds its key (%s key %q).",
				err, ks, h.Provider(), h.KeyID())
		}
		return fail(stderr, "decrypt", "%v", err)
	}
	defer ok.Zero()

	src := stdin
	if in != "-" {
		f, err := os.Open(in)
		if err != nil {
			return fail(stderr, "decrypt", "%v", err)
		}
		defer f.Close()
		src = f
	}
	var dr *stream.DecryptReader
	if h.Multipart() {
		dr, err = stream.NewMultipartDecryptReader(ok.SegmentKey, src)
	} else {
		dr, err = stream.NewDecryptReader(ok.SegmentKey(0), src)
	}
	if err != nil {
		return fail(stderr, "decrypt", "%v", err)
	}
	check := func() error {
		tr := dr.Trailers()
		if !h.Multipart() {
			if tr[0].Length != h.PlaintextSize() {
				return envelope.ErrAuthentication
			}
			return nil
		}
		return expect.check(tr)
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

func partExpectations(parts int, partSize int64, list string) (partCheck, error) {
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
