package cli

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferry-dev/ferry/internal/config"
)

// Flag values come, in order of precedence, from the command line, the
// environment (every long flag --foo-bar as FERRY_FOO_BAR), the
// configuration file's 'defaults:' section, and the flag's default. See
// README.md, "Configuration".
//
// Flags that delete or weaken security are taken from the command line
// only (typedOnly): a variable left in a shell profile or a line in a
// config file must not make a sync delete or a connection plain text.
// Credentials are never flags at all (secret.go).

// typedOnly are the flags neither the environment nor the configuration
// file may set.
var typedOnly = map[string]bool{
	"delete": true, "force": true,
	"allow-insecure-http": true, "allow-insecure-nats": true, "allow-unauthenticated-nats": true,
	"help": true, "version": true,
}

// flagSource annotates a flag set from the environment or the
// configuration file (a flag without it came from the command line).
const flagSource = "ferry-source"

// envName is the environment variable of a long flag: FERRY_FOO_BAR.
func envName(flag string) string {
	return "FERRY_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// settable reports whether the environment and config file may set f.
func settable(f *pflag.Flag) bool {
	return !f.Hidden && !typedOnly[f.Name]
}

// applyEnvAndConfig sets each flag of c that the command line left unset
// from FERRY_<NAME>, else from cfg's defaults. A bad value is a usage
// error naming the variable or the file and line.
func applyEnvAndConfig(c *cobra.Command, cfg *config.Config) error {
	var err error
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || !settable(f) {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if serr := c.Flags().Set(f.Name, v); serr != nil {
				err = usageErr("%s: invalid value for --%s: %v", envName(f.Name), f.Name, serr)
				return
			}
			annotate(f, "environment variable "+envName(f.Name))
			return
		}
		if cfg == nil {
			return
		}
		d, ok := cfg.Defaults[f.Name]
		if !ok {
			return
		}
		for _, v := range d.Values {
			if serr := c.Flags().Set(f.Name, v); serr != nil {
				err = usageErr("%s:%d: defaults: invalid value for --%s: %v", cfg.Path, d.Line, f.Name, serr)
				return
			}
		}
		annotate(f, fmt.Sprintf("%s:%d", cfg.Path, d.Line))
	})
	return err
}

func annotate(f *pflag.Flag, source string) {
	if f.Annotations == nil {
		f.Annotations = map[string][]string{}
	}
	f.Annotations[flagSource] = []string{source}
}

// fromCommandLine reports whether flag name of fs was set on the command
// line (not from the environment or the configuration file).
func fromCommandLine(fs *pflag.FlagSet, name string) bool {
	f := fs.Lookup(name)
	return f != nil && f.Changed && len(f.Annotations[flagSource]) == 0
}

// checkDefaults refuses a 'defaults:' entry that is no settable flag of
// any ferry command: a typo must not be silently ignored.
func checkDefaults(root *cobra.Command, cfg *config.Config) error {
	if cfg == nil || len(cfg.Defaults) == 0 {
		return nil
	}
	known := map[string]bool{}
	walk(root, func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.Flags(), c.PersistentFlags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				if settable(f) {
					known[f.Name] = true
				}
			})
		}
	})
	names := make([]string, 0, len(cfg.Defaults))
	for n := range cfg.Defaults {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !known[n] {
			why := "no ferry command has a flag --" + n
			if typedOnly[n] {
				why = "--" + n + " is taken from the command line only"
			}
			return usageErr("%s:%d: defaults: %q: %s", cfg.Path, cfg.Defaults[n].Line, n, why)
		}
	}
	return nil
}
