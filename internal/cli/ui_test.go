package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/dashboard"
	"github.com/ferry-dev/ferry/internal/fslock"
	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/queue"
)

// lockedBuffer is an io.Writer a test reads while a command writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var uiLine = regexp.MustCompile(`dashboard: (http://\S+/)#token=([0-9a-f]+)`)

// startUICmd runs `ferry ui` until the test ends and returns its URL and
// token.
func startUICmd(t *testing.T, args ...string) (base, token string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var errb lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, append([]string{"ui", "--addr", "127.0.0.1:0"}, args...), Stdio{In: strings.NewReader(""), Out: io.Discard, Err: &errb})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("ferry ui exited %d after an interrupt: %s", code, errb.String())
			}
		case <-time.After(20 * time.Second):
			t.Error("ferry ui did not stop")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := uiLine.FindStringSubmatch(errb.String()); m != nil {
			return m[1], m[2]
		}
		select {
		case code := <-done:
			t.Fatalf("ferry ui exited %d: %s", code, errb.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("no dashboard line: %s", errb.String())
	return "", ""
}

func httpDo(t *testing.T, method, url, token string) (int, string) {
	t.Helper()
	r, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		r.Header.Set(dashboard.TokenHeader, token)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type uiState struct {
	Jobs []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	} `json:"jobs"`
	Workers *[]dashboard.WorkerInfo `json:"workers"`
}

func getUIState(t *testing.T, base string) uiState {
	t.Helper()
	code, body := httpDo(t, "GET", base+"api/state", "")
	var st uiState
	if code != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil {
		t.Fatalf("state: %d %s", code, body)
	}
	return st
}

// TestUICommand: `ferry ui` on a state directory shows its jobs, refuses
// actions without the token, does them with it, and exits 0 when
// interrupted.
func TestUICommand(t *testing.T) {
	secretEnv(t)
	state := t.TempDir()
	qf := &queueFlags{stateDir: state}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := qf.connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	coord, err := job.Create(ctx, conn, job.Spec{Command: "copy", Src: job.Side{Location: "/a"}, Dst: job.Side{Location: "/b"}})
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	id := coord.ID()

	base, token := startUICmd(t, "--state-dir", state)
	st := getUIState(t, base)
	if len(st.Jobs) != 1 || st.Jobs[0].ID != id || st.Jobs[0].Status != string(dashboard.Interrupted) || st.Workers == nil {
		t.Fatalf("state: %+v", st)
	}
	if code, body := httpDo(t, "POST", base+"api/jobs/"+id+"/pause", ""); code != http.StatusForbidden {
		t.Fatalf("pause without token: %d %s", code, body)
	}
	if code, body := httpDo(t, "POST", base+"api/jobs/"+id+"/pause", token); code != http.StatusOK {
		t.Fatalf("pause: %d %s", code, body)
	}
	if st := getUIState(t, base); st.Jobs[0].Status != string(job.Paused) {
		t.Fatalf("after pause: %+v", st)
	}
	if r := run(t, "", "ui", "--addr", "nonsense", "--state-dir", state); r.code != ExitUsage || !strings.Contains(r.err, "--ui-addr") && !strings.Contains(r.err, "host:port") {
		t.Fatalf("ui --addr nonsense: %d %q", r.code, r.err)
	}
}

// TestUISharedStateDir: while another process serves the state directory
// (a running copy), `ferry ui` connects to it as a client and has the whole
// queue: jobs, workers and the dead-letter queue.
func TestUISharedStateDir(t *testing.T) {
	secretEnv(t)
	state := filepath.Join(t.TempDir(), "state")
	qf := &queueFlags{stateDir: state}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := qf.connect(ctx) // serving: the "running copy"
	if err != nil {
		t.Fatal(err)
	}
	// Registered before the dashboard's cleanup, so run after it: the
	// serving process waits for its clients.
	t.Cleanup(conn.Close)
	coord, err := job.Create(ctx, conn, job.Spec{Command: "copy", Src: job.Side{Location: "/a"}, Dst: job.Side{Location: "/b"}})
	if err != nil {
		t.Fatal(err)
	}
	id := coord.ID()
	base, _ := startUICmd(t, "--state-dir", state)
	got := getUIState(t, base)
	if len(got.Jobs) != 1 || got.Jobs[0].ID != id || got.Workers == nil {
		t.Fatalf("state through the serving process: %+v", got)
	}
	if code, body := httpDo(t, "GET", base+"api/jobs/"+id+"/dlq", ""); code != http.StatusOK {
		t.Fatalf("dlq through the serving process: %d %s", code, body)
	}
}

// TestUISnapshotFallback: when the state directory's server cannot be
// reached (its lock is held, and no server answers), `ferry ui` shows the
// jobs' snapshots and passes pause, resume and cancel on as control files.
func TestUISnapshotFallback(t *testing.T) {
	secretEnv(t)
	state := filepath.Join(t.TempDir(), "state")
	qf := &queueFlags{stateDir: state}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	old := queue.StateDirWait
	queue.StateDirWait = time.Second
	t.Cleanup(func() { queue.StateDirWait = old })
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(state, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := fslock.TryLock(lock); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() })
	id := job.NewID()
	st := job.State{V: job.WireVersion, Spec: job.Spec{ID: id, Command: "copy", Created: time.Now().UTC()}, Status: job.Running}
	b, _ := json.Marshal(st)
	if err := job.WriteSnapshot(qf.snapshotDir(), id, b, qf.snapshotKey(ctx)); err != nil {
		t.Fatal(err)
	}

	base, token := startUICmd(t, "--state-dir", state)
	got := getUIState(t, base)
	if len(got.Jobs) != 1 || got.Jobs[0].ID != id || got.Jobs[0].Status != "running" || got.Workers != nil {
		t.Fatalf("state from snapshots: %+v", got)
	}
	if code, body := httpDo(t, "POST", base+"api/jobs/"+id+"/pause", token); code != http.StatusOK {
		t.Fatalf("pause: %d %s", code, body)
	}
	if !job.ControlPending(qf.controlDir(), id, job.Paused) {
		t.Fatal("no pause control file for the running process")
	}
	if code, body := httpDo(t, "GET", base+"api/jobs/"+id+"/dlq", ""); code != http.StatusConflict {
		t.Fatalf("dlq without the queue: %d %s", code, body)
	}
	if code, body := httpDo(t, "POST", base+"api/jobs/"+id+"/redrive", token); code != http.StatusConflict {
		t.Fatalf("redrive without the queue: %d %s", code, body)
	}
}
