package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/secret"
	"github.com/ferry-dev/ferry/internal/trust"
)

// newKeyCmd is 'ferry key': this machine's signing key. Every job and
// work message ferry publishes is signed with it; workers elsewhere accept
// them when they trust its public key (--trust, --trust-file).
func newKeyCmd(stdio Stdio) *cobra.Command {
	c := &cobra.Command{Use: "key", Short: "This machine's signing key (jobs and work are signed with it)"}
	show := &cobra.Command{
		Use:   "show",
		Short: "Print this machine's public key, for other machines' --trust (the key is created on first use)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			s, err := secret.Open(secret.Options{Stderr: stdio.Err})
			if err != nil {
				return asUsage(fmt.Errorf("signing key: %w", err))
			}
			signer, err := trust.LoadOrCreate(c.Context(), s)
			if err != nil {
				return asUsage(err)
			}
			fmt.Fprintln(stdio.Out, signer.Public())
			return nil
		},
	}
	c.AddCommand(show)
	return c
}
