package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/location"
	"github.com/ferry-dev/ferry/internal/policy"
)

func newPolicyCmd(stdio Stdio) *cobra.Command {
	var (
		del, skipPreflight     bool
		sse, kmsKey, dstRegion string
		partition              string
		allowedRegions         []string
	)
	c := &cobra.Command{
		Use:   "policy SRC DST",
		Short: "Print the least-privilege IAM policy for copying or syncing SRC to DST",
		Long: `policy prints the IAM policy JSON that a copy or sync from SRC to DST needs and
no more: list and read (with tags) on the source prefix; list, read-back,
write, tagging and multipart clean-up on the destination prefix; delete only
with --delete; the preflight's posture reads unless --skip-preflight;
s3:GetBucketLocation with --allowed-regions; and kms:GenerateDataKey and
kms:Decrypt for --sse aws:kms with --sse-kms-key-id. Local sides need no
statements. It connects to nothing.`,
		Example: `  ferry policy s3://src/photos s3://dst/photos > ferry-policy.json
  ferry policy ./data s3://backup/data --delete --sse aws:kms --sse-kms-key-id alias/backup`,
		Args: exactArgs(2, "SRC and DST"),
		RunE: func(c *cobra.Command, args []string) error {
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			src, dst, err := parseLocations(cfg, args[0], args[1])
			if err != nil {
				return err
			}
			switch sse {
			case "", "AES256", "aws:kms":
			default:
				return usageErr("--sse %q: want AES256 or aws:kms", sse)
			}
			if kmsKey != "" && sse != "aws:kms" {
				return usageErr("--sse-kms-key-id needs --sse aws:kms")
			}
			if err := checkRegionList(allowedRegions); err != nil {
				return err
			}
			if r, ok := cfg.Remote(dst.Remote); ok && dstRegion == "" {
				dstRegion = r.Region
			}
			if src.Kind != location.S3 && dst.Kind != location.S3 {
				fmt.Fprintln(stdio.Err, "ferry: both sides are local: no IAM permissions are needed")
			}
			doc := policy.For(policy.Job{
				Src: src, Dst: dst,
				CopyTags:    true, // ferry always copies tags
				Delete:      del,
				SSE:         sse,
				SSEKMSKeyID: kmsKey,
				DstRegion:   dstRegion,
				Preflight:   !skipPreflight,
				CheckRegion: len(allowedRegions) > 0,
				Partition:   partition,
				// A side without a trailing "/" may name one object.
				SrcMayBeObject: !strings.HasSuffix(args[0], "/"),
				DstMayBeObject: !strings.HasSuffix(args[1], "/"),
			})
			_, err = stdio.Out.Write(doc.JSON())
			return err
		},
	}
	fl := c.Flags()
	fl.BoolVar(&del, "delete", false, "the job is a sync --delete: grant s3:DeleteObject on the destination prefix")
	fl.StringVar(&sse, "sse", "", "the job's --sse: AES256 or aws:kms")
	fl.StringVar(&kmsKey, "sse-kms-key-id", "", "the job's KMS key (ARN, key ID or alias/NAME)")
	fl.StringVar(&dstRegion, "dst-region", "", "region of the destination, to scope a bare KMS key ID")
	fl.BoolVar(&skipPreflight, "skip-preflight", false, "the job runs with --skip-preflight: omit the posture reads")
	fl.StringSliceVar(&allowedRegions, "allowed-regions", nil, "the job uses --allowed-regions: grant s3:GetBucketLocation on the destination")
	fl.StringVar(&partition, "partition", "aws", "ARN partition (aws, aws-cn, aws-us-gov)")
	return c
}
