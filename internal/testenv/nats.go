package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSVersion is the pinned nats-server module version, installed by
// scripts/install-tools.sh.
const NATSVersion = "v2.15.2"

// NATSBinary returns the path of the pinned nats-server binary:
// $FERRY_NATS_BIN, else $FERRY_TOOLS_DIR/nats-server-<NATSVersion>/nats-server.
// Missing: the test fails under CI and is skipped elsewhere.
func NATSBinary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("FERRY_NATS_BIN")
	if bin == "" {
		bin = filepath.Join(ToolsDir(), "nats-server-"+NATSVersion, "nats-server")
	}
	if _, err := os.Stat(bin); err != nil {
		missing(t, fmt.Sprintf("nats-server not found at %s: run scripts/install-tools.sh", bin))
	}
	return bin
}

// NATS is a running nats-server process (one node of a cluster, or alone).
type NATS struct {
	// URL is the client URL, nats://127.0.0.1:PORT.
	URL  string
	Name string
	// StoreDir holds the node's JetStream files (not encrypted).
	StoreDir string

	bin, conf, log string
	mu             sync.Mutex
	cmd            *exec.Cmd
	waited         chan struct{}
}

// StartNATS starts a single JetStream-enabled nats-server on 127.0.0.1,
// stopped when the test ends.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	return StartNATSCluster(t, 1)[0]
}

// StartNATSCluster starts n JetStream nodes on 127.0.0.1, clustered when
// n > 1, and waits until JetStream answers on every node.
func StartNATSCluster(t testing.TB, n int) []*NATS {
	t.Helper()
	return startNATS(t, n, "")
}

// StartNATSConfig starts a single JetStream-enabled nats-server on
// 127.0.0.1 with extra appended to its configuration (an authorization
// block), stopped when the test ends.
func StartNATSConfig(t testing.TB, extra string) *NATS {
	t.Helper()
	return startNATS(t, 1, extra)[0]
}

func startNATS(t testing.TB, n int, extra string) []*NATS {
	t.Helper()
	bin := NATSBinary(t)
	dir := t.TempDir()
	ports := make([]int, n)
	cports := make([]int, n)
	for i := range n {
		ports[i], cports[i] = freePort(t), freePort(t)
	}
	var routes []string
	for i := range n {
		routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(cports[i]))
	}
	nodes := make([]*NATS, n)
	for i := range n {
		name := fmt.Sprintf("ferry-n%d", i+1)
		var conf strings.Builder
		fmt.Fprintf(&conf, "server_name: %s\nhost: 127.0.0.1\nport: %d\n", name, ports[i])
		fmt.Fprintf(&conf, "jetstream { store_dir: %q }\n", filepath.Join(dir, name))
		if n > 1 {
			fmt.Fprintf(&conf, "cluster { name: ferry, host: 127.0.0.1, port: %d, routes: [%s] }\n", cports[i], strings.Join(routes, ", "))
		}
		conf.WriteString(extra)
		nd := &NATS{URL: "nats://127.0.0.1:" + strconv.Itoa(ports[i]), Name: name, bin: bin, StoreDir: filepath.Join(dir, name),
			conf: filepath.Join(dir, name+".conf"), log: filepath.Join(dir, name+".log")}
		writeFile(t, nd.conf, []byte(conf.String()))
		if err := nd.Start(); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		t.Cleanup(nd.Kill)
		nodes[i] = nd
	}
	for _, nd := range nodes {
		if err := nd.waitReady(60 * time.Second); err != nil {
			t.Fatalf("testenv: %v\n%s", err, nd.LogTail(20))
		}
	}
	if n > 1 {
		// Wait for the meta group to elect a leader: until then no
		// JetStream API request is answered.
		if err := waitMetaLeader(nodes[0].URL, 2*time.Minute); err != nil {
			t.Fatalf("testenv: %v\n%s", err, nodes[0].LogTail(20))
		}
	}
	return nodes
}

// Start (re)starts the node with its configuration and store.
func (n *NATS) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	logf, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(n.bin, "-c", n.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start nats-server %s: %w", n.Name, err)
	}
	n.cmd = cmd
	n.waited = make(chan struct{})
	go func(waited chan struct{}) {
		_ = cmd.Wait()
		logf.Close()
		close(waited)
	}(n.waited)
	return nil
}

// Kill stops the node with SIGKILL and waits for it.
func (n *NATS) Kill() {
	n.mu.Lock()
	cmd, waited := n.cmd, n.waited
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-waited
}

// Restart kills and starts the node again, waiting until it accepts
// connections.
func (n *NATS) Restart() error {
	n.Kill()
	if err := n.Start(); err != nil {
		return err
	}
	return n.waitReady(60 * time.Second)
}

func (n *NATS) waitReady(d time.Duration) error {
	addr := strings.TrimPrefix(n.URL, "nats://")
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("nats-server %s not ready on %s after %s", n.Name, addr, d)
}

// LogTail returns the last n lines of the node's log.
func (n *NATS) LogTail(lines int) string {
	b, _ := os.ReadFile(n.log)
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// waitMetaLeader returns once the cluster behind url answers a JetStream
// account-info request (it has a meta leader), or after d.
func waitMetaLeader(url string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("connect %s: %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	for {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := js.AccountInfo(actx)
		acancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster at %s has no JetStream meta leader after %s: %w", url, d, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
