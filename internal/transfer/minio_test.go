package transfer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ferry-dev/ferry/internal/store"
	s3store "github.com/ferry-dev/ferry/internal/store/s3"
	"github.com/ferry-dev/ferry/internal/testenv"
)

func openS3(t *testing.T, m *testenv.MinIO, creds aws.CredentialsProvider, bucket, prefix string) *s3store.Store {
	t.Helper()
	s, err := s3store.Open(t.Context(), s3store.Config{
		Bucket: bucket, Prefix: prefix, Endpoint: m.Endpoint, CABundle: m.CAFile, Credentials: creds,
	})
	if err != nil {
		t.Fatalf("open s3: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func putS3(t *testing.T, s store.Store, key string, data []byte, in store.PutInput) store.Object {
	t.Helper()
	in.Key, in.Size, in.ChecksumCRC32C = key, int64(len(data)), crcOf(data)
	if _, err := s.Put(t.Context(), in, bytes.NewReader(data)); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	a, err := s.Stat(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	return a.Object
}

func readS3(t *testing.T, s store.Store, key string) ([]byte, store.Attrs) {
	t.Helper()
	rc, a, err := s.Open(t.Context(), key, 0, -1)
	if err != nil {
		t.Fatalf("open %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b, a
}

// corrupting damages the bytes between ferry and the server, after ferry
// computed their checksums: the server must reject them.
type corrupting struct{ *s3store.Store }

func flip(r io.Reader) *bytes.Reader {
	b, _ := io.ReadAll(r)
	if len(b) > 0 {
		b[len(b)/2] ^= 0x40
	}
	return bytes.NewReader(b)
}

func (c corrupting) Put(ctx context.Context, in store.PutInput, body io.Reader) (store.PutResult, error) {
	return c.Store.Put(ctx, in, flip(body))
}

func (c corrupting) UploadPart(ctx context.Context, key, id string, n int32, body io.ReadSeeker, size int64, crc string) (store.Part, error) {
	if n == 2 {
		body = flip(body)
	}
	return c.Store.UploadPart(ctx, key, id, n, body, size, crc)
}

// TestMinIO copies between two real MinIO servers, one with TLS, and
// server-side within one.
func TestMinIO(t *testing.T) {
	plainSrv := testenv.StartMinIO(t, testenv.MinIOOptions{})
	tlsSrv := testenv.StartMinIO(t, testenv.MinIOOptions{TLS: true})
	plainSrv.CreateBucket(t, "src")
	tlsSrv.CreateBucket(t, "dst")
	plainCreds := credentials.NewStaticCredentialsProvider(plainSrv.AccessKey, plainSrv.SecretKey, "")
	tlsCreds := credentials.NewStaticCredentialsProvider(tlsSrv.AccessKey, tlsSrv.SecretKey, "")
	src := openS3(t, plainSrv, plainCreds, "src", "in")
	dst := openS3(t, tlsSrv, tlsCreds, "dst", "out")
	const mib = 1 << 20
	opts := Options{PartSize: 5 * mib, RetryDelay: 10 * time.Millisecond, MemoryLimit: 64 * mib}

	small := testData(1000, 1)
	big := testData(40*mib+123, 2)
	attrs := store.PutInput{
		ContentType: "text/plain", CacheControl: "no-cache", ContentDisposition: "inline",
		Metadata: map[string]string{"owner": "alice"}, Tags: map[string]string{"team": "x"},
	}
	objs := map[string]store.Object{
		"small.txt": putS3(t, src, "small.txt", small, attrs),
		"big.bin":   putS3(t, src, "big.bin", big, attrs),
		"photos/":   putS3(t, src, "photos/", nil, store.PutInput{}),
	}
	datas := map[string][]byte{"small.txt": small, "big.bin": big, "photos/": {}}

	for _, tt := range []struct{ key, method string }{
		{"small.txt", MethodPut},
		{"big.bin", MethodMultipart},
		{"photos/", MethodPut},
	} {
		t.Run("stream "+tt.key, func(t *testing.T) {
			e := New(src, dst, opts)
			obj := objs[tt.key]
			res, err := e.Copy(t.Context(), obj, tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if res.Method != tt.method || res.CRC32C != crcOf(datas[tt.key]) || !res.MD5Verified {
				t.Errorf("result %+v", res)
			}
			got, a := readS3(t, dst, tt.key)
			if !bytes.Equal(got, datas[tt.key]) {
				t.Fatalf("destination bytes differ")
			}
			p, ok := ParseProvenance(a.Metadata)
			if !ok || p.SrcETag != obj.ETag || p.SrcSize != obj.Size || !p.SrcModTime.Equal(obj.LastModified) {
				t.Errorf("provenance %+v from %v, source %+v", p, a.Metadata, obj)
			}
			if tt.key != "photos/" {
				if a.ContentType != "text/plain" || a.CacheControl != "no-cache" || a.ContentDisposition != "inline" || a.Metadata["owner"] != "alice" {
					t.Errorf("attributes not preserved: %+v", a)
				}
				tags, err := dst.Tags(t.Context(), tt.key)
				if err != nil || !maps.Equal(tags, attrs.Tags) {
					t.Errorf("tags %v, %v", tags, err)
				}
			}
			dobj, err := dst.Stat(t.Context(), tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := e.UpToDate(t.Context(), obj, dobj.Object); err != nil || !ok {
				t.Errorf("UpToDate after copy = %v, %v", ok, err)
			}
			if m, err := e.Verify(t.Context(), obj, dobj.Object); err != nil || m != "" {
				t.Errorf("Verify = %q, %v", m, err)
			}
		})
	}

	t.Run("server copy", func(t *testing.T) {
		dst2 := openS3(t, plainSrv, plainCreds, "src", "copy")
		e := New(src, dst2, opts)
		obj := objs["small.txt"]
		res, err := e.Copy(t.Context(), obj, "small.txt")
		if err != nil {
			t.Fatal(err)
		}
		if res.Method != MethodServerCopy || !res.MD5Verified || res.Verified != VerifiedMD5 || res.DstETag != obj.ETag || res.SrcETag != obj.ETag {
			t.Errorf("result %+v", res)
		}
		// Verbatim: one CopyObject, the server kept the content headers,
		// metadata and tags; the ETag, not metadata, is the provenance.
		got, a := readS3(t, dst2, "small.txt")
		if !bytes.Equal(got, small) || a.Metadata["owner"] != "alice" || a.ContentType != "text/plain" ||
			a.CacheControl != "no-cache" || a.ContentDisposition != "inline" || a.ETag != obj.ETag {
			t.Errorf("copy %q %+v", got[:min(len(got), 20)], a)
		}
		if _, ok := a.Metadata[MetaSrcETag]; ok {
			t.Errorf("verbatim copy wrote provenance metadata: %v", a.Metadata)
		}
		if tags, err := dst2.Tags(t.Context(), "small.txt"); err != nil || tags["team"] != "x" {
			t.Errorf("tags %v, %v", tags, err)
		}
		// What sync and verify conclude from it: up to date, same bytes.
		if ok, err := e.UpToDate(t.Context(), obj, store.Object{Key: "small.txt"}); err != nil || !ok {
			t.Errorf("UpToDate after verbatim copy = %v, %v", ok, err)
		}
		if m, err := e.Verify(t.Context(), obj, a.Object); err != nil || m != "" {
			t.Errorf("Verify = %q, %v", m, err)
		}
	})

	t.Run("server copy of a source changed since listed", func(t *testing.T) {
		// The listing saw v1; the source is v2 when the copy runs. The
		// conditional verbatim copy fails (412), the general path (HEAD,
		// REPLACE copy) copies v2 and records it in provenance.
		from := openS3(t, plainSrv, plainCreds, "src", "changing")
		to := openS3(t, plainSrv, plainCreds, "src", "changed-copy")
		v1 := putS3(t, from, "k", []byte("version one"), attrs)
		v2 := putS3(t, from, "k", []byte("version two!"), attrs)
		e := New(from, to, opts)
		res, err := e.Copy(t.Context(), v1, "k")
		if err != nil {
			t.Fatal(err)
		}
		if res.Method != MethodServerCopy || res.SrcETag != v2.ETag {
			t.Errorf("result %+v, want source etag %s", res, v2.ETag)
		}
		got, a := readS3(t, to, "k")
		if string(got) != "version two!" || a.Metadata[MetaSrcETag] != v2.ETag || a.Metadata["owner"] != "alice" {
			t.Errorf("copy %q %v", got, a.Metadata)
		}
		// A sync listing v1 against this destination must not call it up
		// to date.
		if ok, err := e.UpToDate(t.Context(), v1, store.Object{Key: "k"}); err != nil || ok {
			t.Errorf("UpToDate(v1) = %v, %v; want false", ok, err)
		}
	})

	t.Run("server copy of multipart object", func(t *testing.T) {
		// big.bin at dst was uploaded in parts: its ETag is not an MD5, the
		// full-object CRC32C verifies the copy.
		from := openS3(t, tlsSrv, tlsCreds, "dst", "out")
		to := openS3(t, tlsSrv, tlsCreds, "dst", "copy")
		a, err := from.Stat(t.Context(), "big.bin")
		if err != nil {
			t.Fatal(err)
		}
		if isPlainMD5(a.ETag) || a.ChecksumCRC32C != crcOf(big) {
			t.Skipf("server did not keep a full-object CRC32C (etag %q, crc %q)", a.ETag, a.ChecksumCRC32C)
		}
		res, err := New(from, to, opts).Copy(t.Context(), a.Object, "big.bin")
		if err != nil {
			t.Fatal(err)
		}
		if res.Method != MethodServerCopy || res.CRC32C != crcOf(big) {
			t.Errorf("result %+v", res)
		}
		if got, _ := readS3(t, to, "big.bin"); !bytes.Equal(got, big) {
			t.Errorf("copy differs")
		}
	})

	for _, key := range []string{"small.txt", "big.bin"} {
		t.Run("server rejects damaged bytes "+key, func(t *testing.T) {
			bad := corrupting{openS3(t, tlsSrv, tlsCreds, "dst", "bad")}
			o := opts
			o.Attempts = 2
			res, err := New(src, bad, o).Copy(t.Context(), objs[key], key)
			if !errors.Is(err, store.ErrChecksum) {
				t.Fatalf("err = %v, want ErrChecksum", err)
			}
			if res.Attempts != 2 {
				t.Errorf("attempts %d, want 2", res.Attempts)
			}
			if _, err := bad.Stat(t.Context(), key); !errors.Is(err, store.ErrNotExist) {
				t.Errorf("damaged object visible: %v", err)
			}
			for u, err := range bad.ListMultipartUploads(t.Context(), "") {
				t.Errorf("upload left behind: %+v %v", u, err)
			}
		})
	}
}

// countingParts counts UploadPart calls and runs after (when set) after each
// one that succeeded.
type countingParts struct {
	*s3store.Store
	parts atomic.Int32
	after func(ok int32)
	ok    atomic.Int32
}

func (c *countingParts) UploadPart(ctx context.Context, key, id string, n int32, body io.ReadSeeker, size int64, crc string) (store.Part, error) {
	c.parts.Add(1)
	p, err := c.Store.UploadPart(ctx, key, id, n, body, size, crc)
	if err == nil && c.after != nil {
		c.after(c.ok.Add(1))
	}
	return p, err
}

// TestMinIOResume drains a multipart copy after a few parts, then resumes
// it with a new Engine, as a restarted worker would.
func TestMinIOResume(t *testing.T) {
	srv := testenv.StartMinIO(t, testenv.MinIOOptions{})
	srv.CreateBucket(t, "src")
	srv.CreateBucket(t, "dst")
	creds := credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, "")
	src := openS3(t, srv, creds, "src", "")
	const mib = 1 << 20
	data := testData(40*mib, 3) // 8 parts of 5 MiB
	obj := putS3(t, src, "big.bin", data, store.PutInput{Metadata: map[string]string{"owner": "bob"}})
	r := newResumer()
	opts := Options{PartSize: 5 * mib, PartConcurrency: 2, MemoryLimit: 64 * mib, RetryDelay: 10 * time.Millisecond,
		DisableServerSideCopy: true, Resumer: r}

	// First run: drained once three parts are in.
	dst1 := &countingParts{Store: openS3(t, srv, creds, "dst", "out")}
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	dst1.after = func(ok int32) {
		if ok == 3 {
			cancel(ErrDrain)
		}
	}
	// The error is the cancellation, or its cause when a body read reports it.
	if _, err := New(src, dst1, opts).Copy(ctx, obj, "big.bin"); !errors.Is(err, context.Canceled) && !errors.Is(err, ErrDrain) {
		t.Fatalf("drained copy: %v", err)
	}
	st, ok, _ := r.get("big.bin")
	if !ok || len(st.Parts) < 3 || len(st.Parts) >= 8 {
		t.Fatalf("state %v: %+v", ok, st)
	}
	var ids []string
	for u, err := range dst1.ListMultipartUploads(t.Context(), "big.bin") {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.UploadID)
	}
	if !slices.Equal(ids, []string{st.UploadID}) {
		t.Fatalf("uploads %v, state records %q", ids, st.UploadID)
	}
	if _, err := dst1.Stat(t.Context(), "big.bin"); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("object visible after drain: %v", err)
	}

	// Second run: a new Engine and store client, the same records.
	dst2 := &countingParts{Store: openS3(t, srv, creds, "dst", "out")}
	res, err := New(src, dst2, opts).Copy(t.Context(), obj, "big.bin")
	if err != nil {
		t.Fatal(err)
	}
	missing := int32(8 - len(st.Parts))
	if got := dst2.parts.Load(); got != missing {
		t.Errorf("resumed run made %d UploadPart calls, want %d", got, missing)
	}
	if res.ResumedParts != len(st.Parts) || res.CRC32C != crcOf(data) || res.Method != MethodMultipart {
		t.Errorf("result %+v", res)
	}
	got, a := readS3(t, dst2, "big.bin")
	if !bytes.Equal(got, data) {
		t.Fatal("destination bytes differ")
	}
	if p, ok := ParseProvenance(a.Metadata); !ok || p.SrcETag != obj.ETag || a.Metadata["owner"] != "bob" {
		t.Errorf("metadata %v", a.Metadata)
	}
	t.Logf("resumed %d of 8 parts in %v; destination crc32c %q", res.ResumedParts, res.Duration, a.ChecksumCRC32C)
	for u, err := range dst2.ListMultipartUploads(t.Context(), "big.bin") {
		t.Errorf("upload left behind: %+v, %v", u, err)
	}
	if r.len() != 0 {
		t.Errorf("%d states left", r.len())
	}
}
