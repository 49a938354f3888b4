package s3

import (
	"errors"
	"io"
	"net"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// Reasons [Config.OnRetry] reports.
const (
	RetryThrottled   = "throttled"    // 503 SlowDown, 429, and the SDK's throttling error codes
	RetryServerError = "server_error" // another 5xx
	RetryTimeout     = "timeout"
	RetryConnection  = "connection" // reset, refused, closed connections
	RetryOther       = "other"
)

// observedRetryer tells onRetry about every retry the SDK is about to make:
// the SDK asks RetryDelay only then (its retry quota is disabled).
type observedRetryer struct {
	aws.RetryerV2
	onRetry func(reason string)
}

func (r observedRetryer) RetryDelay(attempt int, err error) (time.Duration, error) {
	r.onRetry(RetryReason(err))
	return r.RetryerV2.RetryDelay(attempt, err)
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
