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

	"github.com/ferry-dev/ferry/internal/filter"
	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/location"
	"github.com/ferry-dev/ferry/internal/plan"
	"github.com/ferry-dev/ferry/internal/queue"
	"github.com/ferry-dev/ferry/internal/reconcile"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/onekey"
	"github.com/ferry-dev/ferry/internal/transfer"
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
	replicas      int
	listen        string
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
	fl.IntVar(&qf.replicas, "nats-replicas", 1, "replicas of the streams ferry creates on a NATS cluster (default: 3 on a cluster of 3 or more servers, else 1; existing streams keep theirs)")
	fl.StringVar(&qf.listen, "listen", "", "embedded server: accept ferry workers on this host:port")
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
	}
	if qf.url == "" {
		if err := checkStateDir(o.StateDir); err != nil {
			return nil, asUsage(err)
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
	stallTimeout    time.Duration
}

// checkProcessFlags parses --bwlimit (a usage error when it is bad) and checks
// --stall-timeout.
func (d *durableFlags) checkProcessFlags() (err error) {
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
	tty := isTerminal(stdio.Err) && !f.noProgress
	console := newConsole(stdio.Err, tty)
	log := newLogger(console, f.verbose)

	drainCtx := ctx // ends at the first interrupt
	abort, stopSignals := signalStages(ctx, console, d.drainTimeout)
	defer stopSignals()
	wstats := &worker.Stats{}
	var wg sync.WaitGroup
	workerCtx, stopWorker := context.WithCancel(drainCtx)
	defer stopWorker()
	if d.workers > 0 {
		w := worker.New(conn, worker.Options{
			Concurrency:  f.concurrency * d.workers,
			Jobs:         []string{id},
			Log:          log,
			Open:         openSpec,
			DrainTimeout: d.drainTimeout,
			Abort:        abort,
			Stats:        wstats,
			Limiter:      d.limiter,
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
		OnUpdate: func(s job.State) {
			snap.Lock()
			snap.st = s
			snap.Unlock()
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
	if stop != nil {
		stop()
	}
	if err != nil && errors.Is(err, context.Canceled) && drainCtx.Err() != nil {
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
		start := time.Now()
		rep, err := reconcile.Run(ctx, src, dst, reconcile.Options{
			Filter: flt, DstKeepsMTime: spec.DstKeepsMTime, Since: spec.Created, Compare: spec.Compare,
			Known: func(k string) bool { return known[k] },
			Check: eng.UpToDate,
		})
		log.Info("reconciled", "job", spec.ID, "checked", rep.Checked, "gaps", rep.Gaps, "seconds", time.Since(start).Seconds())
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

// openSpec opens a job's stores from its spec with this machine's
// credentials (used by workers).
func openSpec(ctx context.Context, spec job.Spec) (store.Store, store.Store, error) {
	src, err := openSpecSide(ctx, "source", spec.Src)
	if err != nil {
		return nil, nil, err
	}
	dst, err := openSpecSide(ctx, "destination", spec.Dst)
	if err != nil {
		return nil, nil, err
	}
	return objectViews(src, dst, spec.Src.Key, spec.Dst.Key)
}

// openSpecDst opens a job's destination (a one-object view for a
// single-object job).
func openSpecDst(ctx context.Context, spec job.Spec) (store.Store, error) {
	dst, err := openSpecSide(ctx, "destination", spec.Dst)
	if err != nil || spec.Src.Key == "" {
		return dst, err
	}
	return onekey.New(dst, spec.Src.Key, spec.Dst.Key)
}

func openSpecSide(ctx context.Context, role string, s job.Side) (store.Store, error) {
	loc, err := location.Parse(s.Location)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", role, err)
	}
	if loc.Kind == location.Local && role == "destination" {
		if _, err := os.Stat(loc.Path); errors.Is(err, os.ErrNotExist) {
			o := opened{loc: loc, missing: true}
			if err := createDst(&o); err != nil {
				return nil, err
			}
			return o.store, nil
		}
	}
	o, err := openSide(ctx, role, loc, sideFromSpec(s), s.CABundle, 32)
	if err != nil {
		return nil, err
	}
	return o.store, nil
}

func specSide(loc location.Location, sd side, caBundle string) job.Side {
	return job.Side{Location: loc.Canonical(), Endpoint: sd.endpoint, Region: sd.region, Profile: sd.profile,
		Secret: sd.secret, CABundle: caBundle, AllowInsecureHTTP: sd.allowInsecure}
}

func sideFromSpec(s job.Side) side {
	return side{endpoint: s.Endpoint, region: s.Region, profile: s.Profile, secret: s.Secret, allowInsecure: s.AllowInsecureHTTP}
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

// newLogger logs text lines to w; verbose adds one line per object.
func newLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
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
	fl.IntVar(&f.concurrency, "concurrency", 32, "objects in flight")
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
