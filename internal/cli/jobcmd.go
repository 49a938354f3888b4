package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/dashboard"
	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/queue"
	"github.com/ferry-dev/ferry/internal/sides"
	"github.com/ferry-dev/ferry/internal/worker"
)

// jobErr maps job-layer errors on a user's request to exit 2.
func jobErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, job.ErrNotFound) || errors.Is(err, job.ErrFinished) || errors.Is(err, job.ErrIncompatible) ||
		errors.Is(err, job.ErrLocked) || errors.Is(err, queue.ErrLocked) || errors.Is(err, job.ErrNotFinished) {
		return asUsage(err)
	}
	return err
}

// withJobs connects to the queue for a job command. With an embedded
// server that another ferry process holds (a job running in the
// foreground), fn gets a nil conn and locked=true: the command then works
// from the state snapshots and control files.
func withJobs(ctx context.Context, qf *queueFlags, fn func(conn *queue.Conn, locked bool) error) error {
	conn, err := qf.connect(ctx)
	if err != nil {
		if qf.url == "" && errors.Is(err, queue.ErrLocked) {
			return fn(nil, true)
		}
		return err
	}
	defer conn.Close()
	return fn(conn, false)
}

func newJobCmd(stdio Stdio, qf *queueFlags) *cobra.Command {
	c := &cobra.Command{Use: "job", Short: "List, inspect, pause, resume and cancel jobs"}
	var jsonOut bool

	list := &cobra.Command{
		Use: "list", Short: "List jobs", Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			return withJobs(c.Context(), qf, func(conn *queue.Conn, locked bool) error {
				var states []job.State
				var err error
				if locked {
					states, err = readSnapshots(qf.snapshotDir(), qf.snapshotKey(c.Context()))
				} else {
					states, err = job.List(c.Context(), conn)
					for i := range states {
						states[i] = withLiveness(c.Context(), conn, states[i])
					}
				}
				if err != nil {
					return err
				}
				if jsonOut {
					out := make([]jobSummary, 0, len(states))
					for _, st := range states {
						out = append(out, summarize(st))
					}
					b, _ := json.Marshal(out)
					fmt.Fprintf(stdio.Out, "%s\n", b)
					return nil
				}
				fmt.Fprintf(stdio.Out, "%-16s  %-9s  %-7s  %10s  %10s  %8s  %s\n", "JOB", "STATUS", "COMMAND", "COPIED", "SKIPPED", "FAILED", "SOURCE -> DESTINATION")
				for _, st := range states {
					k := st.Counters
					fmt.Fprintf(stdio.Out, "%-16s  %-9s  %-7s  %10d  %10d  %8d  %s -> %s\n", st.Spec.ID, st.Status, st.Spec.Command, k.Copied, k.Skipped, k.Failed, sideString(st.Spec.Src), sideString(st.Spec.Dst))
				}
				return nil
			})
		},
	}
	list.Flags().BoolVar(&jsonOut, "json", false, "JSON output")

	status := &cobra.Command{
		Use: "status ID", Short: "Show a job's progress (while it runs, from another terminal, or after it finished)", Args: exactArgs(1, "a job ID"),
		RunE: func(c *cobra.Command, args []string) error {
			id := args[0]
			if err := job.ValidID(id); err != nil {
				return asUsage(err)
			}
			return withJobs(c.Context(), qf, func(conn *queue.Conn, locked bool) error {
				var st job.State
				var err error
				if locked {
					st, err = job.ReadSnapshot(qf.snapshotDir(), id, qf.snapshotKey(c.Context()))
				} else {
					st, _, err = job.Load(c.Context(), conn, id)
					st = withLiveness(c.Context(), conn, st)
				}
				if err != nil {
					return jobErr(err)
				}
				if jsonOut {
					b, _ := json.Marshal(st)
					fmt.Fprintf(stdio.Out, "%s\n", b)
					return nil
				}
				printStatus(stdio.Out, st)
				return nil
			})
		},
	}
	status.Flags().BoolVar(&jsonOut, "json", false, "print the job's full state as JSON")

	setter := func(use, short string, to job.Status) *cobra.Command {
		return &cobra.Command{
			Use: use + " ID", Short: short, Args: exactArgs(1, "a job ID"),
			RunE: func(c *cobra.Command, args []string) error {
				id := args[0]
				if err := job.ValidID(id); err != nil {
					return asUsage(err)
				}
				return withJobs(c.Context(), qf, func(conn *queue.Conn, locked bool) error {
					if locked {
						return controlLocked(c.Context(), stdio, qf, id, to)
					}
					var st job.State
					var err error
					if to == job.Cancelled {
						st, err = job.Cancel(c.Context(), conn, id, nil)
					} else {
						st, err = job.SetStatus(c.Context(), conn, id, to, "")
					}
					if err != nil {
						return jobErr(err)
					}
					fmt.Fprintf(stdio.Out, "job %s: %s\n", id, st.Status)
					return nil
				})
			},
		}
	}
	pause := setter("pause", "Pause a job: workers finish in-flight objects and take no more work", job.Paused)
	cancel := setter("cancel", "Cancel a job: its queued work is dropped and its multipart uploads aborted", job.Cancelled)

	var f jobFlags
	var d durableFlags
	resume := &cobra.Command{
		Use: "resume ID", Short: "Resume a paused, interrupted or crashed job (runs it in the foreground)", Args: exactArgs(1, "a job ID"),
		RunE: func(c *cobra.Command, args []string) error {
			return resumeJob(c.Context(), stdio, qf, args[0], f, d, false)
		},
	}
	f.registerOutput(resume)
	d.register(resume)

	c.AddCommand(list, status, pause, resume, cancel, newJobRmCmd(stdio, qf), newJobPruneCmd(stdio, qf))
	return c
}

// Interrupted is the status shown for a running job that no coordinator
// runs (its process was killed): `ferry job resume` continues it.
const Interrupted job.Status = "interrupted"

// withLiveness shows a running job whose coordinator is gone as
// interrupted: the job's lock tells (on a state directory's server shared
// by several processes as on a cluster).
func withLiveness(ctx context.Context, conn *queue.Conn, st job.State) job.State {
	if st.Status != job.Running {
		return st
	}
	if !job.Locked(ctx, conn, st.Spec.ID) {
		st.Status = Interrupted
		st.Message = "no process coordinates it; continue with: ferry job resume " + st.Spec.ID
	}
	return st
}

// resumeJob continues a job in the foreground. If a coordinator is alive
// elsewhere, it only sets the job running again.
func resumeJob(ctx context.Context, stdio Stdio, qf *queueFlags, id string, f jobFlags, d durableFlags, redrive bool) error {
	if err := job.ValidID(id); err != nil {
		return asUsage(err)
	}
	if err := d.checkProcessFlags(); err != nil {
		return err
	}
	if f.concurrency <= 0 {
		f.concurrency = defaultConcurrency
	}
	conn, err := qf.connect(ctx)
	if err != nil {
		if qf.url == "" && errors.Is(err, queue.ErrLocked) && !redrive {
			return controlLocked(ctx, stdio, qf, id, job.Running)
		}
		return err
	}
	defer conn.Close()
	if redrive {
		n, err := job.Redrive(ctx, conn, id)
		if err != nil {
			return jobErr(err)
		}
		fmt.Fprintf(stdio.Err, "job %s: %d dead-letter entries back on the work queue\n", id, n)
	}
	if job.Locked(ctx, conn, id) {
		st, err := job.SetStatus(ctx, conn, id, job.Running, "")
		if err != nil {
			return jobErr(err)
		}
		fmt.Fprintf(stdio.Out, "job %s: %s (its coordinator runs in another process)\n", id, st.Status)
		return nil
	}
	coord, err := job.Open(ctx, conn, id)
	if err != nil {
		return jobErr(err)
	}
	fmt.Fprintf(stdio.Err, "job %s resumed\n", id)
	return jobErr(foreground(ctx, stdio, qf, conn, coord, f, d))
}

// controlLocked asks a foreground process holding the embedded server to
// change a job's status, and waits for its snapshot to show it.
func controlLocked(ctx context.Context, stdio Stdio, qf *queueFlags, id string, to job.Status) error {
	st, err := job.ReadSnapshot(qf.snapshotDir(), id, qf.snapshotKey(ctx))
	if err != nil {
		return asUsage(fmt.Errorf("%w, and job %s is not the one it runs", queue.ErrLocked, id))
	}
	if st.Status.Finished() {
		return asUsage(fmt.Errorf("job %s: %w (%s)", id, job.ErrFinished, st.Status))
	}
	if err := job.RequestControl(qf.controlDir(), id, to); err != nil {
		return fmt.Errorf("job %s: %w", id, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if job.ControlPending(qf.controlDir(), id, to) {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		st, err = job.ReadSnapshot(qf.snapshotDir(), id, qf.snapshotKey(ctx))
		if err == nil && (st.Status == to || (to == job.Cancelled && st.Status.Finished())) {
			fmt.Fprintf(stdio.Out, "job %s: %s\n", id, st.Status)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("job %s: the process running it did not confirm %q within 10s", id, to)
}

func readSnapshots(dir string, key []byte) ([]job.State, error) {
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var out []job.State
	for _, e := range ents {
		if id, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			if st, err := job.ReadSnapshot(dir, id, key); err == nil {
				out = append(out, st)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Spec.Created.Before(out[j].Spec.Created) })
	return out, nil
}

func printStatus(w io.Writer, st job.State) {
	k := st.Counters
	fmt.Fprintf(w, "job:          %s\n", st.Spec.ID)
	fmt.Fprintf(w, "status:       %s", st.Status)
	if st.Message != "" {
		fmt.Fprintf(w, " (%s)", st.Message)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "command:      ferry %s %s %s\n", st.Spec.Command, sideString(st.Spec.Src), sideString(st.Spec.Dst))
	fmt.Fprintf(w, "created:      %s\n", st.Spec.Created.Format(time.RFC3339))
	listing := "in progress"
	if st.ListingComplete() {
		listing = "complete"
	}
	fmt.Fprintf(w, "listing:      %s: %d source objects (%s), %d destination objects, %d tasks done, %d open, %d failed\n",
		listing, k.Listed, humanBytes(k.ListedBytes), k.DstListed, k.TasksDone, k.TasksOpen, k.TasksFailed)
	fmt.Fprintf(w, "objects:      %d/%d finished: %d copied (%s), %d skipped (%s), %d failed, %d skipped-unsafe\n",
		k.Finished, k.Enqueued, k.Copied, humanBytes(k.CopiedBytes), k.Skipped, humanBytes(k.SkippedBytes), k.Failed, k.Unsafe)
	if st.Spec.Delete {
		fmt.Fprintf(w, "deletes:      %d planned, %d done, %d failed\n", k.DeletesPlanned, k.Deleted, k.DeleteFailed)
	}
	if p := st.Spec.Pack; p != nil {
		fmt.Fprintf(w, "pack:         %d objects packed in %d bundles (%d removed from staging %s): %s of data in %s, ratio %.2f, highest zstd level %d\n",
			k.ObjectsPacked, k.Bundles, k.BundlesRemoved, sideString(p.Staging), humanBytes(k.BundleDataBytes), humanBytes(k.BundleBytes), k.PackRatio(), k.PackLevel)
	}
	if st.Error != "" {
		fmt.Fprintf(w, "error:        %s\n", st.Error)
	}
	fmt.Fprintf(w, "updated:      %s\n", st.Updated.Format(time.RFC3339))
	if st.AuditHash != "" {
		fmt.Fprintf(w, "audit:        %d lines, last hash %s\n", st.AuditLines, st.AuditHash)
	}
}

func newDLQCmd(stdio Stdio, qf *queueFlags) *cobra.Command {
	c := &cobra.Command{Use: "dlq", Short: "Inspect and redrive a job's dead-letter queue"}
	var jsonOut bool
	list := &cobra.Command{
		Use: "list ID", Short: "List the objects (and listing tasks) that kept failing, with their last error", Args: exactArgs(1, "a job ID"),
		RunE: func(c *cobra.Command, args []string) error {
			id := args[0]
			if err := job.ValidID(id); err != nil {
				return asUsage(err)
			}
			conn, err := qf.connect(c.Context())
			if err != nil {
				return err
			}
			defer conn.Close()
			if _, _, err := job.Load(c.Context(), conn, id); err != nil {
				return jobErr(err)
			}
			entries, err := job.ReadDLQ(c.Context(), conn, id, 0)
			if err != nil {
				return err
			}
			for _, e := range entries {
				if jsonOut {
					b, err := json.Marshal(dlqJSON(e))
					if err != nil {
						return fmt.Errorf("dead-letter entry: %w", err)
					}
					fmt.Fprintf(stdio.Out, "%s\n", b)
					continue
				}
				what := ""
				switch {
				case e.Obj != nil:
					what = fmt.Sprintf("%s %q", e.Kind, e.Obj.K)
				case e.Task != nil:
					what = fmt.Sprintf("list prefix=%q after=%q end=%q", e.Task.Prefix, e.Task.StartAfter, e.Task.End)
				}
				fmt.Fprintf(stdio.Out, "%s\tattempts=%d\t%s\n", what, e.Attempts, e.Error)
			}
			if !jsonOut {
				fmt.Fprintf(stdio.Err, "%d dead-letter entries\n", len(entries))
			}
			return nil
		},
	}
	list.Flags().BoolVar(&jsonOut, "json", false, "one JSON object per entry")
	var f jobFlags
	var d durableFlags
	redrive := &cobra.Command{
		Use: "redrive ID", Short: "Put dead-lettered work back on the queue and run the job again", Args: exactArgs(1, "a job ID"),
		RunE: func(c *cobra.Command, args []string) error {
			return resumeJob(c.Context(), stdio, qf, args[0], f, d, true)
		},
	}
	f.registerOutput(redrive)
	d.register(redrive)
	c.AddCommand(list, redrive)
	return c
}

// dlqEntryJSON is one line of 'ferry dlq list --json': the entry in the
// names users read, not the queue's short wire names.
type dlqEntryJSON struct {
	Job      string     `json:"job_id"`
	Kind     string     `json:"kind"` // copy, delete or list
	Key      string     `json:"key,omitempty"`
	Size     *int64     `json:"size,omitempty"`
	ETag     string     `json:"etag,omitempty"`
	MTime    *time.Time `json:"mtime,omitempty"`
	Listing  *dlqTask   `json:"listing,omitempty"`
	Error    string     `json:"error"`
	Attempts int        `json:"attempts"`
	Time     time.Time  `json:"time"`
}

// dlqTask is a failed listing task's key range.
type dlqTask struct {
	Prefix     string `json:"prefix"`
	StartAfter string `json:"start_after,omitempty"`
	End        string `json:"end,omitempty"`
}

func dlqJSON(e job.DLQEntry) dlqEntryJSON {
	out := dlqEntryJSON{Job: e.Job, Kind: e.Kind, Error: e.Error, Attempts: e.Attempts, Time: e.Time}
	if e.Obj != nil {
		o := e.Obj.Src()
		out.Key, out.Size, out.ETag = o.Key, &o.Size, o.ETag
		if !o.LastModified.IsZero() {
			out.MTime = &o.LastModified
		}
	}
	if e.Task != nil {
		out.Listing = &dlqTask{Prefix: e.Task.Prefix, StartAfter: e.Task.StartAfter, End: e.Task.End}
	}
	return out
}

func newWorkerCmd(stdio Stdio, qf *queueFlags) *cobra.Command {
	var concurrency int
	var drain time.Duration
	var jobs []string
	var verbose bool
	var bwlimit, metricsAddr string
	var uiAddr string
	var allow allowFlags
	var stallTimeout time.Duration
	var workerSide, tempDir string
	c := &cobra.Command{
		Use:   "worker",
		Short: "Work on every running job of a NATS cluster (--nats URL) until interrupted",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			if qf.url == "" {
				return usageErr("ferry worker needs --nats URL (the cluster that holds the jobs)")
			}
			if concurrency < 1 {
				return usageErr("--concurrency %d: want at least 1", concurrency)
			}
			switch workerSide {
			case worker.SideBoth, worker.SideSource, worker.SideDestination:
			default:
				return usageErr("--side %q: want source, destination or both", workerSide)
			}
			if err := checkStallTimeout(stallTimeout); err != nil {
				return err
			}
			limiter, err := parseBWLimit(bwlimit)
			if err != nil {
				return err
			}
			if err := checkMetricsAddr(metricsAddr); err != nil {
				return err
			}
			if err := checkUIAddr(uiAddr); err != nil {
				return err
			}
			policy, err := allow.policy()
			if err != nil {
				return err
			}
			ctx := c.Context()
			conn, err := qf.connect(ctx)
			if err != nil {
				return err
			}
			defer conn.Close()
			name := workerName()
			log := stdio.logs.logger(stdio.Err, "job", "", "worker", name)
			m, stopMetrics, err := serveMetrics(metricsAddr, stdio.Err, log)
			if err != nil {
				return err
			}
			defer stopMetrics()
			if uiAddr != "" {
				stopUI, err := startUI(ctx, stdio.Err, log, dashboard.NewNATS(conn), uiAddr)
				if err != nil {
					return err
				}
				defer stopUI()
			}
			abort, stopSignals := signalStages(ctx, stdio.Err, drain)
			defer stopSignals()
			w := worker.New(conn, worker.Options{Concurrency: concurrency, Jobs: jobs, Log: log, Open: workerOpen(m, policy), DrainTimeout: drain, Abort: abort, Limiter: limiter,
				StallTimeout: stallOption(stallTimeout), Name: name, LogObjects: verbose, Observer: observer(m),
				Side: workerSide, OpenStaging: workerOpenStaging(m, policy), TempDir: tempDir})
			log.Info("worker started", "nats", qf.url, "concurrency", concurrency, "key", conn.Signer.Public().String(), "trusted_keys", len(conn.Trust.Keys()),
				"allow_local", policy.Local, "allow_endpoint", policy.Endpoints, "allow_secret", policy.Secrets, "allow_profile", policy.Profiles)
			err = w.Run(ctx)
			log.Info("worker stopped", "refused", w.Refused())
			return err
		},
	}
	c.Flags().IntVar(&concurrency, "concurrency", defaultConcurrency, "objects in flight")
	c.Flags().DurationVar(&drain, "drain-timeout", 30*time.Second, "on interrupt, how long in-flight objects may finish")
	c.Flags().StringArrayVar(&jobs, "job", nil, "work only on this job (repeatable)")
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "log every object")
	c.Flags().StringVar(&metricsAddr, "metrics-addr", "", metricsFlag)
	c.Flags().StringVar(&bwlimit, "bwlimit", "", "limit the bytes this worker reads from sources to this rate, all jobs together (e.g. 10M = 10 MiB/s)")
	c.Flags().StringVar(&uiAddr, "ui-addr", "", uiAddrUsage)
	c.Flags().StringVar(&workerSide, "side", worker.SideBoth, "the work this worker takes: source (listing, copies, packing), destination (unpacking pack-mode bundles) or both")
	c.Flags().StringVar(&tempDir, "temp-dir", "", "directory for bundles while they are written or verified (default: the system's)")
	allow.register(c)
	registerStallTimeout(c.Flags(), &stallTimeout)
	return c
}

// allowFlags are a worker's allow-lists: what the jobs it runs may touch
// (package sides, Policy).
type allowFlags struct {
	local, endpoints, secrets, profiles []string
}

func (a *allowFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.StringArrayVar(&a.local, "allow-local", nil, "let jobs read and write local paths in or below this directory (repeatable; without it, no local path at all)")
	fl.StringArrayVar(&a.endpoints, "allow-endpoint", nil, "let jobs use this S3 endpoint URL besides AWS's (repeatable)")
	fl.StringArrayVar(&a.secrets, "allow-secret", nil, "let jobs use this secret of ferry's store (repeatable; default: none, only the default credentials)")
	fl.StringArrayVar(&a.profiles, "allow-profile", nil, "let jobs use this AWS profile (repeatable; default: none, only the default credentials)")
}

// policy checks the allow-lists (bad ones are usage errors).
func (a *allowFlags) policy() (*sides.Policy, error) {
	p, err := sides.NewPolicy(a.local, a.endpoints, a.secrets, a.profiles)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return p, nil
}
