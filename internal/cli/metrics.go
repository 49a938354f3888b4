package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/metrics"
	"github.com/ferry-dev/ferry/internal/queue"
	"github.com/ferry-dev/ferry/internal/sides"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/worker"
)

// metricsFlag is the help of --metrics-addr.
const metricsFlag = "serve Prometheus metrics at http://HOST:PORT/metrics (see docs/observability.md)"

// checkMetricsAddr checks --metrics-addr's form (a usage error).
func checkMetricsAddr(addr string) error {
	if addr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return usageErr("--metrics-addr %q: want HOST:PORT, e.g. 127.0.0.1:9090", addr)
	}
	return nil
}

// serveMetrics starts the metrics server of --metrics-addr; with addr ""
// it returns nil metrics and a stop that does nothing. An address other
// machines can reach is served with a warning on warn: the metrics carry
// no keys, buckets or credentials, but name jobs and worker hosts.
func serveMetrics(addr string, warn io.Writer, log *slog.Logger) (*metrics.Metrics, func(), error) {
	if addr == "" {
		return nil, func() {}, nil
	}
	if err := checkMetricsAddr(addr); err != nil {
		return nil, nil, err
	}
	m := metrics.New()
	srv, err := m.Serve(addr)
	if err != nil {
		return nil, nil, usageErr("--metrics-addr %s: %v", addr, errors.Unwrap(err))
	}
	if !metrics.Loopback(addr) {
		fmt.Fprintf(warn, "ferry: warning: --metrics-addr %s can be reached from other machines: the metrics name job IDs and worker hosts (never keys, buckets or credentials); restrict it with a firewall, or use 127.0.0.1\n", addr)
	}
	log.Info("serving metrics", "url", "http://"+srv.Addr()+"/metrics")
	return m, func() {
		if metricsDone != nil {
			metricsDone(srv.Addr())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			log.Warn("metrics server", "err", err)
		}
	}, nil
}

// metricsDone, when set (by tests), is called with the server's address
// just before a metrics server stops.
var metricsDone func(addr string)

// queuePollEvery is how often a coordinating process refreshes the
// queue gauges.
var queuePollEvery = 5 * time.Second

// pollQueue refreshes the job's backlog and dead-letter gauges from
// JetStream every queuePollEvery until stop, which waits for it.
func pollQueue(ctx context.Context, conn *queue.Conn, id string, m *metrics.Metrics, log *slog.Logger) (stop func()) {
	if m == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(queuePollEvery)
		defer t.Stop()
		for {
			backlog, dlq, err := queueDepth(ctx, conn, id)
			if err == nil {
				m.SetQueue(id, backlog, dlq)
			} else if ctx.Err() == nil {
				log.Debug("queue depth", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

// queueDepth returns the job's work messages not yet delivered and its
// dead-letter entries.
func queueDepth(ctx context.Context, conn *queue.Conn, id string) (backlog, dlq int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cons, err := conn.JS.Consumer(ctx, queue.StreamWork, job.WorkConsumer(id))
	if err != nil {
		return 0, 0, fmt.Errorf("work queue of job %s: %w", id, err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("work queue of job %s: %w", id, err)
	}
	s, err := conn.JS.Stream(ctx, queue.StreamDLQ)
	if err != nil {
		return 0, 0, fmt.Errorf("dead-letter stream: %w", err)
	}
	si, err := s.Info(ctx, jetstream.WithSubjectFilter(queue.DLQSubject(id)))
	if err != nil {
		return 0, 0, fmt.Errorf("dead-letter queue of job %s: %w", id, err)
	}
	return int64(ci.NumPending), int64(si.State.Subjects[queue.DLQSubject(id)]), nil
}

// workerOpen is a worker's opener: a job's stores as its spec names them,
// within policy, with every S3 request retry counted in m (when set).
func workerOpen(m *metrics.Metrics, policy *sides.Policy) worker.Opener {
	return func(ctx context.Context, spec job.Spec) (store.Store, store.Store, error) {
		var onRetry func(role, reason string)
		if m != nil {
			onRetry = func(role, reason string) { m.Retry(spec.ID, role, reason) }
		}
		o := sideOptions(32, onRetry)
		o.Policy = policy
		return sides.OpenJob(ctx, spec, o)
	}
}

// observer is the worker's observer for m (none when m is nil).
func observer(m *metrics.Metrics) worker.Observer {
	if m == nil {
		return nil
	}
	return m
}
