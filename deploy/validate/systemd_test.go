package validate

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const unitPath = "deploy/systemd/ferry-worker.service"

// parseUnit reads a systemd unit into section → key → values (a key may
// repeat).
func parseUnit(t *testing.T, text string) map[string]map[string][]string {
	t.Helper()
	text = strings.ReplaceAll(text, "\\\n", " ")
	out := map[string]map[string][]string{}
	var sec string
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			sec = strings.Trim(line, "[]")
			out[sec] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || sec == "" {
				t.Fatalf("%s:%d: %q is not key=value in a section", unitPath, i+1, line)
			}
			out[sec][k] = append(out[sec][k], v)
		}
	}
	return out
}

// expandSpecifiers substitutes the specifiers and variables the unit uses
// with what systemd would give a system service.
func expandSpecifiers(t *testing.T, s string, env map[string]string) string {
	t.Helper()
	for k, v := range env {
		s = strings.ReplaceAll(s, "${"+k+"}", v)
	}
	s = strings.NewReplacer("%d", "/run/credentials/ferry-worker.service", "%S", "/var/lib", "%%", "%").Replace(s)
	if strings.Contains(s, "%") || strings.Contains(s, "${") {
		t.Fatalf("unexpanded specifier or variable in %q", s)
	}
	return s
}

func TestSystemdUnit(t *testing.T) {
	u := parseUnit(t, string(readFile(t, unitPath)))
	svc := u["Service"]
	one := func(k string) string {
		if len(svc[k]) == 0 {
			return ""
		}
		return svc[k][len(svc[k])-1]
	}

	// Hardening.
	if one("DynamicUser") != "yes" && one("User") == "" {
		t.Error("neither DynamicUser=yes nor a dedicated User=")
	}
	if one("User") == "root" {
		t.Error("User=root")
	}
	for k, want := range map[string]string{
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"PrivateDevices": "yes", "RestrictSUIDSGID": "yes", "CapabilityBoundingSet": "", "KillSignal": "SIGTERM",
	} {
		if v, ok := svc[k]; !ok || v[len(v)-1] != want {
			t.Errorf("[Service] %s=%q, want %q", k, v, want)
		}
	}
	if one("StateDirectory") != "ferry" {
		t.Errorf("StateDirectory=%q, want ferry", one("StateDirectory"))
	}

	// Credentials: LoadCredential files, not values in the environment.
	if len(svc["LoadCredential"]) == 0 {
		t.Error("no LoadCredential=")
	}
	env := map[string]string{}
	for _, line := range svc["Environment"] {
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
			n := strings.ToUpper(k)
			if strings.Contains(n, "SECRET") || strings.Contains(n, "TOKEN") || strings.Contains(n, "PASSWORD") ||
				strings.Contains(n, "ACCESS_KEY") || strings.Contains(n, "PASSPHRASE") {
				t.Errorf("Environment=%s: a credential's value in the unit; use LoadCredential=", k)
			}
		}
	}

	// ExecStart is a ferry worker command line; its credential files come
	// from the credentials directory; the state directory is the unit's.
	exe, argline, _ := strings.Cut(one("ExecStart"), " ")
	if filepath.Base(exe) != "ferry" {
		t.Fatalf("ExecStart runs %s, want ferry", exe)
	}
	args := strings.Fields(expandSpecifiers(t, argline, env))
	checkNoCredentialsInArgs(t, "ExecStart", args)
	checkFerryArgs(t, "ExecStart", args)
	for _, flag := range []string{"--nats-nkey", "--nats-creds", "--nats-ca"} {
		if f := flagValue(args, flag); f != "" && !strings.HasPrefix(f, "/run/credentials/") {
			t.Errorf("%s %s: want a file from LoadCredential= (%%d/...)", flag, f)
		}
	}
	if sd := flagValue(args, "--state-dir"); sd != "/var/lib/ferry" {
		t.Errorf("--state-dir %s: want the StateDirectory, %%S/ferry", sd)
	}

	// Stopping drains: the stop timeout outlasts --drain-timeout.
	drain, err := time.ParseDuration(flagValue(args, "--drain-timeout"))
	if err != nil {
		t.Fatalf("--drain-timeout: %v", err)
	}
	stop, err := strconv.Atoi(one("TimeoutStopSec"))
	if err != nil || time.Duration(stop)*time.Second < drain+15*time.Second {
		t.Errorf("TimeoutStopSec=%s: want at least --drain-timeout %s + 15s", one("TimeoutStopSec"), drain)
	}
}

// TestSystemdAnalyzeVerify runs `systemd-analyze verify` on the unit, where
// systemd is installed (it is on the project's machines; elsewhere the
// static checks above still run).
func TestSystemdAnalyzeVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: only the static checks ran")
		return
	}
	// verify wants the ExecStart binary to exist: point it at a real file.
	text := strings.ReplaceAll(string(readFile(t, unitPath)), "/usr/local/bin/ferry", "/bin/true")
	dir := t.TempDir()
	p := filepath.Join(dir, "ferry-worker.service")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", p).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
