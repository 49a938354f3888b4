package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/ferry-dev/ferry/internal/store"
)

var _ store.LevelLister = (*Store)(nil)

// ListLevel yields one level under opts.Prefix: the files of the directory
// the prefix names (or of its parent, for a prefix that does not end in
// "/", filtered by the rest of the prefix), and each sub-directory as the
// common prefix "name/", empty or not. An empty directory is a common prefix
// at its parent's level and a directory marker at its own, as [Store.List]
// lists it. A sub-directory holding only names List skips (symbolic links,
// special files) is still a common prefix. It reads the directory once and
// sorts its names as List does.
func (s *Store) ListLevel(ctx context.Context, opts store.ListOptions) iter.Seq2[store.Entry, error] {
	return func(yield func(store.Entry, error) bool) {
		if err := s.listLevel(ctx, opts, yield); err != nil && !errors.Is(err, errStop) {
			yield(store.Entry{}, fmt.Errorf("local: list level %s: %w", s.path, err))
		}
	}
}

func (s *Store) listLevel(ctx context.Context, opts store.ListOptions, yield func(store.Entry, error) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	emit := func(e store.Entry) error {
		if !yield(e, nil) {
			return errStop
		}
		return nil
	}
	l := &lister{s: s, ctx: ctx, opts: opts}
	dirKey := opts.Prefix[:strings.LastIndexByte(opts.Prefix, '/')+1]
	var dirs []string
	if dirKey != "" {
		dirs = strings.Split(strings.TrimSuffix(dirKey, "/"), "/")
		for _, d := range dirs {
			if d == "" || d == "." || d == ".." || strings.HasPrefix(d, tmpPrefix) || !utf8.ValidString(d) {
				return nil // no file has such a key
			}
		}
	}
	d, _, err := s.openDirs(dirs, false)
	if errors.Is(err, errNoParent) || errors.Is(err, store.ErrUnsafeKey) {
		return nil
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
		if dirKey != "" && dirKey == opts.Prefix && l.wantKey(dirKey) {
			fi, err := d.Stat(".")
			if err != nil {
				return err
			}
			return emit(store.Entry{Object: store.Object{Key: dirKey, LastModified: fi.ModTime()}})
		}
		return nil
	}
	// Entries before the first that may hold a key after StartAfter are
	// skipped by binary search, as List does.
	start := sort.Search(len(entries), func(i int) bool { return l.need(dirKey, entries[i]) })
	for _, e := range entries[start:] {
		if err := ctx.Err(); err != nil {
			return err
		}
		key := dirKey + e.seg
		if !strings.HasPrefix(key, opts.Prefix) {
			if key > opts.Prefix {
				return nil // past the names with the prefix
			}
			continue
		}
		if e.isDir() {
			ok, err := s.holdsAfter(ctx, key, opts.StartAfter)
			if err != nil {
				return err
			}
			if ok {
				if err := emit(store.Entry{Object: store.Object{Key: key}, IsPrefix: true}); err != nil {
					return err
				}
			}
			continue
		}
		if key <= opts.StartAfter {
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
		if err := emit(store.Entry{Object: store.Object{Key: key, Size: fi.Size(), LastModified: fi.ModTime()}}); err != nil {
			return err
		}
	}
	return nil
}

// holdsAfter reports whether the directory whose keys start with dir may
// hold a key after startAfter. Only the directory startAfter lies in is
// looked into.
func (s *Store) holdsAfter(ctx context.Context, dir, startAfter string) (bool, error) {
	if dir > startAfter {
		return true, nil
	}
	if !strings.HasPrefix(startAfter, dir) {
		return false, nil
	}
	for _, err := range s.List(ctx, store.ListOptions{Prefix: dir, StartAfter: startAfter}) {
		return err == nil, err
	}
	return false, nil
}
