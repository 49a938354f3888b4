// Package report writes a job's completion report (ferry report): totals,
// timing, throughput and one row per object outcome, drawn from the job's
// audit log and checked against its hash chain, as JSON, CSV or a single
// self-contained HTML page. docs/report.md describes the formats.
//
// Reports stream: the audit log is read twice (once to check the chain and
// add up the totals and the throughput chart, once to write the rows), one
// line at a time, so a report of 10 million objects takes the memory of
// one. The chart has a fixed number of time buckets whose width doubles
// whenever the job outlasts them.
package report
