package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is one MinIO process owned by the harness, data on tmpfs.
type server struct {
	name      string // "a" or "b": also the profile / rclone remote name
	endpoint  string // http://127.0.0.1:PORT
	accessKey string
	secretKey string
	dataDir   string
	logFile   string
	cmd       *exec.Cmd
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startMinIO starts a plain-HTTP MinIO on 127.0.0.1 with its data in a fresh
// directory under dataParent and waits until it is live. Prometheus metrics
// are public so the harness can count requests per run.
func startMinIO(bin, name, dataParent, logDir string) (*server, error) {
	dataDir, err := os.MkdirTemp(dataParent, "minio-"+name+"-")
	if err != nil {
		return nil, err
	}
	s := &server{
		name:      name,
		accessKey: "bench-" + name + "-" + randHex(4),
		secretKey: randHex(20),
		dataDir:   dataDir,
		logFile:   filepath.Join(logDir, "minio-"+name+".log"),
	}
	var lastErr error
	for range 3 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		cport, err := freePort()
		if err != nil {
			return nil, err
		}
		s.endpoint = "http://127.0.0.1:" + strconv.Itoa(port)
		logf, err := os.Create(s.logFile)
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, "server", dataDir,
			"--address", "127.0.0.1:"+strconv.Itoa(port),
			"--console-address", "127.0.0.1:"+strconv.Itoa(cport),
			"--certs-dir", filepath.Join(logDir, "no-certs"),
			"--quiet")
		cmd.Env = append(os.Environ(),
			"MINIO_ROOT_USER="+s.accessKey,
			"MINIO_ROOT_PASSWORD="+s.secretKey,
			"MINIO_BROWSER=off",
			"MINIO_UPDATE=off",
			"MINIO_CI_CD=1",
			"MINIO_PROMETHEUS_AUTH_TYPE=public",
		)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			logf.Close()
			return nil, err
		}
		logf.Close()
		s.cmd = cmd
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		deadline := time.Now().Add(60 * time.Second)
		live := false
		for time.Now().Before(deadline) && !live {
			select {
			case err := <-done:
				lastErr = fmt.Errorf("minio %s exited: %v (log %s)", name, err, s.logFile)
				deadline = time.Now()
				continue
			case <-time.After(200 * time.Millisecond):
			}
			resp, err := http.Get(s.endpoint + "/minio/health/live")
			if err == nil {
				resp.Body.Close()
				live = resp.StatusCode == 200
			}
		}
		if live {
			// Reap in the background; stop() kills the group.
			return s, nil
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if lastErr == nil {
			lastErr = fmt.Errorf("minio %s not live after 60s (log %s)", name, s.logFile)
		}
		b, _ := os.ReadFile(s.logFile)
		if !strings.Contains(string(b), "address already in use") {
			break
		}
	}
	os.RemoveAll(dataDir)
	return nil, lastErr
}

func (s *server) stop() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond)
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	os.RemoveAll(s.dataDir)
}

// cpuSeconds is the server's user+sys CPU so far, from /proc.
func (s *server) cpuSeconds() float64 { return procCPUSeconds(s.cmd.Process.Pid) }

// requests returns MinIO's per-API request counters (metrics v3: the v2
// node metrics are cached for ~10s, too stale to diff around one run).
func (s *server) requests(ctx context.Context) map[string]float64 {
	req, _ := http.NewRequestWithContext(ctx, "GET", s.endpoint+"/minio/metrics/v3/api/requests", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	const prefix = `minio_api_requests_total{name="`
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		rest := line[len(prefix):]
		api, _, ok := strings.Cut(rest, `"`)
		if !ok {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		out[api] += v
	}
	return out
}

func diffCounts(before, after map[string]float64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range after {
		if d := int64(v - before[k]); d > 0 {
			out[k] = d
		}
	}
	return out
}
