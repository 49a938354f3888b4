package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/dashboard"
	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/queue"
)

// uiAddrUsage is the help of --ui-addr on copy, sync, job resume, dlq
// redrive and worker.
const uiAddrUsage = "serve the live web dashboard on this host:port while the command runs (e.g. 127.0.0.1:8080; the access token is printed at start)"

// checkUIAddr checks a --ui-addr value before anything starts.
func checkUIAddr(addr string) error {
	if addr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return usageErr("--ui-addr %q: want host:port (e.g. 127.0.0.1:8080)", addr)
	}
	return nil
}

// startUI serves the dashboard of b on addr until stop is called (or ctx
// ends); stop waits for the server to end. It prints the address and the
// token on w.
func startUI(ctx context.Context, w io.Writer, log *slog.Logger, b dashboard.Backend, addr string) (stop func(), err error) {
	if err := checkUIAddr(addr); err != nil {
		return nil, err
	}
	token, err := dashboard.NewToken()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, asUsage(fmt.Errorf("dashboard: %w", err))
	}
	loopback := dashboard.IsLoopback(addr)
	srv, err := dashboard.New(dashboard.Options{Backend: b, Token: token, Loopback: loopback, Log: log})
	if err != nil {
		ln.Close()
		return nil, err
	}
	url := "http://" + ln.Addr().String() + "/"
	fmt.Fprintf(w, "dashboard: %s#token=%s\n", url, token)
	fmt.Fprintf(w, "dashboard token (pause, resume, cancel, redrive): %s\n", token)
	if !loopback {
		fmt.Fprintf(w, "ferry: warning: the dashboard listens beyond loopback over plain HTTP: every request needs the token; put it behind TLS (a reverse proxy) on untrusted networks\n")
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(ctx, ln); err != nil {
			fmt.Fprintf(w, "ferry: %v\n", err)
		}
	})
	return func() { cancel(); wg.Wait() }, nil
}

func newUICmd(stdio Stdio, qf *queueFlags) *cobra.Command {
	var addr string
	c := &cobra.Command{
		Use:   "ui",
		Short: "Serve the live web dashboard of every job until interrupted",
		Long: `Serve a web page with every job of the state directory's embedded server
(or of --nats URL): progress, rates over time, ETA, failures and the
dead-letter queue, workers; with pause, resume, cancel and redrive buttons.
Actions need the token printed at start; on an address other than loopback,
every request does.

While a job runs in the foreground on the embedded server, that process
holds the state directory: 'ferry ui' then shows the jobs from their state
snapshots, and its actions pause, resume or cancel through control files.
For the dead-letter queue and the workers of such a job, start it with
--ui-addr.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			if err := checkUIAddr(addr); err != nil {
				return err
			}
			var b dashboard.Backend
			conn, err := qf.connect(ctx)
			switch {
			case err == nil:
				defer conn.Close()
				b = dashboard.NewNATS(conn)
			case qf.url == "" && errors.Is(err, queue.ErrLocked):
				fmt.Fprintf(stdio.Err, "ferry: %v: the dashboard shows the jobs' state snapshots (for the dead-letter queue and workers, give that process --ui-addr)\n", err)
				b = &snapshotBackend{qf: qf}
			default:
				return err
			}
			stop, err := startUI(ctx, stdio.Err, stdio.logs.logger(stdio.Err), b, addr)
			if err != nil {
				return err
			}
			<-ctx.Done()
			stop()
			return nil
		},
	}
	c.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "host:port to serve the dashboard on")
	return c
}

// snapshotBackend is the dashboard's view of an embedded server another
// ferry process holds: the state snapshots it writes, and control files it
// polls. It has no dead-letter queue and no workers.
type snapshotBackend struct {
	qf *queueFlags
}

var _ dashboard.Backend = (*snapshotBackend)(nil)

func (s *snapshotBackend) Jobs(ctx context.Context) ([]job.State, error) {
	return readSnapshots(s.qf.snapshotDir(), s.qf.snapshotKey(ctx))
}

func (s *snapshotBackend) DLQ(ctx context.Context, id string, limit int) ([]job.DLQEntry, error) {
	return nil, fmt.Errorf("job %s: %w: another ferry process holds the state directory (start it with --ui-addr to see its dead-letter queue)", id, dashboard.ErrUnavailable)
}

func (s *snapshotBackend) Act(ctx context.Context, id string, a dashboard.Action) (string, error) {
	var to job.Status
	switch a {
	case dashboard.Pause:
		to = job.Paused
	case dashboard.Resume:
		to = job.Running
	case dashboard.Cancel:
		to = job.Cancelled
	default:
		return "", fmt.Errorf("job %s: %s: %w: another ferry process holds the state directory (use 'ferry dlq redrive %s' once it ended)", id, a, dashboard.ErrUnavailable, id)
	}
	st, err := job.ReadSnapshot(s.qf.snapshotDir(), id, s.qf.snapshotKey(ctx))
	if err != nil {
		return "", err
	}
	if st.Status.Finished() {
		return "", fmt.Errorf("job %s: %w (%s)", id, job.ErrFinished, st.Status)
	}
	if err := job.RequestControl(s.qf.controlDir(), id, to); err != nil {
		return "", fmt.Errorf("job %s: %w", id, err)
	}
	return fmt.Sprintf("job %s: %s requested from the process running it", id, a), nil
}
