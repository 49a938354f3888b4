package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTwoJobsOneStateDir: two `ferry copy` processes share one state
// directory (the first serves its NATS server, the second connects to
// it); `ferry job list` from a third process shows both while they run;
// both complete, and every object is at each destination with the
// source's size and ETag (listed with the SDK, not ferry's counters).
func TestTwoJobsOneStateDir(t *testing.T) {
	w := newWorld(t)
	src1, dst1 := mkBucket(t, w.a, "multi-src1"), mkBucket(t, w.b, "multi-dst1")
	src2, dst2 := mkBucket(t, w.a, "multi-src2"), mkBucket(t, w.b, "multi-dst2")
	const n = 300
	seed(t, w.a, src1, n, 512)
	seed(t, w.a, src2, n, 700)

	p1, id1 := startSlowJob(t, w, src1, dst1)
	p2 := w.startProc(append(append([]string{"copy", "s3://" + src2, "s3://" + dst2, "--no-progress", "--concurrency", "2"}, w.srcA()...), w.dstB()...)...)
	waitFor(t, 30*time.Second, 50*time.Millisecond, "the second job to start", func() bool {
		return jobIDRE.MatchString(p2.err.String())
	}, p2.err)
	id2 := jobID(t, p2.err.String())

	code, out, errs := w.run("job", "list")
	if code != 0 {
		t.Fatalf("job list while both run: exit %d\n%s\n%s", code, out, errs)
	}
	for _, id := range []string{id1, id2} {
		line := ""
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, id) {
				line = l
			}
		}
		if !strings.Contains(line, "running") {
			t.Fatalf("job list while both run does not show %s running:\n%s\n%s", id, out, errs)
		}
	}

	if code := waitProc(t, p2, 3*time.Minute, "second job"); code != 0 {
		t.Fatalf("second job: exit %d\n%s", code, p2.err)
	}
	if code := waitProc(t, p1, 3*time.Minute, "first job"); code != 0 {
		t.Fatalf("first job: exit %d\n%s", code, p1.err)
	}
	for _, c := range []struct{ src, dst string }{{src1, dst1}, {src2, dst2}} {
		if err := sameObjects(listObjects(t, w.a, c.src), listObjects(t, w.b, c.dst)); err != nil {
			t.Fatalf("%s -> %s: %v", c.src, c.dst, err)
		}
	}
	for _, id := range []string{id1, id2} {
		if st := w.status(id); st.Status != "done" || st.Counters.Copied != n {
			t.Fatalf("job %s: %+v", id, st)
		}
	}
}

// TestStateDirServerKilled: when the process serving the state directory
// is killed, a job running in another process stops with one line saying
// so (exit 3, resumable), and `ferry job resume` completes it.
func TestStateDirServerKilled(t *testing.T) {
	w := newWorld(t)
	src1, dst1 := mkBucket(t, w.a, "killed-src1"), mkBucket(t, w.b, "killed-dst1")
	src2, dst2 := mkBucket(t, w.a, "killed-src2"), mkBucket(t, w.b, "killed-dst2")
	const n = 300
	seed(t, w.a, src1, n, 512)
	seed(t, w.a, src2, n, 512)
	p1, _ := startSlowJob(t, w, src1, dst1)
	p2, id2 := startSlowJob(t, w, src2, dst2)
	_ = syscall.Kill(-p1.c.Process.Pid, syscall.SIGKILL)
	code := waitProc(t, p2, 2*time.Minute, "the client job after its server was killed")
	if code != 3 || !strings.Contains(p2.err.String(), "serving state directory") || !strings.Contains(p2.err.String(), "ferry job resume "+id2) {
		t.Fatalf("client job after its server was killed: exit %d, want 3\n%s", code, p2.err)
	}
	code, out, errs := w.run("job", "resume", id2, "--no-progress")
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s\n%s", code, out, errs)
	}
	if err := sameObjects(listObjects(t, w.a, src2), listObjects(t, w.b, dst2)); err != nil {
		t.Fatal(err)
	}
}
