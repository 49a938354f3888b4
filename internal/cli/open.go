package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"

	"github.com/ferry-dev/ferry/internal/location"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/local"
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

// openSide opens the store for one location and checks, without writing
// anything, that it can be used: the bucket exists and the credentials are
// accepted, or the local directory exists (a destination's parent must).
func openSide(ctx context.Context, role string, loc location.Location, sd side, caBundle string, conc int) (opened, error) {
	switch loc.Kind {
	case location.S3:
		creds, err := sideCredentials(ctx, role, sd)
		if err != nil {
			return opened{}, err
		}
		st, err := s3.Open(ctx, s3.Config{
			Bucket:      loc.Bucket,
			Prefix:      loc.Prefix,
			Endpoint:    sd.endpoint,
			Region:      sd.region,
			Profile:     sd.profile,
			CABundle:    caBundle,
			MaxConns:    conc * 2,
			Credentials: creds,
			OnRetry:     sd.onRetry,
		})
		if err != nil {
			return opened{}, usageErr("%s %s: %v", role, loc, err)
		}
		if err := checkResolvedEndpoint(role, sd, st.Endpoint()); err != nil {
			return opened{}, err
		}
		if err := st.CheckBucket(ctx); err != nil {
			if msg := st.Explain(ctx, err, role); msg != "" {
				return opened{}, &exitError{code: ExitUsage, err: explained{fmt.Sprintf("%s %s: %s", role, loc, msg), err}}
			}
			switch {
			case errors.Is(err, store.ErrBucketNotExist):
				return opened{}, usageErr("%s %s: bucket %q does not exist", role, loc, loc.Bucket)
			case errors.Is(err, store.ErrAccess):
				return opened{}, usageErr("%s %s: access denied: the server rejected the credentials or the request (%w)", role, loc, err)
			}
			return opened{}, usageErr("%s %s: %v", role, loc, err)
		}
		return opened{store: st, loc: loc, note: regionNote(role, loc, st)}, nil
	default:
		fi, err := os.Stat(loc.Path)
		if role == "destination" && errors.Is(err, os.ErrNotExist) {
			parent := filepath.Dir(loc.Path)
			if pfi, perr := os.Stat(parent); perr != nil || !pfi.IsDir() {
				return opened{}, usageErr("destination %s: does not exist, and neither does its parent directory %s", loc.Path, parent)
			}
			return opened{loc: loc, missing: true}, nil
		}
		if err != nil {
			return opened{}, usageErr("%s %s: %v", role, loc.Path, unwrapPath(err))
		}
		if !fi.IsDir() {
			return opened{}, usageErr("%s %s: not a directory", role, loc.Path)
		}
		f, err := os.Open(loc.Path)
		if err == nil {
			_, err = f.ReadDir(1)
			f.Close()
			if errors.Is(err, io.EOF) {
				err = nil
			}
		}
		if err != nil {
			return opened{}, usageErr("%s %s: cannot read the directory: %v", role, loc.Path, unwrapPath(err))
		}
		st, err := local.Open(loc.Path, local.Options{})
		if err != nil {
			return opened{}, usageErr("%s %s: %v", role, loc.Path, err)
		}
		return opened{store: st, loc: loc}, nil
	}
}

// createDst creates a missing local destination directory.
func createDst(o *opened) error {
	if !o.missing {
		return nil
	}
	st, err := local.Create(o.loc.Path)
	if err != nil {
		return fmt.Errorf("destination %s: %w", o.loc.Path, err)
	}
	o.store, o.missing = st, false
	return nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
