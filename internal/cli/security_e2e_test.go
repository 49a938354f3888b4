package cli

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ferry-dev/ferry/internal/policy"
	"github.com/ferry-dev/ferry/internal/testenv"
)

// isolateConfig points FERRY_CONFIG_DIR at a fresh directory, writing
// config.yaml there when yaml is not "".
func isolateConfig(t *testing.T, yaml string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "config")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FERRY_CONFIG_DIR", dir)
	if yaml != "" {
		if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "config.yaml")
}

// ferryCmd runs ferry with exactly args (ferry adds --no-progress, which
// only the transfer commands have).
func ferryCmd(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := Main(ctx, args, Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	return result{code, out.String(), errb.String()}
}

// oneLineErr fails unless r exited with code and wrote one stderr line
// containing each of want.
func oneLineErr(t *testing.T, r result, code int, want ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(r.err), "\n")
	if r.code != code || len(lines) != 1 {
		t.Fatalf("exit %d, want %d with one stderr line; stderr:\n%s", r.code, code, r.err)
	}
	for _, w := range want {
		if !strings.Contains(lines[0], w) {
			t.Fatalf("stderr %q lacks %q", lines[0], w)
		}
	}
}

func TestPlainHTTPRefused(t *testing.T) {
	e := newEnv(t)
	cfgPath := isolateConfig(t, "remotes:\n  far:\n    endpoint: http://10.0.0.1:9000\n  farok:\n    endpoint: http://10.0.0.1:9000\n    allow_insecure_http: true\n")
	_ = cfgPath
	dst := mkBucket(t, e.b)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Never connect to a non-loopback address: each case is refused before
	// any connection (a dial to 10.0.0.1 would take seconds to time out).
	tests := []struct {
		name string
		args []string
		env  string // AWS_ENDPOINT_URL
		want []string
	}{
		{"dst flag", []string{"copy", dir, "s3://" + dst, "--dst-endpoint", "http://10.0.0.1:9000", "--dst-profile", "b"}, "",
			[]string{"--dst-endpoint http://10.0.0.1:9000", "plain-text transport", "--allow-insecure-http"}},
		{"src flag", []string{"copy", "s3://" + dst, dir, "--src-endpoint", "http://minio.internal:9000", "--src-profile", "b"}, "",
			[]string{"--src-endpoint http://minio.internal:9000", "plain-text"}},
		{"remote", []string{"copy", dir, "far:" + dst}, "", []string{`remote "far"`, "plain-text"}},
		{"aws environment", []string{"copy", dir, "s3://" + dst, "--dst-profile", "b"}, "http://10.0.0.1:9000",
			[]string{"destination endpoint (from the AWS configuration)", "plain-text"}},
		{"verify", []string{"verify", dir, "s3://" + dst, "--dst-endpoint", "http://10.0.0.1:9000"}, "", []string{"plain-text"}},
		{"preflight", []string{"preflight", dir, "s3://" + dst, "--dst-endpoint", "http://10.0.0.1:9000"}, "", []string{"plain-text"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AWS_ENDPOINT_URL", tt.env)
			start := time.Now()
			run := ferry
			if tt.args[0] == "preflight" {
				run = ferryCmd
			}
			r := run(t, tt.args...)
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("took %v: something was dialled", d)
			}
			oneLineErr(t, r, ExitUsage, tt.want...)
		})
	}
	// http to the loopback MinIO "a" is allowed without the flag.
	if r := ferry(t, "copy", dir, "s3://"+mkBucket(t, e.a), "--dst-endpoint", e.a.Endpoint, "--dst-profile", "a"); r.code != 0 {
		t.Fatalf("loopback http: exit %d: %s", r.code, r.err)
	}
}

func TestTLSVerification(t *testing.T) {
	e := newEnv(t)
	isolateConfig(t, "")
	bucket := mkBucket(t, e.b)
	put(t, e.b, bucket, "k", []byte("v"), nil)
	out := filepath.Join(t.TempDir(), "out")
	base := []string{"copy", "s3://" + bucket, out, "--src-endpoint", e.b.Endpoint, "--src-profile", "b"}

	// The test CA is not trusted without --ca-bundle.
	oneLineErr(t, ferry(t, base...), ExitUsage, "certificate")
	if _, err := os.Stat(out); err == nil {
		t.Fatal("destination created")
	}
	if r := ferry(t, append(base, "--ca-bundle", e.b.CAFile)...); r.code != 0 {
		t.Fatalf("with --ca-bundle: exit %d: %s", r.code, r.err)
	}

	// A server that offers only TLS 1.1 is refused (TLS 1.2 minimum).
	old := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	old.TLS = &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	old.Config.ErrorLog = log.New(io.Discard, "", 0)
	old.StartTLS()
	defer old.Close()
	ca := filepath.Join(t.TempDir(), "old.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: old.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	oneLineErr(t, ferry(t, "copy", "s3://"+bucket, filepath.Join(t.TempDir(), "o2"), "--src-endpoint", old.URL, "--src-profile", "b", "--ca-bundle", ca),
		ExitUsage, "protocol version")
}

func TestAllowedRegions(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{TLS: true, Region: "eu-west-3"})
	e := newEnv(t)
	creds, _ := testenv.WriteCredentialsFile(t, map[string]*testenv.MinIO{"r": m, "a": e.a})
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	isolateConfig(t, "")
	bucket := mkBucket(t, m)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"copy", dir, "s3://" + bucket, "--dst-endpoint", m.Endpoint, "--dst-profile", "r", "--dst-region", "eu-west-3", "--ca-bundle", m.CAFile}

	for _, extra := range [][]string{{"--allowed-regions", "eu-west-1,us-east-1"}, {"--allowed-regions", "eu-west-1", "--skip-preflight"}} {
		oneLineErr(t, ferry(t, append(args, extra...)...), ExitUsage, "in region eu-west-3, not in --allowed-regions eu-west-1")
		if ks := keys(t, m, bucket); len(ks) != 0 {
			t.Fatalf("written: %q", ks)
		}
	}
	oneLineErr(t, ferry(t, append(args, "--allowed-regions", "EU WEST")...), ExitUsage, "invalid region")
	if r := ferry(t, append(args, "--allowed-regions", "eu-west-1", "--allowed-regions", "eu-west-3")...); r.code != 0 {
		t.Fatalf("allowed region: exit %d: %s", r.code, r.err)
	}
	// The preflight table shows the region.
	r := ferryCmd(t, "preflight", dir, "s3://"+bucket, "--dst-endpoint", m.Endpoint, "--dst-profile", "r", "--dst-region", "eu-west-3", "--ca-bundle", m.CAFile, "--allowed-regions", "us-east-1")
	if r.code != ExitFailed || !regexpLine(r.out, "destination", "region", "fail", "eu-west-3") {
		t.Fatalf("preflight: exit %d\n%s%s", r.code, r.out, r.err)
	}
}

// regexpLine reports whether some line of out has all fields in order.
func regexpLine(out string, fields ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		rest, ok := line, true
		for _, f := range fields {
			i := strings.Index(rest, f)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(f):]
		}
		if ok {
			return true
		}
	}
	return false
}

// fakeS3 is a read-only S3 source serving keys that MinIO refuses to store
// ("../escape", "a//b"). It answers HeadBucket, ListObjectsV2, HeadObject,
// GetObject and GetObjectTagging, and records any other request.
type fakeS3 struct {
	bucket string
	keys   []string
	mu     sync.Mutex
	writes []string
}

const bodyX = "x" // every object's content; MD5 9dd4e461268c8034f5c8564e155c67a6

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, _ := url.PathUnescape(r.URL.EscapedPath())
	rest, ok := strings.CutPrefix(path, "/"+f.bucket)
	etag := `"9dd4e461268c8034f5c8564e155c67a6"`
	mod := "Mon, 01 Jan 2024 00:00:00 GMT"
	switch {
	case !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead):
		f.mu.Lock()
		f.writes = append(f.writes, r.Method+" "+path)
		f.mu.Unlock()
		w.WriteHeader(http.StatusNotImplemented)
	case rest == "" || rest == "/":
		if r.Method == http.MethodHead {
			return
		}
		q := r.URL.Query()
		if q.Get("list-type") != "2" {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusNotImplemented)
			fmt.Fprint(w, `<Error><Code>NotImplemented</Code><Message>fake</Message></Error>`)
			return
		}
		enc := func(k string) string { return k }
		if q.Get("encoding-type") == "url" {
			enc = url.QueryEscape
		}
		var b strings.Builder
		fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>%s</Name><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>`, f.bucket)
		n := 0
		for _, k := range f.keys {
			if !strings.HasPrefix(k, q.Get("prefix")) {
				continue
			}
			if max := q.Get("max-keys"); max == "1" && n == 1 {
				break
			}
			n++
			fmt.Fprintf(&b, `<Contents><Key>%s</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified><ETag>%s</ETag><Size>1</Size><StorageClass>STANDARD</StorageClass></Contents>`,
				enc(k), etag)
		}
		fmt.Fprintf(&b, `<KeyCount>%d</KeyCount></ListBucketResult>`, n)
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprint(w, b.String())
	default:
		key := rest[1:]
		if !slices.Contains(f.keys, key) {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if _, ok := r.URL.Query()["tagging"]; ok {
			fmt.Fprint(w, `<Tagging><TagSet></TagSet></Tagging>`)
			return
		}
		h := w.Header()
		h.Set("ETag", etag)
		h.Set("Last-Modified", mod)
		h.Set("Content-Type", "text/plain")
		if r.Header.Get("Range") == "bytes=0-0" {
			h.Set("Content-Range", "bytes 0-0/1")
			h.Set("Content-Length", "1")
			w.WriteHeader(http.StatusPartialContent)
		} else {
			h.Set("Content-Length", "1")
		}
		if r.Method == http.MethodGet {
			fmt.Fprint(w, bodyX)
		}
	}
}

// unsafeDst makes root/dst with a symlink dst/link -> root/outside.
func unsafeDst(t *testing.T) (root, dst, outside string) {
	t.Helper()
	root = t.TempDir()
	dst, outside = filepath.Join(root, "dst"), filepath.Join(root, "outside")
	for _, d := range []string{dst, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(dst, "link")); err != nil {
		t.Fatal(err)
	}
	return root, dst, outside
}

// checkNothingOutside fails if anything but dst and outside (empty) is in
// root, or "escape" exists anywhere near it.
func checkNothingOutside(t *testing.T, root, outside string) {
	t.Helper()
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "dst,outside" {
		t.Fatalf("created beside the destination: %v", names)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("written through the symlink: %v", ents)
	}
	for _, p := range []string{filepath.Join(filepath.Dir(root), "escape"), "/abs", filepath.Join(root, "escape")} {
		if _, err := os.Lstat(p); err == nil {
			t.Fatalf("%s exists", p)
		}
	}
}

// TestUnsafeKeysToLocal copies keys that would escape the destination
// directory from an S3 source. MinIO refuses to store "../escape",
// "a/../../escape" and "a//b" (XMinioInvalidResourceName), so the full set
// is served by fakeS3; MinIO serves the keys it accepts.
func TestUnsafeKeysToLocal(t *testing.T) {
	e := newEnv(t)
	isolateConfig(t, "")
	if _, err := os.Lstat("/abs"); err == nil {
		t.Skip("/abs exists on this machine")
	}
	unsafe := []string{"../escape", "a/../../escape", "/abs", "a//b", "link/x"}

	t.Run("all keys", func(t *testing.T) {
		keys := append(slices.Clone(unsafe), "ok.txt")
		sort.Strings(keys)
		fake := &fakeS3{bucket: "unsafe-src", keys: keys}
		srv := httptest.NewServer(fake)
		defer srv.Close()
		root, dst, outside := unsafeDst(t)
		r := ferry(t, "copy", "s3://unsafe-src", dst, "--src-endpoint", srv.URL, "--src-profile", "a", "--json")
		if r.code != ExitFailed {
			t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", r.code, r.out, r.err)
		}
		for _, k := range unsafe {
			if !strings.Contains(r.err, fmt.Sprintf("skipped-unsafe: %q", k)) {
				t.Errorf("stderr does not name %q as skipped-unsafe:\n%s", k, r.err)
			}
		}
		var sum struct {
			Copied int `json:"objects_copied"`
			Unsafe int `json:"objects_skipped_unsafe"`
			List   []struct {
				Key string `json:"key"`
			} `json:"skipped_unsafe"`
		}
		lines := strings.Split(strings.TrimSpace(r.out), "\n")
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
			t.Fatal(err)
		}
		var listed []string
		for _, p := range sum.List {
			listed = append(listed, p.Key)
		}
		sort.Strings(listed)
		want := slices.Clone(unsafe)
		sort.Strings(want)
		if sum.Copied != 1 || sum.Unsafe != len(unsafe) || !slices.Equal(listed, want) {
			t.Fatalf("summary: copied %d unsafe %d %q, want 1, %d %q", sum.Copied, sum.Unsafe, listed, len(unsafe), want)
		}
		if b, err := os.ReadFile(filepath.Join(dst, "ok.txt")); err != nil || string(b) != bodyX {
			t.Fatalf("ok.txt: %q %v", b, err)
		}
		checkNothingOutside(t, root, outside)
		if len(fake.writes) != 0 {
			t.Fatalf("requests that write to the source: %v", fake.writes)
		}
	})

	t.Run("minio", func(t *testing.T) {
		bucket := mkBucket(t, e.b)
		for _, k := range []string{"/abs", "link/x", "ok.txt"} {
			put(t, e.b, bucket, k, []byte(bodyX), nil)
		}
		root, dst, outside := unsafeDst(t)
		r := ferry(t, append([]string{"copy", "s3://" + bucket, dst, "--json"}, e.srcB()...)...)
		if r.code != ExitFailed || !strings.Contains(r.err, `skipped-unsafe: "link/x"`) {
			t.Fatalf("exit %d, want 1 naming link/x\nstdout: %s\nstderr: %s", r.code, r.out, r.err)
		}
		t.Logf("MinIO lists %q; stderr:\n%s", keys(t, e.b, bucket), r.err)
		checkNothingOutside(t, root, outside)
	})
}

func TestPreflight(t *testing.T) {
	e := newEnv(t)
	isolateConfig(t, "")
	src, dst := mkBucket(t, e.a), mkBucket(t, e.b)
	put(t, e.a, src, "p/k", []byte("v"), nil)
	args := append(append([]string{"preflight", "s3://" + src + "/p", "s3://" + dst + "/q"}, e.srcA()...), e.dstB()...)

	r := ferryCmd(t, args...)
	t.Logf("ferry preflight on MinIO:\n%s", r.out)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.out, r.err)
	}
	for _, row := range [][]string{
		{"source", "bucket", "pass"}, {"source", "list", "pass"}, {"source", "read", "pass", `"p/k"`}, {"source", "read tags", "pass"},
		{"destination", "bucket", "pass"}, {"destination", "list", "pass"}, {"destination", "list uploads", "pass"},
		{"destination", "write", "warn", "not tested (would write)"},
		{"destination", "block public access", "warn", "not supported by this endpoint"},
		{"destination", "default encryption", "warn", "none configured"},
		{"destination", "tls-only policy", "warn", "no bucket policy"},
		{"destination", "versioning", "warn"},
		{"destination", "abort incomplete uploads", "warn", "no lifecycle rule"},
		{"preflight: 7 pass, 6 warn, 0 fail"},
	} {
		if !regexpLine(r.out, row...) {
			t.Errorf("no row %q", row)
		}
	}

	// Versioning and a TLS-only policy turn their rows to pass.
	ctx := context.Background()
	if _, err := e.b.Client().PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(dst),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	pol := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Sid":"TLSOnly","Effect":"Deny","Principal":{"AWS":["*"]},"Action":["s3:*"],"Resource":["arn:aws:s3:::%s/*"],"Condition":{"Bool":{"aws:SecureTransport":["false"]}}}]}`, dst)
	if _, err := e.b.Client().PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(dst), Policy: aws.String(pol)}); err != nil {
		t.Fatal(err)
	}
	r = ferryCmd(t, append(args, "--json")...)
	var rep struct {
		Checks []struct{ Side, Check, Status, Detail string }
	}
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil || r.code != 0 {
		t.Fatalf("--json: exit %d %v\n%s", r.code, err, r.out)
	}
	got := map[string]string{}
	for _, c := range rep.Checks {
		got[c.Side+" "+c.Check] = c.Status
	}
	if got["destination versioning"] != "pass" || got["destination tls-only policy"] != "pass" {
		t.Fatalf("after hardening: %v\n%s", got, r.out)
	}

	// Failures: exit 1 with the table.
	r = ferryCmd(t, append([]string{"preflight", "s3://" + src, "s3://" + dst, "--src-endpoint", e.a.Endpoint, "--src-profile", "bad"}, e.dstB()...)...)
	if r.code != ExitFailed || !regexpLine(r.out, "source", "bucket", "fail") {
		t.Fatalf("bad credentials: exit %d\n%s%s", r.code, r.out, r.err)
	}
	r = ferryCmd(t, append(append([]string{"preflight", "s3://" + src, "s3://no-such-bucket-ferry"}, e.srcA()...), e.dstB()...)...)
	if r.code != ExitFailed || !regexpLine(r.out, "destination", "bucket", "fail", "does not exist") {
		t.Fatalf("missing bucket: exit %d\n%s%s", r.code, r.out, r.err)
	}
}

// TestAutoPreflight: copy runs the checks, is quiet about them (one line of
// warnings, the table with -v), and stops on a failed check unless
// --skip-preflight. The failure is a source object that cannot be read
// (SSE-C, whose key ferry does not have).
func TestAutoPreflight(t *testing.T) {
	e := newEnv(t)
	isolateConfig(t, "")
	src, dst := mkBucket(t, e.b), mkBucket(t, e.a)
	put(t, e.b, src, "ok", []byte("fine"), nil)
	args := append(append([]string{"copy", "s3://" + src, "s3://" + dst}, e.srcB()...), e.dstA()...)

	r := ferry(t, args...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	var pre []string
	for _, l := range strings.Split(r.err, "\n") {
		if strings.HasPrefix(l, "preflight") {
			pre = append(pre, l)
		}
	}
	if len(pre) != 1 || !strings.Contains(pre[0], "destination write") {
		t.Fatalf("want one preflight line, stderr:\n%s", r.err)
	}
	if r := ferry(t, append(args, "-v")...); r.code != 0 || !regexpLine(r.err, "SIDE", "CHECK", "RESULT", "DETAIL") {
		t.Fatalf("-v: exit %d, no table:\n%s", r.code, r.err)
	}

	// An unreadable first object fails the source read check.
	key := bytes.Repeat([]byte{7}, 32)
	put(t, e.b, src, "a-sealed", []byte("secret"), func(in *s3.PutObjectInput) {
		in.SSECustomerAlgorithm = aws.String("AES256")
		in.SSECustomerKey = aws.String(b64(key))
		in.SSECustomerKeyMD5 = aws.String(b64md5(key))
	})
	before := keys(t, e.a, dst)
	oneLineErr(t, ferry(t, args...), ExitUsage, "preflight: source read", `"a-sealed"`, "--skip-preflight")
	if after := keys(t, e.a, dst); !slices.Equal(before, after) {
		t.Fatalf("written despite the failed preflight: %q -> %q", before, after)
	}
	// --skip-preflight: the copy runs and that object fails by itself.
	r = ferry(t, append(args, "--skip-preflight")...)
	if r.code != ExitFailed || strings.Contains(r.err, "preflight:") || !strings.Contains(r.err, `failed: "a-sealed"`) {
		t.Fatalf("--skip-preflight: exit %d\n%s", r.code, r.err)
	}
	// A single object is checked on itself: "a-sealed" sorts first in the
	// bucket but is not what this copy reads.
	one := append(append([]string{"copy", "s3://" + src + "/ok", "s3://" + dst + "/one"}, e.srcB()...), e.dstA()...)
	if r := ferry(t, append(one, "-v")...); r.code != 0 || !regexpLine(r.err, "source", "read", "pass", `"ok"`) {
		t.Fatalf("single object: exit %d\n%s", r.code, r.err)
	}
	if r := ferryCmd(t, append(append([]string{"preflight", "s3://" + src + "/ok", "s3://" + dst}, e.srcB()...), e.dstA()...)...); r.code != 0 || !regexpLine(r.out, "source", "read", "pass", `"ok"`) {
		t.Fatalf("preflight of a single object: exit %d\n%s%s", r.code, r.out, r.err)
	}
}

func TestSSE(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{TLS: true, KMS: true})
	e := newEnv(t)
	creds, _ := testenv.WriteCredentialsFile(t, map[string]*testenv.MinIO{"k": m, "a": e.a})
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	isolateConfig(t, "")
	dir := t.TempDir()
	files := map[string][]byte{"small": []byte("small"), "big": randBytes(11 << 20)}
	for k, b := range files {
		if err := os.WriteFile(filepath.Join(dir, k), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	conn := []string{"--dst-endpoint", m.Endpoint, "--dst-profile", "k", "--ca-bundle", m.CAFile, "--part-size", "5MiB"}
	for _, tc := range []struct {
		name string
		sse  []string
		want types.ServerSideEncryption
	}{
		{"aes256", []string{"--sse", "AES256"}, types.ServerSideEncryptionAes256},
		{"kms", []string{"--sse", "aws:kms", "--sse-kms-key-id", m.KMSKeyID}, types.ServerSideEncryptionAwsKms},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bucket := mkBucket(t, m)
			// Upload (PutObject and CreateMultipartUpload), then a server-side
			// copy within the server (CopyObject).
			if s := ferryJSON(t, 0, append(append([]string{"copy", dir, "s3://" + bucket + "/up"}, conn...), tc.sse...)...); s.Copied != 2 {
				t.Fatalf("upload copied %d", s.Copied)
			}
			srcConn := []string{"--src-endpoint", m.Endpoint, "--src-profile", "k"}
			if s := ferryJSON(t, 0, append(append(append([]string{"copy", "s3://" + bucket + "/up", "s3://" + bucket + "/copy"}, conn...), srcConn...), tc.sse...)...); s.Copied != 2 {
				t.Fatalf("server-side copy copied %d", s.Copied)
			}
			for _, k := range []string{"up/small", "up/big", "copy/small", "copy/big"} {
				h, err := m.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)})
				if err != nil {
					t.Fatal(err)
				}
				if h.ServerSideEncryption != tc.want {
					t.Errorf("%s: encryption %q, want %q", k, h.ServerSideEncryption, tc.want)
				}
				if tc.want == types.ServerSideEncryptionAwsKms && !strings.HasSuffix(aws.ToString(h.SSEKMSKeyId), m.KMSKeyID) {
					t.Errorf("%s: KMS key %q, want %q", k, aws.ToString(h.SSEKMSKeyId), m.KMSKeyID)
				}
			}
		})
	}
}

func TestRemotes(t *testing.T) {
	e := newEnv(t)
	bucket := mkBucket(t, e.b)
	put(t, e.b, bucket, "in/k", []byte("v"), nil)
	isolateConfig(t, fmt.Sprintf("remotes:\n  store:\n    endpoint: %s\n    profile: b\n    ca_bundle: %s\n", e.b.Endpoint, e.b.CAFile))
	out := filepath.Join(t.TempDir(), "out")
	if s := ferryJSON(t, 0, "copy", "store:"+bucket+"/in", out); s.Copied != 1 {
		t.Fatalf("copied %d", s.Copied)
	}
	if b, err := os.ReadFile(filepath.Join(out, "k")); err != nil || string(b) != "v" {
		t.Fatalf("%q %v", b, err)
	}
	// Flags override the remote: a wrong profile is used, and refused.
	r := ferry(t, "copy", "store:"+bucket+"/in", filepath.Join(t.TempDir(), "o"), "--src-profile", "bad")
	if r.code != ExitUsage {
		t.Fatalf("--src-profile did not override the remote: exit %d %s", r.code, r.err)
	}
	// Policies name the remote's bucket and prefix.
	r = ferryCmd(t, "policy", "store:"+bucket+"/in", out)
	var doc policy.Document
	if err := json.Unmarshal([]byte(r.out), &doc); err != nil || r.code != 0 || len(doc.Statement) != 2 ||
		strings.Join(doc.Statement[1].Resource, " ") != "arn:aws:s3:::"+bucket+"/in arn:aws:s3:::"+bucket+"/in/*" {
		t.Fatalf("policy: exit %d %v\n%s", r.code, err, r.out)
	}

	// A strict config: an unknown field is one line naming file:line.
	path := isolateConfig(t, "remotes:\n  store:\n    endpoint: https://x\n    endpiont: https://y\n")
	oneLineErr(t, ferry(t, "copy", "store:"+bucket, out), ExitUsage, path+`:4: field "endpiont" not found`)
	oneLineErr(t, ferryCmd(t, "policy", "store:"+bucket, out), ExitUsage, path+":4:")
}

func TestPolicyCommand(t *testing.T) {
	isolateConfig(t, "")
	r := ferryCmd(t, "policy", "s3://src-bucket/photos", "s3://dst-bucket/backup", "--delete", "--sse", "aws:kms", "--sse-kms-key-id", "alias/ferry")
	var doc policy.Document
	if err := json.Unmarshal([]byte(r.out), &doc); err != nil || r.code != 0 {
		t.Fatalf("exit %d %v\n%s%s", r.code, err, r.out, r.err)
	}
	var sids []string
	for _, s := range doc.Statement {
		sids = append(sids, s.Sid)
	}
	if strings.Join(sids, ",") != "SourceList,SourceRead,DestinationList,DestinationBucket,DestinationWrite,DestinationKMS" {
		t.Fatalf("statements %v", sids)
	}
	if !strings.Contains(r.out, `"s3:DeleteObject"`) || !strings.Contains(r.out, `"alias/ferry"`) {
		t.Fatalf("%s", r.out)
	}
	// Without a trailing "/" a side may be one object (copyto): its key is
	// covered as well as the prefix below it; with one, only the prefix.
	r = ferryCmd(t, "policy", "s3://src-bucket/dir/photo.jpg", "s3://dst-bucket/backup/")
	doc = policy.Document{}
	if err := json.Unmarshal([]byte(r.out), &doc); err != nil || r.code != 0 {
		t.Fatalf("exit %d %v\n%s%s", r.code, err, r.out, r.err)
	}
	if got := strings.Join(doc.Statement[1].Resource, " "); got != "arn:aws:s3:::src-bucket/dir/photo.jpg arn:aws:s3:::src-bucket/dir/photo.jpg/*" {
		t.Errorf("single-object source read: %s", got)
	}
	if got := doc.Statement[0].Condition["StringLike"]["s3:prefix"]; strings.Join(got, " ") != "dir/photo.jpg dir/photo.jpg/*" {
		t.Errorf("single-object source list condition: %v", got)
	}
	if got := strings.Join(doc.Statement[4].Resource, " "); got != "arn:aws:s3:::dst-bucket/backup/*" {
		t.Errorf("destination with a trailing slash: %s", got)
	}
	oneLineErr(t, ferryCmd(t, "policy", "s3://src-bucket", "s3://dst-bucket", "--sse", "rot13"), ExitUsage, "--sse")
	r = ferryCmd(t, "policy", t.TempDir(), t.TempDir())
	if r.code != 0 || !strings.Contains(r.out, `"Statement": []`) || !strings.Contains(r.err, "no IAM permissions") {
		t.Fatalf("local to local: exit %d\n%s%s", r.code, r.out, r.err)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func b64md5(b []byte) string { s := md5.Sum(b); return b64(s[:]) }
