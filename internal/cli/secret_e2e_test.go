package cli

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/testenv"
)

// noAWSEnv leaves the AWS default chain with nothing to find, so that a
// run that works got its credentials from ferry's secret store.
func noAWSEnv(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		t.Setenv(k, "")
	}
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mustRun(t *testing.T, want int, stdin string, args ...string) result {
	t.Helper()
	r := run(t, stdin, args...)
	if r.code != want {
		t.Fatalf("ferry %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, want, r.out, r.err)
	}
	return r
}

// TestCopyWithDstSecret copies to a TLS MinIO whose credentials come only
// from --dst-secret: there is no profile and nothing in the environment.
func TestCopyWithDstSecret(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{TLS: true})
	noAWSEnv(t)
	secretEnv(t)
	mustRun(t, 0, credLines(m.AccessKey, m.SecretKey), "secret", "set", "minio-b")
	bucket := mkBucket(t, m)
	src := writeTree(t, map[string]string{"a.txt": "alpha", "d/b.bin": strings.Repeat("b", 100000)})
	dst := "s3://" + bucket + "/backup"
	conn := []string{"--dst-endpoint", m.Endpoint, "--ca-bundle", m.CAFile}

	// Without the secret the default chain finds nothing.
	if r := ferry(t, append([]string{"copy", src, dst}, conn...)...); r.code != 2 {
		t.Fatalf("copy without credentials: exit %d: %s", r.code, r.err)
	}
	s := ferryJSON(t, 0, append([]string{"copy", src, dst, "--dst-secret", "minio-b"}, conn...)...)
	if s.Copied != 2 {
		t.Fatalf("copied %d", s.Copied)
	}
	if got := keys(t, m, bucket); !slices.Equal(got, []string{"backup/a.txt", "backup/d/b.bin"}) {
		t.Fatalf("keys %v", got)
	}
	if b, _ := get(t, m, bucket, "backup/a.txt"); string(b) != "alpha" {
		t.Fatalf("a.txt = %q", b)
	}
	ferryJSON(t, 0, append([]string{"verify", src, dst, "--dst-secret", "minio-b"}, conn...)...)

	// Rotated to a wrong key: the server refuses it, exit 2, before writing.
	mustRun(t, 0, credLines(m.AccessKey, "wrong-secret-0123456789"), "secret", "set", "minio-b")
	r := ferry(t, append([]string{"copy", src, dst, "--dst-secret", "minio-b"}, conn...)...)
	if r.code != 2 || !strings.Contains(r.err, `(SignatureDoesNotMatch): the secret key does not belong to the access key ID (credentials from ferry secret "minio-b"`) {
		t.Fatalf("wrong secret: exit %d: %s", r.code, r.err)
	}
}

// TestSecretLeak stores recognisable secrets and runs every command that
// can touch them, succeeding and failing, then greps everything ferry
// printed and every file it wrote for the values. Process listings: no
// command takes a secret in argv (secret set reads stdin or prompts; the
// job commands take a secret's name), so a value can reach argv only by a
// user typing it after a refused flag, which the test checks is refused.
func TestSecretLeak(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{TLS: true})
	noAWSEnv(t)
	cfg := secretEnv(t)
	tmp := filepath.Join(t.TempDir(), "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", tmp)              // temporary files ferry makes land here
	state := os.Getenv("XDG_STATE_HOME") // secretEnv's: job state, audit logs, the embedded JetStream store

	canary := "LEAKCANARY" + randomHex(15) // 40 characters
	passCanary := "PASSCANARY" + randomHex(10)
	secrets := []string{canary, passCanary, m.SecretKey}

	var outputs []string
	var argvs [][]string
	do := func(stdin string, args ...string) result {
		t.Helper()
		start := time.Now()
		r := run(t, stdin, args...)
		if d := time.Since(start); d > 3*time.Second {
			t.Logf("%.1fs: ferry %s", d.Seconds(), strings.Join(args, " "))
		}
		outputs = append(outputs, r.out, r.err)
		argvs = append(argvs, args)
		return r
	}
	expect := func(want int, r result) {
		t.Helper()
		if r.code != want {
			t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, want, r.out, r.err)
		}
	}

	bucket := mkBucket(t, m)
	src := writeTree(t, map[string]string{"a.txt": "alpha", "d/b.bin": strings.Repeat("b", 70000), "c": ""})
	back := filepath.Join(t.TempDir(), "back")
	dst := "s3://" + bucket + "/p"
	conn := func(side string) []string {
		return []string{"--" + side + "-endpoint", m.Endpoint, "--ca-bundle", m.CAFile}
	}
	dstGood := append(conn("dst"), "--dst-secret", "good")
	srcGood := append(conn("src"), "--src-secret", "good")
	flags := [][]string{{"--no-progress"}, {"--no-progress", "-v"}, {"--no-progress", "--json"}, {"--no-progress", "-v", "--json"}}

	expect(0, do(credLines(m.AccessKey, m.SecretKey), "secret", "set", "good"))
	expect(0, do(credLines(m.AccessKey, canary), "secret", "set", "canary"))
	expect(0, do(`{"AccessKeyId":"`+m.AccessKey+`","SecretAccessKey":"`+canary+`","SessionToken":"`+canary+`"}`, "secret", "set", "canary-json"))
	expect(2, do("aws_secret_access_key = "+canary+"\n", "secret", "set", "half"))
	expect(2, do(canary+"\n", "secret", "set", "bare"))
	expect(0, do("", "secret", "list"))

	for _, fl := range flags {
		expect(0, do("", append(append([]string{"copy", src, dst, "--dry-run"}, dstGood...), fl...)...))
		expect(0, do("", append(append([]string{"copy", src, dst}, dstGood...), fl...)...))
		expect(0, do("", append(append([]string{"sync", dst, back, "--delete"}, srcGood...), fl...)...))
		expect(0, do("", append(append([]string{"verify", src, dst, "--exact"}, dstGood...), fl...)...))
		expect(0, do("", append(append([]string{"verify", dst, back}, srcGood...), fl...)...))
		// Failing runs: a rejected secret, an unreachable endpoint, a
		// missing secret.
		expect(2, do("", append(append([]string{"copy", src, dst}, append(conn("dst"), "--dst-secret", "canary")...), fl...)...))
		expect(2, do("", append(append([]string{"sync", dst, back}, append(conn("src"), "--src-secret", "canary-json")...), fl...)...))
		expect(2, do("", append([]string{"copy", src, dst, "--dst-endpoint", "https://127.0.0.1:1", "--dst-secret", "missing"}, fl...)...))
	}
	// An unreachable endpoint (slow: the SDK retries).
	expect(2, do("", "copy", src, dst, "--dst-endpoint", "https://127.0.0.1:1", "--dst-secret", "canary", "--ca-bundle", m.CAFile, "--no-progress", "-v", "--json"))
	// A secret given where ferry refuses it is not echoed.
	for _, flag := range []string{"--secret-key", "--aws-secret-access-key", "--dst-secret-key", "--session-token"} {
		expect(2, do("", "copy", src, dst, flag, canary, "-v"))
	}
	expect(2, do("", "copy", src, "s3://"+m.AccessKey+":"+canary+"@"+bucket+"/p", "-v"))
	expect(2, do("", "copy", src, dst, "--dst-endpoint", "https://"+m.AccessKey+":"+canary+"@127.0.0.1:1"))

	// Audit logs: written with the job's outcomes (wrong-credential errors
	// included), verified intact and tampered.
	logPath := filepath.Join(t.TempDir(), "audit.jsonl")
	al, err := audit.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []audit.Record{
		{Job: "j", Key: "a.txt", Size: 5, Outcome: audit.Copied, Attempts: 1},
		{Job: "j", Key: "b", Outcome: audit.Failed, Error: lastLine(outputs[len(outputs)-1]), Attempts: 3},
	} {
		if err := al.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	_, last := al.Head()
	al.Close()
	expect(0, do("", "audit", "verify", logPath, "--expect-last", last))
	b, _ := os.ReadFile(logPath)
	if err := os.WriteFile(logPath, bytes.Replace(b, []byte("a.txt"), []byte("x.txt"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	expect(1, do("", "audit", "verify", logPath))

	// Passphrase mode, with a passphrase that must not leak either.
	t.Setenv("FERRY_CONFIG_DIR", filepath.Join(t.TempDir(), "config2"))
	cfg2 := os.Getenv("FERRY_CONFIG_DIR")
	// Another secret store holds another state key: another state dir.
	state2 := filepath.Join(t.TempDir(), "state2")
	t.Setenv("XDG_STATE_HOME", state2)
	t.Setenv("FERRY_SECRETS_PASSPHRASE", passCanary)
	expect(0, do(credLines(m.AccessKey, m.SecretKey), "secret", "set", "good"))
	expect(0, do("", append(append([]string{"copy", src, dst}, dstGood...), "--no-progress", "-v", "--json")...))
	t.Setenv("FERRY_SECRETS_PASSPHRASE", "wrong-"+passCanary[:4])
	expect(2, do("", "secret", "list"))
	expect(2, do("", append(append([]string{"copy", src, dst}, dstGood...), "--no-progress", "-v")...))
	t.Setenv("FERRY_SECRETS_PASSPHRASE", "")
	t.Setenv("FERRY_SECRETS_PASSPHRASE_COMMAND", "echo "+passCanary+"; echo 'vault locked' >&2; exit 1")
	expect(2, do("", "secret", "list"))
	t.Setenv("FERRY_SECRETS_PASSPHRASE_COMMAND", "")
	t.Setenv("FERRY_CONFIG_DIR", cfg)
	t.Setenv("XDG_STATE_HOME", state)

	// A job on an external NATS server, whose JetStream files are not
	// encrypted: job specs, queue messages and results are on disk there
	// in plain text, and must hold only the secret's name.
	nats := testenv.StartNATS(t)
	expect(0, do("", append(append([]string{"copy", src, "s3://" + bucket + "/viaqueue", "--allow-unauthenticated-nats", "--nats", nats.URL}, dstGood...), "--no-progress", "-v", "--json")...))

	expect(0, do("", "secret", "rm", "canary"))
	expect(2, do("", "secret", "rm", "canary"))
	expect(0, do("", "secret", "list"))
	for _, args := range [][]string{{"--help"}, {"secret", "--help"}, {"secret", "set", "--help"}, {"copy", "--help"}, {"audit", "verify", "--help"}} {
		expect(0, do("", args...))
	}

	// Everything printed, and every file written: the config directories
	// (the encrypted stores included: they must hold no plaintext), the
	// temporary directory, the local destination and the audit log.
	haystack := map[string]string{"output": strings.Join(outputs, "\n")}
	for _, root := range []string{cfg, cfg2, tmp, back, filepath.Dir(logPath), state, state2, nats.StoreDir} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			haystack[p] = string(b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(haystack) < 8 {
		t.Fatalf("scanned only %d files", len(haystack))
	}
	for where, text := range haystack {
		for _, s := range secrets {
			if i := strings.Index(text, s); i >= 0 {
				t.Errorf("secret %.10s... found in %s: ...%s...", s, where, text[max(0, i-200):i])
			}
		}
		if strings.Contains(text, "LEAKCANARY") || strings.Contains(text, "PASSCANARY") {
			t.Errorf("a canary marker is in %s", where)
		}
	}
	// argv: only the refused runs carried a value, by the test's design.
	refused := 0
	for _, a := range argvs {
		if slices.ContainsFunc(a, func(s string) bool { return strings.Contains(s, canary) }) {
			refused++
		}
	}
	if refused != 6 {
		t.Errorf("%d runs had the canary in argv, want the 6 refused ones", refused)
	}
	// Sanity: the runs did happen.
	if ks := keys(t, m, bucket); len(ks) != 6 {
		t.Fatalf("keys %v", ks)
	}
}

func lastLine(s string) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	return ls[len(ls)-1]
}

// TestUnauthenticatedNATSRefused: a NATS server that accepts ferry without
// credentials is refused unless --allow-unauthenticated-nats, which warns.
func TestUnauthenticatedNATSRefused(t *testing.T) {
	secretEnv(t)
	nats := testenv.StartNATS(t)
	r := run(t, "", "job", "list", "--nats", nats.URL)
	if r.code != 2 || !strings.Contains(r.err, "without credentials") || !strings.Contains(r.err, "--allow-unauthenticated-nats") {
		t.Fatalf("job list on an open server: exit %d, stderr %q", r.code, r.err)
	}
	t.Setenv("FERRY_ALLOW_UNAUTHENTICATED_NATS", "true")
	if r := run(t, "", "job", "list", "--nats", nats.URL); r.code != 2 {
		t.Fatalf("the environment must not allow it: exit %d, stderr %q", r.code, r.err)
	}
	r = run(t, "", "job", "list", "--nats", nats.URL, "--allow-unauthenticated-nats")
	if r.code != 0 || !strings.Contains(r.err, "warning") || !strings.Contains(r.err, "requires no credentials") {
		t.Fatalf("with --allow-unauthenticated-nats: exit %d, stderr %q", r.code, r.err)
	}
}
