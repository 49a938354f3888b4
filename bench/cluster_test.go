package main

import (
	"strings"
	"testing"
)

func TestClusterWorkers(t *testing.T) {
	for tool, want := range map[string]int{"ferry-1w": 1, "ferry-2w": 2, "ferry-12w": 12, "ferry": 0, "ferry-pack": 0, "ferry-w": 0, "ferry-0w": 0, "rclone": 0, "raw": 0} {
		if got := clusterWorkers(tool); got != want {
			t.Errorf("clusterWorkers(%q) = %d, want %d", tool, got, want)
		}
	}
}

func TestClusterScaling(t *testing.T) {
	cr := &CaseResult{ID: 7, Objects: 10000, Summary: []ToolSummary{
		{Tool: "ferry", OK: 1, WallMedian: 15, CPUMedian: 9.5, ServerCPU: 19.8},
		{Tool: "ferry-2w", OK: 1, Workers: 2, WallMedian: 15.5, CPUMedian: 11, WorkerCPUMedian: 10, ServerCPU: 19, NATSCPUMedian: 1.5},
		{Tool: "ferry-1w", OK: 1, Workers: 1, WallMedian: 16, CPUMedian: 10.5, WorkerCPUMedian: 10, ServerCPU: 19.5, NATSCPUMedian: 1.2},
	}}
	sc := clusterScaling(cr, 2)
	if len(sc.Points) != 3 || sc.Points[0].Tool != "ferry" || sc.Points[1].Tool != "ferry-1w" || sc.Points[2].Tool != "ferry-2w" {
		t.Fatalf("points %+v", sc.Points)
	}
	if p := sc.Points[2]; p.ObjectsPerSec < 645 || p.ObjectsPerSec > 646 || p.PerWorker < 322 || p.PerWorker > 323 {
		t.Errorf("ferry-2w: %.1f objects/s, %.1f per worker", p.ObjectsPerSec, p.PerWorker)
	}
	if sc.Ratio < 1.03 || sc.Ratio > 1.04 || sc.Ideal != 2 {
		t.Errorf("ratio %.3f ideal %.1f", sc.Ratio, sc.Ideal)
	}
	for _, w := range []string{"2 workers vs 1: 1.03×", "saturates at 1 worker(s)", "CPU-bound"} {
		if !strings.Contains(sc.Verdict, w) {
			t.Errorf("verdict lacks %q: %s", w, sc.Verdict)
		}
	}
	var b strings.Builder
	renderCluster(&b, &Results{Machine: Machine{CPUs: 2}, Cases: []*CaseResult{{ID: 7, Objects: 10000, Scaling: sc}}})
	if !strings.Contains(b.String(), "| ferry-2w | 2 | 15.50 | 645 | 323 |") {
		t.Errorf("table:\n%s", b.String())
	}

	// Scaling well and not CPU-bound.
	cr.Summary[1].WallMedian, cr.Summary[1].ServerCPU, cr.Summary[1].CPUMedian = 8.5, 6, 4
	sc = clusterScaling(cr, 2)
	if !strings.Contains(sc.Verdict, "scales through 2 workers") || !strings.Contains(sc.Verdict, "not CPU-bound") {
		t.Errorf("verdict: %s", sc.Verdict)
	}

	// Not scaling, the run's processes not CPU-bound, the machine busy with
	// other processes.
	cr.Summary[1].WallMedian, cr.Summary[1].MachineBusyMedian = 15.5, 0.97
	sc = clusterScaling(cr, 2)
	if !strings.Contains(sc.Verdict, "saturates at 1 worker(s)") || !strings.Contains(sc.Verdict, "whole machine was 97% busy") || !strings.Contains(sc.Verdict, "shared machine") {
		t.Errorf("verdict: %s", sc.Verdict)
	}
}
