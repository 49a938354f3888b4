package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Case 7 (issue 14): case 2's copy (small objects, bucket to bucket, two
// endpoints) run by K `ferry worker` processes joined through a nats-server,
// to show how throughput scales with workers. The job is submitted the way
// users scale out (README, "Scaling out"; e2e TestExternalWorkers):
//
//	ferry worker --nats URL --allow-unauthenticated-nats --allow-endpoint A --allow-endpoint B --allow-profile a --allow-profile b   (K of them)
//	ferry copy s3://src-small s3://DST ... --nats URL --workers 0 --allow-unauthenticated-nats --json
//
// Every feature stays on (verification, audit log, provenance, the durable
// job on JetStream). All processes share the harness's FERRY_CONFIG_DIR,
// hence one signing key: a worker runs work signed by its own key, so it
// trusts the submitter without --trust (as in the e2e tests).
//
// Each measured run gets a fresh nats-server (JetStream, 127.0.0.1, store
// in the work directory on tmpfs) and K fresh workers, started and ready
// before the clock starts; the wall time is the submitting `ferry copy`'s,
// from start to exit. Client CPU and peak RSS are summed over the
// submitter and the K workers (each measured by `bench -measure`, the
// workers' rusage taken when they exit after SIGTERM).
//
// Tools: "ferry" (embedded, as in case 2, for reference) and "ferry-Kw" for
// each K: ferry-1w and ferry-2w by default, or those named in -tools.

// natsVersion is the pinned nats-server; keep in step with
// internal/testenv.NATSVersion and scripts/install-tools.sh.
const natsVersion = "v2.15.2"

func natsBin() string {
	if p := os.Getenv("FERRY_NATS_BIN"); p != "" {
		return p
	}
	return toolPath("nats-server", natsVersion)
}

// clusterWorkers returns K for the tool name "ferry-Kw", else 0.
func clusterWorkers(tool string) int {
	s, ok := strings.CutPrefix(tool, "ferry-")
	if !ok {
		return 0
	}
	if s, ok = strings.CutSuffix(s, "w"); !ok {
		return 0
	}
	k, err := strconv.Atoi(s)
	if err != nil || k < 1 || k > 64 {
		return 0
	}
	return k
}

// procCPUSeconds is a process's user+sys CPU so far, from /proc.
func procCPUSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the ")" of comm: state is field 3; utime 14, stime 15.
	str := string(b)
	i := strings.LastIndexByte(str, ')')
	f := strings.Fields(str[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// machineCPU returns the machine's busy and total CPU time so far, in
// jiffies, from /proc/stat (idle and iowait count as not busy).
func machineCPU() (busy, total float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0
	}
	for i, x := range f[1:] {
		if i >= 8 { // guest time is already in user
			break
		}
		v, _ := strconv.ParseFloat(x, 64)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}

// natsServer is one single-node JetStream nats-server owned by the harness.
type natsServer struct {
	url  string
	dir  string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startNATSServer starts a nats-server with JetStream on 127.0.0.1, its
// configuration, log and store in dir, and waits until it accepts
// connections.
func startNATSServer(bin, dir string) (*natsServer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nats.conf")
	body := fmt.Sprintf("server_name: ferry-bench\nhost: 127.0.0.1\nport: %d\njetstream { store_dir: %q }\n", port, filepath.Join(dir, "store"))
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return nil, err
	}
	n := &natsServer{url: "nats://127.0.0.1:" + strconv.Itoa(port), dir: dir, log: filepath.Join(dir, "nats.log"), done: make(chan struct{})}
	logf, err := os.Create(n.log)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	n.cmd = exec.Command(bin, "-c", conf)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start nats-server: %w", err)
	}
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-n.done:
			return nil, fmt.Errorf("nats-server exited: %s", n.logTail(3))
		default:
		}
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
			c.Close()
			return n, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.stop()
	return nil, fmt.Errorf("nats-server not ready on %s after 30s: %s", n.url, n.logTail(3))
}

func (n *natsServer) logTail(lines int) string {
	b, _ := os.ReadFile(n.log)
	return lastLines(string(b), lines)
}

func (n *natsServer) cpuSeconds() float64 { return procCPUSeconds(n.cmd.Process.Pid) }

func (n *natsServer) stop() {
	if n == nil || n.cmd == nil || n.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
	}
}

// workerProc is one `ferry worker` under `bench -measure`.
type workerProc struct {
	cmd   *exec.Cmd
	usage string // the measure helper's usage file
	log   string // the worker's stdout and stderr
	done  chan struct{}
	err   error // cmd.Wait's, once done is closed
}

// cluster is one measured run's nats-server and workers.
type cluster struct {
	nats    *natsServer
	workers []*workerProc
	dir     string
	keep    bool
}

// ensureSigningKey creates the shared signing key once, before any
// worker starts, so that concurrent first uses never race on it.
func (e *env) ensureSigningKey(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, e.ferry, "key", "show")
	cmd.Env = append(os.Environ(), e.awsEnv()...)
	cmd.Env = append(cmd.Env, "XDG_STATE_HOME="+filepath.Join(e.work, "state", "key"), "FERRY_CONFIG_DIR="+filepath.Join(e.work, "ferry-config"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ferry key show: %v: %s", err, lastLines(string(out), 3))
	}
	logf("signing key shared by the submitter and the workers: %s", strings.TrimSpace(lastLines(string(out), 1)))
	return nil
}

// startCluster starts a fresh nats-server and k workers, each ready
// (logged "worker started") before the next starts.
func (e *env) startCluster(ctx context.Context, sp caseSpec, tool string, round, k int) (*cluster, error) {
	tag := fmt.Sprintf("c%d-r%d-%s", sp.id, round+1, tool)
	cl := &cluster{dir: filepath.Join(e.work, "cluster", tag), keep: e.c.keep}
	var err error
	if cl.nats, err = startNATSServer(e.natsBin, cl.dir); err != nil {
		return nil, err
	}
	for i := range k {
		w, err := e.startWorker(ctx, cl, fmt.Sprintf("%s-w%d", tag, i+1))
		if err != nil {
			cl.stop()
			return nil, fmt.Errorf("worker %d: %w", i+1, err)
		}
		cl.workers = append(cl.workers, w)
	}
	return cl, nil
}

func (e *env) startWorker(ctx context.Context, cl *cluster, name string) (*workerProc, error) {
	w := &workerProc{usage: filepath.Join(e.work, "logs", name+".usage.json"), log: filepath.Join(e.work, "logs", name+".log"), done: make(chan struct{})}
	args := []string{"worker", "--nats", cl.nats.url, "--allow-unauthenticated-nats",
		"--allow-endpoint", e.a.endpoint, "--allow-endpoint", e.b.endpoint, "--allow-profile", e.a.name, "--allow-profile", e.b.name}
	if e.c.ferryConc > 0 {
		args = append(args, "--concurrency", fmt.Sprint(e.c.ferryConc))
	}
	logf, err := os.Create(w.log)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	w.cmd = exec.CommandContext(ctx, e.self, append([]string{"-measure", w.usage, "--", e.ferry}, args...)...)
	w.cmd.Env = append(os.Environ(), e.awsEnv()...)
	w.cmd.Env = append(w.cmd.Env, "XDG_STATE_HOME="+filepath.Join(e.work, "state", fmt.Sprint(time.Now().UnixNano())),
		"FERRY_CONFIG_DIR="+filepath.Join(e.work, "ferry-config"))
	w.cmd.Env = append(w.cmd.Env, e.c.ferryEnv...)
	w.cmd.Stdout, w.cmd.Stderr = logf, logf
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	w.cmd.Cancel = func() error { return syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL) }
	if err := w.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { w.err = w.cmd.Wait(); close(w.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(w.log)
		if strings.Contains(string(b), "worker started") {
			return w, nil
		}
		select {
		case <-w.done:
			return nil, fmt.Errorf("exited (%v): %s", w.err, lastLines(string(b), 3))
		case <-time.After(50 * time.Millisecond):
		}
	}
	w.kill()
	b, _ := os.ReadFile(w.log)
	return nil, fmt.Errorf("not started after 60s: %s", lastLines(string(b), 3))
}

func (w *workerProc) kill() {
	_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
	<-w.done
}

// stopWorkers interrupts every worker (SIGTERM to the measure helper,
// which passes it on), waits for them and returns their usage.
func (cl *cluster) stopWorkers() ([]Usage, error) {
	for _, w := range cl.workers {
		_ = w.cmd.Process.Signal(syscall.SIGTERM)
	}
	var us []Usage
	var errs []error
	deadline := time.After(90 * time.Second) // past the workers' 30 s drain timeout
	for i, w := range cl.workers {
		select {
		case <-w.done:
		case <-deadline:
			w.kill()
			errs = append(errs, fmt.Errorf("worker %d did not stop within 90s of SIGTERM", i+1))
			continue
		}
		var u Usage
		b, err := os.ReadFile(w.usage)
		if err == nil {
			err = json.Unmarshal(b, &u)
		}
		if err != nil {
			lb, _ := os.ReadFile(w.log)
			errs = append(errs, fmt.Errorf("worker %d: no usage measured (%v): %s", i+1, w.err, lastLines(string(lb), 3)))
			continue
		}
		us = append(us, u)
	}
	return us, errors.Join(errs...)
}

// stop kills whatever still runs and removes the run's NATS store.
func (cl *cluster) stop() {
	if cl == nil {
		return
	}
	for _, w := range cl.workers {
		select {
		case <-w.done:
		default:
			w.kill()
		}
	}
	cl.nats.stop()
	if !cl.keep {
		os.RemoveAll(cl.dir)
	}
}

// Scaling is case 7's verdict: throughput per worker count and where it
// stops growing.
type Scaling struct {
	Points []ScalePoint `json:"points"`
	// Ratio is objects/s with the most workers over objects/s with the
	// fewest (ferry-2w / ferry-1w by default); Ideal is their worker ratio.
	Ratio   float64 `json:"ratio"`
	Ideal   float64 `json:"ideal"`
	Verdict string  `json:"verdict"`
}

// ScalePoint is one tool's medians in case 7. Workers is 0 for the
// embedded ferry (its workers are goroutines of the one process).
type ScalePoint struct {
	Tool          string  `json:"tool"`
	Workers       int     `json:"workers"`
	Wall          float64 `json:"wall_median_s"`
	ObjectsPerSec float64 `json:"objects_per_s"`
	PerWorker     float64 `json:"objects_per_s_per_worker,omitempty"`
	ClientCPU     float64 `json:"client_cpu_s"`
	WorkerCPU     float64 `json:"worker_cpu_s"`
	ServerCPU     float64 `json:"minio_cpu_s"`
	NATSCPU       float64 `json:"nats_cpu_s"`
	RSS           float64 `json:"max_rss_mib"`
	// Busy is every measured process's CPU (client, MinIO, nats-server)
	// over the machine's cores × the wall time; MachineBusy the whole
	// machine's (all processes, from /proc/stat) during the run.
	Busy        float64 `json:"cpu_busy"`
	MachineBusy float64 `json:"machine_cpu_busy"`
}

// busyThreshold: at or above this share of the machine's cores, a run is
// called CPU-bound.
const busyThreshold = 0.85

func clusterScaling(cr *CaseResult, cpus int) *Scaling {
	sc := &Scaling{}
	for _, s := range cr.Summary {
		if s.OK == 0 {
			continue
		}
		p := ScalePoint{Tool: s.Tool, Workers: clusterWorkers(s.Tool), Wall: s.WallMedian, ClientCPU: s.CPUMedian, WorkerCPU: s.WorkerCPUMedian,
			ServerCPU: s.ServerCPU, NATSCPU: s.NATSCPUMedian, RSS: s.RSSMedian, MachineBusy: s.MachineBusyMedian}
		if p.Tool != "ferry" && p.Workers == 0 {
			continue
		}
		if p.Wall > 0 {
			p.ObjectsPerSec = float64(cr.Objects) / p.Wall
			p.Busy = (p.ClientCPU + p.ServerCPU + p.NATSCPU) / (float64(cpus) * p.Wall)
		}
		if p.Workers > 0 {
			p.PerWorker = p.ObjectsPerSec / float64(p.Workers)
		}
		sc.Points = append(sc.Points, p)
	}
	slices.SortStableFunc(sc.Points, func(a, b ScalePoint) int { return a.Workers - b.Workers })
	var ext []ScalePoint
	for _, p := range sc.Points {
		if p.Workers > 0 {
			ext = append(ext, p)
		}
	}
	if len(ext) < 2 {
		sc.Verdict = "fewer than two worker counts measured: no scaling to report"
		return sc
	}
	first, last := ext[0], ext[len(ext)-1]
	sc.Ratio, sc.Ideal = last.ObjectsPerSec/first.ObjectsPerSec, float64(last.Workers)/float64(first.Workers)
	var v strings.Builder
	fmt.Fprintf(&v, "%d workers vs %d: %.2f× the objects/s (ideal %.2f×). ", last.Workers, first.Workers, sc.Ratio, sc.Ideal)
	// The first step that gains less than a quarter of its ideal gain.
	sat, gain := -1, 0.0
	for i := 1; i < len(ext); i++ {
		gain = ext[i].ObjectsPerSec / ext[i-1].ObjectsPerSec
		ideal := float64(ext[i].Workers) / float64(ext[i-1].Workers)
		if gain < 1+0.25*(ideal-1) {
			sat = i
			break
		}
	}
	cause := func(p ScalePoint) string {
		s := fmt.Sprintf("with %d worker(s) the run's processes used %.0f%% of the machine's %d cores (client %.1f s + MinIO %.1f s + nats-server %.1f s of CPU in %.1f s wall)",
			p.Workers, p.Busy*100, cpus, p.ClientCPU, p.ServerCPU, p.NATSCPU, p.Wall)
		switch {
		case p.Busy >= busyThreshold:
			return s + ": CPU-bound, so more workers on this machine cannot go faster (the workers and both MinIO servers share the same cores; on separate machines the limit would move)"
		case p.MachineBusy >= busyThreshold:
			return s + fmt.Sprintf(" and the whole machine was %.0f%% busy, the rest by other processes: CPU-bound on a shared machine, so more workers could not go faster here; rerun on an idle machine to see the harness's own limit", p.MachineBusy*100)
		}
		return s + fmt.Sprintf(" (whole machine %.0f%%): not CPU-bound, so the limit is elsewhere (coordination through NATS, request latency, the job's pipeline)", p.MachineBusy*100)
	}
	if sat > 0 {
		fmt.Fprintf(&v, "Throughput saturates at %d worker(s): %d gained only %.2f×; %s.", ext[sat-1].Workers, ext[sat].Workers, gain, cause(ext[sat]))
	} else {
		fmt.Fprintf(&v, "It scales through %d workers (no saturation measured); %s.", last.Workers, cause(last))
	}
	sc.Verdict = v.String()
	return sc
}

// renderCluster is case 7's own table and verdict.
func renderCluster(b *strings.Builder, res *Results) {
	for _, cr := range res.Cases {
		if cr.Scaling == nil || len(cr.Scaling.Points) == 0 {
			continue
		}
		fmt.Fprintf(b, "Workers through a nats-server (case %d, %d objects; one fresh nats-server and K `ferry worker` processes per run, started before the clock; wall = the submitting `ferry copy --workers 0` from start to exit; client CPU and peak RSS summed over the submitter and its workers; CPU busy = client + MinIO + nats-server CPU / (%d cores × wall), and the whole machine's from /proc/stat):\n\n",
			cr.ID, cr.Objects, res.Machine.CPUs)
		b.WriteString("| Tool | Workers | Wall s (median) | Objects/s | Objects/s per worker | Client CPU s | of which workers | MinIO CPU s | nats-server CPU s | Peak RSS MiB (sum) | CPU busy (run / machine) |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, p := range cr.Scaling.Points {
			workers, per, wcpu, ncpu := "embedded", "", "", ""
			if p.Workers > 0 {
				workers, per, wcpu, ncpu = fmt.Sprint(p.Workers), fmt.Sprintf("%.0f", p.PerWorker), fmt.Sprintf("%.2f", p.WorkerCPU), fmt.Sprintf("%.2f", p.NATSCPU)
			}
			fmt.Fprintf(b, "| %s | %s | %.2f | %.0f | %s | %.2f | %s | %.1f | %s | %.0f | %.0f%% / %.0f%% |\n",
				p.Tool, workers, p.Wall, p.ObjectsPerSec, per, p.ClientCPU, wcpu, p.ServerCPU, ncpu, p.RSS, p.Busy*100, p.MachineBusy*100)
		}
		fmt.Fprintf(b, "\n%s\n\n", cr.Scaling.Verdict)
	}
}
