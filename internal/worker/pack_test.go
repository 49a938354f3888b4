package worker_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/queue"
	"github.com/ferry-dev/ferry/internal/store"
	s3store "github.com/ferry-dev/ferry/internal/store/s3"
	"github.com/ferry-dev/ferry/internal/testenv"
	"github.com/ferry-dev/ferry/internal/worker"
)

// packSrc is a source object of the pack-mode tests.
type packSrc struct {
	key     string
	body    []byte
	ctype   string
	cenc    string
	cache   string
	meta    map[string]string
	tags    map[string]string
	noCheck bool // not compared (directory marker: no body semantics)
}

func tagging(tags map[string]string) *string {
	if len(tags) == 0 {
		return nil
	}
	v := url.Values{}
	for k, val := range tags {
		v.Set(k, val)
	}
	return aws.String(v.Encode())
}

// packSources writes the pack tests' source objects to bucket: JSON logs
// with headers and metadata, an object with 10 tags and one with 3, an
// empty object, a directory marker, keys with spaces and unicode, and two
// objects above the pack limit (copied directly).
func packSources(t *testing.T, m *testenv.MinIO, bucket string, n int) []packSrc {
	t.Helper()
	var objs []packSrc
	for i := range n {
		body := []byte(strings.Repeat(fmt.Sprintf(`{"ts":"2026-01-01T00:00:%02dZ","level":"info","msg":"request %d served","status":200}`+"\n", i%60, i), 2+i%20))
		objs = append(objs, packSrc{key: fmt.Sprintf("logs/2026/%03d.json", i), body: body, ctype: "application/json", cache: "max-age=60",
			meta: map[string]string{"source": "app", "seq": fmt.Sprint(i)}})
	}
	ten := map[string]string{}
	for i := range 10 {
		ten[fmt.Sprintf("t%d", i)] = fmt.Sprintf("v%d", i)
	}
	objs = append(objs,
		packSrc{key: "tags/ten.txt", body: []byte("ten tags"), ctype: "text/plain", tags: ten},
		packSrc{key: "tags/three.txt", body: []byte("three tags"), ctype: "text/plain", tags: map[string]string{"a": "1", "b": "2", "c": "3"}},
		packSrc{key: "empty", body: []byte{}},
		packSrc{key: "dir/", body: []byte{}, noCheck: true},
		packSrc{key: "with space/ünïcödé 日本語.txt", body: []byte("unicode"), ctype: "text/plain; charset=utf-8", cenc: "identity"},
		packSrc{key: "big/one.bin", body: bytes.Repeat([]byte("0123456789abcdef"), 1024)},
		packSrc{key: "big/two.bin", body: bytes.Repeat([]byte("fedcba9876543210"), 512)},
	)
	ctx := t.Context()
	for _, o := range objs {
		in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.key), Body: bytes.NewReader(o.body),
			Metadata: o.meta, Tagging: tagging(o.tags)}
		if o.ctype != "" {
			in.ContentType = aws.String(o.ctype)
		}
		if o.cenc != "" {
			in.ContentEncoding = aws.String(o.cenc)
		}
		if o.cache != "" {
			in.CacheControl = aws.String(o.cache)
		}
		if _, err := m.Client().PutObject(ctx, in); err != nil {
			t.Fatalf("put %s: %v", o.key, err)
		}
	}
	return objs
}

const packLimit = 4096

// packEnv is a pack-mode job's stores on one MinIO.
type packEnv struct {
	m                 *testenv.MinIO
	src, dst, staging *s3store.Store
}

func openPackEnv(t *testing.T, m *testenv.MinIO, src, dst, staging string) packEnv {
	t.Helper()
	creds := credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, "")
	open := func(b string) *s3store.Store {
		s, err := s3store.Open(t.Context(), s3store.Config{Bucket: b, Endpoint: m.Endpoint, Credentials: creds})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	return packEnv{m: m, src: open(src), dst: open(dst), staging: open(staging)}
}

func packSpec(staging string, level int) job.Spec {
	return job.Spec{Command: "copy", Src: job.Side{Location: "s3://src"}, Dst: job.Side{Location: "s3://dst"}, MaxAttempts: 2,
		Pack: &job.PackSpec{Staging: job.Side{Location: "s3://" + staging}, MaxObjectSize: packLimit, BundleSize: 64 << 10, Level: level}}
}

func (e packEnv) workerOptions(name, side string) worker.Options {
	return worker.Options{
		Concurrency: 8, Name: name, RetryBase: time.Millisecond, Side: side, PackBatchObjects: 10,
		Open:        func(context.Context, job.Spec) (store.Store, store.Store, error) { return e.src, e.dst, nil },
		OpenStaging: func(context.Context, job.Spec) (store.Store, error) { return e.staging, nil },
	}
}

// runWorkers runs the workers until stop is called; stop waits for them.
func runWorkers(t *testing.T, conn *queue.Conn, opts ...worker.Options) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, o := range opts {
		w := worker.New(conn, o)
		wg.Go(func() {
			if err := w.Run(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	return func() { cancel(); wg.Wait() }
}

func listKeys(t *testing.T, s store.Store) []string {
	t.Helper()
	var keys []string
	for o, err := range s.List(t.Context(), store.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, o.Key)
	}
	return keys
}

// checkRestored compares every source object with its copy: bytes, content
// headers, user metadata, tags and provenance.
func checkRestored(t *testing.T, e packEnv, objs []packSrc) {
	t.Helper()
	ctx := t.Context()
	for _, o := range objs {
		rc, attrs, err := e.dst.Open(ctx, o.key, 0, -1)
		if err != nil {
			t.Errorf("%s: %v", o.key, err)
			continue
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, o.body) {
			t.Errorf("%s: %d bytes, want %d", o.key, len(got), len(o.body))
		}
		if o.noCheck {
			continue
		}
		if o.ctype != "" && attrs.ContentType != o.ctype || o.cenc != attrs.ContentEncoding || o.cache != attrs.CacheControl {
			t.Errorf("%s: headers %q %q %q, want %q %q %q", o.key, attrs.ContentType, attrs.ContentEncoding, attrs.CacheControl, o.ctype, o.cenc, o.cache)
		}
		for k, v := range o.meta {
			if attrs.Metadata[k] != v {
				t.Errorf("%s: metadata %s = %q, want %q", o.key, k, attrs.Metadata[k], v)
			}
		}
		tags, err := e.dst.Tags(ctx, o.key)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range o.tags {
			if tags[k] != v {
				t.Errorf("%s: tag %s = %q, want %q", o.key, k, tags[k], v)
			}
		}
		if len(o.body) > packLimit {
			continue // copied directly
		}
		sa, err := e.src.Stat(ctx, o.key)
		if err != nil {
			t.Fatal(err)
		}
		if attrs.Metadata[worker.MetaOriginalETag] != sa.ETag || attrs.Metadata[worker.MetaOriginalCreationTime] == "" {
			t.Errorf("%s: provenance metadata %v, source etag %s", o.key, attrs.Metadata, sa.ETag)
		}
		want := maps.Clone(o.tags)
		if want == nil {
			want = map[string]string{}
		}
		if len(o.tags) <= 8 {
			want[worker.TagOriginalETag] = sa.ETag
			want[worker.TagOriginalCreationTime] = attrs.Metadata[worker.MetaOriginalCreationTime]
		}
		if !maps.Equal(tags, want) {
			t.Errorf("%s: tags %v, want %v", o.key, tags, want)
		}
	}
}

// startPack starts a MinIO with the buckets src, dst and staging, writes n
// of the pack tests' source objects (packSources) to src, and opens the
// stores.
func startPack(t *testing.T, n int) (packEnv, []packSrc) {
	t.Helper()
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	for _, b := range []string{"src", "dst", "staging"} {
		m.CreateBucket(t, b)
	}
	objs := packSources(t, m, "src", n)
	return openPackEnv(t, m, "src", "dst", "staging"), objs
}

// runPackJob creates a job of spec and runs its coordinator to the end.
func runPackJob(ctx context.Context, t *testing.T, conn *queue.Conn, spec job.Spec) job.State {
	t.Helper()
	coord, err := job.Create(ctx, conn, spec)
	if err != nil {
		t.Fatal(err)
	}
	r := <-runCoordinator(ctx, coord, nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.st
}

func runCoordinator(ctx context.Context, coord *job.Coordinator, onUpdate func(job.State)) <-chan struct {
	st  job.State
	err error
} {
	out := make(chan struct {
		st  job.State
		err error
	}, 1)
	go func() {
		st, err := coord.Run(ctx, job.RunOptions{Tick: 10 * time.Millisecond, OnUpdate: onUpdate})
		out <- struct {
			st  job.State
			err error
		}{st, err}
	}()
	return out
}

// TestPackMinIO: a pack-mode job through the real queue and workers against
// MinIO: small objects travel in bundles, large ones directly; every
// object is restored exactly (bytes, headers, metadata, tags, provenance;
// an object with 10 tags keeps its 10), the accounting adds up, staging is
// empty, and a second run copies nothing.
func TestPackMinIO(t *testing.T) {
	e, objs := startPack(t, 45)
	conn := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stop := runWorkers(t, conn, e.workerOptions("w", ""))
	defer stop()

	st := runPackJob(ctx, t, conn, packSpec("staging", job.LevelAuto))
	k := st.Counters
	small := int64(len(objs) - 2)
	if st.Status != job.Done || k.Listed != int64(len(objs)) || k.Copied != k.Listed || k.Failed != 0 ||
		k.Listed != k.Copied+k.Skipped+k.Failed+k.Unsafe || k.ListedBytes != k.AccountedBytes {
		t.Fatalf("job %s %q: %+v", st.Status, st.Error, k)
	}
	if k.ObjectsPacked != small || k.Bundles < 5 || k.BundlesRemoved != k.Bundles || k.BundleBytes <= 0 || k.BundleBytes >= k.BundleDataBytes {
		t.Fatalf("pack counters: packed %d (want %d), bundles %d, removed %d, %d bytes for %d", k.ObjectsPacked, small, k.Bundles, k.BundlesRemoved, k.BundleBytes, k.BundleDataBytes)
	}
	// The highest level any bundle used: a bundle of only the few tiny
	// text objects may be stored, the JSON logs' are compressed.
	if k.PackLevel == bundle.LevelStore || k.PackRatio() < 1.5 {
		t.Errorf("JSON logs stored uncompressed (highest level %d, ratio %.2f)", k.PackLevel, k.PackRatio())
	}
	if left := listKeys(t, e.staging); len(left) != 0 {
		t.Fatalf("staging holds %v", left)
	}
	checkRestored(t, e, objs)
	t.Logf("%d objects: %d packed into %d bundles, %d bytes of data in %d bytes (ratio %.1f, level %d)",
		k.Listed, k.ObjectsPacked, k.Bundles, k.BundleDataBytes, k.BundleBytes, k.PackRatio(), k.PackLevel)

	// A second run finds everything up to date.
	st = runPackJob(ctx, t, conn, packSpec("staging", job.LevelAuto))
	if st.Status != job.Done || st.Counters.Copied != 0 || st.Counters.Skipped != int64(len(objs)) || st.Counters.Bundles != 0 {
		t.Fatalf("second run: %s %+v", st.Status, st.Counters)
	}
}

// TestPackSidesCorruptBundle: a source-side worker packs; each bundle in
// staging is then damaged (one byte changed, its metadata kept); a
// destination-side worker refuses every bundle: each object goes to the
// dead-letter queue by name, nothing is written at the destination, the
// accounting adds up (the job ends done with failed objects, as any job
// whose objects were dead-lettered: the CLI exits 1).
func TestPackSidesCorruptBundle(t *testing.T) {
	e, objs := startPack(t, 15)
	conn := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	small := int64(len(objs) - 2)
	packed := make(chan struct{})
	var once sync.Once
	coord, err := job.Create(ctx, conn, packSpec("staging", 2))
	if err != nil {
		t.Fatal(err)
	}
	done := runCoordinator(ctx, coord, func(st job.State) {
		if st.Counters.ObjectsPacked == small && st.Counters.Copied == 2 {
			once.Do(func() { close(packed) })
		}
	})
	stopSrc := runWorkers(t, conn, e.workerOptions("src-side", worker.SideSource))
	defer stopSrc()
	select {
	case <-packed:
	case r := <-done:
		t.Fatalf("job ended before the destination side ran: %s %q %+v", r.st.Status, r.st.Error, r.st.Counters)
	case <-ctx.Done():
		t.Fatal("objects not packed")
	}
	// Damage every bundle, keeping its metadata (and so its stated SHA-256).
	bundles := listKeys(t, e.staging)
	if len(bundles) == 0 {
		t.Fatal("no bundle in staging")
	}
	for _, k := range bundles {
		rc, attrs, err := e.staging.Open(ctx, k, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		b[len(b)/2] ^= 0xff
		if _, err := e.staging.Put(ctx, store.PutInput{Key: k, Size: int64(len(b)), Metadata: attrs.Metadata}, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	stopDst := runWorkers(t, conn, e.workerOptions("dst-side", worker.SideDestination))
	defer stopDst()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	k := r.st.Counters
	if r.st.Status != job.Done || k.Failed != small || k.Copied != 2 || k.Listed != k.Copied+k.Skipped+k.Failed+k.Unsafe {
		t.Fatalf("job %s %q: %+v", r.st.Status, r.st.Error, k)
	}
	dl, err := job.ReadDLQ(ctx, conn, coord.ID(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]bool{}
	for _, d := range dl {
		if d.Obj != nil {
			named[d.Obj.K] = true
			if !strings.Contains(d.Error, "bundle refused") {
				t.Errorf("%s: dead letter %q", d.Obj.K, d.Error)
			}
		}
	}
	for _, o := range objs {
		if len(o.body) <= packLimit && !named[o.key] {
			t.Errorf("%s not in the dead-letter queue", o.key)
		}
	}
	// Only the two large objects (copied directly) are at the destination.
	if got := listKeys(t, e.dst); len(got) != 2 {
		t.Fatalf("destination holds %v", got)
	}
	// The refused bundles stay in staging for inspection.
	if left := listKeys(t, e.staging); len(left) != len(bundles) {
		t.Fatalf("staging holds %v, want %v", left, bundles)
	}
}

// cutOnce is a staging store whose first read of each bundle fails half
// way, as a dropped connection would.
type cutOnce struct {
	store.Store
	mu   sync.Mutex
	cut  map[string]bool
	cuts int
}

type cutReader struct {
	io.ReadCloser
	left int64
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, fmt.Errorf("read: connection reset by peer (injected)")
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.ReadCloser.Read(p)
	c.left -= int64(n)
	return n, err
}

func (s *cutOnce) Open(ctx context.Context, key string, off, n int64) (io.ReadCloser, store.Attrs, error) {
	rc, attrs, err := s.Store.Open(ctx, key, off, n)
	if err != nil || !strings.HasSuffix(key, ".ferry-bundle") || n != -1 {
		return rc, attrs, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cut[key] {
		return rc, attrs, err
	}
	s.cut[key] = true
	s.cuts++
	return &cutReader{ReadCloser: rc, left: attrs.Size / 2}, attrs, nil
}

// TestPackBundleDownloadCut: a bundle download cut half way is a failed
// download, not a damaged bundle: the unpack item is tried again and every
// object is restored (none dead-lettered), staging ends empty.
func TestPackBundleDownloadCut(t *testing.T) {
	e, objs := startPack(t, 15)
	cut := &cutOnce{Store: e.staging, cut: map[string]bool{}}
	k := runPackFaultyStaging(t, e, objs, cut)
	if k.Copied != int64(len(objs)) {
		t.Fatalf("%d copied of %d", k.Copied, len(objs))
	}
	cut.mu.Lock()
	cuts := cut.cuts
	cut.mu.Unlock()
	if cuts == 0 || int64(cuts) != k.Bundles {
		t.Fatalf("%d downloads cut for %d bundles", cuts, k.Bundles)
	}
}

// runPackFaultyStaging runs a pack-mode job of objs through the real queue
// and workers whose staging store is staging (e.staging with faults), and
// checks that it ends done with none failed, the accounts adding up,
// staging empty and every object restored. It returns the counters.
func runPackFaultyStaging(t *testing.T, e packEnv, objs []packSrc, staging store.Store) job.Counters {
	t.Helper()
	conn := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := e.workerOptions("w", "")
	opts.OpenStaging = func(context.Context, job.Spec) (store.Store, error) { return staging, nil }
	stop := runWorkers(t, conn, opts)
	defer stop()
	st := runPackJob(ctx, t, conn, packSpec("staging", 2))
	k := st.Counters
	if st.Status != job.Done || k.Listed != int64(len(objs)) || k.Failed != 0 || k.Listed != k.Copied+k.Skipped+k.Failed+k.Unsafe {
		t.Fatalf("job %s %q: %+v", st.Status, st.Error, k)
	}
	if left := listKeys(t, e.staging); len(left) != 0 {
		t.Fatalf("staging holds %v", left)
	}
	checkRestored(t, e, objs)
	return k
}

// lostDelete is a staging store whose first removal of each bundle
// removes it and then fails, as a worker killed between removing a bundle
// and publishing its Final would leave things.
type lostDelete struct {
	store.Store
	mu    sync.Mutex
	lost  map[string]bool
	count int
}

func (s *lostDelete) Delete(ctx context.Context, key string) error {
	if err := s.Store.Delete(ctx, key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !strings.HasSuffix(key, ".ferry-bundle") || s.lost[key] {
		return nil
	}
	s.lost[key] = true
	s.count++
	return fmt.Errorf("delete %s: connection reset by peer after the delete (injected)", key)
}

// TestPackBundleRemovedBeforeFinal: an unpack item whose bundle was
// removed (every object restored) but whose Final was never published is
// handled again and finds the bundle gone: its objects are accounted from
// the destination, none failed, and the removal is counted, so that every
// bundle of the job is counted removed once.
func TestPackBundleRemovedBeforeFinal(t *testing.T) {
	e, objs := startPack(t, 15)
	lost := &lostDelete{Store: e.staging, lost: map[string]bool{}}
	k := runPackFaultyStaging(t, e, objs, lost)
	lost.mu.Lock()
	n := lost.count
	lost.mu.Unlock()
	if n == 0 || int64(n) != k.Bundles || k.BundlesRemoved != k.Bundles {
		t.Fatalf("%d removals lost for %d bundles; %d counted removed", n, k.Bundles, k.BundlesRemoved)
	}
}
