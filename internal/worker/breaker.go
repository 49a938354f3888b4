package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/logtext"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/transfer"
)

// The circuit breaker: when most of a job's recent objects on this worker
// failed with the same server error from the same endpoint (a server that
// answers InternalError to every write, a gateway whose backend is gone),
// the worker pauses the job with one message naming the error and the
// endpoint, instead of spending every object's attempts on it. `ferry job
// resume` continues the job; the objects that failed while the breaker
// was tripping are handled again without losing an attempt.
const (
	// breakerWindow is how many of the job's most recent finished objects
	// the breaker looks at.
	breakerWindow = 20
	// breakerTrip is how many of them must have failed with one server
	// error for the breaker to trip: "most", not "some", so that a server
	// failing a share of requests at random (which retries get through)
	// never pauses a job.
	breakerTrip = 16
)

// breaker is one job's circuit breaker on one worker: a ring of the
// failure signatures of its last breakerWindow objects ("" for an object
// that did not fail with a server error).
type breaker struct {
	mu      sync.Mutex
	ring    [breakerWindow]string
	next    int
	tripped bool
	// detail is the latest full error text of each signature, for the
	// pause message.
	detail map[string]string
}

// record adds an object's outcome: sig is its failure signature ("" for
// none). It reports whether this outcome tripped the breaker (true once)
// and how many of the window's objects share sig.
func (b *breaker) record(sig, detail string) (trip bool, same int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ring[b.next] = sig
	b.next = (b.next + 1) % breakerWindow
	if sig == "" || b.tripped {
		return false, 0
	}
	if b.detail == nil {
		b.detail = map[string]string{}
	}
	b.detail[sig] = detail
	for _, s := range b.ring {
		if s == sig {
			same++
		}
	}
	if same >= breakerTrip {
		b.tripped = true
		return true, same
	}
	return false, same
}

// isTripped reports whether the breaker tripped.
func (b *breaker) isTripped() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tripped
}

// serverFault describes err when it is a server's (or its endpoint's)
// failure that retrying the object soon would likely meet again: an S3
// error answer other than the permanent ones (missing object, access,
// invalid key), a connection the endpoint refused or reset, a timeout. It
// returns the error's short name ("InternalError (HTTP 500)", "connection
// refused") and false for anything else, including cancellations.
func serverFault(err error) (string, bool) {
	if err == nil || errors.Is(err, context.Canceled) || store.Permanent(err) ||
		errors.Is(err, store.ErrUnsafeKey) || errors.Is(err, store.ErrChecksum) ||
		errors.Is(err, transfer.ErrUnverified) {
		return "", false
	}
	var ae smithy.APIError
	var re *awshttp.ResponseError
	switch {
	case errors.As(err, &re) && errors.As(err, &ae) && ae.ErrorCode() != "":
		return fmt.Sprintf("%s (HTTP %d)", ae.ErrorCode(), re.HTTPStatusCode()), true
	case errors.As(err, &re):
		return "HTTP " + strconv.Itoa(re.HTTPStatusCode()), true
	case errors.As(err, &ae) && ae.ErrorCode() != "":
		return ae.ErrorCode(), true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		var se *os.SyscallError
		if errors.As(oe.Err, &se) {
			return "connection error: " + se.Err.Error(), true
		}
		return "connection error: " + oe.Op, true
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, transfer.ErrStalled) {
		return "timeout", true
	}
	return "", false
}

// breakerRecord feeds the breaker an object's outcome (err nil for a
// success), and pauses the job when it trips. It reports whether the
// breaker has tripped (now or before): the object is then put back
// without using an attempt.
func (jr *jobRun) breakerRecord(ctx context.Context, err error, del bool) bool {
	if err != nil && ctx.Err() != nil {
		return jr.brk.isTripped()
	}
	name, ok := serverFault(err)
	if !ok {
		jr.brk.record("", "")
		return err != nil && jr.brk.isTripped()
	}
	side := errSide(err, del)
	sd := jr.spec.Dst
	if side == "source" {
		sd = jr.spec.Src
	}
	where := fmt.Sprintf("%s %s at %s", side, sd.Location, endpointName(sd))
	sig := where + ": " + name
	trip, same := jr.brk.record(sig, logtext.OneLine(err.Error()))
	if trip {
		jr.tripBreaker(ctx, where, name, same, logtext.OneLine(err.Error()))
	}
	return jr.brk.isTripped()
}

// tripBreaker pauses the job with a message naming the error and the
// endpoint, cancels this job's in-flight work (its objects go back to the
// queue, multipart uploads kept for resuming) and stops taking its work.
func (jr *jobRun) tripBreaker(ctx context.Context, where, name string, same int, detail string) {
	msg := fmt.Sprintf("%s%d of the last %d objects failed with %s from %s (the last: %s); fix the server, then continue with: ferry job resume %s",
		job.Tripped, same, breakerWindow, name, where, detail, jr.spec.ID)
	jr.log().Error("circuit breaker: pausing the job: most recent objects failed with the same server error",
		"error", name, "endpoint", where, "failed", same, "of", breakerWindow, "example", detail)
	if _, err := job.SetStatus(context.WithoutCancel(ctx), jr.w.conn, jr.spec.ID, job.Paused, msg); err != nil {
		jr.log().Error("pause job", "err", err)
	}
	jr.workCancel(transfer.ErrDrain)
	jr.stop()
}
