package cli

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/logtext"
)

func newAuditCmd(stdio Stdio) *cobra.Command {
	c := &cobra.Command{
		Use:   "audit",
		Short: "Check ferry's per-job audit logs",
	}
	var expectLast string
	verify := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check an audit log's hash chain; exit 0 when intact, 1 naming the first bad line",
		Long: `Check that no line of an audit log was edited, removed, inserted or reordered.
Prints "ok: N lines, last hash H", or "audit log FILE: line N: ..." and exits 1.
Lines removed from the end leave a valid chain: pass the last hash the job's
summary recorded with --expect-last to detect that. See docs/audit.md.`,
		Args: exactArgs(1, "FILE"),
		RunE: func(c *cobra.Command, args []string) error {
			path := args[0]
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
			fmt.Fprintf(stdio.Out, "ok: %d lines, last hash %s\n", n, last)
			return nil
		},
	}
	verify.Flags().StringVar(&expectLast, "expect-last", "", "the last line's SHA-256 as the job summary recorded it")
	c.AddCommand(verify)
	return c
}
