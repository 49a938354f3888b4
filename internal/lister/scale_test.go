package lister_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/lister"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/local"
	"github.com/ferry-dev/ferry/internal/store/mem"
)

// peakHeap samples the heap until stop is called and returns the peak.
func peakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

func heapNow() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// logTimeline logs tasks queued or running over time, at most 20 lines.
func logTimeline(t *testing.T, res *result) {
	t.Helper()
	step := max(1, len(res.timeline)/20)
	var b strings.Builder
	for i := 0; i < len(res.timeline); i += step {
		s := res.timeline[i]
		fmt.Fprintf(&b, "  %6s: %4d tasks queued or running, %5d done\n", s.at.Round(time.Millisecond), s.pending, s.done)
	}
	t.Logf("timeline:\n%s", b.String())
}

// TestScaleFlat drives the splitter over 1,000,000 keys of one flat prefix
// in memory, with 4 workers and the default split of 5000 keys.
func TestScaleFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("1M keys: not with -short")
	}
	const n = 1_000_000
	src := mem.New("src")
	for i := range n {
		k := fmt.Sprintf("data/part-%07d.json", i)
		if _, err := src.Put(t.Context(), store.PutInput{Key: k, Size: 0}, bytes.NewReader(nil)); err != nil {
			t.Fatal(err)
		}
	}
	dst := mem.New("dst")
	base := heapNow()
	stop := peakHeap()
	start := time.Now()
	res := drain(t, src, dst, lister.Task{Level: true}, lister.Options{}, 4)
	elapsed := time.Since(start)
	peak := stop()
	if res.stats.SrcListed != n || res.stats.Copy != n || len(res.copies) != n {
		t.Errorf("listed %d, copies %d (%d distinct), want %d each", res.stats.SrcListed, res.stats.Copy, len(res.copies), n)
	}
	for k, c := range res.copies {
		if c != 1 {
			t.Fatalf("%q emitted %d times", k, c)
		}
	}
	t.Logf("1M flat keys: %d tasks (%d emitted), %d probe listings, peak %d queued or running, %v; heap %d MiB with the stores, peak %d MiB (+%d MiB while listing, emitted copies recorded)",
		res.tasks, res.stats.Tasks, res.stats.Probes, res.peak, elapsed.Round(time.Millisecond), base>>20, peak>>20, (peak-min(peak, base))>>20)
	logTimeline(t, res)
}

// TestScaleLocalTree runs a job over a local directory tree (level
// fan-out) into an empty memory store.
func TestScaleLocalTree(t *testing.T) {
	dirs, files := 40, 50 // per level, two levels of dirs: 40*40*50 = 80,000 files
	if testing.Short() {
		dirs, files = 10, 20
	}
	root := t.TempDir()
	var wg sync.WaitGroup
	for i := range dirs {
		wg.Go(func() {
			for j := range dirs {
				d := filepath.Join(root, fmt.Sprintf("d%02d", i), fmt.Sprintf("e%02d", j))
				if err := os.MkdirAll(d, 0o777); err != nil {
					t.Error(err)
					return
				}
				for k := range files {
					if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%03d", k)), nil, 0o666); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	src, err := local.Open(root, local.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	n := int64(dirs * dirs * files)
	base := heapNow()
	stop := peakHeap()
	start := time.Now()
	res := drain(t, src, mem.New("dst"), lister.Task{Level: true}, lister.Options{SplitKeys: 1000}, 4)
	peak := stop()
	if res.stats.SrcListed != n || int64(len(res.copies)) != n {
		t.Errorf("listed %d, copies %d, want %d", res.stats.SrcListed, len(res.copies), n)
	}
	for k, c := range res.copies {
		if c != 1 {
			t.Fatalf("%q emitted %d times", k, c)
		}
	}
	t.Logf("%d local files: %d tasks, peak %d queued or running, %v, heap %d MiB before, peak %d MiB",
		n, res.tasks, res.peak, time.Since(start).Round(time.Millisecond), base>>20, peak>>20)
}
