package transfer

import "time"

// Defaults and limits of [Options].
const (
	DefaultPartSize        = 16 << 20
	DefaultPartConcurrency = 4
	DefaultMemoryLimit     = 512 << 20
	DefaultAttempts        = 3
	DefaultRetryDelay      = 200 * time.Millisecond
	DefaultStallTimeout    = 30 * time.Second
	// MaxParts is the most parts one multipart upload may have (S3's limit).
	MaxParts = 10000

	maxRetryDelayFactor = 25 // the backoff cap is 25×RetryDelay (5s by default)
	partSizeGrowth      = 1 << 20
)

// Options tune an [Engine]. The zero value of every field means its default.
type Options struct {
	// PartSize is the size of every part of a multipart upload but the last.
	// Default 16 MiB. For an object that would need more than [MaxParts]
	// parts it is grown, rounded up to a whole MiB (see [PartSizeFor]).
	PartSize int64
	// MultipartThreshold: objects larger than this are uploaded in parts
	// (or streamed, when the destination has no [store.Multipart]).
	// Default PartSize. It is capped at MemoryLimit, since an object at or
	// below the threshold is held in memory whole.
	MultipartThreshold int64
	// PartConcurrency is the number of parts of one object uploaded at once.
	// Default 4.
	PartConcurrency int
	// MemoryLimit bounds the bytes of object and part buffers in flight
	// across all copies of the Engine; a copy waits for budget. Default
	// 512 MiB. A single buffer larger than the limit (a part of a huge
	// object) takes the whole budget and runs alone.
	MemoryLimit int64
	// Attempts is the number of times Copy tries an object when it fails
	// with an error worth retrying (![store.Permanent]). Default 3.
	Attempts int
	// RetryDelay is the base of the exponential backoff between attempts;
	// each delay is jittered and capped at 25×RetryDelay. Default 200ms.
	RetryDelay time.Duration
	// SSE and SSEKMSKeyID request server-side encryption of the written
	// objects (see [store.PutInput]).
	SSE, SSEKMSKeyID string
	// StorageClass is the storage class of the written objects, server
	// copies included ("": the destination's default; see
	// [store.PutInput]).
	StorageClass string
	// Limiter, when set, bounds the rate at which the source's bytes are
	// read through ferry (and so uploaded); engines sharing one Limiter
	// share its rate. Server-side copies do not pass through ferry and are
	// not limited. Nil: no limit.
	Limiter *Limiter
	// CompareChecksum makes [Engine.UpToDate] compare checksums instead of
	// provenance (--checksum; see there).
	CompareChecksum bool
	// DisableServerSideCopy makes every copy stream through ferry.
	DisableServerSideCopy bool
	// RequireVerified makes a copy whose bytes cannot be checked against
	// the source ([Result.Verified] would be [Unverified]) fail with
	// [ErrUnverified] before anything is written, instead of succeeding
	// unverified.
	RequireVerified bool
	// StallTimeout aborts a source read that receives no bytes for this
	// long (waiting for the response included) and reads the rest of its
	// range again (see [ErrStalled]); such re-reads, like those after a
	// body cut short, are bounded and do not spend Attempts. It also
	// cancels a Put or UploadPart whose body is not taken for this long
	// (or that is not answered this long after its last byte), which is
	// then sent again from its buffer. Default 30s; negative disables it.
	StallTimeout time.Duration
	// Resumer, when set, makes multipart uploads resumable: each upload
	// and its completed parts are recorded with it, an upload is kept
	// when its copy is drained ([ErrDrain]) instead of aborted, and a later
	// Copy to the same destination key, by any Engine with a Resumer
	// sharing the records, continues it. Nil: uploads are never kept.
	Resumer Resumer
	// OnRetry, when set, is called before each retry the engine makes: a
	// source read resumed ("source", "stalled" or "read"), a source range
	// read again because its bytes failed the check ("source", "checksum"),
	// a part uploaded
	// again ("destination", "part"), a whole copy tried again ("any",
	// "attempt"). It is called from many goroutines and must not block.
	OnRetry func(side, reason string)
}

// retried reports a retry to OnRetry.
func (o *Options) retried(side, reason string) {
	if o.OnRetry != nil {
		o.OnRetry(side, reason)
	}
}

func (o Options) withDefaults() Options {
	if o.PartSize <= 0 {
		o.PartSize = DefaultPartSize
	}
	if o.MultipartThreshold <= 0 {
		o.MultipartThreshold = o.PartSize
	}
	if o.PartConcurrency <= 0 {
		o.PartConcurrency = DefaultPartConcurrency
	}
	if o.MemoryLimit <= 0 {
		o.MemoryLimit = DefaultMemoryLimit
	}
	o.MultipartThreshold = min(o.MultipartThreshold, o.MemoryLimit)
	if o.Attempts <= 0 {
		o.Attempts = DefaultAttempts
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = DefaultRetryDelay
	}
	if o.StallTimeout == 0 {
		o.StallTimeout = DefaultStallTimeout
	}
	return o
}

// PartSizeFor returns the part size for an object of size bytes: partSize
// (DefaultPartSize when <= 0), or, if that would need more than [MaxParts]
// parts, the smallest whole number of MiB that needs at most MaxParts.
// A 5 TiB object gets 525 MiB parts.
func PartSizeFor(size, partSize int64) int64 {
	if partSize <= 0 {
		partSize = DefaultPartSize
	}
	if size <= partSize*MaxParts {
		return partSize
	}
	ps := (size + MaxParts - 1) / MaxParts
	return (ps + partSizeGrowth - 1) / partSizeGrowth * partSizeGrowth
}

// partCount is the number of parts of size bytes in parts of partSize.
func partCount(size, partSize int64) int64 {
	return (size + partSize - 1) / partSize
}
