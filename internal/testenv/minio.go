package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// MinIOVersion is the pinned MinIO module version, installed by
// scripts/install-tools.sh (keep the two in step).
const MinIOVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"

// startTimeout bounds how long StartMinIO waits for the server to be live.
const startTimeout = 60 * time.Second

// ToolsDir is the directory scripts/install-tools.sh installs into:
// $FERRY_TOOLS_DIR, else $HOME/.cache/ferry/tools.
func ToolsDir() string {
	if d := os.Getenv("FERRY_TOOLS_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "ferry-tools")
	}
	return filepath.Join(home, ".cache", "ferry", "tools")
}

// MinIOBinary returns the path of the pinned MinIO server binary:
// $FERRY_MINIO_BIN, else $FERRY_TOOLS_DIR/minio-<MinIOVersion>/minio. When it
// is missing the test is skipped, or fails when $CI is set.
func MinIOBinary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("FERRY_MINIO_BIN")
	if bin == "" {
		bin = filepath.Join(ToolsDir(), "minio-"+MinIOVersion, "minio")
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() {
		missing(t, fmt.Sprintf("MinIO binary not found at %s: run scripts/install-tools.sh (or set FERRY_MINIO_BIN)", bin))
	}
	return bin
}

// missing skips the test, or fails it on CI, where skips are not allowed.
func missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal("testenv: " + msg)
	}
	t.Skip("testenv: " + msg)
}

// MinIOOptions configure [StartMinIO]. The zero value starts a plain-HTTP
// server with its data in t.TempDir().
type MinIOOptions struct {
	// TLS serves HTTPS with a certificate from a fresh test CA; the server's
	// CAFile then names the CA bundle to trust.
	TLS bool
	// DataDir is the parent of the server's data directory (for example
	// /dev/shm for benchmarks). A fresh subdirectory is created in it and
	// removed when the test ends. "" means t.TempDir().
	DataDir string
	// Region is the server's region (MINIO_SITE_REGION), which
	// GetBucketLocation reports; "" means us-east-1.
	Region string
	// KMS gives the server a static KMS key (MINIO_KMS_SECRET_KEY), named
	// by the server's KMSKeyID, so it accepts SSE-S3 (AES256) and SSE-KMS
	// with that key.
	KMS bool
}

// MinIO is a running MinIO server owned by one test.
type MinIO struct {
	// Endpoint is the server's URL: "http://127.0.0.1:PORT" or
	// "https://127.0.0.1:PORT".
	Endpoint string
	// AccessKey and SecretKey are the root credentials, random per server.
	AccessKey, SecretKey string
	// Region is the region to sign requests for, "us-east-1".
	Region string
	// CAFile is the PEM CA bundle that verifies the server's certificate; ""
	// without TLS.
	CAFile string
	// CA is the CA that signed the server's certificate; nil without TLS.
	CA *CA
	// KMSKeyID is the name of the server's KMS key; "" without
	// MinIOOptions.KMS.
	KMSKeyID string

	env []string // extra environment of the server process

	logFile string
}

// StartMinIO starts a MinIO server on random free ports of 127.0.0.1 and
// waits until it is live. The server is killed, and its process reaped, when
// the test ends.
func StartMinIO(t testing.TB, opts MinIOOptions) *MinIO {
	t.Helper()
	bin := MinIOBinary(t)

	base := t.TempDir()
	dataDir := filepath.Join(base, "data")
	if opts.DataDir != "" {
		d, err := os.MkdirTemp(opts.DataDir, "ferry-minio-")
		if err != nil {
			t.Fatalf("testenv: minio data dir: %v", err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		dataDir = d
	}
	// An explicit, possibly empty, certs dir keeps MinIO away from
	// ~/.minio/certs.
	certsDir := filepath.Join(base, "certs")
	if err := os.MkdirAll(certsDir, 0o700); err != nil {
		t.Fatalf("testenv: %v", err)
	}

	m := &MinIO{
		AccessKey: "ferry-" + randHex(t, 6),
		SecretKey: randHex(t, 20),
		Region:    "us-east-1",
		logFile:   filepath.Join(base, "minio.log"),
	}
	if opts.Region != "" {
		m.Region = opts.Region
		m.env = append(m.env, "MINIO_SITE_REGION="+opts.Region)
	}
	if opts.KMS {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			t.Fatalf("testenv: random: %v", err)
		}
		m.KMSKeyID = "ferry-test-key"
		m.env = append(m.env, "MINIO_KMS_SECRET_KEY="+m.KMSKeyID+":"+base64.StdEncoding.EncodeToString(key))
	}
	scheme := "http"
	if opts.TLS {
		m.CA = NewCA(t)
		m.CAFile = m.CA.CertFile
		sc := m.CA.ServerCert(t, "127.0.0.1", "localhost")
		writeFile(t, filepath.Join(certsDir, "public.crt"), sc.CertPEM)
		writeFile(t, filepath.Join(certsDir, "private.key"), sc.KeyPEM)
		scheme = "https"
	}

	// Free ports are picked by binding and releasing them, so another
	// process may grab one before MinIO does: retry on a fresh pair.
	var lastErr error
	for range 3 {
		port, consolePort := freePort(t), freePort(t)
		m.Endpoint = scheme + "://127.0.0.1:" + strconv.Itoa(port)
		err := m.start(t, bin, dataDir, certsDir, port, consolePort)
		if err == nil {
			return m
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatalf("testenv: start minio: %v", lastErr)
	return nil
}

func (m *MinIO) start(t testing.TB, bin, dataDir, certsDir string, port, consolePort int) error {
	t.Helper()
	logf, err := os.Create(m.logFile)
	if err != nil {
		return err
	}
	defer logf.Close()

	cmd := exec.Command(bin, "server", dataDir,
		"--address", "127.0.0.1:"+strconv.Itoa(port),
		"--console-address", "127.0.0.1:"+strconv.Itoa(consolePort),
		"--certs-dir", certsDir,
		"--quiet",
	)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+m.AccessKey,
		"MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
	)
	cmd.Env = append(cmd.Env, m.env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	// Own process group, so a Ctrl-C to `go test` doesn't race the cleanup.
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

	client := m.httpClient()
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case err := <-exited:
			exited <- err // for stop, should it run
			return fmt.Errorf("minio exited before becoming live (%v):\n%s", err, m.LogTail(4096))
		default:
		}
		// Live is not enough: right after it, under load, requests can
		// still meet "Server not initialized". Ready means it serves,
		// but only to the root user: IAM finishes loading later.
		if m.health(client, "live") && m.health(client, "ready") && m.iamLoaded(client) {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("minio not live at %s after %v:\n%s", m.Endpoint, startTimeout, m.LogTail(4096))
		}
		time.Sleep(100 * time.Millisecond)
	}
	client.CloseIdleConnections()
	t.Cleanup(stop)
	return nil
}

// health asks MinIO's health endpoint /minio/health/WHAT (live, ready).
func (m *MinIO) health(client *http.Client, what string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.Endpoint+"/minio/health/"+what, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// iamLoaded reports whether MinIO's IAM answers: a request signed with an
// access key the server does not know gets 403 InvalidAccessKeyId once IAM
// has loaded, and 503 before (ready and live do not wait for IAM). Tests
// of unknown keys, restricted users and STS need the loaded answer.
func (m *MinIO) iamLoaded(client *http.Client) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c := newS3Client(m.Endpoint, m.Region, "FERRYIAMPROBE0000000", "not-a-secret-key-0000", client)
	_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{}, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	var re *smithyhttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusForbidden
}

// LogTail returns up to the last n bytes of the server's log.
func (m *MinIO) LogTail(n int) string { return tailFile(m.logFile, n) }

// tailFile returns up to the last n bytes of a server's log file, from a
// line start.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

// TLSConfig returns a client TLS configuration trusting the server's CA, or
// nil without TLS.
func (m *MinIO) TLSConfig() *tls.Config {
	if m.CA == nil {
		return nil
	}
	return m.CA.ClientTLSConfig()
}

// httpClient returns an HTTP client that trusts the server's CA.
func (m *MinIO) httpClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = m.TLSConfig()
	return &http.Client{Transport: tr}
}

// Client returns an aws-sdk-go-v2 S3 client for the server, with its root
// credentials and path-style addressing, trusting its CA. It is meant for
// test assertions that bypass ferry's stores.
func (m *MinIO) Client() *s3.Client {
	return newS3Client(m.Endpoint, m.Region, m.AccessKey, m.SecretKey, m.httpClient())
}

// newS3Client is a path-style client with static credentials that computes
// and checks checksums only when required (as ferry's stores do).
func newS3Client(endpoint, region, accessKey, secretKey string, hc *http.Client) *s3.Client {
	o := s3.Options{
		Region:                     region,
		BaseEndpoint:               aws.String(endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if hc != nil { // a nil *http.Client in the interface field would be called
		o.HTTPClient = hc
	}
	return s3.New(o)
}

// CreateBucket creates bucket name on the server.
func (m *MinIO) CreateBucket(t testing.TB, name string) {
	t.Helper()
	if err := createBucket(m.Client(), name); err != nil {
		t.Fatalf("testenv: create bucket %s: %v", name, err)
	}
}

func createBucket(c *s3.Client, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	return err
}

// WriteCredentialsFile writes an AWS shared credentials file and a shared
// config file with one profile per entry of profiles, named by its key:
// the server's root keys in the credentials file; region, endpoint_url and,
// with TLS, ca_bundle in the config file. Point AWS_SHARED_CREDENTIALS_FILE
// and AWS_CONFIG_FILE at the returned paths. The config file is written as
// "config" in the credentials file's directory.
func WriteCredentialsFile(t testing.TB, profiles map[string]*MinIO) (credentialsFile, configFile string) {
	t.Helper()
	var creds, conf strings.Builder
	names := make([]string, 0, len(profiles))
	for name := range profiles {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		m := profiles[name]
		fmt.Fprintf(&creds, "[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n\n", name, m.AccessKey, m.SecretKey)
		section := "profile " + name
		if name == "default" {
			section = "default"
		}
		fmt.Fprintf(&conf, "[%s]\nregion = %s\nendpoint_url = %s\n", section, m.Region, m.Endpoint)
		if m.CAFile != "" {
			fmt.Fprintf(&conf, "ca_bundle = %s\n", m.CAFile)
		}
		conf.WriteString("\n")
	}
	dir := t.TempDir()
	credentialsFile = filepath.Join(dir, "credentials")
	configFile = filepath.Join(dir, "config")
	writeFile(t, credentialsFile, []byte(creds.String()))
	writeFile(t, configFile, []byte(conf.String()))
	return credentialsFile, configFile
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("testenv: random: %v", err)
	}
	return hex.EncodeToString(b)
}

// CertPool returns the system roots plus the certificates in the PEM file
// caFile, for tests that build their own TLS configuration.
func CertPool(caFile string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pemData, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, errors.New("no certificates in " + caFile)
	}
	return pool, nil
}
