package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/filter"
	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/queue"
	"github.com/ferry-dev/ferry/internal/sides"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/mem"
	"github.com/ferry-dev/ferry/internal/trust"
	"github.com/ferry-dev/ferry/internal/worker"
)

// These tests run real workers and a real coordinator on an embedded NATS
// JetStream server, over in-memory stores wrapped to list by delimiter
// (fan-out by prefix) and to fail listings part-way. They end when the
// coordinator says the job ended; nothing waits on time.

// flaky is a store that lists one level at a time (so the lister fans out
// by prefix) and can fail listings part-way or yield a level out of order.
type flaky struct {
	*mem.Store
	mu sync.Mutex
	r  *rand.Rand
	// pFail is the chance that a listing fails after a random number of
	// entries; failures counts them.
	pFail    float64
	failures int
	// disorder: level listings swap two entries (a server that bends the
	// rules); flat listings are in order.
	disorder bool
	// ghosts are listed but answer "not found" when read.
	ghosts map[string]bool
}

func (f *flaky) Open(ctx context.Context, key string, off, n int64) (io.ReadCloser, store.Attrs, error) {
	if f.ghosts[key] {
		return nil, store.Attrs{}, fmt.Errorf("open %s: %w", key, store.ErrNotExist)
	}
	return f.Store.Open(ctx, key, off, n)
}

func (f *flaky) Stat(ctx context.Context, key string) (store.Attrs, error) {
	if f.ghosts[key] {
		return store.Attrs{}, fmt.Errorf("stat %s: %w", key, store.ErrNotExist)
	}
	return f.Store.Stat(ctx, key)
}

var _ store.LevelLister = (*flaky)(nil)

func (f *flaky) cut() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.r == nil || f.r.Float64() >= f.pFail {
		return -1
	}
	f.failures++
	if f.pFail >= 1 {
		return 0 // a server that fails every listing
	}
	return f.r.IntN(300)
}

func (f *flaky) List(ctx context.Context, opts store.ListOptions) iter.Seq2[store.Object, error] {
	n := f.cut()
	return func(yield func(store.Object, error) bool) {
		i := 0
		for o, err := range f.Store.List(ctx, opts) {
			if i == n {
				yield(store.Object{}, fmt.Errorf("injected: HTTP 500 on a continuation page: %w", errors.New("InternalError")))
				return
			}
			i++
			if !yield(o, err) {
				return
			}
		}
	}
}

func (f *flaky) ListLevel(ctx context.Context, opts store.ListOptions) iter.Seq2[store.Entry, error] {
	level := store.RollUp(f.List(ctx, opts), opts)
	if !f.disorder {
		return level
	}
	return func(yield func(store.Entry, error) bool) {
		var held *store.Entry
		i := 0
		for e, err := range level {
			if err != nil {
				yield(e, err)
				return
			}
			i++
			if i == 3 {
				held = &e
				continue
			}
			if !yield(e, nil) {
				return
			}
			if held != nil {
				if !yield(*held, nil) {
					return
				}
				held = nil
			}
		}
		if held != nil {
			yield(*held, nil)
		}
	}
}

type memAudit struct {
	mu    sync.Mutex
	lines map[string]int
	n     int64
}

func (a *memAudit) Record(r job.Result) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lines[r.Key+" "+r.Kind]++
	a.n++
	return nil
}
func (a *memAudit) Sync() error { return nil }
func (a *memAudit) Head() (int64, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n, ""
}

func connect(t *testing.T) *queue.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := queue.Connect(ctx, queue.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	return conn
}

// genKeys makes a random key tree: flat, deep, or mixed, with empty-looking
// prefixes and keys beside prefixes.
func genKeys(r *rand.Rand, n, shape int) []string {
	if shape < 0 {
		shape = r.IntN(3)
	}
	keys := make(map[string]bool, n)
	for len(keys) < n {
		var k string
		switch shape {
		case 0: // flat, plus one prefix beside thousands of keys
			if r.IntN(50) == 0 {
				k = fmt.Sprintf("a/%05d", r.IntN(1_000_000))
			} else {
				k = fmt.Sprintf("k%06d", r.IntN(10_000_000))
			}
		case 1: // deep
			depth := 1 + r.IntN(6)
			parts := make([]string, depth)
			for i := range parts {
				parts[i] = strconv.Itoa(r.IntN(3))
			}
			k = strings.Join(parts, "/") + "/f" + strconv.Itoa(r.IntN(100_000))
		default:
			if r.IntN(2) == 0 {
				k = "m" + strconv.Itoa(r.IntN(1_000_000))
			} else {
				k = fmt.Sprintf("d%d/%d/x%d", r.IntN(20), r.IntN(5), r.IntN(100_000))
			}
		}
		keys[k] = true
	}
	out := make([]string, 0, n)
	for k := range keys {
		out = append(out, k)
	}
	return out
}

type scenario struct {
	// shape of the key tree: 1 flat with one prefix, 2 deep, 3 mixed, 0
	// random.
	shape     int
	keys      int
	workers   int
	splitKeys int
	batch     int
	pFail     float64
	disorder  bool
	delete    bool
	maxDelete int64
	stale     int // destination-only objects (deleted by sync --delete)
	ghosts    int // source keys listed but not found when read
}

type outcome struct {
	st    job.State
	src   *flaky
	dst   *flaky
	audit *memAudit
	keys  []string
}

func runJob(t *testing.T, seed uint64, sc scenario) outcome {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conn := connect(t)
	src := &flaky{Store: mem.New("src"), r: rand.New(rand.NewPCG(seed, 1)), pFail: sc.pFail, disorder: sc.disorder}
	dst := &flaky{Store: mem.New("dst"), r: rand.New(rand.NewPCG(seed, 2)), pFail: sc.pFail, disorder: sc.disorder}
	keys := genKeys(r, sc.keys, sc.shape-1)
	src.ghosts = map[string]bool{}
	for _, k := range keys[:sc.ghosts] {
		src.ghosts[k] = true
	}
	for _, k := range keys {
		body := []byte("v:" + k)
		if _, err := src.Store.Put(ctx, store.PutInput{Key: k, Size: int64(len(body))}, bytes.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range sc.stale {
		body := []byte("stale")
		k := fmt.Sprintf("zz-stale/%d", i)
		if _, err := dst.Store.Put(ctx, store.PutInput{Key: k, Size: int64(len(body))}, bytes.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	spec := job.Spec{Command: "copy", Src: job.Side{Location: "mem://src"}, Dst: job.Side{Location: "mem://dst"}, MaxAttempts: 10}
	if sc.delete {
		spec.Command, spec.Delete, spec.MaxDelete = "sync", true, sc.maxDelete
	}
	coord, err := job.Create(ctx, conn, spec)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWorkers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range sc.workers {
		w := worker.New(conn, worker.Options{
			Concurrency: 8, Name: fmt.Sprintf("w%d", i), Log: slog.New(slog.DiscardHandler),
			Open:         func(context.Context, job.Spec) (store.Store, store.Store, error) { return src, dst, nil },
			BatchObjects: sc.batch, SplitKeys: sc.splitKeys, RetryBase: time.Millisecond,
		})
		wg.Go(func() {
			if err := w.Run(wctx); err != nil {
				t.Error(err)
			}
		})
	}
	audit := &memAudit{lines: map[string]int{}}
	st, err := coord.Run(ctx, job.RunOptions{Audit: audit, Tick: 10 * time.Millisecond})
	stopWorkers()
	wg.Wait()
	if err != nil {
		t.Fatalf("seed %d: coordinator: %v", seed, err)
	}
	return outcome{st: st, src: src, dst: dst, audit: audit, keys: keys}
}

// TestRandomJobs: random trees and shapes, 1 to 4 workers, listings that
// fail part-way and are retried from their checkpoints. Every job must end
// done with every key copied exactly once in the accounts.
func TestRandomJobs(t *testing.T) {
	runs := 12
	if testing.Short() {
		runs = 4
	}
	base := uint64(8080)
	if s := os.Getenv("FERRY_WORKER_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		base, runs = n, 1
	}
	t.Logf("seeds %d..%d (rerun one with FERRY_WORKER_SEED=N)", base, base+uint64(runs)-1)
	for i := range runs {
		seed := base + uint64(i)
		r := rand.New(rand.NewPCG(seed, 99))
		sc := scenario{
			keys:      []int{0, 1, 37, 600, 2500, 5000}[r.IntN(6)],
			workers:   1 + r.IntN(4),
			splitKeys: 20 + r.IntN(500),
			batch:     1 + r.IntN(100),
			pFail:     []float64{0, 0.05, 0.2}[r.IntN(3)],
		}
		if i == runs-1 && !testing.Short() {
			sc.keys = 20000
		}
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			o := runJob(t, seed, sc)
			checkCopied(t, o, sc)
		})
	}
}

func checkCopied(t *testing.T, o outcome, sc scenario) {
	t.Helper()
	k := o.st.Counters
	if o.st.Status != job.Done {
		t.Fatalf("%+v: status %s %q, counters %+v", sc, o.st.Status, o.st.Error, k)
	}
	n := int64(len(o.keys))
	if k.Listed != n || k.Copied != n || k.Failed != 0 || k.Skipped != 0 {
		t.Fatalf("%+v: %d keys, counters %+v", sc, n, k)
	}
	for _, key := range o.keys {
		b, ok := o.dst.Store.Bytes(key)
		if !ok || string(b) != "v:"+key {
			t.Fatalf("%+v: destination %q: %q %v", sc, key, b, ok)
		}
		if c := o.audit.lines[key+" object"]; c != 1 {
			t.Fatalf("%+v: %d audit lines for %q", sc, c, key)
		}
	}
	if o.audit.n != n {
		t.Fatalf("%+v: %d audit lines for %d keys", sc, o.audit.n, n)
	}
	t.Logf("%+v: %d keys, %d listing tasks (%d flat), %d listing failures injected, %d duplicates ignored", sc, n, k.TasksDone, k.TasksFlat, o.src.failures+o.dst.failures, k.Duplicates)
}

// TestFlatPlusPrefix is the bucket that once ended "done" with 95% of it
// missing: thousands of top-level keys beside one prefix.
func TestFlatPlusPrefix(t *testing.T) {
	for i := range 5 {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			o := runJob(t, uint64(100+i), scenario{shape: 1, keys: 2501, workers: 1 + i%3, splitKeys: 5000, batch: 100})
			checkCopied(t, o, scenario{})
		})
	}
}

// TestOutOfOrderLevelListing: a server whose delimiter listings come back
// out of order: ferry lists those ranges flat and the job completes.
func TestOutOfOrderLevelListing(t *testing.T) {
	sc := scenario{keys: 3000, workers: 2, splitKeys: 400, batch: 50, disorder: true}
	o := runJob(t, 7, sc)
	checkCopied(t, o, sc)
	if o.st.Counters.TasksFlat == 0 {
		t.Fatal("no task fell back to a flat listing")
	}
}

// TestListingFailureDeletesNothing: a sync --delete whose listings fail for
// good ends failed, promptly, having deleted nothing.
func TestListingFailureDeletesNothing(t *testing.T) {
	sc := scenario{keys: 2000, workers: 2, splitKeys: 300, batch: 50, pFail: 1, delete: true, stale: 5}
	o := runJob(t, 11, sc)
	st := o.st
	if st.Status != job.Failed || !strings.Contains(st.Error, "listing incomplete") || st.Counters.Deleted != 0 {
		t.Fatalf("status %s %q, %+v", st.Status, st.Error, st.Counters)
	}
	for i := range 5 {
		if _, ok := o.dst.Store.Bytes(fmt.Sprintf("zz-stale/%d", i)); !ok {
			t.Fatal("a destination object was deleted")
		}
	}
}

// TestMaxDeleteWholePlan: the limit is checked against every planned
// delete before the first one runs.
func TestMaxDeleteWholePlan(t *testing.T) {
	sc := scenario{keys: 500, workers: 3, splitKeys: 50, batch: 7, delete: true, maxDelete: 10, stale: 35}
	o := runJob(t, 12, sc)
	if o.st.Status != job.Failed || !strings.Contains(o.st.Error, "would delete 35") || o.st.Counters.Deleted != 0 {
		t.Fatalf("status %s %q, %+v", o.st.Status, o.st.Error, o.st.Counters)
	}
	if n := len(o.dst.Store.Keys()); n != 535 {
		t.Fatalf("destination has %d keys, want 535 (nothing deleted)", n)
	}
	sc.maxDelete = 35
	o = runJob(t, 12, sc)
	if o.st.Status != job.Done || o.st.Counters.Deleted != 35 || len(o.dst.Store.Keys()) != 500 {
		t.Fatalf("status %s %q, %+v, %d keys", o.st.Status, o.st.Error, o.st.Counters, len(o.dst.Store.Keys()))
	}
}

// TestListedButMissingDeletesNothing: a key the source listed and then
// answered 404 for is evidence of a bad listing: the job reports it and a
// sync --delete deletes nothing.
func TestListedButMissingDeletesNothing(t *testing.T) {
	sc := scenario{keys: 300, workers: 2, splitKeys: 100, batch: 20, delete: true, stale: 4, ghosts: 2}
	o := runJob(t, 13, sc)
	st := o.st
	if st.Status != job.Failed || !strings.Contains(st.Error, "listed but then not found") || st.Counters.Deleted != 0 || st.Counters.SrcMissing != 2 {
		t.Fatalf("status %s %q, %+v", st.Status, st.Error, st.Counters)
	}
	if n := len(o.dst.Store.Keys()); n != 300-2+4 {
		t.Fatalf("destination has %d keys, want %d", n, 300-2+4)
	}
	// Reported by name.
	if len(st.SrcMissing) != 2 {
		t.Fatalf("the job names %d missing keys, want 2: %+v", len(st.SrcMissing), st.SrcMissing)
	}
	for _, k := range st.SrcMissing {
		if !o.src.ghosts[k.Key] || !strings.Contains(st.Error, strconv.Quote(k.Key)) {
			t.Errorf("key %q: a ghost %v, named in %q", k.Key, o.src.ghosts[k.Key], st.Error)
		}
	}
}

// TestForgedDeleteRefused: delete work on a job without --delete is never
// executed, whoever published it.
func TestForgedDeleteRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := connect(t)
	src, dst := mem.New("src"), mem.New("dst")
	for _, s := range []*mem.Store{src, dst} {
		if _, err := s.Put(ctx, store.PutInput{Key: "keep", Size: 1}, strings.NewReader("k")); err != nil {
			t.Fatal(err)
		}
	}
	coord, err := job.Create(ctx, conn, job.Spec{Command: "copy", MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	forged := job.Work{Job: coord.ID(), Kind: job.KindDelete, Attempt: 1, ID: "forged", Objs: []job.Obj{{K: "keep"}}}
	if err := job.PublishWork(ctx, conn, forged, forged.ID); err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var logs lockedBuf
	w := worker.New(conn, worker.Options{Log: slog.New(slog.NewTextHandler(&logs, nil)),
		Open: func(context.Context, job.Spec) (store.Store, store.Store, error) { return src, dst, nil }})
	wg.Go(func() { _ = w.Run(wctx) })
	st, err := coord.Run(ctx, job.RunOptions{Tick: 10 * time.Millisecond})
	stop()
	wg.Wait()
	if err != nil || st.Status != job.Done {
		t.Fatalf("%v: %s %q", err, st.Status, st.Error)
	}
	if _, ok := dst.Bytes("keep"); !ok || st.Counters.Deleted != 0 {
		t.Fatal("forged delete executed")
	}
	if !strings.Contains(logs.String(), "delete work on a job without --delete: refused") {
		t.Fatalf("the forged delete was not seen: %s", logs.String())
	}
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestUntrustedWorkRefused: work and jobs that no trusted key signed never
// touch a store: an unsigned copy batch, one signed by a stranger, a
// trusted batch with one key changed, one replayed from another job, and a
// whole job whose spec a stranger signed. They are terminated without a
// Final (the real job still ends done, its accounts exact), counted, and
// logged once per job.
func TestUntrustedWorkRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := connect(t)
	src, dst := mem.New("src"), mem.New("dst")
	for i := range 20 {
		if _, err := src.Put(ctx, store.PutInput{Key: fmt.Sprintf("real/%02d", i), Size: 1}, strings.NewReader("r")); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"private/id_rsa", "private/tampered", "private/stranger", "private/replayed"} {
		if _, err := src.Put(ctx, store.PutInput{Key: k, Size: 6}, strings.NewReader("secret")); err != nil {
			t.Fatal(err)
		}
	}
	coord, err := job.Create(ctx, conn, job.Spec{Command: "copy", Src: job.Side{Location: "mem://src"}, Dst: job.Side{Location: "mem://dst"}, Spec: filter.Spec{Exclude: []string{"private/**"}}, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	id := coord.ID()
	subj := queue.WorkSubject(id, job.KindCopy)
	batch := func(key string) []byte {
		b, _ := json.Marshal(job.Work{V: job.WireVersion, Job: id, Kind: job.KindCopy, ID: job.ContentID(key), Attempt: 1, Objs: []job.Obj{{K: key, S: 6}}})
		return b
	}
	stranger := trust.Generate()
	// Unsigned.
	if _, err := conn.JS.Publish(ctx, subj, batch("private/id_rsa")); err != nil {
		t.Fatal(err)
	}
	// Signed by a key the worker does not trust.
	if _, err := conn.JS.PublishMsg(ctx, stranger.Msg(subj, id, batch("private/stranger"))); err != nil {
		t.Fatal(err)
	}
	// Signed by the trusted key, then one key changed.
	m := conn.SignedMsg(subj, id, batch("private/aaaaaaa"))
	m.Data = batch("private/tampered")
	if _, err := conn.JS.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	// Signed by the trusted key for another job, replayed into this one.
	m = conn.SignedMsg(queue.WorkSubject("otherjob", job.KindCopy), "otherjob", batch("private/replayed"))
	m.Subject = subj
	if _, err := conn.JS.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	// A whole job signed by a stranger, reading a local directory.
	fspec := job.Spec{V: 2, ID: job.NewID(), Command: "copy", Src: job.Side{Location: "/home"}, Dst: job.Side{Location: "s3://attacker"}, MaxAttempts: 1, Created: time.Now().UTC()}
	fsig, _ := job.SignSpec(stranger, fspec)
	fst, _ := json.Marshal(job.State{V: 2, Spec: fspec, SpecSig: fsig, Status: job.Running})
	if _, err := conn.Jobs.Create(ctx, fspec.ID, fst); err != nil {
		t.Fatal(err)
	}
	var opened sync.Map
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var logs lockedBuf
	w := worker.New(conn, worker.Options{Log: slog.New(slog.NewTextHandler(&logs, nil)),
		Open: func(_ context.Context, s job.Spec) (store.Store, store.Store, error) {
			opened.Store(s.ID, true)
			return src, dst, nil
		}})
	wg.Go(func() { _ = w.Run(wctx) })
	st, err := coord.Run(ctx, job.RunOptions{Tick: 10 * time.Millisecond})
	// The forged messages sit before the root's children in the queue:
	// they were handled before the job could end.
	stop()
	wg.Wait()
	if err != nil || st.Status != job.Done || st.Counters.Copied != 20 {
		t.Fatalf("%v: %s %q, copied %d (want 20)", err, st.Status, st.Error, st.Counters.Copied)
	}
	for _, k := range []string{"private/id_rsa", "private/tampered", "private/stranger", "private/replayed"} {
		if _, ok := dst.Bytes(k); ok {
			t.Errorf("forged work copied %s", k)
		}
	}
	if _, ok := opened.Load(fspec.ID); ok {
		t.Error("the stranger's job had its stores opened")
	}
	if n := w.Refused(); n != 5 {
		t.Errorf("Refused() = %d, want 5 (4 messages, 1 job)\n%s", n, logs.String())
	}
	out := logs.String()
	if c := strings.Count(out, "refused work message: terminated"); c != 1 {
		t.Errorf("refusals logged %d times for the job, want once:\n%s", c, out)
	}
	if !strings.Contains(out, "refused job") || !strings.Contains(out, "does not trust") {
		t.Errorf("the forged job's refusal was not logged with its reason:\n%s", out)
	}
}

// TestPolicyRefusalDeadLetters: a worker whose policy refuses a job's side
// dead-letters its work with the reason (no crash, no retry loop) and the
// job ends failed; with the side allowed, the same job completes.
func TestPolicyRefusalDeadLetters(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srcDir, dstDir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(srcDir+"/id_ed25519", []byte("private"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(policy *sides.Policy) (job.State, []job.DLQEntry, string) {
		conn := connect(t)
		coord, err := job.Create(ctx, conn, job.Spec{Command: "copy", MaxAttempts: 3,
			Src: job.Side{Location: srcDir}, Dst: job.Side{Location: dstDir}, DstKeepsMTime: true})
		if err != nil {
			t.Fatal(err)
		}
		wctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		var logs lockedBuf
		w := worker.New(conn, worker.Options{Log: slog.New(slog.NewTextHandler(&logs, nil)), RetryBase: time.Millisecond,
			Open: func(ctx context.Context, spec job.Spec) (store.Store, store.Store, error) {
				return sides.OpenJob(ctx, spec, sides.Options{Policy: policy})
			}})
		wg.Go(func() { _ = w.Run(wctx) })
		st, err := coord.Run(ctx, job.RunOptions{Tick: 10 * time.Millisecond})
		stop()
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		dlq, err := job.ReadDLQ(ctx, conn, coord.ID(), 0)
		if err != nil {
			t.Fatal(err)
		}
		return st, dlq, logs.String()
	}

	st, dlq, logs := run(&sides.Policy{})
	if st.Status != job.Failed {
		t.Fatalf("refused job: %s %q", st.Status, st.Error)
	}
	if len(dlq) != 1 || !strings.Contains(dlq[0].Error, "local paths are refused: this worker was started without --allow-local") {
		t.Fatalf("dead letters %+v, want one naming --allow-local", dlq)
	}
	if _, err := os.Stat(dstDir + "/id_ed25519"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("refused job copied the file: %v", err)
	}
	if n := strings.Count(logs, "job refused"); n != 1 {
		t.Errorf("refusal logged %d times, want once:\n%s", n, logs)
	}

	p, err := sides.NewPolicy([]string{srcDir, dstDir}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, dlq, logs = run(p)
	if st.Status != job.Done || len(dlq) != 0 || st.Counters.Copied != 1 {
		t.Fatalf("allowed job: %s %q %+v, dead letters %+v\n%s", st.Status, st.Error, st.Counters, dlq, logs)
	}
	if b, err := os.ReadFile(dstDir + "/id_ed25519"); err != nil || string(b) != "private" {
		t.Fatalf("copy: %q %v", b, err)
	}
}

// stallSrc holds the reads of chosen keys until release is closed.
type stallSrc struct {
	*mem.Store
	stall   map[string]bool
	stalled chan string // a stalled read began
	release chan struct{}
}

func (s *stallSrc) Open(ctx context.Context, key string, off, n int64) (io.ReadCloser, store.Attrs, error) {
	if s.stall[key] {
		s.stalled <- key
		select {
		case <-s.release:
		case <-ctx.Done():
			return nil, store.Attrs{}, ctx.Err()
		}
	}
	return s.Store.Open(ctx, key, off, n)
}

// countDst signals done once want objects were written.
type countDst struct {
	*mem.Store
	mu   sync.Mutex
	n    int
	want int
	done chan struct{}
}

func (d *countDst) Put(ctx context.Context, in store.PutInput, body io.Reader) (store.PutResult, error) {
	r, err := d.Store.Put(ctx, in, body)
	if err == nil {
		d.mu.Lock()
		d.n++
		if d.n == d.want {
			close(d.done)
		}
		d.mu.Unlock()
	}
	return r, err
}

// TestSlowObjectHoldsOneSlot: object-level scheduling. One worker with
// --concurrency 8 and batches of 20 objects; the reads of one object in each
// of the first four batches hang until the test releases them. Every other
// object must be copied while they hang (with batch-level scheduling the
// four batches held every message slot and the job stopped at 76). Then the
// reads are released and the job ends done with each object copied once.
func TestSlowObjectHoldsOneSlot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conn := connect(t)
	const n, batch = 400, 20
	var keys []string
	for i := range n {
		keys = append(keys, fmt.Sprintf("k%04d", i))
	}
	stall := map[string]bool{keys[3]: true, keys[batch+5]: true, keys[2*batch+7]: true, keys[3*batch]: true}
	src := &stallSrc{Store: mem.New("src"), stall: stall, stalled: make(chan string, len(stall)), release: make(chan struct{})}
	dst := &countDst{Store: mem.New("dst"), want: n - len(stall), done: make(chan struct{})}
	for _, k := range keys {
		body := []byte("v:" + k)
		if _, err := src.Store.Put(ctx, store.PutInput{Key: k, Size: int64(len(body))}, bytes.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	coord, err := job.Create(ctx, conn, job.Spec{Command: "copy", Src: job.Side{Location: "mem://src"}, Dst: job.Side{Location: "mem://dst"}, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWorker := context.WithCancel(ctx)
	var wg sync.WaitGroup
	w := worker.New(conn, worker.Options{
		Concurrency: 8, Name: "w", BatchObjects: batch, RetryBase: time.Millisecond,
		Open: func(context.Context, job.Spec) (store.Store, store.Store, error) { return src, dst, nil },
	})
	wg.Go(func() {
		if err := w.Run(wctx); err != nil {
			t.Error(err)
		}
	})
	type ran struct {
		st  job.State
		err error
	}
	result := make(chan ran, 1)
	audit := &memAudit{lines: map[string]int{}}
	wg.Go(func() {
		st, err := coord.Run(ctx, job.RunOptions{Audit: audit, Tick: 10 * time.Millisecond})
		result <- ran{st, err}
	})
	defer func() { stopWorker(); cancel(); wg.Wait() }()

	// A bound for a failing run, not a synchronisation: the test goes on
	// as soon as the events it waits for happen.
	deadline := time.After(time.Minute)
	for range stall {
		select {
		case <-src.stalled:
		case <-deadline:
			t.Fatal("the stalled reads never began: a slow object blocks others")
		}
	}
	select {
	case <-dst.done:
	case <-deadline:
		dst.mu.Lock()
		got := dst.n
		dst.mu.Unlock()
		t.Fatalf("with %d reads held, %d of the other %d objects were copied in a minute: a slow object blocks others", len(stall), got, n-len(stall))
	}
	for k := range stall {
		if _, ok := dst.Bytes(k); ok {
			t.Fatalf("%s copied while its read was held", k)
		}
	}
	close(src.release)
	r := <-result
	if r.err != nil || r.st.Status != job.Done {
		t.Fatalf("%v: %s %q %+v", r.err, r.st.Status, r.st.Error, r.st.Counters)
	}
	if k := r.st.Counters; k.Copied != n || k.Failed != 0 {
		t.Fatalf("counters %+v", k)
	}
	for _, k := range keys {
		if b, ok := dst.Bytes(k); !ok || string(b) != "v:"+k {
			t.Fatalf("destination %q: %q %v", k, b, ok)
		}
		if c := audit.lines[k+" object"]; c != 1 {
			t.Fatalf("%d audit lines for %q", c, k)
		}
	}
}
