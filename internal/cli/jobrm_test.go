package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/job"
)

// TestJobRmPrune: rm refuses a running job in one line (exit 2), a dry run
// changes nothing, rm --audit removes a finished job's record, snapshot and
// audit log; prune removes jobs finished before the cutoff and keeps the
// audit logs without --audit.
func TestJobRmPrune(t *testing.T) {
	secretEnv(t)
	noAWSEnv(t)
	state := filepath.Join(t.TempDir(), "state")
	src := writeTree(t, map[string]string{"a": "a", "b/c": "bc"})
	var ids []string
	for range 2 {
		r := run(t, "", "copy", src, t.TempDir(), "--state-dir", state, "--no-progress")
		if r.code != 0 {
			t.Fatalf("copy: exit %d: %s", r.code, r.err)
		}
		ids = append(ids, jobIDFrom(t, r.err))
	}
	qf := &queueFlags{stateDir: state}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := qf.connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	running, err := job.Create(ctx, conn, job.Spec{Command: "copy", Src: job.Side{Location: "/a"}, Dst: job.Side{Location: "/b"}})
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()

	r := run(t, "", "job", "rm", running.ID(), "--state-dir", state)
	if r.code != ExitUsage || !strings.Contains(r.err, "has not finished") || strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
		t.Fatalf("rm of a running job: exit %d, stderr %q", r.code, r.err)
	}
	for _, bad := range [][]string{{"job", "rm"}, {"job", "rm", "nonsense"}, {"job", "prune"}, {"job", "prune", "--older-than", "soon"}} {
		if r := run(t, "", append(bad, "--state-dir", state)...); r.code != ExitUsage {
			t.Fatalf("%v: exit %d, want %d: %s", bad, r.code, ExitUsage, r.err)
		}
	}

	snap := filepath.Join(state, "jobs", ids[0]+".json")
	auditLog := filepath.Join(state, "audit", ids[0]+".jsonl")
	for _, p := range []string{snap, auditLog} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("before rm: %v", err)
		}
	}
	r = run(t, "", "job", "rm", ids[0], "--audit", "--dry-run", "--state-dir", state)
	if r.code != 0 || !strings.Contains(r.out, "would remove job "+ids[0]) || !strings.Contains(r.out, auditLog) {
		t.Fatalf("rm --dry-run: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if _, err := os.Stat(auditLog); err != nil {
		t.Fatalf("dry run removed the audit log: %v", err)
	}
	r = run(t, "", "job", "rm", ids[0], "--audit", "--state-dir", state)
	if r.code != 0 || !strings.Contains(r.out, "removed job "+ids[0]) {
		t.Fatalf("rm: exit %d\n%s%s", r.code, r.out, r.err)
	}
	for _, p := range []string{snap, auditLog} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("after rm, %s: %v", p, err)
		}
	}
	if r := run(t, "", "job", "status", ids[0], "--state-dir", state); r.code != ExitUsage {
		t.Fatalf("status of a removed job: exit %d %s", r.code, r.err)
	}

	r = run(t, "", "job", "prune", "--older-than", "30d", "--state-dir", state)
	if r.code != 0 || strings.Contains(r.out, "removed") {
		t.Fatalf("prune 30d removed a job that just finished: exit %d\n%s%s", r.code, r.out, r.err)
	}
	r = run(t, "", "job", "prune", "--older-than", "0s", "--state-dir", state)
	if r.code != 0 || !strings.Contains(r.out, "removed job "+ids[1]) || strings.Contains(r.out, running.ID()) {
		t.Fatalf("prune 0s: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if _, err := os.Stat(filepath.Join(state, "audit", ids[1]+".jsonl")); err != nil {
		t.Fatalf("prune without --audit removed the audit log: %v", err)
	}
	r = run(t, "", "job", "list", "--state-dir", state)
	if r.code != 0 || strings.Contains(r.out, ids[0]) || strings.Contains(r.out, ids[1]) || !strings.Contains(r.out, running.ID()) {
		t.Fatalf("job list after prune: exit %d\n%s%s", r.code, r.out, r.err)
	}
}

// jobIDFrom finds the job ID in "job ID started" on stderr.
func jobIDFrom(t *testing.T, stderr string) string {
	t.Helper()
	for _, l := range strings.Split(stderr, "\n") {
		if rest, ok := strings.CutPrefix(l, "job "); ok {
			if id, _, ok := strings.Cut(rest, " started"); ok {
				return id
			}
		}
	}
	t.Fatalf("no job ID in stderr:\n%s", stderr)
	return ""
}
