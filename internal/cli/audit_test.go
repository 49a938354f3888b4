package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/audit"
)

func writeAuditLog(t *testing.T, n int) (path, last string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := l.Record(audit.Record{Job: "j", Key: fmt.Sprintf("k%d", i), Size: 1, Outcome: audit.Copied, Attempts: 1}); err != nil {
			t.Fatal(err)
		}
	}
	_, last = l.Head()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path, last
}

func TestAuditVerify(t *testing.T) {
	path, last := writeAuditLog(t, 5)
	r := run(t, "", "audit", "verify", path)
	if r.code != 0 || r.out != fmt.Sprintf("ok: 5 lines, last hash %s\n", last) {
		t.Fatalf("exit %d: %q %q", r.code, r.out, r.err)
	}
	if r := run(t, "", "audit", "verify", path, "--expect-last", last); r.code != 0 {
		t.Fatalf("exit %d: %q", r.code, r.err)
	}
	if r := run(t, "", "audit", "verify", path, "--expect-last", "abc"); r.code != 2 || !strings.Contains(r.err, "--expect-last") {
		t.Fatalf("exit %d: %q", r.code, r.err)
	}
	if r := run(t, "", "audit", "verify", filepath.Join(t.TempDir(), "none")); r.code != 2 {
		t.Fatalf("missing file: exit %d: %q", r.code, r.err)
	}

	b, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(b), "\n")
	// Edit line 2.
	edited := strings.Join(lines[:1], "") + strings.Replace(lines[1], `"k1"`, `"k9"`, 1) + strings.Join(lines[2:], "")
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	r = run(t, "", "audit", "verify", path)
	if r.code != 1 || !strings.HasPrefix(r.err, "audit log "+path+": line 2: edited") || r.out != "" {
		t.Fatalf("exit %d: %q %q", r.code, r.out, r.err)
	}
	// Truncate the tail: only the anchor notices.
	if err := os.WriteFile(path, []byte(strings.Join(lines[:3], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := run(t, "", "audit", "verify", path); r.code != 0 || !strings.HasPrefix(r.out, "ok: 3 lines") {
		t.Fatalf("exit %d: %q", r.code, r.err)
	}
	r = run(t, "", "audit", "verify", path, "--expect-last", last)
	if r.code != 1 || !strings.Contains(r.err, "line 3: ") || !strings.Contains(r.err, "removed") {
		t.Fatalf("exit %d: %q", r.code, r.err)
	}
}

// TestAuditVerifyJob: 'audit verify JOB' compares with the head the job's
// summary recorded, so a log whose last lines were cut is caught without
// --expect-last.
func TestAuditVerifyJob(t *testing.T) {
	secretEnv(t)
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "dst")
	for _, n := range []string{"a", "b", "c"} {
		if err := os.WriteFile(filepath.Join(src, n), []byte(n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r := run(t, "", "copy", src, dst, "--no-progress")
	if r.code != 0 {
		t.Fatalf("copy: %+v", r)
	}
	_, id, _ := strings.Cut(r.err, "job ")
	id, _, _ = strings.Cut(id, " ")
	if r := run(t, "", "audit", "verify", id); r.code != 0 || !strings.HasPrefix(r.out, "ok: 3 lines") {
		t.Fatalf("audit verify %s: %+v", id, r)
	}
	path := filepath.Join(os.Getenv("XDG_STATE_HOME"), "ferry", "audit", id+".jsonl")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSuffix(string(b), "\n"), "\n")
	if err := os.WriteFile(path, []byte(strings.Join(lines[:2], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := run(t, "", "audit", "verify", path); r.code != 0 {
		t.Fatalf("a cut log's chain alone is intact: %+v", r)
	}
	if r := run(t, "", "audit", "verify", id); r.code != 1 {
		t.Fatalf("audit verify %s of a cut log: exit %d, want 1\n%s", id, r.code, r.err)
	}
}
