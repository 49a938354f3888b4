// Package sides opens the store of one side of a copy — a location with
// its endpoint, region and credentials reference (a profile or a secret in
// ferry's store) — for every part of ferry that needs one: the CLI for the
// locations its user named, the coordinator for its probes and its final
// reconciliation, and workers for the sides a job's spec names.
//
// Its errors are *Error: they carry the side ("source", "destination"),
// its location and endpoint, and a Class (bad input, credentials, not
// found, network, refused by policy), so callers decide what to do from
// the class, never from the text.
//
// A worker runs jobs other machines created, so what it opens is bounded
// by its operator's Policy (--allow-local, --allow-endpoint,
// --allow-secret, --allow-profile), checked here before anything is
// opened: see policy.go.
package sides

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/location"
	"github.com/ferry-dev/ferry/internal/secret"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/local"
	"github.com/ferry-dev/ferry/internal/store/onekey"
	"github.com/ferry-dev/ferry/internal/store/s3"
	"github.com/ferry-dev/ferry/internal/transport"
)

// Roles of a side.
const (
	Source      = "source"
	Destination = "destination"
	// Staging is a pack-mode job's staging location (bundles between
	// packing and unpacking).
	Staging = "staging"
)

// Class is what kind of failure an *Error is.
type Class string

// Classes of *Error.
const (
	// Invalid: the side itself is malformed (a bad location, a profile
	// and a secret both named, a plain-text endpoint not allowed).
	Invalid Class = "invalid"
	// Credentials: the credentials are missing or the server rejects them.
	Credentials Class = "credentials"
	// NotFound: the bucket, directory or secret does not exist.
	NotFound Class = "not found"
	// Network: the endpoint could not be reached.
	Network Class = "network"
	// Refused: the worker's operator did not allow this side (Policy).
	Refused Class = "refused by policy"
	// Other: anything else (a server error).
	Other Class = "other"
)

// ErrRefused is wrapped by every error of class Refused.
var ErrRefused = errors.New("refused by this worker's allow-lists")

// Error is a failure to open one side.
type Error struct {
	Role     string // Source or Destination
	Location string
	// Endpoint is the side's endpoint URL, "" for AWS's default.
	Endpoint string
	Class    Class
	msg      string
	err      error
}

func (e *Error) Error() string { return e.msg }
func (e *Error) Unwrap() error { return e.err }

// ClassOf returns the class of err's *Error, or "" when it has none.
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return ""
}

// Where names the side of an *Error for people: "destination s3://b/ at
// https://host:9000" ("at the default AWS endpoint" without one; nothing
// more for a local directory).
func (e *Error) Where() string {
	if strings.HasPrefix(e.Location, "s3://") {
		ep := e.Endpoint
		if ep == "" {
			ep = "the default AWS endpoint"
		}
		return e.Role + " " + e.Location + " at " + ep
	}
	return e.Role + " " + e.Location
}

func newErr(role string, c Config, class Class, err error, format string, a ...any) *Error {
	return &Error{Role: role, Location: c.Location.Canonical(), Endpoint: c.Endpoint, Class: class, msg: fmt.Sprintf(format, a...), err: err}
}

// classify tells the class of a store's or the network's error.
func classify(err error) Class {
	var ne net.Error
	switch {
	case errors.Is(err, ErrRefused):
		return Refused
	case errors.Is(err, store.ErrAccess):
		return Credentials
	case errors.Is(err, store.ErrBucketNotExist), errors.Is(err, os.ErrNotExist), errors.Is(err, secret.ErrNotFound):
		return NotFound
	case errors.As(err, &ne), errors.Is(err, context.DeadlineExceeded):
		return Network
	}
	return Other
}

// Config is one side: a location and how to reach it.
type Config struct {
	Location location.Location
	Endpoint string
	Region   string
	Profile  string
	// Secret names credentials in ferry's secret store.
	Secret   string
	CABundle string
	// AllowInsecureHTTP accepts a plain http:// endpoint on a non-loopback
	// host.
	AllowInsecureHTTP bool
}

// FromSpec returns the Config of a job's side.
func FromSpec(role string, s job.Side) (Config, error) {
	loc, err := location.Parse(s.Location)
	if err != nil {
		c := Config{Endpoint: s.Endpoint}
		e := newErr(role, c, Invalid, err, "%s: %v", role, err)
		e.Location = s.Location
		return c, e
	}
	return Config{Location: loc, Endpoint: s.Endpoint, Region: s.Region, Profile: s.Profile, Secret: s.Secret,
		CABundle: s.CABundle, AllowInsecureHTTP: s.AllowInsecureHTTP}, nil
}

// Spec returns the job side of c.
func (c Config) Spec() job.Side {
	return job.Side{Location: c.Location.Canonical(), Endpoint: c.Endpoint, Region: c.Region, Profile: c.Profile,
		Secret: c.Secret, CABundle: c.CABundle, AllowInsecureHTTP: c.AllowInsecureHTTP}
}

// Options tune Open.
type Options struct {
	// Concurrency sizes an S3 store's connection pool (2 per object in
	// flight; default 32).
	Concurrency int
	// OnRetry, when set, is told of every S3 request retry with the side
	// and the reason.
	OnRetry func(role, reason string)
	// Policy bounds what may be opened (nil: anything; the CLI opening
	// what its own user named).
	Policy *Policy
	// Secrets opens ferry's secret store (default secret.Open with its
	// default options).
	Secrets func() (*secret.Store, error)
	// NoBucketCheck skips checking that an S3 bucket exists and accepts the
	// credentials (preflight reports those itself).
	NoBucketCheck bool
	// RetryMaxAttempts bounds an S3 request's attempts (0: the store's
	// default).
	RetryMaxAttempts int
}

// Opened is an opened side.
type Opened struct {
	Store    store.Store
	Location location.Location
	// Missing is set for a local destination directory that does not
	// exist yet; Create makes it (after every other check passed).
	Missing bool
	// policy, when set, confines a local store to the allowed directory
	// that holds it (Policy.openConfined).
	policy *Policy
}

// S3 returns the S3 store of o, or nil.
func (o Opened) S3() *s3.Store {
	st, _ := o.Store.(*s3.Store)
	return st
}

// Create creates a missing local destination directory.
func (o *Opened) Create() error {
	if !o.Missing {
		return nil
	}
	var st *local.Store
	var err error
	if o.policy != nil {
		var r *os.Root
		if r, err = o.policy.openConfined(o.Location.Path, true); err == nil {
			st = local.FromRoot(r, o.Location.Path, local.Options{})
		}
	} else {
		st, err = local.Create(o.Location.Path)
	}
	if err != nil {
		return &Error{Role: Destination, Location: o.Location.Canonical(), Class: classify(err), msg: fmt.Sprintf("destination %s: %v", o.Location.Path, err), err: err}
	}
	o.Store, o.Missing = st, false
	return nil
}

// Open opens one side and checks, without writing anything, that it can be
// used: the bucket exists and accepts the credentials, or the local
// directory exists (a missing destination's parent must: Opened.Missing).
func Open(ctx context.Context, role string, c Config, o Options) (Opened, error) {
	if err := o.Policy.Check(role, c); err != nil {
		return Opened{}, err
	}
	if c.Location.Kind == location.S3 {
		return openS3(ctx, role, c, o)
	}
	return openLocal(role, c, o.Policy)
}

func openS3(ctx context.Context, role string, c Config, o Options) (Opened, error) {
	loc := c.Location
	if c.Endpoint != "" {
		if err := transport.Check(role+" endpoint", c.Endpoint, c.AllowInsecureHTTP); err != nil {
			return Opened{}, newErr(role, c, Invalid, err, "%v", err)
		}
	}
	creds, err := credentials(ctx, role, c, o)
	if err != nil {
		return Opened{}, err
	}
	conc := o.Concurrency
	if conc <= 0 {
		conc = 32
	}
	var onRetry func(string)
	if o.OnRetry != nil {
		onRetry = func(reason string) { o.OnRetry(role, reason) }
	}
	st, err := s3.Open(ctx, s3.Config{
		Bucket: loc.Bucket, Prefix: loc.Prefix,
		Endpoint: c.Endpoint, Region: c.Region, Profile: c.Profile,
		CABundle: c.CABundle, MaxConns: conc * 2, Credentials: creds,
		RetryMaxAttempts: o.RetryMaxAttempts, OnRetry: onRetry,
	})
	if err != nil {
		return Opened{}, newErr(role, c, classify(err), err, "%s %s: %v", role, loc, err)
	}
	if c.Endpoint == "" && st.Endpoint() != "" {
		// An endpoint from the AWS configuration (endpoint_url,
		// AWS_ENDPOINT_URL) gets the transport rule too.
		name := role + " endpoint (from the AWS configuration)"
		if err := transport.Check(name, st.Endpoint(), c.AllowInsecureHTTP); err != nil {
			return Opened{}, newErr(role, c, Invalid, err, "%v", err)
		}
	}
	if o.NoBucketCheck {
		return Opened{Store: st, Location: loc}, nil
	}
	if err := st.CheckBucket(ctx); err != nil {
		class := classify(err)
		if msg := st.Explain(ctx, err, role); msg != "" {
			return Opened{}, newErr(role, c, class, err, "%s %s: %s", role, loc, msg)
		}
		switch {
		case errors.Is(err, store.ErrBucketNotExist):
			return Opened{}, newErr(role, c, NotFound, err, "%s %s: bucket %q does not exist", role, loc, loc.Bucket)
		case errors.Is(err, store.ErrAccess):
			return Opened{}, newErr(role, c, Credentials, err, "%s %s: access denied: the server rejected the credentials or the request (%v)", role, loc, err)
		}
		return Opened{}, newErr(role, c, class, err, "%s %s: %v", role, loc, err)
	}
	return Opened{Store: st, Location: loc}, nil
}

// With a policy the store is confined to the allowed directory holding it.
func openLocal(role string, c Config, p *Policy) (Opened, error) {
	loc := c.Location
	fi, err := os.Stat(loc.Path)
	if (role == Destination || role == Staging) && errors.Is(err, os.ErrNotExist) {
		parent := filepath.Dir(loc.Path)
		if pfi, perr := os.Stat(parent); perr != nil || !pfi.IsDir() {
			return Opened{}, newErr(role, c, NotFound, err, "destination %s: does not exist, and neither does its parent directory %s", loc.Path, parent)
		}
		return Opened{Location: loc, Missing: true, policy: p}, nil
	}
	if err != nil {
		return Opened{}, newErr(role, c, classify(err), err, "%s %s: %v", role, loc.Path, unwrapPath(err))
	}
	if !fi.IsDir() {
		return Opened{}, newErr(role, c, Invalid, nil, "%s %s: not a directory", role, loc.Path)
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
		return Opened{}, newErr(role, c, classify(err), err, "%s %s: cannot read the directory: %v", role, loc.Path, unwrapPath(err))
	}
	if p != nil {
		r, err := p.openConfined(loc.Path, false)
		if err != nil {
			return Opened{}, newErr(role, c, Refused, ErrRefused, "%s %s: %v", role, loc.Path, unwrapPath(err))
		}
		return Opened{Store: local.FromRoot(r, loc.Path, local.Options{}), Location: loc}, nil
	}
	st, err := local.Open(loc.Path, local.Options{})
	if err != nil {
		return Opened{}, newErr(role, c, classify(err), err, "%s %s: %v", role, loc.Path, err)
	}
	return Opened{Store: st, Location: loc}, nil
}

// credentials returns the credentials of c's secret, or nil to use its
// profile or the AWS default chain.
func credentials(ctx context.Context, role string, c Config, o Options) (aws.CredentialsProvider, error) {
	if c.Secret == "" {
		return nil, nil
	}
	pre := "--src-"
	if role == Destination {
		pre = "--dst-"
	}
	if c.Profile != "" {
		return nil, newErr(role, c, Invalid, nil, "%ssecret and %sprofile both name the %s's credentials; use one", pre, pre, role)
	}
	if err := secret.ValidateName(c.Secret); err != nil {
		return nil, newErr(role, c, Invalid, err, "%ssecret: %v", pre, err)
	}
	open := o.Secrets
	if open == nil {
		open = func() (*secret.Store, error) { return secret.Open(secret.Options{}) }
	}
	st, err := open()
	if err != nil {
		return nil, newErr(role, c, Credentials, err, "%ssecret %s: %v", pre, c.Secret, err)
	}
	p, err := st.AWSCredentials(ctx, c.Secret)
	if errors.Is(err, secret.ErrNotFound) {
		return nil, newErr(role, c, NotFound, err, "%ssecret %s: no such secret in %s; store it with 'ferry secret set %s'", pre, c.Secret, st.Dir(), c.Secret)
	}
	if err != nil {
		return nil, newErr(role, c, Credentials, err, "%ssecret %s: %v", pre, c.Secret, err)
	}
	return p, nil
}

// OpenJob opens a job's source and destination as its spec names them,
// within o.Policy, creating a missing local destination directory; a
// single-object job gets one-object views.
func OpenJob(ctx context.Context, spec job.Spec, o Options) (src, dst store.Store, err error) {
	sc, err := FromSpec(Source, spec.Src)
	if err != nil {
		return nil, nil, err
	}
	dc, err := FromSpec(Destination, spec.Dst)
	if err != nil {
		return nil, nil, err
	}
	// Both sides are checked before either is opened: a refused side
	// never leaves the other one touched.
	if err := o.Policy.Check(Source, sc); err != nil {
		return nil, nil, err
	}
	if err := o.Policy.Check(Destination, dc); err != nil {
		return nil, nil, err
	}
	so, err := Open(ctx, Source, sc, o)
	if err != nil {
		return nil, nil, err
	}
	do, err := openJobDst(ctx, dc, o)
	if err != nil {
		return nil, nil, err
	}
	return ObjectViews(so.Store, do, spec.Src.Key, spec.Dst.Key)
}

// OpenJobDst opens a job's destination (a one-object view for a
// single-object job).
func OpenJobDst(ctx context.Context, spec job.Spec, o Options) (store.Store, error) {
	dc, err := FromSpec(Destination, spec.Dst)
	if err != nil {
		return nil, err
	}
	do, err := openJobDst(ctx, dc, o)
	if err != nil || spec.Src.Key == "" {
		return do, err
	}
	return onekey.New(do, spec.Src.Key, spec.Dst.Key)
}

// openJobDst opens a job's destination; a missing local directory is
// created, its parents too (the job was checked when it was created).
func openJobDst(ctx context.Context, c Config, o Options) (store.Store, error) {
	if err := o.Policy.Check(Destination, c); err != nil {
		return nil, err
	}
	if c.Location.Kind == location.Local {
		if _, err := os.Stat(c.Location.Path); errors.Is(err, os.ErrNotExist) {
			d := Opened{Location: c.Location, Missing: true, policy: o.Policy}
			if err := d.Create(); err != nil {
				return nil, err
			}
			return d.Store, nil
		}
	}
	d, err := Open(ctx, Destination, c, o)
	if err != nil {
		return nil, err
	}
	if err := d.Create(); err != nil {
		return nil, err
	}
	return d.Store, nil
}

// ObjectViews narrows src and dst to one object (srcKey at the source,
// dstKey at the destination) for a single-object job; with srcKey "" they
// are returned as they are.
func ObjectViews(src, dst store.Store, srcKey, dstKey string) (store.Store, store.Store, error) {
	if srcKey == "" {
		return src, dst, nil
	}
	sv, err := onekey.New(src, srcKey, srcKey)
	if err != nil {
		return nil, nil, fmt.Errorf("source object %q: %w", srcKey, err)
	}
	dv, err := onekey.New(dst, srcKey, dstKey)
	if err != nil {
		return nil, nil, fmt.Errorf("destination object %q: %w", dstKey, err)
	}
	return sv, dv, nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// OpenStaging opens a pack-mode job's staging location, within o.Policy,
// creating a missing local directory.
func OpenStaging(ctx context.Context, spec job.Spec, o Options) (store.Store, error) {
	if spec.Pack == nil {
		return nil, fmt.Errorf("job %s is not a pack-mode job", spec.ID)
	}
	c, err := FromSpec(Staging, spec.Pack.Staging)
	if err != nil {
		return nil, err
	}
	if err := o.Policy.Check(Staging, c); err != nil {
		return nil, err
	}
	op, err := Open(ctx, Staging, c, o)
	if err != nil {
		return nil, err
	}
	if err := op.Create(); err != nil {
		return nil, err
	}
	return op.Store, nil
}
