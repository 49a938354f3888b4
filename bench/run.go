package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Results is the JSON file's content.
type Results struct {
	Started       time.Time         `json:"started"`
	Finished      time.Time         `json:"finished"`
	Smoke         bool              `json:"smoke"`
	Machine       Machine           `json:"machine"`
	Settings      map[string]any    `json:"settings"`
	Tools         map[string]string `json:"tools"` // name -> version line
	Cases         []*CaseResult     `json:"cases"`
	Targets       []Target          `json:"targets,omitempty"`
	Notes         []string          `json:"notes,omitempty"`
	FerryFailures []string          `json:"ferry_failures,omitempty"`
	Profiles      map[string]string `json:"cpu_profiles,omitempty"`
}

// CaseResult holds every run of one case and the per-tool summary.
type CaseResult struct {
	ID      int               `json:"id"`
	Name    string            `json:"name"`
	Objects int64             `json:"objects"`
	Bytes   int64             `json:"bytes"`
	Runs    []Run             `json:"runs"`
	Summary []ToolSummary     `json:"summary"`
	Skipped map[string]string `json:"skipped,omitempty"`
	Scaling *Scaling          `json:"scaling,omitempty"` // case 7
}

// Run is one measured process.
type Run struct {
	Tool       string           `json:"tool"`
	Round      int              `json:"round"`
	Position   int              `json:"position"` // place in the round's order
	Wall       float64          `json:"wall_s"`
	User       float64          `json:"user_s"`
	Sys        float64          `json:"sys_s"`
	MaxRSSMiB  float64          `json:"max_rss_mib"`
	Exit       int              `json:"exit"`
	OK         bool             `json:"ok"`
	Error      string           `json:"error,omitempty"`
	DstObjects int64            `json:"dst_objects"`
	DstBytes   int64            `json:"dst_bytes"`
	ServerCPU  float64          `json:"server_cpu_s"` // both MinIO servers, user+sys
	Requests   map[string]int64 `json:"requests,omitempty"`
	Args       []string         `json:"args"`
	// Pack is a pack-mode run's summary (cases 8 and 9, tool ferry-pack);
	// Cross the requests that crossed to the destination side.
	Pack  *PackRun `json:"pack,omitempty"`
	Cross int64    `json:"requests_across,omitempty"`
	// Case 7 (tools ferry-Kw): the number of `ferry worker` processes;
	// User, Sys and MaxRSSMiB are then summed over the submitting process
	// and the workers, WorkerCPU is the workers' part, NATSCPU the
	// nats-server's CPU during the run, WorkerExits the workers' exit
	// codes after SIGTERM.
	Workers     int     `json:"workers,omitempty"`
	WorkerCPU   float64 `json:"worker_cpu_s,omitempty"`
	NATSCPU     float64 `json:"nats_cpu_s,omitempty"`
	WorkerExits []int   `json:"worker_exits,omitempty"`
	// MachineBusy is the whole machine's CPU use during the run (all
	// processes, /proc/stat): 1 = every core busy.
	MachineBusy float64 `json:"machine_cpu_busy"`
}

func (r Run) cpu() float64 { return r.User + r.Sys }

type env struct {
	c          config
	work       string
	a, b       *server
	ca, cb     *s3.Client
	ferry      string
	s5cmd      string
	rclone     string
	self       string
	credFile   string
	cfgFile    string
	rcloneConf string
	smallDir   string
	listDir    string
	natsBin    string // nats-server for case 7, "" when missing
	verified   map[int]bool
	packBytes  map[int]int64
}

// caseSpec says where a case reads and writes.
type caseSpec struct {
	id       int
	name     string
	srcBkt   string  // source bucket on srcSrv, or ""
	srcDir   string  // local source directory, or ""
	srcSrv   *server // nil for a local source
	dstSrv   *server
	dryRun   bool
	objects  int64
	bytes    int64
	tools    []string // in the harness's preferred order; rotated per round
	rawShape string   // "small", "tiny", "large" or "" (no ceiling run)
	skipped  map[string]string
}

func (e *env) client(s *server) *s3.Client {
	if s == e.a {
		return e.ca
	}
	return e.cb
}

func run(ctx context.Context, c config) (*Results, error) {
	res := &Results{Started: time.Now(), Smoke: c.smoke, Machine: machine(), Tools: map[string]string{}, Profiles: map[string]string{}}
	res.Settings = map[string]any{
		"rounds": c.rounds, "concurrency": c.conc, "ferry_concurrency": c.ferryConc, "s5cmd_numworkers": c.s5cmdConc, "part_size_mib": c.partMiB,
		"tiny_objects": c.tinyN, "tiny_size": c.tinySize,
		"raw_concurrency": c.rawConc, "raw_part_concurrency": c.rawPartConc,
		"small_objects": c.smallN, "small_prefixes": c.smallPrefixes, "small_size": c.smallSize,
		"large_objects": c.largeN, "large_size": c.largeSize, "listing_keys": c.listN,
		"work": c.workParent, "ferry_env": c.ferryEnv,
	}
	e := &env{c: c, verified: map[int]bool{}, packBytes: map[int]int64{}}
	var err error
	if e.ferry, err = filepath.Abs(c.ferryBin); err != nil || !isExec(e.ferry) {
		return nil, fmt.Errorf("ferry binary %s missing: run make build", c.ferryBin)
	}
	if e.self, err = os.Executable(); err != nil {
		return nil, err
	}
	minio := os.Getenv("FERRY_MINIO_BIN")
	if minio == "" {
		minio = toolPath("minio", minioVersion)
	}
	if !isExec(minio) {
		return nil, fmt.Errorf("MinIO %s missing: run scripts/install-tools.sh", minio)
	}
	want := func(t string) bool {
		for _, x := range c.tools {
			if x == t {
				return true
			}
		}
		return false
	}
	if want("s5cmd") {
		if p := toolPath("s5cmd", s5cmdVersion); isExec(p) {
			e.s5cmd = p
		} else {
			res.Notes = append(res.Notes, "s5cmd "+s5cmdVersion+" not installed ("+p+"): skipped; run scripts/install-tools.sh bench")
		}
	}
	if want("rclone") {
		if p := toolPath("rclone", rcloneVersion); isExec(p) {
			e.rclone = p
		} else {
			res.Notes = append(res.Notes, "rclone "+rcloneVersion+" not installed ("+p+"): skipped; run scripts/install-tools.sh bench")
		}
	}
	res.Tools["ferry"] = versionLine(e.ferry, "--version")
	res.Tools["minio"] = minioVersion
	if e.s5cmd != "" {
		res.Tools["s5cmd"] = s5cmdVersion + " (built from the module; reports " + versionLine(e.s5cmd, "version") + ")"
	}
	if e.rclone != "" {
		res.Tools["rclone"] = versionLine(e.rclone, "version")
	}
	for _, n := range res.Notes {
		logf("%s", n)
	}

	if e.work, err = os.MkdirTemp(c.workParent, "ferry-bench-"); err != nil {
		return nil, err
	}
	if c.keep {
		logf("work directory %s (kept)", e.work)
	} else {
		defer os.RemoveAll(e.work)
	}
	for _, d := range []string{"logs", "no-certs", "minio", "bin"} {
		if err := os.MkdirAll(filepath.Join(e.work, d), 0o700); err != nil {
			return nil, err
		}
	}
	// Measure one fixed ferry binary: others may rebuild bin/ferry while a
	// long run is going on.
	pinned := filepath.Join(e.work, "bin", "ferry")
	sum, err := copyFile(e.ferry, pinned)
	if err != nil {
		return nil, fmt.Errorf("copy ferry binary: %w", err)
	}
	e.ferry = pinned
	res.Tools["ferry"] += " (sha256 " + sum[:16] + ")"
	if e.a, err = startMinIO(minio, "a", filepath.Join(e.work, "minio"), e.work); err != nil {
		return nil, err
	}
	defer e.a.stop()
	if e.b, err = startMinIO(minio, "b", filepath.Join(e.work, "minio"), e.work); err != nil {
		return nil, err
	}
	defer e.b.stop()
	logf("MinIO a %s, b %s (data on %s)", e.a.endpoint, e.b.endpoint, c.workParent)
	if err := e.writeCredentials(); err != nil {
		return nil, err
	}
	e.ca = newClient(e.a.endpoint, e.a.accessKey, e.a.secretKey, 128)
	e.cb = newClient(e.b.endpoint, e.b.accessKey, e.b.secretKey, 128)

	specs, err := e.prepare(ctx, res)
	if err != nil {
		return res, err
	}
	for _, sp := range specs {
		cr := &CaseResult{ID: sp.id, Name: sp.name, Objects: sp.objects, Bytes: sp.bytes, Skipped: sp.skipped}
		res.Cases = append(res.Cases, cr)
		for round := range c.rounds {
			order := rotate(sp.tools, round)
			for pos, tool := range order {
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				r := e.runOne(ctx, sp, tool, round, pos, res)
				cr.Runs = append(cr.Runs, r)
				status := "ok"
				if !r.OK {
					status = "FAILED: " + r.Error
				}
				logf("case %d round %d %-6s wall %6.2fs cpu %6.2fs rss %6.1f MiB  %s", sp.id, round+1, tool, r.Wall, r.cpu(), r.MaxRSSMiB, status)
			}
		}
		cr.Summary = summarize(cr)
		if sp.id == 7 {
			cr.Scaling = clusterScaling(cr, res.Machine.CPUs)
			logf("case 7: %s", cr.Scaling.Verdict)
		}
		for _, tool := range []string{"ferry", "ferry-pack"} {
			if c.profileDir == "" || !contains(sp.tools, tool) {
				continue
			}
			name := fmt.Sprint(sp.id)
			if tool == "ferry-pack" {
				name += "-pack"
			}
			if p, err := e.profile(ctx, sp, tool, name); err != nil {
				res.Notes = append(res.Notes, fmt.Sprintf("case %s: profile: %v", name, err))
			} else {
				res.Profiles[name] = p
			}
		}
	}
	res.Targets = evaluateTargets(res)
	res.Finished = time.Now()
	return res, nil
}

// copyFile copies an executable and returns its sha256 (hex).
func copyFile(from, to string) (string, error) {
	b, err := os.ReadFile(from)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func versionLine(bin, arg string) string {
	out, err := exec.Command(bin, arg).CombinedOutput()
	if err != nil {
		return "unknown"
	}
	l, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return l
}

func (e *env) writeCredentials() error {
	e.credFile = filepath.Join(e.work, "aws-credentials")
	e.cfgFile = filepath.Join(e.work, "aws-config")
	e.rcloneConf = filepath.Join(e.work, "rclone.conf")
	var cred, cfg strings.Builder
	for _, s := range []*server{e.a, e.b} {
		fmt.Fprintf(&cred, "[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n\n", s.name, s.accessKey, s.secretKey)
		fmt.Fprintf(&cfg, "[profile %s]\nregion = us-east-1\n\n", s.name)
	}
	if err := os.WriteFile(e.credFile, []byte(cred.String()), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(e.cfgFile, []byte(cfg.String()), 0o600); err != nil {
		return err
	}
	return os.WriteFile(e.rcloneConf, nil, 0o600)
}

func largeKey(i int) string { return fmt.Sprintf("large/obj%d.bin", i) }

// prepare generates the datasets the selected cases need and returns their specs.
func (e *env) prepare(ctx context.Context, res *Results) ([]caseSpec, error) {
	c := e.c
	need := map[int]bool{}
	for _, id := range c.cases {
		need[id] = true
	}
	smallBytes := int64(c.smallN) * c.smallSize
	largeBytes := int64(c.largeN) * c.largeSize
	if need[1] || need[2] || need[7] {
		t := time.Now()
		if err := createBucket(ctx, e.ca, "src-small"); err != nil {
			return nil, err
		}
		if err := e.helper(ctx, e.rawEnv(e.a), "-raw-put", "-endpoint", e.a.endpoint, "-bucket", "src-small", "-shape", "small",
			"-n", fmt.Sprint(c.smallN), "-size", fmt.Sprint(c.smallSize), "-prefixes", fmt.Sprint(c.smallPrefixes), "-conc", "64"); err != nil {
			return nil, fmt.Errorf("seed src-small: %w", err)
		}
		logf("dataset (a): %d objects of %d KiB in %d prefixes on a, %.1fs", c.smallN, c.smallSize>>10, c.smallPrefixes, time.Since(t).Seconds())
	}
	if need[3] {
		t := time.Now()
		if err := createBucket(ctx, e.ca, "src-large"); err != nil {
			return nil, err
		}
		if err := e.helper(ctx, e.rawEnv(e.a), "-raw-put", "-endpoint", e.a.endpoint, "-bucket", "src-large", "-shape", "large",
			"-n", fmt.Sprint(c.largeN), "-size", fmt.Sprint(c.largeSize), "-part-size", fmt.Sprint(16<<20), "-conc", "16"); err != nil {
			return nil, fmt.Errorf("seed src-large: %w", err)
		}
		logf("dataset (b): %d objects of %d MiB on a, %.1fs", c.largeN, c.largeSize>>20, time.Since(t).Seconds())
	}
	if need[6] {
		t := time.Now()
		if err := createBucket(ctx, e.ca, "src-tiny"); err != nil {
			return nil, err
		}
		if err := e.helper(ctx, e.rawEnv(e.a), "-raw-put", "-endpoint", e.a.endpoint, "-bucket", "src-tiny", "-shape", "small",
			"-n", fmt.Sprint(c.tinyN), "-size", fmt.Sprint(c.tinySize), "-prefixes", fmt.Sprint(c.tinyPrefixes), "-conc", "64"); err != nil {
			return nil, fmt.Errorf("seed src-tiny: %w", err)
		}
		logf("dataset (d): %d objects of %d KiB in %d prefixes on a, %.1fs", c.tinyN, c.tinySize>>10, c.tinyPrefixes, time.Since(t).Seconds())
	}
	if need[4] {
		t := time.Now()
		e.smallDir = filepath.Join(e.work, "local-small")
		if err := e.helper(ctx, nil, "-write-small-dir", e.smallDir, fmt.Sprint(c.smallN), fmt.Sprint(c.smallSize), fmt.Sprint(c.smallPrefixes)); err != nil {
			return nil, err
		}
		logf("dataset (a) as local files in %s, %.1fs", e.smallDir, time.Since(t).Seconds())
	}
	if need[5] {
		t := time.Now()
		e.listDir = filepath.Join(e.work, "local-listing")
		if err := writeEmptyFiles(e.listDir, c.listN); err != nil {
			return nil, err
		}
		if err := createBucket(ctx, e.cb, "empty"); err != nil {
			return nil, err
		}
		logf("dataset (c): %d empty files in %s, %.1fs", c.listN, e.listDir, time.Since(t).Seconds())
	}

	if need[7] {
		if p := natsBin(); isExec(p) {
			e.natsBin = p
			if err := e.ensureSigningKey(ctx); err != nil {
				return nil, err
			}
		} else {
			res.Notes = append(res.Notes, "nats-server "+natsVersion+" not installed ("+p+"): case 7's ferry worker runs skipped; run scripts/install-tools.sh")
			logf("%s", res.Notes[len(res.Notes)-1])
		}
	}
	if need[8] {
		t := time.Now()
		if err := createBucket(ctx, e.ca, "src-logs"); err != nil {
			return nil, err
		}
		n, err := putGenerated(ctx, e.ca, "src-logs", c.packLogN, 64, logKey, logBody)
		if err != nil {
			return nil, fmt.Errorf("seed src-logs: %w", err)
		}
		e.packBytes[8] = n
		logf("dataset (pack a): %d JSON log objects, %d bytes, on a, %.1fs", c.packLogN, n, time.Since(t).Seconds())
	}
	if need[9] {
		t := time.Now()
		if err := createBucket(ctx, e.ca, "src-rand"); err != nil {
			return nil, err
		}
		n, err := putGenerated(ctx, e.ca, "src-rand", c.packRandN, 64, randKey, randBody)
		if err != nil {
			return nil, fmt.Errorf("seed src-rand: %w", err)
		}
		e.packBytes[9] = n
		logf("dataset (pack b): %d random 64 KiB objects on a, %.1fs", c.packRandN, time.Since(t).Seconds())
	}

	avail := []string{}
	for _, t := range c.tools {
		if t == "ferry" || (t == "s5cmd" && e.s5cmd != "") || (t == "rclone" && e.rclone != "") {
			avail = append(avail, t)
		}
	}
	var specs []caseSpec
	for _, id := range c.cases {
		sp := caseSpec{id: id, skipped: map[string]string{}}
		switch id {
		case 1:
			sp.name = fmt.Sprintf("small objects, bucket to bucket, same endpoint (%d × %d KiB)", c.smallN, c.smallSize>>10)
			sp.srcBkt, sp.srcSrv, sp.dstSrv = "src-small", e.a, e.a
			sp.objects, sp.bytes, sp.rawShape = int64(c.smallN), smallBytes, "small"
		case 2:
			sp.name = fmt.Sprintf("small objects, bucket to bucket, two endpoints (%d × %d KiB)", c.smallN, c.smallSize>>10)
			sp.srcBkt, sp.srcSrv, sp.dstSrv = "src-small", e.a, e.b
			sp.objects, sp.bytes, sp.rawShape = int64(c.smallN), smallBytes, "small"
		case 3:
			sp.name = fmt.Sprintf("large objects, two endpoints (%d × %d MiB)", c.largeN, c.largeSize>>20)
			sp.srcBkt, sp.srcSrv, sp.dstSrv = "src-large", e.a, e.b
			sp.objects, sp.bytes, sp.rawShape = int64(c.largeN), largeBytes, "large"
		case 4:
			sp.name = fmt.Sprintf("local directory upload (%d × %d KiB)", c.smallN, c.smallSize>>10)
			sp.srcDir, sp.dstSrv = e.smallDir, e.b
			sp.objects, sp.bytes, sp.rawShape = int64(c.smallN), smallBytes, "small"
		case 6:
			sp.name = fmt.Sprintf("tiny objects, bucket to bucket, two endpoints (%d × %d KiB)", c.tinyN, c.tinySize>>10)
			sp.srcBkt, sp.srcSrv, sp.dstSrv = "src-tiny", e.a, e.b
			sp.objects, sp.bytes, sp.rawShape = int64(c.tinyN), int64(c.tinyN)*c.tinySize, "tiny"
		case 5:
			sp.name = fmt.Sprintf("listing and plan only, --dry-run (%d keys, local dir to empty bucket)", c.listN)
			sp.srcDir, sp.dstSrv, sp.dryRun = e.listDir, e.b, true
			sp.objects = int64(c.listN)
		}
		if id == 7 {
			sp.name = fmt.Sprintf("small objects, two endpoints, K ferry worker processes through a nats-server (%d × %d KiB; as case 2)", c.smallN, c.smallSize>>10)
			sp.srcBkt, sp.srcSrv, sp.dstSrv = "src-small", e.a, e.b
			sp.objects, sp.bytes = int64(c.smallN), smallBytes
			if contains(c.tools, "ferry") {
				sp.tools = append(sp.tools, "ferry")
			}
			var ks []string
			for _, t := range c.tools {
				if clusterWorkers(t) > 0 {
					ks = append(ks, t)
				}
			}
			if len(ks) == 0 {
				ks = []string{"ferry-1w", "ferry-2w"}
			}
			for _, t := range ks {
				if e.natsBin == "" {
					sp.skipped[t] = "nats-server not installed"
					continue
				}
				sp.tools = append(sp.tools, t)
			}
			specs = append(specs, sp)
			continue
		}
		if id == 8 || id == 9 {
			sp.name = fmt.Sprintf("pack mode: %d JSON logs of 2-8 KiB, two endpoints, staging on the destination's", c.packLogN)
			sp.srcBkt, sp.objects = "src-logs", int64(c.packLogN)
			if id == 9 {
				sp.name = fmt.Sprintf("pack mode: %d random objects of 64 KiB, two endpoints, staging on the destination's", c.packRandN)
				sp.srcBkt, sp.objects = "src-rand", int64(c.packRandN)
			}
			sp.srcSrv, sp.dstSrv, sp.bytes = e.a, e.b, e.packBytes[id]
			sp.tools = []string{"ferry", "ferry-pack"}
			if e.rclone != "" && contains(c.tools, "rclone") {
				sp.tools = append(sp.tools, "rclone")
			}
			specs = append(specs, sp)
			continue
		}
		for _, t := range avail {
			if t == "s5cmd" && sp.srcSrv != nil && sp.srcSrv != sp.dstSrv {
				sp.skipped[t] = "s5cmd cannot copy between two endpoints"
				continue
			}
			sp.tools = append(sp.tools, t)
		}
		if sp.rawShape != "" && !c.noRaw {
			sp.tools = append(sp.tools, "raw")
			if sp.srcBkt != "" && sp.srcSrv != nil && sp.srcSrv != sp.dstSrv {
				sp.tools = append(sp.tools, "rawcopy")
			}
		}
		specs = append(specs, sp)
	}
	return specs, nil
}

// command builds the process for one tool on one case, writing to bucket
// dst. With measureTo set, the tool runs under `bench -measure measureTo`.
// natsURL is the nats-server of case 7's ferry-Kw tools, which submit the
// job there for the workers (--workers 0).
func (e *env) command(ctx context.Context, sp caseSpec, tool, dst, measureTo, natsURL string) (*exec.Cmd, error) {
	c := e.c
	var args, env []string
	var bin string
	if clusterWorkers(tool) > 0 {
		if natsURL == "" {
			return nil, fmt.Errorf("%s: no nats-server", tool)
		}
		bin = e.ferry
		args = e.ferryArgs("copy", sp, dst)
		args = append(args, "--part-size", fmt.Sprintf("%dMiB", c.partMiB), "--json",
			"--nats", natsURL, "--allow-unauthenticated-nats", "--workers", "0")
		env = append(e.awsEnv(), "XDG_STATE_HOME="+filepath.Join(e.work, "state", fmt.Sprint(time.Now().UnixNano())),
			"FERRY_CONFIG_DIR="+filepath.Join(e.work, "ferry-config"))
		env = append(env, e.c.ferryEnv...)
		tool = "" // built
	}
	switch tool {
	case "":
	case "ferry", "ferry-pack":
		bin = e.ferry
		args = e.ferryArgs("copy", sp, dst)
		args = append(args, "--part-size", fmt.Sprintf("%dMiB", c.partMiB), "--json")
		if tool == "ferry-pack" {
			args = append(args, "--pack", "--staging", "s3://"+dst+"-stg")
		}
		if sp.dryRun {
			args = append(args, "--dry-run")
		}
		// Its own state and config directories: never the user's, and a
		// fresh job store for every run.
		env = append(e.awsEnv(), "XDG_STATE_HOME="+filepath.Join(e.work, "state", fmt.Sprint(time.Now().UnixNano())),
			"FERRY_CONFIG_DIR="+filepath.Join(e.work, "ferry-config"))
		env = append(env, e.c.ferryEnv...)
	case "s5cmd":
		bin = e.s5cmd
		args = []string{"--endpoint-url", sp.dstSrv.endpoint, "--log", "error"}
		if c.s5cmdConc > 0 {
			args = append(args, "--numworkers", fmt.Sprint(c.s5cmdConc))
		}
		if sp.dryRun {
			args = append(args, "--dry-run")
		}
		src := sp.srcDir + "/*"
		if sp.srcBkt != "" {
			src = "s3://" + sp.srcBkt + "/*"
		}
		args = append(args, "cp", "--part-size", fmt.Sprint(c.partMiB), "--concurrency", "4", src, "s3://"+dst+"/")
		env = []string{
			"AWS_ACCESS_KEY_ID=" + sp.dstSrv.accessKey, "AWS_SECRET_ACCESS_KEY=" + sp.dstSrv.secretKey,
			"AWS_REGION=us-east-1", "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(e.work, "none"),
			"AWS_CONFIG_FILE=" + filepath.Join(e.work, "none"),
		}
	case "rclone":
		bin = e.rclone
		src := sp.srcDir
		if sp.srcBkt != "" {
			src = sp.srcSrv.name + ":" + sp.srcBkt
		}
		args = []string{"copy", src, sp.dstSrv.name + ":" + dst,
			"--transfers", fmt.Sprint(c.conc), "--checkers", fmt.Sprint(c.conc),
			"--s3-chunk-size", fmt.Sprintf("%dM", c.partMiB), "--s3-upload-concurrency", "4",
			"--s3-no-check-bucket", "-q", "--config", e.rcloneConf}
		if sp.dryRun {
			args = append(args, "--dry-run")
		}
		env = e.rcloneEnv()
	case "raw":
		bin = e.self
		shape := sp.rawShape
		if shape == "tiny" {
			shape = "small"
		}
		args = []string{"-raw-put", "-endpoint", sp.dstSrv.endpoint, "-bucket", dst, "-shape", shape}
		switch sp.rawShape {
		case "small":
			args = append(args, "-n", fmt.Sprint(c.smallN), "-size", fmt.Sprint(c.smallSize), "-prefixes", fmt.Sprint(c.smallPrefixes), "-conc", fmt.Sprint(c.rawConc))
		case "tiny":
			args = append(args, "-n", fmt.Sprint(c.tinyN), "-size", fmt.Sprint(c.tinySize), "-prefixes", fmt.Sprint(c.tinyPrefixes), "-conc", fmt.Sprint(c.rawConc))
		default:
			args = append(args, "-n", fmt.Sprint(c.largeN), "-size", fmt.Sprint(c.largeSize), "-part-size", fmt.Sprint(int64(c.partMiB)<<20), "-conc", fmt.Sprint(c.rawPartConc))
		}
		env = e.rawEnv(sp.dstSrv)
	case "rawcopy":
		bin = e.self
		shape := "small"
		if sp.rawShape == "large" {
			shape = "large"
		}
		conc := c.rawConc
		if shape == "large" {
			conc = c.rawPartConc
		}
		args = []string{"-raw-copy", "-src-endpoint", sp.srcSrv.endpoint, "-src-bucket", sp.srcBkt, "-endpoint", sp.dstSrv.endpoint, "-bucket", dst,
			"-shape", shape, "-conc", fmt.Sprint(conc), "-part-size", fmt.Sprint(int64(c.partMiB) << 20)}
		env = append(e.rawEnv(sp.dstSrv), "BENCH_SRC_ACCESS_KEY="+sp.srcSrv.accessKey, "BENCH_SRC_SECRET_KEY="+sp.srcSrv.secretKey)
	default:
		return nil, fmt.Errorf("unknown tool %s", tool)
	}
	var cmd *exec.Cmd
	if measureTo != "" {
		cmd = exec.CommandContext(ctx, e.self, append([]string{"-measure", measureTo, "--", bin}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, bin, args...)
	}
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd, nil
}

// helper runs the harness binary in one of its helper modes (unmeasured).
func (e *env) helper(ctx context.Context, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, e.self, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %v: %s", args[0], err, lastLines(out.String(), 3))
	}
	return nil
}

func (e *env) rawEnv(s *server) []string {
	return []string{"BENCH_ACCESS_KEY=" + s.accessKey, "BENCH_SECRET_KEY=" + s.secretKey}
}

func (e *env) awsEnv() []string {
	return []string{"AWS_SHARED_CREDENTIALS_FILE=" + e.credFile, "AWS_CONFIG_FILE=" + e.cfgFile,
		"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_PROFILE="}
}

func (e *env) rcloneEnv() []string {
	var env []string
	for _, s := range []*server{e.a, e.b} {
		p := "RCLONE_CONFIG_" + strings.ToUpper(s.name) + "_"
		env = append(env, p+"TYPE=s3", p+"PROVIDER=Minio", p+"ENDPOINT="+s.endpoint,
			p+"ACCESS_KEY_ID="+s.accessKey, p+"SECRET_ACCESS_KEY="+s.secretKey,
			p+"ENV_AUTH=false", p+"REGION=us-east-1")
	}
	return env
}

// ferryArgs: "ferry CMD SRC DST" with endpoint/profile flags, without --json.
func (e *env) ferryArgs(cmd string, sp caseSpec, dst string) []string {
	src := sp.srcDir
	if sp.srcBkt != "" {
		src = "s3://" + sp.srcBkt
	}
	args := []string{cmd, src, "s3://" + dst}
	if sp.srcSrv != nil {
		args = append(args, "--src-endpoint", sp.srcSrv.endpoint, "--src-profile", sp.srcSrv.name)
	}
	args = append(args, "--dst-endpoint", sp.dstSrv.endpoint, "--dst-profile", sp.dstSrv.name, "--no-progress")
	if e.c.ferryConc > 0 {
		args = append(args, "--concurrency", fmt.Sprint(e.c.ferryConc))
	}
	return args
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	buf []byte
	max int
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	if len(w.buf) > 2*w.max {
		w.buf = append(w.buf[:0], w.buf[len(w.buf)-w.max:]...)
	}
	return len(p), nil
}

func (w *tailWriter) String() string {
	if len(w.buf) > w.max {
		return string(w.buf[len(w.buf)-w.max:])
	}
	return string(w.buf)
}

func (e *env) runOne(ctx context.Context, sp caseSpec, tool string, round, pos int, res *Results) Run {
	r := Run{Tool: tool, Round: round + 1, Position: pos + 1}
	fail := func(format string, a ...any) Run {
		r.OK = false
		r.Error = fmt.Sprintf(format, a...)
		if tool == "ferry" || clusterWorkers(tool) > 0 {
			res.FerryFailures = append(res.FerryFailures, fmt.Sprintf("case %d round %d: %s", sp.id, round+1, r.Error))
		}
		return r
	}
	dstC := e.client(sp.dstSrv)
	dst := "empty"
	if !sp.dryRun {
		dst = fmt.Sprintf("c%d-r%d-%s", sp.id, round+1, tool)
		if err := createBucket(ctx, dstC, dst); err != nil {
			return fail("create bucket %s: %v", dst, err)
		}
		defer func() {
			if err := dropBucket(context.WithoutCancel(ctx), dstC, dst); err != nil {
				logf("drop bucket %s: %v", dst, err)
			}
			time.Sleep(500 * time.Millisecond) // let MinIO settle
		}()
	}
	if tool == "ferry-pack" {
		stg := dst + "-stg"
		if err := createBucket(ctx, dstC, stg); err != nil {
			return fail("create bucket %s: %v", stg, err)
		}
		defer func() {
			if err := dropBucket(context.WithoutCancel(ctx), dstC, stg); err != nil {
				logf("drop bucket %s: %v", stg, err)
			}
		}()
	}
	var cl *cluster
	natsURL := ""
	if k := clusterWorkers(tool); k > 0 {
		var err error
		if cl, err = e.startCluster(ctx, sp, tool, round, k); err != nil {
			return fail("start nats-server and %d worker(s): %v", k, err)
		}
		defer cl.stop()
		r.Workers, natsURL = k, cl.nats.url
	}
	cmdCtx := ctx
	if cl != nil {
		// A job no worker takes would wait forever: bound it.
		var cancel context.CancelFunc
		cmdCtx, cancel = context.WithTimeout(ctx, 2*time.Minute+time.Duration(sp.objects)*20*time.Millisecond)
		defer cancel()
	}
	usageFile := filepath.Join(e.work, "logs", fmt.Sprintf("c%d-r%d-%s.usage.json", sp.id, round+1, tool))
	cmd, err := e.command(cmdCtx, sp, tool, dst, usageFile, natsURL)
	if err != nil {
		return fail("%v", err)
	}
	r.Args = cmd.Args[4:]
	stdout := &tailWriter{max: 64 << 10}
	stderr := &tailWriter{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = stdout, stderr

	reqA, reqB := e.a.requests(ctx), e.b.requests(ctx)
	cpu0 := e.a.cpuSeconds() + e.b.cpuSeconds()
	var natsCPU0 float64
	if cl != nil {
		natsCPU0 = cl.nats.cpuSeconds()
	}
	mBusy0, mTotal0 := machineCPU()
	start := time.Now()
	runErr := cmd.Run()
	r.Wall = time.Since(start).Seconds()
	r.ServerCPU = e.a.cpuSeconds() + e.b.cpuSeconds() - cpu0
	if mBusy, mTotal := machineCPU(); mTotal > mTotal0 {
		r.MachineBusy = (mBusy - mBusy0) / (mTotal - mTotal0)
	}
	var workers []Usage
	var workersErr error
	if cl != nil {
		r.NATSCPU = cl.nats.cpuSeconds() - natsCPU0
		workers, workersErr = cl.stopWorkers()
	}
	r.Requests = map[string]int64{}
	for k, v := range diffCounts(reqA, e.a.requests(ctx)) {
		r.Requests["a:"+k] = v
	}
	for k, v := range diffCounts(reqB, e.b.requests(ctx)) {
		r.Requests["b:"+k] = v
	}
	var u Usage
	if b, err := os.ReadFile(usageFile); err != nil || json.Unmarshal(b, &u) != nil {
		return fail("no usage measured: %v: %s", runErr, lastLines(stderr.String(), 3))
	}
	r.Wall, r.User, r.Sys, r.MaxRSSMiB, r.Exit = u.Wall, u.User, u.Sys, float64(u.MaxRSSKiB)/1024, u.Exit
	for _, w := range workers {
		r.User, r.Sys, r.MaxRSSMiB = r.User+w.User, r.Sys+w.Sys, r.MaxRSSMiB+float64(w.MaxRSSKiB)/1024
		r.WorkerCPU += w.User + w.Sys
		r.WorkerExits = append(r.WorkerExits, w.Exit)
	}
	logFile := filepath.Join(e.work, "logs", fmt.Sprintf("c%d-r%d-%s.log", sp.id, round+1, tool))
	_ = os.WriteFile(logFile, []byte("$ "+strings.Join(cmd.Args, " ")+"\n--- stdout (tail)\n"+stdout.String()+"\n--- stderr (tail)\n"+stderr.String()), 0o644)
	if runErr != nil {
		return fail("%v: %s", runErr, lastLines(stderr.String()+stdout.String(), 3))
	}
	if workersErr != nil {
		return fail("workers: %v", workersErr)
	}

	// Check the result, untimed.
	if sp.dryRun {
		n, _, err := countBucket(ctx, dstC, dst)
		if err != nil || n != 0 {
			return fail("dry run wrote to the destination: %d objects (%v)", n, err)
		}
	} else {
		r.DstObjects, r.DstBytes, err = countBucket(ctx, dstC, dst)
		if err != nil {
			return fail("list destination: %v", err)
		}
		if r.DstObjects != sp.objects || r.DstBytes != sp.bytes {
			return fail("destination has %d objects / %d bytes, want %d / %d", r.DstObjects, r.DstBytes, sp.objects, sp.bytes)
		}
	}
	if tool == "ferry-pack" {
		p, err := parsePackSummary(stdout.String())
		if err != nil {
			return fail("ferry --json summary: %v", err)
		}
		if n, _, err := countBucket(ctx, dstC, dst+"-stg"); err != nil || n != 0 {
			return fail("staging holds %d objects after the job (%v)", n, err)
		}
		r.Pack = p
	}
	if sp.id >= 6 {
		r.Cross = crossRequests(r)
	}
	if strings.HasPrefix(tool, "ferry") {
		var sum struct {
			Listed int64 `json:"objects_listed"`
			Copied int64 `json:"objects_copied"`
			Failed int64 `json:"objects_failed"`
			Error  string
		}
		out := strings.TrimSpace(stdout.String())
		if i := strings.LastIndexByte(out, '\n'); i >= 0 {
			out = out[i+1:]
		}
		if err := json.Unmarshal([]byte(out), &sum); err != nil {
			return fail("ferry --json summary: %v: %q", err, out)
		}
		if sum.Failed != 0 || sum.Copied != sp.objects || sum.Error != "" {
			return fail("ferry summary: copied %d (want %d), failed %d, error %q", sum.Copied, sp.objects, sum.Failed, sum.Error)
		}
		vk := sp.id // each of ferry's modes is verified once per case
		if tool == "ferry-pack" {
			vk = -sp.id
		} else if k := clusterWorkers(tool); k > 0 {
			vk = 1000*k + sp.id
		}
		if !sp.dryRun && !e.verified[vk] {
			e.verified[vk] = true
			if err := e.verify(ctx, sp, dst); err != nil {
				return fail("ferry verify: %v", err)
			}
		}
	}
	r.OK = true
	return r
}

// verify runs `ferry verify` on a ferry result (untimed).
func (e *env) verify(ctx context.Context, sp caseSpec, dst string) error {
	cmd := exec.CommandContext(ctx, e.ferry, e.ferryArgs("verify", sp, dst)...)
	cmd.Env = append(os.Environ(), e.awsEnv()...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%v: %s", err, lastLines(out.String(), 5))
	}
	logf("case %d: ferry verify ok (%.1fs): %s", sp.id, time.Since(t).Seconds(), lastLines(out.String(), 1))
	return nil
}

// profile runs ferry once more with FERRY_CPUPROFILE and FERRY_MEMPROFILE
// (not measured).
func (e *env) profile(ctx context.Context, sp caseSpec, tool, name string) (string, error) {
	if err := os.MkdirAll(e.c.profileDir, 0o755); err != nil {
		return "", err
	}
	path, _ := filepath.Abs(filepath.Join(e.c.profileDir, "case"+name+".pprof"))
	dstC := e.client(sp.dstSrv)
	dst := "empty"
	if !sp.dryRun {
		dst = fmt.Sprintf("c%d-profile", sp.id)
		if err := createBucket(ctx, dstC, dst); err != nil {
			return "", err
		}
		defer dropBucket(context.WithoutCancel(ctx), dstC, dst)
	}
	if tool == "ferry-pack" {
		stg := dst + "-stg"
		if err := createBucket(ctx, dstC, stg); err != nil {
			return "", err
		}
		defer dropBucket(context.WithoutCancel(ctx), dstC, stg)
	}
	cmd, err := e.command(ctx, sp, tool, dst, "", "")
	if err != nil {
		return "", err
	}
	cmd.Env = append(cmd.Env, "FERRY_CPUPROFILE="+path, "FERRY_MEMPROFILE="+strings.TrimSuffix(path, ".pprof")+".allocs.pprof")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%v: %s", err, lastLines(out.String(), 3))
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		return "", errors.New("no profile written (does this ferry honour FERRY_CPUPROFILE?)")
	}
	logf("case %s: CPU profile %s", name, path)
	return path, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
