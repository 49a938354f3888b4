package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestTransferOptionsBadInput: each bad value is one line naming the flag,
// exit 2, nothing written.
func TestTransferOptionsBadInput(t *testing.T) {
	e := newEnv(t)
	src, dst := mkBucket(t, e.a), mkBucket(t, e.a)
	put(t, e.a, src, "k", []byte("v"), nil)
	dir := t.TempDir()
	list := filepath.Join(dir, "list")
	if err := os.WriteFile(list, []byte("ok\n../../etc/passwd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	with := func(args ...string) []string { return append(append(args, e.srcA()...), e.dstA()...) }
	S, D := "s3://"+src, "s3://"+dst
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"storage class", with("copy", S, D, "--storage-class", "COLD"), "--storage-class"},
		{"storage class local", append([]string{"copy", S, filepath.Join(dir, "out"), "--storage-class", "STANDARD"}, e.srcA()...), "--storage-class applies to S3"},
		{"size-only and checksum", with("copy", S, D, "--size-only", "--checksum"), "--size-only and --checksum"},
		{"verify size-only and checksum", with("verify", S, D, "--size-only", "--checksum"), "--size-only and --checksum"},
		{"si size", with("copy", S, D, "--min-size", "10MB"), "--min-size"},
		{"bad size", with("copy", S, D, "--max-size", "big"), "--max-size"},
		{"min above max", with("copy", S, D, "--min-size", "2M", "--max-size", "1M"), "--min-size"},
		{"bad age", with("copy", S, D, "--max-age", "yesterday"), "--max-age"},
		{"ages exclude each other", with("copy", S, D, "--max-age", "1d", "--min-age", "2d"), "--max-age"},
		{"files-from dotdot", with("copy", S, D, "--files-from", list), "--files-from"},
		{"files-from missing", with("copy", S, D, "--files-from", filepath.Join(dir, "nope")), "--files-from"},
		{"bwlimit", with("copy", S, D, "--bwlimit", "fast"), "--bwlimit"},
		{"bwlimit si", with("sync", S, D, "--bwlimit", "10MB/s"), "--bwlimit"},
		{"negative stall timeout", with("copy", S, D, "--stall-timeout", "-1s"), "--stall-timeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := ferry(t, tt.args...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2\nstderr: %s", r.code, r.err)
			}
			lines := strings.Split(strings.TrimSpace(r.err), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tt.want) {
				t.Fatalf("stderr %q: want one line containing %q", r.err, tt.want)
			}
			if ks := keys(t, e.a, dst); len(ks) != 0 {
				t.Fatalf("something was written: %q", ks)
			}
			if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
				t.Fatal("local directory created")
			}
		})
	}
}

// TestSyncFiltersKeepExcluded: sync --delete with size, age and
// --files-from filters copies only what they select, counts the rest as
// excluded, and deletes no excluded destination object.
func TestSyncFiltersKeepExcluded(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	old := time.Now().Add(-72 * time.Hour)
	for name, size := range map[string]int{"small": 100, "big": 3000, "old-small": 100, "sub/small2": 200} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, randBytes(size), 0o644); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(name, "old") {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	dst := mkBucket(t, e.a)
	bigDst := randBytes(50)
	put(t, e.a, dst, "big", bigDst, nil)                // its source is excluded by size: kept as is
	put(t, e.a, dst, "old-small", []byte("x"), nil)     // its source is excluded by age: kept
	put(t, e.a, dst, "extra-small", []byte("x"), nil)   // selected, absent at the source: deleted
	put(t, e.a, dst, "extra-big", randBytes(2000), nil) // excluded by size: kept

	args := append([]string{"sync", dir, "s3://" + dst, "--delete", "--max-size", "1k", "--max-age", "24h",
		"--storage-class", "REDUCED_REDUNDANCY"}, e.dstA()...)
	s := ferryJSON(t, 0, args...)
	if s.Copied != 2 || s.Deleted != 1 || s.Failed != 0 {
		t.Fatalf("copied %d deleted %d failed %d, want 2, 1, 0: %v", s.Copied, s.Deleted, s.Failed, s.Raw)
	}
	if ex, _ := s.Raw["objects_excluded"].(float64); ex != 2 {
		t.Fatalf("objects_excluded %v, want 2 (big, old-small)", s.Raw["objects_excluded"])
	}
	want := "big,extra-big,old-small,small,sub/small2"
	if got := strings.Join(keys(t, e.a, dst), ","); got != want {
		t.Fatalf("destination %s, want %s", got, want)
	}
	if got, _ := get(t, e.a, dst, "big"); string(got) != string(bigDst) {
		t.Fatal("the destination counterpart of an excluded source object was changed")
	}
	head, err := e.a.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(dst), Key: aws.String("small")})
	if err != nil || head.StorageClass != "REDUCED_REDUNDANCY" {
		t.Fatalf("storage class %q, %v", head.StorageClass, err)
	}

	// --files-from: only the keys listed; nothing else is deleted either.
	list := filepath.Join(t.TempDir(), "list")
	if err := os.WriteFile(list, []byte("# changed today\nbig\n\n/sub/small2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dst2 := mkBucket(t, e.a)
	put(t, e.a, dst2, "keep", []byte("x"), nil)
	s = ferryJSON(t, 0, append([]string{"sync", dir, "s3://" + dst2, "--delete", "--files-from", list}, e.dstA()...)...)
	if s.Copied != 2 || s.Deleted != 0 {
		t.Fatalf("files-from: copied %d deleted %d, want 2, 0", s.Copied, s.Deleted)
	}
	if got := strings.Join(keys(t, e.a, dst2), ","); got != "big,keep,sub/small2" {
		t.Fatalf("files-from destination %s", got)
	}
}

// TestCompareModes: --size-only skips a same-size object with other bytes;
// --checksum finds and copies it; verify follows the same modes.
func TestCompareModes(t *testing.T) {
	e := newEnv(t)
	src, dst := mkBucket(t, e.a), mkBucket(t, e.b)
	put(t, e.a, src, "k", []byte("version-1"), nil)
	time.Sleep(1100 * time.Millisecond) // the destination is newer
	put(t, e.b, dst, "k", []byte("VERSION-2"), nil)
	with := func(args ...string) []string { return append(append(args, e.srcA()...), e.dstB()...) }
	S, D := "s3://"+src, "s3://"+dst

	if s := ferryJSON(t, 0, with("copy", S, D, "--size-only")...); s.Copied != 0 || s.Skipped != 1 {
		t.Fatalf("--size-only: copied %d skipped %d, want 0, 1", s.Copied, s.Skipped)
	}
	if s := ferryJSON(t, 0, with("verify", S, D, "--size-only")...); s.Diffs != 0 {
		t.Fatalf("verify --size-only: %d differences", s.Diffs)
	}
	if s := ferryJSON(t, 1, with("verify", S, D, "--checksum")...); s.Diffs != 1 {
		t.Fatalf("verify --checksum: %d differences, want 1", s.Diffs)
	}
	if s := ferryJSON(t, 0, with("copy", S, D, "--checksum")...); s.Copied != 1 {
		t.Fatalf("--checksum: copied %d, want 1", s.Copied)
	}
	if got, _ := get(t, e.b, dst, "k"); string(got) != "version-1" {
		t.Fatalf("destination %q", got)
	}
	if s := ferryJSON(t, 0, with("copy", S, D, "--checksum")...); s.Copied != 0 || s.Skipped != 1 {
		t.Fatalf("--checksum re-run: copied %d skipped %d, want 0, 1", s.Copied, s.Skipped)
	}
	if s := ferryJSON(t, 0, with("verify", S, D)...); s.Diffs != 0 {
		t.Fatalf("verify: %d differences", s.Diffs)
	}
}
