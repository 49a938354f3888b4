package transfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/store"
)

const testPart = 100 << 10 // not a multiple of the slab size on purpose

func testData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// testOptions are fast defaults for tests.
func testOptions() Options {
	return Options{PartSize: testPart, PartConcurrency: 3, MemoryLimit: 8 << 20, RetryDelay: time.Millisecond}
}

// checkCopied fails unless dst holds data at key with provenance of src.
func checkCopied(t *testing.T, dst *fakeStore, key string, data []byte, src store.Object) store.Attrs {
	t.Helper()
	o, ok := dst.get(key)
	if !ok {
		t.Fatalf("destination has no %q; keys %q", key, dst.keys())
	}
	if !bytes.Equal(o.data, data) {
		t.Fatalf("destination bytes differ (%d vs %d bytes)", len(o.data), len(data))
	}
	p, ok := ParseProvenance(o.attrs.Metadata)
	if !ok {
		t.Fatalf("no provenance in %v", o.attrs.Metadata)
	}
	if p.SrcETag != src.ETag || p.SrcSize != src.Size || !p.SrcModTime.Equal(src.LastModified) {
		t.Errorf("provenance %+v, source %+v", p, src)
	}
	return o.attrs
}

func TestPartSizeFor(t *testing.T) {
	const mib, tib = 1 << 20, 1 << 40
	tests := []struct {
		name           string
		size, partSize int64
		want           int64
	}{
		{"small object keeps default", 100 * mib, 0, DefaultPartSize},
		{"exactly 10000 parts", 10000 * 16 * mib, 16 * mib, 16 * mib},
		{"one byte more grows to 17 MiB", 10000*16*mib + 1, 16 * mib, 17 * mib},
		{"5 TiB", 5 * tib, 0, 525 * mib},
		{"5 TiB with 5 MiB parts", 5 * tib, 5 * mib, 525 * mib},
		{"custom small part kept", 1000, 100, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PartSizeFor(tt.size, tt.partSize)
			if got != tt.want {
				t.Errorf("PartSizeFor(%d, %d) = %d, want %d", tt.size, tt.partSize, got, tt.want)
			}
			if n := partCount(tt.size, got); n > MaxParts {
				t.Errorf("%d parts > %d", n, MaxParts)
			}
		})
	}
}

func TestCopySizes(t *testing.T) {
	tests := []struct {
		name       string
		key        string
		size       int
		wantMethod string
		wantParts  int32
	}{
		{"empty object", "empty", 0, MethodPut, 0},
		{"directory marker", "photos/", 0, MethodPut, 0},
		{"small", "a/small.txt", 1000, MethodPut, 0},
		{"exactly threshold", "thr", testPart, MethodPut, 0},
		{"threshold plus one", "thr1", testPart + 1, MethodMultipart, 2},
		{"several parts short last", "big", 5*testPart + 1234, MethodMultipart, 6},
		{"several whole parts", "whole", 4 * testPart, MethodMultipart, 4},
		{"odd key bytes", "dir/ü %2F+?#\x7f", 10, MethodPut, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := newFake("src"), newFake("dst")
			data := testData(tt.size, 7)
			obj := src.add(tt.key, data, store.Attrs{}, nil)
			e := New(src, dst, testOptions())
			res, err := e.Copy(context.Background(), obj, tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if res.Method != tt.wantMethod || res.Attempts != 1 || res.Size != int64(tt.size) || res.Key != tt.key {
				t.Errorf("result %+v", res)
			}
			if res.CRC32C != crcOf(data) || !res.MD5Verified || res.SrcETag != obj.ETag {
				t.Errorf("result checksums %+v, want crc %s", res, crcOf(data))
			}
			if got := dst.parts.Load(); got != tt.wantParts {
				t.Errorf("%d parts uploaded, want %d", got, tt.wantParts)
			}
			if src.opens.Load() != 1 {
				t.Errorf("source opened %d times, want 1", src.opens.Load())
			}
			attrs := checkCopied(t, dst, tt.key, data, obj)
			if tt.wantMethod == MethodPut && attrs.Metadata[MetaCRC32C] != crcOf(data) {
				t.Errorf("%s = %q, want %q", MetaCRC32C, attrs.Metadata[MetaCRC32C], crcOf(data))
			}
			if res.DstETag != attrs.ETag {
				t.Errorf("DstETag %q, stored %q", res.DstETag, attrs.ETag)
			}
			if e.mem.inUse.Load() != 0 {
				t.Errorf("%d bytes of buffers not released", e.mem.inUse.Load())
			}
		})
	}
}

func TestCopyPreservesAttributes(t *testing.T) {
	for _, multipart := range []bool{false, true} {
		t.Run(fmt.Sprintf("multipart=%v", multipart), func(t *testing.T) {
			src, dst := newFake("src"), newFake("dst")
			size := 10
			if multipart {
				size = 3 * testPart
			}
			data := testData(size, 1)
			in := store.Attrs{
				ContentType: "image/jpeg", ContentEncoding: "gzip", ContentDisposition: "attachment",
				ContentLanguage: "de", CacheControl: "max-age=60", Expires: "Wed, 21 Oct 2015 07:28:00 GMT",
				Metadata: map[string]string{"owner": "alice", MetaSrcETag: "stale", MetaCRC32C: "stale", "ferry-other": "kept"},
			}
			tags := map[string]string{"team": "x", "env": "prod"}
			obj := src.add("k", data, in, tags)
			e := New(src, dst, Options{PartSize: testPart, RetryDelay: time.Millisecond})
			res, err := e.Copy(context.Background(), obj, "k")
			if err != nil {
				t.Fatal(err)
			}
			got := checkCopied(t, dst, "k", data, obj)
			if got.ContentType != in.ContentType || got.ContentEncoding != in.ContentEncoding ||
				got.ContentDisposition != in.ContentDisposition || got.ContentLanguage != in.ContentLanguage ||
				got.CacheControl != in.CacheControl || got.Expires != in.Expires {
				t.Errorf("attributes not preserved: %+v", got)
			}
			wantMD := map[string]string{"owner": "alice", "ferry-other": "kept",
				MetaSrcETag: obj.ETag, MetaSrcSize: fmt.Sprint(size), MetaSrcMtime: "2024-05-06T07:08:09.123456789Z"}
			if !multipart {
				wantMD[MetaCRC32C] = res.CRC32C
			}
			if !maps.Equal(got.Metadata, wantMD) {
				t.Errorf("metadata %v\nwant %v", got.Metadata, wantMD)
			}
			o, _ := dst.get("k")
			if !maps.Equal(o.tags, tags) {
				t.Errorf("tags %v, want %v", o.tags, tags)
			}
			if src.tagCalls.Load() != 1 {
				t.Errorf("%d Tags calls, want 1", src.tagCalls.Load())
			}
		})
	}
}

func TestCopyNoTagsNoTagRequest(t *testing.T) {
	src, dst := newFake("src"), newFake("dst")
	obj := src.add("k", []byte("x"), store.Attrs{}, nil)
	if _, err := New(src, dst, testOptions()).Copy(context.Background(), obj, "k"); err != nil {
		t.Fatal(err)
	}
	if n := src.tagCalls.Load(); n != 0 {
		t.Errorf("%d Tags calls for an object with TagCount 0", n)
	}
}

// TestCopyUsesOpenAttrs: the object changed between listing and copy; the
// GET's attributes are the truth.
func TestCopyUsesOpenAttrs(t *testing.T) {
	src, dst := newFake("src"), newFake("dst")
	old := src.add("k", []byte("old"), store.Attrs{}, nil)
	data := []byte("new and longer")
	obj := src.add("k", data, store.Attrs{}, nil)
	res, err := New(src, dst, testOptions()).Copy(context.Background(), old, "k")
	if err != nil {
		t.Fatal(err)
	}
	if res.SrcETag != obj.ETag || res.Size != int64(len(data)) {
		t.Errorf("result %+v, want source %+v", res, obj)
	}
	checkCopied(t, dst, "k", data, obj)
}

// TestCopyCorruptSource: a source whose every read disagrees with its
// ETag fails the copy with a checksum error after a bounded number of
// reads, writing nothing: per attempt, the small object read once and
// again maxSourceRereads times; the multipart one read once, then each of
// its 3 parts once more (the damaged part reads the same twice: agreed,
// and still wrong).
func TestCopyCorruptSource(t *testing.T) {
	for _, tt := range []struct {
		size  int
		opens int32
	}{{1000, 3 * (1 + maxSourceRereads)}, {3 * testPart, 3 * (1 + 3)}} {
		size := tt.size
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			src, dst := newFake("src"), newFake("dst")
			obj := src.add("k", testData(size, 3), store.Attrs{}, nil)
			src.openHook = func(key string, b []byte) []byte { b[len(b)/2] ^= 1; return b }
			res, err := New(src, dst, testOptions()).Copy(context.Background(), obj, "k")
			if !errors.Is(err, store.ErrChecksum) {
				t.Fatalf("err = %v, want ErrChecksum", err)
			}
			var oe *ObjectError
			if !errors.As(err, &oe) || oe.Key != "k" || oe.Op != "verify source" {
				t.Errorf("err %#v, want an ObjectError for k", err)
			}
			if res.Attempts != 3 || src.opens.Load() != tt.opens {
				t.Errorf("attempts %d, opens %d, want 3 and %d", res.Attempts, src.opens.Load(), tt.opens)
			}
			if len(dst.keys()) != 0 || dst.puts.Load() != 0 || dst.completes.Load() != 0 || dst.openUploads() != 0 {
				t.Errorf("destination written: keys %q puts %d completes %d uploads %d",
					dst.keys(), dst.puts.Load(), dst.completes.Load(), dst.openUploads())
			}
		})
	}
}

// TestCopyCorruptSourceRecovers: bytes read with a checksum mismatch are
// read again within the attempt, and the second read is good.
func TestCopyCorruptSourceRecovers(t *testing.T) {
	src, dst := newFake("src"), newFake("dst")
	data := testData(5000, 3)
	obj := src.add("k", data, store.Attrs{}, nil)
	var n sync.Mutex
	calls := 0
	src.openHook = func(key string, b []byte) []byte {
		n.Lock()
		defer n.Unlock()
		if calls++; calls == 1 {
			b[0] ^= 0xff
		}
		return b
	}
	res, err := New(src, dst, testOptions()).Copy(context.Background(), obj, "k")
	if err != nil || res.Attempts != 1 || src.opens.Load() != 2 {
		t.Fatalf("attempts %d, opens %d, err %v; want 1 attempt, 2 opens", res.Attempts, src.opens.Load(), err)
	}
	checkCopied(t, dst, "k", data, obj)
}

func TestCopyTransientPartError(t *testing.T) {
	src, dst := newFake("src"), newFake("dst")
	data := testData(4*testPart+5, 4)
	obj := src.add("k", data, store.Attrs{}, nil)
	var once sync.Once
	dst.partHook = func(n int32, call int) error {
		var err error
		if n == 2 {
			once.Do(func() { err = errors.New("503 SlowDown (SDK gave up)") })
		}
		return err
	}
	res, err := New(src, dst, testOptions()).Copy(context.Background(), obj, "k")
	if err != nil {
		t.Fatal(err)
	}
	// The part is retried from its buffer, within the attempt.
	if res.Attempts != 1 || res.Method != MethodMultipart {
		t.Errorf("result %+v, want 1 multipart attempt", res)
	}
	if dst.parts.Load() != 6 || dst.aborts.Load() != 0 || dst.openUploads() != 0 {
		t.Errorf("parts %d, aborts %d, open uploads %d; want 6, 0, 0", dst.parts.Load(), dst.aborts.Load(), dst.openUploads())
	}
	checkCopied(t, dst, "k", data, obj)
}

func TestCopyPermanentErrorNotRetried(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"access denied", fmt.Errorf("get: %w", store.ErrAccess)},
		{"not exist", fmt.Errorf("get: %w", store.ErrNotExist)},
		{"invalid key", fmt.Errorf("get: %w", store.ErrInvalidKey)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := newFake("src"), newFake("dst")
			obj := src.add("k", []byte("x"), store.Attrs{}, nil)
			src.openErr = func(string, int) error { return tt.err }
			res, err := New(src, dst, testOptions()).Copy(context.Background(), obj, "k")
			if !errors.Is(err, tt.err) || !store.Permanent(err) {
				t.Fatalf("err = %v", err)
			}
			if res.Attempts != 1 || src.opens.Load() != 1 {
				t.Errorf("attempts %d opens %d, want 1", res.Attempts, src.opens.Load())
			}
		})
	}
}

func TestCopyTransientRetriedThenFails(t *testing.T) {
	src, dst := newFake("src"), newFake("dst")
	obj := src.add("k", []byte("x"), store.Attrs{}, nil)
	src.openErr = func(string, int) error { return errors.New("connection reset") }
	opts := testOptions()
	opts.Attempts = 4
	res, err := New(src, dst, opts).Copy(context.Background(), obj, "k")
	if err == nil || store.Permanent(err) || res.Attempts != 4 || src.opens.Load() != 4 {
		t.Fatalf("attempts %d opens %d err %v", res.Attempts, src.opens.Load(), err)
	}
}

func TestCopyMultipartFailureAborts(t *testing.T) {
	src, dst := newFake("src"), newFake("dst")
	obj := src.add("k", testData(6*testPart, 5), store.Attrs{}, nil)
	dst.partHook = func(n int32, call int) error {
		if n == 3 {
			return errors.New("500 InternalError")
		}
		return nil
	}
	opts := testOptions()
	opts.Attempts = 2
	res, err := New(src, dst, opts).Copy(context.Background(), obj, "k")
	if err == nil || !strings.Contains(err.Error(), "upload part 3") {
		t.Fatalf("err = %v", err)
	}
	if res.Attempts != 2 || dst.creates.Load() != 2 || dst.aborts.Load() != 2 || dst.completes.Load() != 0 {
		t.Errorf("attempts %d creates %d aborts %d completes %d", res.Attempts, dst.creates.Load(), dst.aborts.Load(), dst.completes.Load())
	}
	if len(dst.keys()) != 0 || dst.openUploads() != 0 {
		t.Errorf("left behind: keys %q, %d uploads", dst.keys(), dst.openUploads())
	}
}

func TestCopyCancelMidMultipartAborts(t *testing.T) {
	src, dst := newFake("src"), newFake("dst")
	obj := src.add("k", testData(20*testPart, 6), store.Attrs{}, nil)
	dst.partDelay = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	dst.partHook = func(n int32, call int) error {
		if call == 3 {
			cancel()
		}
		return nil
	}
	res, err := New(src, dst, testOptions()).Copy(ctx, obj, "k")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if res.Attempts != 1 || dst.aborts.Load() != 1 || dst.openUploads() != 0 || len(dst.keys()) != 0 {
		t.Errorf("attempts %d aborts %d uploads %d keys %q", res.Attempts, dst.aborts.Load(), dst.openUploads(), dst.keys())
	}
}

func TestCopyMemoryLimit(t *testing.T) {
	src, dst := newFake("src"), newFake("dst")
	dst.partDelay = 2 * time.Millisecond
	const limit = 8 * slabSize // room for 3 parts of 2 slabs, or two small objects
	opts := Options{PartSize: testPart, PartConcurrency: 4, MemoryLimit: limit, RetryDelay: time.Millisecond}
	e := New(src, dst, opts)
	var objs []store.Object
	var datas [][]byte
	for i := range 12 {
		size := []int{7*testPart + 3, testPart, 10}[i%3]
		d := testData(size, uint64(i))
		datas = append(datas, d)
		objs = append(objs, src.add(fmt.Sprintf("o%d", i), d, store.Attrs{}, nil))
	}
	var wg sync.WaitGroup
	errs := make([]error, len(objs))
	for i, o := range objs {
		wg.Go(func() { _, errs[i] = e.Copy(context.Background(), o, o.Key) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		checkCopied(t, dst, objs[i].Key, datas[i], objs[i])
	}
	if peak := e.mem.peak.Load(); peak > limit || peak < 2*slabSize {
		t.Errorf("peak buffer bytes %d, limit %d", peak, limit)
	}
	if e.mem.inUse.Load() != 0 {
		t.Errorf("%d bytes still in use", e.mem.inUse.Load())
	}
}

// TestBufferLargerThanLimit: a part larger than the whole budget runs alone
// instead of waiting forever.
func TestBufferLargerThanLimit(t *testing.T) {
	src, dst := newFake("src"), newFake("dst")
	data := testData(3*testPart, 9)
	obj := src.add("k", data, store.Attrs{}, nil)
	opts := Options{PartSize: testPart, MultipartThreshold: 10, MemoryLimit: slabSize, RetryDelay: time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := New(src, dst, opts).Copy(ctx, obj, "k"); err != nil {
		t.Fatal(err)
	}
	checkCopied(t, dst, "k", data, obj)
}

func TestCopyDestinationCRCMismatchDeleted(t *testing.T) {
	src, dst := newFake("src"), newFake("dst")
	obj := src.add("k", []byte("hello"), store.Attrs{}, nil)
	dst.putResult = func(pr store.PutResult) store.PutResult { pr.ChecksumCRC32C = crcOf([]byte("other")); return pr }
	opts := testOptions()
	opts.Attempts = 1
	_, err := New(src, dst, opts).Copy(context.Background(), obj, "k")
	if !errors.Is(err, store.ErrChecksum) {
		t.Fatalf("err = %v", err)
	}
	if len(dst.keys()) != 0 {
		t.Errorf("unverified object left: %q", dst.keys())
	}
}

func TestCopyStreamingWithoutMultipart(t *testing.T) {
	tests := []struct {
		name      string
		attrs     store.Attrs
		corrupt   func(open int) bool
		wantErr   error
		wantOpens int32
	}{
		{"md5 etag", store.Attrs{}, nil, nil, 1},
		{"source crc32c", store.Attrs{Object: store.Object{ETag: "-"}, ChecksumCRC32C: "set"}, nil, nil, 1},
		{"no checksum two passes", store.Attrs{Object: store.Object{ETag: "-"}}, nil, nil, 2},
		{"multipart etag two passes", store.Attrs{Object: store.Object{ETag: "0123456789abcdef0123456789abcdef-3"}}, nil, nil, 2},
		{"corrupt md5 source", store.Attrs{}, func(int) bool { return true }, store.ErrChecksum, 1},
		{"second pass differs", store.Attrs{Object: store.Object{ETag: "-"}}, func(open int) bool { return open == 2 }, store.ErrChecksum, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, fdst := newFake("src"), newFake("dst")
			dst := plain{fdst}
			data := testData(3*testPart+7, 11)
			if tt.attrs.ChecksumCRC32C == "set" {
				tt.attrs.ChecksumCRC32C = crcOf(data)
			}
			obj := src.add("k", data, tt.attrs, nil)
			opens := 0
			src.openHook = func(key string, b []byte) []byte {
				opens++
				if tt.corrupt != nil && tt.corrupt(opens) {
					b[len(b)-1] ^= 1
				}
				return b
			}
			opts := testOptions()
			opts.Attempts = 1
			res, err := New(src, dst, opts).Copy(context.Background(), obj, "k")
			if src.opens.Load() != tt.wantOpens {
				t.Errorf("%d opens, want %d", src.opens.Load(), tt.wantOpens)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if len(fdst.keys()) != 0 {
					t.Errorf("corrupt object written")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Method != MethodStream || res.CRC32C != crcOf(data) {
				t.Errorf("result %+v", res)
			}
			attrs := checkCopied(t, fdst, "k", data, obj)
			if want := crcOf(data); tt.name == "md5 etag" {
				if _, ok := attrs.Metadata[MetaCRC32C]; ok {
					t.Errorf("%s written though unknown before the write", MetaCRC32C)
				}
			} else if attrs.Metadata[MetaCRC32C] != want {
				t.Errorf("%s = %q", MetaCRC32C, attrs.Metadata[MetaCRC32C])
			}
		})
	}
}

func TestVerifyingReaderWithholdsLastBytes(t *testing.T) {
	data := testData(1000, 2)
	bad := bytes.Clone(data)
	bad[999] ^= 1
	src := &source{key: "k", attrs: store.Attrs{Object: store.Object{Size: 1000}}, crc: newCRC()}
	src.rc = nopCloser{bytes.NewReader(bad)}
	v := &verifyingReader{src: src, wantCRC: crcOf(data)}
	buf := make([]byte, 300)
	total := 0
	var err error
	for err == nil {
		var n int
		n, err = v.Read(buf)
		total += n
	}
	if !errors.Is(err, store.ErrChecksum) || total >= 1000 {
		t.Errorf("delivered %d bytes, err %v; want fewer than 1000 and ErrChecksum", total, err)
	}
}

func TestServerCopy(t *testing.T) {
	tests := []struct {
		name       string
		attrs      store.Attrs
		corrupt    bool
		opts       func(*Options)
		wantMethod string
		wantErr    error
	}{
		{"plain md5 etag", store.Attrs{}, false, nil, MethodServerCopy, nil},
		{"source crc32c", store.Attrs{Object: store.Object{ETag: "0123456789abcdef0123456789abcdef-2"}, ChecksumCRC32C: "set"}, false, nil, MethodServerCopy, nil},
		{"kms destination read back", store.Attrs{}, false, func(o *Options) { o.SSE = "aws:kms" }, MethodServerCopy, nil},
		{"unverifiable source streams", store.Attrs{Object: store.Object{ETag: "0123456789abcdef0123456789abcdef-2"}}, false, nil, MethodPut, nil},
		{"kms source streams", store.Attrs{SSE: "aws:kms"}, false, nil, MethodPut, nil},
		{"disabled", store.Attrs{}, false, func(o *Options) { o.DisableServerSideCopy = true }, MethodPut, nil},
		{"corrupt copy detected by etag", store.Attrs{}, true, nil, "", store.ErrChecksum},
		{"corrupt copy detected by crc", store.Attrs{Object: store.Object{ETag: "0123456789abcdef0123456789abcdef-2"}, ChecksumCRC32C: "set"}, true, nil, "", store.ErrChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFake("one")
			data := testData(1234, 5)
			if tt.attrs.ChecksumCRC32C == "set" {
				tt.attrs.ChecksumCRC32C = crcOf(data)
			}
			tt.attrs.Metadata = map[string]string{"a": "b"}
			obj := s.add("src/k", data, tt.attrs, map[string]string{"t": "1"})
			if tt.corrupt {
				s.copyHook = func(b []byte) []byte { b[0] ^= 1; return b }
			}
			opts := testOptions()
			opts.Attempts = 1
			if tt.opts != nil {
				tt.opts(&opts)
			}
			res, err := New(s, s, opts).Copy(context.Background(), obj, "dst/k")
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if _, ok := s.get("dst/k"); ok {
					t.Errorf("corrupt copy left at destination")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Method != tt.wantMethod {
				t.Errorf("method %q, want %q", res.Method, tt.wantMethod)
			}
			if tt.wantMethod == MethodServerCopy && s.copies.Load() != 1 {
				t.Errorf("%d server copies", s.copies.Load())
			}
			attrs := checkCopied(t, s, "dst/k", data, obj)
			if attrs.Metadata["a"] != "b" {
				t.Errorf("metadata %v", attrs.Metadata)
			}
			if o, _ := s.get("dst/k"); o.tags["t"] != "1" {
				t.Errorf("tags %v", o.tags)
			}
		})
	}
}

func TestUpToDate(t *testing.T) {
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 600000000, time.UTC)
	withProv := func(p Provenance) map[string]string { md := map[string]string{}; p.Set(md); return md }
	s3src := store.Object{Key: "k", Size: 10, ETag: "0123456789abcdef0123456789abcdef", LastModified: mtime}
	localSrc := store.Object{Key: "k", Size: 10, LastModified: mtime}
	tests := []struct {
		name    string
		src     store.Object
		dstSize int
		dstMD   map[string]string // nil: destination missing
		want    bool
	}{
		{"destination missing", s3src, 0, nil, false},
		{"size differs", s3src, 11, withProv(Provenance{SrcETag: s3src.ETag, SrcModTime: mtime, SrcSize: 10}), false},
		{"no provenance", s3src, 10, map[string]string{"x": "y"}, false},
		{"malformed provenance", s3src, 10, map[string]string{MetaSrcSize: "ten", MetaSrcMtime: "x"}, false},
		{"provenance size differs", s3src, 10, withProv(Provenance{SrcETag: s3src.ETag, SrcModTime: mtime, SrcSize: 9}), false},
		{"etag matches", s3src, 10, withProv(Provenance{SrcETag: s3src.ETag, SrcModTime: mtime, SrcSize: 10}), true},
		{"etag matches mtime differs", s3src, 10, withProv(Provenance{SrcETag: s3src.ETag, SrcModTime: mtime.Add(time.Hour), SrcSize: 10}), true},
		{"same-size change at source (etag differs)", s3src, 10, withProv(Provenance{SrcETag: "ffffffffffffffffffffffffffffffff", SrcModTime: mtime, SrcSize: 10}), false},
		{"local source, copy from an etag source", localSrc, 10, withProv(Provenance{SrcETag: s3src.ETag, SrcModTime: mtime, SrcSize: 10}), false},
		{"local mtime matches", localSrc, 10, withProv(Provenance{SrcModTime: mtime, SrcSize: 10}), true},
		{"local mtime matches, etag key dropped", localSrc, 10, map[string]string{MetaSrcSize: "10", MetaSrcMtime: mtime.Format(time.RFC3339Nano)}, true},
		{"local same-size change (mtime differs)", localSrc, 10, withProv(Provenance{SrcModTime: mtime.Add(time.Millisecond), SrcSize: 10}), false},
		{"local mtime stored in whole seconds", localSrc, 10, withProv(Provenance{SrcModTime: mtime.Truncate(time.Second), SrcSize: 10}), true},
		{"local mtime other second", localSrc, 10, withProv(Provenance{SrcModTime: mtime.Truncate(time.Second).Add(-time.Second), SrcSize: 10}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := newFake("src"), newFake("dst")
			if tt.dstMD != nil {
				dst.add("k", make([]byte, tt.dstSize), store.Attrs{Metadata: tt.dstMD}, nil)
			}
			got, err := New(src, dst, Options{}).UpToDate(context.Background(), tt.src, store.Object{Key: "k", Size: int64(tt.dstSize)})
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("UpToDate = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestUpToDateAfterCopy: what Copy writes, UpToDate recognises, for sources
// with and without ETags, and a same-size rewrite is detected.
func TestUpToDateAfterCopy(t *testing.T) {
	for _, etag := range []string{"", "-"} {
		t.Run(fmt.Sprintf("etag=%q", etag), func(t *testing.T) {
			src, dst := newFake("src"), newFake("dst")
			obj := src.add("k", []byte("version 1"), store.Attrs{Object: store.Object{ETag: etag}}, nil)
			e := New(src, dst, testOptions())
			if _, err := e.Copy(context.Background(), obj, "k"); err != nil {
				t.Fatal(err)
			}
			dobj, _ := dst.get("k")
			ok, err := e.UpToDate(context.Background(), obj, dobj.attrs.Object)
			if err != nil || !ok {
				t.Fatalf("after copy: UpToDate = %v, %v", ok, err)
			}
			changed := src.add("k", []byte("version 2"), store.Attrs{Object: store.Object{ETag: etag, LastModified: obj.LastModified.Add(time.Second)}}, nil)
			ok, err = e.UpToDate(context.Background(), changed, dobj.attrs.Object)
			if err != nil || ok {
				t.Fatalf("after same-size change: UpToDate = %v, %v", ok, err)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	a := []byte("hello world")
	b := []byte("hello World")
	tests := []struct {
		name             string
		srcData, dstData []byte
		srcETag, dstETag string // "" means computed MD5, "-" none
		want             string
	}{
		{"identical by etag", a, a, "", "", ""},
		{"identical by content, no etags", a, a, "-", "-", ""},
		{"identical by content, multipart etag", a, a, "", "0123456789abcdef0123456789abcdef-2", ""},
		{"size differs", a, []byte("hello"), "", "", "size 11 != 5"},
		{"content differs", a, b, "", "", fmt.Sprintf("content differs (crc32c %s != %s)", crcOf(a), crcOf(b))},
		{"content differs, no etags", a, b, "-", "-", fmt.Sprintf("content differs (crc32c %s != %s)", crcOf(a), crcOf(b))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := newFake("src"), newFake("dst")
			so := src.add("k", tt.srcData, store.Attrs{Object: store.Object{ETag: tt.srcETag}}, nil)
			do := dst.add("k", tt.dstData, store.Attrs{Object: store.Object{ETag: tt.dstETag}}, nil)
			got, err := New(src, dst, Options{}).Verify(context.Background(), so, do)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Verify = %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("missing destination", func(t *testing.T) {
		src, dst := newFake("src"), newFake("dst")
		so := src.add("k", a, store.Attrs{Object: store.Object{ETag: "-"}}, nil)
		_, err := New(src, dst, Options{}).Verify(context.Background(), so, store.Object{Key: "k", Size: so.Size})
		if !errors.Is(err, store.ErrNotExist) {
			t.Errorf("err = %v, want ErrNotExist", err)
		}
	})
}

func TestProvenanceRoundTrip(t *testing.T) {
	p := Provenance{SrcETag: "e", SrcModTime: time.Date(2020, 1, 1, 0, 0, 0, 5, time.FixedZone("x", 3600)), SrcSize: 42, CRC32C: "AAAAAA=="}
	md := map[string]string{}
	p.Set(md)
	if md[MetaSrcMtime] != "2019-12-31T23:00:00.000000005Z" {
		t.Errorf("mtime stored as %q", md[MetaSrcMtime])
	}
	got, ok := ParseProvenance(md)
	if !ok || got.SrcETag != p.SrcETag || !got.SrcModTime.Equal(p.SrcModTime) || got.SrcSize != 42 || got.CRC32C != p.CRC32C {
		t.Errorf("round trip %+v, %v", got, ok)
	}
}
