package transfer

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ferry-dev/ferry/internal/store"
	s3store "github.com/ferry-dev/ferry/internal/store/s3"
	"github.com/ferry-dev/ferry/internal/testenv"
)

const mib = 1 << 20

// twoMinIOs is a source MinIO reached through a fault proxy and a second,
// destination MinIO: copies between them stream through ferry.
type twoMinIOs struct {
	srcSrv, dstSrv *testenv.MinIO
	proxy          *testenv.FaultProxy
	src            *s3store.Store // through the proxy
	dst            *s3store.Store
}

func startTwoMinIOs(t *testing.T) *twoMinIOs {
	t.Helper()
	env := &twoMinIOs{
		srcSrv: testenv.StartMinIO(t, testenv.MinIOOptions{}),
		dstSrv: testenv.StartMinIO(t, testenv.MinIOOptions{}),
	}
	env.srcSrv.CreateBucket(t, "src")
	env.dstSrv.CreateBucket(t, "dst")
	env.proxy = testenv.StartFaultProxy(t, env.srcSrv.Endpoint, nil)
	srcCreds := credentials.NewStaticCredentialsProvider(env.srcSrv.AccessKey, env.srcSrv.SecretKey, "")
	via := *env.srcSrv
	via.Endpoint = env.proxy.URL
	env.src = openS3(t, &via, srcCreds, "src", "")
	env.dst = openS3(t, env.dstSrv, credentials.NewStaticCredentialsProvider(env.dstSrv.AccessKey, env.dstSrv.SecretKey, ""), "dst", "")
	return env
}

// putParts uploads data to the source in parts of the given sizes with the
// SDK, directly (not through the proxy). alg, when set, asks for checksums
// of that algorithm and type typ; else the object has none and its ETag is
// the multipart ETag "<md5 of part md5s>-N".
func (env *twoMinIOs) putParts(t *testing.T, key string, data []byte, sizes []int, alg types.ChecksumAlgorithm, typ types.ChecksumType) store.Attrs {
	t.Helper()
	ctx := t.Context()
	c := env.srcSrv.Client()
	cin := &s3.CreateMultipartUploadInput{Bucket: aws.String("src"), Key: aws.String(key)}
	if alg != "" {
		cin.ChecksumAlgorithm, cin.ChecksumType = alg, typ
	}
	up, err := c.CreateMultipartUpload(ctx, cin)
	if err != nil {
		t.Fatalf("create multipart %s: %v", key, err)
	}
	var parts []types.CompletedPart
	off := 0
	for i, n := range sizes {
		pin := &s3.UploadPartInput{
			Bucket: aws.String("src"), Key: aws.String(key), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(data[off : off+n]), ContentLength: aws.Int64(int64(n)),
			ChecksumAlgorithm: alg,
		}
		out, err := c.UploadPart(ctx, pin)
		if err != nil {
			t.Fatalf("upload part %d of %s: %v", i+1, key, err)
		}
		parts = append(parts, types.CompletedPart{
			PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag,
			ChecksumCRC32C: out.ChecksumCRC32C, ChecksumCRC32: out.ChecksumCRC32, ChecksumSHA256: out.ChecksumSHA256,
			ChecksumSHA1: out.ChecksumSHA1, ChecksumCRC64NVME: out.ChecksumCRC64NVME,
		})
		off += n
	}
	if off != len(data) {
		t.Fatalf("part sizes add up to %d, not %d", off, len(data))
	}
	comp := &s3.CompleteMultipartUploadInput{
		Bucket: aws.String("src"), Key: aws.String(key), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}
	if typ == types.ChecksumTypeFullObject {
		comp.ChecksumType = typ
	}
	if _, err := c.CompleteMultipartUpload(ctx, comp); err != nil {
		t.Fatalf("complete multipart %s: %v", key, err)
	}
	return env.stat(t, key)
}

// putOne uploads data to the source with one PutObject, with a checksum of
// alg when set.
func (env *twoMinIOs) putOne(t *testing.T, key string, data []byte, alg types.ChecksumAlgorithm) store.Attrs {
	t.Helper()
	_, err := env.srcSrv.Client().PutObject(t.Context(), &s3.PutObjectInput{
		Bucket: aws.String("src"), Key: aws.String(key), Body: bytes.NewReader(data), ChecksumAlgorithm: alg,
	})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return env.stat(t, key)
}

func (env *twoMinIOs) stat(t *testing.T, key string) store.Attrs {
	t.Helper()
	a, err := env.src.Stat(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// checkDst fails unless the destination holds exactly data at key, judged
// by an MD5 of the body read with a plain SDK client.
func (env *twoMinIOs) checkDst(t *testing.T, key string, data []byte) {
	t.Helper()
	out, err := env.dstSrv.Client().GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("dst"), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get destination %s: %v", key, err)
	}
	defer out.Body.Close()
	h := md5.New()
	n, err := io.Copy(h, out.Body)
	if err != nil {
		t.Fatalf("read destination %s: %v", key, err)
	}
	if want := md5.Sum(data); n != int64(len(data)) || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("destination %s is corrupt: %d bytes, md5 %x, want %d bytes, md5 %x", key, n, h.Sum(nil), len(data), want)
	}
}

// checkNothing fails unless nothing is visible at key and no upload is left.
func (env *twoMinIOs) checkNothing(t *testing.T, key string) {
	t.Helper()
	if _, err := env.dst.Stat(t.Context(), key); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("%s visible at the destination after a failed copy: %v", key, err)
	}
	for u, err := range env.dst.ListMultipartUploads(t.Context(), key) {
		t.Errorf("upload left behind for %s: %+v %v", key, u, err)
	}
}

// noLayout hides the source's PartStater: its multipart ETags cannot be
// checked.
type noLayout struct{ store.Store }

// parts splits n bytes into parts of size, the last one shorter.
func parts(n, size int) []int {
	var ps []int
	for ; n > size; n -= size {
		ps = append(ps, size)
	}
	return append(ps, n)
}

// TestMinIOVerifiedMethods: every copy reports how its bytes were checked
// against the source, for each kind of source S3 can have.
func TestMinIOVerifiedMethods(t *testing.T) {
	env := startTwoMinIOs(t)
	opts := Options{PartSize: 5 * mib, MultipartThreshold: 5 * mib, MemoryLimit: 64 * mib, RetryDelay: 10 * time.Millisecond, PartConcurrency: 3}

	type object struct {
		key      string
		data     []byte
		put      func(key string, data []byte) store.Attrs
		verified string
		method   string
		opts     func(o *Options)
	}
	mp := func(sizes []int, alg types.ChecksumAlgorithm, typ types.ChecksumType) func(string, []byte) store.Attrs {
		return func(key string, data []byte) store.Attrs { return env.putParts(t, key, data, sizes, alg, typ) }
	}
	one := func(alg types.ChecksumAlgorithm) func(string, []byte) store.Attrs {
		return func(key string, data []byte) store.Attrs { return env.putOne(t, key, data, alg) }
	}
	big := 13*mib + 4321
	objects := []object{
		{"single-md5", testData(mib+7, 11), one(""), VerifiedMD5, MethodPut, nil},
		{"single-sha256", testData(mib+7, 12), one(types.ChecksumAlgorithmSha256), VerifiedSHA256, MethodPut, nil},
		{"single-sha1", testData(mib+7, 13), one(types.ChecksumAlgorithmSha1), VerifiedSHA1, MethodPut, nil},
		{"single-crc32", testData(mib+7, 14), one(types.ChecksumAlgorithmCrc32), VerifiedCRC32, MethodPut, nil},
		{"single-crc32c", testData(mib+7, 15), one(types.ChecksumAlgorithmCrc32c), VerifiedCRC32C, MethodPut, nil},
		{"single-crc64nvme", testData(mib+7, 16), one(types.ChecksumAlgorithmCrc64nvme), VerifiedCRC64NVME, MethodPut, nil},
		{"big-single-md5", testData(big, 17), one(""), VerifiedMD5, MethodMultipart, nil},
		// Multipart sources are read with parallel ranged GETs.
		{"mp-etag", testData(big, 21), mp(parts(big, 5*mib), "", ""), VerifiedMultipartETag, MethodMultipart, nil},
		// Source parts of several sizes, none aligned with ferry's 5 MiB parts.
		{"mp-etag-uneven", testData(big, 22), mp([]int{6 * mib, 5*mib + 3, big - 11*mib - 3}, "", ""), VerifiedMultipartETag, MethodMultipart, nil},
		// Below the threshold: one buffered GET, checked the same way.
		{"mp-etag-small", testData(7*mib, 23), mp(parts(7*mib, 5*mib), "", ""), VerifiedMultipartETag, MethodPut,
			func(o *Options) { o.MultipartThreshold, o.PartSize = 8*mib, 8*mib }},
		{"mp-part-sha256", testData(big, 24), mp(parts(big, 5*mib), types.ChecksumAlgorithmSha256, types.ChecksumTypeComposite), VerifiedPartSHA256, MethodMultipart, nil},
		{"mp-part-crc32c", testData(big, 25), mp(parts(big, 5*mib), types.ChecksumAlgorithmCrc32c, types.ChecksumTypeComposite), VerifiedPartCRC32C, MethodMultipart, nil},
		{"mp-full-crc64nvme", testData(big, 26), mp(parts(big, 5*mib), types.ChecksumAlgorithmCrc64nvme, types.ChecksumTypeFullObject), VerifiedCRC64NVME, MethodMultipart, nil},
		{"mp-full-crc32c", testData(big, 27), mp(parts(big, 5*mib), types.ChecksumAlgorithmCrc32c, types.ChecksumTypeFullObject), VerifiedCRC32C, MethodMultipart, nil},
	}
	for _, o := range objects {
		t.Run(o.key, func(t *testing.T) {
			a := o.put(o.key, o.data)
			t.Logf("source etag %s crc64nvme %q crc32c %q crc32 %q sha256 %q sha1 %q", a.ETag,
				a.ChecksumCRC64NVME, a.ChecksumCRC32C, a.ChecksumCRC32, a.ChecksumSHA256, a.ChecksumSHA1)
			op := opts
			if o.opts != nil {
				o.opts(&op)
			}
			op.RequireVerified = true
			res, err := New(env.src, env.dst, op).Copy(t.Context(), a.Object, o.key)
			if err != nil {
				t.Fatal(err)
			}
			if res.Verified != o.verified || res.Method != o.method || res.Attempts != 1 {
				t.Errorf("verified %q method %q attempts %d, want %q %q 1", res.Verified, res.Method, res.Attempts, o.verified, o.method)
			}
			env.checkDst(t, o.key, o.data)
		})
	}

	t.Run("unverified", func(t *testing.T) {
		// A multipart source whose part layout cannot be learned offers
		// nothing to check the bytes against.
		data := testData(big, 31)
		a := env.putParts(t, "mp-no-layout", data, parts(big, 5*mib), "", "")
		src := noLayout{env.src}
		res, err := New(src, env.dst, opts).Copy(t.Context(), a.Object, "mp-no-layout")
		if err != nil {
			t.Fatal(err)
		}
		if res.Verified != Unverified {
			t.Errorf("verified %q, want unverified", res.Verified)
		}
		env.checkDst(t, "mp-no-layout", data)

		o := opts
		o.RequireVerified = true
		res, err = New(src, env.dst, o).Copy(t.Context(), a.Object, "mp-no-layout-required")
		if !errors.Is(err, ErrUnverified) || res.Attempts != 1 || res.Verified != Unverified {
			t.Fatalf("RequireVerified: attempts %d, verified %q, err %v; want ErrUnverified", res.Attempts, res.Verified, err)
		}
		env.checkNothing(t, "mp-no-layout-required")

		// The same below the threshold (one buffered GET).
		small := testData(6*mib, 32)
		a = env.putParts(t, "mp-no-layout-small", small, parts(6*mib, 5*mib), "", "")
		o.MultipartThreshold, o.PartSize = 8*mib, 8*mib
		if _, err := New(src, env.dst, o).Copy(t.Context(), a.Object, "mp-no-layout-small"); !errors.Is(err, ErrUnverified) {
			t.Fatalf("RequireVerified, small: err %v; want ErrUnverified", err)
		}
		env.checkNothing(t, "mp-no-layout-small")
	})
}

// TestMinIOFlippedBitsNeverCopied is issue 10: a proxy flips bits in the
// source's GET bodies. Multipart-sourced objects without stored checksums
// (checked by their multipart ETag), one with per-part checksums and a
// single-part one are copied to a second MinIO: every copy either fails
// with a checksum error, leaving nothing, or is byte-identical. Bytes that
// fail the check are read again within the attempt (the object, or each
// part until two reads agree), so every object is copied in one attempt.
func TestMinIOFlippedBitsNeverCopied(t *testing.T) {
	env := startTwoMinIOs(t)
	type object struct {
		key  string
		data []byte
		a    store.Attrs
	}
	var objs []*object
	for i, spec := range []struct {
		size  int
		parts []int
		alg   types.ChecksumAlgorithm
	}{
		{size: 11*mib + 5, parts: parts(11*mib+5, 5*mib)},
		{size: 16 * mib, parts: []int{7 * mib, 5 * mib, 4 * mib}},
		{size: 12*mib + 77, parts: parts(12*mib+77, 6*mib)},
		{size: 10*mib + 1, parts: parts(10*mib+1, 5*mib)},
		{size: 6 * mib, parts: parts(6*mib, 5*mib)}, // below the threshold: one GET
		{size: 11*mib + 9, parts: parts(11*mib+9, 5*mib), alg: types.ChecksumAlgorithmSha256},
		{size: 3*mib + 3},
	} {
		o := &object{key: fmt.Sprintf("obj%d", i), data: testData(spec.size, uint64(100+i))}
		if spec.parts != nil {
			o.a = env.putParts(t, o.key, o.data, spec.parts, spec.alg, types.ChecksumTypeComposite)
			if spec.alg == "" && (isPlainMD5(o.a.ETag) || len(fullChecksums(o.a)) > 0) {
				t.Fatalf("%s: want a multipart ETag and no checksum, got %+v", o.key, o.a)
			}
		} else {
			o.a = env.putOne(t, o.key, o.data, "")
		}
		objs = append(objs, o)
	}
	env.proxy.SetFaults(testenv.RandomFaults(10, testenv.Chances{Flip: 0.35, Methods: []string{http.MethodGet}}))
	var rereads atomic.Int64
	opts := Options{PartSize: 5 * mib, MultipartThreshold: 8 * mib, MemoryLimit: 64 * mib, RetryDelay: 10 * time.Millisecond,
		Attempts: 3, PartConcurrency: 3, RequireVerified: true,
		OnRetry: func(side, reason string) {
			if side == "source" && reason == "checksum" {
				rereads.Add(1)
			}
		}}
	e := New(env.src, env.dst, opts)
	failedAttempts, copied := 0, 0
	for _, o := range objs {
		res, err := e.Copy(t.Context(), o.a.Object, o.key)
		t.Logf("%s (%d bytes, etag %s): attempts %d, verified %q, err %v", o.key, len(o.data), o.a.ETag, res.Attempts, res.Verified, err)
		if err != nil {
			if !errors.Is(err, store.ErrChecksum) {
				t.Errorf("%s: err %v, want a checksum error", o.key, err)
			}
			env.checkNothing(t, o.key)
			failedAttempts += res.Attempts
			continue
		}
		env.checkDst(t, o.key, o.data)
		if res.Verified == Unverified {
			t.Errorf("%s copied unverified", o.key)
		}
		failedAttempts += res.Attempts - 1
		copied++
	}
	st := env.proxy.Stats()
	t.Logf("%d of %d copied; %d failed attempts; %d re-reads; proxy: %+v", copied, len(objs), failedAttempts, rereads.Load(), st)
	if st.Flips == 0 || rereads.Load() == 0 {
		t.Errorf("the test flipped %d bits and saw %d re-reads: it tested nothing", st.Flips, rereads.Load())
	}
	if copied != len(objs) || failedAttempts != 0 {
		t.Errorf("%d of %d copied, %d failed attempts: damaged reads must be read again within the attempt", copied, len(objs), failedAttempts)
	}
	if e.mem.inUse.Load() != 0 {
		t.Errorf("%d bytes of buffers not released", e.mem.inUse.Load())
	}
}

// TestMinIOSourceReadsResumed: GET bodies cut short, reset or stalled part
// way are read on from where they stopped, within the attempt, and 503
// bursts are retried; the bytes still check against the multipart ETag.
func TestMinIOSourceReadsResumed(t *testing.T) {
	env := startTwoMinIOs(t)
	sizes := []int{5 * mib, 5 * mib, 3*mib + 21}
	data := testData(13*mib+21, 41)
	a := env.putParts(t, "mp", data, sizes, "", "")
	small := testData(3*mib+5, 42)
	sa := env.putOne(t, "small", small, "")
	opts := Options{PartSize: 5 * mib, MultipartThreshold: 5 * mib, MemoryLimit: 64 * mib, RetryDelay: 10 * time.Millisecond,
		PartConcurrency: 3, StallTimeout: 300 * time.Millisecond, RequireVerified: true}

	// Each GET fails the first time a range ending where it ends is asked
	// for: a ranged GET once, a whole-object GET once as such and once as
	// the ranged GET of the rest.
	var chosen atomic.Int64 // faults handed to the proxy
	firstTime := func(f testenv.Fault) func(*http.Request) testenv.Fault {
		var mu sync.Mutex
		seen := map[string]bool{}
		return func(r *http.Request) testenv.Fault {
			if r.Method != http.MethodGet {
				return testenv.Fault{}
			}
			rng := r.Header.Get("Range")
			if i := strings.IndexByte(rng, '-'); i >= 0 {
				rng = rng[i+1:]
			}
			k := r.URL.Path + " " + rng
			mu.Lock()
			defer mu.Unlock()
			if seen[k] {
				return testenv.Fault{}
			}
			seen[k] = true
			chosen.Add(1)
			return f
		}
	}
	for _, tt := range []struct {
		name  string
		fault testenv.Fault
		count func(testenv.FaultStats) int64
	}{
		{"truncated", testenv.Fault{Truncate: true, At: 0.4}, func(s testenv.FaultStats) int64 { return s.Truncations }},
		{"reset", testenv.Fault{ResetBody: true, At: 0.6}, func(s testenv.FaultStats) int64 { return s.BodyResets }},
		{"stalled", testenv.Fault{Stall: time.Hour, At: 0.5}, func(s testenv.FaultStats) int64 { return s.Stalls }},
		{"503", testenv.Fault{Status: http.StatusServiceUnavailable}, func(s testenv.FaultStats) int64 { return s.Statuses }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.count(env.proxy.Stats())
			chosen.Store(0)
			env.proxy.SetFaults(firstTime(tt.fault))
			defer env.proxy.SetFaults(nil)
			e := New(env.src, env.dst, opts)
			for _, c := range []struct {
				a    store.Attrs
				data []byte
			}{{a, data}, {sa, small}} {
				key := tt.name + "/" + c.a.Key
				res, err := e.Copy(t.Context(), c.a.Object, key)
				if err != nil {
					t.Fatalf("%s: %v", key, err)
				}
				if res.Attempts != 1 || res.Verified == Unverified {
					t.Errorf("%s: attempts %d, verified %q; want 1 verified attempt", key, res.Attempts, res.Verified)
				}
				env.checkDst(t, key, c.data)
			}
			// One fault per GET is chosen (at least 4). On a loaded
			// machine the 300 ms stall timeout can end a slow read before
			// the proxy reaches its fault point, so the faults carried out
			// may be fewer, but never none.
			if got := chosen.Load(); got < 4 {
				t.Errorf("%d faults chosen, want one per GET (at least 4)", got)
			}
			if got := tt.count(env.proxy.Stats()) - before; got < 1 {
				t.Errorf("no %s fault carried out", tt.name)
			}
		})
	}
}

// TestMinIOUploadPartRetried: an UploadPart whose connection is reset is
// retried from its buffer, within the attempt, even when the store's own
// client does not retry.
func TestMinIOUploadPartRetried(t *testing.T) {
	env := startTwoMinIOs(t)
	dproxy := testenv.StartFaultProxy(t, env.dstSrv.Endpoint, nil)
	dst, err := s3store.Open(t.Context(), s3store.Config{
		Bucket: "dst", Endpoint: dproxy.URL, RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(env.dstSrv.AccessKey, env.dstSrv.SecretKey, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	data := testData(12*mib, 51)
	a := env.putParts(t, "mp", data, parts(12*mib, 5*mib), "", "")
	var mu sync.Mutex
	seen := map[string]bool{}
	dproxy.SetFaults(func(r *http.Request) testenv.Fault {
		if r.Method != http.MethodPut || !strings.Contains(r.URL.RawQuery, "partNumber=") {
			return testenv.Fault{}
		}
		mu.Lock()
		defer mu.Unlock()
		if seen[r.URL.RawQuery] {
			return testenv.Fault{}
		}
		seen[r.URL.RawQuery] = true
		return testenv.Fault{Reset: true}
	})
	opts := Options{PartSize: 5 * mib, MultipartThreshold: 5 * mib, MemoryLimit: 64 * mib, RetryDelay: 10 * time.Millisecond, PartConcurrency: 3}
	res, err := New(env.src, dst, opts).Copy(t.Context(), a.Object, "mp")
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 1 || res.Verified != VerifiedMultipartETag {
		t.Errorf("attempts %d verified %q", res.Attempts, res.Verified)
	}
	if st := dproxy.Stats(); st.Resets != 3 {
		t.Errorf("%d resets, want one per part (3)", st.Resets)
	}
	env.checkDst(t, "mp", data)
}

// The CRC64NVME ferry computes is S3's (MinIO's): MinIO accepted the
// full-object value of TestMinIOVerifiedMethods; here the check value.
func TestCRC64NVME(t *testing.T) {
	h := crc64.New(crc64NVMETable)
	h.Write([]byte("123456789"))
	if got := h.Sum64(); got != 0xae8b14860a799888 {
		t.Fatalf("crc64nvme(123456789) = %#x", got)
	}
	if got := sumOf(h); got != base64.StdEncoding.EncodeToString([]byte{0xae, 0x8b, 0x14, 0x86, 0x0a, 0x79, 0x98, 0x88}) {
		t.Fatalf("base64 %s", got)
	}
}

// TestMinIOWriteStallRetried: a Put and an UploadPart whose bodies the
// destination stops taking (a fault proxy holds them, never released) are
// cancelled after StallTimeout and sent again from their buffers, within
// the attempt.
func TestMinIOWriteStallRetried(t *testing.T) {
	env := startTwoMinIOs(t)
	dproxy := testenv.StartFaultProxy(t, env.dstSrv.Endpoint, nil)
	dst, err := s3store.Open(t.Context(), s3store.Config{
		Bucket: "dst", Endpoint: dproxy.URL,
		Credentials: credentials.NewStaticCredentialsProvider(env.dstSrv.AccessKey, env.dstSrv.SecretKey, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	var mu sync.Mutex
	seen := map[string]bool{}
	// The first PUT of each object (or part) is held half-way through its
	// body.
	dproxy.SetFaults(func(r *http.Request) testenv.Fault {
		if r.Method != http.MethodPut || r.ContentLength <= 0 {
			return testenv.Fault{}
		}
		mu.Lock()
		defer mu.Unlock()
		id := r.URL.Path + "?" + r.URL.Query().Get("partNumber")
		if seen[id] {
			return testenv.Fault{}
		}
		seen[id] = true
		return testenv.Fault{Request: true, Hold: hold, At: 0.5}
	})
	const stall = 2 * time.Second // long enough for an answer on a loaded machine
	opts := Options{PartSize: 5 * mib, MultipartThreshold: 5 * mib, MemoryLimit: 64 * mib, RetryDelay: 10 * time.Millisecond,
		PartConcurrency: 3, StallTimeout: stall, Attempts: 1}
	small := testData(1*mib, 61)
	sa := env.putOne(t, "small", small, "")
	data := testData(12*mib, 62)
	a := env.putParts(t, "mp", data, parts(12*mib, 5*mib), "", "")
	e := New(env.src, dst, opts)
	for _, c := range []struct {
		a    store.Attrs
		data []byte
		puts int64
	}{{sa, small, 1}, {a, data, 3}} {
		before := dproxy.Stats().Stalls
		start := time.Now()
		res, err := e.Copy(t.Context(), c.a.Object, c.a.Key)
		took := time.Since(start)
		if err != nil {
			t.Fatalf("%s: %v", c.a.Key, err)
		}
		if res.Attempts != 1 || res.Verified == Unverified {
			t.Errorf("%s: attempts %d verified %q", c.a.Key, res.Attempts, res.Verified)
		}
		if got := dproxy.Stats().Stalls - before; got != c.puts {
			t.Errorf("%s: %d writes held, want %d", c.a.Key, got, c.puts)
		}
		if took < stall {
			t.Errorf("%s: copied in %s, before the stall timeout", c.a.Key, took)
		}
		t.Logf("%s (%d bytes): %d held writes timed out and sent again; copied in %s", c.a.Key, len(c.data), c.puts, took.Round(time.Millisecond))
		env.checkDst(t, c.a.Key, c.data)
	}
}

// TestMinIOFlippedPartReadAgain: one bit flipped in the first read of the
// middle part of a multipart-ETag source, and in the first GET of a small
// one. The small object is read again whole; of the large one every part is
// read again once to find the damaged one (the ETag cannot tell which),
// the damaged part until two reads agree, and only it is uploaded again.
// Both are copied, byte-identical, in one attempt.
func TestMinIOFlippedPartReadAgain(t *testing.T) {
	env := startTwoMinIOs(t)
	big := testData(15*mib, 51)
	ab := env.putParts(t, "big", big, parts(15*mib, 5*mib), "", "")
	small := testData(100_000, 52)
	as := env.putOne(t, "small", small, "")
	var mu sync.Mutex
	gets := map[string]int{} // path and Range → GETs
	env.proxy.SetFaults(func(r *http.Request) testenv.Fault {
		if r.Method != http.MethodGet || r.URL.Query().Has("list-type") {
			return testenv.Fault{}
		}
		mu.Lock()
		defer mu.Unlock()
		k := r.URL.Path + " " + r.Header.Get("Range")
		gets[k]++
		if gets[k] == 1 && (k == "/src/small " || k == fmt.Sprintf("/src/big bytes=%d-%d", 5*mib, 10*mib-1)) {
			return testenv.Fault{Flip: true, At: 0.3, Bit: 2}
		}
		return testenv.Fault{}
	})
	var rereads atomic.Int64
	opts := Options{PartSize: 5 * mib, MultipartThreshold: 8 * mib, MemoryLimit: 64 * mib, RetryDelay: 10 * time.Millisecond,
		Attempts: 3, PartConcurrency: 3, RequireVerified: true,
		OnRetry: func(side, reason string) {
			if side == "source" && reason == "checksum" {
				rereads.Add(1)
			}
		}}
	e := New(env.src, env.dst, opts)
	for _, o := range []struct {
		a    store.Attrs
		data []byte
	}{{ab, big}, {as, small}} {
		res, err := e.Copy(t.Context(), o.a.Object, o.a.Key)
		if err != nil {
			t.Fatalf("%s: %v", o.a.Key, err)
		}
		if res.Attempts != 1 || res.Verified == Unverified {
			t.Errorf("%s: attempts %d, verified %q; want 1 attempt, verified", o.a.Key, res.Attempts, res.Verified)
		}
		env.checkDst(t, o.a.Key, o.data)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("GETs: %v; %d re-reads", gets, rereads.Load())
	if st := env.proxy.Stats(); st.Flips != 2 {
		t.Fatalf("%d bits flipped, want 2", st.Flips)
	}
	want := map[string]int{
		"/src/small ": 2,
		fmt.Sprintf("/src/big bytes=0-%d", 5*mib-1):           2,
		fmt.Sprintf("/src/big bytes=%d-%d", 5*mib, 10*mib-1):  3,
		fmt.Sprintf("/src/big bytes=%d-%d", 10*mib, 15*mib-1): 2,
	}
	for k, n := range want {
		if gets[k] != n {
			t.Errorf("%d GETs of %q, want %d", gets[k], k, n)
		}
	}
	if rereads.Load() != 5 {
		t.Errorf("%d re-reads, want 5 (1 of the small object, 4 of the large one's parts)", rereads.Load())
	}
}

// TestMinIOWriteFlipsResent: the first 4 writes of each object and part
// reach the destination with a flipped bit; the destination rejects each
// (its checksum does not match) and the copy sends it again from its
// buffer, 5 times in all, within one attempt.
func TestMinIOWriteFlipsResent(t *testing.T) {
	env := startTwoMinIOs(t)
	dproxy := testenv.StartFaultProxy(t, env.dstSrv.Endpoint, nil)
	dst, err := s3store.Open(t.Context(), s3store.Config{
		Bucket: "dst", Endpoint: dproxy.URL,
		Credentials: credentials.NewStaticCredentialsProvider(env.dstSrv.AccessKey, env.dstSrv.SecretKey, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	var mu sync.Mutex
	seen := map[string]int{}
	dproxy.SetFaults(func(r *http.Request) testenv.Fault {
		if r.Method != http.MethodPut || r.ContentLength <= 0 {
			return testenv.Fault{}
		}
		mu.Lock()
		defer mu.Unlock()
		id := r.URL.Path + "?" + r.URL.Query().Get("partNumber")
		if seen[id]++; seen[id] > 4 {
			return testenv.Fault{}
		}
		return testenv.Fault{Request: true, Flip: true, At: 0.5, Bit: 1}
	})
	opts := Options{PartSize: 5 * mib, MultipartThreshold: 5 * mib, MemoryLimit: 64 * mib, RetryDelay: 10 * time.Millisecond,
		PartConcurrency: 3, Attempts: 1}
	small := testData(100_000, 71)
	sa := env.putOne(t, "small", small, "")
	data := testData(12*mib, 72)
	a := env.putParts(t, "mp", data, parts(12*mib, 5*mib), "", "")
	e := New(env.src, dst, opts)
	for _, c := range []struct {
		a      store.Attrs
		data   []byte
		writes int64
	}{{sa, small, 1}, {a, data, 3}} {
		before := dproxy.Stats().Flips
		res, err := e.Copy(t.Context(), c.a.Object, c.a.Key)
		if err != nil {
			t.Fatalf("%s: %v", c.a.Key, err)
		}
		if res.Attempts != 1 || res.Verified == Unverified {
			t.Errorf("%s: attempts %d verified %q", c.a.Key, res.Attempts, res.Verified)
		}
		if got := dproxy.Stats().Flips - before; got != 4*c.writes {
			t.Errorf("%s: %d writes damaged, want %d", c.a.Key, got, 4*c.writes)
		}
		env.checkDst(t, c.a.Key, c.data)
	}
}
