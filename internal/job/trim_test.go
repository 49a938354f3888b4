package job

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-dev/ferry/internal/queue"
)

// resultsOnStream counts job id's records on the results stream.
func resultsOnStream(t *testing.T, h *harness) uint64 {
	t.Helper()
	s, err := h.conn.JS.Stream(h.ctx, queue.StreamResults)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(h.ctx, jetstream.WithSubjectFilter(queue.ResultSubject(h.c.id)))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[queue.ResultSubject(h.c.id)]
}

// TestResultsTrimmedAfterSave: records folded in and saved are purged; a
// coordinator that crashes after the purge resumes from the saved state
// and counts the rest exactly once; a finished job leaves no records.
func TestResultsTrimmedAfterSave(t *testing.T) {
	h := newHarness(t, Spec{})
	root := RootID(h.c.id)
	h.publish(listFinal(root, 3, 0, Child{"b1", KindCopy}, Child{"b2", KindCopy}, Child{"b3", KindCopy}), "")
	h.publish(copyFinal("b1", OutcomeCopied, "1"), "")
	if h.drain() {
		t.Fatal("finished early")
	}
	if err := h.c.save(h.ctx); err != nil {
		t.Fatal(err)
	}
	h.c.trimResults(h.ctx, false) // fewer than trimEvery: nothing yet
	if n := resultsOnStream(t, h); n != 2 {
		t.Fatalf("%d records after a save of 2, want 2 (not due)", n)
	}
	h.c.trimResults(h.ctx, true)
	if n := resultsOnStream(t, h); n != 0 {
		t.Fatalf("%d records left after trimming the saved ones", n)
	}
	saved, _, err := Load(h.ctx, h.conn, h.c.id)
	if err != nil {
		t.Fatal(err)
	}
	// b2 is applied but not saved; then the process dies.
	h.publish(copyFinal("b2", OutcomeCopied, "2"), "")
	h.applyOnly()
	h.c.trimResults(h.ctx, true) // must not purge past the saved LastSeq
	if n := resultsOnStream(t, h); n != 1 {
		t.Fatalf("%d records: the unsaved one was purged", n)
	}
	h.publish(copyFinal("b3", OutcomeCopied, "3"), "")
	_, rev, _ := Load(h.ctx, h.conn, h.c.id)
	c2 := &Coordinator{conn: h.conn, id: h.c.id, state: saved, rev: rev, ledger: h.c.ledger, savedSeq: saved.LastSeq, trimmedTo: saved.LastSeq}
	c2.opts.Log = discardLog()
	h.c = c2
	if !h.drain() {
		t.Fatal("resumed job did not end")
	}
	if st := h.c.State(); st.Status != Done || st.Counters.Copied != 3 || st.Counters.WorkOpen != 0 {
		t.Fatalf("%s %q: %+v", st.Status, st.Error, st.Counters)
	}
	if n := resultsOnStream(t, h); n != 0 {
		t.Fatalf("finished job left %d records", n)
	}
}
