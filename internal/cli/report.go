package cli

import (
	"context"
	"errors"
	"fmt"
	"github.com/ferry-dev/ferry/internal/atomicfile"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/queue"
	"github.com/ferry-dev/ferry/internal/report"
)

func newReportCmd(stdio Stdio, qf *queueFlags) *cobra.Command {
	var format, out, rows, auditPath string
	var allowBroken bool
	c := &cobra.Command{
		Use:   "report ID",
		Short: "Write a job's completion report (JSON, CSV or one HTML page) from its verified audit log",
		Long: `Write a job's completion report: totals, timing, throughput and every object's
outcome with its checksums and the reason for each skip or failure. It is drawn
from the job's audit log, whose hash chain is checked first (and its end against
the head the job recorded): a log that fails is refused, exit 1, unless
--allow-broken, which writes the report with the failure at the top.

--format html writes one self-contained page (no scripts, nothing fetched) with
a throughput chart, for people who never used ferry. The format defaults to
the extension of -o, else json. Reports stream: memory does not grow with the
number of objects.`,
		Example: `  ferry report k3xqmv2hq7d4nb5a -o report.html
  ferry report k3xqmv2hq7d4nb5a --format csv --objects problems > failures.csv
  ferry report k3xqmv2hq7d4nb5a --format json --objects none`,
		Args: exactArgs(1, "a job ID"),
		RunE: func(c *cobra.Command, args []string) error {
			id := args[0]
			if err := job.ValidID(id); err != nil {
				return asUsage(err)
			}
			if format == "" {
				format = strings.TrimPrefix(filepath.Ext(out), ".")
				if format != string(report.CSV) && format != string(report.HTML) {
					format = string(report.JSON)
				}
			}
			f, err := report.ParseFormat(format)
			if err != nil {
				return asUsage(err)
			}
			sel, err := report.ParseRows(rows)
			if err != nil {
				return asUsage(err)
			}
			var st job.State
			err = withJobs(c.Context(), qf, func(conn *queue.Conn, locked bool) error {
				var err error
				if locked {
					st, err = job.ReadSnapshot(qf.snapshotDir(), id, qf.snapshotKey(c.Context()))
				} else {
					st, _, err = job.Load(c.Context(), conn, id)
				}
				return jobErr(err)
			})
			if err != nil {
				return err
			}
			if auditPath == "" {
				auditPath = st.Spec.AuditLog
			}
			if auditPath == "" {
				return usageErr("job %s has no audit log; name one with --audit-log", id)
			}
			if _, err := os.Stat(auditPath); err != nil {
				return usageErr("job %s: audit log %s: %v (removed with 'ferry job rm --audit'? moved? name it with --audit-log)", id, auditPath, unwrapPath(err))
			}
			opts := report.Options{Format: f, Rows: sel, AllowBroken: allowBroken}
			if !st.Status.Finished() {
				fmt.Fprintf(stdio.Err, "ferry: warning: job %s is %s: the report covers what its audit log holds so far\n", id, st.Status)
				// A running job's head is not recorded yet.
				st.AuditLines, st.AuditHash = 0, ""
			}
			return writeJobReport(c.Context(), stdio, out, auditPath, reportJobInfo(st), opts)
		},
	}
	c.Flags().StringVar(&format, "format", "", "json, csv or html (default: from -o's extension, else json)")
	c.Flags().StringVarP(&out, "output", "o", "", "write the report to this file (default: stdout)")
	c.Flags().StringVar(&rows, "objects", "all", "per-object rows: all, problems (failed and unsafe) or none")
	c.Flags().StringVar(&auditPath, "audit-log", "", "the job's audit log, when it is not where the job wrote it")
	c.Flags().BoolVar(&allowBroken, "allow-broken", false, "write the report of a log that fails verification, flagged at the top")
	return c
}

// reportJobInfo is what a report says about a job besides its audit log.
func reportJobInfo(st job.State) report.Job {
	k := st.Counters
	return report.Job{
		ID: st.Spec.ID, Command: st.Spec.Command, Source: sideString(st.Spec.Src), Destination: sideString(st.Spec.Dst),
		Status: string(st.Status), Error: st.Error, Created: st.Spec.Created, Finished: st.Finished, Duration: st.Duration,
		AuditLines: st.AuditLines, AuditHash: st.AuditHash,
		Summary: &report.Summary{
			Listed: k.Listed, Copied: k.Copied, Skipped: k.Skipped, Failed: k.Failed, Deleted: k.Deleted,
			DeleteFailed: k.DeleteFailed, Unsafe: k.Unsafe, BytesListed: k.ListedBytes, BytesCopied: k.CopiedBytes, BytesSkipped: k.SkippedBytes,
		},
	}
}

// writeJobReport writes the report to out (a file replaced only when the
// whole report was written) or stdout. A log that fails verification is
// exit 1.
func writeJobReport(ctx context.Context, stdio Stdio, out, auditPath string, j report.Job, opts report.Options) error {
	open := func() (io.ReadCloser, error) { return os.Open(auditPath) }
	if out == "" || out == "-" {
		return reportErr(report.Write(ctx, stdio.Out, open, j, opts))
	}
	var werr error
	err := atomicfile.WriteFunc(out, 0o600, func(w io.Writer) error {
		werr = report.Write(ctx, w, open, j, opts)
		return werr
	})
	if werr != nil {
		return reportErr(werr)
	}
	if err != nil {
		return usageErr("report %s: %v", out, unwrapPath(err))
	}
	return nil
}

func reportErr(err error) error {
	if errors.Is(err, report.ErrBroken) {
		return &exitError{code: ExitFailed, err: fmt.Errorf("%w (see 'ferry audit verify'; --allow-broken writes the report anyway, flagged)", err)}
	}
	return err
}
