// Package worker pulls work from the queue for every running job (or the
// jobs it is told to), runs listing tasks with the lister and copy and
// delete batches with the transfer engine, and publishes one result per
// object. Many workers on many machines share the work of one job; the
// foreground `ferry copy` runs one in-process.
//
// Message handling (see docs/design.md, "Work"):
//
//	success            → results published, then Ack
//	retryable failure  → the failed objects are queued again as a new
//	                     batch with Attempt+1 and a NotBefore delay, then Ack
//	after MaxAttempts  → each object to the dead-letter stream, a "failed"
//	                     result, then Ack
//	permanent failure  → dead-letter at once (missing source object, access
//	                     denied, invalid key); unsafe keys are results only
//	drain or abort     → the message is Nak'ed: what finished stays done
//	                     (its results are published), the rest is redelivered
//	long work          → InProgress every AckWait/3 keeps the message
//
// Everything a message's handling publishes carries a de-duplication ID
// derived from the message's content, so a redelivered message (after a
// crash) publishes nothing twice within the streams' duplicate window, and
// objects it already copied are found up to date by their provenance.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-dev/ferry/internal/filter"
	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/lister"
	"github.com/ferry-dev/ferry/internal/plan"
	"github.com/ferry-dev/ferry/internal/queue"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/transfer"
)

// Opener opens a job's source and destination stores with this machine's
// credentials (profiles, secrets, environment) as the spec references them.
type Opener func(ctx context.Context, spec job.Spec) (src, dst store.Store, err error)

// Options tune a worker. Open is required.
type Options struct {
	// Concurrency is the number of objects in flight (default 32).
	Concurrency int
	// Jobs restricts the worker to these job IDs (nil: every running job).
	Jobs []string
	// Name identifies the worker in results (default host:pid).
	Name string
	Log  *slog.Logger
	Open Opener
	// DrainTimeout bounds how long in-flight work may finish after ctx ends
	// (default 30s); after it, work is cancelled and returned to the queue,
	// multipart uploads kept for resuming.
	DrainTimeout time.Duration
	// Abort, when closed, cancels in-flight work at once and aborts
	// multipart uploads (a second interrupt).
	Abort <-chan struct{}
	// BatchObjects and BatchBytes bound copy batches (lister defaults).
	BatchObjects int
	BatchBytes   int64
	// Stats, when set, receives live byte counts for progress displays.
	Stats *Stats
}

// Stats are live counters of this worker.
type Stats struct {
	mu          sync.Mutex
	BytesCopied int64
}

// Add counts copied bytes.
func (s *Stats) Add(n int64) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.BytesCopied += n
	s.mu.Unlock()
}

// Bytes returns the bytes copied so far.
func (s *Stats) Bytes() int64 {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.BytesCopied
}

func (o *Options) applyDefaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = 32
	}
	if o.Name == "" {
		h, _ := os.Hostname()
		o.Name = h + ":" + strconv.Itoa(os.Getpid())
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 30 * time.Second
	}
}

// ErrDrain is the cancel cause of work stopped by a graceful drain.
var ErrDrain = transfer.ErrDrain

// errAbort is the cancel cause of work stopped by a hard abort.
var errAbort = errors.New("aborted")

// Worker runs work for jobs.
type Worker struct {
	conn *queue.Conn
	opts Options
	// tasks feeds the Concurrency long-lived goroutines that copy or delete
	// one object each at a time, across jobs. They keep their grown stacks
	// (the SDK's request path is deep), where a goroutine per object would
	// grow a fresh stack every time. A send succeeds only when one is idle.
	tasks chan func()

	// workCtx carries in-flight work; it outlives Run's ctx by up to
	// DrainTimeout.
	workCtx    context.Context
	workCancel context.CancelCauseFunc

	mu   sync.Mutex
	jobs map[string]*jobRun
	wg   sync.WaitGroup // job loops
}

// New returns a worker on conn.
func New(conn *queue.Conn, opts Options) *Worker {
	opts.applyDefaults()
	return &Worker{conn: conn, opts: opts, jobs: map[string]*jobRun{}}
}

// Run works until ctx ends, then drains: it stops taking work, lets
// in-flight work finish for up to DrainTimeout, and returns what is left
// to the queue.
func (w *Worker) Run(ctx context.Context) error {
	w.workCtx, w.workCancel = context.WithCancelCause(context.Background())
	defer w.workCancel(nil)
	w.tasks = make(chan func())
	var pool sync.WaitGroup
	for range w.opts.Concurrency {
		pool.Go(func() {
			for task := range w.tasks {
				task()
			}
		})
	}
	defer func() { close(w.tasks); pool.Wait() }()
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watcher, err := w.conn.Jobs.WatchAll(watchCtx)
	if err != nil {
		return fmt.Errorf("watch jobs: %w", err)
	}
	defer watcher.Stop()

	// Escalation: drain timeout or abort cancel in-flight work.
	escalated := make(chan struct{})
	go func() {
		defer close(escalated)
		select {
		case <-w.workCtx.Done():
			return
		case <-w.opts.Abort:
			w.workCancel(errAbort)
			return
		case <-ctx.Done():
		}
		t := time.NewTimer(w.opts.DrainTimeout)
		defer t.Stop()
		select {
		case <-w.workCtx.Done():
		case <-t.C:
			w.workCancel(ErrDrain)
		case <-w.opts.Abort:
			w.workCancel(errAbort)
		}
	}()

loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case e, ok := <-watcher.Updates():
			if !ok {
				break loop
			}
			if e == nil {
				continue // initial values done
			}
			w.onJobUpdate(ctx, e)
		}
	}
	w.mu.Lock()
	for _, jr := range w.jobs {
		jr.stop()
	}
	w.mu.Unlock()
	w.wg.Wait()
	w.workCancel(nil)
	<-escalated
	return nil
}

func (w *Worker) wanted(id string) bool {
	if len(w.opts.Jobs) == 0 {
		return true
	}
	for _, j := range w.opts.Jobs {
		if j == id {
			return true
		}
	}
	return false
}

func (w *Worker) onJobUpdate(ctx context.Context, e jetstream.KeyValueEntry) {
	id := e.Key()
	if !w.wanted(id) {
		return
	}
	running := false
	var spec job.Spec
	if e.Operation() == jetstream.KeyValuePut {
		var st job.State
		if err := json.Unmarshal(e.Value(), &st); err == nil && st.V == job.WireVersion {
			running = st.Status == job.Running
			spec = st.Spec
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	jr, have := w.jobs[id]
	switch {
	case running && !have:
		jr = &jobRun{w: w, spec: spec, done: make(chan struct{})}
		jr.ctx, jr.cancel = context.WithCancel(ctx)
		w.jobs[id] = jr
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			jr.loop()
			w.mu.Lock()
			if w.jobs[id] == jr {
				delete(w.jobs, id)
			}
			w.mu.Unlock()
		}()
	case !running && have:
		jr.stop()
		delete(w.jobs, id)
	}
}

// jobRun pulls and handles one job's work.
type jobRun struct {
	w      *Worker
	spec   job.Spec
	ctx    context.Context // ends when the job is paused or the worker drains
	cancel context.CancelFunc
	done   chan struct{}

	src, dst store.Store
	eng      *transfer.Engine
	flt      *filter.Filter

	credMu     sync.Mutex
	credPaused bool
}

func (jr *jobRun) stop() { jr.cancel() }

func (jr *jobRun) log() *slog.Logger { return jr.w.opts.Log.With("job", jr.spec.ID) }

func (jr *jobRun) loop() {
	w := jr.w
	var err error
	for attempt := 0; ; attempt++ {
		jr.src, jr.dst, err = w.opts.Open(jr.ctx, jr.spec)
		if err == nil {
			break
		}
		jr.log().Error("open stores", "err", err)
		if errors.Is(err, store.ErrAccess) {
			jr.pauseForCredentials(err)
			return
		}
		select {
		case <-jr.ctx.Done():
			return
		case <-time.After(backoff(attempt + 1)):
		}
	}
	jr.flt, err = filter.New(jr.spec.Include, jr.spec.Exclude)
	if err != nil {
		jr.log().Error("filter", "err", err)
		return
	}
	jr.eng = transfer.New(jr.src, jr.dst, transfer.Options{
		PartSize:    jr.spec.PartSize,
		SSE:         jr.spec.SSE,
		SSEKMSKeyID: jr.spec.SSEKMSKeyID,
		Attempts:    1, // the queue retries, with its own attempt count
		Resumer:     &kvResumer{kv: w.conn.Uploads, job: jr.spec.ID},
	})
	cons, err := w.conn.JS.Consumer(jr.ctx, queue.StreamWork, job.WorkConsumer(jr.spec.ID))
	if err != nil {
		jr.log().Error("work consumer", "err", err)
		return
	}
	// Enough messages in flight keep the object slots busy between batches
	// (while one batch waits for its last objects and its acks): at least
	// 3, and twice the batches it takes to fill Concurrency.
	batch := w.opts.BatchObjects
	if batch <= 0 {
		batch = 100 // the lister's default
	}
	slots := make(chan struct{}, max(3, 2*w.opts.Concurrency/batch+2))
	var inflight sync.WaitGroup
	defer inflight.Wait()
	for jr.ctx.Err() == nil {
		select {
		case slots <- struct{}{}:
		case <-jr.ctx.Done():
			return
		}
		msg, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			<-slots
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
				return // the job finished
			}
			if !errors.Is(err, jetstream.ErrNoMessages) && jr.ctx.Err() == nil {
				jr.log().Debug("fetch work", "err", err)
				time.Sleep(200 * time.Millisecond)
			}
			continue
		}
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			defer func() { <-slots }()
			jr.handle(msg)
		}()
	}
}

// handle processes one work message.
func (jr *jobRun) handle(msg jetstream.Msg) {
	w := jr.w
	work, err := job.DecodeWork(msg.Data())
	if err != nil {
		jr.log().Error("bad work message: terminated", "err", err)
		_ = msg.TermWithReason(err.Error())
		return
	}
	if work.NotBefore > 0 {
		if d := time.Until(time.UnixMilli(work.NotBefore)); d > 0 {
			_ = msg.NakWithDelay(d)
			return
		}
	}
	md, _ := msg.Metadata()
	redelivered := md != nil && md.NumDelivered > 1

	// Keep the message alive while working on it.
	hb, stopHB := context.WithCancel(context.Background())
	var hbDone sync.WaitGroup
	hbDone.Add(1)
	go func() {
		defer hbDone.Done()
		t := time.NewTicker(job.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-hb.Done():
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	defer func() { stopHB(); hbDone.Wait() }()

	var complete bool
	switch work.Kind {
	case job.KindList:
		complete = jr.handleList(work)
	case job.KindCopy:
		complete = jr.handleObjects(work, redelivered, false)
	case job.KindDelete:
		complete = jr.handleObjects(work, redelivered, true)
	default:
		_ = msg.TermWithReason("unknown work kind " + work.Kind)
		return
	}
	if !complete {
		// Drained or aborted: what is left goes back to the queue.
		_ = msg.Nak()
		return
	}
	if err := msg.DoubleAck(w.workCtx); err != nil {
		jr.log().Warn("ack", "err", err)
	}
}

// publisher publishes with de-duplication IDs and waits for every ack.
type publisher struct {
	js   jetstream.JetStream
	acks []jetstream.PubAckFuture
	err  error
}

func (p *publisher) publish(subject string, v any, msgID string) {
	if p.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		p.err = err
		return
	}
	f, err := p.js.PublishAsync(subject, b, jetstream.WithMsgID(msgID))
	if err != nil {
		p.err = err
		return
	}
	p.acks = append(p.acks, f)
}

func (p *publisher) wait(ctx context.Context) error {
	for _, f := range p.acks {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publish: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.acks = p.acks[:0]
	return p.err
}

// emitter publishes what a listing task produces.
type emitter struct {
	jr   *jobRun
	work job.Work
	pub  *publisher
}

func (e *emitter) Copy(ctx context.Context, batch []plan.Action) error {
	objs := make([]job.Obj, len(batch))
	for i, a := range batch {
		objs[i] = job.ObjFromAction(a)
	}
	id := job.ContentID(e.work.ID, "copy", objs)
	w := job.Work{V: job.WireVersion, Job: e.work.Job, Kind: job.KindCopy, ID: id, Attempt: 1, Objs: objs}
	e.pub.publish(queue.WorkSubject(w.Job, w.Kind), w, id)
	return e.flushIfLarge(ctx)
}

func (e *emitter) Delete(ctx context.Context, batch []store.Object) error {
	objs := make([]job.Obj, len(batch))
	for i, d := range batch {
		objs[i] = job.ObjFromObject(d)
	}
	id := job.ContentID(e.work.ID, "delete", objs)
	w := job.Work{V: job.WireVersion, Job: e.work.Job, Kind: job.KindDelete, ID: id, Attempt: 1, Objs: objs}
	e.pub.publish(queue.DeleteSubject(w.Job), w, id)
	return e.flushIfLarge(ctx)
}

// Skipped publishes the objects the plan skipped, for the audit log (the
// counters come from the task's result).
func (e *emitter) Skipped(ctx context.Context, batch []store.Object) error {
	objs := make([]job.Obj, len(batch))
	for i, o := range batch {
		objs[i] = job.ObjFromObject(o)
	}
	id := job.ContentID(e.work.ID, "skipped", objs)
	r := job.Result{V: job.WireVersion, Job: e.work.Job, Kind: "skipped", Worker: e.jr.w.opts.Name, Objs: objs, Ended: time.Now().UTC()}
	e.pub.publish(queue.ResultSubject(e.work.Job), r, id)
	return e.flushIfLarge(ctx)
}

func (e *emitter) Task(ctx context.Context, t lister.Task) error {
	id := job.ContentID(e.work.Job, "task", t)
	w := job.Work{V: job.WireVersion, Job: e.work.Job, Kind: job.KindList, ID: id, Attempt: 1, Task: &t}
	e.pub.publish(queue.WorkSubject(w.Job, w.Kind), w, id)
	return e.flushIfLarge(ctx)
}

func (e *emitter) flushIfLarge(ctx context.Context) error {
	if len(e.pub.acks) >= 256 {
		return e.pub.wait(ctx)
	}
	return e.pub.err
}

func (jr *jobRun) handleList(work job.Work) bool {
	w := jr.w
	ctx := w.workCtx
	if work.Task == nil {
		work.Task = &lister.Task{}
	}
	pub := &publisher{js: w.conn.JS}
	em := &emitter{jr: jr, work: work, pub: pub}
	stats, err := lister.Run(ctx, jr.src, jr.dst, *work.Task, lister.Options{
		Plan:         plan.Options{Filter: jr.flt, Delete: jr.spec.Delete, DstKeepsMTime: jr.spec.DstKeepsMTime},
		BatchObjects: w.opts.BatchObjects,
		BatchBytes:   w.opts.BatchBytes,
	}, em)
	if err == nil {
		err = pub.wait(ctx)
	}
	if err != nil && ctx.Err() != nil {
		return false
	}
	if err != nil && errors.Is(err, store.ErrAccess) && jr.credentialsRevoked(ctx) {
		return false
	}
	res := job.Result{V: job.WireVersion, Job: work.Job, Kind: "task", Worker: w.opts.Name, Attempts: work.Attempt}
	if err != nil {
		if work.Attempt < jr.spec.MaxAttempts && !store.Permanent(err) {
			jr.log().Warn("listing task failed, will retry", "attempt", work.Attempt, "err", err)
			retry := work
			retry.Attempt++
			retry.NotBefore = time.Now().Add(backoff(work.Attempt)).UnixMilli()
			retry.Errs = []string{err.Error()}
			pub.publish(queue.WorkSubject(work.Job, job.KindList), retry, job.ContentID(work.ID, "retry", retry.Attempt))
			return pub.wait(ctx) == nil
		}
		jr.log().Error("listing task failed", "attempts", work.Attempt, "err", err)
		pub.publish(queue.DLQSubject(work.Job), job.DLQEntry{V: job.WireVersion, Job: work.Job, Kind: job.KindList, Task: work.Task, Error: err.Error(), Attempts: work.Attempt, Time: time.Now().UTC()}, job.ContentID(work.ID, "dlq"))
		res.Task = &job.TaskResult{Failed: true, Error: err.Error()}
	} else {
		res.Task = &job.TaskResult{
			Children: stats.Tasks, Listed: stats.SrcListed, ListedBytes: stats.SrcBytes, DstListed: stats.DstListed,
			Enqueued: stats.Copy, EnqueuedSize: stats.CopyBytes, Skipped: stats.Skipped, SkippedBytes: stats.SkippedBytes,
			Deletes: stats.Deletes,
		}
	}
	pub.publish(queue.ResultSubject(work.Job), res, job.ContentID(work.ID, "done"))
	return pub.wait(ctx) == nil
}

// handleObjects runs a copy or delete batch. It reports false when work
// was cut short by a drain or abort (the message goes back to the queue).
func (jr *jobRun) handleObjects(work job.Work, redelivered, del bool) bool {
	w := jr.w
	ctx := w.workCtx
	pub := &publisher{js: w.conn.JS}
	var mu sync.Mutex
	var retry []job.Obj
	var retryErrs []string
	var wg sync.WaitGroup
	cut := false
	for _, o := range work.Objs {
		// A pause or drain (jr.ctx) lets started objects finish but starts
		// no more: the message goes back to the queue, and objects already
		// copied are found up to date when it is redelivered.
		if jr.ctx.Err() != nil {
			mu.Lock()
			cut = true
			mu.Unlock()
			break
		}
		wg.Add(1)
		task := func() {
			defer wg.Done()
			var res job.Result
			var err error
			if del {
				res, err = jr.deleteOne(ctx, o, work)
			} else {
				res, err = jr.copyOne(ctx, o, work, redelivered)
			}
			if err != nil && errors.Is(err, store.ErrAccess) && jr.credentialsRevoked(ctx) {
				// The endpoint refuses everything: the job waits for
				// valid credentials; this object goes back to the queue.
				mu.Lock()
				cut = true
				mu.Unlock()
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil && ctx.Err() != nil {
				cut = true
				return
			}
			if err != nil && !store.Permanent(err) && !errors.Is(err, store.ErrUnsafeKey) && work.Attempt < jr.spec.MaxAttempts {
				retry = append(retry, o)
				retryErrs = append(retryErrs, oneLine(err.Error()))
				return
			}
			if err != nil && res.Outcome != job.OutcomeUnsafe {
				pub.publish(queue.DLQSubject(work.Job), job.DLQEntry{V: job.WireVersion, Job: work.Job, Kind: work.Kind, Obj: &o, Error: oneLine(err.Error()), Attempts: work.Attempt, Time: time.Now().UTC()}, job.ContentID(work.ID, "dlq", o.K))
			}
			pub.publish(queue.ResultSubject(work.Job), res, job.ContentID(work.ID, "result", o.K))
		}
		select {
		case w.tasks <- task:
			continue
		case <-jr.ctx.Done():
		}
		wg.Done()
		mu.Lock()
		cut = true
		mu.Unlock()
		break
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if cut {
		_ = pub.wait(context.Background())
		return false
	}
	if len(retry) > 0 {
		r := job.Work{V: job.WireVersion, Job: work.Job, Kind: work.Kind, Attempt: work.Attempt + 1, Objs: retry, Errs: retryErrs,
			NotBefore: time.Now().Add(backoff(work.Attempt)).UnixMilli()}
		r.ID = job.ContentID(work.ID, "retry", r.Attempt)
		jr.log().Warn("objects failed, will retry", "count", len(retry), "attempt", work.Attempt, "first_error", retryErrs[0])
		pub.publish(queue.WorkSubject(work.Job, work.Kind), r, r.ID)
	}
	if err := pub.wait(ctx); err != nil {
		jr.log().Warn("publish results", "err", err)
		return false
	}
	return true
}

func (jr *jobRun) copyOne(ctx context.Context, o job.Obj, work job.Work, redelivered bool) (job.Result, error) {
	w := jr.w
	src := o.Src()
	res := job.Result{V: job.WireVersion, Job: work.Job, Kind: "object", Key: o.K, Size: o.S, Worker: w.opts.Name,
		Attempts: work.Attempt, SrcETag: o.E, Started: time.Now().UTC()}
	finish := func(outcome string, err error) (job.Result, error) {
		res.Outcome, res.Ended = outcome, time.Now().UTC()
		if err != nil {
			res.Error = oneLine(err.Error())
		}
		return res, err
	}
	if o.Chk || redelivered {
		dst := o.Dst()
		if !o.Chk {
			dst = store.Object{Key: o.K}
		}
		ok, err := jr.eng.UpToDate(ctx, src, dst)
		if err != nil {
			return finish(job.OutcomeFailed, err)
		}
		if ok {
			return finish(job.OutcomeSkipped, nil)
		}
	}
	if jr.spec.DryRun {
		return finish(job.OutcomePlanned, nil)
	}
	r, err := jr.eng.Copy(ctx, src, o.K)
	res.Attempts = work.Attempt
	if err != nil {
		if errors.Is(err, store.ErrUnsafeKey) || errors.Is(err, store.ErrInvalidKey) {
			return finish(job.OutcomeUnsafe, err)
		}
		return finish(job.OutcomeFailed, err)
	}
	w.opts.Stats.Add(r.Size)
	res.Size, res.Method, res.CRC32C, res.MD5 = r.Size, r.Method, r.CRC32C, r.MD5Verified
	res.SrcETag, res.SrcVersion, res.DstETag, res.DstVersion = r.SrcETag, r.SrcVersionID, r.DstETag, r.DstVersionID
	return finish(job.OutcomeCopied, nil)
}

func (jr *jobRun) deleteOne(ctx context.Context, o job.Obj, work job.Work) (job.Result, error) {
	res := job.Result{V: job.WireVersion, Job: work.Job, Kind: "delete", Key: o.K, Size: o.S, Worker: jr.w.opts.Name,
		Attempts: work.Attempt, DstETag: o.E, Started: time.Now().UTC()}
	err := jr.dst.Delete(ctx, o.K)
	res.Ended = time.Now().UTC()
	if err != nil {
		res.Outcome, res.Error = job.OutcomeDelFail, oneLine(err.Error())
		return res, err
	}
	res.Outcome = job.OutcomeDeleted
	return res, nil
}

// backoff is the delay before attempt n+1: exponential with full jitter,
// 1s base, capped at 60s.
func backoff(n int) time.Duration {
	d := time.Second << min(n-1, 6)
	d = min(d, 60*time.Second)
	return d/2 + rand.N(d/2+1)
}

func oneLine(s string) string {
	out := make([]rune, 0, len(s))
	space := false
	for _, r := range s {
		if r == '\n' || r == '\r' || r == '\t' || r == ' ' {
			if !space {
				out = append(out, ' ')
			}
			space = true
			continue
		}
		space = false
		out = append(out, r)
	}
	return string(out)
}
