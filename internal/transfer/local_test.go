package transfer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/local"
	"github.com/ferry-dev/ferry/internal/store/mem"
)

// TestLocalStore copies between two local directories: a source without
// ETags, provenance by mtime, and the destination file's mtime preserved.
func TestLocalStore(t *testing.T) {
	ctx := context.Background()
	srcDir, dstDir := t.TempDir(), t.TempDir()
	src, err := local.Open(srcDir, local.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	dst, err := local.Open(dstDir, local.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })
	mtime := time.Date(2023, 3, 4, 5, 6, 7, 891011000, time.UTC)
	for _, tt := range []struct {
		name, key  string
		size       int
		wantMethod string
	}{
		{"small", "dir/small", 1000, MethodPut},
		{"multipart", "dir/big", 3*testPart + 5, MethodMultipart},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data := testData(tt.size, 8)
			p := filepath.Join(srcDir, filepath.FromSlash(tt.key))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(p, mtime, mtime); err != nil {
				t.Fatal(err)
			}
			sa, err := src.Stat(ctx, tt.key)
			if err != nil {
				t.Fatal(err)
			}
			e := New(src, dst, testOptions())
			res, err := e.Copy(ctx, sa.Object, tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if res.Method != tt.wantMethod || res.CRC32C != crcOf(data) || res.MD5Verified {
				t.Errorf("result %+v", res)
			}
			got, err := os.ReadFile(filepath.Join(dstDir, filepath.FromSlash(tt.key)))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("destination differs: %v", err)
			}
			da, err := dst.Stat(ctx, tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if !da.LastModified.Equal(sa.LastModified) {
				t.Errorf("destination mtime %v, source %v", da.LastModified, sa.LastModified)
			}
			if ok, err := e.UpToDate(ctx, sa.Object, da.Object); err != nil || !ok {
				t.Errorf("UpToDate = %v, %v", ok, err)
			}
			// A same-size rewrite of the source is detected by its mtime.
			data[0] ^= 1
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			sa2, err := src.Stat(ctx, tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := e.UpToDate(ctx, sa2.Object, da.Object); err != nil || ok {
				t.Errorf("UpToDate after rewrite = %v, %v", ok, err)
			}
			if m, err := e.Verify(ctx, sa2.Object, da.Object); err != nil || m == "" {
				t.Errorf("Verify after rewrite = %q, %v", m, err)
			}
		})
	}
}

// touching is a local store whose readers change the file's mtime after
// the first bytes were read (an editor saving the file in place while ferry
// reads it). hide hides the reader's Restat, so the check must look the
// path up instead.
type touching struct {
	*local.Store
	dir   string
	hide  bool
	stats *int
}

func (s touching) Stat(ctx context.Context, key string) (store.Attrs, error) {
	*s.stats++
	return s.Store.Stat(ctx, key)
}

func (s touching) Open(ctx context.Context, key string, off, n int64) (io.ReadCloser, store.Attrs, error) {
	rc, a, err := s.Store.Open(ctx, key, off, n)
	if err != nil {
		return nil, a, err
	}
	r := &touchReader{ReadCloser: rc, path: filepath.Join(s.dir, filepath.FromSlash(key))}
	if s.hide {
		return struct{ io.ReadCloser }{r}, a, nil
	}
	return r, a, nil
}

type touchReader struct {
	io.ReadCloser
	path    string
	touched bool
}

func (r *touchReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if !r.touched {
		r.touched = true
		later := time.Now().Add(time.Hour)
		if terr := os.Chtimes(r.path, later, later); terr != nil {
			return n, terr
		}
	}
	return n, err
}

func (r *touchReader) Restat() (store.Attrs, error) { return r.ReadCloser.(store.Restatter).Restat() }

// TestLocalSourceChangedDuringRead: a local file changed while it was read
// is not copied ("source changed during copy"), whether the check asks the
// open file (fstat) or looks the path up again.
func TestLocalSourceChangedDuringRead(t *testing.T) {
	for _, hide := range []bool{false, true} {
		t.Run(fmt.Sprintf("restat-hidden=%v", hide), func(t *testing.T) {
			ctx := context.Background()
			srcDir := t.TempDir()
			ls, err := local.Open(srcDir, local.Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ls.Close() })
			if err := os.WriteFile(filepath.Join(srcDir, "f"), testData(1000, 3), 0o644); err != nil {
				t.Fatal(err)
			}
			stats := 0
			src := touching{Store: ls, dir: srcDir, hide: hide, stats: &stats}
			dst := mem.New("dst")
			sa, err := ls.Stat(ctx, "f")
			if err != nil {
				t.Fatal(err)
			}
			_, err = New(src, dst, testOptions()).Copy(ctx, sa.Object, "f")
			// The open file answers (fstat); without Restat, each read
			// attempt looks the path up.
			if (stats == 0) != !hide {
				t.Errorf("%d path lookups (Stat) after reading, restat hidden %v", stats, hide)
			}
			if err == nil || !strings.Contains(err.Error(), "source changed during copy") {
				t.Fatalf("copy of a file changed while read: %v", err)
			}
			if _, err := dst.Stat(ctx, "f"); err == nil {
				t.Fatal("the changed file was written at the destination")
			}
		})
	}
}
