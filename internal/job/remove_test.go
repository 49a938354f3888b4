package job

import (
	"errors"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/queue"
)

// jobMessages counts everything the queue holds for job id: messages on
// the streams and entries (with markers) in the buckets.
func jobMessages(t *testing.T, h *harness, id string) uint64 {
	t.Helper()
	var n uint64
	for _, s := range jobSubjects(id) {
		c, err := countSubject(h.ctx, h.conn, s.stream, s.subject)
		if err != nil {
			t.Fatal(err)
		}
		n += c
	}
	return n
}

// TestRemove: a running job is refused; a finished one leaves nothing on
// any stream or bucket, and another job's state is untouched.
func TestRemove(t *testing.T) {
	h := newHarness(t, Spec{})
	id := h.c.id
	if _, err := Remove(h.ctx, h.conn, id, false); !errors.Is(err, ErrNotFinished) {
		t.Fatalf("removing a running job: %v, want ErrNotFinished", err)
	}
	root := RootID(id)
	h.publish(listFinal(root, 2, 0, Child{"b1", KindCopy}), "")
	h.publish(copyFinal("b1", OutcomeCopied, "1", "2"), "")
	if _, err := h.conn.Publish(h.ctx, queue.DLQSubject(id), id, []byte(`{}`), "dlq-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.conn.Uploads.Put(h.ctx, UploadKeyPrefix(id)+"k1", []byte("upload")); err != nil {
		t.Fatal(err)
	}
	if !h.drain() {
		t.Fatal("job did not finish")
	}
	// Another job, still running, with records of its own.
	other, err := Create(h.ctx, h.conn, Spec{Command: "copy"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.conn.Publish(h.ctx, queue.ResultSubject(other.id), other.id, []byte(`{}`), "other-1"); err != nil {
		t.Fatal(err)
	}
	otherBefore := jobMessages(t, h, other.id)

	dry, err := Remove(h.ctx, h.conn, id, true)
	if err != nil {
		t.Fatal(err)
	}
	if dry.Entries == 0 || dry.Messages == 0 {
		t.Fatalf("dry run found nothing to remove: %+v", dry)
	}
	if n := jobMessages(t, h, id); n != dry.Messages+dry.Entries {
		t.Fatalf("dry run changed the queue: %d left, it counted %d", n, dry.Messages+dry.Entries)
	}
	if _, err := Remove(h.ctx, h.conn, id, false); err != nil {
		t.Fatal(err)
	}
	if n := jobMessages(t, h, id); n != 0 {
		t.Fatalf("%d messages and entries of the removed job are left", n)
	}
	if _, _, err := Load(h.ctx, h.conn, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("load after remove: %v, want ErrNotFound", err)
	}
	if _, err := Remove(h.ctx, h.conn, id, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second remove: %v, want ErrNotFound", err)
	}
	if n := jobMessages(t, h, other.id); n != otherBefore {
		t.Fatalf("the other job's state changed: %d, was %d", n, otherBefore)
	}
	if _, err := Remove(h.ctx, h.conn, other.id, false); !errors.Is(err, ErrNotFinished) {
		t.Fatalf("removing the running job: %v, want ErrNotFinished", err)
	}
}

// TestFinishedBefore selects finished jobs by their end time.
func TestFinishedBefore(t *testing.T) {
	h := newHarness(t, Spec{})
	h.publish(listFinal(RootID(h.c.id), 0, 0), "")
	if !h.drain() {
		t.Fatal("job did not finish")
	}
	if _, err := Create(h.ctx, h.conn, Spec{Command: "copy"}); err != nil { // running
		t.Fatal(err)
	}
	got, err := FinishedBefore(h.ctx, h.conn, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Spec.ID != h.c.id {
		t.Fatalf("finished before now+1h: %v, want just %s", got, h.c.id)
	}
	if got, _ = FinishedBefore(h.ctx, h.conn, time.Now().Add(-time.Hour)); len(got) != 0 {
		t.Fatalf("finished before an hour ago: %d jobs, want none", len(got))
	}
}
