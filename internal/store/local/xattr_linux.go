//go:build linux

package local

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

var (
	errXattrUnsupported = errors.New("extended attributes not supported")
	errNoXattr          = errors.New("no such extended attribute")
)

func mapXattrErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENOTSUP), errors.Is(err, unix.EOPNOTSUPP):
		return errXattrUnsupported
	case errors.Is(err, unix.ENODATA):
		return errNoXattr
	}
	return err
}

func fsetxattr(f *os.File, name string, data []byte) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.Fsetxattr(int(fd), name, data, 0)
	}); err != nil {
		return err
	}
	return mapXattrErr(serr)
}

func fgetxattr(f *os.File, name string) ([]byte, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var (
		data []byte
		serr error
	)
	if err := rc.Control(func(fd uintptr) {
		buf := make([]byte, 1024)
		for range 4 {
			var n int
			n, serr = unix.Fgetxattr(int(fd), name, buf)
			if serr == nil {
				data = buf[:n]
				return
			}
			if serr != unix.ERANGE {
				return
			}
			// Too small: ask for the size and retry (it may grow meanwhile).
			if n, serr = unix.Fgetxattr(int(fd), name, nil); serr != nil {
				return
			}
			buf = make([]byte, n+64)
		}
	}); err != nil {
		return nil, err
	}
	return data, mapXattrErr(serr)
}
