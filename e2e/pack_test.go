package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferry-dev/ferry/internal/testenv"
)

// packHold holds the nth PUT (with a body) to one bucket behind a fault
// proxy, and closes ready once it is held.
type packHold struct {
	mu     sync.Mutex
	bucket string
	n      int
	seen   int
	hold   chan struct{}
	ready  chan struct{}
}

func (h *packHold) decide(r *http.Request) testenv.Fault {
	if r.Method != http.MethodPut || r.ContentLength <= 0 || !strings.HasPrefix(r.URL.Path, "/"+h.bucket+"/") {
		return testenv.Fault{}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen++
	if h.seen != h.n {
		return testenv.Fault{}
	}
	close(h.ready)
	return testenv.Fault{Request: true, Hold: h.hold, At: 0.5}
}

// packSummary is the JSON summary of a pack-mode job.
type packSummary struct {
	summary
	Packed      int64 `json:"objects_packed"`
	Bundles     int64 `json:"bundles"`
	BundleBytes int64 `json:"bundle_bytes"`
	Removed     int64 `json:"bundles_removed"`
}

// TestPackKillDuringPackAndUnpack: a pack-mode job (source on one MinIO,
// destination and staging on another behind a fault proxy) is killed
// with SIGKILL while a bundle's PUT to staging is held (packing), resumed,
// killed again while an object's PUT at the destination is held
// (unpacking), and resumed to the end: `ferry verify` finds no difference,
// staging is empty, no multipart upload is open, every small object was
// packed once in the job's accounts, and the accounting adds up.
func TestPackKillDuringPackAndUnpack(t *testing.T) {
	w := newMemWorld(t)
	src, dst, stg := mkBucket(t, w.a, "pk-src"), mkBucket(t, w.b, "pk-dst"), mkBucket(t, w.b, "pk-stg")
	const n = 400
	var keys []string
	for i := range n {
		keys = append(keys, fmt.Sprintf("logs/%02d/ünï code %04d.json", i%7, i))
	}
	putKeys(t, w.a, src, keys)
	// Objects with tags (one with 10) and metadata, an empty object and a
	// directory marker.
	ctx := context.Background()
	extra := []s3.PutObjectInput{
		{Key: aws.String("tags/ten"), Body: strings.NewReader("ten"), Tagging: aws.String("a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9&j=10")},
		{Key: aws.String("tags/two"), Body: strings.NewReader("two"), Tagging: aws.String("a=1&b=2"), Metadata: map[string]string{"team": "ops"},
			ContentType: aws.String("text/plain")},
		{Key: aws.String("empty"), Body: strings.NewReader("")},
		{Key: aws.String("dir/"), Body: strings.NewReader("")},
	}
	for _, in := range extra {
		in.Bucket = aws.String(src)
		if _, err := w.a.Client().PutObject(ctx, &in); err != nil {
			t.Fatal(err)
		}
	}
	total := int64(n + len(extra))
	proxy := testenv.StartFaultProxy(t, w.b.Endpoint, w.b.TLSConfig())
	release := make(chan struct{})
	defer close(release)

	// Kill 1: the third bundle's PUT to staging is held.
	packing := &packHold{bucket: stg, n: 3, hold: release, ready: make(chan struct{})}
	proxy.SetFaults(packing.decide)
	dstArgs := []string{"--dst-endpoint", proxy.URL, "--dst-profile", "b", "--ca-bundle", w.b.CAFile}
	args := append(append([]string{"copy", "s3://" + src, "s3://" + dst, "--no-progress", "--concurrency", "8",
		"--pack", "--staging", "s3://" + stg + "/bundles", "--bundle-size", "2KiB", "--stall-timeout", "10m"}, w.srcA()...), dstArgs...)
	p := w.startProc(args...)
	select {
	case <-packing.ready:
	case <-time.After(3 * time.Minute): // a bound for a failing run
		t.Fatalf("no third bundle PUT\n%s", p.err.String())
	}
	_ = syscall.Kill(-p.c.Process.Pid, syscall.SIGKILL)
	p.wait()
	id := jobID(t, p.err.String())
	t.Logf("killed while packing: %d objects at the destination, %d bundles in staging", countKeys(t, w.b, dst), countKeys(t, w.b, stg))

	// Kill 2: the tenth object PUT at the destination after the resume is
	// held.
	unpacking := &packHold{bucket: dst, n: 10, hold: release, ready: make(chan struct{})}
	proxy.SetFaults(unpacking.decide)
	p = w.startProc("job", "resume", id, "--no-progress", "--concurrency", "8", "--stall-timeout", "10m")
	select {
	case <-unpacking.ready:
	case <-time.After(3 * time.Minute):
		t.Fatalf("no tenth destination PUT\n%s", p.err.String())
	}
	_ = syscall.Kill(-p.c.Process.Pid, syscall.SIGKILL)
	p.wait()
	t.Logf("killed while unpacking: %d objects at the destination, %d bundles in staging", countKeys(t, w.b, dst), countKeys(t, w.b, stg))

	proxy.SetFaults(nil)
	p = w.startProc("job", "resume", id, "--no-progress", "--json")
	if code := waitJob(t, w, p, id, nil, 4*time.Minute); code != 0 {
		t.Fatalf("final resume: exit %d\n%s\n%s", code, p.out.String(), p.err.String())
	}
	var s packSummary
	if err := json.Unmarshal([]byte(lastLine(p.out.String())), &s); err != nil {
		t.Fatalf("summary %q: %v", p.out.String(), err)
	}
	if s.Status != "done" || s.Listed != total || s.Failed != 0 || s.Listed != s.Copied+s.Skipped+s.Failed+s.Unsafe {
		t.Fatalf("summary %+v", s)
	}
	if s.Packed != total || s.Bundles == 0 || s.Removed != s.Bundles || s.BundleBytes == 0 {
		t.Fatalf("pack summary: %d packed of %d, %d bundles (%d bytes), %d removed", s.Packed, total, s.Bundles, s.BundleBytes, s.Removed)
	}
	w.verify("s3://"+src, "s3://"+dst)
	if left := countKeys(t, w.b, stg); left != 0 {
		t.Fatalf("%d bundles left in staging", left)
	}
	for _, b := range []string{dst, stg} {
		if u := openUploads(t, w.b, b); u != 0 {
			t.Fatalf("%d multipart uploads open in %s", u, b)
		}
	}
	ten := tags(t, w.b, dst, "tags/ten")
	two := tags(t, w.b, dst, "tags/two")
	if len(ten) != 10 || len(two) != 4 || two["OriginalETag"] == "" || two["OriginalCreationTime"] == "" {
		t.Fatalf("tags: ten %v, two %v", ten, two)
	}
	t.Logf("%d objects: %d copied, %d skipped as already restored; %d bundles, %d bytes", s.Listed, s.Copied, s.Skipped, s.Bundles, s.BundleBytes)
}

func tags(t *testing.T, m *testenv.MinIO, bucket, key string) map[string]string {
	t.Helper()
	out, err := m.Client().GetObjectTagging(context.Background(), &s3.GetObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, tg := range out.TagSet {
		got[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return got
}
