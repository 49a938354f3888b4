package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/transfer"
)

func apiErr(status int, code string) error {
	return &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err: &smithy.GenericAPIError{Code: code, Message: "m"}},
	}
}

func TestServerFault(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("put: %w", apiErr(500, "InternalError")), "InternalError (HTTP 500)"},
		{&transfer.ObjectError{Op: "put", Key: "k", Err: apiErr(503, "SlowDown")}, "SlowDown (HTTP 503)"},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, "connection error: connection refused"},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), "timeout"},
		{fmt.Errorf("x: %w: %w", store.ErrNotExist, apiErr(404, "NoSuchKey")), ""},
		{fmt.Errorf("x: %w", store.ErrAccess), ""},
		{fmt.Errorf("x: %w", store.ErrChecksum), ""},
		{fmt.Errorf("x: %w", context.Canceled), ""},
		{errors.New("local disk full"), ""},
		{nil, ""},
	} {
		got, ok := serverFault(c.err)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("serverFault(%v) = %q, %v; want %q", c.err, got, ok, c.want)
		}
	}
}

func TestBreakerTrips(t *testing.T) {
	var b breaker
	// Random failures at 50% never trip it.
	for i := range 1000 {
		sig := ""
		if (i*7919)%2 == 0 {
			sig = "a"
		}
		if trip, _ := b.record(sig, "d"); trip {
			t.Fatalf("tripped at object %d with half the objects failing", i)
		}
	}
	// Two different errors, eight each, do not either.
	b = breaker{}
	for i := range breakerWindow {
		sig := "a"
		if i%2 == 0 {
			sig = "b"
		}
		if trip, _ := b.record(sig, "d"); trip {
			t.Fatal("tripped on two different errors")
		}
	}
	// breakerTrip of the last breakerWindow with one error does, once.
	b = breaker{}
	trips := 0
	for i := range 3 * breakerWindow {
		sig := "a"
		if i%5 == 4 {
			sig = ""
		}
		if trip, same := b.record(sig, "d"); trip {
			trips++
			if same < breakerTrip {
				t.Fatalf("tripped with %d", same)
			}
		}
	}
	if trips != 1 || !b.isTripped() {
		t.Fatalf("%d trips, tripped %v", trips, b.isTripped())
	}
}
