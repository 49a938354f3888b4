package s3

import (
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/storetest"
	"github.com/ferry-dev/ferry/internal/testenv"
)

// The tests below run against SeaweedFS (`weed mini`), built by
// scripts/install-tools.sh; they are skipped when it is missing, except on
// CI.

// openSeaweed opens a Store on bucket of sw with its admin credentials.
func openSeaweed(t *testing.T, sw *testenv.SeaweedFS, bucket, prefix string) *Store {
	t.Helper()
	s, err := Open(t.Context(), Config{
		Bucket:      bucket,
		Prefix:      prefix,
		Endpoint:    sw.Endpoint,
		Region:      sw.Region,
		Credentials: credentials.NewStaticCredentialsProvider(sw.AccessKey, sw.SecretKey, ""),
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestSeaweedFSConformance runs the conformance suites on SeaweedFS, each
// subtest in its own bucket.
func TestSeaweedFSConformance(t *testing.T) {
	sw := testenv.StartSeaweedFS(t)
	requireFastPath(t)
	n := 0
	newStore := func(t *testing.T) store.Store {
		n++
		bucket := fmt.Sprintf("conformance-%d", n)
		sw.CreateBucket(t, bucket)
		return openSeaweed(t, sw, bucket, "")
	}
	t.Run("Run", func(t *testing.T) { storetest.Run(t, newStore, storetest.Options{}) })
	t.Run("RunLevel", func(t *testing.T) { storetest.RunLevel(t, newStore, storetest.Options{}) })
}

// TestSeaweedFSListEncoding lists keys whose URL encoding is ambiguous
// from SeaweedFS.
func TestSeaweedFSListEncoding(t *testing.T) {
	sw := testenv.StartSeaweedFS(t)
	sw.CreateBucket(t, "encoding")
	ids := seedEncodingKeys(t, openSeaweed(t, sw, "encoding", ""))
	checkEncodingKeys(t, func(t *testing.T, prefix string) *Store { return openSeaweed(t, sw, "encoding", prefix) }, ids)
}
