package s3

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferry-dev/ferry/internal/store"
)

// fakeS3 answers every object request at once with a minimal valid
// answer about object, so that a benchmark measures the client's work per
// request, not the server's: PUT (PutObject, or CopyObject with
// x-amz-copy-source) reads the body and answers an ETag; GET answers the
// object with its CRC32C; HEAD its headers.
func fakeS3(object []byte) http.Handler {
	sum := md5.Sum(object)
	etag := []string{`"` + hex.EncodeToString(sum[:]) + `"`}
	size := []string{strconv.Itoa(len(object))}
	crc := []string{crc32c(object)}
	full := []string{"FULL_OBJECT"}
	lastModified := []string{"Mon, 30 Nov 2026 12:00:00 GMT"}
	octets := []string{"application/octet-stream"}
	xmlType := []string{"application/xml"}
	copyResult := []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<CopyObjectResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LastModified>2026-11-30T12:00:00.000Z</LastModified><ETag>` +
		`&#34;` + hex.EncodeToString(sum[:]) + `&#34;</ETag><ChecksumCRC32C>` + crc[0] + `</ChecksumCRC32C><ChecksumType>FULL_OBJECT</ChecksumType></CopyObjectResult>`)
	copyLen := []string{strconv.Itoa(len(copyResult))}
	zero := []string{"0"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		switch r.Method {
		case http.MethodPut:
			if r.Header.Get("X-Amz-Copy-Source") != "" {
				h["Content-Type"] = xmlType
				h["Content-Length"] = copyLen
				_, _ = w.Write(copyResult)
				return
			}
			_, _ = io.Copy(io.Discard, r.Body)
			h["Etag"] = etag
			h["Content-Length"] = zero
		case http.MethodGet, http.MethodHead:
			h["Etag"] = etag
			h["Content-Length"] = size
			h["Content-Type"] = octets
			h["Last-Modified"] = lastModified
			h["X-Amz-Checksum-Crc32c"] = crc
			h["X-Amz-Checksum-Type"] = full
			if r.Method == http.MethodGet {
				_, _ = w.Write(object)
			}
		default:
			http.Error(w, "unexpected method", http.StatusMethodNotAllowed)
		}
	})
}

// directClient sends a request to a handler in the same goroutine, without
// a connection: what is left to measure is the client's own work.
type directClient struct{ h http.Handler }

func (c directClient) Do(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// BenchmarkRequestCPU measures the client's cost of one request of each
// kind that a small-object copy sends (ns/op, B/op, allocs/op; cpu-ns/op is
// the process's CPU time per op) through a Store: the SDK's middleware
// stack, signing and ferry's own wrapping. "tcp" sends to fakeS3 on
// 127.0.0.1 (its server runs in this process: its share is small and the
// same for every client change); "direct" hands the request to fakeS3's
// handler without a connection, which leaves the client's work alone and
// measures it with less noise. go test -run XXX -bench RequestCPU -benchmem
func BenchmarkRequestCPU(b *testing.B) {
	object := bytes.Repeat([]byte("ferry 4k"), 512)
	h := fakeS3(object)
	srv := httptest.NewServer(h)
	defer srv.Close()
	s, err := Open(b.Context(), Config{
		Bucket:      "bench",
		Prefix:      "p",
		Endpoint:    srv.URL,
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDBENCH", "secretbench", ""),
	})
	if err != nil {
		b.Fatalf("Open: %v", err)
	}
	defer s.Close()
	b.Run("tcp", func(b *testing.B) { benchOps(b, s, object) })

	direct := *s
	lim := s.client.Options().HTTPClient.(*limitedClient).lim
	direct.client = s3.New(s.client.Options(), func(o *s3.Options) {
		o.HTTPClient = &limitedClient{next: directClient{h}, lim: lim}
	})
	b.Run("direct", func(b *testing.B) { benchOps(b, &direct, object) })
}

func benchOps(b *testing.B, s *Store, object []byte) {
	in := store.PutInput{Key: "dir/object 1.bin", Size: int64(len(object)), ChecksumCRC32C: crc32c(object), ContentMD5: md5sum(object)}
	b.Run("Put4KiB", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b, cpuTime(b))
		r := bytes.NewReader(object)
		for b.Loop() {
			r.Reset(object)
			if _, err := s.Put(b.Context(), in, r); err != nil {
				b.Fatalf("Put: %v", err)
			}
		}
	})
	b.Run("Get4KiB", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b, cpuTime(b))
		buf := make([]byte, 2*len(object))
		for b.Loop() {
			rc, _, err := s.Open(b.Context(), in.Key, 0, -1)
			if err != nil {
				b.Fatalf("Open: %v", err)
			}
			n, err := io.ReadFull(rc, buf)
			if err != io.ErrUnexpectedEOF || n != len(object) {
				b.Fatalf("read %d bytes: %v", n, err)
			}
			rc.Close()
		}
	})
	b.Run("Stat", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b, cpuTime(b))
		for b.Loop() {
			if _, err := s.Stat(b.Context(), in.Key); err != nil {
				b.Fatalf("Stat: %v", err)
			}
		}
	})
	b.Run("CopyVerbatim", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b, cpuTime(b))
		dst := in
		dst.Key = "copy/object 1.bin"
		etag := hexMD5(object)
		for b.Loop() {
			if _, err := s.CopyVerbatim(b.Context(), s, in.Key, etag, dst); err != nil {
				b.Fatalf("CopyVerbatim: %v", err)
			}
		}
	})
	b.Run("CopyFrom", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b, cpuTime(b))
		dst := in
		dst.Key = "copy/object 1.bin"
		for b.Loop() {
			if _, err := s.CopyFrom(b.Context(), s, in.Key, dst); err != nil {
				b.Fatalf("CopyFrom: %v", err)
			}
		}
	})
}

// cpuTime returns the CPU time (user and system) this process has used.
func cpuTime(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process's CPU time per op since start (client and
// server: they share the process) as cpu-ns/op.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}

func hexMD5(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}
