package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-dev/ferry/internal/testenv"
)

// The fault suite of issue 10: a ferry job copies between two MinIO servers,
// each behind a [testenv.FaultProxy], while the proxies inject one class of
// fault (or all of them) into a share of the requests. Every run is checked
// independently of ferry: the MD5 of every destination object, read with a
// plain S3 client, against the bytes the test put at the source; the
// destination's open multipart uploads; the requests the job made against a
// run without faults. A job may fail objects (exit 1, each in the DLQ) but
// never report a wrong copy as copied nor leave an object missing that is
// not in the DLQ.

// faultClass is one row group of the table: the faults drawn on each side
// at a given rate.
type faultClass struct {
	name     string
	src, dst func(rate float64) testenv.Chances
}

const faultStallFor = 10 * time.Second // longer than the jobs' --stall-timeout

var faultClasses = []faultClass{
	{name: "reset-before",
		src: func(r float64) testenv.Chances { return testenv.Chances{Reset: r} },
		dst: func(r float64) testenv.Chances { return testenv.Chances{Reset: r} }},
	{name: "reset-body",
		src: func(r float64) testenv.Chances {
			return testenv.Chances{ResetBody: r, Methods: []string{http.MethodGet}}
		}},
	{name: "truncate",
		src: func(r float64) testenv.Chances {
			return testenv.Chances{Truncate: r, Methods: []string{http.MethodGet}}
		}},
	{name: "flip-get",
		src: func(r float64) testenv.Chances { return testenv.Chances{Flip: r, Methods: []string{http.MethodGet}} }},
	{name: "flip-put",
		dst: func(r float64) testenv.Chances { return testenv.Chances{Flip: r, Methods: []string{http.MethodPut}} }},
	{name: "5xx",
		src: func(r float64) testenv.Chances { return testenv.Chances{Unavailable: r, Burst: 3} },
		dst: func(r float64) testenv.Chances { return testenv.Chances{Unavailable: r, Burst: 3} }},
	{name: "stall",
		src: func(r float64) testenv.Chances {
			return testenv.Chances{Stall: r, StallFor: faultStallFor, Methods: []string{http.MethodGet}}
		},
		dst: func(r float64) testenv.Chances {
			return testenv.Chances{Stall: r, StallFor: faultStallFor, Methods: []string{http.MethodPut}}
		}},
	{name: "mixed", src: mixedChances, dst: mixedChances},
}

// mixedChances splits rate over the seven fault kinds: every request has
// about that chance of one fault of some kind.
func mixedChances(rate float64) testenv.Chances {
	r := rate / 7
	return testenv.Chances{Reset: r, Unavailable: r, Burst: 3, Flip: r, Truncate: r, ResetBody: r, Stall: r, StallFor: faultStallFor}
}

// sideFaults makes a fault chooser of c for one proxy: body faults of PUT
// requests go into the request body (the proxy's Request), and every
// second 5xx burst (by object path) is a 500 InternalError, not a 503.
func sideFaults(seed uint64, c testenv.Chances) func(*http.Request) testenv.Fault {
	draw := testenv.RandomFaults(seed, c)
	return func(r *http.Request) testenv.Fault {
		f := draw(r)
		if r.Method == http.MethodPut {
			f.Request = true
		}
		if f.Status == http.StatusServiceUnavailable {
			h := fnv.New32a()
			_, _ = h.Write([]byte(r.URL.Path))
			if h.Sum32()%2 == 1 {
				f.Status = http.StatusInternalServerError
			}
		}
		return f
	}
}

// faultEnv is a source bucket behind one proxy and the destination server
// behind another.
type faultEnv struct {
	w                  *world
	src                string
	want               map[string]string // key → MD5 (hex) of the bytes put
	srcProxy, dstProxy *testenv.FaultProxy
}

// newFaultEnv seeds small objects of 1 to 64 KiB and multipart objects of
// 12 MiB, put in parts of 5 MiB (multipart ETag, no checksum).
func newFaultEnv(t *testing.T, small, multipart int) *faultEnv {
	t.Helper()
	w := newMemWorld(t)
	e := &faultEnv{w: w, src: mkBucket(t, w.a, "ft-src"), want: map[string]string{}}
	var mu sync.Mutex
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(16)
	client := w.a.Client()
	for i := range small {
		g.Go(func() error {
			b := make([]byte, 1024+randInt(63*1024))
			_, _ = rand.Read(b)
			key := fmt.Sprintf("small/%04d", i)
			if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(e.src), Key: aws.String(key), Body: bytes.NewReader(b)}); err != nil {
				return fmt.Errorf("put %s: %w", key, err)
			}
			sum := md5.Sum(b)
			mu.Lock()
			e.want[key] = hex.EncodeToString(sum[:])
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("seed: %v", err)
	}
	for i := range multipart {
		b := make([]byte, 12<<20)
		_, _ = rand.Read(b)
		key := fmt.Sprintf("multipart/%02d", i)
		putInParts(t, w.a, e.src, key, b, 5<<20)
		sum := md5.Sum(b)
		e.want[key] = hex.EncodeToString(sum[:])
	}
	e.srcProxy = testenv.StartFaultProxy(t, w.a.Endpoint, nil)
	e.dstProxy = testenv.StartFaultProxy(t, w.b.Endpoint, w.b.TLSConfig())
	return e
}

// putInParts uploads b at key in parts of partSize, without checksums.
func putInParts(t *testing.T, m *testenv.MinIO, bucket, key string, b []byte, partSize int) {
	t.Helper()
	ctx := context.Background()
	c := m.Client()
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("create upload %s: %v", key, err)
	}
	var parts []types.CompletedPart
	for n, off := int32(1), 0; off < len(b); n, off = n+1, off+partSize {
		end := min(off+partSize, len(b))
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId,
			PartNumber: aws.Int32(n), Body: bytes.NewReader(b[off:end])})
		if err != nil {
			t.Fatalf("upload part %d of %s: %v", n, key, err)
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.ETag})
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		t.Fatalf("complete upload %s: %v", key, err)
	}
}

// putBodies puts body(key) at every key.
func putBodies(t *testing.T, m *testenv.MinIO, bucket string, keys []string, body func(string) []byte) {
	t.Helper()
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(64)
	client := m.Client()
	for _, k := range keys {
		g.Go(func() error {
			if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader(body(k))}); err != nil {
				return fmt.Errorf("put %s: %w", k, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("seed %d objects: %v", len(keys), err)
	}
}

// faultRow is one run of the table.
type faultRow struct {
	Class    string
	Rate     float64
	Exit     int
	Status   string
	Copied   int64
	Failed   int64 // objects the job failed (its summary)
	DLQ      int   // objects in the DLQ
	Missing  int   // objects absent at the destination
	Corrupt  int   // objects at the destination whose MD5 differs
	Orphans  int   // multipart uploads left open
	Requests int64 // requests through both proxies
	Faults   testenv.FaultStats
	Time     time.Duration
	TimedOut bool
}

// checkDst reads every object the source has from the destination bucket
// with a plain S3 client and compares its MD5 with the source's: it
// returns the keys missing and the keys whose bytes differ.
func (e *faultEnv) checkDst(t *testing.T, dst string) (missing, corrupt []string) {
	t.Helper()
	var mu sync.Mutex
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(32)
	client := e.w.b.Client()
	for key, want := range e.want {
		g.Go(func() error {
			out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(dst), Key: aws.String(key)})
			if err != nil {
				var nsk *types.NoSuchKey
				if errors.As(err, &nsk) {
					mu.Lock()
					missing = append(missing, key)
					mu.Unlock()
					return nil
				}
				return fmt.Errorf("get %s: %w", key, err)
			}
			defer out.Body.Close()
			h := md5.New()
			if _, err := io.Copy(h, out.Body); err != nil {
				return fmt.Errorf("read %s: %w", key, err)
			}
			if hex.EncodeToString(h.Sum(nil)) != want {
				mu.Lock()
				corrupt = append(corrupt, key)
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("independent check of %s: %v", dst, err)
	}
	sort.Strings(missing)
	sort.Strings(corrupt)
	return missing, corrupt
}

// dlqKeys lists the keys in a job's DLQ.
func (w *world) dlqKeys(id string) map[string]bool {
	keys := map[string]bool{}
	for k := range w.dlqByKey(id) {
		keys[k] = true
	}
	return keys
}

// dlqByKey returns the keys in a job's DLQ with their errors.
func (w *world) dlqByKey(id string) map[string]string {
	w.t.Helper()
	code, out, errs := w.run("dlq", "list", id, "--json")
	if code != 0 {
		w.t.Fatalf("dlq list: exit %d: %s", code, errs)
	}
	keys := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var e struct {
			Key   string `json:"key"`
			Error string `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			w.t.Fatalf("dlq line %q: %v", sc.Text(), err)
		}
		keys[e.Key] = e.Error
	}
	return keys
}

func statsDelta(a, b testenv.FaultStats) testenv.FaultStats {
	return testenv.FaultStats{Requests: a.Requests - b.Requests, Statuses: a.Statuses - b.Statuses, Resets: a.Resets - b.Resets,
		Flips: a.Flips - b.Flips, Truncations: a.Truncations - b.Truncations, BodyResets: a.BodyResets - b.BodyResets, Stalls: a.Stalls - b.Stalls}
}

func statsSum(a, b testenv.FaultStats) testenv.FaultStats {
	return testenv.FaultStats{Requests: a.Requests + b.Requests, Statuses: a.Statuses + b.Statuses, Resets: a.Resets + b.Resets,
		Flips: a.Flips + b.Flips, Truncations: a.Truncations + b.Truncations, BodyResets: a.BodyResets + b.BodyResets, Stalls: a.Stalls + b.Stalls}
}

// faultRunLimit bounds one job of the table; a job still running then is
// killed and its row says so.
const faultRunLimit = 6 * time.Minute

// run copies the source into a new bucket with the class's faults at rate
// (class nil: none) and checks the result. It fails the test for what
// must never happen: a corrupt object, an object missing but not in the
// DLQ, an upload left open, an exit other than 0 or 1.
func (e *faultEnv) run(t *testing.T, class *faultClass, rate float64, seed uint64) faultRow {
	t.Helper()
	w := e.w
	row := faultRow{Class: "none", Rate: rate}
	e.srcProxy.SetFaults(nil)
	e.dstProxy.SetFaults(nil)
	if class != nil {
		row.Class = class.name
		if class.src != nil {
			e.srcProxy.SetFaults(sideFaults(seed, class.src(rate)))
		}
		if class.dst != nil {
			e.dstProxy.SetFaults(sideFaults(seed+1, class.dst(rate)))
		}
	}
	defer e.srcProxy.SetFaults(nil)
	defer e.dstProxy.SetFaults(nil)
	dst := mkBucket(t, w.b, fmt.Sprintf("ft-%s-%02d", row.Class, int(rate*100)))
	before := statsSum(e.srcProxy.Stats(), e.dstProxy.Stats())
	args := []string{"copy", "s3://" + e.src, "s3://" + dst, "--no-progress", "--json", "--concurrency", "16",
		"--part-size", "5MiB", "--stall-timeout", "1s",
		"--src-endpoint", e.srcProxy.URL, "--src-profile", "a", "--dst-endpoint", e.dstProxy.URL, "--dst-profile", "b"}
	start := time.Now()
	p := w.startProc(args...)
	limit := time.AfterFunc(faultRunLimit, func() { _ = syscall.Kill(-p.c.Process.Pid, syscall.SIGKILL) })
	row.Exit = p.wait()
	row.TimedOut = !limit.Stop()
	row.Time = time.Since(start)
	row.Faults = statsDelta(statsSum(e.srcProxy.Stats(), e.dstProxy.Stats()), before)
	row.Requests = row.Faults.Requests
	e.srcProxy.SetFaults(nil)
	e.dstProxy.SetFaults(nil)
	if row.TimedOut {
		t.Errorf("%s %.0f%%: not finished after %s\n%s", row.Class, rate*100, faultRunLimit, tail(p.err.String(), 2000))
	}
	m := jobIDRE.FindStringSubmatch(p.err.String())
	if m == nil {
		// ferry refused to start: its checks of the two sides failed.
		row.Status = "not started"
		row.Missing = len(e.want)
		t.Errorf("%s %.0f%%: exit %d before a job was created\n%s", row.Class, rate*100, row.Exit, tail(p.err.String(), 2000))
		return row
	}
	id := m[1]
	if row.Exit == 0 || row.Exit == 1 {
		s := parseSummary(t, p.out.String(), p.err.String())
		row.Status, row.Copied, row.Failed = s.Status, s.Copied, s.Failed
	} else if !row.TimedOut {
		t.Errorf("%s %.0f%%: exit %d\n%s", row.Class, rate*100, row.Exit, tail(p.err.String(), 2000))
	}
	dlqErrs := w.dlqByKey(id)
	dlq := map[string]bool{}
	for k, msg := range dlqErrs {
		dlq[k] = true
		t.Logf("%s %.0f%%: in the DLQ: %s: %s", row.Class, rate*100, k, msg)
	}
	row.DLQ = len(dlq)
	missing, corrupt := e.checkDst(t, dst)
	row.Missing, row.Corrupt = len(missing), len(corrupt)
	row.Orphans = openUploads(t, w.b, dst)
	if len(corrupt) > 0 {
		t.Errorf("%s %.0f%%: %d objects differ from the source at the destination: %v", row.Class, rate*100, len(corrupt), first(corrupt, 10))
	}
	var lost []string
	for _, k := range missing {
		if !dlq[k] {
			lost = append(lost, k)
		}
	}
	if len(lost) > 0 && !row.TimedOut {
		t.Errorf("%s %.0f%%: %d objects missing at the destination and not in the DLQ: %v", row.Class, rate*100, len(lost), first(lost, 10))
	}
	if row.Exit == 0 && (len(missing) > 0 || row.Failed > 0) {
		t.Errorf("%s %.0f%%: exit 0 with %d objects missing, %d failed", row.Class, rate*100, len(missing), row.Failed)
	}
	if row.Exit == 1 && row.Failed == 0 {
		t.Errorf("%s %.0f%%: exit 1 without failed objects\n%s", row.Class, rate*100, tail(p.err.String(), 2000))
	}
	if row.Orphans > 0 && !row.TimedOut {
		t.Errorf("%s %.0f%%: %d multipart uploads left open", row.Class, rate*100, row.Orphans)
	}
	return row
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

func (r faultRow) String() string {
	fs := r.Faults
	return fmt.Sprintf("| %s | %.0f%% | %d (%s) | %d | %d | %d | %d | %d | %d | %.1f s | %s |",
		r.Class, r.Rate*100, r.Exit, r.Status, r.Copied, r.Failed, r.DLQ, r.Corrupt, r.Orphans, r.Requests, r.Time.Seconds(),
		fmt.Sprintf("%d 5xx, %d resets, %d body resets, %d truncations, %d flips, %d stalls",
			fs.Statuses, fs.Resets, fs.BodyResets, fs.Truncations, fs.Flips, fs.Stalls))
}

const faultTableHeader = "| class | rate | exit (status) | copied | failed | in DLQ | corrupt | open uploads | requests | time | faults injected |\n|---|---|---|---|---|---|---|---|---|---|---|"

// maxRequestFactor bounds the requests of a run with faults against the
// run without: retries stay bounded.
const maxRequestFactor = 8

// TestFaultTable runs every fault class alone and all mixed at 5%, 20%
// and 50% of the requests, 200 small objects and 3 multipart ones, and
// logs the table docs/reliability.md records. FERRY_FAULT_TABLE=1 (make
// test-faults) runs it; it takes several minutes.
func TestFaultTable(t *testing.T) {
	if os.Getenv("FERRY_FAULT_TABLE") != "1" {
		t.Skip("the fault table runs with FERRY_FAULT_TABLE=1 (make test-faults)")
	}
	e := newFaultEnv(t, 200, 3)
	base := e.run(t, nil, 0, 0)
	if base.Exit != 0 {
		t.Fatalf("the run without faults: exit %d", base.Exit)
	}
	t.Logf("%s (the run without faults)", base)
	rows := []faultRow{base}
	only := os.Getenv("FERRY_FAULT_TABLE_ONLY") // "class" or "class@rate%" items, comma-separated
	for ci := range faultClasses {
		for ri, rate := range []float64{0.05, 0.20, 0.50} {
			if only != "" && !faultTableSelected(only, faultClasses[ci].name, rate) {
				continue
			}
			row := e.run(t, &faultClasses[ci], rate, uint64(100*ci+ri+1))
			if row.Requests > maxRequestFactor*base.Requests {
				t.Errorf("%s %.0f%%: %d requests, more than %d × the %d without faults", row.Class, rate*100, row.Requests, maxRequestFactor, base.Requests)
			}
			t.Logf("%s (%.1f × the time without faults)", row, row.Time.Seconds()/base.Time.Seconds())
			rows = append(rows, row)
		}
	}
	var b strings.Builder
	fmt.Fprintln(&b, faultTableHeader)
	for _, r := range rows {
		fmt.Fprintln(&b, r)
	}
	t.Logf("fault table (%d objects; no faults: %.1f s, %d requests):\n%s", len(e.want), base.Time.Seconds(), base.Requests, b.String())
	if out := os.Getenv("FERRY_FAULT_TABLE_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
			t.Fatalf("write %s: %v", out, err)
		}
	}
}

// faultTableSelected reports whether FERRY_FAULT_TABLE_ONLY (only) selects
// the row of class at rate: an item "class" selects its three rates,
// "class@20" one of them.
func faultTableSelected(only, class string, rate float64) bool {
	for _, item := range strings.Split(only, ",") {
		name, pct, hasRate := strings.Cut(strings.TrimSpace(item), "@")
		if name == class && (!hasRate || pct == fmt.Sprint(int(rate*100))) {
			return true
		}
	}
	return false
}

// TestFaultsMixed20: the table's mixed row at 20%, in the default run: 60
// small objects and one multipart object.
func TestFaultsMixed20(t *testing.T) {
	e := newFaultEnv(t, 60, 1)
	row := e.run(t, &faultClasses[len(faultClasses)-1], 0.20, 7)
	t.Log(row)
	if row.Faults.Statuses+row.Faults.Resets+row.Faults.BodyResets+row.Faults.Truncations+row.Faults.Flips+row.Faults.Stalls == 0 {
		t.Fatal("no fault was injected")
	}
}
