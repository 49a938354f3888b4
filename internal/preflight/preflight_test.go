package preflight

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// fake answers every request well, unless errs names the request.
type fake struct {
	errs    map[string]error
	empty   bool
	region  string
	policy  string
	calls   []string
	pabOff  bool
	version types.BucketVersioningStatus
	rules   []types.LifecycleRule
}

func (f *fake) err(op string) error { f.calls = append(f.calls, op); return f.errs[op] }

func (f *fake) HeadBucket(context.Context, *s3.HeadBucketInput, ...func(*s3.Options)) (*s3.HeadBucketOutput, error) {
	return &s3.HeadBucketOutput{}, f.err("HeadBucket")
}
func (f *fake) ListObjectsV2(_ context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	out := &s3.ListObjectsV2Output{EncodingType: in.EncodingType}
	if !f.empty {
		out.Contents = []types.Object{{Key: aws.String("p%2Fk")}}
	}
	return out, f.err("ListObjectsV2")
}
func (f *fake) GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	return &s3.GetObjectOutput{Body: io.NopCloser(strings.NewReader("x"))}, f.err("GetObject")
}
func (f *fake) GetObjectTagging(context.Context, *s3.GetObjectTaggingInput, ...func(*s3.Options)) (*s3.GetObjectTaggingOutput, error) {
	return &s3.GetObjectTaggingOutput{}, f.err("GetObjectTagging")
}
func (f *fake) ListMultipartUploads(context.Context, *s3.ListMultipartUploadsInput, ...func(*s3.Options)) (*s3.ListMultipartUploadsOutput, error) {
	return &s3.ListMultipartUploadsOutput{}, f.err("ListMultipartUploads")
}
func (f *fake) GetBucketLocation(context.Context, *s3.GetBucketLocationInput, ...func(*s3.Options)) (*s3.GetBucketLocationOutput, error) {
	return &s3.GetBucketLocationOutput{LocationConstraint: types.BucketLocationConstraint(f.region)}, f.err("GetBucketLocation")
}
func (f *fake) GetPublicAccessBlock(context.Context, *s3.GetPublicAccessBlockInput, ...func(*s3.Options)) (*s3.GetPublicAccessBlockOutput, error) {
	on := aws.Bool(true)
	c := &types.PublicAccessBlockConfiguration{BlockPublicAcls: on, IgnorePublicAcls: on, BlockPublicPolicy: on, RestrictPublicBuckets: on}
	if f.pabOff {
		c.RestrictPublicBuckets = aws.Bool(false)
	}
	return &s3.GetPublicAccessBlockOutput{PublicAccessBlockConfiguration: c}, f.err("GetPublicAccessBlock")
}
func (f *fake) GetBucketEncryption(context.Context, *s3.GetBucketEncryptionInput, ...func(*s3.Options)) (*s3.GetBucketEncryptionOutput, error) {
	return &s3.GetBucketEncryptionOutput{ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{
		Rules: []types.ServerSideEncryptionRule{{ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAes256}}},
	}}, f.err("GetBucketEncryption")
}
func (f *fake) GetBucketPolicy(context.Context, *s3.GetBucketPolicyInput, ...func(*s3.Options)) (*s3.GetBucketPolicyOutput, error) {
	return &s3.GetBucketPolicyOutput{Policy: aws.String(f.policy)}, f.err("GetBucketPolicy")
}
func (f *fake) GetBucketVersioning(context.Context, *s3.GetBucketVersioningInput, ...func(*s3.Options)) (*s3.GetBucketVersioningOutput, error) {
	return &s3.GetBucketVersioningOutput{Status: f.version}, f.err("GetBucketVersioning")
}

func (f *fake) GetBucketLifecycleConfiguration(context.Context, *s3.GetBucketLifecycleConfigurationInput, ...func(*s3.Options)) (*s3.GetBucketLifecycleConfigurationOutput, error) {
	return &s3.GetBucketLifecycleConfigurationOutput{Rules: f.rules}, f.err("GetBucketLifecycleConfiguration")
}

func abortAfter(prefix string, days int32, tag *types.Tag) types.LifecycleRule {
	return types.LifecycleRule{ID: aws.String("r"), Status: types.ExpirationStatusEnabled,
		Filter:                         &types.LifecycleRuleFilter{Prefix: aws.String(prefix), Tag: tag},
		AbortIncompleteMultipartUpload: &types.AbortIncompleteMultipartUpload{DaysAfterInitiation: aws.Int32(days)}}
}

func apiErr(code string) error {
	return &smithy.GenericAPIError{Code: code, Message: code + " message"}
}

const tlsOnly = `{"Version":"2012-10-17","Statement":[{"Sid":"TLS","Effect":"Deny","Principal":"*","Action":"s3:*",
 "Resource":["arn:aws:s3:::d","arn:aws:s3:::d/*"],"Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`

func run(src, dst *fake, opts Options) Report {
	opts.Src = Side{Client: src, Bucket: "s", Prefix: "p/"}
	opts.Dst = Side{Client: dst, Bucket: "d", Prefix: "q/"}
	return Run(context.Background(), opts)
}

func statusOf(r Report, side, name string) (Status, string) {
	for _, c := range r.Checks {
		if c.Side == side && c.Name == name {
			return c.Status, c.Detail
		}
	}
	return -1, "(no such check)"
}

func TestRun(t *testing.T) {
	type want struct {
		side, name string
		status     Status
		detail     string
	}
	tests := []struct {
		name     string
		src, dst *fake
		opts     Options
		want     []want
	}{
		{"hardened destination", &fake{}, &fake{policy: tlsOnly, version: types.BucketVersioningStatusEnabled}, Options{}, []want{
			{"source", "bucket", Pass, "exists"}, {"source", "read", Pass, `"p/k"`}, {"source", "read tags", Pass, ""},
			{"destination", "write", Warn, "not tested (would write)"},
			{"destination", "block public access", Pass, "all four"}, {"destination", "default encryption", Pass, "AES256"},
			{"destination", "tls-only policy", Pass, "SecureTransport"}, {"destination", "versioning", Pass, "enabled"},
		}},
		{"minio-like", &fake{}, &fake{errs: map[string]error{
			"GetPublicAccessBlock": apiErr("NotImplemented"),
			"GetBucketEncryption":  apiErr("ServerSideEncryptionConfigurationNotFoundError"),
			"GetBucketPolicy":      apiErr("NoSuchBucketPolicy"),
		}}, Options{}, []want{
			{"destination", "block public access", Warn, "not supported by this endpoint"},
			{"destination", "default encryption", Warn, "none configured"},
			{"destination", "tls-only policy", Warn, "no bucket policy"},
			{"destination", "versioning", Warn, "never enabled"},
		}},
		{"sse flag covers missing default encryption", &fake{}, &fake{errs: map[string]error{
			"GetBucketEncryption": apiErr("ServerSideEncryptionConfigurationNotFoundError"),
		}}, Options{SSE: "AES256"}, []want{{"destination", "default encryption", Pass, "--sse AES256"}}},
		{"weak posture", &fake{}, &fake{pabOff: true, policy: `{"Statement":[{"Effect":"Allow","Action":"s3:*"}]}`, version: types.BucketVersioningStatusSuspended}, Options{}, []want{
			{"destination", "block public access", Warn, "off: RestrictPublicBuckets"},
			{"destination", "tls-only policy", Warn, "no Deny"},
			{"destination", "versioning", Warn, "suspended"},
		}},
		{"posture reads denied are warnings", &fake{}, &fake{errs: map[string]error{
			"GetPublicAccessBlock": apiErr("AccessDenied"), "GetBucketPolicy": apiErr("AccessDenied"),
			"ListMultipartUploads": apiErr("AccessDenied"),
		}}, Options{}, []want{
			{"destination", "block public access", Warn, "could not check: GetPublicAccessBlock: access denied"},
			{"destination", "list uploads", Warn, "access denied"},
		}},
		{"source read denied", &fake{errs: map[string]error{"GetObject": apiErr("AccessDenied")}}, &fake{}, Options{}, []want{
			{"source", "read", Fail, "access denied"},
		}},
		{"source list denied", &fake{errs: map[string]error{"ListObjectsV2": apiErr("AccessDenied")}}, &fake{}, Options{}, []want{
			{"source", "list", Fail, "access denied"},
		}},
		{"credentials rejected", &fake{errs: map[string]error{"HeadBucket": apiErr("InvalidAccessKeyId"), "ListObjectsV2": apiErr("InvalidAccessKeyId")}}, &fake{}, Options{}, []want{
			{"source", "bucket", Fail, "credentials rejected"},
		}},
		{"missing destination bucket", &fake{}, &fake{errs: map[string]error{"HeadBucket": apiErr("NoSuchBucket")}}, Options{}, []want{
			{"destination", "bucket", Fail, "does not exist"},
		}},
		{"HeadBucket 404", &fake{errs: map[string]error{"HeadBucket": apiErr("NotFound")}}, &fake{}, Options{}, []want{
			{"source", "bucket", Fail, "s3://s does not exist"},
		}},
		{"source object gone", &fake{errs: map[string]error{"GetObject": apiErr("NoSuchKey")}}, &fake{}, Options{}, []want{
			{"source", "read", Fail, "NoSuchKey"},
		}},
		{"prefix-scoped ListBucket denies HeadBucket", &fake{errs: map[string]error{"HeadBucket": apiErr("Forbidden")}}, &fake{}, Options{}, []want{
			{"source", "bucket", Pass, "HeadBucket denied"},
		}},
		{"empty source", &fake{empty: true}, &fake{}, Options{}, []want{{"source", "read", Warn, "not tested"}}},
		{"abort rule for the bucket", &fake{}, &fake{rules: []types.LifecycleRule{abortAfter("", 3, nil)}}, Options{}, []want{
			{"destination", "abort incomplete uploads", Pass, `lifecycle rule "r" aborts incomplete multipart uploads after 3 days`},
		}},
		{"abort rule for the job's prefix", &fake{}, &fake{rules: []types.LifecycleRule{abortAfter("q/", 3, nil)}}, Options{}, []want{
			{"destination", "abort incomplete uploads", Pass, "after 3 days"},
		}},
		{"abort rule elsewhere or by tag", &fake{}, &fake{rules: []types.LifecycleRule{abortAfter("other/", 3, nil),
			abortAfter("", 3, &types.Tag{Key: aws.String("k"), Value: aws.String("v")})}}, Options{}, []want{
			{"destination", "abort incomplete uploads", Warn, "no enabled lifecycle rule aborts incomplete multipart uploads under s3://d/q/"},
		}},
		{"no lifecycle configuration", &fake{}, &fake{errs: map[string]error{"GetBucketLifecycleConfiguration": apiErr("NoSuchLifecycleConfiguration")}}, Options{}, []want{
			{"destination", "abort incomplete uploads", Warn, "no lifecycle rule"},
		}},
		{"region allowed", &fake{}, &fake{region: "EU"}, Options{AllowedRegions: []string{"eu-west-1"}}, []want{{"destination", "region", Pass, "eu-west-1"}}},
		{"region refused", &fake{}, &fake{region: "us-west-2"}, Options{AllowedRegions: []string{"eu-west-1", "eu-central-1"}}, []want{
			{"destination", "region", Fail, "s3://d is in region us-west-2, not in --allowed-regions eu-west-1,eu-central-1"},
		}},
		{"region unreadable", &fake{}, &fake{errs: map[string]error{"GetBucketLocation": apiErr("AccessDenied")}}, Options{AllowedRegions: []string{"us-east-1"}}, []want{
			{"destination", "region", Fail, "cannot determine the region"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(tt.src, tt.dst, tt.opts)
			for _, w := range tt.want {
				st, d := statusOf(r, w.side, w.name)
				if st != w.status || !strings.Contains(d, w.detail) {
					t.Errorf("%s %s: %v %q, want %v containing %q", w.side, w.name, st, d, w.status, w.detail)
				}
			}
			for _, op := range append(tt.src.calls, tt.dst.calls...) {
				if !strings.HasPrefix(op, "Get") && !strings.HasPrefix(op, "List") && op != "HeadBucket" {
					t.Errorf("preflight sent %s, which is not a read", op)
				}
			}
			var buf bytes.Buffer
			if err := r.WriteTable(&buf); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(buf.String(), "SIDE") || !strings.Contains(buf.String(), "preflight: ") {
				t.Errorf("table:\n%s", buf.String())
			}
		})
	}
}

func TestLocalSides(t *testing.T) {
	r := Run(context.Background(), Options{Src: Side{Local: "local directory /a"}, Dst: Side{Local: "local directory /b"}})
	if len(r.Checks) != 2 || r.Count(Pass) != 2 {
		t.Fatalf("%+v", r)
	}
}

func TestDeniesInsecureTransport(t *testing.T) {
	tests := []struct {
		policy string
		want   bool
	}{
		{tlsOnly, true},
		{`{"Statement":{"Effect":"Deny","Condition":{"Bool":{"aws:securetransport":false}}}}`, true},
		{`{"Statement":[{"Effect":"Deny","Condition":{"StringEquals":{"aws:SecureTransport":["false"]}}}]}`, true},
		{`{"Statement":[{"Effect":"Allow","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`, false},
		{`{"Statement":[{"Effect":"Deny","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}`, false},
		{`{"Statement":[{"Effect":"Deny","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"false"}}}]}`, false},
		{`%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Deny%22%2C%22Condition%22%3A%7B%22Bool%22%3A%7B%22aws%3ASecureTransport%22%3A%22false%22%7D%7D%7D%5D%7D`, true},
		{`not json`, false},
		{``, false},
	}
	for _, tt := range tests {
		if got := DeniesInsecureTransport(tt.policy); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.policy, got, tt.want)
		}
	}
}

// oneObject lists and reads like a bucket holding s/p/photo.jpg and
// s/p/photo.jpg.bak, recording what was asked.
type oneObject struct {
	fake
	listed, read string
}

func (o *oneObject) ListObjectsV2(_ context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	o.listed = aws.ToString(in.Prefix)
	out := &s3.ListObjectsV2Output{EncodingType: in.EncodingType}
	for _, k := range []string{"p/aaa", "p/photo.jpg", "p/photo.jpg.bak"} {
		if strings.HasPrefix(k, o.listed) {
			out.Contents = append(out.Contents, types.Object{Key: aws.String(k)})
			break
		}
	}
	return out, nil
}

func (o *oneObject) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	o.read = aws.ToString(in.Key)
	return &s3.GetObjectOutput{Body: io.NopCloser(strings.NewReader("x"))}, nil
}

// A single-object source is checked on that object, as the job reads it,
// not on whatever object sorts first under its parent.
func TestSingleObjectSource(t *testing.T) {
	src := &oneObject{}
	r := Run(context.Background(), Options{
		Src: Side{Client: src, Bucket: "s", Prefix: "p/", Key: "photo.jpg"},
		Dst: Side{Client: &fake{}, Bucket: "d", Prefix: "q/"},
	})
	if src.listed != "p/photo.jpg" || src.read != "p/photo.jpg" {
		t.Errorf("listed under %q and read %q, want p/photo.jpg for both", src.listed, src.read)
	}
	if st, d := statusOf(r, "source", "list"); st != Pass || !strings.Contains(d, "s3://s/p/photo.jpg") {
		t.Errorf("source list: %v %q", st, d)
	}
	src = &oneObject{}
	Run(context.Background(), Options{Src: Side{Client: src, Bucket: "s", Prefix: "p/"}, Dst: Side{Client: &fake{}, Bucket: "d"}})
	if src.listed != "p/" || src.read != "p/aaa" {
		t.Errorf("prefix source: listed under %q and read %q, want p/ and p/aaa", src.listed, src.read)
	}
}
