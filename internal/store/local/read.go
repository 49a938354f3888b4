package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"

	"github.com/ferry-dev/ferry/internal/store"
)

// openObject opens the file (or, for a directory marker, the directory) key
// and returns it with its attributes and metadata. Symlinks and special files
// are not objects: they are reported as missing.
func (s *Store) openObject(ctx context.Context, key string) (*os.File, store.Attrs, meta, error) {
	if err := checkKey(key); err != nil {
		return nil, store.Attrs{}, meta{}, err
	}
	if err := ctx.Err(); err != nil {
		return nil, store.Attrs{}, meta{}, err
	}
	dirs, name := splitKey(key)
	marker := name == ""
	if marker {
		dirs, name = dirs[:len(dirs)-1], dirs[len(dirs)-1]
	}
	d, _, err := s.openDirs(dirs, false)
	if errors.Is(err, errNoParent) {
		return nil, store.Attrs{}, meta{}, store.ErrNotExist
	}
	if err != nil {
		return nil, store.Attrs{}, meta{}, err
	}
	defer d.close()
	fi, err := d.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, store.Attrs{}, meta{}, store.ErrNotExist
	}
	if err != nil {
		return nil, store.Attrs{}, meta{}, err
	}
	if (marker && !fi.IsDir()) || (!marker && !fi.Mode().IsRegular()) {
		return nil, store.Attrs{}, meta{}, store.ErrNotExist
	}
	f, err := d.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, store.Attrs{}, meta{}, store.ErrNotExist
	}
	if err != nil {
		return nil, store.Attrs{}, meta{}, err
	}
	st, err := f.Stat()
	if err == nil && !os.SameFile(fi, st) {
		// Replaced between Lstat and Open (perhaps by a symlink).
		err = fmt.Errorf("replaced while opening: %w", store.ErrNotExist)
	}
	var m meta
	if err == nil {
		m, err = readMeta(f)
	}
	if err != nil {
		f.Close()
		return nil, store.Attrs{}, meta{}, err
	}
	return f, attrs(key, st, m), m, nil
}

// Stat returns the attributes of key, or an error wrapping
// [store.ErrNotExist].
func (s *Store) Stat(ctx context.Context, key string) (store.Attrs, error) {
	f, a, _, err := s.openObject(ctx, key)
	if err != nil {
		return store.Attrs{}, fmt.Errorf("local: stat %q: %w", key, err)
	}
	f.Close()
	return a, nil
}

// Tags returns the object's tags, an empty map when it has none.
func (s *Store) Tags(ctx context.Context, key string) (map[string]string, error) {
	f, _, m, err := s.openObject(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("local: tags %q: %w", key, err)
	}
	f.Close()
	tags := make(map[string]string, len(m.Tags))
	maps.Copy(tags, m.Tags)
	return tags, nil
}

// Open reads length bytes of key from offset (length < 0: to the end).
// Reading past the end returns fewer bytes; an offset beyond the end is an
// error. Reads fail once ctx is done.
func (s *Store) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, store.Attrs, error) {
	f, a, m, err := s.openObject(ctx, key)
	if err != nil {
		return nil, store.Attrs{}, fmt.Errorf("local: open %q: %w", key, err)
	}
	if offset < 0 || offset > a.Size {
		f.Close()
		return nil, store.Attrs{}, fmt.Errorf("local: open %q: offset %d outside object of %d bytes", key, offset, a.Size)
	}
	n := a.Size - offset
	if length >= 0 && length < n {
		n = length
	}
	return &reader{r: ctxReader{ctx, io.NewSectionReader(f, offset, n)}, f: f, key: key, m: m}, a, nil
}

// reader is what Open returns.
type reader struct {
	r   io.Reader
	f   *os.File
	key string
	m   meta
}

// Restat returns the attributes of the file being read from the open file
// (fstat), without looking its path up again: a transfer checks with it
// that the file did not change while it was read ([store.Restatter]).
func (r *reader) Restat() (store.Attrs, error) {
	st, err := r.f.Stat()
	if err != nil {
		return store.Attrs{}, fmt.Errorf("local: stat %q: %w", r.key, err)
	}
	return attrs(r.key, st, r.m), nil
}

func (r *reader) Read(p []byte) (int, error) { return r.r.Read(p) }
func (r *reader) Close() error               { return r.f.Close() }
