package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/secret"
)

func init() { scryptWorkFactor = 10 } // passphrase mode in seconds under -race

// run runs ferry in-process with stdin, without the --no-progress that
// [ferry] appends (secret and audit commands do not take it).
func run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	code := Main(ctx, args, Stdio{In: strings.NewReader(stdin), Out: &out, Err: &errb})
	return result{code, out.String(), errb.String()}
}

// secretEnv points ferry's configuration at a fresh directory, in identity
// mode, and returns it.
func secretEnv(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "config")
	t.Setenv(secret.EnvConfigDir, dir)
	t.Setenv(secret.EnvPassphrase, "")
	t.Setenv(secret.EnvPassphraseCommand, "")
	t.Setenv("XDG_STATE_HOME", filepath.Join(t.TempDir(), "state"))
	return dir
}

func credLines(id, key string) string {
	return "[default]\naws_access_key_id = " + id + "\naws_secret_access_key = " + key + "\n"
}

func TestSecretSetListRm(t *testing.T) {
	dir := secretEnv(t)
	const key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	for _, tc := range []struct {
		name, stdin string
		args        []string
		code        int
		out, err    string
	}{
		{"set lines", credLines("AKIA1", key), []string{"secret", "set", "zeta"}, 0, "saved secret zeta", ""},
		{"set json", `{"Version":1,"AccessKeyId":"AKIA2","SecretAccessKey":"` + key + `","SessionToken":"tok"}`, []string{"secret", "set", "alpha"}, 0, "saved secret alpha", ""},
		{"set sts json", `{"Credentials":{"AccessKeyId":"AKIA3","SecretAccessKey":"` + key + `"}}`, []string{"secret", "set", "mid.dle_1"}, 0, "saved", ""},
		{"set bare names", "access_key_id=AKIA4\nsecret_access_key=" + key + "\n", []string{"secret", "set", "beta"}, 0, "saved", ""},
		{"list sorted", "", []string{"secret", "list"}, 0, "alpha\nbeta\nmid.dle_1\nzeta\n", ""},
		{"rm", "", []string{"secret", "rm", "beta"}, 0, "removed secret beta", ""},
		{"list after rm", "", []string{"secret", "list"}, 0, "alpha\nmid.dle_1\nzeta\n", ""},
		{"rm missing", "", []string{"secret", "rm", "beta"}, 2, "", "no such secret"},
		{"invalid name", credLines("A", key), []string{"secret", "set", "../x"}, 2, "", "invalid secret name"},
		{"no name", "", []string{"secret", "set"}, 2, "", "NAME"},
		{"empty stdin", "", []string{"secret", "set", "x"}, 2, "", "no credentials on stdin"},
		{"no secret key", "aws_access_key_id = A\n", []string{"secret", "set", "x"}, 2, "", "no aws_secret_access_key"},
		{"bare value line", key + "\n", []string{"secret", "set", "x"}, 2, "", "line 1: want 'name = value'"},
		{"unknown name", "region = x\n" + key + "=y\n", []string{"secret", "set", "x"}, 2, "", "line 1: unknown name"},
		{"two profiles", credLines("A", key) + credLines("B", key), []string{"secret", "set", "x"}, 2, "", "second [profile]"},
		{"bad json", `{"AccessKeyId": "` + key, []string{"secret", "set", "x"}, 2, "", "not valid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.stdin, tc.args...)
			if r.code != tc.code || !strings.Contains(r.out, tc.out) || !strings.Contains(r.err, tc.err) {
				t.Fatalf("exit %d (want %d)\nstdout: %q (want %q)\nstderr: %q (want %q)", r.code, tc.code, r.out, tc.out, r.err, tc.err)
			}
			if strings.Contains(r.out+r.err, key) {
				t.Fatalf("output holds the secret:\n%s\n%s", r.out, r.err)
			}
		})
	}
	st, err := secret.Open(secret.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	f, err := st.Get(context.Background(), "alpha")
	if err != nil || f[secret.FieldSecretAccessKey].Reveal() != key || f[secret.FieldSessionToken].Reveal() != "tok" || f[secret.FieldAccessKeyID].Reveal() != "AKIA2" {
		t.Fatalf("stored alpha: %v %v", f, err)
	}
}

func TestSecretStorePermissionsRefused(t *testing.T) {
	dir := secretEnv(t)
	if r := run(t, credLines("A", "k"), "secret", "set", "a"); r.code != 0 {
		t.Fatal(r.err)
	}
	if err := os.Chmod(filepath.Join(dir, secret.IdentityFile), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, "", "secret", "list")
	if r.code != 2 || !strings.Contains(r.err, "accessible by group or others") || strings.Count(r.err, "\n") != 1 {
		t.Fatalf("exit %d: %q", r.code, r.err)
	}
}

func TestSecretWrongPassphrase(t *testing.T) {
	secretEnv(t)
	t.Setenv(secret.EnvPassphrase, "right")
	if r := run(t, credLines("A", "k"), "secret", "set", "a"); r.code != 0 || !strings.Contains(r.out, "passphrase mode") {
		t.Fatalf("exit %d: %s %s", r.code, r.out, r.err)
	}
	t.Setenv(secret.EnvPassphrase, "wrong")
	if r := run(t, "", "secret", "list"); r.code != 2 || !strings.Contains(r.err, "wrong passphrase") {
		t.Fatalf("exit %d: %q", r.code, r.err)
	}
	t.Setenv(secret.EnvPassphrase, "")
	t.Setenv(secret.EnvPassphraseCommand, "echo right")
	if r := run(t, "", "secret", "list"); r.code != 0 || r.out != "a\n" {
		t.Fatalf("exit %d: %q %q", r.code, r.out, r.err)
	}
}

func TestRefusedCredentialFlags(t *testing.T) {
	secretEnv(t)
	const val = "SuperSecretValueLEAKCANARY0123456789abcd"
	src, dst := t.TempDir(), t.TempDir()
	for _, flag := range refusedFlags {
		for _, args := range [][]string{
			{"copy", src, dst, "--" + flag, val},
			{"sync", "--" + flag + "=" + val, src, dst},
			{"verify", src, dst, "--" + flag, val},
			{"secret", "set", "x", "--" + flag, val},
		} {
			r := run(t, "", args...)
			hint := []string{"ferry secret set", "--src-secret/--dst-secret"}
			if strings.HasPrefix(flag, "nats-") {
				hint = []string{"--nats-token-file FILE", "FERRY_NATS_TOKEN"}
			}
			if r.code != 2 || !strings.Contains(r.err, "--"+flag+": credentials are not accepted on the command line") ||
				!strings.Contains(r.err, hint[0]) || !strings.Contains(r.err, hint[1]) {
				t.Errorf("%v: exit %d: %q", args[:2], r.code, r.err)
			}
			if strings.Contains(r.out+r.err, val) {
				t.Errorf("%v: the value was echoed: %q", args[:2], r.err)
			}
		}
	}
	// Hidden from help.
	if r := run(t, "", "copy", "--help"); strings.Contains(r.out, "secret-key") || !strings.Contains(r.out, "--dst-secret") {
		t.Errorf("help: %s", r.out)
	}
}

func TestSecretFlagChecks(t *testing.T) {
	secretEnv(t)
	src := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"secret and profile", []string{"copy", src, "s3://bucket/x", "--dst-endpoint", "https://127.0.0.1:1", "--dst-secret", "a", "--dst-profile", "p"}, "--dst-secret and --dst-profile"},
		{"src secret and profile", []string{"copy", "s3://bucket/x", src, "--src-endpoint", "https://127.0.0.1:1", "--src-secret", "a", "--src-profile", "p"}, "--src-secret and --src-profile"},
		{"missing secret", []string{"copy", src, "s3://bucket/x", "--dst-endpoint", "https://127.0.0.1:1", "--dst-secret", "nope"}, "no such secret"},
		{"invalid name", []string{"copy", src, "s3://bucket/x", "--dst-endpoint", "https://127.0.0.1:1", "--dst-secret", "a/b"}, "invalid secret name"},
		{"creds in location", []string{"copy", src, "s3://AKIA:LEAKCANARYxyz@bucket/x"}, "credentials are not accepted"},
		{"creds in endpoint", []string{"copy", src, "s3://bucket/x", "--dst-endpoint", "https://AKIA:LEAKCANARYxyz@127.0.0.1:1"}, "credentials are not accepted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ferry(t, tc.args...)
			if r.code != 2 || !strings.Contains(r.err, tc.want) || strings.Contains(r.err, "LEAKCANARY") {
				t.Fatalf("exit %d: %q", r.code, r.err)
			}
		})
	}
}

// TestOwnKeysNeedForce: removing ferry's own keys is refused without
// --force, saying what breaks; `ferry key show` is stable until then.
func TestOwnKeysNeedForce(t *testing.T) {
	secretEnv(t)
	k1 := run(t, "", "key", "show")
	if k1.code != 0 || !strings.HasPrefix(k1.out, "ferry-ed25519:") {
		t.Fatalf("key show: %+v", k1)
	}
	if k := run(t, "", "key", "show"); k.out != k1.out {
		t.Fatalf("key show changed: %q then %q", k1.out, k.out)
	}
	for _, tc := range []struct{ name, breaks string }{
		{"ferry-signing-key", "workers that trust the old public key"},
		{"ferry-state-key", "every job command fails"},
	} {
		r := run(t, "", "secret", "rm", tc.name)
		if r.code != 2 || !strings.Contains(r.err, "--force") || !strings.Contains(r.err, tc.breaks) {
			t.Fatalf("secret rm %s: exit %d, stderr %q", tc.name, r.code, r.err)
		}
	}
	if r := run(t, "", "secret", "rm", "ferry-signing-key", "--force"); r.code != 0 {
		t.Fatalf("secret rm --force: %+v", r)
	}
	if k := run(t, "", "key", "show"); k.code != 0 || k.out == k1.out {
		t.Fatalf("after removing the key, key show = %+v, want a new key", k)
	}
}

func TestStateDirWarning(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if w := stateDirWarning(dir); !strings.Contains(w, "0755") || !strings.Contains(w, "chmod 700") {
		t.Fatalf("0755: warning %q", w)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if w := stateDirWarning(dir); w != "" {
		t.Fatalf("0700: warning %q", w)
	}
}
