// Package units parses the sizes, rates and ages of ferry's transfer
// options, with rclone's syntax, so that a command line that works with
// rclone means the same with ferry.
//
// Sizes (--min-size, --max-size, --bwlimit): a number, decimals allowed,
// and a binary suffix: B (bytes), K, M, G, T, P, each also written Ki or
// KiB. Case does not matter. A bare number is KiB, as in rclone. SI
// suffixes ("MB") are refused rather than guessed.
//
// Ages (--min-age, --max-age): a duration such as "90s", "1h30m", "2d",
// with the units ms, s, m, h, d (24h), w (7d), M (30d) and y (365d); a bare
// number is seconds. Or an absolute time: RFC 3339, "2006-01-02 15:04:05",
// "2006-01-02T15:04:05" or "2006-01-02" (UTC).
package units

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseSize parses a size (see the package documentation) into bytes.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New("empty size")
	}
	num, mult := t, int64(1<<10) // bare number: KiB
	lower := strings.ToLower(t)
	// back(i) is the i-th byte from the end of lower ("" when too short).
	back := func(i int) string {
		if i > len(lower) {
			return ""
		}
		return lower[len(lower)-i : len(lower)-i+1]
	}
	unknown := fmt.Errorf("%q: unknown unit (want B, K, M, G, T or P, optionally KiB, MiB, ...)", s)
	switch {
	case strings.HasSuffix(lower, "ib"):
		p, ok := binaryPrefix(back(3))
		if !ok {
			return 0, unknown
		}
		num, mult = t[:len(t)-3], p
	case strings.HasSuffix(lower, "i"):
		p, ok := binaryPrefix(back(2))
		if !ok {
			return 0, unknown
		}
		num, mult = t[:len(t)-2], p
	case strings.HasSuffix(lower, "b"):
		if _, si := binaryPrefix(back(2)); si {
			return 0, fmt.Errorf("%q: SI units are ambiguous; use %siB (binary) or a byte count with B", s, strings.ToUpper(back(2)))
		}
		num, mult = t[:len(t)-1], 1
	default:
		last := back(1)
		if p, ok := binaryPrefix(last); ok {
			num, mult = t[:len(t)-1], p
		} else if (last < "0" || last > "9") && last != "." {
			return 0, unknown
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q: not a size", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("%q: negative size", s)
	}
	b := v * float64(mult)
	if b >= math.MaxInt64 {
		return 0, fmt.Errorf("%q: too large", s)
	}
	return int64(math.Round(b)), nil
}

func binaryPrefix(c string) (int64, bool) {
	switch c {
	case "k":
		return 1 << 10, true
	case "m":
		return 1 << 20, true
	case "g":
		return 1 << 30, true
	case "t":
		return 1 << 40, true
	case "p":
		return 1 << 50, true
	}
	return 0, false
}

// ParseRate parses a bandwidth such as "10M", "10MiB/s" or "512k" into bytes
// per second; "off" and "0" mean no limit (0). A "/s" suffix is optional.
func ParseRate(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if strings.EqualFold(t, "off") {
		return 0, nil
	}
	t = strings.TrimSuffix(strings.TrimSuffix(t, "/s"), "ps")
	return ParseSize(t)
}

// ageUnits are the units of a relative age, rclone's.
var ageUnits = map[string]time.Duration{
	"ms": time.Millisecond,
	"s":  time.Second,
	"m":  time.Minute,
	"h":  time.Hour,
	"d":  24 * time.Hour,
	"w":  7 * 24 * time.Hour,
	"M":  30 * 24 * time.Hour,
	"y":  365 * 24 * time.Hour,
}

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"}

// ParseAge parses an age (see the package documentation) and returns the
// point in time it names: now minus a duration, or the absolute time given.
func ParseAge(s string, now time.Time) (time.Time, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return time.Time{}, errors.New("empty age")
	}
	if d, err := parseDuration(t); err == nil {
		return now.Add(-d), nil
	} else if t[0] < '0' || t[0] > '9' || !strings.ContainsAny(t, "-:") {
		return time.Time{}, fmt.Errorf("%q: %w", s, err)
	}
	for _, l := range timeLayouts {
		if at, err := time.Parse(l, t); err == nil {
			return at, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: not a duration (e.g. 24h, 7d, 1M) or a date (2006-01-02, RFC 3339)", s)
}

// parseDuration parses "1h30m", "2d", "90": numbers with units, summed.
func parseDuration(s string) (time.Duration, error) {
	if v, err := strconv.ParseFloat(s, 64); err == nil { // bare number: seconds
		return scale(v, time.Second)
	}
	var total time.Duration
	for rest := s; rest != ""; {
		i := 0
		for i < len(rest) && (rest[i] == '.' || (rest[i] >= '0' && rest[i] <= '9')) {
			i++
		}
		j := i
		for j < len(rest) && (rest[j] < '0' || rest[j] > '9') && rest[j] != '.' {
			j++
		}
		if i == 0 || j == i {
			return 0, errors.New("not a duration (e.g. 24h, 7d, 1M) or a date (2006-01-02, RFC 3339)")
		}
		v, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil {
			return 0, errors.New("not a duration (e.g. 24h, 7d, 1M) or a date (2006-01-02, RFC 3339)")
		}
		unit, ok := ageUnits[rest[i:j]]
		if !ok {
			return 0, fmt.Errorf("unknown unit %q (want ms, s, m, h, d, w, M or y)", rest[i:j])
		}
		d, err := scale(v, unit)
		if err != nil {
			return 0, err
		}
		total += d
		if total < 0 {
			return 0, errors.New("too large")
		}
		rest = rest[j:]
	}
	return total, nil
}

func scale(v float64, unit time.Duration) (time.Duration, error) {
	if v < 0 || math.IsNaN(v) {
		return 0, errors.New("negative duration")
	}
	d := v * float64(unit)
	if d >= math.MaxInt64 {
		return 0, errors.New("too large")
	}
	return time.Duration(d), nil
}
