package s3

import (
	"context"
	"testing"
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
