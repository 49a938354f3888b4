package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/ferry-dev/ferry/internal/store"
)

// Compile-time checks of the interfaces Store implements.
var (
	_ store.Store       = (*Store)(nil)
	_ store.Multipart   = (*Store)(nil)
	_ store.LocalReader = (*Store)(nil)
)

// tmpPrefix starts the names of ferry's temporary files. Such names are never
// listed and cannot be used in keys.
const tmpPrefix = ".ferry-tmp-"

// maxKeyLen is the longest key in bytes, as in S3.
const maxKeyLen = 1024

// Options configure a [Store]. The zero value is the default.
type Options struct {
	// Logger receives warnings (skipped symlinks and names, dropped
	// metadata). nil means slog.Default().
	Logger *slog.Logger
	// NoSync skips fsync of files and directories after writes. Writes stay
	// atomic but may be lost on a crash. For tests and scratch space.
	NoSync bool
}

// Store is a local directory used as an object store. It is safe for
// concurrent use. Close releases the directory and aborts unfinished
// multipart uploads.
type Store struct {
	path string
	root *os.Root
	opts Options
	log  *slog.Logger

	xattrWarn sync.Once // warns once when metadata cannot be kept

	mu      sync.Mutex
	uploads map[string]*upload
}

// Open opens the existing directory root as a store. If root does not exist
// or is not a directory, the error wraps [store.ErrBucketNotExist].
func Open(root string, opts Options) (*Store, error) {
	fi, err := os.Stat(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("local: open %s: %w", root, store.ErrBucketNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("local: open: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("local: open %s: not a directory: %w", root, store.ErrBucketNotExist)
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("local: open: %w", err)
	}
	return FromRoot(r, root, opts), nil
}

// FromRoot makes a store of the directory r, already opened (for example
// below a directory the caller confines it to, with [os.Root.OpenRoot]).
// name is the directory's path for messages. The store owns r: Close
// closes it.
func FromRoot(r *os.Root, name string, opts Options) *Store {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Store{path: name, root: r, opts: opts, log: log, uploads: make(map[string]*upload)}
}

// Create opens root as a store with default [Options], first creating the
// directory if it does not exist. Its parent must exist; otherwise the error
// wraps [store.ErrBucketNotExist].
func Create(root string) (*Store, error) {
	err := os.Mkdir(root, 0o777)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("local: create %s: parent directory does not exist: %w", root, store.ErrBucketNotExist)
	}
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("local: create: %w", err)
	}
	return Open(root, Options{})
}

// String returns the root directory as given to Open.
func (s *Store) String() string { return s.path }

// Close aborts the unfinished multipart uploads and closes the root
// directory. The Store must not be used afterwards.
func (s *Store) Close() error {
	s.mu.Lock()
	ups := s.uploads
	s.uploads = make(map[string]*upload)
	s.mu.Unlock()
	for _, u := range ups {
		u.abort(s)
	}
	if err := s.root.Close(); err != nil {
		return fmt.Errorf("local: close %s: %w", s.path, err)
	}
	return nil
}

// checkKey validates key for this store. See [SafePath].
func checkKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("empty key: %w", store.ErrInvalidKey)
	case len(key) > maxKeyLen:
		return fmt.Errorf("key %.40q... longer than %d bytes: %w", key, maxKeyLen, store.ErrInvalidKey)
	case !utf8.ValidString(key):
		return fmt.Errorf("key %q is not valid UTF-8: %w", key, store.ErrInvalidKey)
	case strings.IndexByte(key, 0) >= 0:
		return fmt.Errorf("key %q contains NUL: %w", key, store.ErrUnsafeKey)
	case key[0] == '/':
		return fmt.Errorf("key %q is absolute: %w", key, store.ErrUnsafeKey)
	}
	body := strings.TrimSuffix(key, "/")
	for seg := range strings.SplitSeq(body, "/") {
		switch {
		case seg == "":
			return fmt.Errorf("key %q has an empty path segment: %w", key, store.ErrUnsafeKey)
		case seg == "." || seg == "..":
			return fmt.Errorf("key %q has a %q path segment: %w", key, seg, store.ErrUnsafeKey)
		case strings.HasPrefix(seg, tmpPrefix):
			return fmt.Errorf("key %q uses the reserved name %q: %w", key, tmpPrefix+"*", store.ErrUnsafeKey)
		case filepath.Separator != '/' && strings.ContainsRune(seg, filepath.Separator):
			return fmt.Errorf("key %q contains a path separator: %w", key, store.ErrUnsafeKey)
		}
	}
	return nil
}

// SafePath maps key to its path under the directory root, or returns an error
// wrapping [store.ErrUnsafeKey] or [store.ErrInvalidKey] when the key cannot
// name a file inside root: NUL, a leading "/", empty, "." or ".." segments, a
// reserved ".ferry-tmp-" name, invalid UTF-8, more than 1024 bytes. A
// directory marker ("a/b/") maps to its directory. The mapping is lexical:
// the Store also refuses symbolic links on the way.
func SafePath(root, key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	return filepath.Join(root, filepath.FromSlash(strings.TrimSuffix(key, "/"))), nil
}

// randomName returns a fresh temporary file name.
func randomName() string {
	var b [12]byte
	rand.Read(b[:])
	return tmpPrefix + hex.EncodeToString(b[:])
}

// ctxReader fails reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// copyBufs holds buffers for copying bodies into files.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// copyExact copies exactly n bytes from r to w; a short body is
// io.ErrUnexpectedEOF, a longer one an error.
func copyExact(ctx context.Context, w io.Writer, r io.Reader, n int64) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	cr := ctxReader{ctx, r}
	got, err := io.CopyBuffer(w, io.LimitReader(cr, n), *bp)
	if err != nil {
		return err
	}
	if got < n {
		return fmt.Errorf("body has %d bytes, want %d: %w", got, n, io.ErrUnexpectedEOF)
	}
	var one [1]byte
	if m, _ := io.ReadFull(cr, one[:]); m > 0 {
		return fmt.Errorf("body longer than %d bytes", n)
	}
	return ctx.Err()
}

// ReadsLocally reports true: Open reads files of the local file system on this machine.
func (s *Store) ReadsLocally() bool { return true }
