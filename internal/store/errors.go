package store

import (
	"errors"
)

// Errors a store returns, wrapped with context. Callers test with errors.Is.
var (
	// ErrNotExist: the object does not exist.
	ErrNotExist = errors.New("object does not exist")
	// ErrBucketNotExist: the bucket (or local root directory) does not exist.
	ErrBucketNotExist = errors.New("bucket does not exist")
	// ErrAccess: the server rejected the credentials or denied the request
	// (InvalidAccessKeyId, SignatureDoesNotMatch, AccessDenied, ExpiredToken).
	ErrAccess = errors.New("access denied")
	// ErrUnsafeKey: the key cannot be written safely at this store (a local
	// path that would escape the root: "..", absolute, NUL, through a symlink).
	ErrUnsafeKey = errors.New("unsafe key")
	// ErrInvalidKey: the key is not valid UTF-8 or is longer than 1024 bytes.
	ErrInvalidKey = errors.New("invalid key")
	// ErrChecksum: the bytes did not match their checksum.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrChanged: a conditional request named a version of the object
	// (by ETag) that it no longer is (HTTP 412 Precondition Failed).
	ErrChanged = errors.New("object changed")
)

// Permanent reports whether retrying the operation that returned err cannot
// help: a missing object or bucket, rejected access, an unsafe or invalid key.
// Checksum mismatches and everything else (5xx, timeouts, resets) are worth
// retrying.
func Permanent(err error) bool {
	return errors.Is(err, ErrNotExist) || errors.Is(err, ErrBucketNotExist) ||
		errors.Is(err, ErrAccess) || errors.Is(err, ErrUnsafeKey) || errors.Is(err, ErrInvalidKey)
}
