// Package s3 implements [store.Store], [store.Multipart] and [store.Copier]
// on Amazon S3 and S3-compatible servers (MinIO, Ceph, ...) with
// aws-sdk-go-v2.
//
// A [Store] is rooted at a bucket and a prefix; the prefix is a "directory"
// (it always ends in "/", or is empty) and every key of the Store API is
// relative to it. Keys are byte-exact: listings ask for URL-encoded keys, so
// keys with control characters survive XML, and decode them only when the
// response says they are encoded (EncodingType url): a server may ignore the
// request and send raw keys (Versity Gateway does). A key that a response
// says is encoded but does not decode is yielded as an error naming it, in
// its place, and the listing goes on if the caller keeps iterating. Listed
// LastModified times are truncated to seconds, the precision of Stat (an
// HTTP date), so a listing and a Stat of the same object agree.
//
// User metadata entries with an empty value are not sent (some servers drop
// them, SeaweedFS among them): a reader takes a missing key for "".
//
// Credentials and region come from the standard AWS chain
// (config.LoadDefaultConfig: environment, shared config and credentials
// files with an optional profile, SSO, web identity, ECS and EC2 IMDSv2)
// unless [Config] overrides them. A custom endpoint uses path-style
// addressing and defaults to region us-east-1; on AWS an unknown region is
// discovered from the bucket.
//
// Integrity: the SDK computes no checksums of its own
// (RequestChecksumCalculation and ResponseChecksumValidation are
// WhenRequired) and payloads are sent unsigned, so no aws-chunked trailers
// reach servers that reject them. Instead ferry passes the CRC32C (and MD5)
// it computed as x-amz-checksum-crc32c (and Content-MD5) headers, and the
// server rejects a body that does not match: that error wraps
// [store.ErrChecksum]. Multipart uploads use full-object CRC32C checksums.
//
// Errors are classified at this boundary: every error returned wraps one of
// the store errors where it applies ([store.ErrNotExist],
// [store.ErrBucketNotExist], [store.ErrAccess], [store.ErrChecksum],
// [store.ErrInvalidKey]) as well as the SDK's error, and names the operation
// and the s3:// URL. Messages never contain credentials.
//
// Requests are retried by the SDK's standard retryer (exponential backoff
// with jitter, on 5xx, throttling, timeouts and connection resets) with its
// client-side retry quota disabled, so a long job never runs out of retry
// tokens. A Put whose body is not an [io.Seeker] cannot be retried by the SDK;
// the caller retries it.
//
// A Store is safe for concurrent use; it owns one HTTP connection pool.
package s3
