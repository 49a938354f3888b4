package cli

import (
	"context"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// logFlags are the root's logging flags. Every logger of a command is
// built by [logFlags.logger], the one place that reads them.
type logFlags struct {
	format string // text or json
	level  string // debug, info, warn, error; "" for the default
	quiet  bool
}

func (lf *logFlags) register(root *cobra.Command) {
	fl := root.PersistentFlags()
	fl.StringVar(&lf.format, "log-format", "text", "log lines as text or json (one JSON object a line)")
	fl.StringVar(&lf.level, "log-level", "", "least level logged: debug, info, warn or error (default info)")
	fl.BoolVarP(&lf.quiet, "quiet", "q", false, "log only warnings and errors, no progress display")
}

// check validates the flags (a usage error when they are bad).
func (lf *logFlags) check() error {
	if lf == nil {
		return nil
	}
	switch lf.format {
	case "text", "json":
	default:
		return usageErr("--log-format %q: want text or json", lf.format)
	}
	if lf.level != "" {
		if _, err := parseLevel(lf.level); err != nil {
			return err
		}
		if lf.quiet {
			return usageErr("-q and --log-level: give one (-q is --log-level warn)")
		}
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, usageErr("--log-level %q: want debug, info, warn or error", s)
}

// isQuiet reports -q (nil-safe).
func (lf *logFlags) isQuiet() bool { return lf != nil && lf.quiet }

// logger returns the command's logger writing to w. Its level is
// --log-level, else warn with -q, else info; verbose (-v: one info line per
// object) lowers an unset level to debug for in-process runs, whose
// per-object lines are debug. Every line carries the attrs given (job,
// worker), once: a later With of the same key replaces the value.
func (lf *logFlags) logger(w io.Writer, attrs ...any) *slog.Logger {
	if lf == nil {
		lf = &logFlags{format: "text"}
	}
	level := slog.LevelInfo
	if lf.quiet {
		level = slog.LevelWarn
	}
	if lf.level != "" {
		if l, err := parseLevel(lf.level); err == nil {
			level = l
		}
	}
	o := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if lf.format == "json" {
		h = slog.NewJSONHandler(w, o)
	} else {
		h = slog.NewTextHandler(w, o)
	}
	return slog.New(&oneKey{root: h, h: h}).With(attrs...)
}

// levelSet reports whether the level was chosen with --log-level or -q.
func (lf *logFlags) levelSet() bool { return lf != nil && (lf.level != "" || lf.quiet) }

// verboseLogger is logger for in-process runs (verify, dry runs): -v
// shows their per-object debug lines unless a level was chosen.
func (lf *logFlags) verboseLogger(w io.Writer, verbose bool) *slog.Logger {
	if verbose && !lf.levelSet() {
		c := logFlags{format: "text", level: "debug"}
		if lf != nil {
			c.format = lf.format
		}
		return c.logger(w)
	}
	return lf.logger(w)
}

// workerName names this process's worker in logs, results and metrics:
// host:pid (the worker's default).
func workerName() string {
	h, _ := os.Hostname()
	return h + ":" + strconv.Itoa(os.Getpid())
}

// oneKey is a handler whose top-level attributes (from With) each appear
// once per line: a later With of a key replaces the earlier value, and a
// line's own attribute of such a key is dropped. Packages that add "job"
// to their lines thus do not repeat the job a command's logger carries.
type oneKey struct {
	root  slog.Handler // without attrs
	attrs []slog.Attr
	h     slog.Handler // root with attrs
}

func (o *oneKey) Enabled(ctx context.Context, l slog.Level) bool { return o.h.Enabled(ctx, l) }

func (o *oneKey) Handle(ctx context.Context, r slog.Record) error {
	dup := false
	r.Attrs(func(a slog.Attr) bool {
		dup = o.has(a.Key)
		return !dup
	})
	if !dup {
		return o.h.Handle(ctx, r)
	}
	nr := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if !o.has(a.Key) {
			nr.AddAttrs(a)
		}
		return true
	})
	return o.h.Handle(ctx, nr)
}

func (o *oneKey) has(key string) bool {
	return slices.ContainsFunc(o.attrs, func(a slog.Attr) bool { return a.Key == key })
}

func (o *oneKey) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return o
	}
	merged := slices.Clone(o.attrs)
	for _, a := range as {
		if i := slices.IndexFunc(merged, func(b slog.Attr) bool { return b.Key == a.Key }); i >= 0 {
			merged[i] = a
		} else {
			merged = append(merged, a)
		}
	}
	return &oneKey{root: o.root, attrs: merged, h: o.root.WithAttrs(merged)}
}

// WithGroup leaves the de-duplication behind: attributes after it are in
// the group.
func (o *oneKey) WithGroup(name string) slog.Handler { return o.h.WithGroup(name) }
