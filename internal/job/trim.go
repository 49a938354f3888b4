package job

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-dev/ferry/internal/queue"
)

// trimEvery is how many of a job's records the coordinator lets gather on
// the results stream, once folded in and saved, before it purges them.
const trimEvery = 1000

// trimResults purges the job's records from the results stream up to and
// including the LastSeq of the state last saved to the bucket (savedSeq),
// every trimEvery records, or all of them when force (the job finished).
//
// Why this is safe (docs/design.md, "State that does not grow"): a
// coordinator, this one or a later one after a crash, reads the results
// after the saved LastSeq and never before; the saved counters include
// every record up to it, and the audit lines they made were fsynced before
// the state was saved (save syncs the audit log first). The ledger keeps
// the sequences of the records that registered and finished each item, not
// the records. Nothing else reads the stream. So a record at or below the
// saved LastSeq is never needed again. The purge comes after the save, so
// a crash between the two only leaves records that a later trim removes.
func (c *Coordinator) trimResults(ctx context.Context, force bool) {
	c.mu.Lock()
	upTo := c.savedSeq
	due := upTo > c.trimmedTo && (force || upTo-c.trimmedTo >= trimEvery)
	c.mu.Unlock()
	if !due {
		return
	}
	s, err := c.conn.JS.Stream(ctx, queue.StreamResults)
	if err == nil {
		// Purge below upTo+1: every record of the job up to upTo.
		err = s.Purge(ctx, jetstream.WithPurgeSubject(queue.ResultSubject(c.id)), jetstream.WithPurgeSequence(upTo+1))
	}
	if err != nil {
		c.opts.Log.Warn("trim results", "job", c.id, "err", err)
		return
	}
	c.mu.Lock()
	c.trimmedTo = upTo
	c.mu.Unlock()
}
