package runner_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/filter"
	"github.com/ferry-dev/ferry/internal/runner"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/mem"
	"github.com/ferry-dev/ferry/internal/transfer"
)

func put(t *testing.T, s store.Store, key, body string) {
	t.Helper()
	if _, err := s.Put(context.Background(), store.PutInput{Key: key, Size: int64(len(body))}, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
}

// TestDryRunChangesNothing: a dry run counts what a sync would copy, skip
// and delete, and writes nothing.
func TestDryRunChangesNothing(t *testing.T) {
	ctx := context.Background()
	src, dst := mem.New("src"), mem.New("dst")
	for _, k := range []string{"a", "b", "c"} {
		put(t, src, k, "v-"+k)
	}
	eng := transfer.New(src, dst, transfer.Options{})
	if _, err := eng.Copy(ctx, store.Object{Key: "a", Size: 3}, "a"); err != nil {
		t.Fatal(err)
	}
	put(t, dst, "extra", "x")
	r := runner.New(src, dst, eng, runner.Options{Delete: true})
	sum, err := r.DryRun(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !sum.DryRun || sum.ObjectsCopied != 2 || sum.ObjectsDeleted != 1 {
		t.Fatalf("summary %+v", sum)
	}
	if keys := dst.Keys(); len(keys) != 2 {
		t.Fatalf("dry run wrote or deleted: %v", keys)
	}
}

// TestVerifyNamesDifferences: verify counts and names missing and
// different objects, and finds a faithful copy identical.
func TestVerifyNamesDifferences(t *testing.T) {
	ctx := context.Background()
	src, dst := mem.New("src"), mem.New("dst")
	for _, k := range []string{"a", "b", "c"} {
		put(t, src, k, "v-"+k)
	}
	eng := transfer.New(src, dst, transfer.Options{})
	for _, k := range []string{"a", "b", "c"} {
		if _, err := eng.Copy(ctx, store.Object{Key: k, Size: 3}, k); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := runner.New(src, dst, eng, runner.Options{}).Verify(ctx)
	if err != nil || sum.Differences != 0 || sum.ObjectsListed != 3 {
		t.Fatalf("identical: %+v %v", sum, err)
	}
	if err := dst.Delete(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	put(t, dst, "c", "v-X")
	sum, err = runner.New(src, dst, eng, runner.Options{}).Verify(ctx)
	if err != nil || sum.Differences != 2 || len(sum.Diffs) != 2 {
		t.Fatalf("differences: %+v %v", sum, err)
	}
}

// TestVerifyCountsOnlySelectedKeys: with a filter, verify counts the keys
// it selected, not every key listed, and names each difference once.
func TestVerifyCountsOnlySelectedKeys(t *testing.T) {
	ctx := context.Background()
	src, dst := mem.New("src"), mem.New("dst")
	for _, k := range []string{"a.jpg", "b.jpg", "c.txt", "d/e.txt", "d/f.jpg"} {
		put(t, src, k, "v-"+k)
	}
	eng := transfer.New(src, dst, transfer.Options{})
	for _, k := range []string{"a.jpg", "c.txt", "d/e.txt"} {
		if _, err := eng.Copy(ctx, store.Object{Key: k, Size: int64(len("v-" + k))}, k); err != nil {
			t.Fatal(err)
		}
	}
	flt, err := filter.New([]string{"*.jpg"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := runner.New(src, dst, eng, runner.Options{Filter: flt}).Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.ObjectsListed != 3 || sum.Identical != 1 || sum.Differences != 2 || len(sum.Diffs) != 2 {
		t.Fatalf("summary %+v: want 3 selected, 1 identical, 2 differences", sum)
	}
	dry, err := runner.New(src, dst, eng, runner.Options{Filter: flt}).DryRun(ctx)
	if err != nil || dry.ObjectsListed != 3 || dry.ObjectsCopied != 2 || dry.ObjectsSkipped != 1 {
		t.Fatalf("dry run %+v %v: want 3 selected, 2 to copy, 1 skipped", dry, err)
	}
}
