package e2e

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ferry-dev/ferry/internal/testenv"
)

// The compatibility matrix (docs/compatibility.md): every S3-compatible
// server ferry is tested against, as the source and as the destination of
// a copy, a verify and a sync --delete (run twice: the second must change
// nothing), and to and from a local directory. The objects have keys that
// are awkward to encode (+, %20, a bare %, spaces, unicode), user metadata,
// content headers, tags, an empty object, a directory marker and a
// multipart object. "dir/", "dir-x/" and "dir x/" are common prefixes
// SeaweedFS lists in directory-name order ("dir/" first). Every result is checked with a plain S3 client (or the
// file system), not only with ferry verify. One server of each kind is
// shared by all the cells.

// compatServer is one S3 server of the matrix.
type compatServer struct {
	name, endpoint string
	client         *s3.Client
	// noTags: the server does not support object tags.
	noTags bool
	// markerNoMeta: the server keeps no user metadata on directory
	// markers (SeaweedFS), so ferry's provenance is lost there.
	markerNoMeta bool
}

// compatObject is one object of the matrix's data set.
type compatObject struct {
	key  string
	body []byte
	// contentType, cacheControl, meta and tags are set on the object (and
	// expected on its copies at S3 destinations).
	contentType, cacheControl string
	meta, tags                map[string]string
	// parts > 0: uploaded in parts of that size (a multipart ETag).
	parts int
}

func compatObjects() []compatObject {
	big := make([]byte, 11<<20+123)
	for i := range big {
		big[i] = byte(i*7 + i>>13)
	}
	objs := []compatObject{
		// A marker of an empty prefix: a local directory holds it as an
		// empty directory (a marker beside other keys of its prefix has
		// no local equivalent: docs/compatibility.md).
		{key: "empty-dir/"},
		{key: "empty.txt"},
		{key: "meta.txt", body: []byte("with metadata"), contentType: "text/x-ferry", cacheControl: "max-age=60",
			meta: map[string]string{"owner": "alice", "project": "ferry"}, tags: map[string]string{"team": "ferry", "tier": "gold"}},
		{key: "big/multipart.bin", body: big, parts: 5 << 20},
	}
	for _, k := range []string{"plus+key.txt", "pct%20key.txt", "pct%2Bkey.txt", "100%.txt", "100%%.txt", "sp ace/in side.txt",
		"trailing space .txt", "dir/100%/x.txt", "dir-x/y.txt", "dir x/z.txt", "unicode/naïve-日本語-ü.txt", "amp&q?eq=.txt"} {
		objs = append(objs, compatObject{key: k, body: []byte("body of " + k)})
	}
	return objs
}

// seedCompat puts the data set in bucket with a plain client.
func seedCompat(t *testing.T, c *s3.Client, bucket string, objs []compatObject) {
	t.Helper()
	ctx := context.Background()
	for _, o := range objs {
		if o.parts > 0 {
			up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(o.key)})
			if err != nil {
				t.Fatalf("seed %q: %v", o.key, err)
			}
			var parts []types.CompletedPart
			for n, off := int32(1), 0; off < len(o.body); n, off = n+1, off+o.parts {
				end := min(off+o.parts, len(o.body))
				out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(o.key), UploadId: up.UploadId,
					PartNumber: aws.Int32(n), Body: bytes.NewReader(o.body[off:end])})
				if err != nil {
					t.Fatalf("seed %q part %d: %v", o.key, n, err)
				}
				parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.ETag})
			}
			if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(o.key),
				UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
				t.Fatalf("seed %q: complete: %v", o.key, err)
			}
			continue
		}
		in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.key), Body: bytes.NewReader(o.body), Metadata: o.meta}
		if o.contentType != "" {
			in.ContentType = aws.String(o.contentType)
		}
		if o.cacheControl != "" {
			in.CacheControl = aws.String(o.cacheControl)
		}
		if len(o.tags) > 0 {
			var q []string
			for _, k := range slices.Sorted(maps.Keys(o.tags)) {
				q = append(q, k+"="+o.tags[k])
			}
			in.Tagging = aws.String(strings.Join(q, "&"))
		}
		if _, err := c.PutObject(ctx, in); err != nil {
			t.Fatalf("seed %q: %v", o.key, err)
		}
	}
}

// listAll lists every key of bucket with a plain client (no encoding-type).
func listAll(t *testing.T, c *s3.Client, bucket string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list %s: %v", bucket, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	slices.Sort(keys)
	return keys
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// checkS3 checks with a plain client that bucket of srv holds exactly the
// data set (plus extra keys), bytes, metadata, headers and tags.
func checkS3(t *testing.T, srv compatServer, bucket string, objs []compatObject, withAttrs bool, extra ...string) {
	t.Helper()
	ctx := context.Background()
	var want []string
	for _, o := range objs {
		want = append(want, o.key)
	}
	want = append(want, extra...)
	slices.Sort(want)
	if got := listAll(t, srv.client, bucket); !slices.Equal(got, want) {
		t.Errorf("%s/%s lists %q, want %q", srv.name, bucket, got, want)
	}
	for _, o := range objs {
		out, err := srv.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.key)})
		if err != nil {
			t.Errorf("%s/%s: get %q: %v", srv.name, bucket, o.key, err)
			continue
		}
		b, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || md5hex(b) != md5hex(o.body) {
			t.Errorf("%s/%s: %q: %d bytes (md5 %s), want %d (md5 %s), err %v", srv.name, bucket, o.key, len(b), md5hex(b), len(o.body), md5hex(o.body), err)
		}
		if !withAttrs {
			continue
		}
		for k, v := range o.meta {
			if got := out.Metadata[k]; got != v {
				t.Errorf("%s/%s: %q: metadata %s = %q, want %q (all: %v)", srv.name, bucket, o.key, k, got, v, out.Metadata)
			}
		}
		if o.contentType != "" && aws.ToString(out.ContentType) != o.contentType {
			t.Errorf("%s/%s: %q: content type %q, want %q", srv.name, bucket, o.key, aws.ToString(out.ContentType), o.contentType)
		}
		if o.cacheControl != "" && aws.ToString(out.CacheControl) != o.cacheControl {
			t.Errorf("%s/%s: %q: cache control %q, want %q", srv.name, bucket, o.key, aws.ToString(out.CacheControl), o.cacheControl)
		}
		if len(o.tags) > 0 && !srv.noTags {
			tg, err := srv.client.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String(o.key)})
			if err != nil {
				t.Errorf("%s/%s: tags of %q: %v", srv.name, bucket, o.key, err)
				continue
			}
			got := map[string]string{}
			for _, tag := range tg.TagSet {
				got[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
			}
			if !maps.Equal(got, o.tags) {
				t.Errorf("%s/%s: %q: tags %v, want %v", srv.name, bucket, o.key, got, o.tags)
			}
		}
	}
}

// checkLocal checks that dir holds the data set's files (markers are
// directories).
func checkLocal(t *testing.T, dir string, objs []compatObject) {
	t.Helper()
	for _, o := range objs {
		p := filepath.Join(dir, filepath.FromSlash(o.key))
		if strings.HasSuffix(o.key, "/") {
			if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
				t.Errorf("local: marker %q: %v", o.key, err)
			}
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil || md5hex(b) != md5hex(o.body) {
			t.Errorf("local: %q: %d bytes, want %d, err %v", o.key, len(b), len(o.body), err)
		}
	}
}

// compatSummary is what the matrix reads of a job's JSON summary.
type compatSummary struct {
	Status  string `json:"status"`
	Copied  int64  `json:"objects_copied"`
	Skipped int64  `json:"objects_skipped"`
	Failed  int64  `json:"objects_failed"`
	Deleted int64  `json:"objects_deleted"`
	// ProvLost counts copies the destination kept no provenance on.
	ProvLost int64  `json:"objects_provenance_lost"`
	Error    string `json:"error"`
}

// ferryJSON runs ferry with --json and returns its summary; a non-zero
// exit fails the test.
func ferryJSON(t *testing.T, w *world, args ...string) compatSummary {
	t.Helper()
	code, out, errs := w.run(append(args, "--json", "--no-progress")...)
	if code != 0 {
		t.Fatalf("ferry %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, errs)
	}
	var s compatSummary
	if err := json.Unmarshal([]byte(lastLine(out)), &s); err != nil {
		t.Fatalf("ferry %s: summary %q: %v", strings.Join(args, " "), out, err)
	}
	return s
}

// side is one end of a cell: a bucket on a server, or a local directory.
type side struct {
	srv    *compatServer
	bucket string
	dir    string
}

func (s side) url() string {
	if s.srv == nil {
		return s.dir
	}
	return "s3://" + s.bucket
}

func (s side) flags(role string) []string {
	if s.srv == nil {
		return nil
	}
	return []string{"--" + role + "-endpoint", s.srv.endpoint, "--" + role + "-profile", s.srv.name}
}

// runCell copies src to dst, checks the copy independently, verifies it,
// and (S3 to S3) syncs with --delete twice: the first deletes an extra
// destination object and nothing else, the second changes nothing.
func runCell(t *testing.T, w *world, src, dst side, objs []compatObject) {
	args := func(cmd string, extra ...string) []string {
		a := append([]string{cmd, src.url(), dst.url()}, src.flags("src")...)
		a = append(a, dst.flags("dst")...)
		return append(a, extra...)
	}
	s := ferryJSON(t, w, args("copy", "--part-size", "5MiB")...)
	if s.Status != "done" || s.Failed != 0 {
		t.Fatalf("copy: %+v", s)
	}
	wantLost := int64(0)
	if dst.srv != nil && dst.srv.markerNoMeta {
		wantLost = 1 // the data set's one directory marker
	}
	if s.ProvLost != wantLost {
		t.Errorf("copy: the destination kept no provenance on %d objects, want %d", s.ProvLost, wantLost)
	}
	t.Logf("copy %s -> %s: %d copied, %d without provenance", src.url(), dst.url(), s.Copied, s.ProvLost)
	withAttrs := src.srv != nil
	if dst.srv == nil {
		checkLocal(t, dst.dir, objs)
	} else {
		checkS3(t, *dst.srv, dst.bucket, objs, withAttrs)
	}
	if code, out, errs := w.run(args("verify", "--no-progress")...); code != 0 {
		t.Errorf("verify: exit %d\n%s\n%s", code, out, errs)
	}
	if src.srv == nil || dst.srv == nil {
		// Local sides: the copy again copies nothing.
		if s := ferryJSON(t, w, args("copy")...); s.Copied != 0 || s.Failed != 0 {
			t.Errorf("a second copy: %+v", s)
		}
		return
	}
	if _, err := dst.srv.client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(dst.bucket),
		Key: aws.String("stale+old%.txt"), Body: strings.NewReader("stale")}); err != nil {
		t.Fatal(err)
	}
	s = ferryJSON(t, w, args("sync", "--delete")...)
	if s.Status != "done" || s.Deleted != 1 || s.Copied != 0 || s.Failed != 0 {
		t.Errorf("sync --delete: %+v (want 1 deleted, nothing copied)", s)
	}
	checkS3(t, *dst.srv, dst.bucket, objs, withAttrs)
	if s := ferryJSON(t, w, args("sync", "--delete")...); s.Copied != 0 || s.Deleted != 0 || s.Failed != 0 {
		t.Errorf("a second sync --delete did not converge: %+v", s)
	}
}

// TestCompatMatrix runs the cells against one server of each kind (a
// missing binary skips the test, or fails it on CI, as the helpers do).
func TestCompatMatrix(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	ref := compatServer{name: "minio", endpoint: m.Endpoint, client: m.Client()}
	servers := []compatServer{ref}
	type creds struct{ key, secret, region, endpoint string }
	profiles := map[string]creds{"minio": {m.AccessKey, m.SecretKey, m.Region, m.Endpoint}}
	v := testenv.StartVersityGW(t)
	servers = append(servers, compatServer{name: "versitygw", endpoint: v.Endpoint, client: v.Client()})
	profiles["versitygw"] = creds{v.AccessKey, v.SecretKey, v.Region, v.Endpoint}
	sw := testenv.StartSeaweedFS(t)
	servers = append(servers, compatServer{name: "seaweedfs", endpoint: sw.Endpoint, client: sw.Client(), markerNoMeta: true})
	profiles["seaweedfs"] = creds{sw.AccessKey, sw.SecretKey, sw.Region, sw.Endpoint}
	var credFile, confFile strings.Builder
	for _, name := range slices.Sorted(maps.Keys(profiles)) {
		p := profiles[name]
		fmt.Fprintf(&credFile, "[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n\n", name, p.key, p.secret)
		fmt.Fprintf(&confFile, "[profile %s]\nregion = %s\n\n", name, p.region)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "credentials"), []byte(credFile.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(confFile.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, stateDir: t.TempDir(), configDir: filepath.Join(t.TempDir(), "config")}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			w.env = append(w.env, kv)
		}
	}
	w.env = append(w.env, "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"), "AWS_CONFIG_FILE="+filepath.Join(dir, "config"),
		"XDG_STATE_HOME="+w.stateDir, "FERRY_CONFIG_DIR="+w.configDir)

	objs := compatObjects()
	ctx := context.Background()
	mk := func(srv compatServer, bucket string) {
		if err := createBucketFor(ctx, srv.client, bucket); err != nil {
			t.Fatalf("%s: create bucket %s: %v", srv.name, bucket, err)
		}
	}
	mk(ref, "ref-src")
	seedCompat(t, ref.client, "ref-src", objs)
	for i := range servers {
		srv := &servers[i]
		mk(*srv, "src")
		seedCompat(t, srv.client, "src", objs)
		t.Run(srv.name+"/source", func(t *testing.T) {
			start := time.Now()
			w := *w
			w.t = t
			mk(ref, "from-"+srv.name)
			runCell(t, &w, side{srv: srv, bucket: "src"}, side{srv: &ref, bucket: "from-" + srv.name}, objs)
			t.Logf("%s as the source: %s", srv.name, time.Since(start).Round(time.Millisecond))
		})
		t.Run(srv.name+"/destination", func(t *testing.T) {
			start := time.Now()
			w := *w
			w.t = t
			mk(*srv, "dst")
			runCell(t, &w, side{srv: &ref, bucket: "ref-src"}, side{srv: srv, bucket: "dst"}, objs)
			t.Logf("%s as the destination: %s", srv.name, time.Since(start).Round(time.Millisecond))
		})
		t.Run(srv.name+"/local", func(t *testing.T) {
			w := *w
			w.t = t
			out := t.TempDir()
			runCell(t, &w, side{srv: srv, bucket: "src"}, side{dir: out}, objs)
			mk(*srv, "from-local")
			runCell(t, &w, side{dir: out}, side{srv: srv, bucket: "from-local"}, objs)
		})
	}
}

func createBucketFor(ctx context.Context, c *s3.Client, name string) error {
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	return err
}
