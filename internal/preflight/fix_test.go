package preflight

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ferry-dev/ferry/internal/testenv"
)

// warnings returns the names of the destination's posture checks that warn.
func warnings(r Report) map[string]string {
	w := map[string]string{}
	for _, c := range r.Checks {
		if c.Side == "destination" && c.Status == Warn && c.Name != "write" {
			w[c.Name] = c.Detail
		}
	}
	return w
}

func statuses(p Plan) map[string]ChangeStatus {
	m := map[string]ChangeStatus{}
	for _, c := range p.Changes {
		m[c.Check] = c.Status
	}
	return m
}

// TestFixMinIO applies the prerequisites to a MinIO bucket that has a
// policy of its own: planning changes nothing, applying does what the
// server supports and says which it does not, a second preflight has no
// warnings left for the supported ones, and the existing policy statement
// survives the merge.
func TestFixMinIO(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{TLS: true, KMS: true})
	const bucket = "fixme"
	m.CreateBucket(t, bucket)
	c := m.Client()
	ctx := context.Background()
	const own = `{"Version":"2012-10-17","Statement":[{"Sid":"PublicRead","Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::fixme/public/*"]}]}`
	if _, err := c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(bucket), Policy: aws.String(own)}); err != nil {
		t.Fatal(err)
	}
	side := Side{Client: c, Bucket: bucket, Prefix: "q/"}
	before := warnings(Run(ctx, Options{Src: Side{Local: "l"}, Dst: side}))
	for _, name := range []string{"default encryption", "tls-only policy", "versioning", "abort incomplete uploads"} {
		if _, ok := before[name]; !ok {
			t.Errorf("before: no warning for %s: %v", name, before)
		}
	}

	plan, err := PlanFixes(ctx, c, bucket, FixOptions{Prefix: "q/"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := plan.Write(&buf); err != nil {
		t.Fatal(err)
	}
	t.Logf("plan:\n%s", buf.String())
	for _, want := range []string{"PutBucketVersioning", "PutBucketEncryption", "PutBucketLifecycleConfiguration",
		`"Sid": "PublicRead"`, `"Sid": "FerryDenyInsecureTransport"`, "merged into the existing bucket policy: its 1 statement(s)"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("plan lacks %q", want)
		}
	}
	if got := statuses(plan)["block public access"]; got != Unsupported {
		t.Errorf("block public access planned as %q, want %q", got, Unsupported)
	}
	// Planning changed nothing.
	if after := warnings(Run(ctx, Options{Src: Side{Local: "l"}, Dst: side})); len(after) != len(before) {
		t.Fatalf("planning changed the bucket: warnings %v, before %v", after, before)
	}

	if err := plan.Apply(ctx, c); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	buf.Reset()
	_ = plan.Write(&buf)
	t.Logf("applied:\n%s", buf.String())
	st := statuses(plan)
	for _, name := range []string{"default encryption", "tls-only policy", "versioning"} {
		if st[name] != Applied {
			t.Errorf("%s: %q, want applied", name, st[name])
		}
	}
	after := warnings(Run(ctx, Options{Src: Side{Local: "l"}, Dst: side}))
	for name, detail := range after {
		if st[name] != Unsupported {
			t.Errorf("after applying: %s still warns (%s), and its change is %q", name, detail, st[name])
		}
	}
	out, err := c.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Statement []struct{ Sid string } }
	if err := json.Unmarshal([]byte(aws.ToString(out.Policy)), &doc); err != nil {
		t.Fatalf("policy %q: %v", aws.ToString(out.Policy), err)
	}
	if len(doc.Statement) != 2 || doc.Statement[0].Sid != "PublicRead" || doc.Statement[1].Sid != TLSOnlySid {
		t.Errorf("merged policy: %s", aws.ToString(out.Policy))
	}

	// Nothing left to do but what the server cannot (a lifecycle rule
	// looks plannable until the server refuses it).
	again, err := PlanFixes(ctx, c, bucket, FixOptions{Prefix: "q/"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range again.Changes {
		if ch.Status != Unsupported && st[ch.Check] != Unsupported {
			t.Errorf("second plan: %s %s (%s), which the first applied", ch.Check, ch.Request, ch.Status)
		}
	}
}

func TestFixFreshBucketWithoutKMS(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	const bucket = "fresh"
	m.CreateBucket(t, bucket)
	c := m.Client()
	ctx := context.Background()
	plan, err := PlanFixes(ctx, c, bucket, FixOptions{Fresh: true, PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.Apply(ctx, c); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	var buf bytes.Buffer
	_ = plan.Write(&buf)
	t.Logf("applied:\n%s", buf.String())
	want := map[string]ChangeStatus{
		"block public access": Unsupported, "default encryption": Unsupported, // no KMS configured
		"tls-only policy": Skipped, "versioning": Applied,
	}
	for name, w := range want {
		if got := statuses(plan)[name]; got != w {
			t.Errorf("%s: %q, want %q", name, got, w)
		}
	}
	v, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(bucket)})
	if err != nil || v.Status != types.BucketVersioningStatusEnabled {
		t.Errorf("versioning %v %v", v, err)
	}
}

func TestMergeStatement(t *testing.T) {
	stmt := func() statement { return statement{Sid: TLSOnlySid, Effect: "Deny"} }
	for _, tt := range []struct {
		doc  string
		kept int
		sids []string
	}{
		{`{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow"}],"Id":"x"}`, 1, []string{"A", TLSOnlySid}},
		{`{"Statement":{"Sid":"A","Effect":"Allow"}}`, 1, []string{"A", TLSOnlySid}},
		{`{"Statement":[{"Sid":"FerryDenyInsecureTransport","Effect":"Allow"}]}`, 1, []string{TLSOnlySid, TLSOnlySid + "2"}},
	} {
		m, kept, err := mergeStatement(tt.doc, stmt())
		if err != nil || kept != tt.kept {
			t.Fatalf("%s: kept %d, %v", tt.doc, kept, err)
		}
		var stmts []struct{ Sid string }
		if err := json.Unmarshal(m["Statement"], &stmts); err != nil {
			t.Fatal(err)
		}
		var sids []string
		for _, s := range stmts {
			sids = append(sids, s.Sid)
		}
		if strings.Join(sids, ",") != strings.Join(tt.sids, ",") {
			t.Errorf("%s: Sids %v, want %v", tt.doc, sids, tt.sids)
		}
		if strings.Contains(tt.doc, `"Id"`) && string(m["Id"]) != `"x"` {
			t.Errorf("%s: Id lost", tt.doc)
		}
	}
	if _, _, err := mergeStatement(`{"Statement":"nonsense"}`, stmt()); err == nil {
		t.Error("a string Statement was merged")
	}
}
