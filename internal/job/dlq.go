package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-dev/ferry/internal/queue"
)

// ReadDLQ returns up to limit dead-letter entries of a job (limit <= 0:
// all), oldest first.
func ReadDLQ(ctx context.Context, conn *queue.Conn, id string, limit int) ([]DLQEntry, error) {
	var out []DLQEntry
	_, err := eachDLQ(ctx, conn, id, func(e DLQEntry, _ uint64) bool {
		out = append(out, e)
		return limit <= 0 || len(out) < limit
	})
	return out, err
}

// eachDLQ calls fn for each dead-letter entry of a job until fn returns
// false; it returns the sequence of the last entry present when it started.
func eachDLQ(ctx context.Context, conn *queue.Conn, id string, fn func(DLQEntry, uint64) bool) (uint64, error) {
	subj := queue.DLQSubject(id)
	stream, err := conn.JS.Stream(ctx, queue.StreamDLQ)
	if err != nil {
		return 0, fmt.Errorf("dead-letter stream: %w", err)
	}
	last, err := stream.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("dead-letter queue of job %s: %w", id, err)
	}
	cons, err := conn.JS.OrderedConsumer(ctx, queue.StreamDLQ, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	if err != nil {
		return 0, fmt.Errorf("dead-letter queue of job %s: %w", id, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return 0, fmt.Errorf("dead-letter queue of job %s: %w", id, err)
	}
	defer it.Stop()
	for {
		m, err := it.Next()
		if err != nil {
			return last.Sequence, fmt.Errorf("dead-letter queue of job %s: %w", id, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return last.Sequence, err
		}
		var e DLQEntry
		if err := json.Unmarshal(m.Data(), &e); err == nil {
			if !fn(e, md.Sequence.Stream) {
				return last.Sequence, nil
			}
		}
		if md.Sequence.Stream >= last.Sequence {
			return last.Sequence, nil
		}
	}
}

// Redrive puts a job's dead-letter entries back on the work queue (fresh
// attempts), removes them from the dead-letter stream, and reopens the job
// if it had finished. It returns how many entries it moved.
func Redrive(ctx context.Context, conn *queue.Conn, id string) (int, error) {
	st, _, err := Load(ctx, conn, id)
	if err != nil {
		return 0, err
	}
	if st.Status == Cancelled {
		return 0, fmt.Errorf("job %s: cancelled jobs cannot be redriven", id)
	}
	var copies, deletes []Obj
	var tasks int
	var n int
	stamp := time.Now().UnixNano()
	var perr error
	flush := func(kind string, objs []Obj) {
		if len(objs) == 0 || perr != nil {
			return
		}
		w := Work{V: WireVersion, Job: id, Kind: kind, Attempt: 1, Objs: append([]Obj(nil), objs...)}
		w.ID = ContentID(id, "redrive", stamp, kind, objs)
		perr = PublishWork(ctx, conn.JS, w, w.ID)
	}
	last, err := eachDLQ(ctx, conn, id, func(e DLQEntry, seq uint64) bool {
		n++
		switch {
		case e.Task != nil:
			tasks++
			w := Work{V: WireVersion, Job: id, Kind: KindList, Attempt: 1, Task: e.Task}
			w.ID = ContentID(id, "redrive", stamp, seq)
			if err := PublishWork(ctx, conn.JS, w, w.ID); err != nil {
				perr = err
				return false
			}
		case e.Obj != nil && e.Kind == KindDelete:
			deletes = append(deletes, *e.Obj)
			if len(deletes) == 100 {
				flush(KindDelete, deletes)
				deletes = deletes[:0]
			}
		case e.Obj != nil:
			copies = append(copies, *e.Obj)
			if len(copies) == 100 {
				flush(KindCopy, copies)
				copies = copies[:0]
			}
		}
		return perr == nil
	})
	flush(KindCopy, copies)
	flush(KindDelete, deletes)
	if err == nil {
		err = perr
	}
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	// Undo the failures in the counters (through the results stream, so
	// the tally stays a fold over it), then drop the entries.
	r := Result{V: WireVersion, Job: id, Kind: "redrive", Redrive: &RedriveResult{Tasks: int64(tasks)}}
	r.Redrive.Objects, r.Redrive.Deletes = countKinds(ctx, conn, id, last)
	b, _ := json.Marshal(r)
	if _, err := conn.JS.Publish(ctx, queue.ResultSubject(id), b, jetstream.WithMsgID(ContentID(id, "redrive-result", stamp))); err != nil {
		return 0, fmt.Errorf("redrive job %s: %w", id, err)
	}
	stream, err := conn.JS.Stream(ctx, queue.StreamDLQ)
	if err != nil {
		return 0, err
	}
	if err := stream.Purge(ctx, jetstream.WithPurgeSubject(queue.DLQSubject(id)), jetstream.WithPurgeSequence(last+1)); err != nil {
		return 0, fmt.Errorf("redrive job %s: purge dead letters: %w", id, err)
	}
	if err := reopen(ctx, conn, id); err != nil {
		return n, err
	}
	return n, nil
}

// countKinds counts copy and delete entries up to seq (tasks excluded).
func countKinds(ctx context.Context, conn *queue.Conn, id string, upTo uint64) (copies, deletes int64) {
	_, _ = eachDLQ(ctx, conn, id, func(e DLQEntry, seq uint64) bool {
		if seq > upTo {
			return false
		}
		switch {
		case e.Task != nil:
		case e.Kind == KindDelete:
			deletes++
		default:
			copies++
		}
		return true
	})
	return copies, deletes
}

// reopen sets a finished (done or failed) job running again.
func reopen(ctx context.Context, conn *queue.Conn, id string) error {
	for range 10 {
		st, rev, err := Load(ctx, conn, id)
		if err != nil {
			return err
		}
		if st.Status == Running || st.Status == Paused {
			return nil
		}
		st.Status, st.Error, st.Finished, st.Message = Running, "", nil, ""
		st.DeletesReleased = st.DeletesReleased && st.Spec.Delete
		b, err := json.Marshal(st)
		if err != nil {
			return err
		}
		if _, err := conn.Jobs.Update(ctx, id, b, rev); err == nil {
			return nil
		}
	}
	return fmt.Errorf("job %s: could not reopen: too many concurrent updates", id)
}

// RedriveResult undoes dead-lettered outcomes in the counters.
type RedriveResult struct {
	Objects int64 `json:"objects"`
	Deletes int64 `json:"deletes"`
	Tasks   int64 `json:"tasks"`
}
