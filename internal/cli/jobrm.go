package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/queue"
	"github.com/ferry-dev/ferry/internal/units"
)

// rmFlags are the flags of 'ferry job rm' and 'ferry job prune'.
type rmFlags struct {
	audit, dryRun bool
	olderThan     string
}

func (r *rmFlags) register(c *cobra.Command) {
	c.Flags().BoolVar(&r.audit, "audit", false, "also delete the jobs' audit logs (kept by default: they are the record of what was copied)")
	c.Flags().BoolVar(&r.dryRun, "dry-run", false, "only list what would be removed")
}

func newJobRmCmd(stdio Stdio, qf *queueFlags) *cobra.Command {
	var r rmFlags
	c := &cobra.Command{
		Use:   "rm ID...",
		Short: "Remove finished jobs' state (record, queue messages, snapshot; with --audit the audit log)",
		Long: `Remove everything the state directory (or the NATS cluster) holds for
finished jobs: the job record, its ledger and upload entries, its messages
on the work, results, dead-letter and delete streams, its state snapshot and
control files. The audit log stays unless --audit. A job that is running,
paused or interrupted is refused: cancel it first (ferry job cancel ID).`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr("rm takes one or more job IDs; see 'ferry job rm --help'")
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			for _, id := range args {
				if err := job.ValidID(id); err != nil {
					return asUsage(err)
				}
			}
			return withRemovable(c.Context(), qf, func(conn *queue.Conn) error {
				for _, id := range args {
					if _, _, err := job.Load(c.Context(), conn, id); err != nil {
						return jobErr(err)
					}
				}
				return removeJobs(c.Context(), stdio, qf, conn, args, r)
			})
		},
	}
	r.register(c)
	return c
}

func newJobPruneCmd(stdio Stdio, qf *queueFlags) *cobra.Command {
	var r rmFlags
	c := &cobra.Command{
		Use:   "prune --older-than AGE",
		Short: "Remove the state of jobs that finished more than AGE ago (e.g. 30d)",
		Long: `Remove the state of every job that finished (done, failed or cancelled)
before AGE ago, as 'ferry job rm' does for one: AGE is a duration such as
30d, 12h or 2w, or a date (2006-01-02). Running, paused and interrupted
jobs are never touched. The audit logs stay unless --audit.`,
		Args: exactArgs(0, "no arguments (--older-than AGE)"),
		RunE: func(c *cobra.Command, _ []string) error {
			if r.olderThan == "" {
				return usageErr("job prune needs --older-than AGE (e.g. 30d)")
			}
			cutoff, err := units.ParseAge(r.olderThan, time.Now())
			if err != nil {
				return usageErr("--older-than %v", err)
			}
			return withRemovable(c.Context(), qf, func(conn *queue.Conn) error {
				states, err := job.FinishedBefore(c.Context(), conn, cutoff)
				if err != nil {
					return err
				}
				if len(states) == 0 {
					fmt.Fprintf(stdio.Err, "no job finished before %s\n", cutoff.UTC().Format(time.RFC3339))
					return nil
				}
				ids := make([]string, 0, len(states))
				for _, st := range states {
					ids = append(ids, st.Spec.ID)
				}
				return removeJobs(c.Context(), stdio, qf, conn, ids, r)
			})
		},
	}
	r.register(c)
	c.Flags().StringVar(&r.olderThan, "older-than", "", "remove jobs that finished before this long ago (30d, 12h, 2w) or this date")
	return c
}

// withRemovable connects for rm and prune: they need the queue itself,
// not the snapshots another process writes.
func withRemovable(ctx context.Context, qf *queueFlags, fn func(conn *queue.Conn) error) error {
	conn, err := qf.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return fn(conn)
}

// removeJobs removes the jobs' state from the queue and the state
// directory, one line per job on stdout; the first failure stops it.
func removeJobs(ctx context.Context, stdio Stdio, qf *queueFlags, conn *queue.Conn, ids []string, r rmFlags) error {
	keep := map[string]bool{} // audit logs that jobs not removed still use
	if r.audit {
		all, err := job.List(ctx, conn)
		if err != nil {
			return err
		}
		gone := map[string]bool{}
		for _, id := range ids {
			gone[id] = true
		}
		for _, st := range all {
			if !gone[st.Spec.ID] && st.Spec.AuditLog != "" {
				keep[st.Spec.AuditLog] = true
			}
		}
	}
	verb := "removed"
	if r.dryRun {
		verb = "would remove"
	}
	for _, id := range ids {
		rem, err := job.Remove(ctx, conn, id, r.dryRun)
		if err != nil {
			if errors.Is(err, job.ErrNotFinished) {
				return asUsage(err)
			}
			return jobErr(err)
		}
		files, err := jobFiles(qf, conn, rem.State, r.audit, keep)
		if err != nil {
			return err
		}
		var size int64
		for _, f := range files {
			size += f.size
		}
		fmt.Fprintf(stdio.Out, "%s job %s (%s): %d queue messages, %d key-value entries, %d files (%s)\n",
			verb, id, rem.State.Status, rem.Messages, rem.Entries, len(files), humanBytes(size))
		for _, f := range files {
			if !r.dryRun {
				if err := os.Remove(f.path); err != nil && !errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("job %s: %w", id, err)
				}
			}
			fmt.Fprintf(stdio.Out, "  %s %s\n", verb, f.path)
		}
		if r.audit && rem.State.Spec.AuditLog != "" && keep[rem.State.Spec.AuditLog] {
			fmt.Fprintf(stdio.Out, "  kept %s: other jobs write to it too\n", rem.State.Spec.AuditLog)
		}
	}
	return nil
}

type jobFile struct {
	path string
	size int64
}

// jobFiles lists the files of job st in the state directory (its snapshot
// and control files; with audit, its audit log unless keep names it) that
// exist.
func jobFiles(qf *queueFlags, conn *queue.Conn, st job.State, audit bool, keep map[string]bool) ([]jobFile, error) {
	id := st.Spec.ID
	var cands []string
	if conn.Embedded() || qf.url == "" {
		cands = append(cands, filepath.Join(qf.snapshotDir(), id+".json"))
		ctl, err := filepath.Glob(filepath.Join(qf.controlDir(), id+".*"))
		if err != nil {
			return nil, err
		}
		cands = append(cands, ctl...)
	}
	if audit && st.Spec.AuditLog != "" && !keep[st.Spec.AuditLog] {
		cands = append(cands, st.Spec.AuditLog)
	}
	var out []jobFile
	for _, p := range cands {
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("job %s: %w", id, err)
		}
		out = append(out, jobFile{p, fi.Size()})
	}
	return out, nil
}
