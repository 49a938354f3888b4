package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// writeWatch times out one write request (a Put or an UploadPart) that
// stops making progress: the request is cancelled with [ErrStalled] when
// [Options.StallTimeout] passes without the client taking bytes from the
// body — the server is not accepting them — or, once the body is all sent,
// without an answer. The time the body's own Reads take (a streamed Put
// waiting for its source, which has its own stall timeout) is not counted.
type writeWatch struct {
	parent context.Context
	ctx    context.Context // the request's context
	cancel context.CancelCauseFunc
	timer  *time.Timer // nil: no timeout
	d      time.Duration
}

// watchWrite starts the watch of one write request made with w.ctx; call
// done when the request returned.
func (e *Engine) watchWrite(ctx context.Context) *writeWatch {
	w := &writeWatch{parent: ctx, d: e.opts.StallTimeout}
	w.ctx, w.cancel = context.WithCancelCause(ctx)
	if w.d > 0 {
		w.timer = time.AfterFunc(w.d, func() { w.cancel(ErrStalled) })
	}
	return w
}

// body wraps the request's body: the timer is paused while a Read runs and
// re-armed when it returns.
func (w *writeWatch) body(r io.Reader) io.Reader { return &watchedBody{r: r, w: w} }

// seekable is body for a body the store's client may rewind.
func (w *writeWatch) seekable(r io.ReadSeeker) io.ReadSeeker {
	return &watchedSeeker{watchedBody: &watchedBody{r: r, w: w}, s: r}
}

// done ends the watch of a request that returned err and returns err,
// marked with [ErrStalled] when the watch cancelled the request.
func (w *writeWatch) done(err error) error {
	if w.timer != nil {
		w.timer.Stop()
	}
	stalled := context.Cause(w.ctx) == ErrStalled && w.parent.Err() == nil
	w.cancel(nil)
	if err != nil && stalled && !errors.Is(err, ErrStalled) {
		err = fmt.Errorf("%w (%s): %w", ErrStalled, w.d, err)
	}
	return err
}

type watchedBody struct {
	r io.Reader
	w *writeWatch
}

func (b *watchedBody) Read(p []byte) (int, error) {
	if b.w.timer != nil {
		b.w.timer.Stop()
		defer b.w.timer.Reset(b.w.d)
	}
	return b.r.Read(p)
}

type watchedSeeker struct {
	*watchedBody
	s io.Seeker
}

func (b *watchedSeeker) Seek(off int64, whence int) (int64, error) { return b.s.Seek(off, whence) }
