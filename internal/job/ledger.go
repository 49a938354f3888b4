package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The ledger is how a coordinator proves a job complete. Every work item
// (listing task, copy or delete batch, and the skip, release and redrive
// records) has an entry that records two events, each at the results-stream
// sequence of the record that carried it:
//
//   - registered: a finished parent's Final named the item as a child (the
//     job's root listing task is registered when the job is created, and
//     release and redrive records register themselves);
//   - finished: the item's own Final was applied.
//
// Only the first of each event counts; a later one (a redelivered message
// handled again) is a duplicate and changes nothing, counters and audit log
// included. The counters keep
//
//	open    = items registered and not finished
//	pending = items finished and not yet registered
//
// and the job is complete when both are zero. Why that is a proof, whatever
// the order of results: take any unfinished item and walk up from the root
// to it; the first unfinished item on that path is either the root
// (registered from the start) or the child of a finished item, whose Final
// named it; either way it is registered and unfinished, so open > 0. And
// every item a finished parent names is counted in open until its own Final
// arrives, so a child that finishes before its parent's Final is counted in
// pending until the parent's Final names it. An item that finishes but that
// no finished item ever names (work nobody created) keeps pending above
// zero: the job then ends failed instead of done.
//
// Entries live in the ferry-ledger bucket (key JOB.ID) so that a coordinator
// that restarts replays the stream after its saved sequence to the same
// counts: an event found already recorded at the very sequence being
// replayed is applied again (the saved counters did not include it), at any
// other sequence it is a duplicate.

// ledgerKV is the part of a key-value bucket the ledger uses.
type ledgerKV interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Put(ctx context.Context, key string, value []byte) error
}

// ledgerEntry is one item's record. Reg is the sequence of the record that
// registered it (rootReg: from the start), Fin that of its first Final.
type ledgerEntry struct {
	Reg  int64  `json:"r,omitempty"`
	Fin  uint64 `json:"f,omitempty"`
	Kind string `json:"k,omitempty"`
}

const rootReg = -1

// registeredBefore reports whether the item was registered before seq.
func (e ledgerEntry) registeredBefore(seq uint64) bool {
	return e.Reg == rootReg || (e.Reg > 0 && uint64(e.Reg) < seq)
}

type ledger struct {
	kv  ledgerKV
	job string
}

func (l *ledger) key(id string) string { return l.job + "." + id }

func (l *ledger) get(ctx context.Context, id string) (ledgerEntry, error) {
	b, ok, err := l.kv.Get(ctx, l.key(id))
	if err != nil {
		return ledgerEntry{}, fmt.Errorf("ledger %s: %w", id, err)
	}
	var e ledgerEntry
	if ok {
		if err := json.Unmarshal(b, &e); err != nil {
			return ledgerEntry{}, fmt.Errorf("ledger %s: %w", id, err)
		}
	}
	return e, nil
}

func (l *ledger) put(ctx context.Context, id string, e ledgerEntry) error {
	b, _ := json.Marshal(e)
	if err := l.kv.Put(ctx, l.key(id), b); err != nil {
		return fmt.Errorf("ledger %s: %w", id, err)
	}
	return nil
}

// registerRoot registers the job's root listing task at creation and
// counts it open.
func (l *ledger) registerRoot(ctx context.Context, id, kind string, k *Counters) error {
	if err := l.put(ctx, id, ledgerEntry{Reg: rootReg, Kind: kind}); err != nil {
		return err
	}
	k.open(kind, 1)
	return nil
}

// apply records Final f, found at stream sequence seq, and its children. It
// reports whether f is the item's first Final, whose content the caller
// then applies; false means a duplicate to ignore.
func (l *ledger) apply(ctx context.Context, f Final, seq uint64, k *Counters) (bool, error) {
	e, err := l.get(ctx, f.Work)
	if err != nil {
		return false, err
	}
	if e.Fin != 0 && e.Fin != seq {
		k.Duplicates++
		return false, nil
	}
	if e.Fin == 0 {
		e.Fin = seq
		if e.Kind == "" {
			e.Kind = f.Kind
		}
		if f.Root && e.Reg == 0 {
			e.Reg = rootReg
		}
		if err := l.put(ctx, f.Work, e); err != nil {
			return false, err
		}
	}
	if !f.Root {
		if e.registeredBefore(seq) {
			k.open(e.Kind, -1)
		} else {
			k.pending(e.Kind, 1)
		}
	}
	if e.Kind == KindList {
		k.TasksDone++
	}
	seen := make(map[string]bool, len(f.Children))
	for _, c := range f.Children {
		if c.ID == "" || seen[c.ID] || c.ID == f.Work {
			continue
		}
		seen[c.ID] = true
		if err := l.register(ctx, c, seq, k); err != nil {
			return false, err
		}
	}
	return true, nil
}

// register records that the record at seq named child c.
func (l *ledger) register(ctx context.Context, c Child, seq uint64, k *Counters) error {
	e, err := l.get(ctx, c.ID)
	if err != nil {
		return err
	}
	if e.Reg != 0 && e.Reg != int64(seq) {
		return nil // named before: a duplicate
	}
	if e.Reg == 0 {
		e.Reg = int64(seq)
		if e.Kind == "" {
			e.Kind = c.Kind
		}
		if err := l.put(ctx, c.ID, e); err != nil {
			return err
		}
	}
	if e.Fin != 0 && e.Fin < seq {
		k.pending(e.Kind, -1)
	} else {
		k.open(e.Kind, 1)
	}
	return nil
}

// finished reports whether work item id has a Final recorded (workers ask
// before handling a message: a redelivered message whose Final was applied
// needs no work).
func (l *ledger) finished(ctx context.Context, id string) (bool, error) {
	e, err := l.get(ctx, id)
	if err != nil {
		return false, err
	}
	return e.Fin != 0, nil
}

func (k *Counters) open(kind string, d int64) {
	k.WorkOpen += d
	if kind == KindList {
		k.TasksOpen += d
	}
}

func (k *Counters) pending(kind string, d int64) {
	k.WorkPending += d
	if kind == KindList {
		k.TasksPending += d
	}
}

// kvLedger adapts a JetStream key-value bucket. Calls are retried while
// the cluster elects a new leader (a node lost), for up to a minute.
type kvLedger struct{ kv jetstream.KeyValue }

func (b kvLedger) Get(ctx context.Context, key string) ([]byte, bool, error) {
	var v []byte
	var found bool
	err := retryKV(ctx, func(ctx context.Context) error {
		e, err := b.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			v, found = nil, false
			return nil
		}
		if err != nil {
			return err
		}
		v, found = e.Value(), true
		return nil
	})
	return v, found, err
}

func (b kvLedger) Put(ctx context.Context, key string, value []byte) error {
	return retryKV(ctx, func(ctx context.Context) error {
		_, err := b.kv.Put(ctx, key, value)
		return err
	})
}

// retryKV runs op until it succeeds, fails for a reason other than an
// unavailable server, ctx ends, or a minute passed.
func retryKV(ctx context.Context, op func(context.Context) error) error {
	deadline := time.Now().Add(time.Minute)
	delay := 100 * time.Millisecond
	for {
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := op(octx)
		cancel()
		if err == nil || !transient(err) || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// transient reports errors of a JetStream cluster that is electing a
// leader or briefly unreachable.
func transient(err error) bool {
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, jetstream.ErrNoHeartbeat) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrDisconnected)
}

// WorkFinished reports whether work item id of job has its Final applied by
// the job's coordinator.
func WorkFinished(ctx context.Context, kv jetstream.KeyValue, jobID, id string) (bool, error) {
	l := &ledger{kv: kvLedger{kv}, job: jobID}
	return l.finished(ctx, id)
}

// WaitWorkFinished waits until work item id of job has its Final applied
// by the job's coordinator, watching its ledger entry (no polling), for at
// most ctx's life. It reports whether the Final was applied.
func WaitWorkFinished(ctx context.Context, kv jetstream.KeyValue, jobID, id string) (bool, error) {
	l := &ledger{kv: kvLedger{kv}, job: jobID}
	w, err := kv.Watch(ctx, l.key(id))
	if err != nil {
		return false, fmt.Errorf("watch ledger %s: %w", id, err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return false, nil
		case e, ok := <-w.Updates():
			if !ok {
				return false, nil
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue // the end of the initial values, or a purge
			}
			var le ledgerEntry
			if err := json.Unmarshal(e.Value(), &le); err != nil {
				return false, fmt.Errorf("ledger %s: %w", id, err)
			}
			if le.Fin != 0 {
				return true, nil
			}
		}
	}
}
