package job

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/ferry-dev/ferry/internal/filter"
	"github.com/ferry-dev/ferry/internal/plan"
)

// TestSpecVersion: a job using options an older ferry would ignore is
// recorded as FilterVersion (older workers skip it); its filter survives
// the round trip; both versions are read, others refused.
func TestSpecVersion(t *testing.T) {
	n := int64(10)
	if v := (&Spec{Spec: filter.Spec{Include: []string{"*.jpg"}}}).Version(); v != WireVersion {
		t.Fatalf("globs only: v%d, want v%d", v, WireVersion)
	}
	for name, s := range map[string]Spec{
		"max size":      {Spec: filter.Spec{MaxSize: &n}},
		"files-from":    {Spec: filter.Spec{FilesFrom: &filter.KeyList{}}},
		"size-only":     {Compare: plan.CompareSizeOnly},
		"storage class": {StorageClass: "STANDARD_IA"},
	} {
		if v := s.Version(); v != FilterVersion {
			t.Errorf("%s: v%d, want v%d", name, v, FilterVersion)
		}
	}
	spec := Spec{V: FilterVersion, Spec: filter.Spec{Exclude: []string{"*.tmp"}, MaxSize: &n, FilesFrom: &filter.KeyList{Keys: []string{}}}}
	b, err := json.Marshal(State{V: FilterVersion, Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	st, err := decodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	if st.Spec.MaxSize == nil || *st.Spec.MaxSize != 10 || st.Spec.FilesFrom == nil || len(st.Spec.Exclude) != 1 {
		t.Fatalf("filter lost in the round trip: %s", b)
	}
	if _, err := decodeState([]byte(`{"v":5}`)); !errors.Is(err, ErrIncompatible) {
		t.Fatalf("v5: %v", err)
	}
	// A pack-mode job is v4: a ferry without pack mode skips it.
	if v := (&Spec{Pack: &PackSpec{MaxObjectSize: 1}}).Version(); v != PackVersion {
		t.Fatalf("pack mode: v%d, want v%d", v, PackVersion)
	}
	if _, err := decodeState([]byte(`{"v":4}`)); err != nil {
		t.Fatalf("v4: %v", err)
	}
	if _, err := decodeState([]byte(`{"v":2,"spec":{"include":["a"]}}`)); err != nil {
		t.Fatalf("v2: %v", err)
	}
}
