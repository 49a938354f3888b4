package transfer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync/atomic"
	"time"

	"github.com/ferry-dev/ferry/internal/backoff"
	"github.com/ferry-dev/ferry/internal/store"
)

// Copy methods reported in [Result.Method].
const (
	MethodPut        = "put"         // one Put of bytes read through ferry
	MethodMultipart  = "multipart"   // a multipart upload of bytes read through ferry
	MethodStream     = "stream"      // one Put streamed through ferry (destination without Multipart)
	MethodServerCopy = "server-copy" // copied by the destination server
)

// Result describes one copy. Copy returns it on failure too, with the
// fields known so far (Attempts at least).
type Result struct {
	// Key is the destination key.
	Key  string
	Size int64
	// Method is one of MethodPut, MethodMultipart, MethodStream, MethodServerCopy.
	Method string
	// CRC32C is the base64 full-object CRC32C of the bytes, as computed by
	// ferry (or, for server copies, as the stores stated it); "" only for a
	// server copy verified by ETag when neither store states a CRC32C.
	CRC32C string
	// MD5Verified: the bytes' MD5 equalled the source's plain MD5 ETag.
	// Never for a resumed multipart copy (ResumedParts > 0).
	MD5Verified bool
	// Verified names how the bytes ferry read were checked against what
	// the source states: one of VerifiedCRC64NVME, VerifiedCRC32C, ...,
	// VerifiedMultipartETag, VerifiedMD5, VerifiedLocalRead, or
	// [Unverified] ("") when the source offers nothing to check them
	// against (see [Options.RequireVerified]). Set on success only.
	Verified string
	// ResumedParts is the number of parts an earlier, interrupted run had
	// uploaded and this copy reused (see [Options.Resumer]); 0 when the
	// copy did not continue an earlier upload.
	ResumedParts int
	// ProvenanceLost: the destination did not keep the provenance ferry
	// wrote on this (empty) object: it drops user metadata on such objects.
	ProvenanceLost bool
	// verbatim: a verbatim server copy ([Engine.verbatimCopy]), which
	// writes no provenance, so none can be lost.
	verbatim bool

	SrcETag, SrcVersionID string
	DstETag, DstVersionID string
	// Attempts used, 1 when the first succeeded.
	Attempts int
	Duration time.Duration
}

// ObjectError records a failed copy of one object, like [io/fs.PathError].
// Use [store.Permanent] on it to learn whether retrying later can help.
type ObjectError struct {
	Op  string // the step that failed: "open source", "put", "upload part 3", ...
	Key string // the source key
	Err error
}

func (e *ObjectError) Error() string { return "transfer " + e.Op + " " + e.Key + ": " + e.Err.Error() }
func (e *ObjectError) Unwrap() error { return e.Err }

// Engine copies single objects from src to dst, verifying every byte. It is
// safe for concurrent use by many goroutines; all copies share one buffer
// memory budget ([Options.MemoryLimit]).
type Engine struct {
	src, dst store.Store
	opts     Options
	mem      *budget
	// noVerbatim is set once a verbatim server copy could not be verified
	// by its ETag (see [Engine.verbatimCopy]).
	noVerbatim atomic.Bool
}

// New returns an Engine copying from src to dst. Zero fields of opts take
// their defaults.
func New(src, dst store.Store, opts Options) *Engine {
	opts = opts.withDefaults()
	return &Engine{src: src, dst: dst, opts: opts, mem: newBudget(opts.MemoryLimit)}
}

// Copy copies the source object obj (an entry of the source listing) to
// dstKey and verifies it; see the package documentation for how. It retries
// failures worth retrying up to [Options.Attempts] times with jittered
// exponential backoff, checking ctx before each retry. On failure it returns
// an *[ObjectError] wrapping the last error, and nothing new is visible at
// dstKey (except after a failed server-side verification, where the bad
// object is deleted). Result.Attempts is set on failure too. With
// [Options.Resumer], a multipart upload of a copy drained with [ErrDrain]
// is left unfinished, to be continued by a later Copy to dstKey.
func (e *Engine) Copy(ctx context.Context, obj store.Object, dstKey string) (Result, error) {
	start := time.Now()
	var (
		res Result
		err error
	)
	for attempt := 1; ; attempt++ {
		res, err = e.copyOnce(ctx, obj, dstKey)
		res.Attempts = attempt
		if err == nil || attempt >= e.opts.Attempts || store.Permanent(err) || errors.Is(err, ErrUnverified) || ctx.Err() != nil {
			break
		}
		e.opts.retried("any", "attempt")
		if werr := sleep(ctx, e.backoff(attempt)); werr != nil {
			err = &ObjectError{Op: "retry", Key: obj.Key, Err: fmt.Errorf("%w; after attempt %d: %w", werr, attempt, err)}
			break
		}
	}
	if err != nil {
		res.Verified = Unverified
	}
	if err == nil && res.Size == 0 && !res.verbatim {
		res.ProvenanceLost = e.provenanceLost(ctx, dstKey)
	}
	res.Key = dstKey
	res.Duration = time.Since(start)
	return res, err
}

// provenanceLost reports whether the destination kept no provenance on the
// empty object it just wrote at key. Some servers drop the user metadata
// of some objects (SeaweedFS: of directory markers); ferry then cannot tell
// later copies from others by their provenance, but it does not need to
// for empty objects (UpToDate). Only empty objects are checked (one HEAD
// each): the servers known to drop metadata drop it on markers. A failed
// check says nothing.
func (e *Engine) provenanceLost(ctx context.Context, key string) bool {
	attrs, err := e.dst.Stat(ctx, key)
	if err != nil {
		return false
	}
	_, ok := ParseProvenance(attrs.Metadata)
	return !ok
}

// backoff is the delay after the given failed attempt: RetryDelay doubled
// per attempt, capped at maxRetryDelayFactor times it, jittered.
func (e *Engine) backoff(attempt int) time.Duration {
	return backoff.Delay(e.opts.RetryDelay, maxRetryDelayFactor*e.opts.RetryDelay, attempt)
}

func sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// copyOnce is one attempt of Copy.
func (e *Engine) copyOnce(ctx context.Context, obj store.Object, dstKey string) (Result, error) {
	if c, ok := e.dst.(store.Copier); ok && !e.opts.DisableServerSideCopy && c.CanCopyFrom(e.src) {
		if res, done, err := e.verbatimCopy(ctx, c, obj, dstKey); done {
			return res, err
		}
		attrs, err := e.src.Stat(ctx, obj.Key)
		if err != nil {
			return Result{}, &ObjectError{Op: "stat source", Key: obj.Key, Err: err}
		}
		if serverCopyVerifiable(attrs) {
			return e.serverCopy(ctx, c, attrs, dstKey)
		}
	}
	return e.streamCopy(ctx, obj, dstKey)
}

// putInput builds the PutInput of a copy of the source with attrs: the
// preserved attributes, user metadata with provenance, tags and ModTime.
func (e *Engine) putInput(attrs store.Attrs, dstKey string, tags map[string]string, crc string) store.PutInput {
	md := make(map[string]string, len(attrs.Metadata)+4)
	maps.Copy(md, attrs.Metadata)
	provenanceOf(attrs, crc).Set(md)
	return store.PutInput{
		Key:                dstKey,
		Size:               attrs.Size,
		ContentType:        attrs.ContentType,
		ContentEncoding:    attrs.ContentEncoding,
		ContentDisposition: attrs.ContentDisposition,
		ContentLanguage:    attrs.ContentLanguage,
		CacheControl:       attrs.CacheControl,
		Expires:            attrs.Expires,
		Metadata:           md,
		Tags:               tags,
		ModTime:            attrs.LastModified,
		SSE:                e.opts.SSE,
		SSEKMSKeyID:        e.opts.SSEKMSKeyID,
		StorageClass:       e.opts.StorageClass,
	}
}

// discard deletes a destination object that failed verification after it
// became visible, so no corrupt object stays behind. Its own failure is
// joined to cause.
func (e *Engine) discard(ctx context.Context, key string, cause error) error {
	dctx, cancel := cleanupContext(ctx)
	defer cancel()
	if err := e.dst.Delete(dctx, key); err != nil {
		return errors.Join(cause, fmt.Errorf("delete unverified destination object: %w", err))
	}
	return cause
}

// cleanupTimeout bounds aborts and deletes run after a failure.
const cleanupTimeout = 30 * time.Second

// cleanupContext is a fresh context for cleanup after a failure: it keeps
// ctx's values but not its cancellation, so a cancelled copy still aborts.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}
