package local_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/local"
	"github.com/ferry-dev/ferry/internal/store/storetest"
)

// logBuffer returns a logger writing to a buffer the test can inspect.
func logBuffer(t *testing.T) (*slog.Logger, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}

// newStore opens a store on a fresh directory, closed at cleanup.
func newStore(t *testing.T) (*local.Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	log, _ := logBuffer(t)
	s, err := local.Open(dir, local.Options{NoSync: true, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

// xattrSupported reports whether the temporary directory keeps user
// extended attributes.
func xattrSupported(t *testing.T) bool {
	t.Helper()
	s, _ := newStore(t)
	storetest.PutInput(t, s, store.PutInput{Key: "probe", Metadata: map[string]string{"a": "b"}}, nil)
	a, err := s.Stat(t.Context(), "probe")
	if err != nil {
		t.Fatal(err)
	}
	return a.Metadata["a"] == "b"
}

func TestConformance(t *testing.T) {
	opts := storetest.Options{NoETag: true, ModTime: true, NoMetadata: !xattrSupported(t)}
	if opts.NoMetadata {
		t.Log("temporary directory has no user extended attributes: metadata not tested")
	}
	storetest.Run(t, func(t *testing.T) store.Store {
		s, _ := newStore(t)
		return s
	}, opts)
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		root string
	}{
		{"missing", filepath.Join(dir, "missing")},
		{"a file", file},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := local.Open(tt.root, local.Options{})
			if !errors.Is(err, store.ErrBucketNotExist) || !strings.Contains(err.Error(), tt.root) {
				t.Errorf("Open(%q) = %v, want ErrBucketNotExist naming the path", tt.root, err)
			}
		})
	}
	t.Run("create", func(t *testing.T) {
		root := filepath.Join(dir, "new")
		s, err := local.Create(root)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
			t.Errorf("Create did not make the directory: %v", err)
		}
		if s, err = local.Create(root); err != nil {
			t.Errorf("Create of an existing directory: %v", err)
		} else {
			s.Close()
		}
		if _, err := local.Create(filepath.Join(dir, "no", "parent")); !errors.Is(err, store.ErrBucketNotExist) {
			t.Errorf("Create without parent = %v, want ErrBucketNotExist", err)
		}
	})
}

func TestUnsafeKeys(t *testing.T) {
	tests := []struct {
		name string
		key  string
		want error
	}{
		{"empty", "", store.ErrInvalidKey},
		{"dot dot", "..", store.ErrUnsafeKey},
		{"dot dot segment", "a/../../b", store.ErrUnsafeKey},
		{"dot dot last", "a/..", store.ErrUnsafeKey},
		{"dot dot marker", "../", store.ErrUnsafeKey},
		{"absolute", "/etc/passwd", store.ErrUnsafeKey},
		{"empty segment", "a//b", store.ErrUnsafeKey},
		{"dot segment", "a/./b", store.ErrUnsafeKey},
		{"dot", ".", store.ErrUnsafeKey},
		{"slash", "/", store.ErrUnsafeKey},
		{"double slash marker", "a//", store.ErrUnsafeKey},
		{"NUL", "a\x00b", store.ErrUnsafeKey},
		{"temporary name", "a/.ferry-tmp-x", store.ErrUnsafeKey},
		{"not UTF-8", "a\xffb", store.ErrInvalidKey},
		{"too long", strings.Repeat("a/", 512) + "a", store.ErrInvalidKey},
	}
	s, dir := newStore(t)
	ctx := t.Context()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Put(ctx, store.PutInput{Key: tt.key, Size: 1}, strings.NewReader("x"))
			if !errors.Is(err, tt.want) {
				t.Errorf("Put(%q) = %v, want %v", tt.key, err, tt.want)
			}
			if err != nil && len(tt.key) < 100 && !strings.Contains(err.Error(), strconv.Quote(tt.key)) {
				t.Errorf("error %q does not name the key", err)
			}
			if _, err := s.CreateMultipart(ctx, store.PutInput{Key: tt.key, Size: 1, PartSize: 1}); !errors.Is(err, tt.want) {
				t.Errorf("CreateMultipart(%q) = %v, want %v", tt.key, err, tt.want)
			}
			if err := s.Delete(ctx, tt.key); !errors.Is(err, tt.want) {
				t.Errorf("Delete(%q) = %v, want %v", tt.key, err, tt.want)
			}
			if _, err := s.Stat(ctx, tt.key); !errors.Is(err, tt.want) {
				t.Errorf("Stat(%q) = %v, want %v", tt.key, err, tt.want)
			}
			if _, err := local.SafePath(dir, tt.key); !errors.Is(err, tt.want) {
				t.Errorf("SafePath(%q) = %v, want %v", tt.key, err, tt.want)
			}
		})
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 0 {
		t.Errorf("root holds %v (%v), want nothing", entries, err)
	}
}

func TestSymlinks(t *testing.T) {
	s, dir := newStore(t)
	outside := filepath.Join(filepath.Dir(dir), "outside")
	if err := os.Mkdir(outside, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "real"), 0o777); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"out":         outside,
		"up":          "..",
		"in":          "real",
		"real/upup":   "../..",
		"filelink":    filepath.Join(outside, "secret"),
		"dangling":    filepath.Join(outside, "nothing"),
		"real/inside": "../real",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	ctx := t.Context()
	unsafe := []string{"out/x", "up/outside/x", "in/x", "real/upup/x", "real/inside/x", "out/", "in/sub/", "filelink/x"}
	for _, key := range unsafe {
		_, err := s.Put(ctx, store.PutInput{Key: key}, strings.NewReader(""))
		if !errors.Is(err, store.ErrUnsafeKey) {
			t.Errorf("Put(%q) = %v, want ErrUnsafeKey", key, err)
		}
		if _, err := s.CreateMultipart(ctx, store.PutInput{Key: key, PartSize: 1}); !errors.Is(err, store.ErrUnsafeKey) && !strings.HasSuffix(key, "/") {
			t.Errorf("CreateMultipart(%q) = %v, want ErrUnsafeKey", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, store.ErrUnsafeKey) {
			t.Errorf("Delete(%q) = %v, want ErrUnsafeKey", key, err)
		}
	}
	// Replacing a symlink replaces the link, never its target.
	storetest.Put(t, s, "filelink", []byte("new"))
	storetest.Put(t, s, "dangling", []byte("new"))
	if b, err := os.ReadFile(filepath.Join(outside, "secret")); err != nil || string(b) != "secret" {
		t.Errorf("outside file now %q, %v", b, err)
	}
	entries, _ := os.ReadDir(outside)
	if len(entries) != 1 {
		t.Errorf("outside directory holds %d entries, want 1", len(entries))
	}
	// Reads do not follow symlinks either.
	for _, key := range []string{"out/secret", "in/x", "up/outside/secret"} {
		if _, err := s.Stat(ctx, key); err == nil {
			t.Errorf("Stat(%q) succeeded through a symlink", key)
		}
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "real", "file")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "real/file"); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Stat of a symlink = %v, want ErrNotExist", err)
	}
	if err := s.Delete(ctx, "real/file"); err != nil {
		t.Errorf("Delete of a symlink: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "real", "file")); err != nil {
		t.Errorf("Delete removed a symlink: %v", err)
	}
}

func TestListSkips(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "root")
	os.Mkdir(dir, 0o777)
	log, buf := logBuffer(t)
	s, err := local.Open(dir, local.Options{Logger: log, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	storetest.Put(t, s, "a/file", []byte("x"))
	storetest.Put(t, s, "b", []byte("x"))
	mustWrite(t, filepath.Join(dir, "a", ".ferry-tmp-123"))
	mustWrite(t, filepath.Join(dir, "bad\xffname"))
	os.Symlink("a", filepath.Join(dir, "link"))
	os.Mkdir(filepath.Join(dir, "onlytmp"), 0o777)
	mustWrite(t, filepath.Join(dir, "onlytmp", ".ferry-tmp-1"))
	os.Mkdir(filepath.Join(dir, "empty"), 0o777)
	got := storetest.List(t, s, store.ListOptions{})
	want := []string{"a/file", "b", "empty/"}
	if !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
	logs := buf.String()
	for _, w := range []string{`bad\\xffname`, "not following symbolic link", "link"} {
		if !strings.Contains(logs, w) {
			t.Errorf("log lacks %q:\n%s", w, logs)
		}
	}
	if n := strings.Count(logs, "symbolic link"); n != 1 {
		t.Errorf("%d symlink warnings, want 1", n)
	}
}

func mustWrite(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("x"), 0o666); err != nil {
		t.Fatal(err)
	}
}

func TestChecksumInvalidated(t *testing.T) {
	s, dir := newStore(t)
	if !xattrSupported(t) {
		t.Skip("no extended attributes")
	}
	storetest.Put(t, s, "k", []byte("hello"))
	a, err := s.Stat(t.Context(), "k")
	if err != nil || a.ChecksumCRC32C != storetest.CRC32C([]byte("hello")) {
		t.Fatalf("Stat = %+v, %v; want the CRC32C", a, err)
	}
	// Changed behind the store's back: the stored CRC32C no longer applies.
	if err := os.WriteFile(filepath.Join(dir, "k"), []byte("HELLO"), 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(filepath.Join(dir, "k"), time.Time{}, time.Now().Add(time.Second))
	if a, err = s.Stat(t.Context(), "k"); err != nil || a.ChecksumCRC32C != "" {
		t.Errorf("Stat after outside change: CRC32C %q, %v; want none", a.ChecksumCRC32C, err)
	}
}

func TestWriteConflicts(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	storetest.Put(t, s, "file", []byte("x"))
	if _, err := s.Put(ctx, store.PutInput{Key: "file/below", Size: 1}, strings.NewReader("x")); !errors.Is(err, store.ErrUnsafeKey) {
		t.Errorf("Put below a file = %v, want ErrUnsafeKey", err)
	}
	storetest.Put(t, s, "dir/x", []byte("x"))
	if _, err := s.Put(ctx, store.PutInput{Key: "dir", Size: 1}, strings.NewReader("x")); err == nil {
		t.Error("Put over a directory succeeded")
	}
	if _, err := s.Put(ctx, store.PutInput{Key: "m/", Size: 1}, strings.NewReader("x")); !errors.Is(err, store.ErrUnsafeKey) {
		t.Errorf("Put of a marker with content = %v, want ErrUnsafeKey", err)
	}
	// Short and long bodies fail and leave nothing.
	if _, err := s.Put(ctx, store.PutInput{Key: "short", Size: 5}, strings.NewReader("x")); err == nil {
		t.Error("Put of a short body succeeded")
	}
	if _, err := s.Put(ctx, store.PutInput{Key: "long", Size: 1}, strings.NewReader("xx")); err == nil {
		t.Error("Put of a long body succeeded")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Put(cctx, store.PutInput{Key: "canceled", Size: 1}, strings.NewReader("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a canceled context = %v", err)
	}
	got := storetest.List(t, s, store.ListOptions{})
	if want := []string{"dir/x", "file"}; !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
	// Deleting a marker of a directory with objects keeps the objects.
	if err := s.Delete(ctx, "dir/"); err != nil {
		t.Errorf("Delete(dir/) = %v", err)
	}
	if err := s.Delete(ctx, "dir"); err != nil {
		t.Errorf("Delete(dir) = %v", err)
	}
	if _, err := s.Stat(ctx, "dir/x"); err != nil {
		t.Errorf("Stat(dir/x) after deleting dir/ and dir: %v", err)
	}
}

func TestMultipartNotListed(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	id, err := s.CreateMultipart(ctx, store.PutInput{Key: "big", PartSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UploadPart(ctx, "big", id, 2, strings.NewReader("ef"), 2, ""); err != nil {
		t.Fatal(err)
	}
	if got := storetest.List(t, s, store.ListOptions{}); len(got) != 0 {
		t.Errorf("List during upload = %q", got)
	}
	if _, err := s.CompleteMultipart(ctx, "big", id, []store.Part{{Number: 2, Size: 2}}); err == nil {
		t.Error("CompleteMultipart without part 1 succeeded")
	}
	p1, err := s.UploadPart(ctx, "big", id, 1, strings.NewReader("abcd"), 4, storetest.CRC32C([]byte("abcd")))
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.CompleteMultipart(ctx, "big", id, []store.Part{p1, {Number: 2, Size: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if want := storetest.CRC32C([]byte("abcdef")); res.ChecksumCRC32C != want {
		t.Errorf("CRC32C %q, want %q", res.ChecksumCRC32C, want)
	}
	rc, _, err := s.Open(ctx, "big", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var b bytes.Buffer
	b.ReadFrom(rc)
	if b.String() != "abcdef" {
		t.Errorf("read %q", b.String())
	}
	if _, err := s.UploadPart(ctx, "big", id, 1, strings.NewReader("abcd"), 4, ""); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("UploadPart after complete = %v, want ErrNotExist", err)
	}
}
