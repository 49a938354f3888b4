package testenv

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// SeaweedFSVersion is the pinned SeaweedFS module version (a pseudo-version:
// the module has no semver tags the module proxy serves; its own version
// is 4.53), built by scripts/install-tools.sh (keep the two in step).
const SeaweedFSVersion = "v0.0.0-20261109003541-7506e5f91cd6"

// seaweedStartTimeout bounds how long StartSeaweedFS waits: the master,
// volume server, filer and S3 gateway start one after the other.
const seaweedStartTimeout = 120 * time.Second

// SeaweedFSBinary returns the path of the pinned weed binary:
// $FERRY_SEAWEEDFS_BIN, else $FERRY_TOOLS_DIR/weed-<SeaweedFSVersion>/weed.
// When it is missing the test is skipped, or fails when $CI is set.
func SeaweedFSBinary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("FERRY_SEAWEEDFS_BIN")
	if bin == "" {
		bin = filepath.Join(ToolsDir(), "weed-"+SeaweedFSVersion, "weed")
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() {
		missing(t, fmt.Sprintf("SeaweedFS binary not found at %s: run scripts/install-tools.sh (or set FERRY_SEAWEEDFS_BIN)", bin))
	}
	return bin
}

// SeaweedFS is a running single-process SeaweedFS (`weed mini`: master,
// volume server, filer and S3 gateway) owned by one test.
type SeaweedFS struct {
	// Endpoint is the S3 gateway's URL, "http://127.0.0.1:PORT".
	Endpoint string
	// AccessKey and SecretKey are an admin identity's, random per server.
	AccessKey, SecretKey string
	// Region is the region to sign requests for, "us-east-1".
	Region string

	logFile string
}

// StartSeaweedFS starts `weed mini` in a fresh directory, every listener
// on a random free port of 127.0.0.1 (WebDAV, the admin UI, the Iceberg and
// Lance catalogs and telemetry off), with one admin identity in its S3
// configuration, and waits until the S3 gateway answers. The server is
// killed, and its process reaped, when the test ends.
func StartSeaweedFS(t testing.TB) *SeaweedFS {
	t.Helper()
	bin := SeaweedFSBinary(t)
	base := t.TempDir()
	sw := &SeaweedFS{
		AccessKey: "ferry" + randHex(t, 6),
		SecretKey: randHex(t, 20),
		Region:    "us-east-1",
		logFile:   filepath.Join(base, "weed.log"),
	}
	conf := map[string]any{"identities": []any{map[string]any{
		"name":        "ferry",
		"credentials": []any{map[string]string{"accessKey": sw.AccessKey, "secretKey": sw.SecretKey}},
		"actions":     []string{"Admin", "Read", "List", "Tagging", "Write"},
	}}}
	b, err := json.Marshal(conf)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	confFile := filepath.Join(base, "s3.json")
	writeFile(t, confFile, b)
	var lastErr error
	for range 3 {
		dir := filepath.Join(base, "data-"+randHex(t, 4))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		err := sw.start(t, bin, dir, confFile)
		if err == nil {
			return sw
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatalf("testenv: start seaweedfs: %v", lastErr)
	return nil
}

func (sw *SeaweedFS) start(t testing.TB, bin, dir, confFile string) error {
	t.Helper()
	port := func() string { return strconv.Itoa(freePort(t)) }
	s3Port := port()
	sw.Endpoint = "http://127.0.0.1:" + s3Port
	logf, err := os.Create(sw.logFile)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "mini",
		"-dir="+dir,
		"-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.port="+port(), "-master.port.grpc="+port(),
		"-volume.port="+port(), "-volume.port.grpc="+port(),
		"-filer.port="+port(), "-filer.port.grpc="+port(),
		"-s3.port="+s3Port, "-s3.port.grpc="+port(),
		"-s3.port.iceberg=0", "-s3.port.lance=0",
		"-s3.config="+confFile,
		"-webdav=false", "-admin.ui=false", "-admin.port.legacy=0",
		"-master.telemetry=false",
	)
	cmd.Dir = dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(seaweedStartTimeout)
	for {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("weed mini exited before its S3 gateway answered (%v):\n%s", err, sw.LogTail(4096))
		default:
		}
		if resp, err := client.Get(sw.Endpoint + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("seaweedfs S3 gateway not healthy at %s after %v:\n%s", sw.Endpoint, seaweedStartTimeout, sw.LogTail(4096))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Cleanup(stop)
	return nil
}

// LogTail returns up to the last n bytes of the server's log.
func (sw *SeaweedFS) LogTail(n int) string { return tailFile(sw.logFile, n) }

// Client returns an aws-sdk-go-v2 S3 client for the server with the admin
// identity's credentials and path-style addressing, for test assertions
// that bypass ferry's stores.
func (sw *SeaweedFS) Client() *s3.Client {
	return newS3Client(sw.Endpoint, sw.Region, sw.AccessKey, sw.SecretKey, nil)
}

// CreateBucket creates bucket name on the server.
func (sw *SeaweedFS) CreateBucket(t testing.TB, name string) {
	t.Helper()
	if err := createBucket(sw.Client(), name); err != nil {
		t.Fatalf("testenv: create bucket %s on seaweedfs: %v", name, err)
	}
}
