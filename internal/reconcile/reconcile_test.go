package reconcile_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/filter"
	"github.com/ferry-dev/ferry/internal/reconcile"
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

// copyAll copies every object of src with ferry's engine, so the
// destination carries provenance.
func copyAll(t *testing.T, src, dst store.Store) {
	t.Helper()
	ctx := context.Background()
	eng := transfer.New(src, dst, transfer.Options{})
	for o, err := range src.List(ctx, store.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if _, err := eng.Copy(ctx, o, o.Key); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReconcile(t *testing.T) {
	ctx := context.Background()
	src, dst := mem.New("src"), mem.New("dst")
	for i := range 50 {
		put(t, src, fmt.Sprintf("k%02d", i), fmt.Sprintf("body %d", i))
	}
	put(t, src, "skip/me.tmp", "x")
	copyAll(t, src, dst)
	eng := transfer.New(src, dst, transfer.Options{})
	flt, err := filter.New(nil, []string{"**.tmp"})
	if err != nil {
		t.Fatal(err)
	}
	opts := reconcile.Options{Filter: flt, Check: eng.UpToDate}

	rep, err := reconcile.Run(ctx, src, dst, opts)
	if err != nil || rep.Gaps != 0 || rep.Checked != 50 {
		t.Fatalf("clean: %+v %v", rep, err)
	}

	// Behind ferry's back: one object deleted, one truncated, one replaced
	// by other bytes of the same size (no provenance), one known failure.
	if err := dst.Delete(ctx, "k03"); err != nil {
		t.Fatal(err)
	}
	put(t, dst, "k04", "short")
	put(t, dst, "k05", "BODY 5")
	if err := dst.Delete(ctx, "k06"); err != nil {
		t.Fatal(err)
	}
	opts.Known = func(k string) bool { return k == "k06" }
	rep, err = reconcile.Run(ctx, src, dst, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Gaps != 3 || len(rep.Examples) != 3 {
		t.Fatalf("gaps: %+v", rep)
	}
	want := map[string]string{"k03": "missing", "k04": "size", "k05": "provenance"}
	for _, g := range rep.Examples {
		if !strings.Contains(g.Reason, want[g.Key]) {
			t.Fatalf("gap %q: %q, want %q", g.Key, g.Reason, want[g.Key])
		}
	}

	// Objects that appeared at the source after the job started are not
	// the job's.
	put(t, src, "k99-new", "late")
	opts.Since = time.Now().Add(-time.Hour)
	if rep, err = reconcile.Run(ctx, src, dst, opts); err != nil || rep.Checked != 0 {
		t.Fatalf("since: %+v %v", rep, err)
	}
}

func TestReconcileListingError(t *testing.T) {
	src, dst := mem.New("src"), mem.New("dst")
	put(t, src, "a", "a")
	dst.SetFault(func(op, _ string) error {
		if op == mem.OpList {
			return fmt.Errorf("injected: %w", store.ErrAccess)
		}
		return nil
	})
	if _, err := reconcile.Run(context.Background(), src, dst, reconcile.Options{}); err == nil {
		t.Fatal("a failed listing reconciled")
	}
}
