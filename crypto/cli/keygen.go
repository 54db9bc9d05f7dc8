package cli

import (
	"fmt"
	"io"

	"github.com/s3seal/s3seal/crypto/keys/age"
	"github.com/s3seal/s3seal/crypto/keys/local"
)

const keygenUsage = `Usage: s3seal keygen -o FILE
       s3seal keygen --append FILE
       s3seal keygen --age -o IDENTITY-FILE [--classical]

Creates a local key ring: a file, mode 0600, holding one new random 256-bit
master key. It never overwrites an existing file. With --append it adds a
new key to an existing key ring instead; the new key wraps new data keys and
the older ones still decrypt (key rotation).

Prints the new key's name (never the key). Use the file with
--keys local:FILE, or put its entries in $S3SEAL_KEYRING and use
--keys local:env:S3SEAL_KEYRING. Back the file up: objects encrypted under
its keys cannot be read without it.

With --age it creates an age identity instead (a post-quantum hybrid
ML-KEM-768 + X25519 key pair, as age-keygen -pq makes): the file, mode 0600,
holds the secret key; the public key (the recipient, age1pq1…) is printed on
standard output. Put recipients in a recipients file for a write-only
gateway (--keys age:RECIPIENTS-FILE); keep the identity where data is read
(--keys age:RECIPIENTS-FILE,identity=IDENTITY-FILE, or s3seal decrypt
--identity IDENTITY-FILE). For example:

  s3seal keygen --age -o /secure/backup-reader.key >> recipients.txt

--classical makes an X25519 key pair instead, which is not safe against
quantum computers; recipients files that use it need allow_classical=true.
`

// Keygen creates a key ring file or appends a key to one, or creates an
// age identity file.
func (t Tool) Keygen(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("keygen", keygenUsage, stderr)
	out := fs.String("o", "", "write a new key ring (or with --age, identity) to `FILE` (refuses to overwrite)")
	appendTo := fs.String("append", "", "add a new active key to the key ring `FILE`")
	ageKey := fs.Bool("age", false, "create an age identity and print its recipient")
	classical := fs.Bool("classical", false, "with --age: an X25519 key pair, not post-quantum")
	if code, stop := parse(fs, args); stop {
		return code
	}
	switch {
	case fs.NArg() > 0:
		return usageError(stderr, fs, "unexpected argument %q", fs.Arg(0))
	case *ageKey && *out == "":
		return usageError(stderr, fs, "--age needs -o IDENTITY-FILE")
	case *ageKey && *appendTo != "":
		return usageError(stderr, fs, "--append applies to key rings, not to --age")
	case *classical && !*ageKey:
		return usageError(stderr, fs, "--classical applies only with --age")
	case (*out == "") == (*appendTo == ""):
		return usageError(stderr, fs, "give exactly one of -o FILE and --append FILE")
	}
	if *ageKey {
		recipient, err := age.CreateIdentity(*out, *classical, t.now())
		if err != nil {
			return fail(stderr, "keygen", "%v", err)
		}
		if *classical {
			fmt.Fprintln(stderr, "s3seal keygen: warning: an X25519 key is not safe against quantum computers; recipients files that list it need allow_classical=true")
		}
		fmt.Fprintln(stdout, recipient)
		return ExitOK
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
