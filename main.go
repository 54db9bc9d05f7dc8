// Command s3seal is an encrypting HTTPS reverse proxy for S3.
//
//	s3seal serve     run the proxy (configuration: --config FILE, S3SEAL_* and AWS_* variables)
//	s3seal demo      run s3seal in front of an embedded S3 store in a local folder
//	s3seal keygen    create a local key ring, or an age identity (--age)
//	s3seal inspect   show what an object's s3seal metadata says
//	s3seal decrypt   decrypt a downloaded object without a running proxy
//	s3seal rewrap    move every object under a prefix to the active key
//	s3seal version   print the version
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"
)

const usage = `s3seal: an encrypting HTTPS reverse proxy for S3

Usage:
  s3seal serve [--config FILE] [flags]   run the proxy
  s3seal demo [--dir DIR]                run s3seal in front of an embedded S3 store
  s3seal keygen -o FILE                  create a local key ring
  s3seal keygen --age -o FILE            create an age identity, print its recipient
  s3seal inspect --metadata FILE         show what an object's metadata says
  s3seal decrypt --keys SPEC|--identity FILE --metadata FILE --bucket B --key K IN OUT
                                         decrypt a downloaded object offline
  s3seal rewrap --bucket B [flags]       move objects to the active key (key rotation)
  s3seal healthcheck [--ready] [--url URL]
                                         check the admin listener (container HEALTHCHECK)
  s3seal version                         print the version

Run "s3seal COMMAND -h" for a command's flags. The configuration reference
is in the README.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		return serve(ctx, rest, stdout, stderr)
	case "demo":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		return demo(ctx, rest, stdout, stderr)
	case "keygen", "inspect", "decrypt":
		return offline(cmd, rest, stdin, stdout, stderr)
	case "rewrap":
		// rewrapCommand handles SIGINT/SIGTERM itself: the first signal
		// lets objects in flight finish and saves progress.
		return rewrapCommand(context.Background(), rest, stdout, stderr)
	case "healthcheck":
		return healthcheck(rest, stdout, stderr)
	case "version", "--version":
		v := version()
		fmt.Fprintln(stdout, "s3seal", v)
		if v == "dev" {
			fmt.Fprintln(stderr, "s3seal: this build carries no version: build from a git clone with -buildvcs=true (or -ldflags \"-X main.buildVersion=VERSION\")")
		}
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "s3seal: unknown command %q\n\n%s", cmd, usage)
	return 2
}

// buildVersion is the release version, stamped by release builds with
// -ldflags "-X main.buildVersion=v1.2.3". Other builds describe themselves
// from the version control information Go records (see versionFrom).
var buildVersion string

// version is s3seal's version, as reported by "s3seal version", in the
// start-up log and in s3seal_build_info.
func version() string {
	bi, _ := debug.ReadBuildInfo()
	return versionFrom(bi, buildVersion)
}

// versionFrom describes a build: the -ldflags version when set, else the
// main module's version when Go derived one (a tagged module or a
// pseudo-version), else the commit and its time from vcs.revision and
// vcs.time, with "+dirty" when vcs.modified; "dev" when the build carries
// none of these (for example "go run", or -buildvcs=false).
func versionFrom(bi *debug.BuildInfo, override string) string {
	if override != "" {
		return override
	}
	if bi == nil {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, at string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	v := "dev-" + rev
	if at != "" {
		if t, err := time.Parse(time.RFC3339, at); err == nil {
			v = "dev-" + t.UTC().Format("20060102150405") + "-" + rev
		}
	}
	if dirty {
		v += "+dirty"
	}
	return v
}
