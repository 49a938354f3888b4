package worker_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/store"
	s3store "github.com/ferry-dev/ferry/internal/store/s3"
	"github.com/ferry-dev/ferry/internal/testenv"
	"github.com/ferry-dev/ferry/internal/worker"
)

// copied counts the objects a destination wrote and signals when a number
// of them is reached.
type copied struct {
	mu    sync.Mutex
	n     int
	marks map[int]chan struct{}
	keys  map[string]bool
}

func (c *copied) add(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	c.keys[key] = true
	if ch, ok := c.marks[c.n]; ok {
		close(ch)
	}
}

// at returns a channel closed once n objects were written.
func (c *copied) at(n int) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{})
	if c.n >= n {
		close(ch)
		return ch
	}
	c.marks[n] = ch
	return ch
}

func (c *copied) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func (c *copied) has(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keys[key]
}

// countingS3 is an S3 destination that counts the objects it wrote.
type countingS3 struct {
	*s3store.Store
	c *copied
}

func (d *countingS3) Put(ctx context.Context, in store.PutInput, body io.Reader) (store.PutResult, error) {
	r, err := d.Store.Put(ctx, in, body)
	if err == nil {
		d.c.add(in.Key)
	}
	return r, err
}

// runS3Job copies the bucket src (read through proxy) to the bucket dst of
// m with one worker, and returns the job's state and how long after the
// start each mark (a number of objects written) was passed. beforeEnd, when
// not nil, runs once every mark was passed, before waiting for the job to
// end.
func runS3Job(t *testing.T, m *testenv.MinIO, proxy *testenv.FaultProxy, dst string, concurrency, batch int, marks []int, beforeEnd func(c *copied)) (job.State, []time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conn := connect(t)
	creds := credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, "")
	src, err := s3store.Open(ctx, s3store.Config{Bucket: "src", Endpoint: proxy.URL, Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	d, err := s3store.Open(ctx, s3store.Config{Bucket: dst, Endpoint: m.Endpoint, Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c := &copied{marks: map[int]chan struct{}{}, keys: map[string]bool{}}
	dstStore := &countingS3{Store: d, c: c}
	coord, err := job.Create(ctx, conn, job.Spec{Command: "copy", Src: job.Side{Location: "s3://src"}, Dst: job.Side{Location: "s3://" + dst}, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	reached := make([]<-chan struct{}, len(marks))
	for i, n := range marks {
		reached[i] = c.at(n)
	}
	start := time.Now()
	wctx, stopWorker := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopWorker(); cancel(); wg.Wait() }()
	w := worker.New(conn, worker.Options{
		Concurrency: concurrency, Name: "w", BatchObjects: batch, RetryBase: time.Millisecond,
		Open: func(context.Context, job.Spec) (store.Store, store.Store, error) { return src, dstStore, nil },
	})
	wg.Go(func() {
		if err := w.Run(wctx); err != nil {
			t.Error(err)
		}
	})
	type ran struct {
		st  job.State
		err error
	}
	result := make(chan ran, 1)
	wg.Go(func() {
		st, err := coord.Run(ctx, job.RunOptions{Tick: 10 * time.Millisecond})
		result <- ran{st, err}
	})
	// A bound for a failing run, not a synchronisation.
	deadline := time.After(90 * time.Second)
	var took []time.Duration
	for i, ch := range reached {
		select {
		case <-ch:
			took = append(took, time.Since(start))
		case <-deadline:
			t.Fatalf("%d objects written in 90 s, waiting for %d", c.count(), marks[i])
		}
	}
	if beforeEnd != nil {
		beforeEnd(c)
	}
	r := <-result
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.st, took
}

// TestStalledGETsHoldOneSlotEach: three source GETs hang (a fault proxy
// holds their response bodies) while a worker with --concurrency 16 copies
// 600 objects in batches of 20. The other 597 must be copied while the
// three are held, at about the rate of a run without faults; then the
// stalls are released and the job ends done.
func TestStalledGETsHoldOneSlotEach(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	m.CreateBucket(t, "src")
	m.CreateBucket(t, "dst1")
	m.CreateBucket(t, "dst2")
	const n, batch, conc = 600, 20, 16
	keys := seedKeys(t, m, "src", n, 256)
	proxy := testenv.StartFaultProxy(t, m.Endpoint, nil)

	st, clean := runS3Job(t, m, proxy, "dst1", conc, batch, []int{n}, nil)
	if st.Status != job.Done || st.Counters.Copied != n {
		t.Fatalf("clean run: %s %q %+v", st.Status, st.Error, st.Counters)
	}

	// The first object of each of the first three batches hangs.
	stalled := map[string]bool{keys[0]: true, keys[batch]: true, keys[2*batch]: true}
	hold := make(chan struct{})
	proxy.SetFaults(func(r *http.Request) testenv.Fault {
		if r.Method == http.MethodGet && stalled[strings.TrimPrefix(r.URL.Path, "/src/")] {
			return testenv.Fault{Hold: hold, At: 0.5}
		}
		return testenv.Fault{}
	})
	st, faulty := runS3Job(t, m, proxy, "dst2", conc, batch, []int{n - len(stalled)}, func(c *copied) {
		if s := proxy.Stats().Stalls; s < int64(len(stalled)) {
			t.Errorf("%d stalls injected, want %d", s, len(stalled))
		}
		for k := range stalled {
			if c.has(k) {
				t.Errorf("%s written while its GET was held", k)
			}
		}
		close(hold)
	})
	if st.Status != job.Done || st.Counters.Copied != n || st.Counters.Failed != 0 {
		t.Fatalf("run with stalls: %s %q %+v", st.Status, st.Error, st.Counters)
	}
	t.Logf("%d objects, concurrency %d, batches of %d: all copied in %s without faults; with %d GETs held, the other %d in %s",
		n, conc, batch, clean[0].Round(time.Millisecond), len(stalled), n-len(stalled), faulty[0].Round(time.Millisecond))
	if faulty[0] > 2*clean[0]+2*time.Second {
		t.Errorf("with %d of %d slots held, the other objects took %s, against %s for all without faults", len(stalled), conc, faulty[0], clean[0])
	}
}

// TestHalfThrottled: every request to the source has a 50% chance of a 503
// SlowDown. The job completes with every object copied, no object failed,
// and a bounded number of requests; the time is logged against a run
// without faults.
func TestHalfThrottled(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	m.CreateBucket(t, "src")
	m.CreateBucket(t, "dst1")
	m.CreateBucket(t, "dst2")
	const n, batch, conc = 300, 20, 16
	seedKeys(t, m, "src", n, 256)
	proxy := testenv.StartFaultProxy(t, m.Endpoint, nil)
	st, clean := runS3Job(t, m, proxy, "dst1", conc, batch, []int{n}, nil)
	if st.Status != job.Done || st.Counters.Copied != n {
		t.Fatalf("clean run: %s %q %+v", st.Status, st.Error, st.Counters)
	}
	cleanReqs := proxy.Stats().Requests

	proxy.SetFaults(testenv.RandomFaults(10, testenv.Chances{Unavailable: 0.5}))
	st, faulty := runS3Job(t, m, proxy, "dst2", conc, batch, []int{n}, nil)
	fs := proxy.Stats()
	reqs := fs.Requests - cleanReqs
	ls := s3store.EndpointLimiter(proxy.URL).Stats()
	t.Logf("%d objects: %s and %d source requests without faults; at 50%% 503s %s and %d requests (%d answered 503); the endpoint's limit ended at %.0f after %d halvings",
		n, clean[0].Round(time.Millisecond), cleanReqs, faulty[0].Round(time.Millisecond), reqs, fs.Statuses, ls.Limit, ls.Decreases)
	if st.Status != job.Done || st.Counters.Copied != n || st.Counters.Failed != 0 {
		t.Fatalf("at 50%% 503s: %s %q %+v", st.Status, st.Error, st.Counters)
	}
	// Each request is answered after two tries on average; allow 4.
	if reqs > 4*cleanReqs {
		t.Errorf("%d requests at 50%% 503s, against %d without faults", reqs, cleanReqs)
	}
	if ls.Decreases == 0 {
		t.Error("the 503s never lowered the endpoint's limit")
	}
}

// TestLoadThrottled: the source throttles by load, like a server: a request
// arriving while throttleK others are being served is answered 503
// SlowDown; each request it serves takes it 20 ms, so that the requests in
// flight depend on the server, not on how busy the machine running the
// test is. With the endpoint's AIMD limiter its limit settles below
// throttleK (its mean over the second half of the job) and the job meets
// fewer 503s than with the limiter switched off; both complete with every
// object copied.
func TestLoadThrottled(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	m.CreateBucket(t, "src")
	m.CreateBucket(t, "dst1")
	m.CreateBucket(t, "dst2")
	const n, batch, conc, throttleK = 300, 20, 16, 4
	seedKeys(t, m, "src", n, 256)
	type run struct {
		took                time.Duration
		requests, throttled int64
		meanLimit           float64 // over the second half of the answers
		decreases           int64
	}
	measure := func(dst string, adaptive bool) run {
		// A proxy (an endpoint, a limiter) of its own per run.
		proxy := testenv.StartFaultProxy(t, m.Endpoint, nil)
		lim := s3store.EndpointLimiter(proxy.URL)
		lim.SetAdaptive(adaptive)
		var mu sync.Mutex
		var limits []float64
		proxy.SetAfter(func(*http.Request) {
			l := lim.Stats().Limit
			mu.Lock()
			limits = append(limits, l)
			mu.Unlock()
		})
		proxy.SetFaults(func(*http.Request) testenv.Fault { return testenv.Fault{Delay: 20 * time.Millisecond} })
		proxy.SetThrottle(throttleK)
		st, took := runS3Job(t, m, proxy, dst, conc, batch, []int{n}, nil)
		if st.Status != job.Done || st.Counters.Copied != n || st.Counters.Failed != 0 {
			t.Fatalf("adaptive %v: %s %q %+v", adaptive, st.Status, st.Error, st.Counters)
		}
		proxy.SetAfter(nil)
		mu.Lock()
		defer mu.Unlock()
		r := run{took: took[0], requests: proxy.Stats().Requests, throttled: proxy.Throttled(), decreases: lim.Stats().Decreases}
		half := limits[len(limits)/2:]
		for _, l := range half {
			r.meanLimit += min(l, conc) / float64(len(half))
		}
		return r
	}
	on := measure("dst1", true)
	off := measure("dst2", false)
	for _, r := range []struct {
		name string
		r    run
	}{{"AIMD", on}, {"AIMD off", off}} {
		t.Logf("503 while %d others are served, %s: %d objects in %s, %d source requests, %d answered 503; the limit's mean over the second half %.1f (capped at the concurrency %d), %d halvings",
			throttleK, r.name, n, r.r.took.Round(time.Millisecond), r.r.requests, r.r.throttled, r.r.meanLimit, conc, r.r.decreases)
	}
	if on.throttled >= off.throttled {
		t.Errorf("%d 503s with the limiter, %d without: it did not help", on.throttled, off.throttled)
	}
	if on.meanLimit > throttleK {
		t.Errorf("the limit's mean over the second half is %.1f, not below the %d the server takes", on.meanLimit, throttleK)
	}
}

// seedKeys puts n objects k0000, k0001, ... in bucket, each its key
// repeated repeat times, and returns their keys.
func seedKeys(t *testing.T, m *testenv.MinIO, bucket string, n, repeat int) []string {
	t.Helper()
	g, gctx := errgroup.WithContext(t.Context())
	g.SetLimit(16)
	keys := make([]string, n)
	for i := range n {
		key := fmt.Sprintf("k%04d", i)
		keys[i] = key
		g.Go(func() error {
			_, err := m.Client().PutObject(gctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
				Body: bytes.NewReader(bytes.Repeat([]byte(key), repeat))})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	return keys
}
