// Command bench is ferry's benchmark harness (issue 5): it starts two MinIO
// servers with their data on tmpfs, generates the datasets, and runs ferry
// and the pinned peers (s5cmd, rclone) side by side on five cases, in
// alternating order, reporting medians, ferry/peer speed ratios and the raw
// client ceiling as a markdown table (stdout) and a JSON file.
//
//	go run ./bench -out bench/results/latest.json     # full run, ~15 min
//	go run ./bench -smoke                             # CI: tiny datasets, 1 round
//	go run ./bench -cases 8,9                         # pack mode (issue 11)
//	go run ./bench -cases 7 -tools ferry              # 1 and 2 ferry workers through a nats-server (issue 14)
//
// See docs/performance.md. Peers are installed by
// `scripts/install-tools.sh bench`; a missing peer is skipped with a note.
// The run fails (exit 1) when any ferry run fails, its result is
// incomplete, or `ferry verify` finds a difference.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Pinned peers; keep in step with scripts/install-tools.sh.
const (
	s5cmdVersion  = "v2.3.0"
	rcloneVersion = "v1.76.0"
	minioVersion  = "v0.0.0-20260212201848-7aac2a2c5b7c"
)

type config struct {
	smoke       bool
	rounds      int
	cases       []int
	tools       []string
	conc        int
	ferryConc   int
	s5cmdConc   int
	partMiB     int
	rawConc     int
	rawPartConc int
	workParent  string
	out         string
	ferryBin    string
	keep        bool
	noRaw       bool
	profileDir  string
	ferryEnv    []string

	smallN, smallPrefixes int
	smallSize             int64
	tinyN, tinyPrefixes   int
	tinySize              int64
	largeN                int
	largeSize             int64
	listN                 int
	packLogN, packRandN   int
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "-raw-put":
			os.Exit(rawPutMain(os.Args[2:]))
		case "-raw-copy":
			os.Exit(rawCopyMain(os.Args[2:]))
		case "-write-small-dir":
			os.Exit(writeSmallDirMain(os.Args[2:]))
		case "-measure":
			os.Exit(measureMain(os.Args[2:]))
		}
	}
	var c config
	var cases, tools string
	var tinyN int
	flag.BoolVar(&c.smoke, "smoke", false, "tiny datasets, 1 round, peers optional (CI)")
	flag.IntVar(&tinyN, "tiny-n", 0, "objects of case 6 (0: 100,000; 1,000 with -smoke)")
	flag.IntVar(&c.rounds, "rounds", 3, "rounds per case (tool order rotates every round)")
	flag.StringVar(&cases, "cases", "1,2,3,4,5", "cases to run (6: 100,000 tiny objects across endpoints; 7: case 2 with 1 and 2 `ferry worker` processes through a nats-server; 8, 9: pack mode; not in the default set)")
	flag.StringVar(&tools, "tools", "ferry,s5cmd,rclone", "tools to run (ferry always first in the list of ratios); case 7 also takes ferry-Kw, K worker processes (default ferry-1w,ferry-2w)")
	flag.IntVar(&c.conc, "concurrency", 64, "objects in flight for rclone (--transfers/--checkers)")
	flag.IntVar(&c.ferryConc, "ferry-concurrency", 0, "ferry --concurrency; 0: ferry's default (no flag), as users run it")
	flag.IntVar(&c.s5cmdConc, "s5cmd-numworkers", 0, "s5cmd --numworkers; 0: s5cmd's default (no flag)")
	flag.IntVar(&c.partMiB, "part-size", 16, "multipart part size in MiB for every tool")
	flag.IntVar(&c.rawConc, "raw-concurrency", 128, "PUTs in flight for the raw ceiling client (small objects)")
	flag.IntVar(&c.rawPartConc, "raw-part-concurrency", 32, "parts in flight for the raw ceiling client (large objects)")
	flag.StringVar(&c.workParent, "work", "/dev/shm", "tmpfs directory for MinIO data and local datasets")
	flag.StringVar(&c.out, "out", "", "JSON results file (default bench/results/bench-DATE.json, smoke: in the work dir)")
	flag.StringVar(&c.ferryBin, "ferry", "bin/ferry", "ferry binary")
	flag.BoolVar(&c.keep, "keep", false, "keep the work directory")
	flag.BoolVar(&c.noRaw, "no-raw", false, "skip the raw-client ceiling runs")
	flag.StringVar(&c.profileDir, "cpuprofile-dir", "", "after the measured rounds, run ferry once more per case with FERRY_CPUPROFILE and FERRY_MEMPROFILE (allocations) into this directory")
	var ferryEnv string
	flag.StringVar(&ferryEnv, "ferry-env", "", "extra environment of every ferry process only, comma-separated K=V (e.g. GOGC=200; MinIO and the peers keep theirs)")
	flag.Parse()
	for _, kv := range strings.Split(ferryEnv, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			fatalf("-ferry-env %q: want K=V pairs separated by commas", ferryEnv)
		}
		c.ferryEnv = append(c.ferryEnv, kv)
	}
	for _, s := range strings.Split(cases, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 9 {
			fatalf("-cases %q: want numbers 1..9 (6: tiny objects, 7: ferry workers through a nats-server, 8 and 9: pack mode)", cases)
		}
		c.cases = append(c.cases, n)
	}
	for _, t := range strings.Split(tools, ",") {
		t = strings.TrimSpace(t)
		if t != "ferry" && t != "s5cmd" && t != "rclone" && clusterWorkers(t) == 0 {
			fatalf("-tools: unknown tool %q", t)
		}
		c.tools = append(c.tools, t)
	}
	if c.smoke {
		casesSet := false
		flag.Visit(func(f *flag.Flag) { casesSet = casesSet || f.Name == "cases" })
		if !casesSet {
			c.cases = append(c.cases, 7) // 200 objects, 1 and 2 workers: a few seconds
		}
		c.rounds = 1
		c.smallN, c.smallPrefixes, c.smallSize = 200, 5, 16<<10
		c.largeN, c.largeSize = 2, 24<<20
		c.listN = 10000
		c.tinyN, c.tinyPrefixes, c.tinySize = 1000, 10, 4<<10
		c.packLogN, c.packRandN = 500, 100
	} else {
		c.smallN, c.smallPrefixes, c.smallSize = 10000, 50, 16<<10
		c.largeN, c.largeSize = 4, 256<<20
		c.listN = 1000000
		c.tinyN, c.tinyPrefixes, c.tinySize = 100000, 100, 4<<10
		c.packLogN, c.packRandN = 20000, 2000
	}
	if tinyN > 0 {
		c.tinyN = tinyN
	}
	if c.rounds < 1 {
		fatalf("-rounds must be >= 1")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, c)
	if res != nil {
		md := renderMarkdown(c, res)
		fmt.Print(md)
		if c.out == "" && !c.smoke {
			c.out = filepath.Join("bench", "results", "bench-"+res.Started.Format("20060102-150405")+".json")
		}
		if c.out != "" {
			if err := os.MkdirAll(filepath.Dir(c.out), 0o755); err == nil {
				b, _ := json.MarshalIndent(res, "", "  ")
				if werr := os.WriteFile(c.out, append(b, '\n'), 0o644); werr != nil {
					fmt.Fprintf(os.Stderr, "bench: %v\n", werr)
				} else {
					_ = os.WriteFile(strings.TrimSuffix(c.out, ".json")+".md", []byte(md), 0o644)
					fmt.Fprintf(os.Stderr, "bench: wrote %s (and .md)\n", c.out)
				}
			}
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: FAILED: %v\n", err)
		os.Exit(1)
	}
	if res != nil && len(res.FerryFailures) > 0 {
		fmt.Fprintf(os.Stderr, "bench: FAILED: ferry failed %d run(s):\n  %s\n", len(res.FerryFailures), strings.Join(res.FerryFailures, "\n  "))
		os.Exit(1)
	}
}

func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", a...)
	os.Exit(2)
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
}

func toolsDir() string {
	if d := os.Getenv("FERRY_TOOLS_DIR"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "ferry", "tools")
}

func toolPath(name, version string) string {
	return filepath.Join(toolsDir(), name+"-"+version, name)
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// Machine describes where the numbers came from.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	MemGiB    int    `json:"mem_gib"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	LoadAvg   string `json:"loadavg_at_start"`
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				_, v, _ := strings.Cut(l, ":")
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb)
		m.MemGiB = int((kb + 1<<19) >> 20)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.TrimSpace(string(b))
	}
	return m
}

func rotate[T any](s []T, k int) []T {
	if len(s) == 0 {
		return s
	}
	k %= len(s)
	return append(slices.Clone(s[k:]), s[:k]...)
}
