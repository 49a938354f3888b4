package s3

import (
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Fail fast on an endpoint that answers nothing but failures. The SDK
// retries each failed request up to RetryMaxAttempts times with backoff,
// which rides out a server's bad moments. But when every request to an
// endpoint has failed for a while (a volume limit answering InternalError to
// every write, a backend gone), those retries only multiply the time each
// object takes to fail: an object then fails after one request, so that
// ferry's circuit breaker (package worker) sees the failures at once and
// pauses the job. One answer that is not a failure ends it.
const (
	// failingAnswers and failingFor: the endpoint is failing once at least
	// this many answers in a row, over at least this long, were failures
	// (5xx, or no answer). Both, so that neither a burst of concurrent
	// failures nor a slow trickle of them cuts retries, and a server failing
	// a share of requests at random never does. The answers in a row are
	// not independent: a retry follows a failure, and a server failing a
	// request often fails its next attempts too (a burst of 503s, one bad
	// object). With bursts of up to 3 failed answers per request, 48 in a
	// row hold at least 16 independent failures: at 50% of the requests
	// failing, about once in 65,000. With 16 in a row (before), 503/500
	// bursts of 3 on half of the requests (the fault table's 5xx 50% row:
	// three quarters of the answers fail) made the endpoint count as
	// failing within a minute, and a listing and objects lost their
	// retries; one request failing 16 attempts did too. With 16 or more
	// requests in flight, a server failing everything is still found
	// failing after failingFor; with 4, after about 30 s of retries.
	failingAnswers = 48
	failingFor     = 5 * time.Second
)

// health tracks the failures in a row of one endpoint.
type health struct {
	mu     sync.Mutex
	streak int
	since  time.Time // the first failure of the streak
	now    func() time.Time
}

// answered records a request's answer: resp and err as the HTTP client
// returned them; cancelled requests are not answers.
func (h *health) answered(resp *http.Response, err error, cancelled bool) {
	if cancelled {
		return
	}
	failed := err != nil || resp.StatusCode >= 500
	h.mu.Lock()
	defer h.mu.Unlock()
	if !failed {
		h.streak = 0
		return
	}
	if h.streak == 0 {
		h.since = h.clock()
	}
	h.streak++
}

func (h *health) clock() time.Time {
	if h.now != nil {
		return h.now()
	}
	return time.Now()
}

// failing reports whether the endpoint has answered only failures for at
// least failingAnswers answers and failingFor.
func (h *health) failing() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.streak >= failingAnswers && h.clock().Sub(h.since) >= failingFor
}

// Failing reports whether the endpoint of this limiter is failing every
// request now (its requests are not retried by the SDK meanwhile).
func (l *Limiter) Failing() bool { return l.health.failing() }

// failFastRetryer retries what the retryer below retries, except while the
// endpoint is failing.
type failFastRetryer struct {
	aws.RetryerV2
	h *health
}

func (r failFastRetryer) IsErrorRetryable(err error) bool {
	return r.RetryerV2.IsErrorRetryable(err) && !r.h.failing()
}
