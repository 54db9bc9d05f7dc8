// Package secretfile opens files that hold secrets (key rings, PINs,
// private keys) the careful way: without following a symbolic link, and
// refusing a file that is not regular, that group or others may access, or
// that another user than the effective user owns. The checks are made on
// the opened descriptor, so the file checked is the file read.
package secretfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
)

// Open opens path with flag and checks it. what names the file in errors
// ("key ring", "PIN file").
func Open(path string, flag int, what string) (*os.File, error) {
	f, err := os.OpenFile(path, flag|oNoFollow, 0)
	if err != nil {
		if isSymlinkErr(path, err) {
			return nil, fmt.Errorf("%s %s is a symbolic link; name the file itself", what, path)
		}
		return nil, err
	}
	if err := check(f, path, what); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Read opens path, checks it and reads at most max bytes of it; a longer
// file is an error. The caller should clear the result when done.
func Read(path string, max int64, what string) ([]byte, error) {
	f, err := Open(path, os.O_RDONLY, what)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		clear(b)
		return nil, fmt.Errorf("reading %s %s: %w", what, path, err)
	}
	if int64(len(b)) > max {
		clear(b)
		return nil, fmt.Errorf("%s %s is larger than %d bytes", what, path, max)
	}
	return b, nil
}

// ErrNotRegular is wrapped by the error for a path that is not a regular
// file.
var ErrNotRegular = errors.New("not a regular file")

func check(f *os.File, path, what string) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s %s: %w", what, path, ErrNotRegular)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s %s has mode %04o, so group or others can access it; run chmod 600 %s", what, path, fi.Mode().Perm(), path)
	}
	if owner, me, ok := fileOwner(fi); ok && owner != me {
		return fmt.Errorf("%s %s is owned by uid %d, not by the user s3seal runs as (uid %d); run chown %d %s", what, path, owner, me, me, path)
	}
	return nil
}
