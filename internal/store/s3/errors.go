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
	// rejectedCodes: the credentials themselves are refused; deniedCodes:
	// they are valid but not allowed to do this. Both are store.ErrAccess.
	rejectedCodes = map[string]bool{
		"InvalidAccessKeyId": true, "SignatureDoesNotMatch": true, "ExpiredToken": true,
		"InvalidToken": true, "TokenRefreshRequired": true, "InvalidClientTokenId": true,
		"InvalidSecurity": true, "RequestTimeTooSkewed": true,
	}
	deniedCodes = map[string]bool{
		"AccessDenied": true, "AllAccessDisabled": true, "AccountProblem": true, "Forbidden": true,
	}
	unsupportedCodes = map[string]bool{
		"NotImplemented": true, "XNotImplemented": true, "XMinioNotImplemented": true,
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
	case rejectedCodes[code] || deniedCodes[code]:
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

// Code returns the S3 error code of err, or "".
func Code(err error) string {
	var ae smithy.APIError
	if err != nil && errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// codeOf is [Code], except that a bodiless error response (HEAD), whose
// code the SDK can only guess from the status ("Forbidden", "BadRequest"),
// gives the code MinIO states in its X-Minio-Error-Code header.
func codeOf(err error) string {
	code := Code(err)
	switch code {
	case "", "BadRequest", "Forbidden", "NotFound", "MovedPermanently":
		if h := header(err, "X-Minio-Error-Code"); h != "" {
			return h
		}
	}
	return code
}

// header returns the response header name of err, or "".
func header(err error, name string) string {
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.Header.Get(name)
	}
	return ""
}

// BucketRegion returns the region S3 names in the x-amz-bucket-region
// header of err's response, or "". S3 (and MinIO) send it on HeadBucket
// answers, also on the 301, 400 and 403 of a request signed for another
// region.
func BucketRegion(err error) string { return header(err, "X-Amz-Bucket-Region") }

// Status returns the HTTP status of err's response, or 0.
func Status(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// Meaning is what an S3 error says about a request, for reports
// (preflight): the same code lists as the store's error classes.
type Meaning int

const (
	Other       Meaning = iota
	NoBucket            // the bucket does not exist
	Rejected            // the credentials are refused
	Denied              // valid credentials, not allowed
	Unsupported         // the endpoint does not implement the request
)

// MeaningOf sorts an S3 error.
func MeaningOf(err error) Meaning {
	code := codeOf(err)
	switch {
	case bucketCodes[code]:
		return NoBucket
	case rejectedCodes[code]:
		return Rejected
	case deniedCodes[code]:
		return Denied
	case unsupportedCodes[code]:
		return Unsupported
	}
	switch Status(err) {
	case http.StatusForbidden:
		return Denied
	case http.StatusNotImplemented:
		return Unsupported
	}
	return Other
}
