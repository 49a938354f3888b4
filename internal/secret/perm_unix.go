//go:build unix

package secret

import (
	"fmt"
	"os"
	"syscall"
)

// checkPerm refuses a file or directory that group or others may use, or
// that another user owns, as ssh refuses an unprotected private key.
func checkPerm(path string, fi os.FileInfo) error {
	want, fix := "600", "chmod 600 "
	if fi.IsDir() {
		want, fix = "700", "chmod 700 "
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return fmt.Errorf("%s is accessible by group or others (mode %04o, want %s); ferry refuses to use it: run '%s%s'", path, m, want, fix, path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s is owned by uid %d, not by you (uid %d); ferry refuses to use it", path, st.Uid, os.Geteuid())
	}
	return nil
}
