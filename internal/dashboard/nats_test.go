package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/queue"
)

// TestNATSBackendAndServe runs the dashboard against a real embedded
// JetStream server: a job nobody coordinates shows as interrupted, the
// actions change its record, a result names its worker, and Serve ends
// (every goroutine it started) when its context does.
func TestNATSBackendAndServe(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	conn, err := queue.Connect(ctx, queue.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	coord, err := job.Create(ctx, conn, job.Spec{Command: "copy", Src: job.Side{Location: "/src"}, Dst: job.Side{Location: "/dst"}})
	if err != nil {
		t.Fatal(err)
	}
	id := coord.ID()
	b := NewNATS(conn)

	states, err := b.Jobs(ctx)
	if err != nil || len(states) != 1 || states[0].Spec.ID != id || states[0].Status != Interrupted {
		t.Fatalf("Jobs: %+v %v", states, err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{Backend: b, Token: testToken, Loopback: true, Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	base := "http://" + ln.Addr().String()

	post := func(action string, token string) (int, string) {
		t.Helper()
		r, _ := http.NewRequestWithContext(ctx, "POST", base+"/api/jobs/"+id+"/"+action, nil)
		if token != "" {
			r.Header.Set(TokenHeader, token)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := post("pause", ""); code != http.StatusForbidden {
		t.Fatalf("pause without token: %d %s", code, body)
	}
	if st, _, _ := job.Load(ctx, conn, id); st.Status != job.Running {
		t.Fatalf("a refused pause changed the job: %s", st.Status)
	}
	if code, body := post("pause", testToken); code != http.StatusOK {
		t.Fatalf("pause: %d %s", code, body)
	}
	if st, _, _ := job.Load(ctx, conn, id); st.Status != job.Paused {
		t.Fatalf("after pause: %s", st.Status)
	}
	if code, body := post("resume", testToken); code != http.StatusOK || !strings.Contains(body, "ferry job resume "+id) {
		t.Fatalf("resume of a job nobody coordinates: %d %s (want the hint)", code, body)
	}

	// A result record names its worker.
	f := job.Final{V: job.WireVersion, Job: id, Kind: job.KindCopy, Work: "w1", Worker: "host:42",
		Outcomes: []job.Result{{Kind: "object", Key: "a", Size: 10, Outcome: job.OutcomeCopied}}}
	data, _ := json.Marshal(f)
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The watcher may subscribe after a first publish: publish again
		// until it has seen one.
		if _, err := conn.JS.Publish(ctx, queue.ResultSubject(id), data); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		if ws := b.Workers(); len(ws) == 1 && ws[0].Name == "host:42" && ws[0].Bytes >= 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers: %+v", b.Workers())
		}
	}
	resp, err := http.Get(base + "/api/state")
	if err != nil {
		t.Fatal(err)
	}
	var sv struct {
		Jobs    []jobView
		Workers []WorkerInfo
	}
	err = json.NewDecoder(resp.Body).Decode(&sv)
	resp.Body.Close()
	if err != nil || len(sv.Jobs) != 1 || len(sv.Workers) != 1 || sv.Workers[0].Jobs[0] != id {
		t.Fatalf("state: %+v %v", sv, err)
	}

	if code, body := post("redrive", testToken); code != http.StatusOK || !strings.Contains(body, "0 dead-letter entries") {
		t.Fatalf("redrive: %d %s", code, body)
	}
	if entries, err := b.DLQ(ctx, id, 10); err != nil || len(entries) != 0 {
		t.Fatalf("DLQ: %v %v", entries, err)
	}
	if _, err := b.DLQ(ctx, "zzzzzzzzzzzzzzzz", 10); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("DLQ of a missing job: %v", err)
	}
	if code, body := post("cancel", testToken); code != http.StatusOK {
		t.Fatalf("cancel: %d %s", code, body)
	}
	if st, _, _ := job.Load(ctx, conn, id); st.Status != job.Cancelled {
		t.Fatalf("after cancel: %s", st.Status)
	}
	if code, body := post("pause", testToken); code != http.StatusConflict {
		t.Fatalf("pause of a cancelled job: %d %s", code, body)
	}

	stop()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if _, err := http.Get(base + "/api/state"); err == nil {
		t.Fatal("the server still answers after Serve returned")
	}
}
