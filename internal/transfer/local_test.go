package transfer

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/store/local"
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
