package job

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-dev/ferry/internal/queue"
)

// ErrNotFinished: the job has not finished (running, paused or
// interrupted); it must end or be cancelled before its state is removed.
var ErrNotFinished = errors.New("job has not finished")

// Removal is what removing a job's state takes away from the queue, or
// would (dry run).
type Removal struct {
	State State
	// Messages counts the job's messages on the streams (work, results,
	// dead letters, held deletes); Entries its key-value entries (job
	// record, ledger, uploads, lock), each with the markers a bucket keeps.
	Messages, Entries uint64
}

// streams and bucket subjects that hold a job's state on the queue.
func jobSubjects(id string) []struct{ stream, subject string } {
	kv := func(bucket, key string) struct{ stream, subject string } {
		return struct{ stream, subject string }{"KV_" + bucket, "$KV." + bucket + "." + key}
	}
	return []struct{ stream, subject string }{
		{queue.StreamWork, queue.WorkFilter(id)},
		{queue.StreamResults, queue.ResultSubject(id)},
		{queue.StreamDLQ, queue.DLQSubject(id)},
		{queue.StreamDeletes, queue.DeleteSubject(id)},
		kv(queue.BucketLedger, id+".>"),
		kv(queue.BucketUploads, UploadKeyPrefix(id)+">"),
		kv(queue.BucketLocks, id),
		kv(queue.BucketJobs, id),
	}
}

// Remove deletes everything the queue holds for a finished job: its record
// in the jobs bucket, its ledger, upload and lock entries, its messages on
// every stream, and its work consumer. A job that has not finished is
// refused with [ErrNotFinished] (cancel it first). With dryRun nothing is
// changed and the Removal says what would go. Files outside the queue
// (snapshots, control files, audit logs) are the caller's.
func Remove(ctx context.Context, conn *queue.Conn, id string, dryRun bool) (Removal, error) {
	st, _, err := Load(ctx, conn, id)
	if err != nil {
		return Removal{}, err
	}
	if !st.Status.Finished() {
		return Removal{State: st}, fmt.Errorf("job %s is %s: %w; cancel it first (ferry job cancel %s)", id, st.Status, ErrNotFinished, id)
	}
	if Locked(ctx, conn, id) {
		return Removal{State: st}, fmt.Errorf("job %s: %w", id, ErrLocked)
	}
	r := Removal{State: st}
	subjects := jobSubjects(id)
	for _, s := range subjects {
		n, err := countSubject(ctx, conn, s.stream, s.subject)
		if err != nil {
			return r, fmt.Errorf("remove job %s: %w", id, err)
		}
		if strings.HasPrefix(s.stream, "KV_") {
			r.Entries += n
		} else {
			r.Messages += n
		}
	}
	if dryRun {
		return r, nil
	}
	for _, name := range []string{WorkConsumer(id), UnpackConsumer(id)} {
		if err := conn.JS.DeleteConsumer(ctx, queue.StreamWork, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return r, fmt.Errorf("remove job %s: consumer %s: %w", id, name, err)
		}
	}
	// The job record goes last: until then a failed removal can be run
	// again and still finds the job.
	for _, s := range subjects {
		str, err := conn.JS.Stream(ctx, s.stream)
		if err != nil {
			return r, fmt.Errorf("remove job %s: stream %s: %w", id, s.stream, err)
		}
		if err := str.Purge(ctx, jetstream.WithPurgeSubject(s.subject)); err != nil {
			return r, fmt.Errorf("remove job %s: purge %s on %s: %w", id, s.subject, s.stream, err)
		}
	}
	return r, nil
}

// countSubject counts the messages of one subject (a wildcard sums its
// subjects) on a stream.
func countSubject(ctx context.Context, conn *queue.Conn, stream, subject string) (uint64, error) {
	s, err := conn.JS.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n, nil
}

// FinishedBefore lists the finished jobs that ended before cutoff (a job
// recorded without an end time counts from its last update), oldest first.
// Jobs a newer ferry wrote (incompatible) are left out.
func FinishedBefore(ctx context.Context, conn *queue.Conn, cutoff time.Time) ([]State, error) {
	all, err := List(ctx, conn)
	if err != nil {
		return nil, err
	}
	var out []State
	for _, st := range all {
		if !st.Status.Finished() {
			continue
		}
		end := st.Updated
		if st.Finished != nil {
			end = *st.Finished
		}
		if end.Before(cutoff) {
			out = append(out, st)
		}
	}
	return out, nil
}
