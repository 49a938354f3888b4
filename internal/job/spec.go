// Package job holds ferry's durable jobs: the spec a job is created from
// (credential references, never values), its state in the ferry-jobs
// key-value bucket, the messages that travel on the work queue, and the
// coordinator that starts or resumes a job, tallies its results and
// finishes it. Workers (package worker) do the listing and copying.
package job

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ferry-dev/ferry/internal/filter"
	"github.com/ferry-dev/ferry/internal/plan"
	"github.com/ferry-dev/ferry/internal/trust"
)

// WireVersion is the version of specs, states and queue messages. A job
// written by another version is refused with ErrIncompatible.
const WireVersion = 2

// FilterVersion is the version of the spec and state of a job that uses
// options a WireVersion-only ferry would silently ignore (size, age and
// --files-from filters, a comparison mode, a storage class, a single
// object named by [Side.Key]): such a worker would copy, and with sync
// --delete delete, objects the job excludes, or the whole location around
// a single object. An
// older worker skips jobs of another version, so it leaves these alone;
// this ferry reads both. Queue messages stay at WireVersion.
const FilterVersion = 3

// PackVersion is the version of the spec and state of a pack-mode job
// (--pack): its work includes pack and unpack items that a ferry without
// pack mode cannot run, so such a worker must skip the job. Queue messages
// stay at WireVersion.
const PackVersion = 4

// StateVersionOK reports whether this ferry reads a spec or state of
// version v.
func StateVersionOK(v int) bool { return v == WireVersion || v == FilterVersion || v == PackVersion }

// Version is the version a job with this spec is recorded with.
func (s *Spec) Version() int {
	if s.Pack != nil {
		return PackVersion
	}
	f := s.Spec
	if f.MinSize != nil || f.MaxSize != nil || !f.ModifiedAfter.IsZero() || !f.ModifiedBefore.IsZero() ||
		f.FilesFrom != nil || s.Compare != "" || s.StorageClass != "" ||
		s.Src.Key != "" || s.Dst.Key != "" {
		return FilterVersion
	}
	return WireVersion
}

// ErrIncompatible: the job was created by an incompatible ferry version.
var ErrIncompatible = errors.New("job was created by an incompatible ferry version")

// ErrNotFound: no such job.
var ErrNotFound = errors.New("no such job")

// Side is one end of a job: a location and how to reach it. It holds
// credential references (a profile or secret name), never credentials.
type Side struct {
	Location          string `json:"location"`
	Endpoint          string `json:"endpoint,omitempty"`
	Region            string `json:"region,omitempty"`
	Profile           string `json:"profile,omitempty"`
	Secret            string `json:"secret,omitempty"`
	CABundle          string `json:"ca_bundle,omitempty"`
	AllowInsecureHTTP bool   `json:"allow_insecure_http,omitempty"`
	// Key, when set, makes the side one object: the key (relative to
	// Location, which is then its parent prefix or directory) of the
	// source object, or the destination's target name. A job with keys
	// holds that one object, listed under the source's Key at both sides
	// (package onekey), so the destination may give it another name.
	Key string `json:"key,omitempty"`
}

// Spec is what a job was created with.
type Spec struct {
	V       int       `json:"v"`
	ID      string    `json:"id"`
	Command string    `json:"command"` // copy or sync
	Created time.Time `json:"created"`
	Src     Side      `json:"src"`
	Dst     Side      `json:"dst"`

	// Filter selects the objects of the job (--include, --exclude,
	// --files-from, --min/max-size, --min/max-age), its fields inline in
	// the JSON. Every worker and the reconciliation apply it.
	filter.Spec
	// Compare is the comparison mode (--size-only, --checksum).
	Compare plan.Compare `json:"compare,omitempty"`

	Delete           bool    `json:"delete,omitempty"`
	MaxDelete        int64   `json:"max_delete,omitempty"`
	MaxDeletePercent float64 `json:"max_delete_percent,omitempty"`
	Force            bool    `json:"force,omitempty"`

	PartSize    int64  `json:"part_size,omitempty"`
	SSE         string `json:"sse,omitempty"`
	SSEKMSKeyID string `json:"sse_kms_key_id,omitempty"`
	// StorageClass of the objects written (S3 destinations; "": the
	// bucket's default).
	StorageClass string `json:"storage_class,omitempty"`

	// MaxAttempts before an object or listing task goes to the dead-letter
	// queue (default 3).
	MaxAttempts int `json:"max_attempts"`
	// RequireVerified fails copies whose bytes cannot be checked against the
	// source (--require-verified; on by default for sync --delete).
	RequireVerified bool `json:"require_verified,omitempty"`
	// NoReconcile turns off the final reconciliation (--no-reconcile).
	NoReconcile bool `json:"no_reconcile,omitempty"`
	// DstKeepsMTime: the destination is a local directory.
	DstKeepsMTime bool `json:"dst_keeps_mtime,omitempty"`
	// AuditLog is the path of the job's audit log on the coordinator.
	AuditLog string `json:"audit_log,omitempty"`
	// Pack, when set, sends small objects in bundles through a staging
	// location (--pack; docs/bundle-format.md).
	Pack *PackSpec `json:"pack,omitempty"`
}

// PackSpec is a pack-mode job's settings.
type PackSpec struct {
	// Staging is where bundles wait between packing and unpacking
	// (normally a bucket in the destination's region).
	Staging Side `json:"staging"`
	// MaxObjectSize: objects up to this size travel in bundles, larger
	// ones copy directly.
	MaxObjectSize int64 `json:"max_object_size"`
	// BundleSize is the data a bundle holds at most (before compression).
	BundleSize int64 `json:"bundle_size"`
	// Level is the zstd level (0 stores, 1 to 4), or LevelAuto.
	Level int `json:"level"`
}

// LevelAuto lets each packer sample its data and choose the level.
const LevelAuto = -1

// Pack mode's defaults.
const (
	DefaultPackMaxObjectSize = 1 << 20
	DefaultBundleSize        = 256 << 20
	// MaxPackObjectSize bounds --pack-max-object-size: an unpacker holds
	// that much per object in flight.
	MaxPackObjectSize = 64 << 20
)

var idRE = regexp.MustCompile(`^[a-z2-7]{10,32}$`)

// NewID returns a fresh job ID: 16 lowercase base32 characters, safe as a
// NATS subject token and a file name.
func NewID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// ValidID checks a job ID typed by a user.
func ValidID(id string) error {
	if !idRE.MatchString(id) {
		return fmt.Errorf("job ID %q: not a ferry job ID (16 characters a-z, 2-7)", id)
	}
	return nil
}

// Status of a job.
type Status string

const (
	Running   Status = "running"
	Paused    Status = "paused"
	Cancelled Status = "cancelled"
	Done      Status = "done"
	Failed    Status = "failed" // finished, but stopped early (listing failed, delete limit)
)

// Finished reports whether the job can no longer run.
func (s Status) Finished() bool { return s == Done || s == Failed || s == Cancelled }

// Counters are a job's tallies, a fold of its results stream through the
// ledger (each work item's first Final only).
type Counters struct {
	// Listed counts the source objects the filter selected; Excluded those
	// it did not. Listed = Copied + Skipped + Failed + Unsafe when the job
	// is done (and ListedBytes = AccountedBytes).
	Listed       int64 `json:"objects_listed"`
	ListedBytes  int64 `json:"bytes_listed"`
	Excluded     int64 `json:"objects_excluded,omitempty"`
	DstListed    int64 `json:"dst_objects_listed"`
	Enqueued     int64 `json:"objects_enqueued"`
	EnqueuedSize int64 `json:"bytes_enqueued"`
	Copied       int64 `json:"objects_copied"`
	CopiedBytes  int64 `json:"bytes_copied"`
	Skipped      int64 `json:"objects_skipped"`
	SkippedBytes int64 `json:"bytes_skipped"`
	Failed       int64 `json:"objects_failed"`
	FailedBytes  int64 `json:"bytes_failed,omitempty"`
	Unsafe       int64 `json:"objects_skipped_unsafe"`
	// Unverified counts copies (included in Copied) whose bytes the source
	// offered nothing to check against.
	Unverified     int64 `json:"objects_unverified,omitempty"`
	AccountedBytes int64 `json:"bytes_accounted"`
	// SrcMissing counts failed objects the source listed and then did not
	// find: evidence of a listing that cannot be trusted (no deletes).
	SrcMissing int64 `json:"objects_source_missing,omitempty"`
	// ProvenanceLost counts copies on which the destination did not keep
	// ferry's provenance metadata (a server that drops user metadata on
	// directory markers).
	ProvenanceLost int64 `json:"objects_provenance_lost,omitempty"`
	Deleted        int64 `json:"objects_deleted"`
	DeleteFailed   int64 `json:"deletes_failed"`
	// Finished counts object outcomes of enqueued copies (copied, skipped
	// after a check, failed, unsafe).
	Finished       int64 `json:"objects_finished"`
	DeletesPlanned int64 `json:"deletes_planned"`

	// The ledger's counts (docs/design.md, "When a job is complete"):
	// work items named (or created) and not yet finished, and items
	// finished before anything named them; Tasks* the same for listing
	// tasks alone.
	WorkOpen     int64 `json:"work_open"`
	WorkPending  int64 `json:"work_pending"`
	TasksOpen    int64 `json:"listing_tasks_open"`
	TasksPending int64 `json:"listing_tasks_pending"`
	TasksDone    int64 `json:"listing_tasks_done"`
	TasksFailed  int64 `json:"listing_tasks_failed"`
	// TasksFlat counts listing tasks that fell back to a flat listing.
	TasksFlat int64 `json:"listing_tasks_flat,omitempty"`
	// Duplicates counts records the ledger ignored (redelivered work).
	Duplicates int64 `json:"duplicates_ignored,omitempty"`
	// Reconciled counts destination objects the final reconciliation
	// checked; ReconcileGaps the source keys it found missing or different.
	Reconciled    int64 `json:"objects_reconciled"`
	ReconcileGaps int64 `json:"reconcile_gaps,omitempty"`

	// Pack mode: objects written into bundles, bundles written to staging,
	// their stored (compressed) bytes and the objects' bytes in them; the
	// highest zstd level a bundle was stored at (0: every bundle stored
	// uncompressed; with level auto each bundle's level is sampled, and
	// incompressible ones are stored); bundles removed from
	// staging after every object in them was verified at the destination.
	ObjectsPacked   int64 `json:"objects_packed,omitempty"`
	Bundles         int64 `json:"bundles,omitempty"`
	BundleBytes     int64 `json:"bundle_bytes,omitempty"`
	BundleDataBytes int64 `json:"bundle_data_bytes,omitempty"`
	PackLevel       int   `json:"pack_level,omitempty"`
	BundlesRemoved  int64 `json:"bundles_removed,omitempty"`
}

// PackRatio is the compression ratio of the job's bundles (data bytes over
// stored bytes; 0 before the first bundle).
func (c Counters) PackRatio() float64 {
	if c.BundleBytes == 0 {
		return 0
	}
	return float64(c.BundleDataBytes) / float64(c.BundleBytes)
}

// State is a job's record in the ferry-jobs bucket.
type State struct {
	V    int  `json:"v"`
	Spec Spec `json:"spec"`
	// SpecSig is the signature of Spec by the process that created the
	// job ([SignSpec]); workers run only jobs whose spec a key they trust
	// signed.
	SpecSig *trust.Sig `json:"spec_sig,omitempty"`
	Status  Status     `json:"status"`
	Message string     `json:"message,omitempty"`
	Updated time.Time  `json:"updated"`

	Counters Counters `json:"counters"`
	// LastSeq is the results-stream sequence the counters include.
	LastSeq uint64 `json:"last_seq"`
	// DeletesReleased: the deletes were moved to the work queue.
	DeletesReleased bool `json:"deletes_released,omitempty"`
	// Error says why the job stopped early.
	Error string `json:"error,omitempty"`
	// Started is when the job (or its latest resume) started running;
	// Finished when it finished.
	Started  time.Time  `json:"started"`
	Finished *time.Time `json:"finished,omitempty"`
	Duration float64    `json:"duration_seconds"`
	// AuditHash is the SHA-256 of the last audit line, and AuditLines the
	// number of lines, when the job finished (anchors the audit log).
	AuditHash  string `json:"audit_last_hash,omitempty"`
	AuditLines int64  `json:"audit_lines,omitempty"`
	// Runs counts the coordinator runs (1 + resumes); workers treat a
	// message queued before the latest run started as possibly handled.
	Runs int `json:"runs,omitempty"`
	// CheckBelow narrows that: a message queued before the latest run
	// started is possibly handled only if its work-stream sequence is
	// below CheckBelow, one above the highest sequence the consumer of
	// any earlier run delivered (a message above it was never delivered,
	// so never handled). It only grows; 0 (a record from before it
	// existed): every such message is possibly handled.
	CheckBelow uint64 `json:"check_below,omitempty"`
	// Gaps names the first keys the final reconciliation found missing or
	// different at the destination.
	Gaps []KeyError `json:"gaps,omitempty"`
	// Unsafe names the first MaxNamed keys skipped as unsafe (they are
	// results, not dead letters: retrying cannot help).
	Unsafe []KeyError `json:"skipped_unsafe,omitempty"`
	// SrcMissing names the first MaxNamed keys the source listed and then
	// answered "not found" for (Counters.SrcMissing counts them all).
	SrcMissing []KeyError `json:"source_missing,omitempty"`
	// ProvenanceLost names the first object the destination kept no
	// provenance on (Counters.ProvenanceLost counts them): the limitation
	// is reported once per job.
	ProvenanceLost string `json:"provenance_lost,omitempty"`
	// Refused counts records on the job's results stream the coordinator
	// did not apply: unsigned, or signed by a key it does not trust.
	Refused int64 `json:"refused,omitempty"`
}

// SignSpec signs a job's spec as it is encoded in the job's record.
func SignSpec(s *trust.Signer, spec Spec) (*trust.Sig, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encode spec: %w", err)
	}
	sig := s.SignBytes(trust.SpecSubject, spec.ID, b)
	return &sig, nil
}

// VerifySpec checks that a key in set signed the job's spec, and that the
// spec is the job's under that ID (key is the job's key in the jobs
// bucket), before anything opens the job's stores.
func VerifySpec(set *trust.Set, key string, st State) error {
	if st.Spec.ID != key {
		return fmt.Errorf("job %s: the record holds the spec of job %q", key, st.Spec.ID)
	}
	if st.SpecSig == nil {
		return fmt.Errorf("job %s: spec: %w", key, trust.ErrUnsigned)
	}
	b, err := json.Marshal(st.Spec)
	if err != nil {
		return fmt.Errorf("job %s: encode spec: %w", key, err)
	}
	if err := set.VerifySig(trust.SpecSubject, key, b, *st.SpecSig); err != nil {
		return fmt.Errorf("job %s: spec: %w", key, err)
	}
	return nil
}

// MaxNamed bounds the keys a state names.
const MaxNamed = 1000

// KeyError names a key and what went wrong with it.
type KeyError struct {
	Key   string `json:"key"`
	Error string `json:"error"`
}

// ListingComplete reports whether every listing task finished: no task is
// open, and none finished that no finished task named yet.
func (s *State) ListingComplete() bool {
	return s.Counters.TasksOpen == 0 && s.Counters.TasksPending == 0
}

// WorkComplete reports whether every work item finished.
func (s *State) WorkComplete() bool {
	return s.Counters.WorkOpen == 0 && s.Counters.WorkPending == 0
}

func decodeState(b []byte) (State, error) {
	var probe struct {
		V int `json:"v"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return State{}, fmt.Errorf("decode job state: %w", err)
	}
	if !StateVersionOK(probe.V) {
		return State{}, fmt.Errorf("%w (job format v%d, this ferry reads v%d and v%d)", ErrIncompatible, probe.V, WireVersion, FilterVersion)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("decode job state: %w", err)
	}
	return s, nil
}
