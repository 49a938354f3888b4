package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestPreflightFix: --fix prints the plan and changes nothing; --fix --yes
// applies it; afterwards only the checks this server does not support
// warn; the bucket's own policy statement is kept.
func TestPreflightFix(t *testing.T) {
	e := newEnv(t)
	isolateConfig(t, "")
	src, dst := mkBucket(t, e.a), mkBucket(t, e.b)
	put(t, e.a, src, "p/k", []byte("v"), nil)
	ctx := context.Background()
	own := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Sid":"KeepMe","Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::%s/public/*"]}]}`, dst)
	if _, err := e.b.Client().PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(dst), Policy: aws.String(own)}); err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{"preflight", "s3://" + src + "/p", "s3://" + dst + "/q"}, e.srcA()...), e.dstB()...)

	r := ferryCmd(t, append(args, "--fix")...)
	t.Logf("preflight --fix:\n%s", r.out)
	if r.code != 0 || !strings.Contains(r.out, "nothing was changed; run again with --yes") ||
		!strings.Contains(r.out, "PutBucketVersioning s3://"+dst+" [planned]") ||
		!strings.Contains(r.out, `"Sid": "KeepMe"`) || !strings.Contains(r.out, "merged into the existing bucket policy") {
		t.Fatalf("--fix: exit %d\n%s%s", r.code, r.out, r.err)
	}
	v, err := e.b.Client().GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(dst)})
	if err != nil || v.Status == types.BucketVersioningStatusEnabled {
		t.Fatalf("--fix without --yes changed versioning: %v %v", v.Status, err)
	}

	r = ferryCmd(t, append(args, "--fix", "--yes")...)
	t.Logf("preflight --fix --yes:\n%s", r.out)
	if r.code != 0 || !regexpLine(r.out, "fix: 2 applied, 0 failed, 0 skipped; not supported by this server:", "block public access", "default encryption", "abort incomplete uploads") {
		t.Fatalf("--fix --yes: exit %d\n%s%s", r.code, r.out, r.err)
	}

	r = ferryCmd(t, append(args, "--json")...)
	var rep struct {
		Checks []struct{ Side, Check, Status, Detail string }
	}
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil || r.code != 0 {
		t.Fatalf("--json: exit %d %v\n%s", r.code, err, r.out)
	}
	unsupported := map[string]bool{"write": true, "block public access": true, "default encryption": true, "abort incomplete uploads": true}
	for _, c := range rep.Checks {
		if c.Status != "pass" && !(c.Side == "destination" && unsupported[c.Check]) {
			t.Errorf("after --fix --yes: %s %s %s (%s)", c.Side, c.Check, c.Status, c.Detail)
		}
	}
	out, err := e.b.Client().GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: aws.String(dst)})
	if err != nil || !strings.Contains(aws.ToString(out.Policy), "KeepMe") || !strings.Contains(aws.ToString(out.Policy), "FerryDenyInsecureTransport") {
		t.Fatalf("policy after the merge: %v %v", aws.ToString(out.Policy), err)
	}

	// Usage errors.
	oneLineErr(t, ferryCmd(t, append(args, "--yes")...), ExitUsage, "--yes applies the plan of --fix")
	oneLineErr(t, ferryCmd(t, "preflight", "s3://"+src, t.TempDir(), "--fix", "--src-endpoint", e.a.Endpoint, "--src-profile", "a"), ExitUsage, "is not a bucket")
}

// TestBucketCreateSecure: a new bucket with every prerequisite the server
// supports, and the others named.
func TestBucketCreateSecure(t *testing.T) {
	e := newEnv(t)
	isolateConfig(t, "")
	conn := []string{"--endpoint", e.b.Endpoint, "--profile", "b", "--ca-bundle", e.b.CAFile}
	r := ferryCmd(t, append([]string{"bucket", "create", "s3://made-secure", "--secure"}, conn...)...)
	t.Logf("bucket create --secure:\n%s", r.out)
	if r.code != 0 || !strings.Contains(r.out, "created bucket s3://made-secure in region us-east-1") ||
		!regexpLine(r.out, "fix: 2 applied, 0 failed, 0 skipped; not supported by this server:") {
		t.Fatalf("exit %d\n%s%s", r.code, r.out, r.err)
	}
	v, err := e.b.Client().GetBucketVersioning(context.Background(), &s3.GetBucketVersioningInput{Bucket: aws.String("made-secure")})
	if err != nil || v.Status != types.BucketVersioningStatusEnabled {
		t.Fatalf("versioning %v %v", v, err)
	}
	oneLineErr(t, ferryCmd(t, append([]string{"bucket", "create", "s3://made-secure"}, conn...)...), ExitUsage, "exists already (and is yours)")
	oneLineErr(t, ferryCmd(t, append([]string{"bucket", "create", "s3://made-secure/prefix"}, conn...)...), ExitUsage, "without a prefix")
}
