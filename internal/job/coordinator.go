package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-dev/ferry/internal/lister"
	"github.com/ferry-dev/ferry/internal/logtext"
	"github.com/ferry-dev/ferry/internal/plan"
	"github.com/ferry-dev/ferry/internal/queue"
)

// AckWait is how long a worker may hold a work message without a sign of
// life before it is redelivered. Workers send in-progress acks every third
// of it while they work on a message.
const AckWait = 30 * time.Second

// ErrLocked: another process coordinates the job.
var ErrLocked = errors.New("job is being run by another process")

// ErrFinished: the job already finished.
var ErrFinished = errors.New("job already finished")

// Auditor receives every object outcome of a job, in stream order, one
// line per outcome (AuditLines of the Final).
type Auditor interface {
	Record(r Result) error
	// Sync makes what was recorded durable.
	Sync() error
	// Head returns the number of lines and the hash of the last one.
	Head() (lines int64, lastHash string)
}

// AuditLines is how many audit lines a Final makes: one per object outcome.
func AuditLines(f Final) int64 { return int64(len(f.Outcomes) + len(f.Skipped)) }

// auditResults are the per-object results of a Final, as audited.
func auditResults(f Final) []Result {
	out := make([]Result, 0, AuditLines(f))
	for _, r := range f.Outcomes {
		r.V, r.Job = WireVersion, f.Job
		out = append(out, r)
	}
	for _, o := range f.Skipped {
		out = append(out, Result{V: WireVersion, Job: f.Job, Kind: "skipped", Key: o.K, Size: o.S, ListedSize: o.S,
			Outcome: OutcomeSkipped, SrcETag: o.E, Worker: f.Worker, Ended: f.Time})
	}
	return out
}

// Reconciliation is what the final reconciliation found.
type Reconciliation struct {
	// Checked counts the source keys compared with the destination.
	Checked int64
	// Gaps counts source keys missing or different at the destination
	// that the job did not already report as failed; Examples names the
	// first of them.
	Gaps     int64
	Examples []KeyError
}

// RunOptions tune a coordinator.
type RunOptions struct {
	// Log receives job-level events.
	Log *slog.Logger
	// Audit, when set, receives every object outcome.
	Audit Auditor
	// AbortUpload aborts a multipart upload the job left behind (orphans
	// recorded in the uploads bucket), called once the job finished.
	AbortUpload func(ctx context.Context, key string, state []byte) error
	// SnapshotDir, when set, receives STATE_DIR/jobs/ID.json copies of the
	// state, for `ferry job status` from another process while an embedded
	// server is locked; encrypted with SnapshotKey when set.
	SnapshotDir string
	SnapshotKey []byte
	// OnUpdate is called after each batch of results is applied.
	OnUpdate func(State)
	// Probe, when set, checks whether the job's endpoints accept their
	// credentials again ("" when they do); a job that paused itself while
	// waiting for valid credentials is resumed when it does.
	Probe func(ctx context.Context) string
	// StopWhenTripped makes Run return (with [ErrTripped], the state
	// saved, the job paused and resumable) once a worker's circuit breaker
	// paused the job, instead of waiting for a resume.
	StopWhenTripped bool
	// ControlDir, when set, is polled for control files (ID.pause,
	// ID.resume, ID.cancel) that other processes write when they cannot
	// reach an embedded server (see [RequestControl]).
	ControlDir string
	// Reconcile, when set, runs once all work finished: it lists both sides
	// again and reports source keys missing or different at the
	// destination. Any gap fails the job.
	Reconcile func(ctx context.Context, st State) (Reconciliation, error)
	// Tick is how often the coordinator saves state and checks for the
	// end while results arrive (default 250ms).
	Tick time.Duration
}

// Coordinator creates or resumes one job, tallies its results and
// finishes it. It holds nothing that grows with the number of objects.
type Coordinator struct {
	conn   *queue.Conn
	id     string
	opts   RunOptions
	ledger *ledger

	mu    sync.Mutex
	state State
	rev   uint64
	// auditSkip counts audit lines already written for results that are
	// being applied again after a crash (results after the saved LastSeq).
	auditSkip int64
	lastProbe time.Time
	// resumed: opened to resume (not just created), so messages a killed
	// process held may be waiting for redelivery.
	resumed bool
	// catchUp is a results-stream sequence the counters must include
	// before the job may end: the stream's last record when Run started,
	// and the coordinator's own release records.
	catchUp uint64
	// savedSeq is the LastSeq of the state last saved to the bucket;
	// trimmedTo the results-stream sequence the job's records were purged
	// below (see trimResults).
	savedSeq, trimmedTo uint64
	// refusedLogged: a refused record was logged in this run.
	refusedLogged bool
}

// RootID is the work ID of a job's root listing task.
func RootID(jobID string) string { return ContentID(jobID, "root") }

// Create records a new job and queues its first listing task.
func Create(ctx context.Context, conn *queue.Conn, spec Spec) (*Coordinator, error) {
	spec.V = spec.Version()
	if (spec.Src.Key == "") != (spec.Dst.Key == "") {
		return nil, fmt.Errorf("create job: a single-object job names the object at both sides (source key %q, destination key %q)", spec.Src.Key, spec.Dst.Key)
	}
	if spec.ID == "" {
		spec.ID = NewID()
	}
	if spec.Created.IsZero() {
		spec.Created = time.Now().UTC()
	}
	if spec.MaxAttempts <= 0 {
		spec.MaxAttempts = 3
	}
	now := time.Now().UTC()
	st := State{V: spec.V, Spec: spec, Status: Running, Updated: now, Started: now}
	sig, err := SignSpec(conn.Signer, spec)
	if err != nil {
		return nil, fmt.Errorf("create job %s: %w", spec.ID, err)
	}
	st.SpecSig = sig
	c := &Coordinator{conn: conn, id: spec.ID, ledger: &ledger{kv: kvLedger{conn.Ledger}, job: spec.ID}}
	root := Work{V: WireVersion, Job: spec.ID, Kind: KindList, Attempt: 1, Task: &lister.Task{Level: true}, ID: RootID(spec.ID)}
	if err := c.ledger.registerRoot(ctx, root.ID, KindList, &st.Counters); err != nil {
		return nil, fmt.Errorf("create job %s: %w", spec.ID, err)
	}
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encode job: %w", err)
	}
	rev, err := conn.Jobs.Create(ctx, spec.ID, b)
	if err != nil {
		return nil, fmt.Errorf("create job %s: %w", spec.ID, err)
	}
	c.state, c.rev = st, rev
	if err := c.ensureConsumer(ctx, false); err != nil {
		return nil, err
	}
	if err := PublishWork(ctx, conn, root, root.ID); err != nil {
		return nil, err
	}
	return c, nil
}

// Load returns a job's state.
func Load(ctx context.Context, conn *queue.Conn, id string) (State, uint64, error) {
	e, err := conn.Jobs.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return State{}, 0, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return State{}, 0, fmt.Errorf("load job %s: %w", id, err)
	}
	st, err := decodeState(e.Value())
	if err != nil {
		return State{}, 0, fmt.Errorf("job %s: %w", id, err)
	}
	return st, e.Revision(), nil
}

// List returns the states of all jobs, oldest first.
func List(ctx context.Context, conn *queue.Conn) ([]State, error) {
	lister, err := conn.Jobs.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	var out []State
	for k := range lister.Keys() {
		st, _, err := Load(ctx, conn, k)
		if err != nil {
			if errors.Is(err, ErrIncompatible) {
				out = append(out, State{Spec: Spec{ID: k}, Status: "incompatible"})
				continue
			}
			return nil, err
		}
		out = append(out, st)
	}
	sortStates(out)
	return out, nil
}

// Open prepares to resume job id.
func Open(ctx context.Context, conn *queue.Conn, id string) (*Coordinator, error) {
	st, rev, err := Load(ctx, conn, id)
	if err != nil {
		return nil, err
	}
	if st.Status.Finished() {
		return nil, fmt.Errorf("job %s: %w (%s)", id, ErrFinished, st.Status)
	}
	return &Coordinator{conn: conn, id: id, state: st, rev: rev, resumed: true, ledger: &ledger{kv: kvLedger{conn.Ledger}, job: id}}, nil
}

// ID is the job's ID.
func (c *Coordinator) ID() string { return c.id }

// State returns a copy of the current state.
func (c *Coordinator) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// ensureConsumer creates the job's work consumer. With fresh, an existing
// one is deleted first so that messages a killed process held are
// redelivered at once (only safe when no other process consumes it: an
// embedded server whose state directory this process locked).
func (c *Coordinator) ensureConsumer(ctx context.Context, fresh bool) error {
	c.mu.Lock()
	pack := c.state.Spec.Pack != nil
	c.mu.Unlock()
	type consumer struct{ name, filter string }
	// A pack-mode job's unpack work has a consumer of its own, so that
	// workers near the destination (--side destination) take only it.
	cs := []consumer{{WorkConsumer(c.id), queue.WorkFilter(c.id)}}
	if pack {
		cs = []consumer{{WorkConsumer(c.id), ""}, {UnpackConsumer(c.id), queue.WorkSubject(c.id, KindUnpack)}}
	}
	for _, cc := range cs {
		if fresh {
			err := c.conn.JS.DeleteConsumer(ctx, queue.StreamWork, cc.name)
			if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				return fmt.Errorf("reset consumer %s: %w", cc.name, err)
			}
		}
		cfg := jetstream.ConsumerConfig{
			Durable:       cc.name,
			FilterSubject: cc.filter,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       AckWait,
			MaxDeliver:    -1,
			MaxAckPending: 20000,
		}
		if cc.filter == "" {
			cfg.FilterSubjects = SourceSideSubjects(c.id)
		}
		if _, err := c.conn.JS.CreateOrUpdateConsumer(ctx, queue.StreamWork, cfg); err != nil {
			return fmt.Errorf("create consumer %s: %w", cc.name, err)
		}
	}
	return nil
}

// deliveredBelow returns one above the highest work-stream sequence the
// job's consumers delivered (its work consumer and, in pack mode, its
// unpack consumer), read before a resume resets them: no message above was
// ever given to a worker. When a consumer cannot be read it returns the
// largest sequence: every message may have been delivered.
func (c *Coordinator) deliveredBelow(ctx context.Context) uint64 {
	var below uint64
	for i, name := range []string{WorkConsumer(c.id), UnpackConsumer(c.id)} {
		cons, err := c.conn.JS.Consumer(ctx, queue.StreamWork, name)
		if i > 0 && errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue // not a pack-mode job, or no unpack work yet
		}
		if err != nil {
			return math.MaxUint64
		}
		below = max(below, cons.CachedInfo().Delivered.Stream+1)
	}
	return below
}

// SourceSideSubjects are the work subjects of a pack-mode job that its
// work consumer delivers: everything but unpack work.
func SourceSideSubjects(id string) []string {
	return []string{queue.WorkSubject(id, KindList), queue.WorkSubject(id, KindCopy),
		queue.WorkSubject(id, KindDelete), queue.WorkSubject(id, KindPack)}
}

// UnpackConsumer names the durable consumer of a pack-mode job's unpack
// work.
func UnpackConsumer(id string) string { return "unpack-" + id }

// WorkConsumer names the durable consumer of a job's work.
func WorkConsumer(id string) string { return "work-" + id }

// PublishWork puts w on the work queue, signed by this process and
// de-duplicated by msgID.
func PublishWork(ctx context.Context, conn *queue.Conn, w Work, msgID string) error {
	w.V = WireVersion
	b, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("encode work: %w", err)
	}
	if _, err := conn.Publish(ctx, queue.WorkSubject(w.Job, w.Kind), w.Job, b, msgID); err != nil {
		return fmt.Errorf("queue %s work for job %s: %w", w.Kind, w.Job, err)
	}
	return nil
}

// publishFinal puts a record on the results stream and returns its
// sequence.
func publishFinal(ctx context.Context, conn *queue.Conn, f Final) (uint64, error) {
	f.V = WireVersion
	b, err := json.Marshal(f)
	if err != nil {
		return 0, fmt.Errorf("encode result: %w", err)
	}
	ack, err := conn.Publish(ctx, queue.ResultSubject(f.Job), f.Job, b, ContentID(f.Work, "final"))
	if err != nil {
		return 0, fmt.Errorf("record %s for job %s: %w", f.Kind, f.Job, err)
	}
	return ack.Sequence, nil
}

// save writes the state to the bucket (compare-and-set on the revision,
// re-reading status changes made by pause/cancel) and the snapshot file.
func (c *Coordinator) save(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.opts.Audit; a != nil {
		if err := a.Sync(); err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
		lines, last := a.Head()
		c.state.AuditLines, c.state.AuditHash = lines-c.auditSkip, last
	}
	for range 5 {
		c.state.Updated = time.Now().UTC()
		b, err := json.Marshal(c.state)
		if err != nil {
			return fmt.Errorf("encode job: %w", err)
		}
		rev, err := c.conn.Jobs.Update(ctx, c.id, b, c.rev)
		if err == nil {
			c.rev = rev
			c.writeSnapshot(b)
			c.savedSeq = c.state.LastSeq
			return nil
		}
		// Someone else (pause, cancel) changed it: take their status.
		cur, crev, lerr := Load(ctx, c.conn, c.id)
		if lerr != nil {
			return fmt.Errorf("save job %s: %w", c.id, err)
		}
		if !c.state.Status.Finished() {
			c.state.Status, c.state.Message = cur.Status, cur.Message
		}
		c.rev = crev
	}
	return fmt.Errorf("save job %s: too many concurrent updates", c.id)
}

// Run coordinates the job until it finishes or ctx ends: it takes the
// job's lock, makes sure the job is running, applies every result through
// the ledger to the counters (and the audit log), releases sync deletes
// once the listing is complete, and finishes the job when every work item
// has finished. On ctx's end it saves the state and returns ctx's error;
// the job can be resumed.
func (c *Coordinator) Run(ctx context.Context, opts RunOptions) (State, error) {
	c.opts = opts
	if c.opts.Log == nil {
		c.opts.Log = slog.New(slog.DiscardHandler)
	}
	if c.opts.Tick <= 0 {
		c.opts.Tick = 250 * time.Millisecond
	}
	lease, release, err := c.lock(ctx)
	if err != nil {
		return c.State(), err
	}
	defer release()

	// Re-read under the lock: the state may have moved on.
	st, rev, err := Load(ctx, c.conn, c.id)
	if err != nil {
		return c.State(), err
	}
	if st.Status.Finished() {
		return st, fmt.Errorf("job %s: %w (%s)", c.id, ErrFinished, st.Status)
	}
	c.mu.Lock()
	c.state, c.rev = st, rev
	if c.state.Status == Paused {
		c.state.Status, c.state.Message = Running, ""
	}
	c.state.Started = time.Now().UTC()
	c.state.Runs++
	if a := c.opts.Audit; a != nil {
		if lines, _ := a.Head(); lines > c.state.AuditLines {
			c.auditSkip = lines - c.state.AuditLines
		}
	}
	c.mu.Unlock()
	if c.resumed {
		below := c.deliveredBelow(ctx)
		c.mu.Lock()
		c.state.CheckBelow = max(c.state.CheckBelow, below)
		c.mu.Unlock()
	}
	if err := c.ensureConsumer(ctx, c.resumed && c.conn.Embedded()); err != nil {
		return c.State(), err
	}
	// The job may not end before the counters include every record
	// already on the stream (a redrive's, say).
	if rs, err := c.conn.JS.Stream(ctx, queue.StreamResults); err == nil {
		if last, err := rs.GetLastMsgForSubject(ctx, queue.ResultSubject(c.id)); err == nil {
			c.catchUp = last.Sequence
		} else if !errors.Is(err, jetstream.ErrMsgNotFound) {
			return c.State(), fmt.Errorf("results of job %s: %w", c.id, err)
		}
	} else {
		return c.State(), fmt.Errorf("results stream: %w", err)
	}
	if err := c.save(ctx); err != nil {
		return c.State(), err
	}

	msgs := make(chan resultMsg, 1024)
	var cc jetstream.ConsumeContext
	gen := 0
	// subscribe (re)starts reading the results after the last one applied.
	// Messages of an older subscription are dropped by generation.
	subscribe := func() error {
		if cc != nil {
			cc.Stop()
		}
		gen++
		g := gen
		cons, err := c.conn.JS.OrderedConsumer(ctx, queue.StreamResults, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{queue.ResultSubject(c.id)},
			DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:    c.State().LastSeq + 1,
		})
		if err != nil {
			return fmt.Errorf("read results of job %s: %w", c.id, err)
		}
		cc, err = cons.Consume(func(m jetstream.Msg) { msgs <- resultMsg{m, g} },
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				c.opts.Log.Debug("results consumer", "job", c.id, "err", err)
			}))
		if err != nil {
			return fmt.Errorf("read results of job %s: %w", c.id, err)
		}
		return nil
	}
	if err := subscribe(); err != nil {
		return c.State(), err
	}
	defer func() {
		if cc != nil {
			cc.Stop()
		}
	}()
	applyMsg := func(rm resultMsg) error {
		if rm.gen != gen {
			return nil
		}
		md, err := rm.m.Metadata()
		if err != nil {
			return fmt.Errorf("result metadata: %w", err)
		}
		if md.Sequence.Stream <= c.State().LastSeq {
			return nil // already applied (a resubscription overlaps)
		}
		return c.applyRecord(ctx, md.Sequence.Stream, rm.m.Subject(), rm.m.Data(), rm.m.Headers())
	}
	lastMsg, lastCheck := time.Now(), time.Now()

	tick := time.NewTicker(c.opts.Tick)
	defer tick.Stop()
	dirty := true
	for {
		// Watchdog: a consumer that went quiet while the stream holds
		// results not applied (its server lost, a reset that failed) is
		// replaced.
		if time.Since(lastMsg) > resubscribeAfter && time.Since(lastCheck) > resubscribeAfter {
			lastCheck = time.Now()
			if behind, err := c.behind(ctx); err == nil && behind {
				c.opts.Log.Warn("results consumer stalled: reading again", "job", c.id, "after_seq", c.State().LastSeq)
				if err := subscribe(); err != nil {
					c.opts.Log.Warn("results consumer", "job", c.id, "err", err)
				}
			}
		}
		select {
		case <-lease.Done():
			c.interrupted()
			return c.State(), context.Cause(lease)
		case <-ctx.Done():
			c.interrupted()
			return c.State(), ctx.Err()
		case m := <-msgs:
			lastMsg = time.Now()
			if err := applyMsg(m); err != nil {
				return c.State(), err
			}
			dirty = true
			// Drain what is already buffered before saving.
			for more := true; more; {
				select {
				case m := <-msgs:
					if err := applyMsg(m); err != nil {
						return c.State(), err
					}
				default:
					more = false
				}
			}
		case <-tick.C:
			if dirty {
				if err := c.save(ctx); err != nil && ctx.Err() == nil {
					c.opts.Log.Warn("save job state", "job", c.id, "err", err)
				} else if err == nil {
					c.trimResults(ctx, false)
				}
				if c.opts.OnUpdate != nil {
					c.opts.OnUpdate(c.State())
				}
				dirty = false
			}
			c.pollControl(ctx)
			if c.adoptStatus(ctx) {
				dirty = true
			}
			// (A save may have adopted the status as well.)
			if st := c.State(); c.opts.StopWhenTripped && st.Status == Paused && strings.HasPrefix(st.Message, Tripped) {
				c.interrupted()
				if c.opts.OnUpdate != nil {
					c.opts.OnUpdate(c.State())
				}
				return c.State(), fmt.Errorf("job %s: %w: %s", c.id, ErrTripped, st.Message)
			}
			c.probeCredentials(ctx)
			done, err := c.step(ctx)
			if err != nil {
				return c.State(), err
			}
			if done {
				return c.State(), nil
			}
			if s := c.State().Status; s == Cancelled {
				return c.finish(ctx, Cancelled, "cancelled")
			}
		}
	}
}

// resubscribeAfter is how long the results consumer may stay quiet while
// results wait on the stream before the coordinator reads them again.
const resubscribeAfter = 5 * time.Second

type resultMsg struct {
	m   jetstream.Msg
	gen int
}

// behind reports whether the results stream holds a record of the job
// after the last one applied.
func (c *Coordinator) behind(ctx context.Context) (bool, error) {
	rs, err := c.conn.JS.Stream(ctx, queue.StreamResults)
	if err != nil {
		return false, err
	}
	last, err := rs.GetLastMsgForSubject(ctx, queue.ResultSubject(c.id))
	if err != nil {
		return false, err
	}
	return last.Sequence > c.State().LastSeq, nil
}

// interrupted saves the state of a run that stops before the job ended.
func (c *Coordinator) interrupted() {
	c.mu.Lock()
	c.state.Duration += time.Since(c.state.Started).Seconds()
	c.state.Started = time.Now().UTC()
	c.mu.Unlock()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = c.save(sctx)
	cancel()
}

// refuse skips the record at seq, which no trusted key signed: it is not
// applied (a forged Final could otherwise finish work that never ran, and
// end the job early), only counted, and logged once per run.
func (c *Coordinator) refuse(seq uint64, why error) {
	c.mu.Lock()
	c.state.Refused++
	c.state.LastSeq = seq
	first := !c.refusedLogged
	c.refusedLogged = true
	c.mu.Unlock()
	if first {
		c.opts.Log.Error("refused a result record: not applied (more are counted in the job's state as 'refused', not logged)", "job", c.id, "seq", seq, "reason", why)
	}
}

// apply applies one record of the results stream: through the ledger, and
// when it is the first Final of its item, to the counters and audit log.
// applyRecord applies the record found at stream sequence seq, when a key
// the process trusts signed it (else it is refused).
func (c *Coordinator) applyRecord(ctx context.Context, seq uint64, subject string, data []byte, hdr nats.Header) error {
	if err := c.conn.Trust.Verify(subject, c.id, data, hdr); err != nil {
		c.refuse(seq, err)
		return nil
	}
	f, err := DecodeFinal(data)
	if err == nil && f.Job != c.id {
		err = fmt.Errorf("record of job %q", f.Job)
	}
	if err != nil {
		c.opts.Log.Warn("skipping undecodable result", "job", c.id, "seq", seq, "err", err)
		c.mu.Lock()
		c.state.LastSeq = seq
		c.mu.Unlock()
		return nil
	}
	c.mu.Lock()
	k := c.state.Counters
	c.mu.Unlock()
	first, err := c.ledger.apply(ctx, f, seq, &k)
	if err != nil {
		return fmt.Errorf("job %s: %w", c.id, err)
	}
	if first {
		k.apply(f)
		if err := c.audit(f); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.state.Counters = k
	c.state.LastSeq = seq
	if first {
		for _, r := range f.Outcomes {
			if r.Outcome == OutcomeUnsafe && len(c.state.Unsafe) < MaxNamed {
				c.state.Unsafe = append(c.state.Unsafe, KeyError{Key: r.Key, Error: r.Error})
			}
			if r.ProvenanceLost && r.Outcome == OutcomeCopied && c.state.ProvenanceLost == "" {
				c.state.ProvenanceLost = r.Key
			}
			if r.SrcMissing && r.Outcome != OutcomeUnsafe && r.Outcome != OutcomeCopied && r.Outcome != OutcomeSkipped && len(c.state.SrcMissing) < MaxNamed {
				c.state.SrcMissing = append(c.state.SrcMissing, KeyError{Key: r.Key, Error: r.Error})
			}
		}
	}
	c.mu.Unlock()
	if first {
		for _, r := range f.Outcomes {
			switch r.Outcome {
			case OutcomeFailed, OutcomeDelFail:
				c.opts.Log.Error("object failed", c.failedAttrs(r)...)
			}
		}
		if f.Task != nil && f.Task.Failed {
			spec := c.State().Spec
			c.opts.Log.Error("listing task failed", "job", c.id, "source", spec.Src.Location, "source_endpoint", EndpointName(spec.Src),
				"destination", spec.Dst.Location, "destination_endpoint", EndpointName(spec.Dst), "err", f.Task.Error)
		}
	}
	return nil
}

func (c *Coordinator) audit(f Final) error {
	a := c.opts.Audit
	if a == nil {
		return nil
	}
	for _, r := range auditResults(f) {
		c.mu.Lock()
		skip := c.auditSkip > 0
		if skip {
			c.auditSkip--
		}
		c.mu.Unlock()
		if skip {
			continue
		}
		if err := a.Record(r); err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
	}
	return nil
}

// step decides what a running job does next, once its counters include
// everything it must wait for: release deletes when the whole listing is
// complete, and finish when every work item finished.
func (c *Coordinator) step(ctx context.Context) (bool, error) {
	st := c.State()
	if st.Status != Running || st.LastSeq < c.catchUp {
		return false, nil
	}
	k := st.Counters
	if k.WorkOpen < 0 || k.WorkPending < 0 || k.TasksOpen < 0 || k.TasksPending < 0 {
		_, err := c.finish(ctx, Failed, fmt.Sprintf("internal accounting error: %d open and %d pending work items", k.WorkOpen, k.WorkPending))
		return true, err
	}
	if k.WorkOpen == 0 && k.WorkPending > 0 {
		// Every item of the job finished (open = 0 proves it); what is
		// pending was created by nobody the job knows.
		_, err := c.finish(ctx, Failed, fmt.Sprintf("accounting: %d work item(s) finished that no listing task created; the job's counts cannot be trusted", k.WorkPending))
		return true, err
	}
	if !st.ListingComplete() {
		return false, nil
	}
	spec := st.Spec
	// Deletes go last: after the whole listing completed with no failed
	// task, every copy finished, and no listed key turned out missing.
	if spec.Delete && k.DeletesPlanned > 0 && k.TasksFailed == 0 && k.SrcMissing == 0 && k.WorkOpen == 0 &&
		!st.DeletesReleased && deleteLimit(spec, k) == nil {
		err := c.releaseDeletes(ctx)
		if err != nil && transient(err) {
			// The release is idempotent: try again at the next tick.
			c.opts.Log.Warn("release deletes", "job", c.id, "err", err)
			return false, nil
		}
		return false, err
	}
	if k.WorkOpen > 0 {
		return false, nil
	}
	status, msg := Done, ""
	switch {
	case k.TasksFailed > 0:
		status, msg = Failed, fmt.Sprintf("listing incomplete: %d task(s) failed", k.TasksFailed)
		if spec.Delete {
			msg += "; no objects were deleted"
		}
	case spec.Delete && k.DeletesPlanned > 0 && !st.DeletesReleased && k.SrcMissing > 0:
		status, msg = Failed, fmt.Sprintf("%d source key(s) were listed but then not found (%s): the source listing cannot be trusted; no objects were deleted", k.SrcMissing, namedKeys(st.SrcMissing, 10))
	case spec.Delete && k.DeletesPlanned > 0 && !st.DeletesReleased:
		status, msg = Failed, deleteLimit(spec, k).Error()
	case k.Listed != k.Copied+k.Skipped+k.Failed+k.Unsafe || k.ListedBytes != k.AccountedBytes:
		status, msg = Failed, fmt.Sprintf("accounting mismatch: %d objects (%d bytes) listed, but %d copied + %d skipped + %d failed + %d unsafe (%d bytes)",
			k.Listed, k.ListedBytes, k.Copied, k.Skipped, k.Failed, k.Unsafe, k.AccountedBytes)
	}
	if status == Done && c.opts.Reconcile != nil {
		c.opts.Log.Info("reconciling: listing both sides again", "job", c.id)
		rec, err := c.opts.Reconcile(ctx, st)
		c.mu.Lock()
		c.state.Counters.Reconciled, c.state.Counters.ReconcileGaps = rec.Checked, rec.Gaps
		c.mu.Unlock()
		switch {
		case err != nil && ctx.Err() != nil:
			return false, ctx.Err()
		case err != nil:
			status, msg = Failed, "reconciliation failed: "+logtext.OneLine(err.Error())
		case rec.Gaps > 0:
			names := make([]string, 0, len(rec.Examples))
			for _, e := range rec.Examples {
				names = append(names, fmt.Sprintf("%q (%s)", e.Key, e.Error))
			}
			status, msg = Failed, fmt.Sprintf("reconciliation: %d key(s) missing or different at the destination: %s", rec.Gaps, strings.Join(names, ", "))
			c.mu.Lock()
			c.state.Gaps = rec.Examples
			c.mu.Unlock()
		}
	}
	_, err := c.finish(ctx, status, msg)
	return true, err
}

// namedKeys quotes the first max keys of ks, and says how many more.
func namedKeys(ks []KeyError, max int) string {
	var names []string
	for i, k := range ks {
		if i == max {
			names = append(names, fmt.Sprintf("and %d more", len(ks)-max))
			break
		}
		names = append(names, strconv.Quote(k.Key))
	}
	return strings.Join(names, ", ")
}

// ErrDeleteLimit: a sync would delete more than allowed.
var ErrDeleteLimit = plan.ErrDeleteLimit

// deleteLimit checks the whole job's planned deletes against --max-delete.
func deleteLimit(spec Spec, k Counters) error {
	if spec.Force {
		return nil
	}
	return plan.CheckDeleteLimit(k.DeletesPlanned, k.DstListed, spec.MaxDelete, spec.MaxDeletePercent)
}

// releaseDeletes moves the deletes held on the deletes stream to the work
// queue, once. It records the release in the job first (workers refuse
// delete work before it), then for each batch a release record that
// registers the batch in the ledger, then the batch itself. IDs derive from
// the held message's sequence, so a release interrupted and repeated
// queues and counts nothing twice.
func (c *Coordinator) releaseDeletes(ctx context.Context) error {
	c.mu.Lock()
	c.state.DeletesReleased = true
	c.mu.Unlock()
	if err := c.save(ctx); err != nil {
		return err
	}
	subj := queue.DeleteSubject(c.id)
	stream, err := c.conn.JS.Stream(ctx, queue.StreamDeletes)
	if err != nil {
		return fmt.Errorf("deletes stream: %w", err)
	}
	last, err := stream.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		return fmt.Errorf("deletes of job %s: %w", c.id, err)
	}
	cons, err := c.conn.JS.OrderedConsumer(ctx, queue.StreamDeletes, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	if err != nil {
		return fmt.Errorf("deletes of job %s: %w", c.id, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("deletes of job %s: %w", c.id, err)
	}
	defer it.Stop()
	for {
		m, err := it.Next()
		if err != nil {
			return fmt.Errorf("deletes of job %s: %w", c.id, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return err
		}
		if err := c.conn.Trust.Verify(m.Subject(), c.id, m.Data(), m.Headers()); err != nil {
			// Not planned by a trusted lister: never released.
			c.opts.Log.Error("refused a held delete batch: not released", "job", c.id, "seq", md.Sequence.Stream, "reason", err)
			c.mu.Lock()
			c.state.Refused++
			c.mu.Unlock()
			if md.Sequence.Stream >= last.Sequence {
				return nil
			}
			continue
		}
		w, err := DecodeWork(m.Data())
		if err != nil {
			return err
		}
		w.Kind, w.Attempt = KindDelete, 1
		w.ID = ContentID(c.id, "delete", md.Sequence.Stream)
		rel := Final{Job: c.id, Kind: KindRelease, Work: ContentID(c.id, "release", md.Sequence.Stream), Root: true,
			Children: []Child{{ID: w.ID, Kind: KindDelete}}, Time: time.Now().UTC()}
		seq, err := publishFinal(ctx, c.conn, rel)
		if err != nil {
			return err
		}
		c.catchUp = max(c.catchUp, seq)
		if err := PublishWork(ctx, c.conn, w, w.ID); err != nil {
			return err
		}
		if md.Sequence.Stream >= last.Sequence {
			return nil
		}
	}
}

// finish ends the job: aborts multipart uploads it left behind, removes
// its consumer, queued work and ledger, and records the final status.
func (c *Coordinator) finish(ctx context.Context, status Status, msg string) (State, error) {
	c.abortOrphans(ctx)
	_ = c.conn.JS.DeleteConsumer(ctx, queue.StreamWork, WorkConsumer(c.id))
	_ = c.conn.JS.DeleteConsumer(ctx, queue.StreamWork, UnpackConsumer(c.id))
	if s, err := c.conn.JS.Stream(ctx, queue.StreamWork); err == nil {
		_ = s.Purge(ctx, jetstream.WithPurgeSubject(queue.WorkFilter(c.id)))
	}
	if s, err := c.conn.JS.Stream(ctx, queue.StreamDeletes); err == nil {
		_ = s.Purge(ctx, jetstream.WithPurgeSubject(queue.DeleteSubject(c.id)))
	}
	if s, err := c.conn.JS.Stream(ctx, "KV_"+queue.BucketLedger); err == nil {
		_ = s.Purge(ctx, jetstream.WithPurgeSubject("$KV."+queue.BucketLedger+"."+c.id+".>"))
	}
	now := time.Now().UTC()
	c.mu.Lock()
	c.state.Status = status
	if msg != "" {
		c.state.Error = msg
	}
	c.state.Finished = &now
	c.state.Duration += now.Sub(c.state.Started).Seconds()
	c.mu.Unlock()
	if err := c.save(ctx); err != nil {
		return c.State(), err
	}
	c.trimResults(ctx, true)
	if c.opts.OnUpdate != nil {
		c.opts.OnUpdate(c.State())
	}
	return c.State(), nil
}

// failedAttrs are the log attributes of a failed object: the key, the side
// it failed on with that side's location and endpoint, and the error.
func (c *Coordinator) failedAttrs(r Result) []any {
	attrs := []any{"job", c.id, "key", r.Key}
	spec := c.State().Spec
	side := r.Side
	if side == "" && r.Outcome == OutcomeDelFail {
		side = "destination"
	}
	switch side {
	case "source":
		attrs = append(attrs, "side", side, "location", spec.Src.Location, "endpoint", EndpointName(spec.Src))
	case "destination":
		attrs = append(attrs, "side", side, "location", spec.Dst.Location, "endpoint", EndpointName(spec.Dst))
	default: // a worker of an older version: the side is not known
		attrs = append(attrs, "source_endpoint", EndpointName(spec.Src), "destination_endpoint", EndpointName(spec.Dst))
	}
	return append(attrs, "err", r.Error, "attempts", r.Attempts)
}

// EndpointName is a side's endpoint for logs: its URL, "aws" for AWS S3,
// "local" for a directory.
func EndpointName(s Side) string {
	switch {
	case s.Endpoint != "":
		return s.Endpoint
	case strings.HasPrefix(s.Location, "s3://"):
		return "aws"
	}
	return "local"
}

// UploadKeyPrefix is the prefix of a job's keys in the uploads bucket.
func UploadKeyPrefix(id string) string { return id + "." }

func (c *Coordinator) abortOrphans(ctx context.Context) {
	keys, err := c.conn.Uploads.ListKeysFiltered(ctx, UploadKeyPrefix(c.id)+">")
	if err != nil {
		return
	}
	for k := range keys.Keys() {
		e, err := c.conn.Uploads.Get(ctx, k)
		if err != nil {
			continue
		}
		if c.opts.AbortUpload != nil {
			if err := c.opts.AbortUpload(ctx, k, e.Value()); err != nil {
				c.opts.Log.Warn("abort orphan upload", "job", c.id, "err", err)
				continue
			}
		}
		_ = c.conn.Uploads.Delete(ctx, k)
	}
}
