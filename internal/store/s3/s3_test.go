package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/testenv"
)

// bucketSeq numbers the buckets tests create.
var bucketSeq atomic.Int32

// newBucket starts a plain MinIO for the test and creates a bucket on it.
func newBucket(t *testing.T) (*testenv.MinIO, string) {
	t.Helper()
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	name := fmt.Sprintf("bucket-%d", bucketSeq.Add(1))
	m.CreateBucket(t, name)
	return m, name
}

// openStore opens a Store on bucket of m with m's root credentials.
func openStore(t *testing.T, m *testenv.MinIO, bucket, prefix string) *Store {
	t.Helper()
	s, err := Open(t.Context(), Config{
		Bucket:      bucket,
		Prefix:      prefix,
		Endpoint:    m.Endpoint,
		CABundle:    m.CAFile,
		Credentials: credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func crc32c(b []byte) string {
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func md5sum(b []byte) string {
	s := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(s[:])
}

func put(t *testing.T, s *Store, key string, body []byte) store.PutResult {
	t.Helper()
	r, err := s.Put(t.Context(), store.PutInput{Key: key, Size: int64(len(body)), ChecksumCRC32C: crc32c(body)}, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("Put %q: %v", key, err)
	}
	return r
}

func read(t *testing.T, s *Store, key string, off, n int64) ([]byte, store.Attrs) {
	t.Helper()
	rc, a, err := s.Open(t.Context(), key, off, n)
	if err != nil {
		t.Fatalf("Open %q: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return b, a
}

func list(t *testing.T, s *Store, opts store.ListOptions) []store.Object {
	t.Helper()
	var objs []store.Object
	for o, err := range s.List(t.Context(), opts) {
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		objs = append(objs, o)
	}
	return objs
}

func keys(objs []store.Object) []string {
	ks := make([]string, len(objs))
	for i, o := range objs {
		ks[i] = o.Key
	}
	return ks
}

func TestS3(t *testing.T) {
	m, bucket := newBucket(t)
	// Each subtest gets its own prefix of the one bucket.
	sub := func(name string, f func(t *testing.T, s *Store)) {
		t.Run(name, func(t *testing.T) { f(t, openStore(t, m, bucket, name)) })
	}

	sub("prefix", func(t *testing.T, s *Store) {
		if s.Prefix() != "prefix/" || s.Bucket() != bucket || s.Endpoint() != m.Endpoint || s.String() != "s3://"+bucket+"/prefix/" {
			t.Errorf("Prefix %q Bucket %q Endpoint %q String %q", s.Prefix(), s.Bucket(), s.Endpoint(), s.String())
		}
		if err := s.CheckBucket(t.Context()); err != nil {
			t.Errorf("CheckBucket: %v", err)
		}
	})

	sub("list", func(t *testing.T, s *Store) {
		const n = 2050
		var want []string
		g, ctx := errgroup.WithContext(t.Context())
		g.SetLimit(16)
		for i := range n {
			k := fmt.Sprintf("d%d/k%05d", i%3, rand.IntN(1_000_000))
			if slices.Contains(want, k) {
				continue
			}
			want = append(want, k)
			g.Go(func() error {
				_, err := s.Put(ctx, store.PutInput{Key: k, Size: 1}, strings.NewReader("x"))
				return err
			})
		}
		// Outside the store's prefix: never listed.
		outside := openStore(t, m, bucket, "prefix-other")
		put(t, outside, "z", []byte("z"))
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		slices.Sort(want)

		got := list(t, s, store.ListOptions{})
		if !slices.Equal(keys(got), want) {
			t.Fatalf("List: %d keys, want %d (first %q)", len(got), len(want), keys(got)[:3])
		}
		for _, o := range got[:3] {
			if o.Size != 1 || len(o.ETag) != 32 || o.LastModified.IsZero() {
				t.Errorf("object %+v", o)
			}
		}
		after := want[1200]
		got = list(t, s, store.ListOptions{StartAfter: after})
		if !slices.Equal(keys(got), want[1201:]) {
			t.Errorf("StartAfter %q: %d keys, want %d", after, len(got), len(want)-1201)
		}
		got = list(t, s, store.ListOptions{Prefix: "d1/"})
		var d1 []string
		for _, k := range want {
			if strings.HasPrefix(k, "d1/") {
				d1 = append(d1, k)
			}
		}
		if !slices.Equal(keys(got), d1) {
			t.Errorf("Prefix d1/: %d keys, want %d", len(got), len(d1))
		}
		// Stopping early.
		i := 0
		for _, err := range s.List(t.Context(), store.ListOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			if i++; i == 5 {
				break
			}
		}
		// A cancelled context ends the listing with its error.
		ctx2, cancel := context.WithCancel(t.Context())
		cancel()
		var lastErr error
		for _, err := range s.List(ctx2, store.ListOptions{}) {
			lastErr = err
		}
		if !errors.Is(lastErr, context.Canceled) {
			t.Errorf("List with cancelled ctx: %v", lastErr)
		}
	})

	sub("tricky-keys", func(t *testing.T, s *Store) {
		// MinIO stores keys as paths: no segment may exceed 255 bytes.
		long := strings.Repeat(strings.Repeat("L", 199)+"/", 6)[:maxKeyLen-len(s.Prefix())]
		tricky := []string{
			"a b", "a+b", "a%2Bb", "100%", "x#y", "q?z=1&b=2", "tab\tkey", "new\nline", "ctl\x01\x1f",
			"uni/ñ日本語🎉", "dir/", "trailing space ", "<xml>&amp;", `quote"'`, "back\\slash", "~tilde!*()", long,
		}
		for _, k := range tricky {
			body := []byte("body of " + k)
			put(t, s, k, body)
			if k == "dir/" {
				continue
			}
			got, a := read(t, s, k, 0, -1)
			if !bytes.Equal(got, body) || a.Key != k {
				t.Errorf("Open %q = %q (key %q)", k, got, a.Key)
			}
		}
		got := keys(list(t, s, store.ListOptions{}))
		want := slices.Sorted(slices.Values(tricky))
		if !slices.Equal(got, want) {
			t.Errorf("List:\n got %q\nwant %q", got, want)
		}
		for _, k := range tricky {
			if _, err := s.Stat(t.Context(), k); err != nil {
				t.Errorf("Stat %q: %v", k, err)
			}
		}
		// Server-side copy source encoding.
		for _, k := range tricky[:len(tricky)-1] {
			if _, err := s.CopyFrom(t.Context(), s, k, store.PutInput{Key: "copy/" + k, Size: int64(len("body of " + k))}); err != nil {
				t.Errorf("CopyFrom %q: %v", k, err)
			}
		}
		if n := len(list(t, s, store.ListOptions{Prefix: "copy/"})); n != len(tricky)-1 {
			t.Errorf("%d copies, want %d", n, len(tricky)-1)
		}
		// Too long, invalid UTF-8.
		for _, k := range []string{long + "x", "bad\xffutf8", ""} {
			_, err := s.Put(t.Context(), store.PutInput{Key: k, Size: 1}, strings.NewReader("x"))
			if !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("Put %.20q: %v, want ErrInvalidKey", k, err)
			}
		}
	})

	sub("attrs", func(t *testing.T, s *Store) {
		body := []byte("attributes")
		in := store.PutInput{
			Key: "a", Size: int64(len(body)),
			ContentType: "text/x-ferry; charset=utf-8", ContentEncoding: "identity", ContentDisposition: `attachment; filename="a b.txt"`,
			ContentLanguage: "de-CH", CacheControl: "max-age=60, private", Expires: "Wed, 21 Oct 2037 07:28:00 GMT",
			Metadata:       map[string]string{"Mixed-Case": "Value With Spaces", "k2": "v2"},
			Tags:           map[string]string{"env": "prod", "with space": "a+b=c d/@:_.-", "empty": ""},
			ChecksumCRC32C: crc32c(body), ContentMD5: md5sum(body),
		}
		r, err := s.Put(t.Context(), in, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if r.ETag == "" || r.ChecksumCRC32C != crc32c(body) {
			t.Errorf("PutResult %+v", r)
		}
		wantMeta := map[string]string{"mixed-case": "Value With Spaces", "k2": "v2"}
		check := func(op string, a store.Attrs) {
			t.Helper()
			if a.Size != int64(len(body)) || a.ETag != r.ETag || a.ContentType != in.ContentType || a.ContentEncoding != in.ContentEncoding ||
				a.ContentDisposition != in.ContentDisposition || a.ContentLanguage != in.ContentLanguage ||
				a.CacheControl != in.CacheControl || a.Expires != in.Expires || !maps.Equal(a.Metadata, wantMeta) || a.TagCount != 3 {
				t.Errorf("%s: %+v", op, a)
			}
		}
		a, err := s.Stat(t.Context(), "a")
		if err != nil {
			t.Fatal(err)
		}
		check("Stat", a)
		if a.ChecksumCRC32C != crc32c(body) {
			t.Errorf("Stat ChecksumCRC32C %q, want %q", a.ChecksumCRC32C, crc32c(body))
		}
		got, a := read(t, s, "a", 2, 3)
		check("Open", a)
		if string(got) != "tri" {
			t.Errorf("Open(2, 3) = %q", got)
		}
		if got, _ := read(t, s, "a", 5, -1); string(got) != "butes" {
			t.Errorf("Open(5, -1) = %q", got)
		}
		if got, a := read(t, s, "a", int64(len(body)), -1); len(got) != 0 || a.Size != int64(len(body)) {
			t.Errorf("Open(size, -1) = %q, %+v", got, a)
		}
		if got, _ := read(t, s, "a", 0, 0); len(got) != 0 {
			t.Errorf("Open(0, 0) = %q", got)
		}
		tags, err := s.Tags(t.Context(), "a")
		if err != nil || !maps.Equal(tags, in.Tags) {
			t.Errorf("Tags = %v, %v; want %v", tags, err, in.Tags)
		}

		// No tags, no metadata.
		put(t, s, "plain", []byte("p"))
		a, err = s.Stat(t.Context(), "plain")
		if err != nil || a.TagCount != 0 || a.Metadata == nil || len(a.Metadata) != 0 {
			t.Errorf("Stat plain = %+v, %v", a, err)
		}
		if tags, err := s.Tags(t.Context(), "plain"); err != nil || tags == nil || len(tags) != 0 {
			t.Errorf("Tags plain = %v, %v", tags, err)
		}
		// Empty object.
		put(t, s, "empty", nil)
		if got, a := read(t, s, "empty", 0, -1); len(got) != 0 || a.Size != 0 {
			t.Errorf("empty = %q, %+v", got, a)
		}
	})

	sub("not-exist", func(t *testing.T, s *Store) {
		if _, err := s.Stat(t.Context(), "missing"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("Stat: %v", err)
		}
		if _, _, err := s.Open(t.Context(), "missing", 0, -1); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("Open: %v", err)
		} else if !strings.Contains(err.Error(), "s3://"+bucket+"/not-exist/missing") || !store.Permanent(err) {
			t.Errorf("Open error %q", err)
		}
		if _, err := s.Tags(t.Context(), "missing"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("Tags: %v", err)
		}
		if err := s.Delete(t.Context(), "missing"); err != nil {
			t.Errorf("Delete missing: %v", err)
		}
		put(t, s, "x", []byte("x"))
		if err := s.Delete(t.Context(), "x"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stat(t.Context(), "x"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("Stat after Delete: %v", err)
		}
	})

	sub("checksum", func(t *testing.T, s *Store) {
		body := []byte("the real body")
		for name, in := range map[string]store.PutInput{
			"crc32c": {Key: "bad-crc", Size: int64(len(body)), ChecksumCRC32C: crc32c([]byte("another body"))},
			"md5":    {Key: "bad-md5", Size: int64(len(body)), ContentMD5: md5sum([]byte("another body"))},
		} {
			_, err := s.Put(t.Context(), in, bytes.NewReader(body))
			if !errors.Is(err, store.ErrChecksum) {
				t.Errorf("%s: Put with wrong checksum: %v, want ErrChecksum", name, err)
			} else {
				t.Logf("%s: %v", name, err)
			}
			if store.Permanent(err) {
				t.Errorf("%s: checksum error is permanent", name)
			}
			if _, err := s.Stat(t.Context(), in.Key); !errors.Is(err, store.ErrNotExist) {
				t.Errorf("%s: Stat after rejected Put: %v", name, err)
			}
		}
		// A non-seekable body works too.
		r, err := s.Put(t.Context(), store.PutInput{Key: "stream", Size: int64(len(body)), ChecksumCRC32C: crc32c(body)},
			io.MultiReader(bytes.NewReader(body[:3]), bytes.NewReader(body[3:])))
		if err != nil || r.ChecksumCRC32C != crc32c(body) {
			t.Errorf("Put non-seekable = %+v, %v", r, err)
		}
		if objs := list(t, s, store.ListOptions{}); len(objs) != 1 {
			t.Errorf("listed %q", keys(objs))
		}
	})

	sub("multipart", func(t *testing.T, s *Store) {
		const partSize = 5 << 20
		body := make([]byte, 2*partSize+12345)
		for i := range body {
			body[i] = byte(i * 7 / 3)
		}
		in := store.PutInput{Key: "big", Size: int64(len(body)), PartSize: partSize, ContentType: "application/x-big",
			Metadata: map[string]string{"m": "1"}, Tags: map[string]string{"t": "2"}}
		id, err := s.CreateMultipart(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		var parts []store.Part
		for n, off := int32(1), 0; off < len(body); n, off = n+1, off+partSize {
			p := body[off:min(off+partSize, len(body))]
			part, err := s.UploadPart(t.Context(), "big", id, n, bytes.NewReader(p), int64(len(p)), crc32c(p))
			if err != nil {
				t.Fatalf("UploadPart %d: %v", n, err)
			}
			if part.ChecksumCRC32C != crc32c(p) || part.ETag == "" || part.Size != int64(len(p)) {
				t.Errorf("part %+v", part)
			}
			parts = append(parts, part)
		}
		// A part with the wrong checksum is rejected.
		if _, err := s.UploadPart(t.Context(), "big", id, 4, bytes.NewReader(body[:10]), 10, crc32c(body[:9])); !errors.Is(err, store.ErrChecksum) {
			t.Errorf("UploadPart with wrong CRC32C: %v", err)
		}
		if _, err := s.Stat(t.Context(), "big"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("Stat before Complete: %v", err)
		}
		r, err := s.CompleteMultipart(t.Context(), "big", id, parts)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("complete: %+v", r)
		got, a := read(t, s, "big", 0, -1)
		if !bytes.Equal(got, body) {
			t.Fatal("multipart body differs")
		}
		if a.ContentType != in.ContentType || a.Metadata["m"] != "1" || a.TagCount != 1 {
			t.Errorf("attrs %+v", a)
		}
		st, err := s.Stat(t.Context(), "big")
		if err != nil {
			t.Fatal(err)
		}
		if st.ChecksumCRC32C != "" && st.ChecksumCRC32C != crc32c(body) {
			t.Errorf("Stat ChecksumCRC32C %q, want %q or none", st.ChecksumCRC32C, crc32c(body))
		}
		t.Logf("multipart Stat ChecksumCRC32C %q (full-object %q)", st.ChecksumCRC32C, crc32c(body))

		// Abort leaves nothing.
		id, err = s.CreateMultipart(t.Context(), store.PutInput{Key: "aborted", Size: 10, PartSize: partSize})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.UploadPart(t.Context(), "aborted", id, 1, bytes.NewReader(body[:10]), 10, crc32c(body[:10])); err != nil {
			t.Fatal(err)
		}
		var ups []Upload
		// MinIO lists the uploads of one object only: the prefix must be a key.
		for u, err := range s.ListMultipartUploads(t.Context(), "aborted") {
			if err != nil {
				t.Fatal(err)
			}
			ups = append(ups, u)
		}
		if len(ups) != 1 || ups[0].Key != "aborted" || ups[0].UploadID != id || ups[0].Initiated.IsZero() {
			t.Errorf("ListMultipartUploads = %+v", ups)
		}
		if err := s.AbortMultipart(t.Context(), "aborted", id); err != nil {
			t.Fatal(err)
		}
		if err := s.AbortMultipart(t.Context(), "aborted", id); err != nil {
			t.Errorf("second Abort: %v", err)
		}
		for u, err := range s.ListMultipartUploads(t.Context(), "aborted") {
			t.Errorf("after Abort: upload %+v, %v", u, err)
		}
		if _, err := s.Stat(t.Context(), "aborted"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("Stat aborted: %v", err)
		}
	})

	sub("copy", func(t *testing.T, s *Store) {
		body := []byte("copy me on the server")
		_, err := s.Put(t.Context(), store.PutInput{Key: "src", Size: int64(len(body)), ContentType: "text/old",
			Metadata: map[string]string{"old": "1"}, Tags: map[string]string{"tag": "kept"}, ChecksumCRC32C: crc32c(body)}, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		other := openStore(t, m, bucket, "copy-dst")
		if !other.CanCopyFrom(s) || !s.CanCopyFrom(s) {
			t.Error("CanCopyFrom same server = false")
		}
		foreign, err := Open(t.Context(), Config{Bucket: bucket, Endpoint: m.Endpoint,
			Credentials: credentials.NewStaticCredentialsProvider("someone-else", m.SecretKey, "")})
		if err != nil {
			t.Fatal(err)
		}
		if other.CanCopyFrom(foreign) || foreign.CanCopyFrom(other) {
			t.Error("CanCopyFrom with other credentials = true")
		}
		in := store.PutInput{Key: "dst", Size: int64(len(body)), ContentType: "text/new", CacheControl: "no-cache",
			Metadata: map[string]string{"new": "2"}}
		r, err := other.CopyFrom(t.Context(), s, "src", in)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("copy result %+v", r)
		got, a := read(t, other, "dst", 0, -1)
		if !bytes.Equal(got, body) || a.ContentType != "text/new" || a.CacheControl != "no-cache" ||
			!maps.Equal(a.Metadata, map[string]string{"new": "2"}) {
			t.Errorf("copy: %q %+v", got, a)
		}
		if tags, err := other.Tags(t.Context(), "dst"); err != nil || !maps.Equal(tags, map[string]string{"tag": "kept"}) {
			t.Errorf("copy tags = %v, %v", tags, err)
		}
		if _, err := other.CopyFrom(t.Context(), s, "missing", store.PutInput{Key: "x", Size: 1}); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("copy missing: %v", err)
		}

		// Above the threshold: in parts.
		big := make([]byte, 11<<20+5)
		for i := range big {
			big[i] = byte(i % 251)
		}
		id, err := s.CreateMultipart(t.Context(), store.PutInput{Key: "bigsrc", Size: int64(len(big)), Tags: map[string]string{"a": "b", "c": "d"}})
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.UploadPart(t.Context(), "bigsrc", id, 1, bytes.NewReader(big), int64(len(big)), crc32c(big))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CompleteMultipart(t.Context(), "bigsrc", id, []store.Part{p}); err != nil {
			t.Fatal(err)
		}
		other.copyPartThreshold, other.copyPartSize = 5<<20, 5<<20
		in = store.PutInput{Key: "bigdst", Size: int64(len(big)), ContentType: "application/x-parts", Metadata: map[string]string{"x": "y"}}
		if _, err := other.CopyFrom(t.Context(), s, "bigsrc", in); err != nil {
			t.Fatal(err)
		}
		got, a = read(t, other, "bigdst", 0, -1)
		if !bytes.Equal(got, big) || a.ContentType != in.ContentType || !maps.Equal(a.Metadata, in.Metadata) {
			t.Errorf("multipart copy: equal %v, %+v", bytes.Equal(got, big), a)
		}
		if tags, err := other.Tags(t.Context(), "bigdst"); err != nil || !maps.Equal(tags, map[string]string{"a": "b", "c": "d"}) {
			t.Errorf("multipart copy tags = %v, %v", tags, err)
		}
		// A failed multipart copy (size beyond the source) is aborted.
		in.Key, in.Size = "bigfail", int64(len(big))+(10<<20)
		if _, err := other.CopyFrom(t.Context(), s, "bigsrc", in); err == nil {
			t.Error("copy past the end of the source succeeded")
		}
		for u, err := range other.ListMultipartUploads(t.Context(), "bigfail") {
			t.Errorf("after failed copy: upload %+v, %v", u, err)
		}
	})

	t.Run("no-bucket", func(t *testing.T) {
		s := openStore(t, m, "no-such-bucket", "")
		if err := s.CheckBucket(t.Context()); !errors.Is(err, store.ErrBucketNotExist) {
			t.Errorf("CheckBucket: %v", err)
		}
		for _, err := range s.List(t.Context(), store.ListOptions{}) {
			if !errors.Is(err, store.ErrBucketNotExist) {
				t.Errorf("List: %v", err)
			}
		}
		if _, err := s.Put(t.Context(), store.PutInput{Key: "k", Size: 1}, strings.NewReader("x")); !errors.Is(err, store.ErrBucketNotExist) {
			t.Errorf("Put: %v", err)
		}
		if _, err := s.CreateMultipart(t.Context(), store.PutInput{Key: "k"}); !errors.Is(err, store.ErrBucketNotExist) {
			t.Errorf("CreateMultipart: %v", err)
		}
	})

	t.Run("wrong-secret", func(t *testing.T) {
		const secret = "not-the-secret-key-1234"
		for _, ak := range []string{m.AccessKey, "unknown-access-key"} {
			s, err := Open(t.Context(), Config{Bucket: bucket, Endpoint: m.Endpoint,
				Credentials: credentials.NewStaticCredentialsProvider(ak, secret, "")})
			if err != nil {
				t.Fatal(err)
			}
			errs := map[string]error{"CheckBucket": s.CheckBucket(t.Context())}
			_, errs["Put"] = s.Put(t.Context(), store.PutInput{Key: "k", Size: 1}, strings.NewReader("x"))
			_, errs["Stat"] = s.Stat(t.Context(), "k")
			for _, err := range s.List(t.Context(), store.ListOptions{}) {
				errs["List"] = err
			}
			for op, err := range errs {
				if !errors.Is(err, store.ErrAccess) || !store.Permanent(err) {
					t.Errorf("%s with access key %s: %v, want ErrAccess", op, ak, err)
				}
				if err != nil && strings.Contains(err.Error(), secret) {
					t.Errorf("%s: error contains the secret: %v", op, err)
				}
			}
		}
	})
}

func TestTLS(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{TLS: true})
	m.CreateBucket(t, "tls")

	s := openStore(t, m, "tls", "p")
	put(t, s, "k", []byte("over TLS"))
	if got, _ := read(t, s, "k", 0, -1); string(got) != "over TLS" {
		t.Errorf("read %q", got)
	}

	// The checksum travels as a header (no aws-chunked trailer, which some
	// servers reject), and the server checks it over TLS too.
	type request struct {
		h      http.Header
		length int64
	}
	var sent []request
	var mu sync.Mutex
	opts := s.client.Options()
	opts.APIOptions = append(opts.APIOptions, func(st *middleware.Stack) error {
		return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("record", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			if req, ok := in.Request.(*smithyhttp.Request); ok {
				mu.Lock()
				sent = append(sent, request{req.Header.Clone(), req.ContentLength})
				mu.Unlock()
			}
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
	})
	s.client = s3.New(opts)
	body := []byte("checked over TLS")
	put(t, s, "crc", body)
	_, err := s.Put(t.Context(), store.PutInput{Key: "bad", Size: int64(len(body)), ChecksumCRC32C: crc32c([]byte("other"))}, bytes.NewReader(body))
	if !errors.Is(err, store.ErrChecksum) {
		t.Errorf("Put with wrong CRC32C over TLS: %v", err)
	}
	if len(sent) != 2 {
		t.Fatalf("%d requests recorded", len(sent))
	}
	for _, r := range sent {
		if h := r.h; h.Get("X-Amz-Checksum-Crc32c") == "" || h.Get("X-Amz-Trailer") != "" || h.Get("Content-Encoding") != "" ||
			h.Get("X-Amz-Content-Sha256") != "UNSIGNED-PAYLOAD" || r.length != int64(len(body)) {
			t.Errorf("PutObject: length %d, headers %v", r.length, h)
		}
	}

	noCA, err := Open(t.Context(), Config{Bucket: "tls", Endpoint: m.Endpoint, RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	err = noCA.CheckBucket(t.Context())
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("CheckBucket without the CA: %v, want a certificate error", err)
	}
}

// TestProfile opens stores by shared config profile only: endpoint, region,
// CA bundle and keys all come from the files.
func TestProfile(t *testing.T) {
	plain := testenv.StartMinIO(t, testenv.MinIOOptions{})
	secure := testenv.StartMinIO(t, testenv.MinIOOptions{TLS: true})
	plain.CreateBucket(t, "src")
	secure.CreateBucket(t, "dst")
	creds, conf := testenv.WriteCredentialsFile(t, map[string]*testenv.MinIO{"src": plain, "dst": secure})
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	t.Setenv("AWS_CONFIG_FILE", conf)
	for _, env := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_CA_BUNDLE"} {
		t.Setenv(env, "")
	}

	src, err := Open(t.Context(), Config{Bucket: "src", Profile: "src"})
	if err != nil {
		t.Fatal(err)
	}
	dst, err := Open(t.Context(), Config{Bucket: "dst", Profile: "dst"})
	if err != nil {
		t.Fatal(err)
	}
	if src.Endpoint() != plain.Endpoint || dst.Endpoint() != secure.Endpoint || dst.Region() != "us-east-1" {
		t.Errorf("endpoints %q %q region %q", src.Endpoint(), dst.Endpoint(), dst.Region())
	}
	put(t, src, "k", []byte("via profile"))
	put(t, dst, "k", []byte("via profile over TLS"))
	if src.CanCopyFrom(dst) || dst.CanCopyFrom(src) {
		t.Error("CanCopyFrom across servers = true")
	}
	out, err := secure.Client().HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String("dst"), Key: aws.String("k")})
	if err != nil || aws.ToInt64(out.ContentLength) != int64(len("via profile over TLS")) {
		t.Errorf("HeadObject = %v", err)
	}
}

func TestCopyPartSize(t *testing.T) {
	for _, tc := range []struct {
		size, want int64
	}{
		{5<<30 + 1, 64 << 20},
		{640 << 30, 66 << 20},
		{5 << 40, 525 << 20},
	} {
		got := copyPartSizeFor(tc.size)
		if got != tc.want || (tc.size+got-1)/got > maxParts {
			t.Errorf("copyPartSizeFor(%d) = %d, want %d", tc.size, got, tc.want)
		}
	}
}

func TestSafeListPrefix(t *testing.T) {
	for p, want := range map[string]string{
		"": "", "a": "a", "a/b": "a/b", ".": "", "..": "", ".a": ".a", "a/.": "a/", "a/../b": "a/", "a/./": "a/", "a/.b/..c": "a/.b/..c", "/.": "/",
	} {
		if got := safeListPrefix(p); got != want {
			t.Errorf("safeListPrefix(%q) = %q, want %q", p, got, want)
		}
	}
}

func TestCopySource(t *testing.T) {
	if got, want := copySource("b", "a b/c+d%e?f#g&h=i~j_k.l-m/ü"), "b/a%20b/c%2Bd%25e%3Ff%23g%26h%3Di~j_k.l-m/%C3%BC"; got != want {
		t.Errorf("copySource = %q, want %q", got, want)
	}
}
