package queue

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/ferry-dev/ferry/internal/atomicfile"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ferry-dev/ferry/internal/fslock"
)

// A state directory is shared by every ferry process of its machine
// (docs/design.md, "Several jobs in one state directory"):
//
//   - STATE/lock: the first process takes it (exclusive flock) and serves
//     the embedded NATS server on 127.0.0.1 (a random port, or --listen)
//     with a generated token, written to STATE/server.json (mode 0600).
//   - Every other process is a client: it holds a shared flock on
//     STATE/clients.lock for as long as it is connected, reads
//     server.json and connects with the token.
//   - The serving process, before it stops the server, takes clients.lock
//     exclusively: it waits until no client is connected (unless its own
//     context ended, an interrupt), and no new client can connect while it
//     shuts down. A client that finds the lock taken, server.json missing
//     or the server not answering tries again, and becomes the serving
//     process once the previous one released STATE/lock.

const (
	lockName    = "lock"
	clientsName = "clients.lock"
	serverName  = "server.json"
)

// ServerFile is the file, in a state directory, that names its server.
func ServerFile(stateDir string) string { return filepath.Join(stateDir, serverName) }

// serverInfo is server.json.
type serverInfo struct {
	URL   string `json:"url"`
	Token string `json:"token"`
	PID   int    `json:"pid"`
	// Cert is the listener's certificate file when it serves TLS
	// (--listen-cert): local clients accept exactly that certificate.
	Cert string `json:"cert,omitempty"`
}

// StateDirWait bounds how long a process tries to become the server or a
// client of it (the serving process may be starting or shutting down)
// before Connect fails with ErrLocked.
var StateDirWait = 30 * time.Second

// openStateDir makes this process the state directory's server or a
// client of it and returns the NATS options and URL to connect with.
func (c *Conn) openStateDir(ctx context.Context, o Options) (string, []nats.Option, error) {
	if o.StateDir == "" {
		return "", nil, errors.New("embedded NATS: no state directory")
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return "", nil, fmt.Errorf("state directory %s: %w", o.StateDir, err)
	}
	deadline := time.Now().Add(StateDirWait)
	var last error
	for {
		url, opts, err := c.tryStateDir(o)
		if err == nil {
			return url, opts, nil
		}
		if !errors.Is(err, errRetry) {
			return "", nil, err
		}
		last = err
		if time.Now().After(deadline) {
			return "", nil, fmt.Errorf("%s: %w (%v)", o.StateDir, ErrLocked, last)
		}
		select {
		case <-ctx.Done():
			return "", nil, fmt.Errorf("state directory %s: %w", o.StateDir, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// errRetry: the state directory's server is starting or stopping.
var errRetry = errors.New("its server is starting or stopping")

func (c *Conn) tryStateDir(o Options) (string, []nats.Option, error) {
	lockPath := filepath.Join(o.StateDir, lockName)
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", nil, fmt.Errorf("state directory %s: %w", o.StateDir, err)
	}
	if err := fslock.TryLock(f); err == nil {
		c.lockFile = f
		if err := c.serve(o); err != nil {
			c.shutdownEmbedded()
			return "", nil, err
		}
		return "", []nats.Option{nats.InProcessServer(c.srv), nats.Token(c.token)}, nil
	} else if !errors.Is(err, fslock.ErrLocked) {
		f.Close()
		return "", nil, fmt.Errorf("state directory %s: %w", o.StateDir, err)
	}
	holder, _ := os.ReadFile(lockPath)
	f.Close()

	cf, err := os.OpenFile(filepath.Join(o.StateDir, clientsName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", nil, fmt.Errorf("state directory %s: %w", o.StateDir, err)
	}
	if err := fslock.TryLockShared(cf); err != nil {
		cf.Close()
		if errors.Is(err, fslock.ErrLocked) {
			return "", nil, fmt.Errorf("%w (%s)", errRetry, strings.TrimSpace(string(holder)))
		}
		return "", nil, fmt.Errorf("state directory %s: %w", o.StateDir, err)
	}
	info, err := readServerInfo(o.StateDir)
	if err != nil {
		cf.Close()
		return "", nil, fmt.Errorf("%w (%s: %v)", errRetry, strings.TrimSpace(string(holder)), err)
	}
	// Dial once here, so that a server that is gone (its process killed,
	// server.json left behind) means trying again, not a client that
	// never connects.
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(info.URL, "nats://"), 2*time.Second)
	if err != nil {
		cf.Close()
		return "", nil, fmt.Errorf("%w (%s does not answer at %s)", errRetry, strings.TrimSpace(string(holder)), info.URL)
	}
	conn.Close()
	var tlsOpts []nats.Option
	if info.Cert != "" {
		tc, err := pinnedTLS(info.Cert)
		if err != nil {
			cf.Close()
			return "", nil, fmt.Errorf("state directory %s: server certificate: %w", o.StateDir, err)
		}
		tlsOpts = append(tlsOpts, nats.Secure(tc))
	}
	c.clientsLock, c.serverPID = cf, info.PID
	c.lost = make(chan struct{})
	return info.URL, append(tlsOpts,
		nats.Token(info.Token),
		nats.Timeout(5*time.Second),
		// The server is on this machine: if it does not answer within a
		// few seconds its process is gone, and the connection closes
		// (Lost) instead of retrying for ever.
		nats.MaxReconnects(10),
		nats.ClosedHandler(func(*nats.Conn) { c.lostOnce.Do(func() { close(c.lost) }) }),
	), nil
}

// pinnedTLS is the TLS configuration of a client of this machine's server
// when its listener serves TLS: the server must present exactly the
// certificate in certFile (its name need not match 127.0.0.1).
func pinnedTLS(certFile string) (*tls.Config, error) {
	b, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", certFile)
	}
	want := blk.Bytes
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Verification is the pinning below, not a CA chain.
		InsecureSkipVerify: true, //nolint:gosec // pinned certificate
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || !bytes.Equal(raw[0], want) {
				return errors.New("the server did not present the state directory's certificate")
			}
			return nil
		},
	}, nil
}

func readServerInfo(stateDir string) (serverInfo, error) {
	b, err := os.ReadFile(ServerFile(stateDir))
	if err != nil {
		return serverInfo{}, err
	}
	var info serverInfo
	if err := json.Unmarshal(b, &info); err != nil || info.URL == "" || info.Token == "" {
		return serverInfo{}, fmt.Errorf("%s: not a ferry server file", ServerFile(stateDir))
	}
	return info, nil
}

// serve starts the embedded server, listening on o.Listen or a random
// loopback port, with token authentication, and writes server.json.
func (c *Conn) serve(o Options) error {
	_ = c.lockFile.Truncate(0)
	_, _ = c.lockFile.WriteAt([]byte(fmt.Sprintf("pid %d\n", os.Getpid())), 0)
	// --listen keeps its token in the state directory so the printed
	// worker command line stays valid; otherwise each server run makes one.
	c.token = o.ListenToken
	if c.token == "" {
		tok := make([]byte, 32)
		if _, err := rand.Read(tok); err != nil {
			return fmt.Errorf("embedded NATS token: %w", err)
		}
		c.token = hex.EncodeToString(tok)
	}
	sopts := &server.Options{
		ServerName:         "ferry-embedded",
		JetStream:          true,
		StoreDir:           filepath.Join(o.StateDir, "jetstream"),
		NoSigs:             true,
		NoLog:              true,
		JetStreamMaxMemory: 64 << 20,
		MaxPayload:         8 << 20,
		Host:               "127.0.0.1",
		Port:               server.RANDOM_PORT,
		Authorization:      c.token,
	}
	if o.EncryptionKey != "" {
		sopts.JetStreamKey = o.EncryptionKey
		sopts.JetStreamCipher = server.AES
	}
	if o.Listen != "" {
		host, port, err := net.SplitHostPort(o.Listen)
		if err != nil {
			return fmt.Errorf("--listen %q: %w", o.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return fmt.Errorf("--listen %q: bad port", o.Listen)
		}
		if err := CheckListen(o.Listen, true, o.ListenCert != ""); err != nil {
			return err
		}
		sopts.Host, sopts.Port = host, p
		if o.ListenCert != "" {
			tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: o.ListenCert, KeyFile: o.ListenKey})
			if err != nil {
				return fmt.Errorf("--listen-cert %s, --listen-key %s: %w", o.ListenCert, o.ListenKey, err)
			}
			sopts.TLSConfig, sopts.TLS, sopts.TLSTimeout = tc, true, 5
		}
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return fmt.Errorf("embedded NATS: %w", err)
	}
	c.srv = srv
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		return errors.New("embedded NATS: not ready after 30s")
	}
	addr, ok := srv.Addr().(*net.TCPAddr)
	if !ok {
		return errors.New("embedded NATS: no listening address")
	}
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	info := serverInfo{URL: "nats://" + net.JoinHostPort(host, strconv.Itoa(addr.Port)), Token: c.token, PID: os.Getpid()}
	if o.ListenCert != "" {
		info.URL, info.Cert = "tls://"+net.JoinHostPort(host, strconv.Itoa(addr.Port)), o.ListenCert
	}
	b, _ := json.Marshal(info)
	if err := atomicfile.Write(ServerFile(o.StateDir), b, 0o600); err != nil {
		return fmt.Errorf("state directory %s: %w", o.StateDir, err)
	}
	c.stateDir, c.embedded = o.StateDir, true
	return nil
}

// waitForClients holds the clients lock exclusively once no other process
// is connected, checking every 250ms and calling waiting once with the
// first refusal; it gives up when ctx ends or at an interrupt (SIGINT,
// SIGTERM) received while it waits (the other processes then lose the
// server: see Lost).
func (c *Conn) waitForClients(ctx context.Context, waiting func()) {
	f, err := os.OpenFile(filepath.Join(c.stateDir, clientsName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return
	}
	told := false
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	for {
		if err := fslock.TryLock(f); err == nil {
			c.clientsLock = f // released after the server stopped
			return
		}
		if !told && waiting != nil {
			waiting()
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return
		case <-sigs:
			f.Close()
			return
		case <-t.C:
		}
	}
}

// Lost is closed when the connection to a state directory's server that
// another process serves closed for good (that process exited); nil when
// this process is not such a client.
func (c *Conn) Lost() <-chan struct{} { return c.lost }

// ServerPID is the process that serves the state directory this client
// connected through (0 when this process is not such a client).
func (c *Conn) ServerPID() int { return c.serverPID }

// Serving reports whether this process runs the embedded server.
func (c *Conn) Serving() bool { return c.srv != nil }
