package transfer

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/local"
)

// multipartETag is S3's ETag of data uploaded in parts of the given sizes.
func multipartETag(data []byte, sizes []int) string {
	var sums []byte
	off := 0
	for _, n := range sizes {
		s := md5.Sum(data[off : off+n])
		sums = append(sums, s[:]...)
		off += n
	}
	s := md5.Sum(sums)
	return hex.EncodeToString(s[:]) + fmt.Sprintf("-%d", len(sizes))
}

func layoutOf(sizes []int) []srcPart {
	var ps []srcPart
	off := int64(0)
	for _, n := range sizes {
		ps = append(ps, srcPart{off: off, size: int64(n)})
		off += int64(n)
	}
	return ps
}

// feed writes data to v in chunks of random sizes.
func feed(v *seqVerifier, data []byte, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 2))
	for len(data) > 0 {
		n := min(len(data), 1+r.IntN(3000))
		v.Write(data[:n])
		data = data[n:]
	}
}

func TestSeqVerifier(t *testing.T) {
	data := testData(20000, 1)
	sizes := []int{7000, 7000, 5999, 1}
	etag := multipartETag(data, sizes)
	sha := func(b []byte) string { s := sha256.Sum256(b); return base64.StdEncoding.EncodeToString(s[:]) }

	t.Run("multipart etag", func(t *testing.T) {
		p := plan{method: VerifiedMultipartETag, parts: layoutOf(sizes), etag: etag}
		v := newSeqVerifier(&p)
		feed(v, data, 1)
		if err := v.finish(); err != nil {
			t.Fatal(err)
		}
		bad := bytes.Clone(data)
		bad[13000] ^= 0x10
		v = newSeqVerifier(&p)
		feed(v, bad, 2)
		if err := v.finish(); !errors.Is(err, store.ErrChecksum) {
			t.Fatalf("flipped bit: %v", err)
		}
		v = newSeqVerifier(&p)
		feed(v, data[:19999], 3)
		if err := v.finish(); !errors.Is(err, store.ErrChecksum) {
			t.Fatalf("short: %v", err)
		}
		v = newSeqVerifier(&p)
		feed(v, append(bytes.Clone(data), 0), 4)
		if err := v.finish(); !errors.Is(err, store.ErrChecksum) {
			t.Fatalf("long: %v", err)
		}
		// Another layout of the same bytes has another ETag.
		p.parts = layoutOf([]int{7000, 6999, 6001})
		p.etag = multipartETag(data, []int{7000, 6999, 6001})
		v = newSeqVerifier(&p)
		feed(v, data, 5)
		if err := v.finish(); err != nil {
			t.Fatal(err)
		}
		if p.etag == etag {
			t.Fatal("layouts give the same etag")
		}
	})
	t.Run("per-part checksums fail at the part", func(t *testing.T) {
		ps := layoutOf(sizes)
		for i := range ps {
			ps[i].want = sha(data[ps[i].off : ps[i].off+ps[i].size])
		}
		p := plan{method: VerifiedPartSHA256, parts: ps, partAlg: algSHA256}
		v := newSeqVerifier(&p)
		feed(v, data, 6)
		if err := v.finish(); err != nil {
			t.Fatal(err)
		}
		bad := bytes.Clone(data)
		bad[8000] ^= 1
		v = newSeqVerifier(&p)
		v.Write(bad[:13999])
		if err := v.failed(); err != nil {
			t.Fatalf("failed within part 2: %v", err)
		}
		v.Write(bad[13999:14000])
		if err := v.failed(); !errors.Is(err, store.ErrChecksum) || !strings.Contains(err.Error(), "part 2 ") {
			t.Fatalf("after part 2: %v", err)
		}
	})
	t.Run("full-object checksums", func(t *testing.T) {
		for _, c := range []checksum{{algSHA256, sha(data)}, {algCRC64NVME, "tSUnNt7USGU="}} {
			p := plan{method: c.alg.name, full: c}
			if c.alg == algCRC64NVME {
				h := algCRC64NVME.new()
				h.Write(data)
				p.full.want = sumOf(h)
			}
			v := newSeqVerifier(&p)
			feed(v, data, 7)
			if err := v.finish(); err != nil {
				t.Fatalf("%s: %v", c.alg.name, err)
			}
			v = newSeqVerifier(&p)
			feed(v, data[1:], 8)
			if err := v.finish(); !errors.Is(err, store.ErrChecksum) {
				t.Fatalf("%s of other bytes: %v", c.alg.name, err)
			}
		}
	})
	t.Run("nothing to hash", func(t *testing.T) {
		for _, p := range []plan{{method: VerifiedMD5}, {method: VerifiedCRC32C, full: checksum{algCRC32C, crcOf(data)}}, {}} {
			if v := newSeqVerifier(&p); v != nil || v.finish() != nil {
				t.Errorf("%q: verifier %v", p.method, v)
			}
		}
	})
}

// partsFake is a fake source that keeps the part layout of its objects,
// like S3 (see store.PartStater).
type partsFake struct {
	*fakeStore
	sizes     map[string][]int
	partSums  map[string][]string // per-part SHA-256s, when set
	statParts atomic.Int32
	changed   bool // StatPart reports another version
}

func (f *partsFake) addParts(key string, data []byte, sizes []int) store.Object {
	if f.sizes == nil {
		f.sizes = map[string][]int{}
	}
	f.sizes[key] = sizes
	return f.add(key, data, store.Attrs{Object: store.Object{ETag: multipartETag(data, sizes)}}, nil)
}

func (f *partsFake) StatPart(ctx context.Context, key string, n int32) (store.PartAttrs, error) {
	f.statParts.Add(1)
	o, ok := f.get(key)
	if !ok {
		return store.PartAttrs{}, store.ErrNotExist
	}
	sizes := f.sizes[key]
	if n < 1 || int(n) > len(sizes) {
		return store.PartAttrs{}, errors.New("invalid part number")
	}
	off := int64(0)
	for _, s := range sizes[:n-1] {
		off += int64(s)
	}
	p := store.PartAttrs{Number: n, Offset: off, Size: int64(sizes[n-1]), Count: int32(len(sizes)), Object: o.attrs.Object}
	if f.changed {
		p.Object.ETag = "0123456789abcdef0123456789abcdef-9"
	}
	if sums := f.partSums[key]; sums != nil {
		p.ChecksumSHA256 = sums[n-1]
	}
	return p, nil
}

func TestCopyMultipartETagSource(t *testing.T) {
	sizes := []int{2*testPart + 100, testPart + 7, 2*testPart - 300, 1234}
	n := 0
	for _, s := range sizes {
		n += s
	}
	data := testData(n, 9)
	for _, tt := range []struct {
		name string
		opts func(*Options)
	}{
		{"ranged", nil},
		{"buffered", func(o *Options) { o.MultipartThreshold, o.MemoryLimit = int64(n), 2*int64(n) }},
		{"sequential multipart", func(o *Options) {}}, // see below: a plain destination
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := &partsFake{fakeStore: newFake("src")}
			obj := src.addParts("k", data, sizes)
			dst := newFake("dst")
			opts := testOptions()
			if tt.opts != nil {
				tt.opts(&opts)
			}
			var d store.Store = dst
			if tt.name == "sequential multipart" {
				d = plain{dst} // no Multipart: one streamed Put
			}
			res, err := New(src, d, opts).Copy(context.Background(), obj, "k")
			if err != nil {
				t.Fatal(err)
			}
			if res.Verified != VerifiedMultipartETag || src.statParts.Load() != int32(len(sizes)) {
				t.Errorf("verified %q after %d StatParts", res.Verified, src.statParts.Load())
			}
			checkCopied(t, dst, "k", data, obj)

			// A bit flipped on the way from the source fails every attempt.
			dst2 := newFake("dst")
			src.openHook = func(key string, b []byte) []byte { b[len(b)-1] ^= 4; return b }
			d = dst2
			if tt.name == "sequential multipart" {
				d = plain{dst2}
			}
			res, err = New(src, d, opts).Copy(context.Background(), obj, "k")
			if !errors.Is(err, store.ErrChecksum) || res.Attempts != 3 || res.Verified != Unverified {
				t.Fatalf("corrupt source: attempts %d verified %q err %v", res.Attempts, res.Verified, err)
			}
			if len(dst2.keys()) != 0 || dst2.openUploads() != 0 || dst2.completes.Load() != 0 {
				t.Errorf("destination written: %q, %d uploads", dst2.keys(), dst2.openUploads())
			}
		})
	}

	t.Run("per-part checksums", func(t *testing.T) {
		src := &partsFake{fakeStore: newFake("src"), partSums: map[string][]string{}}
		obj := src.addParts("k", data, sizes)
		off := 0
		for _, s := range sizes {
			sum := sha256.Sum256(data[off : off+s])
			src.partSums["k"] = append(src.partSums["k"], base64.StdEncoding.EncodeToString(sum[:]))
			off += s
		}
		dst := newFake("dst")
		res, err := New(src, dst, testOptions()).Copy(context.Background(), obj, "k")
		if err != nil || res.Verified != VerifiedPartSHA256 {
			t.Fatalf("verified %q, err %v", res.Verified, err)
		}
		checkCopied(t, dst, "k", data, obj)
	})

	t.Run("source changed", func(t *testing.T) {
		src := &partsFake{fakeStore: newFake("src"), changed: true}
		obj := src.addParts("k", data, sizes)
		dst := newFake("dst")
		_, err := New(src, dst, testOptions()).Copy(context.Background(), obj, "k")
		if err == nil || errors.Is(err, store.ErrChecksum) || !strings.Contains(err.Error(), "source changed") {
			t.Fatalf("err %v", err)
		}
		if dst.creates.Load() != 0 {
			t.Errorf("%d uploads created", dst.creates.Load())
		}
	})

	t.Run("layout that does not add up is unverified", func(t *testing.T) {
		src := &partsFake{fakeStore: newFake("src")}
		obj := src.addParts("k", data, sizes)
		src.sizes["k"] = []int{sizes[0], sizes[1], sizes[2], sizes[3] + 1}
		dst := newFake("dst")
		res, err := New(src, dst, testOptions()).Copy(context.Background(), obj, "k")
		if err != nil || res.Verified != Unverified {
			t.Fatalf("verified %q err %v", res.Verified, err)
		}
		opts := testOptions()
		opts.RequireVerified = true
		dst = newFake("dst")
		res, err = New(src, dst, opts).Copy(context.Background(), obj, "k")
		if !errors.Is(err, ErrUnverified) || res.Attempts != 1 || dst.creates.Load() != 0 || len(dst.keys()) != 0 {
			t.Fatalf("RequireVerified: attempts %d err %v, %d uploads", res.Attempts, err, dst.creates.Load())
		}
	})
}

// A resumed copy of a source that states no full-object CRC32C cannot check
// the parts an earlier run uploaded: with RequireVerified the upload is
// dropped and the object copied afresh, verified.
func TestResumeRequireVerified(t *testing.T) {
	sizes := []int{3 * testPart, 3*testPart + 5}
	data := testData(6*testPart+5, 10)
	src := &partsFake{fakeStore: newFake("src")}
	obj := src.addParts("k", data, sizes)
	dst := newFake("dst")
	r := newResumer()
	opts := testOptions()
	opts.Resumer = r
	// An earlier run uploaded part 1.
	id, err := dst.CreateMultipart(context.Background(), store.PutInput{Key: "k", PartSize: testPart})
	if err != nil {
		t.Fatal(err)
	}
	p1, err := dst.UploadPart(context.Background(), "k", id, 1, bytes.NewReader(data[:testPart]), testPart, crcOf(data[:testPart]))
	if err != nil {
		t.Fatal(err)
	}
	p1.Number, p1.Size = 1, testPart
	st := UploadState{UploadID: id, DstKey: "k", SrcKey: "k", SrcETag: obj.ETag, SrcSize: obj.Size, SrcModTime: obj.LastModified, PartSize: testPart, Parts: []store.Part{p1}}
	if err := r.Save(context.Background(), st); err != nil {
		t.Fatal(err)
	}

	// Without RequireVerified the copy resumes, unverified.
	res, err := New(src, dst, opts).Copy(context.Background(), obj, "k")
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedParts != 1 || res.Verified != Unverified {
		t.Errorf("resumed %d, verified %q; want 1, unverified", res.ResumedParts, res.Verified)
	}
	if o, ok := dst.get("k"); !ok || !bytes.Equal(o.data, data) {
		t.Fatal("resumed copy differs")
	}

	// With RequireVerified, the same state is dropped for a fresh copy.
	opts.RequireVerified = true
	dst2 := newFake("dst")
	id, _ = dst2.CreateMultipart(context.Background(), store.PutInput{Key: "k", PartSize: testPart})
	p1, _ = dst2.UploadPart(context.Background(), "k", id, 1, bytes.NewReader(data[:testPart]), testPart, crcOf(data[:testPart]))
	p1.Number, p1.Size = 1, testPart
	st.UploadID, st.Parts = id, []store.Part{p1}
	if err := r.Save(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	res, err = New(src, dst2, opts).Copy(context.Background(), obj, "k")
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedParts != 0 || res.Verified != VerifiedMultipartETag || dst2.aborts.Load() != 1 {
		t.Errorf("resumed %d, verified %q, aborts %d; want a fresh verified copy after aborting the old upload", res.ResumedParts, res.Verified, dst2.aborts.Load())
	}
	checkCopied(t, dst2, "k", data, obj)
}

// touchingSource changes the source file's mtime after it was opened, as a
// writer would.
type touchingSource struct {
	*local.Store
	path    string
	touched atomic.Bool
}

func (s *touchingSource) Open(ctx context.Context, key string, off, n int64) (io.ReadCloser, store.Attrs, error) {
	rc, a, err := s.Store.Open(ctx, key, off, n)
	if err == nil && !s.touched.Swap(true) {
		later := a.LastModified.Add(time.Second)
		os.Chtimes(s.path, later, later)
	}
	return rc, a, err
}

// TestLocalSourceVerified: a local source is read once, hashed as read: it
// is verified "local-read" (or by the CRC32C ferry stored with it), and a
// file that changes during the copy fails it.
func TestLocalSourceVerified(t *testing.T) {
	ctx := context.Background()
	srcDir := t.TempDir()
	src, err := local.Open(srcDir, local.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	for _, size := range []int{1000, 3*testPart + 5} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			data := testData(size, 12)
			key := fmt.Sprintf("f%d", size)
			if err := os.WriteFile(filepath.Join(srcDir, key), data, 0o644); err != nil {
				t.Fatal(err)
			}
			a, err := src.Stat(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			dst := newFake("dst")
			opts := testOptions()
			opts.RequireVerified = true
			res, err := New(src, dst, opts).Copy(ctx, a.Object, key)
			if err != nil || res.Verified != VerifiedLocalRead {
				t.Fatalf("verified %q err %v", res.Verified, err)
			}
			checkCopied(t, dst, key, data, a.Object)

			// A local copy ferry wrote states its CRC32C.
			dstDir := t.TempDir()
			ldst, err := local.Open(dstDir, local.Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer ldst.Close()
			if _, err := New(src, ldst, opts).Copy(ctx, a.Object, key); err != nil {
				t.Fatal(err)
			}
			la, err := ldst.Stat(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			res, err = New(ldst, newFake("dst"), opts).Copy(ctx, la.Object, key)
			if err != nil || (la.ChecksumCRC32C != "" && res.Verified != VerifiedCRC32C) {
				t.Fatalf("from a ferry-written file (crc32c %q): verified %q err %v", la.ChecksumCRC32C, res.Verified, err)
			}

			// Written to during the copy.
			ts := &touchingSource{Store: src, path: filepath.Join(srcDir, key)}
			opts.Attempts = 1
			dst = newFake("dst")
			_, err = New(ts, dst, opts).Copy(ctx, a.Object, key)
			if err == nil || !strings.Contains(err.Error(), "source changed") {
				t.Fatalf("file changed during the copy: err %v", err)
			}
			if len(dst.keys()) != 0 || dst.openUploads() != 0 {
				t.Errorf("destination written: %q", dst.keys())
			}
		})
	}
}
