package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// reqWatch counts the requests two fault proxies forwarded and signals
// when the count reaches chosen values.
type reqWatch struct {
	mu     sync.Mutex
	n      int64
	waits  map[int64]chan struct{}
	byKind map[string]int64
}

// reqKind names the S3 operation of a request, roughly.
func reqKind(r *http.Request) string {
	q := r.URL.Query()
	object := strings.Count(strings.Trim(r.URL.Path, "/"), "/") > 0
	switch {
	case q.Has("list-type"):
		return "ListObjectsV2"
	case q.Has("uploadId") && r.Method == http.MethodPut:
		return "UploadPart"
	case q.Has("uploadId") && r.Method == http.MethodGet:
		return "ListParts"
	case q.Has("uploadId") && r.Method == http.MethodPost:
		return "CompleteMultipartUpload"
	case q.Has("uploadId") && r.Method == http.MethodDelete:
		return "AbortMultipartUpload"
	case q.Has("uploads"):
		return r.Method + " uploads"
	case object && r.Method == http.MethodHead && q.Has("partNumber"):
		return "HeadObject partNumber"
	case object:
		return r.Method + " object"
	}
	return r.Method + " bucket?" + r.URL.RawQuery
}

func (w *reqWatch) after(r *http.Request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byKind == nil {
		w.byKind = map[string]int64{}
	}
	w.byKind[reqKind(r)]++
	w.n++
	if ch, ok := w.waits[w.n]; ok {
		close(ch)
		delete(w.waits, w.n)
	}
}

// at returns a channel closed once n requests were forwarded.
func (w *reqWatch) at(n int64) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch := make(chan struct{})
	if w.n >= n {
		close(ch)
		return ch
	}
	if w.waits == nil {
		w.waits = map[int64]chan struct{}{}
	}
	if old, ok := w.waits[n]; ok {
		return old
	}
	w.waits[n] = ch
	return ch
}

// TestKillsRequestsPerObject is issue 10's measurement of resume: the
// requests a job makes per object, through both proxies, when it is
// SIGKILLed 5 times (each time its requests reach another sixth of those
// of a clean run) and resumed with `job resume`, against one clean run of
// the same copy. They must stay within 10% of it; every object must reach
// the destination intact and no upload stay open.
func TestKillsRequestsPerObject(t *testing.T) {
	const small, multipart, kills, conc = 1000, 3, 5, 16
	e := newFaultEnv(t, small, multipart)
	w := e.w
	objects := int64(len(e.want))
	copyArgs := func(dst string) []string {
		return []string{"copy", "s3://" + e.src, "s3://" + dst, "--no-progress", "--json", "--concurrency", fmt.Sprint(conc),
			"--part-size", "5MiB", "--src-endpoint", e.srcProxy.URL, "--src-profile", "a", "--dst-endpoint", e.dstProxy.URL, "--dst-profile", "b"}
	}
	requests := func() int64 { return e.srcProxy.Stats().Requests + e.dstProxy.Stats().Requests }

	// The clean run.
	cleanWatch := &reqWatch{}
	e.srcProxy.SetAfter(cleanWatch.after)
	e.dstProxy.SetAfter(cleanWatch.after)
	cleanDst := mkBucket(t, w.b, "kr-clean")
	before := requests()
	start := time.Now()
	p := w.startProc(copyArgs(cleanDst)...)
	if code := waitProc(t, p, 10*time.Minute, "clean copy"); code != 0 {
		t.Fatalf("clean copy: exit %d\n%s", code, tail(p.err.String(), 3000))
	}
	cleanTook := time.Since(start)
	clean := requests() - before

	// The run killed 5 times.
	dst := mkBucket(t, w.b, "kr-killed")
	rw := &reqWatch{}
	e.srcProxy.SetAfter(rw.after)
	e.dstProxy.SetAfter(rw.after)
	defer e.srcProxy.SetAfter(nil)
	defer e.dstProxy.SetAfter(nil)
	before = requests()
	start = time.Now()
	args := copyArgs(dst)
	id := ""
	killed := 0
	for {
		p := w.startProc(args...)
		exited := make(chan int, 1)
		go func() { exited <- p.wait() }()
		var code int
		kill := make(<-chan struct{}) // never, after the last kill
		if killed < kills {
			kill = rw.at(int64(killed+1) * clean / (kills + 1))
		}
		select {
		case code = <-exited:
		case <-kill:
			_ = syscall.Kill(-p.c.Process.Pid, syscall.SIGKILL)
			<-exited
			killed++
			code = -1
		case <-time.After(10 * time.Minute): // a bound for a failing run
			t.Fatalf("run %d not finished after 10 minutes\n%s", killed+1, tail(p.err.String(), 3000))
		}
		if id == "" {
			id = jobID(t, p.err.String())
		}
		if code == -1 {
			t.Logf("kill %d after %d requests (%s)", killed, requests()-before, time.Since(start).Round(time.Millisecond))
			args = []string{"job", "resume", id, "--no-progress", "--json", "--concurrency", fmt.Sprint(conc)}
			continue
		}
		if code != 0 {
			t.Fatalf("run %d: exit %d\n%s", killed+1, code, tail(p.err.String(), 3000))
		}
		break
	}
	killedTook := time.Since(start)
	rw.mu.Lock()
	t.Logf("requests by kind, clean: %v", cleanWatch.byKind)
	t.Logf("requests by kind, with kills: %v", rw.byKind)
	rw.mu.Unlock()
	withKills := requests() - before
	st := w.status(id)
	ratio := float64(withKills) / float64(clean)
	t.Logf("%d objects (%d of 1-64 KiB, %d of 12 MiB in 3 parts): clean run %d requests (%.3f per object) in %s; "+
		"killed %d times and resumed: %d requests (%.3f per object) in %s, %.3f × the clean run; counters: %d copied, %d skipped, %d failed",
		objects, small, multipart, clean, float64(clean)/float64(objects), cleanTook.Round(time.Millisecond),
		killed, withKills, float64(withKills)/float64(objects), killedTook.Round(time.Millisecond), ratio,
		st.Counters.Copied, st.Counters.Skipped, st.Counters.Failed)
	if killed != kills {
		t.Errorf("killed %d times, want %d", killed, kills)
	}
	if st.Status != "done" {
		t.Fatalf("status %s (%s)", st.Status, st.Error)
	}
	missing, corrupt := e.checkDst(t, dst)
	if len(missing) > 0 || len(corrupt) > 0 {
		t.Errorf("%d objects missing, %d corrupt: %v %v", len(missing), len(corrupt), first(missing, 10), first(corrupt, 10))
	}
	if u := openUploads(t, w.b, dst); u != 0 {
		t.Errorf("%d multipart uploads left open", u)
	}
	if ratio > 1.10 {
		t.Errorf("%d requests with %d kills, %.3f × the %d of a clean run: more than 10%% above", withKills, kills, ratio, clean)
	}
}
