package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ferry-dev/ferry/internal/store"
)

// RunLevel runs the conformance tests of [store.LevelLister]: the stores
// newStore returns must implement it. Options are those of [Run].
func RunLevel(t *testing.T, newStore func(t *testing.T) store.Store, opts Options) {
	s := &suite{newStore: newStore, opts: opts}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"LevelTricky", s.testLevelTricky},
		{"LevelRandom", s.testLevelRandom},
		{"LevelMarkers", s.testLevelMarkers},
		{"LevelPagination", s.testLevelPagination},
		{"LevelBreak", s.testLevelBreak},
		{"LevelCanceled", s.testLevelCanceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.fn)
	}
}

// levelLister returns st as a LevelLister, failing the test when it is not.
func levelLister(t *testing.T, st store.Store) store.LevelLister {
	t.Helper()
	l, ok := st.(store.LevelLister)
	if !ok {
		t.Fatalf("%T does not implement store.LevelLister", st)
	}
	return l
}

// ListLevel returns the entries of a one-level listing as keys, common
// prefixes marked by a trailing "/" and a "(prefix)" note, failing the test
// on an error.
func ListLevel(t *testing.T, st store.Store, opts store.ListOptions) []string {
	t.Helper()
	var got []string
	for e, err := range levelLister(t, st).ListLevel(t.Context(), opts) {
		if err != nil {
			t.Fatalf("ListLevel(%+v): %v", opts, err)
		}
		got = append(got, levelName(e.Key, e.IsPrefix))
	}
	return got
}

func levelName(key string, isPrefix bool) string {
	if isPrefix {
		return key + " (prefix)"
	}
	return key
}

// expectLevel returns what a one-level listing with opts must yield from
// keys: a common prefix when any key below it is after StartAfter.
func expectLevel(keys []string, opts store.ListOptions) []string {
	type ent struct {
		key      string
		isPrefix bool
	}
	seen := map[string]bool{}
	var ents []ent
	for _, k := range keys {
		if !strings.HasPrefix(k, opts.Prefix) || k <= opts.StartAfter {
			continue
		}
		e := ent{key: k}
		if cp, ok := store.CommonPrefix(opts.Prefix, k); ok {
			e = ent{key: cp, isPrefix: true}
		}
		if !seen[e.key] {
			seen[e.key] = true
			ents = append(ents, e)
		}
	}
	slices.SortFunc(ents, func(a, b ent) int { return strings.Compare(a.key, b.key) })
	var want []string
	for _, e := range ents {
		want = append(want, levelName(e.key, e.isPrefix))
	}
	return want
}

func checkLevel(t *testing.T, st store.Store, keys []string, opts store.ListOptions) {
	t.Helper()
	got := ListLevel(t, st, opts)
	if want := expectLevel(keys, opts); !slices.Equal(got, want) {
		t.Errorf("ListLevel(prefix %q, start after %q):\n got %q\nwant %q", opts.Prefix, opts.StartAfter, got, want)
	}
}

// expand lists the tree under prefix by one-level listings, descending into
// every common prefix.
func expand(ctx context.Context, l store.LevelLister, prefix string) ([]string, error) {
	var keys []string
	for e, err := range l.ListLevel(ctx, store.ListOptions{Prefix: prefix}) {
		if err != nil {
			return nil, err
		}
		if !e.IsPrefix {
			keys = append(keys, e.Key)
			continue
		}
		if !strings.HasPrefix(e.Key, prefix) || len(e.Key) <= len(prefix) || !strings.HasSuffix(e.Key, "/") {
			return nil, fmt.Errorf("common prefix %q of level %q", e.Key, prefix)
		}
		sub, err := expand(ctx, l, e.Key)
		if err != nil {
			return nil, err
		}
		keys = append(keys, sub...)
	}
	return keys, nil
}

func checkExpand(t *testing.T, st store.Store) {
	t.Helper()
	got, err := expand(t.Context(), levelLister(t, st), "")
	if err != nil {
		t.Fatalf("expand: %v", err)
	}
	if want := List(t, st, store.ListOptions{}); !slices.Equal(got, want) {
		t.Errorf("expanding one-level listings:\n got %q\nwant %q (List)", got, want)
	}
}

func (s *suite) testLevelTricky(t *testing.T) {
	st := s.newStore(t)
	keys := append(slices.Clone(trickyKeys), "m/", "n/o/", "x/y/z/w", "x/y/z0", "x/y0")
	putMany(t, st, keys)
	checkExpand(t, st)
	prefixes := []string{"", "a", "a/", "a/b", "a/b/", "d", "d/", "日本", "日本/", "with space", "x/", "x/y/", "m/", "n/", "n/o/", "nothing/", "a-"}
	startAfters := []string{"", "a", "a/", "a/b", "a/b-c", "a/b/", "a/b/c", "a/b/d", "a/a", "d/", "d-", "d/x", "x/y/z/", "x/y/z/a", "x/y/z/w", "x/y/", "m", "m/", "n/", "n/o", "n/o/", "é", "日本/", "z"}
	for _, p := range prefixes {
		for _, sa := range startAfters {
			checkLevel(t, st, keys, store.ListOptions{Prefix: p, StartAfter: sa})
		}
	}
}

func (s *suite) testLevelRandom(t *testing.T) {
	st := s.newStore(t)
	r := rand.New(rand.NewPCG(3, 4))
	keys := randomKeys(r, 150)
	putMany(t, st, keys)
	checkExpand(t, st)
	probes := append(randomKeys(r, 60), "", "/", "a/", "é/", "a-", "a.", "a/b/")
	for i, p := range probes {
		opts := store.ListOptions{StartAfter: p}
		switch i % 3 {
		case 1:
			opts = store.ListOptions{Prefix: p}
		case 2:
			cut := strings.LastIndexByte(p, '/') + 1
			if r.IntN(2) == 0 {
				cut = len(p) / 2
				for cut > 0 && !utf8.RuneStart(p[cut]) {
					cut--
				}
			}
			opts = store.ListOptions{Prefix: p[:cut], StartAfter: p}
		}
		checkLevel(t, st, keys, opts)
	}
}

func (s *suite) testLevelMarkers(t *testing.T) {
	st := s.newStore(t)
	for _, k := range []string{"e/", "f/", "f/g/", "h-", "h/i"} {
		PutInput(t, st, store.PutInput{Key: k}, nil)
	}
	// A file system holds no marker "f/" beside "f/g/": expect what List
	// lists.
	keys := List(t, st, store.ListOptions{})
	for _, k := range []string{"e/", "f/g/", "h-", "h/i"} {
		if !slices.Contains(keys, k) {
			t.Fatalf("List = %q, want %q in it", keys, k)
		}
	}
	checkExpand(t, st)
	for _, opts := range []store.ListOptions{{}, {Prefix: "e/"}, {Prefix: "e"}, {Prefix: "f/"}, {Prefix: "f/g/"}, {StartAfter: "e"}, {StartAfter: "e/"}, {Prefix: "e/", StartAfter: "e/"}, {Prefix: "f/", StartAfter: "f/"}, {StartAfter: "f/"}, {StartAfter: "f/g/"}} {
		checkLevel(t, st, keys, opts)
	}
}

func (s *suite) testLevelPagination(t *testing.T) {
	if s.opts.SkipPagination {
		t.Skip("Options.SkipPagination")
	}
	st := s.newStore(t)
	var keys []string
	for i := range 1105 {
		keys = append(keys, fmt.Sprintf("d%d/k%04d", i%3, i), fmt.Sprintf("c/p%04d/x", i))
	}
	putMany(t, st, keys)
	for _, opts := range []store.ListOptions{{}, {Prefix: "d1/"}, {Prefix: "c/"}, {Prefix: "c/", StartAfter: "c/p0500/"}, {Prefix: "c/", StartAfter: "c/p0500/x"}, {Prefix: "d2/k0", StartAfter: "d2/k0500"}} {
		checkLevel(t, st, keys, opts)
	}
}

func (s *suite) testLevelBreak(t *testing.T) {
	st := s.newStore(t)
	putMany(t, st, []string{"a", "b/c", "b/d", "e/f", "g"})
	l := levelLister(t, st)
	for _, stopAt := range []int{1, 2, 3} {
		n := 0
		for _, err := range l.ListLevel(t.Context(), store.ListOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			n++
			if n == stopAt {
				break
			}
		}
		if n != stopAt {
			t.Errorf("stopped at %d, want %d", n, stopAt)
		}
	}
}

func (s *suite) testLevelCanceled(t *testing.T) {
	st := s.newStore(t)
	putMany(t, st, []string{"a", "b/c", "d"})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	n := 0
	var last error
	for _, err := range levelLister(t, st).ListLevel(ctx, store.ListOptions{}) {
		n++
		last = err
	}
	if n != 1 || !errors.Is(last, context.Canceled) {
		t.Errorf("ListLevel with a canceled context: %d pairs, last error %v; want one, context.Canceled", n, last)
	}
}
