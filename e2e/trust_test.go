package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/queue"
	"github.com/ferry-dev/ferry/internal/testenv"
	"github.com/ferry-dev/ferry/internal/trust"
)

// machine returns a world for another machine: its own ferry
// configuration (so its own signing key and secret store) and state
// directory, the same MinIO servers and AWS profiles.
func (w *world) machine(t *testing.T) *world {
	m := *w
	m.configDir = filepath.Join(t.TempDir(), "config")
	m.stateDir = t.TempDir()
	m.env = nil
	for _, kv := range w.env {
		if strings.HasPrefix(kv, "FERRY_CONFIG_DIR=") || strings.HasPrefix(kv, "XDG_STATE_HOME=") {
			continue
		}
		m.env = append(m.env, kv)
	}
	m.env = append(m.env, "FERRY_CONFIG_DIR="+m.configDir, "XDG_STATE_HOME="+m.stateDir)
	return &m
}

// key returns the machine's signing key (ferry key show).
func (w *world) key(t *testing.T) string {
	t.Helper()
	code, out, errs := w.run("key", "show")
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "ferry-ed25519:") {
			return f
		}
	}
	t.Fatalf("key show: exit %d, no key in %q %s", code, out, errs)
	return ""
}

// dlqErrors returns the errors of a job's dead letters.
func (w *world) dlqErrors(t *testing.T, id string, args ...string) []string {
	t.Helper()
	code, out, errs := w.run(append([]string{"dlq", "list", id, "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("dlq list: exit %d: %s", code, errs)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var e struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("dlq line %q: %v", line, err)
		}
		got = append(got, e.Error)
	}
	return got
}

// TestForgedWorkRefused: with a real nats-server that anyone can publish
// to, an attacker (a NATS client with its own key) creates a job reading a
// worker host's private key into its bucket and one writing the host's
// authorized_keys from its bucket, publishes a delete batch into a running
// copy job, and republishes that job's listing task with its body changed.
// The worker, which trusts only the real coordinator's key, refuses all of
// it while the real job completes. Then a local-path job from the real
// coordinator is refused by the worker's allow-lists (no --allow-local)
// with the reason in the job's dead-letter queue, and completes on a worker
// started with --allow-local.
func TestForgedWorkRefused(t *testing.T) {
	w := newMemWorld(t)
	srv := testenv.StartNATS(t)
	wk := w.machine(t) // the worker's host
	coordKey, workerKey := w.key(t), wk.key(t)
	natsArgs := []string{"--nats", srv.URL, "--allow-unauthenticated-nats"}
	coordArgs := append(append([]string{}, natsArgs...), "--trust", workerKey)

	src, dst, loot := mkBucket(t, w.a, "real-src"), mkBucket(t, w.b, "real-dst"), mkBucket(t, w.a, "attacker")
	var keys []string
	for i := range 30 {
		keys = append(keys, "k"+strconv.Itoa(i))
	}
	putKeys(t, w.a, src, keys)
	putKeys(t, w.b, dst, []string{"keep"})
	putKeys(t, w.a, loot, []string{"authorized_keys"})
	hostDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(hostDir, "id_ed25519"), []byte("private key"), 0o600); err != nil {
		t.Fatal(err)
	}
	sshDir := filepath.Join(t.TempDir(), ".ssh")
	if err := os.Mkdir(sshDir, 0o700); err != nil {
		t.Fatal(err)
	}

	// The real job waits for a worker (--workers 0).
	planner := w.startProc(append(append(append([]string{"copy", "s3://" + src, "s3://" + dst, "--workers", "0", "--no-progress", "--json"}, coordArgs...), w.srcA()...), w.dstB()...)...)
	waitFor(t, time.Minute, 20*time.Millisecond, "the job to start", func() bool { return jobIDRE.MatchString(planner.err.String()) }, planner.err)
	id := jobIDRE.FindStringSubmatch(planner.err.String())[1]

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	attacker, err := queue.Connect(ctx, queue.Options{URL: srv.URL, Signer: trust.Generate()})
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	for _, spec := range []job.Spec{
		{Command: "copy", Src: job.Side{Location: hostDir}, Dst: job.Side{Location: "s3://" + loot + "/", Endpoint: w.a.Endpoint, Profile: "a"}},
		{Command: "copy", Src: job.Side{Location: "s3://" + loot + "/", Endpoint: w.a.Endpoint, Profile: "a"}, Dst: job.Side{Location: sshDir}},
	} {
		if _, err := job.Create(ctx, attacker, spec); err != nil {
			t.Fatal(err)
		}
	}
	del := job.Work{Job: id, Kind: job.KindDelete, Attempt: 1, ID: "forged-delete", Objs: []job.Obj{{K: "keep", S: 1}}}
	if err := job.PublishWork(ctx, attacker, del, del.ID); err != nil {
		t.Fatal(err)
	}
	// The real listing task, signed by the coordinator, with its body
	// changed: it would list from another prefix.
	ws, err := attacker.JS.Stream(ctx, queue.StreamWork)
	if err != nil {
		t.Fatal(err)
	}
	root, err := ws.GetLastMsgForSubject(ctx, queue.WorkSubject(id, job.KindList))
	if err != nil {
		t.Fatal(err)
	}
	tampered := nats.NewMsg(root.Subject)
	for k, v := range root.Header {
		if k != jetstream.MsgIDHeader {
			tampered.Header[k] = v
		}
	}
	tampered.Data = []byte(strings.Replace(string(root.Data), `"kind":"list"`, `"kind":"list","task":{"prefix":"k1"}`, 1))
	if string(tampered.Data) == string(root.Data) {
		t.Fatalf("could not change the listing task %s", root.Data)
	}
	if _, err := attacker.JS.PublishMsg(ctx, tampered); err != nil {
		t.Fatal(err)
	}

	worker := wk.startProc(append(append([]string{"worker", "--trust", coordKey, "--concurrency", "8"}, natsArgs...), w.allowAB()...)...)
	if code := planner.wait(); code != 0 {
		t.Fatalf("real job: exit %d\n%s\nworker:\n%s", code, planner.err, worker.err)
	}
	if s := parseSummary(t, planner.out.String(), planner.err.String()); s.Copied != 30 || s.Deleted != 0 || s.Failed != 0 {
		t.Fatalf("real job: %+v\nworker:\n%s", s, worker.err)
	}
	if n := countKeys(t, w.b, dst); n != 31 {
		t.Errorf("destination has %d keys, want 30 copied + keep (the forged delete must not run)", n)
	}
	if n := countKeys(t, w.a, loot); n != 1 {
		t.Errorf("the attacker's bucket has %d keys: the worker host's file was read", n)
	}
	if _, err := os.Stat(filepath.Join(sshDir, "authorized_keys")); !os.IsNotExist(err) {
		t.Errorf("the forged job wrote the worker host's authorized_keys (%v)", err)
	}
	logs := worker.err.String()
	if c := strings.Count(logs, "refused job"); c != 2 {
		t.Errorf("the worker logged %d refused jobs, want the 2 forged ones:\n%s", c, logs)
	}
	if !strings.Contains(logs, "refused work message") {
		t.Errorf("the forged delete and the tampered task were not refused:\n%s", logs)
	}

	// A local-path job from the trusted coordinator: this worker has no
	// --allow-local, so it dead-letters the job's work with the reason.
	localSrc := t.TempDir()
	if err := os.WriteFile(filepath.Join(localSrc, "report.csv"), []byte("a,b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out1 := mkBucket(t, w.b, "local-out")
	code, out, errs := w.run(append(append([]string{"copy", localSrc, "s3://" + out1, "--workers", "0", "--no-progress", "--json"}, coordArgs...), w.dstB()...)...)
	if s := parseSummary(t, out, errs); code == 0 || s.Status != "failed" {
		t.Fatalf("local job on a worker without --allow-local: exit %d %+v\n%s\nworker:\n%s", code, s, errs, worker.err)
	}
	lid := jobID(t, errs)
	dl := w.dlqErrors(t, lid, coordArgs...)
	if len(dl) != 1 || !strings.Contains(dl[0], "local paths are refused: this worker was started without --allow-local") {
		t.Fatalf("dead letters %q, want the reason", dl)
	}
	if n := countKeys(t, w.b, out1); n != 0 {
		t.Fatalf("refused job wrote %d objects", n)
	}
	_ = syscall.Kill(-worker.c.Process.Pid, syscall.SIGTERM)
	worker.wait()

	// With --allow-local, the same kind of job completes.
	worker = wk.startProc(append(append([]string{"worker", "--trust", coordKey, "--allow-local", localSrc}, natsArgs...), w.allowAB()...)...)
	out2 := mkBucket(t, w.b, "local-out2")
	code, out, errs = w.run(append(append([]string{"copy", localSrc, "s3://" + out2, "--workers", "0", "--no-progress", "--json"}, coordArgs...), w.dstB()...)...)
	if s := parseSummary(t, out, errs); code != 0 || s.Copied != 1 {
		t.Fatalf("local job with --allow-local: exit %d %+v\n%s\nworker:\n%s", code, s, errs, worker.err)
	}
}

// TestListenTokenTLS: --listen makes a token (0600 in the state
// directory), serves TLS with --listen-cert, rejects clients without the
// token, and prints the command line a worker on another machine joins
// with; that worker does the job's work.
func TestListenTokenTLS(t *testing.T) {
	w := newMemWorld(t)
	wk := w.machine(t)
	workerKey := wk.key(t)
	ca := testenv.NewCA(t)
	cert := ca.ServerCert(t, "127.0.0.1")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	// Off loopback, TLS is required.
	if code, _, errs := w.run("copy", t.TempDir(), t.TempDir(), "--listen", "0.0.0.0:0"); code != 2 || !strings.Contains(errs, "needs TLS") {
		t.Fatalf("--listen 0.0.0.0 without TLS: exit %d %s", code, errs)
	}

	src, dst := mkBucket(t, w.a, "listen-src"), mkBucket(t, w.b, "listen-dst")
	var keys []string
	for i := range 40 {
		keys = append(keys, "k"+strconv.Itoa(i))
	}
	putKeys(t, w.a, src, keys)
	planner := w.startProc(append(append([]string{"copy", "s3://" + src, "s3://" + dst, "--listen", addr, "--listen-cert", cert.CertFile, "--listen-key", cert.KeyFile,
		"--trust", workerKey, "--workers", "0", "--no-progress", "--json"}, w.srcA()...), w.dstB()...)...)
	var line string
	waitFor(t, time.Minute, 20*time.Millisecond, "the worker command line", func() bool {
		for _, l := range strings.Split(planner.err.String(), "\n") {
			if l = strings.TrimSpace(l); strings.HasPrefix(l, "ferry worker ") {
				line = l
				return jobIDRE.MatchString(planner.err.String())
			}
		}
		return false
	}, planner.err)
	tokenFile := filepath.Join(w.stateDir, "ferry", "nats-token")
	if fi, err := os.Stat(tokenFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(line, strings.TrimSpace(string(token))) || !strings.Contains(line, "--nats-token-file "+tokenFile) || !strings.Contains(line, "tls://"+addr) {
		t.Fatalf("printed command %q: want tls://%s and the token file, not the token", line, addr)
	}

	// Without the token (or with a wrong one), the server refuses.
	tlsOpt := nats.Secure(&tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12})
	for _, opts := range [][]nats.Option{{tlsOpt}, {tlsOpt, nats.Token("guess")}} {
		if nc, err := nats.Connect("tls://"+addr, append(opts, nats.Timeout(5*time.Second))...); err == nil {
			nc.Close()
			t.Fatal("a client without the token was accepted")
		} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Errorf("unauthenticated client: %v", err)
		}
	}
	if nc, err := nats.Connect("nats://"+addr, nats.Timeout(5*time.Second)); err == nil {
		nc.Close()
		t.Fatal("a plain-text client was accepted")
	}

	// The worker on the other machine runs the printed command.
	args := strings.Fields(line)[1:]
	worker := wk.startProc(append(args, w.allowAB()...)...)
	if code := planner.wait(); code != 0 {
		t.Fatalf("job: exit %d\n%s\nworker:\n%s", code, planner.err, worker.err)
	}
	if s := parseSummary(t, planner.out.String(), planner.err.String()); s.Copied != 40 {
		t.Fatalf("job: %+v\nworker:\n%s", s, worker.err)
	}
	if !strings.Contains(worker.err.String(), "worker started") {
		t.Errorf("worker log:\n%s", worker.err)
	}
}
