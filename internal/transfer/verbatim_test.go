package transfer

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"testing"

	"github.com/ferry-dev/ferry/internal/store"
)

// TestVerbatimServerCopy: a same-store copy of a source listed with a plain
// MD5 ETag is one conditional verbatim copy, without a Stat; every case the
// ETag cannot vouch for takes the general path (Stat, REPLACE copy with
// provenance) and leaves nothing unverified behind.
func TestVerbatimServerCopy(t *testing.T) {
	srcAttrs := store.Attrs{ContentType: "text/plain", CacheControl: "no-cache", Metadata: map[string]string{"a": "b"}}
	tags := map[string]string{"t": "1"}
	data := testData(1234, 7)

	t.Run("one request, source metadata kept, ETag is the provenance", func(t *testing.T) {
		s := newFake("one")
		s.verbatim = true
		obj := s.add("src/k", data, srcAttrs, tags)
		e := New(s, s, testOptions())
		res, err := e.Copy(context.Background(), obj, "dst/k")
		if err != nil {
			t.Fatal(err)
		}
		if res.Method != MethodServerCopy || res.Verified != VerifiedMD5 || !res.MD5Verified || res.SrcETag != obj.ETag || res.DstETag != obj.ETag {
			t.Errorf("result %+v", res)
		}
		if v, c, st := s.verbatims.Load(), s.copies.Load(), s.stats.Load(); v != 1 || c != 0 || st != 0 {
			t.Errorf("verbatim copies %d, copies %d, stats %d; want 1, 0, 0", v, c, st)
		}
		o, _ := s.get("dst/k")
		if !bytes.Equal(o.data, data) || !maps.Equal(o.attrs.Metadata, srcAttrs.Metadata) || o.attrs.ContentType != "text/plain" ||
			o.attrs.CacheControl != "no-cache" || !maps.Equal(o.tags, tags) {
			t.Errorf("copy %+v tags %v", o.attrs, o.tags)
		}
		if _, ok := ParseProvenance(o.attrs.Metadata); ok {
			t.Errorf("provenance metadata written: %v", o.attrs.Metadata)
		}
		// sync (a redelivered item: no destination listing) and verify.
		if ok, err := e.UpToDate(context.Background(), obj, store.Object{Key: "dst/k"}); err != nil || !ok {
			t.Errorf("UpToDate = %v, %v", ok, err)
		}
		if m, err := e.Verify(context.Background(), obj, o.attrs.Object); err != nil || m != "" {
			t.Errorf("Verify = %q, %v", m, err)
		}
		// A same-size change at the source is not up to date.
		changed := obj
		changed.ETag = md5Hex([]byte("other"))
		if ok, err := e.UpToDate(context.Background(), changed, store.Object{Key: "dst/k"}); err != nil || ok {
			t.Errorf("UpToDate(changed source) = %v, %v; want false", ok, err)
		}
	})

	t.Run("source changed since listed: general path copies the current version", func(t *testing.T) {
		s := newFake("one")
		s.verbatim = true
		listed := s.add("src/k", data, srcAttrs, tags)
		now := testData(1234, 8)
		cur := s.add("src/k", now, srcAttrs, tags)
		res, err := New(s, s, testOptions()).Copy(context.Background(), listed, "dst/k")
		if err != nil {
			t.Fatal(err)
		}
		if res.SrcETag != cur.ETag || s.copies.Load() != 1 || s.stats.Load() != 1 {
			t.Errorf("result %+v, copies %d, stats %d", res, s.copies.Load(), s.stats.Load())
		}
		checkCopied(t, s, "dst/k", now, cur)
	})

	t.Run("copy ETag differs: deleted, general path, no second try", func(t *testing.T) {
		s := newFake("one")
		s.verbatim = true
		s.copyHook = func(b []byte) []byte { b[0] ^= 1; return b }
		obj := s.add("src/k", data, srcAttrs, tags)
		opts := testOptions()
		opts.Attempts = 1
		e := New(s, s, opts)
		_, err := e.Copy(context.Background(), obj, "dst/k")
		if !errors.Is(err, store.ErrChecksum) {
			t.Fatalf("err = %v, want ErrChecksum (the general path's copy is corrupt too)", err)
		}
		if _, ok := s.get("dst/k"); ok {
			t.Errorf("corrupt copy left at destination")
		}
		s.copyHook = nil
		if _, err := e.Copy(context.Background(), obj, "dst/k"); err != nil {
			t.Fatal(err)
		}
		if v := s.verbatims.Load(); v != 1 {
			t.Errorf("%d verbatim copies, want 1 (the engine stops trying after a mismatch)", v)
		}
		checkCopied(t, s, "dst/k", data, obj)
	})

	t.Run("copy reported KMS-encrypted: general path", func(t *testing.T) {
		s := newFake("one")
		s.verbatim, s.verbatimSSE = true, sseKMS
		obj := s.add("src/k", data, srcAttrs, tags)
		res, err := New(s, s, testOptions()).Copy(context.Background(), obj, "dst/k")
		if err != nil {
			t.Fatal(err)
		}
		if s.verbatims.Load() != 1 || s.copies.Load() != 1 || res.Method != MethodServerCopy {
			t.Errorf("verbatims %d copies %d result %+v", s.verbatims.Load(), s.copies.Load(), res)
		}
		checkCopied(t, s, "dst/k", data, obj)
	})

	for _, tt := range []struct {
		name  string
		attrs store.Attrs
		opts  func(*Options)
	}{
		{"multipart source ETag", store.Attrs{Object: store.Object{ETag: "0123456789abcdef0123456789abcdef-2"}}, nil},
		{"SSE-KMS requested", store.Attrs{}, func(o *Options) { o.SSE = sseKMS }},
	} {
		t.Run(tt.name+": not tried", func(t *testing.T) {
			s := newFake("one")
			s.verbatim = true
			a := tt.attrs
			a.Metadata = map[string]string{"a": "b"}
			obj := s.add("src/k", data, a, tags)
			opts := testOptions()
			if tt.opts != nil {
				tt.opts(&opts)
			}
			if _, err := New(s, s, opts).Copy(context.Background(), obj, "dst/k"); err != nil {
				t.Fatal(err)
			}
			if s.verbatims.Load() != 0 {
				t.Errorf("verbatim copy tried")
			}
			checkCopied(t, s, "dst/k", data, obj)
		})
	}
}
