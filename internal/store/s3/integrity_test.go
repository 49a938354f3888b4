package s3

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/testenv"
)

func TestParseContentRange(t *testing.T) {
	for _, tt := range []struct {
		in           string
		first, total int64
		ok           bool
	}{
		{"bytes 0-99/1234", 0, 1234, true},
		{"bytes 5242880-10485759/11534336", 5242880, 11534336, true},
		{"bytes 0-0/1", 0, 1, true},
		{"bytes 10-9/20", 0, 0, false},
		{"bytes 0-99/99", 0, 0, false},
		{"bytes */1234", 0, 0, false},
		{"0-99/1234", 0, 0, false},
		{"bytes -1-99/1234", 0, 0, false},
		{"", 0, 0, false},
	} {
		first, total, ok := parseContentRange(tt.in)
		if first != tt.first || total != tt.total || ok != tt.ok {
			t.Errorf("parseContentRange(%q) = %d, %d, %v", tt.in, first, total, ok)
		}
	}
}

// TestStatPart learns the part layout of an object uploaded in parts, and
// reads whole objects with their checksums checked.
func TestStatPart(t *testing.T) {
	m, bucket := newBucket(t)
	s := openStore(t, m, bucket, "p")
	ctx := t.Context()
	const mib = 1 << 20
	data := bytes.Repeat([]byte("0123456789abcdef"), (11*mib+3)/16+1)[:11*mib+3]
	sizes := []int64{5 * mib, 5 * mib, mib + 3}
	id, err := s.CreateMultipart(ctx, store.PutInput{Key: "mp"})
	if err != nil {
		t.Fatal(err)
	}
	var parts []store.Part
	var off int64
	for i, n := range sizes {
		b := data[off : off+n]
		p, err := s.UploadPart(ctx, "mp", id, int32(i+1), bytes.NewReader(b), n, crc32c(b))
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
		off += n
	}
	res, err := s.CompleteMultipart(ctx, "mp", id, parts)
	if err != nil {
		t.Fatal(err)
	}
	off = 0
	for i, n := range sizes {
		p, err := s.StatPart(ctx, "mp", int32(i+1))
		if err != nil {
			t.Fatal(err)
		}
		if p.Number != int32(i+1) || p.Offset != off || p.Size != n || p.Count != 3 ||
			p.Object.Size != int64(len(data)) || p.Object.ETag != res.ETag || p.Object.Key != "mp" {
			t.Errorf("part %d: %+v", i+1, p)
		}
		if p.ChecksumCRC32C != crc32c(data[off:off+n]) {
			t.Errorf("part %d crc32c %q, want %q", i+1, p.ChecksumCRC32C, crc32c(data[off:off+n]))
		}
		off += n
	}
	a, err := s.Stat(ctx, "mp")
	if err != nil || a.ChecksumCRC32C != crc32c(data) {
		t.Errorf("Stat: crc32c %q, %v", a.ChecksumCRC32C, err)
	}

	put(t, s, "one", []byte("hello"))
	p, err := s.StatPart(ctx, "one", 1)
	if err != nil || p.Count != 0 || p.Offset != 0 || p.Size != 5 || p.Object.Size != 5 {
		t.Errorf("single-part object: %+v, %v", p, err)
	}
	if _, err := s.StatPart(ctx, "missing", 1); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
	if _, err := s.StatPart(ctx, "one", 0); err == nil {
		t.Error("part 0: no error")
	}

	// A whole-object GET states the checksum, and a body that does not
	// match it fails with store.ErrChecksum.
	proxy := testenv.StartFaultProxy(t, m.Endpoint, nil)
	ps, err := Open(ctx, Config{Bucket: bucket, Prefix: "p", Endpoint: proxy.URL,
		Credentials: credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	proxy.SetFaults(func(r *http.Request) testenv.Fault {
		if r.Method == http.MethodGet && r.Header.Get("Range") == "" {
			return testenv.Fault{Flip: true, At: 0.5}
		}
		return testenv.Fault{}
	})
	rc, a, err := ps.Open(ctx, "mp", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, rc)
	rc.Close()
	if a.ChecksumCRC32C != crc32c(data) || !errors.Is(err, store.ErrChecksum) {
		t.Errorf("flipped body: crc32c %q, err %v; want ErrChecksum", a.ChecksumCRC32C, err)
	}
}
