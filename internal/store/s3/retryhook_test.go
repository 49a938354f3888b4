package s3

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/testenv"
)

// TestOnRetry: every request the SDK sends again is reported with its
// reason, a 503 SlowDown as throttled.
func TestOnRetry(t *testing.T) {
	m, bucket := newBucket(t)
	s := openStore(t, m, bucket, "p")
	put(t, s, "k", []byte("hello"))

	proxy := testenv.StartFaultProxy(t, m.Endpoint, nil)
	var mu sync.Mutex
	var reasons []string
	ps, err := Open(t.Context(), Config{Bucket: bucket, Prefix: "p", Endpoint: proxy.URL,
		Credentials: credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
		OnRetry: func(reason string) {
			mu.Lock()
			reasons = append(reasons, reason)
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	var heads atomic.Int32
	proxy.SetFaults(func(r *http.Request) testenv.Fault {
		if r.Method != http.MethodHead {
			return testenv.Fault{}
		}
		switch heads.Add(1) {
		case 1:
			return testenv.Fault{Status: http.StatusServiceUnavailable}
		case 2:
			return testenv.Fault{Status: http.StatusInternalServerError}
		}
		return testenv.Fault{}
	})
	if _, err := ps.Stat(t.Context(), "k"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(reasons)
	want := []string{RetryServerError, RetryThrottled}
	if !slices.Equal(reasons, want) {
		t.Errorf("retries reported %q, want %q", reasons, want)
	}
}

// TestListingCutShortRetried: a ListObjectsV2 answer whose body ends before
// its Content-Length (the connection closed mid-document), and one with a
// flipped bit that breaks its XML, are sent again by the SDK, reported as
// connection retries, and the listing completes.
func TestListingCutShortRetried(t *testing.T) {
	m, bucket := newBucket(t)
	s := openStore(t, m, bucket, "p")
	for i := range 5 {
		put(t, s, fmt.Sprintf("k%d", i), []byte("hello"))
	}
	proxy := testenv.StartFaultProxy(t, m.Endpoint, nil)
	var mu sync.Mutex
	var reasons []string
	ps, err := Open(t.Context(), Config{Bucket: bucket, Prefix: "p", Endpoint: proxy.URL,
		Credentials: credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
		OnRetry: func(reason string) {
			mu.Lock()
			reasons = append(reasons, reason)
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	var lists atomic.Int32
	proxy.SetFaults(func(r *http.Request) testenv.Fault {
		if r.Method != http.MethodGet || r.URL.Query().Get("list-type") != "2" {
			return testenv.Fault{}
		}
		switch lists.Add(1) {
		case 1:
			return testenv.Fault{Truncate: true, At: 0.5}
		case 2:
			return testenv.Fault{Flip: true, At: 0.5, Bit: 7} // not UTF-8 any more
		}
		return testenv.Fault{}
	})
	n := 0
	for _, err := range ps.List(t.Context(), store.ListOptions{}) {
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		n++
	}
	if n != 5 {
		t.Errorf("listed %d objects, want 5", n)
	}
	if st := proxy.Stats(); st.Truncations != 1 || st.Flips != 1 {
		t.Errorf("%d truncations and %d flips injected, want 1 and 1", st.Truncations, st.Flips)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{RetryConnection, RetryConnection}; !slices.Equal(reasons, want) {
		t.Errorf("retries reported %q, want %q", reasons, want)
	}
}
