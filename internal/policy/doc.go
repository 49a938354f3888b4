// Package policy writes the least-privilege IAM policy a ferry job needs:
// read and list on the source, write (and delete only when the job deletes)
// on the destination, scoped to the buckets and prefixes of the job, plus the
// KMS permissions of a customer managed destination key. Local sides need no
// statements.
//
// The actions map to the requests ferry sends:
//
//	source       s3:ListBucket (ListObjectsV2, HeadBucket), s3:GetObject
//	             (GetObject, HeadObject, server-side CopyObject/UploadPartCopy),
//	             s3:GetObjectTagging (tags are copied)
//	destination  s3:ListBucket (the listing compared with the source),
//	             s3:GetObject (HeadObject and read-back verification),
//	             s3:PutObject (PutObject, multipart uploads, CopyObject),
//	             s3:PutObjectTagging (tags in PutObject/CreateMultipartUpload),
//	             s3:AbortMultipartUpload, s3:ListMultipartUploadParts,
//	             s3:ListBucketMultipartUploads (orphaned upload clean-up and
//	             preflight), s3:DeleteObject (sync --delete only)
//	preflight    s3:GetBucketPublicAccessBlock, s3:GetEncryptionConfiguration,
//	             s3:GetBucketPolicy, s3:GetBucketVersioning,
//	             s3:GetLifecycleConfiguration (posture reads; a denied read
//	             is a warning, never a failure)
//	regions      s3:GetBucketLocation (--allowed-regions)
//	kms          kms:GenerateDataKey, kms:Decrypt (--sse aws:kms with a key)
package policy
