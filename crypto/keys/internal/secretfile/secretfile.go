// Package secretfile opens files that hold secrets (key rings, PINs,
// private keys, age identities) the careful way: without following a
// symbolic link, and refusing a file that is not regular, that group or
// others may access, or that another user than the effective user owns.
// The checks are made on the opened descriptor, so the file checked is the
// file read. It also reads the public files beside them (age recipients)
// with a size bound, and creates new secret files 0600, never over an
// existing one.
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
	return readAtMost(f, path, max, what)
}

func readAtMost(f *os.File, path string, max int64, what string) ([]byte, error) {
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

// ReadPublic reads a file that holds no secret (a recipients file): it
// must be a regular file of at most max bytes; its mode and owner are not
// checked.
func ReadPublic(path string, max int64, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %s: %w", what, path, ErrNotRegular)
	}
	return readAtMost(f, path, max, what)
}

// Create writes text to a new file at path, mode 0600. It never
// overwrites: if path exists, the error satisfies errors.Is(err,
// fs.ErrExist). A file it could not write completely is removed.
func Create(path string, text []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
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
