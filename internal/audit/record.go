package audit

import (
	"encoding/base64"
	"fmt"
	"time"
	"unicode/utf8"
)

// Outcome is what happened to one object.
type Outcome string

// Outcomes.
const (
	Copied        Outcome = "copied"
	Skipped       Outcome = "skipped"
	Failed        Outcome = "failed"
	Deleted       Outcome = "deleted"
	SkippedUnsafe Outcome = "skipped-unsafe"
)

func (o Outcome) valid() bool {
	switch o {
	case Copied, Skipped, Failed, Deleted, SkippedUnsafe:
		return true
	}
	return false
}

// Record is one object's outcome. Zero fields are omitted from the line,
// except those docs/audit.md lists as always present.
type Record struct {
	// Time is when the outcome was recorded; zero means now.
	Time time.Time
	// Job names the job (the same on every line of a log).
	Job string
	// Key is the object's key relative to the job's source location (for
	// Deleted, to the destination location).
	Key  string
	Size int64
	// SrcETag and SrcVersion identify the source object that was read.
	SrcETag, SrcVersion string
	// CRC32C is the base64 full-object CRC32C ferry computed or the stores
	// stated; MD5 the hex MD5 of the bytes, when computed.
	CRC32C, MD5 string
	// DstETag and DstVersion identify the object written.
	DstETag, DstVersion string
	Outcome             Outcome
	// Error says why the object failed or was skipped as unsafe. It must
	// not hold secrets (error texts of ferry and the AWS SDK do not).
	Error string
	// Attempts made, 1 when the first succeeded; 0 when nothing was tried.
	Attempts int
	// Worker names the process or goroutine that did the work.
	Worker string
	// Started and Finished bound the work on the object.
	Started, Finished time.Time
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// toLine is a record in its wire form (docs/audit.md; Entry, without its
// Hash, which is not written).
func toLine(r Record, prev string, seq int64, now time.Time) (Entry, error) {
	if !r.Outcome.valid() {
		return Entry{}, fmt.Errorf("audit: record %q: invalid outcome %q", r.Key, r.Outcome)
	}
	if r.Time.IsZero() {
		r.Time = now
	}
	l := Entry{
		Prev: prev, Seq: seq, Time: stamp(r.Time), Job: r.Job, Key: r.Key, Size: r.Size,
		SrcETag: r.SrcETag, SrcVersion: r.SrcVersion, CRC32C: r.CRC32C, MD5: r.MD5,
		DstETag: r.DstETag, DstVersion: r.DstVersion, Outcome: string(r.Outcome),
		Error: r.Error, Attempts: r.Attempts, Worker: r.Worker,
		Started: stamp(r.Started), Finished: stamp(r.Finished),
	}
	if !utf8.ValidString(r.Key) {
		// JSON strings are UTF-8: "key" gets U+FFFD for bad bytes, and
		// key_base64 keeps the exact bytes.
		l.KeyBase64 = base64.StdEncoding.EncodeToString([]byte(r.Key))
	}
	return l, nil
}
