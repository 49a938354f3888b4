package units

import (
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"10", 10 << 10, false}, // bare number: KiB, like rclone
		{"0", 0, false},
		{"100B", 100, false},
		{"100b", 100, false},
		{"1k", 1 << 10, false},
		{"1K", 1 << 10, false},
		{"10M", 10 << 20, false},
		{"10m", 10 << 20, false},
		{"10Mi", 10 << 20, false},
		{"10MiB", 10 << 20, false},
		{"1.5G", 3 << 29, false},
		{"2T", 2 << 40, false},
		{"1P", 1 << 50, false},
		{"10MB", 0, true},
		{"10KB", 0, true},
		{"10X", 0, true},
		{"10XiB", 0, true},
		{"iB", 0, true},
		{"B", 0, true},
		{"-1M", 0, true},
		{"", 0, true},
		{"abc", 0, true},
		{"NaNM", 0, true},
		{"1e30P", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{"10M": 10 << 20, "10MiB/s": 10 << 20, "512k": 512 << 10, "off": 0, "0": 0, "2Mps": 2 << 20} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"10MB/s", "fast", ""} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q): no error", in)
		}
	}
}

func TestParseAge(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{"24h", now.Add(-24 * time.Hour), false},
		{"90", now.Add(-90 * time.Second), false},
		{"1h30m", now.Add(-90 * time.Minute), false},
		{"2d", now.Add(-48 * time.Hour), false},
		{"1w", now.Add(-7 * 24 * time.Hour), false},
		{"1M", now.Add(-30 * 24 * time.Hour), false},
		{"1y", now.Add(-365 * 24 * time.Hour), false},
		{"1.5h", now.Add(-90 * time.Minute), false},
		{"500ms", now.Add(-500 * time.Millisecond), false},
		{"2026-01-02", time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), false},
		{"2026-01-02 03:04:05", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), false},
		{"2026-01-02T03:04:05+01:00", time.Date(2026, 1, 2, 2, 4, 5, 0, time.UTC), false},
		{"", time.Time{}, true},
		{"-1h", time.Time{}, true},
		{"1x", time.Time{}, true},
		{"h", time.Time{}, true},
		{"yesterday", time.Time{}, true},
		{"2026-13-40", time.Time{}, true},
		{"99999999999y", time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := ParseAge(tt.in, now)
		if (err != nil) != tt.wantErr || !got.Equal(tt.want) {
			t.Errorf("ParseAge(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
