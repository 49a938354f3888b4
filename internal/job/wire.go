package job

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ferry-dev/ferry/internal/lister"
	"github.com/ferry-dev/ferry/internal/plan"
	"github.com/ferry-dev/ferry/internal/store"
)

// Kinds of work.
const (
	KindList   = "list"
	KindCopy   = "copy"
	KindDelete = "delete"
)

// Work is one message on the work queue (subject ferry.work.JOB.KIND).
type Work struct {
	V    int    `json:"v"`
	Job  string `json:"job"`
	Kind string `json:"kind"`
	// ID identifies the message's content; what processing it publishes is
	// de-duplicated by IDs derived from it.
	ID string `json:"id"`
	// Attempt is 1 for new work and grows with each retry of what failed.
	Attempt int `json:"n"`
	// NotBefore (unix milliseconds) delays a retry.
	NotBefore int64        `json:"nb,omitempty"`
	Task      *lister.Task `json:"task,omitempty"`
	Objs      []Obj        `json:"objs,omitempty"`
	// Errs are the last errors of a retried batch, one per object.
	Errs []string `json:"errs,omitempty"`
}

// Obj is an object in a copy or delete batch: the source listing entry and,
// for check actions, the destination's.
type Obj struct {
	K   string `json:"k"`
	S   int64  `json:"s"`
	E   string `json:"e,omitempty"`
	M   int64  `json:"m,omitempty"` // unix nanoseconds
	Chk bool   `json:"c,omitempty"`
	DS  int64  `json:"ds,omitempty"`
	DE  string `json:"de,omitempty"`
	DM  int64  `json:"dm,omitempty"`
}

// ObjFromAction encodes a Copy or Check action.
func ObjFromAction(a plan.Action) Obj {
	o := Obj{K: a.Key, S: a.Src.Size, E: a.Src.ETag, M: unixNano(a.Src.LastModified)}
	if a.Kind == plan.Check {
		o.Chk = true
		o.DS, o.DE, o.DM = a.Dst.Size, a.Dst.ETag, unixNano(a.Dst.LastModified)
	}
	return o
}

// ObjFromObject encodes a destination object to delete.
func ObjFromObject(d store.Object) Obj {
	return Obj{K: d.Key, S: d.Size, E: d.ETag, M: unixNano(d.LastModified)}
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// Src is the source object of a batch entry.
func (o Obj) Src() store.Object {
	return store.Object{Key: o.K, Size: o.S, ETag: o.E, LastModified: fromNano(o.M)}
}

// Dst is the destination object of a check entry.
func (o Obj) Dst() store.Object {
	return store.Object{Key: o.K, Size: o.DS, ETag: o.DE, LastModified: fromNano(o.DM)}
}

// ContentID hashes parts into a short hex ID, for de-duplication.
func ContentID(parts ...any) string {
	h := sha256.New()
	for _, p := range parts {
		b, _ := json.Marshal(p)
		h.Write(b)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// Outcomes of objects.
const (
	OutcomeCopied  = "copied"
	OutcomeSkipped = "skipped"
	OutcomeFailed  = "failed"
	OutcomeUnsafe  = "skipped-unsafe"
	OutcomeDeleted = "deleted"
	OutcomeDelFail = "delete-failed"
	OutcomePlanned = "planned" // dry run: would be copied
)

// Result is one record on the results stream (subject ferry.results.JOB):
// either an object outcome or a finished listing task.
type Result struct {
	V    int    `json:"v"`
	Job  string `json:"job"`
	Kind string `json:"kind"` // "object", "delete" or "task"

	Key        string    `json:"key,omitempty"`
	Size       int64     `json:"size,omitempty"`
	Outcome    string    `json:"outcome,omitempty"`
	Error      string    `json:"error,omitempty"`
	Attempts   int       `json:"attempts,omitempty"`
	Worker     string    `json:"worker,omitempty"`
	Method     string    `json:"method,omitempty"`
	CRC32C     string    `json:"crc32c,omitempty"`
	MD5        bool      `json:"md5_verified,omitempty"`
	SrcETag    string    `json:"src_etag,omitempty"`
	SrcVersion string    `json:"src_version,omitempty"`
	DstETag    string    `json:"dst_etag,omitempty"`
	DstVersion string    `json:"dst_version,omitempty"`
	Started    time.Time `json:"started,omitzero"`
	Ended      time.Time `json:"ended,omitzero"`

	Task    *TaskResult    `json:"task,omitempty"`
	Redrive *RedriveResult `json:"redrive,omitempty"`
	// Objs are the objects of a "skipped" record: the plan found them at
	// the destination already (counted by their task's result; listed
	// here for the audit log).
	Objs []Obj `json:"objs,omitempty"`
}

// TaskResult summarizes a finished listing task.
type TaskResult struct {
	Children     int64  `json:"children"`
	Listed       int64  `json:"listed"`
	ListedBytes  int64  `json:"listed_bytes"`
	DstListed    int64  `json:"dst_listed"`
	Enqueued     int64  `json:"enqueued"`
	EnqueuedSize int64  `json:"enqueued_bytes"`
	Skipped      int64  `json:"skipped"`
	SkippedBytes int64  `json:"skipped_bytes"`
	Deletes      int64  `json:"deletes"`
	Failed       bool   `json:"failed,omitempty"`
	Error        string `json:"error,omitempty"`
}

// DLQEntry is one record on the dead-letter stream (subject ferry.dlq.JOB).
type DLQEntry struct {
	V        int          `json:"v"`
	Job      string       `json:"job"`
	Kind     string       `json:"kind"` // copy, delete or list
	Obj      *Obj         `json:"obj,omitempty"`
	Task     *lister.Task `json:"task,omitempty"`
	Error    string       `json:"error"`
	Attempts int          `json:"attempts"`
	Time     time.Time    `json:"time"`
}

// Apply adds a result to the counters.
func (c *Counters) Apply(r Result) {
	switch r.Kind {
	case "task":
		t := r.Task
		if t == nil {
			return
		}
		c.TasksOpen += t.Children - 1
		c.TasksDone++
		if t.Failed {
			c.TasksFailed++
		}
		c.Listed += t.Listed
		c.ListedBytes += t.ListedBytes
		c.DstListed += t.DstListed
		c.Enqueued += t.Enqueued
		c.EnqueuedSize += t.EnqueuedSize
		c.Skipped += t.Skipped
		c.SkippedBytes += t.SkippedBytes
		c.DeletesPlanned += t.Deletes
	case "redrive":
		if d := r.Redrive; d != nil {
			c.Failed -= d.Objects
			c.Finished -= d.Objects
			c.DeleteFailed -= d.Deletes
			c.TasksFailed -= d.Tasks
			c.TasksOpen += d.Tasks
		}
	case "delete":
		if r.Outcome == OutcomeDeleted {
			c.Deleted++
		} else {
			c.DeleteFailed++
		}
	case "object":
		c.Finished++
		switch r.Outcome {
		case OutcomeCopied, OutcomePlanned:
			c.Copied++
			c.CopiedBytes += r.Size
		case OutcomeSkipped:
			c.Skipped++
			c.SkippedBytes += r.Size
		case OutcomeUnsafe:
			c.Unsafe++
		default:
			c.Failed++
		}
	}
}

// Decode helpers refuse other wire versions.
func DecodeWork(b []byte) (Work, error) {
	var w Work
	if err := json.Unmarshal(b, &w); err != nil {
		return Work{}, fmt.Errorf("decode work: %w", err)
	}
	if w.V != WireVersion {
		return Work{}, fmt.Errorf("work message: %w (v%d)", ErrIncompatible, w.V)
	}
	return w, nil
}

func DecodeResult(b []byte) (Result, error) {
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return Result{}, fmt.Errorf("decode result: %w", err)
	}
	if r.V != WireVersion {
		return Result{}, fmt.Errorf("result message: %w (v%d)", ErrIncompatible, r.V)
	}
	return r, nil
}
