// Package reconcile is a job's last check: once every work item finished,
// it lists the source and the destination again, merged in key order (one
// object of each side in memory at a time), and reports every source key
// the job should have copied or found up to date that is missing or
// different at the destination. It guards against accounting bugs nobody
// has found yet: the job's counters say what ferry did, the reconciliation
// says what is there.
package reconcile

import (
	"context"
	"errors"
	"fmt"
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

// Run lists src and dst (flat, from their roots) and compares them.
func Run(ctx context.Context, src, dst store.Store, opts Options) (Report, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	if opts.MaxExamples <= 0 {
		opts.MaxExamples = 20
	}
	var mu sync.Mutex
	var rep Report
	gap := func(key, reason string) {
		if opts.Known != nil && opts.Known(key) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		rep.Gaps++
		if len(rep.Examples) < opts.MaxExamples {
			rep.Examples = append(rep.Examples, Gap{Key: key, Reason: reason})
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Concurrency)
	check := func(s, d store.Object, reason string) {
		if opts.Check == nil {
			if reason != "" {
				gap(s.Key, reason)
			}
			return
		}
		g.Go(func() error {
			ok, err := opts.Check(gctx, s, d)
			switch {
			case err != nil && (errors.Is(err, store.ErrUnsafeKey) || errors.Is(err, store.ErrInvalidKey)):
				mu.Lock()
				rep.Unsafe++
				mu.Unlock()
			case err != nil:
				return fmt.Errorf("check %q at the destination: %w", s.Key, err)
			case !ok && reason != "":
				gap(s.Key, reason)
			case !ok:
				gap(s.Key, "provenance does not match the source")
			}
			return nil
		})
	}
	popts := plan.Options{Filter: opts.Filter, DstKeepsMTime: opts.DstKeepsMTime, Compare: opts.Compare}
	var listErr error
	for p, err := range plan.Merge(gctx, src.List(gctx, store.ListOptions{}), dst.List(gctx, store.ListOptions{})) {
		if err != nil {
			listErr = err
			break
		}
		if p.Src == nil || !popts.Selected(p) {
			continue
		}
		if !opts.Since.IsZero() && !p.Src.LastModified.Before(opts.Since) {
			continue
		}
		mu.Lock()
		rep.Checked++
		mu.Unlock()
		if p.Dst == nil {
			// Missing: unless the destination cannot hold the key.
			check(*p.Src, store.Object{Key: p.Key}, "missing")
			continue
		}
		a, _ := plan.Decide(p, popts)
		written := !opts.Since.IsZero() && !p.Dst.LastModified.Before(opts.Since)
		switch {
		case a.Kind == plan.Skip:
		case a.Kind == plan.Check && written:
			// Written while the job ran, same size: the job's own copy,
			// whose bytes were checked when it was written.
		case a.Kind == plan.Check:
			check(*p.Src, *p.Dst, "")
		case a.Reason == "size":
			gap(p.Key, fmt.Sprintf("size %d at the source, %d at the destination", p.Src.Size, p.Dst.Size))
		default:
			check(*p.Src, *p.Dst, "differs ("+a.Reason+")")
		}
	}
	werr := g.Wait()
	if listErr != nil {
		return rep, fmt.Errorf("reconcile: %w", listErr)
	}
	if werr != nil {
		return rep, fmt.Errorf("reconcile: %w", werr)
	}
	return rep, nil
}
