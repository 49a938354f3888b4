package s3

import (
	"context"
	"errors"
	"iter"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ferry-dev/ferry/internal/store"
)

var _ store.LevelLister = (*Store)(nil)

// ListLevel yields one level under opts.Prefix, a ListObjectsV2 page (with
// Delimiter "/") at a time, merging each page's objects and common prefixes
// in key order. Keys and common prefixes are decoded as List decodes them,
// and an undecodable one is likewise yielded as an error in its place.
//
// Servers differ on a StartAfter inside a common prefix ("a/x" in "a/"): AWS
// returns "a/" when a key below it follows StartAfter, MinIO leaves it out.
// ListLevel asks for the first such key itself and yields "a/" first when
// there is one, dropping the server's own "a/" if it sends it.
func (s *Store) ListLevel(ctx context.Context, opts store.ListOptions) iter.Seq2[store.Entry, error] {
	prefix := s.prefix + opts.Prefix
	if safeListPrefix(prefix) != prefix {
		// MinIO rejects the prefix: roll up the filtered full listing.
		return store.RollUp(s.List(ctx, opts), opts)
	}
	return func(yield func(store.Entry, error) bool) {
		where := s.url(opts.Prefix)
		skip := "" // a common prefix already yielded
		if cp, ok := store.CommonPrefix(opts.Prefix, opts.StartAfter); ok {
			found := false
			for _, err := range s.List(ctx, store.ListOptions{Prefix: cp, StartAfter: opts.StartAfter}) {
				// An undecodable key still shows the prefix holds one; its
				// error comes with the listing of that prefix.
				if err != nil && !errors.Is(err, errUndecodableKey) {
					yield(store.Entry{}, err)
					return
				}
				found = true
				break
			}
			if found {
				if !yield(store.Entry{Object: store.Object{Key: cp}, IsPrefix: true}, nil) {
					return
				}
				skip = cp
			}
		}
		in := s.listInput(prefix, opts.StartAfter, "/")
		for page, err := range s.listPages(ctx, in, where) {
			if err != nil {
				yield(store.Entry{}, err)
				return
			}
			items, err := s.pageItems(page, where, aws.ToString(in.StartAfter))
			if err != nil {
				yield(store.Entry{}, err)
				return
			}
			for _, it := range items {
				if it.err != nil {
					if !yield(store.Entry{}, it.err) {
						return
					}
					continue
				}
				if it.IsPrefix && it.Key == skip {
					continue
				}
				if !yield(it.Entry, nil) {
					return
				}
			}
		}
	}
}
