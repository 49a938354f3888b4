// Package cli is ferry's command line: it parses flags, opens the stores the
// locations name, runs the job and maps the outcome to an exit code.
//
// Exit codes (one place, documented in README.md, "Exit codes"):
//
//	0  everything done
//	1  finished, but some objects failed, differ or were unsafe; or the run
//	   stopped after transfers began (a listing failed, cancelled)
//	2  usage, configuration or access error before any transfer; nothing
//	   was written
//	3  interrupted (SIGINT, SIGTERM): the job stays resumable with
//	   'ferry job resume ID'
//	9  --error-on-no-transfer and the run copied and deleted nothing
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ferry-dev/ferry/internal/logtext"
)

// Exit codes.
const (
	ExitOK          = 0
	ExitFailed      = 1
	ExitUsage       = 2
	ExitInterrupted = 3
	// ExitNoTransfer is rclone's code for --error-on-no-transfer.
	ExitNoTransfer = 9
)

// Stdio are the streams a command uses.
type Stdio struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
	// logs are the root's logging flags (logging.go), set by newRoot.
	logs *logFlags
}

// exitError carries an exit code with an error message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr marks err as a usage/config/access error (exit 2).
func usageErr(format string, a ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, a...)}
}

// asUsage marks an existing error as exit 2.
func asUsage(err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	return &exitError{code: ExitUsage, err: err}
}

// failedErr is returned when a run finished with failed objects: the
// summary already said everything, so nothing more is printed.
var errFailed = &exitError{code: ExitFailed, err: errors.New("")}

// errInterrupted: the run stopped at an interrupt; what to do next was
// already printed.
var errInterrupted = &exitError{code: ExitInterrupted, err: errors.New("")}

// Main runs ferry with args (without the program name) and returns the exit
// code.
func Main(ctx context.Context, args []string, stdio Stdio) int {
	root := newRoot(stdio)
	root.SetArgs(args)
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	code := ExitUsage // cobra's own errors: unknown flags, commands, arg counts
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	msg := logtext.OneLine(err.Error())
	if code != ExitInterrupted && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		// Stopped by SIGINT or SIGTERM (main's root context), whatever
		// the step that noticed.
		code, msg = ExitInterrupted, "interrupted"
	}
	if msg != "" {
		fmt.Fprintf(stdio.Err, "ferry: %s\n", msg)
	}
	return code
}

func newRoot(stdio Stdio) *cobra.Command {
	root := &cobra.Command{
		Use:   "ferry",
		Short: "Move object storage between S3 endpoints and local directories, verified",
		Long: `ferry copies and syncs S3 buckets and local directories. Every object is
checksummed while it streams, checked by the destination and against the
source, and recorded with its provenance.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       readBuildInfo().Version,
	}
	// -v is --verbose on every command (those that log per object define
	// their own); the version is --version or 'ferry version'.
	root.PersistentFlags().BoolP("verbose", "v", false, "more output")
	root.SetVersionTemplate(versionTemplate())
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErr("%s (see 'ferry %s --help')", err, c.Name())
	})
	qf := &queueFlags{warn: stdio.Err}
	qf.register(root)
	stdio.logs = &logFlags{}
	stdio.logs.register(root)
	root.AddCommand(newCopyCmd(stdio, "copy", qf), newCopyCmd(stdio, "sync", qf), newVerifyCmd(stdio))
	root.AddCommand(newJobCmd(stdio, qf), newDLQCmd(stdio, qf), newWorkerCmd(stdio, qf))
	root.AddCommand(newUICmd(stdio, qf))
	root.AddCommand(newPolicyCmd(stdio), newPreflightCmd(stdio), newNATSPermissionsCmd(stdio))
	root.AddCommand(newBucketCmd(stdio), newBundleCmd(stdio))
	root.AddCommand(newSecretCmd(stdio), newAuditCmd(stdio, qf), newVersionCmd(stdio), newKeyCmd(stdio, qf))
	root.AddCommand(newReportCmd(stdio, qf))
	refuseArgvCredentials(root)
	refuse := root.PersistentPreRunE
	root.PersistentPreRunE = func(c *cobra.Command, args []string) error {
		if err := refuse(c, args); err != nil {
			return err
		}
		if err := stdio.logs.check(); err != nil {
			return err
		}
		if !usesConfig(c) {
			return nil
		}
		cfg, err := loadConfig()
		if err != nil {
			return err
		}
		if err := checkDefaults(root, cfg); err != nil {
			return err
		}
		return applyEnvAndConfig(c, cfg)
	}
	root.SetOut(stdio.Out) // before the completion command captures it
	root.SetErr(stdio.Err)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	registerCompletions(root, qf)
	setExamples(root)
	return root
}

// usesConfig reports whether c takes flag values from the environment and
// the configuration file: every command but help, version and completion,
// which work even when the configuration file is broken.
func usesConfig(c *cobra.Command) bool {
	for p := c; p != nil; p = p.Parent() {
		switch p.Name() {
		case "help", "version", "completion", cobra.ShellCompRequestCmd, cobra.ShellCompNoDescRequestCmd:
			return false
		}
	}
	return true
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// exactArgs is cobra.ExactArgs with a usage exit code.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErr("%s takes %s (got %d argument(s)); see 'ferry %s --help'", c.Name(), names, len(args), c.Name())
		}
		return nil
	}
}
