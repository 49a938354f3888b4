package cli

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/logtext"
	"github.com/ferry-dev/ferry/internal/queue"
)

// jobAuditHead resolves 'audit verify JOB': the job's audit log and, for a
// finished job, the line count and last hash its summary recorded.
func jobAuditHead(ctx context.Context, qf *queueFlags, id string) (path string, lines int64, last string, err error) {
	var st job.State
	err = withJobs(ctx, qf, func(conn *queue.Conn, locked bool) error {
		var lerr error
		if locked {
			st, lerr = job.ReadSnapshot(qf.snapshotDir(), id, qf.snapshotKey(ctx))
		} else {
			st, _, lerr = job.Load(ctx, conn, id)
		}
		return lerr
	})
	if err != nil {
		return "", 0, "", jobErr(err)
	}
	if st.Spec.AuditLog == "" {
		return "", 0, "", usageErr("job %s has no audit log", id)
	}
	if !st.Status.Finished() {
		return st.Spec.AuditLog, 0, "", nil
	}
	return st.Spec.AuditLog, st.AuditLines, st.AuditHash, nil
}

func newAuditCmd(stdio Stdio, qf *queueFlags) *cobra.Command {
	c := &cobra.Command{
		Use:   "audit",
		Short: "Check ferry's per-job audit logs",
	}
	var expectLast string
	verify := &cobra.Command{
		Use:   "verify FILE|JOB",
		Short: "Check an audit log's hash chain; exit 0 when intact, 1 naming the first bad line",
		Long: `Check that no line of an audit log was edited, removed, inserted or reordered.
Prints "ok: N lines, last hash H", or "audit log FILE: line N: ..." and exits 1.
Lines removed from the end leave a valid chain: pass the last hash the job's
summary recorded with --expect-last to detect that. Given a job ID (and no
file of that name), ferry reads the job's audit log and, when the job has
finished, compares with the line count and last hash its summary recorded:
a truncated tail is then found without --expect-last. See docs/audit.md.`,
		Args: exactArgs(1, "FILE or JOB"),
		RunE: func(c *cobra.Command, args []string) error {
			path := args[0]
			var wantLines int64 = -1
			if _, serr := os.Stat(path); serr != nil && job.ValidID(path) == nil {
				p, lines, last, err := jobAuditHead(c.Context(), qf, path)
				if err != nil {
					return err
				}
				if last == "" {
					fmt.Fprintf(stdio.Err, "job %s has not finished: checking the chain only (no recorded head to compare with)\n", path)
				} else if expectLast == "" {
					expectLast, wantLines = last, lines
				}
				path = p
			}
			if expectLast != "" {
				if b, err := hex.DecodeString(expectLast); err != nil || len(b) != 32 {
					return usageErr("--expect-last: want a SHA-256 in hex (64 characters)")
				}
			}
			f, err := os.Open(path)
			if err != nil {
				return usageErr("audit log %s: %v", path, unwrapPath(err))
			}
			defer f.Close()
			n, last, err := audit.VerifyExpect(f, expectLast)
			var ve *audit.VerifyError
			switch {
			case errors.As(err, &ve):
				fmt.Fprintf(stdio.Err, "audit log %s: %s\n", path, logtext.OneLine(ve.Error()))
				return errFailed
			case err != nil:
				return usageErr("audit log %s: %v", path, err)
			}
			if wantLines >= 0 && n != wantLines {
				fmt.Fprintf(stdio.Err, "audit log %s: %d lines, but the job's summary recorded %d\n", path, n, wantLines)
				return errFailed
			}
			fmt.Fprintf(stdio.Out, "ok: %d lines, last hash %s\n", n, last)
			return nil
		},
	}
	verify.Flags().StringVar(&expectLast, "expect-last", "", "the last line's SHA-256 as the job summary recorded it")
	c.AddCommand(verify)
	return c
}
