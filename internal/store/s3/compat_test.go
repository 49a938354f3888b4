package s3

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/storetest"
	"github.com/ferry-dev/ferry/internal/testenv"
)

// openProxied opens a Store on bucket through proxy p.
func openProxied(t *testing.T, p *testenv.S3Proxy, bucket, prefix string) *Store {
	t.Helper()
	s, err := Open(t.Context(), Config{
		Bucket:      bucket,
		Prefix:      prefix,
		Endpoint:    p.Endpoint,
		Region:      p.Region,
		Credentials: credentials.NewStaticCredentialsProvider(p.AccessKey, p.SecretKey, ""),
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// encodingKeys are keys that a listing decoded when it should not (or not
// decoded when it should) gets wrong: "+" and "%20" decode to a space, a
// bare "%" does not decode at all.
var encodingKeys = []string{
	"plus+key.txt", "a+b+c", "+", "pct%20key.txt", "%2B", "a%2Fb", "100%.txt", "100%", "%", "%zz", "%%",
	"space key.txt", " lead", "trail ", "tab\tkey", "uni/ñ日本語🎉", "e\u0301", "amp&lt;", "q?x=1&y=2",
	"dir/plus+/x", "dir/100%/y", "dir/a b/z", "dir/%20/w", "dir/tab\t/v", "dir/key+1", "dir/key%1",
	"dir+/k", "dir%/k", "dir /k",
}

// encodingUploads are the keys of incomplete uploads [seedEncodingKeys]
// starts.
var encodingUploads = []string{"up+load.txt", "up%load.txt", "up load.txt"}

// seedEncodingKeys writes encodingKeys with s and starts an upload of each
// of encodingUploads; it returns the upload IDs by key.
func seedEncodingKeys(t *testing.T, s *Store) map[string]string {
	t.Helper()
	for _, k := range encodingKeys {
		put(t, s, k, []byte(k))
	}
	ids := map[string]string{}
	for _, k := range encodingUploads {
		id, err := s.CreateMultipart(t.Context(), store.PutInput{Key: k, PartSize: 5 << 20})
		if err != nil {
			t.Fatal(err)
		}
		ids[k] = id
	}
	return ids
}

// checkEncodingKeys lists what seedEncodingKeys wrote, with stores open
// returns at the bucket root ("") or below a prefix.
func checkEncodingKeys(t *testing.T, open func(t *testing.T, prefix string) *Store, ids map[string]string) {
	t.Helper()
	requireFastPath(t)
	s := open(t, "")
	all := slices.Sorted(slices.Values(encodingKeys))
	if got := keys(list(t, s, store.ListOptions{})); !slices.Equal(got, all) {
		t.Errorf("List:\n got %q\nwant %q", got, all)
	}
	for _, opts := range []store.ListOptions{
		{Prefix: "dir/"}, {Prefix: "dir+"}, {Prefix: "100%"}, {Prefix: "%"}, {Prefix: "a+"},
		{StartAfter: "100%"}, {StartAfter: "+"}, {StartAfter: "dir/100%/y"}, {Prefix: "dir/", StartAfter: "dir/a b/"},
	} {
		var want []string
		for _, k := range all {
			if strings.HasPrefix(k, opts.Prefix) && k > opts.StartAfter {
				want = append(want, k)
			}
		}
		if got := keys(list(t, s, opts)); !slices.Equal(got, want) {
			t.Errorf("List(%+v):\n got %q\nwant %q", opts, got, want)
		}
	}
	// One level, checked against the roll-up of the full listing.
	for _, opts := range []store.ListOptions{
		{}, {Prefix: "dir/"}, {Prefix: "dir/plus+/"}, {Prefix: "dir/100%/"}, {Prefix: "dir/tab\t/"},
		{StartAfter: "dir/100%/"}, {StartAfter: "dir/100%/a"}, {Prefix: "dir/", StartAfter: "dir/100%/"},
		{Prefix: "dir/", StartAfter: "dir/a b/a"},
	} {
		var want []string
		for e, err := range store.RollUp(s.List(t.Context(), opts), opts) {
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, levelName(e))
		}
		if got := storetest.ListLevel(t, s, opts); !slices.Equal(got, want) {
			t.Errorf("ListLevel(%+v):\n got %q\nwant %q", opts, got, want)
		}
	}
	for _, k := range encodingUploads {
		var got []Upload
		for u, err := range s.ListMultipartUploads(t.Context(), k) {
			if err != nil {
				t.Fatalf("ListMultipartUploads(%q): %v", k, err)
			}
			got = append(got, u)
		}
		if len(got) != 1 || got[0].Key != k || got[0].UploadID != ids[k] {
			t.Errorf("ListMultipartUploads(%q) = %+v", k, got)
		}
	}
	// A store below a prefix that needs encoding.
	sub := open(t, "dir/100%")
	if got, want := keys(list(t, sub, store.ListOptions{})), []string{"y"}; !slices.Equal(got, want) {
		t.Errorf("List of %s = %q, want %q", sub, got, want)
	}
}

// TestListEncoding lists keys whose URL encoding is ambiguous, byte-exact,
// from MinIO (which honours encoding-type=url) and from MinIO behind a proxy
// that answers like Versity Gateway: raw keys and no EncodingType.
func TestListEncoding(t *testing.T) {
	m, bucket := newBucket(t)
	ids := seedEncodingKeys(t, openStore(t, m, bucket, ""))
	proxy := testenv.StartS3Proxy(t, m, testenv.S3ProxyOptions{RewriteList: testenv.RawListKeys})
	t.Run("minio", func(t *testing.T) {
		checkEncodingKeys(t, func(t *testing.T, prefix string) *Store { return openStore(t, m, bucket, prefix) }, ids)
	})
	t.Run("raw-keys-proxy", func(t *testing.T) {
		checkEncodingKeys(t, func(t *testing.T, prefix string) *Store { return openProxied(t, proxy, bucket, prefix) }, ids)
	})
	if proxy.Rewrites() == 0 {
		t.Error("the proxy rewrote no listing")
	}
}

func levelName(e store.Entry) string {
	if e.IsPrefix {
		return e.Key + " (prefix)"
	}
	return e.Key
}

// TestListMislabeledKeys lists from a server that says its keys are
// URL-encoded when they are raw: a key that does not decode is an error
// naming it, in its place, and the listing goes on.
func TestListMislabeledKeys(t *testing.T) {
	m, bucket := newBucket(t)
	seed := openStore(t, m, bucket, "")
	for _, k := range []string{"a.txt", "100%.txt", "d/100%/x", "d/ok", "z.txt"} {
		put(t, seed, k, []byte(k))
	}
	proxy := testenv.StartS3Proxy(t, m, testenv.S3ProxyOptions{RewriteList: testenv.MislabeledListKeys})
	s := openProxied(t, proxy, bucket, "")

	check := func(what string, got, want []string, errs []error) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", what, got, want)
		}
		for _, err := range errs {
			if !errors.Is(err, store.ErrInvalidKey) || !store.Permanent(err) {
				t.Errorf("%s: error %v does not wrap ErrInvalidKey", what, err)
			}
		}
	}
	var got []string
	var errs []error
	for o, err := range s.List(t.Context(), store.ListOptions{}) {
		if err != nil {
			got, errs = append(got, "error: "+err.Error()), append(errs, err)
			continue
		}
		got = append(got, o.Key)
	}
	const msg = `: response says EncodingType url, but the key does not decode: invalid URL escape "%`
	check("List", got, []string{
		"error: list s3://" + bucket + `/: invalid key: listed key "100%.txt"` + msg + `.t"`,
		"a.txt",
		"error: list s3://" + bucket + `/: invalid key: listed key "d/100%/x"` + msg + `/x"`,
		"d/ok", "z.txt",
	}, errs)

	got, errs = nil, nil
	for _, opts := range []store.ListOptions{{}, {Prefix: "d/"}} {
		for e, err := range s.ListLevel(t.Context(), opts) {
			if err != nil {
				got, errs = append(got, "error: "+err.Error()), append(errs, err)
				continue
			}
			got = append(got, levelName(e))
		}
	}
	check("ListLevel", got, []string{
		"error: list s3://" + bucket + `/: invalid key: listed key "100%.txt"` + msg + `.t"`,
		"a.txt", "d/ (prefix)", "z.txt",
		"error: list s3://" + bucket + `/d/: invalid key: listed key "d/100%/"` + msg + `/"`,
		"d/ok",
	}, errs)

	// A caller that stops at the first error stops there.
	n := 0
	for _, err := range s.List(t.Context(), store.ListOptions{}) {
		n++
		if err != nil {
			break
		}
	}
	if n != 1 {
		t.Errorf("stopped after %d items, want 1", n)
	}
	if proxy.Rewrites() == 0 {
		t.Error("the proxy rewrote no listing")
	}
}

// TestConformanceRawListKeys runs the conformance suites through a proxy
// that answers listings like Versity Gateway (raw keys, no EncodingType).
func TestConformanceRawListKeys(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	proxy := testenv.StartS3Proxy(t, m, testenv.S3ProxyOptions{RewriteList: testenv.RawListKeys})
	n := 0
	newStore := func(t *testing.T) store.Store {
		n++
		bucket := fmt.Sprintf("raw-%d", n)
		m.CreateBucket(t, bucket)
		return openProxied(t, proxy, bucket, "")
	}
	t.Run("Run", func(t *testing.T) { storetest.Run(t, newStore, storetest.Options{}) })
	t.Run("RunLevel", func(t *testing.T) { storetest.RunLevel(t, newStore, storetest.Options{}) })
	if proxy.Rewrites() == 0 {
		t.Error("the proxy rewrote no listing")
	}
}

// TestNoEmptyMetadata checks that no request carries a user metadata header
// with an empty value (SeaweedFS drops them), for every way of writing.
func TestNoEmptyMetadata(t *testing.T) {
	m, bucket := newBucket(t)
	proxy := testenv.StartS3Proxy(t, m, testenv.S3ProxyOptions{})
	s := openProxied(t, proxy, bucket, "p")
	md := map[string]string{"kept": "v", "empty": "", "ferry-src-etag": ""}
	mdBefore := maps.Clone(md)
	want := map[string]string{"kept": "v"}

	body := []byte("metadata")
	if _, err := s.Put(t.Context(), store.PutInput{Key: "put", Size: int64(len(body)), Metadata: md, ChecksumCRC32C: crc32c(body)}, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	id, err := s.CreateMultipart(t.Context(), store.PutInput{Key: "multipart", PartSize: 5 << 20, Metadata: md})
	if err != nil {
		t.Fatal(err)
	}
	part, err := s.UploadPart(t.Context(), "multipart", id, 1, bytes.NewReader(body), int64(len(body)), crc32c(body))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CompleteMultipart(t.Context(), "multipart", id, []store.Part{part}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CopyFrom(t.Context(), s, "put", store.PutInput{Key: "copy", Size: int64(len(body)), Metadata: md}); err != nil {
		t.Fatal(err)
	}
	s.copyPartThreshold, s.copyPartSize = 1, 5<<20
	if _, err := s.CopyFrom(t.Context(), s, "put", store.PutInput{Key: "copy-parts", Size: int64(len(body)), Metadata: md}); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(md, mdBefore) {
		t.Errorf("caller's metadata changed to %v", md)
	}

	metaHeaders := 0
	for _, r := range proxy.Requests() {
		for name, vals := range r.Header {
			if !strings.HasPrefix(strings.ToLower(name), "x-amz-meta-") {
				continue
			}
			metaHeaders++
			if slices.Contains(vals, "") {
				t.Errorf("%s %s sent %s: %q", r.Method, r.URL, name, vals)
			}
		}
	}
	// x-amz-meta-kept on Put, CreateMultipart, CopyObject, CreateMultipart.
	if metaHeaders != 4 {
		t.Errorf("%d user metadata headers sent, want 4", metaHeaders)
	}
	for _, k := range []string{"put", "multipart", "copy", "copy-parts"} {
		a, err := s.Stat(t.Context(), k)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(a.Metadata, want) {
			t.Errorf("%s: metadata %v, want %v", k, a.Metadata, want)
		}
	}
}

func TestListedKey(t *testing.T) {
	for _, tc := range []struct {
		sent string
		enc  types.EncodingType
		want string
		err  bool
	}{
		{"a+b%20c", "", "a+b%20c", false},
		{"100%", "", "100%", false},
		{"a+b%20c", types.EncodingTypeUrl, "a b c", false},
		{"a%2Bb", "URL", "a+b", false},
		{"%C3%A9%09", types.EncodingTypeUrl, "é\t", false},
		{"100%", types.EncodingTypeUrl, "", true},
		{"%zz", types.EncodingTypeUrl, "", true},
	} {
		got, err := listedKey(tc.sent, tc.enc)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("listedKey(%q, %q) = %q, %v", tc.sent, tc.enc, got, err)
		}
		if err != nil && (!errors.Is(err, errUndecodableKey) || !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.sent))) {
			t.Errorf("listedKey(%q, %q) error %q does not name the key", tc.sent, tc.enc, err)
		}
	}
}

// TestProxyPassThrough checks the proxy leaves what it does not rewrite
// alone: signed requests of every kind and their answers.
func TestProxyPassThrough(t *testing.T) {
	m, bucket := newBucket(t)
	proxy := testenv.StartS3Proxy(t, m, testenv.S3ProxyOptions{RewriteList: testenv.RawListKeys})
	s := openProxied(t, proxy, bucket, "")
	put(t, s, "k+1", []byte("through the proxy"))
	if got, _ := read(t, s, "k+1", 0, -1); string(got) != "through the proxy" {
		t.Errorf("read %q", got)
	}
	out, err := m.Client().ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), EncodingType: types.EncodingTypeUrl})
	if err != nil || len(out.Contents) != 1 || aws.ToString(out.Contents[0].Key) == "k+1" || out.EncodingType != types.EncodingTypeUrl {
		t.Errorf("MinIO lists %v (%q), %v", out.Contents, out.EncodingType, err)
	}
	out, err = s.Client().ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), EncodingType: types.EncodingTypeUrl})
	if err != nil || len(out.Contents) != 1 || aws.ToString(out.Contents[0].Key) != "k+1" || out.EncodingType != "" {
		t.Errorf("the proxy lists %v (%q), %v", out.Contents, out.EncodingType, err)
	}
}

// TestPageItemsSeaweedFSOrder: a page as SeaweedFS sends it is yielded in
// key order and after StartAfter. SeaweedFS orders common prefixes by
// directory name ("d/" before "d-/" and "d /"), and answers StartAfter "/"
// with keys before "/" too (TestSeaweedFSConformance, TestSeaweedFSListEncoding
// on the server itself).
func TestPageItemsSeaweedFSOrder(t *testing.T) {
	s := &Store{}
	entries := func(items []pageItem) []string {
		var got []string
		for _, it := range items {
			if it.err != nil {
				t.Fatalf("item error: %v", it.err)
			}
			if it.IsPrefix {
				got = append(got, it.Key+" (prefix)")
			} else {
				got = append(got, it.Key)
			}
		}
		return got
	}
	objs := func(keys ...string) []types.Object {
		var o []types.Object
		for _, k := range keys {
			o = append(o, types.Object{Key: aws.String(k), Size: aws.Int64(1)})
		}
		return o
	}
	cps := func(keys ...string) []types.CommonPrefix {
		var c []types.CommonPrefix
		for _, k := range keys {
			c = append(c, types.CommonPrefix{Prefix: aws.String(k)})
		}
		return c
	}
	for _, tc := range []struct {
		name       string
		out        *s3.ListObjectsV2Output
		startAfter string
		want       []string
	}{
		{"prefixes by directory name", &s3.ListObjectsV2Output{EncodingType: types.EncodingTypeUrl,
			Contents: objs("d-x", "d.x"), CommonPrefixes: cps("d%2F", "d+%2F", "d-%2F", "d.%2F", "d0%2F")}, "",
			[]string{"d / (prefix)", "d-/ (prefix)", "d-x", "d./ (prefix)", "d.x", "d/ (prefix)", "d0/ (prefix)"}},
		{"start after slash", &s3.ListObjectsV2Output{
			Contents: objs("--", "-.é", ".a", "/", "0", "a"), CommonPrefixes: nil}, "/",
			[]string{"0", "a"}},
		{"prefixes before start after", &s3.ListObjectsV2Output{
			Contents: objs("a", "c"), CommonPrefixes: cps("a-/", "b/", "bb/")}, "b/x",
			[]string{"b/ (prefix)", "bb/ (prefix)", "c"}},
		{"a prefix holding start after is kept", &s3.ListObjectsV2Output{
			Contents: objs("b/y"), CommonPrefixes: cps("b/")}, "b/",
			[]string{"b/ (prefix)", "b/y"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			items, err := s.pageItems(tc.out, "s3://b/", tc.startAfter)
			if err != nil {
				t.Fatal(err)
			}
			if got := entries(items); !slices.Equal(got, tc.want) {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}
