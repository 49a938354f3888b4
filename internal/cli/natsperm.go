package cli

import (
	"strings"

	"github.com/nats-io/nkeys"
	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/queue"
)

func newNATSPermissionsCmd(stdio Stdio) *cobra.Command {
	var coordinators, workers []string
	c := &cobra.Command{
		Use:   "nats-permissions",
		Short: "Print a least-privilege NATS authorization block for ferry's coordinators and workers",
		Long: `nats-permissions prints the part of a nats-server configuration that lets ferry
run and nothing more: a permission set for coordinators (the machines that
create and run jobs: copy, sync, job, dlq, ui), which may manage ferry's own
streams and buckets only, and one for workers (ferry worker), which may take
work, publish results, dead letters and the work they find while listing,
read the jobs and keep resumable uploads, but not create, delete or purge a
stream, take a job's lock or read results. Users authenticate with nkeys
(ferry --nats-nkey SEED_FILE); name their public keys with --coordinator and
--worker, or replace the placeholders. It connects to nothing.`,
		Example: `  ferry nats-permissions --coordinator UA4X... --worker UB7Q... > ferry-auth.conf
  # in nats-server.conf:  include ferry-auth.conf`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(*cobra.Command, []string) error {
			for _, set := range []struct {
				flag string
				keys []string
			}{{"--coordinator", coordinators}, {"--worker", workers}} {
				for _, k := range set.keys {
					if strings.HasPrefix(k, "S") {
						// Not echoed: it may be a seed, the private half.
						return usageErr("%s: that looks like an nkey seed (private): pass the user's public key (U..., 56 characters)", set.flag)
					}
					if !nkeys.IsValidPublicUserKey(k) {
						return usageErr("%s: not an nkey user public key (U..., 56 characters; 'nk -gen user -pubout' makes one)", set.flag)
					}
				}
			}
			return queue.WritePermissions(stdio.Out, coordinators, workers)
		},
	}
	c.Flags().StringArrayVar(&coordinators, "coordinator", nil, "nkey public key (U...) of a coordinator user (repeatable)")
	c.Flags().StringArrayVar(&workers, "worker", nil, "nkey public key (U...) of a worker user (repeatable)")
	return c
}
