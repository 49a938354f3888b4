package cli

import (
	"context"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/location"
	"github.com/ferry-dev/ferry/internal/metrics"
	"github.com/ferry-dev/ferry/internal/sides"
	"github.com/ferry-dev/ferry/internal/store"
)

// packFlags are copy's and sync's pack-mode flags (--pack).
type packFlags struct {
	enabled    bool
	staging    string
	stg        side
	maxObject  string
	bundleSize string
	level      string

	// set by check
	loc  location.Location
	ca   string
	spec *job.PackSpec
}

func (p *packFlags) register(fl *pflag.FlagSet) {
	fl.BoolVar(&p.enabled, "pack", false, "send small objects in compressed bundles through --staging (docs/bundle-format.md)")
	fl.StringVar(&p.staging, "staging", "", "with --pack: where bundles wait between packing and unpacking (s3://bucket/prefix, normally in the destination's region)")
	fl.StringVar(&p.stg.endpoint, "staging-endpoint", "", "S3 endpoint URL of --staging (default: the destination's)")
	fl.StringVar(&p.stg.profile, "staging-profile", "", "AWS shared config profile for --staging (default: the destination's credentials)")
	fl.StringVar(&p.stg.secret, "staging-secret", "", "secret in ferry's store holding --staging's S3 credentials (default: the destination's credentials)")
	fl.StringVar(&p.maxObject, "pack-max-object-size", "1MiB", "with --pack: objects up to this size travel in bundles, larger ones copy directly (at most 64MiB)")
	fl.StringVar(&p.bundleSize, "bundle-size", "256MiB", "with --pack: the object data a bundle holds at most")
	fl.StringVar(&p.level, "pack-level", "auto", "with --pack: zstd level 1 (fastest) to 4 (best), 0 for none, or auto (sampled per bundle)")
}

// check validates the pack flags against the job's sides and builds the
// job's PackSpec (nil without --pack).
func (p *packFlags) check(f *jobFlags, src, dst location.Location) error {
	if !p.enabled {
		for _, name := range []string{"staging", "staging-endpoint", "staging-profile", "staging-secret", "pack-max-object-size", "bundle-size", "pack-level"} {
			if f.flags != nil && fromCommandLine(f.flags, name) {
				return usageErr("--%s needs --pack", name)
			}
		}
		return nil
	}
	if p.staging == "" {
		return usageErr("--pack needs --staging s3://bucket/prefix (or a local directory) where bundles wait")
	}
	loc, err := location.Parse(p.staging)
	if err != nil {
		return usageErr("--staging: %v", err)
	}
	if p.stg.secret != "" && p.stg.profile != "" {
		return usageErr("--staging-secret and --staging-profile both name the staging location's credentials; use one")
	}
	// The staging location uses the destination's endpoint and
	// credentials unless a flag says otherwise.
	if p.stg.endpoint == "" {
		p.stg.endpoint, p.stg.region, p.stg.allowInsecure = f.dst.endpoint, f.dst.region, f.dst.allowInsecure
		p.ca = f.sec.dstCA
	} else {
		if err := validateEndpoint("--staging-endpoint", p.stg.endpoint); err != nil {
			return err
		}
		p.stg.allowInsecure = f.sec.allowInsecureHTTP
		p.ca = f.caBundle
	}
	if p.stg.profile == "" && p.stg.secret == "" {
		p.stg.profile, p.stg.secret = f.dst.profile, f.dst.secret
	}
	for _, other := range []struct {
		name string
		loc  location.Location
		ep   string
	}{{"source", src, f.src.endpoint}, {"destination", dst, f.dst.endpoint}} {
		if location.Overlaps(loc, other.loc, endpointKey(p.stg.endpoint) == endpointKey(other.ep)) {
			return usageErr("--staging %s and the %s %s are the same location or one is inside the other", loc, other.name, other.loc)
		}
	}
	maxObj, err := parseSize(p.maxObject)
	if err != nil {
		return usageErr("--pack-max-object-size: %v", err)
	}
	if maxObj > job.MaxPackObjectSize {
		return usageErr("--pack-max-object-size %s: at most 64MiB (an unpacker holds each object in memory)", p.maxObject)
	}
	bsize, err := parseSize(p.bundleSize)
	if err != nil {
		return usageErr("--bundle-size: %v", err)
	}
	if bsize > 4<<30 {
		return usageErr("--bundle-size %s: at most 4GiB (a bundle is written with one PUT)", p.bundleSize)
	}
	level := job.LevelAuto
	if l := strings.TrimSpace(p.level); l != "auto" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 || n > 4 {
			return usageErr("--pack-level %q: want auto, or 0 (none) to 4", p.level)
		}
		level = n
	}
	p.loc = loc
	p.spec = &job.PackSpec{MaxObjectSize: maxObj, BundleSize: bsize, Level: level}
	return nil
}

// open checks that the staging location can be used (exit 2 otherwise)
// and records it in the spec.
func (p *packFlags) open(ctx context.Context) error {
	if p.spec == nil {
		return nil
	}
	op, err := openSide(ctx, sides.Staging, p.loc, p.stg, p.ca, 4)
	if err != nil {
		return err
	}
	if op.missing {
		if err := createDst(&op); err != nil {
			return err
		}
	}
	p.spec.Staging = specSide(p.loc, p.stg, p.ca)
	return nil
}

// workerOpenStaging opens a pack-mode job's staging location for a worker,
// within policy.
func workerOpenStaging(m *metrics.Metrics, policy *sides.Policy) func(context.Context, job.Spec) (store.Store, error) {
	return func(ctx context.Context, spec job.Spec) (store.Store, error) {
		var onRetry func(role, reason string)
		if m != nil {
			onRetry = func(role, reason string) { m.Retry(spec.ID, role, reason) }
		}
		o := sideOptions(32, onRetry)
		o.Policy = policy
		return sides.OpenStaging(ctx, spec, o)
	}
}
