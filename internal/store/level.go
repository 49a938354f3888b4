package store

import (
	"context"
	"iter"
	"strings"
)

// Entry is one item of a one-level listing: an object, or a common prefix
// ("dir/") standing for all keys below it.
type Entry struct {
	// Object is the object; for a common prefix only Key is set, to the
	// prefix including its trailing "/".
	Object
	// IsPrefix reports a common prefix.
	IsPrefix bool
}

// LevelLister is implemented by stores that can list one level of the key
// hierarchy, like S3 ListObjectsV2 with Delimiter "/".
type LevelLister interface {
	// ListLevel yields, in ascending key order, the entries directly under
	// opts.Prefix after opts.StartAfter:
	//
	//   - each object whose key has no "/" after the prefix, a directory
	//     marker equal to the prefix itself included;
	//   - each common prefix once: the prefix followed by the rest of a key
	//     up to and including its next "/".
	//
	// A common prefix is yielded when a key below it is after StartAfter,
	// even when StartAfter lies inside it (StartAfter "a/x" still yields
	// "a/" when "a/y" exists); it then sorts before StartAfter, but after
	// every entry before it. A store may yield a common prefix that holds
	// no listable key (a local directory of symbolic links only); callers
	// tolerate it.
	//
	// Expanding every common prefix with ListLevel gives exactly the keys of
	// List. Pages are fetched as the caller iterates, as for List; an error
	// is yielded as the last pair.
	ListLevel(ctx context.Context, opts ListOptions) iter.Seq2[Entry, error]
}

// ListLevel lists one level of s: with [LevelLister.ListLevel] when s
// implements it, else by rolling up a full [Store.List], which reads every
// key below the prefix.
func ListLevel(ctx context.Context, s Store, opts ListOptions) iter.Seq2[Entry, error] {
	if l, ok := s.(LevelLister); ok {
		return l.ListLevel(ctx, opts)
	}
	return RollUp(s.List(ctx, opts), opts)
}

// RollUp turns a key-ordered listing made with opts into a one-level listing:
// keys with a "/" after opts.Prefix become their common prefix, yielded once.
func RollUp(list iter.Seq2[Object, error], opts ListOptions) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		last := "" // the last common prefix yielded
		for o, err := range list {
			if err != nil {
				yield(Entry{}, err)
				return
			}
			e := Entry{Object: o}
			if cp, ok := CommonPrefix(opts.Prefix, o.Key); ok {
				if cp == last {
					continue
				}
				last = cp
				e = Entry{Object: Object{Key: cp}, IsPrefix: true}
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

// CommonPrefix returns the common prefix key rolls up to in a one-level
// listing of prefix: prefix and the rest of key up to its next "/". ok is
// false when key has no "/" after prefix (or does not start with it).
func CommonPrefix(prefix, key string) (cp string, ok bool) {
	rest, found := strings.CutPrefix(key, prefix)
	if !found {
		return "", false
	}
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return "", false
	}
	return key[:len(prefix)+i+1], true
}

// PrefixEnd returns the least string greater than every string starting with
// prefix: prefix with its last byte incremented, after dropping trailing 0xff
// bytes. ok is false when there is none (prefix is "" or all 0xff bytes).
func PrefixEnd(prefix string) (end string, ok bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}
