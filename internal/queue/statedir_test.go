package queue_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/queue"
)

// TestStateDirShared: the first process to open a state directory serves
// it, on loopback with a token in a 0600 file; the next connects to it as
// a client and sees the same buckets; the serving process waits for its
// client before it stops, and the next process to open the directory then
// serves it.
func TestStateDirShared(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	waiting := make(chan struct{})
	owner, err := queue.Connect(ctx, queue.Options{StateDir: dir, Linger: ctx, Waiting: func() { close(waiting) }})
	if err != nil {
		t.Fatal(err)
	}
	if !owner.Serving() || owner.Lost() != nil {
		t.Fatal("the first process does not serve the state directory")
	}
	fi, err := os.Stat(queue.ServerFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Fatalf("server file mode %04o, want 0600", m)
	}
	client, err := queue.Connect(ctx, queue.Options{StateDir: dir})
	if err != nil {
		t.Fatalf("second process: %v", err)
	}
	if client.Serving() || !client.Embedded() || client.Lost() == nil || !client.NC.AuthRequired() {
		t.Fatal("the second process is not an authenticated client of the first")
	}
	if _, err := client.Jobs.Put(ctx, "k", []byte("from the client")); err != nil {
		t.Fatal(err)
	}
	if e, err := owner.Jobs.Get(ctx, "k"); err != nil || string(e.Value()) != "from the client" {
		t.Fatalf("the owner does not see the client's entry: %v", err)
	}

	closed := make(chan struct{})
	go func() {
		defer close(closed)
		owner.Close()
	}()
	select {
	case <-waiting:
	case <-closed:
		t.Fatal("the serving process stopped while a client was connected")
	case <-ctx.Done():
		t.Fatal("the serving process neither waited nor stopped")
	}
	if _, err := client.Jobs.Get(ctx, "k"); err != nil {
		t.Fatalf("client while the owner waits: %v", err)
	}
	client.Close()
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("the serving process did not stop after its client left")
	}
	if _, err := os.Stat(queue.ServerFile(dir)); !os.IsNotExist(err) {
		t.Fatalf("server file left behind: %v", err)
	}
	next, err := queue.Connect(ctx, queue.Options{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	if !next.Serving() {
		t.Fatal("the next process does not serve the state directory")
	}
	if e, err := next.Jobs.Get(ctx, "k"); err != nil || string(e.Value()) != "from the client" {
		t.Fatalf("state lost across servers: %v", err)
	}
}

// TestStateDirServerLost: a client whose serving process exits without
// waiting (interrupted) learns so through Lost.
func TestStateDirServerLost(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	owner, err := queue.Connect(ctx, queue.Options{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	client, err := queue.Connect(ctx, queue.Options{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	owner.Close()
	select {
	case <-client.Lost():
	case <-ctx.Done():
		t.Fatal("the client did not notice its server was gone")
	}
}
