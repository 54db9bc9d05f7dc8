package cli

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/crypto/stream"
)

const inspectUsage = `Usage: s3seal inspect --metadata FILE [--tags FILE | --parts-record RECORD] [--size BYTES [--parts N]]
       s3seal inspect --bucket B --key K [--config FILE]

Describes an object encrypted by s3seal from its user metadata: format
version, algorithm, key provider and key id, where the wrapped data key
is, upload kind, sizes and declared checksum. It needs no keys and prints
no secrets.

FILE (or - for standard input) is the object's user metadata as JSON, as
  aws s3api head-object --bucket B --key K --query Metadata
prints it (or the whole head-object output) when asked of the store itself:
through s3seal, the s3seal field is hidden and head-object prints {}.

A version 2 multipart object's part-set record (the tag s3seal-parts, from
aws s3api get-object-tagging given with --tags, or its value with
--parts-record) gives its part count and sizes; without keys they are not
verified. With --size (the object's stored size, ContentLength) and
--parts (the N in an ETag ending in -N), a multipart object's plaintext
size is computed by arithmetic, which is right when every part but the
last holds a multiple of 64 KiB.

` + fetchHelp

// Inspect prints what an object's metadata says.
func (t Tool) Inspect(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("inspect", inspectUsage, stderr)
	metaFile := fs.String("metadata", "", "the object's user metadata as JSON (`FILE` or -)")
	size := fs.Int64("size", -1, "the object's stored (ciphertext) size in `BYTES`")
	parts := fs.Int("parts", 0, "the part count `N` of a multipart object")
	bucket := fs.String("bucket", "", "read the object's metadata from the store: its `BUCKET`")
	key := fs.String("key", "", "and its `KEY`")
	configFile := fs.String("config", "", "s3seal's configuration `FILE`, for --bucket/--key (default $S3SEAL_CONFIG)")
	tagsFile := fs.String("tags", "", "the object's tags as JSON (`FILE`)")
	record := fs.String("parts-record", "", "the value of the object's s3seal-parts tag (`RECORD`)")
	if code, stop := parse(fs, args); stop {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, fs, "unexpected argument %q", fs.Arg(0))
	}
	fetch := *metaFile == "" && (*bucket != "" || *key != "")
	switch {
	case fetch && (*bucket == "" || *key == ""):
		return usageError(stderr, fs, "--bucket and --key go together")
	case !fetch && *metaFile == "":
		return usageError(stderr, fs, "give --metadata FILE, or --bucket and --key to read the metadata from the store")
	case *metaFile != "" && (*bucket != "" || *key != "" || *configFile != ""):
		return usageError(stderr, fs, "--metadata reads a file; --bucket/--key/--config read from the store: use one or the other")
	}
	rec, err := partSetRecord(*tagsFile, *record, stdin)
	if err != nil {
		return fail(stderr, "inspect", "%v", err)
	}
	w := &lines{w: stdout}
	var h envelope.Header
	if fetch {
		remote, o, hh, err := t.fetch(*configFile, *bucket, *key)
		if err != nil {
			return fail(stderr, "inspect", "%v", err)
		}
		h = hh
		w.f("object", "s3://%s/%s at %s", *bucket, *key, remote.Store.Where())
		w.f("stored size", "%d bytes", o.Size)
		*size, *parts = o.Size, o.Parts
		if rec == nil && h.Multipart() && h.Version() == envelope.VersionV2 {
			if rec, err = remotePartSetRecord(t.ctx(), remote, o); err != nil {
				return fail(stderr, "inspect", "%v", err)
			}
		}
	} else if h, err = readMetadata(*metaFile, stdin); err != nil {
		return fail(stderr, "inspect", "%v", err)
	}
	describeHeader(w, h, rec, *size, *parts)
	return ExitOK
}

// describeHeader prints what an s3seal header says; rec is the object's
// part-set record (nil if unknown), size and parts are the stored size
// and part count when known (-1, 0 otherwise).
func describeHeader(w *lines, h envelope.Header, rec envelope.PartSetRecord, size int64, parts int) {
	v2 := h.Version() == envelope.VersionV2
	w.f("format", "s3seal envelope, version %d", h.Version())
	w.f("algorithm", "%s", h.Algorithm())
	w.f("key provider", "%s", h.Provider())
	w.f("key id", "%s", h.KeyID())
	if h.KeyObject() {
		w.f("wrapped key", "in the key object %s", envelope.KeyObjectName([envelope.WrappedKeyRefSize]byte(h.WrappedKey())))
	} else {
		w.f("wrapped key", "%d bytes", len(h.WrappedKey()))
	}
	switch {
	case h.Multipart() && v2 && rec != nil:
		ps := rec.Unverified()
		w.f("upload", "multipart, %d parts of %d bytes, the last of %d (from the part-set record, not verified without keys)", ps.Parts, ps.PartSize, ps.LastSize)
		w.f("plaintext size", "%d bytes", ps.PlaintextSize())
		if l, err := ps.Layout(); err == nil {
			w.f("ciphertext size", "%d bytes", l.CiphertextSize())
			if size >= 0 && size != l.CiphertextSize() {
				w.f("warning", "stored size %d differs from %d: parts were added or removed", size, l.CiphertextSize())
			}
		}
	case h.Multipart():
		w.f("upload", "multipart (parts are segments 1..N)")
		if v2 {
			w.f("part set", "in the object tag s3seal-parts (give it with --tags or --parts-record)")
		}
		sizeOf := stream.MultipartPlaintextSize
		if v2 {
			sizeOf = stream.MultipartPlaintextSizeV2
		}
		if size >= 0 && parts > 0 {
			if n, err := sizeOf(size, parts); err == nil {
				w.f("plaintext size", "%d bytes (if every part but the last is a multiple of 64 KiB)", n)
			} else {
				w.f("plaintext size", "unknown: %v", err)
			}
		} else {
			w.f("plaintext size", "follows from the stored size and part count (--size, --parts)")
		}
	default:
		w.f("upload", "single PUT (segment 0)")
		w.f("plaintext size", "%d bytes", h.PlaintextSize())
		w.f("ciphertext size", "%d bytes", h.CiphertextSize())
		if size >= 0 && size != h.CiphertextSize() {
			w.f("warning", "stored size %d differs from %d: the object was altered or truncated", size, h.CiphertextSize())
		}
	}
	if c := h.Checksum(); c.Algorithm != stream.ChecksumNone {
		w.f("checksum", "%s %s (declared by the client)", c.Algorithm, base64.StdEncoding.EncodeToString(c.Value))
	} else {
		w.f("checksum", "none declared up front (a trailing one is inside the ciphertext)")
	}
	w.f("metadata", "%d of the %d bytes of user metadata", h.FieldSize(), envelope.MetadataLimit)
}

type lines struct{ w io.Writer }

func (l *lines) f(label, format string, args ...any) {
	fmt.Fprintf(l.w, "%-16s %s\n", label+":", fmt.Sprintf(format, args...))
}

// readMetadata reads head-object's Metadata JSON (or its whole output) and
// parses the s3seal field.
func readMetadata(path string, stdin io.Reader) (envelope.Header, error) {
	raw, err := readSmall(path, stdin, "metadata")
	if err != nil {
		return nil, err
	}
	var doc map[string]json.RawMessage
	if t := strings.TrimSpace(string(raw)); t == "" || t == "null" {
		// What aws s3api head-object --query Metadata prints for an object
		// without user metadata.
		return nil, errors.New(missingFieldHint("", true))
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("metadata file is not a JSON object (expected the output of aws s3api head-object --query Metadata): %v", err)
	}
	for k, v := range doc {
		if k == "Metadata" {
			var inner map[string]json.RawMessage
			if json.Unmarshal(v, &inner) == nil {
				doc = inner
			}
			break
		}
	}
	for k, v := range doc {
		if !envelope.IsReservedMetadata(k) {
			continue
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, errors.New("metadata field s3seal is not a string")
		}
		return envelope.Parse(strings.TrimSpace(s))
	}
	return nil, errors.New(missingFieldHint(describeFields(doc), len(doc) == 0))
}

// partSetRecord returns the part-set record given as a tags file (the
// output of aws s3api get-object-tagging, or a JSON object of tags) or as
// the tag's value; nil if neither is given.
func partSetRecord(tagsFile, value string, stdin io.Reader) (envelope.PartSetRecord, error) {
	if tagsFile != "" && value != "" {
		return nil, errors.New("give --tags or --parts-record, not both")
	}
	if tagsFile != "" {
		raw, err := readSmall(tagsFile, stdin, "tags")
		if err != nil {
			return nil, err
		}
		var doc struct {
			TagSet []struct{ Key, Value string }
		}
		var flat map[string]json.RawMessage
		if json.Unmarshal(raw, &doc) != nil || doc.TagSet == nil {
			if err := json.Unmarshal(raw, &flat); err != nil {
				return nil, fmt.Errorf("tags file is not JSON (expected the output of aws s3api get-object-tagging): %v", err)
			}
		}
		for _, t := range doc.TagSet {
			if t.Key == envelope.PartSetTag {
				value = t.Value
			}
		}
		if v, ok := flat[envelope.PartSetTag]; ok && json.Unmarshal(v, &value) != nil {
			return nil, errors.New("tag s3seal-parts is not a string")
		}
		if value == "" {
			return nil, errors.New("no s3seal-parts tag in the tags file")
		}
	}
	if value == "" {
		return nil, nil
	}
	rec, _, err := envelope.ParsePartSetTag(strings.TrimSpace(value))
	return rec, err
}

// readSmall reads a small JSON document (at most 1 MiB) from path, or from
// stdin if path is "-".
func readSmall(path string, stdin io.Reader, what string) ([]byte, error) {
	var r io.Reader = stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	raw, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	return raw, nil
}
