package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/lister"
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

// TestDLQJSONNames: 'dlq list --json' uses the names people read, not the
// queue's wire names.
func TestDLQJSONNames(t *testing.T) {
	mtime := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	e := job.DLQEntry{V: job.WireVersion, Job: "abcdefghijk234567", Kind: job.KindCopy, Error: "boom", Attempts: 3,
		Obj: &job.Obj{K: "photos/a.jpg", S: 42, E: "etag", M: mtime.UnixNano()}}
	b, err := json.Marshal(dlqJSON(e))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"key": "photos/a.jpg", "size": 42.0, "etag": "etag", "mtime": "2024-05-01T12:00:00Z", "kind": "copy", "attempts": 3.0, "error": "boom"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (%s)", k, got[k], v, b)
		}
	}
	for _, wire := range []string{"k", "s", "e", "m", "obj"} {
		if _, ok := got[wire]; ok {
			t.Errorf("wire name %q in %s", wire, b)
		}
	}
	b, _ = json.Marshal(dlqJSON(job.DLQEntry{Kind: job.KindList, Task: &lister.Task{Prefix: "p/", End: "p/z"}}))
	if !strings.Contains(string(b), `"listing":{"prefix":"p/","end":"p/z"}`) {
		t.Errorf("listing entry: %s", b)
	}
}

// TestVerifyIncludeCounts: verify with --include counts and compares only
// the selected keys, names each difference once, and its JSON always has
// differences, objects_identical and bytes_verified.
func TestVerifyIncludeCounts(t *testing.T) {
	secretEnv(t)
	noAWSEnv(t)
	src := writeTree(t, map[string]string{"a.jpg": "a", "d/b.jpg": "b", "c.txt": "c", "d/e.txt": "e"})
	dst := writeTree(t, map[string]string{"c.txt": "c"})
	mustRun(t, 0, "", "copy", src, dst, "--no-progress", "--include", "a.jpg")
	if err := os.MkdirAll(filepath.Join(dst, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "d", "b.jpg"), []byte("B"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, "", "verify", src, dst, "--no-progress", "--include", "*.jpg", "--json")
	if r.code != ExitFailed || strings.Count(r.err, "d/b.jpg") != 1 {
		t.Fatalf("exit %d, want 1 naming d/b.jpg once; stderr:\n%s", r.code, r.err)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(lastLine(r.out)), &v); err != nil {
		t.Fatal(err)
	}
	if v["objects_listed"] != 2.0 || v["objects_identical"] != 1.0 || v["differences"] != 1.0 || v["bytes_verified"] != 1.0 {
		t.Fatalf("summary %v", v)
	}
	if _, ok := v["bytes_copied"]; ok {
		t.Fatalf("verify says bytes_copied: %v", v)
	}
	r = run(t, "", "verify", src, dst, "--no-progress", "--include", "a.jpg", "--json")
	if err := json.Unmarshal([]byte(lastLine(r.out)), &v); err != nil || r.code != 0 || v["differences"] != 0.0 || v["objects_identical"] != 1.0 {
		t.Fatalf("identical: exit %d %v %v", r.code, v, err)
	}
	if r := run(t, "", "verify", src, dst, "--no-progress", "--include", "*.jpg"); !strings.Contains(r.out, "verified 2 objects") || !strings.Contains(r.out, "1 identical, 1 differences") {
		t.Fatalf("text summary: %q", r.out)
	}
}

// TestRefusedEndpointNotEchoed: an endpoint with a query or fragment is
// refused without printing them (a credential may have been pasted there).
func TestRefusedEndpointNotEchoed(t *testing.T) {
	for _, ep := range []string{
		"https://minio.example:9000/?secret=AKIASECRET",
		"https://minio.example:9000/#AKIASECRET",
		"https://minio.example:9000?AKIASECRET",
		"ftp://minio.example/?AKIASECRET",
	} {
		err := validateEndpoint("--src-endpoint", ep)
		if err == nil {
			t.Errorf("%s: accepted", ep)
			continue
		}
		if strings.Contains(err.Error(), "AKIASECRET") {
			t.Errorf("%s: the refusal echoes the query: %v", ep, err)
		}
	}
}
