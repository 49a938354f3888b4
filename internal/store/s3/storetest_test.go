package s3

import (
	"fmt"
	"testing"

	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/storetest"
	"github.com/ferry-dev/ferry/internal/testenv"
)

// TestConformance runs the store conformance suite on MinIO. Each subtest
// gets its own bucket at the root (the suite writes 1024-byte keys, S3's
// limit for the whole key), so no prefix is left for isolation.
func TestConformance(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	requireFastPath(t)
	n := 0
	storetest.Run(t, func(t *testing.T) store.Store {
		n++
		bucket := fmt.Sprintf("conformance-%d", n)
		m.CreateBucket(t, bucket)
		return openStore(t, m, bucket, "")
	}, storetest.Options{})
}
