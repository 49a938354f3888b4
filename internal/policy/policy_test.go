package policy

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-dev/ferry/internal/location"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func s3loc(bucket, prefix string) location.Location {
	return location.Location{Kind: location.S3, Bucket: bucket, Prefix: prefix}
}

var localDir = location.Location{Kind: location.Local, Path: "/data"}

func TestGolden(t *testing.T) {
	tests := []struct {
		name string
		job  Job
	}{
		{"copy-s3-to-s3", Job{Src: s3loc("src-bucket", "photos/"), Dst: s3loc("dst-bucket", "backup/photos/"), CopyTags: true, Preflight: true}},
		{"copy-whole-bucket", Job{Src: s3loc("src-bucket", ""), Dst: s3loc("dst-bucket", ""), CopyTags: true}},
		{"sync-delete", Job{Src: s3loc("src-bucket", "a/"), Dst: s3loc("dst-bucket", "b/"), CopyTags: true, Delete: true, Preflight: true}},
		{"local-to-s3", Job{Src: localDir, Dst: s3loc("dst-bucket", "up/"), CopyTags: true, Preflight: true}},
		{"s3-to-local", Job{Src: s3loc("src-bucket", "down/"), Dst: localDir, CopyTags: true, Preflight: true}},
		{"local-to-local", Job{Src: localDir, Dst: location.Location{Kind: location.Local, Path: "/other"}}},
		{"kms-key-arn", Job{Src: s3loc("src-bucket", ""), Dst: s3loc("dst-bucket", "enc/"), CopyTags: true, SSE: "aws:kms",
			SSEKMSKeyID: "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}},
		{"kms-key-id", Job{Src: s3loc("src-bucket", ""), Dst: s3loc("dst-bucket", ""), CopyTags: true, SSE: "aws:kms",
			SSEKMSKeyID: "1234abcd-12ab-34cd-56ef-1234567890ab", DstRegion: "eu-west-1"}},
		{"kms-alias", Job{Src: s3loc("src-bucket", ""), Dst: s3loc("dst-bucket", ""), CopyTags: true, SSE: "aws:kms", SSEKMSKeyID: "alias/ferry"}},
		{"kms-aws-managed", Job{Src: s3loc("src-bucket", ""), Dst: s3loc("dst-bucket", ""), CopyTags: true, SSE: "aws:kms"}},
		{"sse-s3", Job{Src: s3loc("src-bucket", ""), Dst: s3loc("dst-bucket", ""), CopyTags: true, SSE: "AES256"}},
		{"allowed-regions-govcloud", Job{Src: s3loc("src-bucket", "x/"), Dst: s3loc("dst-bucket", "y/"), CopyTags: true, CheckRegion: true, Partition: "aws-us-gov"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := For(tt.job).JSON()
			var back Document
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			path := filepath.Join("testdata", tt.name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("policy differs from %s (run go test -update and review the diff):\n%s", path, got)
			}
		})
	}
}

// TestLeastPrivilege checks the properties the goldens are reviewed for.
func TestLeastPrivilege(t *testing.T) {
	has := func(d Document, action string) bool {
		for _, s := range d.Statement {
			for _, a := range s.Action {
				if a == action {
					return true
				}
			}
		}
		return false
	}
	base := Job{Src: s3loc("s", "p/"), Dst: s3loc("d", "q/"), CopyTags: true}
	if d := For(base); has(d, "s3:DeleteObject") || has(d, "kms:Decrypt") || has(d, "s3:GetBucketPolicy") {
		t.Fatal("copy grants delete, kms or preflight reads")
	}
	del := base
	del.Delete = true
	if !has(For(del), "s3:DeleteObject") {
		t.Fatal("sync --delete lacks s3:DeleteObject")
	}
	notags := base
	notags.CopyTags = false
	if d := For(notags); has(d, "s3:GetObjectTagging") || has(d, "s3:PutObjectTagging") {
		t.Fatal("tagging granted without copying tags")
	}
	for _, s := range For(base).Statement {
		for _, r := range s.Resource {
			if r == "*" || r == "arn:aws:s3:::*" {
				t.Fatalf("%s: unscoped resource %q", s.Sid, r)
			}
		}
		if s.Sid == "" {
			t.Fatal("statement without Sid")
		}
	}
}
