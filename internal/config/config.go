package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ferry-dev/ferry/internal/transport"
)

// FileName is the name of the configuration file in [Dir].
const FileName = "config.yaml"

// maxFileSize bounds the configuration file ferry reads.
const maxFileSize = 1 << 20

// Config is a decoded configuration file. The zero value is an empty
// configuration (no remotes).
type Config struct {
	// Path is the file the configuration came from, "" when there was none.
	Path string `yaml:"-"`
	// Remotes are the named remotes by name.
	Remotes map[string]Remote `yaml:"remotes"`
	// Defaults are flag values by long flag name ("concurrency": 64), for
	// every command that has the flag. A flag on the command line, then
	// its environment variable (FERRY_CONCURRENCY), take precedence. Which
	// names are flags is the command line's business (package cli).
	Defaults map[string]FlagValue `yaml:"defaults"`
}

// FlagValue is the value of a flag in [Config.Defaults]: a scalar, or a
// list of scalars for a repeatable flag (include: ["*.jpg", "*.png"]).
type FlagValue struct {
	Values []string
	// Line is the line of the flag's name in the file, for messages.
	Line int
}

// UnmarshalYAML decodes a scalar or a sequence of scalars.
func (v *FlagValue) UnmarshalYAML(n *yaml.Node) error {
	v.Line = n.Line
	switch n.Kind {
	case yaml.ScalarNode:
		v.Values = []string{n.Value}
		return nil
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: want a value or a list of values", c.Line)
			}
			v.Values = append(v.Values, c.Value)
		}
		return nil
	}
	return fmt.Errorf("line %d: want a value or a list of values", n.Line)
}

// flagNameRE is the syntax of a long flag's name.
var flagNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// Remote is a named S3 endpoint and how to reach it. Every field is
// optional; a command line flag overrides the field it corresponds to.
type Remote struct {
	// Endpoint is the URL of the S3-compatible server; "" is AWS.
	Endpoint string `yaml:"endpoint"`
	// Region signs requests.
	Region string `yaml:"region"`
	// Profile is the AWS shared config profile.
	Profile string `yaml:"profile"`
	// Secret names the credentials in ferry's secret store (never the
	// credentials themselves).
	Secret string `yaml:"secret"`
	// CABundle is a PEM file of CA certificates to trust. A relative path is
	// relative to the configuration file's directory; after Load it is
	// absolute.
	CABundle string `yaml:"ca_bundle"`
	// AllowInsecureHTTP accepts a plain http:// endpoint on a non-loopback
	// host (see [transport.Check]).
	AllowInsecureHTTP bool `yaml:"allow_insecure_http"`
}

// Remote returns the remote called name and whether it is defined. It is
// safe to call on a nil Config.
func (c *Config) Remote(name string) (Remote, bool) {
	if c == nil {
		return Remote{}, false
	}
	r, ok := c.Remotes[name]
	return r, ok
}

// Names returns the defined remote names, sorted.
func (c *Config) Names() []string {
	if c == nil {
		return nil
	}
	names := make([]string, 0, len(c.Remotes))
	for n := range c.Remotes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// RemoteNameRE is the syntax of a remote's name.
var RemoteNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// reservedNames are location schemes; a remote may not shadow them.
var reservedNames = map[string]bool{"s3": true, "file": true, "http": true, "https": true}

// Dir returns the configuration directory: $FERRY_CONFIG_DIR when set, else
// "ferry" in the user's configuration directory ($XDG_CONFIG_HOME or
// ~/.config on Linux).
func Dir() (string, error) {
	if d := os.Getenv("FERRY_CONFIG_DIR"); d != "" {
		return d, nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("config directory: %w (set FERRY_CONFIG_DIR)", err)
	}
	return filepath.Join(d, "ferry"), nil
}

// Load reads config.yaml in [Dir]. A missing file is an empty
// configuration, not an error.
func Load() (*Config, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	c, err := LoadFile(filepath.Join(dir, FileName))
	if errors.Is(err, fs.ErrNotExist) {
		return &Config{}, nil
	}
	return c, err
}

// LoadFile reads and decodes the configuration file path. Relative
// ca_bundle paths are made relative to the file's directory. A missing file
// is an error wrapping [fs.ErrNotExist].
func LoadFile(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxFileSize)
	}
	c, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	c.Path = path
	dir := filepath.Dir(path)
	for name, r := range c.Remotes {
		if r.CABundle != "" && !filepath.IsAbs(r.CABundle) {
			r.CABundle = filepath.Join(dir, r.CABundle)
			c.Remotes[name] = r
		}
	}
	return c, nil
}

// Parse decodes data, the contents of the file called name (used in error
// messages), strictly: unknown fields, wrong types, duplicate keys, more than
// one document and invalid values are errors of one line,
// "name:LINE: what is wrong".
func Parse(name string, data []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, yamlError(name, err)
		}
		return nil, fmt.Errorf("%s:%d: more than one YAML document; want one", name, extra.Line)
	}
	// A second pass keeps the node tree, for the lines of invalid values.
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root)
	if err := c.validate(name, &root); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) validate(file string, root *yaml.Node) error {
	names := make([]string, 0, len(c.Defaults))
	for n := range c.Defaults {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !flagNameRE.MatchString(n) {
			return fmt.Errorf("%s:%d: defaults: %q is not a flag name (write concurrency, not --concurrency)", file, c.Defaults[n].Line, n)
		}
	}
	for _, n := range c.Names() {
		r := c.Remotes[n]
		errf := func(field, format string, a ...any) error {
			return fmt.Errorf("%s:%d: remote %q: %s", file, lineOf(root, n, field), n, fmt.Sprintf(format, a...))
		}
		switch {
		case len(n) > 63 || !RemoteNameRE.MatchString(n):
			return errf("", "invalid name: want lowercase letters, digits, '-' and '_', starting with a letter, at most 63 characters")
		case reservedNames[n]:
			return errf("", "invalid name: %q is a location scheme", n)
		}
		for field, v := range map[string]string{"endpoint": r.Endpoint, "region": r.Region, "profile": r.Profile, "secret": r.Secret, "ca_bundle": r.CABundle} {
			if strings.ContainsAny(v, "\x00\r\n") {
				return errf(field, "%s contains a control character", field)
			}
		}
		if r.Endpoint != "" {
			// The scheme rule (http only for loopback unless allowed) is
			// applied when the remote is used, with the command's flags.
			if err := transport.Check("endpoint", r.Endpoint, true); err != nil {
				return errf("endpoint", "%v", err)
			}
			if s := strings.ToLower(strings.SplitN(r.Endpoint, ":", 2)[0]); s != "http" && s != "https" {
				return errf("endpoint", "endpoint %q: want an http:// or https:// URL", r.Endpoint)
			}
		}
		if r.Profile != "" && r.Secret != "" {
			return errf("secret", "profile and secret both name the credentials; use one")
		}
		if r.Region != "" && !regionRE.MatchString(r.Region) {
			return errf("region", "invalid region %q", r.Region)
		}
	}
	return nil
}

var regionRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// lineOf returns the line of remotes.<remote>.<field> in root, or of the
// remote's name when field is "" or absent, or 1.
func lineOf(root *yaml.Node, remote, field string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 1
	for _, k := range []string{"remotes", remote, field} {
		if k == "" || n == nil || n.Kind != yaml.MappingNode {
			break
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				line, next = n.Content[i].Line, n.Content[i+1]
			}
		}
		n = next
	}
	return line
}

var (
	lineRE    = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownRE = regexp.MustCompile(`^field (.*) not found in type (\S+)$`)
)

// yamlError rewrites a yaml.v3 error as "file:LINE: message".
func yamlError(file string, err error) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	first := strings.Join(strings.Fields(msgs[0]), " ")
	out := file + ": " + strings.TrimPrefix(first, "yaml: ")
	if m := lineRE.FindStringSubmatch(first); m != nil {
		msg := m[2]
		if u := unknownRE.FindStringSubmatch(msg); u != nil {
			msg = fmt.Sprintf("field %q not found in type %s", u[1], u[2])
		}
		out = file + ":" + m[1] + ": " + msg
	}
	if len(msgs) > 1 {
		out += fmt.Sprintf(" (and %d more errors)", len(msgs)-1)
	}
	return errors.New(out)
}
