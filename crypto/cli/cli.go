// Package cli implements s3seal's offline commands on encrypted objects and
// keys: keygen, inspect and decrypt. Each command is a function of its
// arguments and standard streams that returns the process exit code (0
// success, 1 failure, 2 usage error), so that main only dispatches. Errors
// go to stderr; no command ever prints key material.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/s3seal/s3seal/crypto/keys/keyspec"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// Tool holds what the commands take from their environment. The zero value
// uses the real clock, crypto/rand, the process environment and
// context.Background.
type Tool struct {
	// Context bounds key provider calls. nil means context.Background().
	Context context.Context
	// Now is the clock (key names carry the date). nil means time.Now.
	Now func() time.Time
	// Rand is the randomness of new keys. nil means crypto/rand.
	Rand io.Reader
	// Keys are the options for opening key specs (environment lookup, a KMS
	// client for tests).
	Keys keyspec.Options
	// Remote opens the store and keys of s3seal's configuration (the
	// configuration file, "" for the default) for the forms of inspect and
	// decrypt that read an object from the store. nil: those forms are
	// refused with an explanation.
	Remote func(ctx context.Context, configFile string) (*Remote, error)
}

func (t Tool) ctx() context.Context {
	if t.Context == nil {
		return context.Background()
	}
	return t.Context
}

func (t Tool) now() time.Time {
	if t.Now == nil {
		return time.Now()
	}
	return t.Now()
}

// Keygen runs "s3seal keygen" with the default Tool.
func Keygen(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return Tool{}.Keygen(args, stdin, stdout, stderr)
}

// Inspect runs "s3seal inspect" with the default Tool.
func Inspect(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return Tool{}.Inspect(args, stdin, stdout, stderr)
}

// Decrypt runs "s3seal decrypt" with the default Tool.
func Decrypt(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return Tool{}.Decrypt(args, stdin, stdout, stderr)
}

// newFlags returns a flag set that reports to stderr with usage text.
func newFlags(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fmt.Fprintln(stderr, "\nOptions:")
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args and returns an exit code if the command must stop.
func parse(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK, true
		}
		return ExitUsage, true
	}
	return 0, false
}

func usageError(stderr io.Writer, fs *flag.FlagSet, format string, args ...any) int {
	fmt.Fprintf(stderr, "s3seal %s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fmt.Fprintf(stderr, "Run 's3seal %s -h' for usage.\n", fs.Name())
	return ExitUsage
}

func fail(stderr io.Writer, cmd string, format string, args ...any) int {
	fmt.Fprintf(stderr, "s3seal %s: %s\n", cmd, fmt.Sprintf(format, args...))
	return ExitFailure
}
