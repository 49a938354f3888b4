package metrics

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ferry-dev/ferry/internal/job"
)

// TestServe scrapes a server over HTTP: the job's counters by outcome,
// the worker's observations, and the process and Go collectors.
func TestServe(t *testing.T) {
	m := New()
	srv, err := m.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(t.Context())
	m.SetJob("J1", job.Counters{Copied: 3, CopiedBytes: 300, Skipped: 2, SkippedBytes: 20, Failed: 1, FailedBytes: 7, Deleted: 4, Unsafe: 1, TasksOpen: 2, TasksDone: 5})
	m.SetQueue("J1", 9, 1)
	m.ObjectStarted("J1")
	m.ObjectDone("J1", OutcomeCopied, 100, 20*time.Millisecond)
	m.Retry("J1", SideSource, "throttled")
	m.Heartbeat("host:1")

	resp, err := http.Get("http://" + srv.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, b)
	}
	get := func(name string, labels map[string]string) float64 {
		t.Helper()
		f := fams[name]
		if f == nil {
			t.Fatalf("no %s in\n%s", name, b)
		}
	next:
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			switch {
			case mt.Counter != nil:
				return mt.GetCounter().GetValue()
			case mt.Gauge != nil:
				return mt.GetGauge().GetValue()
			case mt.Histogram != nil:
				return float64(mt.GetHistogram().GetSampleCount())
			}
		}
		t.Fatalf("no %s%v", name, labels)
		return 0
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"ferry_objects_total", map[string]string{"job": "J1", "outcome": "copied"}, 3},
		{"ferry_objects_total", map[string]string{"job": "J1", "outcome": "skipped"}, 2},
		{"ferry_objects_total", map[string]string{"job": "J1", "outcome": "failed"}, 1},
		{"ferry_objects_total", map[string]string{"job": "J1", "outcome": "deleted"}, 4},
		{"ferry_objects_total", map[string]string{"job": "J1", "outcome": "unsafe"}, 1},
		{"ferry_bytes_total", map[string]string{"job": "J1", "outcome": "copied"}, 300},
		{"ferry_bytes_total", map[string]string{"job": "J1", "outcome": "skipped"}, 20},
		{"ferry_listing_tasks", map[string]string{"job": "J1", "state": "open"}, 2},
		{"ferry_listing_tasks", map[string]string{"job": "J1", "state": "done"}, 5},
		{"ferry_queue_backlog", map[string]string{"job": "J1"}, 9},
		{"ferry_dlq_messages", map[string]string{"job": "J1"}, 1},
		{"ferry_inflight_objects", map[string]string{"job": "J1"}, 0},
		{"ferry_transfer_duration_seconds", map[string]string{"job": "J1", "outcome": "copied"}, 1},
		{"ferry_object_size_bytes", map[string]string{"job": "J1"}, 1},
		{"ferry_retries_total", map[string]string{"job": "J1", "side": "source", "reason": "throttled"}, 1},
	} {
		if got := get(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if hb := get("ferry_worker_heartbeat_timestamp_seconds", map[string]string{"worker": "host:1"}); time.Since(time.Unix(int64(hb), 0)) > time.Minute {
		t.Errorf("heartbeat %v is not now", hb)
	}
	for _, n := range []string{"process_cpu_seconds_total", "go_goroutines"} {
		if fams[n] == nil {
			t.Errorf("no %s", n)
		}
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9090": true, "[::1]:9090": true, "localhost:9090": true,
		":9090": false, "0.0.0.0:9090": false, "10.0.0.1:9090": false, "bad": false,
	} {
		if got := Loopback(addr); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestServeBadAddress(t *testing.T) {
	if _, err := New().Serve("no-port"); err == nil {
		t.Error("no error for an address without a port")
	}
}
