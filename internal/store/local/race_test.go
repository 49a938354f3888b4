package local

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/ferry-dev/ferry/internal/store"
)

// TestFailedWriteCleanupRace: write A creates the directory new/, write B
// opens it, A fails (the disk is full) and removes the directory it created,
// now empty, and only then does B create its temporary file. B must
// succeed, creating the directory again; before, it failed with "openat
// .ferry-tmp-...: no such file or directory", hiding the disk condition A
// reported.
func TestFailedWriteCleanupRace(t *testing.T) {
	s, err := Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bOpened, aFailed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	bDone := make(chan error, 1)
	body := []byte("b's bytes")
	testHookDirsOpened = func(key string) {
		switch key {
		case "new/a":
			// A created new/: start B and let it open new/ too.
			go func() {
				_, err := s.Put(ctx, store.PutInput{Key: "new/b", Size: int64(len(body))}, bytes.NewReader(body))
				bDone <- err
			}()
			<-bOpened
		case "new/b":
			once.Do(func() {
				close(bOpened)
				<-aFailed // A removes new/ before B creates its file
			})
		}
	}
	defer func() { testHookDirsOpened = nil }()
	_, err = s.Put(ctx, store.PutInput{Key: "new/a", Size: 100}, io.MultiReader(strings.NewReader("partial"), errReader{syscall.ENOSPC}))
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("write A: %v, want ENOSPC", err)
	}
	close(aFailed)
	if err := <-bDone; err != nil {
		t.Fatalf("write B, after A's cleanup: %v", err)
	}
	rc, _, err := s.Open(ctx, "new/b", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("new/b: %q, %v", got, err)
	}
	for o, err := range s.List(ctx, store.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if o.Key != "new/b" {
			t.Errorf("left behind: %q", o.Key)
		}
	}
}

// errReader fails every read with err (a body standing in for a write to
// a full disk).
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
