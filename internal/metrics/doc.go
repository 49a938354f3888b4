// Package metrics exports ferry's Prometheus metrics (see
// docs/observability.md): a job's object and byte counts by outcome and
// its listing tasks, taken from the coordinator's state, so that they equal
// the job's summary; transfer durations, object sizes, retries, objects in
// flight and heartbeats, observed by workers; and the work queue's backlog
// and dead-letter depth, polled from JetStream.
//
// Every metric lives in the [Metrics]' own registry with the standard
// process and Go collectors. Label values are job IDs, worker names, sides
// (source, destination), outcomes and reasons: never an object key, a bucket,
// an endpoint or a credential.
//
// A [Metrics] is safe for concurrent use. It implements the worker's
// observer interface; the transfer engine and the S3 store report retries
// through plain hook functions, so that only this package and the command
// line import Prometheus.
package metrics
