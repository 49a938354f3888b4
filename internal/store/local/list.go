package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/ferry-dev/ferry/internal/store"
)

// entry is one listable name of a directory.
type entry struct {
	// seg is the name, followed by "/" for a directory: the part of the key
	// the entry contributes, which sorts in key order.
	seg string
}

func (e entry) isDir() bool  { return strings.HasSuffix(e.seg, "/") }
func (e entry) name() string { return strings.TrimSuffix(e.seg, "/") }

// List yields the objects under opts.Prefix after opts.StartAfter in
// ascending byte order of key; see the package documentation. It reads one
// directory at a time, and stops with an error as the last pair when ctx is
// done.
func (s *Store) List(ctx context.Context, opts store.ListOptions) iter.Seq2[store.Object, error] {
	return func(yield func(store.Object, error) bool) {
		l := &lister{s: s, ctx: ctx, opts: opts, yield: yield}
		if err := l.run(); err != nil {
			yield(store.Object{}, fmt.Errorf("local: list %s: %w", s.path, err))
		}
	}
}

// lister is the state of one listing.
type lister struct {
	s     *Store
	ctx   context.Context
	opts  store.ListOptions
	yield func(store.Object, error) bool
}

// errStop ends a listing whose consumer stopped.
var errStop = errors.New("stop")

func (l *lister) run() error {
	if err := l.ctx.Err(); err != nil {
		return err
	}
	// Start in the deepest directory the prefix names: prefix
	// "photos/2020/ja" starts in "photos/2020".
	dirKey := l.opts.Prefix[:strings.LastIndexByte(l.opts.Prefix, '/')+1]
	var dirs []string
	if dirKey != "" {
		dirs = strings.Split(strings.TrimSuffix(dirKey, "/"), "/")
		for _, d := range dirs {
			if d == "" || d == "." || d == ".." || strings.HasPrefix(d, tmpPrefix) || !utf8.ValidString(d) {
				return nil // no file has such a key
			}
		}
	}
	d, _, err := l.s.openDirs(dirs, false)
	if errors.Is(err, errNoParent) || errors.Is(err, store.ErrUnsafeKey) {
		return nil // missing, or behind a symlink or file: nothing listed
	}
	if err != nil {
		return err
	}
	defer d.close()
	entries, empty, err := l.readDir(d.Root, dirKey)
	if err != nil {
		return err
	}
	if empty {
		// An empty start directory is itself a marker when the prefix
		// names it ("photos/").
		if dirKey != "" && dirKey == l.opts.Prefix && l.wantKey(dirKey) {
			fi, err := d.Stat(".")
			if err != nil {
				return err
			}
			return l.emit(store.Object{Key: dirKey, LastModified: fi.ModTime()})
		}
		return nil
	}
	err = l.walk(d.Root, dirKey, entries)
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// wantKey reports whether key is to be listed.
func (l *lister) wantKey(key string) bool {
	return strings.HasPrefix(key, l.opts.Prefix) && key > l.opts.StartAfter
}

// wantTree reports whether the tree of keys starting with dir (which ends in
// "/") may hold a key to list: it meets the prefix, and it does not lie
// entirely at or before StartAfter.
func (l *lister) wantTree(dir string) bool {
	p, sa := l.opts.Prefix, l.opts.StartAfter
	if !strings.HasPrefix(dir, p) && !strings.HasPrefix(p, dir) {
		return false
	}
	return dir > sa || strings.HasPrefix(sa, dir)
}

// need reports whether anything under entry e of directory dirKey is to be
// listed, as far as StartAfter goes. It is monotone over sorted entries.
func (l *lister) need(dirKey string, e entry) bool {
	key := dirKey + e.seg
	if e.isDir() {
		return key > l.opts.StartAfter || strings.HasPrefix(l.opts.StartAfter, key)
	}
	return key > l.opts.StartAfter
}

func (l *lister) emit(o store.Object) error {
	if !l.yield(o, nil) {
		return errStop
	}
	return nil
}

// walk lists the sorted entries of the directory d, whose keys start with
// dirKey, descending into sub-directories.
func (l *lister) walk(d *os.Root, dirKey string, entries []entry) error {
	// Skip, by binary search, the entries entirely at or before StartAfter.
	start := sort.Search(len(entries), func(i int) bool { return l.need(dirKey, entries[i]) })
	for _, e := range entries[start:] {
		if err := l.ctx.Err(); err != nil {
			return err
		}
		key := dirKey + e.seg
		if !e.isDir() {
			if !l.wantKey(key) {
				continue
			}
			fi, err := d.Lstat(e.name())
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed since read
			}
			if err != nil {
				return err
			}
			if !fi.Mode().IsRegular() {
				continue // replaced since read
			}
			if err := l.emit(store.Object{Key: key, Size: fi.Size(), LastModified: fi.ModTime()}); err != nil {
				return err
			}
			continue
		}
		if !l.wantTree(key) {
			continue
		}
		if err := l.walkDir(d, key, e.name()); err != nil {
			return err
		}
	}
	return nil
}

// walkDir lists the sub-directory name of d whose keys start with key.
func (l *lister) walkDir(d *os.Root, key, name string) error {
	sub, _, err := l.s.openSubdir(d, name, false)
	if errors.Is(err, errNoParent) || errors.Is(err, store.ErrUnsafeKey) {
		return nil // removed or replaced since read
	}
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	defer sub.Close()
	children, empty, err := l.readDir(sub, key)
	if err != nil {
		return err
	}
	if empty {
		if !l.wantKey(key) {
			return nil
		}
		fi, err := sub.Stat(".")
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		return l.emit(store.Object{Key: key, LastModified: fi.ModTime()})
	}
	return l.walk(sub, key, children)
}

// readDir returns the listable entries of the directory d (whose keys start
// with dirKey), sorted in key order, and whether the directory is empty: a
// directory marker. Symlinks, special files, temporary files and names that
// are not valid UTF-8 are left out, with a warning for all but the temporary
// files; a directory holding only such names is not empty.
func (l *lister) readDir(d *os.Root, dirKey string) (entries []entry, empty bool, err error) {
	f, err := d.Open(".")
	if err != nil {
		return nil, false, fmt.Errorf("read directory %q: %w", dirKey, err)
	}
	defer f.Close()
	empty = true
	for {
		if err := l.ctx.Err(); err != nil {
			return nil, false, err
		}
		des, err := f.ReadDir(1024)
		if len(des) > 0 {
			empty = false
		}
		for _, de := range des {
			if e, ok := l.entry(dirKey, de); ok {
				entries = append(entries, e)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false, fmt.Errorf("read directory %q: %w", dirKey, err)
		}
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.seg, b.seg) })
	return entries, empty, nil
}

// entry converts a directory entry, reporting false when it is not listed.
func (l *lister) entry(dirKey string, de fs.DirEntry) (entry, bool) {
	name := de.Name()
	if strings.HasPrefix(name, tmpPrefix) {
		return entry{}, false
	}
	path := func() string { return fmt.Sprintf("%q", l.s.path+string(os.PathSeparator)+dirKey+name) }
	if !utf8.ValidString(name) {
		l.s.log.Warn("local: skipping file whose name is not valid UTF-8", "path", path())
		return entry{}, false
	}
	switch t := de.Type(); {
	case t.IsRegular():
		return entry{seg: name}, true
	case t.IsDir():
		return entry{seg: name + "/"}, true
	case t&fs.ModeSymlink != 0:
		l.s.log.Warn("local: not following symbolic link", "path", path())
	default:
		l.s.log.Warn("local: skipping special file", "path", path(), "type", t.String())
	}
	return entry{}, false
}
