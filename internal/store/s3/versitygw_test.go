package s3

import (
	"bytes"
	"fmt"
	"maps"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/storetest"
	"github.com/ferry-dev/ferry/internal/testenv"
)

// The tests below run against Versity Gateway (posix backend), installed by
// scripts/install-tools.sh; they are skipped when it is missing, except on
// CI.

// openVersity opens a Store on bucket of v with v's root credentials.
func openVersity(t *testing.T, v *testenv.VersityGW, bucket, prefix string) *Store {
	t.Helper()
	s, err := Open(t.Context(), Config{
		Bucket:      bucket,
		Prefix:      prefix,
		Endpoint:    v.Endpoint,
		Region:      v.Region,
		Credentials: credentials.NewStaticCredentialsProvider(v.AccessKey, v.SecretKey, ""),
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestVersityGWConformance runs the conformance suites on Versity Gateway,
// each subtest in its own bucket.
func TestVersityGWConformance(t *testing.T) {
	v := testenv.StartVersityGW(t)
	requireFastPath(t)
	n := 0
	newStore := func(t *testing.T) store.Store {
		n++
		bucket := fmt.Sprintf("conformance-%d", n)
		v.CreateBucket(t, bucket)
		return openVersity(t, v, bucket, "")
	}
	t.Run("Run", func(t *testing.T) { storetest.Run(t, newStore, storetest.Options{}) })
	t.Run("RunLevel", func(t *testing.T) { storetest.RunLevel(t, newStore, storetest.Options{}) })
}

// TestVersityGWListEncoding lists keys whose URL encoding is ambiguous from
// Versity Gateway, which ignores encoding-type=url.
func TestVersityGWListEncoding(t *testing.T) {
	v := testenv.StartVersityGW(t)
	v.CreateBucket(t, "encoding")
	ids := seedEncodingKeys(t, openVersity(t, v, "encoding", ""))
	checkEncodingKeys(t, func(t *testing.T, prefix string) *Store { return openVersity(t, v, "encoding", prefix) }, ids)

	// What the test is about: the gateway sends raw keys and no
	// EncodingType. Should a later version encode them, this says so.
	out, err := v.Client().ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{
		Bucket: aws.String("encoding"), Prefix: aws.String("plus+"), EncodingType: types.EncodingTypeUrl})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Contents) != 1 {
		t.Fatalf("listed %d keys", len(out.Contents))
	}
	t.Logf("versitygw %s lists %q with EncodingType %q", testenv.VersityGWVersion, aws.ToString(out.Contents[0].Key), out.EncodingType)
}

// TestVersityGWMetadata checks user metadata round trips on Versity Gateway,
// an empty value included (which ferry does not send).
func TestVersityGWMetadata(t *testing.T) {
	v := testenv.StartVersityGW(t)
	v.CreateBucket(t, "meta")
	s := openVersity(t, v, "meta", "")
	body := []byte("metadata")
	md := map[string]string{"kept": "v", "empty": ""}
	if _, err := s.Put(t.Context(), store.PutInput{Key: "k", Size: int64(len(body)), Metadata: md, ChecksumCRC32C: crc32c(body)}, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	a, err := s.Stat(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"kept": "v"}; !maps.Equal(a.Metadata, want) {
		t.Errorf("metadata %v, want %v", a.Metadata, want)
	}
	// Sent by another client, an empty value: kept or dropped?
	if _, err := v.Client().PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("meta"), Key: aws.String("raw"),
		Body: bytes.NewReader(body), Metadata: md}); err != nil {
		t.Fatal(err)
	}
	if a, err := s.Stat(t.Context(), "raw"); err != nil {
		t.Fatal(err)
	} else {
		_, kept := a.Metadata["empty"]
		t.Logf("versitygw %s keeps an empty metadata value: %v (%v)", testenv.VersityGWVersion, kept, a.Metadata)
	}
}

// TestVersityGWCopy copies on the server: CopyObject (metadata replaced,
// tags copied) and, with the threshold lowered, UploadPartCopy parts.
func TestVersityGWCopy(t *testing.T) {
	v := testenv.StartVersityGW(t)
	v.CreateBucket(t, "copy")
	s := openVersity(t, v, "copy", "src")
	dst := openVersity(t, v, "copy", "dst")
	if !dst.CanCopyFrom(s) {
		t.Fatal("CanCopyFrom = false")
	}
	body := bytes.Repeat([]byte("0123456789abcdef"), (11<<20)/16+3)
	if _, err := s.Put(t.Context(), store.PutInput{Key: "k+1 %", Size: int64(len(body)), ContentType: "text/old",
		Metadata: map[string]string{"old": "1"}, Tags: map[string]string{"tag": "kept"}, ChecksumCRC32C: crc32c(body)}, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		threshold int64
	}{{"CopyObject", maxCopyObjectSize}, {"UploadPartCopy", 5 << 20}} {
		t.Run(tc.name, func(t *testing.T) {
			dst.copyPartThreshold, dst.copyPartSize = tc.threshold, 5<<20
			in := store.PutInput{Key: tc.name + "/k+1 %", Size: int64(len(body)), ContentType: "text/new", Metadata: map[string]string{"new": "2"}}
			if _, err := dst.CopyFrom(t.Context(), s, "k+1 %", in); err != nil {
				t.Fatal(err)
			}
			got, a := read(t, dst, in.Key, 0, -1)
			if !bytes.Equal(got, body) || a.ContentType != "text/new" || !maps.Equal(a.Metadata, in.Metadata) {
				t.Errorf("copy: equal %v, %+v", bytes.Equal(got, body), a)
			}
			if tags, err := dst.Tags(t.Context(), in.Key); err != nil || !maps.Equal(tags, map[string]string{"tag": "kept"}) {
				t.Errorf("copy tags = %v, %v", tags, err)
			}
		})
	}
}
