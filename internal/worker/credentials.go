package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/sides"
	"github.com/ferry-dev/ferry/internal/store"
)

// ProbeAccess checks that both stores accept the job's credentials with
// one cheap listing request each. It returns "" when they do, else a
// description of the side that refuses them ("destination s3://b/ at
// https://host:9000"). Other errors are not credential problems and are
// ignored here.
func ProbeAccess(ctx context.Context, spec job.Spec, src, dst store.Store) string {
	for _, side := range []struct {
		role string
		st   store.Store
		sd   job.Side
	}{{"source", src, spec.Src}, {"destination", dst, spec.Dst}} {
		if err := probe(ctx, side.st); err != nil && errors.Is(err, store.ErrAccess) {
			ep := side.sd.Endpoint
			if ep == "" {
				ep = "the default AWS endpoint"
			}
			return fmt.Sprintf("%s %s at %s", side.role, side.sd.Location, ep)
		}
	}
	return ""
}

func probe(ctx context.Context, st store.Store) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, err := range st.List(ctx, store.ListOptions{}) {
		return err // the first object or error answers the question
	}
	return nil
}

// credentialsRevoked is called when an object failed with an access error.
// If an endpoint now refuses every request (revoked or expired
// credentials, a rotated secret), it pauses the job with a status saying
// which endpoint it waits for, and reports true: the failed work is
// returned to the queue without using an attempt. The coordinator resumes
// the job once the endpoint accepts the credentials again.
func (jr *jobRun) credentialsRevoked(ctx context.Context) bool {
	jr.credMu.Lock()
	defer jr.credMu.Unlock()
	if jr.credPaused {
		return true
	}
	side := ProbeAccess(ctx, jr.spec, jr.src, jr.dst)
	if side == "" {
		return false
	}
	jr.credPaused = true
	msg := job.WaitingForCredentials + side
	jr.log().Error("credentials refused: pausing the job", "endpoint", side)
	if _, err := job.SetStatus(context.WithoutCancel(ctx), jr.w.conn, jr.spec.ID, job.Paused, msg); err != nil {
		jr.log().Error("pause job", "err", err)
	}
	jr.stop()
	return true
}

// pauseForCredentials pauses the job when its stores cannot even be opened
// because an endpoint rejects the credentials.
func (jr *jobRun) pauseForCredentials(err error) {
	// The error names its side; without one (an opener that is not
	// package sides') the source is named.
	where := (&sides.Error{Role: sides.Source, Location: jr.spec.Src.Location, Endpoint: jr.spec.Src.Endpoint}).Where()
	var se *sides.Error
	if errors.As(err, &se) {
		where = se.Where()
	}
	msg := job.WaitingForCredentials + where
	if _, err := job.SetStatus(context.Background(), jr.w.conn, jr.spec.ID, job.Paused, msg); err != nil {
		jr.log().Error("pause job", "err", err)
	}
}
