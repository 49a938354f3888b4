package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// runNoEnv runs ferry without the test environment the e2e helpers set up.
func runNoEnv(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	return result{code, out.String(), errb.String()}
}

// TestEveryCommandHasExamples: every command's help has an Example
// section, and no flag's usage renders a stray value name (pflag takes a
// backquoted word in a usage string as the value's name).
func TestEveryCommandHasExamples(t *testing.T) {
	root := newRoot(Stdio{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}})
	walk(root, func(c *cobra.Command) {
		if c.Hidden {
			return
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s: no Example", c.CommandPath())
		}
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if strings.Contains(f.Usage, "`") {
				t.Errorf("%s --%s: usage has a backquote: %q", c.CommandPath(), f.Name, f.Usage)
			}
		})
	})
	r := runNoEnv(t, "copy", "--help")
	if strings.Contains(r.out, "--workers ferry") || !strings.Contains(r.out, "Examples:") {
		t.Fatalf("copy --help:\n%s", r.out)
	}
	r = runNoEnv(t, "verify", "--help")
	if strings.Contains(r.out, "copy only") || !strings.Contains(r.out, "compare only keys matching") {
		t.Fatalf("verify --help says copy:\n%s", r.out)
	}
}

// TestVersion: 'ferry version' and 'ferry --version' print the semantic
// version, commit and Go version; -v is --verbose, never the version.
func TestVersion(t *testing.T) {
	re := regexp.MustCompile(`^ferry v\d+\.\d+\.\d+\S* \(commit \S+.*, go\S+ \S+/\S+\)\n$`)
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := runNoEnv(t, args...)
		if r.code != 0 || !re.MatchString(r.out) {
			t.Errorf("ferry %v: exit %d, %q", args, r.code, r.out)
		}
	}
	old := Version
	Version = "v1.2.3"
	t.Cleanup(func() { Version = old })
	if r := runNoEnv(t, "version"); !strings.HasPrefix(r.out, "ferry v1.2.3 (commit ") {
		t.Errorf("ldflags version: %q", r.out)
	}
	if r := runNoEnv(t, "-v"); strings.Contains(r.out, "v1.2.3") || r.code != 0 {
		t.Errorf("ferry -v printed the version: %q", r.out)
	}
	for _, cmd := range [][]string{{"copy", "--help"}, {"job", "list", "--help"}, {"worker", "--help"}, {"secret", "list", "--help"}} {
		if r := runNoEnv(t, cmd...); !strings.Contains(r.out, "-v, --verbose") {
			t.Errorf("ferry %v: no -v, --verbose:\n%s", cmd, r.out)
		}
	}
}

// TestCompletion: the shell completion completes job IDs from the state
// directory, remote names from the configuration file, and s3://.
func TestCompletion(t *testing.T) {
	isolateConfig(t, "remotes:\n  minio:\n    endpoint: https://minio.example:9000\n")
	state := t.TempDir()
	const id = "abcdefghijk234567"
	if err := os.MkdirAll(filepath.Join(state, "jobs"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "jobs", id+".json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"job", "status"}, {"job", "resume"}, {"dlq", "list"}} {
		r := runNoEnv(t, append(append([]string{cobra.ShellCompRequestCmd}, args...), "--state-dir", state, "")...)
		if !strings.Contains(r.out, id) {
			t.Errorf("complete %v: %q", args, r.out)
		}
	}
	r := runNoEnv(t, cobra.ShellCompRequestCmd, "copy", "")
	if !strings.Contains(r.out, "minio:") || !strings.Contains(r.out, "s3://") {
		t.Errorf("complete copy: %q", r.out)
	}
	r = runNoEnv(t, cobra.ShellCompRequestCmd, "copy", "mi")
	if !strings.Contains(r.out, "minio:") || strings.Contains(r.out, "s3://") {
		t.Errorf("complete copy mi: %q", r.out)
	}
	if r := runNoEnv(t, "completion", "bash"); r.code != 0 || !strings.Contains(r.out, "__ferry") {
		t.Errorf("completion bash: exit %d", r.code)
	}
}
