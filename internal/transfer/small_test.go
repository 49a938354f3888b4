package transfer

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/mem"
)

// TestPutSmallKnownMD5: a known MD5 is sent as Content-MD5 (the object is
// written and verified); a wrong one is refused and nothing is written;
// none (or not a plain MD5) is computed from the bytes.
func TestPutSmallKnownMD5(t *testing.T) {
	ctx := context.Background()
	data := testData(5000, 4)
	sum := md5.Sum(data)
	right, wrong := hex.EncodeToString(sum[:]), hex.EncodeToString(make([]byte, 16))
	for _, tt := range []struct {
		name, known string
		ok          bool
	}{
		{"known", right, true},
		{"computed", "", true},
		{"not-md5", "abc-2", true},
		{"wrong", wrong, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dst := mem.New("dst")
			e := New(mem.New("src"), dst, testOptions())
			src := store.Object{Key: "k", Size: int64(len(data)), ETag: right}
			_, _, err := e.PutSmall(ctx, store.PutInput{Key: "k"}, src, data, tt.known)
			if tt.ok != (err == nil) {
				t.Fatalf("put: %v", err)
			}
			a, serr := dst.Stat(ctx, "k")
			switch {
			case tt.ok && (serr != nil || a.Size != int64(len(data))):
				t.Fatalf("written: %+v %v", a, serr)
			case !tt.ok && !errors.Is(serr, store.ErrNotExist):
				t.Fatalf("a put with a wrong MD5 left %+v (%v)", a, serr)
			}
		})
	}
}

// TestSmallBuffers: pooled buffers have the asked length, come back by
// size class, and odd slices (not from the pool) are not pooled.
func TestSmallBuffers(t *testing.T) {
	for _, n := range []int64{0, 1, 4095, 4096, 4097, 65536, 1 << 20, 64 << 20, 64<<20 + 1} {
		b := SmallBuffer(n)
		if int64(len(b)) != n || int64(cap(b)) < n {
			t.Fatalf("SmallBuffer(%d): len %d cap %d", n, len(b), cap(b))
		}
		ReleaseSmall(b)
		if c := SmallBuffer(n); int64(len(c)) != n {
			t.Fatalf("SmallBuffer(%d) again: len %d", n, len(c))
		}
	}
	ReleaseSmall(make([]byte, 10, 5000)) // not a class size: dropped
	if b := SmallBuffer(5000); cap(b) != 8192 {
		t.Fatalf("cap %d, want the 8 KiB class", cap(b))
	}
}
