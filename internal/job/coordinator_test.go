package job

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/lister"
	"github.com/ferry-dev/ferry/internal/queue"
	"github.com/ferry-dev/ferry/internal/trust"
	"github.com/nats-io/nats.go/jetstream"
)

// These tests drive the coordinator's decisions against a real embedded
// NATS JetStream server: they publish the records workers would publish,
// in the orders that matter, and apply the stream one record at a time
// (drain), checking what the coordinator decides after each. Nothing waits
// on time.

func newConn(t *testing.T) *queue.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := queue.Connect(ctx, queue.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	return conn
}

// harness is a job whose coordinator the test steps by hand.
type harness struct {
	t    *testing.T
	ctx  context.Context
	conn *queue.Conn
	c    *Coordinator
	// applied is the last stream sequence drained.
	audit *memAudit
}

type memAudit struct {
	lines []Result
}

func (a *memAudit) Record(r Result) error { a.lines = append(a.lines, r); return nil }
func (a *memAudit) Sync() error           { return nil }
func (a *memAudit) Head() (int64, string) { return int64(len(a.lines)), "" }

func newHarness(t *testing.T, spec Spec) *harness {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	conn := newConn(t)
	if spec.Command == "" {
		spec.Command = "copy"
	}
	c, err := Create(ctx, conn, spec)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, ctx: ctx, conn: conn, c: c, audit: &memAudit{}}
	c.opts = RunOptions{Audit: h.audit}
	c.opts.Log = discardLog()
	return h
}

// publish puts a Final on the results stream as a worker would (msgID
// makes it a distinct message, like a redelivery after the duplicate
// window).
func (h *harness) publish(f Final, msgID string) {
	h.t.Helper()
	f.V, f.Job = WireVersion, h.c.id
	if msgID == "" {
		msgID = ContentID(f.Work, "final")
	}
	b, _ := json.Marshal(f)
	if _, err := h.conn.Publish(h.ctx, queue.ResultSubject(h.c.id), h.c.id, b, msgID); err != nil {
		h.t.Fatal(err)
	}
}

// drain applies every record on the stream after the coordinator's
// LastSeq, one at a time, calling step after each; it returns whether the
// job finished (and stops there).
func (h *harness) drain() bool {
	h.t.Helper()
	stream, err := h.conn.JS.Stream(h.ctx, queue.StreamResults)
	if err != nil {
		h.t.Fatal(err)
	}
	for {
		seq := h.c.State().LastSeq + 1
		m, err := stream.GetMsg(h.ctx, seq)
		if err != nil {
			return false
		}
		if m.Subject != queue.ResultSubject(h.c.id) {
			h.t.Fatalf("seq %d: unexpected subject %s", seq, m.Subject)
		}
		if err := h.c.applyRecord(h.ctx, m.Sequence, m.Subject, m.Data, m.Header); err != nil {
			h.t.Fatal(err)
		}
		done, err := h.c.step(h.ctx)
		if err != nil {
			h.t.Fatal(err)
		}
		if done {
			return true
		}
	}
}

// applyOnly applies the records on the stream without deciding anything.
func (h *harness) applyOnly() {
	h.t.Helper()
	stream, err := h.conn.JS.Stream(h.ctx, queue.StreamResults)
	if err != nil {
		h.t.Fatal(err)
	}
	for {
		m, err := stream.GetMsg(h.ctx, h.c.State().LastSeq+1)
		if err != nil {
			return
		}
		if err := h.c.applyRecord(h.ctx, m.Sequence, m.Subject, m.Data, m.Header); err != nil {
			h.t.Fatal(err)
		}
	}
}

func (h *harness) counters() Counters { return h.c.State().Counters }

// copyFinal is a copy batch's Final with one outcome per key.
func copyFinal(id string, outcome string, keys ...string) Final {
	f := Final{Kind: KindCopy, Work: id}
	for _, k := range keys {
		f.Outcomes = append(f.Outcomes, Result{Kind: "object", Key: k, Size: 1, ListedSize: 1, Outcome: outcome})
	}
	return f
}

func listFinal(id string, listed, deletes int64, children ...Child) Final {
	return Final{Kind: KindList, Work: id, Children: children,
		Task: &TaskResult{Listed: listed, ListedBytes: listed, Enqueued: listed, EnqueuedSize: listed, Deletes: deletes}}
}

func TestChildResultBeforeParent(t *testing.T) {
	h := newHarness(t, Spec{})
	root := RootID(h.c.id)
	// The root lists 2 keys itself and a sub-prefix; the sub-task and its
	// batch finish before the root's own Final arrives.
	h.publish(copyFinal("sub-batch", OutcomeCopied, "a/1"), "")
	h.publish(listFinal("sub", 1, 0, Child{"sub-batch", KindCopy}), "")
	if h.drain() {
		t.Fatal("job finished while the root listing task was still running")
	}
	k := h.counters()
	if k.WorkOpen != 1 || k.WorkPending != 1 || k.TasksOpen != 1 || k.TasksPending != 1 {
		t.Fatalf("open/pending: %+v", k)
	}
	h.publish(copyFinal("root-batch", OutcomeCopied, "1", "2"), "")
	if h.drain() {
		t.Fatal("job finished before the root's Final")
	}
	h.publish(listFinal(root, 2, 0, Child{"sub", KindList}, Child{"root-batch", KindCopy}), "")
	if !h.drain() {
		t.Fatal("job did not finish")
	}
	st := h.c.State()
	if st.Status != Done || st.Counters.Copied != 3 || st.Counters.Listed != 3 {
		t.Fatalf("status %s %q, counters %+v", st.Status, st.Error, st.Counters)
	}
	if len(h.audit.lines) != 3 {
		t.Fatalf("audit lines %d, want 3", len(h.audit.lines))
	}
}

func TestParentResultBeforeChild(t *testing.T) {
	h := newHarness(t, Spec{})
	root := RootID(h.c.id)
	h.publish(listFinal(root, 0, 0, Child{"sub", KindList}), "")
	if h.drain() {
		t.Fatal("finished with a sub-task open")
	}
	h.publish(listFinal("sub", 1, 0, Child{"b", KindCopy}), "")
	if h.drain() {
		t.Fatal("finished with a batch open")
	}
	h.publish(copyFinal("b", OutcomeCopied, "a/1"), "")
	if !h.drain() || h.c.State().Status != Done {
		t.Fatalf("not done: %+v", h.c.State())
	}
}

func TestEveryRecordRedelivered(t *testing.T) {
	h := newHarness(t, Spec{})
	root := RootID(h.c.id)
	recs := []Final{
		listFinal(root, 2, 0, Child{"s", KindList}, Child{"b1", KindCopy}),
		copyFinal("b1", OutcomeCopied, "1", "2"),
		listFinal("s", 1, 0, Child{"b2", KindCopy}),
		copyFinal("b2", OutcomeSkipped, "s/1"),
	}
	for i, f := range recs {
		h.publish(f, "")
		// The same work handled again after the duplicate window: another
		// message, maybe with other outcomes.
		dup := f
		if f.Kind == KindCopy {
			dup = copyFinal(f.Work, OutcomeSkipped, "1", "2", "3")
		}
		h.publish(dup, "again-"+f.Work)
		if done := h.drain(); done != (i == len(recs)-1) {
			t.Fatalf("after record %d: done=%v", i, done)
		}
	}
	k := h.counters()
	if h.c.State().Status != Done || k.Copied != 2 || k.Skipped != 1 || k.Duplicates != 3 || len(h.audit.lines) != 3 {
		t.Fatalf("status %s, counters %+v, audit %d", h.c.State().Status, k, len(h.audit.lines))
	}
}

func TestDuplicateWithinWindowDropped(t *testing.T) {
	h := newHarness(t, Spec{})
	root := RootID(h.c.id)
	h.publish(listFinal(root, 1, 0, Child{"b", KindCopy}), "")
	h.publish(listFinal(root, 1, 0, Child{"b", KindCopy}), "") // same msg ID
	h.publish(copyFinal("b", OutcomeCopied, "1"), "")
	if !h.drain() {
		t.Fatal("not done")
	}
	if k := h.counters(); k.Duplicates != 0 || k.Copied != 1 {
		t.Fatalf("%+v", k)
	}
}

func TestFailedListingTaskEndsJob(t *testing.T) {
	h := newHarness(t, Spec{Command: "sync", Delete: true})
	root := RootID(h.c.id)
	f := listFinal(root, 1, 3, Child{"s", KindList}, Child{"b", KindCopy})
	h.publish(f, "")
	failed := Final{Kind: KindList, Work: "s", Task: &TaskResult{Failed: true, Error: "HTTP 500"}}
	h.publish(failed, "")
	h.publish(copyFinal("b", OutcomeCopied, "1"), "")
	if !h.drain() {
		t.Fatal("job did not end")
	}
	st := h.c.State()
	if st.Status != Failed || !strings.Contains(st.Error, "listing incomplete: 1 task(s) failed") || !strings.Contains(st.Error, "no objects were deleted") {
		t.Fatalf("status %s: %q", st.Status, st.Error)
	}
	if st.DeletesReleased {
		t.Fatal("deletes released although listing failed")
	}
	if n := workCount(t, h, KindDelete); n != 0 {
		t.Fatalf("%d delete messages queued", n)
	}
}

func TestMaxDeleteCheckedOnWholePlan(t *testing.T) {
	h := newHarness(t, Spec{Command: "sync", Delete: true, MaxDelete: 10})
	root := RootID(h.c.id)
	holdDeletes(t, h, 6)
	h.publish(listFinal(root, 0, 6, Child{"s", KindList}), "")
	if h.drain() {
		t.Fatal("finished early")
	}
	if h.c.State().DeletesReleased || workCount(t, h, KindDelete) != 0 {
		t.Fatal("deletes released before the listing completed")
	}
	holdDeletes(t, h, 6)
	h.publish(listFinal("s", 0, 6), "")
	if !h.drain() {
		t.Fatal("job did not end")
	}
	st := h.c.State()
	if st.Status != Failed || !strings.Contains(st.Error, "delete limit exceeded: sync would delete 12") {
		t.Fatalf("status %s: %q", st.Status, st.Error)
	}
	if st.DeletesReleased || workCount(t, h, KindDelete) != 0 {
		t.Fatal("deletes released over the limit")
	}
}

func TestDeletesReleasedAndCounted(t *testing.T) {
	h := newHarness(t, Spec{Command: "sync", Delete: true, MaxDelete: 10})
	root := RootID(h.c.id)
	holdDeletes(t, h, 2)
	h.publish(listFinal(root, 0, 2), "")
	if h.drain() {
		t.Fatal("finished before the deletes ran")
	}
	st := h.c.State()
	if !st.DeletesReleased || st.Counters.WorkOpen != 1 {
		t.Fatalf("released %v, counters %+v", st.DeletesReleased, st.Counters)
	}
	// The released batch: one delete failed, one done.
	ids := workIDs(t, h, KindDelete)
	if len(ids) != 1 {
		t.Fatalf("delete work: %v", ids)
	}
	// Releasing again (a coordinator restarted mid-release) queues nothing new.
	if err := h.c.releaseDeletes(h.ctx); err != nil {
		t.Fatal(err)
	}
	if got := workIDs(t, h, KindDelete); len(got) != 1 {
		t.Fatalf("second release queued more: %v", got)
	}
	f := Final{Kind: KindDelete, Work: ids[0], Outcomes: []Result{
		{Kind: "delete", Key: "x0", Outcome: OutcomeDeleted}, {Kind: "delete", Key: "x1", Outcome: OutcomeDelFail, Error: "denied"}}}
	h.publish(f, "")
	if !h.drain() {
		t.Fatal("job did not end")
	}
	k := h.counters()
	if h.c.State().Status != Done || k.Deleted != 1 || k.DeleteFailed != 1 || k.Duplicates != 0 {
		t.Fatalf("status %s, %+v", h.c.State().Status, k)
	}
}

func TestOrphanWorkFailsJob(t *testing.T) {
	h := newHarness(t, Spec{})
	root := RootID(h.c.id)
	h.publish(copyFinal("nobody-made-me", OutcomeCopied, "x"), "")
	h.publish(listFinal(root, 0, 0), "")
	if !h.drain() {
		t.Fatal("job did not end")
	}
	if st := h.c.State(); st.Status != Failed || !strings.Contains(st.Error, "no listing task created") {
		t.Fatalf("%s: %q", st.Status, st.Error)
	}
}

func TestSummaryMustAddUp(t *testing.T) {
	h := newHarness(t, Spec{})
	root := RootID(h.c.id)
	// The task planned 3 objects, the batch reports 2.
	h.publish(listFinal(root, 3, 0, Child{"b", KindCopy}), "")
	h.publish(copyFinal("b", OutcomeCopied, "1", "2"), "")
	if !h.drain() {
		t.Fatal("job did not end")
	}
	if st := h.c.State(); st.Status != Failed || !strings.Contains(st.Error, "accounting mismatch") {
		t.Fatalf("%s: %q", st.Status, st.Error)
	}
}

func TestReplayAfterCrashCountsOnce(t *testing.T) {
	h := newHarness(t, Spec{})
	root := RootID(h.c.id)
	h.publish(listFinal(root, 2, 0, Child{"s", KindList}, Child{"b", KindCopy}), "")
	h.publish(copyFinal("b", OutcomeCopied, "1", "2"), "")
	h.drain()
	saved := h.c.State() // what a save would have stored before the crash
	h.publish(copyFinal("b2", OutcomeSkipped, "s/1"), "")
	h.publish(copyFinal("b2", OutcomeCopied, "s/1"), "dup")
	h.applyOnly() // applied, not saved: then the process dies
	want := h.counters()
	h.publish(listFinal("s", 1, 0, Child{"b2", KindCopy}), "")
	// A new coordinator starts from the saved state: the ledger already
	// has the records after it, and must replay them to the same counts.
	c2 := &Coordinator{conn: h.conn, id: h.c.id, state: saved, ledger: h.c.ledger}
	c2.opts.Log = discardLog()
	h.c = c2
	if !h.drain() {
		t.Fatal("replayed job did not end")
	}
	got := h.counters()
	if got.Skipped != want.Skipped || got.Copied != 2 || got.WorkOpen != 0 || got.WorkPending != 0 || got.Duplicates != want.Duplicates || got.Listed != 3 {
		t.Fatalf("replay: %+v, want %+v", got, want)
	}
}

func TestRedriveTwice(t *testing.T) {
	h := newHarness(t, Spec{})
	root := RootID(h.c.id)
	obj := Obj{K: "bad", S: 5}
	h.publish(Final{Kind: KindList, Work: root, Children: []Child{{"b", KindCopy}, {"p", KindList}},
		Task: &TaskResult{Listed: 1, ListedBytes: 5, Enqueued: 1, EnqueuedSize: 5}}, "")
	f := Final{Kind: KindCopy, Work: "b", Outcomes: []Result{{Kind: "object", Key: "bad", ListedSize: 5, Outcome: OutcomeFailed, Error: "boom"}}}
	h.publish(f, "")
	dlq(t, h, DLQEntry{Kind: KindCopy, Obj: &obj, Error: "boom", Attempts: 3})
	h.publish(Final{Kind: KindList, Work: "p", Task: &TaskResult{Failed: true, Error: "HTTP 500"}}, "")
	listFailed := lister.Task{Prefix: "p/"}
	dlq(t, h, DLQEntry{Kind: KindList, Task: &listFailed, Error: "HTTP 500", Attempts: 3})
	if !h.drain() {
		t.Fatal("job did not end")
	}
	if k := h.counters(); k.Failed != 1 || k.Listed != 1 || k.TasksFailed != 1 || h.c.State().Status != Failed {
		t.Fatalf("%s: %+v", h.c.State().Status, k)
	}
	// Redrive, then redrive again: the second finds nothing.
	n, err := Redrive(h.ctx, h.conn, h.c.id)
	if err != nil || n != 2 {
		t.Fatalf("redrive: %d %v", n, err)
	}
	if n, err := Redrive(h.ctx, h.conn, h.c.id); err != nil || n != 0 {
		t.Fatalf("second redrive: %d %v", n, err)
	}
	st, _, err := Load(h.ctx, h.conn, h.c.id)
	if err != nil || st.Status != Running {
		t.Fatalf("reopened: %s %v", st.Status, err)
	}
	// A crash half-way through a redrive means its records are published
	// again, after the duplicate window: the ledger must count them once.
	for _, f := range records(t, h, KindRedrive) {
		h.publish(f, "again-"+f.Work)
	}
	h.c.state.Status, h.c.state.Error, h.c.state.Finished = Running, "", nil
	if h.drain() {
		t.Fatal("finished before the redriven work ran")
	}
	if k := h.counters(); k.Failed != 0 || k.TasksFailed != 0 || k.WorkOpen != 2 || k.Duplicates != 2 {
		t.Fatalf("after redrive records: %+v", k)
	}
	copies, lists := workIDs(t, h, KindCopy), workIDs(t, h, KindList)
	if len(copies) != 1 || len(lists) != 1 {
		t.Fatalf("redriven work: copies %v, lists %v", copies, lists)
	}
	h.publish(Final{Kind: KindCopy, Work: copies[0], Outcomes: []Result{{Kind: "object", Key: "bad", Size: 5, ListedSize: 5, Outcome: OutcomeCopied}}}, "")
	h.publish(listFinal(lists[0], 0, 0), "")
	if !h.drain() {
		t.Fatal("job did not end")
	}
	k := h.counters()
	if k.Failed != 0 || k.Copied != 1 || k.Listed != 1 || k.AccountedBytes != 5 || h.c.State().Status != Done {
		t.Fatalf("status %s %q, %+v", h.c.State().Status, h.c.State().Error, k)
	}
}

// records returns the Finals of a kind on the job's results stream.
func records(t *testing.T, h *harness, kind string) []Final {
	t.Helper()
	stream, err := h.conn.JS.Stream(h.ctx, queue.StreamResults)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The stream may have holes: a finished job's records are purged.
	var out []Final
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(h.ctx, seq)
		if err != nil {
			continue
		}
		if f, err := DecodeFinal(m.Data); err == nil && f.Kind == kind {
			out = append(out, f)
		}
	}
	return out
}

// Helpers.

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func holdDeletes(t *testing.T, h *harness, n int) {
	t.Helper()
	objs := make([]Obj, n)
	for i := range objs {
		objs[i] = Obj{K: "x" + string(rune('0'+i)) + ContentID(time.Now().UnixNano())[:4]}
	}
	w := Work{V: WireVersion, Job: h.c.id, Kind: KindDelete, Attempt: 1, Objs: objs}
	w.ID = ContentID(h.c.id, "delete", objs)
	b, _ := json.Marshal(w)
	if _, err := h.conn.Publish(h.ctx, queue.DeleteSubject(h.c.id), h.c.id, b, w.ID); err != nil {
		t.Fatal(err)
	}
}

func dlq(t *testing.T, h *harness, e DLQEntry) {
	t.Helper()
	e.V, e.Job, e.Time = WireVersion, h.c.id, time.Now().UTC()
	b, _ := json.Marshal(e)
	if _, err := h.conn.Publish(h.ctx, queue.DLQSubject(h.c.id), h.c.id, b, ""); err != nil {
		t.Fatal(err)
	}
}

func workIDs(t *testing.T, h *harness, kind string) []string {
	t.Helper()
	stream, err := h.conn.JS.Stream(h.ctx, queue.StreamWork)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := stream.GetMsg(h.ctx, seq)
		if err != nil || m.Subject != queue.WorkSubject(h.c.id, kind) {
			continue
		}
		w, err := DecodeWork(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, w.ID)
	}
	return out
}

func workCount(t *testing.T, h *harness, kind string) int { return len(workIDs(t, h, kind)) }

// TestForgedRecordsRefused: results, dead letters and held deletes that no
// trusted key signed are never applied: a forged Final of the root cannot
// end the job early, a forged dead letter is neither listed nor redriven.
func TestForgedRecordsRefused(t *testing.T) {
	h := newHarness(t, Spec{Delete: true})
	root := RootID(h.c.id)
	f := listFinal(root, 0, 0)
	f.V, f.Job = WireVersion, h.c.id
	b, _ := json.Marshal(f)
	// Unsigned.
	if _, err := h.conn.JS.Publish(h.ctx, queue.ResultSubject(h.c.id), b); err != nil {
		t.Fatal(err)
	}
	// Signed by a key the coordinator does not trust.
	other := trust.Generate()
	if _, err := h.conn.JS.PublishMsg(h.ctx, other.Msg(queue.ResultSubject(h.c.id), h.c.id, b)); err != nil {
		t.Fatal(err)
	}
	// Signed by the coordinator's own key for another job, replayed here.
	replayed := h.conn.Signer.Msg(queue.ResultSubject("otherjob"), "otherjob", b)
	replayed.Subject = queue.ResultSubject(h.c.id)
	if _, err := h.conn.JS.PublishMsg(h.ctx, replayed); err != nil {
		t.Fatal(err)
	}
	if h.drain() {
		t.Fatalf("job finished on forged records: %+v", h.c.State())
	}
	if st := h.c.State(); st.Refused != 3 || st.Counters.TasksDone != 0 {
		t.Fatalf("refused %d (want 3), tasks done %d (want 0)", st.Refused, st.Counters.TasksDone)
	}
	e, _ := json.Marshal(DLQEntry{V: WireVersion, Job: h.c.id, Kind: KindCopy, Obj: &Obj{K: "forged"}, Error: "x", Attempts: 3})
	if _, err := h.conn.JS.PublishMsg(h.ctx, other.Msg(queue.DLQSubject(h.c.id), h.c.id, e)); err != nil {
		t.Fatal(err)
	}
	if entries, err := ReadDLQ(h.ctx, h.conn, h.c.id, 0); err != nil || len(entries) != 0 {
		t.Fatalf("ReadDLQ = %v, %v; want no entries (the only one is forged)", entries, err)
	}
	h.publish(listFinal(root, 0, 0), "")
	if !h.drain() || h.c.State().Status != Done {
		t.Fatalf("the real Final did not finish the job: %+v", h.c.State())
	}
}

// A resume treats as possibly handled every work message an earlier run's
// consumers delivered: in pack mode that includes the unpack consumer's,
// whose messages can sit above everything the work consumer delivered.
func TestDeliveredBelowCountsEveryConsumer(t *testing.T) {
	h := newHarness(t, Spec{Pack: &PackSpec{}})
	if err := h.c.ensureConsumer(h.ctx, false); err != nil {
		t.Fatal(err)
	}
	pub := func(kind, id string) uint64 {
		t.Helper()
		ack, err := h.conn.Publish(h.ctx, queue.WorkSubject(h.c.id, kind), h.c.id, []byte(`{}`), id)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	// deliver takes messages from consumer up to the one at seq (the job
	// also holds its root listing task).
	deliver := func(consumer string, seq uint64) {
		t.Helper()
		cons, err := h.conn.JS.Consumer(h.ctx, queue.StreamWork, consumer)
		if err != nil {
			t.Fatal(err)
		}
		for {
			m, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
			if err != nil {
				t.Fatal(err)
			}
			_ = m.Ack()
			md, err := m.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			if md.Sequence.Stream >= seq {
				return
			}
		}
	}
	copySeq := pub(KindCopy, "c1")
	pub(KindCopy, "c2") // never delivered
	unpackSeq := pub(KindUnpack, "u1")
	if got := h.c.deliveredBelow(h.ctx); got != 1 {
		t.Fatalf("nothing delivered: deliveredBelow = %d, want 1", got)
	}
	deliver(WorkConsumer(h.c.id), copySeq)
	if got := h.c.deliveredBelow(h.ctx); got != copySeq+1 {
		t.Fatalf("work consumer delivered seq %d: deliveredBelow = %d, want %d", copySeq, got, copySeq+1)
	}
	deliver(UnpackConsumer(h.c.id), unpackSeq)
	if got := h.c.deliveredBelow(h.ctx); got != unpackSeq+1 {
		t.Fatalf("unpack consumer delivered seq %d: deliveredBelow = %d, want %d", unpackSeq, got, unpackSeq+1)
	}
	// A job without pack mode has no unpack consumer: the work consumer
	// alone decides.
	h2 := newHarness(t, Spec{})
	if err := h2.c.ensureConsumer(h2.ctx, false); err != nil {
		t.Fatal(err)
	}
	if got := h2.c.deliveredBelow(h2.ctx); got != 1 {
		t.Fatalf("plain job, nothing delivered: deliveredBelow = %d, want 1", got)
	}
}
