package job

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
)

// TestLedgerModel checks the completion invariant on random jobs: random
// key trees (flat, deep, mixed; 0 to 20,000 keys) cut into listing tasks
// and copy batches, handled by 1 to 4 simulated workers whose steps
// interleave at random, with redeliveries (a message handled again:
// identical children, a second Final), crashes mid-handling (children
// published, no Final, handled again later) and coordinator crashes (the
// counters roll back to the last save and the stream replays against the
// ledger). After every record the coordinator applies, "complete" must be
// true exactly when every work item of the job has a Final applied, and
// at the end the objects must add up.
//
// A failing run prints its seed; FERRY_MODEL_SEED=N reruns it alone.
func TestLedgerModel(t *testing.T) {
	runs := 300
	if testing.Short() {
		runs = 50
	}
	base := uint64(20261130)
	if s := os.Getenv("FERRY_MODEL_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		base, runs = n, 1
	}
	t.Logf("seeds %d..%d (rerun one with FERRY_MODEL_SEED=N)", base, base+uint64(runs)-1)
	for i := range runs {
		seed := base + uint64(i)
		if err := runModel(seed); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
}

// item is one work item of a model job; its children are fixed, so that a
// redelivered item creates the same ones.
type item struct {
	id       string
	kind     string
	children []*item
	objs     int // copy batches: objects; list tasks: objects planned (sum of their batches)
}

// memKV is an in-memory ledgerKV (the ledger's logic is under test here;
// coordinator_test.go runs it on JetStream).
type memKV map[string][]byte

func (m memKV) Get(_ context.Context, k string) ([]byte, bool, error) {
	v, ok := m[k]
	return v, ok, nil
}
func (m memKV) Put(_ context.Context, k string, v []byte) error { m[k] = v; return nil }

func genTree(r *rand.Rand) (*item, int) {
	keys := r.IntN(20001)
	if r.IntN(10) == 0 {
		keys = r.IntN(3) // empty and tiny jobs
	}
	shape := r.IntN(3) // 0 flat, 1 deep, 2 mixed
	n := 0
	newItem := func(kind string) *item {
		n++
		return &item{id: fmt.Sprintf("%s-%d", kind, n), kind: kind}
	}
	root := newItem(KindList)
	var build func(t *item, keys, depth int)
	build = func(t *item, keys, depth int) {
		// A task keeps some keys for itself and hands the rest to
		// sub-tasks (prefixes or splits).
		own := keys
		if keys > 50 && depth < 12 {
			switch shape {
			case 1:
				own = keys / 8
			case 2:
				own = r.IntN(keys + 1)
			default:
				if keys > 5000 {
					own = 5000
				}
			}
		}
		for own > 0 {
			b := min(own, 1+r.IntN(100))
			c := newItem(KindCopy)
			if r.IntN(5) == 0 {
				c.kind = KindSkip // a skip record instead of a batch
			}
			c.objs = b
			t.children = append(t.children, c)
			t.objs += b
			own -= b
		}
		rest := keys - t.objs
		subs := 0
		if rest > 0 {
			subs = 1 + r.IntN(4)
		}
		for i := 0; i < subs; i++ {
			share := rest / (subs - i)
			if i < subs-1 && share > 0 {
				share = r.IntN(share + 1)
			}
			c := newItem(KindList)
			t.children = append(t.children, c)
			build(c, share, depth+1)
			rest -= share
		}
		if subs == 0 && r.IntN(8) == 0 {
			t.children = append(t.children, newItem(KindList)) // an empty prefix
		}
	}
	build(root, keys, 0)
	r.Shuffle(len(root.children), func(i, j int) { root.children[i], root.children[j] = root.children[j], root.children[i] })
	return root, keys
}

func finalOf(it *item) Final {
	f := Final{V: WireVersion, Job: "job", Kind: it.kind, Work: it.id}
	switch it.kind {
	case KindList:
		for _, c := range it.children {
			f.Children = append(f.Children, Child{ID: c.id, Kind: c.kind})
		}
		f.Task = &TaskResult{Listed: int64(it.objs), ListedBytes: int64(it.objs)}
		for _, c := range it.children {
			if c.kind == KindCopy {
				f.Task.Enqueued += int64(c.objs)
			}
		}
	case KindCopy:
		for i := range it.objs {
			f.Outcomes = append(f.Outcomes, Result{Kind: "object", Key: fmt.Sprintf("%s/%d", it.id, i), ListedSize: 1, Size: 1, Outcome: OutcomeCopied})
		}
	case KindSkip:
		for i := range it.objs {
			f.Skipped = append(f.Skipped, Obj{K: fmt.Sprintf("%s/%d", it.id, i), S: 1})
		}
	}
	return f
}

// handling is a worker's progress through one message: it publishes the
// item's children one step at a time, then its Final.
type handling struct {
	it   *item
	step int
	// crashAt is the step at which the worker dies (-1: it does not).
	crashAt int
}

func runModel(seed uint64) error {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	root, keys := genTree(r)
	all := map[string]*item{}
	var walk func(*item)
	walk = func(it *item) {
		all[it.id] = it
		for _, c := range it.children {
			walk(c)
		}
	}
	walk(root)

	ctx := context.Background()
	kv := memKV{}
	l := &ledger{kv: kv, job: "job"}
	var k Counters
	if err := l.registerRoot(ctx, root.id, KindList, &k); err != nil {
		return err
	}
	var stream []Final
	applied := 0 // records applied
	finished := map[string]bool{}
	saved, savedApplied, savedFinished := k, 0, map[string]bool{}

	workers := 1 + r.IntN(4)
	pRedeliver := r.Float64() * 0.2
	pCrash := r.Float64() * 0.3
	queue := []*item{root}
	inflight := make([]*handling, workers)

	complete := func() bool { return k.WorkOpen == 0 && k.WorkPending == 0 }
	check := func() error {
		if k.WorkOpen < 0 || k.WorkPending < 0 || k.TasksOpen < 0 || k.TasksPending < 0 {
			return fmt.Errorf("negative counter after record %d: %+v", applied, k)
		}
		if complete() != (len(finished) == len(all)) {
			return fmt.Errorf("after record %d of %d: complete=%v but %d of %d items finished (%+v)", applied, len(stream), complete(), len(finished), len(all), k)
		}
		return nil
	}
	applyOne := func() error {
		f := stream[applied]
		applied++
		first, err := l.apply(ctx, f, uint64(applied), &k)
		if err != nil {
			return err
		}
		if first {
			k.apply(f)
			finished[f.Work] = true
		}
		return check()
	}
	for steps := 0; ; steps++ {
		if steps > 10_000_000 {
			return fmt.Errorf("no progress")
		}
		idle := true
		for _, h := range inflight {
			if h != nil {
				idle = false
			}
		}
		if idle && len(queue) == 0 && applied == len(stream) {
			break
		}
		switch x := r.IntN(10); {
		case x < 3 && applied < len(stream):
			if err := applyOne(); err != nil {
				return err
			}
			if r.IntN(20) == 0 {
				saved, savedApplied = k, applied
				savedFinished = make(map[string]bool, len(finished))
				for id := range finished {
					savedFinished[id] = true
				}
			}
			if r.Float64() < pCrash/50 {
				// The coordinator dies: back to the last save, replay.
				k, applied = saved, savedApplied
				finished = make(map[string]bool, len(savedFinished))
				for id := range savedFinished {
					finished[id] = true
				}
			}
		default:
			w := r.IntN(workers)
			h := inflight[w]
			if h == nil {
				if len(queue) == 0 {
					continue
				}
				i := r.IntN(len(queue))
				h = &handling{it: queue[i], crashAt: -1}
				if r.Float64() < pCrash {
					h.crashAt = r.IntN(len(h.it.children) + 1)
				}
				queue = append(queue[:i], queue[i+1:]...)
				inflight[w] = h
				continue
			}
			if h.step == h.crashAt {
				queue = append(queue, h.it) // redelivered after the worker died
				inflight[w] = nil
				continue
			}
			if h.step < len(h.it.children) {
				c := h.it.children[h.step]
				h.step++
				if c.kind == KindSkip {
					stream = append(stream, finalOf(c)) // published by the task itself
				} else {
					queue = append(queue, c)
				}
				continue
			}
			stream = append(stream, finalOf(h.it))
			inflight[w] = nil
			if r.Float64() < pRedeliver {
				queue = append(queue, h.it) // acked too late: handled again
			}
		}
	}
	if !complete() {
		return fmt.Errorf("not complete at the end: %+v", k)
	}
	if k.Listed != int64(keys) || k.Listed != k.Copied+k.Skipped+k.Failed+k.Unsafe || k.ListedBytes != k.AccountedBytes {
		return fmt.Errorf("objects do not add up: %d keys, %+v", keys, k)
	}
	return nil
}
