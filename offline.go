package main

import (
	"fmt"
	"io"
)

// offline runs the offline key and object commands.
func offline(cmd string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fmt.Fprintf(stderr, "s3seal %s: not available in this build\n", cmd)
	return 1
}
