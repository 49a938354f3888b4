package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferry-dev/ferry/internal/bundle"
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
	code, out, errs := w.run("job", "status", id)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("pack:         %d objects packed in %d bundles (%d removed", total, s.Bundles, s.Bundles)) {
		t.Fatalf("job status: exit %d\n%s\n%s", code, out, errs)
	}
	t.Logf("%d objects: %d copied, %d skipped as already restored; %d bundles, %d bytes", s.Listed, s.Copied, s.Skipped, s.Bundles, s.BundleBytes)
}

// TestPackUsage: pack-mode flags are checked before anything runs (exit 2).
func TestPackUsage(t *testing.T) {
	w := newWorld(t)
	src, dst := mkBucket(t, w.a, "pu-src"), mkBucket(t, w.b, "pu-dst")
	base := append(append([]string{"copy", "s3://" + src, "s3://" + dst, "--no-progress"}, w.srcA()...), w.dstB()...)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--pack"}, "--pack needs --staging"},
		{[]string{"--staging", "s3://x"}, "--staging needs --pack"},
		{[]string{"--pack", "--staging", "s3://" + dst + "/stage"}, "same location or one is inside the other"},
		{[]string{"--pack", "--staging", "s3://stg", "--pack-level", "9"}, "--pack-level"},
		{[]string{"--pack", "--staging", "s3://stg", "--pack-max-object-size", "1GiB"}, "at most 64MiB"},
		{[]string{"--pack", "--staging", "s3://missing-staging"}, "missing-staging"},
	} {
		code, _, errs := w.run(append(slices.Clone(base), c.args...)...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, want 2 with %q:\n%s", c.args, code, c.want, errs)
		}
	}
	if code, _, errs := w.run("worker", "--nats", "nats://127.0.0.1:1", "--side", "middle"); code != 2 || !strings.Contains(errs, "--side") {
		t.Errorf("worker --side middle: exit %d: %s", code, errs)
	}
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

// writeBundle writes a bundle of objs to a file with the bundle package.
func writeBundle(t *testing.T, path string, objs map[string]string, meta bundle.Object) {
	t.Helper()
	b, err := bundle.NewBuilder(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	keys := slices.Sorted(maps.Keys(objs))
	for _, k := range keys {
		o := meta
		o.Key, o.Size = k, int64(len(objs[k]))
		if err := b.Add(o, strings.NewReader(objs[k])); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := b.WriteTo(context.Background(), f, bundle.WriteOptions{ID: "by-hand", Created: time.Now(), Level: 2}); err != nil {
		t.Fatal(err)
	}
}

// evilBundle is a well-formed archive whose manifest and entry name the
// key "../evil" (checksums right): the format is fine, the key is not.
func evilBundle(t *testing.T, path string) {
	t.Helper()
	body := []byte("outside")
	sum := sha256.Sum256(body)
	m := bundle.Manifest{Format: bundle.Format, Version: bundle.Version, ID: "evil", Compression: bundle.CompressionNone,
		DataBytes: int64(len(body)), DataSHA256: hex.EncodeToString(sum[:]),
		Objects: []bundle.Object{{Key: "../evil", Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:])}}}
	mb, err := bundle.EncodeManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range []struct {
		name string
		body []byte
	}{{bundle.ManifestName, mb}, {bundle.EntryName(0), body}} {
		h := &tar.Header{Name: e.name, Typeflag: tar.TypeReg, Size: int64(len(e.body)), Mode: 0o644}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBundleTools: `ferry bundle inspect` prints a bundle's manifest and
// verifies it; `ferry bundle unpack` restores it into a local directory
// and into a bucket (metadata, tags and provenance); a bundle with a "../"
// key and a corrupted bundle are refused (exit 1) with nothing written,
// inside the destination or outside it.
func TestBundleTools(t *testing.T) {
	w := newWorld(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.ferry-bundle")
	objs := map[string]string{"a.txt": "alpha", "dir/": "", "ü/x y.txt": "unicode", "empty": ""}
	writeBundle(t, good, objs, bundle.Object{ContentType: "text/plain", ETag: "0123456789abcdef0123456789abcdef",
		Created: time.Date(2025, 5, 1, 2, 3, 4, 0, time.UTC), Metadata: map[string]string{"owner": "ops"}, Tags: map[string]string{"team": "x"}})

	code, out, errs := w.run("bundle", "inspect", good, "--verify")
	if code != 0 {
		t.Fatalf("inspect: exit %d\n%s", code, errs)
	}
	var m bundle.Manifest
	if err := json.Unmarshal([]byte(out), &m); err != nil || len(m.Objects) != len(objs) || m.Compression != bundle.CompressionZstd {
		t.Fatalf("inspect printed %q (%v)", out, err)
	}

	local := filepath.Join(dir, "local") // created (its parent exists, as for copy)
	if code, out, errs := w.run("bundle", "unpack", good, local); code != 0 {
		t.Fatalf("unpack to a directory: exit %d\n%s\n%s", code, out, errs)
	}
	for k, v := range objs {
		if strings.HasSuffix(k, "/") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(local, k))
		if err != nil || string(b) != v {
			t.Fatalf("%s: %q %v", k, b, err)
		}
	}
	bucket := mkBucket(t, w.a, "unpacked")
	if code, out, errs := w.run("bundle", "unpack", good, "s3://"+bucket+"/p", "--dst-endpoint", w.a.Endpoint, "--dst-profile", "a"); code != 0 {
		t.Fatalf("unpack to a bucket: exit %d\n%s\n%s", code, out, errs)
	}
	got, o := getObject(t, w.a, bucket, "p/ü/x y.txt")
	if string(got) != "unicode" || aws.ToString(o.ContentType) != "text/plain" || o.Metadata["owner"] != "ops" ||
		o.Metadata["original-etag"] != "0123456789abcdef0123456789abcdef" || o.Metadata["original-creation-time"] != "2025-05-01T02:03:04Z" {
		t.Fatalf("restored object: %q %q %v", got, aws.ToString(o.ContentType), o.Metadata)
	}
	if tg := tags(t, w.a, bucket, "p/a.txt"); tg["team"] != "x" || tg["OriginalETag"] != "0123456789abcdef0123456789abcdef" || tg["OriginalCreationTime"] != "2025-05-01T02:03:04Z" {
		t.Fatalf("tags %v", tg)
	}
	if n := countKeys(t, w.a, bucket); n != len(objs) {
		t.Fatalf("%d objects in the bucket, want %d", n, len(objs))
	}

	evil := filepath.Join(dir, "evil.ferry-bundle")
	evilBundle(t, evil)
	corrupt := filepath.Join(dir, "corrupt.ferry-bundle")
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(corrupt, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{evil, corrupt} {
		parent := filepath.Join(t.TempDir(), "parent")
		target := filepath.Join(parent, "dst")
		if err := os.MkdirAll(target, 0o755); err != nil {
			t.Fatal(err)
		}
		code, out, errs := w.run("bundle", "unpack", bad, target)
		if code != 1 || !strings.Contains(errs, "bundle refused") {
			t.Fatalf("unpack %s: exit %d\n%s\n%s", filepath.Base(bad), code, out, errs)
		}
		var files []string
		_ = filepath.WalkDir(filepath.Dir(parent), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, p)
			}
			return nil
		})
		if len(files) != 0 {
			t.Fatalf("unpack of %s wrote %v", filepath.Base(bad), files)
		}
		if code, _, errs := w.run("bundle", "inspect", bad, "--verify"); code != 1 {
			t.Fatalf("inspect --verify %s: exit %d\n%s", filepath.Base(bad), code, errs)
		}
	}
}

func getObject(t *testing.T, m *testenv.MinIO, bucket, key string) ([]byte, *s3.GetObjectOutput) {
	t.Helper()
	out, err := m.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b, out
}
