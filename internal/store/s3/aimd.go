package s3

import (
	"context"
	"math"
	"net/http"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Adaptive concurrency (AIMD) per endpoint: every request of every Store
// of this process to one endpoint first takes a slot of that endpoint's
// limiter, until its answer's headers arrive. The limit starts high
// (maxInFlight); an answer saying the server is throttling (503 SlowDown,
// 429) halves it, down to 1, from the number of requests in flight then —
// at most once per round: a throttled request sent before the last
// decrease does not decrease it again; every limit other answers add one. Under sustained throttling the
// request rate drops until throttles are rare, then recovers.

// maxInFlight is the limit the limiters start from, above any concurrency
// ferry uses, so that a server that never throttles is never limited.
const maxInFlight = 4096

// Limiter is one endpoint's adaptive concurrency limit.
type Limiter struct {
	mu        sync.Mutex
	limit     float64
	inflight  int
	successes int           // answers since the limit last changed
	round     uint64        // increments at each decrease
	freed     chan struct{} // closed (and replaced) when a slot frees, if watched
	watched   bool          // a request waits on freed
	throttles int64
	decreases int64
	fixed     bool // SetAdaptive(false): the limit stays at maxInFlight

	// health tracks the endpoint's failures in a row (failfast.go).
	health health
}

// SetAdaptive turns the limiter's adaptation on (the default) or off: off,
// the limit goes back to its maximum and throttles no longer lower it (the
// measurements of docs/reliability.md compare the two).
func (l *Limiter) SetAdaptive(on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fixed = !on
	if l.fixed {
		l.limit, l.successes = maxInFlight, 0
	}
}

func newLimiter() *Limiter {
	return &Limiter{limit: maxInFlight, freed: make(chan struct{})}
}

var (
	limitersMu sync.Mutex
	limiters   = map[string]*Limiter{}
)

// EndpointLimiter returns the limiter shared by the Stores of this process
// that send requests to endpoint (for AWS: "s3." and the region).
func EndpointLimiter(endpoint string) *Limiter {
	limitersMu.Lock()
	defer limitersMu.Unlock()
	l, ok := limiters[endpoint]
	if !ok {
		l = newLimiter()
		limiters[endpoint] = l
	}
	return l
}

// LimiterStats describe a limiter now.
type LimiterStats struct {
	// Limit is the number of requests allowed in flight.
	Limit float64
	// InFlight is the number of requests in flight.
	InFlight int
	// Throttles counts the throttling answers, Decreases those that
	// halved the limit.
	Throttles, Decreases int64
}

// Stats returns the limiter's state.
func (l *Limiter) Stats() LimiterStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return LimiterStats{Limit: l.limit, InFlight: l.inflight, Throttles: l.throttles, Decreases: l.decreases}
}

// acquire waits for a slot; it returns the round it was taken in.
func (l *Limiter) acquire(ctx context.Context) (uint64, error) {
	for {
		l.mu.Lock()
		if float64(l.inflight) < math.Floor(l.limit) {
			l.inflight++
			r := l.round
			l.mu.Unlock()
			return r, nil
		}
		freed := l.freed
		l.watched = true
		l.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// release gives back a slot taken in round, after an answer that was a
// throttle or not.
func (l *Limiter) release(round uint64, throttled bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case throttled:
		l.throttles++
		if round == l.round && !l.fixed {
			l.limit = max(1, math.Floor(min(l.limit, float64(l.inflight))/2))
			l.successes = 0
			l.round++
			l.decreases++
		}
	case l.limit < maxInFlight:
		l.successes++
		if float64(l.successes) >= l.limit {
			l.limit++
			l.successes = 0
		}
	}
	l.inflight--
	// A new channel per release only when a request waits: most never do.
	if l.watched {
		close(l.freed)
		l.freed = make(chan struct{})
		l.watched = false
	}
}

// throttling reports whether an answer says the server is throttling.
func throttling(resp *http.Response) bool {
	return resp != nil && (resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests)
}

// limitedClient sends every request through a Limiter.
type limitedClient struct {
	next aws.HTTPClient
	lim  *Limiter
}

func (c *limitedClient) Do(req *http.Request) (*http.Response, error) {
	round, err := c.lim.acquire(req.Context())
	if err != nil {
		return nil, err
	}
	resp, err := c.next.Do(req)
	c.lim.release(round, err == nil && throttling(resp))
	c.lim.health.answered(resp, err, req.Context().Err() != nil)
	return resp, err
}

// CloseIdleConnections closes the idle connections of the client below.
func (c *limitedClient) CloseIdleConnections() {
	if ci, ok := c.next.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}
