package runner

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
)

// spool keeps the keys a sync will delete in a temporary file, so that the
// deletes wait until the plan completed without holding them in memory.
type spool struct {
	f *os.File
	w *bufio.Writer
}

func newSpool() (*spool, error) {
	f, err := os.CreateTemp("", "ferry-deletes-*")
	if err != nil {
		return nil, fmt.Errorf("delete spool: %w", err)
	}
	_ = os.Remove(f.Name()) // unlinked: vanishes with the process
	return &spool{f: f, w: bufio.NewWriter(f)}, nil
}

// Add records one key (quoted, so keys with newlines survive).
func (s *spool) Add(key string) error {
	if _, err := s.w.WriteString(strconv.Quote(key) + "\n"); err != nil {
		return fmt.Errorf("delete spool: %w", err)
	}
	return nil
}

// Each calls fn for every key in the order added; it stops at fn's first error.
func (s *spool) Each(fn func(key string) error) error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("delete spool: %w", err)
	}
	if _, err := s.f.Seek(0, 0); err != nil {
		return fmt.Errorf("delete spool: %w", err)
	}
	sc := bufio.NewScanner(s.f)
	sc.Buffer(make([]byte, 64*1024), 64*1024)
	for sc.Scan() {
		key, err := strconv.Unquote(sc.Text())
		if err != nil {
			return fmt.Errorf("delete spool: %w", err)
		}
		if err := fn(key); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("delete spool: %w", err)
	}
	return nil
}

// Close removes the spool.
func (s *spool) Close() error { return s.f.Close() }
