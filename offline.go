package main

import (
	"io"

	"github.com/s3seal/s3seal/crypto/cli"
)

// offline runs the offline key and object commands, which need no running
// proxy: data is never hostage to s3seal being up.
func offline(cmd string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	switch cmd {
	case "keygen":
		return cli.Keygen(args, stdin, stdout, stderr)
	case "inspect":
		return cli.Inspect(args, stdin, stdout, stderr)
	default:
		return cli.Decrypt(args, stdin, stdout, stderr)
	}
}
