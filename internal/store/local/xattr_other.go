//go:build !linux

package local

import (
	"errors"
	"os"
)

var (
	errXattrUnsupported = errors.New("extended attributes not supported")
	errNoXattr          = errors.New("no such extended attribute")
)

func fsetxattr(*os.File, string, []byte) error   { return errXattrUnsupported }
func fgetxattr(*os.File, string) ([]byte, error) { return nil, errXattrUnsupported }
