package main

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// ToolSummary is one tool's medians over its successful runs of a case.
type ToolSummary struct {
	Tool       string  `json:"tool"`
	Runs       int     `json:"runs"`
	OK         int     `json:"ok"`
	WallMedian float64 `json:"wall_median_s"`
	WallMin    float64 `json:"wall_min_s"`
	WallMax    float64 `json:"wall_max_s"`
	CPUMedian  float64 `json:"cpu_median_s"`
	RSSMedian  float64 `json:"max_rss_median_mib"`
	// FerrySpeedup is the median over rounds of this tool's wall time divided
	// by ferry's in the same round: >1 means ferry was faster. For "raw" it
	// is the fraction of the ceiling ferry reached.
	FerrySpeedup   float64          `json:"ferry_speedup,omitempty"`
	RatioOfMedians float64          `json:"ratio_of_medians,omitempty"`
	CPUPerObjectMs float64          `json:"cpu_per_object_ms"`
	ServerCPU      float64          `json:"server_cpu_median_s"`
	Requests       map[string]int64 `json:"requests_first_ok_run,omitempty"`
	// Case 7's ferry-Kw tools: K, and the medians of the workers' CPU (part
	// of CPUMedian) and of the nats-server's.
	Workers         int     `json:"workers,omitempty"`
	WorkerCPUMedian float64 `json:"worker_cpu_median_s,omitempty"`
	NATSCPUMedian   float64 `json:"nats_cpu_median_s,omitempty"`
	// MachineBusyMedian: the whole machine's CPU use during the runs
	// (1 = every core busy), other processes included.
	MachineBusyMedian float64 `json:"machine_cpu_busy_median"`
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

func summarize(cr *CaseResult) []ToolSummary {
	var order []string
	byTool := map[string][]Run{}
	for _, r := range cr.Runs {
		if _, ok := byTool[r.Tool]; !ok {
			order = append(order, r.Tool)
		}
		byTool[r.Tool] = append(byTool[r.Tool], r)
	}
	// ferry first, raw last.
	sort.SliceStable(order, func(i, j int) bool { return rank(order[i]) < rank(order[j]) })
	ferryWall := map[int]float64{}
	for _, r := range byTool["ferry"] {
		if r.OK {
			ferryWall[r.Round] = r.Wall
		}
	}
	var out []ToolSummary
	var ferryMedian float64
	for _, t := range order {
		s := ToolSummary{Tool: t, Runs: len(byTool[t])}
		var wall, cpu, rss, scpu, ratios, wcpu, ncpu, mbusy []float64
		for _, r := range byTool[t] {
			if !r.OK {
				continue
			}
			s.OK++
			wall = append(wall, r.Wall)
			cpu = append(cpu, r.cpu())
			rss = append(rss, r.MaxRSSMiB)
			scpu = append(scpu, r.ServerCPU)
			wcpu = append(wcpu, r.WorkerCPU)
			ncpu = append(ncpu, r.NATSCPU)
			mbusy = append(mbusy, r.MachineBusy)
			s.Workers = r.Workers
			if s.Requests == nil {
				s.Requests = r.Requests
			}
			if fw, ok := ferryWall[r.Round]; ok && fw > 0 {
				ratios = append(ratios, r.Wall/fw)
			}
		}
		if s.OK == 0 {
			out = append(out, s)
			continue
		}
		s.WallMedian, s.CPUMedian, s.RSSMedian, s.ServerCPU = median(wall), median(cpu), median(rss), median(scpu)
		s.WallMin, s.WallMax = slices.Min(wall), slices.Max(wall)
		s.MachineBusyMedian = median(mbusy)
		if s.Workers > 0 {
			s.WorkerCPUMedian, s.NATSCPUMedian = median(wcpu), median(ncpu)
		}
		if cr.Objects > 0 {
			s.CPUPerObjectMs = s.CPUMedian / float64(cr.Objects) * 1000
		}
		if t == "ferry" {
			ferryMedian = s.WallMedian
		} else if len(ratios) > 0 {
			s.FerrySpeedup = median(ratios)
			if ferryMedian > 0 {
				s.RatioOfMedians = s.WallMedian / ferryMedian
			}
		}
		out = append(out, s)
	}
	return out
}

func rank(t string) int {
	switch t {
	case "ferry":
		return 0
	case "ferry-pack":
		return 1
	case "s5cmd":
		return 1
	case "rclone":
		return 2
	case "raw":
		return 3
	}
	if k := clusterWorkers(t); k > 0 {
		return 4 + k // after the peers, by worker count; raw copy last
	}
	return 1000
}

// Target is one of issue 5's targets, evaluated.
type Target struct {
	Case      int     `json:"case"`
	What      string  `json:"what"`
	Want      float64 `json:"want"`
	Got       float64 `json:"got"`
	Met       bool    `json:"met"`
	Status    string  `json:"status"`
	Evaluated bool    `json:"evaluated"`
}

func findSummary(res *Results, id int, tool string) *ToolSummary {
	for _, c := range res.Cases {
		if c.ID != id {
			continue
		}
		for i := range c.Summary {
			if c.Summary[i].Tool == tool && c.Summary[i].OK > 0 {
				return &c.Summary[i]
			}
		}
	}
	return nil
}

func evaluateTargets(res *Results) []Target {
	var ts []Target
	// atLeast: got >= want is good. atMost: got <= want is good.
	atLeast := func(id int, what string, want float64, got *float64) {
		t := Target{Case: id, What: what, Want: want}
		if got == nil || math.IsNaN(*got) {
			t.Status = "not measured"
		} else {
			t.Evaluated, t.Got = true, *got
			t.Met = t.Got >= want
			if t.Met {
				t.Status = fmt.Sprintf("met (%.2f ≥ %.2f)", t.Got, want)
			} else {
				t.Status = fmt.Sprintf("MISSED by %.0f%% (%.2f < %.2f)", (1-t.Got/want)*100, t.Got, want)
			}
		}
		ts = append(ts, t)
	}
	atMost := func(id int, what string, want float64, got *float64, unit string) {
		t := Target{Case: id, What: what, Want: want}
		if got == nil || math.IsNaN(*got) {
			t.Status = "not measured"
		} else {
			t.Evaluated, t.Got = true, *got
			t.Met = t.Got <= want
			if t.Met {
				t.Status = fmt.Sprintf("met (%.3g%s ≤ %.3g%s)", t.Got, unit, want, unit)
			} else {
				t.Status = fmt.Sprintf("MISSED by %.0f%% (%.3g%s > %.3g%s)", (t.Got/want-1)*100, t.Got, unit, want, unit)
			}
		}
		ts = append(ts, t)
	}
	speed := func(id int, peer string) *float64 {
		s := findSummary(res, id, peer)
		if s == nil || findSummary(res, id, "ferry") == nil || s.FerrySpeedup == 0 {
			return nil
		}
		v := s.FerrySpeedup
		return &v
	}
	has := func(id int) bool {
		for _, c := range res.Cases {
			if c.ID == id {
				return true
			}
		}
		return false
	}
	if has(1) {
		atLeast(1, "ferry speed ≥ 1.2× s5cmd", 1.2, speed(1, "s5cmd"))
		atLeast(1, "ferry speed ≥ 2× rclone", 2, speed(1, "rclone"))
		var cpuRatio *float64
		if f, s := findSummary(res, 1, "ferry"), findSummary(res, 1, "s5cmd"); f != nil && s != nil && s.CPUMedian > 0 {
			v := f.CPUMedian / s.CPUMedian
			cpuRatio = &v
		}
		atMost(1, "client CPU per object ≤ s5cmd's (ferry/s5cmd)", 1, cpuRatio, "×")
	}
	if has(2) {
		atLeast(2, "ferry speed ≥ 2× rclone", 2, speed(2, "rclone"))
		atLeast(2, "ferry ≥ 70% of raw-client ceiling", 0.7, speed(2, "raw"))
		atLeast(2, "ferry ≥ 70% of the raw GET+PUT copy (same reads and writes, no checks)", 0.7, speed(2, "rawcopy"))
	}
	if has(3) {
		atLeast(3, "ferry speed ≥ rclone", 1, speed(3, "rclone"))
		atLeast(3, "ferry ≥ 80% of raw-client ceiling", 0.8, speed(3, "raw"))
		atLeast(3, "ferry ≥ 80% of the raw GET+PUT copy (same reads and writes, no checks)", 0.8, speed(3, "rawcopy"))
	}
	if has(4) {
		atLeast(4, "ferry speed ≥ 1.2× s5cmd", 1.2, speed(4, "s5cmd"))
	}
	if has(5) {
		var rssMB *float64
		if f := findSummary(res, 5, "ferry"); f != nil {
			v := f.RSSMedian * (1 << 20) / 1e6
			rssMB = &v
		}
		atMost(5, "ferry peak RSS < 100 MB", 100, rssMB, " MB")
		atLeast(5, "ferry faster than rclone --dry-run", 1, speed(5, "rclone"))
	}
	return ts
}

func toolLabel(t string) string {
	switch t {
	case "raw":
		return "raw PUT (ceiling)"
	case "rawcopy":
		return "raw GET+PUT (copy ceiling)"
	}
	return t
}

func renderMarkdown(c config, res *Results) string {
	var b strings.Builder
	kind := "full"
	if res.Smoke {
		kind = "smoke"
	}
	fmt.Fprintf(&b, "## ferry benchmark (%s), %s\n\n", kind, res.Started.Format("2006-01-02 15:04 MST"))
	m := res.Machine
	fmt.Fprintf(&b, "Machine: %d CPUs (%s), %d GiB RAM, Linux %s, %s; load average at start %s. MinIO %s ×2 on tmpfs, 127.0.0.1.\n\n",
		m.CPUs, m.CPUModel, m.MemGiB, m.Kernel, m.GoVersion, m.LoadAvg, res.Tools["minio"])
	var tv []string
	for _, t := range []string{"ferry", "s5cmd", "rclone"} {
		if v, ok := res.Tools[t]; ok {
			tv = append(tv, fmt.Sprintf("%s: `%s`", t, v))
		}
	}
	inFlight := func(n int, dflt string) string {
		if n > 0 {
			return fmt.Sprint(n)
		}
		return dflt
	}
	fmt.Fprintf(&b, "Tools: %s. Settings: %d rounds (tool order rotated each round); objects in flight: ferry %s, s5cmd %s, rclone %d (--transfers and --checkers); %d MiB parts.\n\n",
		strings.Join(tv, ", "), c.rounds, inFlight(c.ferryConc, "its default (no --concurrency)"), inFlight(c.s5cmdConc, "its default (no --numworkers)"), c.conc, c.partMiB)
	if len(c.ferryEnv) > 0 {
		fmt.Fprintf(&b, "ferry's extra environment (-ferry-env): %s.\n\n", strings.Join(c.ferryEnv, " "))
	}
	fmt.Fprintf(&b, "| Case | Tool | Wall s (median) | min–max | Client CPU s | CPU ms/object | Peak RSS MiB | Server CPU s | ferry speed-up vs tool | OK runs |\n")
	fmt.Fprintf(&b, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, cr := range res.Cases {
		for _, s := range cr.Summary {
			sp := ""
			if (s.Tool == "raw" || s.Tool == "rawcopy") && s.FerrySpeedup > 0 {
				sp = fmt.Sprintf("ferry at %.0f%% of ceiling", s.FerrySpeedup*100)
			} else if s.FerrySpeedup > 0 {
				sp = fmt.Sprintf("%.2f×", s.FerrySpeedup)
			}
			if s.OK == 0 {
				fmt.Fprintf(&b, "| %d | %s | failed | | | | | | | 0/%d |\n", cr.ID, toolLabel(s.Tool), s.Runs)
				continue
			}
			fmt.Fprintf(&b, "| %d | %s | %.2f | %.2f–%.2f | %.2f | %.3f | %.0f | %.1f | %s | %d/%d |\n",
				cr.ID, toolLabel(s.Tool), s.WallMedian, s.WallMin, s.WallMax, s.CPUMedian, s.CPUPerObjectMs, s.RSSMedian, s.ServerCPU, sp, s.OK, s.Runs)
		}
		for t, why := range cr.Skipped {
			fmt.Fprintf(&b, "| %d | %s | n/a: %s | | | | | | | |\n", cr.ID, t, why)
		}
	}
	fmt.Fprintf(&b, "\nCases: ")
	for i, cr := range res.Cases {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%d. %s", cr.ID, cr.Name)
	}
	b.WriteString(".\n\n")
	b.WriteString("Speed-up = the tool's wall time / ferry's wall time in the same round, median over rounds (>1: ferry faster). Client CPU = user+sys of the process (getrusage); peak RSS = ru_maxrss.")
	for _, cr := range res.Cases {
		if cr.ID == 7 {
			b.WriteString(" ferry-Kw (case 7): ferry with K `ferry worker` processes through a nats-server; client CPU and peak RSS summed over the submitting process and the K workers.")
			break
		}
	}
	b.WriteString("\n\n")
	if !res.Smoke && len(res.Targets) > 0 {
		b.WriteString("| Case | Target | Result |\n|---|---|---|\n")
		for _, t := range res.Targets {
			fmt.Fprintf(&b, "| %d | %s | %s |\n", t.Case, t.What, t.Status)
		}
		b.WriteString("\n")
	}
	renderPack(&b, res)
	renderCluster(&b, res)
	b.WriteString("Requests per run (first successful run; a: source server, b: destination server):\n\n")
	for _, cr := range res.Cases {
		for _, s := range cr.Summary {
			if len(s.Requests) == 0 {
				continue
			}
			keys := make([]string, 0, len(s.Requests))
			for k := range s.Requests {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var parts []string
			for _, k := range keys {
				parts = append(parts, fmt.Sprintf("%s=%d", k, s.Requests[k]))
			}
			fmt.Fprintf(&b, "- case %d %s: %s\n", cr.ID, toolLabel(s.Tool), strings.Join(parts, " "))
		}
	}
	for _, n := range res.Notes {
		fmt.Fprintf(&b, "\nNote: %s\n", n)
	}
	if len(res.FerryFailures) > 0 {
		fmt.Fprintf(&b, "\n**ferry failures:**\n")
		for _, f := range res.FerryFailures {
			fmt.Fprintf(&b, "- %s\n", f)
		}
	}
	return b.String()
}
