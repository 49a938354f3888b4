package job

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/queue"
	"github.com/ferry-dev/ferry/internal/testenv"
)

func externalConn(t *testing.T) *queue.Conn {
	t.Helper()
	n := testenv.StartNATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := queue.Connect(ctx, queue.Options{URL: n.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	return conn
}

// newExternalJob creates a copy job on an external nats-server; the context
// ends after a minute.
func newExternalJob(t *testing.T) (context.Context, *queue.Conn, *Coordinator) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	conn := externalConn(t)
	c, err := Create(ctx, conn, Spec{Command: "copy"})
	if err != nil {
		t.Fatal(err)
	}
	return ctx, conn, c
}

// deadHolder is a lock holder naming a process of this host that exited.
func deadHolder(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	h, _ := os.Hostname()
	return h + " pid " + strconv.Itoa(cmd.Process.Pid)
}

// TestStaleLockTakenOver: `job resume` right after a kill -9 (the lock's TTL
// not yet expired) takes over the job instead of saying it runs elsewhere;
// a live holder's lock is respected.
func TestStaleLockTakenOver(t *testing.T) {
	ctx, conn, c := newExternalJob(t)
	if _, err := conn.Locks.Put(ctx, c.id, []byte(deadHolder(t))); err != nil {
		t.Fatal(err)
	}
	if Locked(ctx, conn, c.id) {
		t.Fatal("a dead process's lock counts as held")
	}
	_, release, err := c.lock(ctx)
	if err != nil {
		t.Fatalf("stale lock not taken over: %v", err)
	}
	release()

	h, _ := os.Hostname()
	if _, err := conn.Locks.Put(ctx, c.id, []byte(h+" pid 1")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.lock(ctx); !errors.Is(err, ErrLocked) {
		t.Fatalf("live holder's lock: %v", err)
	}
}

// TestLeaseLostStopsCoordinator: a coordinator that cannot refresh its lock
// (someone else holds it now) stops instead of coordinating beside them.
func TestLeaseLostStopsCoordinator(t *testing.T) {
	ctx, conn, c := newExternalJob(t)
	done := make(chan error, 1)
	started := make(chan struct{})
	var once bool
	go func() {
		_, err := c.Run(ctx, RunOptions{Tick: 10 * time.Millisecond, OnUpdate: func(State) {
			if !once {
				once = true
				close(started)
			}
		}})
		done <- err
	}()
	<-started
	// Another process takes the lock (as if ours had expired).
	if err := conn.Locks.Purge(ctx, c.id); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Locks.Create(ctx, c.id, []byte("elsewhere pid 7")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("Run returned %v, want ErrLeaseLost", err)
		}
	case <-ctx.Done():
		t.Fatal("coordinator kept running without its lock")
	}
}

// TestLockRefreshAfterLostAnswer: a refresh whose answer was lost (the
// server applied it, the client timed out) leaves the coordinator with an
// old revision; the next refresh must keep the lock, not give the job up.
// A lock another process holds, or one that expired, is lost.
func TestLockRefreshAfterLostAnswer(t *testing.T) {
	ctx, conn, c := newExternalJob(t)
	holder := []byte(lockHolder())
	rev, err := conn.Locks.Create(ctx, c.id, holder)
	if err != nil {
		t.Fatal(err)
	}
	// The refresh the coordinator never heard back from.
	if _, err := conn.Locks.Update(ctx, c.id, holder, rev); err != nil {
		t.Fatal(err)
	}
	r, err := c.refreshLock(ctx, holder, rev)
	if err != nil {
		t.Fatalf("refresh after a lost answer: %v", err)
	}
	if cur, err := conn.Locks.Get(ctx, c.id); err != nil || cur.Revision() != r || string(cur.Value()) != string(holder) {
		t.Fatalf("lock after refresh: %v, want revision %d held by us", err, r)
	}
	// Another process took it.
	if _, err := conn.Locks.Put(ctx, c.id, []byte("elsewhere pid 1")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.refreshLock(ctx, holder, r); !errors.Is(err, errLockTaken) {
		t.Fatalf("refresh of a lock another process holds: %v, want errLockTaken", err)
	}
	// It expired (deleted).
	if err := conn.Locks.Delete(ctx, c.id); err != nil {
		t.Fatal(err)
	}
	if _, err := c.refreshLock(ctx, holder, r); !errors.Is(err, errLockTaken) {
		t.Fatalf("refresh of a deleted lock: %v, want errLockTaken", err)
	}
}
