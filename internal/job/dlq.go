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
		// An entry no trusted key signed is not the job's: redriving it
		// would sign forged work, and reconciliation would take its key
		// for a known failure.
		if conn.Trust.Verify(m.Subject(), id, m.Data(), m.Headers()) != nil {
			// skipped
		} else if err := json.Unmarshal(m.Data(), &e); err == nil {
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
//
// Each batch of entries becomes one work item, registered in the job's
// ledger by a redrive record published before it; the record also undoes
// the entries' failures in the counters. IDs derive from the entries'
// dead-letter sequences, so running Redrive twice, or again after a crash
// half-way, queues and counts nothing twice: the second run finds the
// entries gone, or republishes identical records that the stream's
// de-duplication and the ledger ignore.
func Redrive(ctx context.Context, conn *queue.Conn, id string) (int, error) {
	st, _, err := Load(ctx, conn, id)
	if err != nil {
		return 0, err
	}
	if st.Status == Cancelled {
		return 0, fmt.Errorf("job %s: cancelled jobs cannot be redriven", id)
	}
	type batch struct {
		kind       string
		objs       []Obj
		first, end uint64
		undo       RedriveResult
	}
	var n int
	var perr error
	flush := func(b *batch) {
		if len(b.objs) == 0 || perr != nil {
			return
		}
		w := Work{V: WireVersion, Job: id, Kind: b.kind, Attempt: 1, Objs: append([]Obj(nil), b.objs...)}
		w.ID = ContentID(id, "redrive-work", b.first, b.end)
		perr = redriveOne(ctx, conn, w, b.first, b.end, b.undo)
		b.objs, b.undo = b.objs[:0], RedriveResult{}
	}
	copies, deletes := &batch{kind: KindCopy}, &batch{kind: KindDelete}
	last, err := eachDLQ(ctx, conn, id, func(e DLQEntry, seq uint64) bool {
		n++
		switch {
		case e.Task != nil:
			w := Work{V: WireVersion, Job: id, Kind: KindList, Attempt: 1, Task: e.Task}
			w.ID = ContentID(id, "redrive-work", seq, seq)
			perr = redriveOne(ctx, conn, w, seq, seq, RedriveResult{Tasks: 1})
		case e.Obj != nil:
			b := copies
			if e.Kind == KindDelete {
				b = deletes
			}
			if len(b.objs) == 0 {
				b.first = seq
			}
			b.end = seq
			b.objs = append(b.objs, *e.Obj)
			if b.kind == KindDelete {
				b.undo.Deletes++
			} else {
				b.undo.Objects++
				b.undo.Bytes += e.Obj.S
			}
			if len(b.objs) == 100 {
				flush(b)
			}
		}
		return perr == nil
	})
	flush(copies)
	flush(deletes)
	if err == nil {
		err = perr
	}
	if err != nil {
		return 0, fmt.Errorf("redrive job %s: %w", id, err)
	}
	if n == 0 {
		return 0, nil
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

// redriveOne publishes the redrive record that registers w and undoes the
// failures of its entries (first..end of the dead-letter stream), then w.
func redriveOne(ctx context.Context, conn *queue.Conn, w Work, first, end uint64, undo RedriveResult) error {
	rec := Final{Job: w.Job, Kind: KindRedrive, Work: ContentID(w.Job, "redrive", first, end), Root: true,
		Children: []Child{{ID: w.ID, Kind: w.Kind}}, Redrive: &undo, Time: time.Now().UTC()}
	if _, err := publishFinal(ctx, conn, rec); err != nil {
		return err
	}
	return PublishWork(ctx, conn, w, w.ID)
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
		st.Status, st.Error, st.Finished, st.Message, st.Gaps = Running, "", nil, "", nil
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
	Bytes   int64 `json:"bytes,omitempty"`
	Deletes int64 `json:"deletes"`
	Tasks   int64 `json:"tasks"`
}
