package onekey_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/mem"
	"github.com/ferry-dev/ferry/internal/store/onekey"
	"github.com/ferry-dev/ferry/internal/transfer"
)

func put(t *testing.T, s store.Store, key string, body []byte) {
	t.Helper()
	if _, err := s.Put(context.Background(), store.PutInput{Key: key, Size: int64(len(body))}, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
}

func list(t *testing.T, s store.Store, opts store.ListOptions) []string {
	t.Helper()
	var keys []string
	for _, o := range objects(t, s, opts) {
		keys = append(keys, o.Key)
	}
	return keys
}

func objects(t *testing.T, s store.Store, opts store.ListOptions) []store.Object {
	t.Helper()
	var objs []store.Object
	for o, err := range s.List(context.Background(), opts) {
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	return objs
}

// TestViewListsOneObject: the view lists its object under its name, and
// nothing else: not the keys it prefixes, not a missing object, not when
// the listing options leave it out.
func TestViewListsOneObject(t *testing.T) {
	src := mem.New("src")
	put(t, src, "dir/photo.jpg", []byte("jpeg"))
	put(t, src, "dir/photo.jpg.bak", []byte("old"))
	put(t, src, "dir/photo.jpg/inside", []byte("x"))
	v, err := onekey.New(src, "photo.jpg", "dir/photo.jpg")
	if err != nil {
		t.Fatal(err)
	}
	if got := list(t, v, store.ListOptions{}); strings.Join(got, ",") != "photo.jpg" {
		t.Fatalf("list: %q", got)
	}
	for _, o := range []store.ListOptions{{Prefix: "x"}, {StartAfter: "photo.jpg"}, {StartAfter: "q"}} {
		if got := list(t, v, o); len(got) != 0 {
			t.Fatalf("list %+v: %q", o, got)
		}
	}
	if got := list(t, v, store.ListOptions{Prefix: "ph", StartAfter: "a"}); len(got) != 1 {
		t.Fatalf("list with prefix: %q", got)
	}
	missing, _ := onekey.New(src, "nope", "dir/nope")
	if got := list(t, missing, store.ListOptions{}); len(got) != 0 {
		t.Fatalf("missing object listed: %q", got)
	}
	if _, err := v.Stat(context.Background(), "dir/photo.jpg.bak"); !errors.Is(err, store.ErrNotExist) || !errors.Is(err, onekey.ErrNotInView) {
		t.Fatalf("stat of another key: %v", err)
	}
	if err := v.Delete(context.Background(), "other"); err == nil {
		t.Fatal("delete of another key accepted")
	}
}

// TestViewCopiesUnderAnotherName: the transfer engine copies the source
// view to a destination view that writes the object under another name,
// in one request or in parts, verified, and touches no other key.
func TestViewCopiesUnderAnotherName(t *testing.T) {
	ctx := context.Background()
	for _, size := range []int{10, 11 << 20} {
		srcDir, dstDir := mem.New("src"), mem.New("dst")
		body := bytes.Repeat([]byte("0123456789"), size/10+1)[:size]
		put(t, srcDir, "a/photo.jpg", body)
		put(t, dstDir, "keep", []byte("k"))
		src, _ := onekey.New(srcDir, "photo.jpg", "a/photo.jpg")
		dst, _ := onekey.New(dstDir, "photo.jpg", "renamed")
		objs := objects(t, src, store.ListOptions{})
		if len(objs) != 1 {
			t.Fatalf("src list: %v", objs)
		}
		eng := transfer.New(src, dst, transfer.Options{PartSize: 5 << 20, MultipartThreshold: 5 << 20})
		res, err := eng.Copy(ctx, objs[0], "photo.jpg")
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if res.Verified == "" {
			t.Fatalf("size %d: unverified copy", size)
		}
		if got := strings.Join(dstDir.Keys(), ","); got != "keep,renamed" {
			t.Fatalf("size %d: destination keys %q", size, got)
		}
		rc, _, err := dstDir.Open(ctx, "renamed", 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, body) {
			t.Fatalf("size %d: content differs", size)
		}
		if got := list(t, dst, store.ListOptions{}); len(got) != 1 || got[0] != "photo.jpg" {
			t.Fatalf("destination view lists %q", got)
		}
		ok, err := eng.UpToDate(ctx, objs[0], store.Object{Key: "photo.jpg"})
		if err != nil || !ok {
			t.Fatalf("size %d: copy not up to date: %v %v", size, ok, err)
		}
	}
}
