package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeConfig writes config.yaml in the configuration directory dir.
func writeConfig(t *testing.T, dir, yaml string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEnvAndConfigFlags: every long flag can be set as FERRY_<NAME> and in
// the configuration file's defaults; the command line beats the
// environment, which beats the file. Flags that delete or weaken security
// come from the command line only, and a typo in the file is an error.
func TestEnvAndConfigFlags(t *testing.T) {
	cfgDir := secretEnv(t)
	noAWSEnv(t)
	src := writeTree(t, map[string]string{"a.txt": "a", "b.jpg": "b"})
	dst := t.TempDir()
	copyArgs := []string{"copy", src, dst, "--no-progress"}

	// The environment sets a flag; the command line wins over it.
	t.Setenv("FERRY_CONCURRENCY", "0")
	oneLineErr(t, run(t, "", copyArgs...), ExitUsage, "--concurrency 0: want 1 to 4096")
	mustRun(t, 0, "", append(copyArgs, "--concurrency", "4")...)
	t.Setenv("FERRY_CONCURRENCY", "many")
	oneLineErr(t, run(t, "", copyArgs...), ExitUsage, "FERRY_CONCURRENCY: invalid value for --concurrency")

	// The config file's defaults, under the environment.
	t.Setenv("FERRY_CONCURRENCY", "")
	os.Unsetenv("FERRY_CONCURRENCY")
	path := writeConfig(t, cfgDir, "defaults:\n  concurrency: 0\n  json: true\n")
	oneLineErr(t, run(t, "", copyArgs...), ExitUsage, "--concurrency 0: want 1 to 4096")
	t.Setenv("FERRY_CONCURRENCY", "2")
	r := mustRun(t, 0, "", copyArgs...)
	if !strings.HasPrefix(lastLine(r.out), `{"job_id"`) {
		t.Fatalf("json: true from the config file ignored: %q", r.out)
	}
	os.Unsetenv("FERRY_CONCURRENCY")
	// A boolean from the environment: --json.
	writeConfig(t, cfgDir, "")
	t.Setenv("FERRY_JSON", "true")
	if r := mustRun(t, 0, "", copyArgs...); !strings.HasPrefix(lastLine(r.out), `{"job_id"`) {
		t.Fatalf("FERRY_JSON ignored: %q", r.out)
	}
	os.Unsetenv("FERRY_JSON")

	// A typo or a command-line-only flag in the file: one line naming it.
	writeConfig(t, cfgDir, "defaults:\n  concurency: 4\n")
	oneLineErr(t, run(t, "", copyArgs...), ExitUsage, path+`:2: defaults: "concurency": no ferry command has a flag --concurency`)
	writeConfig(t, cfgDir, "defaults:\n  delete: true\n")
	oneLineErr(t, run(t, "", copyArgs...), ExitUsage, "--delete is taken from the command line only")
	writeConfig(t, cfgDir, "")

	// FERRY_DELETE does not make a sync delete; FERRY_MAX_DELETE is a
	// limit for syncs that delete, not an error for one that does not.
	if err := os.WriteFile(filepath.Join(dst, "extra"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FERRY_DELETE", "true")
	t.Setenv("FERRY_MAX_DELETE", "5")
	mustRun(t, 0, "", "sync", src, dst, "--no-progress")
	if _, err := os.Stat(filepath.Join(dst, "extra")); err != nil {
		t.Fatalf("FERRY_DELETE deleted: %v", err)
	}
	// On the command line, --max-delete without --delete is an error.
	oneLineErr(t, run(t, "", "sync", src, dst, "--no-progress", "--max-delete", "5"), ExitUsage, "--max-delete 5 needs --delete")
}

// TestUndefinedRemote: "minio:dst" without a remote "minio" is a usage
// error naming the remote and where remotes are defined, never a local
// directory; paths with a colon that do not look like a remote stay local.
func TestUndefinedRemote(t *testing.T) {
	cfgDir := secretEnv(t)
	noAWSEnv(t)
	t.Chdir(t.TempDir())
	src := writeTree(t, map[string]string{"a.txt": "a"})
	r := run(t, "", "copy", src, "minio:dst", "--no-progress")
	oneLineErr(t, r, ExitUsage, `destination "minio:dst": no remote named "minio"`, filepath.Join(cfgDir, "config.yaml"), "write ./minio:dst")
	path := writeConfig(t, cfgDir, "remotes:\n  store:\n    endpoint: https://minio.example:9000\n")
	oneLineErr(t, run(t, "", "copy", "minio:src/x", src, "--no-progress"), ExitUsage, `source "minio:src/x": no remote named "minio"`, path, "(defined: store)")
	if _, err := os.Stat("minio:dst"); !os.IsNotExist(err) {
		t.Fatalf("a local directory minio:dst was made: %v", err)
	}
	// A local path with a colon, written as a path, is local.
	mustRun(t, 0, "", "copy", src, "./a:b", "--no-progress")
	if b, err := os.ReadFile(filepath.Join("a:b", "a.txt")); err != nil || string(b) != "a" {
		t.Fatalf("./a:b: %q %v", b, err)
	}
}
