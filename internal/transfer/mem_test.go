package transfer

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"sync/atomic"
	"testing"

	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/mem"
)

// TestMemStore runs copies between two mem stores (the shared in-memory
// implementation), checking bytes, attributes, provenance, UpToDate and
// Verify, then the fault paths.
func TestMemStore(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name, key  string
		size       int
		wantMethod string
	}{
		{"small", "a/b.txt", 1000, MethodPut},
		{"exact threshold", "t", testPart, MethodPut},
		{"threshold plus one", "t1", testPart + 1, MethodMultipart},
		{"several parts, short last", "big", 4*testPart + 999, MethodMultipart},
		{"directory marker", "photos/", 0, MethodPut},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := mem.New("src"), mem.New("dst")
			data := testData(tt.size, 3)
			in := store.PutInput{Key: tt.key, Size: int64(len(data)), ContentType: "x/y", ContentLanguage: "fr",
				Metadata: map[string]string{"m": "v"}, Tags: map[string]string{"k": "v"}}
			if _, err := src.Put(ctx, in, bytes.NewReader(data)); err != nil {
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
			if res.Method != tt.wantMethod || res.Attempts != 1 || res.CRC32C != crcOf(data) || !res.MD5Verified {
				t.Errorf("result %+v", res)
			}
			if got, _ := dst.Bytes(tt.key); !bytes.Equal(got, data) {
				t.Fatal("destination bytes differ")
			}
			da, err := dst.Stat(ctx, tt.key)
			if err != nil {
				t.Fatal(err)
			}
			p, ok := ParseProvenance(da.Metadata)
			if !ok || p.SrcETag != sa.ETag || p.SrcSize != sa.Size || !p.SrcModTime.Equal(sa.LastModified) || da.Metadata["m"] != "v" || da.ContentType != "x/y" || da.ContentLanguage != "fr" {
				t.Errorf("destination attrs %+v", da)
			}
			if tags, err := dst.Tags(ctx, tt.key); err != nil || !maps.Equal(tags, in.Tags) {
				t.Errorf("tags %v %v", tags, err)
			}
			if ok, err := e.UpToDate(ctx, sa.Object, da.Object); err != nil || !ok {
				t.Errorf("UpToDate = %v, %v", ok, err)
			}
			if m, err := e.Verify(ctx, sa.Object, da.Object); err != nil || m != "" {
				t.Errorf("Verify = %q, %v", m, err)
			}
		})
	}

	setup := func(t *testing.T) (*mem.Store, *mem.Store, store.Object) {
		src, dst := mem.New("src"), mem.New("dst")
		data := testData(5*testPart, 4)
		if _, err := src.Put(ctx, store.PutInput{Key: "k", Size: int64(len(data))}, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		a, err := src.Stat(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		return src, dst, a.Object
	}
	t.Run("transient part error retried", func(t *testing.T) {
		// The part is retried from its buffer: no new attempt, no abort.
		src, dst, obj := setup(t)
		var n atomic.Int32
		dst.SetFault(func(op, key string) error {
			if op == mem.OpUploadPart && n.Add(1) == 2 {
				return errors.New("injected 503")
			}
			return nil
		})
		res, err := New(src, dst, testOptions()).Copy(ctx, obj, "k")
		if err != nil || res.Attempts != 1 {
			t.Fatalf("attempts %d err %v", res.Attempts, err)
		}
		if got := dst.Calls(mem.OpUploadPart); got != 6 {
			t.Errorf("%d UploadPart calls, want 5 parts + 1 retry", got)
		}
		if dst.Calls(mem.OpAbortMultipart) != 0 || dst.Uploads() != 0 {
			t.Errorf("aborts %d uploads %d", dst.Calls(mem.OpAbortMultipart), dst.Uploads())
		}
	})
	t.Run("part failing every retry fails the attempt, aborted", func(t *testing.T) {
		src, dst, obj := setup(t)
		dst.SetFault(func(op, key string) error {
			if op == mem.OpUploadPart {
				return errors.New("injected 503")
			}
			return nil
		})
		opts := testOptions()
		opts.Attempts = 2
		res, err := New(src, dst, opts).Copy(ctx, obj, "k")
		if err == nil || res.Attempts != 2 {
			t.Fatalf("attempts %d err %v", res.Attempts, err)
		}
		if dst.Calls(mem.OpAbortMultipart) != 2 || dst.Uploads() != 0 || len(dst.Keys()) != 0 {
			t.Errorf("aborts %d uploads %d keys %q", dst.Calls(mem.OpAbortMultipart), dst.Uploads(), dst.Keys())
		}
	})
	t.Run("permanent error not retried, aborted", func(t *testing.T) {
		src, dst, obj := setup(t)
		dst.SetFault(func(op, key string) error {
			if op == mem.OpUploadPart {
				return store.ErrAccess
			}
			return nil
		})
		res, err := New(src, dst, testOptions()).Copy(ctx, obj, "k")
		if !errors.Is(err, store.ErrAccess) || res.Attempts != 1 {
			t.Fatalf("attempts %d err %v", res.Attempts, err)
		}
		if dst.Calls(mem.OpAbortMultipart) != 1 || dst.Uploads() != 0 || len(dst.Keys()) != 0 || dst.Calls(mem.OpCompleteMultipart) != 0 {
			t.Errorf("aborts %d uploads %d keys %q", dst.Calls(mem.OpAbortMultipart), dst.Uploads(), dst.Keys())
		}
	})
}
