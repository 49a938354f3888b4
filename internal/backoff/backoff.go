// Package backoff computes the delays between retries: exponential from a
// base, capped, jittered. The transfer engine (request-level retries of
// one object) and the workers (queue-level retries of a batch or listing
// task) share it.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Delay is the wait after failed attempt n (1 for the first failure): base
// doubled per attempt up to limit, drawn uniformly from the upper half of
// that, so that many clients failing together spread out. A base of 0 or
// less gives 0.
func Delay(base, limit time.Duration, n int) time.Duration {
	if base <= 0 {
		return 0
	}
	d := base << min(max(n-1, 0), 20)
	if d <= 0 || d > limit {
		d = limit
	}
	return d/2 + rand.N(d/2+1)
}
