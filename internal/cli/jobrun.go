package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferry-dev/ferry/internal/dashboard"
	"github.com/ferry-dev/ferry/internal/filter"
	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/location"
	"github.com/ferry-dev/ferry/internal/plan"
	"github.com/ferry-dev/ferry/internal/queue"
	"github.com/ferry-dev/ferry/internal/reconcile"
	"github.com/ferry-dev/ferry/internal/secret"
	"github.com/ferry-dev/ferry/internal/sides"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/transfer"
	"github.com/ferry-dev/ferry/internal/trust"
	"github.com/ferry-dev/ferry/internal/worker"
)

// queueFlags select the NATS JetStream server: embedded (default) or
// external. They are persistent flags of the root command.
type queueFlags struct {
	// stateKey caches the state encryption key (statekey.go).
	stateKey      string
	stateDir      string
	url           string
	creds         string
	nkey          string
	ca            string
	cert          string
	key           string
	allowInsecure bool
	// allowUnauth accepts an external NATS server that asked for no
	// credentials (--allow-unauthenticated-nats).
	allowUnauth bool
	replicas    int
	listen      string
	// listenCert and listenKey make --listen serve TLS.
	listenCert, listenKey string
	// tokenFile holds the token for --nats (--nats-token-file).
	tokenFile string
	// trustKeys and trustFile: the public keys whose jobs and work this
	// process accepts besides its own (--trust, --trust-file).
	trustKeys []string
	trustFile string
	// keyFile, when set, holds the signing key to use in place of the
	// one in the secret store (--signing-key-file).
	keyFile string
	// flags are the root's persistent flags (to tell set from default);
	// warn receives setup warnings.
	flags *pflag.FlagSet
	warn  io.Writer
}

func (qf *queueFlags) register(root *cobra.Command) {
	fl := root.PersistentFlags()
	qf.flags = fl
	fl.StringVar(&qf.stateDir, "state-dir", "", "job state directory (default $XDG_STATE_HOME/ferry)")
	fl.StringVar(&qf.url, "nats", "", "external NATS server URL(s), comma separated (default: embedded server)")
	fl.StringVar(&qf.creds, "nats-creds", "", "NATS user credentials file")
	fl.StringVar(&qf.nkey, "nats-nkey", "", "NATS nkey seed file")
	fl.StringVar(&qf.ca, "nats-ca", "", "CA bundle for the NATS server's certificate")
	fl.StringVar(&qf.cert, "nats-cert", "", "client certificate for NATS (with --nats-key)")
	fl.StringVar(&qf.key, "nats-key", "", "client key for NATS")
	fl.BoolVar(&qf.allowInsecure, "allow-insecure-nats", false, "allow plain nats:// to a non-loopback server")
	fl.BoolVar(&qf.allowUnauth, "allow-unauthenticated-nats", false, "accept an external NATS server that requires no credentials (anyone who reaches it can read and queue jobs)")
	fl.IntVar(&qf.replicas, "nats-replicas", 1, "replicas of the streams ferry creates on a NATS cluster (default: 3 on a cluster of 3 or more servers, else 1; existing streams keep theirs)")
	fl.StringVar(&qf.listen, "listen", "", "embedded server: accept ferry workers on this host:port (with a token made on first use; beyond loopback only with --listen-cert)")
	fl.StringVar(&qf.listenCert, "listen-cert", "", "serve --listen over TLS with this certificate (PEM)")
	fl.StringVar(&qf.listenKey, "listen-key", "", "the private key of --listen-cert (PEM)")
	fl.StringVar(&qf.tokenFile, "nats-token-file", "", "file holding the NATS token (mode 0600; or FERRY_NATS_TOKEN)")
	fl.StringArrayVar(&qf.trustKeys, "trust", nil, "also accept jobs and work signed by this public key ('ferry key show' prints a machine's; repeatable)")
	fl.StringVar(&qf.keyFile, "signing-key-file", "", "sign with the key in this file ('ferry key new FILE') instead of this machine's, e.g. one key for a fleet of worker pods")
	fl.StringVar(&qf.trustFile, "trust-file", "", "also accept jobs and work signed by the public keys in this file (one a line, # comments)")
}

// identity returns this machine's signing key (created in the secret store
// on first use) and the other keys it trusts.
func (qf *queueFlags) identity(ctx context.Context) (*trust.Signer, []trust.PublicKey, error) {
	var keys []trust.PublicKey
	for _, t := range qf.trustKeys {
		k, err := trust.ParseKey(t)
		if err != nil {
			return nil, nil, fmt.Errorf("--trust: %w", err)
		}
		keys = append(keys, k)
	}
	if qf.trustFile != "" {
		more, err := trust.ReadFile(qf.trustFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--trust-file: %w", err)
		}
		keys = append(keys, more...)
	}
	if qf.keyFile != "" {
		signer, err := trust.ReadKeyFile(qf.keyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--signing-key-file: %w", err)
		}
		return signer, keys, nil
	}
	s, err := secret.Open(secret.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("signing key: %w", err)
	}
	signer, err := trust.LoadOrCreate(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	return signer, keys, nil
}

// stateDir returns the job state directory.
func (qf *queueFlags) stateDirPath() string {
	if qf.stateDir != "" {
		return qf.stateDir
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "ferry")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "ferry-state")
	}
	return filepath.Join(home, ".local", "state", "ferry")
}

func (qf *queueFlags) snapshotDir() string { return filepath.Join(qf.stateDirPath(), "jobs") }

func (qf *queueFlags) controlDir() string { return filepath.Join(qf.stateDirPath(), "control") }

// connectQueue opens the queue; every failure is a usage/config error.
func (qf *queueFlags) connect(ctx context.Context) (*queue.Conn, error) {
	o := queue.Options{
		URL: qf.url, StateDir: qf.stateDirPath(), Listen: qf.listen,
		CredsFile: qf.creds, NKeyFile: qf.nkey, Token: os.Getenv("FERRY_NATS_TOKEN"),
		CAFile: qf.ca, CertFile: qf.cert, KeyFile: qf.key,
		AllowInsecure: qf.allowInsecure, Replicas: qf.replicas,
		ReplicasSet: qf.flags != nil && qf.flags.Changed("nats-replicas"),
		// This process may end up serving the state directory to others:
		// it waits for them before it exits, even after the interrupt that
		// stopped its own job, until interrupted while it waits.
		Linger: context.WithoutCancel(ctx),
	}
	if qf.warn != nil {
		w, dir := qf.warn, o.StateDir
		o.Waiting = func() {
			fmt.Fprintf(w, "ferry: other ferry processes use state directory %s through this one (ferry job list shows their jobs); waiting for them to finish before exiting (interrupt to exit now: their jobs stop and can be resumed)\n", dir)
		}
	}
	if qf.tokenFile != "" {
		if qf.url == "" {
			return nil, usageErr("--nats-token-file goes with --nats")
		}
		t, err := readTokenFile(qf.tokenFile)
		if err != nil {
			return nil, usageErr("--nats-token-file: %v", err)
		}
		o.Token = t
	}
	if err := qf.checkListenFlags(); err != nil {
		return nil, err
	}
	var tokenPath string
	if qf.listen != "" {
		p, t, err := listenToken(o.StateDir)
		if err != nil {
			return nil, asUsage(err)
		}
		tokenPath, o.ListenToken, o.ListenCert, o.ListenKey = p, t, qf.listenCert, qf.listenKey
	}
	signer, keys, err := qf.identity(ctx)
	if err != nil {
		return nil, asUsage(err)
	}
	o.Signer, o.Trust = signer, keys
	if qf.url == "" {
		if err := checkStateDir(o.StateDir); err != nil {
			return nil, asUsage(err)
		}
		if w := stateDirWarning(o.StateDir); w != "" && qf.warn != nil {
			fmt.Fprintf(qf.warn, "ferry: warning: %s\n", w)
		}
		key, err := qf.encryptionKey(ctx)
		if err != nil {
			return nil, asUsage(err)
		}
		o.EncryptionKey = key
	}
	conn, err := queue.Connect(ctx, o)
	if err != nil {
		return nil, asUsage(err)
	}
	if qf.url != "" && !conn.NC.AuthRequired() {
		if !qf.allowUnauth {
			conn.Close()
			return nil, usageErr("--nats: the server accepted this connection without credentials: anyone who can reach it can read every job and queue work; enable authentication on it and pass --nats-creds, --nats-nkey or FERRY_NATS_TOKEN (or --allow-unauthenticated-nats to accept the risk)")
		}
		if qf.warn != nil {
			fmt.Fprintf(qf.warn, "ferry: warning: NATS server %s requires no credentials (--allow-unauthenticated-nats): anyone who can reach it can read every job and queue work\n", conn.NC.ConnectedUrlRedacted())
		}
	}
	if qf.listen != "" && qf.warn != nil {
		printJoin(qf.warn, conn, qf.listen, tokenPath, qf.listenCert)
	}
	if qf.warn != nil {
		for _, w := range conn.Warnings {
			fmt.Fprintf(qf.warn, "ferry: warning: %s\n", w)
		}
	}
	return conn, nil
}

// checkStateDir makes sure the state directory can be created and written.
func checkStateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state directory %s: %v", dir, unwrapPath(err))
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("state directory %s is not writable: %v", dir, unwrapPath(err))
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// stateDirWarning says when the state directory can be read or entered by
// its group or others (it holds the job queue, snapshots and audit logs).
func stateDirWarning(dir string) string {
	fi, err := os.Stat(dir)
	if err != nil {
		return ""
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return fmt.Sprintf("state directory %s has mode %04o: its group or others can read it (job specs, queue, audit logs); chmod 700 %s", dir, m, dir)
	}
	return ""
}

// durableFlags are the copy/sync flags about the job itself.
type durableFlags struct {
	auditLog        string
	noReconcile     bool
	requireVerified bool
	flags           *pflag.FlagSet
	workers         int
	maxAttempts     int
	drainTimeout    time.Duration
	bwlimit         string
	limiter         *transfer.Limiter // parsed --bwlimit (checkProcessFlags)
	metricsAddr     string
	uiAddr          string // --ui-addr: serve the dashboard (ui.go)
	stallTimeout    time.Duration
}

// checkProcessFlags parses --bwlimit (a usage error when it is bad) and
// checks --ui-addr and --stall-timeout.
func (d *durableFlags) checkProcessFlags() (err error) {
	if err := checkUIAddr(d.uiAddr); err != nil {
		return err
	}
	if err := checkStallTimeout(d.stallTimeout); err != nil {
		return err
	}
	d.limiter, err = parseBWLimit(d.bwlimit)
	return err
}

func (d *durableFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.IntVar(&d.workers, "workers", 1, "workers in this process (0: only plan and monitor, while 'ferry worker' processes elsewhere do the work)")
	fl.IntVar(&d.maxAttempts, "max-attempts", 3, "attempts per object before it goes to the dead-letter queue")
	fl.DurationVar(&d.drainTimeout, "drain-timeout", 30*time.Second, "on interrupt, how long in-flight objects may finish")
	fl.StringVar(&d.bwlimit, "bwlimit", "", "limit the bytes read from the source to this rate, all objects of this process together (e.g. 10M = 10 MiB/s)")
	fl.StringVar(&d.metricsAddr, "metrics-addr", "", metricsFlag)
	fl.StringVar(&d.uiAddr, "ui-addr", "", uiAddrUsage)
	registerStallTimeout(fl, &d.stallTimeout)
}

// registerCreate registers the flags that only a new job takes.
func (d *durableFlags) registerCreate(c *cobra.Command) {
	c.Flags().BoolVar(&d.noReconcile, "no-reconcile", false, "skip the final reconciliation (listing both sides again to prove every object arrived)")
	d.flags = c.Flags()
	c.Flags().BoolVar(&d.requireVerified, "require-verified", false, "fail copies whose bytes the source offers nothing to check against (default on for sync --delete)")
}

// foreground runs a job's coordinator (and, unless workers is 0, a worker
// for it) in this process until the job finishes or the user interrupts.
// The first SIGINT/SIGTERM drains: no new work, in-flight objects finish
// for up to drainTimeout, the rest stays queued, exit 0 with a resume hint.
// A second signal aborts in-flight multipart uploads and exits.
func foreground(ctx context.Context, stdio Stdio, qf *queueFlags, conn *queue.Conn, coord *job.Coordinator, f jobFlags, d durableFlags) error {
	id := coord.ID()
	ctx, stopLost := stopWhenServerLost(ctx, stdio.Err, qf, conn, id)
	defer stopLost()
	f.noProgress = f.noProgress || stdio.logs.isQuiet()
	tty := isTerminal(stdio.Err) && !f.noProgress
	console := newConsole(stdio.Err, tty)
	name := workerName()
	log := stdio.logs.logger(console, "job", id, "worker", name)

	m, stopMetrics, err := serveMetrics(d.metricsAddr, stdio.Err, log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	defer pollQueue(ctx, conn, id, m, log)()

	drainCtx := ctx // ends at the first interrupt
	abort, stopSignals := signalStages(ctx, console, d.drainTimeout)
	defer stopSignals()
	if d.uiAddr != "" {
		stopUI, err := startUI(ctx, console, log, dashboard.NewNATS(conn), d.uiAddr)
		if err != nil {
			return fmt.Errorf("%w; the job is resumable: ferry job resume %s", err, id)
		}
		defer stopUI()
	}
	wstats := &worker.Stats{}
	var wg sync.WaitGroup
	workerCtx, stopWorker := context.WithCancel(drainCtx)
	defer stopWorker()
	if d.workers > 0 {
		w := worker.New(conn, worker.Options{
			Concurrency:  f.concurrency * d.workers,
			Jobs:         []string{id},
			Log:          log,
			Open:         workerOpen(m, inProcessPolicy(conn, coord.State())),
			OpenStaging:  workerOpenStaging(m, inProcessPolicy(conn, coord.State())),
			DrainTimeout: d.drainTimeout,
			Abort:        abort,
			Stats:        wstats,
			Limiter:      d.limiter,
			Name:         name,
			LogObjects:   f.verbose,
			Observer:     observer(m),
			StallTimeout: stallOption(d.stallTimeout),
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Run(workerCtx); err != nil {
				log.Error("worker", "err", err)
			}
		}()
	}

	// The coordinator outlives the worker's drain, so the results of
	// in-flight objects are counted before it stops.
	coordCtx, stopCoord := context.WithCancel(context.Background())
	defer stopCoord()
	go func() {
		select {
		case <-drainCtx.Done():
			wg.Wait()
			time.Sleep(300 * time.Millisecond) // let the last results arrive
			stopCoord()
		case <-coordCtx.Done():
		}
	}()

	var snap struct {
		sync.Mutex
		st job.State
	}
	snap.st = coord.State()
	if d.workers == 0 {
		stopWatch := watchNoWorker(drainCtx, conn, id, console, func() job.Status {
			snap.Lock()
			defer snap.Unlock()
			return snap.st.Status
		})
		defer stopWatch()
	}
	var stop func()
	if !f.noProgress {
		stop = startProgressFunc(console, func() progressSnap {
			snap.Lock()
			defer snap.Unlock()
			return jobSnap(snap.st, wstats.Bytes())
		}, "copied")
	}
	spec := coord.State().Spec
	var auditor job.Auditor
	if spec.AuditLog != "" {
		al, err := openJobAudit(spec.AuditLog)
		if err != nil {
			return asUsage(err)
		}
		defer al.Close()
		auditor = al
	}
	st, err := coord.Run(coordCtx, job.RunOptions{
		Audit:       auditor,
		Log:         log,
		SnapshotDir: qf.snapshotDirIfEmbedded(conn),
		SnapshotKey: qf.snapshotKey(ctx),
		ControlDir:  qf.controlDirIfEmbedded(conn),
		// A job its circuit breaker paused waits for `ferry job resume`
		// after the cause is fixed: this process says why and exits.
		StopWhenTripped: true,
		OnUpdate: func(s job.State) {
			snap.Lock()
			snap.st = s
			snap.Unlock()
			if m != nil {
				m.SetJob(id, s.Counters)
			}
		},
		AbortUpload: abortUploadFunc(ctx, st0(coord)),
		Reconcile:   reconcileFunc(conn, spec, log),
		Probe: func(pctx context.Context) string {
			src, dst, err := openSpec(pctx, spec)
			if err != nil {
				return err.Error()
			}
			return worker.ProbeAccess(pctx, spec, src, dst)
		},
	})
	stopWorker()
	wg.Wait()
	if m != nil {
		m.SetJob(id, st.Counters)
	}
	if stop != nil {
		stop()
	}
	if err != nil && drainCtx.Err() != nil && (errors.Is(err, context.Canceled) || serverLost(conn)) {
		fmt.Fprintf(stdio.Err, "job %s interrupted: %d objects copied so far; resume with: ferry job resume %s\n", id, st.Counters.Copied, id)
		if f.jsonOut {
			// The job is still running as far as the queue knows (so
			// resume continues it); this process reports it interrupted,
			// with the time it ran (the coordinator added this run's).
			st.Status = Interrupted
			if st.Duration == 0 && !st.Started.IsZero() {
				st.Duration = time.Since(st.Started).Seconds()
			}
			printJobJSON(stdio, st)
		}
		return errInterrupted
	}
	if errors.Is(err, job.ErrTripped) {
		if f.jsonOut {
			printJobJSON(stdio, st)
		}
		return &exitError{code: ExitInterrupted, err: fmt.Errorf("job %s paused (%d objects copied so far): %s", id, st.Counters.Copied, st.Message)}
	}
	if err != nil {
		return &exitError{code: ExitFailed, err: fmt.Errorf("job %s: %w", id, err)}
	}
	if err := reportJob(ctx, stdio, conn, st, f.jsonOut); err != nil {
		return err
	}
	k := st.Counters
	if k.Listed == 0 {
		warnNothingMatched(stdio, sideString(st.Spec.Src), f)
	}
	if f.errorOnNoTransfer && k.Copied+k.Deleted == 0 {
		return errNoTransfer
	}
	return nil
}

// stopWhenServerLost returns a context that ends, with one line on w, when
// this process is a client of a state directory's server and the process
// serving it exits (it was interrupted or killed while this job ran): the
// job then stops as on an interrupt and can be resumed. stop ends the
// watch and waits for it.
func stopWhenServerLost(ctx context.Context, w io.Writer, qf *queueFlags, conn *queue.Conn, id string) (context.Context, func()) {
	lost := conn.Lost()
	if lost == nil {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-lost:
			fmt.Fprintf(w, "ferry: the ferry process (pid %d) serving state directory %s exited while job %s ran; it stops here and can be resumed: ferry job resume %s\n",
				conn.ServerPID(), qf.stateDirPath(), id, id)
			cancel()
		case <-done:
		}
	})
	return ctx, func() { close(done); wg.Wait(); cancel() }
}

// serverLost reports whether this client's state directory server is gone.
func serverLost(conn *queue.Conn) bool {
	select {
	case <-conn.Lost():
		return true
	default:
		return false
	}
}

// sideString names a job's side for people: its location, and the object
// of a single-object job.
func sideString(s job.Side) string {
	if s.Key == "" {
		return s.Location
	}
	if strings.HasPrefix(s.Location, "s3://") {
		return s.Location + s.Key
	}
	return filepath.Join(s.Location, s.Key)
}

// noWorkerWarnAfter is how long a job with --workers 0 may have queued
// work that no worker takes before ferry says so.
var noWorkerWarnAfter = 15 * time.Second

// watchNoWorker warns once, on w, when the job's work consumer has had
// work pending for noWorkerWarnAfter while it was running, and no worker
// was waiting for work or holding any (no pull request, nothing
// unacknowledged): with --workers 0 the job would otherwise wait silently
// forever. stop ends the watch and waits for it.
func watchNoWorker(ctx context.Context, conn *queue.Conn, id string, w io.Writer, status func() job.Status) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(noWorkerWarnAfter / 5)
		defer t.Stop()
		var idleSince time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				if !noWorker(ctx, conn, id) || status() != job.Running {
					idleSince = time.Time{}
					continue
				}
				if idleSince.IsZero() {
					idleSince = now
				}
				if now.Sub(idleSince) >= noWorkerWarnAfter {
					fmt.Fprintf(w, "ferry: warning: no worker has taken work of job %s for %s (it runs with --workers 0): start 'ferry worker' with the same --nats where the stores can be reached\n",
						id, noWorkerWarnAfter.Round(time.Second))
					return
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// noWorker reports whether the job's work consumer has pending work and
// no worker waiting for or holding any.
func noWorker(ctx context.Context, conn *queue.Conn, id string) bool {
	cons, err := conn.JS.Consumer(ctx, queue.StreamWork, job.WorkConsumer(id))
	if err != nil {
		return false
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return false
	}
	return ci.NumPending > 0 && ci.NumWaiting == 0 && ci.NumAckPending == 0
}

func st0(c *job.Coordinator) job.Spec { return c.State().Spec }

// reconcilePasses bounds the passes of a reconciliation whose listings
// were out of order or that found gaps.
const reconcilePasses = 3

// reconcileFunc is the job's final reconciliation (package reconcile): both
// sides listed again, every selected source key checked at the destination.
// Keys the job reported failed (its dead-letter queue) or unsafe are known
// and not gaps.
func reconcileFunc(conn *queue.Conn, spec job.Spec, log *slog.Logger) func(context.Context, job.State) (job.Reconciliation, error) {
	if spec.NoReconcile {
		return nil
	}
	return func(ctx context.Context, st job.State) (job.Reconciliation, error) {
		src, dst, err := openSpec(ctx, spec)
		if err != nil {
			return job.Reconciliation{}, err
		}
		flt, err := filter.FromSpec(spec.Spec)
		if err != nil {
			return job.Reconciliation{}, err
		}
		known := map[string]bool{}
		for _, u := range st.Unsafe {
			known[u.Key] = true
		}
		if st.Counters.Failed > 0 {
			entries, err := job.ReadDLQ(ctx, conn, spec.ID, 100000)
			if err != nil {
				return job.Reconciliation{}, err
			}
			for _, e := range entries {
				if e.Obj != nil {
					known[e.Obj.K] = true
				}
			}
		}
		eng := transfer.New(src, dst, transfer.Options{CompareChecksum: spec.Compare == plan.CompareChecksum})
		var rep reconcile.Report
		for pass := 1; ; pass++ {
			start := time.Now()
			rep, err = reconcile.Run(ctx, src, dst, reconcile.Options{
				Filter: flt, DstKeepsMTime: spec.DstKeepsMTime, Since: spec.Created, Compare: spec.Compare,
				Known: func(k string) bool { return known[k] },
				Check: eng.UpToDate,
			})
			log.Info("reconciled", "job", spec.ID, "checked", rep.Checked, "gaps", rep.Gaps, "seconds", time.Since(start).Seconds())
			// A listing page damaged on the way (over plain HTTP) shows
			// keys out of order, or keys that do not exist: a gap. A
			// real gap is found again; a damaged page is not.
			damaged := errors.Is(err, plan.ErrOutOfOrder) || (err == nil && rep.Gaps > 0)
			if !damaged || pass >= reconcilePasses || ctx.Err() != nil {
				break
			}
			log.Info("reconciling again: the listing was out of order or found gaps", "job", spec.ID, "pass", pass+1, "err", err)
		}
		out := job.Reconciliation{Checked: rep.Checked, Gaps: rep.Gaps}
		for _, g := range rep.Examples {
			out.Examples = append(out.Examples, job.KeyError{Key: g.Key, Error: g.Reason})
		}
		return out, err
	}
}

func (qf *queueFlags) snapshotDirIfEmbedded(conn *queue.Conn) string {
	if conn.Embedded() {
		return qf.snapshotDir()
	}
	return ""
}

func (qf *queueFlags) controlDirIfEmbedded(conn *queue.Conn) string {
	if conn.Embedded() {
		return qf.controlDir()
	}
	return ""
}

// inProcessPolicy is the policy of the worker a foreground command runs
// in-process for one job: the sides its spec names when this machine's key
// signed it (its own user named them, now or when the job was created);
// otherwise a worker's defaults (AWS with default credentials), since the
// spec came from another machine.
func inProcessPolicy(conn *queue.Conn, st job.State) *sides.Policy {
	if st.SpecSig == nil || st.SpecSig.Key != conn.Signer.Public().String() {
		return &sides.Policy{}
	}
	var cfgs []sides.Config
	for _, s := range []struct {
		role string
		side job.Side
	}{{sides.Source, st.Spec.Src}, {sides.Destination, st.Spec.Dst}, {sides.Staging, stagingSide(st.Spec)}} {
		if s.side.Location == "" {
			continue
		}
		if c, err := sides.FromSpec(s.role, s.side); err == nil {
			cfgs = append(cfgs, c)
		}
	}
	return sides.Only(cfgs...)
}

// openSpec opens a job's stores from its spec with this machine's
// credentials, without a policy: the coordinator's probes and
// reconciliation of the job its own user created or resumed.
func openSpec(ctx context.Context, spec job.Spec) (store.Store, store.Store, error) {
	return sides.OpenJob(ctx, spec, sideOptions(32, nil))
}

// openSpecDst opens a job's destination (a one-object view for a
// single-object job).
func openSpecDst(ctx context.Context, spec job.Spec) (store.Store, error) {
	return sides.OpenJobDst(ctx, spec, sideOptions(32, nil))
}

func specSide(loc location.Location, sd side, caBundle string) job.Side {
	return sideConfig(loc, sd, caBundle).Spec()
}

// runDurable creates a copy or sync job from checked flags and runs it in
// the foreground.
func runDurable(ctx context.Context, stdio Stdio, conn *queue.Conn, cmd string, f jobFlags, srcLoc, dstLoc location.Location, srcKey, dstKey string) error {
	d := f.durable
	if d.workers < 0 {
		return usageErr("--workers %d: want 0 or more", d.workers)
	}
	if d.maxAttempts < 1 || d.maxAttempts > 100 {
		return usageErr("--max-attempts %d: want 1 to 100", d.maxAttempts)
	}
	partSize, _ := parseSizeOpt(f.partSize)
	maxDel, maxDelPct, _ := parseMaxDelete(f.maxDelete)
	spec := job.Spec{
		Command: cmd,
		Src:     specSide(srcLoc, f.src, f.sec.srcCA),
		Dst:     specSide(dstLoc, f.dst, f.sec.dstCA),
		Spec:    f.fspec, Compare: f.compare, StorageClass: f.xfer.storageClass,
		Delete: f.del, MaxDelete: maxDel, MaxDeletePercent: maxDelPct, Force: f.force,
		PartSize: partSize, SSE: f.sse, SSEKMSKeyID: f.sseKMSKeyID,
		MaxAttempts: d.maxAttempts,
		NoReconcile: d.noReconcile,
		// A sync that deletes must not do so on the strength of copies
		// nobody could check.
		RequireVerified: d.requireVerified || (f.del && (d.flags == nil || !d.flags.Changed("require-verified"))),
		DstKeepsMTime:   dstLoc.Kind == location.Local,
		Pack:            f.pack.spec,
	}
	spec.Src.Key, spec.Dst.Key = srcKey, dstKey
	spec.ID = job.NewID()
	spec.AuditLog = d.auditLog
	if spec.AuditLog == "" {
		spec.AuditLog = filepath.Join(f.qf.stateDirPath(), "audit", spec.ID+".jsonl")
	}
	if abs, err := filepath.Abs(spec.AuditLog); err == nil {
		spec.AuditLog = abs
	}
	coord, err := job.Create(ctx, conn, spec)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdio.Err, "job %s started: ferry job status %s\n", coord.ID(), coord.ID())
	return foreground(ctx, stdio, f.qf, conn, coord, f, d)
}

// parseSizeOpt parses an optional size flag ("" = 0).
func parseSizeOpt(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	return parseSize(s)
}

// signalStages splits an interrupt into two stages. main's root context
// ends at the first SIGINT/SIGTERM: that is the drain (stop taking work, let
// in-flight work finish). Only then does this start listening, and the
// returned channel closes at the next signal: abort. stop ends the watcher.
func signalStages(ctx context.Context, msgs io.Writer, drainTimeout time.Duration) (abort <-chan struct{}, stop func()) {
	ab := make(chan struct{})
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sigs)
		fmt.Fprintf(msgs, "interrupted: finishing in-flight objects (up to %s); interrupt again to abort\n", drainTimeout)
		select {
		case <-done:
		case <-sigs:
			fmt.Fprintln(msgs, "aborting: in-flight multipart uploads are aborted")
			close(ab)
		}
	}()
	return ab, func() { close(done); wg.Wait() }
}

// registerOutput registers the output flags of commands that run a job in
// the foreground without creating it (resume, redrive).
func (f *jobFlags) registerOutput(c *cobra.Command) {
	fl := c.Flags()
	fl.IntVar(&f.concurrency, "concurrency", defaultConcurrency, "objects in flight")
	fl.BoolVar(&f.jsonOut, "json", false, "print a JSON summary as the last line of stdout")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "log every object")
	fl.BoolVar(&f.noProgress, "no-progress", false, "no progress display")
}

// encryptionKey returns the state encryption key (from the secret store).
func (qf *queueFlags) encryptionKey(ctx context.Context) (string, error) {
	if qf.stateKey == "" {
		k, err := stateKey(ctx)
		if err != nil {
			return "", err
		}
		qf.stateKey = k
	}
	return qf.stateKey, nil
}

// snapshotKey is the key job state snapshots are sealed with.
func (qf *queueFlags) snapshotKey(ctx context.Context) []byte {
	k, err := qf.encryptionKey(ctx)
	if err != nil {
		return nil
	}
	return []byte(k)
}

// stagingSide is a pack-mode job's staging side (empty for other jobs).
func stagingSide(spec job.Spec) job.Side {
	if spec.Pack == nil {
		return job.Side{}
	}
	return spec.Pack.Staging
}
