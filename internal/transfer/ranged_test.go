package transfer

import (
	"context"
	"errors"
	"testing"

	"github.com/ferry-dev/ferry/internal/store"
)

// A source without a plain MD5 ETag (multipart) is read part by part with
// ranged Opens, in parallel; every part is CRC32C'd, the parts' CRC32Cs
// combine to the object's, and attributes, tags and provenance are kept.
func TestCopyRangedMultipartSource(t *testing.T) {
	for _, size := range []int{testPart + 1, 5*testPart + 1234, 4 * testPart} {
		src, dst := newFake("src"), newFake("dst")
		data := testData(size, 3)
		obj := src.add("big", data, store.Attrs{Object: store.Object{ETag: "0123456789abcdef0123456789abcdef-3"}, ContentType: "video/mp4",
			Metadata: map[string]string{"owner": "x"}}, map[string]string{"k": "v"})
		e := New(src, dst, testOptions())
		res, err := e.Copy(context.Background(), obj, "big")
		if err != nil {
			t.Fatal(err)
		}
		nparts := int32(partCount(int64(size), testPart))
		if res.Method != MethodMultipart || res.CRC32C != crcOf(data) || res.MD5Verified || res.Size != int64(size) {
			t.Errorf("size %d: result %+v, want crc %s", size, res, crcOf(data))
		}
		if got := src.opens.Load(); got != nparts {
			t.Errorf("size %d: %d source opens, want %d ranged ones", size, got, nparts)
		}
		if got := dst.parts.Load(); got != nparts {
			t.Errorf("size %d: %d parts, want %d", size, got, nparts)
		}
		attrs := checkCopied(t, dst, "big", data, obj)
		if attrs.ContentType != "video/mp4" || attrs.Metadata["owner"] != "x" {
			t.Errorf("size %d: attributes not kept: %+v", size, attrs)
		}
		if e.mem.inUse.Load() != 0 {
			t.Errorf("size %d: %d bytes of buffers not released", size, e.mem.inUse.Load())
		}
	}
}

// A part read corrupt is caught by the source's full-object CRC32C: the
// upload is aborted and nothing becomes visible.
func TestCopyRangedCorruptPart(t *testing.T) {
	src, dst := newFake("src"), newFake("dst")
	data := testData(3*testPart, 5)
	obj := src.add("big", data, store.Attrs{Object: store.Object{ETag: "0123456789abcdef0123456789abcdef-3"}, ChecksumCRC32C: crcOf(data)}, nil)
	src.openHook = func(key string, b []byte) []byte { b[2*testPart+7] ^= 1; return b }
	opts := testOptions()
	opts.Attempts = 1
	e := New(src, dst, opts)
	_, err := e.Copy(context.Background(), obj, "big")
	if !errors.Is(err, store.ErrChecksum) {
		t.Fatalf("err = %v, want ErrChecksum", err)
	}
	if _, ok := dst.get("big"); ok || dst.openUploads() != 0 {
		t.Errorf("object visible or upload left open (%d)", dst.openUploads())
	}
}
