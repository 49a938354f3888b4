package s3

import (
	"context"
	"testing"
	"time"
)

func TestLimiterAIMD(t *testing.T) {
	l := newLimiter()
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	var rounds []uint64
	for range 10 {
		r, err := l.acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rounds = append(rounds, r)
	}
	// A throttle halves the requests in flight; a second throttle of the
	// same round does not halve again.
	l.release(rounds[0], true)
	l.release(rounds[1], true)
	if st := l.Stats(); st.Limit != 5 || st.InFlight != 8 || st.Throttles != 2 || st.Decreases != 1 {
		t.Fatalf("after two throttles of one round: %+v", st)
	}
	if _, err := l.acquire(cancelled); err == nil {
		t.Fatal("a slot above the limit was given")
	}
	// A throttle of a request sent after the decrease halves again.
	for range 4 {
		l.release(rounds[2], false)
		rounds = rounds[1:]
	}
	if st := l.Stats(); st.InFlight != 4 || st.Limit != 5 {
		t.Fatalf("after 4 answers: %+v", st)
	}
	r, err := l.acquire(ctx)
	if err != nil || r != 1 {
		t.Fatalf("round %d, %v", r, err)
	}
	l.release(r, true)
	if st := l.Stats(); st.Limit != 2 || st.Decreases != 2 {
		t.Fatalf("after a throttle of the new round: %+v", st)
	}
	for range 4 {
		l.release(0, false)
	}
	// Never below 1; then one more per limit answers.
	for range 3 {
		r, err := l.acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		l.release(r, true)
	}
	if st := l.Stats(); st.Limit != 1 || st.InFlight != 0 {
		t.Fatalf("after repeated throttles: %+v", st)
	}
	for want := 2.0; want <= 4; want++ {
		for range int(want - 1) {
			r, _ := l.acquire(ctx)
			l.release(r, false)
		}
		if st := l.Stats(); st.Limit != want {
			t.Fatalf("limit %v, want %v", st.Limit, want)
		}
	}
}

// TestLimiterWakesWaiters: requests waiting for a slot get one as slots
// free, one after the other (a release makes a new channel only when a
// request waits on the old one).
func TestLimiterWakesWaiters(t *testing.T) {
	l := newLimiter()
	l.mu.Lock()
	l.limit = 1
	l.mu.Unlock()
	ctx := t.Context()
	r, err := l.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A release with nobody waiting (a throttle: the limit stays 1),
	// then the slot taken again.
	l.release(r, true)
	if r, err = l.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	const waiters = 8
	done := make(chan struct{}, waiters)
	for range waiters {
		go func() {
			r, err := l.acquire(ctx)
			if err != nil {
				t.Error(err)
			}
			done <- struct{}{}
			l.release(r, false)
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); !func() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.watched }(); {
		if time.Now().After(deadline) {
			t.Fatalf("no request waits: %+v", l.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	l.release(r, false)
	timeout := time.After(10 * time.Second)
	for range waiters {
		select {
		case <-done:
		case <-timeout:
			t.Fatalf("waiters not woken: %+v", l.Stats())
		}
	}
}
