package s3

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/testenv"
)

func TestHealthFailing(t *testing.T) {
	now := time.Unix(1000, 0)
	h := &health{now: func() time.Time { return now }}
	fail := func(n int) {
		for range n {
			h.answered(&http.Response{StatusCode: 500}, nil, false)
		}
	}
	fail(failingAnswers * 4)
	if h.failing() {
		t.Fatal("failing at once, before failingFor passed")
	}
	now = now.Add(failingFor)
	if !h.failing() {
		t.Fatal("not failing after failingFor of failures only")
	}
	h.answered(&http.Response{StatusCode: 200}, nil, false)
	if h.failing() {
		t.Fatal("still failing after a success")
	}
	// A slow trickle: long enough, but too few answers.
	fail(failingAnswers - 1)
	now = now.Add(time.Minute)
	if h.failing() {
		t.Fatal("failing after fewer than failingAnswers")
	}
	// Cancelled requests are not answers; errors without one are failures.
	h.answered(nil, errors.New("canceled"), true)
	if h.failing() {
		t.Fatal("a cancelled request counted")
	}
	h.answered(nil, errors.New("connection refused"), false)
	if !h.failing() {
		t.Fatal("a connection error did not count")
	}
	// A 404 is an answer that is not a failure.
	h.answered(&http.Response{StatusCode: 404}, nil, false)
	if h.failing() {
		t.Fatal("still failing after a 404")
	}
}

// simulateEndpoint drives a health with inFlight requests at a time, each
// retried as the SDK does (up to DefaultRetryMaxAttempts attempts, the
// retry policy's delays at three quarters of their range, 10 ms per
// answer, no retry while the endpoint is failing), against fail (whether
// an attempt of request i fails), on a fake clock, until requests
// requests have ended. It returns how many requests lost retries to the
// endpoint counting as failing, and when it first did (0: never).
func simulateEndpoint(inFlight, requests int, fail func(i int) bool) (cut int, firstFailing time.Duration) {
	start := time.Unix(1000, 0)
	now := start
	h := &health{now: func() time.Time { return now }}
	type req struct {
		i, attempt int
		at         time.Time
	}
	var pending []*req
	next := 0
	for ; next < inFlight; next++ {
		pending = append(pending, &req{i: next, at: now})
	}
	for ended := 0; ended < requests; {
		k := 0
		for j, r := range pending {
			if r.at.Before(pending[k].at) {
				k = j
			}
		}
		r := pending[k]
		if r.at.After(now) {
			now = r.at
		}
		now = now.Add(10 * time.Millisecond)
		r.attempt++
		failed := fail(r.i)
		if failed {
			h.answered(&http.Response{StatusCode: http.StatusServiceUnavailable}, nil, false)
		} else {
			h.answered(&http.Response{StatusCode: http.StatusOK}, nil, false)
		}
		if h.failing() && firstFailing == 0 {
			firstFailing = now.Sub(start)
		}
		if failed && r.attempt < DefaultRetryMaxAttempts && !h.failing() {
			d := min(retryBase<<(r.attempt-1), retryMaxDelay)
			r.at = now.Add(d * 3 / 4)
			continue
		}
		if failed && r.attempt < DefaultRetryMaxAttempts {
			cut++
		}
		ended++
		pending[k] = &req{i: next, at: now}
		next++
	}
	return cut, firstFailing
}

// TestHealthBurstsNotFailing: a server answering 503/500 bursts of 3 (a
// request and its next two attempts) to half of the requests, the fault
// table's 5xx 50% row, fails three quarters of the answers, in runs. With
// one or four requests in flight, 3,000 requests never find the endpoint
// failing (with 16 failed answers in a row over 5 s, as before, 73 and 86
// of them lost their retries). A server failing everything is found
// failing at the first answer after failingFor with 16 requests in
// flight, and within a minute with 4.
func TestHealthBurstsNotFailing(t *testing.T) {
	for _, inFlight := range []int{1, 4} {
		draw := testenv.RandomFaults(uint64(inFlight), testenv.Chances{Unavailable: 0.5, Burst: 3})
		cut, first := simulateEndpoint(inFlight, 3000, func(i int) bool {
			return draw(httptest.NewRequest(http.MethodGet, "/b/k"+strconv.Itoa(i), nil)).Status != 0
		})
		if cut > 0 || first > 0 {
			t.Errorf("%d in flight: the endpoint counted as failing after %s; %d requests lost retries", inFlight, first, cut)
		}
	}
	for inFlight, within := range map[int]time.Duration{16: failingFor + retryMaxDelay, 4: time.Minute} {
		_, first := simulateEndpoint(inFlight, 100, func(int) bool { return true })
		t.Logf("every answer a failure, %d in flight: failing after %s", inFlight, first)
		if first == 0 || first > within {
			t.Errorf("every answer a failure, %d in flight: failing after %s (0: never), want within %s", inFlight, first, within)
		}
	}
}
