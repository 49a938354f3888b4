package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/audit"
)

// writeLog writes n records of job "j1" (every 10th skipped, every 100th
// failed, every 1000th unsafe, the rest copied) and returns its path and
// head.
func writeLog(t testing.TB, n int) (string, int64, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := audit.OpenOptions(path, audit.Options{SyncEvery: 1 << 30, SyncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range n {
		r := audit.Record{Job: "j1", Key: fmt.Sprintf("dir/%08d.bin", i), Size: int64(i % 5000), Outcome: audit.Copied,
			CRC32C: "AAAAAA==", MD5: "d41d8cd98f00b204e9800998ecf8427e", SrcETag: `"e"`, DstETag: `"e"`, Attempts: 1,
			Started: t0.Add(time.Duration(i) * time.Millisecond), Finished: t0.Add(time.Duration(i+1) * time.Millisecond)}
		r.Time = r.Finished
		switch {
		case i%1000 == 999:
			r.Outcome, r.Error = audit.SkippedUnsafe, "key has a .. segment"
		case i%100 == 99:
			r.Outcome, r.Error, r.Attempts = audit.Failed, "GET: access denied", 3
		case i%10 == 9:
			r.Outcome, r.Attempts = audit.Skipped, 0
		}
		if err := l.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	lines, last := l.Head()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path, lines, last
}

func opener(path string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return os.Open(path) }
}

func TestReportFormats(t *testing.T) {
	path, lines, last := writeLog(t, 2000)
	var copiedBytes int64
	for i := range 2000 {
		if i%10 != 9 {
			copiedBytes += int64(i % 5000)
		}
	}
	j := Job{ID: "j1", Command: "copy", Source: "s3://a", Destination: "/b", Status: "done", AuditLines: lines, AuditHash: last,
		Summary: &Summary{Copied: 1800, BytesCopied: copiedBytes, Skipped: 180, Failed: 18, Unsafe: 2}}
	ctx := context.Background()

	var jb bytes.Buffer
	if err := Write(ctx, &jb, opener(path), j, Options{Format: JSON}); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Header
		Objects []Row `json:"objects"`
	}
	if err := json.Unmarshal(jb.Bytes(), &rep); err != nil {
		t.Fatalf("JSON report: %v", err)
	}
	want := map[string]int64{Copied: 1800, Skipped: 180, Failed: 18, Unsafe: 2, Deleted: 0, "all": 2000}
	for o, n := range want {
		if rep.Totals[o].Objects != n {
			t.Errorf("totals[%s] = %d, want %d", o, rep.Totals[o].Objects, n)
		}
	}
	if !rep.Integrity.Verified || rep.Integrity.Lines != 2000 || len(rep.Differences) != 0 || len(rep.Objects) != 2000 {
		t.Fatalf("integrity %+v, differences %v, %d rows", rep.Integrity, rep.Differences, len(rep.Objects))
	}
	if r := rep.Objects[99]; r.Outcome != Failed || r.Reason != "GET: access denied" || r.Attempts != 3 || r.Line != 100 {
		t.Fatalf("row 100: %+v", r)
	}
	if r := rep.Objects[9]; r.Outcome != Skipped || r.Reason != ReasonSkipped {
		t.Fatalf("row 10: %+v", r)
	}
	if rep.Timing.Duration < 1.9 || rep.Timing.BytesPerSecond <= 0 || len(rep.Throughput.Buckets) == 0 {
		t.Fatalf("timing %+v, %d buckets", rep.Timing, len(rep.Throughput.Buckets))
	}
	var chartObjects int64
	for _, b := range rep.Throughput.Buckets {
		chartObjects += b.Objects
	}
	if chartObjects != 2000 {
		t.Fatalf("chart holds %d objects", chartObjects)
	}

	// A job summary that disagrees is named.
	j2 := j
	j2.Summary = &Summary{Copied: 1799, BytesCopied: copiedBytes, Skipped: 180, Failed: 18, Unsafe: 2}
	jb.Reset()
	if err := Write(ctx, &jb, opener(path), j2, Options{Format: JSON, Rows: NoRows}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(jb.String(), "objects copied: 1800 in the audit log, 1799 in the job's summary") {
		t.Fatalf("no difference named: %s", jb.String())
	}

	var cb bytes.Buffer
	if err := Write(ctx, &cb, opener(path), j, Options{Format: CSV, Rows: ProblemRows}); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&cb).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+20 || strings.Join(recs[0], ",") != strings.Join(csvColumns, ",") {
		t.Fatalf("CSV: %d records, header %v", len(recs), recs[0])
	}

	var hb bytes.Buffer
	if err := Write(ctx, &hb, opener(path), j, Options{Format: HTML}); err != nil {
		t.Fatal(err)
	}
	h := hb.String()
	for _, s := range []string{"<svg", "Audit log verified", "dir/00000099.bin", "GET: access denied", "</html>"} {
		if !strings.Contains(h, s) {
			t.Errorf("HTML lacks %q", s)
		}
	}
	for _, s := range []string{"<script", "src=", "href=", "http://", "https://"} {
		if strings.Contains(strings.ReplaceAll(h, `xmlns="http://www.w3.org/2000/svg"`, ""), s) {
			t.Errorf("HTML is not self-contained: has %q", s)
		}
	}
}

func TestReportBrokenChain(t *testing.T) {
	path, lines, last := writeLog(t, 50)
	b, _ := os.ReadFile(path)
	edited := bytes.Replace(b, []byte(`"dir/00000020.bin"`), []byte(`"dir/0000002X.bin"`), 1)
	bad := filepath.Join(t.TempDir(), "edited.jsonl")
	if err := os.WriteFile(bad, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.jsonl")
	if err := os.WriteFile(cut, b[:bytes.LastIndexByte(b[:len(b)-1], '\n')+1], 0o600); err != nil {
		t.Fatal(err)
	}
	j := Job{ID: "j1", AuditLines: lines, AuditHash: last}
	for _, tc := range []struct{ name, path, want string }{
		{"edited line", bad, "line 22"},
		{"last line removed", cut, "lines were removed from the end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := Write(context.Background(), &out, opener(tc.path), j, Options{Format: HTML})
			if !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), tc.want) || out.Len() != 0 {
				t.Fatalf("err %v, %d bytes written", err, out.Len())
			}
			if err := Write(context.Background(), &out, opener(tc.path), j, Options{Format: HTML, AllowBroken: true}); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "FAILED verification") {
				t.Fatal("broken log not flagged")
			}
		})
	}
}

// TestReportMemory writes the HTML report (every row) of a log of a million
// lines and checks that the live heap does not grow with the number of
// lines read: measured after a GC every 50,000 rows, it stays within a few
// MiB of where it started. (JSON and CSV rows take the same path.)
func TestReportMemory(t *testing.T) {
	n := 1_000_000
	if raceEnabled || testing.Short() {
		n = 200_000
	}
	path, lines, last := writeLog(t, n)
	for _, f := range []Format{HTML} {
		t.Run(string(f), func(t *testing.T) {
			m := &heapMeter{every: 50_000}
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			base := ms.HeapAlloc
			if err := Write(context.Background(), m, opener(path), Job{ID: "j1", AuditLines: lines, AuditHash: last}, Options{Format: f}); err != nil {
				t.Fatal(err)
			}
			if m.rows < int64(n) {
				t.Fatalf("%d rows written, want %d", m.rows, n)
			}
			growth := int64(m.peak) - int64(base)
			t.Logf("%s: %d rows, %d MiB written, live heap at most %d KiB above the start (%d samples)", f, m.rows, m.bytes>>20, growth>>10, m.samples)
			if growth > 8<<20 {
				t.Fatalf("live heap grew by %d KiB while writing %d rows", growth>>10, n)
			}
		})
	}
}

// heapMeter discards a report, counting its rows (newlines) and sampling
// the live heap every so many rows.
type heapMeter struct {
	every, rows, bytes, next int64
	peak                     uint64
	samples                  int
}

func (h *heapMeter) Write(p []byte) (int, error) {
	h.bytes += int64(len(p))
	h.rows += int64(bytes.Count(p, []byte("\n")))
	if h.rows >= h.next {
		h.next = h.rows + h.every
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		h.peak = max(h.peak, ms.HeapAlloc)
		h.samples++
	}
	return len(p), nil
}
