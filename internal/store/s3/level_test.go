package s3

import (
	"fmt"
	"slices"
	"testing"

	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/storetest"
	"github.com/ferry-dev/ferry/internal/testenv"
)

// TestLevelConformance runs the one-level listing tests on MinIO, each
// subtest in its own bucket at the root (the suite writes 1024-byte keys).
func TestLevelConformance(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	n := 0
	storetest.RunLevel(t, func(t *testing.T) store.Store {
		n++
		bucket := fmt.Sprintf("level-%d", n)
		m.CreateBucket(t, bucket)
		return openStore(t, m, bucket, "")
	}, storetest.Options{})
}

// TestLevelStorePrefix checks that one-level listings of a store below a
// bucket prefix are relative to it and never show keys outside it.
func TestLevelStorePrefix(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	m.CreateBucket(t, "level-prefix")
	root := openStore(t, m, "level-prefix", "")
	for _, k := range []string{"root0/outside", "root-x", "root/a", "root/b/c", "root/b/d", "root/d e/f", "root/é/g"} {
		put(t, root, k, []byte("x"))
	}
	s := openStore(t, m, "level-prefix", "root")
	tests := []struct {
		opts store.ListOptions
		want []string
	}{
		{store.ListOptions{}, []string{"a", "b/ (prefix)", "d e/ (prefix)", "é/ (prefix)"}},
		{store.ListOptions{Prefix: "b/"}, []string{"b/c", "b/d"}},
		{store.ListOptions{StartAfter: "b/c"}, []string{"b/ (prefix)", "d e/ (prefix)", "é/ (prefix)"}},
		{store.ListOptions{StartAfter: "b/d"}, []string{"d e/ (prefix)", "é/ (prefix)"}},
		{store.ListOptions{Prefix: "d"}, []string{"d e/ (prefix)"}},
	}
	for _, tt := range tests {
		if got := storetest.ListLevel(t, s, tt.opts); !slices.Equal(got, tt.want) {
			t.Errorf("ListLevel(%+v) = %q, want %q", tt.opts, got, tt.want)
		}
	}
}
