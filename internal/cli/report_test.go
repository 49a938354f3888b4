package cli

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReportOfRealJobs runs real jobs (local to local, embedded server) and
// checks each report's totals against the job's JSON summary and against
// the audit log counted line by line; then the CSV and HTML forms, and the
// refusal of an edited log.
func TestReportOfRealJobs(t *testing.T) {
	secretEnv(t)
	noAWSEnv(t)
	files := map[string]string{"skip.tmp": "x"}
	for i := range 30 {
		files[fmt.Sprintf("d%d/f%02d.txt", i%3, i)] = strings.Repeat("y", i*100)
	}
	src := writeTree(t, files)
	dst := filepath.Join(t.TempDir(), "dst")

	type sum struct {
		ID      string `json:"job_id"`
		Copied  int64  `json:"objects_copied"`
		Skipped int64  `json:"objects_skipped"`
		Failed  int64  `json:"objects_failed"`
		Deleted int64  `json:"objects_deleted"`
		Bytes   int64  `json:"bytes_copied"`
		Lines   int64  `json:"audit_lines"`
	}
	runJob := func(args ...string) sum {
		t.Helper()
		r := mustRun(t, 0, "", append(args, "--json", "--no-progress")...)
		var s sum
		if err := json.Unmarshal([]byte(lastLine(r.out)), &s); err != nil || s.ID == "" {
			t.Fatalf("summary %q: %v", r.out, err)
		}
		return s
	}
	first := runJob("copy", src, dst, "--exclude", "*.tmp")
	if err := os.WriteFile(filepath.Join(src, "d0/f00.txt"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(2 * time.Second)
	_ = os.Chtimes(filepath.Join(src, "d0/f00.txt"), future, future)
	if err := os.Remove(filepath.Join(src, "d1/f01.txt")); err != nil {
		t.Fatal(err)
	}
	second := runJob("sync", src, dst, "--exclude", "*.tmp", "--delete")
	if first.Copied != 30 || second.Copied != 1 || second.Skipped != 28 || second.Deleted != 1 {
		t.Fatalf("jobs: %+v, %+v", first, second)
	}

	for _, s := range []sum{first, second} {
		r := mustRun(t, 0, "", "report", s.ID, "--format", "json")
		var rep struct {
			Job struct {
				ID string `json:"id"`
			} `json:"job"`
			Totals    map[string]struct{ Objects, Bytes int64 }
			Integrity struct {
				Verified bool
				Lines    int64
			}
			Differences []string
			Objects     []struct {
				Key, Outcome, CRC32C, Reason string
			}
		}
		if err := json.Unmarshal([]byte(r.out), &rep); err != nil {
			t.Fatalf("report: %v\n%s", err, r.out)
		}
		// The audit log, counted here.
		log := filepath.Join(os.Getenv("XDG_STATE_HOME"), "ferry", "audit", s.ID+".jsonl")
		count := map[string]int64{}
		f, err := os.Open(log)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var l struct{ Outcome string }
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatal(err)
			}
			count[l.Outcome]++
			count["all"]++
		}
		f.Close()
		for _, c := range []struct {
			name               string
			report, log, jsumm int64
		}{
			{"copied", rep.Totals["copied"].Objects, count["copied"], s.Copied},
			{"skipped", rep.Totals["skipped"].Objects, count["skipped"], s.Skipped},
			{"deleted", rep.Totals["deleted"].Objects, count["deleted"], s.Deleted},
			{"failed", rep.Totals["failed"].Objects, count["failed"], s.Failed},
			{"all lines", rep.Integrity.Lines, count["all"], s.Lines},
		} {
			if c.report != c.log || c.report != c.jsumm {
				t.Errorf("job %s %s: report %d, audit log %d, job summary %d", s.ID, c.name, c.report, c.log, c.jsumm)
			}
		}
		if rep.Totals["copied"].Bytes != s.Bytes || !rep.Integrity.Verified || len(rep.Differences) > 0 || int64(len(rep.Objects)) != count["all"] {
			t.Fatalf("job %s: report %s", s.ID, r.out)
		}
		for _, o := range rep.Objects {
			if o.Outcome == "copied" && o.CRC32C == "" {
				t.Errorf("copied %s without a checksum", o.Key)
			}
		}
	}

	// CSV and HTML, to files.
	dir := t.TempDir()
	mustRun(t, 0, "", "report", second.ID, "-o", filepath.Join(dir, "r.csv"))
	cf, err := os.Open(filepath.Join(dir, "r.csv"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(cf).ReadAll()
	cf.Close()
	if err != nil || len(recs) != 1+30 {
		t.Fatalf("CSV: %d records, %v", len(recs), err)
	}
	mustRun(t, 0, "", "report", second.ID, "-o", filepath.Join(dir, "r.html"))
	h, err := os.ReadFile(filepath.Join(dir, "r.html"))
	if err != nil || !strings.Contains(string(h), "d1/f01.txt") || !strings.Contains(string(h), "<svg") {
		t.Fatalf("HTML: %v\n%s", err, h)
	}

	// An edited log is refused (exit 1), and no report file is left.
	log := filepath.Join(os.Getenv("XDG_STATE_HOME"), "ferry", "audit", first.ID+".jsonl")
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(log, []byte(strings.Replace(string(b), `"attempts":1`, `"attempts":2`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, "", "report", first.ID, "-o", filepath.Join(dir, "bad.html"))
	if r.code != ExitFailed || !strings.Contains(r.err, "audit log failed verification") {
		t.Fatalf("edited log: exit %d: %s", r.code, r.err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.html")); err == nil {
		t.Fatal("a refused report left a file")
	}
	r = mustRun(t, 0, "", "report", first.ID, "--format", "html", "--allow-broken", "--objects", "none")
	if !strings.Contains(r.out, "FAILED verification") {
		t.Fatalf("--allow-broken: %s", r.out)
	}
}
