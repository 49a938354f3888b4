package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/queue"
	"github.com/ferry-dev/ferry/internal/secret"
)

// startSlowJob starts a copy that takes a while (one object at a time) and
// returns the process and its job ID.
func startSlowJob(t *testing.T, w *world, src, dst string, extra ...string) (*procOut, string) {
	t.Helper()
	args := append(append(append([]string{"copy", "s3://" + src, "s3://" + dst, "--no-progress", "--concurrency", "1"}, w.srcA()...), w.dstB()...), extra...)
	c, out, errb := w.cmd(args...)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	p := &procOut{c: c, out: out, err: errb}
	t.Cleanup(func() { _ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL); p.wait() })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := jobIDRE.FindStringSubmatch(errb.String()); m != nil {
			// Wait until copying is under way.
			for countKeys(t, w.b, dst) == 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			return p, m[1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("job did not start: %s", errb.String())
	return nil, ""
}

// TestInterruptDrainResume: SIGINT stops taking work, exits 3 with a
// resume hint (JSON status "interrupted"); resume completes; a second
// process's resume of the running job only asks it to run.
func TestInterruptDrainResume(t *testing.T) {
	w := newWorld(t)
	src, dst := mkBucket(t, w.a, "int-src"), mkBucket(t, w.b, "int-dst")
	const n = 600
	seed(t, w.a, src, n, 1024)
	p, id := startSlowJob(t, w, src, dst, "--json")

	// While it runs: status from another process works (a client of the
	// state directory's server, which the running job serves).
	code, out, errs := w.run("job", "status", id)
	if code != 0 || !strings.Contains(out, "status:       running") {
		t.Fatalf("job status while running: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, _ := w.run("job", "list"); code != 0 || !strings.Contains(out, id) {
		t.Fatalf("job list while running: exit %d\n%s", code, out)
	}
	// A second foreground process on the same job is refused.
	if code, _, errs := w.run("job", "resume", id, "--no-progress"); code != 0 || strings.Contains(errs, "resumed") {
		// resume of a running job in another process only asks it to run
		t.Fatalf("resume of a running job: exit %d: %s", code, errs)
	}

	// Pause from another terminal, then resume.
	if code, out, errs := w.run("job", "pause", id); code != 0 || !strings.Contains(out, "paused") {
		t.Fatalf("pause: exit %d %s %s", code, out, errs)
	}
	time.Sleep(1500 * time.Millisecond)
	if _, out, _ := w.run("job", "status", id); !strings.Contains(out, "paused") {
		t.Fatalf("status after pause:\n%s", out)
	}
	a := countKeys(t, w.b, dst)
	time.Sleep(1500 * time.Millisecond)
	if b := countKeys(t, w.b, dst); b > a+2 {
		t.Fatalf("paused job kept copying: %d -> %d", a, b)
	}
	if code, out, errs := w.run("job", "resume", id); code != 0 || !strings.Contains(out, "running") {
		t.Fatalf("resume from another terminal: exit %d %s %s", code, out, errs)
	}
	deadline := time.Now().Add(20 * time.Second)
	for countKeys(t, w.b, dst) <= a+2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}

	// SIGINT: drain and exit 3 (interrupted, resumable) with a resume
	// hint, and a JSON summary saying so, with the run's real duration.
	_ = syscall.Kill(p.c.Process.Pid, syscall.SIGINT)
	code = p.wait()
	if code != 3 || !strings.Contains(p.err.String(), "ferry job resume "+id) {
		t.Fatalf("after SIGINT: exit %d, want 3\n%s", code, p.err.String())
	}
	var isum struct {
		Status   string  `json:"status"`
		Duration float64 `json:"duration_seconds"`
	}
	if err := json.Unmarshal([]byte(lastLine(p.out.String())), &isum); err != nil || isum.Status != "interrupted" || isum.Duration <= 0 {
		t.Fatalf("interrupted summary %q: %v", p.out.String(), err)
	}
	if got := countKeys(t, w.b, dst); got >= n {
		t.Fatalf("the job finished before the interrupt (%d objects): test too fast", got)
	}
	code, out, errs = w.run("job", "resume", id, "--no-progress", "--json", "--concurrency", "16")
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s\n%s", code, out, errs)
	}
	if got := countKeys(t, w.b, dst); got != n {
		t.Fatalf("after resume: %d objects, want %d", got, n)
	}
	var sum struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(lastLine(out)), &sum); err != nil || sum.Status != "done" {
		t.Fatalf("summary %q: %v", out, err)
	}
	// After it finished, status still answers.
	if st := w.status(id); st.Status != "done" {
		t.Fatalf("status after finish: %+v", st)
	}
}

// TestCancel cancels a running job from another terminal: it stops, its
// queued work is dropped and it cannot be resumed.
func TestCancel(t *testing.T) {
	w := newWorld(t)
	src, dst := mkBucket(t, w.a, "can-src"), mkBucket(t, w.b, "can-dst")
	seed(t, w.a, src, 400, 1024)
	p, id := startSlowJob(t, w, src, dst)
	if code, out, errs := w.run("job", "cancel", id); code != 0 || !strings.Contains(out, "cancelled") {
		t.Fatalf("cancel: exit %d %s %s", code, out, errs)
	}
	p.wait()
	if st := w.status(id); st.Status != "cancelled" {
		t.Fatalf("status %+v", st)
	}
	if code, _, errs := w.run("job", "resume", id); code != 2 || !strings.Contains(errs, "already finished") {
		t.Fatalf("resume cancelled job: exit %d: %s", code, errs)
	}
}

// TestJobBadInput: each bad input is one line, exit 2, state untouched.
func TestJobBadInput(t *testing.T) {
	w := newWorld(t)
	src, dst := mkBucket(t, w.a, "bad-src"), mkBucket(t, w.b, "bad-dst")
	seed(t, w.a, src, 3, 10)
	base := append(append([]string{"copy", "s3://" + src, "s3://" + dst, "--no-progress"}, w.srcA()...), w.dstB()...)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	openFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(openFile, []byte("s3cr3t\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A job written by an incompatible version.
	stateDir := filepath.Join(w.stateDir, "ferry")
	// The embedded store is encrypted with the key in ferry's secret store:
	// let ferry create it, then read it as ferry does.
	if code, _, errs := w.run("job", "list"); code != 0 {
		t.Fatalf("job list: %s", errs)
	}
	t.Setenv("FERRY_CONFIG_DIR", w.configDir)
	sec, err := secret.Open(secret.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fields, err := sec.Get(context.Background(), "ferry-state-key")
	if err != nil {
		t.Fatal(err)
	}
	key := fields["key"].Reveal()
	func() {
		conn, err := queue.Connect(context.Background(), queue.Options{StateDir: stateDir, EncryptionKey: key})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Jobs.Put(context.Background(), "zzzzzzzzzzzzzzzz", []byte(`{"v":99,"status":"running"}`)); err != nil {
			t.Fatal(err)
		}
	}()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown job", []string{"job", "resume", "aaaaaaaaaaaaaaaa"}, "no such job"},
		{"malformed job id", []string{"job", "status", "../etc"}, "not a ferry job ID"},
		{"incompatible job", []string{"job", "resume", "zzzzzzzzzzzzzzzz"}, "incompatible"},
		{"state dir not writable", append(append([]string{}, base...), "--state-dir", filepath.Join(file, "sub")), "state directory"},
		{"unreachable nats", append(append([]string{}, base...), "--nats", "nats://127.0.0.1:1"), "connect to NATS"},
		{"plain nats to another host", append(append([]string{}, base...), "--nats", "nats://192.0.2.1:4222"), "refused"},
		{"worker without nats", []string{"worker"}, "--nats"},
		{"allow-local not a directory", []string{"worker", "--nats", "nats://127.0.0.1:1", "--allow-local", file}, "--allow-local"},
		{"allow-local missing", []string{"worker", "--nats", "nats://127.0.0.1:1", "--allow-local", filepath.Join(file, "missing")}, "--allow-local"},
		{"allow-endpoint with a query", []string{"worker", "--nats", "nats://127.0.0.1:1", "--allow-endpoint", "https://h.example/?k=s3cr3t"}, "--allow-endpoint"},
		{"allow-secret bad name", []string{"worker", "--nats", "nats://127.0.0.1:1", "--allow-secret", "../x"}, "--allow-secret"},
		{"listen off loopback without TLS", append(append([]string{}, base...), "--listen", "0.0.0.0:0"), "needs TLS"},
		{"listen-cert without listen", append(append([]string{}, base...), "--listen-cert", file, "--listen-key", file), "go with --listen"},
		{"listen with nats", append(append([]string{}, base...), "--listen", "127.0.0.1:0", "--nats", "nats://127.0.0.1:1"), "cannot be used with --nats"},
		{"nats token in argv", []string{"worker", "--nats", "nats://127.0.0.1:1", "--nats-token", "s3cr3t"}, "not accepted on the command line"},
		{"nats token file readable by others", []string{"worker", "--nats", "nats://127.0.0.1:1", "--nats-token-file", openFile}, "others can read"},
		{"signing key file not a key", []string{"key", "show", "--signing-key-file", file}, "not a ferry signing key"},
		{"nats-permissions bad key", []string{"nats-permissions", "--worker", "s3cr3t"}, "not an nkey"},
		{"nats-permissions seed", []string{"nats-permissions", "--coordinator", "SUs3cr3t"}, "looks like an nkey seed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := w.run(tc.args...)
			lines := strings.Split(strings.TrimSpace(errs), "\n")
			if strings.Contains(errs, "s3cr3t") {
				t.Errorf("a credential was echoed: %s", errs)
			}
			if code != 2 || len(lines) != 1 || !strings.Contains(errs, tc.want) {
				t.Fatalf("exit %d, want 2 with one line containing %q:\n%s", code, tc.want, errs)
			}
		})
	}
	if got := countKeys(t, w.b, dst); got != 0 {
		t.Fatalf("bad inputs wrote %d objects", got)
	}
	// The incompatible job's state is untouched.
	conn, err := queue.Connect(context.Background(), queue.Options{StateDir: stateDir, EncryptionKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	e, err := conn.Jobs.Get(context.Background(), "zzzzzzzzzzzzzzzz")
	if err != nil || string(e.Value()) != `{"v":99,"status":"running"}` {
		t.Fatalf("incompatible job state changed: %v", err)
	}
	_ = job.WireVersion
}
