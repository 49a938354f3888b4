package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/location"
	"github.com/ferry-dev/ferry/internal/sides"
	"github.com/ferry-dev/ferry/internal/transfer"
	"github.com/ferry-dev/ferry/internal/worker"
)

func newBundleCmd(stdio Stdio) *cobra.Command {
	c := &cobra.Command{
		Use:   "bundle",
		Short: "Inspect and unpack pack-mode bundles (docs/bundle-format.md)",
		Example: `  ferry bundle inspect ./saved.ferry-bundle --verify
  ferry bundle unpack s3://staging/JOB/ID.ferry-bundle ./restored`,
	}
	c.AddCommand(newBundleInspectCmd(stdio), newBundleUnpackCmd(stdio))
	return c
}

// bundleFlags name where a bundle is: a local file, or an S3 object with
// its endpoint and credentials.
type bundleFlags struct {
	src      side
	caBundle string
	insecure bool
}

func (b *bundleFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.StringVar(&b.src.endpoint, "endpoint", "", "S3 endpoint URL of an s3:// bundle (default: AWS)")
	fl.StringVar(&b.src.region, "region", "", "region of an s3:// bundle's bucket")
	fl.StringVar(&b.src.profile, "profile", "", "AWS shared config profile for an s3:// bundle")
	fl.StringVar(&b.src.secret, "secret", "", "secret in ferry's store holding an s3:// bundle's credentials")
	fl.StringVar(&b.caBundle, "ca-bundle", "", "PEM file of extra CA certificates to trust")
	registerInsecure(fl, &b.insecure)
}

// open returns a reader of the whole bundle at arg (a local file or an
// s3:// object).
func (b *bundleFlags) open(ctx context.Context, arg string) (io.ReadCloser, error) {
	loc, err := location.Parse(arg)
	if err != nil {
		return nil, usageErr("bundle %s: %v", arg, err)
	}
	if loc.Kind != location.S3 {
		f, err := os.Open(arg)
		if err != nil {
			return nil, usageErr("bundle: %v", err)
		}
		return f, nil
	}
	if loc.Prefix == "" {
		return nil, usageErr("bundle %s: name an object, s3://BUCKET/KEY", arg)
	}
	key := loc.Prefix
	root, err := location.Parse("s3://" + loc.Bucket)
	if err != nil {
		return nil, usageErr("bundle %s: %v", arg, err)
	}
	b.src.allowInsecure = b.insecure
	op, err := openSide(ctx, "bundle", root, b.src, b.caBundle, 4)
	if err != nil {
		return nil, err
	}
	rc, _, err := op.store.Open(ctx, key, 0, -1)
	if err != nil {
		return nil, usageErr("bundle %s: %v", arg, err)
	}
	return rc, nil
}

func newBundleInspectCmd(stdio Stdio) *cobra.Command {
	var b bundleFlags
	var verify bool
	c := &cobra.Command{
		Use:   "inspect FILE|s3://BUCKET/KEY",
		Short: "Print a bundle's manifest (with --verify, check every object against it)",
		Long: `inspect prints the manifest of a bundle as indented JSON: its format
version, compression and level, and for every object its key, size, SHA-256,
content headers, user metadata, tags and the source's ETag and creation time.
It reads only the manifest unless --verify is given, which reads the whole
bundle and checks every object's size and SHA-256 and the data checksum.
Exit 0, 1 when --verify finds the bundle corrupt, 2 for usage errors.`,
		Example: `  ferry bundle inspect s3://staging/JOB/ID.ferry-bundle --endpoint https://minio.example:9000
  ferry bundle inspect ./saved.ferry-bundle --verify`,
		Args: exactArgs(1, "a bundle (a file or s3://BUCKET/KEY)"),
		RunE: func(c *cobra.Command, args []string) error {
			rc, err := b.open(c.Context(), args[0])
			if err != nil {
				return err
			}
			defer rc.Close()
			var m bundle.Manifest
			if verify {
				m, err = bundle.Verify(rc, bundle.ReadOptions{})
			} else {
				var rd *bundle.Reader
				rd, err = bundle.NewReader(rc, bundle.ReadOptions{})
				if err == nil {
					m = rd.Manifest()
					rd.Close()
				}
			}
			if err != nil {
				return &exitError{code: ExitFailed, err: fmt.Errorf("bundle %s: %w", args[0], err)}
			}
			out, err := json.MarshalIndent(m, "", "  ")
			if err != nil {
				return fmt.Errorf("encode manifest: %w", err)
			}
			fmt.Fprintf(stdio.Out, "%s\n", out)
			if verify {
				fmt.Fprintf(stdio.Err, "bundle %s verified: %d objects, %d bytes of data\n", args[0], len(m.Objects), m.DataBytes)
			}
			return nil
		},
	}
	b.register(c)
	c.Flags().BoolVar(&verify, "verify", false, "read the whole bundle and check every object against the manifest")
	return c
}

func newBundleUnpackCmd(stdio Stdio) *cobra.Command {
	var b bundleFlags
	var dst side
	var dstCA string
	c := &cobra.Command{
		Use:   "unpack BUNDLE DST",
		Short: "Restore a bundle's objects into DST by hand (verified whole first)",
		Long: `unpack restores every object of a bundle into DST (s3://bucket/prefix or a
local directory), as a pack-mode job's unpacker does: the bundle is read and
verified whole against its manifest first (nothing is written if any object
or entry is refused), then each object is written with its content headers,
user metadata, tags and provenance, verified by the destination before it is
visible. Keys are refused if they hold "..", start with "/" or do not match
the manifest, so nothing is written outside DST. The bundle is not removed.
Exit 0 when every object was restored, 1 when the bundle was refused or an
object failed, 2 for usage errors.`,
		Example: `  ferry bundle unpack s3://staging/JOB/ID.ferry-bundle s3://dst/prefix --endpoint https://minio.example:9000 --dst-endpoint https://minio.example:9000`,
		Args:    exactArgs(2, "BUNDLE and DST"),
		RunE: func(c *cobra.Command, args []string) error {
			return runBundleUnpack(c.Context(), stdio, &b, dst, dstCA, args[0], args[1])
		},
	}
	b.register(c)
	fl := c.Flags()
	fl.StringVar(&dst.endpoint, "dst-endpoint", "", "S3 endpoint URL of DST (default: AWS)")
	fl.StringVar(&dst.region, "dst-region", "", "region of DST's bucket")
	fl.StringVar(&dst.profile, "dst-profile", "", "AWS shared config profile for DST")
	fl.StringVar(&dst.secret, "dst-secret", "", "secret in ferry's store holding DST's credentials")
	fl.StringVar(&dstCA, "dst-ca-bundle", "", "PEM file of extra CA certificates to trust for DST")
	return c
}

func runBundleUnpack(ctx context.Context, stdio Stdio, b *bundleFlags, dst side, dstCA, bundleArg, dstArg string) error {
	dloc, err := location.Parse(dstArg)
	if err != nil {
		return usageErr("DST %s: %v", dstArg, err)
	}
	dst.allowInsecure = b.insecure
	rc, err := b.open(ctx, bundleArg)
	if err != nil {
		return err
	}
	defer rc.Close()
	// Verified whole from a local copy before anything is written.
	f, err := os.CreateTemp("", ".ferry-unpack-*")
	if err != nil {
		return fmt.Errorf("bundle file: %w", err)
	}
	defer func() { f.Close(); os.Remove(f.Name()) }()
	if _, err := io.Copy(f, rc); err != nil {
		return fmt.Errorf("read bundle %s: %w", bundleArg, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("bundle file: %w", err)
	}
	if _, err := bundle.Verify(f, bundle.ReadOptions{MaxObjectSize: job.MaxPackObjectSize}); err != nil {
		return &exitError{code: ExitFailed, err: fmt.Errorf("bundle %s refused, nothing written: %w", bundleArg, err)}
	}
	op, err := openSide(ctx, sides.Destination, dloc, dst, dstCA, 8)
	if err != nil {
		return err
	}
	if err := createDst(&op); err != nil {
		return err
	}
	eng := transfer.New(nil, op.store, transfer.Options{})
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("bundle file: %w", err)
	}
	rd, err := bundle.NewReader(f, bundle.ReadOptions{MaxObjectSize: job.MaxPackObjectSize})
	if err != nil {
		return &exitError{code: ExitFailed, err: fmt.Errorf("bundle %s: %w", bundleArg, err)}
	}
	defer rd.Close()
	restored, failed := 0, 0
	for {
		mo, body, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return &exitError{code: ExitFailed, err: fmt.Errorf("bundle %s: %w (%d objects restored)", bundleArg, err, restored)}
		}
		data, err := io.ReadAll(body)
		if err != nil {
			return &exitError{code: ExitFailed, err: fmt.Errorf("bundle %s: %w (%d objects restored)", bundleArg, err, restored)}
		}
		in, src := worker.RestoreInput(mo, mo.Key)
		if _, _, err := eng.PutSmall(ctx, in, src, data, ""); err != nil {
			failed++
			fmt.Fprintf(stdio.Err, "failed: %q: %v\n", mo.Key, err)
			continue
		}
		restored++
	}
	fmt.Fprintf(stdio.Out, "%d objects restored to %s, %d failed\n", restored, dloc, failed)
	if failed > 0 {
		return errFailed
	}
	return nil
}
