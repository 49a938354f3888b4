package validate

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/cli"
)

// checkFerryArgs runs ferry's own CLI on args with --help appended: cobra
// parses every flag (an unknown flag, or a value that does not parse as its
// type, is exit 2) and then prints help instead of running. So a deployment
// file cannot drift from the CLI: a renamed or removed flag fails here.
func checkFerryArgs(t *testing.T, where string, args []string) {
	t.Helper()
	if len(args) == 0 || args[0] != "worker" {
		t.Fatalf("%s: %q is not a ferry worker command line", where, args)
	}
	for _, a := range args {
		if a == "--help" || a == "-h" {
			t.Fatalf("%s: %q already asks for help, so its flags would not be checked", where, args)
		}
	}
	dir := t.TempDir()
	t.Setenv("FERRY_CONFIG_DIR", dir)
	t.Setenv("XDG_STATE_HOME", dir)
	t.Setenv("XDG_CONFIG_HOME", dir)
	var out, errb bytes.Buffer
	full := append(append([]string{}, args...), "--help")
	code := cli.Main(context.Background(), full, cli.Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	if code != 0 {
		t.Errorf("%s: ferry %s: exit %d: %s", where, strings.Join(args, " "), code, strings.TrimSpace(errb.String()))
	}
	if !strings.Contains(out.String()+errb.String(), "worker") {
		t.Errorf("%s: ferry %s --help printed no worker help", where, strings.Join(args, " "))
	}
}

// TestCheckFerryArgsCatchesDrift: the check fails for a flag ferry does not
// have and for a value of the wrong type.
func TestCheckFerryArgsCatchesDrift(t *testing.T) {
	for _, args := range [][]string{
		{"worker", "--nats", "tls://nats:4222", "--no-such-flag"},
		{"worker", "--concurrency", "many"},
		{"worker", "--drain-timeout", "2 minutes"},
	} {
		var out, errb bytes.Buffer
		if code := cli.Main(context.Background(), append(args, "--help"), cli.Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}); code == 0 {
			t.Errorf("ferry %q --help: exit 0, want a usage error", args)
		}
	}
}

func TestWorkerArgsAreAFerryCommandLine(t *testing.T) {
	c := workerContainer(t, workerDeployment(t))
	if len(c.Command) != 0 {
		t.Errorf("container command %q: leave it to the image's entrypoint (/ferry)", c.Command)
	}
	checkFerryArgs(t, "worker Deployment", c.Args)
	if u := flagValue(c.Args, "--nats"); !strings.HasPrefix(u, "tls://") {
		t.Errorf("--nats %s: want tls:// (ferry refuses plain nats:// to another host)", u)
	}
}
