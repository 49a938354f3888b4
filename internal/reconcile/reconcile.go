// Package reconcile is a job's last check: once every work item finished,
// it lists the source and the destination again, merged in key order (one
// object of each side in memory at a time per prefix listed), and reports
// every source key the job should have copied or found up to date that is
// missing or different at the destination. It guards against accounting bugs nobody
// has found yet: the job's counters say what ferry did, the reconciliation
// says what is there.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ferry-dev/ferry/internal/filter"
	"github.com/ferry-dev/ferry/internal/plan"
	"github.com/ferry-dev/ferry/internal/store"
)

// Options tune Run. The zero value checks every source key.
type Options struct {
	// Filter selects the keys the job planned (nil: all).
	Filter *filter.Filter
	// DstKeepsMTime: the destination is a local directory (plan.Options).
	DstKeepsMTime bool
	// Compare is the job's comparison mode (plan.Options): with
	// --size-only, equal sizes are no gap.
	Compare plan.Compare
	// Since, when set, skips source objects modified at or after it: they
	// appeared or changed while the job ran, so the job may not have seen
	// them. A destination object of the same size written at or after it
	// is the job's own copy (verified as it was written) and needs no
	// provenance check.
	Since time.Time
	// Known reports keys the job already reported as failed or unsafe:
	// they are not gaps.
	Known func(key string) bool
	// Check decides keys whose listings cannot (same size, no comparable
	// ETag): it reads the destination's provenance (transfer.Engine's
	// UpToDate). An error wrapping store.ErrUnsafeKey or ErrInvalidKey
	// means the destination cannot hold the key (reported by the job as
	// skipped-unsafe), not a gap. nil: such keys count as matching.
	Check func(ctx context.Context, src, dst store.Object) (bool, error)
	// Concurrency bounds Check calls in flight (default 16).
	Concurrency int
	// ListConcurrency bounds the prefixes listed at once (default 8).
	ListConcurrency int
	// MaxExamples bounds the gaps named in the report (default 20).
	MaxExamples int
}

// Gap is a source key missing or different at the destination.
type Gap struct {
	Key    string
	Reason string
}

// Report is what Run found.
type Report struct {
	// Checked counts the source keys compared.
	Checked int64
	// Gaps counts the keys missing or different; Examples names the first.
	Gaps     int64
	Examples []Gap
	// Unsafe counts keys the destination cannot hold.
	Unsafe int64
}

// Run lists src and dst and compares them. When both stores can list one
// level (store.LevelLister), the root level is listed once and every
// common prefix of the source is then listed on both sides as a task of
// its own, up to opts.ListConcurrency at once: a bucket of many prefixes
// reconciles in a fraction of a single flat listing's time (10,000 keys in
// 50 prefixes: 0.87 s flat). Keys directly at the root are compared as
// they come. Otherwise both sides are listed flat from their roots.
func Run(ctx context.Context, src, dst store.Store, opts Options) (Report, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	if opts.ListConcurrency <= 0 {
		opts.ListConcurrency = 8
	}
	if opts.MaxExamples <= 0 {
		opts.MaxExamples = 20
	}
	r := &run{opts: opts, src: src, dst: dst, popts: plan.Options{Filter: opts.Filter, DstKeepsMTime: opts.DstKeepsMTime, Compare: opts.Compare}}
	r.checks, r.checkCtx = errgroup.WithContext(ctx)
	r.checks.SetLimit(opts.Concurrency)
	// The listings' context ends when they do; the checks they started
	// keep theirs (a failed check still stops the listings).
	lists, lctx := errgroup.WithContext(r.checkCtx)
	lists.SetLimit(opts.ListConcurrency)
	_, srcLevels := src.(store.LevelLister)
	_, dstLevels := dst.(store.LevelLister)
	if srcLevels && dstLevels {
		lists.Go(func() error { return r.root(lctx, lists) })
	} else {
		lists.Go(func() error {
			return r.merge(lctx, src.List(lctx, store.ListOptions{}), dst.List(lctx, store.ListOptions{}))
		})
	}
	listErr := lists.Wait()
	werr := r.checks.Wait()
	slices.SortFunc(r.rep.Examples, func(a, b Gap) int { return strings.Compare(a.Key, b.Key) })
	if len(r.rep.Examples) > opts.MaxExamples {
		r.rep.Examples = r.rep.Examples[:opts.MaxExamples]
	}
	if listErr != nil {
		return r.rep, fmt.Errorf("reconcile: %w", listErr)
	}
	if werr != nil {
		return r.rep, fmt.Errorf("reconcile: %w", werr)
	}
	return r.rep, nil
}

type run struct {
	opts     Options
	src, dst store.Store
	popts    plan.Options
	checks   *errgroup.Group
	checkCtx context.Context

	mu  sync.Mutex
	rep Report
}

// root lists the root level of both sides: objects there are compared as
// they come, and each common prefix of the source becomes a task that
// lists it on both sides (run at once when a slot is free, else inline).
func (r *run) root(ctx context.Context, lists *errgroup.Group) error {
	var taskErr error // of a task run inline
	srcObjs := func(yield func(store.Object, error) bool) {
		for e, err := range store.ListLevel(ctx, r.src, store.ListOptions{}) {
			if err != nil {
				yield(store.Object{}, err)
				return
			}
			if !e.IsPrefix {
				if !yield(e.Object, nil) {
					return
				}
				continue
			}
			if !r.opts.Filter.MayMatchPrefix(e.Key) {
				continue
			}
			opts := store.ListOptions{Prefix: e.Key}
			task := func() error { return r.merge(ctx, r.src.List(ctx, opts), r.dst.List(ctx, opts)) }
			if !lists.TryGo(task) {
				if taskErr = task(); taskErr != nil {
					return
				}
			}
		}
	}
	err := r.merge(ctx, srcObjs, objectsOf(store.ListLevel(ctx, r.dst, store.ListOptions{})))
	if taskErr != nil {
		return taskErr
	}
	return err
}

// objectsOf keeps the objects of a one-level listing (a subsequence of a
// key-ordered listing is key-ordered).
func objectsOf(level iter.Seq2[store.Entry, error]) iter.Seq2[store.Object, error] {
	return func(yield func(store.Object, error) bool) {
		for e, err := range level {
			if err != nil {
				yield(store.Object{}, err)
				return
			}
			if !e.IsPrefix && !yield(e.Object, nil) {
				return
			}
		}
	}
}

func (r *run) gap(key, reason string) {
	if r.opts.Known != nil && r.opts.Known(key) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rep.Gaps++
	// The examples are the first keys in key order, whatever order the
	// tasks found them in.
	r.rep.Examples = append(r.rep.Examples, Gap{Key: key, Reason: reason})
	if len(r.rep.Examples) > 2*r.opts.MaxExamples {
		slices.SortFunc(r.rep.Examples, func(a, b Gap) int { return strings.Compare(a.Key, b.Key) })
		r.rep.Examples = r.rep.Examples[:r.opts.MaxExamples]
	}
}

func (r *run) check(s, d store.Object, reason string) {
	if r.opts.Check == nil {
		if reason != "" {
			r.gap(s.Key, reason)
		}
		return
	}
	r.checks.Go(func() error {
		ok, err := r.opts.Check(r.checkCtx, s, d)
		switch {
		case err != nil && (errors.Is(err, store.ErrUnsafeKey) || errors.Is(err, store.ErrInvalidKey)):
			r.mu.Lock()
			r.rep.Unsafe++
			r.mu.Unlock()
		case err != nil:
			return fmt.Errorf("check %q at the destination: %w", s.Key, err)
		case !ok && reason != "":
			r.gap(s.Key, reason)
		case !ok:
			r.gap(s.Key, "provenance does not match the source")
		}
		return nil
	})
}

// merge compares two key-ordered listings of the same range.
func (r *run) merge(ctx context.Context, src, dst iter.Seq2[store.Object, error]) error {
	for p, err := range plan.Merge(ctx, src, dst) {
		if err != nil {
			return err
		}
		if p.Src == nil || !r.popts.Selected(p) {
			continue
		}
		if !r.opts.Since.IsZero() && !p.Src.LastModified.Before(r.opts.Since) {
			continue
		}
		r.mu.Lock()
		r.rep.Checked++
		r.mu.Unlock()
		if p.Dst == nil {
			// Missing: unless the destination cannot hold the key.
			r.check(*p.Src, store.Object{Key: p.Key}, "missing")
			continue
		}
		a, _ := plan.Decide(p, r.popts)
		written := !r.opts.Since.IsZero() && !p.Dst.LastModified.Before(r.opts.Since)
		switch {
		case a.Kind == plan.Skip:
		case a.Kind == plan.Check && written:
			// Written while the job ran, same size: the job's own copy,
			// whose bytes were checked when it was written.
		case a.Kind == plan.Check:
			r.check(*p.Src, *p.Dst, "")
		case a.Reason == "size":
			r.gap(p.Key, fmt.Sprintf("size %d at the source, %d at the destination", p.Src.Size, p.Dst.Size))
		default:
			r.check(*p.Src, *p.Dst, "differs ("+a.Reason+")")
		}
	}
	return nil
}
