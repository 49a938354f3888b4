package lister_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/filter"
	"github.com/ferry-dev/ferry/internal/lister"
	"github.com/ferry-dev/ferry/internal/plan"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/mem"
	"github.com/ferry-dev/ferry/internal/store/storetest"
)

// result is what a whole job emitted.
type result struct {
	mu      sync.Mutex
	copies  map[string]int // key -> times emitted
	deletes map[string]int
	stats   lister.Stats
	tasks   int
	// peak is the most tasks queued or running at once.
	peak int
	// timeline samples tasks queued or running.
	timeline []sample
}

type sample struct {
	at      time.Duration
	pending int
	done    int
}

// queue is an in-memory FIFO of tasks, the job's work queue.
type queue struct {
	mu      sync.Mutex
	cond    *sync.Cond
	tasks   []lister.Task
	running int
}

func (q *queue) push(t lister.Task) {
	q.mu.Lock()
	q.tasks = append(q.tasks, t)
	q.mu.Unlock()
	q.cond.Signal()
}

// pop returns the next task, or false when the queue is empty and no task
// runs (the job is done).
func (q *queue) pop() (lister.Task, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.tasks) == 0 {
		if q.running == 0 {
			q.cond.Broadcast()
			return lister.Task{}, false
		}
		q.cond.Wait()
	}
	t := q.tasks[0]
	q.tasks = q.tasks[1:]
	q.running++
	return t, true
}

func (q *queue) done() {
	q.mu.Lock()
	q.running--
	q.mu.Unlock()
	q.cond.Broadcast()
}

func (q *queue) pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.tasks) + q.running
}

// emitter records a worker's emissions and queues its sub-tasks.
type emitter struct {
	res *result
	q   *queue
}

func (e *emitter) Copy(_ context.Context, batch []plan.Action) error {
	e.res.mu.Lock()
	defer e.res.mu.Unlock()
	for _, a := range batch {
		e.res.copies[a.Key]++
	}
	return nil
}

func (e *emitter) Delete(_ context.Context, batch []store.Object) error {
	e.res.mu.Lock()
	defer e.res.mu.Unlock()
	for _, o := range batch {
		e.res.deletes[o.Key]++
	}
	return nil
}

func (e *emitter) Task(_ context.Context, t lister.Task) error {
	e.q.push(t)
	return nil
}

// drain runs a job from root with workers goroutines pulling from a FIFO.
func drain(t testing.TB, src, dst store.Store, root lister.Task, opts lister.Options, workers int) *result {
	t.Helper()
	res := &result{copies: map[string]int{}, deletes: map[string]int{}}
	q := &queue{}
	q.cond = sync.NewCond(&q.mu)
	q.push(root)
	start := time.Now()
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				n := q.pending()
				res.mu.Lock()
				res.timeline = append(res.timeline, sample{at: time.Since(start), pending: n, done: res.tasks})
				res.mu.Unlock()
			}
		}
	})
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			e := &emitter{res: res, q: q}
			for {
				task, ok := q.pop()
				if !ok {
					return
				}
				if n := q.pending(); n > 0 {
					res.mu.Lock()
					res.peak = max(res.peak, n)
					res.mu.Unlock()
				}
				st, err := lister.Run(t.Context(), src, dst, task, opts, e)
				res.mu.Lock()
				res.stats.Add(st)
				res.tasks++
				res.mu.Unlock()
				q.done()
				if err != nil {
					errs <- err
					// Drain the rest so the other workers end.
					for {
						if _, ok := q.pop(); !ok {
							return
						}
						q.done()
					}
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	sampler.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return res
}

// want is the plan of a single pass over the whole listings.
type want struct {
	copies, deletes []string
	skipped         int64
	src             int64
}

func oracle(t testing.TB, src, dst store.Store, opts plan.Options) want {
	t.Helper()
	var w want
	for o, err := range src.List(t.Context(), store.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		_ = o
		w.src++
	}
	for a, err := range plan.Plan(t.Context(), src.List(t.Context(), store.ListOptions{}), dst.List(t.Context(), store.ListOptions{}), opts) {
		if err != nil {
			t.Fatal(err)
		}
		switch a.Kind {
		case plan.Skip:
			w.skipped++
		case plan.Delete:
			w.deletes = append(w.deletes, a.Key)
		default:
			w.copies = append(w.copies, a.Key)
		}
	}
	return w
}

// check compares a job's emissions with the single-pass plan: every key
// once.
func check(t *testing.T, res *result, w want) {
	t.Helper()
	for k, n := range res.copies {
		if n != 1 {
			t.Errorf("copy %q emitted %d times", k, n)
		}
	}
	for k, n := range res.deletes {
		if n != 1 {
			t.Errorf("delete %q emitted %d times", k, n)
		}
	}
	if got := slices.Sorted(maps.Keys(res.copies)); !slices.Equal(got, w.copies) {
		t.Errorf("copies:\n got %q\nwant %q", got, w.copies)
	}
	if got := slices.Sorted(maps.Keys(res.deletes)); !slices.Equal(got, w.deletes) {
		t.Errorf("deletes:\n got %q\nwant %q", got, w.deletes)
	}
	if res.stats.Skipped != w.skipped {
		t.Errorf("skipped %d, want %d", res.stats.Skipped, w.skipped)
	}
	if res.stats.SrcListed != w.src {
		t.Errorf("source objects listed %d, want %d (each once)", res.stats.SrcListed, w.src)
	}
}

func put(t testing.TB, s *mem.Store, keys ...string) {
	t.Helper()
	for _, k := range keys {
		data := []byte(k)
		if strings.HasSuffix(k, "/") {
			data = nil
		}
		storetest.Put(t.(*testing.T), s, k, data)
	}
}

// noLevel hides a store's LevelLister.
type noLevel struct{ store.Store }

func TestRun(t *testing.T) {
	hier := []string{"a/", "a/b", "a/c/d", "a/c/e/", "a/c/e/f", "a-b", "a0", "b", "c/d/e/f/g", "c/x", "d/", "é/x", "日本/語", "with space/x", "z"}
	tricky := []string{"a-b", "a.b", "a/b-c", "a/b.c", "a/b/c", "a/b0", "a0", "ab", "d-/x", "d./x", "d/x", "d0/x", "d-x", "d.x", "é", "e\u0301", "e", "日本/語.txt", "日本-語", "日本0", "plus+sign", "percent%20", "q/", "q/r/", "q/r/s"}
	var flat []string
	for i := range 300 {
		flat = append(flat, fmt.Sprintf("f%05d", i*7))
	}
	tests := []struct {
		name     string
		src, dst []string
		same     []string // also at the destination with the same content
		plan     plan.Options
	}{
		{name: "hierarchy to empty", src: hier},
		{name: "hierarchy partly there", src: hier, same: []string{"a/b", "c/x", "z"}, dst: []string{"a/c/d"}},
		{name: "delete off", src: hier, dst: []string{"old/x/y", "a/c/gone", "zz", "d/e"}},
		{name: "delete on", src: hier, dst: []string{"old/x/y", "old/", "a/c/gone", "zz", "d/e", "0"}, plan: plan.Options{Delete: true}},
		{name: "tricky keys", src: tricky, same: []string{"d/x", "é"}, dst: []string{"d/y", "q/r/t"}, plan: plan.Options{Delete: true}},
		{name: "flat", src: flat, same: flat[100:150], dst: []string{"f00001", "f99999"}, plan: plan.Options{Delete: true}},
		{name: "filter", src: hier, dst: []string{"old/x", "a/c/gone"}, plan: plan.Options{Delete: true, Filter: mustFilter(t, []string{"a/**", "old/"}, []string{"*/e/*"})}},
		{name: "empty source", dst: hier, plan: plan.Options{Delete: true}},
		{name: "empty both"},
	}
	for _, tt := range tests {
		for _, level := range []bool{true, false} {
			for _, split := range []int{1, 2, 3, 7, 5000} {
				t.Run(fmt.Sprintf("%s/level=%v/split=%d", tt.name, level, split), func(t *testing.T) {
					src, dst := mem.New("src"), mem.New("dst")
					put(t, src, tt.src...)
					put(t, src, tt.same...)
					put(t, dst, tt.same...)
					put(t, dst, tt.dst...)
					w := oracle(t, src, dst, tt.plan)
					var s, d store.Store = src, dst
					if split == 7 { // one side without LevelLister: range tasks
						d = noLevel{dst}
					}
					opts := lister.Options{Plan: tt.plan, SplitKeys: split, BatchObjects: 3}
					res := drain(t, s, d, lister.Task{Level: level}, opts, 3)
					check(t, res, w)
				})
			}
		}
	}
}

func mustFilter(t *testing.T, include, exclude []string) *filter.Filter {
	t.Helper()
	f, err := filter.New(include, exclude)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestRunRandom compares distributed runs with the single-pass plan on
// random trees and random split sizes.
func TestRunRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	segs := []string{"a", "b", "a-", "a.", "é", "z", "0", "ab"}
	key := func() string {
		var parts []string
		for range 1 + r.IntN(4) {
			parts = append(parts, segs[r.IntN(len(segs))])
		}
		k := strings.Join(parts, "/")
		if r.IntN(10) == 0 {
			k += "/" // a marker
		}
		return k
	}
	for i := range 40 {
		src, dst := mem.New("src"), mem.New("dst")
		for range 50 + r.IntN(150) {
			k := key()
			switch r.IntN(4) {
			case 0:
				put(t, dst, k)
			case 1:
				put(t, src, k)
				put(t, dst, k)
			default:
				put(t, src, k)
			}
		}
		popts := plan.Options{Delete: r.IntN(2) == 0}
		w := oracle(t, src, dst, popts)
		opts := lister.Options{Plan: popts, SplitKeys: 1 + r.IntN(20), BatchObjects: 1 + r.IntN(5)}
		root := lister.Task{Level: r.IntN(2) == 0}
		if r.IntN(4) == 0 {
			root.Prefix = segs[r.IntN(len(segs))] + "/"
			w = oracleUnder(t, src, dst, popts, root.Prefix)
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			res := drain(t, src, dst, root, opts, 1+r.IntN(4))
			check(t, res, w)
		})
	}
}

// oracleUnder is the single-pass plan of the keys under prefix.
func oracleUnder(t *testing.T, src, dst store.Store, opts plan.Options, prefix string) want {
	t.Helper()
	var w want
	for _, err := range src.List(t.Context(), store.ListOptions{Prefix: prefix}) {
		if err != nil {
			t.Fatal(err)
		}
		w.src++
	}
	for a, err := range plan.Plan(t.Context(), src.List(t.Context(), store.ListOptions{Prefix: prefix}), dst.List(t.Context(), store.ListOptions{Prefix: prefix}), opts) {
		if err != nil {
			t.Fatal(err)
		}
		switch a.Kind {
		case plan.Skip:
			w.skipped++
		case plan.Delete:
			w.deletes = append(w.deletes, a.Key)
		default:
			w.copies = append(w.copies, a.Key)
		}
	}
	return w
}

// TestSplitBounds checks a task's own range with explicit StartAfter and End
// inside common prefixes.
func TestSplitBounds(t *testing.T) {
	src, dst := mem.New("src"), mem.New("dst")
	put(t, src, "a/1", "a/2", "a/3", "b/1", "b/2", "c", "d/1")
	put(t, dst, "a/0", "b/3")
	for _, task := range []lister.Task{
		{StartAfter: "a/1", End: "b/2", Level: true},
		{StartAfter: "a/1", End: "b/2"},
		{Prefix: "a/", StartAfter: "a/1", End: "a/2", Level: true},
	} {
		rec := &recorder{}
		if _, err := lister.Run(t.Context(), src, dst, task, lister.Options{Plan: plan.Options{Delete: true}}, rec); err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, a := range rec.copies {
			keys = append(keys, a.Key)
		}
		for _, o := range rec.deletes {
			keys = append(keys, "-"+o.Key)
		}
		for _, st := range rec.tasks {
			keys = append(keys, "task "+st.String())
		}
		sort.Strings(keys)
		t.Logf("%v: %q", task, keys)
		switch task.Level {
		case true:
			if task.Prefix == "" && !slices.Equal(keys, []string{
				`task prefix "a/" ("a/1", ""] level`,
				`task prefix "b/" ("", "b/2"] level`,
			}) {
				t.Errorf("%v emitted %q", task, keys)
			}
		case false:
			if !slices.Equal(keys, []string{"a/2", "a/3", "b/1", "b/2"}) {
				t.Errorf("%v emitted %q", task, keys)
			}
		}
		if task.Prefix == "a/" && !slices.Equal(keys, []string{"a/2"}) {
			t.Errorf("%v emitted %q", task, keys)
		}
	}
}

type recorder struct {
	copies  []plan.Action
	deletes []store.Object
	tasks   []lister.Task
}

func (r *recorder) Copy(_ context.Context, b []plan.Action) error {
	r.copies = append(r.copies, b...)
	return nil
}

func (r *recorder) Delete(_ context.Context, b []store.Object) error {
	r.deletes = append(r.deletes, b...)
	return nil
}

func (r *recorder) Task(_ context.Context, t lister.Task) error {
	r.tasks = append(r.tasks, t)
	return nil
}

// TestCanceled checks that a canceled context ends a task with its error.
func TestCanceled(t *testing.T) {
	src := mem.New("src")
	put(t, src, "a", "b")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := lister.Run(ctx, src, mem.New("dst"), lister.Task{Level: true}, lister.Options{}, &recorder{}); err == nil {
		t.Error("Run with a canceled context succeeded")
	}
}

// TestRunFilesFrom: with --files-from, a level listing does not descend
// into prefixes that hold no listed key, and plans exactly what the
// single-pass plan does (unlisted destination objects are not deleted).
func TestRunFilesFrom(t *testing.T) {
	var src, dst []string
	for i := range 20 {
		src = append(src, fmt.Sprintf("big/%02d/x", i), fmt.Sprintf("other/%02d", i))
		dst = append(dst, fmt.Sprintf("big/%02d/old", i))
	}
	src = append(src, "want/a", "want/deep/b", "top")
	dst = append(dst, "want/gone", "unlisted")
	f, err := filter.FromSpec(filter.Spec{FilesFrom: &filter.KeyList{Keys: []string{"want/a", "want/deep/b", "want/gone", "top", "big/03/x", "nowhere/x"}}})
	if err != nil {
		t.Fatal(err)
	}
	popts := plan.Options{Delete: true, Filter: f}
	for _, level := range []bool{true, false} {
		t.Run(fmt.Sprintf("level=%v", level), func(t *testing.T) {
			s, d := mem.New("src"), mem.New("dst")
			put(t, s, src...)
			put(t, d, dst...)
			w := oracle(t, s, d, popts)
			res := drain(t, s, d, lister.Task{Level: level}, lister.Options{Plan: popts, BatchObjects: 3}, 2)
			if got := slices.Sorted(maps.Keys(res.copies)); !slices.Equal(got, w.copies) {
				t.Errorf("copies:\n got %q\nwant %q", got, w.copies)
			}
			if got := slices.Sorted(maps.Keys(res.deletes)); !slices.Equal(got, w.deletes) {
				t.Errorf("deletes:\n got %q\nwant %q", got, w.deletes)
			}
			if want := "big/03/x top want/a want/deep/b"; strings.Join(w.copies, " ") != want {
				t.Errorf("oracle copies %q, want %s", w.copies, want)
			}
			// Level listings skip other/ and every big/NN/ but big/03/.
			if level && res.stats.SrcListed != 4 {
				t.Errorf("level listing listed %d source objects, want 4 (pruned)", res.stats.SrcListed)
			}
		})
	}
}
