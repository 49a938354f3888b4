//go:build !unix

package fslock

import "os"

func lock(*os.File, bool) error { return nil }
func unlock(*os.File) error     { return nil }

func lockShared(*os.File) error { return nil }
