package bundle

import (
	"fmt"
	"io"
	"os"
)

// MemorySpool is how much of a bundle's data a builder keeps in memory
// before it spills to a file: a bundle of small objects (a listing batch
// of 100 to 1,000 objects) is built without touching the disk.
const MemorySpool = 16 << 20

// spool holds a bundle's data in order: in memory up to MemorySpool, then
// in a temporary file in dir (created on the first spill).
type spool struct {
	dir  string
	mem  []byte
	file *os.File
	size int64
}

func (s *spool) Write(p []byte) (int, error) {
	if s.file == nil && s.size+int64(len(p)) <= MemorySpool {
		s.mem = append(s.mem, p...)
		s.size += int64(len(p))
		return len(p), nil
	}
	if s.file == nil {
		f, err := os.CreateTemp(s.dir, ".ferry-bundle-spool-*")
		if err != nil {
			return 0, fmt.Errorf("bundle spool: %w", err)
		}
		if _, err := f.Write(s.mem); err != nil {
			f.Close()
			os.Remove(f.Name())
			return 0, fmt.Errorf("bundle spool: %w", err)
		}
		s.file, s.mem = f, nil
	}
	n, err := s.file.WriteAt(p, s.size)
	s.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("bundle spool: %w", err)
	}
	return n, nil
}

// truncate drops the bytes after size (an object whose read failed).
func (s *spool) truncate(size int64) {
	s.size = size
	if s.file == nil {
		s.mem = s.mem[:size]
	}
}

func (s *spool) ReadAt(p []byte, off int64) (int, error) {
	if s.file != nil {
		return s.file.ReadAt(p, off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if off >= s.size {
		return 0, io.EOF
	}
	n := copy(p, s.mem[off:s.size])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (s *spool) Close() error {
	s.mem = nil
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
