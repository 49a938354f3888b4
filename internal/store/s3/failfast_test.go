package s3

import (
	"errors"
	"net/http"
	"testing"
	"time"
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
