package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ferry-dev/ferry/internal/store"
)

// ErrStalled is the cause with which a source read that received no bytes
// for [Options.StallTimeout], or a write whose body was not taken for as
// long, is aborted; the request is then retried.
var ErrStalled = errors.New("transfer: no bytes received within the stall timeout")

// Bounds on the re-reads of one source range (see [sourceReader]); they do
// not spend the object's Attempts.
const (
	// maxReadRetries is how many times in a row a range is reopened
	// without receiving a byte in between.
	maxReadRetries = 3
	// maxReopens is how many times one range is reopened in all.
	maxReopens = 10
)

// sourceReader reads bytes [off, end) of one version of a source object and
// survives transient failures of the connection: a body that ends early
// (truncated, reset) or delivers no bytes for StallTimeout is closed and the
// rest is read with a new ranged Open from the offset reached, which must
// serve the same version (ETag, size, mtime). Each byte is delivered once,
// in order, so the hashes computed over the stream are unaffected. Errors
// that retrying cannot help (permanent, checksum, ctx done) are returned.
type sourceReader struct {
	e        *Engine
	ctx      context.Context
	key      string
	attrs    store.Attrs // the version read
	off, end int64       // next offset to read; end of the range

	rc      io.ReadCloser
	rctx    context.Context // the context of rc's request
	cancel  context.CancelCauseFunc
	timer   *time.Timer // cancels rctx with ErrStalled while armed
	fails   int         // failures since the last byte
	reopens int
	err     error // sticky
}

// Restat asks the open reader for the attributes of what it reads
// ([store.Restatter]); it fails when the reader cannot say.
func (r *sourceReader) Restat() (store.Attrs, error) {
	if rs, ok := r.rc.(store.Restatter); ok {
		return rs.Restat()
	}
	return store.Attrs{}, errors.New("the source reader cannot restat")
}

// openSource opens bytes [off, off+n) of key (n < 0: to the end) as a
// sourceReader. want, when not nil, is the version the bytes must come
// from; else it is the version the first Open returns, returned as attrs.
// Only a stall is retried here: the store's own client has retried the
// request already.
func (e *Engine) openSource(ctx context.Context, key string, off, n int64, want *store.Attrs) (*sourceReader, store.Attrs, error) {
	r := &sourceReader{e: e, ctx: ctx, key: key, off: off}
	for {
		attrs, err := r.open(n)
		if err == nil {
			if want != nil && !sameVersion(attrs, *want) {
				r.Close()
				return nil, store.Attrs{}, &ObjectError{Op: "open source", Key: key, Err: errors.New("source changed during copy")}
			}
			r.attrs = attrs
			r.end = attrs.Size
			if n >= 0 {
				r.end = min(off+n, attrs.Size)
			}
			return r, attrs, nil
		}
		if !errors.Is(err, ErrStalled) || ctx.Err() != nil || r.fails >= maxReadRetries {
			return nil, store.Attrs{}, &ObjectError{Op: "open source", Key: key, Err: err}
		}
		r.fails++
		if err := sleep(ctx, e.backoff(r.fails)); err != nil {
			return nil, store.Attrs{}, &ObjectError{Op: "open source", Key: key, Err: err}
		}
	}
}

// sameVersion reports whether a and b describe the same object version.
func sameVersion(a, b store.Attrs) bool {
	return a.ETag == b.ETag && a.Size == b.Size && sameMtime(a.LastModified, b.LastModified)
}

// open opens n bytes (n < 0: to the end) at r.off with a fresh request
// context watched for stalls.
func (r *sourceReader) open(n int64) (store.Attrs, error) {
	rctx, cancel := context.WithCancelCause(r.ctx)
	var timer *time.Timer
	if d := r.e.opts.StallTimeout; d > 0 {
		timer = time.AfterFunc(d, func() { cancel(ErrStalled) })
	}
	rc, attrs, err := r.e.src.Open(rctx, r.key, r.off, n)
	if timer != nil {
		timer.Stop()
	}
	if err != nil {
		stalled := context.Cause(rctx) == ErrStalled && r.ctx.Err() == nil
		cancel(nil)
		if stalled {
			err = fmt.Errorf("%w: %w", ErrStalled, err)
		}
		return attrs, err
	}
	r.rc, r.rctx, r.cancel, r.timer = rc, rctx, cancel, timer
	return attrs, nil
}

// reopen opens the rest of the range after a failure, from the same version.
func (r *sourceReader) reopen() error {
	if err := sleep(r.ctx, r.e.backoff(r.fails)); err != nil {
		return err
	}
	a, err := r.open(r.end - r.off)
	if err != nil {
		return err
	}
	if !sameVersion(a, r.attrs) {
		r.closeBody()
		return &ObjectError{Op: "open source", Key: r.key, Err: errors.New("source changed during copy")}
	}
	return nil
}

func (r *sourceReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	for {
		if r.rc == nil {
			if err := r.reopen(); err != nil {
				if errors.Is(err, ErrStalled) && r.retry(err) {
					continue
				}
				r.err = err
				return 0, err
			}
		}
		if r.timer != nil {
			r.timer.Reset(r.e.opts.StallTimeout)
		}
		n, err := r.rc.Read(r.e.opts.Limiter.chunk(p))
		if r.timer != nil {
			r.timer.Stop()
		}
		if werr := r.e.opts.Limiter.wait(r.ctx, n); werr != nil {
			r.closeBody()
			r.err = werr
			return n, werr
		}
		r.off += int64(n)
		if n > 0 {
			r.fails = 0
		}
		if err == nil || (errors.Is(err, io.EOF) && r.off >= r.end) {
			return n, err
		}
		if context.Cause(r.rctx) == ErrStalled && r.ctx.Err() == nil {
			err = fmt.Errorf("%w after %d bytes: %w", ErrStalled, r.off, err)
		} else if errors.Is(err, io.EOF) {
			err = fmt.Errorf("body ended at byte %d of %d: %w", r.off, r.end, io.ErrUnexpectedEOF)
		}
		if !r.retry(err) {
			r.closeBody()
			r.err = err
			return n, err
		}
		r.closeBody()
		if n > 0 {
			return n, nil
		}
	}
}

// retry reports whether the range is read on after err, counting the try.
func (r *sourceReader) retry(err error) bool {
	if r.ctx.Err() != nil || store.Permanent(err) || errors.Is(err, store.ErrChecksum) ||
		r.off >= r.end || r.fails >= maxReadRetries || r.reopens >= maxReopens {
		return false
	}
	var oe *ObjectError
	if errors.As(err, &oe) { // the source changed
		return false
	}
	r.fails++
	r.reopens++
	reason := "read"
	if errors.Is(err, ErrStalled) {
		reason = "stalled"
	}
	r.e.opts.retried("source", reason)
	return true
}

func (r *sourceReader) closeBody() {
	if r.rc != nil {
		r.rc.Close()
		r.rc = nil
	}
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	if r.cancel != nil {
		r.cancel(nil)
		r.cancel = nil
	}
}

// Close closes the current body.
func (r *sourceReader) Close() error {
	r.closeBody()
	return nil
}
