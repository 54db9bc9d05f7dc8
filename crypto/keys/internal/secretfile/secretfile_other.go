//go:build !unix

package secretfile

import "io/fs"

// oNoFollow is 0 where the platform has no O_NOFOLLOW.
const oNoFollow = 0

func isSymlinkErr(string, error) bool { return false }

// fileOwner reports no owner where files have no Unix owner.
func fileOwner(fs.FileInfo) (owner, me int, ok bool) { return 0, 0, false }
