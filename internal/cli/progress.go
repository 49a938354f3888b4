package cli

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/ferry-dev/ferry/internal/runner"
)

// console serializes writes to stderr between log lines and the progress
// display: on a terminal, a log line first clears the progress line, which
// the next tick redraws.
type console struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	drawn    bool
	interval time.Duration
}

func newConsole(w io.Writer, tty bool) *console {
	iv := 5 * time.Second
	if tty {
		iv = 250 * time.Millisecond
	}
	return &console{w: w, tty: tty, interval: iv}
}

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clearLocked()
	return c.w.Write(p)
}

func (c *console) clearLocked() {
	if c.drawn {
		fmt.Fprint(c.w, "\r\x1b[K")
		c.drawn = false
	}
}

func (c *console) status(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tty {
		fmt.Fprintf(c.w, "\r\x1b[K%s", line)
		c.drawn = true
		return
	}
	fmt.Fprintln(c.w, line)
}

// progressSnap is what the progress line shows.
type progressSnap struct {
	done, todo        int64 // objects finished / to copy or check
	bytes, totalBytes int64
	listed            int64
	planDone          bool
	skipped, failed   int64
	diffs             int64
	status            string // job status when not simply running
}

func runnerSnap(st *runner.Stats) progressSnap {
	return progressSnap{
		done: st.Copied.Load() + st.Verified.Load(), todo: st.ToCopy.Load(),
		bytes: st.CopiedBytes.Load(), totalBytes: st.ToCopyBytes.Load(),
		listed: st.Listed.Load(), planDone: st.PlanDone.Load(),
		skipped: st.Skipped.Load(), failed: st.Failed.Load(), diffs: st.Differences.Load(),
	}
}

// startProgress draws the progress of st until the returned stop is called.
func startProgress(c *console, st *runner.Stats, verb string) (stop func()) {
	return startProgressFunc(c, func() progressSnap { return runnerSnap(st) }, verb)
}

// startProgressFunc draws the progress snap returns until the returned stop
// is called; stop waits for the drawing goroutine and clears the line.
func startProgressFunc(c *console, snap func() progressSnap, verb string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(c.interval)
		defer t.Stop()
		var lastBytes int64
		lastT := start
		var rate float64
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				s := snap()
				if dt := now.Sub(lastT).Seconds(); dt > 0 {
					inst := float64(s.bytes-lastBytes) / dt
					if rate == 0 {
						rate = inst
					} else {
						rate = 0.7*rate + 0.3*inst
					}
				}
				lastBytes, lastT = s.bytes, now
				c.status(progressLine(s, verb, rate, now.Sub(start)))
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		c.mu.Lock()
		c.clearLocked()
		c.mu.Unlock()
	}
}

func progressLine(s progressSnap, verb string, rate float64, elapsed time.Duration) string {
	var sb strings.Builder
	if s.status != "" {
		fmt.Fprintf(&sb, "[%s] ", s.status)
	}
	if !s.planDone {
		// The totals are not known until the listing completes: no
		// "N/0 objects", no ETA.
		fmt.Fprintf(&sb, "listing… %d objects found", s.listed)
		if s.done > 0 || s.bytes > 0 {
			fmt.Fprintf(&sb, ", %s %d (%s), %s/s", verb, s.done, humanBytes(s.bytes), humanBytes(int64(rate)))
		}
	} else {
		fmt.Fprintf(&sb, "%s %d/%d objects, %s/%s, %s/s", verb, s.done, s.todo, humanBytes(s.bytes), humanBytes(s.totalBytes), humanBytes(int64(rate)))
		// An ETA only while the job runs (not paused, waiting for
		// credentials or a worker).
		if s.status == "" && rate > 0 && s.totalBytes > s.bytes {
			eta := time.Duration(float64(s.totalBytes-s.bytes)/rate) * time.Second
			fmt.Fprintf(&sb, ", ETA %s", eta.Round(time.Second))
		}
	}
	if s.skipped > 0 {
		fmt.Fprintf(&sb, ", skipped %d", s.skipped)
	}
	if s.failed > 0 {
		fmt.Fprintf(&sb, ", failed %d", s.failed)
	}
	if s.diffs > 0 {
		fmt.Fprintf(&sb, ", differences %d", s.diffs)
	}
	fmt.Fprintf(&sb, " [%s]", elapsed.Round(time.Second))
	return sb.String()
}

// humanBytes renders n in binary units: "1.5 GiB".
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
