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
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	bo "github.com/ferry-dev/ferry/internal/backoff"
	"github.com/ferry-dev/ferry/internal/filter"
	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/lister"
	"github.com/ferry-dev/ferry/internal/logtext"
	"github.com/ferry-dev/ferry/internal/plan"
	"github.com/ferry-dev/ferry/internal/queue"
	"github.com/ferry-dev/ferry/internal/sides"
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
	// BatchObjects and BatchBytes bound copy batches, SplitKeys the keys a
	// listing task lists before it splits (lister defaults).
	BatchObjects int
	BatchBytes   int64
	SplitKeys    int
	// RetryBase is the first retry's delay, doubled each attempt up to 60
	// times it, with jitter (default 1s).
	RetryBase time.Duration
	// Stats, when set, receives live byte counts for progress displays.
	Stats *Stats
	// StallTimeout aborts and retries a source read or a destination write
	// (Put, UploadPart) that moves no bytes for this long (see
	// [transfer.Options.StallTimeout]; 0: its default, negative: never).
	StallTimeout time.Duration
	// Limiter, when set, bounds the rate of the bytes this worker reads
	// from sources, all its jobs and objects together (--bwlimit; each
	// worker process has its own).
	Limiter *transfer.Limiter
	// Observer, when set, receives the worker's events (for metrics).
	Observer Observer
	// LogObjects logs one info line per object (key, size, outcome,
	// duration); otherwise those lines are debug.
	LogObjects bool
	// Side is the work this worker takes (--side): SideSource (listing,
	// copies, deletes, packing), SideDestination (unpacking, of pack-mode
	// jobs), or SideBoth (default).
	Side string
	// OpenStaging opens a pack-mode job's staging location with this
	// machine's credentials; required for pack-mode jobs.
	OpenStaging func(ctx context.Context, spec job.Spec) (store.Store, error)
	// PackBatchObjects bounds the objects of a pack-mode job's copy
	// batches, and so of its bundles (default 1000; BatchBytes is bounded
	// by the job's bundle size).
	PackBatchObjects int
	// TempDir holds bundles while they are written or verified (default:
	// the system's temporary directory).
	TempDir string
}

// Observer receives a worker's events, for metrics. Its methods are
// called from many goroutines at once and must not block.
type Observer interface {
	// ObjectStarted: the worker starts to copy or delete an object.
	ObjectStarted(job string)
	// ObjectDone: it finished one (outcome as in [job.Result]), after d.
	ObjectDone(job, outcome string, size int64, d time.Duration)
	// Retry: something is tried again (side: source, destination or any).
	Retry(job, side, reason string)
	// Heartbeat: the named worker is alive (its loop runs).
	Heartbeat(worker string)
}

type nopObserver struct{}

func (nopObserver) ObjectStarted(string)                            {}
func (nopObserver) ObjectDone(string, string, int64, time.Duration) {}
func (nopObserver) Retry(string, string, string)                    {}
func (nopObserver) Heartbeat(string)                                {}

// heartbeatEvery is how often a running worker reports a heartbeat.
const heartbeatEvery = 5 * time.Second

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
	if o.RetryBase <= 0 {
		o.RetryBase = time.Second
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	if o.Side == "" {
		o.Side = SideBoth
	}
	if o.PackBatchObjects <= 0 {
		o.PackBatchObjects = 1000
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
	// refusedJobs are the jobs whose spec failed verification (logged once).
	refusedJobs map[string]bool

	// refused counts work messages and job specs refused by verification.
	refused atomic.Int64
}

// Refused returns how many work messages and job specs this worker refused
// (unsigned, signed by a key it does not trust, tampered or replayed).
func (w *Worker) Refused() int64 { return w.refused.Load() }

// New returns a worker on conn.
func New(conn *queue.Conn, opts Options) *Worker {
	opts.applyDefaults()
	return &Worker{conn: conn, opts: opts, jobs: map[string]*jobRun{}, refusedJobs: map[string]bool{}}
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

	w.opts.Observer.Heartbeat(w.opts.Name)
	heartbeat := time.NewTicker(heartbeatEvery)
	defer heartbeat.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-heartbeat.C:
			w.opts.Observer.Heartbeat(w.opts.Name)
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
	var st job.State
	if e.Operation() == jetstream.KeyValuePut {
		if err := json.Unmarshal(e.Value(), &st); err == nil && job.StateVersionOK(st.V) {
			running = st.Status == job.Running
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if running {
		// The spec names the stores: it must be signed by a trusted key
		// before anything is opened.
		if err := job.VerifySpec(w.conn.Trust, id, st); err != nil {
			if !w.refusedJobs[id] {
				w.refusedJobs[id] = true
				n := w.refused.Add(1)
				w.opts.Log.Error("refused job: its spec is not signed by a trusted key; nothing of it is run", "job", id, "reason", err, "refused_total", n)
			}
			running = false
		}
	}
	jr, have := w.jobs[id]
	if have {
		jr.setState(st)
	}
	switch {
	case running && !have:
		jr = &jobRun{w: w, spec: st.Spec, done: make(chan struct{})}
		jr.setState(st)
		jr.ctx, jr.cancel = context.WithCancel(ctx)
		jr.workCtx, jr.workCancel = context.WithCancelCause(w.workCtx)
		w.jobs[id] = jr
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			jr.loop()
			jr.workCancel(nil)
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
	// levels is the pack-mode compression level this worker chose for
	// the job (see levelChoice).
	levels levelChoice
	w      *Worker
	spec   job.Spec
	ctx    context.Context // ends when the job is paused or the worker drains
	cancel context.CancelFunc
	done   chan struct{}

	src, dst store.Store
	// staging is a pack-mode job's staging location.
	staging store.Store
	eng     *transfer.Engine
	flt     *filter.Filter

	credMu     sync.Mutex
	credPaused bool

	// workCtx carries the job's in-flight objects (a child of the
	// worker's): the circuit breaker cancels it when it trips.
	workCtx    context.Context
	workCancel context.CancelCauseFunc
	brk        breaker

	// openErr, when set, is why the job's stores cannot be opened on this
	// worker and never will be (refused by its policy, an invalid side):
	// its work is dead-lettered with this reason (deadLetter).
	openErr error

	refusedLogged atomic.Bool
	// listing bounds the listing tasks this job runs at once on this worker.
	listing chan struct{}

	// stMu guards what the worker knows of the job's state.
	stMu           sync.Mutex
	deletesOK      bool
	runs           int
	lastRunStarted time.Time
	checkBelow     uint64
}

func (jr *jobRun) stop() { jr.cancel() }

// refuse terminates a work message that failed verification: counted, and
// logged with its reason the first time for the job.
func (jr *jobRun) refuse(msg jetstream.Msg, why error) {
	n := jr.w.refused.Add(1)
	_ = msg.TermWithReason("refused: " + why.Error())
	if jr.refusedLogged.CompareAndSwap(false, true) {
		jr.log().Error("refused work message: terminated, not run (further refusals for this job are counted, not logged)",
			"subject", msg.Subject(), "reason", why, "refused_total", n)
	} else {
		jr.log().Debug("refused work message", "subject", msg.Subject(), "reason", why)
	}
}

// setState takes what the worker needs from the job's record.
func (jr *jobRun) setState(st job.State) {
	jr.stMu.Lock()
	defer jr.stMu.Unlock()
	jr.deletesOK = st.DeletesReleased
	jr.runs, jr.lastRunStarted, jr.checkBelow = st.Runs, st.Started, st.CheckBelow
}

// deletesReleased reports whether the coordinator released the job's
// deletes (the whole listing completed without a failed task).
func (jr *jobRun) deletesReleased() bool {
	jr.stMu.Lock()
	defer jr.stMu.Unlock()
	return jr.deletesOK
}

// queuedBeforeResume reports whether a message stored at t with
// work-stream sequence seq may have been handled by a run of the job that
// was killed: it was queued before the latest resume, and an earlier run's
// consumer delivered it (its sequence is below the job's CheckBelow). Such
// messages check the destination first; the others were never delivered,
// and checking each of their objects would cost a request per object.
func (jr *jobRun) queuedBeforeResume(t time.Time, seq uint64) bool {
	jr.stMu.Lock()
	defer jr.stMu.Unlock()
	return jr.runs > 1 && t.Before(jr.lastRunStarted) && (jr.checkBelow == 0 || seq < jr.checkBelow)
}

func (jr *jobRun) log() *slog.Logger { return jr.w.opts.Log.With("job", jr.spec.ID) }

func (jr *jobRun) loop() {
	w := jr.w
	var names []string
	switch side := w.opts.Side; {
	case jr.spec.Pack == nil && side != SideDestination:
		names = []string{job.WorkConsumer(jr.spec.ID)}
	case jr.spec.Pack != nil:
		if side != SideDestination {
			names = append(names, job.WorkConsumer(jr.spec.ID))
		}
		if side != SideSource {
			names = append(names, job.UnpackConsumer(jr.spec.ID))
		}
	}
	if len(names) == 0 {
		// Nothing of this job is this worker's side: stay out of it until
		// the job stops (a new jobRun would only open the stores again).
		<-jr.ctx.Done()
		return
	}
	var err error
	for attempt := 0; ; attempt++ {
		jr.src, jr.dst, err = w.opts.Open(jr.ctx, jr.spec)
		if err == nil && jr.spec.Pack != nil {
			jr.staging, err = jr.openStaging(jr.ctx)
		}
		if err == nil {
			break
		}
		class := sides.ClassOf(err)
		if class == sides.Refused || class == sides.Invalid || errors.Is(err, errNoStaging) {
			// Retrying cannot help: every work message of the job is
			// dead-lettered with the reason, so the job ends and says why.
			jr.openErr = err
			jr.log().Error("job refused: this worker dead-letters its work", "class", string(class), "reason", logtext.OneLine(err.Error()))
			break
		}
		jr.log().Error("open stores", "class", string(class), "err", err)
		if errors.Is(err, store.ErrAccess) {
			jr.pauseForCredentials(err)
			return
		}
		select {
		case <-jr.ctx.Done():
			return
		case <-time.After(backoff(w.opts.RetryBase, attempt+1)):
		}
	}
	if jr.openErr == nil {
		jr.flt, err = filter.FromSpec(jr.spec.Spec)
		if err != nil {
			jr.log().Error("filter", "err", err)
			return
		}
		jr.eng = jr.engine()
	}
	batch := w.opts.BatchObjects
	if batch <= 0 {
		batch = 100 // the lister's default
	}
	slots := max(3, 2*w.opts.Concurrency/batch+2)
	jr.listing = make(chan struct{}, slots)
	var loops sync.WaitGroup
	for _, name := range names {
		cons, err := w.conn.JS.Consumer(jr.ctx, queue.StreamWork, name)
		if err != nil {
			jr.log().Error("work consumer", "consumer", name, "err", err)
			jr.cancel()
			break
		}
		loops.Go(func() { jr.fetch(cons, slots) })
	}
	loops.Wait()
}

// fetch pulls one consumer's messages and handles each in its own
// goroutine, until the job stops or its consumer is gone.
//
// Object-level scheduling: Concurrency means objects in flight, not
// messages. A message holds a dispatch slot only until every object of it
// has been handed to the pool (or, for a listing task, until it has a
// listing slot); the loop then fetches more, so a slow object holds its
// pool goroutine and its message, never the other objects' slots. Enough
// dispatch slots keep the pool busy between batches: at least 3, and twice
// the batches it takes to fill Concurrency. held bounds the messages held
// at once: each beyond the dispatch slots has an object in flight (or is
// publishing its Final).
func (jr *jobRun) fetch(cons jetstream.Consumer, slots int) {
	w := jr.w
	dispatch := make(chan struct{}, slots)
	held := make(chan struct{}, w.opts.Concurrency+cap(dispatch))
	var inflight sync.WaitGroup
	defer inflight.Wait()
	for jr.ctx.Err() == nil {
		select {
		case held <- struct{}{}:
		case <-jr.ctx.Done():
			return
		}
		select {
		case dispatch <- struct{}{}:
		case <-jr.ctx.Done():
			<-held
			return
		}
		msg, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			<-dispatch
			<-held
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
				return // the job finished
			}
			if !errors.Is(err, jetstream.ErrNoMessages) && jr.ctx.Err() == nil {
				jr.log().Debug("fetch work", "err", err)
				select {
				case <-jr.ctx.Done():
				case <-time.After(200 * time.Millisecond):
				}
			}
			continue
		}
		inflight.Add(1)
		started := sync.OnceFunc(func() { <-dispatch })
		go func() {
			defer inflight.Done()
			defer func() { <-held }()
			defer started()
			jr.handle(msg, started)
		}()
	}
}

// engine is the transfer engine of the job's opened stores.
func (jr *jobRun) engine() *transfer.Engine {
	w := jr.w
	return transfer.New(jr.src, jr.dst, transfer.Options{
		PartSize:     jr.spec.PartSize,
		SSE:          jr.spec.SSE,
		SSEKMSKeyID:  jr.spec.SSEKMSKeyID,
		StorageClass: jr.spec.StorageClass,
		Limiter:      w.opts.Limiter,
		StallTimeout: w.opts.StallTimeout,
		Attempts:     1, // the queue retries, with its own attempt count

		CompareChecksum: jr.spec.Compare == plan.CompareChecksum,
		Resumer:         &kvResumer{kv: w.conn.Uploads, job: jr.spec.ID},

		RequireVerified: jr.spec.RequireVerified,
		OnRetry:         func(side, reason string) { w.opts.Observer.Retry(jr.spec.ID, side, reason) },
	})
}

// handle processes one work message: it ends with exactly one Final on
// the results stream naming every child it created (or, when nothing could
// be published, a Nak so that the message is handled again). It calls
// started once the message's objects are all handed to the pool, or its
// listing has a listing slot: the job loop then fetches more work.
func (jr *jobRun) handle(msg jetstream.Msg, started func()) {
	w := jr.w
	// Verified before anything else: work no trusted key signed for this
	// job never touches a store, and gets no Final (no trusted parent
	// named it, so the ledger does not wait for it; a Final would be an
	// orphan).
	if err := w.conn.Trust.Verify(msg.Subject(), jr.spec.ID, msg.Data(), msg.Headers()); err != nil {
		jr.refuse(msg, err)
		return
	}
	work, err := job.DecodeWork(msg.Data())
	if err == nil && work.Job != jr.spec.ID {
		err = fmt.Errorf("work message for job %q on job %s's queue", work.Job, jr.spec.ID)
	}
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
	if work.Kind == job.KindDelete {
		if !jr.spec.Delete {
			jr.log().Error("delete work on a job without --delete: refused", "work", work.ID)
			_ = msg.TermWithReason("delete work on a job without --delete")
			return
		}
		if !jr.deletesReleased() {
			// The coordinator records the release before it queues deletes:
			// this worker has not seen that record yet.
			_ = msg.NakWithDelay(2 * time.Second)
			return
		}
	}
	if jr.openErr != nil {
		if jr.deadLetter(work) {
			if err := msg.DoubleAck(w.workCtx); err != nil {
				jr.log().Warn("ack", "err", err)
			}
		} else {
			_ = msg.Nak()
		}
		return
	}
	md, _ := msg.Metadata()
	redelivered := md != nil && (md.NumDelivered > 1 || jr.queuedBeforeResume(md.Timestamp, md.Sequence.Stream))
	// A redelivered message whose Final the coordinator applied needs
	// nothing more (asked only on redelivery: a first delivery has none).
	if redelivered {
		if done, err := job.WorkFinished(w.workCtx, w.conn.Ledger, work.Job, work.ID); err == nil && done {
			_ = msg.Ack()
			return
		}
	}

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

	var ok bool
	switch work.Kind {
	case job.KindList:
		select {
		case jr.listing <- struct{}{}:
		case <-jr.ctx.Done():
			// Paused or draining before it started: handled again later.
			_ = msg.Nak()
			return
		}
		started()
		ok = jr.handleList(work)
		<-jr.listing
	case job.KindCopy:
		ok = jr.handleObjects(work, redelivered, false, started)
	case job.KindDelete:
		ok = jr.handleObjects(work, redelivered, true, started)
	case job.KindPack:
		ok = jr.handlePack(work, redelivered, started)
	case job.KindUnpack:
		var wait bool
		ok, wait = jr.handleUnpack(work, redelivered, started)
		if wait {
			// The pack item's Final is not applied yet: handled again
			// once it is (not an attempt).
			_ = msg.NakWithDelay(time.Second)
			return
		}
	default:
		_ = msg.TermWithReason("unknown work kind " + work.Kind)
		return
	}
	if !ok {
		// Nothing could be published: handle the whole message again.
		_ = msg.Nak()
		return
	}
	if err := msg.DoubleAck(w.workCtx); err != nil {
		jr.log().Warn("ack", "err", err)
	}
}

// publisher publishes with de-duplication IDs and waits for every ack. A
// publish whose ack fails (a cluster electing a new leader) is sent again,
// with the same ID, until it is stored or publishRetry has passed: a
// handling's Final may name only children that are stored, and a child that
// was stored must be named, so "maybe stored" is not an outcome it can
// leave behind.
type publisher struct {
	conn    *queue.Conn
	job     string
	pending []pubMsg
	err     error
}

type pubMsg struct {
	msg *nats.Msg // signed by this worker
	id  string
	ack jetstream.PubAckFuture
}

// publishRetry bounds how long a publisher keeps resending one message.
const publishRetry = 2 * time.Minute

func (p *publisher) publish(subject string, v any, msgID string) {
	if p.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		p.err = err
		return
	}
	m := pubMsg{msg: p.conn.SignedMsg(subject, p.job, b), id: msgID}
	m.ack, _ = p.conn.JS.PublishMsgAsync(m.msg, jetstream.WithMsgID(msgID))
	p.pending = append(p.pending, m)
}

// wait returns once every message published so far is stored.
func (p *publisher) wait(ctx context.Context) error {
	if p.err != nil {
		return p.err
	}
	for _, m := range p.pending {
		if m.ack != nil {
			// An ack lost with a node must not block for ever: after the
			// timeout the message is resent (its ID makes that safe).
			t := time.NewTimer(2 * queue.PublishAckTimeout)
			select {
			case <-m.ack.Ok():
				t.Stop()
				continue
			case <-m.ack.Err():
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
			t.Stop()
		}
		if err := p.resend(ctx, m); err != nil {
			p.err = err
			return err
		}
	}
	p.pending = p.pending[:0]
	return nil
}

func (p *publisher) resend(ctx context.Context, m pubMsg) error {
	deadline := time.Now().Add(publishRetry)
	delay := 100 * time.Millisecond
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := p.conn.JS.PublishMsg(pctx, m.msg, jetstream.WithMsgID(m.id))
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("publish to %s: %w", m.msg.Subject, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("publish to %s: %w", m.msg.Subject, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// emitter publishes what a listing task produces and remembers the
// children it created for the task's Final.
type emitter struct {
	jr       *jobRun
	work     job.Work
	pub      *publisher
	children []job.Child
}

func (e *emitter) Copy(ctx context.Context, batch []plan.Action) error {
	objs := make([]job.Obj, 0, len(batch))
	var packs []job.Obj
	for _, a := range batch {
		o := job.ObjFromAction(a)
		if packable(e.jr.spec.Pack, o) {
			packs = append(packs, o)
			continue
		}
		objs = append(objs, o)
	}
	if len(packs) > 0 {
		id := job.ContentID(e.work.Job, "pack", packs)
		w := job.Work{V: job.WireVersion, Job: e.work.Job, Kind: job.KindPack, ID: id, Attempt: 1, Objs: packs}
		e.pub.publish(queue.WorkSubject(w.Job, w.Kind), w, id)
		e.children = append(e.children, job.Child{ID: id, Kind: job.KindPack})
	}
	if len(objs) == 0 {
		return e.flushIfLarge(ctx)
	}
	id := job.ContentID(e.work.Job, "copy", objs)
	w := job.Work{V: job.WireVersion, Job: e.work.Job, Kind: job.KindCopy, ID: id, Attempt: 1, Objs: objs}
	e.pub.publish(queue.WorkSubject(w.Job, w.Kind), w, id)
	e.children = append(e.children, job.Child{ID: id, Kind: job.KindCopy})
	return e.flushIfLarge(ctx)
}

// Delete holds planned deletes on the deletes stream: the coordinator
// queues them once the whole listing is complete.
func (e *emitter) Delete(ctx context.Context, batch []store.Object) error {
	objs := make([]job.Obj, len(batch))
	for i, d := range batch {
		objs[i] = job.ObjFromObject(d)
	}
	id := job.ContentID(e.work.Job, "delete", objs)
	w := job.Work{V: job.WireVersion, Job: e.work.Job, Kind: job.KindDelete, ID: id, Attempt: 1, Objs: objs}
	e.pub.publish(queue.DeleteSubject(w.Job), w, id)
	return e.flushIfLarge(ctx)
}

// Skipped publishes the objects the plan skipped as a skip record of its
// own (counted and audited when the coordinator applies it).
func (e *emitter) Skipped(ctx context.Context, batch []store.Object) error {
	objs := make([]job.Obj, len(batch))
	for i, o := range batch {
		objs[i] = job.ObjFromObject(o)
	}
	if log := e.jr.log(); log.Enabled(ctx, e.jr.objectLevel()) {
		for _, o := range batch {
			log.Log(ctx, e.jr.objectLevel(), "object", "key", o.Key, "size", o.Size, "outcome", job.OutcomeSkipped, "duration", 0.0, "method", "")
		}
	}
	id := job.ContentID(e.work.Job, "skip", objs)
	f := job.Final{V: job.WireVersion, Job: e.work.Job, Kind: job.KindSkip, Work: id, Worker: e.jr.w.opts.Name, Skipped: objs, Time: time.Now().UTC()}
	e.pub.publish(queue.ResultSubject(e.work.Job), f, id)
	e.children = append(e.children, job.Child{ID: id, Kind: job.KindSkip})
	return e.flushIfLarge(ctx)
}

func (e *emitter) Task(ctx context.Context, t lister.Task) error {
	id := job.ContentID(e.work.Job, "task", t)
	w := job.Work{V: job.WireVersion, Job: e.work.Job, Kind: job.KindList, ID: id, Attempt: 1, Task: &t}
	e.pub.publish(queue.WorkSubject(w.Job, w.Kind), w, id)
	e.children = append(e.children, job.Child{ID: id, Kind: job.KindList})
	return e.flushIfLarge(ctx)
}

// Sync waits until everything emitted is stored (a lister checkpoint).
func (e *emitter) Sync(ctx context.Context) error { return e.pub.wait(ctx) }

func (e *emitter) flushIfLarge(ctx context.Context) error {
	if len(e.pub.pending) >= 256 {
		return e.pub.wait(ctx)
	}
	return e.pub.err
}

// publishTimeout bounds publishing a Final after in-flight work was
// cancelled (its context is gone by then).
const publishTimeout = 30 * time.Second

func (jr *jobRun) handleList(work job.Work) bool {
	w := jr.w
	ctx := w.workCtx
	if work.Task == nil {
		work.Task = &lister.Task{}
	}
	pub := &publisher{conn: w.conn, job: work.Job}
	em := &emitter{jr: jr, work: work, pub: pub}
	batchObjects, batchBytes := w.opts.BatchObjects, w.opts.BatchBytes
	if p := jr.spec.Pack; p != nil {
		// A batch of small objects becomes one bundle.
		batchObjects = w.opts.PackBatchObjects
		if batchBytes <= 0 || batchBytes > p.BundleSize {
			batchBytes = p.BundleSize
		}
	}
	stats, err := lister.Run(ctx, jr.src, jr.dst, *work.Task, lister.Options{
		Plan:         plan.Options{Filter: jr.flt, Delete: jr.spec.Delete, DstKeepsMTime: jr.spec.DstKeepsMTime, Compare: jr.spec.Compare},
		BatchObjects: batchObjects,
		BatchBytes:   batchBytes,
		SplitKeys:    w.opts.SplitKeys,
	}, em)
	var stop *lister.Stopped
	if err != nil && !errors.As(err, &stop) {
		return false // nothing consistent to report: handle it again
	}
	selected := stats.Copy + stats.Skipped
	res := &job.TaskResult{
		Listed: selected, ListedBytes: stats.CopyBytes + stats.SkippedBytes, Excluded: stats.SrcListed - selected,
		DstListed: stats.DstListed, Enqueued: stats.Copy, EnqueuedSize: stats.CopyBytes, Deletes: stats.Deletes,
	}
	fin := job.Final{V: job.WireVersion, Job: work.Job, Kind: job.KindList, Work: work.ID, Worker: w.opts.Name, Attempt: work.Attempt, Task: res}
	pctx := ctx
	if stop != nil {
		rest := job.Work{V: job.WireVersion, Job: work.Job, Kind: job.KindList, Attempt: work.Attempt, Task: &stop.Rest}
		cut := ctx.Err() != nil || jr.ctx.Err() != nil || (errors.Is(err, store.ErrAccess) && jr.credentialsRevoked(ctx))
		switch {
		case stop.OutOfOrder:
			jr.log().Warn("the server's delimiter listing is out of order: listing this range without a delimiter", "prefix", stop.Rest.Prefix, "err", logtext.OneLine(stop.Err.Error()))
			rest.ID, res.Flat = job.ContentID(work.ID, "flat"), true
		case cut:
			rest.ID = job.ContentID(work.ID, "rest")
		case work.Attempt < jr.spec.MaxAttempts && !store.Permanent(err):
			jr.log().Warn("listing task failed, will retry", append(jr.listErrAttrs(stop.Rest.Prefix, err), "attempt", work.Attempt)...)
			rest.ID, rest.Attempt = job.ContentID(work.ID, "retry"), work.Attempt+1
			rest.NotBefore = time.Now().Add(backoff(w.opts.RetryBase, work.Attempt)).UnixMilli()
			rest.Errs = []string{logtext.OneLine(err.Error())}
		default:
			jr.log().Error("listing task failed", append(jr.listErrAttrs(stop.Rest.Prefix, err), "attempts", work.Attempt)...)
			pub.publish(queue.DLQSubject(work.Job), job.DLQEntry{V: job.WireVersion, Job: work.Job, Kind: job.KindList, Task: &stop.Rest, Error: logtext.OneLine(err.Error()), Attempts: work.Attempt, Time: time.Now().UTC()}, job.ContentID(work.ID, "dlq"))
			res.Failed, res.Error = true, logtext.OneLine(err.Error())
		}
		if rest.ID != "" {
			pub.publish(queue.WorkSubject(work.Job, job.KindList), rest, rest.ID)
			em.children = append(em.children, job.Child{ID: rest.ID, Kind: job.KindList})
		}
		if cut {
			var cancel context.CancelFunc
			pctx, cancel = context.WithTimeout(context.Background(), publishTimeout)
			defer cancel()
		}
	}
	// Children first: the Final names only what is stored.
	if err := pub.wait(pctx); err != nil {
		jr.log().Warn("publish listing output", "err", err)
		return false
	}
	fin.Children = em.children
	fin.Time = time.Now().UTC()
	pub.publish(queue.ResultSubject(work.Job), fin, job.ContentID(work.ID, "final"))
	if err := pub.wait(pctx); err != nil {
		jr.log().Warn("publish listing result", "err", err)
		return false
	}
	return true
}

// handleObjects runs a copy or delete batch and publishes its Final: the
// outcomes of the objects that finished, a retry batch (next attempt) for
// those that failed and may be retried, and a rest batch (same attempt)
// for those a drain, pause or abort kept from finishing.
//
// started is called once every object is handed to the pool (or put in the
// rest batch): from then on the message holds only the pool goroutines of
// its unfinished objects.
func (jr *jobRun) handleObjects(work job.Work, redelivered, del bool, started func()) bool {
	w := jr.w
	ctx := jr.workCtx
	pub := &publisher{conn: w.conn, job: work.Job}
	var mu sync.Mutex
	var outcomes []job.Result
	var retry, rest []job.Obj
	var retryErrs []string
	var wg sync.WaitGroup
	var listed map[string]store.Object
	listedOK := false
	if redelivered && !del {
		listed, listedOK = jr.listBatch(ctx, work.Objs)
	}
	for i, o := range work.Objs {
		// A pause or drain (jr.ctx) lets started objects finish but starts
		// no more: they go to the rest batch.
		if jr.ctx.Err() != nil {
			mu.Lock()
			rest = append(rest, work.Objs[i:]...)
			mu.Unlock()
			break
		}
		wg.Add(1)
		task := func() {
			defer wg.Done()
			var res job.Result
			var err error
			w.opts.Observer.ObjectStarted(work.Job)
			if del {
				res, err = jr.deleteOne(ctx, o, work)
			} else {
				check := redelivered
				if d, present := listed[o.K]; listedOK && !o.Chk {
					// The batch's listing answers for most objects:
					// absent, or another size, is copied; the same
					// size and source ETag is up to date (as the
					// planner judges); anything else is checked.
					switch {
					case !present || d.Size != o.S:
						check = false
					case o.E != "" && d.ETag == o.E:
						res, err = jr.skipListed(o, work)
					}
				}
				if res.Outcome == "" {
					res, err = jr.copyOne(ctx, o, work, check)
				}
			}
			jr.objectDone(res, err)
			tripped := jr.breakerRecord(ctx, err, del) && err != nil
			revoked := err != nil && errors.Is(err, store.ErrAccess) && jr.credentialsRevoked(ctx)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case tripped || revoked || (err != nil && ctx.Err() != nil):
				// The endpoint fails everything (the circuit breaker
				// paused the job), refuses everything (the job waits for
				// valid credentials) or the work was cancelled: not an
				// attempt.
				rest = append(rest, o)
			case err != nil && !store.Permanent(err) && !errors.Is(err, store.ErrUnsafeKey) && !errors.Is(err, transfer.ErrUnverified) && work.Attempt < jr.spec.MaxAttempts:
				retry = append(retry, o)
				retryErrs = append(retryErrs, logtext.OneLine(err.Error()))
			default:
				if err != nil && res.Outcome != job.OutcomeUnsafe {
					pub.publish(queue.DLQSubject(work.Job), job.DLQEntry{V: job.WireVersion, Job: work.Job, Kind: work.Kind, Obj: &o, Error: logtext.OneLine(err.Error()), Attempts: work.Attempt, Time: time.Now().UTC()}, job.ContentID(work.ID, "dlq", o.K))
				}
				outcomes = append(outcomes, res)
			}
		}
		select {
		case w.tasks <- task:
			continue
		case <-jr.ctx.Done():
		}
		wg.Done()
		mu.Lock()
		rest = append(rest, work.Objs[i:]...)
		mu.Unlock()
		break
	}
	started()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if jr.brk.isTripped() {
		// The objects of this batch that failed while the breaker was
		// tripping are tried again after the resume, at the same attempt.
		rest = append(rest, retry...)
		retry, retryErrs = nil, nil
	}
	fin := job.Final{V: job.WireVersion, Job: work.Job, Kind: work.Kind, Work: work.ID, Worker: w.opts.Name, Attempt: work.Attempt, Outcomes: outcomes}
	if len(retry) > 0 {
		r := job.Work{V: job.WireVersion, Job: work.Job, Kind: work.Kind, Attempt: work.Attempt + 1, Objs: retry, Errs: retryErrs,
			NotBefore: time.Now().Add(backoff(w.opts.RetryBase, work.Attempt)).UnixMilli()}
		r.ID = job.ContentID(work.ID, "retry")
		jr.log().Warn("objects failed, will retry", "count", len(retry), "attempt", work.Attempt, "first_error", retryErrs[0])
		for range retry {
			w.opts.Observer.Retry(work.Job, "any", "requeued")
		}
		pub.publish(queue.WorkSubject(work.Job, work.Kind), r, r.ID)
		fin.Children = append(fin.Children, job.Child{ID: r.ID, Kind: work.Kind})
	}
	pctx := ctx
	if len(rest) > 0 {
		r := job.Work{V: job.WireVersion, Job: work.Job, Kind: work.Kind, Attempt: work.Attempt, Objs: rest}
		r.ID = job.ContentID(work.ID, "rest")
		pub.publish(queue.WorkSubject(work.Job, work.Kind), r, r.ID)
		fin.Children = append(fin.Children, job.Child{ID: r.ID, Kind: work.Kind})
	}
	if len(rest) > 0 || ctx.Err() != nil {
		// The work was cancelled (a drain, an abort, the breaker): what
		// finished is still published.
		var cancel context.CancelFunc
		pctx, cancel = context.WithTimeout(context.Background(), publishTimeout)
		defer cancel()
	}
	if err := pub.wait(pctx); err != nil {
		jr.log().Warn("publish batch output", "err", err)
		return false
	}
	fin.Time = time.Now().UTC()
	pub.publish(queue.ResultSubject(work.Job), fin, job.ContentID(work.ID, "final"))
	if err := pub.wait(pctx); err != nil {
		jr.log().Warn("publish results", "err", err)
		return false
	}
	return true
}

// maxListExtra bounds the destination keys outside the batch that the
// range listing of a redelivered batch may pass before it gives up (its
// objects are then checked one by one).
const maxListExtra = 1000

// listBatch lists the destination over the key range of a redelivered copy
// batch: one request for a batch whose range holds little else, where
// checking each object would cost one. It returns the batch's keys found
// there; ok is false when the listing failed or passed more than
// maxListExtra other keys.
func (jr *jobRun) listBatch(ctx context.Context, objs []job.Obj) (found map[string]store.Object, ok bool) {
	if len(objs) == 0 {
		return nil, false
	}
	want := make(map[string]bool, len(objs))
	lo, hi := objs[0].K, objs[0].K
	for _, o := range objs {
		want[o.K] = true
		lo, hi = min(lo, o.K), max(hi, o.K)
	}
	opts := store.ListOptions{Prefix: commonPrefix(lo, hi)}
	if n := len(lo); n > len(opts.Prefix) && lo[n-1] > 0 && lo[n-1] < utf8.RuneSelf {
		// Just below lo: the listing starts near the batch's first key.
		opts.StartAfter = lo[:n-1] + string(rune(lo[n-1]-1))
	}
	found = make(map[string]store.Object, len(objs))
	extra := 0
	for obj, err := range jr.dst.List(ctx, opts) {
		if err != nil {
			jr.log().Debug("listing a redelivered batch's range failed: its objects are checked one by one", "err", err)
			return nil, false
		}
		if obj.Key > hi {
			break
		}
		if want[obj.Key] {
			found[obj.Key] = obj
			continue
		}
		if extra++; extra > maxListExtra {
			return nil, false
		}
	}
	return found, true
}

func commonPrefix(a, b string) string {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return a[:n]
}

// skipListed is the result of an object of a redelivered batch that the
// destination listing shows up to date.
func (jr *jobRun) skipListed(o job.Obj, work job.Work) (job.Result, error) {
	now := time.Now().UTC()
	return job.Result{Kind: "object", Key: o.K, Size: o.S, ListedSize: o.S, Worker: jr.w.opts.Name,
		Attempts: work.Attempt, SrcETag: o.E, Outcome: job.OutcomeSkipped, Started: now, Ended: now}, nil
}

func (jr *jobRun) copyOne(ctx context.Context, o job.Obj, work job.Work, redelivered bool) (job.Result, error) {
	w := jr.w
	src := o.Src()
	res := job.Result{Kind: "object", Key: o.K, Size: o.S, ListedSize: o.S, Worker: w.opts.Name,
		Attempts: work.Attempt, SrcETag: o.E, Started: time.Now().UTC()}
	finish := func(outcome string, err error) (job.Result, error) {
		res.Outcome, res.Ended = outcome, time.Now().UTC()
		if err != nil {
			res.Error = logtext.OneLine(err.Error())
			res.Side = errSide(err, false)
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
			res.SrcMissing = srcMissing(err)
			return finish(job.OutcomeFailed, err)
		}
		if ok {
			return finish(job.OutcomeSkipped, nil)
		}
	}
	r, err := jr.eng.Copy(ctx, src, o.K)
	res.Attempts = work.Attempt
	// Listed, then not found: the listing cannot be trusted (a server
	// that lists what it cannot serve, or a concurrent delete).
	res.SrcMissing = srcMissing(err)
	if err != nil {
		if errors.Is(err, store.ErrUnsafeKey) || errors.Is(err, store.ErrInvalidKey) {
			return finish(job.OutcomeUnsafe, err)
		}
		return finish(job.OutcomeFailed, err)
	}
	w.opts.Stats.Add(r.Size)
	res.Size, res.Method, res.CRC32C, res.MD5, res.Verified = r.Size, r.Method, r.CRC32C, r.MD5Verified, r.Verified
	if res.Verified == "" {
		res.Verified = job.Unverified
	}
	res.SrcETag, res.SrcVersion, res.DstETag, res.DstVersion = r.SrcETag, r.SrcVersionID, r.DstETag, r.DstVersionID
	res.ProvenanceLost = r.ProvenanceLost
	return finish(job.OutcomeCopied, nil)
}

func (jr *jobRun) deleteOne(ctx context.Context, o job.Obj, work job.Work) (job.Result, error) {
	res := job.Result{Kind: "delete", Key: o.K, Size: o.S, Worker: jr.w.opts.Name,
		Attempts: work.Attempt, DstETag: o.E, Started: time.Now().UTC()}
	err := jr.dst.Delete(ctx, o.K)
	res.Ended = time.Now().UTC()
	if err != nil {
		res.Outcome, res.Error, res.Side = job.OutcomeDelFail, logtext.OneLine(err.Error()), "destination"
		return res, err
	}
	res.Outcome = job.OutcomeDeleted
	return res, nil
}

// backoff is the delay before attempt n+1: exponential from base, capped
// at 60 times base, jittered.
func backoff(base time.Duration, n int) time.Duration {
	return bo.Delay(base, 60*base, n)
}

// objectDone reports one finished object to the observer and the log: one
// line per object (info with Options.LogObjects, else debug), and a
// warning naming the key, the side and its endpoint when it failed.
func (jr *jobRun) objectDone(res job.Result, err error) {
	d := res.Ended.Sub(res.Started)
	outcome := res.Outcome
	if err != nil && errors.Is(err, context.Canceled) {
		outcome = "cancelled"
	}
	jr.w.opts.Observer.ObjectDone(jr.spec.ID, outcome, res.Size, d)
	log := jr.log()
	if err != nil {
		side, sd := errSide(err, res.Kind == "delete"), jr.spec.Dst
		if side == "source" {
			sd = jr.spec.Src
		}
		log.Warn("object "+outcome, "key", res.Key, "size", res.Size, "outcome", outcome, "duration", d.Seconds(),
			"attempt", res.Attempts, "side", side, "location", sd.Location, "endpoint", endpointName(sd), "err", logtext.OneLine(err.Error()))
		return
	}
	log.Log(context.Background(), jr.objectLevel(), "object", "key", res.Key, "size", res.Size, "outcome", outcome, "duration", d.Seconds(), "method", res.Method)
}

// objectLevel is the level of per-object lines.
func (jr *jobRun) objectLevel() slog.Level {
	if jr.w.opts.LogObjects {
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

// errSide tells which side a copy's or delete's error came from: the
// source for the steps that read or stat it, else the destination.
func errSide(err error, del bool) string {
	var oe *transfer.ObjectError
	if !del && errors.As(err, &oe) && strings.Contains(oe.Op, "source") {
		return "source"
	}
	return "destination"
}

// srcMissing reports whether err says that the source does not have the
// object: a source step's "not found", or a server-side copy's (which
// reads the source).
func srcMissing(err error) bool {
	var oe *transfer.ObjectError
	return errors.Is(err, store.ErrNotExist) && errors.As(err, &oe) &&
		(strings.Contains(oe.Op, "source") || oe.Op == "server copy")
}

// endpointName is a side's endpoint for logs (job.EndpointName).
func endpointName(s job.Side) string { return job.EndpointName(s) }

// listErrAttrs are the log attributes of a failed listing task: the
// prefix, the side the error came from with its location and endpoint
// (both sides when the error does not say), and the error.
func (jr *jobRun) listErrAttrs(prefix string, err error) []any {
	attrs := []any{"prefix", prefix}
	switch side := lister.ErrSide(err); side {
	case lister.SideSource, lister.SideDestination:
		sd := jr.spec.Src
		if side == lister.SideDestination {
			sd = jr.spec.Dst
		}
		attrs = append(attrs, "side", side, "location", sd.Location, "endpoint", endpointName(sd))
	default:
		attrs = append(attrs, "side", "source and destination", "endpoint", endpointName(jr.spec.Src)+" and "+endpointName(jr.spec.Dst))
	}
	return append(attrs, "err", logtext.OneLine(err.Error()))
}

// deadLetter fails a work message of a job whose stores this worker will
// not open (jr.openErr): a listing task, or each object of a batch, goes to
// the dead-letter queue with the reason, and the message's Final reports
// the failure so that the job ends. It reports whether everything was
// published.
func (jr *jobRun) deadLetter(work job.Work) bool {
	w := jr.w
	reason := logtext.OneLine(jr.openErr.Error())
	pub := &publisher{conn: w.conn, job: work.Job}
	now := time.Now().UTC()
	fin := job.Final{V: job.WireVersion, Job: work.Job, Kind: work.Kind, Work: work.ID, Worker: w.opts.Name, Attempt: work.Attempt}
	switch work.Kind {
	case job.KindList:
		task := work.Task
		if task == nil {
			task = &lister.Task{}
		}
		pub.publish(queue.DLQSubject(work.Job), job.DLQEntry{V: job.WireVersion, Job: work.Job, Kind: job.KindList, Task: task, Error: reason, Attempts: work.Attempt, Time: now}, job.ContentID(work.ID, "dlq"))
		fin.Task = &job.TaskResult{Failed: true, Error: reason}
	default:
		outcome, kind := job.OutcomeFailed, "object"
		if work.Kind == job.KindDelete {
			outcome, kind = job.OutcomeDelFail, "delete"
		}
		for _, o := range work.Objs {
			pub.publish(queue.DLQSubject(work.Job), job.DLQEntry{V: job.WireVersion, Job: work.Job, Kind: work.Kind, Obj: &o, Error: reason, Attempts: work.Attempt, Time: now}, job.ContentID(work.ID, "dlq", o.K))
			res := job.Result{Kind: kind, Key: o.K, Size: o.S, Worker: w.opts.Name, Attempts: work.Attempt, Outcome: outcome, Error: reason, Started: now, Ended: now}
			if kind == "object" {
				res.ListedSize, res.SrcETag = o.S, o.E
			} else {
				res.DstETag = o.E
			}
			fin.Outcomes = append(fin.Outcomes, res)
		}
	}
	if err := pub.wait(w.workCtx); err != nil {
		jr.log().Warn("publish dead letters", "err", err)
		return false
	}
	fin.Time = time.Now().UTC()
	pub.publish(queue.ResultSubject(work.Job), fin, job.ContentID(work.ID, "final"))
	if err := pub.wait(w.workCtx); err != nil {
		jr.log().Warn("publish results", "err", err)
		return false
	}
	return true
}
