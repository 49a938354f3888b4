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
//     check is deleted. Other sources are streamed. When the listed ETag is
//     a plain MD5 and the destination is a [store.VerbatimCopier], the copy
//     is first tried in one request without the Stat: the server keeps the
//     source's metadata and tags, the copy is conditional on the listed
//     ETag and must report it back (see [Engine.verbatimCopy]).
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
//     context), so no partial object is ever visible. When there is no
//     whole-object MD5 to check (the source ETag is multipart or SSE-KMS,
//     or absent), the source is Stat'ed (with its checksums) and each part
//     is read instead with its own ranged Open, up to PartConcurrency parts
//     of an object at once, each CRC32C'd; every ranged read must come from
//     the version Stat saw, and the parts' CRC32Cs combine into the
//     full-object one, checked against the source's and the destination's
//     when they state one. The bytes are checked against the source as
//     below, feeding the parts in order to one hasher where needed.
//   - Stream ("stream"): larger objects, destination without Multipart.
//     One Put whose body is the source stream. Its checksum must be known
//     before the first byte so the store can reject a bad body: the
//     source's CRC32C and/or MD5 ETag; when the source states neither, a
//     first pass over the source computes the CRC32C (reading it twice).
//     The body withholds its last bytes and fails the read if the stream
//     does not match, so the store never receives a whole corrupt body.
//
// # How the bytes are checked against the source
//
// No copy is reported done unless the bytes ferry read were checked against
// what the source states, by the first of these it offers; [Result.Verified]
// names it:
//
//   - a full-object checksum: CRC64NVME, CRC32C, CRC32, SHA-256, SHA-1 (S3
//     states them on HEAD and whole-object GETs asked with ChecksumMode
//     ENABLED), compared with the same checksum of all the bytes read;
//   - per-part checksums ("part-sha256", ...) of a source uploaded in parts
//     with composite checksums: the part layout and each part's checksum
//     come from one HeadObject with partNumber per part
//     ([store.PartStater]); the bytes read are split at the source's part
//     boundaries (which need not be ferry's) and each part's checksum is
//     compared as it ends;
//   - the multipart ETag ("multipart-etag", "<hex>-N"): with the layout
//     learned the same way, the MD5 of each source part over the bytes read,
//     then the MD5 of those MD5s followed by "-N", must equal the ETag (not
//     for SSE-KMS objects, whose ETags are no MD5s);
//   - the plain MD5 ETag ("md5").
//
// A source offering none of these but whose bytes are read on this machine
// ([store.LocalReader]: a local file) is "local-read": read once, hashed as
// read, its size and mtime unchanged at the end. Any other source is
// [Unverified] (""): the copy succeeds, reported so, unless
// [Options.RequireVerified] refuses it with [ErrUnverified] before anything
// is written. Every check runs before the write is made visible (before the
// Put, the CompleteMultipartUpload, or the last bytes of a streamed Put); a
// mismatch fails the attempt with [store.ErrChecksum], aborts the upload,
// and is retried. A server-side copy reports "crc32c" or "md5"; a resumed
// copy "crc32c" when the source states a full-object CRC32C ("local-read"
// for a local source), else it is unverified, so with RequireVerified its
// upload is dropped and the object copied afresh.
//
// Source reads survive a flaky connection without spending attempts: a body
// cut short or reset is read on with a ranged GET from the byte reached (of
// the same version), and a read receiving nothing for
// [Options.StallTimeout] is aborted ([ErrStalled]) and read on likewise, a
// bounded number of times per range. Bytes that arrive whole but fail the
// check against the source (a bit flipped on the way) are read again within
// the attempt too, up to 5 times: a buffered object whole; for a multipart
// copy, whose whole-object check cannot tell which part was damaged, every
// part is read again, in order, until two reads of it agree (the uploaded
// read counting as one), only a part whose agreed bytes differ from those
// uploaded is uploaded again, and the check is made again over the agreed
// bytes before the upload is completed. A part upload or a buffered Put
// that fails with an error worth retrying is sent again from its buffer,
// twice (5 times when the destination rejected its bytes as damaged),
// within the attempt. Writes have a stall timeout too: a Put or UploadPart
// whose body the destination stops taking for StallTimeout, or that gets no
// answer StallTimeout after its last byte, is cancelled ([ErrStalled]) and
// sent again likewise; the time a streamed Put's body waits for its source
// is not counted (the read has its own timeout), and a streamed Put, having
// no buffer, fails the attempt instead.
//
// Preserved: Content-Type, -Encoding, -Disposition, -Language,
// Cache-Control, Expires, all user metadata, tags (fetched only when the
// source reports a non-zero tag count), keys byte for byte, directory
// markers (as zero-byte objects), and the source LastModified as ModTime
// (used by local destinations). Every destination object gets [Provenance]
// user metadata, replacing any ferry-* provenance keys of the source, except
// a verbatim server copy, whose ETag equals the source's plain MD5 ETag and
// is its provenance (the server copies the source's metadata as it is).
//
// # Resuming multipart uploads
//
// With [Options.Resumer], a multipart copy records its upload ID, the source
// version (key, ETag, size, LastModified) and the part size after
// CreateMultipart, and every completed part (number, size, ETag, CRC32C) as
// it completes ([UploadState]). If that first Save fails the upload is
// aborted at once. A copy whose context is cancelled with the cause
// [ErrDrain] keeps its upload unfinished and its state saved; any other
// cancellation, a permanent error, a checksum mismatch and every other
// failure abort the upload and delete the state, as without a Resumer. (An
// abort that fails keeps the state, so [Engine.AbortUpload] can retry.)
//
// Copy of an object the listing shows above the threshold first loads the
// state of the destination key. When there is one, it Stats the source:
// a state whose source version differs (or whose parts are not parts of
// it) is dropped — its upload aborted — and the object copied afresh. A
// destination implementing [store.PartLister] is asked for the upload's
// parts: recorded parts it does not list with the same size and ETag are
// uploaded again, and an upload it no longer has is started afresh. Else
// only the missing parts are read, each with a ranged Open (which must
// return the same source version) and uploaded with its CRC32C. When the
// destination answers that the upload no longer exists (expired, aborted
// elsewhere), the state is deleted and the object copied afresh.
//
// A resumed copy cannot check the source's MD5 ETag: that needs the whole
// stream, and the skipped parts are not read again. It verifies instead:
//
//   - each part, old and new, reached the destination intact: the store
//     checked its CRC32C when it was uploaded, and again at Complete;
//   - the source is the version the upload was started from (ETag, size
//     and LastModified, at resume and on every ranged read);
//   - the object was assembled from exactly those parts in order: the
//     full-object CRC32C the destination reports after Complete (or, if it
//     reports none, the CRC32C of the object read back) equals the CRC32C
//     combined from the parts' CRC32Cs (computed, not read: O(log n) per
//     part); else the object is deleted and the copy fails with
//     [store.ErrChecksum];
//   - when the source states a full-object CRC32C, the combined CRC32C must
//     equal it before the upload is completed — end to end, as strong as a
//     fresh copy; on a mismatch the upload is aborted and a retry copies
//     afresh.
//
// What it does not verify, for a source stating only an MD5 ETag, is that
// ferry read each part's bytes from the source intact (a fresh copy proves
// that with the MD5 of the whole stream). Such a copy reports MD5Verified
// false and [Result.ResumedParts] > 0; its [Result.CRC32C] is the combined
// one. Provenance, metadata and tags are those written when the upload was
// created.
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
