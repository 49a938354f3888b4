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

// startProgress draws the progress of st until the returned stop is called;
// stop waits for the drawing goroutine and clears the line.
func startProgress(c *console, st *runner.Stats, verb string) (stop func()) {
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
				b := st.CopiedBytes.Load()
				if dt := now.Sub(lastT).Seconds(); dt > 0 {
					inst := float64(b-lastBytes) / dt
					if rate == 0 {
						rate = inst
					} else {
						rate = 0.7*rate + 0.3*inst
					}
				}
				lastBytes, lastT = b, now
				c.status(progressLine(st, verb, rate, now.Sub(start)))
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

func progressLine(st *runner.Stats, verb string, rate float64, elapsed time.Duration) string {
	done := st.Copied.Load() + st.Verified.Load()
	todo := st.ToCopy.Load()
	b, tb := st.CopiedBytes.Load(), st.ToCopyBytes.Load()
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %d/%d objects, %s/%s, %s/s", verb, done, todo, humanBytes(b), humanBytes(tb), humanBytes(int64(rate)))
	if st.PlanDone.Load() {
		if rate > 0 && tb > b {
			eta := time.Duration(float64(tb-b)/rate) * time.Second
			fmt.Fprintf(&sb, ", ETA %s", eta.Round(time.Second))
		}
	} else {
		fmt.Fprintf(&sb, ", listing (%d source objects so far)", st.Listed.Load())
	}
	if n := st.Skipped.Load(); n > 0 {
		fmt.Fprintf(&sb, ", skipped %d", n)
	}
	if n := st.Failed.Load(); n > 0 {
		fmt.Fprintf(&sb, ", failed %d", n)
	}
	if n := st.Differences.Load(); n > 0 {
		fmt.Fprintf(&sb, ", differences %d", n)
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
