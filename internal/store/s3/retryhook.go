package s3

import (
	"errors"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/ferry-dev/ferry/internal/backoff"
)

// Reasons [Config.OnRetry] reports.
const (
	RetryThrottled   = "throttled"    // 503 SlowDown, 429, and the SDK's throttling error codes
	RetryServerError = "server_error" // another 5xx
	RetryTimeout     = "timeout"
	RetryConnection  = "connection" // reset, refused, closed connections
	RetryOther       = "other"
)

// The retry policy of every request (start-up checks, listings, object
// transfers alike): up to Config.RetryMaxAttempts attempts (default
// DefaultRetryMaxAttempts) for errors worth retrying (5xx, throttles,
// timeouts, resets, bodies cut short), waiting retryBase doubled per
// attempt up to retryMaxDelay, jittered, between them. That gets a request
// through half of its attempts failing independently (2^-20 to fail them
// all) in well under a minute, while a server that keeps failing is given
// up on after about a minute. An endpoint that cannot be reached at all
// (connection refused, host not in DNS) is a configuration error more
// likely than a fault: it gets unreachableAttempts attempts only, so a
// wrong endpoint fails fast.
const (
	retryBase           = 200 * time.Millisecond
	retryMaxDelay       = 5 * time.Second
	unreachableAttempts = 3
)

// patientRetryer is the SDK's standard retryer (what is retryable, the
// attempt bound) with ferry's delays, a short bound for unreachable
// endpoints, and onRetry (when not nil) told about every retry the SDK is
// about to make: the SDK asks RetryDelay only then (its retry quota is
// disabled).
type patientRetryer struct {
	aws.RetryerV2
	onRetry func(reason string)
}

// RetryDelay is the wait before the retry that follows failed attempt
// attempt; for an unreachable endpoint past unreachableAttempts it returns
// err itself, which ends the retries with that error.
func (r patientRetryer) RetryDelay(attempt int, err error) (time.Duration, error) {
	if unreachable(err) && attempt >= unreachableAttempts {
		return 0, err
	}
	if r.onRetry != nil {
		r.onRetry(RetryReason(err))
	}
	return backoff.Delay(retryBase, retryMaxDelay, attempt), nil
}

// unreachable reports whether err says the endpoint could not be reached
// at all: the connection was refused, or the host is not in DNS.
func unreachable(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns) && dns.IsNotFound
}

// RetryReason classifies an error the SDK retries: RetryThrottled,
// RetryServerError, RetryTimeout, RetryConnection or RetryOther.
func RetryReason(err error) string {
	var re *awshttp.ResponseError
	status := 0
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	switch {
	case status == 503 || status == 429 || retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary:
		return RetryThrottled
	case status >= 500:
		return RetryServerError
	case retry.IsErrorTimeouts(retry.DefaultTimeouts).IsErrorTimeout(err) == aws.TrueTernary:
		return RetryTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return RetryTimeout
	}
	if (retry.RetryableConnectionError{}).IsErrorRetryable(err) == aws.TrueTernary ||
		(retryableCutBody{}).IsErrorRetryable(err) == aws.TrueTernary {
		return RetryConnection
	}
	return RetryOther
}

// retryableCutBody makes the SDK retry a request whose answer could not be
// read whole or parsed: a body that ended before its Content-Length (the
// connection closed mid-body; io.ErrUnexpectedEOF) or a document that does
// not decode (a damaged XML answer: the SDK's DeserializationError). The
// SDK retries neither by itself, so one listing page or tagging answer cut
// short failed the job or its preflight (issue 10's fault suite).
type retryableCutBody struct{}

func (retryableCutBody) IsErrorRetryable(err error) aws.Ternary {
	var de *smithy.DeserializationError
	if errors.As(err, &de) || errors.Is(err, io.ErrUnexpectedEOF) {
		return aws.TrueTernary
	}
	return aws.UnknownTernary
}
