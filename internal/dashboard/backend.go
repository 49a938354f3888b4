package dashboard

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/queue"
)

// Action is something a user asks of a job from the dashboard.
type Action string

// Actions.
const (
	Pause   Action = "pause"
	Resume  Action = "resume"
	Cancel  Action = "cancel"
	Redrive Action = "redrive"
)

func parseAction(s string) (Action, bool) {
	switch a := Action(s); a {
	case Pause, Resume, Cancel, Redrive:
		return a, true
	}
	return "", false
}

// ErrUnavailable: the backend cannot do this here (the dead-letter queue
// of a job another process runs on a locked embedded server).
var ErrUnavailable = errors.New("not available from this dashboard")

// Backend is what the dashboard reads and changes. Implementations must be
// safe for concurrent use.
type Backend interface {
	// Jobs returns every job's state, oldest first.
	Jobs(ctx context.Context) ([]job.State, error)
	// DLQ returns up to limit dead-letter entries of job id.
	DLQ(ctx context.Context, id string, limit int) ([]job.DLQEntry, error)
	// Act pauses, resumes, cancels or redrives job id and says what
	// happened, in a sentence for the user. Errors wrapping
	// [job.ErrNotFound], [job.ErrFinished] or [ErrUnavailable] are the
	// user's (HTTP 404 and 409).
	Act(ctx context.Context, id string, a Action) (string, error)
}

// Watcher is a Backend that follows events (the results stream) until ctx
// ends; [Server.Serve] runs it.
type Watcher interface {
	Watch(ctx context.Context) error
}

// WorkerSource is a Backend that knows the workers.
type WorkerSource interface {
	Workers() []WorkerInfo
}

// NATS is the Backend of a JetStream connection (embedded or a cluster).
// Workers are derived from the results stream: each result names the
// worker that produced it (see [Workers]).
type NATS struct {
	conn    *queue.Conn
	workers *Workers
}

var (
	_ Backend      = (*NATS)(nil)
	_ Watcher      = (*NATS)(nil)
	_ WorkerSource = (*NATS)(nil)
)

// NewNATS returns the backend of conn, which the caller keeps open (and
// closes) for as long as the dashboard serves.
func NewNATS(conn *queue.Conn) *NATS {
	return &NATS{conn: conn, workers: NewWorkers()}
}

// Interrupted is the status the dashboard shows for a running job that no
// live process coordinates (as `ferry job list` does).
const Interrupted job.Status = "interrupted"

// Jobs implements Backend: a running job without a live coordinator is
// shown as interrupted.
func (n *NATS) Jobs(ctx context.Context) ([]job.State, error) {
	states, err := job.List(ctx, n.conn)
	if err != nil {
		return nil, err
	}
	for i, st := range states {
		if st.Status == job.Running && !job.Locked(ctx, n.conn, st.Spec.ID) {
			states[i].Status = Interrupted
			states[i].Message = "no process coordinates it; continue with: ferry job resume " + st.Spec.ID
		}
	}
	return states, nil
}

// DLQ implements Backend.
func (n *NATS) DLQ(ctx context.Context, id string, limit int) ([]job.DLQEntry, error) {
	if _, _, err := job.Load(ctx, n.conn, id); err != nil {
		return nil, err
	}
	return job.ReadDLQ(ctx, n.conn, id, limit)
}

// Act implements Backend. Pause, resume and cancel change the job's
// record, which its coordinator (in whatever process) follows; cancel of a
// job nobody coordinates finishes it here. Redrive puts the dead letters
// back on the work queue; when no coordinator runs the job, the answer
// says to run `ferry job resume`.
func (n *NATS) Act(ctx context.Context, id string, a Action) (string, error) {
	switch a {
	case Pause:
		st, err := job.SetStatus(ctx, n.conn, id, job.Paused, "")
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("job %s: %s", id, st.Status), nil
	case Resume:
		st, err := job.SetStatus(ctx, n.conn, id, job.Running, "")
		if err != nil {
			return "", err
		}
		return n.orphanHint(ctx, id, fmt.Sprintf("job %s: %s", id, st.Status)), nil
	case Cancel:
		st, err := job.Cancel(ctx, n.conn, id, nil)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("job %s: %s", id, st.Status), nil
	case Redrive:
		k, err := job.Redrive(ctx, n.conn, id)
		if err != nil {
			return "", err
		}
		return n.orphanHint(ctx, id, fmt.Sprintf("job %s: %d dead-letter entries back on the work queue", id, k)), nil
	}
	return "", fmt.Errorf("action %q: %w", a, ErrUnavailable)
}

func (n *NATS) orphanHint(ctx context.Context, id, msg string) string {
	if job.Locked(ctx, n.conn, id) {
		return msg
	}
	return msg + "; no process coordinates it: run ferry job resume " + id
}

// Workers implements WorkerSource.
func (n *NATS) Workers() []WorkerInfo { return n.workers.List() }

// Watch implements Watcher: it follows the results stream from now on.
func (n *NATS) Watch(ctx context.Context) error {
	return n.workers.Follow(ctx, n.conn.JS)
}
