// Package plan merges a source and a destination listing, both in key order,
// into actions: copy, skip, check or delete. It holds one object of each
// listing at a time, so memory does not grow with the number of objects.
//
// The decision table (see [Decide]):
//
//	source  destination  condition                                 action  reason
//	yes     no           -                                         copy    new
//	yes     yes          sizes differ                              copy    size
//	yes     yes          both ETags set and equal                  skip    etag
//	yes     yes          destination keeps source mtimes, equal    skip    mtime
//	yes     yes          destination keeps source mtimes, differ   copy    mtime
//	yes     yes          source modified after destination written copy    newer
//	                     (in a later whole second)
//	yes     yes          otherwise                                 check   provenance
//	no      yes          Delete option set                         delete  extra
//	no      yes          Delete option not set                     (none)
//
// "check" means the listings cannot prove the destination holds this version
// of the source (different ETag schemes: multipart, encryption, local files);
// the transfer engine reads the destination's provenance metadata to decide.
//
// Two other comparison modes ([Options.Compare]) replace the rows between
// "sizes differ" and "otherwise":
//
//	CompareSizeOnly (--size-only): sizes equal                  skip    size
//	CompareChecksum (--checksum):  both ETags set and equal     skip    etag
//	                               otherwise                    check   checksum
//
// With --checksum, modification times are never looked at; the "check" asks
// the engine to compare checksums (transfer.Options.CompareChecksum).
//
// An object the filter excludes is neither copied nor deleted (see
// [Options.Selected]).
package plan

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/ferry-dev/ferry/internal/filter"
	"github.com/ferry-dev/ferry/internal/store"
)

// Kind is what to do with one key.
type Kind int

const (
	// Copy the source object to the destination.
	Copy Kind = iota
	// Skip: the destination already holds this version.
	Skip
	// Check the destination's provenance, then copy or skip.
	Check
	// Delete the destination object (sync --delete).
	Delete
)

func (k Kind) String() string {
	switch k {
	case Copy:
		return "copy"
	case Skip:
		return "skip"
	case Check:
		return "check"
	case Delete:
		return "delete"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Action is the plan for one key.
type Action struct {
	Kind Kind
	// Key is relative to both locations.
	Key string
	// Src is the source object; zero for Delete.
	Src store.Object
	// Dst is the destination object; HasDst is false when it is missing.
	Dst    store.Object
	HasDst bool
	Reason string
}

// Compare is how a source object is compared with the destination object
// of the same key.
type Compare string

const (
	// CompareDefault: size, ETag, modification time, then provenance.
	CompareDefault Compare = ""
	// CompareSizeOnly: equal sizes mean the same object (--size-only).
	CompareSizeOnly Compare = "size-only"
	// CompareChecksum: size and checksums, never modification times
	// (--checksum).
	CompareChecksum Compare = "checksum"
)

// Options tune the plan. The zero value copies what is missing or different
// and deletes nothing.
type Options struct {
	// Compare selects the comparison mode (default: CompareDefault).
	Compare Compare
	// Filter selects keys; nil selects all.
	Filter *filter.Filter
	// Delete emits Delete actions for destination keys absent at the source.
	Delete bool
	// DstKeepsMTime is set when the destination stores the source's
	// modification time as its own (local directories): equal times mean
	// the same version.
	DstKeepsMTime bool
}

// Selected reports whether the filter selects the pair: by its source
// object when there is one, else by its destination object. So a source
// object the filter excludes is neither copied nor (its destination
// counterpart) deleted, and a destination-only object is deleted (with
// Delete) only when the filter would select it: excluded objects are never
// deleted, as in rclone without --delete-excluded.
func (o Options) Selected(p Pair) bool {
	if p.Src != nil {
		return o.Filter.MatchObject(*p.Src)
	}
	if p.Dst != nil {
		return o.Filter.MatchObject(*p.Dst)
	}
	return false
}

// Pair is one key of a merged listing; Src or Dst is nil when the key is
// missing on that side.
type Pair = Joined[store.Object]

// ErrOutOfOrder: a listing yielded a key that is not greater than the one
// before it (or, one level at a time, an entry that is a common prefix on
// one side and an object on the other). Some S3-compatible servers do this
// with delimiter listings; callers may list the range again without one.
var ErrOutOfOrder = errors.New("listing is not in ascending key order")

// Joined is one key of two merged listings: the entry of each side that
// holds it (nil for a side that does not).
type Joined[T any] struct {
	Key      string
	Src, Dst *T
}

// MergeBy walks two listings sorted by key together and yields one Joined
// per distinct key, in order. A listing error, or a listing out of order
// (ErrOutOfOrder), is yielded as the last pair. It holds one entry of each
// side at a time.
func MergeBy[T any](ctx context.Context, src, dst iter.Seq2[T, error], key func(T) string) iter.Seq2[Joined[T], error] {
	return func(yield func(Joined[T], error) bool) {
		nextS, stopS := iter.Pull2(src)
		defer stopS()
		nextD, stopD := iter.Pull2(dst)
		defer stopD()

		var lastS, lastD string
		var firstS, firstD = true, true
		pull := func(next func() (T, error, bool), last *string, first *bool, side string) (*T, error) {
			o, err, ok := next()
			if !ok {
				return nil, nil
			}
			if err != nil {
				return nil, fmt.Errorf("list %s: %w", side, err)
			}
			k := key(o)
			if !*first && k <= *last {
				return nil, fmt.Errorf("list %s: key %q after %q: %w", side, k, *last, ErrOutOfOrder)
			}
			*first = false
			*last = k
			return &o, nil
		}
		s, err := pull(nextS, &lastS, &firstS, "source")
		if err != nil {
			yield(Joined[T]{}, err)
			return
		}
		d, err := pull(nextD, &lastD, &firstD, "destination")
		if err != nil {
			yield(Joined[T]{}, err)
			return
		}
		for s != nil || d != nil {
			if err := ctx.Err(); err != nil {
				yield(Joined[T]{}, err)
				return
			}
			var j Joined[T]
			switch {
			case d == nil || (s != nil && key(*s) < key(*d)):
				j = Joined[T]{Key: key(*s), Src: s}
			case s == nil || key(*d) < key(*s):
				j = Joined[T]{Key: key(*d), Dst: d}
			default:
				j = Joined[T]{Key: key(*s), Src: s, Dst: d}
			}
			if !yield(j, nil) {
				return
			}
			if j.Src != nil {
				if s, err = pull(nextS, &lastS, &firstS, "source"); err != nil {
					yield(Joined[T]{}, err)
					return
				}
			}
			if j.Dst != nil {
				if d, err = pull(nextD, &lastD, &firstD, "destination"); err != nil {
					yield(Joined[T]{}, err)
					return
				}
			}
		}
	}
}

// Merge merges two object listings by key (see [MergeBy]).
func Merge(ctx context.Context, src, dst iter.Seq2[store.Object, error]) iter.Seq2[Pair, error] {
	return MergeBy(ctx, src, dst, func(o store.Object) string { return o.Key })
}

// Plan merges the listings and yields an action per key that needs one
// (Skip included, so callers can count it). An error is the last pair; the
// caller must not act on Delete actions of a plan that ended in an error
// (see the runner, which defers deletes until the plan completed).
func Plan(ctx context.Context, src, dst iter.Seq2[store.Object, error], opts Options) iter.Seq2[Action, error] {
	return func(yield func(Action, error) bool) {
		for p, err := range Merge(ctx, src, dst) {
			if err != nil {
				yield(Action{}, err)
				return
			}
			if !opts.Selected(p) {
				continue
			}
			a, ok := Decide(p, opts)
			if !ok {
				continue
			}
			if !yield(a, nil) {
				return
			}
		}
	}
}

// Decide applies the decision table to one pair. ok is false when the key
// needs no action at all (a destination-only key without Delete).
func Decide(p Pair, opts Options) (a Action, ok bool) {
	a.Key = p.Key
	if p.Dst != nil {
		a.Dst, a.HasDst = *p.Dst, true
	}
	if p.Src == nil {
		if !opts.Delete {
			return a, false
		}
		a.Kind, a.Reason = Delete, "extra"
		return a, true
	}
	a.Src = *p.Src
	s, d := p.Src, p.Dst
	switch {
	case d == nil:
		a.Kind, a.Reason = Copy, "new"
	case s.Size != d.Size:
		a.Kind, a.Reason = Copy, "size"
	case opts.Compare == CompareSizeOnly:
		a.Kind, a.Reason = Skip, "size"
	case opts.Compare == CompareChecksum:
		if s.ETag != "" && s.ETag == d.ETag {
			a.Kind, a.Reason = Skip, "etag"
		} else {
			// Different ETags may still be the same bytes (multipart
			// layouts, encryption): the engine compares checksums.
			a.Kind, a.Reason = Check, "checksum"
		}
	case s.ETag != "" && s.ETag == d.ETag:
		a.Kind, a.Reason = Skip, "etag"
	case opts.DstKeepsMTime && sameSecond(s.LastModified, d.LastModified):
		a.Kind, a.Reason = Skip, "mtime"
	case opts.DstKeepsMTime:
		a.Kind, a.Reason = Copy, "mtime"
	case s.LastModified.Truncate(time.Second).After(d.LastModified):
		// Whole seconds: S3 listings may carry only seconds, and a source
		// written in the same second as its copy must not look newer
		// (such cases fall through to the provenance check).
		a.Kind, a.Reason = Copy, "newer"
	default:
		a.Kind, a.Reason = Check, "provenance"
	}
	return a, true
}

// sameSecond compares modification times at one-second precision: S3
// listings and HTTP headers carry seconds (some servers milliseconds).
func sameSecond(a, b time.Time) bool {
	return a.Truncate(time.Second).Equal(b.Truncate(time.Second))
}

// IsMarker reports whether an object is a zero-byte directory marker.
func IsMarker(o store.Object) bool { return o.Size == 0 && strings.HasSuffix(o.Key, "/") }

// ErrDeleteLimit: a sync would delete more than --max-delete allows.
var ErrDeleteLimit = errors.New("delete limit exceeded")

// CheckDeleteLimit checks that deleting n of the destination's total
// listed objects stays within maxN objects (0: no limit, negative: none at
// all) and maxPct percent (likewise). The error wraps [ErrDeleteLimit].
func CheckDeleteLimit(n, total, maxN int64, maxPct float64) error {
	if maxN != 0 && n > max(maxN, 0) {
		return fmt.Errorf("%w: sync would delete %d objects, more than --max-delete %d; nothing was deleted (use --force to delete anyway)", ErrDeleteLimit, n, max(maxN, 0))
	}
	if maxPct != 0 && float64(n)*100 > max(maxPct, 0)*float64(total) {
		return fmt.Errorf("%w: sync would delete %d of %d destination objects, more than --max-delete %g%%; nothing was deleted (use --force to delete anyway)", ErrDeleteLimit, n, total, max(maxPct, 0))
	}
	return nil
}
