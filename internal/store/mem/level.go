package mem

import (
	"context"
	"fmt"
	"iter"
	"sort"
	"strings"

	"github.com/ferry-dev/ferry/internal/store"
)

var _ store.LevelLister = (*Store)(nil)

// OpListLevel names ListLevel for the fault hook and [Store.Calls].
const OpListLevel = "ListLevel"

// ListLevel yields one level under opts.Prefix in pages of 100 entries,
// taking the lock once per page. A common prefix counts as one entry, and
// the page after it starts beyond all its keys.
func (s *Store) ListLevel(ctx context.Context, opts store.ListOptions) iter.Seq2[store.Entry, error] {
	return func(yield func(store.Entry, error) bool) {
		if err := s.begin(OpListLevel, opts.Prefix); err != nil {
			yield(store.Entry{}, fmt.Errorf("mem: list level: %w", err))
			return
		}
		from, inclusive := opts.StartAfter, false
		if opts.Prefix > opts.StartAfter {
			from, inclusive = opts.Prefix, true
		}
		for {
			if err := ctx.Err(); err != nil {
				yield(store.Entry{}, fmt.Errorf("mem: list level: %w", err))
				return
			}
			var page []store.Entry
			var more bool
			page, from, inclusive, more = s.levelPage(opts.Prefix, from, inclusive)
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
			}
			if !more {
				return
			}
		}
	}
}

// levelPage returns up to pageSize entries of the level under prefix, from
// the key from on (inclusive) or after it, and where the next page starts
// and whether inclusively; more is false at the end of the level.
func (s *Store) levelPage(prefix, from string, inclusive bool) (page []store.Entry, next string, nextInclusive, more bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(page) < pageSize {
		i := sort.Search(len(s.keys), func(i int) bool {
			return s.keys[i] > from || (inclusive && s.keys[i] == from)
		})
		if i == len(s.keys) || !strings.HasPrefix(s.keys[i], prefix) {
			return page, "", false, false
		}
		k := s.keys[i]
		cp, ok := store.CommonPrefix(prefix, k)
		if !ok {
			page = append(page, store.Entry{Object: s.objs[k].attrs.Object})
			from, inclusive = k, false
			continue
		}
		page = append(page, store.Entry{Object: store.Object{Key: cp}, IsPrefix: true})
		end, ok := store.PrefixEnd(cp)
		if !ok {
			return page, "", false, false
		}
		from, inclusive = end, true
	}
	return page, from, inclusive, true
}
