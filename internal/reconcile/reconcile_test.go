package reconcile_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
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
		if op == mem.OpList || op == mem.OpListLevel {
			return fmt.Errorf("injected: %w", store.ErrAccess)
		}
		return nil
	})
	if _, err := reconcile.Run(context.Background(), src, dst, reconcile.Options{}); err == nil {
		t.Fatal("a failed listing reconciled")
	}
}

// flat hides a store's one-level listing, so Run lists it flat.
type flat struct{ store.Store }

// TestReconcileSplitSameAsFlat: listing prefix by prefix finds exactly what
// one flat listing finds (checked, gaps, the examples in key order,
// unsafe), on random trees: keys at the root, in prefixes, in nested
// prefixes, keys that sort around "/" ("a-", "a/", "a0"), with objects
// missing, truncated or rewritten behind ferry's back.
func TestReconcileSplitSameAsFlat(t *testing.T) {
	ctx := context.Background()
	seed := time.Now().UnixNano()
	if v := os.Getenv("FERRY_RECONCILE_SEED"); v != "" {
		seed, _ = strconv.ParseInt(v, 10, 64)
	}
	t.Logf("seed %d (FERRY_RECONCILE_SEED=%d reproduces this run)", seed, seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	parts := []string{"a", "a-", "a0", "b", "z", "ü"}
	for run := range 20 {
		src, dst := mem.New("src"), mem.New("dst")
		keys := map[string]bool{}
		for range 1 + rng.IntN(400) {
			depth := rng.IntN(4)
			var k []string
			for range depth + 1 {
				k = append(k, parts[rng.IntN(len(parts))]+fmt.Sprint(rng.IntN(3)))
			}
			key := strings.Join(k, "/")
			if rng.IntN(10) == 0 {
				key += "/" // a directory marker
			}
			keys[key] = true
		}
		for k := range keys {
			put(t, src, k, "body of "+k)
		}
		copyAll(t, src, dst)
		for k := range keys {
			switch rng.IntN(12) {
			case 0:
				if err := dst.Delete(ctx, k); err != nil {
					t.Fatal(err)
				}
			case 1:
				put(t, dst, k, "x")
			case 2:
				put(t, dst, k, "body of "+k+"!") // other bytes, no provenance
			}
		}
		eng := transfer.New(src, dst, transfer.Options{})
		opts := reconcile.Options{Check: eng.UpToDate, MaxExamples: 5}
		split, err1 := reconcile.Run(ctx, src, dst, opts)
		whole, err2 := reconcile.Run(ctx, flat{src}, flat{dst}, opts)
		if err1 != nil || err2 != nil {
			t.Fatalf("run %d: %v / %v", run, err1, err2)
		}
		if fmt.Sprint(split) != fmt.Sprint(whole) {
			t.Fatalf("run %d (%d keys): split %+v\nflat  %+v", run, len(keys), split, whole)
		}
		if split.Checked != int64(len(keys)) {
			t.Fatalf("run %d: checked %d of %d keys", run, split.Checked, len(keys))
		}
	}
}

// TestReconcileSplitListingError: a prefix whose listing fails fails the
// reconciliation (never a clean report).
func TestReconcileSplitListingError(t *testing.T) {
	src, dst := mem.New("src"), mem.New("dst")
	for i := range 30 {
		put(t, src, fmt.Sprintf("p%02d/k", i), "x")
	}
	copyAll(t, src, dst)
	dst.SetFault(func(op, key string) error {
		if op == mem.OpList && strings.HasPrefix(key, "p17/") {
			return fmt.Errorf("injected: %w", store.ErrAccess)
		}
		return nil
	})
	if rep, err := reconcile.Run(context.Background(), src, dst, reconcile.Options{ListConcurrency: 2}); err == nil {
		t.Fatalf("a failed prefix listing reconciled: %+v", rep)
	}
}
