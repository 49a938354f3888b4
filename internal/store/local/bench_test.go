package local_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/local"
)

// BenchmarkList lists a tree of 100 directories of 1000 files, created
// directly on disk. Set FERRY_BENCH_FILES to change the file count.
func BenchmarkList(b *testing.B) {
	n := 100_000
	if v := os.Getenv("FERRY_BENCH_FILES"); v != "" {
		fmt.Sscan(v, &n)
	}
	dir := b.TempDir()
	for i := range n {
		d := filepath.Join(dir, fmt.Sprintf("d%03d", i%100))
		if i < 100 {
			if err := os.Mkdir(d, 0o777); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%07d", i)), nil, 0o666); err != nil {
			b.Fatal(err)
		}
	}
	s, err := local.Open(dir, local.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ReportAllocs()
	var peak uint64
	for b.Loop() {
		count := 0
		for _, err := range s.List(b.Context(), store.ListOptions{}) {
			if err != nil {
				b.Fatal(err)
			}
			count++
			if count%50_000 == 0 {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
		}
		if count != n {
			b.Fatalf("listed %d, want %d", count, n)
		}
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}
