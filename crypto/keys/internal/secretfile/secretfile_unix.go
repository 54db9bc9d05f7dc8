//go:build unix

package secretfile

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// oNoFollow makes opening a symbolic link fail (ELOOP) instead of opening
// its target.
const oNoFollow = syscall.O_NOFOLLOW

// isSymlinkErr reports whether err, from opening path with oNoFollow, means
// that path is a symbolic link.
func isSymlinkErr(path string, err error) bool {
	if errors.Is(err, syscall.ELOOP) {
		return true
	}
	fi, lerr := os.Lstat(path)
	return lerr == nil && fi.Mode()&fs.ModeSymlink != 0
}

// fileOwner returns the uid owning fi and the effective uid.
func fileOwner(fi fs.FileInfo) (owner, me int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), os.Geteuid(), true
}
