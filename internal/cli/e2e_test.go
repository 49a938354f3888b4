package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferry-dev/ferry/internal/testenv"
)

// env is two MinIO servers, "a" plain HTTP and "b" with TLS from a test CA,
// with AWS profiles "a", "b" and "bad" (wrong secret) in a credentials file.
type env struct {
	a, b *testenv.MinIO
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{
		a: testenv.StartMinIO(t, testenv.MinIOOptions{}),
		b: testenv.StartMinIO(t, testenv.MinIOOptions{TLS: true}),
	}
	bad := *e.a
	bad.SecretKey = "wrong-secret-0123456789"
	creds, _ := testenv.WriteCredentialsFile(t, map[string]*testenv.MinIO{"a": e.a, "b": e.b, "bad": &bad})
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	t.Setenv("FERRY_CONFIG_DIR", filepath.Join(t.TempDir(), "config"))
	// No config file: endpoints and CA come from flags alone.
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"} {
		t.Setenv(k, "")
	}
	return e
}

func (e *env) srcA() []string { return []string{"--src-endpoint", e.a.Endpoint, "--src-profile", "a"} }
func (e *env) dstA() []string { return []string{"--dst-endpoint", e.a.Endpoint, "--dst-profile", "a"} }
func (e *env) srcB() []string {
	return []string{"--src-endpoint", e.b.Endpoint, "--src-profile", "b", "--ca-bundle", e.b.CAFile}
}
func (e *env) dstB() []string {
	return []string{"--dst-endpoint", e.b.Endpoint, "--dst-profile", "b", "--ca-bundle", e.b.CAFile}
}

type result struct {
	code     int
	out, err string
}

func ferry(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	code := Main(ctx, append(args, "--no-progress"), Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	return result{code, out.String(), errb.String()}
}

type summary struct {
	Copied   int64 `json:"objects_copied"`
	Skipped  int64 `json:"objects_skipped"`
	Failed   int64 `json:"objects_failed"`
	Deleted  int64 `json:"objects_deleted"`
	Unsafe   int64 `json:"objects_skipped_unsafe"`
	Bytes    int64 `json:"bytes_copied"`
	Diffs    int64 `json:"differences"`
	Duration *float64
	Raw      map[string]any
}

func ferryJSON(t *testing.T, wantCode int, args ...string) summary {
	t.Helper()
	r := ferry(t, append(args, "--json")...)
	if r.code != wantCode {
		t.Fatalf("ferry %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, wantCode, r.out, r.err)
	}
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	last := lines[len(lines)-1]
	var s summary
	if err := json.Unmarshal([]byte(last), &s); err != nil {
		t.Fatalf("last stdout line is not a JSON summary: %q: %v", last, err)
	}
	if err := json.Unmarshal([]byte(last), &s.Raw); err != nil {
		t.Fatal(err)
	}
	want := []string{"objects_copied", "objects_skipped", "objects_failed", "objects_deleted", "bytes_copied", "duration_seconds"}
	if len(args) > 0 && args[0] == "verify" {
		want = []string{"objects_listed", "objects_identical", "differences", "objects_failed", "bytes_verified", "duration_seconds"}
	}
	for _, k := range want {
		if _, ok := s.Raw[k]; !ok {
			t.Fatalf("summary lacks %s: %s", k, last)
		}
	}
	return s
}

func mkBucket(t *testing.T, m *testenv.MinIO) string {
	t.Helper()
	name := "b" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, name)
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.TrimRight(name, "-") + "-" + randomHex(4)
	m.CreateBucket(t, name)
	return name
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 2*n)
	for _, c := range b {
		out = append(out, hex[c>>4], hex[c&15])
	}
	return string(out)
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func put(t *testing.T, m *testenv.MinIO, bucket, key string, body []byte, mod func(*s3.PutObjectInput)) {
	t.Helper()
	in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)}
	if mod != nil {
		mod(in)
	}
	if _, err := m.Client().PutObject(context.Background(), in); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func get(t *testing.T, m *testenv.MinIO, bucket, key string) ([]byte, *s3.GetObjectOutput) {
	t.Helper()
	out, err := m.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s/%q: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b, out
}

func keys(t *testing.T, m *testenv.MinIO, bucket string) []string {
	t.Helper()
	var ks []string
	p := s3.NewListObjectsV2Paginator(m.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			ks = append(ks, *o.Key)
		}
	}
	sort.Strings(ks)
	return ks
}

func tags(t *testing.T, m *testenv.MinIO, bucket, key string) map[string]string {
	t.Helper()
	out, err := m.Client().GetObjectTagging(context.Background(), &s3.GetObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	tm := map[string]string{}
	for _, tg := range out.TagSet {
		tm[*tg.Key] = *tg.Value
	}
	return tm
}

// trickyKeys are copied byte for byte.
var trickyKeys = []string{
	"plain.txt",
	"dir/nested/file.bin",
	"photos/",
	"space key.txt",
	"unicodé/日本語/ファイル.txt",
	"special/+ % # ? & =.txt",
	"tab\there.txt",
	"a-b", "a/b", "a.b",
	"long/" + strings.Repeat("k", 200) + "/" + strings.Repeat("x", 200) + "/" + strings.Repeat("y", 200) + "/" + strings.Repeat("z", 200) + "/" + strings.Repeat("w", 200),
}

func TestCopyBucketToBucketAcrossEndpoints(t *testing.T) {
	e := newEnv(t)
	src, dst := mkBucket(t, e.a), mkBucket(t, e.b)
	bodies := map[string][]byte{}
	for i, k := range trickyKeys {
		body := randBytes(100 + i*37)
		if strings.HasSuffix(k, "/") {
			body = nil
		}
		bodies["data/"+k] = body
		put(t, e.a, src, "data/"+k, body, nil)
	}
	if n := len(trickyKeys[len(trickyKeys)-1]); n < 1000 {
		t.Fatalf("long key is %d bytes", n)
	}
	// Attributes, user metadata and tags.
	put(t, e.a, src, "data/meta.html", []byte("<p>hi</p>"), func(in *s3.PutObjectInput) {
		in.ContentType = aws.String("text/html; charset=utf-8")
		in.ContentEncoding = aws.String("identity")
		in.ContentDisposition = aws.String(`attachment; filename="x.html"`)
		in.ContentLanguage = aws.String("en-GB")
		in.CacheControl = aws.String("max-age=60")
		in.Expires = aws.Time(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
		in.Metadata = map[string]string{"owner": "alice", "project": "Ferry Tests"}
		in.Tagging = aws.String("team=storage&env=test%20env")
	})
	bodies["data/meta.html"] = []byte("<p>hi</p>")
	// A multipart object (3 parts of 5 MiB + a bit).
	big := randBytes(15<<20 + 12345)
	put(t, e.a, src, "data/big.bin", big, nil)
	bodies["data/big.bin"] = big

	args := append(append([]string{"copy", "s3://" + src + "/data", "s3://" + dst + "/copied", "--part-size", "5MiB"}, e.srcA()...), e.dstB()...)
	s := ferryJSON(t, 0, args...)
	if s.Copied != int64(len(bodies)) || s.Failed != 0 {
		t.Fatalf("copied %d failed %d, want %d, 0", s.Copied, s.Failed, len(bodies))
	}
	var want []string
	for k := range bodies {
		want = append(want, "copied/"+strings.TrimPrefix(k, "data/"))
	}
	sort.Strings(want)
	if got := keys(t, e.b, dst); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("destination keys:\n%q\nwant\n%q", got, want)
	}
	for k, body := range bodies {
		dk := "copied/" + strings.TrimPrefix(k, "data/")
		got, out := get(t, e.b, dst, dk)
		if !bytes.Equal(got, body) {
			t.Fatalf("%q: content differs", dk)
		}
		if out.Metadata["ferry-src-etag"] == "" || out.Metadata["ferry-src-mtime"] == "" {
			t.Fatalf("%q: provenance missing: %v", dk, out.Metadata)
		}
	}
	_, out := get(t, e.b, dst, "copied/meta.html")
	if aws.ToString(out.ContentType) != "text/html; charset=utf-8" || aws.ToString(out.ContentEncoding) != "identity" ||
		aws.ToString(out.ContentDisposition) != `attachment; filename="x.html"` || aws.ToString(out.ContentLanguage) != "en-GB" ||
		aws.ToString(out.CacheControl) != "max-age=60" || out.Metadata["owner"] != "alice" || out.Metadata["project"] != "Ferry Tests" {
		t.Fatalf("attributes not preserved: %+v meta %v", out, out.Metadata)
	}
	if out.ExpiresString == nil || !strings.Contains(*out.ExpiresString, "2030") {
		t.Fatalf("Expires not preserved: %v", aws.ToString(out.ExpiresString))
	}
	if tg := tags(t, e.b, dst, "copied/meta.html"); tg["team"] != "storage" || tg["env"] != "test env" {
		t.Fatalf("tags not preserved: %v", tg)
	}

	// A re-run copies nothing.
	s = ferryJSON(t, 0, args...)
	if s.Copied != 0 || s.Skipped != int64(len(bodies)) {
		t.Fatalf("re-run copied %d skipped %d, want 0, %d", s.Copied, s.Skipped, len(bodies))
	}
	// Verify says identical.
	vargs := append(append([]string{"verify", "s3://" + src + "/data", "s3://" + dst + "/copied"}, e.srcA()...), e.dstB()...)
	if v := ferryJSON(t, 0, vargs...); v.Diffs != 0 {
		t.Fatalf("verify found %d differences", v.Diffs)
	}

	// A same-size change at the source is detected by sync.
	changed := randBytes(len(bodies["data/plain.txt"]))
	put(t, e.a, src, "data/plain.txt", changed, nil)
	sargs := append(append([]string{"sync", "s3://" + src + "/data", "s3://" + dst + "/copied"}, e.srcA()...), e.dstB()...)
	s = ferryJSON(t, 0, sargs...)
	if s.Copied != 1 {
		t.Fatalf("sync after a same-size change copied %d, want 1", s.Copied)
	}
	if got, _ := get(t, e.b, dst, "copied/plain.txt"); !bytes.Equal(got, changed) {
		t.Fatal("changed object not copied")
	}

	// Corrupt the destination behind ferry's back: verify names it, exit 1.
	put(t, e.b, dst, "copied/dir/nested/file.bin", randBytes(len(bodies["data/dir/nested/file.bin"])), nil)
	r := ferry(t, vargs...)
	if r.code != 1 || !strings.Contains(r.err, "dir/nested/file.bin") {
		t.Fatalf("verify of a corrupted object: exit %d\n%s", r.code, r.err)
	}

	// sync --delete removes extras, but not beyond --max-delete.
	put(t, e.b, dst, "copied/extra-1", []byte("x"), nil)
	put(t, e.b, dst, "copied/extra-2", []byte("y"), nil)
	put(t, e.b, dst, "outside/keep", []byte("z"), nil)
	r = ferry(t, append(sargs, "--delete", "--max-delete", "1")...)
	if r.code != 1 || !strings.Contains(r.err, "max-delete") {
		t.Fatalf("sync --max-delete 1 with 2 extras: exit %d\n%s", r.code, r.err)
	}
	if ks := keys(t, e.b, dst); !contains(ks, "copied/extra-1") || !contains(ks, "copied/extra-2") {
		t.Fatal("deleted despite --max-delete")
	}
	// A dry run says what it would delete, and deletes nothing.
	if s = ferryJSON(t, 0, append(sargs, "--delete", "--dry-run")...); s.Deleted != 2 {
		t.Fatalf("dry run would delete %d, want 2", s.Deleted)
	}
	if ks := keys(t, e.b, dst); !contains(ks, "copied/extra-1") {
		t.Fatal("a dry run deleted")
	}
	s = ferryJSON(t, 0, append(sargs, "--delete", "--max-delete", "50%")...)
	if s.Deleted != 2 {
		t.Fatalf("deleted %d, want 2", s.Deleted)
	}
	if ks := keys(t, e.b, dst); contains(ks, "copied/extra-1") || !contains(ks, "outside/keep") {
		t.Fatalf("after sync --delete: %q", ks)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestLocalRoundTrip(t *testing.T) {
	e := newEnv(t)
	bucket := mkBucket(t, e.b)
	dir := t.TempDir()
	files := map[string][]byte{
		"a.txt":                    []byte("alpha"),
		"sub/b.bin":                randBytes(70_000),
		"sub/deeper/c":             randBytes(1),
		"space and ünïcode/d e.md": []byte("# doc"),
		"large.bin":                randBytes(12<<20 + 7),
		"skip.tmp":                 []byte("excluded"),
	}
	for k, b := range files {
		p := filepath.Join(dir, k)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	up := append([]string{"copy", dir, "s3://" + bucket + "/up", "--exclude", "*.tmp", "--part-size", "5MiB"}, e.dstB()...)

	// Dry run: counts, writes nothing.
	s := ferryJSON(t, 0, append(up, "--dry-run")...)
	if s.Copied != 5 || len(keys(t, e.b, bucket)) != 0 {
		t.Fatalf("dry run: copied %d, bucket has %d keys", s.Copied, len(keys(t, e.b, bucket)))
	}
	r := ferry(t, append(up, "--dry-run", "-v")...)
	if r.code != 0 || !strings.Contains(r.out, "large.bin") || strings.Contains(r.out, "skip.tmp") {
		t.Fatalf("dry run -v: exit %d\n%s", r.code, r.out)
	}

	s = ferryJSON(t, 0, up...)
	if s.Copied != 5 || s.Bytes != int64(5+70_000+1+5+12<<20+7) {
		t.Fatalf("upload copied %d objects %d bytes", s.Copied, s.Bytes)
	}
	if s = ferryJSON(t, 0, up...); s.Copied != 0 || s.Skipped != 5 {
		t.Fatalf("re-upload copied %d skipped %d", s.Copied, s.Skipped)
	}
	// A same-size change of a local file is detected.
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("ALPHA"), 0o644); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(2 * time.Second)
	_ = os.Chtimes(filepath.Join(dir, "a.txt"), future, future)
	if s = ferryJSON(t, 0, up...); s.Copied != 1 {
		t.Fatalf("after a same-size local change copied %d, want 1", s.Copied)
	}

	// Download to a new directory, then compare bytes.
	out := filepath.Join(t.TempDir(), "restored")
	down := append([]string{"copy", "s3://" + bucket + "/up", out}, e.srcB()...)
	if s = ferryJSON(t, 0, down...); s.Copied != 5 {
		t.Fatalf("download copied %d", s.Copied)
	}
	for k, b := range files {
		if k == "skip.tmp" {
			continue
		}
		if k == "a.txt" {
			b = []byte("ALPHA")
		}
		got, err := os.ReadFile(filepath.Join(out, k))
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("%s: %v (content equal: %v)", k, err, bytes.Equal(got, b))
		}
	}
	if s = ferryJSON(t, 0, down...); s.Copied != 0 || s.Skipped != 5 {
		t.Fatalf("re-download copied %d skipped %d", s.Copied, s.Skipped)
	}
	if v := ferryJSON(t, 0, append([]string{"verify", "s3://" + bucket + "/up", out}, e.srcB()...)...); v.Diffs != 0 {
		t.Fatalf("verify download: %d differences", v.Diffs)
	}
}

func TestServerSideCopySameEndpoint(t *testing.T) {
	e := newEnv(t)
	src, dst := mkBucket(t, e.a), mkBucket(t, e.a)
	body := randBytes(6 << 20)
	put(t, e.a, src, "x/one", body, func(in *s3.PutObjectInput) {
		in.Metadata = map[string]string{"k": "v"}
		in.Tagging = aws.String("t=1")
	})
	put(t, e.a, src, "x/two", []byte("two"), nil)
	args := append(append([]string{"copy", "s3://" + src + "/x", "s3://" + dst + "/y"}, e.srcA()...), e.dstA()...)
	if s := ferryJSON(t, 0, args...); s.Copied != 2 {
		t.Fatalf("copied %d", s.Copied)
	}
	// One verbatim CopyObject per object (plain MD5 source ETags): the
	// server kept the metadata and tags; the ETag is the provenance.
	got, out := get(t, e.a, dst, "y/one")
	_, srcOut := get(t, e.a, src, "x/one")
	if !bytes.Equal(got, body) || out.Metadata["k"] != "v" || aws.ToString(out.ETag) != aws.ToString(srcOut.ETag) {
		t.Fatalf("server-side copy: equal %v meta %v etag %s, source %s", bytes.Equal(got, body), out.Metadata,
			aws.ToString(out.ETag), aws.ToString(srcOut.ETag))
	}
	if tg := tags(t, e.a, dst, "y/one"); tg["t"] != "1" {
		t.Fatalf("tags %v", tg)
	}
	if s := ferryJSON(t, 0, args...); s.Copied != 0 {
		t.Fatalf("re-run copied %d", s.Copied)
	}
	// verify agrees, and a same-size change at the source is found.
	vargs := append(append([]string{"verify", "s3://" + src + "/x", "s3://" + dst + "/y"}, e.srcA()...), e.dstA()...)
	if s := ferryJSON(t, 0, vargs...); s.Diffs != 0 {
		t.Fatalf("verify found %d differences", s.Diffs)
	}
	put(t, e.a, src, "x/two", []byte("TWO"), nil)
	if s := ferryJSON(t, 0, args...); s.Copied != 1 {
		t.Fatalf("re-run after a same-size change copied %d, want 1", s.Copied)
	}
	if got, _ := get(t, e.a, dst, "y/two"); string(got) != "TWO" {
		t.Fatalf("y/two = %q", got)
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	src, dst := mkBucket(t, e.a), mkBucket(t, e.b)
	put(t, e.a, src, "k", []byte("v"), nil)
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	A, B := e.srcA(), e.dstB()
	with := func(args ...string) []string { return append(append(args, A...), B...) }
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"underscore bucket", with("copy", "s3://Not_A_Bucket/x", "s3://"+dst), "invalid bucket name"},
		{"two chars", with("copy", "s3://ab", "s3://"+dst), "3 to 63"},
		{"64 chars", with("copy", "s3://"+strings.Repeat("a", 64), "s3://"+dst), "3 to 63"},
		{"unknown scheme", with("copy", "gs://bucket/x", "s3://"+dst), "unknown scheme"},
		{"malformed url", with("copy", "s3:///x", "s3://"+dst), "missing bucket"},
		{"bad endpoint", append([]string{"copy", "s3://" + src, "s3://" + dst, "--src-endpoint", "ftp://x"}, B...), "--src-endpoint"},
		{"missing source bucket", with("copy", "s3://no-such-bucket-ferry", "s3://"+dst), "does not exist"},
		{"missing destination bucket", append(append([]string{"copy", "s3://" + src, "s3://no-such-bucket-ferry"}, A...), e.dstA()...), "does not exist"},
		{"missing local source", append([]string{"copy", filepath.Join(dir, "nope"), "s3://" + dst}, B...), "no such file"},
		{"local destination parent missing", append([]string{"copy", "s3://" + src, filepath.Join(dir, "a", "b", "c")}, A...), "does not exist"},
		{"rejected credentials", append([]string{"copy", "s3://" + src, "s3://" + dst, "--src-endpoint", e.a.Endpoint, "--src-profile", "bad"}, B...), `rejected the request signature (SignatureDoesNotMatch): the secret key does not belong to the access key ID (credentials from profile "bad"`},
		{"tls without ca", append(append([]string{"copy", "s3://" + src, "s3://" + dst}, A...), "--dst-endpoint", e.b.Endpoint, "--dst-profile", "b"), "destination"},
		{"same location", append(append([]string{"copy", "s3://" + src + "/p", "s3://" + src + "/p"}, A...), e.dstA()...), "same location"},
		{"nested location", append(append([]string{"copy", "s3://" + src + "/p", "s3://" + src + "/p/q"}, A...), e.dstA()...), "inside"},
		{"nested local", []string{"copy", dir, filepath.Join(dir, "sub")}, "inside"},
		{"one argument", []string{"copy", "s3://" + src}, "SRC and DST"},
		{"unknown flag", with("copy", "s3://"+src, "s3://"+dst, "--bogus"), "unknown flag"},
		{"bad concurrency", with("copy", "s3://"+src, "s3://"+dst, "--concurrency", "0"), "--concurrency"},
		{"bad max-delete", with("sync", "s3://"+src, "s3://"+dst, "--delete", "--max-delete", "lots"), "--max-delete"},
		{"max-delete without delete", with("sync", "s3://"+src, "s3://"+dst, "--max-delete", "5"), "--max-delete 5 needs --delete"},
		{"force without delete", with("sync", "s3://"+src, "s3://"+dst, "--force"), "--force needs --delete"},
		{"bad glob", with("copy", "s3://"+src, "s3://"+dst, "--include", "[abc"), "--include"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ferry(t, tt.args...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2\nstderr: %s", r.code, r.err)
			}
			lines := strings.Split(strings.TrimSpace(r.err), "\n")
			if len(lines) != 1 || !strings.Contains(strings.ToLower(lines[0]), strings.ToLower(tt.want)) {
				t.Fatalf("stderr %q: want one line containing %q", r.err, tt.want)
			}
			if ks := keys(t, e.b, dst); len(ks) != 0 {
				t.Fatalf("something was written: %q", ks)
			}
			if _, err := os.Stat(filepath.Join(dir, "a")); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("local directory created")
			}
		})
	}
}
