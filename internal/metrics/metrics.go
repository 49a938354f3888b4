package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferry-dev/ferry/internal/job"
)

// Outcomes of ferry_objects_total and ferry_bytes_total.
const (
	OutcomeCopied  = "copied"
	OutcomeSkipped = "skipped"
	OutcomeFailed  = "failed"
	OutcomeDeleted = "deleted"
	OutcomeUnsafe  = "unsafe"
)

// Sides of ferry_retries_total. SideAny is a whole object tried again
// (by the transfer engine or the queue), whichever side failed.
const (
	SideSource      = "source"
	SideDestination = "destination"
	SideAny         = "any"
)

// Metrics holds ferry's metrics in a registry of their own.
type Metrics struct {
	reg  *prometheus.Registry
	jobs *jobCollector

	duration  *prometheus.HistogramVec
	size      *prometheus.HistogramVec
	retries   *prometheus.CounterVec
	inflight  *prometheus.GaugeVec
	heartbeat *prometheus.GaugeVec
	backlog   *prometheus.GaugeVec
	dlq       *prometheus.GaugeVec
}

// New returns metrics registered in a new registry, with the process and
// Go runtime collectors.
func New() *Metrics {
	m := &Metrics{
		reg:  prometheus.NewRegistry(),
		jobs: newJobCollector(),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ferry_transfer_duration_seconds",
			Help:    "Time to copy or delete one object, by the worker that did it, by outcome.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 10), // 5ms to ~22min
		}, []string{"job", "outcome"}),
		size: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ferry_object_size_bytes",
			Help:    "Size of the objects this worker copied.",
			Buckets: prometheus.ExponentialBuckets(1024, 4, 12), // 1KiB to 4GiB
		}, []string{"job"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_retries_total",
			Help: "Requests, reads, parts and objects tried again, by side and reason (throttled: 503 SlowDown and other throttling answers).",
		}, []string{"job", "side", "reason"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ferry_inflight_objects",
			Help: "Objects this worker is copying or deleting now.",
		}, []string{"job"}),
		heartbeat: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ferry_worker_heartbeat_timestamp_seconds",
			Help: "Unix time of the worker's last sign of life (its work loop runs).",
		}, []string{"worker"}),
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ferry_queue_backlog",
			Help: "Work messages (listing tasks and batches of objects) queued for the job and not yet delivered to a worker.",
		}, []string{"job"}),
		dlq: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ferry_dlq_messages",
			Help: "Entries in the job's dead-letter queue.",
		}, []string{"job"}),
	}
	m.reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
		m.jobs, m.duration, m.size, m.retries, m.inflight, m.heartbeat, m.backlog, m.dlq,
	)
	return m
}

// Registry returns the registry (for tests and extra collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// SetJob records a job's counters as its coordinator holds them:
// ferry_objects_total and ferry_bytes_total by outcome, listed objects
// and bytes, and listing tasks by state.
func (m *Metrics) SetJob(id string, k job.Counters) { m.jobs.set(id, k) }

// SetQueue records the depth of a job's work queue and dead-letter queue.
func (m *Metrics) SetQueue(id string, backlog, dlq int64) {
	m.backlog.WithLabelValues(id).Set(float64(backlog))
	m.dlq.WithLabelValues(id).Set(float64(dlq))
}

// ObjectStarted counts an object a worker starts to copy or delete.
func (m *Metrics) ObjectStarted(job string) { m.inflight.WithLabelValues(job).Inc() }

// ObjectDone records an object a worker finished (any outcome); size
// counts for copies only.
func (m *Metrics) ObjectDone(job, outcome string, size int64, d time.Duration) {
	m.inflight.WithLabelValues(job).Dec()
	m.duration.WithLabelValues(job, outcome).Observe(d.Seconds())
	if outcome == OutcomeCopied {
		m.size.WithLabelValues(job).Observe(float64(size))
	}
}

// Retry counts one retry.
func (m *Metrics) Retry(job, side, reason string) {
	m.retries.WithLabelValues(job, side, reason).Inc()
}

// Heartbeat records that the named worker is alive now.
func (m *Metrics) Heartbeat(worker string) {
	m.heartbeat.WithLabelValues(worker).Set(float64(time.Now().UnixNano()) / 1e9)
}

// jobCollector exports the latest counters of each job this process
// coordinates, as constant metrics: they are the job's totals, durable
// across resumes, equal to its summary.
type jobCollector struct {
	objects, bytes, listed, listedBytes, tasks *prometheus.Desc

	mu   sync.Mutex
	jobs map[string]job.Counters
}

func newJobCollector() *jobCollector {
	return &jobCollector{
		objects: prometheus.NewDesc("ferry_objects_total",
			"Objects of the job by outcome: copied, skipped, failed, deleted, unsafe (as in the job's summary).", []string{"job", "outcome"}, nil),
		bytes: prometheus.NewDesc("ferry_bytes_total",
			"Bytes of the job's objects by outcome: copied, skipped, failed.", []string{"job", "outcome"}, nil),
		listed: prometheus.NewDesc("ferry_listed_objects_total",
			"Source objects the job's listing selected so far.", []string{"job"}, nil),
		listedBytes: prometheus.NewDesc("ferry_listed_bytes_total",
			"Bytes of the source objects the job's listing selected so far.", []string{"job"}, nil),
		tasks: prometheus.NewDesc("ferry_listing_tasks",
			"The job's listing tasks by state: open (queued or running), done, failed.", []string{"job", "state"}, nil),
		jobs: map[string]job.Counters{},
	}
}

func (c *jobCollector) set(id string, k job.Counters) {
	c.mu.Lock()
	c.jobs[id] = k
	c.mu.Unlock()
}

func (c *jobCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.objects
	ch <- c.bytes
	ch <- c.listed
	ch <- c.listedBytes
	ch <- c.tasks
}

func (c *jobCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, k := range c.jobs {
		counter := func(d *prometheus.Desc, v int64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{id}, labels...)...)
		}
		counter(c.objects, k.Copied, OutcomeCopied)
		counter(c.objects, k.Skipped, OutcomeSkipped)
		counter(c.objects, k.Failed+k.DeleteFailed, OutcomeFailed)
		counter(c.objects, k.Deleted, OutcomeDeleted)
		counter(c.objects, k.Unsafe, OutcomeUnsafe)
		counter(c.bytes, k.CopiedBytes, OutcomeCopied)
		counter(c.bytes, k.SkippedBytes, OutcomeSkipped)
		counter(c.bytes, k.FailedBytes, OutcomeFailed)
		counter(c.listed, k.Listed)
		counter(c.listedBytes, k.ListedBytes)
		for _, s := range []struct {
			state string
			n     int64
		}{{"open", k.TasksOpen}, {"done", k.TasksDone}, {"failed", k.TasksFailed}} {
			ch <- prometheus.MustNewConstMetric(c.tasks, prometheus.GaugeValue, float64(s.n), id, s.state)
		}
	}
}
