package plan

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/filter"
	"github.com/ferry-dev/ferry/internal/store"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func obj(key string, size int64, etag string, mt time.Time) *store.Object {
	return &store.Object{Key: key, Size: size, ETag: etag, LastModified: mt}
}

func TestDecide(t *testing.T) {
	md5a := "0cc175b9c0f1b6a831c399e269772661"
	md5b := "92eb5ffee6ae2fec3ad71c777531578f"
	tests := []struct {
		name       string
		src, dst   *store.Object
		opts       Options
		wantKind   Kind
		wantReason string
		wantNone   bool
	}{
		{"new", obj("k", 1, md5a, t0), nil, Options{}, Copy, "new", false},
		{"size differs", obj("k", 1, md5a, t0), obj("k", 2, md5a, t0.Add(time.Hour)), Options{}, Copy, "size", false},
		{"etag equal", obj("k", 1, md5a, t0.Add(time.Hour)), obj("k", 1, md5a, t0), Options{}, Skip, "etag", false},
		{"same size changed source is newer", obj("k", 1, md5b, t0.Add(time.Hour)), obj("k", 1, md5a, t0), Options{}, Copy, "newer", false},
		{"multipart etag dst newer", obj("k", 1, md5a+"-3", t0), obj("k", 1, md5b+"-2", t0.Add(time.Minute)), Options{}, Check, "provenance", false},
		{"local source dst newer", obj("k", 1, "", t0), obj("k", 1, md5a, t0.Add(time.Minute)), Options{}, Check, "provenance", false},
		{"same time is not newer", obj("k", 1, md5b, t0), obj("k", 1, md5a, t0), Options{}, Check, "provenance", false},
		{"sub-second newer is checked", obj("k", 1, md5b, t0.Add(300*time.Millisecond)), obj("k", 1, md5a, t0), Options{}, Check, "provenance", false},
		{"next second is newer", obj("k", 1, md5b, t0.Add(1300*time.Millisecond)), obj("k", 1, md5a, t0.Add(900*time.Millisecond)), Options{}, Copy, "newer", false},
		{"local dst mtime equal", obj("k", 1, md5a, t0.Add(200*time.Millisecond)), obj("k", 1, "", t0), Options{DstKeepsMTime: true}, Skip, "mtime", false},
		{"local dst mtime differs", obj("k", 1, md5a, t0.Add(2*time.Second)), obj("k", 1, "", t0), Options{DstKeepsMTime: true}, Copy, "mtime", false},
		{"extra no delete", nil, obj("k", 1, md5a, t0), Options{}, 0, "", true},
		{"extra delete", nil, obj("k", 1, md5a, t0), Options{Delete: true}, Delete, "extra", false},
		{"marker new", obj("d/", 0, "d41d8cd98f00b204e9800998ecf8427e", t0), nil, Options{}, Copy, "new", false},

		// --size-only: equal sizes are enough, whatever the ETags and times.
		{"size-only new", obj("k", 1, md5a, t0), nil, Options{Compare: CompareSizeOnly}, Copy, "new", false},
		{"size-only size differs", obj("k", 1, md5a, t0), obj("k", 2, md5a, t0), Options{Compare: CompareSizeOnly}, Copy, "size", false},
		{"size-only newer source same size", obj("k", 1, md5b, t0.Add(time.Hour)), obj("k", 1, md5a, t0), Options{Compare: CompareSizeOnly}, Skip, "size", false},
		{"size-only local dst mtime differs", obj("k", 1, md5a, t0.Add(time.Hour)), obj("k", 1, "", t0), Options{Compare: CompareSizeOnly, DstKeepsMTime: true}, Skip, "size", false},
		{"size-only extra delete", nil, obj("k", 1, md5a, t0), Options{Compare: CompareSizeOnly, Delete: true}, Delete, "extra", false},

		// --checksum: never modification times.
		{"checksum new", obj("k", 1, md5a, t0), nil, Options{Compare: CompareChecksum}, Copy, "new", false},
		{"checksum size differs", obj("k", 1, md5a, t0), obj("k", 2, md5a, t0), Options{Compare: CompareChecksum}, Copy, "size", false},
		{"checksum etag equal, source newer", obj("k", 1, md5a, t0.Add(time.Hour)), obj("k", 1, md5a, t0), Options{Compare: CompareChecksum}, Skip, "etag", false},
		{"checksum md5s differ, source newer", obj("k", 1, md5b, t0.Add(time.Hour)), obj("k", 1, md5a, t0), Options{Compare: CompareChecksum}, Check, "checksum", false},
		{"checksum local dst equal mtime", obj("k", 1, md5a, t0), obj("k", 1, "", t0), Options{Compare: CompareChecksum, DstKeepsMTime: true}, Check, "checksum", false},
		{"checksum local dst mtime differs", obj("k", 1, md5a, t0.Add(time.Hour)), obj("k", 1, "", t0), Options{Compare: CompareChecksum, DstKeepsMTime: true}, Check, "checksum", false},
		{"checksum multipart", obj("k", 1, md5a+"-3", t0), obj("k", 1, md5b+"-2", t0), Options{Compare: CompareChecksum}, Check, "checksum", false},
		{"checksum no etags", obj("k", 1, "", t0), obj("k", 1, "", t0), Options{Compare: CompareChecksum}, Check, "checksum", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ok := Decide(Pair{Key: "k", Src: tt.src, Dst: tt.dst}, tt.opts)
			if tt.wantNone {
				if ok {
					t.Fatalf("got action %v, want none", a.Kind)
				}
				return
			}
			if !ok || a.Kind != tt.wantKind || a.Reason != tt.wantReason {
				t.Fatalf("got %v/%q ok=%v, want %v/%q", a.Kind, a.Reason, ok, tt.wantKind, tt.wantReason)
			}
		})
	}
}

// seq lists objects from a slice, sorted, optionally failing after n items.
func seq(keys []string, failAfter int) iter.Seq2[store.Object, error] {
	sort.Strings(keys)
	return func(yield func(store.Object, error) bool) {
		for i, k := range keys {
			if failAfter >= 0 && i == failAfter {
				yield(store.Object{}, errors.New("boom"))
				return
			}
			if !yield(store.Object{Key: k, Size: int64(len(k)), ETag: "e" + k, LastModified: t0}, nil) {
				return
			}
		}
	}
}

func TestPlanMerge(t *testing.T) {
	src := seq([]string{"a", "a-b", "a/b", "b", "c/x.tmp", "é"}, -1)
	dst := seq([]string{"a", "a/b", "zz", "c/x.tmp"}, -1)
	f, _ := filter.New(nil, []string{"*.tmp"})
	var got []string
	for a, err := range Plan(context.Background(), src, dst, Options{Delete: true, Filter: f}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s:%s", a.Kind, a.Key))
	}
	want := "skip:a copy:a-b skip:a/b copy:b delete:zz copy:é"
	if strings.Join(got, " ") != want {
		t.Fatalf("plan = %s\nwant   %s", strings.Join(got, " "), want)
	}
}

// TestPlanFilterObjects: size and age filters select by the source object;
// a destination-only object is deleted only when the filter selects it,
// and the destination counterpart of an excluded source object is kept.
func TestPlanFilterObjects(t *testing.T) {
	minSize, maxSize := int64(2), int64(10)
	f, err := filter.FromSpec(filter.Spec{MinSize: &minSize, MaxSize: &maxSize, ModifiedAfter: t0.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	list := func(objs ...*store.Object) iter.Seq2[store.Object, error] {
		return func(yield func(store.Object, error) bool) {
			for _, o := range objs {
				if !yield(*o, nil) {
					return
				}
			}
		}
	}
	old := t0.Add(-2 * time.Hour)
	src := list(
		obj("a-ok", 5, "s1", t0),
		obj("b-small", 1, "s2", t0), // excluded by size: not copied
		obj("c-big", 11, "s3", t0),  // excluded: its destination is kept
		obj("d-old", 5, "s4", old),  // excluded by age: its destination is kept
		obj("e-edge", 10, "s5", t0), // inclusive bound
		obj("f-edge", 2, "s6", t0.Add(-time.Hour)),
	)
	dst := list(
		obj("c-big", 3, "x", t0),
		obj("d-old", 3, "x", t0),
		obj("x-extra", 5, "x", t0),      // selected: deleted
		obj("y-extra-old", 5, "x", old), // excluded: kept
		obj("z-extra-big", 50, "x", t0), // excluded: kept
	)
	var got []string
	for a, err := range Plan(context.Background(), src, dst, Options{Delete: true, Filter: f}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s:%s", a.Kind, a.Key))
	}
	want := "copy:a-ok copy:e-edge copy:f-edge delete:x-extra"
	if strings.Join(got, " ") != want {
		t.Fatalf("plan = %s\nwant   %s", strings.Join(got, " "), want)
	}
}

// TestPlanFilesFrom: only listed keys are planned; unlisted destination
// objects are not deleted.
func TestPlanFilesFrom(t *testing.T) {
	f, err := filter.FromSpec(filter.Spec{FilesFrom: &filter.KeyList{Keys: []string{"a", "c/x.tmp", "zz"}}})
	if err != nil {
		t.Fatal(err)
	}
	src := seq([]string{"a", "a-b", "b", "c/x.tmp"}, -1)
	dst := seq([]string{"b-extra", "zz"}, -1)
	var got []string
	for a, err := range Plan(context.Background(), src, dst, Options{Delete: true, Filter: f}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s:%s", a.Kind, a.Key))
	}
	want := "copy:a copy:c/x.tmp delete:zz"
	if strings.Join(got, " ") != want {
		t.Fatalf("plan = %s\nwant   %s", strings.Join(got, " "), want)
	}
}

func TestPlanListingErrorIsLast(t *testing.T) {
	src := seq([]string{"a", "b", "c"}, 2)
	dst := seq([]string{"x", "y"}, -1)
	var deletes int
	var lastErr error
	for a, err := range Plan(context.Background(), src, dst, Options{Delete: true}) {
		if err != nil {
			lastErr = err
			continue
		}
		if lastErr != nil {
			t.Fatal("action after error")
		}
		if a.Kind == Delete {
			deletes++
		}
	}
	if lastErr == nil || !strings.Contains(lastErr.Error(), "list source") {
		t.Fatalf("want source listing error, got %v", lastErr)
	}
}

func TestPlanOutOfOrder(t *testing.T) {
	bad := func(yield func(store.Object, error) bool) {
		for _, k := range []string{"b", "a"} {
			if !yield(store.Object{Key: k}, nil) {
				return
			}
		}
	}
	var lastErr error
	for _, err := range Plan(context.Background(), bad, seq(nil, -1), Options{}) {
		lastErr = err
	}
	if lastErr == nil || !strings.Contains(lastErr.Error(), "not in ascending key order") {
		t.Fatalf("got %v", lastErr)
	}
}

func TestPlanStopsEarly(t *testing.T) {
	n := 0
	for range Plan(context.Background(), seq([]string{"a", "b", "c"}, -1), seq(nil, -1), Options{}) {
		n++
		break
	}
	if n != 1 {
		t.Fatal(n)
	}
}

// TestPlanMillionBoundedMemory plans 1,000,000 keys from generated listings:
// every key once, in order.
func TestPlanMillion(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	const n = 1_000_000
	gen := func(step int) iter.Seq2[store.Object, error] {
		return func(yield func(store.Object, error) bool) {
			for i := 0; i < n; i += step {
				if !yield(store.Object{Key: fmt.Sprintf("k%08d", i), Size: 1, ETag: "x", LastModified: t0}, nil) {
					return
				}
			}
		}
	}
	var copies, skips int
	for a, err := range Plan(context.Background(), gen(1), gen(2), Options{}) {
		if err != nil {
			t.Fatal(err)
		}
		switch a.Kind {
		case Copy:
			copies++
		case Skip:
			skips++
		}
	}
	if copies != n/2 || skips != n/2 {
		t.Fatalf("copies %d skips %d", copies, skips)
	}
}

func TestCheckDeleteLimit(t *testing.T) {
	tests := []struct {
		name          string
		n, total, max int64
		pct           float64
		wantErr       bool
	}{
		{"no limits", 100, 100, 0, 0, false},
		{"count within", 5, 100, 5, 0, false},
		{"count over", 6, 100, 5, 0, true},
		{"no deletes allowed", 1, 100, -1, 0, true},
		{"percent within", 10, 100, 0, 10, false},
		{"percent over", 11, 100, 0, 10, true},
		{"zero percent", 1, 100, 0, -1, true},
		{"nothing to delete", 0, 0, -1, -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckDeleteLimit(tt.n, tt.total, tt.max, tt.pct)
			if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, ErrDeleteLimit)) {
				t.Fatalf("got %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
