package cli

import (
	"fmt"
	"io"

	"github.com/s3seal/s3seal/crypto/keys/local"
)

const keygenUsage = `Usage: s3seal keygen -o FILE
       s3seal keygen --append FILE

Creates a local key ring: a file, mode 0600, holding one new random 256-bit
master key. It never overwrites an existing file. With --append it adds a
new key to an existing key ring instead; the new key wraps new data keys and
the older ones still decrypt (key rotation).

Prints the new key's name (never the key). Use the file with
--keys local:FILE, or put its entries in $S3SEAL_KEYRING and use
--keys local:env:S3SEAL_KEYRING. Back the file up: objects encrypted under
its keys cannot be read without it.
`

// Keygen creates a key ring file or appends a key to one.
func (t Tool) Keygen(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("keygen", keygenUsage, stderr)
	out := fs.String("o", "", "write a new key ring to `FILE` (refuses to overwrite)")
	appendTo := fs.String("append", "", "add a new active key to the key ring `FILE`")
	if code, stop := parse(fs, args); stop {
		return code
	}
	switch {
	case fs.NArg() > 0:
		return usageError(stderr, fs, "unexpected argument %q", fs.Arg(0))
	case (*out == "") == (*appendTo == ""):
		return usageError(stderr, fs, "give exactly one of -o FILE and --append FILE")
	}
	var name string
	var err error
	if *out != "" {
		name, err = local.Create(*out, t.Rand, t.now())
	} else {
		name, err = local.Append(*appendTo, t.Rand, t.now())
	}
	if err != nil {
		return fail(stderr, "keygen", "%v", err)
	}
	fmt.Fprintln(stdout, name)
	return ExitOK
}
