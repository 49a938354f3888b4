package local

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/ferry-dev/ferry/internal/store"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// b64crc returns the base64 encoding of a CRC32C, as S3 writes it.
func b64crc(c uint32) string {
	b := [4]byte{byte(c >> 24), byte(c >> 16), byte(c >> 8), byte(c)}
	return base64.StdEncoding.EncodeToString(b[:])
}

// Put writes the object atomically; see the package documentation. A key
// ending in "/" with Size 0 creates the directory (a directory marker).
func (s *Store) Put(ctx context.Context, in store.PutInput, body io.Reader) (store.PutResult, error) {
	res, err := s.put(ctx, in, body)
	if err != nil {
		return store.PutResult{}, fmt.Errorf("local: put %q: %w", in.Key, err)
	}
	return res, nil
}

func (s *Store) put(ctx context.Context, in store.PutInput, body io.Reader) (store.PutResult, error) {
	if err := checkKey(in.Key); err != nil {
		return store.PutResult{}, err
	}
	if in.Size < 0 {
		return store.PutResult{}, fmt.Errorf("negative size %d", in.Size)
	}
	if err := ctx.Err(); err != nil {
		return store.PutResult{}, err
	}
	dirs, name := splitKey(in.Key)
	if name == "" {
		return s.putMarker(ctx, in, dirs, body)
	}
	d, created, tmp, f, err := s.createTemp(in.Key, dirs)
	if err != nil {
		return store.PutResult{}, err
	}
	defer d.close()
	done := false
	defer func() {
		if !done {
			f.Close()
			d.Remove(tmp)
			s.removeDirs(created)
		}
	}()

	crc := crc32.New(castagnoli)
	w := io.MultiWriter(f, crc)
	var md hash.Hash
	if in.ContentMD5 != "" {
		md = md5.New()
		w = io.MultiWriter(f, crc, md)
	}
	if err := copyExact(ctx, w, body, in.Size); err != nil {
		return store.PutResult{}, err
	}
	sum := b64crc(crc.Sum32())
	if err := checkSums(in, sum, md); err != nil {
		return store.PutResult{}, err
	}
	m := metaFromInput(in)
	m.CRC32C = sum
	if err := s.finish(ctx, d.Root, f, tmp, name, in, m); err != nil {
		return store.PutResult{}, err
	}
	done = true
	return store.PutResult{ChecksumCRC32C: sum}, nil
}

// checkSums compares the CRC32C and MD5 the caller gave with the body's.
func checkSums(in store.PutInput, crc string, md hash.Hash) error {
	if in.ChecksumCRC32C != "" && in.ChecksumCRC32C != crc {
		return fmt.Errorf("CRC32C of body is %s, want %s: %w", crc, in.ChecksumCRC32C, store.ErrChecksum)
	}
	if md != nil {
		want, err := base64.StdEncoding.DecodeString(in.ContentMD5)
		if err != nil || !bytes.Equal(want, md.Sum(nil)) {
			return fmt.Errorf("MD5 of body is %s, want %s: %w",
				base64.StdEncoding.EncodeToString(md.Sum(nil)), in.ContentMD5, store.ErrChecksum)
		}
	}
	return nil
}

// finish makes the temporary file tmp in d (open as f) the object name: it
// sets the modification time, stores the metadata, syncs, closes f, renames
// and syncs the directory. f is closed on success; on error the caller
// closes f and removes tmp.
func (s *Store) finish(ctx context.Context, d *os.Root, f *os.File, tmp, name string, in store.PutInput, m meta) error {
	if err := setModTime(d, tmp, in.ModTime); err != nil {
		return err
	}
	if err := s.writeMeta(f, in.Key, m); err != nil {
		return err
	}
	if !s.opts.NoSync {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := d.Rename(tmp, name); err != nil {
		if fi, lerr := d.Lstat(name); lerr == nil && fi.IsDir() {
			return fmt.Errorf("a directory of that name exists: %w", err)
		}
		return err
	}
	return s.syncDir(d)
}

// putMarker creates the directory dirs (a directory marker).
func (s *Store) putMarker(ctx context.Context, in store.PutInput, dirs []string, body io.Reader) (store.PutResult, error) {
	if in.Size != 0 {
		return store.PutResult{}, fmt.Errorf("directory marker with %d bytes of content: %w", in.Size, store.ErrUnsafeKey)
	}
	crc := crc32.New(castagnoli)
	var md hash.Hash
	if in.ContentMD5 != "" {
		md = md5.New()
	}
	if err := copyExact(ctx, io.Discard, body, 0); err != nil {
		return store.PutResult{}, err
	}
	sum := b64crc(crc.Sum32())
	if err := checkSums(in, sum, md); err != nil {
		return store.PutResult{}, err
	}
	parent, created, err := s.openDirs(dirs[:len(dirs)-1], true)
	if err != nil {
		return store.PutResult{}, err
	}
	defer parent.close()
	last := dirs[len(dirs)-1]
	d, made, err := s.openSubdir(parent.Root, last, true)
	if made {
		created = append(created, strings.Join(dirs, "/"))
	}
	if err != nil {
		s.removeDirs(created)
		return store.PutResult{}, err
	}
	defer d.Close()
	if err := s.markerMeta(in, d, parent.Root, last); err != nil {
		s.removeDirs(created)
		return store.PutResult{}, err
	}
	return store.PutResult{ChecksumCRC32C: sum}, nil
}

// markerMeta stores the metadata and modification time of the directory
// marker last, open as d, in parent.
func (s *Store) markerMeta(in store.PutInput, d, parent *os.Root, last string) error {
	if m := metaFromInput(in); m.userData() {
		f, err := d.Open(".")
		if err != nil {
			return err
		}
		err = s.writeMeta(f, in.Key, m)
		f.Close()
		if err != nil {
			return err
		}
	}
	if err := setModTime(parent, last, in.ModTime); err != nil {
		return err
	}
	return s.syncDir(parent)
}

// Delete removes the file key. A missing key, or a name that is not an
// object (a directory, a symlink), is not an error. Deleting a directory
// marker removes the directory if it is empty and otherwise leaves it: its
// objects keep it. Parent directories are left in place.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.delete(ctx, key); err != nil {
		return fmt.Errorf("local: delete %q: %w", key, err)
	}
	return nil
}

func (s *Store) delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dirs, name := splitKey(key)
	marker := name == ""
	if marker {
		dirs, name = dirs[:len(dirs)-1], dirs[len(dirs)-1]
	}
	d, _, err := s.openDirs(dirs, false)
	if errors.Is(err, errNoParent) {
		return nil
	}
	if err != nil {
		return err
	}
	defer d.close()
	fi, err := d.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if marker && !fi.IsDir() {
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s: is a symbolic link: %w", key, store.ErrUnsafeKey)
		}
		return nil // a file: no marker
	}
	if !marker && !fi.Mode().IsRegular() {
		return nil // not an object: a directory, symlink or special file
	}
	err = d.Remove(name)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case marker && (errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST)):
		return nil
	default:
		return err
	}
	return s.syncDir(d.Root)
}
