package testenv

import (
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

// VersityGWVersion is the pinned Versity Gateway module version, installed
// by scripts/install-tools.sh (keep the two in step).
const VersityGWVersion = "v1.8.0"

// VersityGWBinary returns the path of the pinned Versity Gateway binary:
// $FERRY_VERSITYGW_BIN, else $FERRY_TOOLS_DIR/versitygw-<VersityGWVersion>/versitygw.
// When it is missing the test is skipped, or fails when $CI is set.
func VersityGWBinary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("FERRY_VERSITYGW_BIN")
	if bin == "" {
		bin = filepath.Join(ToolsDir(), "versitygw-"+VersityGWVersion, "versitygw")
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() {
		missing(t, fmt.Sprintf("Versity Gateway binary not found at %s: run scripts/install-tools.sh (or set FERRY_VERSITYGW_BIN)", bin))
	}
	return bin
}

// VersityGW is a running Versity Gateway (versitygw) with a posix backend,
// owned by one test: an S3 server that stores each bucket as a directory
// and each object as a file, its metadata in extended attributes.
type VersityGW struct {
	// Endpoint is the server's URL, "http://127.0.0.1:PORT".
	Endpoint string
	// AccessKey and SecretKey are the root credentials, random per server.
	AccessKey, SecretKey string
	// Region is the region to sign requests for, "us-east-1".
	Region string
	// Dir is the backend's directory: one sub-directory per bucket.
	Dir string

	logFile string
}

// StartVersityGW starts a Versity Gateway with a posix backend in a fresh
// directory on a random free port of 127.0.0.1 and waits until it is
// healthy. The server is killed, and its process reaped, when the test
// ends. The directory's file system must support user extended attributes.
func StartVersityGW(t testing.TB) *VersityGW {
	t.Helper()
	bin := VersityGWBinary(t)
	base := t.TempDir()
	v := &VersityGW{
		AccessKey: "ferry-" + randHex(t, 6),
		SecretKey: randHex(t, 20),
		Region:    "us-east-1",
		Dir:       filepath.Join(base, "posix"),
		logFile:   filepath.Join(base, "versitygw.log"),
	}
	if err := os.MkdirAll(v.Dir, 0o700); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	var lastErr error
	for range 3 {
		port := freePort(t)
		v.Endpoint = "http://127.0.0.1:" + strconv.Itoa(port)
		err := v.start(t, bin, port)
		if err == nil {
			return v
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatalf("testenv: start versitygw: %v", lastErr)
	return nil
}

func (v *VersityGW) start(t testing.TB, bin string, port int) error {
	t.Helper()
	logf, err := os.Create(v.logFile)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin,
		"--port", "127.0.0.1:"+strconv.Itoa(port),
		"--access", v.AccessKey,
		"--secret", v.SecretKey,
		"--region", v.Region,
		"--health", "/health",
		"--quiet",
		"posix", v.Dir,
	)
	// The gateway reads most options from VGW_* (and a few other)
	// variables: keep the caller's out of it.
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "VGW_") || strings.HasPrefix(name, "ROOT_") || name == "LOGFILE" || name == "WEBHOOK" {
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("versitygw exited before becoming healthy (%v):\n%s", err, v.LogTail(4096))
		default:
		}
		if resp, err := client.Get(v.Endpoint + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("versitygw not healthy at %s after %v:\n%s", v.Endpoint, startTimeout, v.LogTail(4096))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(stop)
	return nil
}

// LogTail returns up to the last n bytes of the server's log.
func (v *VersityGW) LogTail(n int) string { return tailFile(v.logFile, n) }

// Client returns an aws-sdk-go-v2 S3 client for the server with its root
// credentials and path-style addressing, for test assertions that bypass
// ferry's stores.
func (v *VersityGW) Client() *s3.Client {
	return newS3Client(v.Endpoint, v.Region, v.AccessKey, v.SecretKey, nil)
}

// CreateBucket creates bucket name on the server.
func (v *VersityGW) CreateBucket(t testing.TB, name string) {
	t.Helper()
	if err := createBucket(v.Client(), name); err != nil {
		t.Fatalf("testenv: create bucket %s on versitygw: %v", name, err)
	}
}
