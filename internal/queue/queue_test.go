package queue_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/queue"
	"github.com/ferry-dev/ferry/internal/testenv"
)

// TestReplicasNeverDowngraded: the replica count belongs to the deployment.
// Whoever creates the streams sets it; a later client with another (or no)
// --nats-replicas leaves it alone, and warns only when its flag was given.
func TestReplicasNeverDowngraded(t *testing.T) {
	nodes := testenv.StartNATSCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	connect := func(replicas int, set bool) *queue.Conn {
		t.Helper()
		c, err := queue.Connect(ctx, queue.Options{URL: nodes[0].URL, Replicas: replicas, ReplicasSet: set})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	replicas := func(c *queue.Conn) map[string]int {
		t.Helper()
		out := map[string]int{}
		for _, name := range []string{queue.StreamWork, queue.StreamResults, queue.StreamDLQ, queue.StreamDeletes,
			"KV_" + queue.BucketJobs, "KV_" + queue.BucketUploads, "KV_" + queue.BucketLocks, "KV_" + queue.BucketLedger} {
			s, err := c.JS.Stream(ctx, name)
			if err != nil {
				t.Fatalf("stream %s: %v", name, err)
			}
			out[name] = s.CachedInfo().Config.Replicas
		}
		return out
	}
	first := connect(3, true)
	if len(first.Warnings) != 0 {
		t.Fatalf("creator warned: %v", first.Warnings)
	}
	for name, r := range replicas(first) {
		if r != 3 {
			t.Fatalf("%s created with %d replicas", name, r)
		}
	}
	quiet := connect(1, false) // a worker started without the flag
	if len(quiet.Warnings) != 0 {
		t.Fatalf("default flag warned: %v", quiet.Warnings)
	}
	loud := connect(1, true) // --nats-replicas 1 given explicitly
	if len(loud.Warnings) != 8 || !strings.Contains(loud.Warnings[0], "--nats-replicas 1 ignored") {
		t.Fatalf("warnings: %v", loud.Warnings)
	}
	for name, r := range replicas(loud) {
		if r != 3 {
			t.Fatalf("%s downgraded to %d replicas", name, r)
		}
	}
}

// TestClusterDefaultReplicas: a client that creates the streams on a
// 3-node cluster without --nats-replicas (a worker started first, as the
// README's scaling-out order does) gives them 3 replicas.
func TestClusterDefaultReplicas(t *testing.T) {
	nodes := testenv.StartNATSCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := queue.Connect(ctx, queue.Options{URL: nodes[0].URL})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, name := range []string{queue.StreamWork, queue.StreamResults, "KV_" + queue.BucketLedger} {
		s, err := c.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if r := s.CachedInfo().Config.Replicas; r != 3 {
			t.Fatalf("%s: %d replicas, want 3", name, r)
		}
	}
}
