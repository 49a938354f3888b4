package cli

import (
	"strings"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	tests := []struct {
		name      string
		s         progressSnap
		rate      float64
		want, not []string
	}{
		{"listing", progressSnap{listed: 120, bytes: 204500}, 0,
			[]string{"listing… 120 objects found"}, []string{"/0", "ETA"}},
		{"listing while copying", progressSnap{listed: 500, done: 10, bytes: 1 << 20}, 1 << 20,
			[]string{"listing… 500 objects found, copied 10 (1.0 MiB), 1.0 MiB/s"}, []string{"ETA", "/0"}},
		{"running", progressSnap{planDone: true, done: 1, todo: 4, bytes: 1 << 20, totalBytes: 4 << 20}, 1 << 20,
			[]string{"copied 1/4 objects, 1.0 MiB/4.0 MiB", "ETA 3s"}, nil},
		{"paused", progressSnap{planDone: true, done: 1, todo: 4, bytes: 1 << 20, totalBytes: 4 << 20, status: "paused"}, 1 << 20,
			[]string{"[paused] copied 1/4"}, []string{"ETA"}},
	}
	for _, tt := range tests {
		got := progressLine(tt.s, "copied", tt.rate, 2*time.Second)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q lacks %q", tt.name, got, w)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(got, n) {
				t.Errorf("%s: %q has %q", tt.name, got, n)
			}
		}
	}
}
