package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-dev/ferry/internal/lister"
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

// Auditor receives every result of a job, in stream order, and writes
// AuditLines(r) lines for it.
type Auditor interface {
	Record(r Result) error
	// Sync makes what was recorded durable.
	Sync() error
	// Head returns the number of lines and the hash of the last one.
	Head() (lines int64, lastHash string)
}

// AuditLines is how many audit lines a result makes: one per object
// outcome, one per object of a "skipped" record, none for listing tasks.
func AuditLines(r Result) int64 {
	switch r.Kind {
	case "object", "delete":
		return 1
	case "skipped":
		return int64(len(r.Objs))
	}
	return 0
}

// RunOptions tune a coordinator.
type RunOptions struct {
	// Log receives job-level events.
	Log *slog.Logger
	// Audit, when set, receives every result.
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
	// ControlDir, when set, is polled for control files (ID.pause,
	// ID.resume, ID.cancel) that other processes write when they cannot
	// reach an embedded server (see [RequestControl]).
	ControlDir string
}

// Coordinator creates or resumes one job, tallies its results and
// finishes it. It holds nothing that grows with the number of objects.
type Coordinator struct {
	conn *queue.Conn
	id   string
	opts RunOptions

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
}

// Create records a new job and queues its first listing task.
func Create(ctx context.Context, conn *queue.Conn, spec Spec) (*Coordinator, error) {
	spec.V = WireVersion
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
	st := State{V: WireVersion, Spec: spec, Status: Running, Updated: now, Started: now}
	st.Counters.TasksOpen = 1 // the root listing task
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encode job: %w", err)
	}
	rev, err := conn.Jobs.Create(ctx, spec.ID, b)
	if err != nil {
		return nil, fmt.Errorf("create job %s: %w", spec.ID, err)
	}
	c := &Coordinator{conn: conn, id: spec.ID, state: st, rev: rev}
	if err := c.ensureConsumer(ctx, false); err != nil {
		return nil, err
	}
	root := Work{V: WireVersion, Job: spec.ID, Kind: KindList, Attempt: 1, Task: &lister.Task{Level: true}}
	root.ID = ContentID(spec.ID, "root")
	if err := PublishWork(ctx, conn.JS, root, root.ID); err != nil {
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
	return &Coordinator{conn: conn, id: id, state: st, rev: rev, resumed: true}, nil
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
	name := WorkConsumer(c.id)
	if fresh {
		err := c.conn.JS.DeleteConsumer(ctx, queue.StreamWork, name)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("reset consumer %s: %w", name, err)
		}
	}
	_, err := c.conn.JS.CreateOrUpdateConsumer(ctx, queue.StreamWork, jetstream.ConsumerConfig{
		Durable:       name,
		FilterSubject: queue.WorkFilter(c.id),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       AckWait,
		MaxDeliver:    -1,
		MaxAckPending: 20000,
	})
	if err != nil {
		return fmt.Errorf("create consumer %s: %w", name, err)
	}
	return nil
}

// WorkConsumer names the durable consumer of a job's work.
func WorkConsumer(id string) string { return "work-" + id }

// PublishWork puts w on the work queue, de-duplicated by msgID.
func PublishWork(ctx context.Context, js jetstream.JetStream, w Work, msgID string) error {
	w.V = WireVersion
	b, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("encode work: %w", err)
	}
	if _, err := js.Publish(ctx, queue.WorkSubject(w.Job, w.Kind), b, jetstream.WithMsgID(msgID)); err != nil {
		return fmt.Errorf("queue %s work for job %s: %w", w.Kind, w.Job, err)
	}
	return nil
}

// lock takes the job's coordinator lock and keeps it fresh until ctx ends;
// release gives it up.
func (c *Coordinator) lock(ctx context.Context) (release func(), err error) {
	h, _ := os.Hostname()
	holder := []byte(h + " pid " + strconv.Itoa(os.Getpid()))
	if c.conn.Embedded() {
		// The state directory's flock already makes this process the only
		// one: a lock left by a killed process is stale.
		_ = c.conn.Locks.Purge(ctx, c.id)
	}
	rev, err := c.conn.Locks.Create(ctx, c.id, holder)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			cur, gerr := c.conn.Locks.Get(ctx, c.id)
			who := "another process"
			if gerr == nil {
				who = string(cur.Value())
			}
			return nil, fmt.Errorf("job %s: %w (%s; a killed process's lock expires after %s)", c.id, ErrLocked, who, queue.LockTTL)
		}
		return nil, fmt.Errorf("lock job %s: %w", c.id, err)
	}
	lctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(queue.LockTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
				if r, err := c.conn.Locks.Update(lctx, c.id, holder, rev); err == nil {
					rev = r
				}
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer dcancel()
		_ = c.conn.Locks.Delete(dctx, c.id, jetstream.LastRevision(rev))
	}, nil
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

func (c *Coordinator) writeSnapshot(b []byte) {
	if c.opts.SnapshotDir == "" {
		return
	}
	_ = WriteSnapshot(c.opts.SnapshotDir, c.id, b, c.opts.SnapshotKey)
}

// WriteSnapshot atomically writes a job state file, sealed with key
// (AES-256-GCM) when key is set.
func WriteSnapshot(dir, id string, b, key []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if len(key) > 0 {
		sealed, err := seal(key, b)
		if err != nil {
			return err
		}
		b = sealed
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, id+".json"))
}

// ReadSnapshot reads a job state file written by a running coordinator.
func ReadSnapshot(dir, id string, key []byte) (State, error) {
	b, err := os.ReadFile(filepath.Join(dir, id+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return State{}, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return State{}, err
	}
	if len(key) > 0 {
		if b, err = open(key, b); err != nil {
			return State{}, fmt.Errorf("job %s: state snapshot: %w", id, err)
		}
	}
	return decodeState(b)
}

// SetStatus changes a job's status (pause, resume, cancel) with a
// compare-and-set on its record.
func SetStatus(ctx context.Context, conn *queue.Conn, id string, to Status, msg string) (State, error) {
	for range 10 {
		st, rev, err := Load(ctx, conn, id)
		if err != nil {
			return State{}, err
		}
		if st.Status.Finished() {
			return st, fmt.Errorf("job %s: %w (%s)", id, ErrFinished, st.Status)
		}
		st.Status, st.Message, st.Updated = to, msg, time.Now().UTC()
		b, err := json.Marshal(st)
		if err != nil {
			return State{}, err
		}
		if _, err := conn.Jobs.Update(ctx, id, b, rev); err == nil {
			return st, nil
		}
	}
	return State{}, fmt.Errorf("job %s: could not update status: too many concurrent updates", id)
}

// Run coordinates the job until it finishes or ctx ends: it takes the
// job's lock, makes sure the job is running, applies every result to the
// counters (and the audit log), releases sync deletes once listing
// completed, and finishes the job. On ctx's end it saves the state and
// returns ctx's error; the job can be resumed.
func (c *Coordinator) Run(ctx context.Context, opts RunOptions) (State, error) {
	c.opts = opts
	if c.opts.Log == nil {
		c.opts.Log = slog.New(slog.DiscardHandler)
	}
	release, err := c.lock(ctx)
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
	if a := c.opts.Audit; a != nil {
		if lines, _ := a.Head(); lines > c.state.AuditLines {
			c.auditSkip = lines - c.state.AuditLines
		}
	}
	c.mu.Unlock()
	if err := c.ensureConsumer(ctx, c.resumed && c.conn.Embedded()); err != nil {
		return c.State(), err
	}
	if err := c.save(ctx); err != nil {
		return c.State(), err
	}

	msgs := make(chan jetstream.Msg, 1024)
	cons, err := c.conn.JS.OrderedConsumer(ctx, queue.StreamResults, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{queue.ResultSubject(c.id)},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    c.state.LastSeq + 1,
	})
	if err != nil {
		return c.State(), fmt.Errorf("read results of job %s: %w", c.id, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { msgs <- m })
	if err != nil {
		return c.State(), fmt.Errorf("read results of job %s: %w", c.id, err)
	}
	defer cc.Stop()

	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	dirty := true
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = c.save(sctx)
			cancel()
			return c.State(), ctx.Err()
		case m := <-msgs:
			if err := c.apply(m); err != nil {
				return c.State(), err
			}
			dirty = true
			// Drain what is already buffered before saving.
			for more := true; more; {
				select {
				case m := <-msgs:
					if err := c.apply(m); err != nil {
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

func (c *Coordinator) apply(m jetstream.Msg) error {
	md, err := m.Metadata()
	if err != nil {
		return fmt.Errorf("result metadata: %w", err)
	}
	r, err := DecodeResult(m.Data())
	if err != nil {
		c.opts.Log.Warn("skipping undecodable result", "job", c.id, "seq", md.Sequence.Stream, "err", err)
		c.mu.Lock()
		c.state.LastSeq = md.Sequence.Stream
		c.mu.Unlock()
		return nil
	}
	if c.opts.Audit != nil {
		c.mu.Lock()
		n := AuditLines(r)
		skip := c.auditSkip >= n && n > 0
		if skip {
			c.auditSkip -= n
		}
		c.mu.Unlock()
		if !skip {
			if err := c.opts.Audit.Record(r); err != nil {
				return fmt.Errorf("audit log: %w", err)
			}
		}
	}
	c.mu.Lock()
	c.state.Counters.Apply(r)
	c.state.LastSeq = md.Sequence.Stream
	if r.Kind == "object" && r.Outcome == OutcomeUnsafe && len(c.state.Unsafe) < MaxNamed {
		c.state.Unsafe = append(c.state.Unsafe, KeyError{Key: r.Key, Error: r.Error})
	}
	c.mu.Unlock()
	if r.Kind == "object" && r.Outcome == OutcomeFailed {
		c.opts.Log.Error("object failed", "key", r.Key, "err", r.Error, "attempts", r.Attempts)
	}
	return nil
}

// step moves a job whose listing completed towards its end: it checks
// and releases deletes, and finishes the job when everything is done.
func (c *Coordinator) step(ctx context.Context) (bool, error) {
	st := c.State()
	if st.Status != Running || !st.ListingComplete() {
		return false, nil
	}
	k := st.Counters
	spec := st.Spec
	wantDeletes := spec.Delete && k.DeletesPlanned > 0 && k.TasksFailed == 0 && !spec.DryRun
	if wantDeletes && !st.DeletesReleased {
		if err := checkDeleteLimit(spec, k); err != nil {
			// Wait for the copies, then stop with the error.
			if k.Finished >= k.Enqueued {
				_, ferr := c.finish(ctx, Failed, err.Error())
				return true, ferr
			}
			return false, nil
		}
		if err := c.releaseDeletes(ctx); err != nil {
			return false, err
		}
		c.mu.Lock()
		c.state.DeletesReleased = true
		c.mu.Unlock()
		if err := c.save(ctx); err != nil {
			return false, err
		}
		return false, nil
	}
	copiesDone := k.Finished >= k.Enqueued
	deletesDone := !wantDeletes || k.Deleted+k.DeleteFailed >= k.DeletesPlanned
	if !copiesDone || !deletesDone {
		return false, nil
	}
	status, msg := Done, ""
	if k.TasksFailed > 0 {
		status, msg = Failed, fmt.Sprintf("%d listing task(s) failed: the listing is incomplete", k.TasksFailed)
		if spec.Delete {
			msg += "; no objects were deleted"
		}
	}
	_, err := c.finish(ctx, status, msg)
	return true, err
}

// ErrDeleteLimit: a sync would delete more than allowed.
var ErrDeleteLimit = plan.ErrDeleteLimit

func checkDeleteLimit(spec Spec, k Counters) error {
	if spec.Force {
		return nil
	}
	return plan.CheckDeleteLimit(k.DeletesPlanned, k.DstListed, spec.MaxDelete, spec.MaxDeletePercent)
}

// releaseDeletes moves the deletes held on the deletes stream to the work
// queue. Each message keeps a de-duplication ID derived from its sequence,
// so a release interrupted and repeated queues nothing twice.
func (c *Coordinator) releaseDeletes(ctx context.Context) error {
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
		w, err := DecodeWork(m.Data())
		if err != nil {
			return err
		}
		w.Kind, w.Attempt = KindDelete, 1
		if err := PublishWork(ctx, c.conn.JS, w, ContentID(c.id, "delete", md.Sequence.Stream)); err != nil {
			return err
		}
		if md.Sequence.Stream >= last.Sequence {
			return nil
		}
	}
}

// finish ends the job: aborts multipart uploads it left behind, removes
// its consumer and queued work, and records the final status.
func (c *Coordinator) finish(ctx context.Context, status Status, msg string) (State, error) {
	c.abortOrphans(ctx)
	_ = c.conn.JS.DeleteConsumer(ctx, queue.StreamWork, WorkConsumer(c.id))
	if s, err := c.conn.JS.Stream(ctx, queue.StreamWork); err == nil {
		_ = s.Purge(ctx, jetstream.WithPurgeSubject(queue.WorkFilter(c.id)))
	}
	if s, err := c.conn.JS.Stream(ctx, queue.StreamDeletes); err == nil {
		_ = s.Purge(ctx, jetstream.WithPurgeSubject(queue.DeleteSubject(c.id)))
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
	if c.opts.OnUpdate != nil {
		c.opts.OnUpdate(c.State())
	}
	return c.State(), nil
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

// RequestControl asks the coordinator of job id, running in another process
// on an embedded server, to pause, resume or cancel it: it writes a control
// file the coordinator polls.
func RequestControl(dir, id string, to Status) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, id+"."+controlVerb(to)), nil, 0o600)
}

// ControlPending reports whether a control request is still waiting for
// the coordinator to take it.
func ControlPending(dir, id string, to Status) bool {
	_, err := os.Stat(filepath.Join(dir, id+"."+controlVerb(to)))
	return err == nil
}

func controlVerb(s Status) string {
	switch s {
	case Paused:
		return "pause"
	case Cancelled:
		return "cancel"
	}
	return "resume"
}

func (c *Coordinator) pollControl(ctx context.Context) {
	if c.opts.ControlDir == "" {
		return
	}
	for _, to := range []Status{Cancelled, Paused, Running} {
		p := filepath.Join(c.opts.ControlDir, c.id+"."+controlVerb(to))
		if _, err := os.Stat(p); err != nil {
			continue
		}
		c.mu.Lock()
		if !c.state.Status.Finished() {
			c.state.Status = to
			c.state.Message = ""
		}
		c.mu.Unlock()
		if err := c.forceStatus(ctx, to); err != nil {
			c.opts.Log.Warn("control", "job", c.id, "err", err)
		}
		os.Remove(p) // after the snapshot shows the new status
		return
	}
}

// forceStatus writes the coordinator's status to the bucket.
func (c *Coordinator) forceStatus(ctx context.Context, to Status) error {
	_, err := SetStatus(ctx, c.conn, c.id, to, "")
	if err != nil {
		return err
	}
	_, rev, err := Load(ctx, c.conn, c.id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.rev = rev
	c.mu.Unlock()
	return c.save(ctx)
}

// Cancel cancels a job that no coordinator is running: its queued work is
// removed, its multipart uploads aborted (abort may be nil) and its status
// set to cancelled.
func Cancel(ctx context.Context, conn *queue.Conn, id string, abort func(ctx context.Context, key string, state []byte) error) (State, error) {
	if _, err := SetStatus(ctx, conn, id, Cancelled, ""); err != nil {
		return State{}, err
	}
	c, err := openAny(ctx, conn, id)
	if err != nil {
		return State{}, err
	}
	c.opts = RunOptions{AbortUpload: abort, Log: slog.New(slog.DiscardHandler)}
	release, err := c.lock(ctx)
	if err != nil {
		// A live coordinator will see the status and finish the job.
		return c.State(), nil
	}
	defer release()
	return c.finish(ctx, Cancelled, "cancelled")
}

func openAny(ctx context.Context, conn *queue.Conn, id string) (*Coordinator, error) {
	st, rev, err := Load(ctx, conn, id)
	if err != nil {
		return nil, err
	}
	return &Coordinator{conn: conn, id: id, state: st, rev: rev}, nil
}

// Locked reports whether a coordinator holds job id's lock.
func Locked(ctx context.Context, conn *queue.Conn, id string) bool {
	_, err := conn.Locks.Get(ctx, id)
	return err == nil
}

// WaitingForCredentials starts the status message of a job that paused
// itself because an endpoint refused its credentials.
const WaitingForCredentials = "waiting for valid credentials for "

// probeCredentials resumes a job that waits for valid credentials once
// its endpoints accept them (checked every 5 seconds).
func (c *Coordinator) probeCredentials(ctx context.Context) {
	st := c.State()
	if c.opts.Probe == nil || st.Status != Paused || !strings.HasPrefix(st.Message, WaitingForCredentials) {
		return
	}
	if time.Since(c.lastProbe) < 5*time.Second {
		return
	}
	c.lastProbe = time.Now()
	if side := c.opts.Probe(ctx); side != "" {
		return
	}
	c.opts.Log.Info("credentials accepted again: resuming", "job", c.id)
	c.mu.Lock()
	c.state.Status, c.state.Message = Running, ""
	c.mu.Unlock()
	if err := c.forceStatus(ctx, Running); err != nil {
		c.opts.Log.Warn("resume job", "job", c.id, "err", err)
	}
}

// adoptStatus takes a status change made by another process (a worker
// pausing the job for credentials, `ferry job pause` on an external
// cluster) into the coordinator's state; it reports whether one happened.
func (c *Coordinator) adoptStatus(ctx context.Context) bool {
	cur, rev, err := Load(ctx, c.conn, c.id)
	if err != nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if rev == c.rev || c.state.Status.Finished() {
		return false
	}
	changed := cur.Status != c.state.Status || cur.Message != c.state.Message
	c.state.Status, c.state.Message = cur.Status, cur.Message
	c.rev = rev
	return changed
}
