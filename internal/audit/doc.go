// Package audit writes and verifies ferry's per-job audit log: one JSON
// object per line, one line per object outcome, each line carrying the
// SHA-256 of the line before it. docs/audit.md is the wire format.
//
// A [Log] appends records; [Verify] reads a log back and reports the first
// line that breaks the chain as a [*VerifyError]. A hash chain shows that
// no line was edited, removed, inserted or reordered, but a log cut short
// at a line boundary is still a valid chain: compare [Log.Head], which the
// job summary records, with what Verify returns (or pass it to
// [VerifyExpect]) to detect that.
package audit
