package cli

import (
	"encoding/json"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/ferry-dev/ferry/internal/filter"
	"github.com/ferry-dev/ferry/internal/location"
	"github.com/ferry-dev/ferry/internal/plan"
	"github.com/ferry-dev/ferry/internal/transfer"
	"github.com/ferry-dev/ferry/internal/units"
)

// xferFlags are the transfer options users know from rclone: comparison
// modes, object filters, storage class (docs/transfer-options.md).
type xferFlags struct {
	sizeOnly, checksum bool
	filesFrom          string
	minSize, maxSize   string
	minAge, maxAge     string
	storageClass       string
}

func (x *xferFlags) register(fl *pflag.FlagSet, cmd string) {
	fl.BoolVar(&x.sizeOnly, "size-only", false, "compare sizes only: an object of equal size is the same")
	if cmd == "verify" {
		fl.BoolVar(&x.checksum, "checksum", false, "compare checksums (the default for verify)")
	} else {
		fl.BoolVar(&x.checksum, "checksum", false, "compare size and checksums, never modification times")
	}
	fl.StringVar(&x.filesFrom, "files-from", "", "only the keys listed in this file (one per line, relative to SRC; # comments)")
	fl.StringVar(&x.minSize, "min-size", "", "only objects of at least this size (e.g. 100k, 1.5G; binary units, bare number KiB)")
	fl.StringVar(&x.maxSize, "max-size", "", "only objects of at most this size (e.g. 10M)")
	fl.StringVar(&x.minAge, "min-age", "", "only objects modified at least this long ago (e.g. 24h, 7d, 1M) or before a date (2006-01-02)")
	fl.StringVar(&x.maxAge, "max-age", "", "only objects modified within this long (e.g. 24h, 7d) or since a date (2006-01-02)")
	if cmd != "verify" {
		fl.StringVar(&x.storageClass, "storage-class", "", "storage class of the objects written to an S3 destination (e.g. STANDARD_IA)")
	}
}

// s3StorageClasses are the storage classes S3 knows.
var s3StorageClasses = []string{"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
	"GLACIER", "DEEP_ARCHIVE", "GLACIER_IR", "OUTPOSTS", "EXPRESS_ONEZONE"}

// maxFilesFromBytes bounds the keys of --files-from: the list travels in the
// job's spec, in the job's record on the queue (whose messages external
// NATS servers limit to 1 MiB by default).
const maxFilesFromBytes = 512 << 10

// compare returns the comparison mode.
func (x *xferFlags) compare() (plan.Compare, error) {
	switch {
	case x.sizeOnly && x.checksum:
		return "", usageErr("--size-only and --checksum exclude each other: choose one")
	case x.sizeOnly:
		return plan.CompareSizeOnly, nil
	case x.checksum:
		return plan.CompareChecksum, nil
	}
	return plan.CompareDefault, nil
}

// filterSpec builds the job's filter from the flags; ages are taken from
// now. Every error is a usage error naming the flag.
func (x *xferFlags) filterSpec(include, exclude []string, now time.Time) (filter.Spec, error) {
	s := filter.Spec{Include: include, Exclude: exclude}
	for _, b := range []struct {
		flag, val string
		dst       **int64
	}{{"--min-size", x.minSize, &s.MinSize}, {"--max-size", x.maxSize, &s.MaxSize}} {
		if b.val == "" {
			continue
		}
		n, err := units.ParseSize(b.val)
		if err != nil {
			return s, usageErr("%s %v", b.flag, err)
		}
		*b.dst = &n
	}
	for _, a := range []struct {
		flag, val string
		dst       *time.Time
	}{{"--max-age", x.maxAge, &s.ModifiedAfter}, {"--min-age", x.minAge, &s.ModifiedBefore}} {
		if a.val == "" {
			continue
		}
		t, err := units.ParseAge(a.val, now)
		if err != nil {
			return s, usageErr("%s %v", a.flag, err)
		}
		*a.dst = t.UTC()
	}
	if x.filesFrom != "" {
		fh, err := os.Open(x.filesFrom)
		if err != nil {
			return s, usageErr("--files-from: %v", err)
		}
		keys, err := filter.ReadKeys(fh)
		fh.Close()
		if err != nil {
			return s, usageErr("--files-from %s: %v", x.filesFrom, err)
		}
		if b, _ := json.Marshal(keys); len(b) > maxFilesFromBytes {
			return s, usageErr("--files-from %s: %d keys (%s) are more than a job can carry (%s): split the list into several jobs",
				x.filesFrom, len(keys), humanBytes(int64(len(b))), humanBytes(maxFilesFromBytes))
		}
		s.FilesFrom = &filter.KeyList{Keys: keys}
	}
	if _, err := filter.FromSpec(s); err != nil {
		return s, usageErr("%v", err)
	}
	return s, nil
}

// checkStorageClass validates --storage-class for the destination.
func (x *xferFlags) checkStorageClass(dst location.Location) error {
	if x.storageClass == "" {
		return nil
	}
	if dst.Kind != location.S3 {
		return usageErr("--storage-class applies to S3 destinations only")
	}
	for _, c := range s3StorageClasses {
		if strings.EqualFold(x.storageClass, c) {
			x.storageClass = c
			return nil
		}
	}
	return usageErr("--storage-class %q: not an S3 storage class (want one of %v)", x.storageClass, s3StorageClasses)
}

// parseBWLimit parses --bwlimit into a limiter (nil: no limit).
func parseBWLimit(s string) (*transfer.Limiter, error) {
	if s == "" {
		return nil, nil
	}
	n, err := units.ParseRate(s)
	if err != nil {
		return nil, usageErr("--bwlimit %v", err)
	}
	if n > 0 && n < 1<<10 {
		return nil, usageErr("--bwlimit %q: less than 1 KiB/s", s)
	}
	return transfer.NewLimiter(n), nil
}

// registerStallTimeout registers --stall-timeout into v.
func registerStallTimeout(fl *pflag.FlagSet, v *time.Duration) {
	fl.DurationVar(v, "stall-timeout", transfer.DefaultStallTimeout, "abort and retry a source read or destination write that moves no bytes for this long (0: never)")
}

// checkStallTimeout refuses a negative --stall-timeout.
func checkStallTimeout(d time.Duration) error {
	if d < 0 {
		return usageErr("--stall-timeout %s: want 0 (never) or more", d)
	}
	return nil
}

// stallOption is --stall-timeout as [worker.Options.StallTimeout] takes it
// (0, never, is negative there).
func stallOption(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
