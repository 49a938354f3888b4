package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a buffer a test reads while ferry writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNoWorkerWarning: a job run with --workers 0 and no worker anywhere
// says so in one line instead of waiting silently; an interrupt then
// exits 3 with the JSON status "interrupted" and the run's duration.
func TestNoWorkerWarning(t *testing.T) {
	secretEnv(t)
	noAWSEnv(t)
	old := noWorkerWarnAfter
	noWorkerWarnAfter = 500 * time.Millisecond
	t.Cleanup(func() { noWorkerWarnAfter = old })
	src := writeTree(t, map[string]string{"a": "a"})
	var out, errb syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() {
		code <- Main(ctx, []string{"copy", src, t.TempDir(), "--workers", "0", "--no-progress", "--json"}, Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(errb.String(), "no worker has taken work") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no warning; stderr:\n%s", errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := strings.Count(errb.String(), "no worker"); n != 1 {
		t.Fatalf("%d warnings:\n%s", n, errb.String())
	}
	cancel() // as main does at SIGINT
	if c := <-code; c != ExitInterrupted {
		t.Fatalf("exit %d, want %d; stderr:\n%s", c, ExitInterrupted, errb.String())
	}
	var sum struct {
		Status   string  `json:"status"`
		Duration float64 `json:"duration_seconds"`
	}
	if err := json.Unmarshal([]byte(lastLine(out.String())), &sum); err != nil || sum.Status != "interrupted" || sum.Duration < 0.5 {
		t.Fatalf("summary %q: %v", out.String(), err)
	}
}
