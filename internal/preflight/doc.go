// Package preflight checks, without changing anything, that a job can run
// and how well the destination bucket is protected, and reports each check
// as pass, warn or fail.
//
// Credentials are checked with the read requests the job itself needs:
// HeadBucket, ListObjectsV2 (one key) and, on the source, a one-byte
// GetObject and GetObjectTagging of the first key listed; on the
// destination HeadBucket, ListObjectsV2 and ListMultipartUploads. Writes
// cannot be tested without writing, so they are reported as a warning "not
// tested (would write)". The destination's posture is read with
// GetPublicAccessBlock, GetBucketEncryption, GetBucketPolicy and
// GetBucketVersioning; a missing or weak setting, a denied read and an
// endpoint that does not implement the request are warnings.
//
// A check fails only when the job cannot run: the credentials are rejected,
// the bucket does not exist, a required read or listing is denied, the
// endpoint cannot be reached, or the destination is outside
// the allowed regions. docs/security.md documents the table.
package preflight
