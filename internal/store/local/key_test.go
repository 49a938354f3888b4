package local_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/local"
)

func TestSafePath(t *testing.T) {
	tests := []struct {
		name, key, want string
	}{
		{"file", "a", "/r/a"},
		{"nested", "a/b/c.txt", "/r/a/b/c.txt"},
		{"marker", "a/b/", "/r/a/b"},
		{"dots in names", "a..b/.c/..d", "/r/a..b/.c/..d"},
		{"backslash is a name", `a\..\b`, `/r/a\..\b`},
		{"unicode", "日本/é", "/r/日本/é"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := local.SafePath("/r", tt.key)
			if err != nil || got != filepath.FromSlash(tt.want) {
				t.Errorf("SafePath(/r, %q) = %q, %v; want %q", tt.key, got, err, tt.want)
			}
		})
	}
}

// FuzzKeyPath checks that no key maps outside the root, lexically, and that
// writing any key creates nothing outside the root directory.
func FuzzKeyPath(f *testing.F) {
	for _, k := range []string{"a", "a/b", "../x", "a/../../x", "/abs", "a//b", "./a", "a/.", "a/", "..", "...", "a\x00", "é/日本", `..\x`, "a/.ferry-tmp-x"} {
		f.Add(k)
	}
	base := f.TempDir()
	root := filepath.Join(base, "root")
	if err := os.Mkdir(root, 0o777); err != nil {
		f.Fatal(err)
	}
	s, err := local.Open(root, local.Options{NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	f.Fuzz(func(t *testing.T, key string) {
		p, err := local.SafePath(root, key)
		if err != nil {
			if !errors.Is(err, store.ErrUnsafeKey) && !errors.Is(err, store.ErrInvalidKey) {
				t.Fatalf("SafePath(%q): unclassified error %v", key, err)
			}
		} else {
			rel, rerr := filepath.Rel(root, p)
			if rerr != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
				t.Fatalf("SafePath(%q) = %q: outside or at the root", key, p)
			}
		}
		// A valid key may still fail to be written (a name too long, a file
		// where a directory is needed); an invalid one must always fail.
		_, perr := s.Put(t.Context(), store.PutInput{Key: key}, strings.NewReader(""))
		if perr == nil && err != nil {
			t.Fatalf("Put(%q) succeeded, SafePath said %v", key, err)
		}
		if perr == nil {
			if _, serr := os.Lstat(p); serr != nil {
				t.Fatalf("Put(%q) succeeded but %q: %v", key, p, serr)
			}
		}
		entries, _ := os.ReadDir(base)
		if len(entries) != 1 {
			t.Fatalf("after Put(%q) the parent of the root holds %d entries", key, len(entries))
		}
	})
}
