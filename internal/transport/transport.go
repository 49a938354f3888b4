package transport

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// ErrInsecure is wrapped by the error [Check] returns for a plain-text URL
// to a host that is not loopback.
var ErrInsecure = errors.New("plain-text transport to a non-loopback host")

// secure and plain map the schemes ferry knows to whether they encrypt.
var (
	secure = map[string]bool{"https": true, "tls": true, "wss": true}
	plain  = map[string]bool{"http": true, "nats": true, "ws": true}
)

// Check reports whether rawURL, the value of flag (named in the error, for
// example "--dst-endpoint"), may be used: an encrypting scheme (https, tls,
// wss) always may; a plain-text one (http, nats, ws) only when its host is a
// loopback address ("localhost", 127.0.0.0/8, ::1) or allowInsecure is set.
// Any other scheme, or a URL without a host, is an error. "" is accepted
// (no endpoint given: the default is HTTPS).
//
// Check looks only at the text: it never resolves a name or connects, so a
// refused URL is refused before anything leaves the machine.
func Check(flag, rawURL string, allowInsecure bool) error {
	if rawURL == "" {
		return nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("%s: not a URL: %w", flag, err)
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%s %q: want a URL like https://host[:port]", flag, redact(u))
	case secure[scheme]:
		return nil
	case !plain[scheme]:
		return fmt.Errorf("%s %q: unknown scheme %q (want https://)", flag, redact(u), u.Scheme)
	case allowInsecure || IsLoopback(u.Hostname()):
		return nil
	}
	return fmt.Errorf("%s %s: %w is refused: data and credentials would cross the network unencrypted; use %s, or pass --allow-insecure-http to accept the risk",
		flag, redact(u), ErrInsecure, secureOf(scheme))
}

// IsLoopback reports whether host (without port or brackets) is "localhost"
// or a loopback IP address. Other names are not resolved: a name that
// resolves to 127.0.0.1 today may not tomorrow.
func IsLoopback(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

func secureOf(scheme string) string {
	switch scheme {
	case "nats":
		return "tls://"
	case "ws":
		return "wss://"
	}
	return "https://"
}

// redact drops any user information from u for messages.
func redact(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User("REDACTED")
	}
	// A credential pasted into a query or fragment is not echoed either.
	if c.RawQuery != "" || c.ForceQuery {
		c.RawQuery, c.ForceQuery = "REDACTED", false
	}
	if c.Fragment != "" || c.RawFragment != "" {
		c.Fragment, c.RawFragment = "REDACTED", ""
	}
	return c.String()
}

// Redact returns raw, a URL, fit to print: user information, query and
// fragment replaced by REDACTED. Text that is not a URL is not echoed.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(not a URL)"
	}
	return redact(u)
}
