package preflight

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/ferry-dev/ferry/internal/logtext"
	s3store "github.com/ferry-dev/ferry/internal/store/s3"
)

// API is the part of the S3 client the checks use; *s3.Client implements
// it. Every method only reads.
type API interface {
	HeadBucket(context.Context, *s3.HeadBucketInput, ...func(*s3.Options)) (*s3.HeadBucketOutput, error)
	ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	GetObjectTagging(context.Context, *s3.GetObjectTaggingInput, ...func(*s3.Options)) (*s3.GetObjectTaggingOutput, error)
	ListMultipartUploads(context.Context, *s3.ListMultipartUploadsInput, ...func(*s3.Options)) (*s3.ListMultipartUploadsOutput, error)
	GetBucketLocation(context.Context, *s3.GetBucketLocationInput, ...func(*s3.Options)) (*s3.GetBucketLocationOutput, error)
	GetPublicAccessBlock(context.Context, *s3.GetPublicAccessBlockInput, ...func(*s3.Options)) (*s3.GetPublicAccessBlockOutput, error)
	GetBucketEncryption(context.Context, *s3.GetBucketEncryptionInput, ...func(*s3.Options)) (*s3.GetBucketEncryptionOutput, error)
	GetBucketPolicy(context.Context, *s3.GetBucketPolicyInput, ...func(*s3.Options)) (*s3.GetBucketPolicyOutput, error)
	GetBucketVersioning(context.Context, *s3.GetBucketVersioningInput, ...func(*s3.Options)) (*s3.GetBucketVersioningOutput, error)
	GetBucketLifecycleConfiguration(context.Context, *s3.GetBucketLifecycleConfigurationInput, ...func(*s3.Options)) (*s3.GetBucketLifecycleConfigurationOutput, error)
}

var _ API = (*s3.Client)(nil)

// Status is the outcome of one check.
type Status int

// The outcomes, from best to worst.
const (
	Pass Status = iota
	Warn
	Fail
)

func (s Status) String() string {
	switch s {
	case Pass:
		return "pass"
	case Warn:
		return "warn"
	}
	return "fail"
}

// MarshalText renders the status as "pass", "warn" or "fail".
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Check is one line of the report.
type Check struct {
	Side   string `json:"side"` // "source" or "destination"
	Name   string `json:"check"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
}

// Report is the outcome of [Run], source checks first.
type Report struct {
	Checks []Check `json:"checks"`
}

// Count returns the number of checks with status s.
func (r Report) Count(s Status) int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == s {
			n++
		}
	}
	return n
}

// Failed returns the failed checks.
func (r Report) Failed() []Check { return r.with(Fail) }

// Warnings returns the checks that warned.
func (r Report) Warnings() []Check { return r.with(Warn) }

func (r Report) with(s Status) []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Status == s {
			out = append(out, c)
		}
	}
	return out
}

// WriteTable writes the report as an aligned table with a header and a
// totals line.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SIDE\tCHECK\tRESULT\tDETAIL")
	for _, c := range r.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Side, c.Name, c.Status, logtext.OneLine(c.Detail))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "preflight: %d pass, %d warn, %d fail\n", r.Count(Pass), r.Count(Warn), r.Count(Fail))
	return err
}

// Side is one end of the job. Client nil means a local directory, whose
// checks were done when it was opened (Local describes it).
type Side struct {
	Client API
	Bucket string
	// Prefix is "" or ends in "/".
	Prefix string
	// Key, when not "", is a single object's name under Prefix (a source
	// such as s3://b/dir/photo.jpg): the source checks list and read that
	// object, as the job will, rather than the first object under Prefix.
	Key string
	// Local describes a local side for its single row.
	Local string
	// Explain, when set, tells a failed required request in words, with
	// what to do (s3.Explain); "" leaves it to the checks' own wording.
	Explain func(error) string
}

// Options are the inputs of [Run].
type Options struct {
	Src, Dst Side
	// AllowedRegions, when not empty, fails a destination bucket in any
	// other region.
	AllowedRegions []string
	// SSE is the --sse of the job: objects are encrypted by ferry's
	// requests even without a default bucket encryption.
	SSE string
}

// Run runs every check and returns the report. It only reads; errors are
// reported as checks, never returned. The two sides are checked
// concurrently.
func Run(ctx context.Context, opts Options) Report {
	var src, dst []Check
	var wg sync.WaitGroup
	wg.Go(func() { src = sourceChecks(ctx, opts.Src) })
	wg.Go(func() { dst = destinationChecks(ctx, opts) })
	wg.Wait()
	return Report{Checks: append(src, dst...)}
}

func sourceChecks(ctx context.Context, sd Side) []Check {
	const side = "source"
	if sd.Client == nil {
		return []Check{{side, "directory", Pass, sd.Local}}
	}
	checks := []Check{bucketCheck(ctx, side, sd)}
	if checks[0].Status == Fail && checks[0].Name == "bucket" && strings.Contains(checks[0].Detail, "does not exist") {
		return checks
	}
	listPrefix := sd.Prefix + sd.Key
	out, err := sd.Client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &sd.Bucket, Prefix: &listPrefix, MaxKeys: aws.Int32(1), EncodingType: types.EncodingTypeUrl})
	if err != nil {
		return append(checks, required(sd, side, "list", "ListObjectsV2", err))
	}
	checks = append(checks, Check{side, "list", Pass, "ListObjectsV2 under " + where(sd) + " allowed"})
	if len(out.Contents) == 0 {
		return append(checks,
			Check{side, "read", Warn, "not tested: no object under " + where(sd)},
			Check{side, "read tags", Warn, "not tested: no object under " + where(sd)})
	}
	key := aws.ToString(out.Contents[0].Key)
	if k, err := url.QueryUnescape(key); err == nil && out.EncodingType == types.EncodingTypeUrl {
		key = k
	}
	get, err := sd.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: &sd.Bucket, Key: &key, Range: aws.String("bytes=0-0")})
	switch {
	case err == nil:
		_, _ = io.Copy(io.Discard, io.LimitReader(get.Body, 16))
		get.Body.Close()
		checks = append(checks, Check{side, "read", Pass, fmt.Sprintf("GetObject of %q (1 byte) allowed", key)})
	case apiCode(err) == "InvalidRange": // an empty object: authorized, nothing to read
		checks = append(checks, Check{side, "read", Pass, fmt.Sprintf("GetObject of %q allowed", key)})
	default:
		checks = append(checks, required(sd, side, "read", fmt.Sprintf("GetObject of %q", key), err))
	}
	if _, err := sd.Client.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: &sd.Bucket, Key: &key}); err != nil {
		c := required(sd, side, "read tags", fmt.Sprintf("GetObjectTagging of %q", key), err)
		if s3store.MeaningOf(err) == s3store.Unsupported {
			c.Status = Warn // tags are then not copied by this endpoint either
		}
		checks = append(checks, c)
	} else {
		checks = append(checks, Check{side, "read tags", Pass, fmt.Sprintf("GetObjectTagging of %q allowed", key)})
	}
	return checks
}

func destinationChecks(ctx context.Context, opts Options) []Check {
	const side = "destination"
	sd := opts.Dst
	if sd.Client == nil {
		return []Check{{side, "directory", Pass, sd.Local}}
	}
	checks := []Check{bucketCheck(ctx, side, sd)}
	if checks[0].Status == Fail && strings.Contains(checks[0].Detail, "does not exist") {
		return checks
	}
	if _, err := sd.Client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &sd.Bucket, Prefix: &sd.Prefix, MaxKeys: aws.Int32(1)}); err != nil {
		checks = append(checks, required(sd, side, "list", "ListObjectsV2", err))
	} else {
		checks = append(checks, Check{side, "list", Pass, "ListObjectsV2 under " + where(sd) + " allowed"})
	}
	if _, err := sd.Client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &sd.Bucket, Prefix: &sd.Prefix, MaxUploads: aws.Int32(1)}); err != nil {
		checks = append(checks, optional(side, "list uploads", "ListMultipartUploads", err, "incomplete uploads cannot be found for clean-up"))
	} else {
		checks = append(checks, Check{side, "list uploads", Pass, "ListMultipartUploads allowed"})
	}
	checks = append(checks, Check{side, "write", Warn, "not tested (would write): PutObject, multipart uploads and tagging are checked by the first object copied"})
	if len(opts.AllowedRegions) > 0 {
		checks = append(checks, regionCheck(ctx, sd, opts.AllowedRegions))
	}
	checks = append(checks,
		publicAccessCheck(ctx, sd),
		encryptionCheck(ctx, sd, opts.SSE),
		tlsPolicyCheck(ctx, sd),
		versioningCheck(ctx, sd),
		lifecycleCheck(ctx, sd),
	)
	return checks
}

// bucketCheck runs HeadBucket. A denied HeadBucket is accepted when a
// listing under the prefix is allowed (a prefix-scoped s3:ListBucket).
func bucketCheck(ctx context.Context, side string, sd Side) Check {
	_, err := sd.Client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &sd.Bucket})
	if err == nil {
		return Check{side, "bucket", Pass, "s3://" + sd.Bucket + " exists; credentials accepted"}
	}
	if s3store.MeaningOf(err) == s3store.Denied && sd.Prefix != "" {
		if _, lerr := sd.Client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &sd.Bucket, Prefix: &sd.Prefix, MaxKeys: aws.Int32(1)}); lerr == nil {
			return Check{side, "bucket", Pass, "s3://" + sd.Bucket + " exists (HeadBucket denied, listing under the prefix allowed)"}
		}
	}
	if apiCode(err) == "NotFound" {
		return Check{side, "bucket", Fail, "HeadBucket: bucket s3://" + sd.Bucket + " does not exist"}
	}
	return required(sd, side, "bucket", "HeadBucket", err)
}

// Region returns the region of bucket from GetBucketLocation, with S3's
// legacy names normalized ("" is us-east-1, "EU" is eu-west-1).
func Region(ctx context.Context, api API, bucket string) (string, error) {
	out, err := api.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: &bucket})
	if err != nil {
		return "", fmt.Errorf("GetBucketLocation s3://%s: %s", bucket, describe(err))
	}
	switch r := string(out.LocationConstraint); r {
	case "":
		return "us-east-1", nil
	case "EU":
		return "eu-west-1", nil
	default:
		return r, nil
	}
}

// CheckRegion returns an error unless bucket's region is one of allowed.
// A region that cannot be read is an error too: residency that cannot be
// shown is not assumed.
func CheckRegion(ctx context.Context, api API, bucket string, allowed []string) error {
	r, err := Region(ctx, api, bucket)
	if err != nil {
		return fmt.Errorf("cannot determine the region for --allowed-regions: %w", err)
	}
	if !slices.Contains(allowed, r) {
		return fmt.Errorf("bucket s3://%s is in region %s, not in --allowed-regions %s", bucket, r, strings.Join(allowed, ","))
	}
	return nil
}

func regionCheck(ctx context.Context, sd Side, allowed []string) Check {
	if err := CheckRegion(ctx, sd.Client, sd.Bucket, allowed); err != nil {
		return Check{"destination", "region", Fail, err.Error()}
	}
	r, _ := Region(ctx, sd.Client, sd.Bucket)
	return Check{"destination", "region", Pass, r + " is in --allowed-regions"}
}

func publicAccessCheck(ctx context.Context, sd Side) Check {
	const name = "block public access"
	out, err := sd.Client.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: &sd.Bucket})
	if apiCode(err) == "NoSuchPublicAccessBlockConfiguration" {
		return Check{"destination", name, Warn, "not configured on the bucket (the account setting is not checked)"}
	}
	if err != nil {
		return optional("destination", name, "GetPublicAccessBlock", err, "")
	}
	c := out.PublicAccessBlockConfiguration
	if c == nil {
		return Check{"destination", name, Warn, "not configured on the bucket"}
	}
	var off []string
	for _, s := range []struct {
		name string
		on   *bool
	}{{"BlockPublicAcls", c.BlockPublicAcls}, {"IgnorePublicAcls", c.IgnorePublicAcls}, {"BlockPublicPolicy", c.BlockPublicPolicy}, {"RestrictPublicBuckets", c.RestrictPublicBuckets}} {
		if !aws.ToBool(s.on) {
			off = append(off, s.name)
		}
	}
	if len(off) > 0 {
		return Check{"destination", name, Warn, "off: " + strings.Join(off, ", ")}
	}
	return Check{"destination", name, Pass, "all four settings on"}
}

func encryptionCheck(ctx context.Context, sd Side, sse string) Check {
	const name = "default encryption"
	withSSE := ""
	if sse != "" {
		withSSE = "; --sse " + sse + " encrypts every object ferry writes"
	}
	out, err := sd.Client.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: &sd.Bucket})
	if apiCode(err) == "ServerSideEncryptionConfigurationNotFoundError" {
		if sse != "" {
			return Check{"destination", name, Pass, "none configured" + withSSE}
		}
		return Check{"destination", name, Warn, "none configured: objects are stored unencrypted unless --sse is given"}
	}
	if err != nil {
		c := optional("destination", name, "GetBucketEncryption", err, "")
		if sse != "" {
			c.Status, c.Detail = Pass, c.Detail+withSSE
		}
		return c
	}
	var algs []string
	if cfg := out.ServerSideEncryptionConfiguration; cfg != nil {
		for _, r := range cfg.Rules {
			if d := r.ApplyServerSideEncryptionByDefault; d != nil {
				a := string(d.SSEAlgorithm)
				if k := aws.ToString(d.KMSMasterKeyID); k != "" {
					a += " (key " + k + ")"
				}
				algs = append(algs, a)
			}
		}
	}
	if len(algs) == 0 {
		return Check{"destination", name, Warn, "no default encryption rule"}
	}
	return Check{"destination", name, Pass, strings.Join(algs, ", ")}
}

func tlsPolicyCheck(ctx context.Context, sd Side) Check {
	const name = "tls-only policy"
	out, err := sd.Client.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: &sd.Bucket})
	if apiCode(err) == "NoSuchBucketPolicy" {
		return Check{"destination", name, Warn, "no bucket policy: requests without TLS are not denied by the bucket"}
	}
	if err != nil {
		return optional("destination", name, "GetBucketPolicy", err, "")
	}
	if DeniesInsecureTransport(aws.ToString(out.Policy)) {
		return Check{"destination", name, Pass, "the bucket policy denies aws:SecureTransport=false"}
	}
	return Check{"destination", name, Warn, "the bucket policy has no Deny on aws:SecureTransport=false"}
}

func versioningCheck(ctx context.Context, sd Side) Check {
	const name = "versioning"
	out, err := sd.Client.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: &sd.Bucket})
	if err != nil {
		return optional("destination", name, "GetBucketVersioning", err, "")
	}
	if out.Status == types.BucketVersioningStatusEnabled {
		return Check{"destination", name, Pass, "enabled"}
	}
	st := strings.ToLower(string(out.Status))
	if st == "" {
		st = "never enabled"
	}
	return Check{"destination", name, Warn, st + ": an overwritten or deleted object cannot be recovered"}
}

// lifecycleCheck looks for an enabled lifecycle rule that aborts incomplete
// multipart uploads under the job's prefix (a rule for the whole bucket, or
// for a prefix of the job's). Uploads an interrupted copy leaves behind
// cost storage until something removes them.
func lifecycleCheck(ctx context.Context, sd Side) Check {
	const name = "abort incomplete uploads"
	out, err := sd.Client.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: &sd.Bucket})
	if apiCode(err) == "NoSuchLifecycleConfiguration" {
		return Check{"destination", name, Warn, "no lifecycle rule: parts of interrupted multipart uploads are kept (and billed) until aborted"}
	}
	if err != nil {
		return optional("destination", name, "GetBucketLifecycleConfiguration", err, "")
	}
	if r, ok := abortRule(out.Rules, sd.Prefix); ok {
		return Check{"destination", name, Pass, fmt.Sprintf("lifecycle rule %q aborts incomplete multipart uploads after %d days", aws.ToString(r.ID), aws.ToInt32(r.AbortIncompleteMultipartUpload.DaysAfterInitiation))}
	}
	return Check{"destination", name, Warn, "no enabled lifecycle rule aborts incomplete multipart uploads under " + where(sd)}
}

// abortRule returns an enabled rule that aborts incomplete multipart
// uploads of every key under prefix.
func abortRule(rules []types.LifecycleRule, prefix string) (types.LifecycleRule, bool) {
	for _, r := range rules {
		if r.Status != types.ExpirationStatusEnabled || r.AbortIncompleteMultipartUpload == nil ||
			r.AbortIncompleteMultipartUpload.DaysAfterInitiation == nil {
			continue
		}
		//lint:ignore SA1019 the legacy field, which some servers still send
		p := aws.ToString(r.Prefix)
		if f := r.Filter; f != nil {
			if f.Tag != nil || f.And != nil || f.ObjectSizeGreaterThan != nil || f.ObjectSizeLessThan != nil {
				continue // narrower than "every key under a prefix"
			}
			p = aws.ToString(f.Prefix)
		}
		if strings.HasPrefix(prefix, p) {
			return r, true
		}
	}
	return types.LifecycleRule{}, false
}

// DeniesInsecureTransport reports whether policy, an IAM policy document,
// has a Deny statement conditioned on aws:SecureTransport being false
// (Bool or StringEquals, any capitalization of the key).
func DeniesInsecureTransport(policy string) bool {
	if p, err := url.QueryUnescape(policy); err == nil && strings.HasPrefix(strings.TrimSpace(p), "{") {
		policy = p // some servers return the policy URL-encoded
	}
	var doc struct {
		Statement json.RawMessage
	}
	if json.Unmarshal([]byte(policy), &doc) != nil {
		return false
	}
	var stmts []map[string]json.RawMessage
	if json.Unmarshal(doc.Statement, &stmts) != nil {
		var one map[string]json.RawMessage
		if json.Unmarshal(doc.Statement, &one) != nil {
			return false
		}
		stmts = []map[string]json.RawMessage{one}
	}
	for _, st := range stmts {
		var effect string
		if json.Unmarshal(st["Effect"], &effect) != nil || effect != "Deny" {
			continue
		}
		var cond map[string]map[string]json.RawMessage
		if json.Unmarshal(st["Condition"], &cond) != nil {
			continue
		}
		for op, kv := range cond {
			if op != "Bool" && op != "StringEquals" && op != "StringEqualsIgnoreCase" {
				continue
			}
			for k, v := range kv {
				if strings.EqualFold(k, "aws:SecureTransport") && hasFalse(v) {
					return true
				}
			}
		}
	}
	return false
}

func hasFalse(v json.RawMessage) bool {
	var vals []any
	if json.Unmarshal(v, &vals) != nil {
		var one any
		if json.Unmarshal(v, &one) != nil {
			return false
		}
		vals = []any{one}
	}
	for _, x := range vals {
		switch x := x.(type) {
		case bool:
			if !x {
				return true
			}
		case string:
			if strings.EqualFold(x, "false") {
				return true
			}
		}
	}
	return false
}

func where(sd Side) string { return "s3://" + sd.Bucket + "/" + sd.Prefix + sd.Key }

// required reports err of a request the job needs: a failure.
func required(sd Side, side, name, req string, err error) Check {
	if sd.Explain != nil {
		if msg := sd.Explain(err); msg != "" {
			return Check{side, name, Fail, req + ": " + msg}
		}
	}
	return Check{side, name, Fail, req + ": " + describe(err)}
}

// optional reports err of a request the job can do without: a warning.
func optional(side, name, req string, err error, consequence string) Check {
	d := req + ": " + describe(err)
	if s3store.MeaningOf(err) == s3store.Unsupported {
		d = "not supported by this endpoint (" + req + ": " + apiCodeOr(err, "501") + ")"
	} else if s3store.MeaningOf(err) == s3store.Denied {
		d = "could not check: " + d
	}
	if consequence != "" {
		d += "; " + consequence
	}
	return Check{side, name, Warn, d}
}

// describe is a one-line account of err for a check's detail.
func describe(err error) string {
	switch s3store.MeaningOf(err) {
	case s3store.NoBucket:
		return "bucket does not exist (NoSuchBucket)"
	case s3store.Rejected:
		return "credentials rejected (" + apiCode(err) + ")"
	case s3store.Denied:
		return "access denied"
	case s3store.Unsupported:
		return "not supported by this endpoint"
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	return logtext.OneLine(err.Error())
}

func apiCode(err error) string { return s3store.Code(err) }

func apiCodeOr(err error, def string) string {
	if c := apiCode(err); c != "" {
		return c
	}
	return def
}
