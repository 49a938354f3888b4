package mem_test

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/mem"
	"github.com/ferry-dev/ferry/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return mem.New(t.Name()) }, storetest.Options{})
}

func TestFault(t *testing.T) {
	errBoom := errors.New("boom")
	s := mem.New("f")
	s.SetFault(func(op, key string) error {
		if op == mem.OpPut && key == "bad" {
			return errBoom
		}
		return nil
	})
	storetest.Put(t, s, "good", []byte("x"))
	_, err := s.Put(t.Context(), store.PutInput{Key: "bad", Size: 1}, bytes.NewReader([]byte("x")))
	if !errors.Is(err, errBoom) {
		t.Fatalf("Put(bad) = %v, want the injected error", err)
	}
	if got := s.Keys(); !slices.Equal(got, []string{"good"}) {
		t.Errorf("Keys = %q, want [good]", got)
	}
	if n := s.Calls(mem.OpPut); n != 2 {
		t.Errorf("Calls(Put) = %d, want 2", n)
	}
	s.SetFault(func(op, key string) error {
		if op == mem.OpList {
			return errBoom
		}
		return nil
	})
	var last error
	for _, err := range s.List(t.Context(), store.ListOptions{}) {
		last = err
	}
	if !errors.Is(last, errBoom) {
		t.Errorf("List error = %v, want the injected error", last)
	}
	s.SetFault(nil)
	s.ResetCalls()
	if n := s.Calls(mem.OpPut); n != 0 {
		t.Errorf("Calls after reset = %d", n)
	}
}

func TestClock(t *testing.T) {
	s := mem.New("c")
	at := time.Date(2021, 1, 2, 3, 4, 5, 0, time.UTC)
	s.SetClock(func() time.Time { return at })
	storetest.Put(t, s, "k", []byte("x"))
	a, err := s.Stat(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	if !a.LastModified.Equal(at) {
		t.Errorf("LastModified %v, want %v", a.LastModified, at)
	}
	if b, ok := s.Bytes("k"); !ok || string(b) != "x" {
		t.Errorf("Bytes = %q, %v", b, ok)
	}
}

func TestMultipartETag(t *testing.T) {
	// ETag of a multipart upload as S3 computes it: MD5 of the parts' MD5s.
	s := mem.New("m")
	ctx := t.Context()
	id, err := s.CreateMultipart(ctx, store.PutInput{Key: "k", PartSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	var parts []store.Part
	for i, b := range []string{"abc", "de"} {
		p, err := s.UploadPart(ctx, "k", id, int32(i+1), bytes.NewReader([]byte(b)), int64(len(b)), "")
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
	}
	res, err := s.CompleteMultipart(ctx, "k", id, parts)
	if err != nil {
		t.Fatal(err)
	}
	a, b := md5.Sum([]byte("abc")), md5.Sum([]byte("de"))
	want := fmt.Sprintf("%x-2", md5.Sum(append(a[:], b[:]...)))
	if res.ETag != want {
		t.Errorf("ETag %q, want %q", res.ETag, want)
	}
	if s.Uploads() != 0 {
		t.Errorf("%d uploads left", s.Uploads())
	}
}
