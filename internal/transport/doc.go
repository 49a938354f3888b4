// Package transport decides whether ferry may talk to a URL: encryption in
// transit is the default, and a plain-text scheme is accepted only for a
// loopback host or when the user explicitly allowed it.
//
// The rule is the same for every endpoint ferry connects to (S3 endpoints
// now, the NATS queue later), so each flag is checked with [Check] before
// any connection is attempted; Check itself never resolves or dials.
package transport
