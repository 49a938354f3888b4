package cli

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/location"
	"github.com/ferry-dev/ferry/internal/preflight"
	"github.com/ferry-dev/ferry/internal/store/s3"
	"github.com/ferry-dev/ferry/internal/transport"
)

func newBucketCmd(stdio Stdio) *cobra.Command {
	c := &cobra.Command{
		Use:   "bucket",
		Short: "Create buckets (with the destination prerequisites applied)",
	}
	c.AddCommand(newBucketCreateCmd(stdio))
	return c
}

func newBucketCreateCmd(stdio Stdio) *cobra.Command {
	var f jobFlags
	var secure bool
	c := &cobra.Command{
		Use:   "create s3://BUCKET",
		Short: "Create a bucket; with --secure, apply every destination prerequisite preflight checks",
		Long: `create makes a new bucket in the region of --region (else the AWS
configuration's, else us-east-1). With --secure it then applies what
'ferry preflight' checks at a destination: Block Public Access, default
encryption (SSE-S3, or --sse aws:kms [--sse-kms-key-id]), a TLS-only bucket
policy, versioning, and a lifecycle rule aborting incomplete multipart uploads
after 7 days. Each request is printed with its body and outcome; a setting the
server does not implement is reported as "not supported by this server".
Exit 0 when the bucket was created and nothing failed, 1 when a setting
failed, 2 for usage errors and a bucket that cannot be created.`,
		Example: `  ferry bucket create s3://archive --secure --region eu-west-1
  ferry bucket create s3://archive --secure --endpoint https://minio.example:9000 --ca-bundle ca.pem --profile minio
  ferry bucket create backup:archive --secure   # a remote from the configuration file`,
		Args: exactArgs(1, "a bucket (s3://BUCKET or REMOTE:BUCKET)"),
		RunE: func(c *cobra.Command, args []string) error {
			return runBucketCreate(c.Context(), stdio, f, secure, args[0])
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.dst.endpoint, "endpoint", "", "S3 endpoint URL (default: AWS)")
	fl.StringVar(&f.dst.region, "region", "", "the bucket's region (default: the AWS configuration's, else us-east-1)")
	fl.StringVar(&f.dst.profile, "profile", "", "AWS shared config profile")
	fl.StringVar(&f.dst.secret, "secret", "", "name of a secret in ferry's store (see 'ferry secret') holding the S3 credentials")
	fl.StringVar(&f.caBundle, "ca-bundle", "", "PEM file of extra CA certificates to trust")
	fl.StringVar(&f.sse, "sse", "", "with --secure: the default encryption, AES256 (default) or aws:kms")
	fl.StringVar(&f.sseKMSKeyID, "sse-kms-key-id", "", "with --secure and --sse aws:kms: the KMS key")
	fl.BoolVar(&secure, "secure", false, "apply every destination prerequisite (see 'ferry preflight --fix')")
	registerInsecure(fl, &f.sec.allowInsecureHTTP)
	return c
}

func runBucketCreate(ctx context.Context, stdio Stdio, f jobFlags, secure bool, arg string) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	isRemote := func(name string) bool { _, ok := cfg.Remote(name); return ok }
	loc, err := location.ParseWith(arg, isRemote)
	if err != nil {
		return usageErr("bucket: %v", err)
	}
	if loc.Kind != location.S3 || loc.Prefix != "" {
		return usageErr("bucket create takes a bucket, s3://BUCKET or REMOTE:BUCKET, without a prefix (got %s)", arg)
	}
	switch f.sse {
	case "", "AES256", "aws:kms":
	default:
		return usageErr("--sse %q: want AES256 or aws:kms", f.sse)
	}
	if f.sseKMSKeyID != "" && f.sse != "aws:kms" {
		return usageErr("--sse-kms-key-id needs --sse aws:kms")
	}
	ca := applyRemote(cfg, loc, &f.dst, f.caBundle, f.sec.allowInsecureHTTP)
	name := "--endpoint"
	if loc.Remote != "" && f.dst.endpoint != "" {
		name = fmt.Sprintf("--endpoint (remote %q)", loc.Remote)
	}
	if err := validateEndpoint(name, f.dst.endpoint); err != nil {
		return err
	}
	if err := transport.Check(name, f.dst.endpoint, f.dst.allowInsecure); err != nil {
		return usageErr("%v", err)
	}
	if ca != "" {
		if _, err := readable(ca); err != nil {
			return usageErr("CA bundle %s: %v", ca, err)
		}
	}
	creds, err := sideCredentials(ctx, "destination", f.dst)
	if err != nil {
		return err
	}
	st, err := s3.Open(ctx, s3.Config{
		Bucket: loc.Bucket, Endpoint: f.dst.endpoint, Region: f.dst.region, Profile: f.dst.profile,
		CABundle: ca, MaxConns: 4, RetryMaxAttempts: 2, Credentials: creds,
	})
	if err != nil {
		return usageErr("bucket %s: %v", loc, err)
	}
	defer st.Close()
	if err := checkResolvedEndpoint("bucket", f.dst, st.Endpoint()); err != nil {
		return err
	}
	in := &awss3.CreateBucketInput{Bucket: aws.String(loc.Bucket)}
	if r := st.Region(); r != s3.DefaultRegion {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(r)}
	}
	if _, err := st.Client().CreateBucket(ctx, in); err != nil {
		switch s3.Code(err) {
		case "BucketAlreadyOwnedByYou":
			return usageErr("bucket %s exists already (and is yours): 'ferry preflight SRC %s --fix' applies the prerequisites to it", loc, loc)
		case "BucketAlreadyExists":
			return usageErr("bucket %s: the name is taken (bucket names are global on AWS): choose another", loc)
		}
		if msg := s3.Explain(err, bucketHints(ctx, st)); msg != "" {
			return &exitError{code: ExitUsage, err: explained{fmt.Sprintf("bucket %s: %s", loc, msg), err}}
		}
		return usageErr("bucket %s: CreateBucket: %v", loc, err)
	}
	fmt.Fprintf(stdio.Out, "created bucket s3://%s in region %s\n", loc.Bucket, st.Region())
	if !secure {
		return nil
	}
	plan, err := preflight.PlanFixes(ctx, st.Client(), loc.Bucket, fixOptions(f, st, true))
	if err != nil {
		return usageErr("bucket %s: %v", loc, err)
	}
	applyErr := plan.Apply(ctx, st.Client())
	if err := plan.Write(stdio.Out); err != nil {
		return err
	}
	writeFixSummary(stdio.Out, plan)
	if applyErr != nil {
		return errFailed
	}
	return nil
}

// bucketHints are the explanation hints of bucket create, whose flags have
// no side prefix.
func bucketHints(ctx context.Context, st *s3.Store) s3.Hints {
	h := st.Hints(ctx, "bucket")
	h.Flag = "-" // "--endpoint", "--region", ...
	return h
}
