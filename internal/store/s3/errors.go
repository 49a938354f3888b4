package s3

import (
	"errors"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/ferry-dev/ferry/internal/store"
)

// Error is an error of one S3 operation on one object or bucket. It wraps
// both its class (a store error such as [store.ErrNotExist], or nil when
// unclassified) and the underlying SDK error, so errors.Is and errors.As see
// both.
type Error struct {
	// Op is the operation: "put", "stat", "list", ...
	Op string
	// URL names the object or location: "s3://bucket/key".
	URL string
	// Class is the store error the failure maps to, or nil.
	Class error
	// Err is the SDK's (or transport's) error.
	Err error
}

func (e *Error) Error() string {
	if e.Class != nil {
		return e.Op + " " + e.URL + ": " + e.Class.Error() + ": " + e.Err.Error()
	}
	return e.Op + " " + e.URL + ": " + e.Err.Error()
}

// Unwrap returns the class and the underlying error.
func (e *Error) Unwrap() []error {
	if e.Class != nil {
		return []error{e.Class, e.Err}
	}
	return []error{e.Err}
}

// Error codes by class. S3 documents most; the rest come from S3-compatible
// servers (MinIO answers a wrong x-amz-checksum-crc32c with
// XAmzContentChecksumMismatch).
var (
	notExistCodes = map[string]bool{
		"NoSuchKey": true, "NoSuchVersion": true, "NoSuchUpload": true,
	}
	bucketCodes = map[string]bool{
		"NoSuchBucket": true,
	}
	accessCodes = map[string]bool{
		"AccessDenied": true, "InvalidAccessKeyId": true, "SignatureDoesNotMatch": true,
		"ExpiredToken": true, "InvalidToken": true, "TokenRefreshRequired": true,
		"AllAccessDisabled": true, "AccountProblem": true, "InvalidSecurity": true,
	}
	invalidKeyCodes = map[string]bool{
		"KeyTooLongError": true, "XMinioInvalidObjectName": true,
	}
	checksumCodes = map[string]bool{
		"BadDigest": true, "InvalidDigest": true, "XAmzContentChecksumMismatch": true,
		"XAmzContentSHA256Mismatch": true, "InvalidChecksum": true,
	}
)

// opKind says what a 404 without an error code (a HEAD response has no
// body) means for an operation.
type opKind int

const (
	objectOp opKind = iota // 404: the object does not exist
	bucketOp               // 404: the bucket does not exist
)

// classify maps an SDK error to a store error class, or nil.
func classify(err error, kind opKind) error {
	var code string
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	switch {
	case bucketCodes[code]:
		return store.ErrBucketNotExist
	case notExistCodes[code]:
		return store.ErrNotExist
	case accessCodes[code]:
		return store.ErrAccess
	case checksumCodes[code]:
		return store.ErrChecksum
	case invalidKeyCodes[code]:
		return store.ErrInvalidKey
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		return nil
	}
	switch re.HTTPStatusCode() {
	case http.StatusForbidden:
		return store.ErrAccess
	case http.StatusNotFound:
		if code == "" || code == "NotFound" {
			if kind == bucketOp {
				return store.ErrBucketNotExist
			}
			return store.ErrNotExist
		}
	}
	return nil
}

// wrap wraps err of operation op on url, classified. It returns nil for a
// nil err.
func wrap(op, url string, kind opKind, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Op: op, URL: url, Class: classify(err, kind), Err: err}
}
