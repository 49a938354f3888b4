// Package runner runs, in this process, what needs no durable job: a dry
// run of copy or sync (plan and provenance checks, nothing written) and
// verify (both sides compared). It streams the plan of two listings, fans
// the per-object checks out with bounded concurrency and counts every
// outcome.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ferry-dev/ferry/internal/filter"
	"github.com/ferry-dev/ferry/internal/logtext"
	"github.com/ferry-dev/ferry/internal/plan"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/transfer"
)

// MaxListed is how many failures, differences or unsafe keys a Summary
// names; the counters keep counting past it.
const MaxListed = 1000

// Options tune a run. The zero value copies with 32 objects in flight.
type Options struct {
	// Concurrency is the number of objects in flight (default 32).
	Concurrency int
	// Delete plans deletes of destination objects absent at the source
	// (sync --delete).
	Delete bool
	// MaxDelete refuses to delete more than this many objects (0: no limit
	// by count, negative: no deletes at all); MaxDeletePercent likewise as a
	// percentage of the destination's listed objects. Force overrides both.
	MaxDelete        int64
	MaxDeletePercent float64
	Force            bool
	// Filter selects keys; nil selects all.
	Filter *filter.Filter
	// DstKeepsMTime: the destination stores source modification times.
	DstKeepsMTime bool
	// Compare is the comparison mode of a dry run (plan.Options). Verify
	// compares checksums (reading both sides where ETags cannot decide)
	// unless it is plan.CompareSizeOnly, which compares sizes only.
	Compare plan.Compare
	// Exact makes Verify count destination-only keys as differences.
	Exact bool
	// Log receives one line per failure and, at debug level, per object.
	Log *slog.Logger
	// OnAction, when set, is called (from the planning goroutine) for each
	// planned action of a dry run, for printing it.
	OnAction func(a plan.Action)
}

func (o *Options) applyDefaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = 32
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// Stats are live counters, safe to read while a run is going on.
type Stats struct {
	Listed        atomic.Int64 // source objects the filter selected
	ListedBytes   atomic.Int64
	DstListed     atomic.Int64
	ToCopy        atomic.Int64 // actions that need a copy or check
	ToCopyBytes   atomic.Int64
	Copied        atomic.Int64
	CopiedBytes   atomic.Int64
	Skipped       atomic.Int64
	SkippedBytes  atomic.Int64
	Failed        atomic.Int64
	Deleted       atomic.Int64
	Unsafe        atomic.Int64
	Differences   atomic.Int64
	Verified      atomic.Int64
	PlanDone      atomic.Bool
	DeletePending atomic.Int64
}

// Problem names one key and what went wrong with it.
type Problem struct {
	Key    string `json:"key"`
	Reason string `json:"error"`
}

// Summary is the outcome of a run.
type Summary struct {
	ObjectsListed  int64 `json:"objects_listed"`
	ObjectsCopied  int64 `json:"objects_copied"`
	ObjectsSkipped int64 `json:"objects_skipped"`
	ObjectsFailed  int64 `json:"objects_failed"`
	ObjectsDeleted int64 `json:"objects_deleted"`
	ObjectsUnsafe  int64 `json:"objects_skipped_unsafe"`
	BytesCopied    int64 `json:"bytes_copied"`
	BytesSkipped   int64 `json:"bytes_skipped"`
	// Identical counts the objects Verify found identical on both sides.
	Identical   int64   `json:"-"`
	Differences int64   `json:"differences,omitempty"`
	Duration    float64 `json:"duration_seconds"`
	DryRun      bool    `json:"dry_run,omitempty"`
	// Failures, Unsafe and Diffs name at most MaxListed keys each.
	Failures []Problem `json:"failures,omitempty"`
	Unsafe   []Problem `json:"skipped_unsafe,omitempty"`
	Diffs    []Problem `json:"differences_list,omitempty"`
	// Error is set when the run stopped early (a listing failed, the
	// delete limit was reached, or it was cancelled).
	Error string `json:"error,omitempty"`
}

// Runner runs one job in this process.
type Runner struct {
	src, dst store.Store
	eng      *transfer.Engine
	opts     Options
	Stats    Stats

	mu       sync.Mutex
	failures []Problem
	unsafe   []Problem
	diffs    []Problem
}

// New returns a Runner copying from src to dst with eng.
func New(src, dst store.Store, eng *transfer.Engine, opts Options) *Runner {
	opts.applyDefaults()
	return &Runner{src: src, dst: dst, eng: eng, opts: opts}
}

func (r *Runner) note(list *[]Problem, key string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(*list) < MaxListed {
		*list = append(*list, Problem{Key: key, Reason: logtext.OneLine(err.Error())})
	}
}

// counted wraps a listing to count what it yields.
func counted(seq func(func(store.Object, error) bool), n, bytes *atomic.Int64) func(func(store.Object, error) bool) {
	return func(yield func(store.Object, error) bool) {
		seq(func(o store.Object, err error) bool {
			if err == nil {
				n.Add(1)
				if bytes != nil {
					bytes.Add(o.Size)
				}
			}
			return yield(o, err)
		})
	}
}

// DryRun plans a copy or sync without changing anything: it streams the
// plan, runs the provenance check (a HEAD) for "check" actions, and counts
// what would be copied, skipped and deleted. Copies and syncs for real run
// as durable jobs (package job). The error is non-nil when the plan could
// not finish (a listing failed, cancelled) or a sync would exceed the
// delete limit.
func (r *Runner) DryRun(ctx context.Context) (Summary, error) {
	start := time.Now()
	st := &r.Stats
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.opts.Concurrency)

	srcList := r.src.List(ctx, store.ListOptions{})
	dstList := counted(r.dst.List(ctx, store.ListOptions{}), &st.DstListed, nil)
	var planErr error
	for a, err := range plan.Plan(gctx, srcList, dstList, plan.Options{
		Filter: r.opts.Filter, Delete: r.opts.Delete, DstKeepsMTime: r.opts.DstKeepsMTime, Compare: r.opts.Compare,
	}) {
		if err != nil {
			planErr = err
			break
		}
		if a.Kind != plan.Delete {
			st.Listed.Add(1)
			st.ListedBytes.Add(a.Src.Size)
		}
		if r.opts.OnAction != nil && a.Kind != plan.Check {
			r.opts.OnAction(a)
		}
		switch a.Kind {
		case plan.Skip:
			st.Skipped.Add(1)
			st.SkippedBytes.Add(a.Src.Size)
		case plan.Delete:
			st.DeletePending.Add(1)
		case plan.Copy:
			st.ToCopy.Add(1)
			st.ToCopyBytes.Add(a.Src.Size)
			st.Copied.Add(1)
			st.CopiedBytes.Add(a.Src.Size)
		case plan.Check:
			st.ToCopy.Add(1)
			st.ToCopyBytes.Add(a.Src.Size)
			g.Go(func() error {
				r.check(gctx, a)
				return nil
			})
		}
	}
	st.PlanDone.Store(true)
	_ = g.Wait()
	if planErr == nil {
		planErr = ctx.Err()
	}
	st.Deleted.Store(st.DeletePending.Load()) // would be deleted
	s := r.summary(start)
	s.DryRun = true
	if planErr != nil {
		s.Error = logtext.OneLine(planErr.Error())
		return s, planErr
	}
	if r.opts.Delete {
		if err := r.checkDeleteLimit(); err != nil {
			s.Error = err.Error()
			return s, err
		}
	}
	return s, nil
}

// ErrDeleteLimit is returned when a sync would delete more than allowed.
var ErrDeleteLimit = plan.ErrDeleteLimit

func (r *Runner) checkDeleteLimit() error {
	if r.opts.Force {
		return nil
	}
	return plan.CheckDeleteLimit(r.Stats.DeletePending.Load(), r.Stats.DstListed.Load(), r.opts.MaxDelete, r.opts.MaxDeletePercent)
}

// check runs the provenance check of one "check" action and counts it as
// skipped or to be copied.
func (r *Runner) check(ctx context.Context, a plan.Action) {
	st := &r.Stats
	ok, err := r.eng.UpToDate(ctx, a.Src, a.Dst)
	if err != nil {
		r.fail(a.Key, err)
		return
	}
	if ok {
		st.Skipped.Add(1)
		st.SkippedBytes.Add(a.Src.Size)
		return
	}
	a.Kind, a.Reason = plan.Copy, "provenance"
	if r.opts.OnAction != nil {
		r.opts.OnAction(a)
	}
	st.Copied.Add(1)
	st.CopiedBytes.Add(a.Src.Size)
}

func (r *Runner) fail(key string, err error) {
	if errors.Is(err, store.ErrUnsafeKey) || errors.Is(err, store.ErrInvalidKey) {
		r.Stats.Unsafe.Add(1)
		r.note(&r.unsafe, key, err)
		r.opts.Log.Debug("skipped unsafe key", "key", key, "err", logtext.OneLine(err.Error()))
		return
	}
	r.Stats.Failed.Add(1)
	r.note(&r.failures, key, err)
	r.opts.Log.Debug("failed", "key", key, "err", logtext.OneLine(err.Error()))
}

// Verify compares both sides: every selected source key must exist at the
// destination with identical content. Differences are counted and named.
func (r *Runner) Verify(ctx context.Context) (Summary, error) {
	start := time.Now()
	st := &r.Stats
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.opts.Concurrency)
	diff := func(key, reason string) {
		st.Differences.Add(1)
		r.note(&r.diffs, key, errors.New(reason))
		r.opts.Log.Debug("differs", "key", key, "reason", reason)
	}
	srcList := r.src.List(ctx, store.ListOptions{})
	dstList := counted(r.dst.List(ctx, store.ListOptions{}), &st.DstListed, nil)
	var listErr error
	for p, err := range plan.Merge(gctx, srcList, dstList) {
		if err != nil {
			listErr = err
			break
		}
		if !(plan.Options{Filter: r.opts.Filter}).Selected(p) {
			continue
		}
		if p.Src != nil {
			st.Listed.Add(1)
			st.ListedBytes.Add(p.Src.Size)
		}
		switch {
		case p.Src == nil:
			if r.opts.Exact {
				diff(p.Key, "only at destination")
			}
		case p.Dst == nil:
			diff(p.Key, "missing at destination")
		case r.opts.Compare == plan.CompareSizeOnly:
			if p.Src.Size != p.Dst.Size {
				diff(p.Key, fmt.Sprintf("size %d != %d", p.Src.Size, p.Dst.Size))
			} else {
				st.Verified.Add(1)
				st.CopiedBytes.Add(p.Src.Size)
			}
		default:
			s, d := *p.Src, *p.Dst
			st.ToCopy.Add(1)
			st.ToCopyBytes.Add(s.Size)
			g.Go(func() error {
				reason, err := r.eng.Verify(gctx, s, d)
				switch {
				case err != nil:
					r.fail(s.Key, err)
				case reason != "":
					diff(s.Key, reason)
				default:
					st.Verified.Add(1)
					st.CopiedBytes.Add(s.Size)
				}
				return nil
			})
		}
	}
	st.PlanDone.Store(true)
	_ = g.Wait()
	if listErr == nil {
		listErr = ctx.Err()
	}
	s := r.summary(start)
	if listErr != nil {
		s.Error = logtext.OneLine(listErr.Error())
	}
	return s, listErr
}

func (r *Runner) summary(start time.Time) Summary {
	st := &r.Stats
	r.mu.Lock()
	defer r.mu.Unlock()
	return Summary{
		ObjectsListed:  st.Listed.Load(),
		ObjectsCopied:  st.Copied.Load(),
		ObjectsSkipped: st.Skipped.Load(),
		ObjectsFailed:  st.Failed.Load(),
		ObjectsDeleted: st.Deleted.Load(),
		ObjectsUnsafe:  st.Unsafe.Load(),
		BytesCopied:    st.CopiedBytes.Load(),
		BytesSkipped:   st.SkippedBytes.Load(),
		Identical:      st.Verified.Load(),
		Differences:    st.Differences.Load(),
		Duration:       time.Since(start).Seconds(),
		Failures:       append([]Problem(nil), r.failures...),
		Unsafe:         append([]Problem(nil), r.unsafe...),
		Diffs:          append([]Problem(nil), r.diffs...),
	}
}
