package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-dev/ferry/internal/filter"
	"github.com/ferry-dev/ferry/internal/location"
	"github.com/ferry-dev/ferry/internal/plan"
	"github.com/ferry-dev/ferry/internal/queue"
	"github.com/ferry-dev/ferry/internal/runner"
	"github.com/ferry-dev/ferry/internal/store/mem"
	"github.com/ferry-dev/ferry/internal/transfer"
)

// defaultConcurrency is the objects in flight per process without
// --concurrency. Small objects are latency-bound (one or two requests of a
// few milliseconds each): on the bench (docs/performance.md, issue 14)
// 64 copied 10,000 × 16 KiB objects 1.8× faster than 32; large objects
// are bounded by the transfer memory budget, not by this.
const defaultConcurrency = 64

// jobFlags are the flags of copy, sync and verify.
type jobFlags struct {
	src, dst    side
	caBundle    string
	dryRun      bool
	jsonOut     bool
	verbose     bool
	noProgress  bool
	include     []string
	exclude     []string
	concurrency int
	partSize    string
	// sync
	del       bool
	maxDelete string
	force     bool
	// destination encryption
	sse, sseKMSKeyID string
	// verify
	exact bool
	// rclone's transfer options (xferopts.go); fspec and compare are
	// their parsed values, set by runJob
	xfer    xferFlags
	fspec   filter.Spec
	compare plan.Compare
	// errorOnNoTransfer: exit 9 when nothing was copied or deleted.
	errorOnNoTransfer bool
	// flags is the command's flag set (to tell where a value came from).
	flags *pflag.FlagSet
	// durable jobs (copy, sync)
	qf      *queueFlags
	durable durableFlags
	// security: transport, regions, preflight, remotes (security.go)
	sec secFlags
	// pack mode (pack.go)
	pack packFlags
}

func (f *jobFlags) register(c *cobra.Command, cmd string) {
	fl := c.Flags()
	f.flags = fl
	fl.StringVar(&f.src.endpoint, "src-endpoint", "", "S3 endpoint URL of the source (default: AWS)")
	fl.StringVar(&f.dst.endpoint, "dst-endpoint", "", "S3 endpoint URL of the destination (default: AWS)")
	fl.StringVar(&f.src.region, "src-region", "", "region of the source bucket")
	fl.StringVar(&f.dst.region, "dst-region", "", "region of the destination bucket")
	fl.StringVar(&f.src.profile, "src-profile", "", "AWS shared config profile for the source")
	fl.StringVar(&f.dst.profile, "dst-profile", "", "AWS shared config profile for the destination")
	registerSecretFlags(fl, &f.src, &f.dst)
	fl.StringVar(&f.caBundle, "ca-bundle", "", "PEM file of extra CA certificates to trust for both endpoints")
	verb := cmd
	if cmd == "verify" {
		verb = "compare"
	}
	fl.StringArrayVar(&f.include, "include", nil, verb+" only keys matching this glob (repeatable; see 'Globs' in the README)")
	fl.StringArrayVar(&f.exclude, "exclude", nil, "leave out keys matching this glob (repeatable)")
	fl.IntVar(&f.concurrency, "concurrency", defaultConcurrency, "objects in flight")
	fl.BoolVar(&f.jsonOut, "json", false, "print a JSON summary as the last line of stdout")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "log every object")
	fl.BoolVar(&f.noProgress, "no-progress", false, "no progress display")
	f.sec.register(c, cmd)
	f.xfer.register(fl, cmd)
	if cmd == "verify" {
		fl.BoolVar(&f.exact, "exact", false, "also count destination objects absent at the source as differences")
		return
	}
	f.pack.register(fl)
	fl.BoolVar(&f.dryRun, "dry-run", false, "show what would be copied, skipped and deleted; change nothing")
	fl.BoolVar(&f.errorOnNoTransfer, "error-on-no-transfer", false, "exit 9 when nothing was copied or deleted (nothing matched, or everything was up to date)")
	fl.StringVar(&f.partSize, "part-size", "", "multipart part size, e.g. 16MiB (default 16MiB, grown to stay within 10,000 parts)")
	fl.StringVar(&f.sse, "sse", "", "server-side encryption at the destination: AES256 or aws:kms")
	fl.StringVar(&f.sseKMSKeyID, "sse-kms-key-id", "", "KMS key for --sse aws:kms")
	if cmd == "sync" {
		fl.BoolVar(&f.del, "delete", false, "delete destination objects absent at the source (after both listings completed)")
		fl.StringVar(&f.maxDelete, "max-delete", "", "refuse to delete more than N objects or P% of the destination (e.g. 1000 or 10%)")
		fl.BoolVar(&f.force, "force", false, "delete even beyond --max-delete")
	}
}

func newCopyCmd(stdio Stdio, name string, qf *queueFlags) *cobra.Command {
	var f jobFlags
	f.qf = qf
	short := "Copy objects that are missing or different at DST; never deletes"
	if name == "sync" {
		short = "Make DST like SRC: copy what differs, and with --delete remove extras"
	}
	c := &cobra.Command{
		Use:   name + " SRC DST",
		Short: short,
		Example: `  ferry ` + name + ` s3://src-bucket/photos s3://dst-bucket/photos --dst-endpoint https://minio.example:9000
  ferry ` + name + ` ./data s3://backup/data --dry-run -v`,
		Args: exactArgs(2, "SRC and DST"),
		RunE: func(c *cobra.Command, args []string) error {
			return runJob(c.Context(), stdio, name, f, args[0], args[1])
		},
	}
	f.register(c, name)
	f.durable.register(c)
	f.durable.registerCreate(c)
	c.Flags().StringVar(&f.durable.auditLog, "audit-log", "", "the job's audit log (default STATE_DIR/audit/JOB.jsonl)")
	return c
}

func newVerifyCmd(stdio Stdio) *cobra.Command {
	var f jobFlags
	c := &cobra.Command{
		Use:   "verify SRC DST",
		Short: "Compare SRC and DST; exit 0 when identical, 1 naming each difference",
		Args:  exactArgs(2, "SRC and DST"),
		RunE: func(c *cobra.Command, args []string) error {
			return runJob(c.Context(), stdio, "verify", f, args[0], args[1])
		},
	}
	f.register(c, "verify")
	return c
}

// parseSize parses "16MiB", "8M", "1048576".
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(t, u.suf) {
			t, mult = strings.TrimSuffix(t, u.suf), u.m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return n * mult, nil
}

func parseMaxDelete(s string) (n int64, pct float64, err error) {
	if s == "" {
		return 0, 0, nil
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		pct, err = strconv.ParseFloat(p, 64)
		if err != nil || pct < 0 || pct > 100 {
			return 0, 0, fmt.Errorf("--max-delete %q: want a count or a percentage from 0%% to 100%%", s)
		}
		if pct == 0 {
			pct = -1 // 0%: refuse any delete
		}
		return 0, pct, nil
	}
	n, err = strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, 0, fmt.Errorf("--max-delete %q: want a count or a percentage from 0%% to 100%%", s)
	}
	if n == 0 {
		n = -1 // refuse any delete
	}
	return n, 0, nil
}

func runJob(ctx context.Context, stdio Stdio, cmd string, f jobFlags, srcArg, dstArg string) error {
	// Every check that can fail with exit 2 runs before anything is written.
	srcLoc, dstLoc, err := f.locations(srcArg, dstArg)
	if err != nil {
		return err
	}
	if err := validateEndpoint("--src-endpoint", f.src.endpoint); err != nil {
		return err
	}
	if err := validateEndpoint("--dst-endpoint", f.dst.endpoint); err != nil {
		return err
	}
	if f.concurrency < 1 || f.concurrency > 4096 {
		return usageErr("--concurrency %d: want 1 to 4096", f.concurrency)
	}
	if f.fspec, err = f.xfer.filterSpec(f.include, f.exclude, time.Now()); err != nil {
		return err
	}
	flt, err := filter.FromSpec(f.fspec)
	if err != nil {
		return usageErr("%v", err)
	}
	if f.compare, err = f.xfer.compare(); err != nil {
		return err
	}
	if err := f.xfer.checkStorageClass(dstLoc); err != nil {
		return err
	}
	if err := checkMetricsAddr(f.durable.metricsAddr); err != nil {
		return err
	}
	if err := f.durable.checkProcessFlags(); err != nil {
		return err
	}
	var partSize int64
	if f.partSize != "" {
		if partSize, err = parseSize(f.partSize); err != nil {
			return usageErr("--part-size: %v", err)
		}
		if partSize < 5<<20 || partSize > 5<<30 {
			return usageErr("--part-size %s: want 5MiB to 5GiB (S3 part limits)", f.partSize)
		}
	}
	maxDel, maxDelPct, err := parseMaxDelete(f.maxDelete)
	if err != nil {
		return usageErr("%v", err)
	}
	// --max-delete without --delete is a mistake on the command line; from
	// the environment or the config file it is a limit for syncs that
	// delete, and this one does not.
	if !f.del && f.maxDelete != "" {
		if f.flags == nil || fromCommandLine(f.flags, "max-delete") {
			return usageErr("--max-delete %s needs --delete (sync deletes nothing without it)", f.maxDelete)
		}
		f.maxDelete = ""
	}
	if !f.del && f.force {
		return usageErr("--force needs --delete (it only lifts --max-delete)")
	}
	switch f.sse {
	case "", "AES256", "aws:kms":
	default:
		return usageErr("--sse %q: want AES256 or aws:kms", f.sse)
	}
	if f.sseKMSKeyID != "" && f.sse != "aws:kms" {
		return usageErr("--sse-kms-key-id needs --sse aws:kms")
	}
	if f.sse != "" && dstLoc.Kind != location.S3 {
		return usageErr("--sse applies to S3 destinations only")
	}
	if f.caBundle != "" {
		if _, err := readable(f.caBundle); err != nil {
			return usageErr("--ca-bundle %s: %v", f.caBundle, err)
		}
	}
	if cmd != "verify" {
		if err := f.pack.check(&f, srcLoc, dstLoc); err != nil {
			return err
		}
	}
	sameService := endpointKey(f.src.endpoint) == endpointKey(f.dst.endpoint)
	// A source that may be one object (no trailing slash) is checked for
	// overlap once resolveSides knows.
	if hasTrailingSlash(srcArg) || (srcLoc.Kind == location.S3 && srcLoc.Prefix == "") {
		if location.Overlaps(srcLoc, dstLoc, sameService) {
			return usageErr("source %s and destination %s are the same location or one is inside the other", srcLoc, dstLoc)
		}
	}

	// A durable job needs its queue (secret store, embedded NATS server);
	// the sides are opened and preflighted meanwhile, as neither needs
	// the other. A failure to connect is reported first (a bad state
	// directory or NATS URL), and stops the sides' requests.
	durable := cmd != "verify" && !f.dryRun
	// Both write warnings and notes to stderr: one line at a time.
	errw := &lockedWriter{w: stdio.Err, mu: new(sync.Mutex)}
	sideStdio := stdio
	sideStdio.Err = errw
	if f.qf != nil && f.qf.warn != nil {
		warn := f.qf.warn
		f.qf.warn = &lockedWriter{w: warn, mu: errw.mu}
		defer func() { f.qf.warn = warn }()
	}
	dlog := stdio.logs.logger(errw)
	var (
		conn               *queue.Conn
		connErr, sidesErr  error
		sides              objectSides
		srcName, dstName   string
		startup            errgroup.Group
		sidesCtx, stopSide = context.WithCancel(ctx)
	)
	defer stopSide()
	started := time.Now()
	if durable {
		startup.Go(func() error {
			t := time.Now()
			if conn, connErr = f.qf.connect(ctx); connErr != nil {
				stopSide()
			}
			dlog.Debug("start-up", "phase", "job store", "seconds", time.Since(t).Seconds())
			return nil
		})
	}
	startup.Go(func() error {
		sides, srcName, dstName, sidesErr = openChecked(sidesCtx, sideStdio, dlog, cmd, f, srcArg, dstArg, srcLoc, dstLoc, sameService)
		return nil
	})
	_ = startup.Wait() // the errors are in connErr and sidesErr
	if conn != nil {
		defer conn.Close()
	}
	dlog.Debug("start-up", "phase", "all", "seconds", time.Since(started).Seconds())
	if connErr != nil {
		return connErr
	}
	if sidesErr != nil {
		return sidesErr
	}
	src, dst := sides.src, sides.dst
	srcLoc, dstLoc = src.loc, dst.loc
	if dst.missing {
		if cmd == "verify" {
			return usageErr("destination %s: does not exist", dstLoc)
		}
		if f.dryRun {
			dst.store = emptyStore{name: dstLoc.String()}
		} else if err := createDst(&dst); err != nil {
			return err
		}
	}

	if durable {
		if err := f.pack.open(ctx); err != nil {
			return err
		}
		// copy and sync run as durable jobs on the queue.
		return runDurable(ctx, stdio, conn, cmd, f, srcLoc, dstLoc, sides.srcKey, sides.dstKey)
	}
	if sides.single() {
		dstStore := dst.store
		if _, empty := dstStore.(emptyStore); empty {
			dstStore = mem.New(dstName) // a dry run's missing directory: lists nothing
		}
		if src.store, dst.store, err = objectViews(src.store, dstStore, sides.srcKey, sides.dstKey); err != nil {
			return err
		}
	}
	f.noProgress = f.noProgress || stdio.logs.isQuiet()
	tty := isTerminal(stdio.Err) && !f.noProgress
	console := newConsole(stdio.Err, tty)
	log := stdio.logs.verboseLogger(console, f.verbose)

	eng := transfer.New(src.store, dst.store, transfer.Options{
		PartSize:        partSize,
		SSE:             f.sse,
		SSEKMSKeyID:     f.sseKMSKeyID,
		StorageClass:    f.xfer.storageClass,
		CompareChecksum: f.compare == plan.CompareChecksum,
	})
	opts := runner.Options{
		Concurrency:      f.concurrency,
		Delete:           f.del,
		MaxDelete:        maxDel,
		MaxDeletePercent: maxDelPct,
		Force:            f.force,
		Filter:           flt,
		DstKeepsMTime:    dstLoc.Kind == location.Local,
		Compare:          f.compare,
		Exact:            f.exact,
		Log:              log,
	}
	if f.dryRun && f.verbose {
		out := stdio.Out
		if f.jsonOut {
			out = console
		}
		opts.OnAction = func(a plan.Action) { printAction(out, a) }
	}
	r := runner.New(src.store, dst.store, eng, opts)

	verb := "copied"
	if cmd == "verify" {
		verb = "verified"
	}
	var stop func()
	if !f.noProgress {
		stop = startProgress(console, &r.Stats, verb)
	}
	var sum runner.Summary
	var runErr error
	if cmd == "verify" {
		sum, runErr = r.Verify(ctx)
	} else {
		sum, runErr = r.DryRun(ctx)
	}
	if stop != nil {
		stop()
	}
	for _, p := range sum.Failures {
		fmt.Fprintf(stdio.Err, "failed: %q: %s\n", p.Key, p.Reason)
	}
	for _, p := range sum.Unsafe {
		fmt.Fprintf(stdio.Err, "skipped-unsafe: %q: %s\n", p.Key, p.Reason)
	}
	for _, p := range sum.Diffs {
		fmt.Fprintf(stdio.Err, "differs: %q: %s\n", p.Key, p.Reason)
	}
	if f.jsonOut {
		var v any = struct {
			Command     string `json:"command"`
			Source      string `json:"source"`
			Destination string `json:"destination"`
			runner.Summary
		}{cmd, srcName, dstName, sum}
		if cmd == "verify" {
			v = newVerifyJSON(srcName, dstName, sum)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("summary: %w", err)
		}
		fmt.Fprintf(stdio.Out, "%s\n", b)
	} else {
		printSummary(stdio.Out, cmd, sum)
	}
	switch {
	case runErr != nil:
		return &exitError{code: ExitFailed, err: runErr}
	case sum.ObjectsFailed > 0 || sum.ObjectsUnsafe > 0 || sum.Differences > 0:
		return errFailed
	}
	if sum.ObjectsListed == 0 {
		warnNothingMatched(stdio, srcName, f)
	}
	if cmd != "verify" && f.errorOnNoTransfer && sum.ObjectsCopied+sum.ObjectsDeleted == 0 {
		return errNoTransfer
	}
	return nil
}

// errNoTransfer is --error-on-no-transfer's exit.
var errNoTransfer = &exitError{code: ExitNoTransfer, err: errors.New("")}

// warnNothingMatched says, in one line, that the source selected nothing:
// a key that is neither an object nor a prefix with objects, an empty
// directory, or filters that leave nothing.
func warnNothingMatched(stdio Stdio, src string, f jobFlags) {
	why := "no object or file at or under it"
	if len(f.include)+len(f.exclude) > 0 {
		why += " that --include/--exclude select"
	}
	fmt.Fprintf(stdio.Err, "ferry: warning: nothing matched: source %s has %s\n", src, why)
}

// verifyJSON is verify's JSON summary. Every count is always present;
// differences is a count and differences_list names them.
type verifyJSON struct {
	Command       string           `json:"command"`
	Source        string           `json:"source"`
	Destination   string           `json:"destination"`
	Listed        int64            `json:"objects_listed"`
	Identical     int64            `json:"objects_identical"`
	Differences   int64            `json:"differences"`
	Failed        int64            `json:"objects_failed"`
	BytesVerified int64            `json:"bytes_verified"`
	Duration      float64          `json:"duration_seconds"`
	Error         string           `json:"error,omitempty"`
	Failures      []runner.Problem `json:"failures,omitempty"`
	Diffs         []runner.Problem `json:"differences_list,omitempty"`
}

// lockedWriter serialises writes to w with mu: the start-up steps running
// at once write to stderr (and the queue's warnings) through it.
type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// openChecked opens both sides of a copy, sync or verify, checks that they
// do not overlap and runs the automatic preflight. It returns the sides and
// their names for messages.
func openChecked(ctx context.Context, stdio Stdio, dlog *slog.Logger, cmd string, f jobFlags, srcArg, dstArg string,
	srcLoc, dstLoc location.Location, sameService bool) (sides objectSides, srcName, dstName string, err error) {
	t := time.Now()
	if sides, err = resolveSides(ctx, f, srcArg, dstArg, srcLoc, dstLoc); err != nil {
		return sides, "", "", err
	}
	dlog.Debug("start-up", "phase", "open sides", "seconds", time.Since(t).Seconds())
	srcLoc, dstLoc = sides.src.loc, sides.dst.loc
	srcName, dstName = srcLoc.String(), dstLoc.String()
	if sides.single() {
		srcName, dstName = describeObject(srcLoc, sides.srcKey), describeObject(dstLoc, sides.dstKey)
		if location.Overlaps(objectLocation(srcLoc, sides.srcKey), objectLocation(dstLoc, sides.dstKey), sameService) {
			return sides, "", "", usageErr("source %s and destination %s are the same object", srcName, dstName)
		}
	} else if location.Overlaps(srcLoc, dstLoc, sameService) {
		return sides, "", "", usageErr("source %s and destination %s are the same location or one is inside the other", srcLoc, dstLoc)
	}
	t = time.Now()
	if err := autoPreflight(ctx, stdio, cmd, f, sides.src, sides.dst, sides.srcKey); err != nil {
		return sides, "", "", err
	}
	dlog.Debug("start-up", "phase", "preflight", "seconds", time.Since(t).Seconds())
	return sides, srcName, dstName, nil
}

func newVerifyJSON(src, dst string, s runner.Summary) verifyJSON {
	return verifyJSON{Command: "verify", Source: src, Destination: dst,
		Listed: s.ObjectsListed, Identical: s.Identical, Differences: s.Differences, Failed: s.ObjectsFailed,
		BytesVerified: s.BytesCopied, Duration: s.Duration, Error: s.Error, Failures: s.Failures, Diffs: s.Diffs}
}

func printAction(w io.Writer, a plan.Action) {
	size := a.Src.Size
	if a.Kind == plan.Delete {
		size = a.Dst.Size
	}
	fmt.Fprintf(w, "%-6s %q %s (%s)\n", a.Kind, a.Key, humanBytes(size), a.Reason)
}

func printSummary(w io.Writer, cmd string, s runner.Summary) {
	prefix := ""
	if s.DryRun {
		prefix = "dry run, would have "
	}
	switch cmd {
	case "verify":
		fmt.Fprintf(w, "verified %d objects (%s) in %.1fs: %d identical, %d differences, %d failed\n",
			s.ObjectsListed, humanBytes(s.BytesCopied), s.Duration, s.Identical, s.Differences, s.ObjectsFailed)
	default:
		printCounts(w, prefix, counts{copied: s.ObjectsCopied, bytesCopied: s.BytesCopied, skipped: s.ObjectsSkipped,
			bytesSkipped: s.BytesSkipped, deleted: s.ObjectsDeleted, failed: s.ObjectsFailed, unsafe: s.ObjectsUnsafe,
			duration: s.Duration, noRate: s.DryRun})
		fmt.Fprintln(w)
	}
	if s.Error != "" {
		fmt.Fprintf(w, "stopped: %s\n", s.Error)
	}
}

// counts are the numbers every summary line shows, in-process runs' and
// jobs' alike.
type counts struct {
	copied, bytesCopied, skipped, bytesSkipped, deleted, failed, unsafe, reconciled int64
	duration                                                                        float64
	noRate                                                                          bool
}

// printCounts writes "copied N objects (B), skipped …, in Ds (R/s)" without
// a newline.
func printCounts(w io.Writer, prefix string, c counts) {
	fmt.Fprintf(w, "%scopied %d objects (%s), skipped %d (%s), deleted %d, failed %d",
		prefix, c.copied, humanBytes(c.bytesCopied), c.skipped, humanBytes(c.bytesSkipped), c.deleted, c.failed)
	if c.unsafe > 0 {
		fmt.Fprintf(w, ", skipped-unsafe %d", c.unsafe)
	}
	if c.reconciled > 0 {
		fmt.Fprintf(w, ", reconciled %d", c.reconciled)
	}
	fmt.Fprintf(w, " in %.1fs", c.duration)
	if c.duration > 0 && c.bytesCopied > 0 && !c.noRate {
		fmt.Fprintf(w, " (%s/s)", humanBytes(int64(float64(c.bytesCopied)/c.duration)))
	}
}
