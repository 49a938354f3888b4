package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/job"
)

// TestInterruptedStatus: a job left running by a killed process shows as
// interrupted, with the command that continues it, not as running.
func TestInterruptedStatus(t *testing.T) {
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
	conn.Close() // the process "dies" with the job running
	id := coord.ID()

	r := run(t, "", "job", "list", "--state-dir", state)
	if r.code != 0 || !strings.Contains(r.out, id) || !strings.Contains(r.out, "interrupted") {
		t.Fatalf("job list: %d %q %q", r.code, r.out, r.err)
	}
	r = run(t, "", "job", "status", id, "--state-dir", state)
	if r.code != 0 || !strings.Contains(r.out, "interrupted") || !strings.Contains(r.out, "ferry job resume "+id) {
		t.Fatalf("job status: %d %q %q", r.code, r.out, r.err)
	}
}
