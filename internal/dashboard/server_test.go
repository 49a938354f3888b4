package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/job"
)

const (
	testToken = "0123456789abcdef0123456789abcdef"
	testJob   = "abcdefghijklmnop"
)

// fakeBackend is a Backend with jobs the test sets and actions it records.
type fakeBackend struct {
	mu      sync.Mutex
	states  []job.State
	dlq     []job.DLQEntry
	actions []string
	actErr  error
}

func (f *fakeBackend) Jobs(context.Context) ([]job.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]job.State(nil), f.states...), nil
}

func (f *fakeBackend) DLQ(_ context.Context, id string, limit int) ([]job.DLQEntry, error) {
	if id != testJob {
		return nil, fmt.Errorf("job %s: %w", id, job.ErrNotFound)
	}
	return f.dlq[:min(limit, len(f.dlq))], nil
}

func (f *fakeBackend) Act(_ context.Context, id string, a Action) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.actErr != nil {
		return "", f.actErr
	}
	f.actions = append(f.actions, id+" "+string(a))
	return "job " + id + ": " + string(a), nil
}

func (f *fakeBackend) set(st job.State) {
	f.mu.Lock()
	f.states = []job.State{st}
	f.mu.Unlock()
}

func newTestServer(t *testing.T, b Backend, loopback bool) *Server {
	t.Helper()
	s, err := New(Options{Backend: b, Token: testToken, Loopback: loopback})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type req struct {
	method, path string
	header       map[string]string
	host         string
}

func do(t *testing.T, s *Server, r req) (int, http.Header, string) {
	t.Helper()
	hr := httptest.NewRequest(r.method, r.path, nil)
	if r.host != "" {
		hr.Host = r.host
	} else {
		hr.Host = "127.0.0.1:8080"
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, hr)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, w.Result().Header, string(b)
}

func runningJob() job.State {
	return job.State{V: job.WireVersion, Spec: job.Spec{ID: testJob, Command: "copy", Src: job.Side{Location: "s3://a/x"}, Dst: job.Side{Location: "/tmp/y"}},
		Status: job.Running, Started: time.Now().Add(-time.Minute)}
}

func TestActionsNeedToken(t *testing.T) {
	b := &fakeBackend{states: []job.State{runningJob()}}
	for _, loopback := range []bool{true, false} {
		s := newTestServer(t, b, loopback)
		cases := []struct {
			name string
			r    req
			want int
		}{
			{"no token", req{method: "POST", path: "/api/jobs/" + testJob + "/pause"}, http.StatusForbidden},
			{"wrong token", req{method: "POST", path: "/api/jobs/" + testJob + "/pause", header: map[string]string{TokenHeader: testToken[:31] + "0"}}, http.StatusForbidden},
			{"token in query string", req{method: "POST", path: "/api/jobs/" + testJob + "/pause?token=" + testToken}, http.StatusForbidden},
			{"cross-site origin", req{method: "POST", path: "/api/jobs/" + testJob + "/pause", header: map[string]string{TokenHeader: testToken, "Origin": "https://evil.example"}}, http.StatusForbidden},
			{"cross-site fetch", req{method: "POST", path: "/api/jobs/" + testJob + "/cancel", header: map[string]string{TokenHeader: testToken, "Sec-Fetch-Site": "cross-site"}}, http.StatusForbidden},
			{"GET is no action", req{method: "GET", path: "/api/jobs/" + testJob + "/pause", header: map[string]string{TokenHeader: testToken}}, http.StatusMethodNotAllowed},
			{"bad job ID", req{method: "POST", path: "/api/jobs/NOT-AN-ID/pause", header: map[string]string{TokenHeader: testToken}}, http.StatusBadRequest},
			{"unknown action", req{method: "POST", path: "/api/jobs/" + testJob + "/delete", header: map[string]string{TokenHeader: testToken}}, http.StatusNotFound},
			{"pause", req{method: "POST", path: "/api/jobs/" + testJob + "/pause", header: map[string]string{TokenHeader: testToken}}, http.StatusOK},
			{"same origin redrive", req{method: "POST", path: "/api/jobs/" + testJob + "/redrive", header: map[string]string{TokenHeader: testToken, "Origin": "http://127.0.0.1:8080", "Sec-Fetch-Site": "same-origin"}}, http.StatusOK},
		}
		for _, c := range cases {
			t.Run(fmt.Sprintf("loopback=%v/%s", loopback, c.name), func(t *testing.T) {
				code, _, body := do(t, s, c.r)
				if code != c.want {
					t.Fatalf("%s %s: %d %s, want %d", c.r.method, c.r.path, code, body, c.want)
				}
			})
		}
	}
	want := []string{testJob + " pause", testJob + " redrive", testJob + " pause", testJob + " redrive"}
	if strings.Join(b.actions, ",") != strings.Join(want, ",") {
		t.Fatalf("actions done: %q, want %q", b.actions, want)
	}
}

func TestActionErrors(t *testing.T) {
	b := &fakeBackend{states: []job.State{runningJob()}}
	s := newTestServer(t, b, true)
	for _, c := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("job x: %w", job.ErrNotFound), http.StatusNotFound},
		{fmt.Errorf("job x: %w (done)", job.ErrFinished), http.StatusConflict},
		{fmt.Errorf("x: %w", ErrUnavailable), http.StatusConflict},
		{errors.New("boom"), http.StatusInternalServerError},
	} {
		b.actErr = c.err
		code, _, body := do(t, s, req{method: "POST", path: "/api/jobs/" + testJob + "/resume", header: map[string]string{TokenHeader: testToken}})
		var e struct{ Error string }
		if code != c.want || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, c.err.Error()) {
			t.Errorf("%v: %d %s, want %d with the error", c.err, code, body, c.want)
		}
	}
}

func TestReadNeedsTokenBeyondLoopback(t *testing.T) {
	b := &fakeBackend{states: []job.State{runningJob()}}
	for _, c := range []struct {
		name     string
		loopback bool
		r        req
		want     int
	}{
		{"loopback, no token", true, req{method: "GET", path: "/api/state"}, http.StatusOK},
		{"loopback, localhost", true, req{method: "GET", path: "/api/state", host: "localhost:8080"}, http.StatusOK},
		{"loopback, ipv6", true, req{method: "GET", path: "/api/state", host: "[::1]:8080"}, http.StatusOK},
		{"loopback, rebinding host", true, req{method: "GET", path: "/api/state", host: "evil.example:8080"}, http.StatusForbidden},
		{"loopback, rebinding host on page", true, req{method: "GET", path: "/", host: "evil.example"}, http.StatusForbidden},
		{"public, no token", false, req{method: "GET", path: "/api/state", host: "ferry.internal:8080"}, http.StatusForbidden},
		{"public, token in query", false, req{method: "GET", path: "/api/state?token=" + testToken, host: "ferry.internal:8080"}, http.StatusForbidden},
		{"public, dlq without token", false, req{method: "GET", path: "/api/jobs/" + testJob + "/dlq", host: "ferry.internal:8080"}, http.StatusForbidden},
		{"public, token", false, req{method: "GET", path: "/api/state", host: "ferry.internal:8080", header: map[string]string{TokenHeader: testToken}}, http.StatusOK},
		{"public, page needs none (it holds no data)", false, req{method: "GET", path: "/", host: "ferry.internal:8080"}, http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newTestServer(t, b, c.loopback)
			code, h, body := do(t, s, c.r)
			if code != c.want {
				t.Fatalf("%d %s, want %d", code, body, c.want)
			}
			if h.Get("X-Frame-Options") != "DENY" || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'self'") {
				t.Fatalf("security headers missing: %v", h)
			}
		})
	}
}

func TestPageAndAssets(t *testing.T) {
	s := newTestServer(t, &fakeBackend{}, true)
	for _, c := range []struct{ path, ctype string }{
		{"/", "text/html"},
		{"/static/app.js", "javascript"},
		{"/static/app.css", "text/css"},
	} {
		code, h, body := do(t, s, req{method: "GET", path: c.path})
		if code != http.StatusOK || !strings.Contains(h.Get("Content-Type"), c.ctype) || len(body) < 100 {
			t.Fatalf("GET %s: %d %s (%d bytes)", c.path, code, h.Get("Content-Type"), len(body))
		}
		for _, hdr := range []string{"X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy", "Content-Security-Policy"} {
			if h.Get(hdr) == "" {
				t.Errorf("GET %s: no %s", c.path, hdr)
			}
		}
		if c.path == "/" {
			// The CSP allows no inline script or style: the page must not
			// need any.
			for _, re := range []string{`\sstyle=`, `\son[a-z]+=`, `https?://`, `<style`} {
				if regexp.MustCompile(re).MatchString(body) {
					t.Errorf("index.html matches %s: inline code or an external resource", re)
				}
			}
			for _, m := range regexp.MustCompile(`<script[^>]*>`).FindAllString(body, -1) {
				if !strings.Contains(m, `src="/static/`) {
					t.Errorf("index.html: inline script %s", m)
				}
			}
		}
	}
	if code, _, _ := do(t, s, req{method: "GET", path: "/static/nothing.js"}); code != http.StatusNotFound {
		t.Fatalf("missing asset: %d", code)
	}
}

func TestStateShowsProgressRatesAndETA(t *testing.T) {
	b := &fakeBackend{}
	st := runningJob()
	st.Counters = job.Counters{Listed: 1000, ListedBytes: 1000 << 20, Enqueued: 1000, EnqueuedSize: 1000 << 20, TasksDone: 3, TasksOpen: 1, WorkOpen: 5}
	st.Unsafe = []job.KeyError{{Key: "../etc/passwd", Error: "unsafe key"}}
	b.set(st)
	s := newTestServer(t, b, true)
	s.sample(t.Context())
	time.Sleep(60 * time.Millisecond)
	st.Counters.Copied, st.Counters.Finished, st.Counters.CopiedBytes = 100, 100, 100<<20
	b.set(st)
	s.sample(t.Context())

	var got struct {
		Jobs    []jobView    `json:"jobs"`
		Workers []WorkerInfo `json:"workers"`
	}
	code, _, body := do(t, s, req{method: "GET", path: "/api/state"})
	if code != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil || len(got.Jobs) != 1 {
		t.Fatalf("state: %d %s", code, body)
	}
	j := got.Jobs[0]
	if j.ID != testJob || j.Status != job.Running || j.Source != "s3://a/x" || j.ListingComplete {
		t.Fatalf("job view: %+v", j)
	}
	if len(j.History) != 1 || j.History[0].ObjectsPerSec <= 0 || j.ObjectsPerSec <= 0 || j.BytesPerSec <= 0 {
		t.Fatalf("rates: history %+v, now %v objects/s %v bytes/s", j.History, j.ObjectsPerSec, j.BytesPerSec)
	}
	if j.ETA != nil {
		t.Fatalf("ETA %v while the listing runs", *j.ETA)
	}
	if len(j.Unsafe) != 1 || j.Unsafe[0].Key != "../etc/passwd" {
		t.Fatalf("unsafe keys: %+v", j.Unsafe)
	}
	if got.Workers != nil || !strings.Contains(body, `"workers":null`) {
		t.Fatalf("a backend without workers must say so (null): %s", body)
	}

	// The listing completes: an ETA appears.
	st.Counters.TasksOpen = 0
	time.Sleep(60 * time.Millisecond)
	st.Counters.Copied, st.Counters.Finished, st.Counters.CopiedBytes = 200, 200, 200<<20
	b.set(st)
	s.sample(t.Context())
	_, _, body = do(t, s, req{method: "GET", path: "/api/state"})
	if json.Unmarshal([]byte(body), &got) != nil || got.Jobs[0].ETA == nil || *got.Jobs[0].ETA <= 0 {
		t.Fatalf("no ETA once the listing completed: %s", body)
	}
}

func TestETA(t *testing.T) {
	base := runningJob()
	base.Counters = job.Counters{Enqueued: 10, EnqueuedSize: 1000, Finished: 5, CopiedBytes: 500}
	f := func(v float64) *float64 { return &v }
	for _, c := range []struct {
		name             string
		mod              func(*job.State)
		objRate, byteRte float64
		want             *float64
	}{
		{"bytes left at 100 B/s", nil, 1, 100, f(5)},
		{"no bytes rate, objects left", func(s *job.State) { s.Counters.CopiedBytes = 1000 }, 1, 0, f(5)},
		{"nothing moves", nil, 0, 0, nil},
		{"listing runs", func(s *job.State) { s.Counters.TasksOpen = 1 }, 1, 100, nil},
		{"paused", func(s *job.State) { s.Status = job.Paused }, 1, 100, nil},
		{"all finished", func(s *job.State) { s.Counters.Finished, s.Counters.CopiedBytes = 10, 1000 }, 0, 0, f(0)},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := base
			if c.mod != nil {
				c.mod(&st)
			}
			got := eta(st, c.objRate, c.byteRte)
			if (got == nil) != (c.want == nil) || (got != nil && *got != *c.want) {
				t.Fatalf("eta = %v, want %v", deref(got), deref(c.want))
			}
		})
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestDLQ(t *testing.T) {
	b := &fakeBackend{}
	for i := range dlqLimit + 5 {
		b.dlq = append(b.dlq, job.DLQEntry{Kind: job.KindCopy, Obj: &job.Obj{K: fmt.Sprintf("k%03d", i), S: 7}, Error: "access denied", Attempts: 3})
	}
	s := newTestServer(t, b, true)
	code, _, body := do(t, s, req{method: "GET", path: "/api/jobs/" + testJob + "/dlq"})
	var got struct {
		Entries   []dlqView
		Truncated bool
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil {
		t.Fatalf("dlq: %d %s", code, body)
	}
	if len(got.Entries) != dlqLimit || !got.Truncated || got.Entries[0].Key != "k000" || got.Entries[0].Error != "access denied" || got.Entries[0].Attempts != 3 {
		t.Fatalf("dlq: %d entries, truncated %v, first %+v", len(got.Entries), got.Truncated, got.Entries[0])
	}
	if code, _, _ := do(t, s, req{method: "GET", path: "/api/jobs/zzzzzzzzzzzzzzzz/dlq"}); code != http.StatusNotFound {
		t.Fatalf("dlq of a missing job: %d", code)
	}
	if code, _, _ := do(t, s, req{method: "GET", path: "/api/jobs/..%2f..%2fetc/dlq"}); code != http.StatusBadRequest && code != http.StatusNotFound {
		t.Fatalf("dlq of a bad ID: %d", code)
	}
}

func TestWorkers(t *testing.T) {
	w := NewWorkers()
	t0 := time.Now()
	w.Observe(job.Final{Job: "j1", Worker: "a:1", Outcomes: []job.Result{
		{Outcome: job.OutcomeCopied, Size: 1000}, {Outcome: job.OutcomeCopied, Size: 1000}, {Outcome: job.OutcomeFailed, Size: 5},
	}}, t0)
	w.Observe(job.Final{Job: "j2", Worker: "a:1", Skipped: []job.Obj{{K: "x"}}}, t0.Add(time.Second))
	w.Observe(job.Final{Job: "j1", Worker: "b:2", Kind: job.KindList}, t0.Add(-RateWindow-time.Second))
	w.Observe(job.Final{Job: "j1"}, t0) // no worker: ignored

	got := w.listAt(t0.Add(2 * time.Second))
	if len(got) != 2 || got[0].Name != "a:1" || got[1].Name != "b:2" {
		t.Fatalf("workers: %+v", got)
	}
	a := got[0]
	if a.Objects != 4 || a.Bytes != 2000 || a.Failed != 1 || a.Idle || strings.Join(a.Jobs, ",") != "j1,j2" {
		t.Fatalf("worker a: %+v", a)
	}
	if a.BytesPerSec != 2000/RateWindow.Seconds() || a.ObjectsPerSec != 4/RateWindow.Seconds() {
		t.Fatalf("worker a rates: %v objects/s, %v bytes/s", a.ObjectsPerSec, a.BytesPerSec)
	}
	if got[1].ObjectsPerSec != 0 {
		t.Fatalf("worker b: %+v", got[1])
	}
	got = w.listAt(t0.Add(IdleAfter + 2*time.Second))
	if !got[0].Idle || got[0].BytesPerSec != 0 {
		t.Fatalf("worker a after %s: %+v", IdleAfter, got[0])
	}
	if got = w.listAt(t0.Add(ForgetAfter + 2*time.Second)); len(got) != 0 {
		t.Fatalf("workers not forgotten: %+v", got)
	}
}

func TestNewRefusesWeakSetup(t *testing.T) {
	if _, err := New(Options{Backend: &fakeBackend{}}); err == nil {
		t.Fatal("New without a token")
	}
	if _, err := New(Options{Token: testToken}); err == nil {
		t.Fatal("New without a backend")
	}
	tok, err := NewToken()
	if err != nil || len(tok) != 32 {
		t.Fatalf("NewToken: %q %v", tok, err)
	}
	for addr, want := range map[string]bool{"127.0.0.1:8080": true, "localhost:1": true, "[::1]:80": true, ":8080": false, "0.0.0.0:80": false, "10.0.0.1:80": false, "nonsense": false} {
		if IsLoopback(addr) != want {
			t.Errorf("IsLoopback(%q) = %v", addr, !want)
		}
	}
}
