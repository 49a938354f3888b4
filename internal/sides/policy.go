package sides

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ferry-dev/ferry/internal/location"
	"github.com/ferry-dev/ferry/internal/secret"
	"github.com/ferry-dev/ferry/internal/transport"
)

// Policy is what a worker's operator allows the jobs it runs to touch.
// A job's spec is signed by a trusted coordinator, but the coordinator's
// user is not the worker host's operator: without a policy a job could
// read or write any file the worker can, or send the worker's credentials
// to any endpoint.
//
// The zero Policy allows AWS S3 (the default endpoint, or an https://
// endpoint under amazonaws.com) with the worker's default credentials (no
// profile or secret named), and nothing else: no local path at all. A nil
// *Policy allows everything: the CLI opening what its own user named.
type Policy struct {
	// Local holds the directories (absolute, symbolic links resolved) a
	// job's local side may be in or below (--allow-local).
	Local []string
	// Endpoints holds the endpoints, as scheme://host[:port], a job may
	// name besides AWS's (--allow-endpoint).
	Endpoints []string
	// Secrets and Profiles hold the secret and profile names a job may use
	// (--allow-secret, --allow-profile).
	Secrets  []string
	Profiles []string
}

// NewPolicy checks the operator's allow-lists and returns their policy.
// Its errors name the flag.
func NewPolicy(local, endpoints, secrets, profiles []string) (*Policy, error) {
	p := &Policy{}
	for _, d := range local {
		abs, err := realDir(d)
		if err != nil {
			return nil, fmt.Errorf("--allow-local %s: %w", d, err)
		}
		p.Local = append(p.Local, abs)
	}
	for _, e := range endpoints {
		n, err := normalEndpoint(e)
		if err != nil {
			return nil, fmt.Errorf("--allow-endpoint %q: %w", transport.Redact(e), err)
		}
		p.Endpoints = append(p.Endpoints, n)
	}
	for _, s := range secrets {
		if err := secret.ValidateName(s); err != nil {
			return nil, fmt.Errorf("--allow-secret: %w", err)
		}
		p.Secrets = append(p.Secrets, s)
	}
	for _, s := range profiles {
		if s == "" || strings.ContainsAny(s, " \t\n[]") {
			return nil, fmt.Errorf("--allow-profile %q: not a profile name", s)
		}
		p.Profiles = append(p.Profiles, s)
	}
	return p, nil
}

// Only returns a policy that allows exactly what the sides name (and
// AWS with default credentials): the in-process worker of the process
// that created the job, whose user named these sides on its command line.
func Only(sides ...Config) *Policy {
	p := &Policy{}
	for _, c := range sides {
		switch c.Location.Kind {
		case location.Local:
			if d, err := realPath(c.Location.Path); err == nil {
				p.Local = append(p.Local, d)
			}
		case location.S3:
			if c.Endpoint != "" {
				if n, err := normalEndpoint(c.Endpoint); err == nil {
					p.Endpoints = append(p.Endpoints, n)
				}
			}
			if c.Secret != "" {
				p.Secrets = append(p.Secrets, c.Secret)
			}
			if c.Profile != "" {
				p.Profiles = append(p.Profiles, c.Profile)
			}
		}
	}
	return p
}

// Check returns an *Error of class Refused when p does not allow the side.
func (p *Policy) Check(role string, c Config) error {
	if p == nil {
		return nil
	}
	refuse := func(format string, a ...any) error {
		return newErr(role, c, Refused, ErrRefused, "%s %s: %s", role, redactedLocation(c), fmt.Sprintf(format, a...))
	}
	switch c.Location.Kind {
	case location.Local:
		if len(p.Local) == 0 {
			return refuse("local paths are refused: this worker was started without --allow-local")
		}
		path, err := realPath(c.Location.Path)
		if err != nil {
			return refuse("local path cannot be resolved (%v)", unwrapPath(err))
		}
		for _, d := range p.Local {
			if within(path, d) {
				return nil
			}
		}
		return refuse("not below a directory this worker allows (--allow-local %s)", strings.Join(p.Local, ", --allow-local "))
	case location.S3:
		explicit := false
		if c.Endpoint != "" {
			n, err := normalEndpoint(c.Endpoint)
			if err != nil {
				return refuse("endpoint %s: %v", transport.Redact(c.Endpoint), err)
			}
			explicit = slices.Contains(p.Endpoints, n)
			if !explicit && !awsEndpoint(n) {
				return refuse("endpoint %s is not allowed on this worker (its operator allows AWS and --allow-endpoint URLs)", n)
			}
		}
		if c.CABundle != "" && !explicit {
			return refuse("a CA bundle file is accepted only for an endpoint named with --allow-endpoint")
		}
		if c.Profile != "" && !slices.Contains(p.Profiles, c.Profile) {
			return refuse("profile %q is not allowed on this worker (--allow-profile)", c.Profile)
		}
		if c.Secret != "" && !slices.Contains(p.Secrets, c.Secret) {
			return refuse("secret %q is not allowed on this worker (--allow-secret)", c.Secret)
		}
		return nil
	}
	return refuse("unknown kind of location")
}

func redactedLocation(c Config) string {
	if c.Location.Kind == location.Local {
		return c.Location.Path
	}
	return c.Location.Canonical()
}

// normalEndpoint is an endpoint URL as scheme://host[:port], lower case,
// without a default port.
func normalEndpoint(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("want a URL like https://host[:port]")
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("an endpoint has no credentials, path, query or fragment")
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, nil
}

// awsEndpoint reports whether a normalized endpoint is AWS S3 over TLS.
func awsEndpoint(n string) bool {
	host, ok := strings.CutPrefix(n, "https://")
	if !ok || strings.Contains(host, ":") {
		return false
	}
	return strings.HasSuffix(host, ".amazonaws.com") || strings.HasSuffix(host, ".amazonaws.com.cn")
}

// realDir returns the absolute, symlink-free path of an existing directory.
func realDir(d string) (string, error) {
	abs, err := filepath.Abs(d)
	if err != nil {
		return "", err
	}
	r, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("%w", unwrapPath(err))
	}
	fi, err := os.Stat(r)
	if err != nil {
		return "", fmt.Errorf("%w", unwrapPath(err))
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("not a directory")
	}
	return r, nil
}

// realPath returns the absolute path of p with the symbolic links of its
// longest existing prefix resolved (a destination may not exist yet).
func realPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	rest := ""
	for cur := abs; ; {
		r, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return filepath.Join(r, rest), nil
		}
		if !os.IsNotExist(err) {
			return "", err
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return abs, nil
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	if path == dir {
		return true
	}
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// openConfined opens path, which [Policy.Check] allowed, as an [os.Root]
// reached from inside the allowed directory that holds it: a symbolic link
// swapped into the path after the check cannot lead the job outside that
// directory (os.Root refuses it). With create, a missing last element is
// made first (its parent must exist).
func (p *Policy) openConfined(path string, create bool) (*os.Root, error) {
	real, err := realPath(path)
	if err != nil {
		return nil, err
	}
	for _, d := range p.Local {
		if !within(real, d) {
			continue
		}
		rel, err := filepath.Rel(d, real)
		if err != nil {
			return nil, err
		}
		base, err := os.OpenRoot(d)
		if err != nil {
			return nil, err
		}
		defer base.Close()
		if create && rel != "." {
			if err := base.Mkdir(rel, 0o777); err != nil && !errors.Is(err, fs.ErrExist) {
				return nil, err
			}
		}
		return base.OpenRoot(rel)
	}
	return nil, fmt.Errorf("%s is not below a directory this worker allows", path)
}
