package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/ferry-dev/ferry/internal/location"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/onekey"
)

// Single objects and files.
//
// A source that names one object ("s3://b/dir/photo.jpg" where that key is
// an object, or a regular local file) is copied alone, with rclone's
// copyto naming at the destination:
//
//   - DST ending in "/", a bucket root, or an existing directory (a local
//     directory; for S3 a prefix with objects below it and no object of
//     that exact name): the object goes inside it under its base name;
//   - otherwise DST is the exact target name (an existing object or file
//     there is updated like any copy).
//
// When "s3://b/key" is both an object and a prefix ("key/..."), the object
// wins, as in rclone; "s3://b/key/" names the prefix. Such a job is an
// ordinary durable job whose sides are the object's parent locations and
// whose spec names the keys (job.Side.Key); every process opens the sides
// as one-object views (package onekey), so listing, planning, copying,
// verifying, reconciling and the audit log work as for any job.

// objectSides is what resolveSides found.
type objectSides struct {
	src, dst opened
	// srcKey and dstKey are set for a single object: its key in src's
	// location (the view's name at both sides) and its target key in
	// dst's location.
	srcKey, dstKey string
}

func (o objectSides) single() bool { return o.srcKey != "" }

// hasTrailingSlash reports whether a location argument ends with a
// separator: it then names a prefix or directory, never an object.
func hasTrailingSlash(arg string) bool {
	return strings.HasSuffix(arg, "/") || strings.HasSuffix(arg, string(filepath.Separator))
}

// splitKey splits an S3 location's prefix "a/b/c/" (parsed from "a/b/c")
// into the parent prefix "a/b/" and the name "c".
func splitKey(prefix string) (parent, name string) {
	k := strings.TrimSuffix(prefix, "/")
	i := strings.LastIndexByte(k, '/')
	return k[:i+1], k[i+1:]
}

// resolveSides opens the source and destination, finding out whether the
// source is one object and, if so, what the destination names. It writes
// nothing. srcArg and dstArg are the arguments as typed.
func resolveSides(ctx context.Context, f jobFlags, srcArg, dstArg string, srcLoc, dstLoc location.Location) (objectSides, error) {
	var out objectSides
	srcParent, name, isObj, err := sourceObject(ctx, f, srcArg, srcLoc)
	if err != nil {
		return out, err
	}
	if !isObj {
		// Both at once: each may ask its server (bucket, region).
		var srcErr, dstErr error
		var g errgroup.Group
		g.Go(func() error {
			out.src, srcErr = openSide(ctx, "source", srcLoc, f.src, f.sec.srcCA, f.concurrency)
			return nil
		})
		g.Go(func() error {
			out.dst, dstErr = openSide(ctx, "destination", dstLoc, f.dst, f.sec.dstCA, f.concurrency)
			return nil
		})
		_ = g.Wait() // the errors are in srcErr and dstErr, the source's first
		if srcErr != nil {
			return out, srcErr
		}
		return out, dstErr
	}
	out.src = srcParent
	out.srcKey = name
	out.dst, out.dstKey, err = targetObject(ctx, f, dstArg, dstLoc, name)
	return out, err
}

// sourceObject reports whether the source names one object; if so it
// returns the source opened at the object's parent and the object's name.
func sourceObject(ctx context.Context, f jobFlags, arg string, loc location.Location) (opened, string, bool, error) {
	if hasTrailingSlash(arg) {
		return opened{}, "", false, nil
	}
	switch loc.Kind {
	case location.S3:
		if loc.Prefix == "" {
			return opened{}, "", false, nil
		}
		parentPrefix, name := splitKey(loc.Prefix)
		parentLoc := loc
		parentLoc.Prefix = parentPrefix
		parent, err := openSide(ctx, "source", parentLoc, f.src, f.sec.srcCA, f.concurrency)
		if err != nil {
			return opened{}, "", false, err
		}
		_, err = parent.store.Stat(ctx, name)
		switch {
		case err == nil:
			return parent, name, true, nil
		case errors.Is(err, store.ErrNotExist):
			return opened{}, "", false, nil // a prefix (or nothing)
		default:
			return opened{}, "", false, usageErr("source %s: %v", loc, err)
		}
	default:
		fi, err := os.Lstat(loc.Path)
		if err != nil || fi.IsDir() {
			return opened{}, "", false, nil // openSide reports what is wrong
		}
		if !fi.Mode().IsRegular() {
			return opened{}, "", false, usageErr("source %s: not a regular file or directory (ferry does not follow symbolic links)", loc.Path)
		}
		parentLoc := location.Location{Kind: location.Local, Path: filepath.Dir(loc.Path)}
		parent, err := openSide(ctx, "source", parentLoc, f.src, f.sec.srcCA, f.concurrency)
		if err != nil {
			return opened{}, "", false, err
		}
		return parent, filepath.Base(loc.Path), true, nil
	}
}

// targetObject works out where the object called name goes at the
// destination (see the package comment above) and opens the directory or
// prefix it goes in.
func targetObject(ctx context.Context, f jobFlags, arg string, loc location.Location, name string) (opened, string, error) {
	open := func(l location.Location) (opened, error) {
		return openSide(ctx, "destination", l, f.dst, f.sec.dstCA, f.concurrency)
	}
	switch loc.Kind {
	case location.S3:
		if hasTrailingSlash(arg) || loc.Prefix == "" {
			o, err := open(loc)
			return o, name, err
		}
		parentPrefix, target := splitKey(loc.Prefix)
		parentLoc := loc
		parentLoc.Prefix = parentPrefix
		parent, err := open(parentLoc)
		if err != nil {
			return opened{}, "", err
		}
		if _, err := parent.store.Stat(ctx, target); err == nil {
			return parent, target, nil // an existing object: updated
		} else if !errors.Is(err, store.ErrNotExist) {
			return opened{}, "", usageErr("destination %s: %v", loc, err)
		}
		for o, err := range parent.store.List(ctx, store.ListOptions{Prefix: target + "/"}) {
			if err != nil {
				return opened{}, "", usageErr("destination %s: %v", loc, err)
			}
			_ = o
			d, err := open(loc) // a "directory" with objects: inside it
			return d, name, err
		}
		return parent, target, nil
	default:
		fi, err := os.Stat(loc.Path)
		switch {
		case err == nil && fi.IsDir():
			o, err := open(loc)
			return o, name, err
		case hasTrailingSlash(arg):
			// "dir/" that does not exist yet: created, the file inside.
			o, err := open(loc)
			return o, name, err
		case err == nil && !fi.Mode().IsRegular():
			return opened{}, "", usageErr("destination %s: exists and is not a regular file or directory", loc.Path)
		case err != nil && !errors.Is(err, os.ErrNotExist):
			return opened{}, "", usageErr("destination %s: %v", loc.Path, unwrapPath(err))
		}
		parentLoc := location.Location{Kind: location.Local, Path: filepath.Dir(loc.Path)}
		o, err := open(parentLoc)
		return o, filepath.Base(loc.Path), err
	}
}

// objectLocation is the location of a single object as if it were a
// prefix or directory of its own, for the overlap check.
func objectLocation(loc location.Location, key string) location.Location {
	if loc.Kind == location.S3 {
		loc.Prefix += key + "/"
		return loc
	}
	loc.Path = filepath.Join(loc.Path, key)
	return loc
}

// objectViews turns a single-object job's stores into one-object views
// (package onekey): srcKey at both sides, dstKey the destination's name.
func objectViews(src, dst store.Store, srcKey, dstKey string) (store.Store, store.Store, error) {
	if srcKey == "" {
		return src, dst, nil
	}
	sv, err := onekey.New(src, srcKey, srcKey)
	if err != nil {
		return nil, nil, err
	}
	dv, err := onekey.New(dst, srcKey, dstKey)
	if err != nil {
		return nil, nil, err
	}
	return sv, dv, nil
}

// describeObject renders a single object's location for messages:
// "s3://b/dir/photo.jpg", "/data/one".
func describeObject(loc location.Location, key string) string {
	if loc.Kind == location.S3 {
		return loc.String() + key
	}
	return filepath.Join(loc.Path, key)
}
