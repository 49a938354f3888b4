package location

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		arg     string
		want    Location
		wantErr string
	}{
		{"bucket only", "s3://my-bucket", Location{Kind: S3, Bucket: "my-bucket"}, ""},
		{"bucket slash", "s3://my-bucket/", Location{Kind: S3, Bucket: "my-bucket"}, ""},
		{"prefix gets slash", "s3://my-bucket/photos", Location{Kind: S3, Bucket: "my-bucket", Prefix: "photos/"}, ""},
		{"nested prefix", "s3://b.example/a/b/", Location{Kind: S3, Bucket: "b.example", Prefix: "a/b/"}, ""},
		{"special chars kept", "s3://bkt/a b+%#?&=/", Location{Kind: S3, Bucket: "bkt", Prefix: "a b+%#?&=/"}, ""},
		{"upper scheme", "S3://bkt/x", Location{Kind: S3, Bucket: "bkt", Prefix: "x/"}, ""},
		{"underscore", "s3://Not_A_Bucket/x", Location{}, "invalid bucket name"},
		{"too short", "s3://ab", Location{}, "3 to 63"},
		{"too long", "s3://" + strings.Repeat("a", 64), Location{}, "3 to 63"},
		{"ip", "s3://192.168.1.1", Location{}, "IP address"},
		{"double dot", "s3://a..b", Location{}, "adjacent dots"},
		{"dash start", "s3://-abc", Location{}, "begin and end"},
		{"xn prefix", "s3://xn--abc", Location{}, "must not start"},
		{"empty bucket", "s3:///x", Location{}, "missing bucket"},
		{"unknown scheme", "gs://bucket/x", Location{}, "unknown scheme"},
		{"http scheme", "https://host/bucket", Location{}, "unknown scheme"},
		{"credentials", "s3://AKIAXXX:Sup3rS3cr3t@bucket/x", Location{}, "credentials are not accepted"},
		{"empty", "", Location{}, "empty location"},
		{"nul", "s3://bkt/a\x00b", Location{}, "NUL"},
		{"bad utf8", "s3://bkt/\xff", Location{}, "UTF-8"},
		{"long prefix", "s3://bkt/" + strings.Repeat("k", 1100), Location{}, "key limit"},
		{"empty segment", "s3://bkt/a//b", Location{}, "empty path segment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.arg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want containing %q", tt.arg, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "Sup3rS3cr3t") || strings.Contains(err.Error(), "AKIAXXX") {
					t.Fatalf("error leaks credentials: %v", err)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Fatalf("error is not one line: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.arg, err)
			}
			if got != tt.want {
				t.Fatalf("Parse(%q) = %+v, want %+v", tt.arg, got, tt.want)
			}
		})
	}
}

func TestParseLocal(t *testing.T) {
	got, err := Parse("./some/dir")
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if got.Kind != Local || got.Path != filepath.Join(wd, "some/dir") {
		t.Fatalf("got %+v", got)
	}
}

func TestOverlaps(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "real/sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "real"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	s3 := func(b, p string) Location { return Location{Kind: S3, Bucket: b, Prefix: p} }
	loc := func(p string) Location { return Location{Kind: Local, Path: filepath.Join(dir, p)} }
	tests := []struct {
		name string
		a, b Location
		same bool
		want bool
	}{
		{"same bucket root", s3("b", ""), s3("b", ""), true, true},
		{"nested prefix", s3("b", "x/"), s3("b", "x/y/"), true, true},
		{"sibling prefixes", s3("b", "x/"), s3("b", "xy/"), true, false},
		{"other bucket", s3("b", ""), s3("c", ""), true, false},
		{"other endpoint", s3("b", ""), s3("b", ""), false, false},
		{"kinds differ", s3("b", ""), loc("real"), true, false},
		{"same dir", loc("real"), loc("real"), false, true},
		{"subdir", loc("real"), loc("real/sub"), false, true},
		{"symlinked subdir", loc("link/sub"), loc("real"), false, true},
		{"new dir under link", loc("link/new/x"), loc("real"), false, true},
		{"sibling name prefix", loc("real"), loc("realx"), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Overlaps(tt.a, tt.b, tt.same); got != tt.want {
				t.Fatalf("Overlaps(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"s3://bucket/x", "/tmp/x", "gs://x", "s3://a@b/c", "s3://Bad_Name"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := Parse(s)
		if err != nil {
			if strings.Contains(err.Error(), "\n") && !strings.Contains(s, "\n") {
				t.Fatalf("multi-line error for %q: %v", s, err)
			}
			return
		}
		if l.Kind == S3 {
			if ValidateBucket(l.Bucket) != nil {
				t.Fatalf("accepted invalid bucket %q", l.Bucket)
			}
			if l.Prefix != "" && !strings.HasSuffix(l.Prefix, "/") {
				t.Fatalf("prefix %q lacks trailing slash", l.Prefix)
			}
		}
	})
}

func TestParseRemote(t *testing.T) {
	defined := func(name string) bool { return name == "backup" || name == "lab_2" || name == "a" }
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		arg  string
		want Location
		err  string
	}{
		{arg: "backup:bkt/photos", want: Location{Kind: S3, Bucket: "bkt", Prefix: "photos/", Remote: "backup"}},
		{arg: "lab_2:bkt", want: Location{Kind: S3, Bucket: "bkt", Remote: "lab_2"}},
		{arg: "a:bkt/x/y/", want: Location{Kind: S3, Bucket: "bkt", Prefix: "x/y/", Remote: "a"}},
		// Not a remote's syntax: a local path.
		{arg: "./a:b", want: Location{Kind: Local, Path: filepath.Join(wd, "a:b")}},
		{arg: "/x:y", want: Location{Kind: Local, Path: "/x:y"}},
		{arg: "/x/a:b", want: Location{Kind: Local, Path: "/x/a:b"}},
		{arg: "/a:bkt", want: Location{Kind: Local, Path: "/a:bkt"}},
		{arg: "2024:notes", want: Location{Kind: Local, Path: filepath.Join(wd, "2024:notes")}},
		{arg: "dir/a:b", want: Location{Kind: Local, Path: filepath.Join(wd, "dir/a:b")}},
		// A remote's syntax without such a remote: an error, not "./other:bkt".
		{arg: "other:bkt/x", err: `no remote named "other" is defined (for a local path, write ./other:bkt/x)`},
		{arg: "minio:dst", err: `no remote named "minio"`},
		{arg: "Backup:bkt", err: `no remote named "Backup"`},
		{arg: "s3:bkt", err: `no remote named "s3"`},
		{arg: "s3://bkt/p", want: Location{Kind: S3, Bucket: "bkt", Prefix: "p/"}},
		// A defined remote with a bad bucket is an error, not a local path.
		{arg: "backup:", err: "missing bucket name (want backup:bucket[/prefix])"},
		{arg: "backup:/bkt", err: "missing bucket name"},
		{arg: "backup:Bad_Bucket", err: "invalid bucket name"},
		{arg: "backup:key:secret@bkt/x", err: "REDACTED"},
		{arg: "backup:bkt/a//b", err: "empty path segment"},
	}
	for _, tt := range tests {
		got, err := ParseWith(tt.arg, defined)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.arg, err, tt.err)
			}
			if err != nil && strings.Contains(err.Error(), "key:secret") {
				t.Errorf("%q: credentials in the error: %v", tt.arg, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q: got %+v, %v; want %+v", tt.arg, got, err, tt.want)
		}
	}
	if l, _ := ParseWith("backup:bkt/p", defined); l.String() != "backup:bkt/p/" {
		t.Errorf("String() = %q", l.String())
	}
	// Without remotes, Parse never makes one, and never a directory
	// "./backup:bkt" either.
	var ue *UndefinedRemoteError
	if _, err := Parse("backup:bkt"); !errors.As(err, &ue) || ue.Name != "backup" {
		t.Errorf("Parse(backup:bkt): %v, want an UndefinedRemoteError", err)
	}
}
