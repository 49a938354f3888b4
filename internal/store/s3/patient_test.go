package s3

import (
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/testenv"
)

// TestStartupChecksUnderHalfFaults: with half of all requests failing
// (connection resets; 503/500 bursts of 3 answers to a request and its
// retries), opening a store, checking its bucket and listing it succeed
// every time: the start-up requests retry as patiently as transfers do.
func TestStartupChecksUnderHalfFaults(t *testing.T) {
	m, bucket := newBucket(t)
	s := openStore(t, m, bucket, "p")
	put(t, s, "k", []byte("hello"))
	proxy := testenv.StartFaultProxy(t, m.Endpoint, nil)
	for _, tt := range []struct {
		name string
		c    testenv.Chances
	}{
		{"resets", testenv.Chances{Reset: 0.5}},
		{"5xx bursts", testenv.Chances{Unavailable: 0.5, Burst: 3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			proxy.SetFaults(testenv.RandomFaults(11, tt.c))
			defer proxy.SetFaults(nil)
			before := proxy.Stats()
			var retries atomic.Int64
			for i := range 3 {
				ps, err := Open(t.Context(), Config{Bucket: bucket, Prefix: "p", Endpoint: proxy.URL,
					Credentials: credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
					OnRetry:     func(string) { retries.Add(1) }})
				if err != nil {
					t.Fatalf("open %d: %v", i, err)
				}
				if err := ps.CheckBucket(t.Context()); err != nil {
					t.Fatalf("check bucket %d: %v", i, err)
				}
				n := 0
				for _, err := range ps.List(t.Context(), store.ListOptions{}) {
					if err != nil {
						t.Fatalf("list %d: %v", i, err)
					}
					n++
				}
				if n != 1 {
					t.Fatalf("list %d: %d objects, want 1", i, n)
				}
				ps.Close()
			}
			st := proxy.Stats()
			faults := st.Resets - before.Resets + st.Statuses - before.Statuses
			t.Logf("%d requests, %d faults injected, %d retries", st.Requests-before.Requests, faults, retries.Load())
			if faults == 0 {
				t.Fatal("no fault was injected")
			}
		})
	}
}

// TestUnreachableFailsFast: an endpoint that refuses connections is a
// configuration error, not a fault to wait out: the bucket check fails
// after unreachableAttempts attempts, naming the refusal.
func TestUnreachableFailsFast(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused
	var retries atomic.Int64
	ps, err := Open(t.Context(), Config{Bucket: "b", Endpoint: "http://" + addr,
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""),
		OnRetry:     func(string) { retries.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	retries.Store(0) // the region discovery's single attempt is not counted
	err = ps.CheckBucket(t.Context())
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("check bucket: %v, want connection refused", err)
	}
	if got := retries.Load(); got != unreachableAttempts-1 {
		t.Errorf("%d retries of a refused connection, want %d", got, unreachableAttempts-1)
	}
}

// checkBucketAfterFailures opens a store through a proxy answering 500 to
// the first failures HeadBucket requests and checks the bucket: it must
// succeed at attempt failures+1, with no attempt more.
func checkBucketAfterFailures(t *testing.T, failures int32) {
	t.Helper()
	m, bucket := newBucket(t)
	proxy := testenv.StartFaultProxy(t, m.Endpoint, nil)
	var heads atomic.Int32
	proxy.SetFaults(func(r *http.Request) testenv.Fault {
		if r.Method == http.MethodHead && heads.Add(1) <= failures {
			return testenv.Fault{Status: http.StatusInternalServerError}
		}
		return testenv.Fault{}
	})
	ps, err := Open(t.Context(), Config{Bucket: bucket, Endpoint: proxy.URL, Region: DefaultRegion,
		Credentials: credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	if err := ps.CheckBucket(t.Context()); err != nil {
		t.Fatalf("check bucket: %v", err)
	}
	if got := heads.Load(); got != failures+1 {
		t.Errorf("%d HeadBucket attempts, want %d", got, failures+1)
	}
}

// TestServerErrorsRetriedPatiently: a request answered 500 for its first 7
// attempts succeeds at the 8th; the 5 attempts ferry used to make gave up.
func TestServerErrorsRetriedPatiently(t *testing.T) {
	checkBucketAfterFailures(t, 7)
}

// TestOneRequestGetsEveryAttempt: a request answered 500 for its first 17
// attempts (over about 50 s of backoff) succeeds at the 18th. The failures
// of its retries do not make the endpoint count as failing every request
// (failfast.go), which used to cut the retries after 16 failed answers over
// 5 s: one request failing repeatedly, or 503/500 bursts on half of the
// requests (the fault table's 5xx 50% row), lost their retries.
func TestOneRequestGetsEveryAttempt(t *testing.T) {
	if testing.Short() {
		t.Skip("about 50 s of retry backoff")
	}
	checkBucketAfterFailures(t, 17)
}
