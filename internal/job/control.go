package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/ferry-dev/ferry/internal/atomicfile"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ferry-dev/ferry/internal/queue"
)

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
	return atomicfile.Write(filepath.Join(dir, id+".json"), b, 0o600)
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
	_, release, err := c.lock(ctx)
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
	return &Coordinator{conn: conn, id: id, state: st, rev: rev, ledger: &ledger{kv: kvLedger{conn.Ledger}, job: id}}, nil
}

// Locked reports whether a live coordinator holds job id's lock (a lock
// left by a killed process of this host does not count).
func Locked(ctx context.Context, conn *queue.Conn, id string) bool {
	e, err := conn.Locks.Get(ctx, id)
	return err == nil && !staleHolder(string(e.Value()))
}

// WaitingForCredentials starts the status message of a job that paused
// itself because an endpoint refused its credentials.
const WaitingForCredentials = "waiting for valid credentials for "

// Tripped starts the status message of a job that its circuit breaker
// paused: most of its recent objects failed with the same server error
// from one endpoint. It stays paused until `ferry job resume`.
const Tripped = "circuit breaker: "

// ErrTripped is returned by [Coordinator.Run] with
// [RunOptions.StopWhenTripped] when the job's circuit breaker paused it.
var ErrTripped = errors.New("paused by its circuit breaker")

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
