package keyspace

import (
	"testing"
	"unicode/utf8"
)

func TestMid(t *testing.T) {
	tests := []struct {
		name, after, end string
		want             string
		ok               bool
	}{
		{"letters", "a", "c", "b", true},
		{"adjacent letters", "a", "b", "a\u0080", true},
		{"unbounded from empty", "", "", "z\u0080", true},
		{"adjacent keys", "a", "a\x00", "", false},
		{"one between", "a", "a\x00\x00", "a\x00", true},
		{"equal", "a", "a", "", false},
		{"reversed", "b", "a", "", false},
		{"prefix bound", "a/x", "a0", "a/\x9c", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Mid(tt.after, tt.end)
			if ok != tt.ok || (ok && !inside(tt.after, tt.end, got)) {
				t.Fatalf("Mid(%q, %q) = %q, %v; want inside, ok %v", tt.after, tt.end, got, ok, tt.ok)
			}
			if tt.name != "prefix bound" && got != tt.want {
				t.Errorf("Mid(%q, %q) = %q, want %q", tt.after, tt.end, got, tt.want)
			}
			if ok && !utf8.ValidString(got) {
				t.Errorf("Mid(%q, %q) = %q: not UTF-8", tt.after, tt.end, got)
			}
		})
	}
}

// TestMidHalves checks that repeated halving of a range converges: each
// half is at most a little more than half the byte distance.
func TestMidHalves(t *testing.T) {
	after, end := "k0000000", "k1000000"
	for range 40 {
		m, ok := Mid(after, end)
		if !ok {
			t.Fatalf("Mid(%q, %q) found nothing", after, end)
		}
		if !inside(after, end, m) {
			t.Fatalf("Mid(%q, %q) = %q outside", after, end, m)
		}
		end = m
	}
	if end >= "k00001" {
		t.Errorf("40 halvings from k1000000 reached %q, want below k00001", end)
	}
}

func inside(after, end, m string) bool {
	return m > after && (end == "" || m < end)
}

func FuzzMid(f *testing.F) {
	for _, s := range [][2]string{{"a", "b"}, {"", ""}, {"é", "ê"}, {"a/x", "a0"}, {"\U0010FFFF", ""}, {"\xff", ""}, {"a\x00", "a\x00\x00\x01"}, {"\ud7ff", "\ue000"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, after, end string) {
		m, ok := Mid(after, end)
		exists := end == "" || (end > after && end != after+"\x00")
		if ok != exists {
			t.Fatalf("Mid(%q, %q) = %q, %v; want ok %v", after, end, m, ok, exists)
		}
		if !ok {
			return
		}
		if !inside(after, end, m) {
			t.Fatalf("Mid(%q, %q) = %q: not strictly between", after, end, m)
		}
		if utf8.ValidString(after) && (end == "" || utf8.ValidString(end)) && !utf8.ValidString(m) {
			t.Fatalf("Mid(%q, %q) = %q: not valid UTF-8", after, end, m)
		}
	})
}
