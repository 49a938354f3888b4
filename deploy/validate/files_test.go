package validate

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// root is the repository root, seen from this package's directory.
const root = "../.."

// readFile returns a file of the repository, by its path from the root.
func readFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// manifestFiles lists deploy/kubernetes/*.yaml, sorted.
func manifestFiles(t *testing.T) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(root, "deploy", "kubernetes", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m) == 0 {
		t.Fatal("no manifests in deploy/kubernetes")
	}
	sort.Strings(m)
	return m
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// splitDocs splits a YAML stream into its documents, dropping those that
// hold only comments or blanks.
func splitDocs(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range docSeparator.Split(string(b), -1) {
		empty := true
		for _, line := range strings.Split(d, "\n") {
			l := strings.TrimSpace(line)
			if l != "" && !strings.HasPrefix(l, "#") {
				empty = false
				break
			}
		}
		if !empty {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

// dig walks a decoded YAML/JSON tree along path, failing the test when a
// step is missing.
func dig(t *testing.T, v any, path ...string) any {
	t.Helper()
	for i, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: not a map", strings.Join(path[:i], "."))
		}
		v, ok = m[k]
		if !ok {
			t.Fatalf("%s: missing", strings.Join(path[:i+1], "."))
		}
	}
	return v
}

// flagValue returns the value after flag in args ("" when absent).
func flagValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

// credentialFlags are flags that would carry a credential's value; ferry
// refuses them (docs/secrets.md), and no deployment file may use them.
var credentialFlags = []string{"--access-key", "--secret-key", "--src-access-key", "--src-secret-key",
	"--dst-access-key", "--dst-secret-key", "--aws-access-key-id", "--aws-secret-access-key", "--session-token"}

// checkNoCredentialsInArgs fails when args hold a credential flag or
// something that looks like a key or a password.
func checkNoCredentialsInArgs(t *testing.T, where string, args []string) {
	t.Helper()
	keyLike := regexp.MustCompile(`^(AKIA|ASIA)[A-Z0-9]{12,}$|^S[UAO][A-Z2-7]{50,}$|://[^/]*@`)
	for _, a := range args {
		for _, f := range credentialFlags {
			if a == f || strings.HasPrefix(a, f+"=") {
				t.Errorf("%s: credential flag %s in argv", where, f)
			}
		}
		if keyLike.MatchString(a) {
			t.Errorf("%s: argument %q looks like a credential", where, a)
		}
	}
}
