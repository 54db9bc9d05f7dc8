// Package keyfile reads and creates the files key providers keep keys in
// (key rings, age identities and recipients): regular files of bounded
// size, secret ones refused when group or others can access them, new ones
// created 0600 and never over an existing file.
package keyfile

import (
	"fmt"
	"io"
	"os"
	"runtime"
)

// Read returns the contents of the file at path, at most limit bytes (a
// longer file is an error). what names the file in errors ("key ring").
// If secret is set, a file that group or others may read or write is
// refused (except on Windows, which has no such modes).
func Read(path, what string, secret bool, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %s is not a regular file", what, path)
	}
	if secret && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s %s has mode %04o, so group or others can access it; run chmod 600 %s", what, path, fi.Mode().Perm(), path)
	}
	text, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		clear(text)
		return nil, fmt.Errorf("reading %s %s: %w", what, path, err)
	}
	if int64(len(text)) > limit {
		clear(text)
		return nil, fmt.Errorf("%s %s is larger than %d bytes", what, path, limit)
	}
	return text, nil
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
