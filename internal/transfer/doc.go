// Package transfer copies one object from a source [store.Store] to a
// destination and verifies every byte. An [Engine] is safe for concurrent
// use: the caller runs many [Engine.Copy] calls at once, which share one
// memory budget ([Options.MemoryLimit]) of pooled buffers.
//
// # How a copy is made and verified
//
// Copy picks one method per object:
//
//   - Server-side copy ("server-copy"): when the destination implements
//     [store.Copier], CanCopyFrom(src) and it is not disabled, and the source
//     (from Stat) can be verified without reading it: a plain MD5 ETag
//     (single-part, not SSE-KMS) or a full-object CRC32C. The result is
//     checked against the CRC32C or ETag, else read back; a copy failing the
//     check is deleted. Other sources are streamed.
//   - Put ("put"): objects up to [Options.MultipartThreshold]. One GET; the
//     bytes are read into a pooled buffer while computing CRC32C (and MD5
//     when the ETag is a plain MD5 and the object is not SSE-KMS). A stream
//     whose MD5 differs from the ETag (or whose CRC32C differs from the one
//     the source states) was read corrupt: the attempt fails with
//     [store.ErrChecksum] and nothing is written. The Put carries the
//     CRC32C (and ContentMD5) so the destination rejects bytes damaged on
//     the way; a CRC32C the destination reports back must match too.
//   - Multipart ("multipart"): larger objects, destination implementing
//     [store.Multipart]. Parts are read sequentially from the single GET
//     into pooled buffers and up to [Options.PartConcurrency] uploaded at
//     once, each with its CRC32C. The upload is completed only after every
//     part succeeded and the whole stream matched the source's MD5 /
//     CRC32C; on any failure or cancellation it is aborted (with a fresh
//     context), so no partial object is ever visible.
//   - Stream ("stream"): larger objects, destination without Multipart.
//     One Put whose body is the source stream. Its checksum must be known
//     before the first byte so the store can reject a bad body: the
//     source's CRC32C and/or MD5 ETag; when the source states neither, a
//     first pass over the source computes the CRC32C (reading it twice).
//     The body withholds its last bytes and fails the read if the stream
//     does not match, so the store never receives a whole corrupt body.
//
// Preserved: Content-Type, -Encoding, -Disposition, -Language,
// Cache-Control, Expires, all user metadata, tags (fetched only when the
// source reports a non-zero tag count), keys byte for byte, directory
// markers (as zero-byte objects), and the source LastModified as ModTime
// (used by local destinations). Every destination object gets [Provenance]
// user metadata, replacing any ferry-* provenance keys of the source.
//
// # Errors and retries
//
// A failed Copy returns an *[ObjectError] naming the source key and the
// step, wrapping the store's error; [store.Permanent] tells whether a later
// retry can help. Copy itself retries other errors (checksum mismatches,
// transient failures the SDK gave up on) up to [Options.Attempts] times with
// jittered exponential backoff, checking ctx first.
//
// # Memory
//
// Object and part buffers are built of 64 KiB slabs from a sync.Pool and are
// admitted by a semaphore weighted in bytes, so all copies of an Engine
// together hold at most MemoryLimit bytes of buffers (a buffer larger than
// the limit runs alone). A copy waits for budget; the uploads it has in
// flight release theirs as they finish.
package transfer
