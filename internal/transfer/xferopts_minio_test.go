package transfer

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/local"
	"github.com/ferry-dev/ferry/internal/testenv"
)

// TestStorageClassMinIO: --storage-class reaches PutObject,
// CreateMultipartUpload and CopyObject (MinIO accepts STANDARD and
// REDUCED_REDUNDANCY and reports the latter on HEAD).
func TestStorageClassMinIO(t *testing.T) {
	srv := testenv.StartMinIO(t, testenv.MinIOOptions{})
	srv.CreateBucket(t, "src")
	srv.CreateBucket(t, "dst")
	creds := credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, "")
	src := openS3(t, srv, creds, "src", "")
	dst := openS3(t, srv, creds, "dst", "")
	const mib = 1 << 20
	small := putS3(t, src, "small", testData(1000, 1), store.PutInput{})
	big := putS3(t, src, "big", testData(11*mib, 2), store.PutInput{})
	for _, tt := range []struct {
		name, class string
		obj         store.Object
		serverCopy  bool
		method      string
	}{
		{"put", "REDUCED_REDUNDANCY", small, false, MethodPut},
		{"multipart", "REDUCED_REDUNDANCY", big, false, MethodMultipart},
		{"server copy", "REDUCED_REDUNDANCY", small, true, MethodServerCopy},
		{"standard", "STANDARD", small, false, MethodPut},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := New(src, dst, Options{PartSize: 5 * mib, StorageClass: tt.class, DisableServerSideCopy: !tt.serverCopy})
			key := tt.name + "/" + tt.obj.Key
			res, err := e.Copy(t.Context(), tt.obj, key)
			if err != nil {
				t.Fatal(err)
			}
			if res.Method != tt.method {
				t.Fatalf("method %s, want %s", res.Method, tt.method)
			}
			a, err := dst.Stat(t.Context(), key)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.class
			if want == "STANDARD" {
				want = "" // S3 and MinIO leave the default class out of HEAD
			}
			if a.StorageClass != want {
				t.Fatalf("storage class %q, want %q", a.StorageClass, want)
			}
		})
	}
}

// TestBandwidthLimitMinIO: two copies sharing one 2 MiB/s limiter move
// 8 MiB in about 4 seconds (within 10%).
func TestBandwidthLimitMinIO(t *testing.T) {
	srv := testenv.StartMinIO(t, testenv.MinIOOptions{})
	srv.CreateBucket(t, "src")
	srv.CreateBucket(t, "dst")
	creds := credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, "")
	src := openS3(t, srv, creds, "src", "")
	dst := openS3(t, srv, creds, "dst", "")
	const mib = 1 << 20
	objs := []store.Object{
		putS3(t, src, "a", testData(4*mib, 1), store.PutInput{}),
		putS3(t, src, "b", testData(4*mib, 2), store.PutInput{}),
	}
	const rate = 2 * mib
	e := New(src, dst, Options{Limiter: NewLimiter(rate), DisableServerSideCopy: true})
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(objs))
	for i, o := range objs {
		wg.Go(func() { _, errs[i] = e.Copy(t.Context(), o, o.Key) })
	}
	wg.Wait()
	took := time.Since(start)
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := time.Duration(float64(8*mib) / rate * float64(time.Second))
	achieved := float64(8*mib) / took.Seconds() / mib
	t.Logf("8 MiB at --bwlimit 2M: %.2fs, %.3f MiB/s (%.1f%% off)", took.Seconds(), achieved, (achieved-2)/2*100)
	// Faster than the limit allows is the failure this guards against; a
	// loaded machine can only make the copy slower, so the lower rate
	// bound is loose (the 10% measurement is in docs/transfer-options.md,
	// from an unloaded run).
	if took < want*9/10 {
		t.Fatalf("took %v: faster than --bwlimit allows (want at least %v)", took, want*9/10)
	}
	if took > want*3 {
		t.Fatalf("took %v, want about %v: the limiter throttles far below its rate", took, want)
	}
}

// TestCompareChecksumMinIO: with CompareChecksum, UpToDate compares
// checksums: provenance of a verified copy, the server's CRC32C or MD5
// ETag against the source's, or the source's bytes read and hashed.
func TestCompareChecksumMinIO(t *testing.T) {
	srv := testenv.StartMinIO(t, testenv.MinIOOptions{})
	srv.CreateBucket(t, "src")
	srv.CreateBucket(t, "dst")
	creds := credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, "")
	src := openS3(t, srv, creds, "src", "")
	dst := openS3(t, srv, creds, "dst", "")
	data, other := testData(5000, 1), testData(5000, 2)
	obj := putS3(t, src, "k", data, store.PutInput{})

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "k"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	lsrc, err := local.Open(dir, local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	la, err := lsrc.Stat(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}

	copied := New(src, dst, Options{DisableServerSideCopy: true})
	if _, err := copied.Copy(t.Context(), obj, "copied"); err != nil {
		t.Fatal(err)
	}
	putS3(t, dst, "same-crc", data, store.PutInput{})
	if _, err := dst.Put(t.Context(), store.PutInput{Key: "same-md5", Size: int64(len(data))}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	putS3(t, dst, "differs", other, store.PutInput{})

	for _, tt := range []struct {
		name string
		from store.Store
		src  store.Object
		dst  string
		want bool
	}{
		{"provenance of a verified copy", src, obj, "copied", true},
		{"same crc32c, no provenance", src, obj, "same-crc", true},
		{"same md5 etag", src, obj, "same-md5", true},
		{"different bytes, same size", src, obj, "differs", false},
		{"local source read and hashed", lsrc, la.Object, "same-crc", true},
		{"local source differs", lsrc, la.Object, "differs", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := New(tt.from, dst, Options{CompareChecksum: true})
			ok, err := e.UpToDate(t.Context(), tt.src, store.Object{Key: tt.dst})
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.want {
				t.Fatalf("UpToDate = %v, want %v", ok, tt.want)
			}
		})
	}
}
