package transfer

import (
	"context"
	"fmt"

	"golang.org/x/time/rate"
)

// Limiter is a token bucket over bytes (--bwlimit): it bounds the rate of
// the source bytes read by every [Engine] that shares it, whatever the
// number of objects and parts in flight. It is safe for concurrent use.
// A nil *Limiter does not limit.
type Limiter struct {
	l *rate.Limiter
	// burst is the bucket's size, and the most one read asks for.
	burst int
}

// Bucket bounds: a tenth of a second's worth, so that the rate over a few
// seconds is accurate, but reads stay large enough to be efficient.
const (
	minBurst = 4 << 10
	maxBurst = 1 << 20
)

// NewLimiter returns a Limiter of bytesPerSecond, or nil (no limit) when it
// is 0 or less.
func NewLimiter(bytesPerSecond int64) *Limiter {
	if bytesPerSecond <= 0 {
		return nil
	}
	burst := int(min(max(bytesPerSecond/10, minBurst), maxBurst))
	return &Limiter{l: rate.NewLimiter(rate.Limit(bytesPerSecond), burst), burst: burst}
}

// String describes the limit.
func (l *Limiter) String() string {
	if l == nil {
		return "unlimited"
	}
	return fmt.Sprintf("%.0f B/s", float64(l.l.Limit()))
}

// chunk shortens p to what one read may ask for.
func (l *Limiter) chunk(p []byte) []byte {
	if l == nil || len(p) <= l.burst {
		return p
	}
	return p[:l.burst]
}

// wait blocks until n bytes (at most the burst, see chunk) may pass, or
// ctx ends.
func (l *Limiter) wait(ctx context.Context, n int) error {
	if l == nil || n <= 0 {
		return nil
	}
	if err := l.l.WaitN(ctx, n); err != nil {
		return fmt.Errorf("bandwidth limit: %w", err)
	}
	return nil
}
