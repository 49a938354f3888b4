package job

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-dev/ferry/internal/queue"
)

// ErrLeaseLost: the coordinator could not refresh its lock on the job (the
// queue was unreachable for longer than the lock's TTL, or another process
// took the job); it stops instead of coordinating beside someone else.
var ErrLeaseLost = errors.New("lost the job's coordinator lock")

// errLockTaken: the lock's key no longer holds this process's name.
var errLockTaken = errors.New("the lock is held by another process or expired")

// refreshLock renews the lock held by holder at revision rev and returns
// its new revision. An update refused because the revision moved is not
// taken for a lost lock at once: an earlier update whose answer was lost
// (it timed out on a busy machine, but the server applied it) moves the
// revision too. When the key still names holder, the lock is renewed at
// its current revision; otherwise the error wraps errLockTaken.
func (c *Coordinator) refreshLock(ctx context.Context, holder []byte, rev uint64) (uint64, error) {
	r, err := c.conn.Locks.Update(ctx, c.id, holder, rev)
	if err == nil || !errors.Is(err, jetstream.ErrKeyExists) {
		return r, err
	}
	cur, gerr := c.conn.Locks.Get(ctx, c.id)
	switch {
	case errors.Is(gerr, jetstream.ErrKeyNotFound):
		return 0, fmt.Errorf("%w: %v", errLockTaken, err)
	case gerr != nil:
		return 0, gerr // unknown: retried at the next tick
	case !bytes.Equal(cur.Value(), holder):
		return 0, fmt.Errorf("%w (%s): %v", errLockTaken, cur.Value(), err)
	}
	r, err = c.conn.Locks.Update(ctx, c.id, holder, cur.Revision())
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("%w: %v", errLockTaken, err)
	}
	return r, err
}

// lockHolder names this process in a lock: "HOST pid N".
func lockHolder() string {
	h, _ := os.Hostname()
	return h + " pid " + strconv.Itoa(os.Getpid())
}

// staleHolder reports whether a lock held by holder belongs to a process of
// this host that no longer exists.
func staleHolder(holder string) bool {
	h, _ := os.Hostname()
	host, pidStr, ok := strings.Cut(holder, " pid ")
	if !ok || host != h {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(pidStr))
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// lock takes the job's coordinator lock and keeps it fresh. The returned
// context ends (with cause ErrLeaseLost) when the lock cannot be refreshed;
// release gives the lock up.
func (c *Coordinator) lock(ctx context.Context) (lease context.Context, release func(), err error) {
	holder := []byte(lockHolder())
	// Several processes of this machine may share a state directory's
	// server (or a cluster): a lock is taken over only when its holder is
	// a process of this host that no longer exists.
	if cur, gerr := c.conn.Locks.Get(ctx, c.id); gerr == nil && staleHolder(string(cur.Value())) {
		_ = c.conn.Locks.Delete(ctx, c.id, jetstream.LastRevision(cur.Revision()))
	}
	rev, err := c.conn.Locks.Create(ctx, c.id, holder)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			cur, gerr := c.conn.Locks.Get(ctx, c.id)
			who := "another process"
			if gerr == nil {
				who = string(cur.Value())
			}
			return nil, nil, fmt.Errorf("job %s: %w (%s; a killed process's lock expires after %s)", c.id, ErrLocked, who, queue.LockTTL)
		}
		return nil, nil, fmt.Errorf("lock job %s: %w", c.id, err)
	}
	leaseCtx, lost := context.WithCancelCause(context.Background())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(queue.LockTTL / 3)
		defer t.Stop()
		lastOK := time.Now()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			uctx, cancel := context.WithTimeout(context.Background(), queue.LockTTL/3)
			r, err := c.refreshLock(uctx, holder, rev)
			cancel()
			switch {
			case err == nil:
				rev, lastOK = r, time.Now()
			case errors.Is(err, errLockTaken) || time.Since(lastOK) > queue.LockTTL:
				// Someone else holds it now, or it has expired for others.
				lost(fmt.Errorf("job %s: %w: %v", c.id, ErrLeaseLost, err))
				return
			}
		}
	})
	return leaseCtx, func() {
		close(stop)
		wg.Wait()
		lost(nil)
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer dcancel()
		_ = c.conn.Locks.Delete(dctx, c.id, jetstream.LastRevision(rev))
	}, nil
}
