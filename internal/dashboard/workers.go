package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/queue"
)

// Workers derives worker activity from the results stream. ferry's
// workers keep no heartbeat record of their own; every result they publish
// (one per listing task or batch) names the worker, so the time of a
// worker's last result is its heartbeat, and the results of the last
// [RateWindow] give its current rates. A worker that waits for work
// publishes nothing and shows as idle once its last result is older than
// [IdleAfter]; one silent for [ForgetAfter] is dropped.
type Workers struct {
	mu sync.Mutex
	m  map[string]*workerStat
}

// Windows of worker activity.
const (
	RateWindow  = 10 * time.Second
	IdleAfter   = 30 * time.Second
	ForgetAfter = time.Hour
)

// WorkerInfo is one worker as the dashboard shows it.
type WorkerInfo struct {
	Name     string    `json:"name"`
	LastSeen time.Time `json:"last_seen"`
	Idle     bool      `json:"idle"`
	// Objects, Bytes and Failed count what the dashboard saw the worker
	// finish since it started (bytes: copied).
	Objects int64 `json:"objects"`
	Bytes   int64 `json:"bytes"`
	Failed  int64 `json:"failed"`
	// Rates over the last RateWindow.
	ObjectsPerSec float64  `json:"objects_per_second"`
	BytesPerSec   float64  `json:"bytes_per_second"`
	Jobs          []string `json:"jobs"`
}

type workerEvent struct {
	t            time.Time
	objs, nbytes int64
}

type workerStat struct {
	info   WorkerInfo
	recent []workerEvent
	jobs   map[string]struct{}
}

// NewWorkers returns an empty tracker.
func NewWorkers() *Workers { return &Workers{m: map[string]*workerStat{}} }

// Observe counts one result record received at t.
func (w *Workers) Observe(f job.Final, t time.Time) {
	if f.Worker == "" {
		return
	}
	var objs, nbytes, failed int64
	for _, r := range f.Outcomes {
		objs++
		switch r.Outcome {
		case job.OutcomeCopied:
			nbytes += r.Size
		case job.OutcomeFailed, job.OutcomeDelFail:
			failed++
		}
	}
	objs += int64(len(f.Skipped))
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.m[f.Worker]
	if s == nil {
		s = &workerStat{info: WorkerInfo{Name: f.Worker}, jobs: map[string]struct{}{}}
		w.m[f.Worker] = s
	}
	if t.After(s.info.LastSeen) {
		s.info.LastSeen = t
	}
	s.info.Objects += objs
	s.info.Bytes += nbytes
	s.info.Failed += failed
	s.jobs[f.Job] = struct{}{}
	s.recent = append(s.recent, workerEvent{t: t, objs: objs, nbytes: nbytes})
}

// List returns the workers seen within ForgetAfter, by name, with their
// rates over the last RateWindow.
func (w *Workers) List() []WorkerInfo { return w.listAt(time.Now()) }

func (w *Workers) listAt(now time.Time) []WorkerInfo {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]WorkerInfo, 0, len(w.m))
	for name, s := range w.m {
		if now.Sub(s.info.LastSeen) > ForgetAfter {
			delete(w.m, name)
			continue
		}
		i := 0
		for i < len(s.recent) && now.Sub(s.recent[i].t) > RateWindow {
			i++
		}
		s.recent = s.recent[i:]
		var objs, nbytes int64
		for _, e := range s.recent {
			objs += e.objs
			nbytes += e.nbytes
		}
		info := s.info
		info.ObjectsPerSec = float64(objs) / RateWindow.Seconds()
		info.BytesPerSec = float64(nbytes) / RateWindow.Seconds()
		info.Idle = now.Sub(s.info.LastSeen) > IdleAfter
		info.Jobs = make([]string, 0, len(s.jobs))
		for j := range s.jobs {
			info.Jobs = append(info.Jobs, j)
		}
		slices.Sort(info.Jobs)
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b WorkerInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Follow observes the results stream's new records until ctx ends, with an
// ordered consumer (nothing is acknowledged or changed).
func (w *Workers) Follow(ctx context.Context, js jetstream.JetStream) error {
	cons, err := js.OrderedConsumer(ctx, queue.StreamResults, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"ferry.results.>"},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return fmt.Errorf("dashboard: follow results: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var f job.Final
		if json.Unmarshal(m.Data(), &f) != nil {
			return
		}
		t := time.Now()
		if md, err := m.Metadata(); err == nil {
			t = md.Timestamp
		}
		w.Observe(f, t)
	})
	if err != nil {
		return fmt.Errorf("dashboard: follow results: %w", err)
	}
	<-ctx.Done()
	cc.Stop()
	<-cc.Closed()
	return nil
}
