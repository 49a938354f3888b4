package worker_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/store"
	s3store "github.com/ferry-dev/ferry/internal/store/s3"
	"github.com/ferry-dev/ferry/internal/testenv"
	"github.com/ferry-dev/ferry/internal/worker"
)

// TestBreakerPausesAndResumes: the destination answers InternalError to
// every PUT (as a SeaweedFS at its volume limit does). The job's circuit
// breaker pauses it, with a message naming the error and the endpoint,
// long before it has tried every object, and without using up (or
// dead-lettering) any object's attempts. Once the server is fixed, a
// resume copies everything.
func TestBreakerPausesAndResumes(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	m.CreateBucket(t, "src")
	m.CreateBucket(t, "dst")
	const n, conc = 400, 16
	seedKeys(t, m, "src", n, 64)
	proxy := testenv.StartFaultProxy(t, m.Endpoint, nil)
	var puts atomic.Int64
	proxy.SetFaults(func(r *http.Request) testenv.Fault {
		if r.Method == http.MethodPut {
			puts.Add(1)
			return testenv.Fault{Status: http.StatusInternalServerError}
		}
		return testenv.Fault{}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	conn := connect(t)
	creds := credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, "")
	src, err := s3store.Open(ctx, s3store.Config{Bucket: "src", Endpoint: m.Endpoint, Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := s3store.Open(ctx, s3store.Config{Bucket: "dst", Endpoint: proxy.URL, Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	coord, err := job.Create(ctx, conn, job.Spec{Command: "copy", Src: job.Side{Location: "s3://src", Endpoint: m.Endpoint},
		Dst: job.Side{Location: "s3://dst", Endpoint: proxy.URL}, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWorker := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopWorker(); wg.Wait() }()
	w := worker.New(conn, worker.Options{
		Concurrency: conc, Name: "w", BatchObjects: 20, RetryBase: 100 * time.Millisecond,
		Open: func(context.Context, job.Spec) (store.Store, store.Store, error) { return src, dst, nil },
	})
	wg.Go(func() {
		if err := w.Run(wctx); err != nil {
			t.Error(err)
		}
	})

	start := time.Now()
	st, err := coord.Run(ctx, job.RunOptions{Tick: 10 * time.Millisecond, StopWhenTripped: true})
	took := time.Since(start)
	if !errors.Is(err, job.ErrTripped) {
		t.Fatalf("coordinator: %v (status %s %q)", err, st.Status, st.Message)
	}
	t.Logf("paused after %s and %d PUTs (all answered 500) of %d objects: %s", took.Round(time.Millisecond), puts.Load(), n, st.Message)
	if st.Status != job.Paused || !strings.HasPrefix(st.Message, job.Tripped) {
		t.Fatalf("status %s %q", st.Status, st.Message)
	}
	for _, want := range []string{"InternalError (HTTP 500)", "destination s3://dst at " + proxy.URL, "ferry job resume " + st.Spec.ID} {
		if !strings.Contains(st.Message, want) {
			t.Errorf("the pause message does not say %q: %s", want, st.Message)
		}
	}
	if st.Counters.Failed != 0 {
		t.Errorf("%d objects failed (used up their attempts) before the job paused", st.Counters.Failed)
	}
	if p := puts.Load(); p >= n {
		t.Errorf("%d PUTs before pausing: the job ground through every object", p)
	}

	// Fixed: a resume copies everything.
	proxy.SetFaults(nil)
	coord, err = job.Open(ctx, conn, st.Spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	st, err = coord.Run(ctx, job.RunOptions{Tick: 10 * time.Millisecond, StopWhenTripped: true})
	if err != nil {
		t.Fatalf("resumed: %v", err)
	}
	t.Logf("resumed: done in %s", time.Since(start).Round(time.Millisecond))
	if st.Status != job.Done || st.Counters.Copied != n || st.Counters.Failed != 0 {
		t.Fatalf("resumed: %s %q %+v", st.Status, st.Error, st.Counters)
	}
	out, err := m.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("dst")})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(out.Contents); got != n {
		t.Fatalf("the destination holds %d objects, want %d", got, n)
	}
}
