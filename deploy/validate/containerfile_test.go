package validate

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// instruction is one Containerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
}

// stage is one FROM and the instructions after it.
type stage struct {
	from  string // the image, ARGs expanded
	name  string // AS name
	instr []instruction
}

// parseContainerfile reads the Containerfile into its stages. It knows
// the syntax this repository uses: comments, backslash continuations,
// ARG defaults before the first FROM, FROM image [AS name].
func parseContainerfile(t *testing.T) (stages []stage, globalArgs map[string]string) {
	t.Helper()
	text := strings.ReplaceAll(string(readFile(t, "Containerfile")), "\\\n", " ")
	globalArgs = map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		switch {
		case in.cmd == "FROM":
			f := strings.Fields(in.args)
			s := stage{from: expandArgs(f[0], globalArgs)}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
		case len(stages) == 0 && in.cmd == "ARG":
			k, v, _ := strings.Cut(in.args, "=")
			globalArgs[k] = v
		case len(stages) == 0:
			t.Fatalf("Containerfile: %s before the first FROM", in.cmd)
		default:
			stages[len(stages)-1].instr = append(stages[len(stages)-1].instr, in)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("Containerfile: %d stages, want a build stage and a final one", len(stages))
	}
	return stages, globalArgs
}

func expandArgs(s string, args map[string]string) string {
	return regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`).ReplaceAllStringFunc(s, func(m string) string {
		k := strings.Trim(m, "${}")
		return args[k]
	})
}

// containerfileUser returns the numeric UID of the final stage's USER.
func containerfileUser(t *testing.T) int64 {
	t.Helper()
	stages, _ := parseContainerfile(t)
	var user string
	for _, in := range stages[len(stages)-1].instr {
		if in.cmd == "USER" {
			user = in.args
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	n, err := strconv.ParseInt(uid, 10, 64)
	if err != nil {
		t.Fatalf("Containerfile: USER %q is not numeric (Kubernetes' runAsNonRoot can only check a numeric UID)", user)
	}
	return n
}

var pinned = regexp.MustCompile(`^[a-z0-9.\-/:]+@sha256:[0-9a-f]{64}$`)

func TestContainerfile(t *testing.T) {
	stages, _ := parseContainerfile(t)
	names := map[string]bool{}
	for _, s := range stages {
		if !names[s.from] && s.from != "scratch" && !pinned.MatchString(s.from) {
			t.Errorf("FROM %s: pin base images by digest (image:tag@sha256:...)", s.from)
		}
		if s.name != "" {
			names[s.name] = true
		}
	}

	final := stages[len(stages)-1]
	if final.from != "scratch" && !strings.Contains(final.from, "distroless/static") {
		t.Errorf("final stage FROM %s: want scratch or distroless static (no shell)", final.from)
	}
	has := map[string][]string{}
	for _, in := range final.instr {
		has[in.cmd] = append(has[in.cmd], in.args)
	}
	if len(has["RUN"]) != 0 {
		t.Errorf("final stage has RUN %q: it has no shell to run it", has["RUN"])
	}
	if uid := containerfileUser(t); uid <= 0 {
		t.Errorf("USER %d: want a non-root UID", uid)
	}
	for _, ins := range []string{"ENTRYPOINT", "CMD"} {
		for _, a := range has[ins] {
			var argv []string
			if err := json.Unmarshal([]byte(a), &argv); err != nil {
				t.Errorf("%s %s: use the exec (JSON) form: the shell form needs /bin/sh", ins, a)
			}
		}
	}
	if len(has["ENTRYPOINT"]) != 1 || has["ENTRYPOINT"][0] != `["/ferry"]` {
		t.Errorf("ENTRYPOINT %q, want [\"/ferry\"] (the manifests' args are ferry's)", has["ENTRYPOINT"])
	}
	if !strings.Contains(strings.Join(has["COPY"], "\n"), "ca-certificates.crt") {
		t.Error("final stage: no CA certificates (TLS to S3 and NATS needs them)")
	}
	if !strings.Contains(strings.Join(has["ENV"], " "), "XDG_STATE_HOME=/var/lib/ferry") {
		t.Error("final stage: the state directory must be under the /var/lib/ferry volume (read-only root)")
	}

	// The build: static, reproducible, the Makefile's flags.
	var build, env string
	for _, s := range stages[:len(stages)-1] {
		for _, in := range s.instr {
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
				build = in.args
			}
			if in.cmd == "ENV" {
				env += " " + in.args
			}
		}
	}
	build = env + " " + build
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-buildvcs=false", "-s -w",
		"-X github.com/ferry-dev/ferry/internal/cli.Version=${VERSION}", "./cmd/ferry"} {
		if !strings.Contains(build, want) {
			t.Errorf("build stage: go build lacks %s", want)
		}
	}
	mk := string(readFile(t, "Makefile"))
	if !strings.Contains(mk, "-s -w -X github.com/ferry-dev/ferry/internal/cli.Version=$(VERSION)") {
		t.Error("the Makefile's LDFLAGS changed: update the Containerfile's go build to match, then this test")
	}
	text := string(readFile(t, "Containerfile"))
	for _, want := range []string{"ARG SOURCE_DATE_EPOCH", "ARG VERSION"} {
		if !strings.Contains(text, want) {
			t.Errorf("Containerfile: no %s", want)
		}
	}
}
