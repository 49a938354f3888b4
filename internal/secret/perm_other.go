//go:build !unix

package secret

import "os"

// checkPerm: Windows permissions are ACLs, not mode bits; rely on the
// profile directory's ACL.
func checkPerm(string, os.FileInfo) error { return nil }
