package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferry-dev/ferry/internal/config"
	"github.com/ferry-dev/ferry/internal/location"
	"github.com/ferry-dev/ferry/internal/transport"
)

// secFlags are the security flags of copy, sync and verify, and what the
// named remotes of the configuration file add to each side.
type secFlags struct {
	allowInsecureHTTP bool
	allowedRegions    []string
	skipPreflight     bool

	// Set by [jobFlags.locations]: each side's CA bundle (--ca-bundle, else
	// its remote's ca_bundle).
	srcCA, dstCA string
}

func (s *secFlags) register(c *cobra.Command, cmd string) {
	fl := c.Flags()
	registerInsecure(fl, &s.allowInsecureHTTP)
	if cmd == "verify" {
		return
	}
	registerRegions(fl, &s.allowedRegions)
	fl.BoolVar(&s.skipPreflight, "skip-preflight", false, "do not run the preflight checks before copying (see 'ferry preflight')")
}

func registerInsecure(fl *pflag.FlagSet, p *bool) {
	fl.BoolVar(p, "allow-insecure-http", false, "accept plain http:// endpoints on non-loopback hosts (data and credentials travel unencrypted)")
}

func registerRegions(fl *pflag.FlagSet, p *[]string) {
	fl.StringSliceVar(p, "allowed-regions", nil, "refuse a destination bucket outside these regions (comma-separated, repeatable)")
}

var regionRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func checkRegionList(regions []string) error {
	for _, r := range regions {
		if !regionRE.MatchString(r) {
			return usageErr("--allowed-regions: invalid region %q", r)
		}
	}
	return nil
}

// loadConfig loads the configuration file; its errors name file:line.
func loadConfig() (*config.Config, error) {
	c, err := config.Load()
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return c, nil
}

// parseLocations parses SRC and DST, knowing the remotes of cfg.
func parseLocations(cfg *config.Config, srcArg, dstArg string) (src, dst location.Location, err error) {
	isRemote := func(name string) bool { _, ok := cfg.Remote(name); return ok }
	if src, err = location.ParseWith(srcArg, isRemote); err != nil {
		return src, dst, locationErr("source", cfg, err)
	}
	if dst, err = location.ParseWith(dstArg, isRemote); err != nil {
		return src, dst, locationErr("destination", cfg, err)
	}
	return src, dst, nil
}

// locationErr is the usage error for a location argument; an undefined
// remote says where remotes are defined.
func locationErr(role string, cfg *config.Config, err error) error {
	var ue *location.UndefinedRemoteError
	if !errors.As(err, &ue) {
		return usageErr("%s: %v", role, err)
	}
	where := cfg.Path
	if where == "" {
		dir, derr := config.Dir()
		if derr != nil {
			return usageErr("%s: %v", role, err)
		}
		where = filepath.Join(dir, config.FileName) + ", which does not exist"
	}
	defined := "none is"
	if names := cfg.Names(); len(names) > 0 {
		defined = strings.Join(names, ", ")
	}
	return usageErr("%s %q: no remote named %q; remotes are defined under 'remotes:' in %s (defined: %s); for a local path write ./%s",
		role, ue.Arg, ue.Name, where, defined, ue.Arg)
}

// applyRemote fills the settings of sd that no flag set from the remote loc
// names, and returns the side's CA bundle. The credentials (profile or
// secret) come from the flags when either is given, else from the remote.
func applyRemote(cfg *config.Config, loc location.Location, sd *side, caFlag string, allowFlag bool) (ca string) {
	sd.allowInsecure = allowFlag
	r, ok := cfg.Remote(loc.Remote)
	if loc.Kind != location.S3 || !ok {
		return caFlag
	}
	if sd.endpoint == "" {
		sd.endpoint = r.Endpoint
	}
	if sd.region == "" {
		sd.region = r.Region
	}
	if sd.profile == "" && sd.secret == "" {
		sd.profile, sd.secret = r.Profile, r.Secret
	}
	sd.allowInsecure = allowFlag || r.AllowInsecureHTTP
	ca = caFlag
	if ca == "" {
		ca = r.CABundle
	}
	return ca
}

// locations loads the configuration, parses SRC and DST (named remotes
// included), applies the remotes' settings under the flags, and refuses a
// plain-text endpoint before anything connects.
func (f *jobFlags) locations(srcArg, dstArg string) (src, dst location.Location, err error) {
	cfg, err := loadConfig()
	if err != nil {
		return src, dst, err
	}
	if src, dst, err = parseLocations(cfg, srcArg, dstArg); err != nil {
		return src, dst, err
	}
	f.sec.srcCA = applyRemote(cfg, src, &f.src, f.caBundle, f.sec.allowInsecureHTTP)
	f.sec.dstCA = applyRemote(cfg, dst, &f.dst, f.caBundle, f.sec.allowInsecureHTTP)
	for _, s := range []struct {
		flag, ca string
		loc      location.Location
		sd       side
	}{{"--src-endpoint", f.sec.srcCA, src, f.src}, {"--dst-endpoint", f.sec.dstCA, dst, f.dst}} {
		if s.loc.Kind != location.S3 {
			continue
		}
		name := s.flag
		if s.loc.Remote != "" && s.sd.endpoint != "" {
			name = fmt.Sprintf("%s (remote %q)", s.flag, s.loc.Remote)
		}
		if err := validateEndpoint(name, s.sd.endpoint); err != nil {
			return src, dst, err
		}
		if err := transport.Check(name, s.sd.endpoint, s.sd.allowInsecure); err != nil {
			return src, dst, usageErr("%v", err)
		}
		if s.ca != "" && s.ca != f.caBundle {
			if _, err := readable(s.ca); err != nil {
				return src, dst, usageErr("remote %q: ca_bundle %s: %v", s.loc.Remote, s.ca, err)
			}
		}
	}
	if err := checkRegionList(f.sec.allowedRegions); err != nil {
		return src, dst, err
	}
	return src, dst, nil
}

// checkResolvedEndpoint applies the transport rule to an endpoint that came
// from the AWS configuration (endpoint_url, AWS_ENDPOINT_URL) rather than a
// flag or remote; store.Open resolves it without connecting.
func checkResolvedEndpoint(role string, sd side, resolved string) error {
	if sd.endpoint != "" || resolved == "" {
		return nil
	}
	name := role + " endpoint (from the AWS configuration)"
	if err := transport.Check(name, resolved, sd.allowInsecure); err != nil {
		return usageErr("%v", err)
	}
	return nil
}
