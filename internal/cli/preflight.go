package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/location"
	"github.com/ferry-dev/ferry/internal/preflight"
	"github.com/ferry-dev/ferry/internal/store/s3"
)

// autoPreflight runs before copy and sync transfer anything: the
// --allowed-regions check always (even with --skip-preflight), then the
// preflight checks unless --skip-preflight. A failed check stops the job
// with exit 2; warnings are one line on stderr (the whole table with -v).
// srcKey is a single-object source's name under src ("" for a prefix).
func autoPreflight(ctx context.Context, stdio Stdio, cmd string, f jobFlags, src, dst opened, srcKey string) error {
	printNotes(stdio, src, dst)
	if cmd == "verify" {
		return nil
	}
	if st, ok := dst.store.(*s3.Store); ok && len(f.sec.allowedRegions) > 0 {
		if err := preflight.CheckRegion(ctx, st.Client(), st.Bucket(), f.sec.allowedRegions); err != nil {
			return usageErr("destination %s: %v; nothing was copied", dst.loc, err)
		}
	}
	if f.sec.skipPreflight {
		return nil
	}
	srcSide := preflightSide(ctx, "source", src)
	srcSide.Key = srcKey
	rep := preflight.Run(ctx, preflight.Options{Src: srcSide, Dst: preflightSide(ctx, "destination", dst), SSE: f.sse})
	if f.verbose {
		_ = rep.WriteTable(stdio.Err)
	}
	if failed := rep.Failed(); len(failed) > 0 {
		c := failed[0]
		more := ""
		if len(failed) > 1 {
			more = fmt.Sprintf(" (and %d more failed checks)", len(failed)-1)
		}
		return usageErr("preflight: %s %s: %s%s; nothing was copied ('ferry preflight' shows every check; --skip-preflight skips them)",
			c.Side, c.Name, c.Detail, more)
	}
	if w := rep.Warnings(); len(w) > 0 && !f.verbose {
		names := make([]string, len(w))
		for i, c := range w {
			names[i] = c.Side + " " + c.Name
		}
		fmt.Fprintf(stdio.Err, "preflight: %d warning(s): %s ('ferry preflight SRC DST' explains them)\n", len(w), strings.Join(names, ", "))
	}
	return nil
}

// printNotes prints the sides' info lines (a region the server named).
func printNotes(stdio Stdio, sides ...opened) {
	for _, o := range sides {
		if o.note != "" {
			fmt.Fprintf(stdio.Err, "ferry: %s\n", o.note)
		}
	}
}

// preflightSide describes an opened side for the checks.
func preflightSide(ctx context.Context, role string, o opened) preflight.Side {
	if st, ok := o.store.(*s3.Store); ok {
		return preflight.Side{Client: st.Client(), Bucket: st.Bucket(), Prefix: st.Prefix(),
			Explain: func(err error) string { return st.Explain(ctx, err, role) }}
	}
	d := "local directory " + o.loc.Path
	if o.missing {
		d += " (does not exist yet; will be created)"
	} else {
		d += " (exists, readable)"
	}
	return preflight.Side{Local: d}
}

// fixFlags are preflight's --fix and --yes.
type fixFlags struct {
	fix, yes bool
}

func newPreflightCmd(stdio Stdio) *cobra.Command {
	var f jobFlags
	var fx fixFlags
	c := &cobra.Command{
		Use:   "preflight SRC DST",
		Short: "Check credentials and the destination's security posture; change nothing",
		Long: `preflight checks, with read requests only, that the credentials can do what
a copy from SRC to DST needs, and reports the destination bucket's Block
Public Access, default encryption, TLS-only bucket policy, versioning and a
lifecycle rule aborting incomplete multipart uploads as a table of pass, warn
and fail. copy and sync run it automatically and stop on a fail unless
--skip-preflight. Exit 0 without failures, 1 with one or more, 2 for usage
errors.

--fix prints, after the table, the requests that would put the missing
destination prerequisites in place, with their bodies (a bucket policy is
merged into the existing one, never replaced), and changes nothing. --fix
--yes sends them and checks again. A setting the server does not implement
is reported as such, not as a failure. See docs/security.md.`,
		Example: `  ferry preflight s3://src/photos s3://dst/photos --dst-endpoint https://minio.example:9000 --ca-bundle ca.pem
  ferry preflight ./data backup:archive/data --allowed-regions eu-west-1,eu-central-1
  ferry preflight ./data s3://backup/data --fix          # show the plan
  ferry preflight ./data s3://backup/data --fix --yes    # apply it`,
		Args: exactArgs(2, "SRC and DST"),
		RunE: func(c *cobra.Command, args []string) error {
			return runPreflight(c.Context(), stdio, f, fx, args[0], args[1])
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.src.endpoint, "src-endpoint", "", "S3 endpoint URL of the source (default: AWS)")
	fl.StringVar(&f.dst.endpoint, "dst-endpoint", "", "S3 endpoint URL of the destination (default: AWS)")
	fl.StringVar(&f.src.region, "src-region", "", "region of the source bucket")
	fl.StringVar(&f.dst.region, "dst-region", "", "region of the destination bucket")
	fl.StringVar(&f.src.profile, "src-profile", "", "AWS shared config profile for the source")
	fl.StringVar(&f.dst.profile, "dst-profile", "", "AWS shared config profile for the destination")
	fl.StringVar(&f.caBundle, "ca-bundle", "", "PEM file of extra CA certificates to trust for both endpoints")
	fl.StringVar(&f.sse, "sse", "", "the --sse the copy will use (AES256 or aws:kms): objects are then encrypted without a bucket default")
	fl.StringVar(&f.sseKMSKeyID, "sse-kms-key-id", "", "with --fix and --sse aws:kms: the KMS key of the default encryption")
	fl.BoolVar(&fx.fix, "fix", false, "print the requests that would apply the missing destination prerequisites (changes nothing without --yes)")
	fl.BoolVar(&fx.yes, "yes", false, "with --fix: send those requests")
	fl.BoolVar(&f.jsonOut, "json", false, "print the checks as JSON instead of a table")
	registerInsecure(fl, &f.sec.allowInsecureHTTP)
	registerRegions(fl, &f.sec.allowedRegions)
	return c
}

func runPreflight(ctx context.Context, stdio Stdio, f jobFlags, fx fixFlags, srcArg, dstArg string) error {
	if fx.yes && !fx.fix {
		return usageErr("--yes applies the plan of --fix: pass both")
	}
	srcLoc, dstLoc, err := f.locations(srcArg, dstArg)
	if err != nil {
		return err
	}
	switch f.sse {
	case "", "AES256", "aws:kms":
	default:
		return usageErr("--sse %q: want AES256 or aws:kms", f.sse)
	}
	if f.sseKMSKeyID != "" && f.sse != "aws:kms" {
		return usageErr("--sse-kms-key-id needs --sse aws:kms")
	}
	if fx.fix && dstLoc.Kind != location.S3 {
		return usageErr("--fix: the destination %s is not a bucket; there is nothing to fix", dstLoc)
	}
	if f.caBundle != "" {
		if _, err := readable(f.caBundle); err != nil {
			return usageErr("--ca-bundle %s: %v", f.caBundle, err)
		}
	}
	// A source without a trailing slash may be one object: open its
	// parent and check what is listed under the name, which is the object
	// itself or, for a prefix, its contents.
	srcKey := ""
	if srcLoc.Kind == location.S3 && srcLoc.Prefix != "" && !hasTrailingSlash(srcArg) {
		srcLoc.Prefix, srcKey = splitKey(srcLoc.Prefix)
	}
	src, err := openForPreflight(ctx, "source", srcLoc, f.src, f.sec.srcCA)
	if err != nil {
		return err
	}
	dst, err := openForPreflight(ctx, "destination", dstLoc, f.dst, f.sec.dstCA)
	if err != nil {
		return err
	}
	printNotes(stdio, src, dst)
	srcSide := preflightSide(ctx, "source", src)
	srcSide.Key = srcKey
	rep := preflight.Run(ctx, preflight.Options{
		Src: srcSide, Dst: preflightSide(ctx, "destination", dst),
		AllowedRegions: f.sec.allowedRegions, SSE: f.sse,
	})
	if fx.fix && len(rep.Failed()) == 0 {
		return runFix(ctx, stdio, f, fx, rep, src, dst)
	}
	if err := writeReport(stdio, f.jsonOut, rep, nil); err != nil {
		return err
	}
	if len(rep.Failed()) > 0 {
		return errFailed
	}
	return nil
}

// writeReport prints the checks (and the plan of --fix) as a table and
// text, or as one JSON object.
func writeReport(stdio Stdio, jsonOut bool, rep preflight.Report, plan *preflight.Plan) error {
	if jsonOut {
		b, err := json.Marshal(struct {
			preflight.Report
			Fix *preflight.Plan `json:"fix,omitempty"`
		}{rep, plan})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdio.Out, "%s\n", b)
		return err
	}
	if err := rep.WriteTable(stdio.Out); err != nil {
		return err
	}
	if plan == nil {
		return nil
	}
	fmt.Fprintln(stdio.Out)
	return plan.Write(stdio.Out)
}

// runFix plans the destination's missing prerequisites and, with --yes,
// applies them and runs the checks again.
func runFix(ctx context.Context, stdio Stdio, f jobFlags, fx fixFlags, rep preflight.Report, src, dst opened) error {
	st := dst.store.(*s3.Store)
	plan, err := preflight.PlanFixes(ctx, st.Client(), st.Bucket(), fixOptions(f, st, false))
	if err != nil {
		return usageErr("--fix: destination %s: %v", dst.loc, err)
	}
	if !fx.yes {
		if err := writeReport(stdio, f.jsonOut, rep, &plan); err != nil {
			return err
		}
		if !f.jsonOut && plan.Count(preflight.Planned) > 0 {
			fmt.Fprintln(stdio.Out, "preflight --fix: nothing was changed; run again with --yes to apply the planned changes")
		}
		return nil
	}
	applyErr := plan.Apply(ctx, st.Client())
	after := preflight.Run(ctx, preflight.Options{
		Src: preflightSide(ctx, "source", src), Dst: preflightSide(ctx, "destination", dst),
		AllowedRegions: f.sec.allowedRegions, SSE: f.sse,
	})
	if err := writeReport(stdio, f.jsonOut, after, &plan); err != nil {
		return err
	}
	if !f.jsonOut {
		writeFixSummary(stdio.Out, plan)
	}
	if applyErr != nil || len(after.Failed()) > 0 {
		return errFailed
	}
	return nil
}

// fixOptions are the inputs of the fix plan for the destination st.
func fixOptions(f jobFlags, st *s3.Store, fresh bool) preflight.FixOptions {
	return preflight.FixOptions{
		SSE: f.sse, SSEKMSKeyID: f.sseKMSKeyID, Region: st.Region(), Prefix: st.Prefix(),
		PlainHTTP: strings.HasPrefix(st.Endpoint(), "http://"), Fresh: fresh,
	}
}

// writeFixSummary prints one line of what was applied and what the
// server does not support.
func writeFixSummary(w io.Writer, plan preflight.Plan) {
	var unsupported []string
	for _, c := range plan.Changes {
		if c.Status == preflight.Unsupported {
			unsupported = append(unsupported, c.Check)
		}
	}
	fmt.Fprintf(w, "fix: %d applied, %d failed, %d skipped", plan.Count(preflight.Applied), plan.Count(preflight.Failed), plan.Count(preflight.Skipped))
	if len(unsupported) > 0 {
		fmt.Fprintf(w, "; not supported by this server: %s", strings.Join(unsupported, ", "))
	}
	fmt.Fprintln(w)
}

// openForPreflight opens a side like openSide, except that an S3 bucket is
// not checked: the checks report a missing bucket or rejected credentials.
func openForPreflight(ctx context.Context, role string, loc location.Location, sd side, ca string) (opened, error) {
	o := sideOptions(2, nil)
	o.NoBucketCheck, o.RetryMaxAttempts = true, 2
	return openWith(ctx, role, loc, sd, ca, o)
}
