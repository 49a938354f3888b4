package cli

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferry-dev/ferry/internal/queue"
)

// listenTokenFile is the file in the state directory that holds the token
// workers present to an embedded server's --listen address.
const listenTokenFile = "nats-token"

// listenToken returns the token of the embedded server's listener: read
// from the state directory, or made (32 random bytes) and stored there
// with mode 0600 on first use. A token file others can read is refused.
func listenToken(stateDir string) (path, token string, err error) {
	path = filepath.Join(stateDir, listenTokenFile)
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return path, "", fmt.Errorf("state directory %s: %w", stateDir, err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return path, "", fmt.Errorf("make a NATS token: %w", err)
	}
	fresh := base64.RawURLEncoding.EncodeToString(b)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		_, werr := f.WriteString(fresh + "\n")
		cerr := f.Close()
		if err := errors.Join(werr, cerr); err != nil {
			return path, "", fmt.Errorf("write %s: %w", path, err)
		}
		return path, fresh, nil
	}
	if !errors.Is(err, os.ErrExist) {
		return path, "", fmt.Errorf("create %s: %w", path, err)
	}
	token, err = readTokenFile(path)
	return path, token, err
}

// readTokenFile reads a NATS token from a file only its owner can read.
func readTokenFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("token file %s: %w", path, unwrapPath(err))
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("token file %s has mode %04o: others can read the token; chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token file %s: %w", path, unwrapPath(err))
	}
	t := strings.TrimSpace(string(b))
	if t == "" || strings.ContainsAny(t, " \t\r\n") {
		return "", fmt.Errorf("token file %s: want one token on one line", path)
	}
	return t, nil
}

// checkListenFlags checks --listen, --listen-cert and --listen-key before
// anything starts.
func (qf *queueFlags) checkListenFlags() error {
	if qf.listen == "" {
		if qf.listenCert != "" || qf.listenKey != "" {
			return usageErr("--listen-cert and --listen-key go with --listen")
		}
		return nil
	}
	if qf.url != "" {
		return usageErr("--listen serves the embedded server; it cannot be used with --nats")
	}
	if (qf.listenCert == "") != (qf.listenKey == "") {
		return usageErr("--listen-cert and --listen-key go together")
	}
	for _, f := range []string{qf.listenCert, qf.listenKey} {
		if f == "" {
			continue
		}
		if _, err := readable(f); err != nil {
			return usageErr("--listen: %s: %v", f, err)
		}
	}
	if err := queue.CheckListen(qf.listen, true, qf.listenCert != ""); err != nil {
		return usageErr("%v", err)
	}
	return nil
}

// printJoin tells how another machine's worker joins the embedded server:
// the command line to run there, which names the token file rather than
// the token (credentials never go in argv).
func printJoin(w io.Writer, conn *queue.Conn, listen, tokenPath, cert string) {
	trusted := len(conn.Trust.Keys())
	u := conn.ClientURL()
	host, port, err := net.SplitHostPort(listen)
	if err == nil {
		if host == "" || host == "0.0.0.0" || host == "::" {
			if h, err := os.Hostname(); err == nil {
				host = h
			}
		}
		scheme := "nats://"
		if cert != "" {
			scheme = "tls://"
		}
		u = scheme + net.JoinHostPort(host, port)
	}
	cmd := []string{"ferry worker --nats " + u, "--nats-token-file " + tokenPath}
	if cert != "" {
		cmd = append(cmd, "--nats-ca "+cert)
	}
	cmd = append(cmd, "--trust "+conn.Signer.Public().String())
	fmt.Fprintf(w, "ferry: accepting workers on %s (token in %s, mode 0600)\n", u, tokenPath)
	fmt.Fprintf(w, "ferry: to add a worker, copy %s to its machine (mode 0600) and run there (with --allow-local, --allow-endpoint, --allow-profile or --allow-secret for what the job names):\n  %s\n",
		tokenPath, strings.Join(cmd, " "))
	if trusted <= 1 {
		fmt.Fprintf(w, "ferry: this process applies only results signed by a key it trusts: start it with --trust KEY for each worker machine ('ferry key show' there prints it)\n")
	}
}
