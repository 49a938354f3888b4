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
	// KindPack: small objects to read at the source and write into one
	// bundle in the staging location (pack mode).
	KindPack = "pack"
	// KindUnpack: a bundle to verify and restore at the destination.
	KindUnpack = "unpack"
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
	// Bundle names the bundle of an unpack item.
	Bundle *BundleRef `json:"bundle,omitempty"`
}

// BundleRef names a bundle in the staging location.
type BundleRef struct {
	// Key in the staging location; ID the bundle's ID (its manifest's).
	Key string `json:"key"`
	ID  string `json:"id"`
	// SHA256 (hex) and Size of the stored bundle object.
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Pack is the ID of the pack item that wrote it: an unpack item waits
	// until its Final is applied, so a redelivered pack item never finds
	// its bundle gone and writes it again.
	Pack string `json:"pack"`
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
)

// Unverified is a copy's Verified when the source offered nothing to check
// its bytes against (some S3-compatible servers for multipart objects).
const Unverified = "unverified"

// Kinds of records that are not work messages but finish a ledger item of
// their own (see [Final]).
const (
	// KindSkip: objects the plan found up to date, published by a listing
	// task as a child of its own.
	KindSkip = "skip"
	// KindRelease: the coordinator moved a held delete batch to the queue.
	KindRelease = "release"
	// KindRedrive: `ferry dlq redrive` put a dead letter back on the queue.
	KindRedrive = "redrive"
)

// Result is the outcome of one object (Kind "object" for copies, "delete"
// for deletes, "skipped" for what the plan skipped): what the audit log
// records. Results travel inside a [Final].
type Result struct {
	V    int    `json:"v,omitempty"`
	Job  string `json:"job,omitempty"`
	Kind string `json:"kind"`

	Key string `json:"key,omitempty"`
	// Size is the size copied (or deleted); ListedSize the size the plan
	// saw, which the job's byte accounting adds up.
	Size       int64  `json:"size,omitempty"`
	ListedSize int64  `json:"listed_size,omitempty"`
	Outcome    string `json:"outcome,omitempty"`
	Error      string `json:"error,omitempty"`
	// Side names the side a failure came from ("source", "destination").
	Side     string `json:"side,omitempty"`
	Attempts int    `json:"attempts,omitempty"`
	Worker   string `json:"worker,omitempty"`
	Method   string `json:"method,omitempty"`
	CRC32C   string `json:"crc32c,omitempty"`
	MD5      bool   `json:"md5_verified,omitempty"`
	// Verified names how a copy's bytes were checked against the source
	// (transfer.Result.Verified), or Unverified.
	Verified string `json:"verified,omitempty"`
	// SrcMissing: the source listed the key, then answered "not found".
	SrcMissing bool `json:"src_missing,omitempty"`
	// ProvenanceLost: the destination did not keep the provenance ferry
	// wrote on this object (transfer.Result.ProvenanceLost).
	ProvenanceLost bool      `json:"provenance_lost,omitempty"`
	SrcETag        string    `json:"src_etag,omitempty"`
	SrcVersion     string    `json:"src_version,omitempty"`
	DstETag        string    `json:"dst_etag,omitempty"`
	DstVersion     string    `json:"dst_version,omitempty"`
	Started        time.Time `json:"started,omitzero"`
	Ended          time.Time `json:"ended,omitzero"`

	// Objs are the objects of a "skipped" result.
	Objs []Obj `json:"objs,omitempty"`
}

// Child names a work item (or skip record) that handling a work item
// created. Every child is named in its parent's [Final].
type Child struct {
	ID   string `json:"id"`
	Kind string `json:"k"`
}

// Final is the one record on the results stream (subject ferry.results.JOB)
// that finishes a work item: a listing task, a copy or delete batch, or a
// pseudo-item (skip, release, redrive). It carries everything the item's
// handling produced: object outcomes, listing statistics, and the children
// it created, which were published (and acknowledged) before it. Handling
// a work message ends with exactly one Final (a redelivered message may
// publish a second one; the coordinator's ledger applies only the first).
// See docs/design.md, "When a job is complete".
type Final struct {
	V    int    `json:"v"`
	Job  string `json:"job"`
	Kind string `json:"kind"` // list, copy, delete, skip, release, redrive
	// Work is the ID of the item this record finishes.
	Work string `json:"work"`
	// Root: the item registers itself (coordinator and redrive records,
	// which nobody else names).
	Root     bool    `json:"root,omitempty"`
	Worker   string  `json:"worker,omitempty"`
	Attempt  int     `json:"n,omitempty"`
	Children []Child `json:"children,omitempty"`

	Task     *TaskResult    `json:"task,omitempty"`
	Outcomes []Result       `json:"outcomes,omitempty"`
	Skipped  []Obj          `json:"skipped,omitempty"`
	Redrive  *RedriveResult `json:"redrive,omitempty"`
	// Pack is what a pack item wrote, or an unpack item removed.
	Pack *PackResult `json:"pack,omitempty"`
	Time time.Time   `json:"time,omitzero"`
}

// PackResult is a pack item's bundle (Objects, Bytes, DataBytes, Level),
// or an unpack item's removal of it (Removed).
type PackResult struct {
	Bundle    string  `json:"bundle,omitempty"`
	Objects   int64   `json:"objects,omitempty"`
	Bytes     int64   `json:"bytes,omitempty"`
	DataBytes int64   `json:"data_bytes,omitempty"`
	Level     int     `json:"level,omitempty"`
	Ratio     float64 `json:"sampled_ratio,omitempty"`
	Removed   bool    `json:"removed,omitempty"`
}

// TaskResult summarizes what a listing task (or the part of it up to its
// last checkpoint) planned.
type TaskResult struct {
	// Listed counts the source objects the filter selected, Excluded those
	// it did not; DstListed the destination objects of the range.
	Listed       int64 `json:"listed"`
	ListedBytes  int64 `json:"listed_bytes"`
	Excluded     int64 `json:"excluded,omitempty"`
	DstListed    int64 `json:"dst_listed"`
	Enqueued     int64 `json:"enqueued"`
	EnqueuedSize int64 `json:"enqueued_bytes"`
	Deletes      int64 `json:"deletes"`
	// Failed: the task used up its attempts; the rest of its range is in
	// the dead-letter queue.
	Failed bool   `json:"failed,omitempty"`
	Error  string `json:"error,omitempty"`
	// Flat: the rest of the range is listed without a delimiter because
	// the server's delimiter listing was out of order.
	Flat bool `json:"flat,omitempty"`
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

// apply adds a final's content (not its ledger effect) to the counters.
func (c *Counters) apply(f Final) {
	switch f.Kind {
	case KindList:
		t := f.Task
		if t == nil {
			return
		}
		if t.Failed {
			c.TasksFailed++
		}
		if t.Flat {
			c.TasksFlat++
		}
		c.Listed += t.Listed
		c.ListedBytes += t.ListedBytes
		c.Excluded += t.Excluded
		c.DstListed += t.DstListed
		c.Enqueued += t.Enqueued
		c.EnqueuedSize += t.EnqueuedSize
		c.DeletesPlanned += t.Deletes
	case KindSkip:
		for _, o := range f.Skipped {
			c.Skipped++
			c.SkippedBytes += o.S
			c.AccountedBytes += o.S
		}
	case KindRedrive:
		if d := f.Redrive; d != nil {
			c.Failed -= d.Objects
			c.FailedBytes -= d.Bytes
			c.AccountedBytes -= d.Bytes
			c.Finished -= d.Objects
			c.DeleteFailed -= d.Deletes
			c.TasksFailed -= d.Tasks
		}
	}
	if p := f.Pack; p != nil {
		if p.Objects > 0 {
			c.ObjectsPacked += p.Objects
			c.Bundles++
			c.BundleBytes += p.Bytes
			c.BundleDataBytes += p.DataBytes
			c.PackLevel = max(c.PackLevel, p.Level) // the order Finals apply in does not matter
		}
		if p.Removed {
			c.BundlesRemoved++
		}
	}
	for _, r := range f.Outcomes {
		c.applyOutcome(r)
	}
}

func (c *Counters) applyOutcome(r Result) {
	if r.Kind == "delete" {
		if r.Outcome == OutcomeDeleted {
			c.Deleted++
		} else {
			c.DeleteFailed++
		}
		return
	}
	c.Finished++
	c.AccountedBytes += r.ListedSize
	switch r.Outcome {
	case OutcomeCopied:
		c.Copied++
		c.CopiedBytes += r.Size
		if r.ProvenanceLost {
			c.ProvenanceLost++
		}
		if r.Verified == Unverified {
			c.Unverified++
		}
	case OutcomeSkipped:
		c.Skipped++
		c.SkippedBytes += r.ListedSize
	case OutcomeUnsafe:
		c.Unsafe++
	default:
		c.Failed++
		c.FailedBytes += r.ListedSize
		if r.SrcMissing {
			c.SrcMissing++
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

// DecodeFinal decodes a record of the results stream.
func DecodeFinal(b []byte) (Final, error) {
	var f Final
	if err := json.Unmarshal(b, &f); err != nil {
		return Final{}, fmt.Errorf("decode result: %w", err)
	}
	if f.V != WireVersion {
		return Final{}, fmt.Errorf("result message: %w (v%d)", ErrIncompatible, f.V)
	}
	if f.Work == "" || f.Kind == "" {
		return Final{}, fmt.Errorf("decode result: no work item or kind")
	}
	return f, nil
}
