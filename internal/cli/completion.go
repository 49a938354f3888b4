package cli

import (
	"context"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/config"
	"github.com/ferry-dev/ferry/internal/job"
)

// Shell completion: cobra's 'ferry completion bash|zsh|fish|powershell'
// scripts call back into ferry (__complete) for what they cannot know:
// job IDs, secret names and remote names. Completion never prompts, never
// starts the embedded server and gives up after completionTimeout.

const completionTimeout = 2 * time.Second

// completeJobIDs completes the first argument with the IDs of the jobs in
// the state directory (the snapshots the embedded server's coordinator
// writes), or of the external cluster with --nats.
func completeJobIDs(qf *queueFlags) cobra.CompletionFunc {
	return func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var ids []string
		if qf.url != "" {
			ctx, cancel := context.WithTimeout(c.Context(), completionTimeout)
			defer cancel()
			if conn, err := qf.connect(ctx); err == nil {
				if states, err := job.List(ctx, conn); err == nil {
					for _, st := range states {
						ids = append(ids, st.Spec.ID+"\t"+string(st.Status)+" "+st.Spec.Command+" "+st.Spec.Src.Location)
					}
				}
				conn.Close()
			}
		} else {
			ents, _ := os.ReadDir(qf.snapshotDir())
			for _, e := range ents {
				if id, ok := strings.CutSuffix(e.Name(), ".json"); ok && job.ValidID(id) == nil {
					ids = append(ids, id)
				}
			}
		}
		return filterPrefix(ids, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// secretNames returns the names in ferry's secret store, or nothing when
// reading them could prompt (a passphrase command) or fails.
func secretNames(ctx context.Context) []string {
	if os.Getenv("FERRY_SECRETS_PASSPHRASE_COMMAND") != "" {
		return nil
	}
	st, err := openSecrets(io.Discard)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	defer cancel()
	names, err := st.Names(ctx)
	if err != nil {
		return nil
	}
	return names
}

func completeSecretFlag(c *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return filterPrefix(secretNames(c.Context()), toComplete), cobra.ShellCompDirectiveNoFileComp
}

func completeSecretArg(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return completeSecretFlag(c, args, toComplete)
}

// completeLocations completes SRC and DST: "s3://", the configured remotes
// as "name:", and local paths (the shell's file completion) otherwise.
func completeLocations(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) >= 2 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	if strings.Contains(toComplete, "/") || strings.Contains(toComplete, ":") {
		return nil, cobra.ShellCompDirectiveDefault
	}
	cands := []string{"s3://"}
	if cfg, err := config.Load(); err == nil {
		for _, n := range cfg.Names() {
			cands = append(cands, n+":")
		}
	}
	out := filterPrefix(cands, toComplete)
	if len(out) == 0 {
		return nil, cobra.ShellCompDirectiveDefault // local paths
	}
	return out, cobra.ShellCompDirectiveNoSpace
}

func filterPrefix(cands []string, prefix string) []cobra.Completion {
	var out []cobra.Completion
	for _, c := range cands {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

// registerCompletions adds the dynamic completions to the command tree.
func registerCompletions(root *cobra.Command, qf *queueFlags) {
	walk(root, func(c *cobra.Command) {
		path := strings.TrimPrefix(c.CommandPath(), "ferry ")
		switch path {
		case "job status", "job pause", "job resume", "job cancel", "dlq list", "dlq redrive":
			c.ValidArgsFunction = completeJobIDs(qf)
		case "copy", "sync", "verify", "policy", "preflight":
			c.ValidArgsFunction = completeLocations
		case "secret rm", "secret set":
			c.ValidArgsFunction = completeSecretArg
		}
		for _, name := range []string{"src-secret", "dst-secret"} {
			if c.Flags().Lookup(name) != nil {
				_ = c.RegisterFlagCompletionFunc(name, completeSecretFlag)
			}
		}
	})
}

// walk calls fn for c and every command below it.
func walk(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, sub := range c.Commands() {
		walk(sub, fn)
	}
}
