package bundle

import (
	"fmt"
	"io"
	"os"
)

// spool holds a bundle's data in order in a temporary file in dir,
// created on the first write. (Keeping bundles of up to 16 MiB in memory
// instead was measured on issue 11's case 9: more CPU, in page faults, and
// twice the RSS, so the file stays.)
type spool struct {
	dir  string
	file *os.File
	size int64
}

func (s *spool) Write(p []byte) (int, error) {
	if s.file == nil {
		f, err := os.CreateTemp(s.dir, ".ferry-bundle-spool-*")
		if err != nil {
			return 0, fmt.Errorf("bundle spool: %w", err)
		}
		s.file = f
	}
	n, err := s.file.WriteAt(p, s.size)
	s.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("bundle spool: %w", err)
	}
	return n, nil
}

// truncate drops the bytes after size (an object whose read failed).
func (s *spool) truncate(size int64) { s.size = size }

func (s *spool) ReadAt(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if s.file == nil || off >= s.size {
		return 0, io.EOF
	}
	return s.file.ReadAt(p, off)
}

func (s *spool) Close() error {
	if s.file == nil {
		return nil
	}
	name := s.file.Name()
	err := s.file.Close()
	s.file = nil
	if rerr := os.Remove(name); rerr != nil && err == nil {
		err = fmt.Errorf("remove bundle spool: %w", rerr)
	}
	return err
}
