package e2e

import (
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/testenv"
)

// TestBreakerPausesJob: the destination answers InternalError to every
// PUT. `ferry copy` does not grind through every object: its circuit
// breaker pauses the job, and the process exits 3 with one message naming
// the error and the endpoint, having failed (dead-lettered) no object.
// Once the server is fixed, `ferry job resume` copies everything, checked
// with an S3 client of its own and with ferry verify.
func TestBreakerPausesJob(t *testing.T) {
	w := newMemWorld(t)
	src, dst := mkBucket(t, w.a, "brk-src"), mkBucket(t, w.b, "brk-dst")
	const n = 300
	seed(t, w.a, src, n, 256)
	proxy := testenv.StartFaultProxy(t, w.b.Endpoint, w.b.TLSConfig())
	var puts atomic.Int64
	proxy.SetFaults(func(r *http.Request) testenv.Fault {
		if r.Method == http.MethodPut {
			puts.Add(1)
			return testenv.Fault{Status: http.StatusInternalServerError}
		}
		return testenv.Fault{}
	})
	args := append([]string{"copy", "s3://" + src, "s3://" + dst, "--no-progress", "--concurrency", "16",
		"--dst-endpoint", proxy.URL, "--dst-profile", "b"}, w.srcA()...)
	start := time.Now()
	p := w.startProc(args...)
	limit := time.AfterFunc(3*time.Minute, func() { _ = syscall.Kill(-p.c.Process.Pid, syscall.SIGKILL) })
	code := p.wait()
	limit.Stop()
	took := time.Since(start)
	errs := p.err.String()
	id := jobID(t, errs)
	t.Logf("ferry copy exited %d after %s and %d PUTs (all answered 500) of %d objects", code, took.Round(time.Millisecond), puts.Load(), n)
	if code != 3 {
		t.Fatalf("copy: exit %d, want 3 (-1: killed after 3 min)\n%s", code, errs)
	}
	last := lastLine(errs)
	for _, want := range []string{"job " + id + " paused", "circuit breaker", "InternalError (HTTP 500)",
		"destination s3://" + dst + "/ at " + proxy.URL, "ferry job resume " + id} {
		if !strings.Contains(last, want) {
			t.Errorf("the last line does not say %q:\n%s", want, last)
		}
	}
	st := w.status(id)
	if st.Status != "paused" || st.Counters.Failed != 0 {
		t.Fatalf("status %+v", st)
	}
	if code, out, _ := w.run("job", "status", id); code != 0 || !strings.Contains(out, "circuit breaker") {
		t.Fatalf("job status does not say why it paused:\n%s", out)
	}
	if p := puts.Load(); p >= n {
		t.Errorf("%d PUTs before pausing: the job ground through every object", p)
	}

	proxy.SetFaults(nil)
	if code, _, errs := w.run("job", "resume", id, "--no-progress"); code != 0 {
		t.Fatalf("resume: exit %d\n%s", code, errs)
	}
	if got := countKeys(t, w.b, dst); got != n {
		t.Fatalf("the destination holds %d objects, want %d", got, n)
	}
	if st := w.status(id); st.Status != "done" || st.Counters.Copied != n || st.Counters.Failed != 0 {
		t.Fatalf("after resume: %+v", st)
	}
	w.verify("s3://"+src, "s3://"+dst)
}
