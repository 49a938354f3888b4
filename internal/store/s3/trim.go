package s3

import (
	"fmt"

	"github.com/aws/smithy-go/middleware"
)

// trimmedMiddlewares are the SDK middlewares every request of ferry's S3
// client goes without, by step. Each does work on every request that has
// no effect on what S3 (or an S3-compatible server) does with it:
//
//   - RecursionDetection looks up two environment variables per request and,
//     only inside AWS Lambda with X-Ray, copies the trace ID into an
//     X-Amzn-Trace-Id header so that Lambda can detect a function calling
//     itself; ferry runs no Lambda functions.
//   - ClientRequestID draws a random UUID per call (amz-sdk-invocation-id),
//     which the SDK's own telemetry uses to tie a call's attempts together;
//     S3 ignores it, ferry never reads it. The attempt header
//     (amz-sdk-request) stays, with the retries.
//   - AWSChecksum:RequestMetricsTracking, AWSChecksum:ResponseMetricsTracking
//     and isExpressUserAgent only add feature codes to the User-Agent string
//     (which checksum settings were used, whether the bucket is an S3
//     Express one). They compute and validate nothing: the checksums
//     themselves are computed and checked by the AWSChecksum middlewares
//     that stay.
//
// Signing, retries, clock skew correction, checksum computation and
// validation, Content-MD5, endpoint resolution and error deserialization
// all stay, and so does the User-Agent itself.
var trimmedMiddlewares = struct{ serialize, build []string }{
	serialize: []string{"isExpressUserAgent"},
	build: []string{
		"RecursionDetection",
		"ClientRequestID",
		"AWSChecksum:RequestMetricsTracking",
		"AWSChecksum:ResponseMetricsTracking",
	},
}

// trimStack removes trimmedMiddlewares from an operation's stack, those
// it has: not every operation has every one (looked up first, because
// removing a missing one costs an error value).
func trimStack(st *middleware.Stack) error {
	for _, id := range trimmedMiddlewares.serialize {
		if _, ok := st.Serialize.Get(id); ok {
			if _, err := st.Serialize.Remove(id); err != nil {
				return fmt.Errorf("remove middleware %s: %w", id, err)
			}
		}
	}
	for _, id := range trimmedMiddlewares.build {
		if _, ok := st.Build.Get(id); ok {
			if _, err := st.Build.Remove(id); err != nil {
				return fmt.Errorf("remove middleware %s: %w", id, err)
			}
		}
	}
	return nil
}
