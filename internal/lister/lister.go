package lister

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"

	"github.com/ferry-dev/ferry/internal/keyspace"
	"github.com/ferry-dev/ferry/internal/plan"
	"github.com/ferry-dev/ferry/internal/store"
)

// Task is one listing task: keys in (StartAfter, End] under Prefix ("" End =
// no upper bound). Level: list by delimiter first and fan out one sub-task
// per common prefix. The JSON tags are short: it travels in queue messages.
type Task struct {
	Prefix     string `json:"p,omitempty"`
	StartAfter string `json:"a,omitempty"`
	End        string `json:"e,omitempty"`
	Level      bool   `json:"l,omitempty"`
}

// String describes the task for logs.
func (t Task) String() string {
	s := fmt.Sprintf("prefix %q (%q, %q]", t.Prefix, t.StartAfter, t.End)
	if t.Level {
		s += " level"
	}
	return s
}

// Emitter receives what a task produces. Run calls it from its own
// goroutine, in key order; an error from it ends the task with that error.
type Emitter interface {
	// Copy receives a batch of Copy and Check actions.
	Copy(ctx context.Context, batch []plan.Action) error
	// Delete receives destination-only objects, when plan.Options.Delete
	// is on; the caller defers executing them until the job's plan is
	// complete.
	Delete(ctx context.Context, batch []store.Object) error
	// Task receives a sub-task for another worker.
	Task(ctx context.Context, t Task) error
}

// Syncer is implemented by emitters that publish asynchronously: Sync
// returns once everything emitted so far is durable. Run calls it at each
// checkpoint (see [Stopped]).
type Syncer interface {
	Sync(ctx context.Context) error
}

// Stopped is the error of a task that stopped early. Everything up to a
// checkpoint was emitted (and synced) and is counted in the Stats that Run
// returned with it; Rest is the part of the range left to list, to be run
// as a new task. Sub-tasks emitted after the checkpoint cover keys above
// Rest.End or are emitted again, identical, by Rest (prefixes).
type Stopped struct {
	Rest Task
	// OutOfOrder: a delimiter listing came back out of order or
	// inconsistent (plan.ErrOutOfOrder); Rest lists without a delimiter.
	OutOfOrder bool
	Err        error
}

func (e *Stopped) Error() string { return e.Err.Error() }
func (e *Stopped) Unwrap() error { return e.Err }

// afterPrefix is a key after every key under the common prefix p and before
// every key after them: S3 keys are UTF-8, and U+10FFFF is the greatest
// code point (a key holding it right after a delimiter is not supported).
func afterPrefix(p string) string { return p + "\U0010FFFF" }

// SkipEmitter is implemented by emitters that want the objects the plan
// skipped (the destination already holds them), in batches, for an audit
// trail of every object.
type SkipEmitter interface {
	Skipped(ctx context.Context, batch []store.Object) error
}

// skipBatch bounds a batch of skipped objects; taskBatch the common-prefix
// sub-tasks held before a checkpoint emits them.
const (
	skipBatch = 500
	taskBatch = 32
)

// Options tune Run. The zero value uses the defaults.
type Options struct {
	// Plan holds the filter, delete and DstKeepsMTime.
	Plan plan.Options
	// BatchObjects bounds the actions of a Copy batch (and the objects of
	// a Delete batch); default 100.
	BatchObjects int
	// BatchBytes bounds the source bytes of a Copy batch; default 1 GiB. A
	// batch closes at either bound.
	BatchBytes int64
	// SplitKeys is how many keys (source and destination merged) a task
	// lists before it splits the rest of its range in two; default 5000.
	SplitKeys int
	// SplitProbes bounds how many times one split halves again when the
	// upper half proves empty; default 64, negative for none.
	SplitProbes int
}

func (o *Options) applyDefaults() {
	if o.BatchObjects <= 0 {
		o.BatchObjects = 100
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = 1 << 30
	}
	if o.SplitKeys <= 0 {
		o.SplitKeys = 5000
	}
	if o.SplitProbes == 0 {
		o.SplitProbes = 64
	}
}

// Stats count what one task did.
type Stats struct {
	// SrcListed and DstListed count the objects of the task's range listed
	// on each side (common prefixes not included); SrcBytes their source
	// sizes.
	SrcListed, SrcBytes, DstListed int64
	// Skipped counts keys the destination already holds.
	Skipped, SkippedBytes int64
	// Copy counts Copy and Check actions emitted.
	Copy, CopyBytes int64
	// Deletes counts destination objects emitted for deletion.
	Deletes int64
	// Tasks counts sub-tasks emitted: common prefixes and splits.
	Tasks int64
	// Probes counts the listings that probed an upper half for keys.
	Probes int64
}

// Add adds o to s.
func (s *Stats) Add(o Stats) {
	s.SrcListed += o.SrcListed
	s.SrcBytes += o.SrcBytes
	s.DstListed += o.DstListed
	s.Skipped += o.Skipped
	s.SkippedBytes += o.SkippedBytes
	s.Copy += o.Copy
	s.CopyBytes += o.CopyBytes
	s.Deletes += o.Deletes
	s.Tasks += o.Tasks
	s.Probes += o.Probes
}

// Run runs task t: it plans the keys of t's range present at src or dst and
// emits to out Copy batches, Delete batches (with opts.Plan.Delete) and
// sub-tasks; see the package documentation. It executes nothing.
//
// Output is emitted at checkpoints: whenever a batch fills, everything held
// is emitted together (and synced, when out is a [Syncer]). On an error, the
// returned Stats count exactly what was emitted up to the last checkpoint,
// and the error is a *[Stopped] naming the rest of the range.
func Run(ctx context.Context, src, dst store.Store, t Task, opts Options, out Emitter) (Stats, error) {
	opts.applyDefaults()
	r := &run{src: src, dst: dst, task: t, end: t.End, opts: opts, out: out, pos: t.StartAfter}
	_, srcLevel := src.(store.LevelLister)
	_, dstLevel := dst.(store.LevelLister)
	r.level = t.Level && srcLevel && dstLevel
	r.committedAfter = t.StartAfter
	var err error
	if r.level {
		err = r.runLevel(ctx)
	} else {
		err = r.runRange(ctx)
	}
	if err == nil {
		err = r.checkpoint(ctx)
	}
	if err != nil {
		stop := &Stopped{Err: fmt.Errorf("list task %v: %w", t, err)}
		stop.OutOfOrder = r.level && errors.Is(err, plan.ErrOutOfOrder)
		stop.Rest = Task{Prefix: t.Prefix, StartAfter: r.committedAfter, End: r.end, Level: r.level && !stop.OutOfOrder}
		return r.committed, stop
	}
	return r.stats, nil
}

// run is the state of one task.
type run struct {
	src, dst store.Store
	task     Task
	// end is the task's current End: it shrinks with each split.
	end   string
	level bool
	opts  Options
	out   Emitter
	stats Stats

	// since counts the keys listed since the start or the last split.
	since int

	copies    []plan.Action
	copyBytes int64
	deletes   []store.Object
	skips     []store.Object
	tasks     []Task
	// full: a batch is full; the next checkpoint is due.
	full bool
	// pos is the position reached: every key up to it is planned.
	pos string
	// committed and committedAfter are the stats and position of the last
	// checkpoint.
	committed      Stats
	committedAfter string
}

// inRange reports whether key (an object, or a common prefix: the least key
// below it) is at or before the current end.
func (r *run) inRange(key string) bool { return r.end == "" || key <= r.end }

func (r *run) runRange(ctx context.Context) error {
	opts := store.ListOptions{Prefix: r.task.Prefix, StartAfter: r.task.StartAfter}
	src := sided(SideSource, upTo(r.src.List(ctx, opts), r.task.End))
	dst := sided(SideDestination, upTo(r.dst.List(ctx, opts), r.task.End))
	for p, err := range plan.Merge(ctx, src, dst) {
		if err != nil {
			return err
		}
		if !r.inRange(p.Key) {
			break
		}
		if err := r.pair(ctx, p); err != nil {
			return err
		}
		r.pos = p.Key
		if err := r.listed(ctx, p.Key, false); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) runLevel(ctx context.Context) error {
	opts := store.ListOptions{Prefix: r.task.Prefix, StartAfter: r.task.StartAfter}
	src := sided(SideSource, store.ListLevel(ctx, r.src, opts))
	dst := sided(SideDestination, store.ListLevel(ctx, r.dst, opts))
	for p, err := range mergeLevel(ctx, src, dst) {
		if err != nil {
			return err
		}
		if !r.inRange(p.key) {
			break
		}
		if p.isPrefix && !r.opts.Plan.Filter.MayMatchPrefix(p.key) {
			// --files-from lists nothing below it: nothing to list.
			r.pos = afterPrefix(p.key)
		} else if p.isPrefix {
			sub := Task{Prefix: p.key, Level: true}
			if strings.HasPrefix(r.task.StartAfter, p.key) {
				sub.StartAfter = r.task.StartAfter
			}
			if strings.HasPrefix(r.end, p.key) {
				sub.End = r.end
			}
			r.tasks = append(r.tasks, sub)
			r.full = r.full || len(r.tasks) >= taskBatch
			r.pos = afterPrefix(p.key)
		} else {
			if err := r.pair(ctx, plan.Pair{Key: p.key, Src: p.src, Dst: p.dst}); err != nil {
				return err
			}
			r.pos = p.key
		}
		if err := r.listed(ctx, p.key, p.isPrefix); err != nil {
			return err
		}
	}
	return nil
}

// pair plans one key.
func (r *run) pair(ctx context.Context, p plan.Pair) error {
	if p.Src != nil {
		r.stats.SrcListed++
		r.stats.SrcBytes += p.Src.Size
	}
	if p.Dst != nil {
		r.stats.DstListed++
	}
	if !r.opts.Plan.Selected(p) {
		return nil
	}
	a, ok := plan.Decide(p, r.opts.Plan)
	if !ok {
		return nil
	}
	switch a.Kind {
	case plan.Skip:
		r.stats.Skipped++
		r.stats.SkippedBytes += a.Src.Size
		if _, ok := r.out.(SkipEmitter); ok {
			r.skips = append(r.skips, a.Src)
			r.full = r.full || len(r.skips) >= skipBatch
		}
	case plan.Delete:
		r.stats.Deletes++
		r.deletes = append(r.deletes, a.Dst)
		r.full = r.full || len(r.deletes) >= r.opts.BatchObjects
	default: // Copy, Check
		r.stats.Copy++
		r.stats.CopyBytes += a.Src.Size
		r.copies = append(r.copies, a)
		r.copyBytes += a.Src.Size
		r.full = r.full || len(r.copies) >= r.opts.BatchObjects || r.copyBytes >= r.opts.BatchBytes
	}
	return nil
}

func (r *run) flushCopies(ctx context.Context) error {
	if len(r.copies) == 0 {
		return nil
	}
	batch := r.copies
	r.copies, r.copyBytes = nil, 0
	if err := r.out.Copy(ctx, batch); err != nil {
		return fmt.Errorf("emit copies: %w", err)
	}
	return nil
}

func (r *run) flushDeletes(ctx context.Context) error {
	if len(r.deletes) == 0 {
		return nil
	}
	batch := r.deletes
	r.deletes = nil
	if err := r.out.Delete(ctx, batch); err != nil {
		return fmt.Errorf("emit deletes: %w", err)
	}
	return nil
}

func (r *run) flushSkips(ctx context.Context) error {
	se, ok := r.out.(SkipEmitter)
	if !ok || len(r.skips) == 0 {
		return nil
	}
	batch := r.skips
	r.skips = nil
	if err := se.Skipped(ctx, batch); err != nil {
		return fmt.Errorf("emit skips: %w", err)
	}
	return nil
}

// checkpoint emits everything held, syncs the emitter and records the
// position reached: a task that fails later resumes from here.
func (r *run) checkpoint(ctx context.Context) error {
	r.full = false
	if err := r.flushCopies(ctx); err != nil {
		return err
	}
	if err := r.flushSkips(ctx); err != nil {
		return err
	}
	if err := r.flushDeletes(ctx); err != nil {
		return err
	}
	tasks := r.tasks
	r.tasks = nil
	for _, t := range tasks {
		if err := r.emitTask(ctx, t); err != nil {
			return err
		}
	}
	if s, ok := r.out.(Syncer); ok {
		if err := s.Sync(ctx); err != nil {
			return fmt.Errorf("emit: %w", err)
		}
	}
	r.committed, r.committedAfter = r.stats, r.pos
	return nil
}

func (r *run) emitTask(ctx context.Context, t Task) error {
	r.stats.Tasks++
	if err := r.out.Task(ctx, t); err != nil {
		return fmt.Errorf("emit task: %w", err)
	}
	return nil
}

// listed counts key as listed and splits the task every SplitKeys keys.
// isPrefix: key is a common prefix the task fanned out.
func (r *run) listed(ctx context.Context, key string, isPrefix bool) error {
	if r.full {
		if err := r.checkpoint(ctx); err != nil {
			return err
		}
	}
	r.since++
	if r.since < r.opts.SplitKeys {
		return nil
	}
	r.since = 0
	// Every key up to lo is handled; with a common prefix, every key
	// before lo (mid may then be lo itself).
	lo, loIncluded := key, !isPrefix
	if isPrefix {
		end, ok := store.PrefixEnd(key)
		if !ok {
			return nil // the prefix reaches the top of the key space
		}
		lo = end
	}
	upper := r.upper()
	for probes := 0; ; probes++ {
		mid, ok := keyspace.Mid(lo, upper)
		if !ok && !loIncluded && (upper == "" || lo < upper) {
			mid, ok = lo, true
		}
		if !ok {
			return nil
		}
		if err := r.emitTask(ctx, Task{Prefix: r.task.Prefix, StartAfter: mid, End: r.end, Level: r.level}); err != nil {
			return err
		}
		oldEnd := r.end
		r.end, upper = mid, mid
		if probes >= r.opts.SplitProbes {
			return nil
		}
		empty, err := r.emptyAfter(ctx, mid, oldEnd)
		if err != nil || !empty {
			return err
		}
	}
}

// upper returns the exclusive upper bound for a split point: the current
// end, or the end of the prefix's keys when that is less; "" when unbounded.
func (r *run) upper() string {
	pe, ok := store.PrefixEnd(r.task.Prefix)
	switch {
	case !ok:
		return r.end
	case r.end == "" || pe <= r.end:
		return pe
	}
	return r.end
}

// emptyAfter reports whether neither side holds a key under the prefix in
// (after, end].
func (r *run) emptyAfter(ctx context.Context, after, end string) (bool, error) {
	for _, s := range []store.Store{r.src, r.dst} {
		r.stats.Probes++
		for o, err := range s.List(ctx, store.ListOptions{Prefix: r.task.Prefix, StartAfter: after}) {
			if err != nil {
				return false, fmt.Errorf("probe: %w", err)
			}
			if end == "" || o.Key <= end {
				return false, nil
			}
			break
		}
	}
	return true, nil
}

// upTo stops a key-ordered listing after end ("" = never).
func upTo(list iter.Seq2[store.Object, error], end string) iter.Seq2[store.Object, error] {
	if end == "" {
		return list
	}
	return func(yield func(store.Object, error) bool) {
		for o, err := range list {
			if err == nil && o.Key > end {
				return
			}
			if !yield(o, err) {
				return
			}
		}
	}
}

// levelPair is one key of two merged one-level listings.
type levelPair struct {
	key      string
	isPrefix bool
	src, dst *store.Object // objects only
}

// mergeLevel merges two one-level listings by key ([plan.MergeBy]). A
// common prefix on either side is one common prefix; a key that is a
// common prefix on one side and an object on the other is an error
// (plan.ErrOutOfOrder), the last pair.
func mergeLevel(ctx context.Context, src, dst iter.Seq2[store.Entry, error]) iter.Seq2[levelPair, error] {
	return func(yield func(levelPair, error) bool) {
		for j, err := range plan.MergeBy(ctx, src, dst, func(e store.Entry) string { return e.Key }) {
			if err != nil {
				yield(levelPair{}, err)
				return
			}
			p := levelPair{key: j.Key}
			switch {
			case j.Src != nil && j.Dst != nil && j.Src.IsPrefix != j.Dst.IsPrefix:
				yield(levelPair{}, fmt.Errorf("key %q is a common prefix on one side and an object on the other: %w", j.Key, plan.ErrOutOfOrder))
				return
			case j.Src != nil && j.Src.IsPrefix, j.Dst != nil && j.Dst.IsPrefix:
				p.isPrefix = true
			default:
				if j.Src != nil {
					p.src = &j.Src.Object
				}
				if j.Dst != nil {
					p.dst = &j.Dst.Object
				}
			}
			if !yield(p, nil) {
				return
			}
		}
	}
}

// The sides a listing error comes from (SideError).
const (
	SideSource      = "source"
	SideDestination = "destination"
)

// SideError is a listing error of one side.
type SideError struct {
	Side string
	Err  error
}

func (e *SideError) Error() string { return "list " + e.Side + ": " + e.Err.Error() }
func (e *SideError) Unwrap() error { return e.Err }

// ErrSide names the side a listing error came from ("" when unknown).
func ErrSide(err error) string {
	var se *SideError
	if errors.As(err, &se) {
		return se.Side
	}
	return ""
}

// sided marks the errors of one side's listing with the side.
func sided[T any](side string, list iter.Seq2[T, error]) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for v, err := range list {
			if err != nil {
				var se *SideError
				if !errors.As(err, &se) {
					err = &SideError{Side: side, Err: err}
				}
			}
			if !yield(v, err) {
				return
			}
		}
	}
}
