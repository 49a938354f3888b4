// Package dashboard serves ferry's live web dashboard (`ferry ui`, and
// `--ui-addr` on copy, sync and worker): one page, embedded in the binary
// (plain HTML, CSS and JavaScript, no CDN, no build step), and the JSON
// API it polls.
//
// The API (docs/dashboard.md):
//
//	GET  /api/state                     every job with its counters, rates, history and ETA; the workers
//	GET  /api/jobs/{id}/dlq             the job's dead-letter entries (failures with keys and errors)
//	POST /api/jobs/{id}/{action}        pause, resume, cancel or redrive
//
// Security. Every action needs the token [Server] was given, in the
// X-Ferry-Token header (never the URL's query string), compared in
// constant time; a custom header cannot be sent by a cross-site form or a
// simple cross-origin request, so actions are CSRF-safe, and a request
// whose Origin is another site is refused as well. Read-only API calls need
// the token too unless the server listens on a loopback address only; on a
// loopback address, a Host header that is not a loopback name is refused,
// which defeats DNS rebinding. Responses carry a Content-Security-Policy of
// default-src 'self' (no inline script or style), X-Frame-Options DENY,
// nosniff and no-referrer.
//
// Live updates are polled (the page fetches /api/state every second): an
// EventSource cannot send the token header. The server samples the jobs
// every second and keeps their recent objects/s and bytes/s for the charts.
package dashboard
