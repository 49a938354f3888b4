package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"

	"github.com/ferry-dev/ferry/internal/location"
	"github.com/ferry-dev/ferry/internal/secret"
	"github.com/ferry-dev/ferry/internal/sides"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/s3"
	"github.com/ferry-dev/ferry/internal/transport"
)

// side holds the per-side connection flags (--src-*, --dst-*).
type side struct {
	endpoint string
	region   string
	profile  string
	// allowInsecure accepts a plain http:// endpoint (security.go).
	allowInsecure bool
	// secret names the credentials in ferry's secret store (secret.go).
	secret string
	// onRetry, when set, is told of each S3 request retry (metrics.go).
	onRetry func(reason string)
}

// endpointKey normalizes an endpoint for "same service" comparisons.
func endpointKey(ep string) string {
	if ep == "" {
		return ""
	}
	u, err := url.Parse(ep)
	if err != nil {
		return ep
	}
	return u.Scheme + "://" + u.Host
}

func validateEndpoint(flag, ep string) error {
	if ep == "" {
		return nil
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return usageErr("%s %q: want a URL like https://host[:port]", flag, transport.Redact(ep))
	}
	if u.User != nil {
		return usageErr("%s: credentials are not accepted in an endpoint URL; %s", flag, safeCredentials)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		// The query and fragment are not echoed: a credential may have
		// been pasted there.
		return usageErr("%s %q: an endpoint has no path, query or fragment; put the bucket in the location (s3://bucket/prefix)", flag, transport.Redact(ep))
	}
	return nil
}

type opened struct {
	store store.Store
	loc   location.Location
	// missing is set for a local destination directory that does not exist
	// yet; create it (after every check passed) with createDst.
	missing bool
	// note, when not "", is an info line for the user (regionNote).
	note string
}

// regionNote says that an S3 store signs for the region its server named
// rather than the configured or default one.
func regionNote(role string, loc location.Location, st *s3.Store) string {
	if !st.RegionDiscovered() {
		return ""
	}
	flag := "--src-region"
	if role == "destination" {
		flag = "--dst-region"
	}
	return fmt.Sprintf("%s %s: bucket s3://%s is in region %s (the server says so); using it (%s %s skips asking)",
		role, loc, st.Bucket(), st.Region(), flag, st.Region())
}

// explained is an error told in words (s3.Explain) in place of its raw
// text, which stays in the chain for errors.Is and errors.As.
type explained struct {
	msg string
	err error
}

func (e explained) Error() string { return e.msg }
func (e explained) Unwrap() error { return e.err }

// sideConfig is the sides.Config of a location with its flags.
func sideConfig(loc location.Location, sd side, caBundle string) sides.Config {
	return sides.Config{Location: loc, Endpoint: sd.endpoint, Region: sd.region, Profile: sd.profile,
		Secret: sd.secret, CABundle: caBundle, AllowInsecureHTTP: sd.allowInsecure}
}

// sideOptions are the options of package sides for what this process's
// own user named: no policy, and ferry's secret store as the CLI opens it.
func sideOptions(conc int, onRetry func(role, reason string)) sides.Options {
	return sides.Options{Concurrency: conc, OnRetry: onRetry, Secrets: func() (*secret.Store, error) { return openSecrets(nil) }}
}

// openSide opens the store for one location and checks, without writing
// anything, that it can be used: the bucket exists and the credentials are
// accepted, or the local directory exists (a destination's parent must).
// Its errors are usage errors (exit 2) wrapping a *sides.Error.
func openSide(ctx context.Context, role string, loc location.Location, sd side, caBundle string, conc int) (opened, error) {
	var onRetry func(string, string)
	if sd.onRetry != nil {
		onRetry = func(_, reason string) { sd.onRetry(reason) }
	}
	return openWith(ctx, role, loc, sd, caBundle, sideOptions(conc, onRetry))
}

func openWith(ctx context.Context, role string, loc location.Location, sd side, caBundle string, o sides.Options) (opened, error) {
	op, err := sides.Open(ctx, role, sideConfig(loc, sd, caBundle), o)
	if err != nil {
		return opened{}, asUsage(err)
	}
	out := opened{store: op.Store, loc: loc, missing: op.Missing}
	if st := op.S3(); st != nil {
		out.note = regionNote(role, loc, st)
	}
	return out, nil
}

// createDst creates a missing local destination directory.
func createDst(o *opened) error {
	if !o.missing {
		return nil
	}
	op := sides.Opened{Location: o.loc, Missing: true}
	if err := op.Create(); err != nil {
		return err
	}
	o.store, o.missing = op.Store, false
	return nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
