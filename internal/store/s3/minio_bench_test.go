package s3

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/minio/minio-go/v7"
	mcreds "github.com/minio/minio-go/v7/pkg/credentials"
)

// BenchmarkRequestCPUMinio measures the same requests as BenchmarkRequestCPU
// sent with a minio-go client instead of ferry's Store (aws-sdk-go-v2),
// against the same fakeS3 answerer, to compare the client's cost per
// request. It is a measurement only: ferry does not use minio-go.
//
// The requests carry what ferry's carry where minio-go can say it:
// UNSIGNED-PAYLOAD (DisableContentSha256; on plain http minio-go would
// otherwise sign every chunk), Content-MD5, the full-object CRC32C checked
// on GET and asked for on HEAD, COPY directives and x-amz-copy-source-if-match
// for CopyVerbatim, REPLACE with the CRC32C algorithm for CopyFrom. Put and
// CopyFrom also send one user metadata entry (ferry's bench sends none).
// Put4KiB is Client.PutObject, which computes the Content-MD5 itself and
// cannot send a CRC32C header without trailing-header support;
// Put4KiBCore is Core.PutObject with the MD5 and CRC32C given, as ferry's
// Put takes them. Get4KiB is Client.GetObject, whose *Object runs a
// goroutine per object; Get4KiBCore is Core.GetObject, a plain body.
// Every op must reach the answerer exactly once.
//
//	go test ./internal/store/s3 -run '^$' -bench RequestCPU -benchmem
func BenchmarkRequestCPUMinio(b *testing.B) {
	object := bytes.Repeat([]byte("ferry 4k"), 512)
	var requests atomic.Int64
	fake := fakeS3(object)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		fake.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	open := func(rt http.RoundTripper) *minio.Client {
		c, err := minio.New(u.Host, &minio.Options{
			Creds:        mcreds.NewStaticV4("AKIDBENCH", "secretbench", ""),
			Secure:       false,
			Region:       "us-east-1",
			BucketLookup: minio.BucketLookupPath,
			Transport:    rt,
		})
		if err != nil {
			b.Fatalf("minio.New: %v", err)
		}
		return c
	}
	tcp := open(nil)
	b.Run("tcp", func(b *testing.B) { benchMinioOps(b, tcp, object, &requests) })
	direct := open(roundTripper{directClient{h}})
	b.Run("direct", func(b *testing.B) { benchMinioOps(b, direct, object, &requests) })
}

// roundTripper lets minio-go's http.Client send through directClient.
type roundTripper struct{ c directClient }

func (t roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return t.c.Do(req) }

func benchMinioOps(b *testing.B, c *minio.Client, object []byte, requests *atomic.Int64) {
	const bucket = "bench"
	key := "p/dir/object 1.bin"
	dstKey := "p/copy/object 1.bin"
	md5b64 := md5sum(object)
	crc := crc32c(object)
	etag := hexMD5(object)
	meta := map[string]string{"ferry-src": "s3://src/dir/object 1.bin"}
	core := minio.Core{Client: c}

	// run runs op b.N times and checks that each sent one request.
	run := func(name string, op func() error) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			start := requests.Load()
			n := int64(0)
			defer reportCPU(b, cpuTime(b))
			for b.Loop() {
				if err := op(); err != nil {
					b.Fatalf("%s: %v", name, err)
				}
				n++
			}
			if got := requests.Load() - start; got != n {
				b.Fatalf("%s: %d requests for %d ops", name, got, n)
			}
		})
	}

	r := bytes.NewReader(object)
	run("Put4KiB", func() error {
		r.Reset(object)
		_, err := c.PutObject(b.Context(), bucket, key, r, int64(len(object)), minio.PutObjectOptions{
			UserMetadata:         meta,
			SendContentMd5:       true,
			DisableContentSha256: true,
		})
		return err
	})
	coreMeta := map[string]string{"ferry-src": meta["ferry-src"], "x-amz-checksum-crc32c": crc}
	run("Put4KiBCore", func() error {
		r.Reset(object)
		_, err := core.PutObject(b.Context(), bucket, key, r, int64(len(object)), md5b64, "", minio.PutObjectOptions{
			UserMetadata:         coreMeta,
			DisableContentSha256: true,
		})
		return err
	})
	buf := make([]byte, 2*len(object))
	read := func(rc io.ReadCloser) error {
		defer rc.Close()
		n, err := io.ReadFull(rc, buf)
		if err != io.ErrUnexpectedEOF || n != len(object) {
			b.Fatalf("read %d bytes: %v", n, err)
		}
		return nil
	}
	run("Get4KiB", func() error {
		o, err := c.GetObject(b.Context(), bucket, key, minio.GetObjectOptions{Checksum: true})
		if err != nil {
			return err
		}
		return read(o)
	})
	run("Get4KiBCore", func() error {
		rc, _, _, err := core.GetObject(b.Context(), bucket, key, minio.GetObjectOptions{Checksum: true})
		if err != nil {
			return err
		}
		return read(rc)
	})
	run("Stat", func() error {
		_, err := c.StatObject(b.Context(), bucket, key, minio.StatObjectOptions{Checksum: true})
		return err
	})
	run("CopyVerbatim", func() error {
		_, err := c.CopyObject(b.Context(),
			minio.CopyDestOptions{Bucket: bucket, Object: dstKey, ChecksumType: minio.ChecksumCRC32C},
			minio.CopySrcOptions{Bucket: bucket, Object: key, MatchETag: etag})
		return err
	})
	run("CopyFrom", func() error {
		_, err := c.CopyObject(b.Context(),
			minio.CopyDestOptions{Bucket: bucket, Object: dstKey, ReplaceMetadata: true, UserMetadata: meta, ChecksumType: minio.ChecksumCRC32C},
			minio.CopySrcOptions{Bucket: bucket, Object: key})
		return err
	})
}
