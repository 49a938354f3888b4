package cli

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFailureLogNamesKeySideEndpoint: an object that cannot be written
// (the destination has a directory where the file goes) is logged, by the
// worker and by the coordinator, with its key, the side and the side's
// location and endpoint.
func TestFailureLogNamesKeySideEndpoint(t *testing.T) {
	secretEnv(t)
	noAWSEnv(t)
	src := writeTree(t, map[string]string{"a": "a", "b": "b"})
	dst := writeTree(t, map[string]string{"a/keep": "in the way"})
	state := filepath.Join(t.TempDir(), "state")
	r := run(t, "", "copy", src, dst, "--state-dir", state, "--no-progress", "--log-format", "json", "--max-attempts", "1", "--no-reconcile")
	if r.code == 0 {
		t.Fatalf("copy onto a directory in the way succeeded:\n%s", r.err)
	}
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(r.err))
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec["msg"] != "object failed" {
			continue
		}
		lines++
		if rec["key"] != "a" || rec["side"] != "destination" || rec["endpoint"] != "local" || rec["location"] != dst || rec["err"] == "" {
			t.Errorf("failure line lacks the key, side, location or endpoint: %s", sc.Text())
		}
	}
	if lines < 2 {
		t.Fatalf("%d failure lines, want the worker's and the coordinator's:\n%s", lines, r.err)
	}
	if _, err := os.Stat(filepath.Join(dst, "b")); err != nil {
		t.Fatalf("the other object was not copied: %v", err)
	}
}
