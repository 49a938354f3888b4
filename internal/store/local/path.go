package local

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/ferry-dev/ferry/internal/store"
)

// errNoParent reports that a directory on a key's path does not exist.
var errNoParent = errors.New("parent directory does not exist")

// dirHandle is an open directory of the store: the root itself or a
// sub-directory the caller closes.
type dirHandle struct {
	*os.Root
	owned bool
}

func (d dirHandle) close() {
	if d.owned {
		d.Root.Close()
	}
}

// openDirs opens the directory holding the segments dirs (relative to the
// root), one segment at a time and without following symbolic links. With
// create, missing directories are made, and their paths returned (for
// [Store.removeDirs] should the write fail). A symlink or non-directory on
// the way is an error wrapping [store.ErrUnsafeKey]; a missing one without
// create is errNoParent.
func (s *Store) openDirs(dirs []string, create bool) (dirHandle, []string, error) {
	cur := dirHandle{Root: s.root}
	var created []string
	for i, name := range dirs {
		next, made, err := s.openSubdir(cur.Root, name, create)
		if made {
			created = append(created, strings.Join(dirs[:i+1], "/"))
		}
		if err != nil {
			cur.close()
			s.removeDirs(created)
			return dirHandle{}, nil, fmt.Errorf("%s: %w", strings.Join(dirs[:i+1], "/"), err)
		}
		cur.close()
		cur = dirHandle{Root: next, owned: true}
	}
	return cur, created, nil
}

// removeDirs removes the directories a failed write created (deepest last in
// dirs), unless they are no longer empty: a failed write leaves no empty
// directory to be listed as a directory marker.
func (s *Store) removeDirs(dirs []string) {
	for i := len(dirs) - 1; i >= 0; i-- {
		s.root.Remove(dirs[i])
	}
}

// openSubdir opens the directory name in parent, checking that the opened
// directory is the one Lstat saw, so a directory swapped for a symlink in
// between is detected. made reports whether it created the directory.
func (s *Store) openSubdir(parent *os.Root, name string, create bool) (sub *os.Root, made bool, err error) {
	fi, err := parent.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return nil, false, errNoParent
		}
		err = parent.Mkdir(name, 0o777)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, false, err
		}
		made = err == nil
		fi, err = parent.Lstat(name)
	}
	if err != nil {
		return nil, made, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, made, fmt.Errorf("is a symbolic link: %w", store.ErrUnsafeKey)
	}
	if !fi.IsDir() {
		return nil, made, fmt.Errorf("is not a directory: %w", store.ErrUnsafeKey)
	}
	sub, err = parent.OpenRoot(name)
	if err != nil {
		return nil, made, err
	}
	st, err := sub.Stat(".")
	if err != nil {
		sub.Close()
		return nil, made, err
	}
	if !os.SameFile(fi, st) {
		sub.Close()
		return nil, made, fmt.Errorf("replaced while opening: %w", store.ErrUnsafeKey)
	}
	return sub, made, nil
}

// splitKey splits a validated key into its directory segments and its last
// segment. A directory marker ("a/b/") has no last segment: it returns
// ["a", "b"], "".
func splitKey(key string) (dirs []string, name string) {
	if strings.HasSuffix(key, "/") {
		return strings.Split(strings.TrimSuffix(key, "/"), "/"), ""
	}
	segs := strings.Split(key, "/")
	return segs[:len(segs)-1], segs[len(segs)-1]
}

// syncDir fsyncs the directory d unless the store skips syncs.
func (s *Store) syncDir(d *os.Root) error {
	if s.opts.NoSync {
		return nil
	}
	f, err := d.Open(".")
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// testHookDirsOpened, when set (by tests), is called by createTemp between
// opening a key's directories and creating its temporary file.
var testHookDirsOpened func(key string)

// createTempTries bounds how often createTemp opens the directories again
// after they were removed under it.
const createTempTries = 3

// createTemp opens (creating) the directories dirs of key and creates a
// fresh temporary file in the last. A write that fails removes the empty
// directories it created (removeDirs), and may do so after another write
// opened one but before that write created its file in it: creating the
// file then fails with ENOENT. createTemp then opens the directories again,
// creating them anew, so that a concurrent failure (a full disk, say) is
// reported as itself by the write that met it and never as "no such file
// or directory" by another.
func (s *Store) createTemp(key string, dirs []string) (d dirHandle, created []string, tmp string, f *os.File, err error) {
	for try := 1; ; try++ {
		var made []string
		d, made, err = s.openDirs(dirs, true)
		created = append(created, made...)
		if err != nil {
			s.removeDirs(created)
			return dirHandle{}, nil, "", nil, err
		}
		if testHookDirsOpened != nil {
			testHookDirsOpened(key)
		}
		tmp = randomName()
		f, err = d.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if err == nil {
			return d, created, tmp, f, nil
		}
		d.close()
		if !errors.Is(err, fs.ErrNotExist) || try >= createTempTries {
			s.removeDirs(created)
			return dirHandle{}, nil, "", nil, err
		}
	}
}
