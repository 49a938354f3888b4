package preflight

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	s3store "github.com/ferry-dev/ferry/internal/store/s3"
)

// FixAPI is the part of the S3 client that [PlanFixes] and [Plan.Apply]
// use: the reads of [API] and the five writes that apply the destination
// prerequisites. *s3.Client implements it.
type FixAPI interface {
	API
	PutPublicAccessBlock(context.Context, *s3.PutPublicAccessBlockInput, ...func(*s3.Options)) (*s3.PutPublicAccessBlockOutput, error)
	PutBucketEncryption(context.Context, *s3.PutBucketEncryptionInput, ...func(*s3.Options)) (*s3.PutBucketEncryptionOutput, error)
	PutBucketPolicy(context.Context, *s3.PutBucketPolicyInput, ...func(*s3.Options)) (*s3.PutBucketPolicyOutput, error)
	PutBucketVersioning(context.Context, *s3.PutBucketVersioningInput, ...func(*s3.Options)) (*s3.PutBucketVersioningOutput, error)
	PutBucketLifecycleConfiguration(context.Context, *s3.PutBucketLifecycleConfigurationInput, ...func(*s3.Options)) (*s3.PutBucketLifecycleConfigurationOutput, error)
}

var _ FixAPI = (*s3.Client)(nil)

// AbortAfterDays is how long the lifecycle rule [PlanFixes] adds lets an
// incomplete multipart upload live. A job resumed later than this starts
// such an object's upload again.
const AbortAfterDays = 7

// TLSOnlySid is the Sid of the statement [PlanFixes] adds to the bucket
// policy.
const TLSOnlySid = "FerryDenyInsecureTransport"

// LifecycleRuleID is the ID of the lifecycle rule [PlanFixes] adds.
const LifecycleRuleID = "ferry-abort-incomplete-multipart-uploads"

// ChangeStatus is where a [Change] stands.
type ChangeStatus string

// The states of a change.
const (
	Planned     ChangeStatus = "planned"
	Applied     ChangeStatus = "applied"
	Unsupported ChangeStatus = "not supported by this server"
	Skipped     ChangeStatus = "skipped"
	Failed      ChangeStatus = "failed"
)

// Change is one request that applies one destination prerequisite.
type Change struct {
	// Check is the preflight check it makes pass ("versioning", ...).
	Check string `json:"check"`
	// Request is the S3 API call ("PutBucketVersioning").
	Request string `json:"request"`
	// Body is the request's content, as shown to the user: the policy JSON,
	// or the configuration in the API's field names.
	Body string `json:"body"`
	// Note says what else to know (what an existing setting keeps, what
	// cannot be undone).
	Note string `json:"note,omitempty"`
	// Status is Planned until [Plan.Apply]; Detail says why a change was
	// skipped, unsupported or failed.
	Status ChangeStatus `json:"status"`
	Detail string       `json:"detail,omitempty"`

	apply func(context.Context, FixAPI) error
}

// Plan is the changes that would make the destination's posture checks
// pass, in the order they are applied.
type Plan struct {
	Bucket  string   `json:"bucket"`
	Changes []Change `json:"changes"`
}

// FixOptions are the inputs of [PlanFixes] beyond the bucket.
type FixOptions struct {
	// SSE and SSEKMSKeyID choose the default encryption: "" or AES256 is
	// SSE-S3, aws:kms uses the key (or the AWS managed key when "").
	SSE, SSEKMSKeyID string
	// Region picks the ARN partition of the policy's resources (aws-cn,
	// aws-us-gov); "" is aws.
	Region string
	// Prefix is the job's prefix ("" or ending in "/"): an existing
	// lifecycle rule covering it counts.
	Prefix string
	// PlainHTTP says the endpoint is http://: a TLS-only policy would then
	// refuse ferry's own requests, so it is skipped.
	PlainHTTP bool
	// Fresh says the bucket was just created: nothing is read first, every
	// prerequisite is planned.
	Fresh bool
}

// PlanFixes reads the destination bucket's settings, as the posture checks
// do, and returns a change for each prerequisite that is missing: Block
// Public Access (all four settings), default encryption, a TLS-only bucket
// policy (merged into an existing policy, whose statements are kept),
// versioning, and a lifecycle rule aborting incomplete multipart uploads
// (added to the existing rules). A setting the server does not implement
// is planned as Unsupported and will not be sent. It only reads; an error
// is returned when a setting cannot be read for another reason than a
// missing configuration or an unsupported request.
func PlanFixes(ctx context.Context, api FixAPI, bucket string, opts FixOptions) (Plan, error) {
	p := Plan{Bucket: bucket}
	for _, f := range []func(context.Context, FixAPI, string, FixOptions) (*Change, error){
		planPublicAccess, planEncryption, planTLSPolicy, planVersioning, planLifecycle,
	} {
		c, err := f(ctx, api, bucket, opts)
		if err != nil {
			return Plan{}, err
		}
		if c != nil {
			if c.Status == "" {
				c.Status = Planned
			}
			p.Changes = append(p.Changes, *c)
		}
	}
	return p, nil
}

// Apply sends the plan's planned changes in order. A change the server
// answers with 501 NotImplemented becomes Unsupported and the others go on; any
// other error fails that change, the others still go on, and the first
// error is returned.
func (p *Plan) Apply(ctx context.Context, api FixAPI) error {
	var first error
	for i := range p.Changes {
		c := &p.Changes[i]
		if c.Status != Planned {
			continue
		}
		err := c.apply(ctx, api)
		switch {
		case err == nil:
			c.Status = Applied
		case errors.Is(err, errDropped):
			c.Status, c.Detail = Unsupported, err.Error()
		case s3store.MeaningOf(err) == s3store.Unsupported:
			c.Status, c.Detail = Unsupported, c.Request+": "+apiCodeOr(err, "501")
		case refusedForm[apiCode(err)]:
			// The bodies are fixed and valid by the S3 API reference: a
			// server that calls one malformed does not implement it (MinIO:
			// PutPublicAccessBlock, a lifecycle rule that only aborts
			// uploads).
			c.Status, c.Detail = Unsupported, c.Request+": "+apiCode(err)+" (the server refused this standard configuration)"
		default:
			c.Status, c.Detail = Failed, c.Request+": "+describe(err)
			if first == nil {
				first = fmt.Errorf("%s on s3://%s: %s", c.Request, p.Bucket, describe(err))
			}
		}
	}
	return first
}

// Count returns the number of changes with status st.
func (p Plan) Count(st ChangeStatus) int {
	n := 0
	for _, c := range p.Changes {
		if c.Status == st {
			n++
		}
	}
	return n
}

// Write prints the plan (or, after Apply, its outcome) for a person: one
// paragraph per change with the request, its body indented, and its note.
func (p Plan) Write(w io.Writer) error {
	if len(p.Changes) == 0 {
		_, err := fmt.Fprintf(w, "s3://%s: every prerequisite is in place; nothing to change\n", p.Bucket)
		return err
	}
	var b strings.Builder
	for i, c := range p.Changes {
		fmt.Fprintf(&b, "%d. %s: %s s3://%s [%s", i+1, c.Check, c.Request, p.Bucket, c.Status)
		if c.Detail != "" {
			fmt.Fprintf(&b, ": %s", c.Detail)
		}
		b.WriteString("]\n")
		for _, line := range strings.Split(c.Body, "\n") {
			fmt.Fprintf(&b, "     %s\n", line)
		}
		if c.Note != "" {
			fmt.Fprintf(&b, "   note: %s\n", c.Note)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func planPublicAccess(ctx context.Context, api FixAPI, bucket string, opts FixOptions) (*Change, error) {
	c := &Change{
		Check: "block public access", Request: "PutPublicAccessBlock",
		Body: "BlockPublicAcls=true IgnorePublicAcls=true BlockPublicPolicy=true RestrictPublicBuckets=true",
		apply: func(ctx context.Context, api FixAPI) error {
			on := aws.Bool(true)
			_, err := api.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{Bucket: &bucket,
				PublicAccessBlockConfiguration: &types.PublicAccessBlockConfiguration{
					BlockPublicAcls: on, IgnorePublicAcls: on, BlockPublicPolicy: on, RestrictPublicBuckets: on,
				}})
			return err
		},
	}
	if opts.Fresh {
		return c, nil
	}
	out, err := api.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: &bucket})
	switch {
	case apiCode(err) == "NoSuchPublicAccessBlockConfiguration":
		return c, nil
	case err != nil:
		return unreadable(c, "GetPublicAccessBlock", err)
	}
	if k := out.PublicAccessBlockConfiguration; k != nil && aws.ToBool(k.BlockPublicAcls) && aws.ToBool(k.IgnorePublicAcls) &&
		aws.ToBool(k.BlockPublicPolicy) && aws.ToBool(k.RestrictPublicBuckets) {
		return nil, nil
	}
	return c, nil
}

func planEncryption(ctx context.Context, api FixAPI, bucket string, opts FixOptions) (*Change, error) {
	rule := types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAes256}
	body := "SSEAlgorithm=AES256 (SSE-S3)"
	if opts.SSE == "aws:kms" {
		rule.SSEAlgorithm = types.ServerSideEncryptionAwsKms
		body = "SSEAlgorithm=aws:kms"
		if opts.SSEKMSKeyID != "" {
			rule.KMSMasterKeyID = aws.String(opts.SSEKMSKeyID)
			body += " KMSMasterKeyID=" + opts.SSEKMSKeyID
		} else {
			body += " (the AWS managed key aws/s3)"
		}
	}
	c := &Change{
		Check: "default encryption", Request: "PutBucketEncryption", Body: body,
		Note: "applies to objects written from now on; existing objects stay as they are",
		apply: func(ctx context.Context, api FixAPI) error {
			_, err := api.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: &bucket,
				ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{
					Rules: []types.ServerSideEncryptionRule{{ApplyServerSideEncryptionByDefault: &rule}},
				}})
			return err
		},
	}
	if opts.Fresh {
		return c, nil
	}
	out, err := api.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: &bucket})
	switch {
	case apiCode(err) == "ServerSideEncryptionConfigurationNotFoundError":
		return c, nil
	case err != nil:
		return unreadable(c, "GetBucketEncryption", err)
	}
	if cfg := out.ServerSideEncryptionConfiguration; cfg != nil {
		for _, r := range cfg.Rules {
			if r.ApplyServerSideEncryptionByDefault != nil {
				return nil, nil
			}
		}
	}
	return c, nil
}

func planTLSPolicy(ctx context.Context, api FixAPI, bucket string, opts FixOptions) (*Change, error) {
	partition := "aws"
	switch {
	case strings.HasPrefix(opts.Region, "cn-"):
		partition = "aws-cn"
	case strings.HasPrefix(opts.Region, "us-gov-"):
		partition = "aws-us-gov"
	}
	deny := statement{
		Sid:       TLSOnlySid,
		Effect:    "Deny",
		Principal: map[string]any{"AWS": []string{"*"}},
		Action:    []string{"s3:*"},
		Resource:  []string{"arn:" + partition + ":s3:::" + bucket, "arn:" + partition + ":s3:::" + bucket + "/*"},
		Condition: map[string]any{"Bool": map[string]any{"aws:SecureTransport": []string{"false"}}},
	}
	c := &Change{Check: "tls-only policy", Request: "PutBucketPolicy"}
	var doc any = struct {
		Version   string
		Statement []statement
	}{"2012-10-17", []statement{deny}}
	c.Note = "a new bucket policy with one statement"
	if !opts.Fresh {
		out, err := api.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: &bucket})
		switch {
		case apiCode(err) == "NoSuchBucketPolicy":
		case err != nil:
			return unreadable(c, "GetBucketPolicy", err)
		default:
			old := aws.ToString(out.Policy)
			if DeniesInsecureTransport(old) {
				return nil, nil
			}
			if p, err := url.QueryUnescape(old); err == nil && strings.HasPrefix(strings.TrimSpace(p), "{") {
				old = p
			}
			merged, kept, err := mergeStatement(old, deny)
			if err != nil {
				return nil, fmt.Errorf("GetBucketPolicy s3://%s: the existing policy is not a policy document ferry can merge into: %w", bucket, err)
			}
			doc = merged
			c.Note = fmt.Sprintf("merged into the existing bucket policy: its %d statement(s) and other fields are kept, the statement %s is added", kept, TLSOnlySid)
		}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	c.Body = string(b)
	policy := string(b)
	c.apply = func(ctx context.Context, api FixAPI) error {
		_, err := api.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: &bucket, Policy: &policy})
		return err
	}
	if opts.PlainHTTP {
		c.Status, c.Detail = Skipped, "the endpoint is plain http://: this policy would refuse ferry's own requests"
	}
	return c, nil
}

// statement is an IAM policy statement, its fields in the usual order.
type statement struct {
	Sid       string         `json:"Sid"`
	Effect    string         `json:"Effect"`
	Principal map[string]any `json:"Principal"`
	Action    []string       `json:"Action"`
	Resource  []string       `json:"Resource"`
	Condition map[string]any `json:"Condition"`
}

// mergeStatement adds stmt to the policy document doc, keeping every other
// statement (byte for byte) and field; kept is the number of statements it
// had. A Sid already taken gets a suffix.
func mergeStatement(doc string, stmt statement) (merged map[string]json.RawMessage, kept int, err error) {
	if err := json.Unmarshal([]byte(doc), &merged); err != nil {
		return nil, 0, err
	}
	var stmts []json.RawMessage
	if raw, ok := merged["Statement"]; ok {
		if json.Unmarshal(raw, &stmts) != nil {
			var one map[string]json.RawMessage
			if err := json.Unmarshal(raw, &one); err != nil {
				return nil, 0, errors.New("its Statement is neither a list nor an object")
			}
			stmts = []json.RawMessage{raw}
		}
	}
	kept = len(stmts)
	taken := map[string]bool{}
	for _, raw := range stmts {
		var s struct{ Sid string }
		if json.Unmarshal(raw, &s) == nil {
			taken[s.Sid] = true
		}
	}
	for taken[stmt.Sid] {
		stmt.Sid += "2"
	}
	b, err := json.Marshal(stmt)
	if err != nil {
		return nil, 0, err
	}
	stmts = append(stmts, b)
	if merged["Statement"], err = json.Marshal(stmts); err != nil {
		return nil, 0, err
	}
	if _, ok := merged["Version"]; !ok {
		merged["Version"] = json.RawMessage(`"2012-10-17"`)
	}
	return merged, kept, nil
}

func planVersioning(ctx context.Context, api FixAPI, bucket string, opts FixOptions) (*Change, error) {
	c := &Change{
		Check: "versioning", Request: "PutBucketVersioning", Body: "Status=Enabled",
		Note: "versioning can later be suspended but never turned off; overwritten and deleted objects are kept as noncurrent versions (and stored) until a lifecycle rule expires them",
		apply: func(ctx context.Context, api FixAPI) error {
			_, err := api.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: &bucket,
				VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}})
			return err
		},
	}
	if opts.Fresh {
		return c, nil
	}
	out, err := api.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: &bucket})
	if err != nil {
		return unreadable(c, "GetBucketVersioning", err)
	}
	if out.Status == types.BucketVersioningStatusEnabled {
		return nil, nil
	}
	return c, nil
}

func planLifecycle(ctx context.Context, api FixAPI, bucket string, opts FixOptions) (*Change, error) {
	ours := types.LifecycleRule{
		ID:                             aws.String(LifecycleRuleID),
		Status:                         types.ExpirationStatusEnabled,
		Filter:                         &types.LifecycleRuleFilter{Prefix: aws.String("")},
		AbortIncompleteMultipartUpload: &types.AbortIncompleteMultipartUpload{DaysAfterInitiation: aws.Int32(AbortAfterDays)},
	}
	c := &Change{
		Check: "abort incomplete uploads", Request: "PutBucketLifecycleConfiguration",
		Body: fmt.Sprintf("Rule ID=%s Status=Enabled Filter.Prefix=\"\" AbortIncompleteMultipartUpload.DaysAfterInitiation=%d", LifecycleRuleID, AbortAfterDays),
		Note: "a new lifecycle configuration with this one rule",
	}
	var existing []types.LifecycleRule
	if !opts.Fresh {
		out, err := api.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: &bucket})
		switch {
		case apiCode(err) == "NoSuchLifecycleConfiguration":
		case err != nil:
			return unreadable(c, "GetBucketLifecycleConfiguration", err)
		default:
			if _, ok := abortRule(out.Rules, opts.Prefix); ok {
				return nil, nil
			}
			existing = out.Rules
			if len(existing) > 0 {
				c.Note = fmt.Sprintf("the bucket's %d existing lifecycle rule(s) are sent again unchanged with it (the request replaces the whole configuration)", len(existing))
			}
		}
	}
	rules := append(existing[:len(existing):len(existing)], ours)
	c.apply = func(ctx context.Context, api FixAPI) error {
		_, err := api.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: &bucket,
			LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: rules}})
		if err != nil {
			return err
		}
		// Some servers (MinIO) accept the rule and drop the action they do
		// not implement: read it back.
		out, err := api.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: &bucket})
		if err != nil {
			return err
		}
		if _, ok := abortRule(out.Rules, ""); !ok {
			return errDropped
		}
		return nil
	}
	return c, nil
}

// refusedForm are the codes of a server that refuses the form of a
// request.
var refusedForm = map[string]bool{"MalformedXML": true, "InvalidArgument": true, "InvalidRequest": true}

// errDropped: the server accepted a lifecycle configuration without the
// rule's AbortIncompleteMultipartUpload.
var errDropped = errors.New("the server accepted the rule but dropped its AbortIncompleteMultipartUpload action")

// unreadable plans c for a setting whose read failed: Unsupported when the
// server does not implement the request, else an error.
func unreadable(c *Change, req string, err error) (*Change, error) {
	if s3store.MeaningOf(err) == s3store.Unsupported {
		c.Status, c.Detail = Unsupported, req+": "+apiCodeOr(err, "501")
		return c, nil
	}
	return nil, fmt.Errorf("%s: %s", req, describe(err))
}
