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
func newKeyCmd(stdio Stdio, qf *queueFlags) *cobra.Command {
	c := &cobra.Command{Use: "key", Short: "This machine's signing key (jobs and work are signed with it)"}
	show := &cobra.Command{
		Use:   "show",
		Short: "Print this machine's public key, for other machines' --trust (the key is created on first use)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			if qf.keyFile != "" {
				signer, err := trust.ReadKeyFile(qf.keyFile)
				if err != nil {
					return usageErr("--signing-key-file: %v", err)
				}
				fmt.Fprintln(stdio.Out, signer.Public())
				return nil
			}
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
	newKey := &cobra.Command{
		Use:   "new FILE",
		Short: "Write a new signing key to FILE (mode 0600) for --signing-key-file, and print its public key",
		Long: `new writes a new private signing key to FILE, for machines that share one key
with --signing-key-file FILE (a fleet of identical worker pods, whose own keys
would be new at every start), and prints its public key for the trust files.
An existing FILE is never replaced.`,
		Example: `  ferry key new fleet.key
  kubectl -n ferry create secret generic ferry-worker-signing-key --from-file=signing.key=fleet.key`,
		Args: exactArgs(1, "FILE"),
		RunE: func(_ *cobra.Command, args []string) error {
			signer, err := trust.WriteKeyFile(args[0])
			if err != nil {
				return usageErr("%v", err)
			}
			fmt.Fprintln(stdio.Out, signer.Public())
			return nil
		},
	}
	c.AddCommand(show, newKey)
	return c
}
