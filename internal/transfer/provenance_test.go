package transfer

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/local"
	s3store "github.com/ferry-dev/ferry/internal/store/s3"
	"github.com/ferry-dev/ferry/internal/testenv"
)

// TestProvenanceOmitsEmpty checks that Set writes no empty value (and
// removes stale keys instead) and that a missing key reads as "".
func TestProvenanceOmitsEmpty(t *testing.T) {
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)
	md := map[string]string{MetaSrcETag: "stale", MetaCRC32C: "stale", "owner": "alice"}
	Provenance{SrcModTime: mtime, SrcSize: 7}.Set(md)
	want := map[string]string{"owner": "alice", MetaSrcMtime: "2024-01-02T03:04:05.000000006Z", MetaSrcSize: "7"}
	if !maps.Equal(md, want) {
		t.Errorf("Set = %v, want %v", md, want)
	}
	for _, md := range []map[string]string{
		want,
		{MetaSrcETag: "", MetaCRC32C: "", MetaSrcMtime: want[MetaSrcMtime], MetaSrcSize: "7"}, // written by older versions
	} {
		p, ok := ParseProvenance(md)
		if !ok || p.SrcETag != "" || p.CRC32C != "" || p.SrcSize != 7 || !p.SrcModTime.Equal(mtime) {
			t.Errorf("ParseProvenance(%v) = %+v, %v", md, p, ok)
		}
		src := store.Object{Key: "k", Size: 7, LastModified: mtime}
		if !upToDate(src, store.Attrs{Object: store.Object{Size: 7}, Metadata: md}) {
			t.Errorf("upToDate with %v = false", md)
		}
	}
}

// TestLocalToS3Provenance copies local files (no ETags) to MinIO through a
// recording proxy: no request carries an empty user metadata value, and the
// copy is up to date afterwards, as is one written with an empty
// ferry-src-etag by an older ferry.
func TestLocalToS3Provenance(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	m.CreateBucket(t, "dst")
	proxy := testenv.StartS3Proxy(t, m, testenv.S3ProxyOptions{})
	dst, err := s3store.Open(t.Context(), s3store.Config{Bucket: "dst", Endpoint: proxy.Endpoint, Region: proxy.Region,
		Credentials: credentials.NewStaticCredentialsProvider(proxy.AccessKey, proxy.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })
	srcDir := t.TempDir()
	src, err := local.Open(srcDir, local.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })

	const mib = 1 << 20
	data := map[string][]byte{"small": testData(1000, 3), "big": testData(5*mib+17, 4)}
	e := New(src, dst, Options{PartSize: 5 * mib, RetryDelay: 10 * time.Millisecond, MemoryLimit: 32 * mib})
	for _, k := range slices.Sorted(maps.Keys(data)) {
		if err := os.WriteFile(filepath.Join(srcDir, k), data[k], 0o644); err != nil {
			t.Fatal(err)
		}
		sa, err := src.Stat(t.Context(), k)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Copy(t.Context(), sa.Object, k); err != nil {
			t.Fatal(err)
		}
		da, err := dst.Stat(t.Context(), k)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := da.Metadata[MetaSrcETag]; ok {
			t.Errorf("%s: %s written: %v", k, MetaSrcETag, da.Metadata)
		}
		if ok, err := e.UpToDate(t.Context(), sa.Object, da.Object); err != nil || !ok {
			t.Errorf("%s: UpToDate after copy = %v, %v", k, ok, err)
		}

		// As an older ferry wrote it: with an empty ferry-src-etag.
		old := da.Metadata
		old[MetaSrcETag] = ""
		if _, err := m.Client().PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("dst"), Key: aws.String("old-" + k),
			Body: bytes.NewReader(data[k]), Metadata: old}); err != nil {
			t.Fatal(err)
		}
		oa, err := dst.Stat(t.Context(), "old-"+k)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := e.UpToDate(t.Context(), sa.Object, oa.Object); err != nil || !ok {
			t.Errorf("%s: UpToDate of an older copy (metadata %v) = %v, %v", k, oa.Metadata, ok, err)
		}
	}
	var n int
	for _, r := range proxy.Requests() {
		for name, vals := range r.Header {
			if strings.HasPrefix(strings.ToLower(name), "x-amz-meta-") {
				n++
				if slices.Contains(vals, "") {
					t.Errorf("%s %s sent %s: %q", r.Method, r.URL, name, vals)
				}
			}
		}
	}
	if n == 0 {
		t.Error("no user metadata sent")
	}
}

// TestProvenanceDroppedOnMarkers: a destination that keeps no user
// metadata on directory markers (SeaweedFS; here MinIO behind a proxy that
// drops it). The copy of a marker says the provenance was lost, that of a
// regular object does not; the marker is up to date afterwards (also with
// --checksum), so a sync does not copy it again, and Verify finds it equal.
func TestProvenanceDroppedOnMarkers(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	m.CreateBucket(t, "src")
	m.CreateBucket(t, "dst")
	proxy := testenv.StartS3Proxy(t, m, testenv.S3ProxyOptions{DropMetadata: func(key string) bool { return strings.HasSuffix(key, "/") }})
	creds := credentials.NewStaticCredentialsProvider(proxy.AccessKey, proxy.SecretKey, "")
	dst, err := s3store.Open(t.Context(), s3store.Config{Bucket: "dst", Endpoint: proxy.Endpoint, Region: proxy.Region, Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })
	src := openS3(t, m, creds, "src", "")
	marker := putS3(t, src, "dir/", nil, store.PutInput{Metadata: map[string]string{"owner": "alice"}})
	regular := putS3(t, src, "dir/file", testData(1000, 5), store.PutInput{})
	for _, compare := range []bool{false, true} {
		e := New(src, dst, Options{RetryDelay: 10 * time.Millisecond, CompareChecksum: compare, DisableServerSideCopy: true})
		for _, c := range []struct {
			obj  store.Object
			lost bool
		}{{marker, true}, {regular, false}} {
			r, err := e.Copy(t.Context(), c.obj, c.obj.Key)
			if err != nil {
				t.Fatal(err)
			}
			if r.ProvenanceLost != c.lost {
				t.Errorf("%q: ProvenanceLost = %v, want %v", c.obj.Key, r.ProvenanceLost, c.lost)
			}
			da, err := dst.Stat(t.Context(), c.obj.Key)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := ParseProvenance(da.Metadata); ok == c.lost {
				t.Errorf("%q: provenance read back: %v (metadata %v)", c.obj.Key, ok, da.Metadata)
			}
			if ok, err := e.UpToDate(t.Context(), c.obj, da.Object); err != nil || !ok {
				t.Errorf("%q (checksum %v): UpToDate after the copy = %v, %v", c.obj.Key, compare, ok, err)
			}
			if why, err := e.Verify(t.Context(), c.obj, da.Object); err != nil || why != "" {
				t.Errorf("%q: Verify = %q, %v", c.obj.Key, why, err)
			}
		}
	}
}

// TestVerbatimCopyLosesNoProvenance: a verbatim server-side copy (both
// buckets on one MinIO) writes no provenance by design, so its empty
// objects are not counted as ones the destination dropped the provenance
// of: the job's "kept no user metadata" note would blame MinIO for it.
func TestVerbatimCopyLosesNoProvenance(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	m.CreateBucket(t, "src")
	m.CreateBucket(t, "dst")
	creds := credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, "")
	src, dst := openS3(t, m, creds, "src", ""), openS3(t, m, creds, "dst", "")
	e := New(src, dst, Options{RetryDelay: 10 * time.Millisecond})
	for _, o := range []store.Object{
		putS3(t, src, "dir/", nil, store.PutInput{}),
		putS3(t, src, "empty", nil, store.PutInput{}),
	} {
		r, err := e.Copy(t.Context(), o, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		if r.Method != MethodServerCopy || r.ProvenanceLost {
			t.Errorf("%q: method %s, ProvenanceLost %v; want a server copy that lost nothing", o.Key, r.Method, r.ProvenanceLost)
		}
	}
}
