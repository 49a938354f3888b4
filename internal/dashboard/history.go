package dashboard

import (
	"math"
	"sync"
	"time"

	"github.com/ferry-dev/ferry/internal/job"
)

// sample is a job's counters at one time.
type sample struct {
	t      time.Time
	objs   int64 // objects with an outcome: copied, skipped, failed, unsafe
	nbytes int64 // bytes copied
}

// Point is one point of a job's rate chart: the rates between the sample
// before it and its time (unix seconds).
type Point struct {
	T             float64 `json:"t"`
	ObjectsPerSec float64 `json:"objects_per_second"`
	BytesPerSec   float64 `json:"bytes_per_second"`
}

// history keeps each job's recent samples.
type history struct {
	max int
	mu  sync.Mutex
	m   map[string][]sample
}

func newHistory(max int) *history { return &history{max: max, m: map[string][]sample{}} }

func processed(k job.Counters) int64 { return k.Copied + k.Skipped + k.Failed + k.Unsafe }

// record adds a sample of each job that runs, or ran while the dashboard
// watched it (a finished job's history stays as it was). Jobs that are
// gone are forgotten.
func (h *history) record(states []job.State, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := make(map[string]bool, len(states))
	for _, st := range states {
		id := st.Spec.ID
		seen[id] = true
		s := h.m[id]
		if st.Status.Finished() && len(s) > 0 && s[len(s)-1].objs == processed(st.Counters) {
			continue
		}
		if st.Status.Finished() && len(s) == 0 {
			continue
		}
		s = append(s, sample{t: now, objs: processed(st.Counters), nbytes: st.Counters.CopiedBytes})
		if len(s) > h.max {
			s = s[len(s)-h.max:]
		}
		h.m[id] = s
	}
	for id := range h.m {
		if !seen[id] {
			delete(h.m, id)
		}
	}
}

// rateWindow is how far back a job's current rate looks.
const rateWindow = 5 * time.Second

// view returns a job's chart points and current rates (over rateWindow).
func (h *history) view(id string) (pts []Point, objRate, byteRate float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.m[id]
	pts = make([]Point, 0, len(s))
	for i := 1; i < len(s); i++ {
		dt := s[i].t.Sub(s[i-1].t).Seconds()
		if dt <= 0 {
			continue
		}
		pts = append(pts, Point{
			T:             float64(s[i].t.UnixMilli()) / 1000,
			ObjectsPerSec: math.Max(0, float64(s[i].objs-s[i-1].objs)/dt),
			BytesPerSec:   math.Max(0, float64(s[i].nbytes-s[i-1].nbytes)/dt),
		})
	}
	if len(s) < 2 {
		return pts, 0, 0
	}
	last := s[len(s)-1]
	first := len(s) - 2
	for first > 0 && last.t.Sub(s[first].t) < rateWindow {
		first--
	}
	dt := last.t.Sub(s[first].t).Seconds()
	if dt <= 0 {
		return pts, 0, 0
	}
	return pts, math.Max(0, float64(last.objs-s[first].objs)/dt), math.Max(0, float64(last.nbytes-s[first].nbytes)/dt)
}

// eta estimates the seconds a running job needs to finish its queued
// copies, from the bytes (or, without bytes, objects) left and the current
// rate; nil while the listing runs, the job does not run, or nothing
// moves.
func eta(st job.State, objRate, byteRate float64) *float64 {
	if st.Status != job.Running || !st.ListingComplete() {
		return nil
	}
	k := st.Counters
	var sec float64
	switch {
	case k.EnqueuedSize > k.CopiedBytes && byteRate > 0:
		sec = float64(k.EnqueuedSize-k.CopiedBytes) / byteRate
	case k.Enqueued > k.Finished && objRate > 0:
		sec = float64(k.Enqueued-k.Finished) / objRate
	case k.Enqueued <= k.Finished:
		sec = 0
	default:
		return nil
	}
	sec = math.Ceil(sec)
	return &sec
}
