package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ferry-dev/ferry/internal/testenv"
)

// oneMinIO is newEnv with a single plain-HTTP MinIO, profile "a".
func oneMinIO(t *testing.T) *testenv.MinIO {
	t.Helper()
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	creds, _ := testenv.WriteCredentialsFile(t, map[string]*testenv.MinIO{"a": m})
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	t.Setenv("FERRY_CONFIG_DIR", filepath.Join(t.TempDir(), "config"))
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"} {
		t.Setenv(k, "")
	}
	return m
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// scrape reads /metrics at addr; nil when it cannot.
func scrape(addr string) map[string]*dto.MetricFamily {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil
	}
	return fams
}

// value returns the value of the series of name with labels (a
// histogram's sample count); ok is false when there is none.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// TestMetricsAndLogs runs a real job (local directory to MinIO, on the
// embedded NATS server) with --metrics-addr, --log-format json and -v:
// the metrics, scraped over HTTP while it runs, advance, and at the end
// equal the job's summary by outcome; no label value is a key or the
// bucket; every log line is JSON with job, worker, level and msg, and
// each copied object has its line. Then --log-level warn and -q keep info
// lines out.
func TestMetricsAndLogs(t *testing.T) {
	m := oneMinIO(t)
	bucket := mkBucket(t, m)
	dir := t.TempDir()
	var keys []string
	// More objects than a batch (100), so that results arrive as the job
	// goes.
	for i := range 260 {
		k := fmt.Sprintf("a-%03d.bin", i)
		if i >= 60 {
			k = fmt.Sprintf("private-report-%03d.bin", i)
		}
		keys = append(keys, k)
		if err := os.WriteFile(filepath.Join(dir, k), randBytes(4<<10), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dst := "s3://" + bucket + "/pfx"
	// A first job copies a-*: the next finds them up to date (skipped).
	ferryJSON(t, 0, append([]string{"copy", dir, dst, "--include", "a-*"}, dstFlags(m)...)...)

	addr := freeAddr(t)
	final := make(chan map[string]*dto.MetricFamily, 1)
	metricsDone = func(a string) { final <- scrape(a) }
	t.Cleanup(func() { metricsDone = nil })

	var out bytes.Buffer
	var errb syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	done := make(chan int, 1)
	go func() {
		args := append([]string{"copy", dir, dst, "--metrics-addr", addr, "--log-format", "json", "-v",
			"--bwlimit", "200K", "--concurrency", "4", "--json", "--no-progress"}, dstFlags(m)...)
		done <- Main(ctx, args, Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	}()
	var during []float64
	var code int
wait:
	for {
		select {
		case code = <-done:
			break wait
		case <-time.After(200 * time.Millisecond):
			if fams := scrape(addr); fams != nil {
				if v, ok := value(fams, "ferry_objects_total", map[string]string{"outcome": "copied"}); ok {
					during = append(during, v)
				}
			}
		}
	}
	if code != 0 {
		t.Fatalf("copy: exit %d\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
	}
	var sum jobSummary
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		t.Fatalf("summary: %v: %s", err, out.String())
	}
	if sum.Copied != 200 || sum.Skipped != 60 {
		t.Fatalf("summary: %+v", sum)
	}

	// Counters advance while the job runs, never back.
	advanced := false
	for i := 1; i < len(during); i++ {
		if during[i] < during[i-1] {
			t.Errorf("copied went back: %v", during)
		}
		if during[i] > during[i-1] && during[i] < float64(sum.Copied) {
			advanced = true
		}
	}
	if !advanced {
		t.Errorf("no scrape saw the copied count advance during the job: %v", during)
	}

	// At the end, the metrics are the summary.
	var fams map[string]*dto.MetricFamily
	select {
	case fams = <-final:
	default:
		t.Fatal("no final scrape")
	}
	if fams == nil {
		t.Fatal("final scrape failed")
	}
	job := map[string]string{"job": sum.Job}
	for _, c := range []struct {
		name, outcome string
		want          int64
	}{
		{"ferry_objects_total", "copied", sum.Copied},
		{"ferry_objects_total", "skipped", sum.Skipped},
		{"ferry_objects_total", "failed", sum.Failed},
		{"ferry_objects_total", "deleted", sum.Deleted},
		{"ferry_objects_total", "unsafe", sum.UnsafeN},
		{"ferry_bytes_total", "copied", sum.BytesCopied},
		{"ferry_bytes_total", "skipped", sum.BytesSkip},
	} {
		l := map[string]string{"job": sum.Job, "outcome": c.outcome}
		if got, ok := value(fams, c.name, l); !ok || got != float64(c.want) {
			t.Errorf("%s%v = %v (present %v), summary says %d", c.name, l, got, ok, c.want)
		}
	}
	if got, _ := value(fams, "ferry_listed_objects_total", job); got != float64(sum.Listed) {
		t.Errorf("ferry_listed_objects_total = %v, want %d", got, sum.Listed)
	}
	if got, _ := value(fams, "ferry_listing_tasks", map[string]string{"job": sum.Job, "state": "open"}); got != 0 {
		t.Errorf("listing tasks open at the end: %v", got)
	}
	if got, _ := value(fams, "ferry_transfer_duration_seconds", map[string]string{"job": sum.Job, "outcome": "copied"}); got != float64(sum.Copied) {
		t.Errorf("transfer durations observed: %v, want %d", got, sum.Copied)
	}
	if got, _ := value(fams, "ferry_object_size_bytes", job); got != float64(sum.Copied) {
		t.Errorf("object sizes observed: %v, want %d", got, sum.Copied)
	}
	if got, ok := value(fams, "ferry_inflight_objects", job); !ok || got != 0 {
		t.Errorf("in flight at the end: %v (present %v)", got, ok)
	}
	for _, n := range []string{"ferry_queue_backlog", "ferry_dlq_messages", "ferry_worker_heartbeat_timestamp_seconds", "process_cpu_seconds_total", "go_goroutines"} {
		if _, ok := value(fams, n, nil); !ok {
			t.Errorf("no %s", n)
		}
	}
	// No label value names a key, the bucket or the prefix.
	for name, f := range fams {
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				v := l.GetValue()
				for _, k := range append([]string{bucket, "pfx", dir}, keys...) {
					if v == k || (len(k) > 4 && strings.Contains(v, k)) {
						t.Errorf("%s label %s=%q names %q", name, l.GetName(), v, k)
					}
				}
			}
		}
	}

	// Every log line is JSON with job, worker, level and msg; -v gives
	// one line per object with key, size, outcome and duration.
	perObject := map[string]bool{}
	n := 0
	sc := bufio.NewScanner(strings.NewReader(errb.String()))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "{") {
			continue // a message for people (job started, hints)
		}
		n++
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line is not JSON: %v: %s", err, line)
			continue
		}
		for _, f := range []string{"time", "level", "msg", "job", "worker"} {
			if _, ok := rec[f]; !ok {
				t.Errorf("log line without %s: %s", f, line)
			}
		}
		if rec["job"] != sum.Job || rec["worker"] == "" {
			t.Errorf("log line of job %v worker %v: %s", rec["job"], rec["worker"], line)
		}
		if strings.Count(line, `"job":`) != 1 {
			t.Errorf("job repeated: %s", line)
		}
		if rec["msg"] == "object" {
			for _, f := range []string{"key", "size", "outcome", "duration"} {
				if _, ok := rec[f]; !ok {
					t.Errorf("object line without %s: %s", f, line)
				}
			}
			k, _ := rec["key"].(string)
			perObject[k] = true
		}
	}
	if n == 0 {
		t.Fatalf("no JSON log lines in:\n%s", errb.String())
	}
	if len(perObject) != len(keys) {
		t.Errorf("%d objects logged, want %d:\n%s", len(perObject), len(keys), errb.String())
	}

	// --log-level warn and -q: no info lines.
	for _, quiet := range [][]string{{"--log-level", "warn"}, {"-q"}} {
		r := ferry(t, append(append([]string{"copy", dir, dst, "--log-format", "json", "-v", "--json"}, quiet...), dstFlags(m)...)...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d: %s", quiet, r.code, r.err)
		}
		for _, line := range strings.Split(r.err, "\n") {
			if strings.Contains(line, `"level":"INFO"`) || strings.Contains(line, `"level":"DEBUG"`) {
				t.Errorf("%v logged %s", quiet, line)
			}
		}
	}
}

func dstFlags(m *testenv.MinIO) []string {
	return []string{"--dst-endpoint", m.Endpoint, "--dst-profile", "a"}
}

// TestLogFlagsUsage: bad logging flags are usage errors (exit 2).
func TestLogFlagsUsage(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	t.Setenv("FERRY_CONFIG_DIR", filepath.Join(t.TempDir(), "config"))
	for _, args := range [][]string{
		{"--log-format", "xml"},
		{"--log-level", "loud"},
		{"-q", "--log-level", "info"},
		{"--metrics-addr", "9090"},
	} {
		r := ferry(t, append([]string{"copy", t.TempDir(), t.TempDir()}, args...)...)
		if r.code != ExitUsage {
			t.Errorf("%v: exit %d, want %d: %s", args, r.code, ExitUsage, r.err)
		}
	}
}
