// Package e2e runs the ferry binary as real processes against real MinIO
// and NATS servers: crashes with SIGKILL, external workers, a NATS cluster
// losing a node, the dead-letter queue. Everything listens on 127.0.0.1.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-dev/ferry/internal/testenv"
)

var ferryBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ferry-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ferryBin = filepath.Join(dir, "ferry")
	_, this, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(this))
	build := exec.Command("go", "build", "-o", ferryBin, "./cmd/ferry")
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build ferry:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// world is two MinIO servers with profiles "a" and "b" and a state dir.
type world struct {
	t         *testing.T
	a, b      *testenv.MinIO
	env       []string
	stateDir  string
	configDir string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t,
		a: testenv.StartMinIO(t, testenv.MinIOOptions{}),
		b: testenv.StartMinIO(t, testenv.MinIOOptions{TLS: true}),
	}
	creds, _ := testenv.WriteCredentialsFile(t, map[string]*testenv.MinIO{"a": w.a, "b": w.b})
	w.stateDir = t.TempDir()
	w.configDir = filepath.Join(t.TempDir(), "config")
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") {
			continue
		}
		w.env = append(w.env, kv)
	}
	w.env = append(w.env, "AWS_SHARED_CREDENTIALS_FILE="+creds, "AWS_CONFIG_FILE="+filepath.Join(t.TempDir(), "none"),
		"XDG_STATE_HOME="+w.stateDir, "FERRY_CONFIG_DIR="+w.configDir)
	return w
}

func (w *world) srcA() []string {
	return []string{"--src-endpoint", w.a.Endpoint, "--src-profile", "a"}
}

// allowAB are the allow-lists a `ferry worker` needs for the jobs of srcA
// and dstB: their endpoints and profiles.
func (w *world) allowAB() []string {
	return []string{"--allow-endpoint", w.a.Endpoint, "--allow-endpoint", w.b.Endpoint, "--allow-profile", "a", "--allow-profile", "b"}
}

func (w *world) dstB() []string {
	return []string{"--dst-endpoint", w.b.Endpoint, "--dst-profile", "b", "--ca-bundle", w.b.CAFile}
}

// cmd prepares a ferry process; output goes to a log file in the test's
// temp dir (returned).
func (w *world) cmd(args ...string) (*exec.Cmd, *lockedBuffer, *lockedBuffer) {
	c := exec.Command(ferryBin, args...)
	c.Env = w.env
	out, errb := &lockedBuffer{}, &lockedBuffer{}
	c.Stdout, c.Stderr = out, errb
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return c, out, errb
}

// lockedBuffer is a bytes.Buffer a test may read while the process it
// captures is still writing to it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// run runs ferry to completion and returns its exit code and output.
func (w *world) run(args ...string) (int, string, string) {
	w.t.Helper()
	c, out, errb := w.cmd(args...)
	err := c.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		w.t.Fatalf("run ferry: %v", err)
	}
	return code, out.String(), errb.String()
}

var jobIDRE = regexp.MustCompile(`job ([a-z2-7]{16}) started`)

func jobID(t *testing.T, stderr string) string {
	t.Helper()
	m := jobIDRE.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no job ID in stderr:\n%s", stderr)
	}
	return m[1]
}

func mkBucket(t *testing.T, m *testenv.MinIO, name string) string {
	t.Helper()
	m.CreateBucket(t, name)
	return name
}

// seed puts n objects of about size bytes under prefix, in 20 sub-prefixes.
func seed(t *testing.T, m *testenv.MinIO, bucket string, n, size int) {
	t.Helper()
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(32)
	for i := range n {
		g.Go(func() error {
			b := make([]byte, size+i%97)
			_, _ = rand.Read(b)
			key := fmt.Sprintf("data/p%02d/obj-%06d", i%20, i)
			_, err := m.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(b)})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("seed: %v", err)
	}
}

func countKeys(t *testing.T, m *testenv.MinIO, bucket string) int {
	t.Helper()
	n := 0
	p := s3.NewListObjectsV2Paginator(m.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Contents)
	}
	return n
}

func openUploads(t *testing.T, m *testenv.MinIO, bucket string) int {
	t.Helper()
	out, err := m.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Uploads)
}

// status reads `ferry job status ID --json`.
type jobState struct {
	Status   string `json:"status"`
	Error    string `json:"error"`
	Counters struct {
		Copied   int64 `json:"objects_copied"`
		Skipped  int64 `json:"objects_skipped"`
		Failed   int64 `json:"objects_failed"`
		Finished int64 `json:"objects_finished"`
		Enqueued int64 `json:"objects_enqueued"`
		Listed   int64 `json:"objects_listed"`
	} `json:"counters"`
}

func (w *world) status(id string, extra ...string) jobState {
	w.t.Helper()
	code, out, errs := w.run(append([]string{"job", "status", id, "--json"}, extra...)...)
	if code != 0 {
		w.t.Fatalf("job status: exit %d: %s", code, errs)
	}
	var st jobState
	if err := json.Unmarshal([]byte(lastLine(out)), &st); err != nil {
		w.t.Fatalf("job status output %q: %v", out, err)
	}
	return st
}

func lastLine(s string) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	return ls[len(ls)-1]
}

// verify runs ferry verify and requires exit 0.
func (w *world) verify(src, dst string, extra ...string) {
	w.t.Helper()
	args := append(append(append([]string{"verify", src, dst, "--no-progress"}, w.srcA()...), w.dstB()...), extra...)
	code, out, errs := w.run(args...)
	if code != 0 {
		w.t.Fatalf("verify: exit %d\n%s\n%s", code, out, errs)
	}
}

// TestKillAndResume kills a 5,000-object job with SIGKILL at random points
// several times, resumes it each time, and checks the result.
func TestKillAndResume(t *testing.T) {
	w := newWorld(t)
	src, dst := mkBucket(t, w.a, "kill-src"), mkBucket(t, w.b, "kill-dst")
	const n = 5000
	seed(t, w.a, src, n, 2048)
	args := append(append([]string{"copy", "s3://" + src, "s3://" + dst, "--no-progress", "--concurrency", "16"}, w.srcA()...), w.dstB()...)

	c, _, errb := w.cmd(args...)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	id := ""
	kills := 0
	// Kill the first run once its job has started, then each resume.
	for {
		deadline := time.Now().Add(30 * time.Second)
		for id == "" && time.Now().Before(deadline) {
			if m := jobIDRE.FindStringSubmatch(errb.String()); m != nil {
				id = m[1]
			}
			time.Sleep(20 * time.Millisecond)
		}
		if id == "" {
			t.Fatalf("no job ID: %s", errb.String())
		}
		time.Sleep(time.Duration(500+randInt(2500)) * time.Millisecond)
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		_ = c.Wait()
		kills++
		at := countKeys(t, w.b, dst)
		t.Logf("kill %d: %d objects at the destination\n%s", kills, at, errb.String())
		if at == n || kills == 4 {
			break
		}
		c, _, errb = w.cmd("job", "resume", id, "--no-progress", "--concurrency", "16")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		for !strings.Contains(errb.String(), "resumed") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	code, out, errs := w.run("job", "resume", id, "--no-progress", "--json")
	if code != 0 && !strings.Contains(errs, "already finished") {
		t.Fatalf("final resume: exit %d\n%s\n%s", code, out, errs)
	}
	if got := countKeys(t, w.b, dst); got != n {
		t.Fatalf("destination has %d objects, want %d", got, n)
	}
	w.verify("s3://"+src, "s3://"+dst)
	if u := openUploads(t, w.b, dst); u != 0 {
		t.Fatalf("%d multipart uploads left", u)
	}
	st := w.status(id)
	if st.Status != "done" {
		t.Fatalf("status %s (%s)", st.Status, st.Error)
	}
	// Copies beyond one per object can only be objects in flight at a kill.
	if extra := st.Counters.Copied - n; extra > int64(kills*16) {
		t.Fatalf("copied %d times for %d objects after %d kills: %d extra copies", st.Counters.Copied, n, kills, extra)
	}
	t.Logf("%d kills; %d objects copied, %d skipped as already done", kills, st.Counters.Copied, st.Counters.Skipped)
	// The audit log survived the kills: its chain verifies, it ends at the
	// hash the job recorded, and it names every object at least once.
	auditLog := filepath.Join(w.stateDir, "ferry", "audit", id+".jsonl")
	var full struct {
		AuditHash  string `json:"audit_last_hash"`
		AuditLines int64  `json:"audit_lines"`
	}
	_, sj, _ := w.run("job", "status", id, "--json")
	if err := json.Unmarshal([]byte(lastLine(sj)), &full); err != nil {
		t.Fatal(err)
	}
	code, out, errs = w.run("audit", "verify", auditLog, "--expect-last", full.AuditHash)
	if code != 0 {
		t.Fatalf("audit verify: exit %d\n%s\n%s", code, out, errs)
	}
	b, err := os.ReadFile(auditLog)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	lines := 0
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec struct {
			Key     string `json:"key"`
			Outcome string `json:"outcome"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		seen[rec.Key] = true
		lines++
	}
	if len(seen) != n || int64(lines) != full.AuditLines {
		t.Fatalf("audit log: %d lines for %d keys (job says %d lines), want every one of %d objects", lines, len(seen), full.AuditLines, n)
	}
	// At rest, the embedded JetStream store and the job state snapshots
	// are encrypted: no object key or bucket name appears in them.
	for _, sub := range []string{"jetstream", "jobs"} {
		root := filepath.Join(w.stateDir, "ferry", sub)
		files := 0
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			files++
			for _, needle := range []string{"data/p03/obj-", src, dst} {
				if bytes.Contains(b, []byte(needle)) {
					t.Errorf("%s holds %q in plain text", p, needle)
				}
			}
			return nil
		})
		if err != nil || files == 0 {
			t.Fatalf("walk %s: %v (%d files)", root, err, files)
		}
	}
	// Resuming a finished job is refused, as is an unknown one.
	if code, _, errs := w.run("job", "resume", id); code != 2 || !strings.Contains(errs, "already finished") {
		t.Fatalf("resume finished job: exit %d: %s", code, errs)
	}
	if code, _, errs := w.run("job", "resume", "aaaaaaaaaaaaaaaa"); code != 2 || !strings.Contains(errs, "no such job") {
		t.Fatalf("resume unknown job: exit %d: %s", code, errs)
	}
}

func randInt(n int) int {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return int(uint32(b[0])|uint32(b[1])<<8|uint32(b[2])<<16|uint32(b[3])<<24) % n
}

// TestExternalWorkers: one planning process and three `ferry worker`
// processes share a real nats-server; one worker is SIGKILLed midway.
func TestExternalWorkers(t *testing.T) {
	w := newWorld(t)
	nats := testenv.StartNATS(t)
	src, dst := mkBucket(t, w.a, "ext-src"), mkBucket(t, w.b, "ext-dst")
	const n = 2000
	seed(t, w.a, src, n, 4096)

	var workers []*exec.Cmd
	var logs []*lockedBuffer
	for range 3 {
		c, _, errb := w.cmd(append([]string{"worker", "--allow-unauthenticated-nats", "--nats", nats.URL, "--concurrency", "8"}, w.allowAB()...)...)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		workers = append(workers, c)
		logs = append(logs, errb)
	}
	t.Cleanup(func() {
		for _, c := range workers {
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			_ = c.Wait()
		}
	})
	planner, out, errb := w.cmd(append(append([]string{"copy", "s3://" + src, "s3://" + dst, "--allow-unauthenticated-nats", "--nats", nats.URL, "--workers", "0", "--no-progress", "--json"}, w.srcA()...), w.dstB()...)...)
	if err := planner.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill one worker once some objects arrived.
	deadline := time.Now().Add(60 * time.Second)
	for countKeys(t, w.b, dst) < n/5 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(-workers[0].Process.Pid, syscall.SIGKILL)
	_ = workers[0].Wait()
	done := make(chan error, 1)
	go func() { done <- planner.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("planner: %v\n%s\n%s", err, out, errb)
		}
	case <-time.After(3 * time.Minute):
		_ = syscall.Kill(-planner.Process.Pid, syscall.SIGKILL)
		t.Fatalf("planner did not finish\n%s\nworkers:\n%s\n%s", errb, logs[1], logs[2])
	}
	var sum struct {
		Copied int64 `json:"objects_copied"`
		Failed int64 `json:"objects_failed"`
	}
	if err := json.Unmarshal([]byte(lastLine(out.String())), &sum); err != nil {
		t.Fatalf("summary %q: %v", out, err)
	}
	if got := countKeys(t, w.b, dst); got != n || sum.Failed != 0 {
		t.Fatalf("destination has %d objects (want %d), %d failed", got, n, sum.Failed)
	}
	w.verify("s3://"+src, "s3://"+dst)
	// Every surviving worker did some of the work.
	for i := 1; i < 3; i++ {
		_ = syscall.Kill(-workers[i].Process.Pid, syscall.SIGTERM)
	}
	for i := 1; i < 3; i++ {
		_ = workers[i].Wait()
	}
}

// TestNATSClusterNodeLoss runs a job on a three-node JetStream cluster and
// kills one node while it runs.
func TestNATSClusterNodeLoss(t *testing.T) {
	w := newWorld(t)
	nodes := testenv.StartNATSCluster(t, 3)
	urls := []string{nodes[0].URL, nodes[1].URL, nodes[2].URL}
	src, dst := mkBucket(t, w.a, "cl-src"), mkBucket(t, w.b, "cl-dst")
	const n = 2000
	seed(t, w.a, src, n, 4096)
	c, out, errb := w.cmd(append(append([]string{"copy", "s3://" + src, "s3://" + dst, "--allow-unauthenticated-nats", "--nats", strings.Join(urls, ","), "--nats-replicas", "3", "--no-progress", "--json", "--concurrency", "8"}, w.srcA()...), w.dstB()...)...)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for countKeys(t, w.b, dst) < n/4 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	nodes[1].Kill()
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("copy: %v\n%s\n%s", err, out, errb)
		}
	case <-time.After(4 * time.Minute):
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		t.Fatalf("copy did not finish after a node loss\n%s", errb)
	}
	if got := countKeys(t, w.b, dst); got != n {
		t.Fatalf("destination has %d objects, want %d", got, n)
	}
	w.verify("s3://"+src, "s3://"+dst)
}

// TestDeadLetterAndRedrive: objects that always fail end in the DLQ after
// exactly --max-attempts; redrive succeeds once the cause is removed.
func TestDeadLetterAndRedrive(t *testing.T) {
	w := newWorld(t)
	src := mkBucket(t, w.a, "dlq-src")
	seed(t, w.a, src, 50, 100)
	// Two source objects whose destination paths are blocked by
	// directories (a file cannot replace a non-empty directory).
	for _, k := range []string{"data/blocked-1", "data/blocked-2"} {
		if _, err := w.a.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(src), Key: aws.String(k), Body: strings.NewReader("x")}); err != nil {
			t.Fatal(err)
		}
	}
	dst := t.TempDir()
	for _, k := range []string{"data/blocked-1/keep", "data/blocked-2/keep"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, k)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, k), []byte("k"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errs := w.run(append([]string{"copy", "s3://" + src + "/data", filepath.Join(dst, "data"), "--max-attempts", "2", "--no-progress", "--json"}, w.srcA()...)...)
	if code != 1 {
		t.Fatalf("copy with blocked keys: exit %d, want 1\n%s\n%s", code, out, errs)
	}
	id := jobID(t, errs)
	if !strings.Contains(errs, "blocked-1") || !strings.Contains(errs, "blocked-2") {
		t.Fatalf("failures not named on stderr:\n%s", errs)
	}
	code, dl, derr := w.run("dlq", "list", id, "--json")
	if code != 0 {
		t.Fatalf("dlq list: exit %d: %s", code, derr)
	}
	var entries []struct {
		Key      string `json:"key"`
		Attempts int    `json:"attempts"`
		Error    string `json:"error"`
	}
	sc := bufio.NewScanner(strings.NewReader(dl))
	for sc.Scan() {
		var e struct {
			Key      string `json:"key"`
			Attempts int    `json:"attempts"`
			Error    string `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("dlq line %q: %v", sc.Text(), err)
		}
		entries = append(entries, e)
	}
	var keys []string
	for _, e := range entries {
		keys = append(keys, e.Key)
		if e.Attempts != 2 || e.Error == "" {
			t.Fatalf("dlq entry %+v: want attempts 2 and an error", e)
		}
	}
	sort.Strings(keys)
	if strings.Join(keys, ",") != "blocked-1,blocked-2" {
		t.Fatalf("dlq keys %v", keys)
	}
	// Remove the cause, redrive.
	for _, k := range []string{"data/blocked-1", "data/blocked-2"} {
		if err := os.RemoveAll(filepath.Join(dst, k)); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errs = w.run("dlq", "redrive", id, "--no-progress", "--json")
	if code != 0 {
		t.Fatalf("redrive: exit %d\n%s\n%s", code, out, errs)
	}
	for _, k := range []string{"blocked-1", "blocked-2"} {
		if b, err := os.ReadFile(filepath.Join(dst, "data", k)); err != nil || string(b) != "x" {
			t.Fatalf("%s after redrive: %q %v", k, b, err)
		}
	}
	if st := w.status(id); st.Status != "done" || st.Counters.Failed != 0 {
		t.Fatalf("after redrive: %+v", st)
	}
	if code, dl, _ := w.run("dlq", "list", id, "--json"); code != 0 || strings.TrimSpace(dl) != "" {
		t.Fatalf("dlq after redrive: %q", dl)
	}
}

// procOut is a started ferry process with its captured output.
type procOut struct {
	c        *exec.Cmd
	out, err *lockedBuffer
	once     sync.Once
	code     int
}

func (p *procOut) wait() int {
	p.once.Do(func() {
		err := p.c.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			p.code = ee.ExitCode()
		}
	})
	return p.code
}
