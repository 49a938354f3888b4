package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyauth "github.com/aws/smithy-go/auth"
	smithyendpoints "github.com/aws/smithy-go/endpoints"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ferry-dev/ferry/internal/store"
)

// endpointCases are parameters as the SDK binds them for ferry's requests:
// explicit endpoints (path style, http and https, a path prefix, an IPv6
// host) and, for comparison, AWS's own (virtual-hosted, FIPS, dual-stack),
// with buckets the rules treat differently (dots, an S3 Express name, an
// access point ARN) and parameter sets the rules refuse.
func endpointCases() []s3.EndpointParameters {
	var out []s3.EndpointParameters
	endpoints := []*string{
		aws.String("http://127.0.0.1:9000"),
		aws.String("https://minio.example:9000"),
		aws.String("https://s3.example/prefix/path"),
		aws.String("http://[::1]:9000/"),
		nil,
	}
	buckets := []*string{
		aws.String("bucket"), aws.String("my.dotted.bucket"), aws.String("UPPER_case"),
		aws.String("demo--usw2-az1--x-s3"),
		aws.String("arn:aws:s3:us-west-2:123456789012:accesspoint/myendpoint"),
		nil,
	}
	for _, ep := range endpoints {
		for _, b := range buckets {
			for _, region := range []string{"us-east-1", "eu-central-1"} {
				for _, flags := range [][3]bool{{false, false, false}, {true, false, false}, {false, true, false}, {false, false, true}} {
					out = append(out, s3.EndpointParameters{
						Bucket:         b,
						Region:         aws.String(region),
						Endpoint:       ep,
						ForcePathStyle: aws.Bool(ep != nil),
						UseFIPS:        aws.Bool(flags[0]),
						UseDualStack:   aws.Bool(flags[1]),
						Accelerate:     aws.Bool(flags[2]),
						UseArnRegion:   aws.Bool(false),
						Key:            aws.String("dir/a key+with%20odd é chars"),
					})
				}
			}
		}
	}
	return out
}

// authOptions describes an endpoint's auth options as comparable text.
func authOptions(e *smithyendpoints.Endpoint) string {
	opts, _ := smithyauth.GetAuthOptions(&e.Properties)
	var b strings.Builder
	for _, o := range opts {
		fmt.Fprintf(&b, "%s identity=%v signer=%v; ", o.SchemeID, o.IdentityProperties.Values(), o.SignerProperties.Values())
	}
	return b.String()
}

func sameEndpoint(t *testing.T, what string, got, want smithyendpoints.Endpoint, gotErr, wantErr error) {
	t.Helper()
	if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
		t.Fatalf("%s: error %v, the SDK's %v", what, gotErr, wantErr)
	}
	if gotErr != nil {
		return
	}
	if got.URI.String() != want.URI.String() || got.URI.Path != want.URI.Path || got.URI.RawPath != want.URI.RawPath {
		t.Errorf("%s: URI %q (path %q raw %q), the SDK's %q (path %q raw %q)", what,
			got.URI.String(), got.URI.Path, got.URI.RawPath, want.URI.String(), want.URI.Path, want.URI.RawPath)
	}
	if len(got.Headers)+len(want.Headers) > 0 && !reflect.DeepEqual(got.Headers, want.Headers) {
		t.Errorf("%s: headers %v, the SDK's %v", what, got.Headers, want.Headers)
	}
	if g, w := authOptions(&got), authOptions(&want); g != w {
		t.Errorf("%s: auth options\n%s\nthe SDK's\n%s", what, g, w)
	}
	gp, wp := got.Properties.Values(), want.Properties.Values()
	if len(gp) != len(wp) {
		t.Errorf("%s: properties %v, the SDK's %v", what, gp, wp)
	}
}

// TestMemoResolverSameAsSDK: for every case the memo answers what the
// SDK's resolver answers, the first time and from memory.
func TestMemoResolverSameAsSDK(t *testing.T) {
	ctx := context.Background()
	sdk := s3.NewDefaultEndpointResolverV2()
	r := newMemoResolver(s3.NewDefaultEndpointResolverV2())
	cases := endpointCases()
	for round := range 2 {
		for _, p := range cases {
			want, wantErr := sdk.ResolveEndpoint(ctx, p)
			got, gotErr := r.ResolveEndpoint(ctx, p)
			what := fmt.Sprintf("round %d endpoint %s bucket %s region %s fips %v dualstack %v accelerate %v",
				round, aws.ToString(p.Endpoint), aws.ToString(p.Bucket), aws.ToString(p.Region),
				*p.UseFIPS, *p.UseDualStack, *p.Accelerate)
			sameEndpoint(t, what, got, want, gotErr, wantErr)
		}
	}
	if n := len(r.memo); n != maxMemoEndpoints {
		t.Errorf("memo holds %d answers, want the bound %d", n, maxMemoEndpoints)
	}
}

// TestMemoResolverPathStyle: the URL of a path-style request is the
// endpoint and the bucket, signed for s3 in the region, without double
// encoding.
func TestMemoResolverPathStyle(t *testing.T) {
	r := newMemoResolver(s3.NewDefaultEndpointResolverV2())
	for _, c := range []struct{ endpoint, bucket, want string }{
		{"http://127.0.0.1:9000", "bucket", "http://127.0.0.1:9000/bucket"},
		{"https://minio.example", "my.bucket", "https://minio.example/my.bucket"},
		{"https://s3.example/prefix/", "b-1", "https://s3.example/prefix/b-1"},
	} {
		for range 2 {
			e, err := r.ResolveEndpoint(t.Context(), s3.EndpointParameters{
				Bucket: aws.String(c.bucket), Region: aws.String("eu-west-3"), Endpoint: aws.String(c.endpoint),
				ForcePathStyle: aws.Bool(true), UseFIPS: aws.Bool(false), UseDualStack: aws.Bool(false),
			})
			if err != nil {
				t.Fatalf("%s %s: %v", c.endpoint, c.bucket, err)
			}
			if e.URI.String() != c.want {
				t.Errorf("%s %s: %s, want %s", c.endpoint, c.bucket, e.URI.String(), c.want)
			}
			opts, _ := smithyauth.GetAuthOptions(&e.Properties)
			if len(opts) != 1 || opts[0].SchemeID != "sigv4" {
				t.Fatalf("%s %s: auth options %s", c.endpoint, c.bucket, authOptions(&e))
			}
			sp := &opts[0].SignerProperties
			name, _ := smithyhttp.GetSigV4SigningName(sp)
			region, _ := smithyhttp.GetSigV4SigningRegion(sp)
			noDouble, _ := smithyhttp.GetDisableDoubleEncoding(sp)
			if name != "s3" || region != "eu-west-3" || !noDouble {
				t.Errorf("%s %s: signing name %v region %v disable double encoding %v", c.endpoint, c.bucket, name, region, noDouble)
			}
		}
	}
}

// TestMemoResolverKey: the memo's key has every parameter the rules read;
// Key, Prefix and CopySource, which it leaves out, change no answer. A new
// parameter in a later SDK fails here until endpointKey has it.
func TestMemoResolverKey(t *testing.T) {
	known := []string{
		"Bucket", "Region", "UseFIPS", "UseDualStack", "Endpoint", "ForcePathStyle", "Accelerate",
		"UseGlobalEndpoint", "UseObjectLambdaEndpoint", "Key", "Prefix", "CopySource",
		"DisableAccessPoints", "DisableMultiRegionAccessPoints", "UseArnRegion",
		"UseS3ExpressControlEndpoint", "DisableS3ExpressSessionAuth",
	}
	typ := reflect.TypeFor[s3.EndpointParameters]()
	for i := range typ.NumField() {
		if f := typ.Field(i); f.IsExported() && !slices.Contains(known, f.Name) {
			t.Errorf("s3.EndpointParameters has a field %s that endpointKey does not know", f.Name)
		}
	}
	// Every field of the key changes it.
	base := s3.EndpointParameters{}
	seen := map[endpointKey]string{keyOf(&base): "zero"}
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Name == "Key" || f.Name == "Prefix" || f.Name == "CopySource" {
			continue
		}
		for _, v := range []any{aws.String(""), aws.String("x"), aws.Bool(false), aws.Bool(true)} {
			if reflect.TypeOf(v) != f.Type {
				continue
			}
			p := base
			reflect.ValueOf(&p).Elem().Field(i).Set(reflect.ValueOf(v))
			k := keyOf(&p)
			if other, ok := seen[k]; ok {
				t.Errorf("%s = %v has the key of %s", f.Name, reflect.ValueOf(v).Elem(), other)
			}
			seen[k] = fmt.Sprintf("%s = %v", f.Name, reflect.ValueOf(v).Elem())
		}
	}

	sdk := s3.NewDefaultEndpointResolverV2()
	for _, p := range endpointCases() {
		want, wantErr := sdk.ResolveEndpoint(t.Context(), p)
		q := p
		q.Key, q.Prefix, q.CopySource = aws.String("other/key"), aws.String("pre/"), aws.String("src/obj")
		if keyOf(&p) != keyOf(&q) {
			t.Fatalf("Key, Prefix, CopySource change the key")
		}
		got, gotErr := sdk.ResolveEndpoint(t.Context(), q)
		sameEndpoint(t, "other Key, Prefix and CopySource", got, want, gotErr, wantErr)
	}
}

// TestMemoResolverCopies: what the caller does to an answer (the SDK
// merges auth properties into it) does not reach the memo, also when many
// requests resolve at once (go test -race).
func TestMemoResolverCopies(t *testing.T) {
	r := newMemoResolver(s3.NewDefaultEndpointResolverV2())
	p := s3.EndpointParameters{
		Bucket: aws.String("bucket"), Region: aws.String("us-east-1"), Endpoint: aws.String("http://127.0.0.1:9000"),
		ForcePathStyle: aws.Bool(true), UseFIPS: aws.Bool(false), UseDualStack: aws.Bool(false),
	}
	first, err := r.ResolveEndpoint(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	want := authOptions(&first)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				e, err := r.ResolveEndpoint(context.Background(), p)
				if err != nil {
					t.Error(err)
					return
				}
				opts, _ := smithyauth.GetAuthOptions(&e.Properties)
				for _, o := range opts {
					o.SignerProperties.Set("changed", true)
					o.IdentityProperties = smithy.Properties{}
				}
				e.URI.Path = "/changed"
				e.Properties.Set("changed", true)
			}
		})
	}
	wg.Wait()
	e, err := r.ResolveEndpoint(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if got := authOptions(&e); got != want || e.URI.Path != "/bucket" || e.Properties.Has("changed") {
		t.Errorf("after changes to answers: %s %s, want %s", e.URI.String(), got, want)
	}
}

// TestStoreRequestsAsSDK: a Store's requests for keys with spaces,
// unicode, "+" and "%" go to the same URL with the same signature as the
// same client sends with the SDK's own resolver and untrimmed stack.
func TestStoreRequestsAsSDK(t *testing.T) {
	type seen struct{ method, uri, host, auth, date string }
	var mu sync.Mutex
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		got = append(got, seen{r.Method, r.RequestURI, r.Host, r.Header.Get("Authorization"), r.Header.Get("X-Amz-Date")})
		mu.Unlock()
		w.Header().Set("ETag", `"0123"`)
		w.Header().Set("Last-Modified", "Mon, 30 Nov 2026 12:00:00 GMT")
	}))
	defer srv.Close()
	for _, endpoint := range []string{srv.URL, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)} {
		s, err := Open(t.Context(), Config{
			Bucket: "bucket", Prefix: "pre fix", Endpoint: endpoint, Region: "us-east-1",
			Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		})
		if err != nil {
			t.Fatal(err)
		}
		// The same client with the SDK's own resolver and whole stack
		// (without trimStack and useFastDecoders, the last two API
		// options) but ClientRequestID:
		// the SDK signs the random amz-sdk-invocation-id header it sets.
		sdkClient := s3.New(s.client.Options(), func(o *s3.Options) {
			o.EndpointResolverV2 = s3.NewDefaultEndpointResolverV2()
			o.APIOptions = append(slices.Clip(o.APIOptions[:len(o.APIOptions)-2]), func(st *middleware.Stack) error {
				_, err := st.Build.Remove("ClientRequestID")
				return err
			})
		})
		keys := []string{"plain", "with space", "日本/語.txt", "e\u0301", "plus+sign", "percent%20", "a%2Fb", "tilde~", "q?x=1&y", "hash#tag"}
		for _, key := range keys {
			// Retry until both requests are signed in the same second.
			for try := 0; ; try++ {
				mu.Lock()
				got = got[:0]
				mu.Unlock()
				if _, err := s.Stat(t.Context(), key); err != nil {
					t.Fatalf("Stat %q: %v", key, err)
				}
				if _, err := sdkClient.HeadObject(t.Context(), &s3.HeadObjectInput{
					Bucket: aws.String("bucket"), Key: aws.String("pre fix/" + key), ChecksumMode: "ENABLED",
				}); err != nil {
					t.Fatalf("HeadObject %q: %v", key, err)
				}
				if _, err := s.Put(t.Context(), store.PutInput{Key: key, Size: 3}, strings.NewReader("abc")); err != nil {
					t.Fatalf("Put %q: %v", key, err)
				}
				if _, err := sdkClient.PutObject(t.Context(), &s3.PutObjectInput{
					Bucket: aws.String("bucket"), Key: aws.String("pre fix/" + key), Body: strings.NewReader("abc"), ContentLength: aws.Int64(3),
				}, unsignedPayload); err != nil {
					t.Fatalf("PutObject %q: %v", key, err)
				}
				mu.Lock()
				g := slices.Clone(got)
				mu.Unlock()
				if len(g) != 4 {
					t.Fatalf("%q: %d requests, want 4", key, len(g))
				}
				if (g[0].date != g[1].date || g[2].date != g[3].date) && try < 5 {
					continue
				}
				for i := 0; i < 4; i += 2 {
					if g[i] != g[i+1] {
						t.Errorf("%q: the store sent\n%+v\nthe SDK\n%+v", key, g[i], g[i+1])
					}
					if !strings.HasPrefix(g[i].uri, "/bucket/pre%20fix/") {
						t.Errorf("%q: request URI %s", key, g[i].uri)
					}
				}
				break
			}
		}
		s.Close()
	}
}

// checkTrimmed fails the stack of an operation that still has a trimmed
// middleware.
func checkTrimmed(t *testing.T, st *middleware.Stack) error {
	t.Helper()
	for _, id := range trimmedMiddlewares.serialize {
		if _, ok := st.Serialize.Get(id); ok {
			t.Errorf("%s: %s still there", st.ID(), id)
		}
	}
	for _, id := range trimmedMiddlewares.build {
		if _, ok := st.Build.Get(id); ok {
			t.Errorf("%s: %s still there", st.ID(), id)
		}
	}
	for _, id := range []string{"Signing", "Retry", "RecordResponseTiming", "OperationDeserializer", "UserAgent"} {
		_, f := st.Finalize.Get(id)
		_, b := st.Build.Get(id)
		_, d := st.Deserialize.Get(id)
		if !f && !b && !d {
			t.Errorf("%s: %s is gone", st.ID(), id)
		}
	}
	return nil
}

// TestTrimStack: a Store's operations go without the trimmed middlewares
// and keep signing, retries, clock skew and the rest; a checksum the
// server states for a GET is still checked.
func TestTrimStack(t *testing.T) {
	object := []byte("the object's bytes")
	h := fakeS3(object)
	srv := httptest.NewServer(h)
	defer srv.Close()
	s, err := Open(t.Context(), Config{
		Bucket: "bucket", Endpoint: srv.URL, Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.client = s3.New(s.client.Options(), func(o *s3.Options) {
		o.APIOptions = append(slices.Clip(o.APIOptions), func(st *middleware.Stack) error { return checkTrimmed(t, st) })
	})
	if _, err := s.Put(t.Context(), store.PutInput{Key: "k", Size: int64(len(object)), ChecksumCRC32C: crc32c(object)}, strings.NewReader(string(object))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(t.Context(), "k"); err != nil {
		t.Fatal(err)
	}
	rc, _, err := s.Open(t.Context(), "k", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(b) != string(object) {
		t.Fatalf("read %q, %v", b, err)
	}

	// A body that does not match the stated CRC32C fails its read.
	bad := fakeS3(object)
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			rec := httptest.NewRecorder()
			bad.ServeHTTP(rec, r)
			hdr := w.Header()
			for k, v := range rec.Header() {
				hdr[k] = v
			}
			body := rec.Body.Bytes()
			body[0] ^= 1
			_, _ = w.Write(body)
			return
		}
		bad.ServeHTTP(w, r)
	}))
	defer srv2.Close()
	s2, err := Open(t.Context(), Config{
		Bucket: "bucket", Endpoint: srv2.URL, Region: "us-east-1", RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	rc, _, err = s2.Open(t.Context(), "k", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rc)
	rc.Close()
	if !errors.Is(err, store.ErrChecksum) {
		t.Errorf("read of a damaged body: %v, want store.ErrChecksum", err)
	}
}

// captureClient answers every request with an empty 200 and records its
// URL.
type captureClient struct {
	mu   sync.Mutex
	urls []string
}

func (c *captureClient) Do(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.urls = append(c.urls, req.URL.String())
	c.mu.Unlock()
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Etag": {`"0"`}}, Body: http.NoBody, Request: req}, nil
}

// TestAWSEndpointUnchanged: a Store on AWS (no endpoint) keeps the SDK's
// resolver, virtual-hosted URLs in its region, FIPS and dual-stack
// included, with the trimmed stack.
func TestAWSEndpointUnchanged(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	s, err := Open(t.Context(), Config{
		Bucket: "my-bucket", Prefix: "pre", Region: "eu-west-3",
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.client.Options().EndpointResolverV2.(*memoResolver); ok {
		t.Fatal("an AWS store resolves with the memo")
	}
	for _, c := range []struct {
		fips, dual bool
		want       string
	}{
		{false, false, "https://my-bucket.s3.eu-west-3.amazonaws.com/pre/a%20key%2Bplus"},
		{true, false, "https://my-bucket.s3-fips.eu-west-3.amazonaws.com/pre/a%20key%2Bplus"},
		{false, true, "https://my-bucket.s3.dualstack.eu-west-3.amazonaws.com/pre/a%20key%2Bplus"},
	} {
		capture := &captureClient{}
		st := *s
		st.client = s3.New(s.client.Options(), func(o *s3.Options) {
			o.HTTPClient = capture
			if c.fips {
				o.EndpointOptions.UseFIPSEndpoint = aws.FIPSEndpointStateEnabled
			}
			if c.dual {
				o.EndpointOptions.UseDualStackEndpoint = aws.DualStackEndpointStateEnabled
			}
		})
		if _, err := st.Stat(t.Context(), "a key+plus"); err != nil {
			t.Fatalf("Stat: %v", err)
		}
		if len(capture.urls) != 1 || capture.urls[0] != c.want {
			t.Errorf("fips %v dualstack %v: %q, want %q", c.fips, c.dual, capture.urls, c.want)
		}
	}
}
